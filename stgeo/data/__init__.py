"""Data access: Zarr stores, catalogs, windowing, splits and normalisation."""

from .adapter import from_frames, to_frames, variables_of
from .catalog import CatalogEntry, catalog_registry, get_entry, list_catalog, register_catalog
from .collections import (
    Collection,
    get_collection,
    list_collections,
    register_collection,
)
from .events import EventSource, join_events, open_events
from .integrity import VerifyReport, verify
from .loader import BatchLoader
from .normalize import Normalizer, fill_nodata
from .patches import (
    EventLoader,
    EventWindows,
    Importance,
    as_patch_size,
    crops_per_window,
    stream_statistics,
    wet_fraction_map,
)
from .splits import split_by_time
from .store import StoreBuilder, open_data, open_dataset, to_zarr
from .timefeatures import ExternalVariables, TimeFeatures, time_features
from .windows import Windows, read_frames

__all__ = [
    "BatchLoader",
    "CatalogEntry",
    "Collection",
    "EventLoader",
    "EventSource",
    "EventWindows",
    "ExternalVariables",
    "Importance",
    "Normalizer",
    "StoreBuilder",
    "TimeFeatures",
    "VerifyReport",
    "Windows",
    "as_patch_size",
    "catalog_registry",
    "crops_per_window",
    "fill_nodata",
    "from_frames",
    "get_collection",
    "get_entry",
    "join_events",
    "list_catalog",
    "list_collections",
    "open_data",
    "open_dataset",
    "open_events",
    "read_frames",
    "register_catalog",
    "register_collection",
    "split_by_time",
    "stream_statistics",
    "time_features",
    "to_frames",
    "to_zarr",
    "variables_of",
    "verify",
    "wet_fraction_map",
]
