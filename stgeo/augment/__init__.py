"""Augmentations: transforms of training batches (not models), registered by name."""
