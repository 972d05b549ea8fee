"""Optimizer wrappers: `ClippedOptimizer` and its logging callback."""

from rnnapps.optimizers.clipped import ClippedOptimizer
from rnnapps.optimizers.clipped import ClippingMonitor

__all__ = ["ClippedOptimizer", "ClippingMonitor"]
