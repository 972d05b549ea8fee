"""Optimizers: `ClippedOptimizer` (and its logging callback), and
`DiscriminativeAdam` for fine-tuning pretrained layers."""

from rnnapps.optimizers.clipped import ClippedOptimizer
from rnnapps.optimizers.clipped import ClippingMonitor
from rnnapps.optimizers.discriminative import DiscriminativeAdam

__all__ = ["ClippedOptimizer", "ClippingMonitor", "DiscriminativeAdam"]
