"""Optical-flow extrapolation nowcast (the radar baseline), wrapping pysteps.

Motion is estimated with pysteps' Lucas–Kanade method on the input frames transformed to
dB (threshold 0.1, zero value -15 dB, as in pysteps' examples), and the last observed
frame is advected with pysteps' semi-Lagrangian scheme. Pixels advected in from outside
the domain get ``fill_value`` (0 mm/h by default). Runs on the CPU with numpy whatever
the device of the input; needs the ``radar`` extra (pysteps, opencv-python-headless).

Examples
--------
>>> import torch, stgeo
>>> x = torch.zeros(1, 4, 1, 32, 32)
>>> x[:, :, :, 10:16, 8:14] = 5.0
>>> m = stgeo.create_model("extrapolation", in_steps=4, out_steps=3)
>>> m(x).shape
torch.Size([1, 3, 1, 32, 32])
"""

from __future__ import annotations

import numpy as np
import torch
from torch import nn

from .._optional import import_optional
from .base import register_model
from .grids import GridRule
from .motion import lucas_kanade, per_sequence, radar_settings, to_db

__all__ = ["Extrapolation"]


class Extrapolation(nn.Module):
    """Lucas–Kanade motion + semi-Lagrangian advection of the last frame (pysteps)."""

    def __init__(
        self,
        out_steps: int,
        threshold: float = 0.1,
        zerovalue: float = -15.0,
        fill_value: float = 0.0,
    ) -> None:
        super().__init__()
        self.out_steps = out_steps
        self.threshold = threshold
        self.zerovalue = zerovalue
        self.fill_value = fill_value

    def _one(self, frames: np.ndarray) -> np.ndarray:
        extrap = import_optional("pysteps.extrapolation.semilagrangian")
        r = np.nan_to_num(frames.astype(np.float64), nan=0.0)
        if not np.any(r >= self.threshold):
            return np.full((self.out_steps, *r.shape[1:]), self.fill_value, dtype=np.float32)
        velocity = lucas_kanade(to_db(r, self.threshold, self.zerovalue))
        out = extrap.extrapolate(r[-1], velocity, self.out_steps, outval=np.nan)
        out = np.where(np.isfinite(out), out, self.fill_value)
        return out.astype(np.float32)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return per_sequence(x, self.out_steps, self._one)


@register_model(
    "extrapolation",
    aliases=("lk-extrapolation", "optical-flow"),
    baseline=True,
    settings=radar_settings,
    grid=GridRule(note="Lucas-Kanade vectors interpolated over the whole domain"),
    description="Lucas-Kanade optical flow + semi-Lagrangian extrapolation (pysteps)",
)
def _build_extrapolation(
    in_steps, out_steps, channels, grid_shape=None, threshold=0.1, zerovalue=-15.0, fill_value=0.0
):
    return Extrapolation(out_steps, threshold=threshold, zerovalue=zerovalue, fill_value=fill_value)
