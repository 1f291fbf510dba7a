"""Rendered maps: lat/lon, polar stereographic and LAEA grids, checked pixel by pixel."""

from __future__ import annotations

import logging
import warnings

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import pytest
import xarray as xr
from plot_helpers import (
    BRUSSELS,
    HELSINKI,
    NEW_YORK,
    OVER_COLOR,
    POLAR,
    SEVIR_LAEA,
    add_blob,
    axes_pixels,
    color_pixels,
    expected_pixel,
    projected_field,
    read_png,
)

import stgeo
from stgeo.errors import (
    DataValidationError,
    OutputExistsError,
    StgeoTypeError,
    UnknownNameError,
)
from stgeo.plot import find_map_data, map_projection, plot_field, plot_forecast

HAVE_COAST = find_map_data().coastline is not None


@pytest.fixture(autouse=True)
def _close_figures():
    yield
    plt.close("all")


def _proj(projection) -> dict:
    """PROJ parameters of a cartopy projection (pyproj warns that PROJ strings are lossy)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        return projection.to_dict()


def _artist(ax):
    """The field drawn on a map panel (an image for regular grids, else a mesh)."""
    return ax.images[0] if ax.images else ax.collections[0]


def _render_blob(ds, lat, lon, path, **kw):
    """Draw one frame holding a >100 mm/h blob at (lat, lon); return the axes and PNG."""
    blob, where = add_blob(ds, lat, lon)
    da = blob.rain_rate.isel(time=1)
    ax = plot_field(da, colorbar=False, **kw)
    fig = ax.figure
    fig.savefig(path, dpi=fig.dpi)
    return ax, read_png(path), da, where


def _check_blob_position(ax, img, lat, lon, tol_px):
    hits = color_pixels(img, OVER_COLOR)
    assert len(hits) >= 4, "the >100 mm/h blob was not drawn"
    row, col = hits.mean(axis=0)
    erow, ecol = expected_pixel(ax, lon, lat)
    assert abs(row - erow) <= tol_px and abs(col - ecol) <= tol_px, (
        f"blob drawn at pixel ({row:.1f}, {col:.1f}), cartopy puts ({lat}, {lon}) at "
        f"({erow:.1f}, {ecol:.1f})"
    )


def _wet_fraction_matches(img, ax, da, tol=0.12):
    inside = axes_pixels(img, ax)
    coloured = (np.abs(inside - 255).max(axis=-1) > 40).mean()  # not white (not dry)
    wet = float((da >= 0.1).mean())
    # gridlines/coastlines add a few dark pixels; dry pixels are transparent (white)
    assert coloured == pytest.approx(wet, abs=tol), (coloured, wet)
    return coloured


def test_latlon_grid_map(tmp_path):
    ds = stgeo.testing.storm_cells(
        n_times=3, shape=(40, 48), seed=2, projected=False, center=BRUSSELS
    )
    ax, img, da, where = _render_blob(ds, *BRUSSELS, tmp_path / "latlon.png")
    assert type(ax.projection).__name__ == "PlateCarree"
    assert ax.get_title() == "2021-07-04 12:05"
    _check_blob_position(ax, img, *where, tol_px=2)
    _wet_fraction_matches(img, ax, da)
    # map extent = the grid's cell edges
    x0, _, _, y1 = ax.get_extent(crs=ax.projection)
    lon, lat = ds.lon.values, ds.lat.values
    assert x0 == pytest.approx(lon[0] - (lon[1] - lon[0]) / 2, abs=1e-6)
    assert y1 == pytest.approx(lat[-1] + (lat[1] - lat[0]) / 2, abs=1e-6)


def test_polar_stereographic_radar_grid(tmp_path):
    ds = projected_field(POLAR, (62.0, 25.5), shape=(56, 48), res=10_000.0)
    # (no coastlines: Helsinki's coast would cross the blob)
    ax, img, da, where = _render_blob(
        ds, *HELSINKI, tmp_path / "polar.png", coastlines=False, borders=False
    )
    params = _proj(ax.projection)
    assert params["proj"] == "stere" and float(params["lat_ts"]) == 60.0
    assert float(params["lon_0"]) == 25.0
    assert where == pytest.approx(HELSINKI, abs=0.1)
    _check_blob_position(ax, img, *where, tol_px=2)
    _wet_fraction_matches(img, ax, da)
    # drawn on the native grid: the map extent is the grid's own x/y cell edges
    x0, _, _, y1 = ax.get_extent(crs=ax.projection)
    assert x0 == pytest.approx(float(ds.x[0]) - 5_000.0)
    assert y1 == pytest.approx(float(ds.y[-1]) + 5_000.0)
    # not resampled: the 3x3-cell blob covers 9 cells' worth of pixels
    cell_px = ax.get_window_extent().width / ds.sizes["x"]
    assert len(color_pixels(img, OVER_COLOR)) == pytest.approx(9 * cell_px**2, rel=0.3)


def test_laea_sevir_grid_with_coastline(tmp_path, caplog):
    from stgeo.plot import mapdata

    ds = projected_field(SEVIR_LAEA, (41.0, -73.0), shape=(48, 48), res=8_000.0)
    mapdata._logged.clear()  # the reason is logged once per process
    with caplog.at_level(logging.INFO, logger="stgeo.plot"):
        ax, img, da, where = _render_blob(ds, *NEW_YORK, tmp_path / "laea.png")
    params = _proj(ax.projection)
    assert params["proj"] == "laea" and float(params["lon_0"]) == -98.0
    assert where == pytest.approx(NEW_YORK, abs=0.1)
    _check_blob_position(ax, img, *where, tol_px=2)
    _wet_fraction_matches(img, ax, da)
    features = [a for a in ax.get_children() if type(a).__name__ == "FeatureArtist"]
    if HAVE_COAST:
        assert features, "coastline data exist but no coastline was drawn"
        # draw the coastline alone: dark line pixels appear inside the map
        ax2 = plot_field(da * np.nan, colorbar=False, gridlines=False)
        ax2.figure.savefig(tmp_path / "coast.png", dpi=ax2.figure.dpi)
        inside = axes_pixels(read_png(tmp_path / "coast.png"), ax2)
        dark = (inside.max(axis=-1) < 120).sum()
        assert dark > 50, "no coastline pixels"
    else:
        assert not features
        assert "without coastlines" in caplog.text


def test_no_map_data_draws_and_logs(tmp_path, caplog):
    ds = projected_field(SEVIR_LAEA, (41.0, -73.0), shape=(24, 24), res=16_000.0)
    from stgeo.plot import mapdata

    mapdata._logged.clear()
    with caplog.at_level(logging.INFO, logger="stgeo.plot"):
        ax = plot_field(
            ds.rain_rate.isel(time=0), map_data_dir=tmp_path / "empty", path=tmp_path / "bare.png"
        )
    assert (tmp_path / "bare.png").stat().st_size > 5_000
    assert not [a for a in ax.get_children() if type(a).__name__ == "FeatureArtist"]
    assert "without coastlines" in caplog.text and "python-cartopy-data" in caplog.text
    assert "without country borders" in caplog.text


def test_missing_map_data_warns_once_and_briefly(tmp_path, caplog):
    from stgeo.plot import mapdata

    ds = projected_field(SEVIR_LAEA, (41.0, -73.0), shape=(12, 12), res=30_000.0)
    mapdata._logged.clear()
    with caplog.at_level(logging.WARNING, logger="stgeo.plot"):
        for _ in range(2):
            plot_field(ds.rain_rate.isel(time=0), map_data_dir=tmp_path, colorbar=False)
    (warning,) = [r.getMessage() for r in caplog.records if r.levelno >= logging.WARNING]
    assert "without coastlines" in warning and "STGEO_MAP_DATA" in warning
    assert len(warning) < 200, len(warning)


def test_natural_earth_preferred_when_present(tmp_path):
    """A Natural Earth coastline in cartopy's layout is found and used before GSHHS."""
    import shapefile  # pyshp, a cartopy dependency

    d = tmp_path / "shapefiles" / "natural_earth" / "physical"
    d.mkdir(parents=True)
    w = shapefile.Writer(str(d / "ne_10m_coastline"), shapeType=shapefile.POLYLINE)
    w.field("name", "C")
    w.line([[[-74.5, 40.0], [-73.5, 41.2], [-72.0, 41.0]]])
    w.record("test")
    w.close()
    md = find_map_data(tmp_path, span_deg=5.0)
    assert md.coastline_source == "natural_earth_10m" and md.borders is None
    ds = projected_field(SEVIR_LAEA, (41.0, -73.0), shape=(24, 24), res=16_000.0)
    ax = plot_field(
        ds.rain_rate.isel(time=0) * np.nan, map_data_dir=tmp_path, colorbar=False, gridlines=False
    )
    ax.figure.savefig(tmp_path / "ne.png", dpi=ax.figure.dpi)
    inside = axes_pixels(read_png(tmp_path / "ne.png"), ax)
    assert (inside.max(axis=-1) < 120).sum() > 20  # the line is drawn


def test_forecast_obs_error_panels(tmp_path):
    ds = stgeo.testing.storm_cells(n_times=12, shape=(40, 40), seed=5)
    fc = ds.st.forecast(model="persistence", lead_steps=4)
    path = tmp_path / "fc.png"
    fig = plot_forecast(
        fc, ds, init_time="2021-07-04T12:20", lead_time=["10min", "20min"], path=path
    )
    assert path.stat().st_size > 20_000
    maps = [a for a in fig.axes if hasattr(a, "projection")]
    assert len(maps) == 6  # 2 lead times x (forecast, observed, error)
    titles = [a.get_title() for a in maps]
    assert titles[0] == "persistence +10 min\nvalid 2021-07-04 12:30"
    assert titles[1] == "observed\nvalid 2021-07-04 12:30"
    assert titles[2].startswith("persistence - observed")
    assert "mm h-1" in fig.get_suptitle() and "2021-07-04 12:20" in fig.get_suptitle()
    # forecast and observation share one scale; the error scale is symmetric around 0
    fc_mesh, obs_mesh, err_mesh = (_artist(a) for a in maps[:3])
    assert fc_mesh.norm is obs_mesh.norm
    assert err_mesh.norm.vmin == pytest.approx(-err_mesh.norm.vmax)
    # the error panel is forecast minus observation where either is wet
    f = fc.sel(init_time="2021-07-04T12:20", lead_time="10min").values
    o = ds.rain_rate.sel(time="2021-07-04T12:30").values
    err = np.ma.filled(err_mesh.get_array().astype(float), np.nan).reshape(f.shape)
    wet = (f >= 0.1) | (o >= 0.1)
    np.testing.assert_allclose(err[wet], (f - o)[wet], rtol=1e-6)
    assert np.isnan(err[~wet]).all()
    # colour bars name the variable and units
    labels = [a.get_xlabel() for a in fig.axes if not hasattr(a, "projection")]
    assert "rain rate [mm h-1]" in labels and "forecast - observed [mm h-1]" in labels


def test_forecast_only_default_leads_and_accessor(tmp_path):
    ds = stgeo.testing.storm_cells(n_times=10, shape=(24, 24), seed=1, projected=False)
    fc = ds.st.forecast(model="persistence", lead_steps=6)
    fig = fc.st.plot(path=tmp_path / "a.png")
    maps = [a for a in fig.axes if hasattr(a, "projection")]
    assert [a.get_title().splitlines()[0] for a in maps] == [
        "persistence +5 min",
        "persistence +15 min",
        "persistence +20 min",
        "persistence +30 min",
    ]


def test_plain_time_series_and_missing_observation(tmp_path):
    ds = stgeo.testing.storm_cells(n_times=6, shape=(24, 24), seed=1)
    fig = plot_forecast(ds, time=["2021-07-04T12:05", "2021-07-04T12:15"])
    assert [a.get_title() for a in fig.axes if hasattr(a, "projection")] == [
        "2021-07-04 12:05",
        "2021-07-04 12:15",
    ]
    # a forecast whose valid time is past the observations: panels say so
    fc = ds.st.forecast(model="persistence", lead_steps=2)
    fig = plot_forecast(fc, ds.isel(time=slice(0, 6)), init_time=-1, lead_time="5min")
    texts = [t.get_text() for a in fig.axes for t in a.texts]
    assert any(t.startswith("no observation at") for t in texts)


def test_channels_and_curvilinear_grid(tmp_path):
    cf = stgeo.testing.crowd_flows(n_days=1, shape=(12, 8), step="1h", seed=0)
    fig = plot_forecast(cf, channel="outflow", time=["2015-11-02T08:00"])
    ax = fig.axes[0]
    assert type(ax.projection).__name__ == "PlateCarree"  # 2-D lat/lon, no CRS
    assert "(outflow)" in fig.get_suptitle()
    mesh = _artist(ax)
    assert mesh in ax.collections  # curvilinear: a mesh on the 2-D lon/lat
    np.testing.assert_allclose(
        np.asarray(mesh.get_array()).ravel(),
        cf.flow.sel(channel="outflow", time="2015-11-02T08:00").values.ravel(),
    )
    with pytest.raises(UnknownNameError, match="valid channels"):
        plot_forecast(cf, channel="sideflow")


def test_index_grid_without_geography(tmp_path, caplog):
    da = xr.DataArray(
        np.random.default_rng(0).gamma(1.0, size=(2, 8, 10)),
        dims=("time", "y", "x"),
        coords={"time": pd.date_range("2020-01-01", periods=2, freq="h")},
        name="flow",
        attrs={"units": "1"},
    )
    with caplog.at_level(logging.INFO, logger="stgeo.plot"):
        fig = plot_forecast(da, path=tmp_path / "plain.png")
    assert not hasattr(fig.axes[0], "projection")
    assert "without a map" in caplog.text


@pytest.mark.filterwarnings("ignore::UserWarning")  # pyproj: PROJ strings are lossy
def test_projection_from_crs():
    ds = projected_field(POLAR, (62.0, 25.5), shape=(8, 8))
    assert _proj(map_projection(ds.rain_rate))["proj"] == "stere"
    for crs in (
        "+proj=aea +lat_1=29.5 +lat_2=45.5 +lat_0=23 +lon_0=-96 +datum=NAD83 +units=m",
        "+proj=lcc +lat_1=33 +lat_2=45 +lat_0=39 +lon_0=-96 +ellps=WGS84 +units=m",
        "+proj=somerc +lat_0=46.95 +lon_0=7.44 +k_0=1 +x_0=600000 +y_0=200000 +ellps=bessel",
    ):
        center = (39.0, -96.0) if "96" in crs else (46.8, 8.2)
        da = projected_field(crs, center, shape=(8, 8)).rain_rate
        proj = map_projection(da)
        assert _proj(proj)["proj"] == crs.split()[0].split("=")[1]
        # cartopy maps the grid's lat/lon to its own x/y like pyproj did
        x, y = proj.transform_point(float(da.lon[3, 4]), float(da.lat[3, 4]), proj.as_geodetic())
        assert x == pytest.approx(float(da.x[4]), abs=1.0)
        assert y == pytest.approx(float(da.y[3]), abs=1.0)


def test_km_coordinates_are_scaled(tmp_path):
    ds = projected_field(POLAR, (62.0, 25.5), shape=(16, 16), res=10_000.0)
    km = ds.assign_coords(
        x=("x", ds.x.values / 1000, {"units": "km"}), y=("y", ds.y.values / 1000, {"units": "km"})
    )
    ax = plot_field(km.rain_rate.isel(time=0), colorbar=False)
    x0, *_ = ax.get_extent(crs=ax.projection)
    assert x0 == pytest.approx(float(ds.x[0]) - 5_000.0)


def test_bad_input_errors():
    ds = stgeo.testing.storm_cells(n_times=8, shape=(16, 16), seed=0)
    fc = ds.st.forecast(model="persistence", lead_steps=2)
    with pytest.raises(StgeoTypeError, match="'30min'"):
        plot_forecast(fc, lead_time=2)
    with pytest.raises(UnknownNameError, match=r"available lead times: \+5 min, \+10 min"):
        plot_forecast(fc, lead_time="1h")
    with pytest.raises(UnknownNameError, match="initial times run from"):
        plot_forecast(fc, init_time="2030-01-01")
    two = ds.assign(other=ds.rain_rate * 2)
    with pytest.raises(UnknownNameError, match="variable='NAME'"):
        plot_forecast(two)
    ens = xr.concat([fc, fc], dim="member")
    with pytest.raises(DataValidationError, match="extra dimension 'member'"):
        plot_forecast(ens)
    with pytest.raises(StgeoTypeError, match="DataArray or Dataset"):
        plot_forecast(np.zeros((3, 4, 4)))
    with pytest.raises(DataValidationError, match="different grids: 'y' has 16 points"):
        plot_forecast(fc, ds.isel(y=slice(0, 8)))
    with pytest.raises(StgeoTypeError, match="map_projection"):
        plot_field(ds.rain_rate.isel(time=0), ax=plt.figure().add_subplot())


@pytest.fixture(scope="module")
def small():
    ds = stgeo.testing.storm_cells(n_times=6, shape=(12, 12), seed=0)
    return ds, ds.st.forecast(model="persistence", lead_steps=2)


def test_path_keeps_existing_files_and_refuses_folders(tmp_path, small):
    ds, fc = small
    mine = tmp_path / "precious.png"
    mine.write_text("my figure")
    with pytest.raises(OutputExistsError, match="precious.png exists; pass overwrite=True"):
        fc.st.plot(path=mine, coastlines=False)
    with pytest.raises(OutputExistsError, match="overwrite=True"):
        plot_forecast(fc, ds.rain_rate, path=mine, coastlines=False)
    with pytest.raises(OutputExistsError, match="overwrite=True"):
        plot_field(ds.rain_rate.isel(time=0), path=mine, coastlines=False)
    assert mine.read_text() == "my figure"
    fig = plot_forecast(fc, path=mine, overwrite=True, lead_time="5min", coastlines=False)
    assert mine.read_bytes().startswith(b"\x89PNG") and fig is not None
    with pytest.raises(DataValidationError, match="give a file name"):
        fc.st.plot(path=f"{tmp_path / 'plots2'}/")
    with pytest.raises(OutputExistsError, match="is a folder; give a file name"):
        fc.st.plot(path=tmp_path, overwrite=True)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["precious.png"]


def test_path_format_and_dpi_are_checked_before_drawing(tmp_path, small, monkeypatch):
    import stgeo.plot.maps as maps

    _, fc = small
    monkeypatch.setattr(maps, "_plan", lambda *a, **k: pytest.fail("drew before checking"))
    with pytest.raises(DataValidationError, match=r"'\.xyz'.*supported: .*\.png"):
        plot_forecast(fc, path=tmp_path / "x.xyz")
    with pytest.raises(DataValidationError, match="dpi must be a positive number"):
        plot_forecast(fc, path=tmp_path / "x.png", dpi=0)
    assert list(tmp_path.iterdir()) == []


def test_observations_on_another_grid_of_the_same_shape_are_refused(small):
    ds, fc = small
    moved = ds.assign_coords(y=ds.y + 200_000.0)  # same shape, 200 km north
    with pytest.raises(DataValidationError, match="different grids: coordinate 'y' differs"):
        fc.st.plot(obs=moved.rain_rate, lead_time="5min")
    with pytest.raises(DataValidationError, match="different grids"):
        plot_forecast(fc, moved, lead_time="5min")
    # the same check and message as scoring
    with pytest.raises(DataValidationError, match="different grids: coordinate 'y' differs"):
        fc.st.score(moved.rain_rate, metrics=["mse"])


def test_accessor_takes_obs_positionally_and_checks_variable(small):
    ds, fc = small
    fig = fc.st.plot(ds.rain_rate, lead_time="5min", coastlines=False)
    titles = [a.get_title() for a in fig.axes if hasattr(a, "projection")]
    assert titles[1].startswith("observed")  # the observations were used
    with pytest.raises(UnknownNameError, match="DataArray named 'rain_rate'"):
        fc.st.plot(variable="foo")
    with pytest.raises(UnknownNameError, match="variable='foo'"):
        plot_forecast(fc, ds, variable="foo")
    fc.st.plot(variable="rain_rate", lead_time="5min", coastlines=False)  # the name: fine
    # a Dataset forecast also takes obs positionally
    fig = fc.to_dataset().st.plot(ds, lead_time="5min", coastlines=False)
    assert len([a for a in fig.axes if hasattr(a, "projection")]) == 3


def _write_gshhg(path, segments, borders=False):
    """A minimal GMT binned GSHHG file: ``segments`` = [(bin, level, closed, [(dlon, dlat)])]."""
    import netCDF4

    nx, nrows = 72, 36
    nbins = nx * nrows
    segments = sorted(segments, key=lambda t: t[0])
    first_seg = np.zeros(nbins, np.int32)
    n_seg = np.zeros(nbins, np.int16)
    info, npts, levels, first_pt, dx, dy = [], [], [], [], [], []
    for k, (b, level, closed, pts) in enumerate(segments):
        if n_seg[b] == 0:
            first_seg[b] = k
        n_seg[b] += 1
        first_pt.append(len(dx))
        npts.append(len(pts))
        levels.append(level)
        ex = en = 4 if closed else 1
        info.append((len(pts) << 9) | (level << 6) | (ex << 3) | en)
        for px, py in pts:  # unsigned 16-bit fractions of the 5-degree bin, stored as int16
            dx.append(np.uint16(round(px / 5 * 65535)).view(np.int16))
            dy.append(np.uint16(round(py / 5 * 65535)).view(np.int16))
    with netCDF4.Dataset(path, "w") as nc:
        for name, size in (("s", 1), ("b", nbins), ("g", len(segments)), ("p", len(dx))):
            nc.createDimension(name, size)

        def put(name, dim, values, dtype):
            nc.createVariable(name, dtype, (dim,))[:] = np.asarray(values, dtype)

        put("Bin_size_in_minutes", "s", [300], "i4")
        put("N_bins_in_360_longitude_range", "s", [nx], "i4")
        put("N_bins_in_file", "s", [nbins], "i4")
        put("Id_of_first_segment_in_a_bin", "b", first_seg, "i4")
        put("N_segments_in_a_bin", "b", n_seg, "i2")
        put("Id_of_first_point_in_a_segment", "g", first_pt, "i4")
        if borders:
            put("N_points_for_a_segment", "g", npts, "i2")
            put("Hierarchial_level_of_a_segment", "g", levels, "i2")
        else:
            put("Embedded_npts_levels_exit_entry_for_a_segment", "g", info, "i4")
        put("Relative_longitude_from_SW_corner_of_bin", "p", dx, "i2")
        put("Relative_latitude_from_SW_corner_of_bin", "p", dy, "i2")


def test_gmt_binned_gshhg_decoding(tmp_path):
    from stgeo.plot.mapdata import _gshhg_lines

    # bin 505 = row 7 (55N-50N), column 1 (5E-10E); bin 109 = row 1 (85N-80N), column 37
    # (185E-190E, i.e. 175W-170W)
    _write_gshhg(
        tmp_path / "binned_GSHHS_i.nc",
        [
            (505, 1, True, [(0.5, 1.0), (4.0, 1.0), (4.0, 4.9)]),  # an island: closed
            (505, 2, True, [(1.0, 1.0), (1.2, 1.0), (1.1, 1.3)]),  # a lake: not a coastline
            (109, 1, False, [(0.0, 0.0), (4.5, 2.5)]),
        ],
    )
    _write_gshhg(
        tmp_path / "binned_border_i.nc", [(505, 1, False, [(0.0, 2.0), (5.0, 2.5)])], borders=True
    )
    md = find_map_data(tmp_path, span_deg=4.0)
    assert md.coastline_source == "gshhg_i" and md.borders_source == "gshhg_i"
    (coast,) = _gshhg_lines(md.coastline, (4.0, 49.0, 12.0, 56.0), (1,))
    (island,) = coast.geoms
    np.testing.assert_allclose(
        np.asarray(island.coords), [(5.5, 51.0), (9.0, 51.0), (9.0, 54.9), (5.5, 51.0)], atol=1e-4
    )
    (far,) = _gshhg_lines(md.coastline, None, (1, 2))
    assert len(far.geoms) == 3
    (seg,) = [g for g in far.geoms if len(g.coords) == 2]
    ((x0, y0), (x1, y1)) = np.asarray(seg.coords)
    assert (x0, y0) == pytest.approx((-175.0, 80.0)) and (x1, y1) == pytest.approx((-170.5, 82.5))
    (border,) = _gshhg_lines(md.borders, (4.0, 49.0, 12.0, 56.0), (1,))
    np.testing.assert_allclose(np.asarray(border.geoms[0].coords), [(5, 52), (10, 52.5)], atol=1e-4)


@pytest.mark.skipif(
    find_map_data(span_deg=5).borders is None, reason="no offline border data (gmt-gshhg-low)"
)
def test_coastlines_and_borders_on_a_radar_map(tmp_path):
    ds = projected_field(
        "+proj=lcc +lat_0=50.8 +lon_0=4.36 +lat_1=49.83 +lat_2=51.17 +ellps=GRS80 +units=m",
        BRUSSELS,
        shape=(40, 40),
        res=12_000.0,
    )
    ax = plot_field(ds.rain_rate.isel(time=0) * np.nan, colorbar=False, gridlines=False)
    features = [a for a in ax.get_children() if type(a).__name__ == "FeatureArtist"]
    assert len(features) == 2  # coastline and borders
    ax.figure.savefig(tmp_path / "be.png", dpi=ax.figure.dpi)
    inside = axes_pixels(read_png(tmp_path / "be.png"), ax)
    assert (inside.max(axis=-1) < 120).sum() > 200


def test_natural_earth_is_downloaded_through_cartopy_when_nothing_is_on_disk(tmp_path, monkeypatch):
    # the network is out of reach here: cartopy's downloader and the reachability probe are
    # replaced; the rest (option, cache folder, search) is the real code path
    import cartopy
    from cartopy.io import shapereader

    import stgeo.plot.mapdata as mapdata

    calls = []

    def fake_natural_earth(resolution, category, name):
        calls.append((resolution, category, name))
        p = tmp_path / "shapefiles" / "natural_earth" / category / f"ne_{resolution}_{name}.shp"
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_bytes(b"")
        return str(p)

    monkeypatch.setitem(cartopy.config, "data_dir", str(tmp_path))
    monkeypatch.setitem(cartopy.config, "pre_existing_data_dir", "")
    monkeypatch.setattr(mapdata, "SYSTEM_DIRS", ())
    monkeypatch.setattr(mapdata, "_online", lambda: True)
    monkeypatch.setattr(shapereader, "natural_earth", fake_natural_earth)
    monkeypatch.setenv("STGEO_MAP_DATA", "")
    monkeypatch.setattr(mapdata.sys, "prefix", str(tmp_path / "prefix"))
    with stgeo.set_options(map_download=False):
        md = find_map_data(span_deg=10.0)
    assert md.coastline is None and calls == []
    md = find_map_data(span_deg=10.0)
    assert md.coastline_source == "natural_earth_10m" and md.borders_source == "natural_earth_10m"
    assert [c[1:] for c in calls] == [
        ("physical", "coastline"),
        ("cultural", "admin_0_boundary_lines_land"),
    ]
    calls.clear()
    assert find_map_data(span_deg=10.0).coastline is not None and calls == []  # cached
