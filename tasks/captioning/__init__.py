"""Captioning (one-to-many): image bytes in, caption strings out.

Show and Tell (Vinyals et al. 2015): an image encoder whose embedding sets
the initial state of an LSTM that writes the caption piece by piece;
SentencePiece subwords (keras-hub), beam search with a length penalty,
corpus BLEU-1..4 with sacrebleu next to two baselines (the caption of the
nearest training image in the encoder's embedding space, and the most
frequent training caption). From the command line: `rnnapps train
captioning` on any Keras backend; from Python, on your own images:

    from rnnapps.tasks.captioning import Captioner

    captioner = Captioner.from_data(images, captions, epochs=5)  # paths, bytes or arrays
    captioner.fit(images, captions)
    captioner.predict(["cat.png"])                               # -> ["a cat"]

The pieces: `CaptioningPreprocessor` (images and captions to pixels and
ids, TensorFlow ops in tf.data and in the export), the model
(`model.ShowAndTell`, `keras.ops` only) and the task (`task.py`):

>>> from rnnapps.tasks import captioning
>>> captioning.task.name, sorted(captioning.PRESETS)
('captioning', ['coco_captions', 'emoji'])
"""

from rnnapps.tasks.captioning.config import PRESETS
from rnnapps.tasks.captioning.config import CaptioningConfig
from rnnapps.tasks.captioning.data import load_examples
from rnnapps.tasks.captioning.preprocessor import CaptioningPreprocessor
from rnnapps.tasks.captioning.task import Captioner
from rnnapps.tasks.captioning.task import CaptioningTask
from rnnapps.tasks.captioning.task import bleu_margin
from rnnapps.tasks.captioning.task import bleu_scores
from rnnapps.tasks.captioning.task import build_model
from rnnapps.tasks.captioning.task import caption_parts
from rnnapps.tasks.captioning.task import captioner
from rnnapps.tasks.captioning.task import learning_rate
from rnnapps.tasks.captioning.task import load_data
from rnnapps.tasks.captioning.task import most_frequent_caption
from rnnapps.tasks.captioning.task import nearest_neighbour_captions
from rnnapps.tasks.captioning.task import redrawn_scores
from rnnapps.tasks.captioning.task import remember

__all__ = [
    "Captioner", "CaptioningConfig", "CaptioningPreprocessor", "PRESETS", "CaptioningTask",
    "load_data", "load_examples", "build_model", "captioner", "remember", "learning_rate",
    "bleu_margin", "bleu_scores", "caption_parts", "nearest_neighbour_captions",
    "most_frequent_caption", "redrawn_scores", "task",
]

# Last: the package attribute `task` (what `rnnapps.tasks.get_task` returns)
# shadows the submodule of the same name.
task = CaptioningTask()
