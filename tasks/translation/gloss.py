"""`DictionaryGloss`: the word-by-word dictionary gloss as a Keras layer.

`lexicon.Lexicon.gloss` in TensorFlow string ops and lookup tables, so that
the same computation glosses the training data (in tf.data) and the
sentences the export receives (in its graph). It computes in TensorFlow
whatever the Keras backend, like keras-hub's tokenizers.
"""

import json
import pathlib

import keras
import numpy as np

from rnnapps.tasks.translation.lexicon import _PUNCTUATION
from rnnapps.tasks.translation.lexicon import _WHITESPACE

__all__ = ["DictionaryGloss"]


def _table(tf, mapping):
    keys = tf.constant(list(mapping), tf.string)
    values = tf.constant(list(mapping.values()), tf.string)
    return tf.lookup.StaticHashTable(tf.lookup.KeyValueTensorInitializer(keys, values), "")


@keras.saving.register_keras_serializable(package="rnnapps.translation")
class DictionaryGloss(keras.layers.Layer):
    """Each token of a string replaced by its dictionary translation.

    Tokens are words and punctuation marks (`lexicon.tokenize`); a token is
    looked up as written, then lower-cased, and kept where it has no entry.
    The entries are saved with the model as an asset (`entries.jsonl`), as
    keras-hub's tokenizers save their vocabularies.

    Args:
        entries: `{word: translation}` (e.g. `lexicon.parse_lexicon`'s).

    Call arguments:
        texts: A string tensor `(batch,)`.

    Output shape:
        `(batch,)` strings: the translated tokens joined by spaces.

    Example:

    >>> import tensorflow as tf
    >>> gloss = DictionaryGloss({"das": "the", "Haus": "house"})
    >>> [t.decode() for t in gloss(tf.constant(["Das Haus, bitte!"])).numpy()]
    ['the house , bitte !']
    """

    def __init__(self, entries=None, **kwargs):
        kwargs.setdefault("trainable", False)
        super().__init__(**kwargs)
        self._set_entries(entries or {})

    def _set_entries(self, entries):
        import tensorflow as tf

        # NumPy arrays, not a dict: Keras and TensorFlow would wrap a dict
        # attribute of 300,000 entries for tracking.
        self._words = np.array(list(entries), dtype=object)
        self._translations = np.array(list(entries.values()), dtype=object)
        lowered = {}
        for word, translation in entries.items():
            lowered.setdefault(word.lower(), translation)
        self._exact = _table(tf, entries)
        self._lowered = _table(tf, lowered)

    def __call__(self, texts, *args, **kwargs):
        # String ops run in TensorFlow whatever the Keras backend (as in
        # keras-hub's tokenizers): on JAX or PyTorch, skip Keras's
        # conversion of the inputs to that backend's arrays.
        if keras.backend.backend() != "tensorflow":
            import tensorflow as tf

            return self.call(tf.convert_to_tensor(texts, tf.string))
        return super().__call__(texts, *args, **kwargs)

    @property
    def entries(self):
        return dict(zip(self._words.tolist(), self._translations.tolist()))

    def call(self, texts):
        import tensorflow as tf

        spaced = tf.strings.regex_replace(texts, _PUNCTUATION, r" \1 ")
        spaced = tf.strings.strip(tf.strings.regex_replace(spaced, _WHITESPACE, " "))
        tokens = tf.strings.split(spaced, sep=" ")
        words = tokens.flat_values
        exact = self._exact.lookup(words)
        lowered = self._lowered.lookup(tf.strings.lower(words, encoding="utf-8"))
        translated = tf.where(exact != "", exact, tf.where(lowered != "", lowered, words))
        return tf.strings.reduce_join(tokens.with_flat_values(translated), axis=1, separator=" ")

    def compute_output_spec(self, texts):
        return keras.KerasTensor(texts.shape, dtype="string")

    def save_assets(self, dir_path):
        with open(pathlib.Path(dir_path) / "entries.jsonl", "w", encoding="utf-8") as file:
            for word, translation in zip(self._words.tolist(), self._translations.tolist()):
                file.write(json.dumps([word, translation], ensure_ascii=False) + "\n")

    def load_assets(self, dir_path):
        with open(pathlib.Path(dir_path) / "entries.jsonl", encoding="utf-8") as file:
            self._set_entries(dict(json.loads(line) for line in file))
