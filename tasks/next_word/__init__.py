"""Next-word prediction (many-to-many, one prediction per step): a recurrent
language model over English words.

Trained on sentences that install offline (WordNet's glosses and examples
by default) or on your own, it predicts every word of a sentence from the
words before it. The export suggests the `k` most likely next words after a
text, with their probabilities and a short greedy continuation; it also
scores texts (the `score` signature: the log-probability of each text, for
perplexity). The baseline printed next to it is an interpolated Kneser-Ney
n-gram model (`rnnapps.tasks.next_word.ngram`) fitted on the same training
sentences.

From Python, `NextWordPredictor` (`rnnapps.tasks.next_word.task`) fits the
vocabulary and the model on your sentences, on any Keras backend.

The presets are the offline corpora:

>>> from rnnapps.tasks import next_word
>>> next_word.task.name, sorted(next_word.PRESETS)
('next_word', ['english', 'gcide', 'wordnet'])
"""

from rnnapps.tasks.next_word.config import PRESETS
from rnnapps.tasks.next_word.config import NextWordConfig
from rnnapps.tasks.next_word.data import load_data
from rnnapps.tasks.next_word.metrics import language_model_metrics
from rnnapps.tasks.next_word.metrics import ngram_metrics
from rnnapps.tasks.next_word.preprocessor import NextWordPreprocessor
from rnnapps.tasks.next_word.task import NextWordPredictor
from rnnapps.tasks.next_word.task import NextWordTask
from rnnapps.tasks.next_word.task import build_model

__all__ = ["NextWordConfig", "PRESETS", "NextWordTask", "NextWordPredictor",
           "NextWordPreprocessor", "load_data", "build_model", "task",
           "language_model_metrics", "ngram_metrics"]

# Last: the package attribute `task` (what `rnnapps.tasks.get_task` returns)
# shadows the submodule of the same name.
task = NextWordTask()
