"""Forecasting: windows -> batches -> device -> labelled forecasts (in process or on Dask).

``stgeo.forecast`` (and ``ds.st.forecast``) is :func:`stgeo.forecasting.forecast`. The
package is split by concern: ``api`` (the :func:`forecast` orchestrator), ``resolve`` (what
``model=`` means; the data-model compatibility checks), ``inputs`` (argument checks and the
input windows), ``core`` (the numpy core :func:`forecast_array`, :func:`rollout_offsets` and
the batch job shared by the in-process loop and Dask workers), ``lazy`` (the Dask path) and
``output`` (labelled results, Zarr writing).
"""

from .api import forecast
from .core import forecast_array, rollout_offsets

__all__ = ["forecast", "forecast_array", "rollout_offsets"]
