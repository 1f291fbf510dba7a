"""Readers and generators producing canonical xarray datasets."""

from .synthetic import crowd_flows, storm_cells

__all__ = ["crowd_flows", "storm_cells"]
