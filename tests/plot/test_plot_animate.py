"""Animations to GIF (Pillow) and MP4 (ffmpeg, when installed)."""

from __future__ import annotations

import matplotlib

matplotlib.use("Agg")

import numpy as np
import pytest
from matplotlib import animation
from PIL import Image

import stgeo
from stgeo.errors import DataValidationError, DependencyError, OutputExistsError
from stgeo.plot import animate_forecast


@pytest.fixture(scope="module")
def data():
    ds = stgeo.testing.storm_cells(n_times=10, shape=(24, 24), seed=4)
    fc = ds.st.forecast(model="persistence", lead_steps=4)
    return ds, fc


def _frames(path) -> list[np.ndarray]:
    out = []
    with Image.open(path) as im:
        for k in range(im.n_frames):
            im.seek(k)
            out.append(np.asarray(im.convert("RGB")).astype(int))
    return out


def test_gif_one_frame_per_lead_time_with_observations(tmp_path, data):
    ds, fc = data
    out = animate_forecast(fc, tmp_path / "sub" / "fc.gif", ds, init_time=3, dpi=40)
    assert out == tmp_path / "sub" / "fc.gif"
    frames = _frames(out)
    assert len(frames) == fc.sizes["lead_time"]
    # persistence: the forecast panel never changes, the observed and error panels do
    w = frames[0].shape[1]
    left = [f[:, : w // 3] for f in frames]
    right = [f[:, w // 3 :] for f in frames]
    assert np.abs(right[0] - right[-1]).sum() > 0
    diff_left = np.abs(left[0] - left[-1]).mean()
    assert diff_left < np.abs(right[0] - right[-1]).mean()


def test_gif_of_observations(tmp_path, data):
    ds, _ = data
    out = animate_forecast(ds.rain_rate.isel(time=slice(0, 5)), tmp_path / "obs.gif", dpi=40)
    frames = _frames(out)
    assert len(frames) == 5
    assert np.abs(frames[0] - frames[4]).sum() > 0  # the storm moves


def test_mp4_needs_ffmpeg(tmp_path, data, monkeypatch):
    _, fc = data
    if animation.writers.is_available("ffmpeg"):
        out = animate_forecast(fc, tmp_path / "fc.mp4", dpi=40)
        assert out.stat().st_size > 1_000
    monkeypatch.setattr(animation.writers, "is_available", lambda name: False)
    with pytest.raises(DependencyError, match="ffmpeg"):
        animate_forecast(fc, tmp_path / "x.mp4")
    with pytest.raises(DataValidationError, match=r"'\.avi2'.*supported: \.gif, \.mp4"):
        animate_forecast(fc, tmp_path / "x.avi2")


def test_existing_file_folder_and_dpi_are_refused_before_drawing(tmp_path, data, monkeypatch):
    import stgeo.plot.animate as animate

    ds, fc = data
    mine = tmp_path / "fc.gif"
    mine.write_text("my animation")
    monkeypatch.setattr(animate, "_plan", lambda *a, **k: pytest.fail("drew before checking"))
    with pytest.raises(OutputExistsError, match="fc.gif exists; pass overwrite=True"):
        animate_forecast(fc, mine, ds)
    with pytest.raises(OutputExistsError, match="is a folder; give a file name, e.g. .*gif"):
        animate_forecast(fc, tmp_path, overwrite=True)
    with pytest.raises(DataValidationError, match="dpi must be a positive number"):
        animate_forecast(fc, tmp_path / "new.gif", dpi=0)
    assert mine.read_text() == "my animation"
    monkeypatch.undo()
    out = animate_forecast(fc, mine, dpi=30, overwrite=True)
    assert len(_frames(out)) == fc.sizes["lead_time"]
