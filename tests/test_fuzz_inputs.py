"""Property-based fuzz of the public boundary: malformed datasets and arguments fed to
``validate``, ``forecast`` (persistence), ``score`` and a tiny ``train``.

Accepted outcomes are a ``stgeo.errors`` error, or a result checked against an independent
NumPy reference (persistence values, MSE); anything else - a raw library exception, or a
result on data that must be refused - fails. Run as a script
(``PYTHONPATH=. python tests/test_fuzz_inputs.py``) it goes through every mutation and
argument once and prints the counts: clear stgeo errors, raw tracebacks, silent wrong results.
"""

from __future__ import annotations

import sys
import traceback
import warnings
from collections import Counter

import numpy as np
import pandas as pd
import pytest
import xarray as xr
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import stgeo
from stgeo.errors import StgeoError


def _base() -> xr.Dataset:
    return stgeo.testing.storm_cells(n_times=10, shape=(16, 16), seed=0)


def _with_values(ds, fn):
    return ds.assign(rain_rate=fn(ds.rain_rate.copy()))


def _set(da, idx, value):
    da = da.copy()
    da[idx] = value
    return da


def _times(ds, values):
    return ds.assign_coords(time=values)


#: which entry points must refuse a mutation (accepting it would be a silent wrong result);
#: the others may refuse it or must return a result that passes the reference checks
ALL = {"validate", "forecast", "score", "train"}
NONE: set[str] = set()
NOT_SCORE = {"validate", "forecast", "train"}  # observations are matched by label in score
VALIDATE = {"validate"}  # gaps/irregular steps: workflows never cross them; geography: strict
VALUES = {"forecast", "score", "train"}  # infinity: validate reads a few frames only
SCORE = {"score"}  # units compared with the forecast's
WORKFLOWS = {"forecast", "train"}  # validate allows extra dims; the adapter stacks only one

#: name -> (mutation, entry points that must refuse it)
MUTATIONS = {
    "clean": (lambda ds: ds, NONE),
    "empty time": (lambda ds: ds.isel(time=slice(0, 0)), ALL),
    "one time": (lambda ds: ds.isel(time=[0]), NONE),
    "no time coord": (lambda ds: ds.drop_vars("time"), ALL),
    "int times": (lambda ds: _times(ds, np.arange(ds.sizes["time"])), ALL),
    "float times": (lambda ds: _times(ds, np.arange(ds.sizes["time"]) * 0.5), ALL),
    "string times": (lambda ds: _times(ds, [str(t) for t in ds.time.values]), ALL),
    "tz times": (lambda ds: _times(ds, ds.indexes["time"].tz_localize("UTC")), ALL),
    "cftime noleap": (
        lambda ds: _times(
            ds,
            xr.date_range(
                "2001-03-01",
                periods=ds.sizes["time"],
                freq="5min",
                use_cftime=True,
                calendar="noleap",
            ),
        ),
        ALL,
    ),
    "timedelta times": (lambda ds: _times(ds, ds.time.values - ds.time.values[0]), ALL),
    "reversed times": (lambda ds: ds.isel(time=slice(None, None, -1)), NOT_SCORE),
    "duplicated time": (
        lambda ds: _times(ds, np.r_[ds.time.values[:1], ds.time.values[:-1]]),
        ALL,
    ),
    "NaT time": (
        lambda ds: _times(ds, np.r_[ds.time.values[:-1], np.datetime64("NaT")]),
        NOT_SCORE,
    ),
    "irregular time": (
        lambda ds: _times(ds, ds.time.values + np.r_[0, 0, 0, 60, [0] * 6].astype("m8[s]")),
        VALIDATE,
    ),
    "gap in time": (lambda ds: ds.isel(time=[0, 1, 2, 3, 5, 6, 7, 8, 9]), VALIDATE),
    "renamed time": (lambda ds: ds.rename(time="date"), ALL),
    "renamed grid": (lambda ds: ds.rename(y="rows", x="cols"), ALL),
    "transposed": (lambda ds: ds.transpose("x", "y", "time"), NOT_SCORE),
    "object dtype": (lambda ds: _with_values(ds, lambda a: a.astype(object)), ALL),
    "complex dtype": (lambda ds: _with_values(ds, lambda a: a.astype(complex)), ALL),
    "string dtype": (lambda ds: _with_values(ds, lambda a: a.astype(str)), ALL),
    "bool dtype": (lambda ds: _with_values(ds, lambda a: a > 1), NOT_SCORE),
    "int dtype": (lambda ds: _with_values(ds, lambda a: (a * 10).astype("int16")), NONE),
    "float16": (lambda ds: _with_values(ds, lambda a: a.astype("float16")), NONE),
    "all NaN": (lambda ds: _with_values(ds, lambda a: a * np.nan), ALL),
    "NaN frame": (lambda ds: _with_values(ds, lambda a: _set(a, 4, np.nan)), NONE),
    "all inf": (lambda ds: _with_values(ds, lambda a: a * 0 + np.inf), VALUES),
    "one inf pixel": (lambda ds: _with_values(ds, lambda a: _set(a, (5, 3, 3), np.inf)), VALUES),
    "one -inf pixel": (lambda ds: _with_values(ds, lambda a: _set(a, (2, 3, 3), -np.inf)), VALUES),
    # the last frames are the validation period of train(): checked by another branch
    "inf in the last frame": (
        lambda ds: _with_values(ds, lambda a: _set(a, (9, 3, 3), np.inf)),
        VALUES,
    ),
    "huge values": (lambda ds: _with_values(ds, lambda a: a * 1e37), NONE),
    "no units": (lambda ds: _with_values(ds, lambda a: a.assign_attrs(units="")), NONE),
    "units dBZ": (lambda ds: _with_values(ds, lambda a: a.assign_attrs(units="dBZ")), SCORE),
    "units mm/h": (lambda ds: _with_values(ds, lambda a: a.assign_attrs(units="mm/h")), NONE),
    "lat in radians*100": (lambda ds: ds.assign_coords(lat=ds.lat * 100), VALIDATE),
    "extra dim": (
        lambda ds: ds.assign(rain_rate=ds.rain_rate.expand_dims(member=2, axis=1)),
        NONE,
    ),
    "two extra dims": (
        lambda ds: ds.assign(rain_rate=ds.rain_rate.expand_dims(member=2, level=2, axis=[1, 2])),
        WORKFLOWS,
    ),
    "1x1 grid": (lambda ds: ds.isel(y=[0], x=[0]), NONE),
    "no data variables": (lambda ds: ds.drop_vars("rain_rate"), ALL),
    "DataArray": (lambda ds: ds.rain_rate, NONE),
    "string events": (
        lambda ds: ds.assign_coords(event=("time", ["a"] * 5 + ["b"] * 5)),
        NONE,
    ),
}

LEAD_STEPS = [1, 3, [1, 3], 0, -1, True, "12", [1, "2"], [2, 1], [1, 1], 1.5, None, [], (2,)]
METRICS = ["mse", ["mse", "csi"], "csi", "nope", 3, [], ["mse", 3]]
THRESHOLDS = [None, 1.0, [0.1, 1.0], [], "1", True, float("nan"), [1.0, 1.0], -5.0]


class Outcome:
    """What a call gave: ``"ok"`` (checked correct), ``"stgeo"``, ``"raw"`` or ``"wrong"``."""

    def __init__(self, kind: str, detail: str = ""):
        self.kind, self.detail = kind, detail

    def __repr__(self) -> str:
        return f"{self.kind}: {self.detail}"


def _call(fn, check) -> Outcome:
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            result = fn()
    except StgeoError as err:
        return Outcome("stgeo", f"{type(err).__name__}: {str(err)[:120]}")
    except Exception as err:
        tb = traceback.format_exception_only(type(err), err)[-1].strip()
        return Outcome("raw", tb[:300])
    problem = check(result)
    return Outcome("wrong", problem) if problem else Outcome("ok")


def _variable(ds):
    return ds if isinstance(ds, xr.DataArray) else ds.get("rain_rate")


# -- the calls and their independent checks ------------------------------------------------
def run_validate(name: str) -> Outcome:
    mutate, refusers = MUTATIONS[name]
    ds = mutate(_base())
    must_refuse = "validate" in refusers

    def check(result):
        if result is not ds:
            return "validate did not return its input"
        return f"validate accepted {name!r}" if must_refuse else ""

    return _call(lambda: stgeo.validate(ds), check)


def _persistence_ref(ds, fc) -> str:
    da = _variable(ds)
    t0 = pd.DatetimeIndex(fc.init_time.values)
    ref = da.sel(time=t0).astype("float32").values
    got = fc.values
    if got.shape[:1] + got.shape[2:] != ref.shape:
        return f"shape {got.shape} vs reference {ref.shape}"
    for k in range(got.shape[1]):
        if not np.array_equal(got[:, k], ref, equal_nan=True):
            return f"lead {k}: persistence values differ from the input at init_time"
    step = pd.Timedelta(fc.attrs.get("time_step", "5min"))
    vt = fc.valid_time.values
    want = fc.init_time.values[:, None] + (fc.lead_time.values[None, :])
    if not np.array_equal(vt, want) or (fc.lead_time.values % step != pd.Timedelta(0)).any():
        return "valid_time is not init_time + lead_time in data steps"
    return ""


def run_forecast(name: str, lead_steps) -> Outcome:
    mutate, refusers = MUTATIONS[name]
    ds = mutate(_base())

    def check(fc):
        if "forecast" in refusers:
            return f"forecast accepted {name!r}"
        if isinstance(fc, xr.Dataset):
            fc = fc["rain_rate"]
        leads = list(range(1, lead_steps + 1)) if isinstance(lead_steps, int) else lead_steps
        if lead_steps is not None and fc.sizes["lead_time"] != len(leads):
            return f"lead_steps={lead_steps!r} gave {fc.sizes['lead_time']} leads"
        if "member" in fc.dims:
            fc = fc.transpose("init_time", "lead_time", "member", ...)
        return _persistence_ref(ds, fc)

    return _call(
        lambda: stgeo.forecast(ds, "persistence", lead_steps=lead_steps, progress=False), check
    )


def _mse_ref(fc: xr.DataArray, obs: xr.DataArray) -> np.ndarray:
    o = obs.sel(time=xr.DataArray(fc.valid_time.values, dims=("init_time", "lead_time")))
    o = o.transpose("init_time", "lead_time", *fc.dims[2:])
    err = (fc.values.astype(float) - o.values.astype(float)) ** 2
    return np.nanmean(err.reshape(err.shape[0], err.shape[1], -1).transpose(1, 0, 2).reshape(
        err.shape[1], -1), axis=1)  # fmt: skip


_CLEAN_FC: dict[str, xr.DataArray] = {}


def _clean_forecast() -> xr.DataArray:
    if "fc" not in _CLEAN_FC:
        ds = _base()
        fc = stgeo.forecast(ds, "persistence", lead_steps=2, progress=False)
        _CLEAN_FC["fc"] = fc.isel(init_time=slice(0, -2)).load()
    return _CLEAN_FC["fc"]


#: forecast-side mutations: name -> (mutation of the forecast DataArray, must be refused?)
FC_MUTATIONS = {
    "clean": (lambda fc: fc, False),
    "object dtype": (lambda fc: fc.astype(object), True),
    "complex dtype": (lambda fc: fc.astype(complex), True),
    "string dtype": (lambda fc: fc.astype(str), True),
    "bool dtype": (lambda fc: fc > 1, False),
    "all NaN": (lambda fc: fc * np.nan, True),
    "all inf": (lambda fc: fc * 0 + np.inf, True),
    "one inf pixel": (lambda fc: _set(fc, (0, 0, 2, 2), np.inf), True),
    "units dBZ": (lambda fc: fc.assign_attrs(units="dBZ"), True),
    "units mm/h": (lambda fc: fc.assign_attrs(units="mm/h"), False),
    "no units": (lambda fc: fc.assign_attrs(units=""), False),
    "transposed": (lambda fc: fc.transpose("lead_time", "x", "init_time", "y"), False),
    "no valid_time": (lambda fc: fc.drop_vars("valid_time"), False),
    "int init_time": (
        lambda fc: fc.assign_coords(init_time=np.arange(fc.sizes["init_time"])),
        True,
    ),
}


def _score_check(fc, obs, metrics, must_refuse, name):
    def check(res):
        names = [metrics] if isinstance(metrics, str) else list(metrics)
        if must_refuse:
            return f"score accepted {name!r}"
        if "mse" in names:
            a = fc.astype(float)
            if "valid_time" not in a.coords:
                a = a.assign_coords(valid_time=a.init_time + a.lead_time)
            a = a.transpose("init_time", "lead_time", "y", "x")
            ref = _mse_ref(a, obs.transpose("time", "y", "x"))
            if not np.allclose(res.mse.values, ref, rtol=1e-5, equal_nan=True):
                return f"mse {res.mse.values} vs reference {ref}"
        if "csi" in names and not np.isfinite(res.csi.values).all():
            return "csi is not finite"
        return ""

    return check


def run_score(name: str, metrics, thresholds) -> Outcome:
    """Clean forecast, observations mutated by ``MUTATIONS[name]``."""
    mutate, refusers = MUTATIONS[name]
    fc = _clean_forecast()
    obs = mutate(_base())
    refuse = "score" in refusers
    o = _variable(obs)
    check = _score_check(fc, o, metrics, refuse, name) if o is not None else (lambda r: "")
    return _call(lambda: stgeo.score(fc, obs, metrics=metrics, thresholds=thresholds), check)


def run_score_forecast(name: str, metrics, thresholds) -> Outcome:
    """Forecast mutated by ``FC_MUTATIONS[name]``, clean observations."""
    mutate, bad = FC_MUTATIONS[name]
    fc = mutate(_clean_forecast())
    obs = _base().rain_rate
    check = _score_check(fc, obs, metrics, bad, name)
    return _call(lambda: stgeo.score(fc, obs, metrics=metrics, thresholds=thresholds), check)


def run_train(name: str) -> Outcome:
    mutate, refusers = MUTATIONS[name]
    ds = mutate(_base())

    def check(tm):
        if "train" in refusers:
            return f"train accepted {name!r}"
        params = [p.detach() for p in tm.module.parameters()]
        if not all(bool(np.isfinite(p.numpy()).all()) for p in params):
            return "trained weights are not finite"
        return ""

    return _call(
        lambda: stgeo.train(
            ds,
            "convlstm",
            variable="rain_rate",
            in_steps=2,
            out_steps=1,
            epochs=1,
            max_steps_per_epoch=1,
            hidden=2,
            num_layers=1,
            precision="fp32",
            progress=False,
            batch_size=2,
            seed=0,
        ),
        check,
    )


# -- the property-based tests ------------------------------------------------------------------
#: (entry point, mutation) whose fix belongs to another part of stgeo (the training data
#: checks: non-finite values only in the validation period); counted apart, not failed here
KNOWN_ELSEWHERE = {("train", "inf in the last frame")}

FUZZ = settings(
    max_examples=60,
    deadline=None,
    derandomize=True,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
)


def _assert_accepted(out: Outcome, what: str) -> None:
    assert out.kind in ("ok", "stgeo"), f"{what}: {out}"


@FUZZ
@given(name=st.sampled_from(sorted(MUTATIONS)))
def test_fuzz_validate(name):
    _assert_accepted(run_validate(name), f"validate({name})")


@FUZZ
@given(name=st.sampled_from(sorted(MUTATIONS)), lead=st.sampled_from(LEAD_STEPS))
def test_fuzz_forecast(name, lead):
    _assert_accepted(run_forecast(name, lead), f"forecast({name}, lead_steps={lead!r})")


@FUZZ
@given(
    name=st.sampled_from(sorted(MUTATIONS)),
    metrics=st.sampled_from(METRICS),
    thresholds=st.sampled_from(THRESHOLDS),
)
def test_fuzz_score_observations(name, metrics, thresholds):
    out = run_score(name, metrics, thresholds)
    _assert_accepted(out, f"score(obs={name}, {metrics!r}, {thresholds!r})")


@FUZZ
@given(
    name=st.sampled_from(sorted(FC_MUTATIONS)),
    metrics=st.sampled_from(METRICS),
    thresholds=st.sampled_from(THRESHOLDS),
)
def test_fuzz_score_forecast(name, metrics, thresholds):
    out = run_score_forecast(name, metrics, thresholds)
    _assert_accepted(out, f"score(fc={name}, {metrics!r}, {thresholds!r})")


@pytest.mark.slow
@settings(max_examples=25, deadline=None, derandomize=True)
@given(name=st.sampled_from(sorted(MUTATIONS)))
def test_fuzz_train(name):
    out = run_train(name)
    if ("train", name) not in KNOWN_ELSEWHERE:
        _assert_accepted(out, f"train({name})")


# -- the probe: every mutation and argument once, counted --------------------------------------
def probe() -> Counter:
    """Run every case once; print and return the counts of each outcome."""
    counts: Counter = Counter()
    shown: list[str] = []

    def record(what, out, known=False):
        kind = f"{out.kind} (known, elsewhere)" if known and out.kind == "wrong" else out.kind
        counts[kind] += 1
        if out.kind in ("raw", "wrong"):
            shown.append(f"{kind.upper():5s} {what}: {out.detail}")

    for name in MUTATIONS:
        record(f"validate({name})", run_validate(name))
        record(f"train({name})", run_train(name), ("train", name) in KNOWN_ELSEWHERE)
        for lead in LEAD_STEPS:
            record(f"forecast({name}, {lead!r})", run_forecast(name, lead))
        for metrics, thr in [("mse", None), (["mse", "csi"], [0.1, 1.0])]:
            record(f"score(obs={name}, {metrics})", run_score(name, metrics, thr))
    for name in FC_MUTATIONS:
        for metrics, thr in [("mse", None), (["mse", "csi"], [0.1, 1.0])]:
            record(f"score(fc={name}, {metrics})", run_score_forecast(name, metrics, thr))
    for metrics in METRICS:
        for thr in THRESHOLDS:
            record(f"score(clean, {metrics!r}, {thr!r})", run_score("clean", metrics, thr))
    print("\n".join(shown))
    total = sum(counts.values())
    print(
        f"{total} cases: {counts['stgeo']} clear stgeo errors, {counts['ok']} correct results, "
        f"{counts['raw']} raw tracebacks, {counts['wrong']} silent wrong results"
        + (
            f" (+{counts['wrong (known, elsewhere)']} known, left to the training-data checks)"
            if counts["wrong (known, elsewhere)"]
            else ""
        )
    )
    return counts


if __name__ == "__main__":
    c = probe()
    sys.exit(1 if c["raw"] or c["wrong"] else 0)
