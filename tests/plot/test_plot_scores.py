"""Score plots: CSI against lead time and the performance diagram."""

from __future__ import annotations

import os

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import pytest
import xarray as xr
from plot_helpers import read_png

from stgeo.errors import (
    DataValidationError,
    OutputExistsError,
    StgeoTypeError,
    UnknownNameError,
)
from stgeo.plot import performance_diagram, plot_csi_vs_lead

LEADS = pd.to_timedelta([5, 10, 15, 20, 25, 30], unit="min")
THRESHOLDS = [0.1, 1.0, 5.0]


@pytest.fixture(autouse=True)
def _close_figures():
    yield
    plt.close("all")


def _table(hits_scale: float, seed: int = 0) -> xr.Dataset:
    """Scores from made-up contingency counts that degrade with lead time."""
    rng = np.random.default_rng(seed)
    nt, nl = len(THRESHOLDS), len(LEADS)
    decay = np.linspace(1.0, 0.4, nl)[None, :]
    base = np.array([4000.0, 1500.0, 300.0])[:, None]
    h = base * decay * hits_scale
    m = base * (1.2 - decay) + rng.uniform(0, 10, (nt, nl))
    f = base * (1.1 - decay) * 0.8 + rng.uniform(0, 10, (nt, nl))
    dims = ("threshold", "lead_time")
    ds = xr.Dataset(
        {
            "csi": (dims, h / (h + m + f)),
            "pod": (dims, h / (h + m)),
            "far": (dims, f / (h + f)),
            "bias": (dims, (h + f) / (h + m)),
        },
        coords={"threshold": ("threshold", THRESHOLDS, {"units": "mm h-1"}), "lead_time": LEADS},
    )
    ds["sr"] = 1 - ds["far"]
    return ds


def test_csi_vs_lead_lines_per_model(tmp_path):
    scores = {"persistence": _table(0.7), "simvp": _table(1.0, seed=1)}
    path = tmp_path / "csi.png"
    fig = plot_csi_vs_lead(scores, path=path)
    assert read_png(path).std() > 10  # a real picture, not blank
    panels = [a for a in fig.axes if a.get_visible()]
    assert [a.get_title() for a in panels] == [
        "threshold \u2265 0.1 mm h-1",
        "threshold \u2265 1 mm h-1",
        "threshold \u2265 5 mm h-1",
    ]
    for k, ax in enumerate(panels):
        lines = ax.get_lines()
        assert [ln.get_label() for ln in lines] == ["persistence", "simvp"]
        for ln, table in zip(lines, scores.values(), strict=True):
            np.testing.assert_allclose(ln.get_xdata(), [5, 10, 15, 20, 25, 30])
            np.testing.assert_allclose(ln.get_ydata(), table.csi.isel(threshold=k).values)
        assert ax.get_ylim() == (0.0, 1.0)
    assert panels[0].get_xlabel() == "lead time [min]"


def test_model_dim_threshold_subset_and_select():
    both = xr.concat([_table(0.7), _table(1.0)], dim=pd.Index(["a", "b"], name="model"))
    pooled = xr.concat([both, both * 0.5], dim=pd.Index([1, 4], name="pool"))
    with pytest.raises(DataValidationError, match="select=\\{'pool'"):
        plot_csi_vs_lead(pooled)
    fig = plot_csi_vs_lead(pooled, thresholds=5.0, select={"pool": 4}, score="pod")
    (ax,) = [a for a in fig.axes if a.get_visible()]
    assert [ln.get_label() for ln in ax.get_lines()] == ["a", "b"]
    np.testing.assert_allclose(
        ax.get_lines()[1].get_ydata(), both.pod.sel(model="b", threshold=5.0).values * 0.5
    )
    with pytest.raises(UnknownNameError, match="available"):
        plot_csi_vs_lead(both, thresholds=2.0)


def test_hours_axis_and_errors():
    ds = _table(1.0).assign_coords(lead_time=pd.to_timedelta([1, 2, 3, 4, 5, 6], unit="h"))
    fig = plot_csi_vs_lead(ds)
    assert fig.axes[0].get_xlabel() == "lead time [h]"
    np.testing.assert_allclose(fig.axes[0].get_lines()[0].get_xdata(), [1, 2, 3, 4, 5, 6])
    with pytest.raises(UnknownNameError, match="metrics=\\['ets'"):
        plot_csi_vs_lead(ds, score="ets")
    with pytest.raises(DataValidationError, match="no 'lead_time' dim"):
        plot_csi_vs_lead(ds.isel(lead_time=0))
    with pytest.raises(StgeoTypeError):
        plot_csi_vs_lead([ds])


def test_performance_diagram_points(tmp_path):
    a = _table(0.7)
    b = _table(1.0, seed=1).drop_vars("sr")  # success ratio derived from FAR
    path = tmp_path / "perf.png"
    fig = performance_diagram({"persistence": a, "simvp": b}, path=path)
    img = read_png(path)
    assert img.std() > 10
    ax = fig.axes[0]
    assert ax.get_xlim() == (0.0, 1.0) and ax.get_ylim() == (0.0, 1.0)
    series = [ln for ln in ax.get_lines() if ln.get_marker() not in ("None", None, "")]
    series = [ln for ln in series if len(ln.get_xdata()) == len(LEADS)]
    assert len(series) == 6  # 2 models x 3 thresholds, one point per lead time
    np.testing.assert_allclose(series[0].get_xdata(), a.sr.isel(threshold=0).values)
    np.testing.assert_allclose(series[0].get_ydata(), a.pod.isel(threshold=0).values)
    np.testing.assert_allclose(series[3].get_xdata(), 1 - b.far.isel(threshold=0).values)
    # frequency-bias rays: bias 1 is the diagonal
    diag = [
        ln
        for ln in ax.get_lines()
        if list(ln.get_xdata()) == [0, 1.0] and list(ln.get_ydata()) == [0, 1.0]
    ]
    assert diag
    legend = [t.get_text() for t in ax.get_legend().get_texts()]
    assert legend[:2] == ["persistence", "simvp"] and "\u2265 5 mm h-1" in legend


def test_performance_diagram_from_counts_and_lead_subset():
    h = np.array([[50.0, 30.0]])
    m = np.array([[10.0, 30.0]])
    f = np.array([[20.0, 40.0]])
    dims = ("threshold", "lead_time")
    ds = xr.Dataset(
        {"hits": (dims, h), "misses": (dims, m), "false_alarms": (dims, f)},
        coords={"threshold": [1.0], "lead_time": LEADS[:2]},
    )
    fig = performance_diagram(ds, lead_time="10min")
    pts = [ln for ln in fig.axes[0].get_lines() if ln.get_marker() == "o"]
    assert len(pts) == 1
    np.testing.assert_allclose(pts[0].get_xdata(), [30 / 70])
    np.testing.assert_allclose(pts[0].get_ydata(), [30 / 60])
    with pytest.raises(UnknownNameError, match="not in the scores"):
        performance_diagram(ds, lead_time="1h")
    with pytest.raises(UnknownNameError, match="'pod'"):
        performance_diagram(ds.drop_vars("hits"))


@pytest.mark.parametrize("plot", [plot_csi_vs_lead, performance_diagram])
def test_score_plots_keep_existing_files(tmp_path, plot):
    scores = {"persistence": _table(0.7)}
    mine = tmp_path / "notes.pdf"
    mine.write_text("notes")
    with pytest.raises(OutputExistsError, match="notes.pdf exists; pass overwrite=True"):
        plot(scores, mine)
    with pytest.raises(DataValidationError, match="'.xyz'"):
        plot(scores, tmp_path / "x.xyz")
    with pytest.raises(DataValidationError, match="dpi"):
        plot(scores, tmp_path / "x.png", dpi=-1)
    with pytest.raises(OutputExistsError, match="give a file name"):
        plot(scores, tmp_path)
    assert mine.read_text() == "notes" and sorted(os.listdir(tmp_path)) == ["notes.pdf"]
    plot(scores, mine, overwrite=True)
    assert mine.read_bytes().startswith(b"%PDF")
