"""S-PROG (Seed 2003), the operational spectral-prognosis radar nowcast, wrapping pysteps.

The input rain rates (mm/h) are transformed to dBR (threshold 0.1 mm/h, zero value -15 dBR),
the motion is pysteps' Lucas–Kanade optical flow on the input frames, and pysteps' S-PROG
decomposes the last ``ar_order + 1`` frames into ``n_cascade_levels`` spatial scales, evolves
each with an AR(``ar_order``) process (small scales lose their predictability, and their
amplitude, faster) and advects the result; the forecast is transformed back to mm/h (values
under the threshold become 0). These are the settings of the radar protocol in
``specs/evaluation.md`` (6 cascade levels, ``precip_thr`` -10 dBR, the same motion field as
the extrapolation baseline). Pixels advected in from outside the domain get ``fill_value``.
When S-PROG's statistics are undefined for an input (a cascade level without variance, e.g. a
few wet pixels on a tiny grid: pysteps then reports non-finite autocorrelations), the forecast
is the semi-Lagrangian extrapolation of the last frame with the same motion, the limit of
S-PROG in which every scale keeps its amplitude.
Runs on the CPU with numpy whatever the device of the input; needs the ``radar`` extra.

Examples
--------
>>> import torch, stgeo
>>> x = torch.zeros(1, 4, 1, 64, 64)
>>> for t in range(4):
...     x[0, t, 0, 20:36, 10 + 2 * t : 26 + 2 * t] = 5.0
>>> m = stgeo.create_model("sprog", in_steps=4, out_steps=3)
>>> y = m(x)
>>> y.shape, bool((y >= 0).all())
(torch.Size([1, 3, 1, 64, 64]), True)
"""

from __future__ import annotations

import contextlib
import io

import numpy as np
import torch
from torch import nn

from .._optional import import_optional
from ..errors import DataValidationError
from .base import register_model
from .grids import GridRule
from .motion import from_db, lucas_kanade, per_sequence, radar_settings, to_db

__all__ = ["SProg"]


class SProg(nn.Module):
    """pysteps S-PROG nowcast of rain rates in mm/h (see the module docstring).

    Parameters
    ----------
    in_steps, out_steps : int
        Input frames (at least ``ar_order + 1``; all of them feed the motion estimate) and
        forecast frames.
    n_cascade_levels : int
        Spatial scales of the cascade decomposition.
    ar_order : int
        Order of the autoregressive model of each scale.
    precip_thr : float
        dBR value below which a pixel counts as dry in S-PROG's statistics.
    threshold, zerovalue : float
        dB transform: rain rates under ``threshold`` mm/h become ``zerovalue`` dBR.
    fill_value : float
        Value of pixels with no upstream data (advected in from outside the domain).
    """

    def __init__(
        self,
        in_steps: int,
        out_steps: int,
        *,
        n_cascade_levels: int = 6,
        ar_order: int = 2,
        precip_thr: float = -10.0,
        threshold: float = 0.1,
        zerovalue: float = -15.0,
        fill_value: float = 0.0,
    ) -> None:
        super().__init__()
        if ar_order < 1 or in_steps < ar_order + 1:
            raise DataValidationError(
                f"S-PROG with ar_order={ar_order} needs at least {ar_order + 1} input frames, "
                f"got in_steps={in_steps}; use in_steps=4 (the radar protocol) or lower ar_order"
            )
        if n_cascade_levels < 1:
            raise DataValidationError(f"n_cascade_levels must be >= 1, got {n_cascade_levels}")
        self.in_steps = in_steps
        self.out_steps = out_steps
        self.n_cascade_levels = n_cascade_levels
        self.ar_order = ar_order
        self.precip_thr = precip_thr
        self.threshold = threshold
        self.zerovalue = zerovalue
        self.fill_value = fill_value

    def nowcast(self, frames: np.ndarray) -> np.ndarray:
        """S-PROG forecast ``(out_steps, H, W)`` of one sequence ``(T, H, W)`` in mm/h."""
        sprog = import_optional("pysteps.nowcasts.sprog")
        r = np.nan_to_num(np.asarray(frames, dtype=np.float64), nan=0.0)
        shape = (self.out_steps, *r.shape[1:])
        if not np.any(r[-1] >= self.threshold):
            return np.full(shape, self.fill_value, dtype=np.float32)
        db = to_db(r, self.threshold, self.zerovalue)
        velocity = lucas_kanade(db)
        try:
            with contextlib.redirect_stdout(io.StringIO()):  # pysteps prints its settings
                out = sprog.forecast(
                    db[-(self.ar_order + 1) :],
                    velocity,
                    self.out_steps,
                    precip_thr=self.precip_thr,
                    n_cascade_levels=self.n_cascade_levels,
                    ar_order=self.ar_order,
                )
        except (ValueError, np.linalg.LinAlgError):  # undefined AR statistics (see above)
            extrap = import_optional("pysteps.extrapolation.semilagrangian")
            out = extrap.extrapolate(db[-1], velocity, self.out_steps, outval=np.nan)
        rain = from_db(out, self.threshold)
        rain = np.where(np.isfinite(out), rain, self.fill_value)
        return rain.astype(np.float32)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return per_sequence(x, self.out_steps, self.nowcast)


@register_model(
    "sprog",
    aliases=("s-prog",),
    baseline=True,
    settings=radar_settings,
    grid=GridRule(note="FFT cascade and AR statistics over the whole grid; global motion field"),
    description="S-PROG spectral prognosis nowcast (pysteps): cascade + AR(2) + LK motion",
)
def _build_sprog(
    in_steps,
    out_steps,
    channels,
    grid_shape=None,
    n_cascade_levels=6,
    ar_order=2,
    precip_thr=-10.0,
    threshold=0.1,
    zerovalue=-15.0,
    fill_value=0.0,
):
    return SProg(
        in_steps,
        out_steps,
        n_cascade_levels=n_cascade_levels,
        ar_order=ar_order,
        precip_thr=precip_thr,
        threshold=threshold,
        zerovalue=zerovalue,
        fill_value=fill_value,
    )
