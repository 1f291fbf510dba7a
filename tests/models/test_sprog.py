"""The S-PROG baseline is pysteps' S-PROG with the radar protocol's settings."""

import contextlib
import io

import numpy as np
import pytest
import torch

import stgeo
from stgeo.errors import DataValidationError
from stgeo.models.motion import from_db, lucas_kanade, to_db

pytest.importorskip("pysteps")


def _moving_blob(n=4, shape=(64, 80)):
    rng = np.random.default_rng(0)
    yy, xx = np.mgrid[: shape[0], : shape[1]]
    frames = []
    for t in range(n):
        r = 8.0 * np.exp(-(((yy - 30) / 9.0) ** 2 + ((xx - 20 - 3 * t) / 12.0) ** 2))
        frames.append(r + rng.gamma(0.5, 0.2, shape) * (r > 0.5))
    return np.stack(frames).astype(np.float32)


def test_sprog_equals_pysteps_with_the_protocol_settings():
    from pysteps.nowcasts import sprog

    frames = _moving_blob()
    got = stgeo.create_model("sprog", in_steps=4, out_steps=6)(
        torch.from_numpy(frames)[None, :, None]
    )[0, :, 0].numpy()
    db = to_db(frames)
    with contextlib.redirect_stdout(io.StringIO()):
        ref = sprog.forecast(
            db[-3:], lucas_kanade(db), 6, precip_thr=-10.0, n_cascade_levels=6, ar_order=2
        )
    ref = np.where(np.isfinite(ref), from_db(ref), 0.0)
    np.testing.assert_allclose(got, ref, rtol=1e-5, atol=1e-5)
    # the rain moves east with the blob (3 px per step), and S-PROG smooths it
    assert got[-1].argmax() % frames.shape[-1] > frames[-1].argmax() % frames.shape[-1]
    assert got[-1].max() < frames[-1].max()


def test_sprog_dry_input_and_degenerate_statistics():
    m = stgeo.create_model("sprog", in_steps=3, out_steps=2)
    assert float(m(torch.zeros(1, 3, 1, 16, 16)).abs().max()) == 0.0
    x = torch.zeros(1, 3, 1, 9, 13)
    x[0, :, 0, 4, 6] = 3.0  # one wet pixel: S-PROG's autocorrelations are undefined
    y = m(x)
    assert torch.isfinite(y).all() and y.shape == (1, 2, 1, 9, 13)


def test_sprog_needs_enough_inputs():
    with pytest.raises(DataValidationError, match="at least 3 input frames"):
        stgeo.create_model("sprog", in_steps=2, out_steps=2)
