"""Published and peer numbers that benchmark tables are shown beside (AUROC as fractions).

Transcribed from the papers' tables (each row names its source) and from
runs of existing libraries on this machine with the same protocol (the peer
rows; ``benchmarks/peer_*.sh`` run two of them).
"""

from __future__ import annotations

# Selection regime of a published row, by label (default "unsupervised": the paper fixed its
# hyper-parameters without anomalies).  "labelled:K" for papers that chose on K labelled
# validation anomalies (e.g. AMA's), "test-informed" for numbers tuned on the test set.
# RESULTS.md places each row in the table of its regime.
PUBLISHED_REGIME: dict[str, str] = {
    "OC-SVM, raw pixels, tuned in hindsight": "test-informed",  # GEOM paper: hyper-parameters tuned in hindsight
}


def published_regime(label: str) -> str:
    return PUBLISHED_REGIME.get(label, "unsupervised")


def published_section(label: str) -> str:
    """The RESULTS.md table of a published row: "unsupervised", "semi-supervised" or "test-informed"."""
    regime = published_regime(label)
    if regime == "test-informed":
        return regime
    return "semi-supervised" if regime.startswith("labelled") else "unsupervised"


# (dataset, protocol) -> list of (label, {class: auroc}, mean, source)
PUBLISHED: dict[tuple[str, str], list[tuple[str, dict[int, float], float, str]]] = {
    ("fashion-mnist", "one-class"): [
        ("GEOM (Golan & El-Yaniv 2018)",
         dict(enumerate([0.994, 0.976, 0.911, 0.899, 0.921, 0.934, 0.833, 0.989, 0.908, 0.992])), 0.935,
         "AGAD paper Table 1, from Cheng et al. 2020"),
        ("ARNet (Ye et al. 2022)",
         dict(enumerate([0.927, 0.993, 0.891, 0.936, 0.908, 0.931, 0.850, 0.984, 0.978, 0.984])), 0.939,
         "AGAD paper Table 1"),
        ("ADGAN (Deecke et al. 2018)", {}, 0.884, "GEOM paper Table 1"),
        ("OC-SVM, raw pixels, tuned in hindsight", {}, 0.928, "GEOM paper Table 1"),
        ("CAE + OC-SVM", {}, 0.917, "GEOM paper Table 1"),
        ("DSEBM", {}, 0.866, "GEOM paper Table 1"),
        ("Deep SVDD (Deep SAD, no labels)", {}, 0.892, "Ruff et al. 2020 (± 0.062)"),
        ("OCGAN, re-run of authors' code", {}, 0.867, "OCGAN repository issue 8"),
        ("PANDA (ImageNet-pretrained)", {}, 0.956, "GeneralAD paper table"),
    ],
}

PEERS: dict[tuple[str, str], list[tuple[str, dict[int, float], str]]] = {
    ("fashion-mnist", "one-class"): [
        ("PyOD 2.1 IForest, raw pixels",
         dict(enumerate([0.9116, 0.9765, 0.8776, 0.9348, 0.9040, 0.9304, 0.7976, 0.9819, 0.8814, 0.9763])),
         "peer library run on this machine"),
        ("PyOD 2.1 KDE, PCA-50, bandwidth 1",
         dict(enumerate([0.8929, 0.9860, 0.8507, 0.9375, 0.8742, 0.8955, 0.8224, 0.9676, 0.8126, 0.9231])),
         "peer library run on this machine"),
        ("PyOD 2.1 OCSVM, PCA-50, gamma='scale'",
         dict(enumerate([0.8911, 0.9379, 0.8653, 0.9088, 0.8781, 0.7793, 0.8182, 0.9636, 0.7936, 0.9454])),
         "peer library run on this machine"),
        ("PyOD 2.1 VAE", dict(enumerate([0.9043, 0.9817, 0.8754, 0.9453, 0.9088, 0.9270, 0.8018, 0.9830, 0.8998, 0.9787])),
         "peer library run on this machine"),
        ("PyOD 2.1 AutoEncoder", dict(enumerate([0.9037, 0.9831, 0.8649, 0.9510, 0.9064, 0.9201, 0.8069, 0.9856, 0.8622, 0.9798])),
         "peer library run on this machine"),
        ("PyOD 3.6.7 DeepSVDD", dict(enumerate([0.8703, 0.9622, 0.7771, 0.8601, 0.8026, 0.8991, 0.7167, 0.9543, 0.8746, 0.9364])),
         "peer library run on this machine"),
        ("PyOD 2.1 ALAD (defaults)",
         dict(enumerate([0.4031, 0.3662, 0.3843, 0.3919, 0.3740, 0.6330, 0.4209, 0.4165, 0.4041, 0.3439])),
         "peer library run on this machine"),
        ("PyOD 2.1 AnoGAN (no per-image search)", {0: 0.6076, 1: 0.9684, 8: 0.7742}, "peer library run on this machine"),
        ("anomalib 2.7 GANomaly, 20 epochs, 32 px", {0: 0.8707, 1: 0.9758, 8: 0.8972}, "peer library run on this machine"),
    ],
}
