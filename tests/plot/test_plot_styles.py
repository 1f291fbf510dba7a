"""Colour scales chosen from the variable."""

from __future__ import annotations

import matplotlib

matplotlib.use("Agg")

import numpy as np
import pytest
import xarray as xr

from stgeo.errors import DataValidationError
from stgeo.plot import error_style, field_style
from stgeo.plot.styles import RAIN_LEVELS, is_precipitation


def _da(name, units, values=(0.0, 1.0), **attrs):
    return xr.DataArray(
        np.asarray(values, float), dims="x", name=name, attrs={"units": units, **attrs}
    )


def test_rain_rate_levels_and_transparent_dry_pixels():
    s = field_style(_da("rain_rate", "mm h-1", standard_name="rainfall_rate"))
    assert s.kind == "precipitation" and s.levels == RAIN_LEVELS and s.dry == 0.1
    rgba = s.cmap(s.norm(np.ma.masked_invalid([0.0, 0.05, 0.3, 7.0, 150.0, np.nan])))
    assert rgba[0, 3] == 0 and rgba[1, 3] == 0 and rgba[5, 3] == 0  # dry and missing: clear
    assert rgba[2, 3] == 1 and rgba[3, 3] == 1 and rgba[4, 3] == 1
    # one colour per class: 0.3 and 0.4 share it, 0.3 and 0.6 do not
    c = s.cmap(s.norm(np.array([0.3, 0.4, 0.6])))
    assert np.allclose(c[0], c[1]) and not np.allclose(c[0], c[2])
    assert s.colorbar_kwargs()["extend"] == "max"


@pytest.mark.parametrize(
    ("name", "units", "std", "expected"),
    [
        ("precip", "", "", True),
        ("tp", "mm", "", True),
        ("x", "mm/h", "", True),
        ("t2m", "K", "air_temperature", False),
        ("flow", "1", "", False),
        ("rr", "kg m-2 s-1", "rainfall_rate", False),
    ],
)
def test_precipitation_detection(name, units, std, expected):
    assert is_precipitation(_da(name, units, standard_name=std)) is expected


def test_continuous_limits_shared_and_signed_data_centred():
    t = _da("t2m", "K", [270.0, 280.0], standard_name="air_temperature")
    fc, obs = np.linspace(270, 280, 101), np.linspace(265, 285, 101)
    s = field_style(t, [fc, obs])
    assert s.kind == "continuous" and s.cmap.name.startswith("RdYlBu_r")
    assert s.vmin == pytest.approx(np.percentile(np.r_[fc, obs], 1))
    assert s.vmax == pytest.approx(np.percentile(np.r_[fc, obs], 99))
    u = field_style(_da("u10", "m s-1"), [np.linspace(-3, 8, 50)])
    assert u.vmin == -u.vmax and u.cmap.name.startswith("RdBu_r")
    assert field_style(_da("vil", "kg m-2"), vmin=0, vmax=80).vmax == 80


def test_dbz_levels_user_levels_and_error_scale():
    assert field_style(_da("dbz", "dBZ")).kind == "reflectivity"
    vil = field_style(_da("vil", "1"))
    assert vil.kind == "vil" and {16.0, 74.0, 133.0, 160.0, 181.0, 219.0} <= set(vil.levels)
    assert vil.cmap(vil.norm(np.ma.masked_invalid([10.0])))[0, 3] == 0  # below 16: clear
    ir = field_style(_da("ir107", "1"), [np.linspace(-6000, 2000, 50)])
    assert ir.kind == "brightness_temperature" and ir.cmap(0.0)[:3] == pytest.approx((1, 1, 1))
    s = field_style(_da("flow", "1"), levels=[1, 10, 100])
    assert s.levels == (1.0, 10.0, 100.0)
    with pytest.raises(DataValidationError, match="increasing"):
        field_style(_da("flow", "1"), levels=[5, 1])
    e = error_style([np.array([-1.0, 0.5, 2.0, np.nan])])
    assert e.vmin == -e.vmax and 1.9 < e.vmax <= 2.0
    assert e.cmap(e.norm(np.array([0.0])))[0, :3] == pytest.approx((0.97, 0.97, 0.97), abs=0.03)


def test_importing_stgeo_plot_loads_no_plotting_libraries():
    import subprocess
    import sys

    code = (
        "import sys, stgeo, stgeo.plot; "
        "print(sorted(m for m in ('matplotlib', 'cartopy', 'netCDF4') if m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"
