"""The ``.st`` accessors on xarray Dataset and DataArray.

Each method is a one-line forward to a free function; the documentation lives there.

Examples
--------
>>> import stgeo
>>> ds = stgeo.testing.storm_cells(n_times=10, shape=(32, 32), seed=0)
>>> fc = ds.st.forecast(model="persistence", lead_steps=3)
>>> fc.sizes["lead_time"]
3
"""

from __future__ import annotations

from typing import Any

import xarray as xr

__all__ = ["DataArrayAccessor", "DatasetAccessor"]


class _Base:
    def __init__(self, obj: xr.Dataset | xr.DataArray) -> None:
        self._obj = obj

    def validate(self, **kwargs: Any) -> Any:
        """Check the canonical data model: :func:`stgeo.validate`."""
        from .conventions import validate

        return validate(self._obj, **kwargs)

    def forecast(self, model: Any = "persistence", **kwargs: Any) -> Any:
        """Forecast from this data: :func:`stgeo.forecast`."""
        from .forecasting import forecast

        return forecast(self._obj, model, **kwargs)

    def train(self, model: str | None = None, **kwargs: Any) -> Any:
        """Train a model on this data (``simvp`` unless told; ``init=`` fine-tunes a trained
        or pretrained model): :func:`stgeo.train`."""
        from .training import train

        return train(self._obj, model=model, **kwargs)

    def windows(self, variables: Any = None, **kwargs: Any) -> Any:
        """Lazy (input, target) windows: :class:`stgeo.data.Windows` of the frames."""
        from .data import Windows, to_frames

        return Windows(to_frames(self._obj, variables), **kwargs)

    def score(self, obs: Any, **kwargs: Any) -> xr.Dataset:
        """Score this forecast against observations: :func:`stgeo.metrics.score`."""
        from .metrics import score

        return score(self._obj, obs, **kwargs)

    def plot(self, obs: Any = None, **kwargs: Any) -> Any:
        """Map of a forecast (and optionally observations, also as the first positional
        argument): :func:`stgeo.plot.plot_forecast`."""
        from .plot import plot_forecast

        return plot_forecast(self._obj, obs, **kwargs)


@xr.register_dataset_accessor("st")
class DatasetAccessor(_Base):
    """``ds.st``: stgeo methods on a Dataset (validate, windows, train, forecast, score, plot)."""


@xr.register_dataarray_accessor("st")
class DataArrayAccessor(_Base):
    """``da.st``: stgeo methods on a DataArray (validate, windows, train, forecast, score, plot)."""
