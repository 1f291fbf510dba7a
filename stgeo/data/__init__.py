"""Data access: Zarr stores, catalogs, windowing, splits and normalisation."""

from .catalog import CatalogEntry, get_entry, list_catalog
from .store import StoreBuilder, open_dataset, to_zarr

__all__ = ["CatalogEntry", "StoreBuilder", "get_entry", "list_catalog", "open_dataset", "to_zarr"]
