"""Calibration of a model's forecasts by quantile mapping, per lead time and channel.

A model trained on a pixel loss under-forecasts what it cannot place: at long leads a
nowcaster's rain area shrinks (frequency bias well below 1 at 1 mm/h) although the rain
area of the truth does not. **Quantile mapping** (a standard statistical post-processing of
forecasts, e.g. Maraun 2013, *J. Climate* 26, 2137) corrects this systematic error: for each
lead ``l`` and channel ``c`` it learns, on forecasts of the training data, the monotone map
that sends the ``p``-quantile of the forecasts to the ``p``-quantile of the observations,

    ``y = F_obs^-1( F_fc(x) )``,

piecewise linear between the quantiles at :data:`PROBABILITIES` (dense in the upper tail,
where the rain thresholds lie) and shifted by a constant beyond the outermost ones (so a
forecast above every training forecast is not capped). Because the map is monotone it never
moves rain, only rescales its values: the ranking of pixels (and with it the placement of
each forecast's rain) is the model's; the frequency of each threshold becomes the
observed one. Unlike per-case probability matching (the distribution of the last
observation imposed on every lead), it does not invent the rain area a model could not
place, so it keeps the CSI.

The map is fitted by :func:`stgeo.train` (``calibration="quantile"``), stored in the
model's spec (``ModelSpec.calibration``) and applied by every forecast after
de-normalisation. A lead beyond the trained ones (an autoregressive rollout) uses the map
of the last trained lead.

Examples
--------
>>> import numpy as np
>>> rng = np.random.default_rng(0)
>>> obs = rng.gamma(0.5, 2.0, size=(200, 1, 1, 8, 8)).astype("float32")
>>> fc = 0.5 * obs  # a forecast that is right in placement but half the intensity
>>> qm = QuantileMapping.fit(fc, obs, leads=[1])
>>> import torch
>>> out = qm.apply(torch.tensor(fc[:2]), leads=[1])
>>> bool(np.allclose(out.numpy(), obs[:2], rtol=1e-3, atol=1e-3))
True
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from ..errors import DataValidationError

__all__ = ["PROBABILITIES", "QuantileMapping", "QuantileSample"]

#: probability levels of the quantiles: every 1 % up to 0.9, then 300 levels spaced
#: logarithmically in ``1 - p`` down to 1e-4 (the thresholds of rain lie in the tail).
PROBABILITIES: tuple[float, ...] = tuple(
    float(round(p, 8))
    for p in np.concatenate([np.linspace(0.0, 0.9, 91), 1.0 - 10.0 ** -np.linspace(1, 4, 301)[1:]])
)


class QuantileSample:
    """Pairs of forecast and observed values gathered batch by batch for a quantile fit.

    At most ``per_batch`` pixels of each lead and channel are kept per batch (a seeded
    random subset), so memory stays bounded on large grids. Pixels that are NaN in the
    forecast or the observation are left out.

    Examples
    --------
    >>> s = QuantileSample(per_batch=100, seed=0)
    >>> s.add(np.ones((2, 3, 1, 4, 4)), np.ones((2, 3, 1, 4, 4)))
    >>> s.forecast[0].shape  # (leads, channels, kept values)
    (3, 1, 32)
    """

    def __init__(self, per_batch: int = 65536, seed: int = 0) -> None:
        self.per_batch = int(per_batch)
        self.rng = np.random.default_rng(seed)
        self.forecast: list[np.ndarray] = []
        self.observed: list[np.ndarray] = []

    def add(self, pred: Any, obs: Any) -> None:
        """Add a batch ``(B, L, C, ...)`` of forecasts and observations (physical units)."""
        p, o = _by_lead_and_channel(pred), _by_lead_and_channel(obs)
        n = p.shape[-1]
        if n > self.per_batch:
            idx = np.sort(self.rng.choice(n, self.per_batch, replace=False))
            p, o = p[..., idx], o[..., idx]
        self.forecast.append(p)
        self.observed.append(o)

    def quantile_mapping(
        self, leads: Sequence[int], probabilities: Sequence[float] = PROBABILITIES
    ) -> QuantileMapping:
        """The :class:`QuantileMapping` of the values gathered so far."""
        fc = np.concatenate(self.forecast, axis=-1)
        ob = np.concatenate(self.observed, axis=-1)
        return QuantileMapping._from_values(fc, ob, leads, probabilities)


def _by_lead_and_channel(t: Any) -> np.ndarray:
    """float32 numpy ``(L, C, B * pixels)`` of a batch ``(B, L, C, ...)``."""
    if isinstance(t, torch.Tensor):
        t = t.detach().float().cpu().numpy()
    a = np.asarray(t, dtype=np.float32)
    b, n_l, n_c = a.shape[:3]
    return np.moveaxis(a.reshape(b, n_l, n_c, -1), 0, 2).reshape(n_l, n_c, -1)


def _nan_quantiles(v: np.ndarray, probs: np.ndarray) -> np.ndarray:
    """Quantiles of ``v`` (..., N) along the last axis, NaN excluded; (..., P)."""
    return np.moveaxis(np.nanquantile(v, probs, axis=-1), 0, -1)


@dataclass
class QuantileMapping:
    """Per-lead, per-channel monotone maps from forecast values to observed values.

    Attributes
    ----------
    leads : list of int
        The lead (in time steps) of each map, as the model's target offsets.
    probabilities : list of float
        The probability levels of the quantiles.
    forecast, observed : numpy.ndarray
        ``(n_leads, n_channels, n_probabilities)`` quantiles of the forecasts and of the
        observations on the fitting data (physical units).
    """

    leads: list[int]
    probabilities: list[float]
    forecast: np.ndarray
    observed: np.ndarray

    @classmethod
    def fit(
        cls,
        forecast: Any,
        observed: Any,
        leads: Sequence[int],
        probabilities: Sequence[float] = PROBABILITIES,
    ) -> QuantileMapping:
        """Fit from forecasts and observations ``(B, L, C, ...)`` (arrays or tensors); batch
        by batch, use :class:`QuantileSample`.

        Raises
        ------
        DataValidationError
            Shapes that differ, a lead count different from ``len(leads)``, or a lead and
            channel without any pair of valid (non-NaN) values.
        """
        if tuple(forecast.shape) != tuple(observed.shape):
            raise DataValidationError(
                f"forecasts {tuple(forecast.shape)} and observations {tuple(observed.shape)} "
                "differ in shape"
            )
        fc, ob = _by_lead_and_channel(forecast), _by_lead_and_channel(observed)
        return cls._from_values(fc, ob, leads, probabilities)

    @classmethod
    def _from_values(
        cls, fc: np.ndarray, ob: np.ndarray, leads: Sequence[int], probabilities: Sequence[float]
    ) -> QuantileMapping:
        """The maps of values ``(L, C, N)`` of forecasts and observations."""
        if fc.shape[0] != len(leads):
            raise DataValidationError(f"{fc.shape[0]} leads of forecasts for leads {list(leads)}")
        bad = np.isnan(fc) | np.isnan(ob)
        if bad.all(axis=-1).any():
            raise DataValidationError(
                "a lead and channel has no pixel with both a forecast and an observation "
                "(all NaN): quantile mapping cannot be fitted; check the fitting data"
            )
        fc = np.where(bad, np.nan, fc)
        ob = np.where(bad, np.nan, ob)
        probs = np.asarray(probabilities, dtype=np.float64)
        return cls(
            leads=[int(v) for v in leads],
            probabilities=[float(p) for p in probs],
            forecast=_nan_quantiles(fc, probs).astype(np.float32),
            observed=_nan_quantiles(ob, probs).astype(np.float32),
        )

    # -- persistence in the spec ------------------------------------------------------
    def to_dict(self) -> dict[str, Any]:
        """JSON-serialisable form (``ModelSpec.calibration``), 6 significant digits."""

        def rounded(a: np.ndarray) -> list:
            return np.vectorize(lambda v: float(f"{v:.6g}"))(a).tolist()

        return {
            "method": "quantile",
            "leads": list(self.leads),
            "probabilities": list(self.probabilities),
            "forecast": rounded(self.forecast),
            "observed": rounded(self.observed),
        }

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> QuantileMapping:
        """Inverse of :meth:`to_dict`."""
        if d.get("method") != "quantile":
            raise DataValidationError(
                f"unknown calibration method {d.get('method')!r}: this stgeo knows 'quantile'"
            )
        return cls(
            leads=[int(v) for v in d["leads"]],
            probabilities=[float(p) for p in d["probabilities"]],
            forecast=np.asarray(d["forecast"], dtype=np.float32),
            observed=np.asarray(d["observed"], dtype=np.float32),
        )

    # -- application ------------------------------------------------------------------
    def _map_index(self, lead: int) -> int:
        """The map of ``lead``: its own, else the last trained lead before it (or the first)."""
        if lead in self.leads:
            return self.leads.index(lead)
        before = [i for i, v in enumerate(self.leads) if v <= lead]
        return before[-1] if before else 0

    def apply(self, values: torch.Tensor, leads: Sequence[int]) -> torch.Tensor:
        """Calibrated copy of forecasts ``(B, len(leads), C, ...)`` in physical units."""
        if values.shape[2] != self.forecast.shape[1]:
            raise DataValidationError(
                f"the calibration has {self.forecast.shape[1]} channel(s), the forecasts "
                f"{values.shape[2]}"
            )
        out = values.float().clone()
        for j, lead in enumerate(leads):
            i = self._map_index(int(lead))
            for c in range(out.shape[2]):
                out[:, j, c] = _interp(out[:, j, c], self.forecast[i, c], self.observed[i, c])
        return out.to(values.dtype)


def _interp(x: torch.Tensor, xp: np.ndarray, fp: np.ndarray) -> torch.Tensor:
    """Piecewise-linear ``xp -> fp`` (ties in ``xp``: the first knot), shifted beyond."""
    keep = np.concatenate([[True], np.diff(xp) > 0])
    kx = torch.as_tensor(xp[keep], dtype=x.dtype, device=x.device)
    ky = torch.as_tensor(fp[keep], dtype=x.dtype, device=x.device)
    if kx.numel() == 1:  # a constant forecast: shift only
        return x - kx[0] + ky[0]
    i = torch.searchsorted(kx, x.contiguous()).clamp(1, kx.numel() - 1)
    x0, x1, y0, y1 = kx[i - 1], kx[i], ky[i - 1], ky[i]
    y = y0 + (x - x0) * (y1 - y0) / (x1 - x0)
    y = torch.where(x < kx[0], x - kx[0] + ky[0], y)
    return torch.where(x > kx[-1], x - kx[-1] + ky[-1], y)
