"""Calendar features of forecast times: time of day, day of week, weekend and holidays.

ST-ResNet-like models take "external factors" of the *predicted* time beside the frames:
where in the day and the week it falls and whether it is a public holiday.
:class:`TimeFeatures` holds the settings (which country's holidays, the time zone of
the data) and turns times into a ``(n, F)`` float32 array; :func:`time_features` does
it in one call. Training windows, validation and forecasts all compute their features
with the same object, which the model's spec records (``ModelSpec.features``), so a loaded
model sees exactly the features it was trained with.

Columns, in order (:meth:`TimeFeatures.names`):

* ``tod_sin``, ``tod_cos``: time of day on the unit circle (``2 pi * hours / 24``);
* ``dow_0`` .. ``dow_6``: day of week one-hot (Monday = 0);
* ``weekend``: 1 on Saturday and Sunday;
* ``holiday``: 1 on a public holiday of ``holidays`` (a country code of the `holidays
  <https://pypi.org/project/holidays/>`_ library, e.g. ``"US"``, ``"CN"``) in
  ``subdiv`` (e.g. ``"NY"``); present only when a country is given.

Times are taken in the data's own clock (naive timestamps, as the crowd-flow recipes write
local time); with ``timezone`` they are read as UTC and converted to that zone first.

Examples
--------
>>> import pandas as pd
>>> f = time_features(pd.to_datetime(["2014-07-04 18:00", "2014-07-05 06:00"]), holidays="US")
>>> f.shape
(2, 11)
>>> TimeFeatures(holidays="US").names()[-3:]
['dow_6', 'weekend', 'holiday']
>>> f[:, -2:].tolist()  # Friday 4 July: holiday; Saturday: weekend
[[0.0, 1.0], [1.0, 0.0]]
"""

from __future__ import annotations

import functools
from collections.abc import Mapping
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np
import pandas as pd

from ..errors import DataValidationError, StgeoTypeError

__all__ = ["ExternalVariables", "TimeFeatures", "feature_rows", "time_features"]

_FIELDS = ("holidays", "subdiv", "timezone")


@functools.lru_cache(maxsize=32)
def _holiday_calendar(country: str, subdiv: str | None, years: tuple[int, ...]) -> frozenset:
    """The dates of public holidays of ``country``/``subdiv`` in ``years`` (cached)."""
    try:
        import holidays as hl
    except ImportError:  # pragma: no cover - a core dependency
        raise ImportError(
            "holiday features need the 'holidays' package: pip install holidays"
        ) from None
    supported = hl.list_supported_countries()
    if country not in supported:
        raise DataValidationError(
            f"the holidays library knows no country {country!r}; use an ISO 3166 code "
            "such as 'US', 'CN', 'GB' (holidays.list_supported_countries())"
        )
    if subdiv is not None and subdiv not in supported[country]:
        raise DataValidationError(
            f"the holidays library knows no subdivision {subdiv!r} of {country!r}; known: "
            f"{', '.join(supported[country][:20])}{', ...' if len(supported[country]) > 20 else ''}"
        )
    cal = hl.country_holidays(country, subdiv=subdiv, years=list(years))
    return frozenset(cal.keys())


@dataclass(frozen=True)
class TimeFeatures:
    """Settings of the calendar features of forecast times; call it on times.

    Parameters
    ----------
    holidays : str, optional
        Country code of the ``holidays`` library (``"US"``, ``"CN"``, ...); None: no
        ``holiday`` column.
    subdiv : str, optional
        Subdivision of that country (``"NY"`` for New York State); needs ``holidays``.
    timezone : str, optional
        IANA time zone (``"America/New_York"``): the times are UTC and are converted to it
        before the calendar is read. None: the times are already local.

    Raises
    ------
    StgeoTypeError, DataValidationError
        A setting of the wrong type, ``subdiv`` without ``holidays``, an unknown country,
        subdivision or time zone.

    Examples
    --------
    >>> tf = TimeFeatures(holidays="CN")
    >>> tf.size, tf.to_dict()
    (11, {'holidays': 'CN', 'subdiv': None, 'timezone': None})
    >>> TimeFeatures.from_dict(tf.to_dict()) == tf
    True
    """

    holidays: str | None = None
    subdiv: str | None = None
    timezone: str | None = None

    def __post_init__(self) -> None:
        for name in _FIELDS:
            v = getattr(self, name)
            if v is not None and not (isinstance(v, str) and v):
                raise StgeoTypeError(
                    f"time features: {name} must be a non-empty string or None, got {v!r}"
                )
        if self.subdiv is not None and self.holidays is None:
            raise DataValidationError(
                f"time features: subdiv={self.subdiv!r} needs the country, e.g. holidays='US'"
            )
        if self.holidays is not None:
            _holiday_calendar(self.holidays, self.subdiv, (2000,))  # unknown names fail now
        if self.timezone is not None:
            try:
                pd.Timestamp("2000-01-01", tz="UTC").tz_convert(self.timezone)
            except Exception:
                raise DataValidationError(
                    f"time features: unknown time zone {self.timezone!r}; use an IANA name "
                    "such as 'America/New_York' or 'Asia/Shanghai'"
                ) from None

    @classmethod
    def from_dict(cls, d: Mapping[str, Any] | None) -> TimeFeatures:
        """Settings from a mapping (``ModelSpec.features["time"]``; unknown keys refused)."""
        d = dict(d or {})
        bad = set(d) - set(_FIELDS)
        if bad:
            raise DataValidationError(
                f"unknown time-feature settings {sorted(bad)}; known: {list(_FIELDS)}"
            )
        return cls(**d)

    def to_dict(self) -> dict[str, Any]:
        """The settings as plain data (what a model's spec records)."""
        return asdict(self)

    def names(self) -> list[str]:
        """Column names, in order."""
        cols = ["tod_sin", "tod_cos", *(f"dow_{d}" for d in range(7)), "weekend"]
        return [*cols, "holiday"] if self.holidays else cols

    @property
    def size(self) -> int:
        """Number of columns ``F``."""
        return 11 if self.holidays else 10

    def __call__(self, times: Any) -> np.ndarray:
        """``(len(times), F)`` float32 features of ``times`` (anything pandas reads as times)."""
        t = _as_index(times)
        if self.timezone is not None:
            t = (t.tz_localize("UTC") if t.tz is None else t).tz_convert(self.timezone)
        out = np.zeros((t.size, self.size), dtype=np.float32)
        if t.size == 0:
            return out
        hours = (t.hour + t.minute / 60 + t.second / 3600).to_numpy(dtype=np.float64)
        angle = 2 * np.pi * hours / 24
        out[:, 0] = np.sin(angle)
        out[:, 1] = np.cos(angle)
        dow = t.day_of_week.to_numpy()
        out[np.arange(t.size), 2 + dow] = 1.0
        out[:, 9] = dow >= 5
        if self.holidays:
            days = t.normalize().tz_localize(None) if t.tz is not None else t.normalize()
            years = tuple(range(int(days.year.min()), int(days.year.max()) + 1))
            cal = _holiday_calendar(self.holidays, self.subdiv, years)
            out[:, 10] = [d.date() in cal for d in days]
        return out


def _as_index(times: Any) -> pd.DatetimeIndex:
    if isinstance(times, (str, pd.Timestamp, np.datetime64)):
        times = [times]
    try:
        t = pd.DatetimeIndex(
            np.asarray(times).ravel() if not isinstance(times, pd.Index) else times
        )
    except (TypeError, ValueError) as err:
        raise StgeoTypeError(f"time features need times (datetime64 values), got {err}") from None
    if t.hasnans:
        raise DataValidationError("time features: the times contain NaT")
    return t


def time_features(
    times: Any,
    *,
    holidays: str | None = None,
    subdiv: str | None = None,
    timezone: str | None = None,
) -> np.ndarray:
    """Calendar features of ``times`` as a ``(n, F)`` float32 array (see the module doc).

    Parameters
    ----------
    times : array-like of datetime64, pandas.DatetimeIndex or one time
        The times to describe (for a forecast: its valid times).
    holidays, subdiv, timezone : str, optional
        See :class:`TimeFeatures`.

    Returns
    -------
    numpy.ndarray
        ``(n, 10)`` without ``holidays``, ``(n, 11)`` with: ``tod_sin, tod_cos, dow_0..dow_6,
        weekend[, holiday]``.

    Examples
    --------
    >>> f = time_features(["2014-07-04T00:00", "2014-07-04T06:00"], holidays="US", subdiv="NY")
    >>> f[:, :2].round(3).tolist()  # midnight and 6 am on the unit circle
    [[0.0, 1.0], [1.0, 0.0]]
    >>> int(f[0, 2:9].argmax()), float(f[0, -1])  # a Friday, Independence Day
    (4, 1.0)
    """
    return TimeFeatures(holidays=holidays, subdiv=subdiv, timezone=timezone)(times)


@dataclass(frozen=True)
class ExternalVariables:
    """External variables of the data (weather, ...) as features of the predicted times.

    Variables with a ``time`` dimension and no spatial one (e.g. ``temperature(time)``,
    ``wind_speed(time)``, ``weather(time, weather_class)`` of the TaxiBJ recipe) become
    columns (one per value of their other dims), standardised with the mean and standard
    deviation of the training split (:meth:`fit`), which a model's spec records.

    Examples
    --------
    >>> import numpy as np, pandas as pd, xarray as xr
    >>> t = pd.date_range("2014-01-01", periods=4, freq="1h")
    >>> ds = xr.Dataset({"temperature": ("time", [0.0, 2.0, 4.0, 6.0])}, coords={"time": t})
    >>> ev = ExternalVariables.fit(ds, ["temperature"], (t[0], t[1]))
    >>> ev.size, ev.mean, ev.std
    (1, (1.0,), (1.0,))
    >>> ev.at(ev.table(ds), t[2:]).ravel().tolist()
    [3.0, 5.0]
    """

    names: tuple[str, ...]
    mean: tuple[float, ...]
    std: tuple[float, ...]

    @property
    def size(self) -> int:
        """Number of columns."""
        return len(self.mean)

    @staticmethod
    def _columns(ds: Any, names: Any) -> Any:
        """``(time, K)`` DataArray of the variables, one column per value of their other dims."""
        import xarray as xr

        if isinstance(names, str) or not all(isinstance(n, str) for n in names):
            raise StgeoTypeError(f"external variables must be a list of names, got {names!r}")
        cols = []
        for n in names:
            if n not in ds.data_vars:
                raise DataValidationError(
                    f"the data have no external variable {n!r}; variables with a time "
                    f"dimension only: {_time_only(ds)}"
                )
            v = ds[n]
            if "time" not in v.dims or set(v.dims) & {"x", "y", "lat", "lon"}:
                raise DataValidationError(
                    f"external variable {n!r} must have a time dimension and no spatial one, "
                    f"has dims {v.dims}; candidates: {_time_only(ds)}"
                )
            other = [d for d in v.dims if d != "time"]
            v = v.transpose("time", *other).astype("float64")
            cols.append(v.values.reshape(v.sizes["time"], -1))
        return xr.DataArray(
            np.concatenate(cols, axis=1),
            dims=("time", "column"),
            coords={"time": ds["time"].values},
        )

    @classmethod
    def fit(cls, ds: Any, names: Any, time_range: tuple[Any, Any]) -> ExternalVariables:
        """Columns of ``names`` in ``ds`` with their statistics over ``time_range``."""
        table = cls._columns(ds, list(names)).sel(time=slice(*time_range))
        vals = table.values
        if not np.isfinite(vals).all():
            raise DataValidationError(
                f"external variables {list(names)} have missing values in the training split"
            )
        std = vals.std(axis=0)
        return cls(
            tuple(names),
            tuple(float(m) for m in vals.mean(axis=0)),
            tuple(float(s) if s > 0 else 1.0 for s in std),
        )

    def table(self, ds: Any) -> tuple[np.ndarray, np.ndarray]:
        """``(times, values)``: every time of ``ds`` and its standardised columns (float32)."""
        cols = self._columns(ds, list(self.names))
        if cols.sizes["column"] != self.size:
            raise DataValidationError(
                f"external variables {list(self.names)} have {cols.sizes['column']} columns "
                f"in these data, {self.size} in the training data"
            )
        vals = (cols.values - np.asarray(self.mean)) / np.asarray(self.std)
        return np.asarray(cols["time"].values), vals.astype(np.float32)

    def at(self, table: tuple[np.ndarray, np.ndarray], times: Any) -> np.ndarray:
        """The standardised columns at ``times`` (each must be a time of the table)."""
        t_all, vals = table
        t = _as_index(times).values
        pos = np.searchsorted(t_all, t)
        ok = (pos < t_all.size) & (t_all[np.minimum(pos, t_all.size - 1)] == t)
        if not ok.all():
            raise DataValidationError(
                f"external variables {list(self.names)} are needed at the predicted times, "
                f"but the data lack {pd.Timestamp(t[~ok][0])} (forecasts need them at their "
                "valid times: append the weather forecast for those times to the data)"
            )
        out = vals[pos]
        if not np.isfinite(out).all():
            raise DataValidationError(
                f"external variables {list(self.names)} are missing (NaN) at predicted times"
            )
        return out

    def to_dict(self) -> dict[str, Any]:
        """Plain data (what a model's spec records)."""
        return {"names": list(self.names), "mean": list(self.mean), "std": list(self.std)}

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> ExternalVariables:
        """Inverse of :meth:`to_dict`."""
        return cls(tuple(d["names"]), tuple(d["mean"]), tuple(d["std"]))


def _time_only(ds: Any) -> list[str]:
    return [
        str(n)
        for n, v in ds.data_vars.items()
        if "time" in v.dims and not set(v.dims) & {"x", "y", "lat", "lon"}
    ]


def feature_rows(
    times: Any,
    calendar: TimeFeatures,
    external: ExternalVariables | None = None,
    table: tuple[np.ndarray, np.ndarray] | None = None,
) -> np.ndarray:
    """Features of ``(n, T)`` predicted times as ``(n, T * (F + K))`` float32 rows.

    For each of the ``T`` predicted times of a row: its ``F`` calendar features, then the
    ``K`` external-variable columns at that time (``external`` with its ``table`` of the
    data, see :meth:`ExternalVariables.table`). Training windows and forecasts build their
    features with this one function.

    Examples
    --------
    >>> import numpy as np
    >>> t = np.array([["2014-07-04T00", "2014-07-04T01"]], dtype="datetime64[ns]")
    >>> feature_rows(t, TimeFeatures(holidays="US")).shape
    (1, 22)
    """
    t = np.asarray(times)
    n, k = t.shape
    parts = [calendar(t.ravel())]
    if external is not None:
        if table is None:
            raise DataValidationError("external variables need the data's table")
        parts.append(external.at(table, t.ravel()))
    flat = np.concatenate(parts, axis=1) if len(parts) > 1 else parts[0]
    return np.ascontiguousarray(flat.reshape(n, k * flat.shape[1]), dtype=np.float32)
