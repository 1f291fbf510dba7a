"""Data access: Zarr stores, catalogs, windowing, splits and normalisation."""

from .adapter import from_frames, to_frames, variables_of
from .catalog import CatalogEntry, catalog_registry, get_entry, list_catalog, register_catalog
from .integrity import VerifyReport, verify
from .loader import BatchLoader
from .normalize import Normalizer, fill_nodata
from .splits import split_by_time
from .store import StoreBuilder, open_data, open_dataset, to_zarr
from .windows import Windows, read_frames

__all__ = [
    "BatchLoader",
    "CatalogEntry",
    "Normalizer",
    "StoreBuilder",
    "VerifyReport",
    "Windows",
    "catalog_registry",
    "fill_nodata",
    "from_frames",
    "get_entry",
    "list_catalog",
    "open_data",
    "open_dataset",
    "read_frames",
    "register_catalog",
    "split_by_time",
    "to_frames",
    "to_zarr",
    "variables_of",
    "verify",
]
