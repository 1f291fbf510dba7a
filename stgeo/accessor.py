"""The ``.st`` accessors on xarray Dataset and DataArray: thin forwards to free functions."""

from __future__ import annotations

from typing import Any

import xarray as xr

__all__ = ["DataArrayAccessor", "DatasetAccessor"]


class _Base:
    def __init__(self, obj: Any) -> None:
        self._obj = obj

    def validate(self, **kwargs: Any) -> Any:
        """Forward to :func:`stgeo.validate`."""
        from .conventions import validate

        return validate(self._obj, **kwargs)


@xr.register_dataset_accessor("st")
class DatasetAccessor(_Base):
    """``ds.st``: stgeo methods on a Dataset."""


@xr.register_dataarray_accessor("st")
class DataArrayAccessor(_Base):
    """``da.st``: stgeo methods on a DataArray."""
