"""The one xarray <-> array adapter: variables of a dataset as a ``(time, channel, y, x)`` stack.

Models see arrays ``(B, T, C, H, W)``; datasets hold named variables, some with an extra
dim (e.g. ``flow(time, channel, y, x)`` with ``channel = [inflow, outflow]``).
:func:`to_frames` stacks them lazily into one float32 DataArray with a string ``channel``
coordinate, :func:`from_frames` splits an array with that channel axis back into variables.

Channel names are ``"var"`` for a variable with dims ``(time, y, x)`` and ``"var:value"``
for each value of the one extra dim of a variable (``"flow:inflow"``, ``"flow:outflow"``).

Examples
--------
>>> import stgeo
>>> from stgeo.data import to_frames, from_frames
>>> ds = stgeo.testing.crowd_flows(n_days=1, shape=(8, 8))
>>> fr = to_frames(ds)
>>> fr.dims, fr.channel.values.tolist()
(('time', 'channel', 'y', 'x'), ['flow:inflow', 'flow:outflow'])
>>> back = from_frames(fr, fr.channel.values.tolist(), ds)
>>> bool((back["flow"] == ds["flow"]).all())
True
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import xarray as xr

from ..conventions import (
    CHANNEL_DIM,
    EVENT_COORD,
    TIME_DIM,
    as_dataset,
    data_variables,
    spatial_dims,
    validate,
)
from ..errors import DataValidationError, UnknownNameError
from .store import SOURCE_KEY

__all__ = ["from_frames", "to_frames", "variables_of"]

_SEP = ":"


def variables_of(channels: Sequence[str]) -> list[str]:
    """The variable names behind frame channel labels, in first-seen order.

    A channel is a variable (``"rain_rate"``) or a variable and a value of its extra dim
    (``"flow:inflow"``), as :func:`to_frames` labels them.

    Examples
    --------
    >>> variables_of(["flow:inflow", "flow:outflow", "rain_rate"])
    ['flow', 'rain_rate']
    """
    out: list[str] = []
    for c in channels:
        v = str(c).split(_SEP, 1)[0]
        if v not in out:
            out.append(v)
    return out


def _extra_dim(da: xr.DataArray, name: str, sdims: tuple[str, str]) -> str | None:
    extra = [d for d in da.dims if d not in (TIME_DIM, *sdims)]
    if len(extra) > 1:
        raise DataValidationError(
            f"variable {name!r} has dims {da.dims}: more than one extra dim besides time and "
            f"{sdims} ({extra}). Stack them first, e.g. ds[{name!r}].stack(channel={extra})"
            ".reset_index('channel'), or select one value of each with .sel()."
        )
    return str(extra[0]) if extra else None


def to_frames(
    ds: xr.Dataset | xr.DataArray,
    variables: str | Sequence[str] | None = None,
) -> xr.DataArray:
    """Stack variables into one lazy float32 DataArray ``(time, channel, ydim, xdim)``.

    Parameters
    ----------
    ds : xarray.Dataset or xarray.DataArray
        Canonical data (see :func:`stgeo.validate`); may be dask-backed, nothing is loaded.
    variables : str or list of str, optional
        Variables to use, in this channel order (default: every gridded variable).

    Returns
    -------
    xarray.DataArray
        Named ``"frames"``, dims ``("time", "channel", ydim, xdim)``, dtype float32, with a
        string ``channel`` coordinate (``"var"`` or ``"var:value"``) and the ``time``,
        lat/lon, ``crs`` and ``event`` coordinates of ``ds``. Attributes ``variables``
        (names in order) and ``units`` (per channel) are set.

    Raises
    ------
    UnknownNameError
        A requested variable does not exist (the message lists the valid ones).
    DataValidationError
        The data do not follow the canonical model (checked with ``strict=False``; gaps
        are allowed since windows never cross them).

    Examples
    --------
    >>> import stgeo
    >>> ds = stgeo.testing.storm_cells(n_times=4, shape=(16, 16))
    >>> fr = to_frames(ds, "rain_rate")
    >>> fr.shape, fr.dtype, fr.channel.values.tolist()
    ((4, 1, 16, 16), dtype('float32'), ['rain_rate'])
    """
    dset = as_dataset(ds)
    validate(dset, variables=variables, strict=False, allow_gaps=True)
    sdims = spatial_dims(dset)
    names = (
        data_variables(dset)
        if variables is None
        else ([variables] if isinstance(variables, str) else list(variables))
    )
    if not names:
        raise DataValidationError("no variables selected; pass variables=['name', ...]")
    keep_coords = {TIME_DIM, EVENT_COORD, "lat", "lon", "crs", "spatial_ref", *sdims}
    parts: list[xr.DataArray] = []
    units: list[str] = []
    sources: list[tuple[str, str]] | None = []
    for name in names:
        if name not in dset.data_vars:  # pragma: no cover - validate() raised already
            raise UnknownNameError(f"unknown variable {name!r}")
        da = dset[name]
        extra = _extra_dim(da, name, sdims)
        u = str(da.attrs.get("units", ""))
        src = _zarr_source(da, sdims) if extra is None else None
        sources = None if (sources is None or src is None) else [*sources, src]
        if extra is None:
            part = da.expand_dims({CHANNEL_DIM: [name]}, axis=1)
            units.append(u)
        else:
            vals = da[extra].values if extra in da.coords else np.arange(da.sizes[extra])
            labels = [f"{name}{_SEP}{v}" for v in vals]
            part = da.drop_vars([c for c in da.coords if extra in da[c].dims])
            if extra != CHANNEL_DIM:
                part = part.rename({extra: CHANNEL_DIM})
            part = part.assign_coords({CHANNEL_DIM: labels})
            units.extend([u] * len(labels))
        part = part.transpose(TIME_DIM, CHANNEL_DIM, *sdims)
        drop = [c for c in part.coords if c not in keep_coords and c != CHANNEL_DIM]
        part = part.drop_vars(drop)
        part.attrs = {}
        parts.append(part.astype(np.float32, copy=False))
    out = (
        parts[0]
        if len(parts) == 1
        else xr.concat(parts, dim=CHANNEL_DIM, coords="minimal", compat="override", join="override")
    )
    for c in ("crs", "spatial_ref"):  # scalar grid-mapping coords are dropped by some ops
        if c in dset.coords and c not in out.coords:
            out = out.assign_coords({c: dset[c]})
    out.name = "frames"
    out.attrs = {"variables": list(names), "units": units}
    if sources:
        out.encoding[SOURCE_KEY] = sources
    if "step" in dset[TIME_DIM].attrs:
        out[TIME_DIM].attrs["step"] = dset[TIME_DIM].attrs["step"]
    return out


def _zarr_source(da: xr.DataArray, sdims: tuple[str, str]) -> tuple[str, str] | None:
    """``(store, array)`` when ``da`` is exactly a stored Zarr array, so raw reads equal it.

    True only for a variable straight from :func:`stgeo.open_dataset` (its dask array is
    still the one xarray built when opening: no selection, arithmetic or fill applied),
    laid out ``(time, y, x)``, and whose CF decoding is a no-op (float data, no
    scale/offset, NaN or no fill value).
    """
    src = da.encoding.get(SOURCE_KEY)
    data = da.variable._data
    name = getattr(data, "name", None)
    if src is None or not isinstance(name, str) or not name.startswith("open_dataset-"):
        return None
    if da.dims != (TIME_DIM, *sdims) or not np.issubdtype(da.dtype, np.floating):
        return None
    enc = da.encoding
    if "scale_factor" in enc or "add_offset" in enc or enc.get("dtype", da.dtype) != da.dtype:
        return None
    fill = enc.get("_FillValue", np.nan)
    if fill is not None and not (isinstance(fill, float) and np.isnan(fill)):
        return None
    return (str(src[0]), str(src[1]))


def from_frames(
    arr: np.ndarray | xr.DataArray,
    channels: Sequence[str],
    template: xr.Dataset,
) -> dict[str, xr.DataArray]:
    """Split an array with a channel axis at position -3 back into named variables.

    Parameters
    ----------
    arr : numpy.ndarray or xarray.DataArray
        Shape ``(..., channel, y, x)`` (e.g. ``(init_time, lead_time, channel, y, x)``).
        A DataArray keeps its leading dims and coords.
    channels : list of str
        Channel names as produced by :func:`to_frames` (length = ``arr.shape[-3]``).
    template : xarray.Dataset
        The dataset the channels came from: gives the spatial dims/coords, the extra dim
        name and values of each variable, and its attributes.

    Returns
    -------
    dict of str -> xarray.DataArray
        One array per variable: dims ``(..., ydim, xdim)`` for plain variables and
        ``(..., extra, ydim, xdim)`` for variables with an extra dim. Leading dims of a
        numpy input are named ``dim_0, dim_1, ...``.

    Examples
    --------
    >>> import numpy as np, stgeo
    >>> ds = stgeo.testing.crowd_flows(n_days=1, shape=(8, 8))
    >>> out = from_frames(np.zeros((3, 2, 8, 8)), ["flow:inflow", "flow:outflow"], ds)
    >>> out["flow"].dims
    ('dim_0', 'channel', 'y', 'x')
    """
    channels = [str(c) for c in channels]
    data, lead_dims, lead_coords = _leading_axes(arr)
    _check_frames_shape(data, channels)
    tpl = as_dataset(template)
    sdims = spatial_dims(tpl)
    if tuple(data.shape[-2:]) != (tpl.sizes[sdims[0]], tpl.sizes[sdims[1]]):
        raise DataValidationError(
            f"the array grid {data.shape[-2:]} does not match the template grid "
            f"{(tpl.sizes[sdims[0]], tpl.sizes[sdims[1]])}"
        )
    coords = {**lead_coords, **_space_coords(tpl, sdims)}
    out: dict[str, xr.DataArray] = {}
    for var, items in _channel_groups(channels).items():
        if var not in tpl.data_vars:
            raise UnknownNameError(
                f"channel {channels[items[0][0]]!r} names variable {var!r}, which the "
                "template does not have; template variables: "
                f"{', '.join(map(str, tpl.data_vars)) or '(none)'}"
            )
        out[var] = _variable_from_channels(
            data, var, items, tpl[var], channels, lead_dims, sdims, coords
        )
    return out


def _leading_axes(arr: np.ndarray | xr.DataArray) -> tuple[np.ndarray, list, dict]:
    """``(data, leading dim names, leading coords)`` of an array ``(..., channel, y, x)``."""
    if isinstance(arr, xr.DataArray):
        lead_dims = list(arr.dims[:-3])
        lead_coords = {k: v for k, v in arr.coords.items() if set(v.dims) <= set(lead_dims)}
        return arr.data, lead_dims, lead_coords
    data = np.asarray(arr)
    return data, [f"dim_{i}" for i in range(data.ndim - 3)], {}


def _check_frames_shape(data: np.ndarray, channels: list[str]) -> None:
    if data.ndim < 3:
        raise DataValidationError(
            f"expected an array (..., channel, y, x) with at least 3 dims, got shape {data.shape}"
        )
    if data.shape[-3] != len(channels):
        raise DataValidationError(
            f"the array has {data.shape[-3]} channels (axis -3, shape {data.shape}) but "
            f"{len(channels)} channel names were given: {channels}"
        )


def _space_coords(tpl: xr.Dataset, sdims: tuple[str, str]) -> dict:
    """The template's coords on the spatial dims, plus its scalar grid-mapping coords."""
    space = {k: v for k, v in tpl.coords.items() if v.dims and set(v.dims) <= set(sdims)}
    for c in ("crs", "spatial_ref"):
        if c in tpl.coords:
            space[c] = tpl[c]
    return space


def _channel_groups(channels: list[str]) -> dict[str, list[tuple[int, str | None]]]:
    """Channel positions grouped by variable: ``{var: [(index, extra value or None), ...]}``."""
    groups: dict[str, list[tuple[int, str | None]]] = {}
    for i, ch in enumerate(channels):
        var, sep, val = ch.partition(_SEP)
        groups.setdefault(var, []).append((i, val if sep else None))
    return groups


def _variable_from_channels(
    data: np.ndarray,
    var: str,
    items: list[tuple[int, str | None]],
    tv: xr.DataArray,
    channels: list[str],
    lead_dims: list,
    sdims: tuple[str, str],
    base_coords: dict,
) -> xr.DataArray:
    """The variable ``var`` (template ``tv``) rebuilt from its channels ``items`` of ``data``."""
    idx = [i for i, _ in items]
    extra = _extra_dim(tv, var, sdims)
    coords = dict(base_coords)
    if extra is None:
        if len(items) != 1 or items[0][1] is not None:
            raise DataValidationError(
                f"variable {var!r} has no extra dim in the template, so it maps to exactly "
                f"one channel named {var!r}; got {[channels[i] for i in idx]}"
            )
        vals = data[..., idx[0], :, :]
        dims = [*lead_dims, *sdims]
    else:
        vals = data[..., idx, :, :]
        dims = [*lead_dims, extra, *sdims]
        coords[extra] = _extra_labels(tv, var, extra, [v for _, v in items])
    return xr.DataArray(vals, dims=dims, coords=coords, name=var, attrs=dict(tv.attrs))


def _extra_labels(tv: xr.DataArray, var: str, extra: str, labels: list) -> list:
    """The template's values of the extra dim named by the channel ``labels`` (or their ints)."""
    if extra not in tv.coords:
        return [int(v) for v in labels]
    tvals = tv[extra].values
    by_str = {str(v): v for v in tvals}
    missing = [v for v in labels if v not in by_str]
    if missing:
        raise DataValidationError(
            f"channels {[f'{var}:{m}' for m in missing]} do not match the values "
            f"of {var}.{extra} in the template: {list(tvals)}"
        )
    return [by_str[v] for v in labels]
