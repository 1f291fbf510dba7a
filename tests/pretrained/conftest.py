"""Tiny pretrained artefacts registered for a test and removed after it."""

import pytest

import stgeo
from stgeo.pretrained import package, register_pretrained
from stgeo.pretrained.registry import PRETRAINED


@pytest.fixture(scope="session")
def storms():
    return stgeo.testing.storm_cells(n_times=30, shape=(16, 16), seed=0)


@pytest.fixture(scope="session")
def tiny_simvp(storms):
    """A tiny SimVP trained for one epoch on synthetic storms (rain_rate, mm h-1, 5 min)."""
    return stgeo.train(
        storms,
        model="simvp",
        in_steps=2,
        out_steps=2,
        epochs=1,
        hid_S=4,
        hid_T=8,
        N_T=1,
        N_S=2,
        progress=False,
        seed=0,
    )


@pytest.fixture
def register(tmp_path):
    """``register(trained, name, **package_kwargs)``: package into tmp_path and register."""
    names = []

    def make(trained, name, **kw):
        kw.setdefault("standard_names", {"rain_rate": "rainfall_rate"})
        card = package(trained, name=name, out=tmp_path / name, index=tmp_path / "index.json", **kw)
        names.extend(register_pretrained(tmp_path / name))
        return card

    yield make
    for n in names:
        if n in PRETRAINED:
            PRETRAINED.remove(n)
