"""Training: the one training loop, its configuration, checkpoints and hooks.

``stgeo.train`` (and ``ds.st.train``) is :func:`stgeo.training.train`.
"""

from .fit import data_fingerprint, make_optimizer, train

__all__ = ["data_fingerprint", "make_optimizer", "train"]
