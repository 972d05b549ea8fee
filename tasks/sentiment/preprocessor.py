"""The sentiment preprocessor: raw texts in, the token ids the model reads out.

Tokenization is TensorFlow string ops (`keras.layers.TextVectorization`), so
it runs in `tf.data` whatever backend trains the model, and again in the
SavedModel's serving function, so the export still takes raw strings. What
it fitted on the training texts, the vocabulary, is in its config.
"""

import keras

__all__ = ["SentimentPreprocessor"]


@keras.saving.register_keras_serializable(package="rnnapps.sentiment")
class SentimentPreprocessor(keras.layers.Layer):
    """Maps texts to padded word ids: `keras.layers.TextVectorization` with
    a fixed vocabulary (lower-cased, punctuation stripped, split on spaces).

    Id 0 is padding, id 1 the unknown word (`[UNK]`), ids 2 on the words of
    `vocabulary` in order. Like keras-hub's preprocessors it passes labels
    and sample weights through, so `dataset.map(preprocessor)` turns a
    dataset of `(text, label)` into one of `(ids, label)`; it runs in
    `tf.data` on any Keras backend (its ops are TensorFlow's).

    Args:
        vocabulary: the words, most frequent first, without padding and
            `[UNK]` (`from_texts` fits them on training texts).
        sequence_length: ids per text: longer texts are cut, shorter ones
            padded with 0 at the end.

    Call arguments:
        x: a batch of strings (a list, a NumPy array or a `tf.Tensor`).
        y: optional labels, returned unchanged.
        sample_weight: optional sample weights, returned unchanged.

    Output shape:
        `(batch, sequence_length)` int32 ids; `(ids, y)` or
        `(ids, y, sample_weight)` when those are given.

    Example:

    >>> preprocessor = SentimentPreprocessor(["tea", "great"], sequence_length=4)
    >>> preprocessor.vocabulary_size  # padding, [UNK] and the two words
    4
    >>> ids = preprocessor(["Great tea!", "Awful coffee, great tea"])
    >>> keras.ops.convert_to_numpy(ids).tolist()
    [[3, 2, 0, 0], [1, 1, 3, 2]]
    >>> fitted = SentimentPreprocessor.from_texts(["good tea", "bad tea"], vocabulary_size=10)
    >>> fitted.vocabulary
    ['tea', 'good', 'bad']
    """

    def __init__(self, vocabulary, sequence_length=200, **kwargs):
        super().__init__(**kwargs)
        vocabulary = [str(word) for word in vocabulary]
        if not vocabulary:
            raise ValueError("vocabulary must hold at least one word. Received: vocabulary=[]")
        if sequence_length < 1:
            raise ValueError(
                f"sequence_length must be positive. Received: sequence_length={sequence_length}"
            )
        self.vocabulary = vocabulary
        self.sequence_length = int(sequence_length)
        self.vectorize = keras.layers.TextVectorization(
            vocabulary=vocabulary, output_sequence_length=self.sequence_length, name="vectorize"
        )
        # Strings in, TensorFlow ops inside (as TextVectorization and
        # keras-hub's preprocessing layers do): inputs are not converted to
        # the backend's tensors, and labels may be passed positionally.
        self._convert_input_args = False
        self._allow_non_tensor_positional_args = True

    @classmethod
    def from_texts(cls, texts, vocabulary_size, sequence_length=200, **kwargs):
        """A preprocessor whose vocabulary is the `vocabulary_size - 2` most
        frequent words of `texts` (ids 0 and 1 are padding and `[UNK]`)."""
        if vocabulary_size < 3:
            raise ValueError(
                "vocabulary_size counts padding and [UNK], so it must be at least 3. "
                f"Received: vocabulary_size={vocabulary_size}"
            )
        vectorize = keras.layers.TextVectorization(max_tokens=vocabulary_size)
        vectorize.adapt([str(text) for text in texts], batch_size=1024)
        words = vectorize.get_vocabulary()[2:]  # after padding and [UNK]
        if not words:
            raise ValueError("texts must hold at least one word to build a vocabulary from")
        return cls(words, sequence_length=sequence_length, **kwargs)

    def build(self, input_shape=None):
        # Nothing to build: the vocabulary is given, TextVectorization holds it.
        self.built = True

    @property
    def vocabulary_size(self):
        """Ids in use: the words, padding and `[UNK]`."""
        return len(self.vocabulary) + 2

    def call(self, x, y=None, sample_weight=None):
        import tensorflow as tf

        ids = self.vectorize(x)
        if isinstance(ids, tf.Tensor):  # in tf.data or on TensorFlow; int64 there
            ids = tf.cast(ids, tf.int32)
        return keras.utils.pack_x_y_sample_weight(ids, y, sample_weight)

    def get_config(self):
        return {
            **super().get_config(),
            "vocabulary": self.vocabulary,
            "sequence_length": self.sequence_length,
        }
