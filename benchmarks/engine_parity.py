"""Fixed-seed CPU parity of every registered model between two source trees.

Fits each model on scikit-learn's digits (one-class, normal digit 0, seed 0)
with small fixed settings and saves its test-split scores (and score parts) to
an .npz; ``compare`` reads two such files and says, per model, whether the
scores are identical, equal within float tolerance or different.  The script
only uses the public API that both the pre-refactor main (13fb497) and today's
tree have, so the same file runs under either tree's ``PYTHONPATH``:

    OMP_NUM_THREADS=1 PYTHONPATH=/work/old-main/src .venv/bin/python benchmarks/engine_parity.py run --out /tmp/parity-old.npz
    OMP_NUM_THREADS=1 PYTHONPATH=src .venv/bin/python benchmarks/engine_parity.py run --out /tmp/parity-new.npz
    .venv/bin/python benchmarks/engine_parity.py compare /tmp/parity-old.npz /tmp/parity-new.npz

Settings shared by both trees: ``SMALL`` below, ``device="cpu"``,
``random_state=0``, one torch thread.  Parameters that only today's tree has
are set to the values that keep its training data and arithmetic the old
ones: ``calibration_fraction=0`` (otherwise 10% of the training images are
held out of the fit to calibrate ``threshold_``) and ``precision="fp32"``.
Any other new parameter keeps its default (e.g. GANomaly's ``min_steps=150``);
``--set MODEL:KEY=VALUE`` overrides a parameter where the tree has it (to
confirm that a new default explains a difference), and ``--no-bn-recompute``
turns off the GANomaly/Skip-GANomaly BatchNorm-statistics recomputation after
training where the tree has it (a step with no parameter); ``--new-defaults``
leaves ``NEW_ONLY`` unset (today's defaults, calibration hold-out included).
"""

from __future__ import annotations

import argparse
import ast
import hashlib
import json
import os
import time
from typing import Any

import numpy as np

#: small fixed settings, per model (keys a tree's model does not take are dropped, and listed)
_NET = {"width": 8, "nz": 8, "batch_size": 32, "epochs": 10}
SMALL: dict[str, dict[str, Any]] = {
    "kde": {}, "ocsvm": {}, "iforest": {}, "gmm": {"mixture_components": [2, 4]},
    "ganomaly": _NET, "skipganomaly": _NET, "egbad": _NET, "alad": _NET,
    "dcae": _NET, "vae": _NET, "gaae": _NET,
    "fanogan": {**_NET, "encoder_epochs": 5},
    "anogan": {**_NET, "search_steps": 20, "threshold_images": 64},
    "adgan": {**_NET, "n_seed": 4, "k": 5, "threshold_images": 64},
    "deepsvdd": {"epochs": 10, "pretrain_epochs": 5, "batch_size": 32},
}
#: today's parameters set so that the fit sees the old tree's data and precision
NEW_ONLY = {"calibration_fraction": 0.0, "precision": "fp32"}
RTOL, ATOL = 1e-5, 1e-8  # "within tol": np.allclose(new, old, rtol=RTOL, atol=ATOL)


def _sha(a: np.ndarray) -> str:
    return hashlib.sha256(np.ascontiguousarray(a).tobytes()).hexdigest()[:16]


def _is_torch(cls: type) -> bool:
    return any(c.__name__ == "TorchDetector" for c in cls.__mro__)


def _parse_sets(items: list[str]) -> dict[str, dict[str, Any]]:
    out: dict[str, dict[str, Any]] = {}
    for item in items:
        model, _, kv = item.partition(":")
        key, _, value = kv.partition("=")
        if not (model and key and value):
            raise SystemExit(f"--set wants MODEL:KEY=VALUE; got {item!r}")
        try:
            parsed: Any = ast.literal_eval(value)
        except (ValueError, SyntaxError):
            parsed = value
        out.setdefault(model, {})[key] = parsed
    return out


def _params_for(
    name: str, cls: type, sets: dict[str, dict[str, Any]], new_defaults: bool = False
) -> tuple[dict[str, Any], list[str]]:
    """(parameters to pass, requested keys this tree's model does not take)."""
    takes = set(cls().get_params())
    want: dict[str, Any] = {**SMALL.get(name, {"epochs": 10}), "random_state": 0}
    if _is_torch(cls):
        want["device"] = "cpu"
    if not new_defaults:
        want.update({k: v for k, v in NEW_ONLY.items() if k in takes})
    want.update(sets.get(name, {}))
    dropped = sorted(k for k in want if k not in takes)
    return {k: v for k, v in want.items() if k in takes}, dropped


def _disable_bn_recompute() -> list[str]:
    """No-op the post-training BatchNorm recomputation (today's GANomaly/Skip-GANomaly); the
    names of the classes patched (none in the old tree)."""
    from ganad.models import ganomaly

    patched = []
    for cls_name in ("_GANomalyBase",):
        cls = getattr(ganomaly, cls_name, None)
        if cls is not None and hasattr(cls, "_recompute_bn_stats"):
            cls._recompute_bn_stats = lambda self, x: None  # type: ignore[assignment]
            patched.append(cls_name)
    return patched


def run(args: argparse.Namespace) -> None:
    import torch

    torch.set_num_threads(1)
    from sklearn.metrics import roc_auc_score

    import ganad
    from ganad import datasets

    patched = _disable_bn_recompute() if args.no_bn_recompute else []
    sets = _parse_sets(args.set)
    split = datasets.make_split("digits", "one-class", normal_class=0, random_state=0)
    x_tr, x_te, y_te = split.train.x, split.test.x, np.asarray(split.test.y)
    # default: the models of the pre-refactor tree (all that SMALL lists), where this tree has them
    names = args.models or [n for n in ganad.available_models() if n in SMALL]
    out: dict[str, np.ndarray] = {}
    meta: dict[str, Any] = {
        "ganad_file": os.path.dirname(ganad.__file__), "torch": torch.__version__, "threads": torch.get_num_threads(),
        "train": [list(x_tr.shape), str(x_tr.dtype), _sha(x_tr)], "test": [list(x_te.shape), str(x_te.dtype), _sha(x_te)],
        "test_y": _sha(y_te.astype(np.int64)), "patched_no_bn_recompute": patched, "models": {},
    }
    print(f"ganad from {meta['ganad_file']}; train {x_tr.shape} {meta['train'][2]}, test {x_te.shape} {meta['test'][2]}",
          flush=True)
    for name in names:
        cls = ganad.registry.get_class(name)
        params, dropped = _params_for(name, cls, sets, args.new_defaults)
        t = time.perf_counter()
        det = ganad.create(name, **params).fit(x_tr)
        fit_s = time.perf_counter() - t
        scores = np.asarray(det.decision_function(x_te), dtype=np.float64)
        parts = {k: np.asarray(v, dtype=np.float64) for k, v in det.score_parts(x_te).items()}
        total_s = time.perf_counter() - t
        out[f"{name}/score"] = scores
        for k, v in parts.items():
            out[f"{name}/part/{k}"] = v
        auroc = float(roc_auc_score(y_te, scores))
        meta["models"][name] = {
            "params": params, "dropped": dropped, "torch": _is_torch(cls), "auroc": auroc,
            "threshold": float(det.threshold_), "fit_s": round(fit_s, 2), "total_s": round(total_s, 2),
        }
        print(f"{name:13s} AUROC {auroc:.4f}  fit {fit_s:6.1f}s  all {total_s:6.1f}s  params {params}"
              + (f"  (not in this tree: {dropped})" if dropped else ""), flush=True)
    out["__meta__"] = np.array(json.dumps(meta))
    np.savez(args.out, **out)
    print(f"wrote {args.out}")


def _diff(a: np.ndarray, b: np.ndarray) -> tuple[float, float, str]:
    """(max |a - b|, max |a - b| / max(|a|, |b|), verdict) of old ``a`` and new ``b``."""
    if a.shape != b.shape:
        return float("nan"), float("nan"), f"differs (shape {a.shape} vs {b.shape})"
    d = np.abs(a - b)
    scale = np.maximum(np.abs(a), np.abs(b))
    rel = np.where(d == 0, 0.0, d / np.where(scale == 0, 1.0, scale))
    if np.array_equal(a, b):
        verdict = "identical"
    elif np.allclose(b, a, rtol=RTOL, atol=ATOL):
        verdict = "within tol"
    else:
        verdict = "differs"
    return float(d.max()), float(rel.max()), verdict


def compare(args: argparse.Namespace) -> None:
    old, new = np.load(args.old), np.load(args.new)
    mo, mn = json.loads(str(old["__meta__"])), json.loads(str(new["__meta__"]))
    print(f"old: {args.old} (ganad {mo['ganad_file']}, torch {mo['torch']}, {mo['threads']} thread)")
    print(f"new: {args.new} (ganad {mn['ganad_file']}, torch {mn['torch']}, {mn['threads']} thread)")
    same_data = all(mo[k] == mn[k] for k in ("train", "test", "test_y"))
    print(f"data: train {mo['train']} test {mo['test']} -> {'same in both' if same_data else 'DIFFERENT: ' + str((mn['train'], mn['test']))}")
    if mo["patched_no_bn_recompute"] or mn["patched_no_bn_recompute"]:
        print(f"BatchNorm recomputation disabled in: old {mo['patched_no_bn_recompute']}, new {mn['patched_no_bn_recompute']}")
    print(f"tolerance: within tol = np.allclose(new, old, rtol={RTOL}, atol={ATOL})")
    header = f"{'model':13s} {'max|diff|':>10s} {'max rel':>10s} {'AUROC old':>9s} {'AUROC new':>9s} {'thr old':>10s} {'thr new':>10s}  verdict"
    print(header)
    print("-" * len(header))
    for name in sorted(set(mo["models"]) & set(mn["models"])):
        a, b = old[f"{name}/score"], new[f"{name}/score"]
        dmax, rmax, verdict = _diff(a, b)
        io, inew = mo["models"][name], mn["models"][name]
        print(f"{name:13s} {dmax:10.3e} {rmax:10.3e} {io['auroc']:9.4f} {inew['auroc']:9.4f} "
              f"{io['threshold']:10.4g} {inew['threshold']:10.4g}  {verdict}")
        parts_o = {k.split('/part/')[1] for k in old.files if k.startswith(f"{name}/part/")}
        parts_n = {k.split('/part/')[1] for k in new.files if k.startswith(f"{name}/part/")}
        cells = []
        for p in sorted(parts_o & parts_n):
            if p == "score":
                continue
            pd, _pr, pv = _diff(old[f"{name}/part/{p}"], new[f"{name}/part/{p}"])
            cells.append(f"{p} {pd:.2e} ({pv})")
        if parts_o ^ parts_n:
            cells.append(f"parts only old {sorted(parts_o - parts_n)}, only new {sorted(parts_n - parts_o)}")
        if cells:
            print(f"{'':13s}   parts: " + "; ".join(cells))
        po, pn = io["params"], inew["params"]
        if po != pn:
            extra = {k: pn[k] for k in pn if po.get(k) != pn[k]}
            print(f"{'':13s}   params only/changed in new: {extra}")
    for which, a, b in (("old", mo, mn), ("new", mn, mo)):
        only = sorted(set(a["models"]) - set(b["models"]))
        if only:
            print(f"only in {which}: {' '.join(only)}")


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = p.add_subparsers(dest="cmd", required=True)
    r = sub.add_parser("run", help="fit every model, save test scores to an .npz")
    r.add_argument("--out", required=True)
    r.add_argument("--models", nargs="+", default=None,
                   help="default: the models SMALL lists (every model 13fb497 registers) that this tree has")
    r.add_argument("--set", action="append", default=[], metavar="MODEL:KEY=VALUE",
                   help="override one parameter of one model where this tree's model takes it")
    r.add_argument("--no-bn-recompute", action="store_true",
                   help="no-op GANomaly/Skip-GANomaly's post-training BatchNorm recomputation where present")
    r.add_argument("--new-defaults", action="store_true",
                   help="do not set NEW_ONLY (today's calibration_fraction=0.1 hold-out then applies)")
    c = sub.add_parser("compare", help="compare two .npz files of `run`")
    c.add_argument("old")
    c.add_argument("new")
    args = p.parse_args(argv)
    if args.cmd == "run":
        run(args)
    else:
        compare(args)


if __name__ == "__main__":
    main()
