"""Metric families and the metric registry that :func:`~stgeo.metrics.score` loops over.

A *metric family* is a group of metrics computed from the same mergeable sums: the
contingency table (CSI, POD, ...), the error sums (MSE, MAE, ...), the FSS sums, the SSIM
and PSNR frame sums. A :class:`MetricFamily` says which of ``score()``'s settings it needs
(``thresholds``, ``windows``, ``pool``, ``data_range``, ``weights``) and how to compute its
sums from aligned forecast/observation blocks; each *metric* of a family is registered with
:func:`register_metric` and a ``finalize`` function turning the family's (merged) sums into
the metric's DataArray. ``score()`` computes each requested family's sums once per block,
merges the blocks with ``+`` and finalizes every requested metric: it knows no family by name.

Sums must be additive: a Dataset whose variables add up cell by cell across blocks
(``init_time`` blocks of the streaming path, Dask chunks), so that scoring in pieces equals
scoring everything at once.

Examples
--------
A new family (mean forecast and observed values over the same valid pixels) and a metric
scored with it:

>>> import numpy as np, xarray as xr, stgeo
>>> from stgeo.metrics import MetricFamily, register_metric
>>> def mean_sums(fc, ob, settings):
...     ok = fc.notnull() & ob.notnull()
...     return xr.Dataset({"f": fc.where(ok).sum(settings.reduce),
...                        "o": ob.where(ok).sum(settings.reduce),
...                        "n": ok.sum(settings.reduce)})
>>> means = MetricFamily("example-means", sums=mean_sums)
>>> _ = register_metric("example_mean_ratio", family=means,
...                     finalize=lambda s: (s.f / s.o).assign_attrs(units="1"), overwrite=True)
>>> f = xr.DataArray(np.array([[1.0, 2.0], [3.0, np.nan]]), dims=("y", "x"))
>>> o = xr.DataArray(np.array([[2.0, 4.0], [6.0, 1.0]]), dims=("y", "x"))
>>> float(stgeo.score(f, o, metrics="example_mean_ratio").example_mean_ratio)
0.5
>>> from stgeo._registry import METRIC_FAMILIES, METRICS
>>> METRICS.remove("example_mean_ratio"); METRIC_FAMILIES.remove("example-means")
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import xarray as xr

from .._registry import METRIC_FAMILIES, METRICS
from ..errors import StgeoTypeError

__all__ = [
    "SETTINGS",
    "MetricFamily",
    "ScoreSettings",
    "get_metric_family",
    "register_metric",
    "register_metric_family",
]

#: the settings of :func:`~stgeo.metrics.score` a family may declare, in the order they are
#: resolved (and validated)
SETTINGS: tuple[str, ...] = ("thresholds", "windows", "pool", "data_range", "weights")


@dataclass(frozen=True)
class ScoreSettings:
    """The validated settings of one ``score()`` call, handed to every family's ``sums``.

    Attributes
    ----------
    reduce : tuple of str
        Dims to reduce (sum over); every other dim is kept.
    thresholds : list of float or None
        Event thresholds (``value >= threshold``), when a requested family declared them.
    windows : list of int or None
        FSS window sizes in pixels.
    pool : list of int or None
        Max-pool sizes (None: native resolution only).
    data_range : float or None
        Data range for SSIM/PSNR.
    weights : DataArray or None
        Weights of continuous scores.
    """

    reduce: tuple[str, ...]
    thresholds: list[float] | None = None
    windows: list[int] | None = None
    pool: list[int] | None = None
    data_range: float | None = None
    weights: xr.DataArray | None = None


def _identity(sums: xr.Dataset) -> xr.Dataset:
    return sums


SumsFunc = Callable[[xr.DataArray, xr.DataArray, ScoreSettings], xr.Dataset]
CheckFunc = Callable[[xr.Dataset, xr.DataArray, xr.DataArray], None]


@dataclass(frozen=True)
class MetricFamily:
    """A group of metrics sharing one set of mergeable sums.

    Parameters
    ----------
    name : str
        Family name (case-insensitive), e.g. ``"contingency"``.
    sums : callable
        ``sums(fcst, obs, settings) -> Dataset``: the additive sums of one block of aligned
        forecasts and observations (same dims and coordinates), with the ``settings.reduce``
        dims summed out. It may return a lazy (Dask-backed) Dataset for Dask inputs.
    container : callable, optional
        Wraps the merged sums Dataset before the metrics' ``finalize`` functions get it,
        e.g. :class:`~stgeo.metrics.ContingencyTable` (default: the Dataset itself).
    settings : sequence of str
        The ``score()`` settings the family uses, a subset of :data:`SETTINGS`. Only the
        settings a requested family declares are validated; ``thresholds`` and ``windows``
        are then required, ``data_range`` falls back to the data's ``valid_range``.
    check : callable, optional
        ``check(sums, fcst, obs)`` run on the computed sums (e.g. warn that no value reached
        any threshold); not run for lazy results.
    description : str
        One line for listings.

    Examples
    --------
    >>> from stgeo.metrics import get_metric_family
    >>> get_metric_family("fss").settings
    ('thresholds', 'windows')
    """

    name: str
    sums: SumsFunc
    container: Callable[[xr.Dataset], Any] = _identity
    settings: tuple[str, ...] = ()
    check: CheckFunc | None = None
    description: str = ""

    def __post_init__(self) -> None:
        if not isinstance(self.name, str) or not self.name:
            raise StgeoTypeError(f"a metric family needs a non-empty name, got {self.name!r}.")
        for what in ("sums", "container"):
            if not callable(getattr(self, what)):
                raise StgeoTypeError(
                    f"metric family {self.name!r}: {what} must be callable, "
                    f"got {type(getattr(self, what)).__name__}."
                )
        settings = (self.settings,) if isinstance(self.settings, str) else self.settings
        object.__setattr__(self, "settings", tuple(settings))
        unknown = [s for s in self.settings if s not in SETTINGS]
        if unknown:
            raise StgeoTypeError(
                f"metric family {self.name!r}: unknown settings {unknown}; a family may use "
                f"{', '.join(SETTINGS)}."
            )


def register_metric_family(family: MetricFamily, *, overwrite: bool = False) -> MetricFamily:
    """Register a :class:`MetricFamily` so metrics can name it; return it.

    Raises
    ------
    ValueError
        Another family has that name (pass ``overwrite=True`` to replace it).

    Examples
    --------
    >>> import xarray as xr
    >>> from stgeo.metrics import MetricFamily, register_metric_family
    >>> fam = register_metric_family(
    ...     MetricFamily("example-count", sums=lambda f, o, s: xr.Dataset(
    ...         {"n": (f.notnull() & o.notnull()).sum(s.reduce)})), overwrite=True)
    >>> fam.name
    'example-count'
    >>> from stgeo._registry import METRIC_FAMILIES
    >>> METRIC_FAMILIES.remove("example-count")
    """
    if not isinstance(family, MetricFamily):
        raise StgeoTypeError(
            f"register_metric_family() takes a MetricFamily, got {type(family).__name__}."
        )
    METRIC_FAMILIES.add(
        family.name, family, description=family.description or family.name, overwrite=overwrite
    )
    return family


def get_metric_family(name: str) -> MetricFamily:
    """The registered :class:`MetricFamily` called ``name`` ("did you mean" error if unknown).

    Examples
    --------
    >>> from stgeo.metrics import get_metric_family
    >>> get_metric_family("contingency").settings
    ('thresholds', 'pool')
    """
    return METRIC_FAMILIES.get(name)


def _family_name(family: str | MetricFamily) -> str:
    if isinstance(family, MetricFamily):
        key = family.name.lower()
        if key in METRIC_FAMILIES and METRIC_FAMILIES.get(key) is not family:
            raise ValueError(
                f"a different metric family named {family.name!r} is registered; pass its "
                "name, or replace it with register_metric_family(family, overwrite=True)."
            )
        if key not in METRIC_FAMILIES:
            register_metric_family(family)
        return key
    if not isinstance(family, str):
        raise StgeoTypeError(
            f"family must be a family name or a MetricFamily, got {type(family).__name__}."
        )
    return METRIC_FAMILIES.entry(family).name  # "did you mean" for unknown families


def register_metric(
    name: str,
    func: Callable[..., Any] | None = None,
    *,
    family: str | MetricFamily,
    finalize: Callable[[Any], xr.DataArray],
    aliases: Sequence[str] = (),
    description: str = "",
    overwrite: bool = False,
) -> Any:
    """Register a metric for :func:`~stgeo.metrics.score`.

    Parameters
    ----------
    name : str
        Metric name (case-insensitive); the result variable of ``score()``.
    func : callable, optional
        The stand-alone metric function (``func(fcst, obs, ...)``), if there is one: the
        object the registry returns for the name. Default: ``finalize``.
    family : str or MetricFamily
        The family whose sums the metric derives from (``"contingency"``, ``"continuous"``,
        ``"fss"``, ``"ssim"``, ``"psnr"``, or a new :class:`MetricFamily`, registered on the
        way).
    finalize : callable
        ``finalize(sums) -> DataArray``: the metric from the family's merged sums (wrapped in
        the family's ``container``, e.g. a :class:`~stgeo.metrics.ContingencyTable`).
    aliases : sequence of str
        Other names.
    description : str
        One line for listings (default: the first line of ``func``'s docstring).
    overwrite : bool
        Replace a metric of the same name.

    Returns
    -------
    callable
        The registered object (``func``, else ``finalize``).

    Raises
    ------
    UnknownNameError
        ``family`` names no registered family (the message suggests the closest).
    ValueError
        The name is taken (pass ``overwrite=True``).

    Examples
    --------
    A metric of an existing family, the mean squared error in decibels:

    >>> import numpy as np, xarray as xr, stgeo
    >>> def mse_db(sums):  # sums: the merged ErrorSums of the "continuous" family
    ...     return (10 * np.log10(sums.mse())).assign_attrs(units="dB")
    >>> _ = stgeo.register_metric("example_mse_db", family="continuous", finalize=mse_db,
    ...                           aliases=["example_mse_decibel"], overwrite=True)
    >>> f = xr.DataArray(np.zeros((2, 2)), dims=("y", "x"))
    >>> float(stgeo.score(f, f + 10.0, metrics=["example_mse_db"]).example_mse_db)
    20.0
    >>> from stgeo._registry import METRICS
    >>> METRICS.remove("example_mse_db")
    """
    fam = _family_name(family)
    for what, f in (("finalize", finalize), ("func", func)):
        if f is not None and not callable(f):
            raise StgeoTypeError(f"metric {name!r}: {what} must be callable, got {f!r}.")
    return METRICS.add(
        name,
        func if func is not None else finalize,
        aliases=list(aliases),
        description=description,
        overwrite=overwrite,
        family=fam,
        finalize=finalize,
    )
