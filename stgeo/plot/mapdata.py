"""Coastlines and borders from map data already on disk (never downloaded).

Recognised data (any of them, in any searched folder):

* Natural Earth shapefiles in cartopy's layout
  (``shapefiles/natural_earth/physical/ne_{10m,50m,110m}_coastline.shp`` and
  ``shapefiles/natural_earth/cultural/ne_*_admin_0_boundary_lines_land.shp``), or the same
  files directly in the folder or one sub-folder down (an unpacked Natural Earth zip);
* GMT's binned GSHHG netCDF files ``binned_GSHHS_{f,h,i,l,c}.nc`` (coastlines) and
  ``binned_border_?.nc`` (national borders), e.g. Debian's ``gmt-gshhg-low`` package in
  ``/usr/share/gmt-gshhg`` (resolutions c, l, i; ``gmt-gshhg-high``/``-full`` add h, f);
* GSHHS coastline shapefiles (``shapefiles/gshhs/{f,h,i,l,c}/GSHHS_?_L1.shp``), as shipped by
  Debian's ``python-cartopy-data`` package in ``/usr/share/cartopy/data`` (crude only).

Of what is found, the coarsest data set still at least as detailed as about 1/300 of the
map width is drawn (fast for continents, detailed for a radar domain).

The folders searched are an explicit ``map_data_dir`` if given (then only that one), else
the ``STGEO_MAP_DATA`` environment variable (``os.pathsep``-separated), cartopy's
``pre_existing_data_dir`` and ``data_dir``, ``/usr/share/cartopy/data``,
``/usr/local/share/cartopy/data``, ``/usr/share/gmt-gshhg``, ``/usr/share/gshhg-gmt``,
``/usr/local/share/gshhg-gmt`` and ``<sys.prefix>/share/gshhg-gmt``. When nothing is found
the map is drawn without coastlines/borders: a one-line warning says so once per process, and
the folders searched and how to install map data are logged at INFO level (logger
``stgeo.plot``).

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
import sys
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

__all__ = ["MapData", "add_map_features", "fetch_natural_earth", "find_map_data"]

logger = logging.getLogger("stgeo.plot")

SYSTEM_DIRS = (
    "/usr/share/cartopy/data",
    "/usr/local/share/cartopy/data",
    "/usr/share/gmt-gshhg",
    "/usr/share/gshhg-gmt",
    "/usr/local/share/gshhg-gmt",
)
_HOW_TO = (
    "with internet access stgeo downloads Natural Earth once through cartopy (option "
    "map_download); offline, install Debian's 'gmt-gshhg-low' package (GSHHG coastlines "
    "and borders in /usr/share/gmt-gshhg) or 'python-cartopy-data' (crude GSHHS coastlines in "
    "/usr/share/cartopy/data), or put Natural Earth shapefiles under "
    "cartopy.config['data_dir'] / 'shapefiles/natural_earth', or point STGEO_MAP_DATA "
    "(or map_data_dir=) at a folder holding them"
)
#: GSHHG shoreline levels drawn as coastline: land/ocean and the Antarctic ice front and
#: grounding line (lakes are level 2)
COAST_LEVELS = (1, 5, 6)
#: GSHHG border levels drawn: national boundaries (2 = internal, 3 = maritime)
BORDER_LEVELS = (1,)
_logged: set[str] = set()


@dataclass
class MapData:
    """Offline map data found for a map.

    Attributes
    ----------
    coastline : Path or None
        File with coastlines (Natural Earth lines, GSHHG netCDF or GSHHS polygons).
    coastline_source : str
        ``"natural_earth_10m"``, ``"gshhg_i"``, ``"gshhs_c"``, ... or ``""``.
    borders : Path or None
        File with national borders (Natural Earth or GSHHG).
    borders_source : str
        As ``coastline_source``.
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
    dirs.append(Path(sys.prefix) / "share" / "gshhg-gmt")  # conda-forge's gshhg-gmt
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


# typical detail (km) of each data set, used to pick one suited to the map's size
_NE_KM = {"10m": 1.0, "50m": 5.0, "110m": 11.0}
_GSHHS_KM = {"f": 0.1, "h": 0.2, "i": 1.0, "l": 5.0, "c": 25.0}
_KIND_RANK = {"natural_earth": 0, "gmt": 1, "gshhs": 2}


def _candidates(dirs: Sequence[Path]) -> tuple[list[tuple], list[tuple]]:
    """All coastline and border files found: ``(km, kind, name, path)`` tuples."""
    coast: list[tuple] = []
    borders: list[tuple] = []
    for d in dirs:
        if not d.is_dir():
            continue
        _add_natural_earth(d, coast, borders)
        _add_gshhg(d, coast, borders)
    return coast, borders


def _first_file(paths: Sequence[Path]) -> Path | None:
    return next((p for p in paths if p.is_file()), None)


def _add_natural_earth(d: Path, coast: list[tuple], borders: list[tuple]) -> None:
    """Append the Natural Earth coastline and border shapefiles of folder ``d``."""
    for res, km in _NE_KM.items():
        p = _first_file(_ne_candidates(d, "physical", f"ne_{res}_coastline"))
        if p is not None:
            coast.append((km, "natural_earth", f"natural_earth_{res}", p))
        p = _first_file(_ne_candidates(d, "cultural", f"ne_{res}_admin_0_boundary_lines_land"))
        if p is not None:
            borders.append((km, "natural_earth", f"natural_earth_{res}", p))


def _add_gshhg(d: Path, coast: list[tuple], borders: list[tuple]) -> None:
    """Append GMT's binned GSHHG files and the GSHHS shapefiles of folder ``d``."""
    for scale, km in _GSHHS_KM.items():
        p = d / f"binned_GSHHS_{scale}.nc"
        if p.is_file():
            coast.append((km, "gmt", f"gshhg_{scale}", p))
        p = d / f"binned_border_{scale}.nc"
        if p.is_file():
            borders.append((km, "gmt", f"gshhg_{scale}", p))
        p = _first_file(
            (
                d / "shapefiles" / "gshhs" / scale / f"GSHHS_{scale}_L1.shp",
                d / "gshhs" / scale / f"GSHHS_{scale}_L1.shp",
                d / f"GSHHS_{scale}_L1.shp",
            )
        )
        if p is not None:
            coast.append((km, "gshhs", f"gshhs_{scale}", p))


def _pick(cands: list[tuple], span_deg: float | None) -> tuple | None:
    """The coarsest data set at least as detailed as the map needs (else the finest)."""
    if not cands:
        return None
    target = 25.0 if span_deg is None else max(span_deg, 0.1) * 111.0 / 300.0
    ok = [c for c in cands if c[0] <= target]
    if ok:
        return min(ok, key=lambda c: (-c[0], _KIND_RANK[c[1]]))
    return min(cands, key=lambda c: (c[0], _KIND_RANK[c[1]]))


def find_map_data(
    map_data_dir: str | os.PathLike | None = None, *, span_deg: float | None = None
) -> MapData:
    """Find coastline and border data on disk suited to a map ``span_deg`` degrees wide.

    Natural Earth shapefiles, GMT's binned GSHHG netCDF files (coastlines and borders; Debian
    package ``gmt-gshhg-low``, also ``-high``/``-full``) and GSHHS shapefiles (Debian package
    ``python-cartopy-data``) are recognised. Of the data found, the coarsest one that is
    still at least as detailed as about 1/300 of the map width is used.

    Parameters
    ----------
    map_data_dir : path, optional
        Search only this folder (default: ``STGEO_MAP_DATA``, cartopy's data folders and the
        Debian folders ``/usr/share/cartopy/data`` and ``/usr/share/gmt-gshhg``).
    span_deg : float, optional
        Width of the map in degrees.

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
    coast, borders = _candidates(dirs)
    if (not coast or not borders) and map_data_dir is None and fetch_natural_earth(span_deg):
        coast, borders = _candidates(dirs)  # cartopy's data_dir is among the folders
    md = MapData(searched=dirs)
    c = _pick(coast, span_deg)
    if c is not None:
        md.coastline, md.coastline_source = c[3], c[2]
    b = _pick(borders, span_deg)
    if b is not None:
        md.borders, md.borders_source = b[3], b[2]
    return md


# Natural Earth files cartopy's downloader fetches (resolution -> features) and its server
_NE_FEATURES = (("physical", "coastline"), ("cultural", "admin_0_boundary_lines_land"))
_NE_HOST = ("naturalearth.s3.amazonaws.com", 443)


@functools.lru_cache(maxsize=1)
def _online(timeout: float = 3.0) -> bool:
    """Whether Natural Earth's server answers (asked once per process)."""
    import socket

    try:
        socket.create_connection(_NE_HOST, timeout=timeout).close()
        return True
    except OSError:
        return False


def fetch_natural_earth(span_deg: float | None = None) -> bool:
    """Download Natural Earth coastlines and borders with cartopy's own downloader.

    cartopy caches them under ``cartopy.config["data_dir"]``, where :func:`find_map_data`
    looks, so this happens once per machine. Nothing is attempted when the option
    ``map_download`` is False or the server cannot be reached (the map is then drawn
    without them and one note says how to install offline data).

    Parameters
    ----------
    span_deg : float, optional
        Map width in degrees: 10m data for maps under ~30 degrees, 50m under ~300, else 110m.

    Returns
    -------
    bool
        True when the files are now on disk.

    Examples
    --------
    >>> import stgeo
    >>> with stgeo.set_options(map_download=False):
    ...     fetch_natural_earth(5.0)
    False
    """
    from ..options import get_options

    if not get_options()["map_download"] or not _online():
        return False
    res = "110m" if span_deg is None or span_deg > 300 else "50m" if span_deg > 30 else "10m"
    try:
        from cartopy.io import shapereader

        for category, name in _NE_FEATURES:
            shapereader.natural_earth(resolution=res, category=category, name=name)
    except Exception as err:  # a failed or partial download: draw without, say why
        logger.info("Natural Earth %s download through cartopy failed: %s", res, err)
        return False
    return True


@functools.lru_cache(maxsize=8)
def _load_gshhg(path: str, mtime: float) -> dict[str, np.ndarray]:
    """Decode a GMT binned GSHHG file (coastlines or borders) into flat arrays."""
    import netCDF4

    with netCDF4.Dataset(path) as nc:
        nc.set_auto_mask(False)
        v = {k: np.asarray(nc.variables[k][:]) for k in nc.variables}
    size = float(v["Bin_size_in_minutes"][0]) / 60.0  # degrees
    nx = int(v["N_bins_in_360_longitude_range"][0])
    nbins = int(v["N_bins_in_file"][0])
    b = np.arange(nbins)
    lon0 = (b % nx) * size
    lon0 = np.where(lon0 >= 180.0, lon0 - 360.0, lon0)  # bins never straddle 180
    lat0 = 90.0 - (b // nx + 1) * size
    if "Embedded_npts_levels_exit_entry_for_a_segment" in v:  # shorelines
        info = v["Embedded_npts_levels_exit_entry_for_a_segment"].astype(np.int64)
        npts = info >> 9
        level = (info >> 6) & 7
        closed = ((info >> 3) & 7 == 4) & (info & 7 == 4)  # no exit/entry: a whole polygon
    else:  # borders (and rivers)
        npts = v["N_points_for_a_segment"].astype(np.int64)
        level = v["Hierarchial_level_of_a_segment"].astype(np.int64)
        closed = np.zeros(npts.size, dtype=bool)
    # relative positions are unsigned 16-bit fractions of the bin size
    dx = v["Relative_longitude_from_SW_corner_of_bin"].view(np.uint16) * (size / 65535.0)
    dy = v["Relative_latitude_from_SW_corner_of_bin"].view(np.uint16) * (size / 65535.0)
    return {
        "size": np.float64(size),
        "lon0": lon0,
        "lat0": lat0,
        "first_seg": v["Id_of_first_segment_in_a_bin"].astype(np.int64),
        "n_seg": v["N_segments_in_a_bin"].astype(np.int64),
        "first_pt": v["Id_of_first_point_in_a_segment"].astype(np.int64),
        "npts": npts,
        "level": level,
        "closed": closed,
        "dx": dx,
        "dy": dy,
    }


def _gshhg_lines(path: Path, bbox: Sequence[float] | None, levels: Sequence[int]) -> list[Any]:
    """Lon/lat line strings of a binned GSHHG file within ``bbox`` at the given levels."""
    import shapely

    g = _load_gshhg(str(path), path.stat().st_mtime)
    size = float(g["size"])
    sel = g["n_seg"] > 0
    if bbox is not None:
        w, s, e, n = bbox
        pad = max(1.0, 0.2 * max(e - w, n - s))
        w, s, e, n = w - pad, s - pad, e + pad, n + pad
        inside = np.zeros_like(sel)
        for shift in (-360.0, 0.0, 360.0):
            lo = g["lon0"] + shift
            inside |= (lo + size >= w) & (lo <= e) & (g["lat0"] + size >= s) & (g["lat0"] <= n)
        sel &= inside
    lines = []
    wanted = np.isin(g["level"], list(levels))
    for i in np.flatnonzero(sel):
        for k in range(g["first_seg"][i], g["first_seg"][i] + g["n_seg"][i]):
            if not wanted[k] or g["npts"][k] < 2:
                continue
            a = g["first_pt"][k]
            xs = g["lon0"][i] + g["dx"][a : a + g["npts"][k]]
            ys = g["lat0"][i] + g["dy"][a : a + g["npts"][k]]
            if g["closed"][k]:
                xs, ys = np.r_[xs, xs[:1]], np.r_[ys, ys[:1]]
            lines.append(np.column_stack([xs, ys]))
    if not lines:
        return []
    return [shapely.MultiLineString(lines)]


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


def _shapes(path: Path, bbox: Sequence[float] | None, levels: Sequence[int]) -> list[Any]:
    if path.suffix == ".nc":
        return _gshhg_lines(path, bbox, levels)
    return _geometries(path, bbox)


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
            # one short warning per process; where was searched and how to install data:
            # at INFO level (logger "stgeo.plot")
            _log_once(
                "map drawn without coastlines: no coastline data on disk (point STGEO_MAP_DATA "
                "or map_data_dir= at a folder of it; see 'Coastlines and borders' in the "
                "plotting guide)"
            )
            _log_once(f"no offline coastline data found in {where}; " + _HOW_TO, logging.INFO)
        else:
            geoms = _shapes(md.coastline, bbox, COAST_LEVELS)
            if geoms:
                ax.add_feature(
                    ShapelyFeature(
                        geoms, pc, facecolor="none", edgecolor=color, linewidth=linewidth, zorder=3
                    )
                )
            logger.debug("coastlines from %s (%d shapes)", md.coastline, len(geoms))
    if borders:
        if md.borders is None:
            _log_once(
                "map drawn without country borders: neither GSHHG 'binned_border_?.nc' nor "
                f"Natural Earth 'ne_*_admin_0_boundary_lines_land.shp' found in {where}; "
                "install Debian's 'gmt-gshhg-low' package or put Natural Earth cultural "
                "shapefiles under cartopy.config['data_dir'] / 'shapefiles/natural_earth/cultural'",
                logging.INFO,
            )
        else:
            geoms = _shapes(md.borders, bbox, BORDER_LEVELS)
            if geoms:
                ax.add_feature(
                    ShapelyFeature(
                        geoms,
                        pc,
                        facecolor="none",
                        edgecolor=color,
                        linewidth=linewidth * 0.8,
                        linestyle="--",
                        zorder=3,
                    )
                )
    return md
