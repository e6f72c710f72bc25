"""Static reports for anomaly scores: PNG figures (matplotlib Agg) and an HTML page.

>>> from ganad.report import write_report
>>> index = write_report("out/report", scores, images=x_test, y=y_test,
...                      metrics={"auroc": 0.93}, names=file_names)
"""

from .html import write_report, write_score_report
from .plots import (
    extremes_grid_png,
    extremes_maps_png,
    pr_curve_png,
    image_grid_png,
    rank_extremes,
    residual_heatmap_png,
    roc_curve_png,
    score_histogram_png,
)

__all__ = [
    "write_report",
    "write_score_report",
    "pr_curve_png",
    "extremes_maps_png",
    "rank_extremes",
    "roc_curve_png",
    "score_histogram_png",
    "image_grid_png",
    "extremes_grid_png",
    "residual_heatmap_png",
]
