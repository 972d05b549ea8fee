"""Scores of a next-word model and of its n-gram baseline on the same test ids:
perplexity and the top-1/top-5 accuracy of word suggestions (NumPy, any backend)."""

import numpy as np

from rnnapps.tasks.next_word.data import PAD_ID

__all__ = ["language_model_metrics", "ngram_metrics", "FIRST_WORD_ID"]

# Suggestions are words: ids 0-3 (padding, [UNK], <s>, </s>) never are.
FIRST_WORD_ID = 4


def _top(scores, k):
    """Indices of the `k` largest scores along the last axis (unordered)."""
    if scores.shape[-1] <= k:
        return np.broadcast_to(np.arange(scores.shape[-1]), scores.shape)
    return np.argpartition(-scores, k - 1, axis=-1)[..., :k]


class _Scores:
    """Running perplexity and top-1/top-5 accuracy over positions."""

    def __init__(self):
        self.total, self.tokens, self.hits1, self.hits5, self.words = 0.0, 0, 0, 0, 0

    def add(self, log_probabilities, targets):
        """`log_probabilities` `[n, vocabulary]` at `n` positions, `targets` `[n]`."""
        import tensorflow as tf

        picked = np.take_along_axis(log_probabilities, targets[:, None], -1)[:, 0]
        self.total += float(picked.sum(dtype=np.float64))
        self.tokens += len(targets)
        is_word = targets >= FIRST_WORD_ID
        scores = log_probabilities[is_word][:, FIRST_WORD_ID:]
        # tf.math.top_k: every core, and ties to the smaller id, as argmax.
        top5 = tf.math.top_k(scores, min(5, scores.shape[-1])).indices.numpy() + FIRST_WORD_ID
        top1 = top5[:, 0]
        self.hits1 += int((top1 == targets[is_word]).sum())
        self.hits5 += int((top5 == targets[is_word][:, None]).any(-1).sum())
        self.words += int(is_word.sum())

    def result(self, prefix=""):
        return {
            f"{prefix}perplexity": round(float(np.exp(-self.total / max(self.tokens, 1))), 3),
            f"{prefix}top1_accuracy": round(self.hits1 / max(self.words, 1), 4),
            f"{prefix}top5_accuracy": round(self.hits5 / max(self.words, 1), 4),
        }


def language_model_metrics(model, dataset):
    """Perplexity (every next token, `</s>` and `[UNK]` included) and the
    top-1/top-5 accuracy of word suggestions (positions whose next token is
    a vocabulary word; the model's most likely words) of `model` on batches
    of `(inputs, targets)`.

    With an n-gram attached (`WordLanguageModel.interpolate`), these score
    the mixture the model serves, and `recurrent_perplexity`,
    `recurrent_top1_accuracy` and `recurrent_top5_accuracy` the recurrent
    model alone."""
    import tensorflow as tf

    ngram = getattr(model, "ngram", None)
    weight = getattr(model, "ngram_weight", 1.0)
    if weight >= 1.0:
        ngram = None
    served, alone = _Scores(), _Scores()
    for inputs, targets in dataset:
        inputs, targets = np.asarray(inputs), np.asarray(targets)
        valid = targets != PAD_ID
        # The positions but padding, normalised in TensorFlow's float32
        # kernels (every core; NumPy's float64 over the whole padded batch
        # took most of a default run's test report).
        logits = np.asarray(model.predict_on_batch(inputs), np.float32)[valid]
        log_probabilities = tf.nn.log_softmax(logits).numpy()
        alone.add(log_probabilities, targets[valid])
        if ngram is not None:
            # The n-gram's distribution after the words before each position
            # (`inputs` start with <s>), in NumPy (the export's TensorFlow
            # tables give the same to 4e-8).
            kn = np.stack([ngram.distribution(inputs[row, 1:column + 1])
                           for row, column in zip(*np.nonzero(valid))]).astype(np.float32)
            mixed = weight * tf.exp(log_probabilities) + (1 - weight) * kn
            served.add(tf.math.log(tf.maximum(mixed, 1e-30)).numpy(), targets[valid])
    if ngram is None:
        return {**alone.result(), "tokens": alone.tokens}
    return {**served.result(), "tokens": served.tokens, "ngram_weight": weight,
            **alone.result("recurrent_")}


def ngram_metrics(data, order, lm=None):
    """The Kneser-Ney baseline on `data`: fitted on the training ids (or
    `lm`, already fitted so), scored on the test ids like
    `language_model_metrics`."""
    from rnnapps.tasks.next_word.ngram import KneserNeyLM

    if lm is None:
        lm = KneserNeyLM(data.info["vocabulary_size"], order=order).fit(data.raw["train"])
    hits1 = hits5 = words = 0
    for sentence in data.raw["test"]:
        for i, target in enumerate(sentence):
            if target < FIRST_WORD_ID:
                continue
            p = lm.distribution(sentence[:i])[FIRST_WORD_ID:]
            top5 = _top(p, 5) + FIRST_WORD_ID
            hits1 += int(np.argmax(p) + FIRST_WORD_ID == target)
            hits5 += int(target in top5)
            words += 1
    return {
        "ngram_order": order,
        "ngram_perplexity": round(float(lm.perplexity(data.raw["test"])), 3),
        "ngram_top1_accuracy": round(hits1 / max(words, 1), 4),
        "ngram_top5_accuracy": round(hits5 / max(words, 1), 4),
    }
