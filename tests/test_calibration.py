"""threshold_ is calibrated: about ``contamination`` of *new* normal images are flagged, for every model.

The tolerances follow from the calibration set's size.  A held-out (or
cross-fitted) set of n scores gives a conformal threshold that a new normal
exceeds with probability ~c = 0.1, with a spread of about sqrt(c (1 - c) / n):

* digits: ~80 training images per class, so a neural detector calibrates on
  8 held-out scores (spread ~0.1 per class) and the cross-fitted GMM (64
  points in 50 PCA dimensions per fold) is conservative (~0.02).  The test
  bounds the mean over the ten classes from above only: <= 0.25.  Before
  calibration, GMM flagged 100% and OC-SVM 64% of the held-out normals.
* Fashion-MNIST, 1,000 training images of a class: 100 calibration scores
  (spread ~0.03), mean over two classes within 0.1 +- 0.07.
"""

import numpy as np
import pytest

import ganad
from ganad import datasets
from ganad.bench.calibration import flagged_share

from conftest import needs_fmnist

MODELS = ganad.available_models()


@pytest.fixture(scope="module")
def digit_splits():
    return [datasets.digits(protocol="one-class", normal_class=c, random_state=0) for c in range(10)]


@pytest.mark.parametrize("name", MODELS)
def test_digits_new_normals_are_not_over_flagged(name, digit_splits):
    shares = [flagged_share(name, s.train.x, s.test.x[s.test.y == 0])["calibrated"] for s in digit_splits]
    assert np.mean(shares) <= 0.25, f"{name}: flags {np.mean(shares):.3f} of new normals at contamination 0.1"


@needs_fmnist
@pytest.mark.parametrize("name", MODELS)
def test_fashion_mnist_flags_about_contamination_of_new_normals(name):
    shares = []
    for c in (0, 7):
        s = datasets.fashion_mnist(protocol="one-class", normal_class=c, random_state=0, train_subset=1000)
        shares.append(flagged_share(name, s.train.x, s.test.x[s.test.y == 0])["calibrated"])
    assert abs(np.mean(shares) - 0.1) <= 0.07, f"{name}: flags {np.mean(shares):.3f} of new normals"


def test_threshold_is_the_conformal_quantile_of_held_out_scores(digit_splits):
    det = ganad.create("dcae", epochs=1, width=8, nz=8, batch_size=32, device="cpu").fit(digit_splits[0].train.x)
    fit_part, held_out = det._calibration_split(digit_splits[0].train.x)
    assert len(held_out) == round(0.1 * len(digit_splits[0].train.x)) and len(fit_part) + len(held_out) == 80
    np.testing.assert_allclose(det.calibration_scores_, det.decision_function(held_out), rtol=1e-6)
    assert det.threshold_ == det.calibration_scores_.max()  # ceil(0.9 * 9) = 9th of 8: the largest
