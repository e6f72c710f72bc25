import numpy as np
import pytest
import torch

from ganad.data.arrays import as_nchw, flatten, to_unit_float
from ganad.data.transforms import from_model_output, match_channels, model_size, resize, to_model_input


def test_model_size_pads_to_power_of_two():
    assert model_size(28, 28) == 32 and model_size(8, 8) == 8 and model_size(64, 64) == 64 and model_size(5, 5) == 8


def test_to_model_input_scales_and_pads():
    x = np.full((2, 28, 28), 255, np.uint8)
    t = to_model_input(x, size=32)
    assert t.shape == (2, 1, 32, 32) and t.dtype == torch.float32
    assert t[:, :, 2:30, 2:30].eq(1).all() and t[:, :, :2].eq(-1).all()  # image centred, border = black
    back = from_model_output(t, 28, 28)
    assert back.shape == (2, 1, 28, 28) and np.allclose(back, 1.0)


def test_uint8_and_float_inputs_agree():
    rng = np.random.default_rng(0)
    x = rng.integers(0, 256, (3, 8, 8), dtype=np.uint8)
    assert torch.allclose(to_model_input(x), to_model_input(x.astype(np.float32) / 255))


def test_resize_and_channels():
    x = np.zeros((2, 3, 16, 16), np.uint8)
    x[:, 0] = 255
    small = resize(x, 8)
    assert small.shape == (2, 3, 8, 8) and small.dtype == np.uint8 and small[:, 0].min() == 255
    gray = match_channels(x, 1)
    assert gray.shape == (2, 1, 16, 16) and gray.max() == round(0.299 * 255)
    assert match_channels(gray, 3).shape == (2, 3, 16, 16)
    with pytest.raises(ValueError):
        match_channels(np.zeros((1, 2, 4, 4)), 3)


def test_layout_helpers():
    assert as_nchw(np.zeros((2, 5, 5))).shape == (2, 1, 5, 5)
    assert as_nchw(np.zeros((2, 5, 5, 3))).shape == (2, 3, 5, 5)  # channels-last from Pillow
    assert flatten(np.full((2, 4, 4), 255, np.uint8)).max() == 1.0
    with pytest.raises(ValueError, match="uint8"):
        to_unit_float(np.zeros((1, 4, 4), np.int32))
