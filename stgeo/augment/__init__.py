"""Augmentations: transforms of training batches (not models), registered by name.

An augmentation is a **ready-to-call** callable ``augment(x, y) -> (x, y)`` applied by the
training loop to every normalised training batch: ``x`` holds the input frames
``(B, T_in, C, H, W)`` and ``y`` the target frames ``(B, T_out, C, H, W)`` (torch tensors on
the training device). It returns the augmented pair with the same shapes, transforming ``x``
and ``y`` consistently (e.g. the same flip for both). Validation batches are never augmented.

The registry holds the callables themselves, not factories: to register a configurable
augmentation, register a configured instance (``register_augmentation("flip-p0.5",
RandomFlip(p=0.5))``) or a :func:`functools.partial`. Training resolves a name with
``stgeo._registry.AUGMENTATIONS.get(name)`` (``stgeo.train(..., augment="name")``); random
draws should use torch's or NumPy's global generators, which training seeds.

Some augmentations must first be fitted on the training data (NuwaDynamics fits a discovery
model): they implement :class:`TrainableAugmentation`. Training fits them on the normalised
training batches before the first epoch, saves them with the checkpoints, reloads them on
resume and reseeds them per batch from the run seed, epoch and batch. A registered
trainable augmentation is a template: each run works on its own ``replace(**settings)`` copy,
so ``augment={"name": "nuwa", "k": 0.1}`` changes settings without touching the registry.

Registered by stgeo: ``"nuwa"`` (alias ``"nuwadynamics"``), an unfitted
:class:`stgeo.augment.nuwa.NuwaAugment` with its default settings, and ``"dihedral"``,
:class:`stgeo.augment.dihedral.Dihedral` (random flips and quarter turns of isotropic
fields such as rain rate).

Third-party packages register augmentations from an entry point in group
``stgeo.augmentations`` (see the "Extending stgeo" guide).

Examples
--------
>>> import torch
>>> from stgeo.augment import get_augmentation, list_augmentations, register_augmentation
>>> @register_augmentation("example-mirror", overwrite=True)
... def mirror(x, y):
...     "Mirror inputs and targets left-right."
...     return x.flip(-1), y.flip(-1)
>>> "example-mirror" in list_augmentations("example-*")
True
>>> x, y = get_augmentation("Example-Mirror")(torch.arange(4.0).view(1, 1, 1, 1, 4),
...                                           torch.zeros(1, 2, 1, 1, 4))
>>> x.flatten().tolist()
[3.0, 2.0, 1.0, 0.0]
>>> from stgeo._registry import AUGMENTATIONS
>>> AUGMENTATIONS.remove("example-mirror")
"""

from __future__ import annotations

import inspect
import os
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path
from typing import Any, Protocol, runtime_checkable

from .._registry import AUGMENTATIONS, Registry
from ..errors import StgeoTypeError

__all__ = [
    "Augmentation",
    "TrainableAugmentation",
    "get_augmentation",
    "list_augmentations",
    "register_augmentation",
]

#: the type of an augmentation: ``(x, y) -> (x, y)`` on normalised training batches
Augmentation = Callable[[Any, Any], tuple[Any, Any]]


@runtime_checkable
class TrainableAugmentation(Protocol):
    """An augmentation fitted on the training data before training (e.g. NuwaDynamics).

    Besides ``__call__(x, y) -> (x, y)`` it has:

    ``fitted``
        Whether it is ready (a fitted augmentation given to training is not refitted).
    ``fit(batches, *, seed, device)``
        Fit on the training loader's normalised ``(x, y)`` batches (a bounded number of them
        is the augmentation's business); ``seed`` is the run seed.
    ``save(path)`` / ``restore(path)``
        Write the fitted state into a folder (safetensors/JSON, no pickle) / take it back
        (on resume: reused, not refitted).
    ``reseed(*keys)``
        Restart its random generator from its own seed and ``keys`` (training passes the run
        seed, epoch, batch and rank before every batch: a resumed run draws the same).
    ``replace(**settings)``
        A copy with settings changed (each run works on its own copy of a registered one).
    ``to(device)``
        Move its state to the training device.

    Examples
    --------
    >>> from stgeo.augment import TrainableAugmentation
    >>> from stgeo.augment.nuwa import NuwaAugment
    >>> isinstance(NuwaAugment(), TrainableAugmentation)
    True
    >>> isinstance(lambda x, y: (x, y), TrainableAugmentation)
    False
    """

    @property
    def fitted(self) -> bool: ...

    def fit(self, batches: Iterable[Any], *, seed: int = 0, device: Any = None) -> Any: ...

    def save(self, path: str | os.PathLike) -> Path: ...

    def restore(self, path: str | os.PathLike) -> Any: ...

    def reseed(self, *keys: int) -> None: ...

    def replace(self, **settings: Any) -> Any: ...

    def to(self, device: Any) -> Any: ...

    def __call__(self, x: Any, y: Any) -> tuple[Any, Any]: ...


def _check_augmentation(name: str, func: Any) -> None:
    if not callable(func):
        raise StgeoTypeError(
            f"augmentation {name!r} must be a callable (x, y) -> (x, y), got {type(func).__name__}."
        )
    try:
        sig = inspect.signature(func)
    except (TypeError, ValueError):  # some builtins have no signature: accept them
        return
    try:
        sig.bind(None, None)
    except TypeError:
        what = "a class" if inspect.isclass(func) else f"a callable with signature {sig}"
        raise StgeoTypeError(
            f"augmentation {name!r} must be called as augment(x, y) and return (x, y), but it "
            f"is {what}. Register the augmentation itself (e.g. an instance or a "
            "functools.partial with its settings), not a factory of one."
        ) from None


def register_augmentation(
    name: str,
    func: Augmentation | None = None,
    *,
    aliases: Sequence[str] = (),
    description: str = "",
    overwrite: bool = False,
) -> Any:
    """Register an augmentation ``(x, y) -> (x, y)`` under ``name`` (call or decorator).

    Parameters
    ----------
    name : str
        Name (case-insensitive) used by ``stgeo.train(..., augment=name)``.
    func : callable, optional
        The augmentation (see the module docstring). Without it, a decorator is returned.
    aliases : sequence of str
        Other names.
    description : str
        One line for listings (default: the first line of ``func``'s docstring).
    overwrite : bool
        Replace an augmentation of the same name.

    Returns
    -------
    callable
        ``func`` (or, without ``func``, a decorator that registers and returns the function).

    Raises
    ------
    StgeoTypeError
        ``func`` is not callable as ``func(x, y)`` (e.g. a class or factory).
    ValueError
        The name is taken (pass ``overwrite=True``).

    Examples
    --------
    >>> import functools, torch
    >>> from stgeo.augment import get_augmentation, register_augmentation
    >>> def scale(x, y, factor=1.0):
    ...     return x * factor, y * factor
    >>> _ = register_augmentation("example-double", functools.partial(scale, factor=2.0),
    ...                           overwrite=True)
    >>> get_augmentation("example-double")(torch.ones(1), torch.ones(1))
    (tensor([2.]), tensor([2.]))
    >>> from stgeo._registry import AUGMENTATIONS
    >>> AUGMENTATIONS.remove("example-double")
    """

    def deco(f: Augmentation) -> Augmentation:
        _check_augmentation(name, f)
        return AUGMENTATIONS.add(
            name, f, aliases=list(aliases), description=description, overwrite=overwrite
        )

    return deco(func) if func is not None else deco


def get_augmentation(name: str) -> Augmentation:
    """The augmentation registered as ``name`` ("did you mean" error when unknown).

    Examples
    --------
    >>> from stgeo.augment import get_augmentation
    >>> try:
    ...     get_augmentation("no-such-augmentation")
    ... except Exception as err:
    ...     print(type(err).__name__)
    UnknownNameError
    """
    return AUGMENTATIONS.get(name)


def list_augmentations(pattern: str = "*") -> list[str]:
    """Names of the registered augmentations matching a shell-style ``pattern``.

    Examples
    --------
    >>> from stgeo.augment import list_augmentations
    >>> isinstance(list_augmentations(), list)
    True
    """
    return AUGMENTATIONS.list(pattern)


def _builtin(registry: Registry[Any]) -> None:
    """stgeo's own augmentations, imported on the first lookup (torch is not imported before)."""
    from .dihedral import Dihedral
    from .nuwa import NuwaAugment

    if "nuwa" not in registry.list("nuwa"):
        registry.add(
            "nuwa",
            NuwaAugment(),
            aliases=["nuwadynamics"],
            description="NuwaDynamics: discovery ViT + intervention on the least-attended patches",
        )
    if "dihedral" not in registry.list("dihedral"):
        registry.add(
            "dihedral",
            Dihedral(),
            description="random flips and quarter turns of isotropic scalar fields",
        )


AUGMENTATIONS.add_source(_builtin)
