"""Subword tokenizers for the tasks that read or write text.

keras-hub's `SentencePieceTokenizer` (a unigram model fitted with
`keras_hub.tokenizers.compute_sentence_piece_proto`) is the tokenizer of the
translation and captioning tasks: it detokenizes losslessly (spacing and
punctuation come back), so generated text is ordinary text, which is what
detokenized BLEU (sacrebleu) expects, and it runs inside a SavedModel's
graph. Ids 0-3 are padding, unknown, start and end.

    >>> tokenizer = fit_sentencepiece(["a red apple", "a green apple", "red car"] * 10, 20)
    >>> tokenizer.vocabulary_size() <= 20
    True
    >>> ids = tokenizer(["red apple"])[0]
    >>> detokenize(tokenizer, [ids + [END_ID, 0]]).numpy().tolist()
    [b'red apple']
"""

import contextlib
import os
import re
import sys

__all__ = ["standardize", "PAD_ID", "UNK_ID", "START_ID", "END_ID", "fit_sentencepiece", "detokenize", "pad_ragged",
           "teacher_forcing", "quiet_stderr"]

# What keras.layers.TextVectorization's default standardization strips.
_PUNCTUATION = re.compile(r'[!"#$%&()\*\+,-\./:;<=>?@\[\\\]^_`{|}~\']')


def standardize(text):
    """The words of `text` as `keras.layers.TextVectorization` reads them by
    default (lower case, punctuation stripped, split on whitespace), in Python.

    >>> standardize("Don't stop, Bob!")
    ['dont', 'stop', 'bob']
    """
    return _PUNCTUATION.sub("", text.lower()).split()


# The ids `compute_sentence_piece_proto` reserves.
PAD_ID, UNK_ID, START_ID, END_ID = 0, 1, 2, 3


def fit_sentencepiece(texts, vocabulary_size):
    """A SentencePiece tokenizer (keras-hub) fitted on `texts` (a list of str).

    A vocabulary too large for a small corpus is lowered to the largest
    size SentencePiece accepts (it names it in its error).

    Raises:
        ValueError: no vocabulary of at least 16 pieces fits `texts`.
    """
    import keras_hub
    import tensorflow as tf

    data = tf.data.Dataset.from_tensor_slices(tf.constant(list(texts), tf.string))
    try:
        with quiet_stderr():
            proto = keras_hub.tokenizers.compute_sentence_piece_proto(data, vocabulary_size)
    except RuntimeError as error:
        match = re.search(r"<= (\d+)", str(error))
        if not match or int(match.group(1)) < 16:
            raise ValueError(f"cannot fit a SentencePiece vocabulary: {error}".splitlines()[0])
        with quiet_stderr():
            proto = keras_hub.tokenizers.compute_sentence_piece_proto(data, int(match.group(1)))
    return keras_hub.tokenizers.SentencePieceTokenizer(proto=proto, dtype="int32")


def detokenize(tokenizer, tokens, end_id=END_ID):
    """Strings from `(batch, steps)` ids: stops at `end_id`, drops padding (0)."""
    import tensorflow as tf

    tokens = tf.convert_to_tensor(tokens)
    after_end = tf.cumsum(tf.cast(tokens == end_id, tf.int32), axis=1) > 0
    tokens = tf.where(after_end, tf.zeros_like(tokens), tokens)
    ragged = tf.RaggedTensor.from_tensor(tokens, padding=0)
    strings = tokenizer.detokenize(ragged)
    return tf.reshape(strings, [-1])


def pad_ragged(ragged, multiple=8):
    """A ragged `(batch, None)` id tensor, padded with 0 to its longest row
    rounded up to a multiple of `multiple` (so a model sees a handful of
    sequence lengths, not one per batch)."""
    import tensorflow as tf

    length = tf.reduce_max(tf.concat([tf.cast(ragged.row_lengths(), tf.int32), [1]], 0))
    length = (length + multiple - 1) // multiple * multiple
    dense = ragged.to_tensor(default_value=0)
    return tf.pad(dense, [[0, 0], [0, length - tf.shape(dense, out_type=tf.int32)[1]]])


def teacher_forcing(tokenizer, texts, max_length):
    """`(inputs, targets)` ids of `texts` for a decoder trained with teacher
    forcing: `<s> y` and `y </s>`, `y` cut to `max_length - 1` tokens, both
    padded with 0 (`pad_ragged`)."""
    import tensorflow as tf

    tokens = tokenizer(texts)[:, : max_length - 1]
    rows = tokens.nrows()
    start = tf.fill([rows, 1], tf.constant(START_ID, tokens.dtype))
    end = tf.fill([rows, 1], tf.constant(END_ID, tokens.dtype))
    return pad_ragged(tf.concat([start, tokens], axis=1)), pad_ragged(tf.concat([tokens, end], axis=1))


@contextlib.contextmanager
def quiet_stderr():
    """Hides what C++ code writes to the process's stderr (SentencePiece's
    trainer logs every step there); errors still raise, with their message."""
    try:
        fd = sys.stderr.fileno()
    except (AttributeError, ValueError, OSError):  # e.g. a captured stderr
        yield
        return
    sys.stderr.flush()
    saved = os.dup(fd)
    try:
        with open(os.devnull, "w") as devnull:
            os.dup2(devnull.fileno(), fd)
            yield
    finally:
        os.dup2(saved, fd)
        os.close(saved)
