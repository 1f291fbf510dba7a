"""Colour maps and scales suited to the plotted variable.

* Rain rate / precipitation (``mm h-1``, ``mm``; ``standard_name`` ``rainfall_rate`` and
  friends; names containing ``rain``/``precip``): discrete levels 0.1, 0.5, 1, 2, 5, 10, 20,
  50, 100 with a :class:`~matplotlib.colors.BoundaryNorm`; dry pixels (below the first
  level) and missing values are transparent.
* Radar reflectivity (``dBZ``): discrete 5 dBZ levels from 5 to 70, weaker echoes transparent.
* SEVIR VIL (``vil``, digital levels 0-255): discrete levels through the SEVIR thresholds
  16, 74, 133, 160, 181, 219 with the rain colours; below 16 transparent.
* Infrared brightness temperature (``ir069``/``ir107``, or ``K`` with a brightness-temperature
  name): grey scale, cold clouds white; visible reflectance (``vis``): grey scale.
* Anything else: a continuous colour map with robust limits (1st-99th percentile) shared
  by forecast and observation; diverging and centred on zero when the data change sign.
* Forecast errors: a diverging colour map centred on zero with symmetric limits.

Examples
--------
>>> import numpy as np, xarray as xr
>>> da = xr.DataArray(np.zeros((2, 2)), dims=("y", "x"), attrs={"units": "mm h-1"})
>>> field_style(da).kind
'precipitation'
>>> field_style(da).levels[:3]
(0.1, 0.5, 1.0)
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

__all__ = [
    "RAIN_COLORS",
    "RAIN_LEVELS",
    "FieldStyle",
    "error_style",
    "field_style",
    "is_precipitation",
]

#: Rain-rate class boundaries in mm/h; below the first is "dry" (transparent).
RAIN_LEVELS: tuple[float, ...] = (0.1, 0.5, 1.0, 2.0, 5.0, 10.0, 20.0, 50.0, 100.0)
#: One colour per class between consecutive levels, then the colour above the last level.
RAIN_COLORS: tuple[str, ...] = (
    "#c6dbef",  # 0.1 - 0.5  drizzle: pale blue
    "#6baed6",  # 0.5 - 1
    "#2171b5",  # 1 - 2     dark blue
    "#41ab5d",  # 2 - 5     green
    "#fed976",  # 5 - 10    yellow
    "#fd8d3c",  # 10 - 20   orange
    "#e31a1c",  # 20 - 50   red
    "#c51b8a",  # 50 - 100  magenta
    "#54278f",  # > 100     purple
)
DBZ_LEVELS: tuple[float, ...] = tuple(float(v) for v in range(5, 75, 5))
#: SEVIR VIL digital levels (0-255): the six scoring thresholds 16, 74, 133, 160, 181, 219
#: plus intermediate classes; below 16 is transparent. Drawn with :data:`RAIN_COLORS`.
VIL_LEVELS: tuple[float, ...] = (16.0, 31.0, 59.0, 74.0, 100.0, 133.0, 160.0, 181.0, 219.0)

_PRECIP_STANDARD_NAMES = {
    "rainfall_rate",
    "rainfall_amount",
    "precipitation_amount",
    "precipitation_flux",
    "lwe_precipitation_rate",
    "lwe_thickness_of_precipitation_amount",
    "thickness_of_rainfall_amount",
    "convective_precipitation_rate",
}
_PRECIP_UNITS = {"mm h-1", "mm/h", "mm h**-1", "mm hr-1", "mm/hr", "mm hour-1", "mm", "mm h^-1"}


@dataclass
class FieldStyle:
    """How to colour one variable: colour map, normalisation and colour-bar settings.

    Attributes
    ----------
    kind : str
        ``"precipitation"``, ``"reflectivity"``, ``"vil"``, ``"brightness_temperature"``,
        ``"reflectance"``, ``"levels"``, ``"continuous"`` or ``"error"``.
    cmap : matplotlib.colors.Colormap
        The colour map (``set_bad``/``set_under`` transparent where dry pixels should vanish).
    norm : matplotlib.colors.Normalize
        Maps data values to ``[0, 1]`` (a ``BoundaryNorm`` for discrete levels).
    levels : tuple of float or None
        Discrete class boundaries, if any.
    extend : str
        Colour-bar ``extend`` argument.
    label : str
        Colour-bar label (long name and units).
    dry : float or None
        Values below this are transparent (discrete styles).
    """

    kind: str
    cmap: Any
    norm: Any
    levels: tuple[float, ...] | None = None
    extend: str = "neither"
    label: str = ""
    dry: float | None = None

    @property
    def vmin(self) -> float:
        """Lower end of the colour scale."""
        return float(self.norm.vmin)

    @property
    def vmax(self) -> float:
        """Upper end of the colour scale."""
        return float(self.norm.vmax)

    def colorbar_kwargs(self) -> dict[str, Any]:
        """Keyword arguments for ``Figure.colorbar`` matching this style."""
        kw: dict[str, Any] = {"extend": self.extend, "label": self.label}
        if self.levels is not None:
            kw["ticks"] = list(self.levels)
            kw["spacing"] = "uniform"
        return kw


def _attr(da: Any, key: str) -> str:
    return str(getattr(da, "attrs", {}).get(key, "") or "")


def _units(da: Any) -> str:
    return _attr(da, "units").strip()


def label_of(da: Any) -> str:
    """Colour-bar label ``"long name [units]"`` of a DataArray."""
    name = _attr(da, "long_name") or str(getattr(da, "name", "") or "value")
    u = _units(da)
    return f"{name} [{u}]" if u else name


def is_precipitation(da: Any) -> bool:
    """Whether ``da`` looks like a precipitation rate or amount in millimetres.

    Examples
    --------
    >>> import xarray as xr
    >>> is_precipitation(xr.DataArray(0.0, name="rain_rate", attrs={"units": "mm h-1"}))
    True
    >>> is_precipitation(xr.DataArray(0.0, name="t2m", attrs={"units": "K"}))
    False
    """
    std = _attr(da, "standard_name").lower()
    units = " ".join(_units(da).lower().split())
    name = str(getattr(da, "name", "") or "").lower()
    if std in _PRECIP_STANDARD_NAMES:
        return units in _PRECIP_UNITS or units == ""
    if units in _PRECIP_UNITS:
        return True
    return units == "" and any(k in name for k in ("rain", "precip"))


def _transparent_cmap(colors: Sequence[str], name: str) -> Any:
    from matplotlib.colors import ListedColormap

    clear = (0.0, 0.0, 0.0, 0.0)
    return ListedColormap(list(colors[:-1]), name=name).with_extremes(
        over=colors[-1], under=clear, bad=clear
    )


def _discrete(
    kind: str, levels: Sequence[float], colors: Sequence[str] | None, cmap: Any, label: str
) -> FieldStyle:
    import matplotlib as mpl
    from matplotlib.colors import BoundaryNorm, ListedColormap

    levels = tuple(float(v) for v in levels)
    if len(levels) < 2 or np.any(np.diff(levels) <= 0):
        from ..errors import DataValidationError

        raise DataValidationError(
            f"levels must be at least two increasing numbers, got {list(levels)}"
        )
    n = len(levels)  # n - 1 classes between levels, plus one colour above the last
    if colors is None:
        base = mpl.colormaps[cmap] if isinstance(cmap, str) else cmap
        if base is None:
            base = mpl.colormaps["viridis"]
        colors = [base(i / max(n - 1, 1)) for i in range(n)]
    if len(colors) != n:
        colors = [ListedColormap(list(colors))(i / max(n - 1, 1)) for i in range(n)]
    cm = _transparent_cmap(list(colors), f"stgeo_{kind}")
    norm = BoundaryNorm(levels, ncolors=cm.N, clip=False)
    return FieldStyle(kind, cm, norm, levels, "max", label, dry=levels[0])


def _robust_limits(values: Sequence[np.ndarray]) -> tuple[float, float]:
    finite = [np.asarray(v, dtype=float).ravel() for v in values]
    finite = [v[np.isfinite(v)] for v in finite]
    allv = np.concatenate(finite) if finite else np.zeros(0)
    if allv.size == 0:
        return 0.0, 1.0
    lo, hi = np.percentile(allv, [1.0, 99.0])
    if hi <= lo:
        lo, hi = float(allv.min()), float(allv.max())
    if hi <= lo:
        pad = abs(lo) * 0.1 or 1.0
        lo, hi = lo - pad, hi + pad
    if lo >= 0 and lo < 0.1 * hi:
        lo = 0.0
    return float(lo), float(hi)


def _named_discrete_style(da: Any, units: str, name: str, label: str) -> FieldStyle | None:
    """The discrete style of a variable recognised by name/units (rain, dBZ, VIL), or None."""
    if is_precipitation(da):
        return _discrete("precipitation", RAIN_LEVELS, RAIN_COLORS, None, label)
    if units == "dbz":
        return _discrete("reflectivity", DBZ_LEVELS, None, "turbo", label)
    if name == "vil" and units in ("", "1"):
        return _discrete("vil", VIL_LEVELS, RAIN_COLORS, None, label)
    return None


def _continuous_kind(
    units: str, name: str, std: str, lo: float, hi: float
) -> tuple[str, str, float, float]:
    """``(kind, default colour map, lo, hi)`` of a continuous style (limits symmetric if signed)."""
    if (units in ("k", "1", "") and name.startswith("ir")) or (
        units == "k" and ("brightness" in std or "brightness" in name or name == "bt")
    ):
        # infrared: cold (high) clouds white
        return "brightness_temperature", "Greys", lo, hi
    if name == "vis" or "reflectance" in std:
        return "reflectance", "gray", lo, hi
    if units in {"k", "degc", "celsius", "°c", "deg_c"} or "temperature" in std:
        return "continuous", "RdYlBu_r", lo, hi
    if lo < 0 < hi:
        m = max(abs(lo), abs(hi))
        return "continuous", "RdBu_r", -m, m
    return "continuous", "viridis", lo, hi


def field_style(
    da: Any,
    values: Sequence[np.ndarray] | None = None,
    *,
    cmap: Any = None,
    levels: Sequence[float] | None = None,
    vmin: float | None = None,
    vmax: float | None = None,
) -> FieldStyle:
    """Choose a colour map and scale for a variable.

    Parameters
    ----------
    da : xarray.DataArray
        The variable (its ``name``, ``units``, ``standard_name`` and ``long_name`` decide the
        style).
    values : list of numpy.ndarray, optional
        The fields that will be drawn with this style (forecast and observation), used for
        shared robust limits of continuous styles. Default: ``da``'s values.
    cmap : str or Colormap, optional
        Override the colour map.
    levels : sequence of float, optional
        Discrete class boundaries (values below the first are transparent).
    vmin, vmax : float, optional
        Limits of a continuous scale.

    Returns
    -------
    FieldStyle

    Examples
    --------
    >>> import numpy as np, xarray as xr
    >>> t = xr.DataArray(np.array([[270.0, 280.0]]), dims=("y", "x"), name="t2m",
    ...                  attrs={"units": "K"})
    >>> s = field_style(t, vmin=260, vmax=290)
    >>> s.kind, s.vmin, s.vmax
    ('continuous', 260.0, 290.0)
    """
    import matplotlib as mpl
    from matplotlib.colors import Normalize

    label = label_of(da)
    units = _units(da).lower()
    name = str(getattr(da, "name", "") or "").lower()
    std = _attr(da, "standard_name").lower()
    if levels is not None:
        return _discrete("levels", levels, None, cmap or "viridis", label)
    if vmin is None and vmax is None and cmap is None:
        named = _named_discrete_style(da, units, name, label)
        if named is not None:
            return named
    if values is None:
        values = [np.asarray(da.values)] if hasattr(da, "values") else []
    lo, hi = _robust_limits(values)
    kind, default_cmap, lo, hi = _continuous_kind(units, name, std, lo, hi)
    lo = lo if vmin is None else float(vmin)
    hi = hi if vmax is None else float(vmax)
    if hi <= lo:
        hi = lo + 1.0
    cm = mpl.colormaps[cmap] if isinstance(cmap, str) else cmap
    if cm is None:
        cm = mpl.colormaps[default_cmap]
    cm = cm.with_extremes(bad=(0.0, 0.0, 0.0, 0.0))
    return FieldStyle(kind, cm, Normalize(lo, hi), None, "both", label)


def error_style(
    errors: Sequence[np.ndarray],
    *,
    label: str = "forecast - observed",
    limit: float | None = None,
    cmap: Any = "RdBu_r",
) -> FieldStyle:
    """Diverging style centred on zero for forecast-minus-observation fields.

    Parameters
    ----------
    errors : list of numpy.ndarray
        The error fields to be drawn (their 99th percentile of ``|error|`` sets the limit).
    label : str
        Colour-bar label.
    limit : float, optional
        Symmetric limit (``-limit`` to ``+limit``).
    cmap : str or Colormap
        A diverging colour map.

    Examples
    --------
    >>> import numpy as np
    >>> s = error_style([np.array([-2.0, 0.0, 1.0])], limit=3.0)
    >>> s.vmin, s.vmax
    (-3.0, 3.0)
    """
    import matplotlib as mpl
    from matplotlib.colors import Normalize

    if limit is None:
        vals = [np.abs(np.asarray(e, dtype=float)).ravel() for e in errors]
        vals = [v[np.isfinite(v)] for v in vals]
        allv = np.concatenate(vals) if vals else np.zeros(0)
        limit = float(np.percentile(allv, 99.0)) if allv.size else 1.0
        if not limit > 0:
            limit = float(allv.max()) if allv.size and allv.max() > 0 else 1.0
    cm = mpl.colormaps[cmap] if isinstance(cmap, str) else cmap
    cm = cm.with_extremes(bad=(0.0, 0.0, 0.0, 0.0))
    return FieldStyle("error", cm, Normalize(-limit, limit), None, "both", label)
