"""Training callbacks: `EarlyStoppingFromStart`."""

from rnnapps.callbacks.early_stopping_from_start import EarlyStoppingFromStart

__all__ = ["EarlyStoppingFromStart"]
