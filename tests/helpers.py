"""What the per-model test files share: their data and fit fixtures and three checks.

The checks every model must pass (save/load, batch independence, bad input,
determinism, resume) are in test_model_contract.py; these helpers serve the
method-specific tests, which measure each model on real data at its own settings.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest
import torch
from sklearn.metrics import roc_auc_score

from conftest import digit_case


def digits_fixture(normal: int) -> Any:
    """A module-scoped ``digits`` fixture: :func:`conftest.digit_case` of the digit ``normal``
    (train normals, test images, test labels); in a test file, ``digits = digits_fixture(5)``."""

    @pytest.fixture(scope="module")
    def digits() -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        return digit_case(normal)

    return digits


def fitted_fixture(cls: type, params: dict[str, Any]) -> Any:
    """A module-scoped ``fitted`` fixture: ``cls(**params)`` fitted on the ``digits`` fixture's
    training images, shared by a file's tests (no test may change it; copy it first)."""

    @pytest.fixture(scope="module")
    def fitted(digits: tuple[np.ndarray, np.ndarray, np.ndarray]) -> Any:
        return cls(**params).fit(digits[0])

    return fitted


def assert_parts(parts: dict[str, np.ndarray], names: set[str], n: int, non_negative: bool = False) -> None:
    """A model's ``score_parts`` of ``n`` images are exactly ``names``, each ``n`` finite
    scores (and none negative with ``non_negative``)."""
    assert set(parts) == set(names)
    for k, v in parts.items():
        assert v.shape == (n,) and np.isfinite(v).all(), k
        assert not non_negative or (v >= 0).all(), k


def assert_separates(
    fitted: Any, params: dict[str, Any], digits: tuple[np.ndarray, np.ndarray, np.ndarray],
    floor: float, margin: float, part: str | None = None,
) -> None:
    """The test AUROC of ``fitted`` (``decision_function``, or the score part ``part``) is at
    least ``floor`` and at least ``margin`` above that of the same settings untrained
    (``params`` with epochs=0): neither a score with the wrong sign nor the nets'
    initial weights can pass.  The floors are measured in each model's file."""
    train, test, labels = digits
    untrained = type(fitted)(**{**params, "epochs": 0}).fit(train)

    def auroc(det: Any) -> float:
        return roc_auc_score(labels, det.decision_function(test) if part is None else det.score_parts(test)[part])

    got, base = auroc(fitted), auroc(untrained)
    what = f"{fitted.name}{'' if part is None else ' ' + part}"
    assert got >= floor, f"{what}: AUROC {got:.3f}"
    assert got >= base + margin, f"{what}: AUROC {got:.3f} vs {base:.3f} untrained"


def assert_scoring_leaves_nets_alone(det: Any, x: np.ndarray) -> None:
    """Scoring ``x`` twice, the second time under ``torch.inference_mode`` (the latent searches
    turn gradients back on for themselves), gives identical score parts and leaves every
    weight and buffer of ``det.nets_`` as it was (no BatchNorm update, no spectral-norm
    power iteration), no gradient behind and every module in eval mode."""
    for p in det.nets_.parameters():
        p.grad = None  # the last training step's gradients
    before = {k: v.clone() for k, v in det.nets_.state_dict().items()}
    a = det.score_parts(x)
    with torch.inference_mode():
        b = det.score_parts(x)
    assert set(a) == set(b)
    for k in a:
        np.testing.assert_array_equal(a[k], b[k], err_msg=k)
    after = det.nets_.state_dict()
    assert all(torch.equal(before[k], after[k]) for k in before)
    assert all(p.grad is None for p in det.nets_.parameters())
    assert not any(m.training for m in det.nets_.modules())
