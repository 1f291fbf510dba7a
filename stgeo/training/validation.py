"""Validation scores of a training run, with the rules and formulas of :mod:`stgeo.metrics`.

Over the validation batches (and across ranks) the run sums, in physical units, the
squared errors and their pixel count and the contingency counts of
:func:`stgeo.metrics.contingency.count_table`. A pixel that is NaN in the forecast or the
observation is excluded from both; an event is ``value >= threshold``. From the sums:

* ``mse`` = sum of squared errors / number of pixels (NaN without pixels), as
  :func:`stgeo.metrics.mse`;
* ``csi`` per threshold and ``csi_m`` from :class:`stgeo.metrics.ContingencyTable`:
  H / (H + M + F), NaN where H + M + F = 0, and the mean over thresholds, NaN when any
  threshold's CSI is NaN (as :func:`stgeo.metrics.csi_m`).

Examples
--------
>>> import torch
>>> sums = ValidationSums([1.0], torch.device("cpu"))
>>> sums.add(torch.tensor([0.0, 2.0, 3.0, 0.5]), torch.tensor([0.0, 2.5, float("nan"), 1.0]))
>>> res = sums.result()
>>> res["csi"], res["csi_m"], round(res["mse"], 4)
([0.5], 0.5, 0.1667)
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch

from ..metrics.contingency import ContingencyTable, count_table

__all__ = ["ValidationSums"]


class ValidationSums:
    """Sums of squared errors and contingency counts, kept on ``device``; mergeable."""

    def __init__(self, thresholds: Sequence[float], device: Any):
        self.thresholds = [float(t) for t in thresholds]
        self.sse = torch.zeros((), dtype=torch.float64, device=device)
        self.n = torch.zeros((), dtype=torch.int64, device=device)
        self.counts = torch.zeros((len(self.thresholds), 4), dtype=torch.int64, device=device)

    def add(self, pred: torch.Tensor, obs: torch.Tensor) -> None:
        """Add a batch of forecasts and observations (physical units)."""
        pred = pred.float()
        obs = obs.float()
        ok = (pred == pred) & (obs == obs)  # NaN in either field: excluded
        d = torch.where(ok, pred - obs, torch.zeros((), device=pred.device))
        self.sse += (d * d).sum().double()
        self.n += ok.sum()
        if self.thresholds:
            self.counts += count_table(pred, obs, self.thresholds)

    def reduce(self, dist: Any) -> None:
        """Sum across ranks (``dist`` a :class:`~stgeo.training.distributed.Distributed`)."""
        if dist is None:
            return
        for t in (self.sse, self.n, self.counts):
            dist.all_reduce(t)

    def result(self) -> dict[str, Any]:
        """``{"mse": ..., "csi": [...], "csi_m": ...}`` (CSI only with thresholds)."""
        n = int(self.n)
        out: dict[str, Any] = {"mse": float(self.sse) / n if n else float("nan")}
        if self.thresholds:
            table = ContingencyTable.from_counts(self.counts.cpu().numpy(), self.thresholds)
            out["csi"] = [float(c) for c in table.csi().values]
            out["csi_m"] = float(table.csi_m().values)
        return out
