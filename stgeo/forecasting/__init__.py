"""Forecasting: windows -> batches -> device -> labelled forecasts (in process or on Dask).

``stgeo.forecast`` (and ``ds.st.forecast``) is :func:`stgeo.forecasting.forecast`.
"""

from .api import forecast, forecast_array, rollout_offsets

__all__ = ["forecast", "forecast_array", "rollout_offsets"]
