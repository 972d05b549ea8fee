"""Synthetic benchmark data from the papers (the tasks' real data is in `rnnapps.tasks`)."""

from rnnapps.datasets.adding import adding_problem

__all__ = ["adding_problem"]
