"""NuwaDynamics plot: importance map beside the original and the intervened last frame."""

from __future__ import annotations

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt
import numpy as np
import pytest
import torch
from plot_helpers import color_pixels, read_png

import stgeo
from stgeo.augment.nuwa import DiscoveryViT, intervene, patch_importance
from stgeo.errors import DataValidationError, OutputExistsError
from stgeo.plot.nuwa import plot_intervention


@pytest.fixture(autouse=True)
def _close_figures():
    yield
    plt.close("all")


def _storm_batch(shape=(30, 44), steps=3) -> torch.Tensor:
    ds = stgeo.testing.storm_cells(n_times=12, shape=shape, seed=4)
    r = np.log1p(ds.rain_rate.values.astype("float32"))
    return torch.from_numpy(np.stack([r[i : i + steps] for i in range(2)]))[:, :, None]


def test_plot_intervention_png(tmp_path):
    x = _storm_batch()
    torch.manual_seed(0)
    vit = DiscoveryViT(3, 1, patch_size=4, embed_dim=16).eval()
    imp = patch_importance(vit, x)  # (2, 8, 11)
    x_aug = intervene(x, imp, patch_size=4, k=10)
    path = tmp_path / "sub" / "nuwa.png"
    fig = plot_intervention(x, imp, x_aug, path, sample=1, patch_size=4)
    assert path.is_file()
    titles = [ax.get_title() for ax in fig.axes[:4]]
    assert titles == [
        "patch importance",
        "input (last frame)",
        "intervened: 10 of 88 patches",
        "intervened - input",
    ]
    img = read_png(path)
    assert img.shape[2] == 3
    assert len(color_pixels(img, (255, 0, 0), tol=40)) > 100  # the red outlines are drawn
    # the frames keep the grid: y from 0 (top) to H - 1, x from 0 to W - 1
    ax = fig.axes[1]
    assert ax.get_xlim() == (-0.5, 43.5) and ax.get_ylim() == (29.5, -0.5)


def test_plot_intervention_inputs():
    x = np.zeros((3, 2, 1, 12, 16))
    imp = np.ones((3, 3, 4))
    # one window, numpy arrays, bf16 tensors
    fig = plot_intervention(x[0], imp[0], x[0], patch_size=4)
    assert fig.axes[2].get_title() == "intervened: 0 of 12 patches"
    t = torch.zeros(3, 2, 1, 12, 16, dtype=torch.bfloat16)
    plot_intervention(t, torch.ones(3, 3, 4), t, patch_size=4)
    # patch size inferred when unique: 16 x 16 grid with 8 x 8 patches -> 2 (3 gives 6 x 6)
    z = np.zeros((1, 1, 1, 16, 16))
    assert plot_intervention(z, np.ones((1, 8, 8)), z).axes[0].get_xlim() == (-0.5, 15.5)
    with pytest.raises(DataValidationError, match="pass patch_size"):
        plot_intervention(x, imp, x)  # 12 x 16 on 3 x 4: patch 4 or 5
    with pytest.raises(DataValidationError, match="patch grid"):
        plot_intervention(x, imp, x, patch_size=3)
    with pytest.raises(DataValidationError, match="same shape"):
        plot_intervention(x, imp, x[:, :1])
    with pytest.raises(DataValidationError, match="importance"):
        plot_intervention(x, imp[:2], x, patch_size=4)
    with pytest.raises(DataValidationError, match="out of range"):
        plot_intervention(x, imp, x, sample=3, patch_size=4)


def test_plot_intervention_keeps_existing_files(tmp_path):
    x = np.zeros((1, 2, 1, 8, 8))
    mine = tmp_path / "nuwa.png"
    mine.write_text("mine")
    with pytest.raises(OutputExistsError, match="nuwa.png exists; pass overwrite=True"):
        plot_intervention(x, np.ones((1, 2, 2)), x, mine, patch_size=4)
    assert mine.read_text() == "mine"
    plot_intervention(x, np.ones((1, 2, 2)), x, mine, patch_size=4, overwrite=True, dpi=30)
    assert mine.read_bytes().startswith(b"\x89PNG")
