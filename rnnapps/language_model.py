"""A recurrent word-level language model, shared by the tasks that read English.

The `next_word` task trains it; the sentiment task can start its encoder
from one (`--encoder`), as in Dai & Le 2015 and ULMFiT (Howard & Ruder 2018).

    ids -> Embedding (tied) -> EmbeddingDropout -> locked dropout
        -> [LSTM | GRU | IRNN -> locked dropout] x layers
        -> Dense(embedding_dim) -> Embedding^T -> logits over the vocabulary

The output layer is the input embedding transposed (Press & Wolf 2017,
*Using the Output Embedding to Improve Language Models*; keras-hub's
`ReversibleEmbedding`), with a projection when `units` differs from
`embedding_dim` (and always when the weights are untied, where it costs
little). Dropout follows AWD-LSTM (Merity, Keskar & Socher 2017): whole
words dropped from the input (embedding dropout), and the same units
dropped at every step of a sentence (locked, or variational, dropout:
`SpatialDropout1D` over `(batch, steps, features)`).

The model takes word ids and is `keras.ops` and Keras layers only, so it
trains on any Keras backend; it keeps its vocabulary (the word of each id,
in its config), so a checkpoint is complete. Strings become ids outside it,
in `tf.data` (`token_ids`, and the `next_word` task's preprocessor).
`next_word` gives the distribution of the next word after each row of ids
and the recurrent states there, and `greedy_continuation` extends them word
by word.

Batches (`sentence_batches`) group sentences of similar length; on JAX
they are padded to a few fixed shapes, one per length bucket, so that the
`jit`-compiled training step is compiled once per bucket, not once per new
batch length.
"""

import keras
import numpy as np
from keras import ops

from rnnapps.layers import IRNN

__all__ = ["EmbeddingDropout", "WordLanguageModel", "token_ids", "bucket_lengths",
           "bucket_batches", "sentence_batches", "log_probabilities_of", "perplexity", "load",
           "pretrained", "PAD_ID", "UNK_ID", "START_ID", "END_ID", "PREDICTABLE_FROM"]

SOFTMAXES = ("full", "sampled", "adaptive")
_CELLS = {"lstm": keras.layers.LSTM, "gru": keras.layers.GRU, "irnn": IRNN}
# Ids 0-3 are padding, [UNK], <s> and </s>: suggestions start at 4.
PREDICTABLE_FROM = 4
PAD_ID, UNK_ID, START_ID, END_ID = 0, 1, 2, 3
_PAD, _UNK, _START, _END = PAD_ID, UNK_ID, START_ID, END_ID


@keras.saving.register_keras_serializable(package="rnnapps")
class EmbeddingDropout(keras.layers.Layer):
    """Drops whole words: every occurrence of a dropped word id in the batch
    gets a zero vector (Gal & Ghahramani 2016; AWD-LSTM's `dropoute`).

    Called as `layer(embedded, ids)`; kept words are scaled by `1 / (1 - rate)`.

    >>> import numpy as np
    >>> layer = EmbeddingDropout(vocabulary_size=5, rate=0.5, seed=1)
    >>> ids = np.array([[1, 2, 1, 2]])
    >>> out = np.asarray(layer(np.ones((1, 4, 3)), ids, training=True))
    >>> bool(np.all(out[0, 0] == out[0, 2]))  # the same word, dropped or not everywhere
    True
    """

    def __init__(self, vocabulary_size, rate, seed=None, **kwargs):
        super().__init__(**kwargs)
        if not 0 <= rate < 1:
            raise ValueError(f"rate must be in [0, 1). Received: rate={rate}")
        self.vocabulary_size = int(vocabulary_size)
        self.rate = float(rate)
        self.seed = seed
        self.seed_generator = keras.random.SeedGenerator(seed)
        self.supports_masking = True

    def call(self, embedded, ids, training=False):
        if not training or self.rate == 0:
            return embedded
        keep = keras.random.uniform((self.vocabulary_size,), seed=self.seed_generator) >= self.rate
        scale = ops.cast(keep, embedded.dtype) / (1.0 - self.rate)
        return embedded * ops.expand_dims(ops.take(scale, ops.cast(ids, "int32")), -1)

    def compute_output_shape(self, embedded_shape, ids_shape=None):
        return embedded_shape

    def get_config(self):
        return {
            **super().get_config(), "vocabulary_size": self.vocabulary_size,
            "rate": self.rate, "seed": self.seed,
        }


@keras.saving.register_keras_serializable(package="rnnapps")
class WordLanguageModel(keras.Model):
    """A recurrent language model over words: `(batch, steps)` ids in,
    `(batch, steps, vocabulary)` next-word logits out.

    Args:
        vocabulary: the words after padding and `[UNK]`, starting with
            `<s>` and `</s>` (`rnnapps.tasks.next_word.data.fit_vocabulary`).
        cell: "lstm", "gru" or "irnn".
        layers: stacked recurrent layers.
        embedding_dim: word vector size.
        units: recurrent units per layer.
        tie_embeddings: the output layer is the embedding transposed.
        embedding_dropout, input_dropout, output_dropout: AWD-LSTM's
            dropouts (see the module docstring).
        softmax: how training scores the next word (inference and the
            export always compute the model's whole distribution):
            - "full": a softmax over the whole vocabulary.
            - "sampled": sampled softmax (Jean et al. 2015): the target
              against `samples` words drawn per batch from a log-uniform
              (Zipfian) distribution over the ids, which are in order of
              frequency, with the logQ correction and accidental hits
              removed. It is an estimate of the full softmax's loss, so
              `perplexity` in training is the sampled one; validation,
              `predict` and the export use the full softmax.
            - "adaptive": adaptive softmax (Grave et al. 2017): the most
              frequent words (`cutoffs[0]`) and one entry per cluster of
              rarer words share a softmax; each cluster's own softmax is
              computed in a narrower projection (`embedding_dim / 4`, then
              `/ 16`). A normalised distribution, exact in training and at
              inference, where `call` returns its log-probabilities.
        samples: words sampled per batch for `softmax="sampled"`.
        cutoffs: for `softmax="adaptive"`, the ids at which the head and
            each tail cluster end (the last cluster ends at the vocabulary's
            end).
        seed: seed of the sampled softmax's draws.
        ngram_weight: with an n-gram model attached (`interpolate`), the
            weight of this model's distribution in the mixture the
            `next_word` task's predictions and export serve; 1.0 without.

    Compiled without a `loss`, the model computes its own: the mean
    cross-entropy of every next word but padding (labels are the `targets`
    of `sentence_batches`), and reports it as `perplexity` (per word, as
    keras-hub's `Perplexity` metric). Compiled with a Keras loss, it trains
    on that loss over the whole distribution, whatever `softmax` says (the
    adaptive softmax's logits are its log-probabilities).

    Example:

    >>> import numpy as np
    >>> model = WordLanguageModel(["<s>", "</s>", "a", "cup", "of", "tea"],
    ...                           embedding_dim=4, units=6)
    >>> ids = np.array([[2, 4, 5, 6]])  # <s> a cup of
    >>> tuple(model(ids).shape)  # logits over padding, [UNK], <s>, </s> and the 4 words
    (1, 4, 8)
    """

    def __init__(
        self,
        vocabulary,
        cell="lstm",
        layers=1,
        embedding_dim=128,
        units=256,
        tie_embeddings=True,
        embedding_dropout=0.0,
        input_dropout=0.0,
        output_dropout=0.0,
        softmax="full",
        samples=1024,
        cutoffs=(2000, 6000),
        seed=None,
        ngram_weight=1.0,
        **kwargs,
    ):
        super().__init__(**kwargs)
        if softmax not in SOFTMAXES:
            raise ValueError(f"softmax must be one of {', '.join(SOFTMAXES)}. "
                             f"Received: softmax={softmax!r}")
        if cell not in _CELLS:
            raise ValueError(f"cell must be one of {', '.join(_CELLS)}. Received: cell={cell!r}")
        if layers < 1:
            raise ValueError(f"layers must be at least 1. Received: layers={layers}")
        vocabulary = list(vocabulary)
        if vocabulary[:2] != ["<s>", "</s>"]:
            raise ValueError("the vocabulary must start with '<s>' and '</s>'")
        self.vocabulary = vocabulary
        self.cell_name = cell
        self.num_layers = int(layers)
        self.embedding_dim = int(embedding_dim)
        self.units = int(units)
        self.tie_embeddings = bool(tie_embeddings)
        self.dropout_rates = (float(embedding_dropout), float(input_dropout), float(output_dropout))
        self.vocabulary_size = len(vocabulary) + 2
        self.softmax = softmax
        self.samples = int(samples)
        self.cutoffs = tuple(int(c) for c in cutoffs)
        self.seed = seed
        if softmax == "sampled" and not 0 < self.samples:
            raise ValueError(f"samples must be positive. Received: samples={samples}")
        # Adaptive softmax: clusters [c0, c1), [c1, c2), ... [c_last, V);
        # cutoffs past the vocabulary are dropped (a small vocabulary may
        # have no tail at all: then it is the full softmax).
        bounds = [c for c in self.cutoffs if PREDICTABLE_FROM < c < self.vocabulary_size]
        if softmax == "adaptive" and list(bounds) != sorted(set(bounds)):
            raise ValueError(f"cutoffs must increase. Received: cutoffs={cutoffs}")
        self._clusters = list(zip(bounds, bounds[1:] + [self.vocabulary_size]))
        self.ngram = None  # a KneserNeyLM mixed into predictions (`interpolate`)
        self.ngram_weight = float(ngram_weight)
        self.perplexity_tracker = _TokenPerplexity(name="perplexity")
        self.sample_seed = keras.random.SeedGenerator(seed)

        from keras_hub.layers import ReversibleEmbedding

        self.embedding = ReversibleEmbedding(
            self.vocabulary_size, self.embedding_dim, tie_weights=self.tie_embeddings,
            mask_zero=True, name="embedding",
        )
        self.embedding_dropout = EmbeddingDropout(
            self.vocabulary_size, embedding_dropout, name="embedding_dropout"
        )
        self.input_dropout = keras.layers.SpatialDropout1D(input_dropout, name="input_dropout")
        self.recurrent = [
            _CELLS[cell](self.units, return_sequences=True, return_state=True, name=f"{cell}_{i}")
            for i in range(self.num_layers)
        ]
        self.output_dropouts = [
            keras.layers.SpatialDropout1D(output_dropout, name=f"output_dropout_{i}")
            for i in range(self.num_layers)
        ]
        self.projection = None
        if self.units != self.embedding_dim or not self.tie_embeddings:
            self.projection = keras.layers.Dense(self.embedding_dim, name="projection")

    def _build_adaptive(self):
        """The adaptive softmax's weights: a logit per cluster in the head,
        and each cluster's projections of the hidden state and of its
        words' output vectors (Grave et al. 2017, with tied vectors)."""
        if self.softmax != "adaptive" or not self._clusters:
            return
        d = self.embedding_dim
        self.cluster_logits = self.add_weight(
            shape=(d, len(self._clusters)), initializer="glorot_uniform", name="cluster_logits")
        self.tail_projections = []
        for i, _ in enumerate(self._clusters):
            width = max(d // 4 ** (i + 1), 1)
            self.tail_projections.append((
                self.add_weight(shape=(d, width), initializer="glorot_uniform",
                                name=f"tail_{i}_hidden"),
                self.add_weight(shape=(d, width), initializer="glorot_uniform",
                                name=f"tail_{i}_words"),
            ))

    def build(self, input_shape):
        self.embedding.build(input_shape)
        shape = (*input_shape, self.embedding_dim)
        for layer in self.recurrent:
            layer.build(shape)
            shape = (*input_shape, self.units)
        if self.projection is not None:
            self.projection.build(shape)
        self._build_adaptive()
        self.built = True

    def _run(self, ids, training=False):
        """The recurrent outputs `(batch, steps, units)` and each layer's final states."""
        mask = ops.not_equal(ids, _PAD)
        x = self.embedding(ids)
        x = self.embedding_dropout(x, ids, training=training)
        x = self.input_dropout(x, training=training)
        states = []
        for layer, dropout in zip(self.recurrent, self.output_dropouts):
            x, *layer_states = layer(x, mask=mask, training=training)
            states.append(layer_states)
            x = dropout(x, training=training)
        return x, states

    def _hidden(self, x):
        """The recurrent outputs in the output layer's space (`embedding_dim`)."""
        return x if self.projection is None else self.projection(x)

    def _output_vectors(self):
        """`(vocabulary, embedding_dim)`: each word's output vector."""
        if self.tie_embeddings:
            return self.embedding.embeddings
        return ops.transpose(self.embedding.reverse_embeddings)

    def _logits(self, x):
        """Next-word logits over the whole vocabulary from recurrent outputs
        (for the adaptive softmax, its log-probabilities)."""
        h = self._hidden(x)
        if self.softmax == "adaptive" and self._clusters:
            return self._adaptive_log_probabilities(h)
        return self.embedding(h, reverse=True)

    def _adaptive_log_probabilities(self, h):
        vectors = ops.cast(self._output_vectors(), h.dtype)
        head_end = self._clusters[0][0]
        head = ops.concatenate([
            ops.matmul(h, ops.transpose(vectors[:head_end])),
            ops.matmul(h, ops.cast(self.cluster_logits, h.dtype)),
        ], axis=-1)
        head = ops.log_softmax(ops.cast(head, "float32"), axis=-1)
        parts = [head[..., :head_end]]
        for i, ((start, end), (hidden, words)) in enumerate(
                zip(self._clusters, self.tail_projections)):
            tail = ops.matmul(
                ops.matmul(h, ops.cast(hidden, h.dtype)),
                ops.transpose(ops.matmul(vectors[start:end], ops.cast(words, h.dtype))),
            )
            parts.append(ops.log_softmax(ops.cast(tail, "float32"), axis=-1)
                         + head[..., head_end + i:head_end + i + 1])
        return ops.concatenate(parts, axis=-1)

    def call(self, ids, training=False):
        x, _ = self._run(ids, training=training)
        if training and self.softmax != "full" and self.loss is None:
            # The loss computes only what it needs of the output layer.
            return {"hidden": self._hidden(x)}
        return self._logits(x)

    def _sampled_negative_log_likelihoods(self, h, targets):
        """Per-position sampled-softmax losses `(n,)` of hidden states `(n, d)`."""
        size, count = self.vocabulary_size, self.samples
        log_range = float(np.log(size + 1.0))
        uniform = keras.random.uniform((count,), seed=self.sample_seed)
        candidates = ops.clip(ops.cast(ops.floor(ops.exp(uniform * log_range)), "int32") - 1,
                              0, size - 1)

        def log_expected(ids):  # log(count * Q(id)), Q log-uniform over the ids
            ids = ops.cast(ids, "float32")
            q = (ops.log(ids + 2.0) - ops.log(ids + 1.0)) / log_range
            return ops.log(count * q)

        vectors = self._output_vectors()
        true_logits = ops.sum(
            ops.cast(h, "float32") * ops.cast(ops.take(vectors, targets, axis=0), "float32"),
            axis=-1) - log_expected(targets)
        sampled = ops.cast(ops.matmul(h, ops.transpose(
            ops.cast(ops.take(vectors, candidates, axis=0), h.dtype))), "float32")
        sampled = sampled - log_expected(candidates)[None, :]
        hits = ops.equal(targets[:, None], candidates[None, :])
        sampled = ops.where(hits, -1e9, sampled)
        logits = ops.concatenate([true_logits[:, None], sampled], axis=1)
        return ops.logsumexp(logits, axis=1) - true_logits

    def _adaptive_negative_log_likelihoods(self, h, targets):
        """Per-position adaptive-softmax losses `(n,)` of hidden states `(n, d)`:
        each cluster's softmax is computed, but never concatenated into the
        whole vocabulary's."""
        if not self._clusters:
            logits = ops.cast(self.embedding(h, reverse=True), "float32")
            return ops.logsumexp(logits, axis=-1) - ops.squeeze(
                ops.take_along_axis(logits, targets[:, None], axis=-1), -1)
        vectors = ops.cast(self._output_vectors(), h.dtype)
        head_end = self._clusters[0][0]
        head = ops.cast(ops.concatenate([
            ops.matmul(h, ops.transpose(vectors[:head_end])),
            ops.matmul(h, ops.cast(self.cluster_logits, h.dtype)),
        ], axis=-1), "float32")
        # The head's entry for each target: the word, or its cluster's.
        head_target = targets
        for i, (start, end) in enumerate(self._clusters):
            inside = ops.logical_and(targets >= start, targets < end)
            head_target = ops.where(inside, head_end + i, head_target)
        nll = ops.logsumexp(head, axis=-1) - ops.squeeze(
            ops.take_along_axis(head, head_target[:, None], axis=-1), -1)
        dynamic = keras.backend.backend() == "tensorflow"
        for (start, end), (hidden, words) in zip(self._clusters, self.tail_projections):
            inside = ops.logical_and(targets >= start, targets < end)
            rows, index = h, ops.clip(targets - start, 0, end - start - 1)
            if dynamic:
                # Only the positions whose next word is in this cluster (on
                # TensorFlow, whose graphs take shapes known only when run;
                # `jit` needs static shapes, so JAX scores every position).
                import tensorflow as tf

                positions = tf.where(inside)[:, 0]
                rows, index = tf.gather(h, positions), tf.gather(index, positions)
            tail = ops.cast(ops.matmul(
                ops.matmul(rows, ops.cast(hidden, h.dtype)),
                ops.transpose(ops.matmul(vectors[start:end], ops.cast(words, h.dtype))),
            ), "float32")
            word = ops.logsumexp(tail, axis=-1) - ops.squeeze(
                ops.take_along_axis(tail, index[:, None], axis=-1), -1)
            if dynamic:
                nll = nll + tf.scatter_nd(positions[:, None], word, tf.shape(nll, tf.int64))
            else:
                nll = nll + ops.where(inside, word, 0.0)
        return nll

    def compute_loss(self, x=None, y=None, y_pred=None, sample_weight=None, training=True):
        """The mean next-word cross-entropy over every target but padding
        (with `softmax="sampled"` in training, its sampled estimate); with a
        compiled `loss`, Keras's."""
        if self.loss is not None:  # `call` gave the whole distribution's logits
            return super().compute_loss(x, y, y_pred, sample_weight, training=training)
        targets = ops.reshape(ops.cast(y, "int32"), (-1,))
        valid = ops.cast(ops.not_equal(targets, PAD_ID), "float32")
        if isinstance(y_pred, dict):  # training: sampled or adaptive softmax
            h = y_pred["hidden"]
            h = ops.reshape(h, (-1, ops.shape(h)[-1]))
            if self.softmax == "sampled":
                nll = self._sampled_negative_log_likelihoods(h, targets)
            else:
                nll = self._adaptive_negative_log_likelihoods(h, targets)
        else:
            logits = ops.cast(y_pred, "float32")
            logits = ops.reshape(logits, (-1, ops.shape(logits)[-1]))
            nll = ops.logsumexp(logits, axis=-1) - ops.squeeze(
                ops.take_along_axis(logits, targets[:, None], axis=-1), -1)
        total = ops.sum(nll * valid)
        tokens = ops.sum(valid)
        self.perplexity_tracker.update_state(total, tokens)
        loss = total / ops.maximum(tokens, 1.0)
        for extra in self.losses:
            loss = loss + ops.cast(ops.sum(extra), loss.dtype)
        return loss

    @property
    def metrics(self):
        metrics = super().metrics
        if self.loss is not None:  # Keras's loss and compiled metrics report
            metrics = [m for m in metrics if m is not self.perplexity_tracker]
        return metrics

    def next_word(self, ids):
        """Next-word logits `(batch, vocabulary)` after each row of
        right-padded `ids` (`<s>` first), and the recurrent states there."""
        x, states = self._run(ids)
        lengths = ops.sum(ops.cast(ops.not_equal(ids, _PAD), "int32"), axis=1)
        last = ops.take_along_axis(x, ops.reshape(ops.maximum(lengths - 1, 0), (-1, 1, 1)), axis=1)
        return self._logits(last[:, 0]), states

    def step(self, tokens, states):
        """One step from `(batch,)` token ids: `(logits, states)`."""
        x = ops.take(self.embedding.embeddings, ops.cast(tokens, "int32"), axis=0)
        new_states = []
        for layer, layer_states in zip(self.recurrent, states):
            x, cell_states = layer.cell(x, list(layer_states), training=False)
            new_states.append(list(cell_states) if isinstance(cell_states, (list, tuple))
                              else [cell_states])
        return self._logits(x), new_states

    def greedy_continuation(self, logits, states, length):
        """`(batch, length)` ids of the most likely next words, one at a time
        from `logits` and `states` (`next_word`); padding (0) after `</s>`.
        `[UNK]` and `<s>` are never chosen."""
        banned = ops.convert_to_tensor(
            [1.0 if i in (_PAD, _UNK, _START) else 0.0 for i in range(PREDICTABLE_FROM)]
        )
        penalty = ops.concatenate([banned, ops.zeros((self.vocabulary_size - PREDICTABLE_FROM,))])
        penalty = penalty * -1e9
        done = ops.zeros(ops.shape(logits)[:1], "bool")
        words = []
        for _ in range(length):
            token = ops.cast(ops.argmax(logits + ops.cast(penalty, logits.dtype), axis=-1), "int32")
            token = ops.where(done, ops.zeros_like(token), token)
            done = ops.logical_or(done, ops.equal(token, _END))
            words.append(ops.where(ops.equal(token, _END), ops.zeros_like(token), token))
            logits, states = self.step(ops.maximum(token, _END), states)
        return ops.stack(words, axis=1)

    def interpolate(self, ngram, weight):
        """Attaches a fitted n-gram model (`rnnapps.tasks.next_word.ngram
        .KneserNeyLM` over this vocabulary's ids) whose distribution the
        `next_word` task mixes with this model's, `weight` * this model's +
        (1 - weight) * the n-gram's (`rnnapps.tasks.next_word.interpolation`).
        `None` detaches it. Saved with the model (`.keras` assets)."""
        if ngram is not None and ngram.vocabulary_size != self.vocabulary_size:
            raise ValueError(f"the n-gram model covers {ngram.vocabulary_size} ids, this model "
                             f"{self.vocabulary_size}")
        if not 0 <= weight <= 1:
            raise ValueError(f"weight must be in [0, 1]. Received: weight={weight}")
        self.ngram = ngram
        self.ngram_weight = float(weight) if ngram is not None else 1.0

    def save_assets(self, dir_path):
        if self.ngram is not None:
            import os

            self.ngram.save(os.path.join(dir_path, "ngram.npz"))

    def load_assets(self, dir_path):
        import os

        path = os.path.join(dir_path, "ngram.npz")
        if os.path.exists(path):
            from rnnapps.tasks.next_word.ngram import KneserNeyLM

            self.ngram = KneserNeyLM.load(path)

    def with_words(self, words):
        """A copy of this model whose vocabulary ends with `words` (those it
        lacks, in order), for fine-tuning on text with words of its own
        (ULMFiT): the new words' embeddings (and output weights) start as
        the mean of the others', every other weight is this model's. Old
        words keep their ids and their logits.
        """
        known = set(self.vocabulary)
        new_words = [w for w in dict.fromkeys(words) if w not in known and w]
        config = {**self.get_config(), "vocabulary": self.vocabulary + new_words,
                  "ngram_weight": 1.0}  # the n-gram covers the old vocabulary only
        model = type(self).from_config(config)
        model.build((None, None))
        old = ops.convert_to_numpy(self.embedding.embeddings)
        rows = np.repeat(old[PREDICTABLE_FROM:].mean(0, keepdims=True), len(new_words), 0)
        model.embedding.embeddings.assign(np.concatenate([old, rows]))
        if not self.tie_embeddings:
            old = ops.convert_to_numpy(self.embedding.reverse_embeddings)
            columns = np.repeat(old[:, PREDICTABLE_FROM:].mean(1, keepdims=True), len(new_words), 1)
            model.embedding.reverse_embeddings.assign(np.concatenate([old, columns], 1))
        for target, source in zip(model.recurrent, self.recurrent):
            target.set_weights(source.get_weights())
        if self.projection is not None:
            model.projection.set_weights(self.projection.get_weights())
        return model

    def get_config(self):
        embedding_dropout, input_dropout, output_dropout = self.dropout_rates
        return {
            **super().get_config(),
            "vocabulary": self.vocabulary,
            "cell": self.cell_name,
            "layers": self.num_layers,
            "embedding_dim": self.embedding_dim,
            "units": self.units,
            "tie_embeddings": self.tie_embeddings,
            "embedding_dropout": embedding_dropout,
            "input_dropout": input_dropout,
            "output_dropout": output_dropout,
            "softmax": self.softmax,
            "samples": self.samples,
            "cutoffs": list(self.cutoffs),
            "seed": self.seed,
            "ngram_weight": self.ngram_weight,
        }


class _TokenPerplexity(keras.metrics.Metric):
    """exp of the mean negative log-likelihood per word, from summed losses
    and word counts (what `WordLanguageModel.compute_loss` gives it)."""

    def __init__(self, name="perplexity", **kwargs):
        super().__init__(name=name, **kwargs)
        self.total = self.add_variable(shape=(), initializer="zeros", dtype="float32",
                                       name="total")
        self.count = self.add_variable(shape=(), initializer="zeros", dtype="float32",
                                       name="count")

    def update_state(self, total, count):
        self.total.assign(self.total + ops.cast(total, "float32"))
        self.count.assign(self.count + ops.cast(count, "float32"))

    def result(self):
        return ops.exp(self.total / ops.maximum(self.count, 1.0))

    def reset_state(self):
        self.total.assign(0.0)
        self.count.assign(0.0)


# === Data: sentences as batches of (<s> w1 .. wn, w1 .. wn </s>) ===

# Sentence lengths (with <s>) at which a new bucket of batches starts.
_BOUNDARIES = [8, 12, 16, 24, 32, 48]


def token_ids(sentences, vocabulary, max_length):
    """The word ids of each sentence with at least one word (int32 arrays,
    without `<s>`/`</s>`, cut to `max_length` words), for `sentence_batches`.

    Words are what `keras.layers.TextVectorization` makes of a text by
    default (lower case, punctuation stripped); this runs on any backend.
    """
    import tensorflow as tf

    vectorize = keras.layers.TextVectorization(vocabulary=vocabulary)  # padded with 0
    ids = []
    for start in range(0, len(sentences), 8192):
        batch = vectorize(tf.constant(list(sentences[start:start + 8192])))
        ids.extend(row[row != PAD_ID][:max_length] for row in ops.convert_to_numpy(batch))
    return [np.asarray(row, np.int32) for row in ids if len(row)]


def bucket_lengths(longest):
    """The padded lengths of the batches of sequences of at most `longest`
    steps: the buckets' upper ends less one, the last one `longest`.

    >>> bucket_lengths(20)
    [7, 11, 15, 20]
    """
    return [b - 1 for b in _BOUNDARIES if b < longest] + [longest]


def bucket_batches(pairs, lengths, batch_size, fixed_shapes=None):
    """Batches of `(inputs, targets)` of similar length.

    `pairs` is an unbatched `tf.data.Dataset` of 1-D int32 `(inputs,
    targets)` of the same length; `lengths` (NumPy) those lengths, in any
    order. Sequences share a batch with others of their length bucket
    (`tf.data`'s `bucket_by_sequence_length`), padded with 0.

    With `fixed_shapes` (by default on every backend but TensorFlow), each
    batch is padded to its bucket's length (`bucket_lengths`) and to
    `batch_size` rows, so each bucket has one shape: JAX's `jit` compiles the
    training step once per bucket instead of once per new batch length.
    TensorFlow's `tf.function` traces one graph for any length, so there a
    batch is padded only to its longest sequence (padded steps cost time).
    Padding changes neither the loss nor the metrics: they leave padded
    targets out.
    """
    import tensorflow as tf

    if fixed_shapes is None:
        fixed_shapes = keras.backend.backend() != "tensorflow"
    lengths = np.asarray(lengths)
    boundaries = [length + 1 for length in bucket_lengths(int(lengths.max()))]
    if not fixed_shapes:
        boundaries = list(_BOUNDARIES)
    dataset = pairs.bucket_by_sequence_length(
        lambda x, y: tf.shape(x)[0], boundaries, [batch_size] * (len(boundaries) + 1),
        pad_to_bucket_boundary=fixed_shapes,
    )

    def fill(x, y):
        rows = [[0, batch_size - tf.shape(x)[0]], [0, 0]]
        return tf.pad(x, rows), tf.pad(y, rows)

    if fixed_shapes:
        dataset = dataset.map(fill, num_parallel_calls=tf.data.AUTOTUNE)
    # Known steps per epoch, so that the progress bar shows an ETA from the
    # first epoch on: each length bucket ends with one partial batch.
    counts = np.bincount(np.searchsorted(boundaries, lengths, side="right"))
    steps = int(sum(-(-count // batch_size) for count in counts))
    return dataset.apply(tf.data.experimental.assert_cardinality(steps))


def _pair(words):
    import tensorflow as tf

    start, end = tf.constant([START_ID]), tf.constant([END_ID])
    return tf.concat([start, words], 0), tf.concat([words, end], 0)


def sentence_batches(ids, batch_size, shuffle_seed=None, fixed_shapes=None):
    """Batches of `(<s> w1 .. wn, w1 .. wn </s>)` int32 pairs, padded with 0.

    Sentences of similar length share a batch (`bucket_batches`; with
    `fixed_shapes`, the JAX default, in one shape per length bucket); the
    training set (seeded) reshuffles every epoch.
    """
    import tensorflow as tf

    if not ids:
        raise ValueError("no sentence with a word in it")
    lengths = np.array([len(row) for row in ids])
    ragged = tf.RaggedTensor.from_row_lengths(np.concatenate(ids).astype(np.int32), lengths)
    dataset = tf.data.Dataset.from_tensor_slices(ragged)
    if shuffle_seed is not None:
        dataset = dataset.shuffle(len(ids), seed=shuffle_seed, reshuffle_each_iteration=True)
    pairs = dataset.map(_pair, num_parallel_calls=tf.data.AUTOTUNE)
    return bucket_batches(pairs, lengths + 1, batch_size, fixed_shapes).prefetch(
        tf.data.AUTOTUNE)


def log_probabilities_of(model, inputs):
    """`(batch, steps, vocabulary)` float64 NumPy log-probabilities of the next
    word at every step of `inputs` (inference mode; the model's compiled
    predict step, on any backend)."""
    logits = np.asarray(model.predict_on_batch(np.asarray(inputs)), np.float64)
    logits -= logits.max(-1, keepdims=True)
    return logits - np.log(np.exp(logits).sum(-1, keepdims=True))


def perplexity(model, batches):
    """Per-word perplexity of `model` on `(inputs, targets)` batches: exp of
    the mean negative log-likelihood of every target but padding."""
    total, count = 0.0, 0
    for inputs, targets in batches:
        log_probabilities = log_probabilities_of(model, inputs)
        targets = np.asarray(targets)
        picked = np.take_along_axis(log_probabilities, targets[..., None], -1)[..., 0]
        valid = targets != PAD_ID
        total += float(picked[valid].sum())
        count += int(valid.sum())
    return float(np.exp(-total / max(count, 1)))


# === Pretrained models, trained once into the cache ===


def cache_dir():
    """Where pretrained language models are kept: `~/.cache/rnnapps/language_models`
    (or `$RNNAPPS_CACHE/language_models`)."""
    import os
    import pathlib

    root = os.environ.get("RNNAPPS_CACHE") or pathlib.Path.home() / ".cache" / "rnnapps"
    return pathlib.Path(root) / "language_models"


def load(path):
    """A `WordLanguageModel` saved as `.keras` (e.g. a `next_word` checkpoint,
    compiled with rnnapps's optimizers)."""
    import rnnapps.layers  # noqa: F401  (registers the layers and
    import rnnapps.optimizers  # noqa: F401   optimizers a checkpoint may use)

    return keras.saving.load_model(path)


def pretrained(preset="wordnet", log=print):
    """The `next_word` task's language model for `preset` (e.g. "wordnet"),
    trained once with the preset's settings and kept in `cache_dir()`.

    The first call trains it (`rnnapps train next_word --preset PRESET`,
    with a progress bar; about 11-25 minutes on 2 CPU cores for "wordnet");
    later calls load the cached `PRESET-<run id>.keras`. A new version of
    the preset's settings gets a new file.

    Returns:
        A `WordLanguageModel`.
    """
    import dataclasses
    import os
    import shutil

    from rnnapps import task as task_module
    from rnnapps.tasks import get_task

    next_word = get_task("next_word")
    if preset not in next_word.presets:
        raise ValueError(
            f"no language model preset {preset!r}; choose one of {', '.join(next_word.presets)} "
            "or give the path of a next_word checkpoint"
        )
    config = next_word.presets[preset]
    path = cache_dir() / f"{preset}-{task_module.run_id(next_word, config)}.keras"
    if not path.is_file():
        log(f"Training the {preset} language model once (11-25 minutes on 2 CPU cores); "
            f"later runs reuse {path}")
        # A fixed working folder: an interrupted run resumes from its last
        # completed epoch (BackupAndRestore) when called again.
        work = path.with_name(f".{path.stem}-training")
        config = dataclasses.replace(config, export_dir=str(work))
        from rnnapps.backends import choose_precision

        result = task_module.train(next_word, config, log=log, mixed_precision=choose_precision(
            "next_word", "auto", keras.backend.backend()))
        staged = path.with_name(f".{path.name}.{os.getpid()}")
        shutil.copyfile(result["checkpoint"], staged)
        os.replace(staged, path)  # atomic: never a half-written model in the cache
        shutil.rmtree(work, ignore_errors=True)
    return load(path)
