"""Static reports for anomaly scores: PNG figures (matplotlib Agg) and an HTML page.

>>> from ganad.report import write_report
>>> index = write_report("out/report", scores, images=x_test, y=y_test,
...                      metrics={"auroc": 0.93}, names=file_names)
"""

from . import plots
from .html import write_report, write_score_report
from .plots import *  # noqa: F403 - the figure functions, listed once in plots.__all__

__all__ = ["write_report", "write_score_report", *plots.__all__]
