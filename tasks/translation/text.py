"""Subword tokenization and the tf.data pipeline of the translation task.

The tokenizer is keras-hub's `SentencePieceTokenizer` (`rnnapps.text`),
trained on both sides of the training split: one joint vocabulary, as in most subword NMT systems. SentencePiece detokenization is lossless, so translations
come out as ordinary text (spacing and punctuation restored), which is what
detokenized BLEU (sacrebleu) expects. Ids 0-3 are padding, unknown, start and
end (`rnnapps.tasks.translation.model.PAD_ID` ...).
"""

import numpy as np

from rnnapps.task import TaskError
from rnnapps.text import pad_ragged

__all__ = ["fit_tokenizer", "encode_source", "encode_target", "decode_tokens", "make_dataset"]

def fit_tokenizer(texts, vocabulary_size):
    """A SentencePiece tokenizer fitted on `texts` (`rnnapps.text.fit_sentencepiece`)."""
    from rnnapps.text import fit_sentencepiece

    try:
        return fit_sentencepiece(texts, vocabulary_size)
    except ValueError as error:
        raise TaskError(str(error))


def encode_source(tokenizer, texts, max_length):
    """`(batch, steps)` int32 ids of `texts` (a string tensor), end token appended.

    Sources longer than `max_length - 1` tokens are cut; an empty text is
    the end token alone. Padded with 0 to a multiple of 8.
    """
    import tensorflow as tf

    from rnnapps.tasks.translation.model import END_ID

    tokens = tokenizer(texts)[:, : max_length - 1]
    end = tf.fill([tokens.nrows(), 1], tf.constant(END_ID, tokens.dtype))
    return pad_ragged(tf.concat([tokens, end], axis=1))


def encode_target(tokenizer, texts, max_length):
    """`(target_in, target_out)` for teacher forcing: `<s> y` and `y </s>`."""
    from rnnapps.text import teacher_forcing

    return teacher_forcing(tokenizer, texts, max_length)


def decode_tokens(tokenizer, tokens):
    """Strings from `(batch, steps)` ids; stops at the end token, drops padding."""
    from rnnapps.text import detokenize

    return detokenize(tokenizer, tokens)


def token_lengths(tokenizer, texts):
    """Token count of each text (numpy int array)."""
    import tensorflow as tf

    count = tf.function(lambda batch: tokenizer(batch).row_lengths())
    lengths = []
    for start in range(0, len(texts), 4096):
        batch = tf.constant(list(texts[start:start + 4096]), tf.string)
        lengths.append(count(batch).numpy())
    return np.concatenate(lengths) if lengths else np.zeros(0, int)


def make_dataset(sources, targets, tokenizer, max_length, batch_size, shuffle_seed=None,
                 source_max_length=None, extra=None):
    """Batched `({"source", "target_in"}, target_out)` for teacher forcing.

    Sources are cut to `source_max_length` tokens (default `max_length`),
    targets to `max_length`. `extra`, for training, is `(sources, targets,
    count)`: pairs of which a fresh random `count` join every epoch (the
    dictionary's entries next to the sentences).

    Examples are grouped into batches of similar length (each batch is
    padded to its longest sentence, rounded up to a multiple of 8); the
    training set is shuffled, batches too, every epoch when seeded.
    """
    import tensorflow as tf

    sources, targets = list(sources), list(targets)
    dataset = tf.data.Dataset.from_tensor_slices(
        (tf.constant(sources, tf.string), tf.constant(targets, tf.string))
    )
    size = len(sources)
    if extra is not None:
        if shuffle_seed is None:
            raise ValueError("extra pairs are sampled for training: give shuffle_seed")
        extra_sources, extra_targets, count = extra
        sampled = tf.data.Dataset.from_tensor_slices(
            (tf.constant(list(extra_sources), tf.string), tf.constant(list(extra_targets), tf.string))
        ).shuffle(len(extra_sources), seed=shuffle_seed + 1, reshuffle_each_iteration=True)
        count = min(int(count), len(extra_sources))
        dataset, size = dataset.concatenate(sampled.take(count)), size + count
    if shuffle_seed is not None:
        dataset = dataset.shuffle(size, seed=shuffle_seed, reshuffle_each_iteration=True)

    def encode(source, target):
        target_in, target_out = encode_target(tokenizer, target, max_length)
        return (
            {"source": encode_source(tokenizer, source, source_max_length or max_length),
             "target_in": target_in},
            target_out,
        )

    if shuffle_seed is not None:
        # Sort each window of 20 batches by length (characters, a cheap
        # proxy for tokens), then shuffle the batches: less padding.
        def by_length(source, target):
            keys = tf.strings.length(source, "UTF8_CHAR") + tf.strings.length(target, "UTF8_CHAR")
            order = tf.argsort(keys)
            return tf.gather(source, order), tf.gather(target, order)

        dataset = (
            dataset.batch(batch_size * 20).map(by_length).unbatch()
            .batch(batch_size).shuffle(20, seed=shuffle_seed, reshuffle_each_iteration=True)
        )
    else:
        dataset = dataset.batch(batch_size)
    return dataset.map(encode, num_parallel_calls=tf.data.AUTOTUNE).prefetch(tf.data.AUTOTUNE)

