"""One-line errors (exit 2) for what a user gets wrong; .npy/.npz/.csv inputs; --size, --skip-bad."""

import json

import numpy as np
import pytest
import torch
from PIL import Image

import ganad
from ganad.cli import main

FAST_DCAE = ["--param", "width=8", "--param", "nz=8", "--param", "batch_size=32", "--param", "device=cpu", "--quiet"]


def one_line_exit_2(capsys, argv, match):
    assert main(argv) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "Traceback" not in err[0], err
    assert match in err[0], err[0]


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory):
    out = tmp_path_factory.mktemp("run")
    assert main(["fit", "dcae", "--data", "digits", "--epochs", "1", "--out", str(out), *FAST_DCAE]) == 0
    return out


@pytest.fixture(scope="module")
def png_folder(tmp_path_factory, digits_arrays):
    folder = tmp_path_factory.mktemp("pngs")
    for i, img in enumerate(digits_arrays[2][:12]):
        Image.fromarray(img).save(folder / f"{i:02d}.png")
    return folder


def test_score_checks_the_output_before_scoring(capsys, tmp_path, run_dir, png_folder, monkeypatch):
    a_file = tmp_path / "taken"
    a_file.write_text("x")
    scored = []
    monkeypatch.setattr(ganad.models.dcae.DCAE, "_score_parts", lambda *a: scored.append(1) or {})
    one_line_exit_2(capsys, ["score", str(run_dir), "--images", str(png_folder), "--out", str(a_file)], "not a folder")
    locked = tmp_path / "ro"
    locked.mkdir()
    locked.chmod(0o500)
    if not __import__("os").access(locked, __import__("os").W_OK):  # root can write anywhere
        one_line_exit_2(capsys, ["score", str(run_dir), "--images", str(png_folder), "--out", str(locked / "r")],
                        "--out")
    assert not scored  # refused before any image was scored


def test_diverged_training_and_bad_device_are_one_line(capsys, tmp_path):
    one_line_exit_2(capsys, ["fit", "dcae", "--data", "digits", "--epochs", "1", "--out", str(tmp_path / "a"),
                             *FAST_DCAE, "--param", "lr=1e30"], "became")
    one_line_exit_2(capsys, ["fit", "dcae", "--data", "digits", "--epochs", "1", "--out", str(tmp_path / "b"),
                             "--param", "device=bogus"], "device must be")


def _crafted(run_dir, tmp_path, **changes):
    payload = torch.load(run_dir / "model.pt", weights_only=True)
    for k, v in changes.items():
        if v is KeyError:
            payload.pop(k)
        else:
            payload[k] = v
    path = tmp_path / "crafted.pt"
    torch.save(payload, path)
    return path


@pytest.mark.parametrize(
    "changes,match",
    [
        ({"model": None}, "'model' is None"),
        ({"state": KeyError}, "no 'state'"),
        ({"config": json.dumps([1, 2])}, "'config' is a list"),
        ({"format_version": 99}, "newer ganad"),
        ({"format_version": "1"}, "format_version"),
        ({"config": json.dumps({"width": 16})}, "does not fit"),
        ({"config": json.dumps({"contamination": 5})}, "contamination"),
        ({"config": json.dumps({"bogus": 1})}, "no parameter"),
    ],
)
def test_crafted_model_files_are_refused_in_one_line(capsys, tmp_path, run_dir, png_folder, changes, match):
    path = _crafted(run_dir, tmp_path, **changes)
    with pytest.raises(ValueError, match="invalid model file"):
        ganad.load(path)
    one_line_exit_2(capsys, ["score", str(path), "--images", str(png_folder), "--out", str(tmp_path / "o")], match)


def test_a_pickled_file_is_refused_in_one_line(capsys, tmp_path, png_folder):
    path = tmp_path / "pickled.pt"
    import pickle

    path.write_bytes(pickle.dumps({"format": "ganad", "f": complex(1, 2)}))
    one_line_exit_2(capsys, ["score", str(path), "--images", str(png_folder)], "not a ganad model file")


def test_saved_checkpoint_path_is_not_accepted_from_a_file(run_dir):
    payload = torch.load(run_dir / "model.pt", weights_only=True)
    assert "checkpoint" not in json.loads(payload["config"])


def test_npy_npz_and_csv_work_in_fit_score_and_bench(capsys, tmp_path, digits_arrays, run_dir):
    x_tr, y_tr, x_te, y_te = digits_arrays
    np.save(tmp_path / "train.npy", x_tr[y_tr == 0])
    assert main(["fit", "ocsvm", "--data", str(tmp_path / "train.npy"), "--out", str(tmp_path / "r1")]) == 0
    np.save(tmp_path / "test.npy", x_te[:20])
    assert main(["score", str(tmp_path / "r1"), "--images", str(tmp_path / "test.npy"), "--out", str(tmp_path / "s1")]) == 0
    assert "test.npy[" in capsys.readouterr().out
    np.savez(tmp_path / "lab.npz", x=np.concatenate([x_tr, x_te]), y=np.concatenate([y_tr, y_te]))
    res = tmp_path / "results"
    assert main(["bench", "--models", "ocsvm", "--data", str(tmp_path / "lab.npz"), "--classes", "1",
                 "--results", str(res), "--quiet"]) == 0
    flat = x_tr.reshape(len(x_tr), -1)
    header = ",".join([f"p{i}" for i in range(flat.shape[1])] + ["label"])
    rows = [",".join(map(str, [*r, int(lab)])) for r, lab in zip(flat[:300] / 255.0, y_tr[:300])]
    (tmp_path / "tab.csv").write_text("\n".join([header, *rows]) + "\n")
    assert main(["bench", "--models", "iforest", "--data", str(tmp_path / "tab.csv"), "--classes", "0",
                 "--results", str(res), "--quiet"]) == 0
    one_line_exit_2(capsys, ["fit", "ocsvm", "--data", str(tmp_path / "missing.npy"), "--out", str(tmp_path / "r2")],
                    "no such file")


def test_size_and_skip_bad_and_colour_conversion(capsys, tmp_path, run_dir, digits_arrays):
    folder = tmp_path / "mixed"
    folder.mkdir()
    for i, img in enumerate(digits_arrays[2][:6]):
        big = Image.fromarray(img).resize((16, 16))
        (big.convert("RGB") if i % 2 else big).save(folder / f"{i}.png")
    (folder / "broken.png").write_bytes(b"not a png")
    one_line_exit_2(capsys, ["score", str(run_dir), "--images", str(folder), "--out", str(tmp_path / "o")],
                    "--skip-bad")
    assert main(["score", str(run_dir), "--images", str(folder), "--out", str(tmp_path / "o"), "--skip-bad",
                 "--quiet"]) == 0
    err = capsys.readouterr().err
    assert "skipped" in err and "broken.png" in err and "converted 3 colour images to grey" in err
    # a folder of mixed sizes trains with --size
    (folder / "broken.png").unlink()
    Image.fromarray(digits_arrays[2][7]).save(folder / "small.png")
    one_line_exit_2(capsys, ["fit", "ocsvm", "--data", str(folder), "--out", str(tmp_path / "f")], "size")
    for i, img in enumerate(digits_arrays[2][8:14]):
        Image.fromarray(img).save(folder / f"more{i}.png")
    assert main(["fit", "ocsvm", "--data", str(folder), "--size", "8", "--out", str(tmp_path / "f")]) == 0


def test_single_image_and_too_few_samples(digits_split):
    det = ganad.create("ocsvm", n_components=5).fit(digits_split.train.x)
    with pytest.raises(ValueError, match=r"x\[None\]"):
        det.decision_function(digits_split.test.x[0])
    with pytest.raises(ValueError, match=r"x\[None\]"):
        ganad.create("dcae", epochs=0).fit(digits_split.train.x[:5]).decision_function(digits_split.test.x[0])
    for name in ("ocsvm", "gmm", "dcae"):
        with pytest.raises(ValueError, match="at least"):
            ganad.create(name).fit(digits_split.train.x[:1])
