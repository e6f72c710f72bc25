"""Why Berg et al.'s latent-norm term L_o ranks Fashion-MNIST backwards here: it follows the ink.

Berg's score (Eq. 5) is 0.95 L_o + 0.05 L_n with L_o = -||z_hat|| / sqrt(N_z) (Eq. 4), on
the paper's observation that anomalies are encoded nearer the origin.  With the
image loss of Eq. 6 nothing trains that length: G pixel-normalises its input, so
G(c z) = G(z) for every c > 0 and L_E is flat along ||E(.)||
(tests/test_berg.py::test_the_image_loss_never_trains_the_length_of_the_code).
The length is then whatever E's untrained direction makes of the image.

This script reads the stored one-class records (``berg``, gamma 0 contamination
records of ``fanogan`` for its L_o part) and sets each class's L_o part-AUROC
beside three image statistics used as anomaly scores on the same test split,
with no model at all: -||x||_2, -mean(x) and -ink (the share of pixels above 0.1):
"the image with less ink is the anomaly".  A correlation across the ten classes
near -1 says that L_o scores the amount of ink, and in which direction.

    python benchmarks/berg_latent_norm.py    # writes benchmarks/results/berg-latent-norm.json
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from ganad.datasets import make_split
from ganad.metrics import roc_auc

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "benchmarks" / "results"


def stored_l_o() -> dict[str, dict[int, float]]:
    """Per model, class -> the L_o part-AUROC of its seed-0, gamma-0 record."""
    out: dict[str, dict[int, float]] = {"berg": {}, "fanogan": {}}
    sources = (("berg", "fashion-mnist-one-class.jsonl"), ("fanogan", "fashion-mnist-contamination.jsonl"))
    for model, name in sources:
        for line in (RESULTS / name).read_text().splitlines():
            r = json.loads(line)
            if r["model"] == model and r.get("seed", 0) == 0 and r.get("gamma", 0) == 0 and "l_o" in r["part_auroc"]:
                out[model][int(r["normal_class"])] = float(r["part_auroc"]["l_o"])
    return out


def image_statistic_aurocs(normal_class: int) -> dict[str, float]:
    test = make_split("fashion-mnist", "one-class", normal_class=normal_class).test
    x = test.x.reshape(len(test.x), -1).astype(np.float64)
    x = x / 255.0 if x.max() > 1.5 else x
    return {
        "neg_l2": roc_auc(test.y, -np.linalg.norm(x, axis=1)),
        "neg_mean": roc_auc(test.y, -x.mean(1)),
        "neg_ink": roc_auc(test.y, -(x > 0.1).mean(1)),
    }


def main() -> None:
    l_o = stored_l_o()
    stats = {c: image_statistic_aurocs(c) for c in range(10)}
    summary: dict = {"classes": {}, "correlation": {}}
    print("class  berg L_o  fanogan L_o  -||x||  -mean  -ink")
    for c in range(10):
        row = {"berg_l_o": l_o["berg"].get(c), "fanogan_l_o": l_o["fanogan"].get(c), **stats[c]}
        summary["classes"][c] = row
        f = lambda v: "   -  " if v is None else f"{v:6.3f}"  # noqa: E731
        print(f"{c:5d}  {f(row['berg_l_o'])}    {f(row['fanogan_l_o'])}     {f(row['neg_l2'])}  {f(row['neg_mean'])}  {f(row['neg_ink'])}")
    for model in ("berg", "fanogan"):
        cls = sorted(l_o[model])
        if len(cls) < 3:
            continue
        a = np.array([l_o[model][c] for c in cls])
        for stat in ("neg_l2", "neg_mean", "neg_ink"):
            b = np.array([stats[c][stat] for c in cls])
            r = float(np.corrcoef(a, b)[0, 1])
            summary["correlation"][f"{model}_l_o~{stat}"] = {"pearson": round(r, 4), "classes": cls}
            print(f"{model} L_o vs {stat}: Pearson r = {r:+.3f} over {len(cls)} classes")
    out = RESULTS / "berg-latent-norm.json"
    out.write_text(json.dumps(summary, indent=1) + "\n")
    print("wrote", out.relative_to(ROOT))


if __name__ == "__main__":
    main()
