"""Reusable recurrent layers: `IRNNCell`, `IRNN`, `ReverseSequence`."""

from rnnapps.layers.irnn import IRNN
from rnnapps.layers.irnn import IRNNCell
from rnnapps.layers.reverse_sequence import ReverseSequence

__all__ = ["IRNN", "IRNNCell", "ReverseSequence"]
