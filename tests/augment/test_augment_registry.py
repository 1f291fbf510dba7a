"""stgeo.augment: registering augmentations by call or decorator, listing, lookup errors."""

import functools

import pytest
import torch

import stgeo
from stgeo._registry import AUGMENTATIONS
from stgeo.augment import get_augmentation, list_augmentations, register_augmentation
from stgeo.errors import StgeoTypeError, UnknownNameError


@pytest.fixture
def clean_registry(monkeypatch):
    """Registrations made by a test vanish after it."""
    AUGMENTATIONS.list()  # run the lazy sources first (stgeo's "nuwa" must survive the test)
    monkeypatch.setattr(AUGMENTATIONS, "_entries", dict(AUGMENTATIONS._entries))
    monkeypatch.setattr(AUGMENTATIONS, "_aliases", dict(AUGMENTATIONS._aliases))


def _flip(x, y):
    """Flip inputs and targets left-right."""
    return x.flip(-1), y.flip(-1)


def test_register_by_call_and_decorator(clean_registry):
    assert register_augmentation("test-aug-flip", _flip, aliases=["test-aug-f"]) is _flip

    @register_augmentation("test-aug-noise")
    def noise(x, y):
        return x + 1.0, y

    assert get_augmentation("TEST-AUG-F") is _flip
    assert get_augmentation("test-aug-noise") is noise
    assert list_augmentations("test-aug-*") == ["test-aug-flip", "test-aug-noise"]
    assert AUGMENTATIONS.entry("test-aug-flip").description == "Flip inputs and targets left-right."
    x, y = get_augmentation("test-aug-flip")(torch.arange(3.0), torch.arange(2.0))
    assert x.tolist() == [2.0, 1.0, 0.0] and y.tolist() == [1.0, 0.0]
    assert stgeo.augment.register_augmentation is register_augmentation


def test_configured_instances_and_partials_register_but_factories_do_not(clean_registry):
    class Scale:
        def __init__(self, factor):
            self.factor = factor

        def __call__(self, x, y):
            return x * self.factor, y * self.factor

    register_augmentation("test-aug-scale3", Scale(3.0))
    register_augmentation("test-aug-scale2", functools.partial(Scale(2.0)))
    assert get_augmentation("test-aug-scale3")(torch.ones(1), torch.ones(1))[1].item() == 3.0
    with pytest.raises(StgeoTypeError, match="is a class.*not a factory"):
        register_augmentation("test-aug-factory", Scale)
    with pytest.raises(StgeoTypeError, match=r"signature \(x\)"):
        register_augmentation("test-aug-one-arg", lambda x: x)
    with pytest.raises(StgeoTypeError, match="must be a callable"):
        register_augmentation("test-aug-none", "flip")
    assert "test-aug-factory" not in AUGMENTATIONS


def test_name_clashes_and_unknown_names(clean_registry):
    register_augmentation("test-aug-flip", _flip)
    with pytest.raises(ValueError, match="already registered.*overwrite=True"):
        register_augmentation("test-aug-flip", _flip)
    register_augmentation("test-aug-flip", lambda x, y: (x, y), overwrite=True)
    assert get_augmentation("test-aug-flip") is not _flip
    with pytest.raises(UnknownNameError, match="Did you mean 'test-aug-flip'"):
        get_augmentation("test-aug-flop")
