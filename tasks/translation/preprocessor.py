"""`TranslationPreprocessor`: raw sentences to the ids `Seq2Seq` reads, and back.

keras-hub's shape (`keras_hub.models.Seq2SeqLMPreprocessor`): a layer of
TensorFlow ops that runs inside `tf.data` whatever the Keras backend (so the
model on JAX never sees a string) and inside the export's graph, and that
holds what was fitted on the data: the SentencePiece model (one vocabulary
for both languages, `rnnapps.text.fit_sentencepiece`) and, optionally, the
word-by-word dictionary gloss fed with the source (`gloss.DictionaryGloss`).
Both are saved with the model as assets of the `.keras` file, so the
TensorFlow process that builds the export rebuilds the preprocessor from
the checkpoint a JAX run wrote.
"""

import weakref

import keras
import numpy as np

from rnnapps.text import END_ID
from rnnapps.text import detokenize
from rnnapps.text import pad_ragged
from rnnapps.text import teacher_forcing

__all__ = ["TranslationPreprocessor", "GLOSS_SEPARATOR"]

# Between a source and its gloss: "Das Haus. = the house ."
GLOSS_SEPARATOR = " = "


# Each preprocessor's eager entry points, traced once (`_in_graph`).
_GRAPHS = weakref.WeakKeyDictionary()


def _in_graph(layer, method, *args):
    """`layer.method(*args)`, run as a TensorFlow graph when called eagerly:
    keras-hub's tokenizers return Python lists, not tensors, when called
    eagerly on a backend other than TensorFlow (inside `tf.data` and the
    export's graph they run as TensorFlow ops on every backend). One
    `tf.function` per layer and method, so a loop over batches traces once."""
    import tensorflow as tf

    if not tf.executing_eagerly():
        return getattr(layer, method)(*args)
    graphs = _GRAPHS.setdefault(layer, {})
    if method not in graphs:
        owner = weakref.ref(layer)  # the cache must not keep the layer alive
        graphs[method] = tf.function(lambda *a: getattr(owner(), method)(*a),
                                     reduce_retracing=True)
    return graphs[method](*args)


def _strings(texts):
    import tensorflow as tf

    return texts if tf.is_tensor(texts) else tf.constant(list(texts), tf.string)


@keras.saving.register_keras_serializable(package="rnnapps.translation")
class TranslationPreprocessor(keras.layers.Layer):
    """Source and target strings to padded ids for teacher forcing.

    A source is fed as `source = gloss(source)` where there is a gloss, cut
    to `source_sequence_length - 1` tokens and ended with the end token;
    a target becomes `<s> y` (the decoder's input) and `y </s>` (what it
    predicts), `y` cut to `sequence_length - 1` tokens. Each batch is padded
    with 0 to its longest row, rounded up to a multiple of 8. TensorFlow
    ops, whatever the Keras backend (as keras-hub's preprocessors).

    Args:
        tokenizer: keras-hub's `SentencePieceTokenizer` of both languages
            (ids 0-3: padding, unknown, start, end).
        gloss: optional `gloss.DictionaryGloss`: each source is fed
            followed by its word-by-word translation.
        sequence_length: most target tokens, the end token included.
        source_sequence_length: most source tokens, the end token included
            (default: `sequence_length`, twice that with a gloss: a glossed
            source is about twice as long).

    Call arguments:
        x: `(batch,)` source strings.
        y: optional `(batch,)` target strings.

    Returns:
        `{"source": ids}`, or with `y`, `({"source", "target_in"}, target_out)`.

    Example:

    >>> from rnnapps.text import fit_sentencepiece
    >>> tokenizer = fit_sentencepiece(["ein Haus", "a house", "das Haus", "the house"] * 10, 20)
    >>> preprocessor = TranslationPreprocessor(tokenizer, sequence_length=6)
    >>> x, y = preprocessor(["ein Haus"], ["a house"])
    >>> tuple(x["source"].shape), tuple(x["target_in"].shape), tuple(y.shape)
    ((1, 8), (1, 8), (1, 8))
    >>> [t.decode() for t in preprocessor.detokenize(y).numpy()]
    ['a house']
    """

    def __init__(self, tokenizer=None, gloss=None, sequence_length=48,
                 source_sequence_length=None, **kwargs):
        kwargs.setdefault("trainable", False)
        super().__init__(**kwargs)
        if sequence_length is None or sequence_length < 2:
            raise ValueError(
                f"sequence_length must be at least 2. Received: sequence_length={sequence_length}"
            )
        if source_sequence_length is not None and source_sequence_length < 2:
            raise ValueError(
                "source_sequence_length must be at least 2. "
                f"Received: source_sequence_length={source_sequence_length}"
            )
        self.tokenizer = tokenizer
        self.gloss = gloss
        self.sequence_length = int(sequence_length)
        self.source_sequence_length = int(
            source_sequence_length or sequence_length * (2 if gloss is not None else 1)
        )

    @classmethod
    def from_texts(cls, sources, targets, vocabulary_size, gloss=None, **kwargs):
        """A preprocessor whose SentencePiece model is fitted on `sources`
        (glossed, as the model reads them) and `targets` (lists of str).

        Raises:
            ValueError: no vocabulary of at least 16 pieces fits the texts.
        """
        from rnnapps.text import fit_sentencepiece

        unfitted = cls(gloss=gloss, **kwargs)
        texts = unfitted.glossed_strings(sources) + list(targets)
        return cls(fit_sentencepiece(texts, vocabulary_size), gloss=gloss, **kwargs)

    def glossed_strings(self, texts, batch_size=4096):
        """`glossed` of a list of str, as a list of str."""
        if self.gloss is None:
            return list(texts)
        texts, out = list(texts), []
        for start in range(0, len(texts), batch_size):
            out += [t.decode("utf-8") for t in
                    self.glossed(texts[start:start + batch_size]).numpy().tolist()]
        return out

    @property
    def vocabulary_size(self):
        return int(self.tokenizer.vocabulary_size())

    def __call__(self, x, y=None):
        # String ops in TensorFlow on every backend: Keras's conversion of
        # the inputs to the backend's arrays is skipped (keras-hub does the
        # same in its preprocessing layers).
        return self.call(x, y)

    def call(self, x, y=None):
        if y is None:
            return _in_graph(self, "_call", _strings(x))
        return _in_graph(self, "_call", _strings(x), _strings(y))

    def _call(self, x, y=None):
        source = self._encode_source(x)
        if y is None:
            return {"source": source}
        target_in, target_out = self._encode_target(y)
        return {"source": source, "target_in": target_in}, target_out

    def glossed(self, texts):
        """`texts` (strings) followed by their gloss; unchanged without one."""
        import tensorflow as tf

        texts = tf.convert_to_tensor(texts, tf.string)
        if self.gloss is None:
            return texts
        return tf.strings.join([texts, self.gloss(texts)], separator=GLOSS_SEPARATOR)

    def encode_source(self, texts):
        """`(batch, steps)` int32 ids of source strings (glossed), end token appended."""
        return _in_graph(self, "_encode_source", _strings(texts))

    def _encode_source(self, texts):
        import tensorflow as tf

        tokens = self.tokenizer(self.glossed(texts))[:, : self.source_sequence_length - 1]
        end = tf.fill([tokens.nrows(), 1], tf.constant(END_ID, tokens.dtype))
        return pad_ragged(tf.concat([tokens, end], axis=1))

    def encode_target(self, texts):
        """`(target_in, target_out)` ids of target strings: `<s> y` and `y </s>`."""
        return _in_graph(self, "_encode_target", _strings(texts))

    def _encode_target(self, texts):
        import tensorflow as tf

        return teacher_forcing(self.tokenizer, tf.convert_to_tensor(texts, tf.string),
                               self.sequence_length)

    def detokenize(self, tokens):
        """Strings of `(batch, steps)` ids (any backend's array or NumPy):
        stops at the end token, drops padding."""
        import tensorflow as tf

        tokens = tokens if tf.is_tensor(tokens) else tf.constant(np.asarray(tokens))
        return _in_graph(self, "_detokenize", tokens)

    def _detokenize(self, tokens):
        return detokenize(self.tokenizer, tokens)

    def token_lengths(self, texts, batch_size=4096):
        """Token count of each string (NumPy), unglossed: what a target
        longer than `sequence_length - 1` tokens is told apart by."""
        import tensorflow as tf

        count = tf.function(lambda batch: self.tokenizer(batch).row_lengths())  # (see _in_graph)
        lengths = [
            count(tf.constant(list(texts[start:start + batch_size]), tf.string)).numpy()
            for start in range(0, len(texts), batch_size)
        ]
        return np.concatenate(lengths) if lengths else np.zeros(0, int)

    def get_config(self):
        config = super().get_config()
        config.update(
            tokenizer=keras.saving.serialize_keras_object(self.tokenizer),
            gloss=keras.saving.serialize_keras_object(self.gloss),
            sequence_length=self.sequence_length,
            source_sequence_length=self.source_sequence_length,
        )
        return config

    @classmethod
    def from_config(cls, config):
        config = dict(config)
        if config.get("gloss") is not None:
            from rnnapps.tasks.translation import gloss  # noqa: F401  (registers DictionaryGloss)
        for name in ("tokenizer", "gloss"):
            if config.get(name) is not None:
                config[name] = keras.saving.deserialize_keras_object(config[name])
        return cls(**config)
