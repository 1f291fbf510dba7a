"""Maps, animations and score plots (matplotlib + cartopy, imported lazily).

* :func:`plot_forecast` — forecast, observation and error side by side per lead time, in the
  data's own projection, with coastlines/borders when map data are on disk.
* :func:`plot_field` — one field on a map; :func:`map_projection` — its cartopy projection.
* :func:`animate_forecast` — a forecast (or observations) as GIF (Pillow) or MP4 (ffmpeg).
* :func:`plot_csi_vs_lead`, :func:`performance_diagram` — score plots from
  :func:`stgeo.metrics.score` results.

Every ``path=`` is checked before drawing (:func:`check_figure_path`): an existing file is
replaced only with ``overwrite=True``, a folder never, and the suffix must name a format.

Examples
--------
>>> import matplotlib
>>> matplotlib.use("Agg")
>>> import stgeo
>>> ds = stgeo.testing.storm_cells(n_times=6, shape=(32, 32), seed=0)
>>> fig = stgeo.plot.plot_forecast(ds.rain_rate, time=["2021-07-04T12:10"])
>>> fig.axes[0].get_title()
'2021-07-04 12:10'
"""

from .animate import animate_forecast
from .files import check_figure_path
from .mapdata import MapData, add_map_features, find_map_data
from .maps import map_projection, plot_field, plot_forecast
from .scores import performance_diagram, plot_csi_vs_lead
from .styles import FieldStyle, error_style, field_style

__all__ = [
    "FieldStyle",
    "MapData",
    "add_map_features",
    "animate_forecast",
    "check_figure_path",
    "error_style",
    "field_style",
    "find_map_data",
    "map_projection",
    "performance_diagram",
    "plot_csi_vs_lead",
    "plot_field",
    "plot_forecast",
]
