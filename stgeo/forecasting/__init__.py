"""Forecasting: windows -> batches -> device -> labelled forecasts (in process or on Dask).

``stgeo.forecast`` (and ``ds.st.forecast``) is :func:`stgeo.forecasting.forecast`. The
package is split by concern: ``api`` (the :func:`forecast` orchestrator), ``resolve`` (what
``model=`` means; the data-model compatibility checks), ``inputs`` (argument checks and the
input windows), ``core`` (the numpy core :func:`forecast_array`, :func:`rollout_offsets` and
the batch job shared by the in-process loop and Dask workers), ``lazy`` (the Dask path) and
``output`` (labelled results, Zarr writing) and ``tiles`` (any-grid application:
:class:`Tiling`, padding to the model's multiple and blended tiles).
"""

from .api import forecast
from .core import forecast_array, rollout_offsets
from .tiles import TilePlan, Tiling, blend_profile

__all__ = ["TilePlan", "Tiling", "blend_profile", "forecast", "forecast_array", "rollout_offsets"]
