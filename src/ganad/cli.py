"""The ``ganad`` command: fit, score, bench, report, export, demo, models.

    ganad fit ganomaly --data fashion-mnist --normal 0 --out run/
    ganad score run/ --images photos/ --top 50
    ganad bench --models kde ocsvm --data fashion-mnist --protocol one-class --seeds 1
    ganad report --results benchmarks/results --out benchmarks/report
    ganad export run/ model.onnx
    ganad demo
    ganad models [NAME]

Bad input ends with exit code 2 and a one-line message, not a traceback.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import sys
import time
from pathlib import Path
from typing import Any, Sequence

from .exceptions import DistributedError, TrainingDivergedError

EXIT_BAD_INPUT = 2
# Chosen on the validation cells of the small-folder probe (200 and 1,000 Fashion-MNIST images
# of 4 classes, digits 0/3/7; `python benchmarks/small_folder_probe.py --split val --table`):
# Isolation Forest ties first (mean AUROC 0.947 vs GANomaly's 0.946) and fits in about a second
# (GANomaly: 75-140 s), so the tie goes to it; benchmarks/README.md, "Small folders".
DEFAULT_FIT_MODEL = "iforest"


class CLIError(Exception):
    """A problem with what the user asked for; printed as one line."""


def _params(pairs: Sequence[str]) -> dict[str, Any]:
    from .bench.runner import parse_value

    out: dict[str, Any] = {}
    for p in pairs or []:
        if "=" not in p:
            raise CLIError(f"--param takes key=value; got {p!r}")
        k, v = p.split("=", 1)
        out[k.strip()] = parse_value(v)
    return out


def _load_split(args: argparse.Namespace) -> Any:
    from . import datasets

    kw: dict[str, Any] = {"random_state": args.seed}
    if args.protocol == "one-anomalous":
        kw["anomalous_class"] = args.anomalous
    else:
        kw["normal_class"] = args.normal
    if args.protocol == "contamination":
        kw["gamma"] = args.gamma
    if args.protocol == "ood":
        kw["other"] = args.other
    return datasets.make_split(args.data, args.protocol, data_dir=args.data_dir, **kw)


# ------------------------------------------------------------------ commands
#: set by ``ganad fit --nproc N`` for its workers: the pid of the launcher, which holds the run lock
LOCK_OWNER_ENV = "GANAD_LOCK_OWNER"
EXIT_DIST_FAILED = 1


def cmd_fit(args: argparse.Namespace) -> int:
    """Train into ``--out``, holding its lock (:mod:`ganad.runlock`) so no second fit writes there.

    ``--nproc N`` (N > 1) relaunches the command under torchrun (:func:`_launch`);
    under torchrun every process trains, rank 0 holds the lock and writes.
    """
    from . import distributed
    from .runlock import RunLock, holder

    if args.nproc < 1:
        raise CLIError(f"--nproc must be >= 1; got {args.nproc}")
    if args.nproc > 1 and not distributed.launched():
        return _launch(args)
    out = _writable_folder(args.out, "--out")
    if not distributed.launched():
        with RunLock(out):
            return _fit_locked(args, out)
    distributed.init_from_env()
    owner = os.environ.get(LOCK_OWNER_ENV, "")
    if not distributed.is_main() or (owner.isdigit() and holder(out) == int(owner)):
        rc = _fit_locked(args, out)  # rank 0 of `ganad fit --nproc`: its launcher holds the lock
    else:
        with RunLock(out):
            rc = _fit_locked(args, out)
    distributed.barrier("barrier (end of fit)")  # the others wait while rank 0 writes the report
    return rc


def _without_nproc(argv: Sequence[str]) -> list[str]:
    out, skip = [], False
    for a in argv:
        if skip:
            skip = False
        elif a == "--nproc":
            skip = True
        elif not a.startswith("--nproc="):
            out.append(a)
    return out


def _launch(args: argparse.Namespace) -> int:
    """``ganad fit ... --nproc N``: the same command in N processes on this node, via torchrun.

    The launcher holds the run lock for the whole run, gives each worker
    ``cores // N`` threads (unless ``OMP_NUM_THREADS`` is set) and ends with the
    workers: torchrun stops all of them when one fails, and they die with the
    launcher (``kill -9`` included).  A failed run exits with code 1.
    """
    import subprocess

    from . import distributed
    from .runlock import RunLock

    out = _writable_folder(args.out, "--out")
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
    env = dict(os.environ)
    env.setdefault("OMP_NUM_THREADS", str(max(1, cores // args.nproc)))
    env[LOCK_OWNER_ENV] = str(os.getpid())
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", f"--nproc-per-node={args.nproc}",
           "--max-restarts=0", "-m", "ganad", *_without_nproc(args.argv)]
    with RunLock(out):
        proc = subprocess.Popen(cmd, env=env, preexec_fn=lambda: distributed.die_with_parent(signal.SIGTERM))
        try:
            rc = proc.wait()
        except KeyboardInterrupt:  # torchrun got the SIGINT too: it stops its workers
            proc.wait()
            raise
    if rc != 0:
        print(f"ganad fit: error: the run with {args.nproc} processes failed (torchrun exit code {rc}; the failed "
              f"process's error is above); rerun the same command to resume from the last checkpoint", file=sys.stderr)
        return EXIT_DIST_FAILED
    return 0


def _fit_locked(args: argparse.Namespace, out: Path) -> int:
    import ganad

    from . import metrics
    from .report import write_report
    from .report.latent import report_figures

    params = _params(args.param)
    if args.epochs is not None:
        params["epochs"] = args.epochs
    cls = ganad.registry.get_class(args.model)
    if "checkpoint" in cls._param_names():
        params.setdefault("checkpoint", str(out / "checkpoint.pt"))  # kill -9, rerun: it resumes
    if args.restart and "resume" in cls._param_names():
        params["resume"] = False  # delete the run's checkpoints and train from scratch
    if "verbose" in cls._param_names():
        params.setdefault("verbose", not args.quiet)  # progress bars (training, scoring) unless --quiet
    params.setdefault("random_state", args.seed)
    if os.path.isdir(args.data) or os.path.isfile(args.data):
        from .data.readers import read_any

        notes: list[str] = []
        x_train, split = read_any(args.data, size=args.size, skip_bad=args.skip_bad, notes=notes)[0], None
        _print_notes(notes)
    elif args.data.lower().endswith((".npy", ".npz", ".csv", ".png", ".jpg")) or os.sep in args.data:
        raise CLIError(f"--data {args.data}: no such file or folder")
    else:
        split = _load_split(args)
        x_train = split.train.x
    det = ganad.create(args.model, **params)
    t0 = time.perf_counter()
    det.fit(x_train)  # under torchrun: every process (data parallel)
    from .distributed import is_main, world_size

    if not is_main():  # rank 0 writes; the others only take part in the scoring below
        if split is not None:
            det.decision_function(split.test.x)
        return 0
    procs = f" with {world_size()} processes" if world_size() > 1 else ""
    print(f"fitted {args.model} on {len(x_train)} images in {time.perf_counter() - t0:.1f}s{procs}")
    det.save(out / "model.pt")
    result: dict[str, Any] = {"model": args.model, "params": params, "n_train": len(x_train)}
    if split is not None:
        scores = det.decision_function(split.test.x)
        result.update(metrics.evaluate(split.test.y, scores, threshold=det.threshold_))
        result["split"] = {k: v for k, v in split.info.items() if isinstance(v, (int, float, str, bool, type(None)))}
        latent = report_figures(det, split.test.x, split.test.y, out / "report")  # encoders: t-SNE, ||z||
        write_report(out / "report", scores, images=split.test.x, y=split.test.y, threshold=det.threshold_,
                     metrics={k: v for k, v in result.items() if isinstance(v, float)}, title=f"{args.model} on {args.data}",
                     latent=latent)
        print(f"test AUROC {result['auroc']:.4f}  AUPRC {result['auprc']:.4f}  F1 {result['f1']:.4f}")
    (out / "result.json").write_text(json.dumps(result, indent=2, default=str))
    print(f"model: {out / 'model.pt'}")
    return 0


def _writable_folder(path: str, flag: str) -> Path:
    """Create ``path`` as a folder we can write to, or fail in one line *before* any work."""
    out = Path(path)
    if out.exists() and not out.is_dir():
        raise CLIError(f"{flag} {out}: exists and is not a folder")
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise CLIError(f"{flag} {out}: cannot create this folder ({exc.strerror or exc})") from None
    if not os.access(out, os.W_OK | os.X_OK):
        raise CLIError(f"{flag} {out}: this folder is not writable")
    return out


def _print_notes(notes: list[str], limit: int = 10) -> None:
    for line in notes[:limit]:
        print(f"note: {line}", file=sys.stderr)
    if len(notes) > limit:
        print(f"note: ... and {len(notes) - limit} more", file=sys.stderr)


def cmd_score(args: argparse.Namespace) -> int:
    """Score a folder of any size: a DataLoader streams the files (``--workers``),
    each batch is scored and written to ``scores.csv`` at once, and only the
    scores and a few images for the report are kept (:mod:`ganad.scoring`).
    ``.npy``/``.npz``/``.csv`` inputs are arrays already and are read whole."""
    import ganad

    from .data import stream
    from .data.readers import read_any
    from .scoring import anomaly_maps, score_stream

    model_path = Path(args.model)
    if model_path.is_dir():
        model_path = model_path / "model.pt"
    det = ganad.load(model_path)
    if not os.path.exists(args.images):
        raise CLIError(f"--images {args.images}: no such file or folder")
    for flag, value, low in (("--workers", args.workers, 0), ("--batch-size", args.batch_size, 1),
                             ("--thumbs", args.thumbs, 0), ("--table", args.table, 1), ("--top", args.top, 1)):
        if value < low:
            raise CLIError(f"{flag} must be >= {low}; got {value}")
    default_out = Path(args.model if Path(args.model).is_dir() else ".") / "score-report"
    out = _writable_folder(args.out or str(default_out), "--out")  # before any image is scored
    shape = det.input_shape_
    images = Path(args.images)
    is_array = images.is_file() and images.suffix.lower() in (".npy", ".npz", ".csv")
    notes: list[str] = []
    if not is_array and len(shape) == 3 and shape[0] in (1, 3):
        size = args.size if args.size is not None else (shape[1], shape[2])
        data: Any = stream.ImageFolderStream(images, mode="L" if shape[0] == 1 else "RGB", size=size, crop=args.crop)
        base, as_images = data.base, True
    else:  # arrays, or a model that does not take images: read whole, as before
        x, names = read_any(images, size=args.size, skip_bad=args.skip_bad, notes=notes)
        data, base, as_images = stream.ArrayStream(x, names), (images if images.is_dir() else images.parent), x.ndim >= 3
    labels = None
    if args.labels:
        labels = stream.labels_for(data.names, stream.read_labels_csv(args.labels, base), args.labels)
    elif not is_array:
        labels = stream.folder_labels(data.names)
    if "verbose" in det.get_params():
        det.set_params(verbose=False)  # one bar here, over the whole folder, not one per batch
    loader = stream.image_loader(data, batch_size=args.batch_size, workers=args.workers) \
        if isinstance(data, stream.ImageFolderStream) else stream.image_loader(data, batch_size=args.batch_size)
    res = score_stream(det, loader, data.names, out / "scores.csv", labels=labels, skip_bad=args.skip_bad,
                       thumbs=args.thumbs if as_images else 0, table=max(args.table, args.top),
                       show_progress=not args.quiet, desc=f"{det.name} score")
    skipped = res.skipped + sum(n.startswith("skipped") for n in notes)  # + those read_any left out
    notes += res.notes
    if res.converted:
        what = "colour images to grey" if shape[0] == 1 else "grey images to RGB"
        notes.append(f"converted {res.converted} {what} (the model was trained on {'L' if shape[0] == 1 else 'RGB'} images)")
    _print_notes(notes)
    top_imgs = [im for _, _, im in res.top]
    bottom_imgs = [im for _, _, im in res.bottom]
    maps = anomaly_maps(det, top_imgs + bottom_imgs)
    lab = {int(p): int(v) for p, v in zip(res.positions, res.labels)} if res.labels is not None else {}
    from .report import write_score_report

    index = write_score_report(
        out, res.scores, res.threshold, labels=res.labels,
        table_rows=[(sc, data.names[p], parts, lab.get(p)) for sc, p, parts in res.table[: args.table]],
        part_names=res.part_names,
        top=(top_imgs, [sc for sc, _, _ in res.top], [data.names[p] for _, p, _ in res.top]) if top_imgs else None,
        bottom=(bottom_imgs, [sc for sc, _, _ in res.bottom], [data.names[p] for _, p, _ in res.bottom]),
        top_maps=None if maps is None else maps[: len(top_imgs)],
        bottom_maps=None if maps is None else maps[len(top_imgs):],
        title=f"{det.name}: {args.images}" + (f" ({skipped} unreadable files skipped)" if skipped else ""),
        skipped=skipped, notes=notes,
    )
    for rank, (sc, p, _) in enumerate(res.table[: args.top], 1):
        flag = "ANOMALOUS" if sc > res.threshold else ""
        print(f"{rank:4d}  {sc:12.5g}  {data.names[p]}  {flag}")
    if skipped:
        print(f"skipped {skipped} unreadable file(s)", file=sys.stderr)
    print(f"report: {index}")
    return 0


def cmd_bench(args: argparse.Namespace) -> int:
    from . import available_models
    from .bench import render, runner

    models = available_models() if args.models == ["all"] else args.models
    params: dict[str, dict[str, Any]] = {}
    for k, v in _params(args.param).items():  # model.key=value or key=value for all models
        model, _, key = k.rpartition(".")
        for m in [model] if model else models:
            params.setdefault(m, {})[key] = v
    if args.protocol == "ood":  # every class of the dataset is normal
        if args.classes is not None:
            raise CLIError("--classes: the ood protocol has no class (every class of --data is normal)")
        classes: list[Any] = [None]
    else:
        classes = args.classes if args.classes is not None else list(range(10))
    seeds = list(range(args.seed, args.seed + args.seeds))
    if args.labelled < 1:
        raise CLIError(f"--labelled must be >= 1; got {args.labelled}")
    gammas = others = None
    if args.protocol == "contamination":
        gammas = args.gamma
        for g in gammas:
            if not 0 <= g < 1:
                raise CLIError(f"--gamma must be in [0, 1); got {g}")
    if args.protocol == "ood":
        if not args.other:
            raise CLIError("--protocol ood needs --other NAME (e.g. digits, uniform-noise, gaussian-noise, "
                           "fashion-mnist-vflip, fashion-mnist-invert, a dataset, a folder or an .npy file)")
        others = args.other
    options: dict[str, Any] = {}
    if args.pooled:
        options["pooled"] = True
    if args.test_subset is not None:
        options["test_subset"] = args.test_subset
    if args.train_subset is not None:
        options["train_subset"] = args.train_subset
    cells = runner.plan(models, args.data, args.protocol, classes, seeds, params, options, args.data_dir,
                        selection=args.selection, labelled=args.labelled, gammas=gammas, others=others)
    runner.run_bench(cells, args.results, progress=not (args.no_progress or args.quiet), refresh=args.refresh)
    render.render(args.results, args.render_to)
    print(f"results: {args.results}; table: {args.render_to or Path(args.results).parent / 'RESULTS.md'}")
    return 0


def cmd_report(args: argparse.Namespace) -> int:
    """``ganad report``: the benchmark store as one HTML page with its PNGs (:mod:`ganad.report.bench_report`)."""
    from .report.bench_report import write_bench_report

    if not os.path.isdir(args.results):
        raise CLIError(f"--results {args.results}: no such folder")
    out = _writable_folder(args.out, "--out")
    print(f"report: {write_bench_report(args.results, out)}")
    return 0


def cmd_export(args: argparse.Namespace) -> int:
    """``ganad export RUN model.onnx``: a saved detector's scoring as an ONNX graph (:mod:`ganad.export`);
    a detector that cannot be exported (search-based, classic) is a one-line error, exit 2."""
    import ganad

    from .export import to_onnx

    model_path = Path(args.model)
    if model_path.is_dir():
        model_path = model_path / "model.pt"
    det = ganad.load(model_path)
    out = Path(args.out)
    if out.is_dir():
        raise CLIError(f"{out}: is a folder; give the .onnx file to write")
    if out.parent != Path("") and not out.parent.is_dir():
        raise CLIError(f"{out}: no such folder {out.parent}")
    try:
        props = to_onnx(det, out)
    except ImportError as exc:
        raise CLIError(str(exc)) from None
    c, h, w = det.input_shape_
    outputs = ", ".join(json.loads(props["outputs"]))
    print(f"exported {det.name}: uint8 images (N, {c}, {h}, {w}) -> {outputs}; threshold {det.threshold_:.6g} "
          f"(in the file's metadata)")
    print(f"onnx: {out}")
    return 0


def cmd_demo(args: argparse.Namespace) -> int:
    from .demo import run_demo

    run_demo(out=args.out, model=args.model, normal_class=args.normal, seed=args.seed, verbose=not args.quiet)
    return 0


def cmd_models(args: argparse.Namespace) -> int:
    """``ganad models``: every model with a one-line summary; ``ganad models NAME``: its parameters;
    ``ganad models --markdown``: every model's parameter table as Markdown (docs/parameters.md)."""
    from . import describe

    if args.markdown:
        if args.name is not None:
            raise ValueError("ganad models --markdown prints every model's table; it takes no NAME")
        sys.stdout.write(describe.markdown())
        return 0
    if args.name is None:
        rows = describe.model_summaries()
        width = max(len(name) for name, _ in rows)
        for name, summary in rows:
            print(f"{name:<{width}}  {summary}")
        print("\n`ganad models NAME` lists a model's parameters and defaults (set them with `ganad fit NAME --param KEY=VALUE`).")
        return 0
    rows = describe.describe_params(args.name)  # unknown name: ValueError, exit 2
    name = args.name.lower()
    print(f"{name}: {describe.model_summary(name)}")
    print(f"paper: {describe.model_paper(name)}")
    print(f"parameters (`ganad fit {name} --param KEY=VALUE`):")
    defaults = [describe.format_default(r["default"]) for r in rows]
    w_name = max(len(r["name"]) for r in rows)
    w_default = max(len(d) for d in defaults)
    for r, d in zip(rows, defaults):
        allowed = f" [{r['allowed']}]" if r["allowed"] else ""
        print(f"  {r['name']:<{w_name}}  {d:<{w_default}}  {r['doc']}{allowed}".rstrip())
    return 0


# ------------------------------------------------------------------ parser
class _ModelNamesFormatter(argparse.HelpFormatter):
    """Fills ``{models}`` in a help text with the registered model names, only when help is
    printed (listing them imports every model module, and with it torch)."""

    def _get_help_string(self, action: argparse.Action) -> str | None:
        text = super()._get_help_string(action)
        if text and "{models}" in text:
            from . import available_models

            text = text.replace("{models}", ", ".join(available_models()))
        return text


def _data_args(p: argparse.ArgumentParser, bench: bool = False) -> None:
    """The data options; ``bench``: --gamma and --other take several values (a cell each)."""
    p.add_argument("--data", default="digits", help="fashion-mnist, mnist, cifar10, svhn, digits, or a folder of images / an .npy, .npz or .csv file")
    p.add_argument("--data-dir", default=None, help="folder holding the dataset files")
    p.add_argument("--protocol", default="one-class", choices=["one-class", "one-anomalous", "ood", "contamination"])
    p.add_argument("--normal", type=int, default=0, help="normal class (one-class, contamination)")
    p.add_argument("--anomalous", type=int, default=0, help="anomalous class (one-anomalous)")
    if bench:
        p.add_argument("--gamma", type=float, nargs="+", default=[0.1], metavar="G",
                       help="shares of anomalies in training (contamination; Berg et al. section 4.1.2): a cell per "
                            "value, e.g. --gamma 0 0.02 0.05 0.1")
        p.add_argument("--other", nargs="+", default=None, metavar="NAME",
                       help="out-of-distribution sets (ood), a cell each: digits, uniform-noise, gaussian-noise, "
                            "fashion-mnist-vflip, fashion-mnist-invert, a dataset name, a folder of images or an "
                            ".npy/.npz/.csv file")
    else:
        p.add_argument("--gamma", type=float, default=0.1, help="share of anomalies in training (contamination)")
        p.add_argument("--other", default=None,
                       help="out-of-distribution set (ood): digits, uniform-noise, gaussian-noise, "
                            "fashion-mnist-vflip, fashion-mnist-invert, a dataset name, a folder or an .npy file")
    p.add_argument("--seed", type=int, default=0)


def _size(text: str) -> tuple[int, int]:
    try:
        parts = [int(v) for v in text.lower().replace("x", ",").split(",")]
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected N or HxW (e.g. 28 or 32x48); got {text!r}") from None
    if len(parts) == 1:
        parts *= 2
    if len(parts) != 2 or min(parts) < 1:
        raise argparse.ArgumentTypeError(f"expected N or HxW with positive sizes; got {text!r}")
    return parts[0], parts[1]


def _image_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--size", type=_size, default=None, metavar="N|HxW",
                   help="resize every image (bilinear) to this size; score: default = the model's training size")
    p.add_argument("--skip-bad", action="store_true",
                   help="leave out image files that cannot be read (each is logged and counted) instead of stopping")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="ganad", description="Anomaly detection with GANs: fit, score, benchmark.")
    sub = parser.add_subparsers(dest="command", required=True)

    p = sub.add_parser("fit", help="train a detector and save it with a test report", formatter_class=_ModelNamesFormatter,
                       epilog="`ganad models` lists the models with a summary; `ganad models NAME` lists NAME's "
                              "parameters (the KEYs of --param), their defaults and meaning.")
    p.add_argument("model", nargs="?", default=DEFAULT_FIT_MODEL,
                   help=f"model name (default {DEFAULT_FIT_MODEL}: the best and steadiest on small folders, see the README): {{models}}")
    _data_args(p)
    p.add_argument("--out", default="run", help="folder for model.pt, checkpoint.pt, result.json, report/")
    p.add_argument("--epochs", type=int, default=None)
    p.add_argument("--param", action="append", default=[], metavar="KEY=VALUE", help="a model parameter (repeatable)")
    p.add_argument("--restart", action="store_true",
                   help="delete the checkpoint in --out and train from scratch (a rerun otherwise resumes it, "
                        "and refuses one written by a different run)")
    p.add_argument("--quiet", action="store_true", help="no progress bars")
    p.add_argument("--nproc", type=int, default=1, metavar="N",
                   help="train with N processes on this node through torchrun (gloo on CPU, NCCL on CUDA; "
                        "batch_size stays the global batch); for several nodes see README")
    _image_args(p)
    p.set_defaults(func=cmd_fit)

    p = sub.add_parser("score", help="rank a folder of images with a saved detector")
    p.add_argument("model", help="a run folder from `ganad fit` or a model.pt file")
    p.add_argument("--images", required=True, help="folder of PNG/JPEG/BMP images, or an .npy/.npz/.csv file")
    p.add_argument("--top", type=int, default=50, help="how many of the most anomalous to list")
    p.add_argument("--out", default=None, help="report folder (default: <run>/score-report)")
    p.add_argument("--quiet", action="store_true", help="no progress bar (it counts images, with images/s)")
    _image_args(p)
    p.add_argument("--crop", action="store_true",
                   help="bring images to the size by an aspect-keeping bilinear scale and a centre crop "
                        "(nothing stretched, borders lost) instead of a bilinear resize (stretches)")
    p.add_argument("--labels", default=None, metavar="CSV",
                   help="a CSV with columns path,label (0/1 or normal/anomalous; paths relative to --images): "
                        "adds ROC/PR curves, AUROC, AUPRC, F1 and confusion counts to the report. A folder "
                        "whose images all lie in normal/ and anomalous/ subfolders is labelled by them")
    p.add_argument("--workers", type=int, default=0, metavar="N",
                   help="DataLoader worker processes that read and resize images (0: this process)")
    p.add_argument("--batch-size", type=int, default=256, metavar="N", help="images scored at a time")
    p.add_argument("--thumbs", type=int, default=8, metavar="K",
                   help="the K most and K least anomalous images shown in the report (with anomaly maps when "
                        "the detector has them)")
    p.add_argument("--table", type=int, default=500, metavar="N",
                   help="rows of the report's sortable table: the N highest scores (all of them in scores.csv)")
    p.set_defaults(func=cmd_score)

    p = sub.add_parser("bench", help="run models x classes x seeds into the result store; resumable")
    p.add_argument("--models", nargs="+", required=True, help="model names, or `all`")
    _data_args(p, bench=True)
    p.add_argument("--selection", choices=["none", "labelled"], default="none",
                   help="none (default, unsupervised): fit each model's declared configuration, grids unsearched, "
                        "no validation anomaly drawn; labelled: choose the grid on the validation AUROC of "
                        "--labelled K anomalies drawn from the training split (semi-supervised; recorded as labelled:K)")
    p.add_argument("--labelled", type=int, default=50, metavar="K",
                   help="labelled validation anomalies of --selection labelled (default 50, the count AMA's paper uses)")
    p.add_argument("--classes", type=int, nargs="+", default=None, help="classes (default 0..9)")
    p.add_argument("--seeds", type=int, default=1, help="number of seeds, starting at --seed")
    p.add_argument("--pooled", action="store_true", help="one-anomalous: the survey's pooled 80/20 split")
    p.add_argument("--test-subset", type=int, default=None, metavar="N",
                   help="score a fixed, seeded subset of N test images (ADGAN section 4.3), for slow scorers")
    p.add_argument("--train-subset", type=int, default=None, metavar="N",
                   help="train on a fixed, seeded subset of N training images (e.g. one-anomalous on a CPU)")
    p.add_argument("--param", action="append", default=[], metavar="[MODEL.]KEY=VALUE")
    p.add_argument("--refresh", action="store_true",
                   help="also run the cells stored only by a record of an older format (no selection regime, "
                        "validation-anomaly count or update counts); the new record supersedes the old one, "
                        "which stays in the store")
    p.add_argument("--results", default="benchmarks/results", help="folder of the JSONL result store")
    p.add_argument("--render-to", default=None, help="Markdown output (default: benchmarks/RESULTS.md)")
    p.add_argument("--no-progress", action="store_true", help="no progress bars (same as --quiet)")
    p.add_argument("--quiet", action="store_true", help="no progress bars (cells, and images/s while scoring)")
    p.set_defaults(func=cmd_bench)

    p = sub.add_parser("report", help="the benchmark store as an HTML page with charts (beside published and peer numbers)")
    p.add_argument("--results", default="benchmarks/results", help="folder of the JSONL result store (and speed.jsonl)")
    p.add_argument("--out", default="benchmarks/report", help="folder for index.html and its PNGs")
    p.set_defaults(func=cmd_report)

    p = sub.add_parser("export", help="write a saved detector's scoring as an ONNX graph (uint8 images -> score, anomaly map)",
                       description="The graph takes uint8 images (N, C, H, W) in the training layout and returns the "
                                   "scores and, for reconstruction models, the anomaly maps; the threshold and the "
                                   "input convention are in the file's metadata_props.  Search-based (anogan, adgan) "
                                   "and classic models cannot be exported.")
    p.add_argument("model", metavar="RUN", help="a run folder from `ganad fit` or a model.pt file")
    p.add_argument("out", metavar="OUT.onnx", help="the ONNX file to write")
    p.set_defaults(func=cmd_export)

    p = sub.add_parser("demo", help="train on one digit of the embedded digits data, score the rest, write a report")
    p.add_argument("--out", default="demo-report")
    p.add_argument("--model", default="ganomaly")
    p.add_argument("--normal", type=int, default=0)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--quiet", action="store_true", help="no progress bars")
    p.set_defaults(func=cmd_demo)

    p = sub.add_parser("models", help="list the models, or one model's parameters with defaults")
    p.add_argument("name", nargs="?", default=None, help="a model name: list its parameters, defaults and paper")
    p.add_argument("--markdown", action="store_true",
                   help="print every model's parameter table as Markdown (the text of docs/parameters.md)")
    p.set_defaults(func=cmd_models)
    return parser


def _process_name() -> str:
    """" (process R of N)" under torchrun, else "" (without importing torch for it)."""
    dist = sys.modules.get("ganad.distributed")
    return f" (process {dist.rank()} of {dist.world_size()})" if dist is not None and dist.world_size() > 1 else ""


#: commands that run torch: they size its thread pools (:mod:`ganad.threads`) first
_COMPUTING_COMMANDS = frozenset({"fit", "score", "bench", "demo", "export"})


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    args.argv = list(sys.argv[1:] if argv is None else argv)  # `fit --nproc N` relaunches it
    try:
        return int(args.func(args) or 0)
    except DistributedError as exc:  # another process died or stopped answering
        print(f"ganad {args.command}: error: {' '.join(str(exc).split())}", file=sys.stderr)
        return EXIT_DIST_FAILED
    except (CLIError, ValueError, FileNotFoundError, NotADirectoryError, PermissionError, TrainingDivergedError) as exc:
        message = " ".join(str(exc).split()) or type(exc).__name__  # one line, whatever the message
        where = _process_name()
        print(f"ganad {args.command}: error{where}: {message}", file=sys.stderr)
        return EXIT_BAD_INPUT
    except BrokenPipeError:  # `ganad models | head`: the reader left; say nothing
        sys.stderr.close()
        return 0
    except KeyboardInterrupt:
        print(f"ganad {args.command}: interrupted (a rerun resumes from the last checkpoint)", file=sys.stderr)
        return 130


def entry() -> int:
    """The ``ganad`` console command (and ``python -m ganad``): size torch's thread pools
    from the cores this process may use (:mod:`ganad.threads`) for the commands that
    compute, then :func:`main`.  :func:`main` itself leaves the caller's thread
    settings alone (tests and notebooks call it in-process)."""
    words = [a for a in sys.argv[1:] if not a.startswith("-")]
    if words and words[0] in _COMPUTING_COMMANDS:
        from . import threads

        threads.configure()  # threads from the affinity mask and torchrun's processes per node
    return main()


if __name__ == "__main__":  # pragma: no cover
    sys.exit(entry())
