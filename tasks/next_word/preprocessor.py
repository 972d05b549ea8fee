"""The next-word task's preprocessor: strings to word ids, in TensorFlow ops.

It holds what was fitted on the training text, the vocabulary, and runs in
`tf.data` (training, on any Keras backend) and in the SavedModel's serving
functions (the export, on TensorFlow). The language model itself takes ids
(`rnnapps.language_model.WordLanguageModel`) and keeps the same vocabulary
in its config, so the export rebuilds the preprocessor from the checkpoint
alone: `NextWordPreprocessor(model.vocabulary, max_length)`.
"""

import numpy as np

from rnnapps.task import TaskError
from rnnapps.tasks.next_word.data import END_ID
from rnnapps.tasks.next_word.data import PAD_ID
from rnnapps.tasks.next_word.data import START_ID
from rnnapps.tasks.next_word.data import UNK_ID

__all__ = ["NextWordPreprocessor"]

# The first id of a vocabulary word (0 is padding, 1 [UNK]).
FIRST_ID = 2
# What keras.layers.TextVectorization strips by default (and rnnapps.text.standardize).
_PUNCTUATION = r'[!"#$%&()\*\+,-\./:;<=>?@\[\\\]^_`{|}~\']'


class NextWordPreprocessor:
    """Sentences to `(<s> w1 .. wn, w1 .. wn </s>)` word-id pairs, and texts
    to the ids the model continues.

    Words are what `keras.layers.TextVectorization` makes of a text by
    default (lower case, punctuation stripped, split on whitespace), looked
    up in a `tf.lookup.StaticHashTable`; id 0 is padding, 1 `[UNK]`, 2 `<s>`,
    3 `</s>`, then `vocabulary[2:]`.

    Args:
        vocabulary: the words after padding and `[UNK]`, starting with
            `<s>` and `</s>` (`rnnapps.tasks.next_word.data.fit_vocabulary`).
        max_length: words kept per sentence (the first ones) and per text
            to continue (the last ones).

    Example:

    >>> preprocessor = NextWordPreprocessor(["<s>", "</s>", "a", "cup", "of"], max_length=3)
    >>> x, y = preprocessor(["A cup of tea!"])
    >>> x.numpy().tolist(), y.numpy().tolist()  # <s> a cup of, a cup of </s>
    ([[2, 4, 5, 6]], [[4, 5, 6, 3]])
    >>> preprocessor.prompt_ids(["of a cup", "tea"]).numpy().tolist()  # <s> and the last words
    [[2, 6, 4, 5], [2, 1, 0, 0]]
    """

    def __init__(self, vocabulary, max_length=40):
        vocabulary = list(vocabulary)
        if vocabulary[:2] != ["<s>", "</s>"]:
            raise ValueError("vocabulary must start with '<s>' and '</s>'. "
                             f"Received: vocabulary={vocabulary[:4]}...")
        if max_length < 1:
            raise ValueError(f"max_length must be at least 1. Received: max_length={max_length}")
        self.vocabulary = vocabulary
        self.max_length = int(max_length)
        import tensorflow as tf

        # Word -> id; any other word is [UNK]. A TensorFlow resource: the
        # export keeps it with the model (`NextWordTask.serving_signature`).
        self.table = tf.lookup.StaticHashTable(
            tf.lookup.KeyValueTensorInitializer(
                tf.constant(vocabulary, tf.string),
                tf.range(FIRST_ID, FIRST_ID + len(vocabulary), dtype=tf.int32),
            ),
            default_value=UNK_ID,
        )

    @property
    def vocabulary_size(self):
        """Ids, padding and `[UNK]` included."""
        return len(self.vocabulary) + 2

    def tokenize(self, texts):
        """`tf.RaggedTensor` of the int32 word ids of each text (no `<s>`)."""
        import tensorflow as tf

        texts = tf.strings.lower(tf.convert_to_tensor(texts, tf.string))
        # TextVectorization's default standardization, which fitted the vocabulary.
        texts = tf.strings.regex_replace(texts, _PUNCTUATION, "")
        return self.table.lookup(tf.strings.split(texts))

    def __call__(self, sentences):
        """`(inputs, targets)`: `<s>` and the first `max_length` words of each
        sentence, and the same words then `</s>`; int32, padded with 0."""
        import tensorflow as tf

        words = self.tokenize(sentences)[:, : self.max_length]
        rows = tf.shape(words.row_lengths())[0]
        start = tf.RaggedTensor.from_tensor(tf.fill([rows, 1], START_ID))
        end = tf.RaggedTensor.from_tensor(tf.fill([rows, 1], END_ID))
        return (tf.concat([start, words], axis=1).to_tensor(PAD_ID),
                tf.concat([words, end], axis=1).to_tensor(PAD_ID))

    def prompt_ids(self, texts):
        """`<s>` and the last `max_length` words of each text, right-padded
        with 0: what the model continues (`WordLanguageModel.next_word`)."""
        import tensorflow as tf

        words = self.tokenize(texts)[:, -self.max_length:]
        start = tf.RaggedTensor.from_tensor(tf.fill([tf.shape(words.row_lengths())[0], 1],
                                                    START_ID))
        return tf.concat([start, words], axis=1).to_tensor(PAD_ID)

    def lengths(self, sentences):
        """NumPy word counts of each sentence (at most `max_length`)."""
        counts = []
        for start in range(0, len(sentences), 8192):
            ids = self.tokenize(list(sentences[start:start + 8192]))
            counts.append(np.minimum(ids.row_lengths().numpy(), self.max_length))
        return np.concatenate(counts) if counts else np.zeros(0, np.int64)

    def batches(self, sentences, batch_size, shuffle_seed=None):
        """A `tf.data.Dataset` of `(inputs, targets)` batches of `sentences`
        (raw strings), the words looked up in the pipeline itself.

        Sentences without a word are left out. Sentences of similar length
        share a batch, padded to a few fixed shapes
        (`rnnapps.language_model.bucket_batches`); with `shuffle_seed` the
        order is drawn anew every epoch.
        """
        import tensorflow as tf

        from rnnapps.language_model import bucket_batches

        sentences = [str(s) for s in sentences]
        lengths = self.lengths(sentences)
        kept = [s for s, n in zip(sentences, lengths) if n]
        if not kept:
            raise TaskError("no sentence has a word in it")
        dataset = tf.data.Dataset.from_tensor_slices(tf.constant(kept, tf.string))
        if shuffle_seed is not None:
            dataset = dataset.shuffle(len(kept), seed=shuffle_seed, reshuffle_each_iteration=True)
        # Looked up a few hundred at a time, then one sentence per element again.
        dataset = dataset.batch(256).map(self, num_parallel_calls=tf.data.AUTOTUNE).unbatch()
        dataset = dataset.map(_unpad, num_parallel_calls=tf.data.AUTOTUNE)
        return bucket_batches(dataset, lengths[lengths > 0] + 1, batch_size).prefetch(
            tf.data.AUTOTUNE)

    def get_config(self):
        return {"vocabulary": self.vocabulary, "max_length": self.max_length}

    @classmethod
    def from_config(cls, config):
        return cls(**config)


def _unpad(inputs, targets):
    """One sentence's pair without the padding its batch gave it."""
    import tensorflow as tf

    length = tf.reduce_sum(tf.cast(targets != PAD_ID, tf.int32))
    return inputs[:length], targets[:length]
