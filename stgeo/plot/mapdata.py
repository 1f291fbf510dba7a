"""Coastlines and borders from map data already on disk (never downloaded).

Searched, in order, under each data directory:

* Natural Earth shapefiles in cartopy's layout
  (``shapefiles/natural_earth/physical/ne_{10m,50m,110m}_coastline.shp`` and
  ``shapefiles/natural_earth/cultural/ne_*_admin_0_boundary_lines_land.shp``), or the same
  files directly in the directory or one sub-folder down (an unpacked Natural Earth zip);
* GSHHS coastlines (``shapefiles/gshhs/{f,h,i,l,c}/GSHHS_?_L1.shp``), as shipped by Debian's
  ``python-cartopy-data`` package in ``/usr/share/cartopy/data``.

The directories are: an explicit ``map_data_dir`` if given (then only that one), else the
``STGEO_MAP_DATA`` environment variable, cartopy's ``pre_existing_data_dir`` and
``data_dir``, and the system folders ``/usr/share/cartopy/data`` and
``/usr/local/share/cartopy/data``. When nothing is found the map is drawn without
coastlines/borders and the reason is logged (logger ``stgeo.plot``).

Examples
--------
>>> md = find_map_data("/nonexistent")
>>> md.coastline is None, md.borders is None
(True, True)
"""

from __future__ import annotations

import functools
import logging
import os
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

__all__ = ["MapData", "add_map_features", "find_map_data"]

logger = logging.getLogger("stgeo.plot")

SYSTEM_DIRS = ("/usr/share/cartopy/data", "/usr/local/share/cartopy/data")
NE_RESOLUTIONS = ("10m", "50m", "110m")
GSHHS_SCALES = ("f", "h", "i", "l", "c")
_HOW_TO = (
    "install Debian's 'python-cartopy-data' package (GSHHS coastlines in "
    "/usr/share/cartopy/data), or put Natural Earth shapefiles under "
    "cartopy.config['data_dir'] / 'shapefiles/natural_earth', or point STGEO_MAP_DATA "
    "(or map_data_dir=) at a folder holding them"
)
_logged: set[str] = set()


@dataclass
class MapData:
    """Offline map data found for a map.

    Attributes
    ----------
    coastline : Path or None
        Shapefile with coastlines (Natural Earth lines or GSHHS polygons).
    coastline_source : str
        ``"natural_earth_10m"``, ``"gshhs_c"``, ... or ``""``.
    borders : Path or None
        Natural Earth land boundaries between countries.
    searched : list of Path
        The directories that were searched.
    """

    coastline: Path | None = None
    coastline_source: str = ""
    borders: Path | None = None
    borders_source: str = ""
    searched: list[Path] = field(default_factory=list)


def _search_dirs(map_data_dir: str | os.PathLike | None) -> list[Path]:
    if map_data_dir is not None:
        return [Path(map_data_dir)]
    dirs: list[Path] = []
    env = os.environ.get("STGEO_MAP_DATA")
    if env:
        dirs.extend(Path(p) for p in env.split(os.pathsep) if p)
    try:
        import cartopy

        for key in ("pre_existing_data_dir", "data_dir"):
            val = cartopy.config.get(key)
            if val and str(val) not in ("", "."):
                dirs.append(Path(val))
    except ImportError:  # pragma: no cover - cartopy is a core dependency
        pass
    dirs.extend(Path(d) for d in SYSTEM_DIRS)
    out: list[Path] = []
    for d in dirs:
        if d not in out:
            out.append(d)
    return out


def _ne_candidates(root: Path, category: str, stem: str) -> list[Path]:
    return [
        root / "shapefiles" / "natural_earth" / category / f"{stem}.shp",
        root / f"{stem}.shp",
        root / stem / f"{stem}.shp",
        root / category / f"{stem}.shp",
    ]


def _resolution_order(span_deg: float | None) -> tuple[tuple[str, ...], tuple[str, ...]]:
    """Preferred Natural Earth resolutions and GSHHS scales for a domain this wide."""
    if span_deg is None or span_deg > 60:
        return ("110m", "50m", "10m"), ("c", "l", "i", "h", "f")
    if span_deg > 15:
        return ("50m", "110m", "10m"), ("l", "i", "c", "h", "f")
    return ("10m", "50m", "110m"), ("h", "i", "f", "l", "c")


def find_map_data(
    map_data_dir: str | os.PathLike | None = None, *, span_deg: float | None = None
) -> MapData:
    """Find coastline and border shapefiles on disk for a map ``span_deg`` degrees wide.

    Parameters
    ----------
    map_data_dir : path, optional
        Search only this folder (default: ``STGEO_MAP_DATA``, cartopy's data folders and
        the Debian folder ``/usr/share/cartopy/data``).
    span_deg : float, optional
        Width of the map in degrees; picks the finest sensible resolution.

    Returns
    -------
    MapData

    Examples
    --------
    >>> md = find_map_data()
    >>> isinstance(md.searched, list)
    True
    """
    dirs = _search_dirs(map_data_dir)
    ne_order, gshhs_order = _resolution_order(span_deg)
    md = MapData(searched=dirs)
    existing = [d for d in dirs if d.is_dir()]
    for res in ne_order:
        for d in existing:
            for p in _ne_candidates(d, "physical", f"ne_{res}_coastline"):
                if md.coastline is None and p.is_file():
                    md.coastline, md.coastline_source = p, f"natural_earth_{res}"
            for p in _ne_candidates(d, "cultural", f"ne_{res}_admin_0_boundary_lines_land"):
                if md.borders is None and p.is_file():
                    md.borders, md.borders_source = p, f"natural_earth_{res}"
    if md.coastline is None:
        for scale in gshhs_order:
            for d in existing:
                for p in (
                    d / "shapefiles" / "gshhs" / scale / f"GSHHS_{scale}_L1.shp",
                    d / "gshhs" / scale / f"GSHHS_{scale}_L1.shp",
                    d / f"GSHHS_{scale}_L1.shp",
                ):
                    if md.coastline is None and p.is_file():
                        md.coastline, md.coastline_source = p, f"gshhs_{scale}"
    return md


class _QuietShapefile(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:  # pyshp complains about GSHHS rings
        return "Possible issue encountered" not in record.getMessage()


@functools.lru_cache(maxsize=16)
def _load_geometries(path: str, mtime: float) -> tuple[Any, ...]:
    import cartopy.io.shapereader as shpreader

    shp_logger = logging.getLogger("shapefile")
    filt = _QuietShapefile()
    shp_logger.addFilter(filt)
    try:
        geoms = tuple(g for g in shpreader.Reader(path).geometries() if g is not None)
    finally:
        shp_logger.removeFilter(filt)
    return geoms


def _geometries(path: Path, bbox: Sequence[float] | None) -> list[Any]:
    """Geometries of a shapefile (lon/lat) intersecting ``bbox = (west, south, east, north)``."""
    import shapely

    geoms = _load_geometries(str(path), path.stat().st_mtime)
    if bbox is None:
        return list(geoms)
    w, s, e, n = bbox
    pad = max(1.0, 0.2 * max(e - w, n - s))
    w, s, e, n = w - pad, max(s - pad, -90.0), e + pad, min(n + pad, 90.0)
    boxes = [shapely.box(w, s, e, n)]
    if w < -180:
        boxes.append(shapely.box(w + 360, s, 180, n))
    if e > 180:
        boxes.append(shapely.box(-180, s, e - 360, n))
    out = []
    for g in geoms:
        for b in boxes:
            if not g.intersects(b):
                continue
            # polygons (GSHHS land) are drawn as their outlines: the coastline; clipping
            # to the (padded) box keeps cartopy from projecting whole continents
            line = g.boundary if g.geom_type in ("Polygon", "MultiPolygon") else g
            part = shapely.clip_by_rect(line, *b.bounds)
            if not part.is_empty:
                out.append(part)
    return out


def _log_once(msg: str, level: int = logging.WARNING) -> None:
    if msg in _logged:
        logger.debug(msg)
        return
    _logged.add(msg)
    logger.log(level, msg)


def add_map_features(
    ax: Any,
    *,
    bbox: Sequence[float] | None = None,
    coastlines: bool = True,
    borders: bool = True,
    map_data_dir: str | os.PathLike | None = None,
    color: str = "0.15",
    linewidth: float = 0.7,
) -> MapData:
    """Draw coastlines and country borders found on disk onto a cartopy GeoAxes.

    Parameters
    ----------
    ax : cartopy.mpl.geoaxes.GeoAxes
        The map.
    bbox : (west, south, east, north), optional
        Lon/lat box of the map; only shapes crossing it are projected (fast).
    coastlines, borders : bool
        What to draw.
    map_data_dir : path, optional
        Only search this folder (see :func:`find_map_data`).
    color, linewidth
        Line style.

    Returns
    -------
    MapData
        What was found (``coastline``/``borders`` None when absent; the reason is logged).

    Examples
    --------
    >>> import matplotlib
    >>> matplotlib.use("Agg")
    >>> import matplotlib.pyplot as plt, cartopy.crs as ccrs
    >>> ax = plt.figure().add_subplot(projection=ccrs.PlateCarree())
    >>> md = add_map_features(ax, bbox=(0, 45, 10, 55))
    >>> plt.close("all")
    """
    import cartopy.crs as ccrs
    from cartopy.feature import ShapelyFeature

    span = None
    if bbox is not None:
        span = max(bbox[2] - bbox[0], bbox[3] - bbox[1])
    md = find_map_data(map_data_dir, span_deg=span)
    where = ", ".join(str(d) for d in md.searched) or "(no folders)"
    pc = ccrs.PlateCarree()
    if coastlines:
        if md.coastline is None:
            _log_once(
                f"map drawn without coastlines: no offline coastline data found in {where}; "
                + _HOW_TO
            )
        else:
            geoms = _geometries(md.coastline, bbox)
            if geoms:
                ax.add_feature(
                    ShapelyFeature(geoms, pc, facecolor="none", edgecolor=color,
                                   linewidth=linewidth, zorder=3)
                )
            logger.debug("coastlines from %s (%d shapes)", md.coastline, len(geoms))
    if borders:
        if md.borders is None:
            _log_once(
                "map drawn without country borders: no Natural Earth "
                f"'ne_*_admin_0_boundary_lines_land' shapefile found in {where} (GSHHS has no "
                "borders); put Natural Earth cultural shapefiles under "
                "cartopy.config['data_dir'] / 'shapefiles/natural_earth/cultural'",
                logging.INFO,
            )
        else:
            geoms = _geometries(md.borders, bbox)
            if geoms:
                ax.add_feature(
                    ShapelyFeature(geoms, pc, facecolor="none", edgecolor=color,
                                   linewidth=linewidth * 0.8, linestyle="--", zorder=3)
                )
    return md
