"""Sentiment classification (many-to-one): text in, label and probability out.

Use it from the command line (`rnnapps train sentiment`) or from Python
(`SentimentClassifier`, in `rnnapps.tasks.sentiment.task`):

    from rnnapps.tasks import sentiment

    classifier = sentiment.SentimentClassifier.from_data(texts, labels, epochs=3)
    classifier.fit(texts, labels, validation_data=(other_texts, other_labels))
    classifier.predict(["Great tea"])   # [{"label": ..., "probabilities": {...}}]
    classifier.export("saved_models")   # strings in; probabilities and labels out

The pieces: `SentimentPreprocessor` (texts to word ids, TensorFlow ops in
`tf.data`), `model.build_model` (Keras layers on the ids, any backend),
`load_data`/`load_examples` (the default reviews or your CSV file), and
`SentimentTask`, the command line's task (`task`). Besides the test
reviews, the metrics score the model on their sentences
(`sentence_pieces`), each labelled with its review's label.
"""

from rnnapps.tasks.sentiment.config import PRESETS
from rnnapps.tasks.sentiment.config import SentimentConfig
from rnnapps.tasks.sentiment.data import load_data
from rnnapps.tasks.sentiment.data import load_examples
from rnnapps.tasks.sentiment.data import rotten_tomatoes_snippets
from rnnapps.tasks.sentiment.data import sentence_pieces
from rnnapps.tasks.sentiment.metrics import binary_auc
from rnnapps.tasks.sentiment.task import SentimentClassifier
from rnnapps.tasks.sentiment.task import SentimentTask

__all__ = [
    "SentimentClassifier", "SentimentPreprocessor", "SentimentTask", "SentimentConfig", "PRESETS",
    "load_data", "load_examples", "sentence_pieces", "rotten_tomatoes_snippets", "binary_auc",
    "task",
]



def __getattr__(name):
    # The preprocessor is a Keras layer: imported on first use, so that the
    # command line reads the task's flags (and picks the Keras backend)
    # before Keras is imported.
    if name == "SentimentPreprocessor":
        from rnnapps.tasks.sentiment.preprocessor import SentimentPreprocessor

        return SentimentPreprocessor
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


task = SentimentTask()  # what `rnnapps.tasks.get_task("sentiment")` returns
