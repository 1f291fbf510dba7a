"""Exceptions and warnings raised by stgeo.

Every error stgeo raises for bad input derives from :class:`StgeoError` and from the
builtin class a user would expect (``ValueError``, ``TypeError``, ``KeyError`` or
``FileNotFoundError``), so ``except ValueError`` keeps working. Messages say what is wrong,
what was expected and how to fix it.

Examples
--------
>>> import stgeo
>>> try:
...     stgeo.create_model("convlstn")
... except stgeo.errors.UnknownNameError as err:
...     print("Did you mean" in str(err))
True
"""

from __future__ import annotations

__all__ = [
    "CatalogError",
    "CorruptStoreError",
    "DataValidationError",
    "DependencyError",
    "DownloadError",
    "IncompleteStoreError",
    "ModelFileError",
    "OutputExistsError",
    "OutputOverlapsInputError",
    "StgeoError",
    "StgeoTypeError",
    "StgeoWarning",
    "UnknownNameError",
]


class StgeoError(Exception):
    """Base class of every error raised by stgeo."""


class DataValidationError(StgeoError, ValueError):
    """The data do not follow the canonical data model (dims, coords, time axis, values)."""


class StgeoTypeError(StgeoError, TypeError):
    """An argument has the wrong type."""


class UnknownNameError(StgeoError, KeyError, ValueError):
    """A name (model, metric, catalog entry, variable, ...) is not known.

    The message lists the valid names and suggests the closest ones.
    """

    def __str__(self) -> str:  # KeyError would repr() the message
        return str(self.args[0]) if self.args else ""


class CatalogError(StgeoError, ValueError):
    """A catalog file or entry is malformed; the message names the offending field."""


class IncompleteStoreError(StgeoError, FileNotFoundError):
    """A Zarr store exists but was never completed (an interrupted write)."""


class CorruptStoreError(StgeoError, ValueError):
    """A Zarr store is damaged: chunks missing, truncated or altered (failed checksums).

    The message names the variable, the chunk and its file; ``stgeo verify STORE`` lists
    every damaged chunk.
    """


class OutputExistsError(StgeoError, FileExistsError):
    """An output path is taken: by something stgeo did not write (never replaced), by an
    artefact of another kind, or by one of the same kind without ``overwrite=True``."""


class OutputOverlapsInputError(StgeoError, ValueError):
    """An output path equals, contains or lies inside an input of the same call."""


class ModelFileError(StgeoError, ValueError):
    """A file is not a stgeo model artefact (for example a pickled checkpoint)."""


class DependencyError(StgeoError, ImportError):
    """An optional dependency is missing; the message names the extra to install."""


class DownloadError(StgeoError, ConnectionError):
    """A file cannot be downloaded (offline, moved); the message says how to place it by hand."""


class StgeoWarning(UserWarning):
    """Warnings issued by stgeo (the test suite turns them into errors)."""


class PathNotFoundError(StgeoError, FileNotFoundError):
    """A path given as input does not exist."""
