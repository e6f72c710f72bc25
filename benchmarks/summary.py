"""Print the numbers the issue notes quote, from the stored results only.

    python benchmarks/summary.py [benchmarks/results]

Per (model, config, protocol options): classes stored, mean AUROC over
classes (each class first averaged over seeds), mean AUROC on Fashion-MNIST
classes 0, 1 and 8 (the classes the PyOD peers were run on), median train and
score throughput (images/s), the largest peak RSS, and the mean AUROC of each
score term.
"""

from __future__ import annotations

import sys
from collections import defaultdict

import numpy as np

from ganad.bench.store import all_records, config_id


def main(results: str = "benchmarks/results") -> None:
    groups: dict[tuple, list[dict]] = defaultdict(list)
    for r in all_records(results):
        opts = ",".join(f"{k}={v}" for k, v in sorted(r.get("protocol_options", {}).items()))
        groups[(r["dataset"], r["protocol"], r["model"], config_id(r.get("config", {})), opts)].append(r)
    for (dataset, protocol, model, cid, opts), rs in sorted(groups.items()):
        key = "anomalous_class" if protocol == "one-anomalous" else "normal_class"
        per: dict[int, list[float]] = defaultdict(list)
        for r in rs:
            per[r[key]].append(r["auroc"])
        means = {c: float(np.mean(v)) for c, v in per.items()}
        c018 = [means[c] for c in (0, 1, 8) if c in means]
        seeds = sorted({r["seed"] for r in rs})
        train_ips = [r["train_images_per_second"] for r in rs if r.get("train_images_per_second")]
        score_ips = [r["score_images_per_second"] for r in rs if r.get("score_images_per_second")]
        line = (
            f"{dataset} {protocol} {model} [{cid}{' ' + opts if opts else ''}] classes {len(means)} seeds {seeds}: "
            f"mean AUROC {np.mean(list(means.values())):.4f}"
            + (f" (std over seeds, mean over classes with 2+ seeds {np.mean([np.std(v, ddof=1) for v in per.values() if len(v) > 1]):.3f})"
               if any(len(v) > 1 for v in per.values()) else "")
            + f", AUPRC {np.mean([r['auprc'] for r in rs]):.4f}"
            + (f", classes 0/1/8 {np.mean(c018):.4f}" if len(c018) == 3 else "")
            + (f", train {np.median(train_ips):.0f} img/s" if train_ips else "")
            + (f", score {np.median(score_ips):.0f} img/s" if score_ips else "")
            + f", fit {np.mean([r['fit_seconds'] for r in rs]):.0f} s, peak RSS {max(r['peak_rss_mb'] for r in rs):.0f} MB"
        )
        print(line)
        parts = defaultdict(list)
        for r in rs:
            for k, v in (r.get("part_auroc") or {}).items():
                parts[k].append(v)
        if parts:
            print("    terms: " + ", ".join(f"{k} {np.mean(v):.4f}" for k, v in sorted(parts.items())))


if __name__ == "__main__":
    main(*sys.argv[1:2])
