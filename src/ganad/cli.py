"""The ``ganad`` command: fit, score, bench, demo, models.

    ganad fit ganomaly --data fashion-mnist --normal 0 --out run/
    ganad score run/ --images photos/ --top 50
    ganad bench --models kde ocsvm --data fashion-mnist --protocol one-class --seeds 1
    ganad demo
    ganad models [NAME]

Bad input ends with exit code 2 and a one-line message, not a traceback.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path
from typing import Any, Sequence

from .exceptions import TrainingDivergedError

EXIT_BAD_INPUT = 2


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
def cmd_fit(args: argparse.Namespace) -> int:
    """Train into ``--out``, holding its lock (:mod:`ganad.runlock`) so no second fit writes there."""
    from .runlock import RunLock

    out = _writable_folder(args.out, "--out")
    with RunLock(out):
        return _fit_locked(args, out)


def _fit_locked(args: argparse.Namespace, out: Path) -> int:
    import ganad

    from . import metrics
    from .report import write_report

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
    det.fit(x_train)
    print(f"fitted {args.model} on {len(x_train)} images in {time.perf_counter() - t0:.1f}s")
    det.save(out / "model.pt")
    result: dict[str, Any] = {"model": args.model, "params": params, "n_train": len(x_train)}
    if split is not None:
        scores = det.decision_function(split.test.x)
        result.update(metrics.evaluate(split.test.y, scores, threshold=det.threshold_))
        result["split"] = {k: v for k, v in split.info.items() if isinstance(v, (int, float, str, bool, type(None)))}
        write_report(out / "report", scores, images=split.test.x, y=split.test.y, threshold=det.threshold_,
                     metrics={k: v for k, v in result.items() if isinstance(v, float)}, title=f"{args.model} on {args.data}")
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
    import ganad

    from .data.readers import read_any
    from .report import write_report

    model_path = Path(args.model)
    if model_path.is_dir():
        model_path = model_path / "model.pt"
    det = ganad.load(model_path)
    if not os.path.exists(args.images):
        raise CLIError(f"--images {args.images}: no such file or folder")
    default_out = Path(args.model if Path(args.model).is_dir() else ".") / "score-report"
    out = _writable_folder(args.out or str(default_out), "--out")  # before any image is scored
    shape = det.input_shape_
    size = args.size if args.size is not None else ((shape[1], shape[2]) if len(shape) == 3 else None)
    mode = ("L" if shape[0] == 1 else "RGB") if len(shape) == 3 else None
    notes: list[str] = []
    x, names = read_any(args.images, size=size, mode=mode, skip_bad=args.skip_bad, notes=notes)
    _print_notes(notes)
    if "verbose" in det.get_params():
        det.set_params(verbose=not args.quiet)
    scores = det.decision_function(x)
    skipped = sum(n.startswith("skipped") for n in notes)
    index = write_report(out, scores, images=x if x.ndim >= 3 else None, threshold=det.threshold_, names=names,
                         top=args.top, title=f"{det.name}: {args.images}" + (f" ({skipped} unreadable files skipped)" if skipped else ""))
    order = sorted(range(len(scores)), key=lambda i: -scores[i])[: args.top]
    for rank, i in enumerate(order, 1):
        flag = "ANOMALOUS" if scores[i] > det.threshold_ else ""
        print(f"{rank:4d}  {scores[i]:12.5g}  {names[i]}  {flag}")
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
    classes = args.classes if args.classes is not None else list(range(10))
    seeds = list(range(args.seed, args.seed + args.seeds))
    options: dict[str, Any] = {}
    if args.protocol == "contamination":
        options["gamma"] = args.gamma
    if args.protocol == "ood":
        options["other"] = args.other
    if args.pooled:
        options["pooled"] = True
    if args.test_subset is not None:
        options["test_subset"] = args.test_subset
    if args.train_subset is not None:
        options["train_subset"] = args.train_subset
    cells = runner.plan(models, args.data, args.protocol, classes, seeds, params, options, args.data_dir)
    runner.run_bench(cells, args.results, progress=not (args.no_progress or args.quiet))
    render.render(args.results, args.render_to)
    print(f"results: {args.results}; table: {args.render_to or Path(args.results).parent / 'RESULTS.md'}")
    return 0


def cmd_demo(args: argparse.Namespace) -> int:
    from .demo import run_demo

    run_demo(out=args.out, model=args.model, normal_class=args.normal, seed=args.seed, verbose=not args.quiet)
    return 0


def cmd_models(args: argparse.Namespace) -> int:
    """``ganad models``: every model with a one-line summary; ``ganad models NAME``: its parameters."""
    from . import describe

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


def _data_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--data", default="digits", help="fashion-mnist, mnist, cifar10, svhn, digits, or a folder of images / an .npy, .npz or .csv file")
    p.add_argument("--data-dir", default=None, help="folder holding the dataset files")
    p.add_argument("--protocol", default="one-class", choices=["one-class", "one-anomalous", "ood", "contamination"])
    p.add_argument("--normal", type=int, default=0, help="normal class (one-class, contamination)")
    p.add_argument("--anomalous", type=int, default=0, help="anomalous class (one-anomalous)")
    p.add_argument("--gamma", type=float, default=0.1, help="share of anomalies in training (contamination)")
    p.add_argument("--other", default=None, help="out-of-distribution dataset (ood)")
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
    p.add_argument("model", help="model name: {models}")
    _data_args(p)
    p.add_argument("--out", default="run", help="folder for model.pt, checkpoint.pt, result.json, report/")
    p.add_argument("--epochs", type=int, default=None)
    p.add_argument("--param", action="append", default=[], metavar="KEY=VALUE", help="a model parameter (repeatable)")
    p.add_argument("--restart", action="store_true",
                   help="delete the checkpoint in --out and train from scratch (a rerun otherwise resumes it, "
                        "and refuses one written by a different run)")
    p.add_argument("--quiet", action="store_true", help="no progress bars")
    _image_args(p)
    p.set_defaults(func=cmd_fit)

    p = sub.add_parser("score", help="rank a folder of images with a saved detector")
    p.add_argument("model", help="a run folder from `ganad fit` or a model.pt file")
    p.add_argument("--images", required=True, help="folder of PNG/JPEG/BMP images, or an .npy/.npz/.csv file")
    p.add_argument("--top", type=int, default=50, help="how many of the most anomalous to list")
    p.add_argument("--out", default=None, help="report folder (default: <run>/score-report)")
    p.add_argument("--quiet", action="store_true", help="no progress bar (neural models show one, with images/s)")
    _image_args(p)
    p.set_defaults(func=cmd_score)

    p = sub.add_parser("bench", help="run models x classes x seeds into the result store; resumable")
    p.add_argument("--models", nargs="+", required=True, help="model names, or `all`")
    _data_args(p)
    p.add_argument("--classes", type=int, nargs="+", default=None, help="classes (default 0..9)")
    p.add_argument("--seeds", type=int, default=1, help="number of seeds, starting at --seed")
    p.add_argument("--pooled", action="store_true", help="one-anomalous: the survey's pooled 80/20 split")
    p.add_argument("--test-subset", type=int, default=None, metavar="N",
                   help="score a fixed, seeded subset of N test images (ADGAN section 4.3), for slow scorers")
    p.add_argument("--train-subset", type=int, default=None, metavar="N",
                   help="train on a fixed, seeded subset of N training images (e.g. one-anomalous on a CPU)")
    p.add_argument("--param", action="append", default=[], metavar="[MODEL.]KEY=VALUE")
    p.add_argument("--results", default="benchmarks/results", help="folder of the JSONL result store")
    p.add_argument("--render-to", default=None, help="Markdown output (default: benchmarks/RESULTS.md)")
    p.add_argument("--no-progress", action="store_true", help="no progress bars (same as --quiet)")
    p.add_argument("--quiet", action="store_true", help="no progress bars (cells, and images/s while scoring)")
    p.set_defaults(func=cmd_bench)

    p = sub.add_parser("demo", help="train on one digit of the embedded digits data, score the rest, write a report")
    p.add_argument("--out", default="demo-report")
    p.add_argument("--model", default="ganomaly")
    p.add_argument("--normal", type=int, default=0)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--quiet", action="store_true", help="no progress bars")
    p.set_defaults(func=cmd_demo)

    p = sub.add_parser("models", help="list the models, or one model's parameters with defaults")
    p.add_argument("name", nargs="?", default=None, help="a model name: list its parameters, defaults and paper")
    p.set_defaults(func=cmd_models)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return int(args.func(args) or 0)
    except (CLIError, ValueError, FileNotFoundError, NotADirectoryError, PermissionError, TrainingDivergedError) as exc:
        message = " ".join(str(exc).split()) or type(exc).__name__  # one line, whatever the message
        print(f"ganad {args.command}: error: {message}", file=sys.stderr)
        return EXIT_BAD_INPUT
    except BrokenPipeError:  # `ganad models | head`: the reader left; say nothing
        sys.stderr.close()
        return 0
    except KeyboardInterrupt:
        print(f"ganad {args.command}: interrupted (a rerun resumes from the last checkpoint)", file=sys.stderr)
        return 130


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
