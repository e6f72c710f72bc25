"""ONNX export of a fitted detector's scoring: ``to_onnx(det, "model.onnx")``.

The graph maps a batch of images to anomaly scores and, for the detectors
that reconstruct their input, per-pixel anomaly maps:

* input ``images``: uint8, (N, C, H, W), the layout and size the detector was
  trained on, N free;
* output ``score``: float32 (N,), the detector's ``decision_function`` (higher
  = more anomalous);
* output ``anomaly_map``: float32 (N, H, W), the detector's ``anomaly_map``
  (only where ``has_anomaly_map``).

Inside the graph: uint8 -> float in [0, 1] (x / 255), the detector's own
preprocessing of a batch (``_prepare_tensor``: [-1, 1] and padding with -1 to
the nets' side, 28 -> 32, as :func:`ganad.data.transforms.to_model_input`;
Deep SVDD's contrast normalisation and min-max), and its per-batch scoring (``_score_batch``,
``_map_batch``) with every net in eval mode.  Score normalisers fitted on the
training data (Skip-GANomaly's min-max, GAAE's term statistics, DCAE's and
VAE's per-pixel scale) are constants of the graph.  The VAE's test-time score
is deterministic (the posterior mean, or ``n_samples`` fixed seeded draws, which
become constants), so it exports as it scores.

The threshold and the input convention are not in the graph but in the
model's ``metadata_props`` (JSON values): ``threshold`` (flag ``score >
threshold``), ``input_dtype`` "uint8", ``input_layout`` "NCHW",
``input_shape`` [C, H, W], ``value_range`` [0, 255], ``outputs``,
``score_range`` (the training scores' min and max, for ``predict_proba``),
``model``, ``params``, ``precision``, ``ganad_version``.  Float images in [0, 1]
are passed as ``round(255 x)`` as uint8.

Exported: the detectors whose score is one forward pass (ganomaly,
skipganomaly, egbad, alad, fanogan, dcae, vae, deepsvdd, gaae).  Refused
with a one-line ``ValueError``: the latent-search models (anogan, adgan:
their score is an optimisation per image, not a fixed graph), the classic
models (not torch nets), and GANomaly's ``bn_mode="legacy_train"`` (scores
depend on the test batch).

The graph computes in float32 (a detector fitted with ``precision="bf16"`` is
exported in float32; its scores then differ by bfloat16's rounding).  Export
uses PyTorch's ``torch.export``-based exporter (``torch.onnx.export(...,
dynamo=True)``), which needs the ``onnx`` and ``onnxscript`` packages
(``pip install 'ganad[export]'``); the TorchScript exporter is deprecated.
"""

from __future__ import annotations

import contextlib
import io
import json
import os
import warnings
from typing import Any

import torch
from torch import nn

from .base import BaseDetector, _jsonable, _saved_config

INPUT_NAME = "images"
SCORE_NAME = "score"
MAP_NAME = "anomaly_map"

#: why the search-based detectors cannot be exported
_SEARCH_REASONS = {
    "anogan": "anogan scores each image by a latent search (search_steps gradient steps on z), "
              "not one forward pass: there is no fixed graph to export",
    "adgan": "adgan scores each image by a search (k Adam steps on z and on per-seed copies of the "
             "generator), not one forward pass: there is no fixed graph to export",
}


def export_refusal(det: BaseDetector) -> str | None:
    """Why ``det`` cannot be exported (one line), or None when it can."""
    from .models.torch_base import TorchDetector

    name = det.name or type(det).__name__
    if name in _SEARCH_REASONS:
        return _SEARCH_REASONS[name]
    if name == "typical":  # a wrapper: its A-score is arithmetic on the base's score
        return (f"typical is not a neural network itself (it wraps {getattr(det, 'base', 'a detector')!r}): "
                f"export the base detector and apply A = (R - mu)^2 / sigma^2 with the saved mu, sigma; "
                f"ONNX export covers {', '.join(exportable_models())}")
    if not isinstance(det, TorchDetector):
        return (f"{name} is not a neural network (it scores with scikit-learn/numpy): ONNX export covers the "
                f"neural detectors whose score is one forward pass ({', '.join(exportable_models())})")
    if type(det)._score_batch is TorchDetector._score_batch:  # scores by a search of its own
        return f"{name} does not score by one forward pass per batch: there is no fixed graph to export"
    if getattr(det, "bn_mode", "eval") != "eval":
        return (f"{name} with bn_mode={det.bn_mode!r} scores with the test batch's BatchNorm statistics, so a "
                f"score depends on its batch mates: export a model with bn_mode='eval'")
    return None


def exportable_models() -> list[str]:
    """The registered models :func:`to_onnx` exports."""
    from .models.torch_base import TorchDetector
    from .registry import available_models, get_class

    out = []
    for n in available_models():
        cls = get_class(n)
        if n not in _SEARCH_REASONS and issubclass(cls, TorchDetector) and cls._score_batch is not TorchDetector._score_batch:
            out.append(n)
    return out


class ScoringGraph(nn.Module):
    """uint8 images (N, C, H, W) -> score (N,) [, anomaly map (N, H, W)] with ``det``'s eval-mode nets.

    The detector's nets are this module's submodule ``nets`` (their weights and
    buffers become the graph's initialisers); fitted non-module tensors and
    numbers the scoring reads become constants when traced.
    """

    def __init__(self, det: Any):
        super().__init__()
        self.nets = det.nets_
        self._det = det  # not a module: its methods run on self.nets
        self.with_map = bool(det.has_anomaly_map)

    def forward(self, images: torch.Tensor) -> Any:
        # the detector's own preprocessing of [0, 1] images (uint8 / 255, as to_unit_float)
        x = self._det._prepare_tensor(images.to(torch.float32) / 255.0)
        score = self._det._score_batch(x)["score"].to(torch.float32)
        if not self.with_map:
            return score
        return score, self._det._map_to_input(self._det._map_batch(x)).to(torch.float32)


def metadata(det: BaseDetector) -> dict[str, str]:
    """The ``metadata_props`` written with the graph (values are JSON)."""
    from . import __version__

    outputs = [SCORE_NAME] + ([MAP_NAME] if det.has_anomaly_map else [])
    c, h, w = det.input_shape_
    props = {
        "model": det.name,
        "threshold": det.threshold_,
        "contamination": det.contamination,
        "input_name": INPUT_NAME,
        "input_dtype": "uint8",
        "input_layout": "NCHW",
        "input_shape": [int(c), int(h), int(w)],
        "value_range": [0, 255],
        "outputs": outputs,
        "score": "higher = more anomalous; predict: score > threshold",
        "score_range": [det._score_min_, det._score_max_],
        "params": _jsonable(_saved_config(det)),
        "precision": "fp32",
        "trained_precision": getattr(det, "precision", "fp32"),
        "ganad_version": __version__,
    }
    if det.has_anomaly_map:
        props["anomaly_map"] = f"(N, {h}, {w}) per-pixel residual, higher = more anomalous (ganad anomaly_map)"
    return {k: json.dumps(v) for k, v in props.items()}


def to_onnx(det: BaseDetector, path: str | os.PathLike, *, opset: int | None = None) -> dict[str, str]:
    """Write ``det``'s scoring as an ONNX graph to ``path``; returns the metadata written.

    A detector that cannot be exported (see :func:`export_refusal`) raises a
    one-line ``ValueError`` before anything is written; an unfitted one raises
    :class:`ganad.NotFittedError`.  The file is written atomically.
    """
    reason = export_refusal(det)
    if reason is not None:
        raise ValueError(f"cannot export {det.name or type(det).__name__} to ONNX: {reason}")
    det._check_fitted()
    try:
        import onnx
        import onnxscript  # noqa: F401  (torch's exporter needs it)
    except ImportError as exc:
        raise ImportError(f"ONNX export needs the onnx and onnxscript packages (pip install 'ganad[export]'): {exc}") from None

    graph = ScoringGraph(det).eval()
    det.nets_.eval()
    c, h, w = det.input_shape_
    example = torch.zeros((2, c, h, w), dtype=torch.uint8, device=det.device_)
    outputs = [SCORE_NAME] + ([MAP_NAME] if det.has_anomaly_map else [])
    batch = torch.export.Dim("N")
    path = os.fspath(path)
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    tmp = f"{path}.{os.getpid()}.tmp"
    try:
        # the exporter reports its steps on stdout and warns about optional torchvision ops
        with warnings.catch_warnings(), contextlib.redirect_stdout(io.StringIO()), torch.no_grad():
            warnings.simplefilter("ignore")
            graph(example)  # one eager pass first: fitted constants a scorer draws lazily exist before tracing
            # strict (bytecode) tracing: it keeps N symbolic through the nets' ``len(z)``
            # reshapes, where the non-strict tracer specialises N to the example's size
            exported = torch.export.export(graph, (example,), dynamic_shapes={"images": {0: batch}}, strict=True)
            program = torch.onnx.export(
                exported, (example,), None, input_names=[INPUT_NAME], output_names=outputs,
                opset_version=opset, dynamo=True, verbose=False,
            )
        model = program.model_proto
        props = metadata(det)
        onnx.helper.set_model_props(model, props)
        model.doc_string = f"ganad {det.name}: uint8 images (N, {c}, {h}, {w}) -> {', '.join(outputs)}"
        onnx.save(model, tmp)
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.remove(tmp)
    return props


def read_metadata(path: str | os.PathLike) -> dict[str, Any]:
    """The ``metadata_props`` of an exported file, JSON-decoded."""
    import onnx

    model = onnx.load(os.fspath(path), load_external_data=False)
    return {p.key: json.loads(p.value) for p in model.metadata_props}


__all__ = ["ScoringGraph", "export_refusal", "exportable_models", "metadata", "read_metadata", "to_onnx"]
