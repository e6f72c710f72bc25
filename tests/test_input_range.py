"""One input convention for images: uint8 in [0, 255] or float in [0, 1]; any other range is refused."""

import numpy as np
import pytest
import torch

import ganad


@pytest.fixture(scope="module")
def fitted(digits_split):
    return ganad.create("ocsvm", n_components=20).fit(digits_split.train.x)


def test_float_images_in_0_255_are_refused_with_the_fix(fitted, digits_split):
    x = digits_split.test.x[:100]
    with pytest.raises(ValueError, match=r"\[0, 255\].*x / 255"):
        fitted.decision_function(x.astype(np.float32))
    with pytest.raises(ValueError, match=r"x / 255"):
        fitted.predict(torch.from_numpy(x.astype(np.float32)))  # tensors follow the same rule
    ds = torch.utils.data.TensorDataset(torch.from_numpy(x.astype(np.float32)))
    with pytest.raises(ValueError, match=r"x / 255"):
        fitted.decision_function(ds)  # and Datasets
    # the same images, scaled as documented, score as the uint8 ones
    np.testing.assert_allclose(fitted.decision_function(x.astype(np.float32) / 255), fitted.decision_function(x))


def test_out_of_range_floats_are_refused_in_fit():
    x = np.random.default_rng(0).random((40, 8, 8)).astype(np.float32)
    with pytest.raises(ValueError, match=r"\[0, 1\]"):
        ganad.create("kde").fit(x * 1000.0)
    with pytest.raises(ValueError, match=r"\(x \+ 1\) / 2"):
        ganad.create("kde").fit(x * 2 - 1)


def test_stated_value_range_is_applied_and_saved(tmp_path, digits_split):
    x = digits_split.train.x.astype(np.float32)  # 0..255 as floats
    det = ganad.create("ocsvm", n_components=20, value_range=(0, 255)).fit(x)
    ref = ganad.create("ocsvm", n_components=20).fit(digits_split.train.x)
    test = digits_split.test.x[:50]
    np.testing.assert_allclose(det.decision_function(test.astype(np.float32)), ref.decision_function(test))
    det.save(tmp_path / "m.pt")
    loaded = ganad.load(tmp_path / "m.pt")
    assert loaded.value_range == [0, 255] or tuple(loaded.value_range) == (0, 255)
    np.testing.assert_allclose(loaded.decision_function(test.astype(np.float32)), det.decision_function(test.astype(np.float32)))
    with pytest.raises(ValueError, match="outside the stated value_range"):
        det.decision_function(test.astype(np.float32) * 2)
    with pytest.raises(ValueError, match="value_range"):
        ganad.create("kde", value_range=(1, 0)).fit(x)


def test_bool_images_are_zero_and_one_and_wide_ints_are_uint8(fitted, digits_split):
    x = digits_split.test.x[:30]
    mask = x > 127
    np.testing.assert_allclose(fitted.decision_function(mask), fitted.decision_function(mask.astype(np.float32)))
    np.testing.assert_allclose(fitted.decision_function(x.astype(np.int64)), fitted.decision_function(x))
    with pytest.raises(ValueError, match="int64 images with values in"):
        fitted.decision_function(x.astype(np.int64) * 4)
