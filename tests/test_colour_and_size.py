"""Colour and size end to end: an RGB folder at 64x64 (and 128x128 through --size 64) trains and scores."""

import numpy as np
from PIL import Image

import ganad
from ganad.cli import main


def _rgb_folder(root, n, size, rng, anomalous=False):
    """Smooth colour blobs (normal: a red disc on blue; anomalous: a green square), n images of size x size."""
    root.mkdir(parents=True)
    yy, xx = np.mgrid[:size, :size] / size
    for i in range(n):
        cx, cy = rng.uniform(0.3, 0.7, 2)
        img = np.zeros((size, size, 3))
        img[..., 2] = 0.6
        if anomalous:
            m = (abs(xx - cx) < 0.2) & (abs(yy - cy) < 0.2)
            img[m] = (0.1, 0.9, 0.1)
        else:
            img[(xx - cx) ** 2 + (yy - cy) ** 2 < 0.04] = (0.9, 0.1, 0.1)
        img += rng.normal(0, 0.03, img.shape)
        Image.fromarray((img.clip(0, 1) * 255).astype(np.uint8), "RGB").save(root / f"{i:03d}.png")
    return root


def test_rgb_folder_at_64_and_128_via_size(tmp_path, capsys):
    rng = np.random.default_rng(0)
    train = _rgb_folder(tmp_path / "train", 64, 128, rng)  # 128x128, trained at --size 64
    normal = _rgb_folder(tmp_path / "test" / "normal", 12, 64, rng)
    _rgb_folder(tmp_path / "test" / "anomalous", 12, 64, rng, anomalous=True)
    args = ["fit", "dcae", "--data", str(train), "--size", "64", "--out", str(tmp_path / "run"), "--epochs", "6",
            "--param", "width=8", "--param", "nz=16", "--param", "batch_size=16", "--param", "device=cpu", "--quiet"]
    assert main(args) == 0
    det = ganad.load(tmp_path / "run" / "model.pt")
    assert det.input_shape_ == (3, 64, 64)
    out = tmp_path / "report"
    assert main(["score", str(tmp_path / "run"), "--images", str(tmp_path / "test"), "--out", str(out), "--quiet"]) == 0
    text = (out / "index.html").read_text()
    assert "AUROC" in text
    # the DCGAN nets at 64x64 separate the green squares from the red discs
    scores = {}
    for line in (out / "scores.csv").read_text().splitlines()[1:]:
        cells = line.split(",")
        scores[cells[1]] = float(cells[2])
    anomalous = [s for p, s in scores.items() if p.startswith("anomalous")]
    normal_s = [s for p, s in scores.items() if p.startswith("normal")]
    assert len(anomalous) == len(normal_s) == 12
    assert np.mean(np.greater.outer(anomalous, normal_s)) >= 0.9
    assert normal.exists()
