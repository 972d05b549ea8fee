"""The recurrent model's next-word distribution mixed with the Kneser-Ney
n-gram's, as in Mikolov et al. 2011 ("Empirical evaluation and combination
of advanced language modeling techniques"):

    p(w | h) = weight * p_rnn(w | h) + (1 - weight) * p_kn(w | h)

The two models err differently: the n-gram remembers the exact phrases
that WordNet's glosses repeat ("a person who", "the act of"), the LSTM
generalises over words it saw in other contexts. `choose_weight` picks the
weight on the validation split (its perplexity); the export then serves the
mixture: `serving_default`'s top-k words and continuation and `score`'s
log-probabilities.

`NGramTensors` is the fitted `KneserNeyLM` in TensorFlow ops (its arrays as
variables, the lookups as `tf.searchsorted`), so the SavedModel computes the
n-gram's whole distribution itself, exactly as `KneserNeyLM.distribution`
does (in float32).
"""

import numpy as np
import tensorflow as tf  # NGramTensors is a tf.Module; this module is imported where used

from rnnapps.tasks.next_word.data import PAD_ID
from rnnapps.tasks.next_word.data import START_ID

__all__ = ["NGramTensors", "histories", "choose_weight", "WEIGHTS"]

# The weights `choose_weight` tries (1.0: the recurrent model alone).
WEIGHTS = tuple(round(w, 2) for w in np.arange(0.0, 1.0001, 0.05))


def _tf():
    import tensorflow as tf

    return tf


class NGramTensors(tf.Module):
    """A fitted `KneserNeyLM` as TensorFlow tensors and ops (a `tf.Module`:
    with `variables=True`, a SavedModel that tracks it saves its arrays).

    Args:
        lm: a fitted `rnnapps.tasks.next_word.ngram.KneserNeyLM`.
        variables: keep the arrays as `tf.Variable`s (for a SavedModel,
            which then stores them as variables, not graph constants).
    """

    def __init__(self, lm, variables=False):
        super().__init__(name="ngram")
        tf = _tf()
        make = (lambda a, dtype: tf.Variable(a.astype(dtype), trainable=False)) if variables \
            else (lambda a, dtype: tf.constant(a.astype(dtype)))
        self.order = lm.order
        self.vocabulary_size = lm.vocabulary_size
        # Level 1 (the empty context) is the same for every position: its
        # result, gamma_1 * uniform + the unigram terms, is one vector.
        base = np.where(lm._predictable, lm._uniform, 0.0)
        first = lm._levels[0]
        base = base * first["gammas"][0]
        np.add.at(base, first["keys"] % lm.vocabulary_size, first["terms"])
        self.base = make(base, np.float32)
        self.uniform = make(np.where(lm._predictable, lm._uniform, 0.0), np.float32)
        self.grams = [make(table, np.int64) for table in lm._gram_tables]
        self.levels = [
            {"keys": make(level["keys"], np.int64), "terms": make(level["terms"], np.float32),
             "contexts": make(level["contexts"], np.int64),
             "starts": make(level["starts"], np.int64),
             "gammas": make(level["gammas"], np.float32)}
            for level in lm._levels
        ]

    def _lookup(self, table, values):
        """`(row, found)`: where each value is in the sorted `table`."""
        tf = _tf()
        row = tf.minimum(tf.searchsorted(table, values, out_type=tf.int64),
                         tf.shape(table, tf.int64)[0] - 1)
        return row, tf.equal(tf.gather(table, row), values)

    def _context_ids(self, history):
        """For k = 2..order, each row's id of the context of its last k - 1
        ids (-1 where that context was never seen)."""
        tf = _tf()
        history = tf.cast(history, tf.int64)
        ids = []
        for k in range(2, self.order + 1):
            tokens = history[:, self.order - k:]
            context = tf.zeros_like(tokens[:, 0])
            found = tf.ones_like(tokens[:, 0], tf.bool)
            for j in range(k - 1):
                row, hit = self._lookup(self.grams[j], context * self.vocabulary_size
                                        + tokens[:, j])
                found = tf.logical_and(found, hit)
                context = row
            ids.append(tf.where(found, context, -1))
        return ids

    def _level_rows(self, level, context):
        """`(row, seen)` of each context in a level's list of contexts."""
        tf = _tf()
        row, hit = self._lookup(level["contexts"], tf.maximum(context, 0))
        return row, tf.logical_and(hit, context >= 0)

    def distribution(self, history):
        """`[n, vocabulary]` float32: P(next id | history) for `history`,
        `[n, order - 1]` int ids, the last order - 1 ids before the next
        word, start-padded (`histories`)."""
        tf = _tf()
        rows = tf.shape(history)[0]
        probabilities = tf.tile(self.base[None], [rows, 1])
        for level, context in zip(self.levels[1:], self._context_ids(history)):
            row, seen = self._level_rows(level, context)
            gamma = tf.where(seen, tf.gather(level["gammas"], row), 1.0)
            start = tf.where(seen, tf.gather(level["starts"], row), 0)
            stop = tf.where(seen, tf.gather(level["starts"], row + 1), 0)
            entries = tf.ragged.range(start, stop)
            flat = entries.flat_values
            words = tf.gather(level["keys"], flat) % self.vocabulary_size
            probabilities = tf.tensor_scatter_nd_add(
                probabilities * gamma[:, None],
                tf.stack([entries.value_rowids(), words], axis=1),
                tf.gather(level["terms"], flat))
        return probabilities

    def probabilities(self, history, words):
        """`[n]` float32: P(word | history) for each row (`distribution`
        at one word, without computing the rest)."""
        tf = _tf()
        words = tf.cast(words, tf.int64)
        probabilities = tf.gather(self.base, words)
        for level, context in zip(self.levels[1:], self._context_ids(history)):
            row, seen = self._level_rows(level, context)
            entry, hit = self._lookup(level["keys"],
                                      tf.maximum(context, 0) * self.vocabulary_size + words)
            term = tf.where(tf.logical_and(seen, hit), tf.gather(level["terms"], entry), 0.0)
            probabilities = tf.where(
                seen, term + tf.gather(level["gammas"], row) * probabilities, probabilities)
        return probabilities


def histories(ids, order):
    """`[batch, steps, order - 1]`: at each step of `ids` (`[batch, steps]`,
    `<s>` first, right-padded), the last order - 1 ids up to and including
    that step, start-padded: the n-gram's context for the next word there."""
    tf = _tf()
    ids = tf.cast(ids, tf.int64)
    steps = tf.shape(ids)[1]
    padded = tf.concat([tf.fill([tf.shape(ids)[0], max(order - 2, 0)],
                                tf.constant(START_ID, tf.int64)), ids], axis=1)
    return tf.stack([padded[:, j:j + steps] for j in range(order - 1)], axis=-1)


def last_history(ids, order):
    """`[batch, order - 1]`: the n-gram's context after each row of
    right-padded `ids` (`<s>` first), as `histories` at its last id."""
    tf = _tf()
    lengths = tf.reduce_sum(tf.cast(tf.not_equal(ids, PAD_ID), tf.int32), axis=1)
    every = histories(ids, order)
    return tf.gather(every, tf.maximum(lengths - 1, 0), axis=1, batch_dims=1)


def choose_weight(model, lm, batches, weights=WEIGHTS):
    """The weight of the recurrent model in the mixture with the lowest
    perplexity on `batches` (validation `(inputs, targets)`), and each
    weight's perplexity: `(weight, {weight: perplexity})`."""
    tf = _tf()
    ngram = NGramTensors(lm)
    rnn, kn = [], []
    for inputs, targets in batches:
        targets = np.asarray(targets)
        valid = targets != PAD_ID
        logits = np.asarray(model.predict_on_batch(np.asarray(inputs)), np.float32)[valid]
        log_p = tf.nn.log_softmax(logits).numpy()
        rnn.append(np.exp(np.take_along_axis(log_p, targets[valid][:, None], -1)[:, 0],
                          dtype=np.float64))
        context = histories(tf.constant(np.asarray(inputs)), lm.order)
        kn.append(ngram.probabilities(tf.boolean_mask(context, valid),
                                      tf.boolean_mask(targets, valid)).numpy())
    rnn, kn = np.concatenate(rnn), np.concatenate(kn).astype(np.float64)
    perplexities = {w: float(np.exp(-np.mean(np.log(w * rnn + (1 - w) * kn))))
                    for w in weights}
    best = min(perplexities, key=perplexities.get)
    return best, perplexities
