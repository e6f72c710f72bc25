"""Run identity: the fingerprint that ties a training checkpoint to the run that wrote it.

A checkpoint may only be resumed by the run that wrote it: same training data,
same model, same training parameters, same seed.  :func:`run_key` builds that
fingerprint as plain JSON-able data, :func:`differences` says in words what
differs between two of them (for a one-line refusal).

What is *not* part of the identity:

* run-time settings that do not change the weights: ``verbose``,
  ``checkpoint``, ``resume``, ``device`` (a run may be resumed on another
  device) and ``contamination`` (it only sets the threshold from the training
  scores, after training); ``sync_batchnorm`` belongs with the number of
  processes (neither is part of the identity: a checkpoint resumes with any
  number of processes, and in one process it changes nothing);
* a detector's ``score_params`` (they change scoring only);
* the epoch counts of the phase being checked and of later phases
  (:func:`phase_length_params`): the training loop checks a phase's length itself, so an
  unfinished or finished run can be continued to more epochs, but never
  returned for fewer epochs than it has done.  Earlier phases' lengths *are*
  part of the identity (the encoder of f-AnoGAN depends on how long its GAN
  trained).

The data fingerprint is shape, dtype and a BLAKE2b hash of the bytes; arrays
over :data:`FULL_HASH_BYTES` are hashed on a fixed strided sample of about
:data:`SAMPLE_BYTES` (plus shape and dtype), which tells different data sets
apart at a fraction of the cost.
"""

from __future__ import annotations

import hashlib
import json
from typing import Any, Iterable, Mapping

import numpy as np

FULL_HASH_BYTES = 64 * 2**20
SAMPLE_BYTES = 16 * 2**20
#: parameters that never change what training produces
NOT_IDENTITY = ("verbose", "checkpoint", "resume", "device", "contamination", "sync_batchnorm")


def data_fingerprint(x: np.ndarray) -> dict[str, Any]:
    """Shape, dtype and hash of the training data (of a strided sample when large)."""
    x = np.asarray(x)
    h = hashlib.blake2b(digest_size=16)
    h.update(repr((tuple(x.shape), x.dtype.str)).encode())
    sampled = x.nbytes > FULL_HASH_BYTES
    if sampled:
        flat = x.reshape(-1)
        step = -(-flat.size // max(1, SAMPLE_BYTES // x.itemsize))
        h.update(np.ascontiguousarray(flat[::step]).tobytes())
        h.update(np.ascontiguousarray(flat[-1:]).tobytes())
    else:
        h.update(np.ascontiguousarray(x).tobytes())
    return {"shape": [int(s) for s in x.shape], "dtype": x.dtype.str, "hash": h.hexdigest(), "sampled": sampled}


def _plain(v: Any) -> Any:
    """``v`` as JSON data (tuples -> lists, numpy scalars -> numbers, other objects -> repr)."""

    def default(o: Any) -> Any:
        if isinstance(o, np.integer):
            return int(o)
        if isinstance(o, np.floating):
            return float(o)
        if isinstance(o, np.ndarray):
            return o.tolist()
        return repr(o)

    return json.loads(json.dumps(v, default=default, sort_keys=True))


def phase_length_params(det: Any, phase: str) -> set[str]:
    """The epoch-count parameters of ``phase`` and the phases after it.

    ``det.checkpoint_phases`` lists the phases in order as (checkpoint suffix,
    epochs parameter); without it the detector has one phase run by ``epochs``.
    """
    phases = list(getattr(det, "checkpoint_phases", (("", "epochs"),)))
    suffixes = [s for s, _ in phases]
    start = suffixes.index(phase) if phase in suffixes else len(phases)
    return {p for _, p in phases[start:]} or {"epochs"}


def run_key(det: Any, x: np.ndarray, *, phase: str = "", exclude: Iterable[str] = ()) -> dict[str, Any]:
    """The fingerprint of training ``det`` on ``x`` in phase ``phase`` (a checkpoint suffix).

    Leaves out :data:`NOT_IDENTITY`, ``det.score_params``, the epoch counts of
    this and later phases (:func:`phase_length_params`) and ``exclude``.
    """
    params = det.get_params()
    drop = {*NOT_IDENTITY, *getattr(det, "score_params", ()), *phase_length_params(det, phase), *exclude}
    drop.add("random_state")
    return {
        "model": str(getattr(det, "name", "") or type(det).__name__),
        "phase": phase or "",
        "data": data_fingerprint(x),
        "random_state": _plain(params.get("random_state")),
        "params": _plain({k: v for k, v in params.items() if k not in drop}),
    }


def _dtype_name(dt: Any) -> str:
    try:
        return np.dtype(dt).name
    except TypeError:
        return str(dt)


def _short(v: Any, limit: int = 40) -> str:
    s = repr(v)
    return s if len(s) <= limit else s[: limit - 3] + "..."


def differences(saved: Mapping[str, Any], current: Mapping[str, Any]) -> list[str]:
    """What differs from the run that wrote a checkpoint (``saved``) to this one, in words."""
    out: list[str] = []
    if saved.get("model") != current.get("model"):
        out.append(f"model {saved.get('model')} != {current.get('model')}")
    if saved.get("phase") != current.get("phase"):
        out.append(f"phase {saved.get('phase')!r} != {current.get('phase')!r}")
    a, b = saved.get("data") or {}, current.get("data") or {}
    if a != b:
        la, lb = (f"{tuple(d.get('shape', ()))} {_dtype_name(d.get('dtype'))}" for d in (a, b))
        if la != lb:
            out.append(f"training data differs (shape {la} != {lb})")
        else:
            out.append(f"training data differs (hash {str(a.get('hash'))[:8]} != {str(b.get('hash'))[:8]})")
    if saved.get("random_state") != current.get("random_state"):
        out.append(f"random_state {saved.get('random_state')!r} != {current.get('random_state')!r}")
    pa, pb = saved.get("params") or {}, current.get("params") or {}
    missing = object()
    for k in sorted({*pa, *pb}):
        va, vb = pa.get(k, missing), pb.get(k, missing)
        if va != vb:
            fa = "<unset>" if va is missing else _short(va)
            fb = "<unset>" if vb is missing else _short(vb)
            out.append(f"{k} {fa} != {fb}")
    return out


__all__ = ["data_fingerprint", "differences", "phase_length_params", "run_key"]
