"""Public synthetic data generators and test helpers.

Examples
--------
>>> import stgeo
>>> stgeo.testing.crowd_flows(n_days=1, shape=(4, 4), step="1h").flow.shape
(24, 2, 4, 4)
"""

from ..datasets.synthetic import crowd_flows, storm_cells
from .memory import RssSampler

__all__ = ["RssSampler", "crowd_flows", "storm_cells"]
