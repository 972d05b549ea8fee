"""Data for the papers' benchmarks: the adding problem (synthetic, as in the
papers) and real 28x28 images for pixel-by-pixel MNIST. The tasks' own data
is in `rnnapps.tasks`."""

from rnnapps.datasets.adding import adding_problem
from rnnapps.datasets.digits import load_digits

__all__ = ["adding_problem", "load_digits"]
