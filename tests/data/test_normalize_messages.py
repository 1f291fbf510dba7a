"""The normaliser names the cause of non-finite statistics: infinity is not an all-NaN channel."""

import numpy as np
import pytest

import stgeo
from stgeo.data import Normalizer, to_frames
from stgeo.errors import DataValidationError


@pytest.fixture(scope="module")
def frames():
    return to_frames(stgeo.testing.storm_cells(n_times=6, shape=(16, 16), seed=0)).load()


@pytest.mark.parametrize("method", ["standard", "log1p", "minmax"])
@pytest.mark.parametrize("value", [np.inf, -np.inf])
def test_one_infinite_pixel_is_named(frames, method, value):
    bad = frames.copy()
    bad[2, 0, 3, 3] = value
    with pytest.raises(DataValidationError, match="hold infinite values") as info:
        Normalizer(method).fit(bad)
    assert "all-NaN" not in str(info.value)


def test_all_nan_channel_is_named(frames):
    with pytest.raises(DataValidationError, match="all-NaN channel"):
        Normalizer("standard").fit(frames * np.nan)


def test_train_with_one_inf_pixel_names_infinity():
    ds = stgeo.testing.storm_cells(n_times=10, shape=(16, 16), seed=0)
    ds["rain_rate"][2, 3, 3] = np.inf
    with pytest.raises(DataValidationError, match="infinite values"):
        stgeo.train(ds, "convlstm", variable="rain_rate", in_steps=2, out_steps=1, epochs=1,
                    max_steps_per_epoch=1, hidden=2, num_layers=1, precision="fp32",
                    progress=False, batch_size=2)  # fmt: skip
