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

The model holds its vocabulary (a `TextVectorization` layer), so a
checkpoint is complete: `tokenize` turns strings into ids, `next_word`
gives the distribution of the next word after each text and the recurrent
states there, and `greedy_continuation` extends them word by word.
"""

import keras
from keras import ops

from rnnapps.layers import IRNN

__all__ = ["EmbeddingDropout", "WordLanguageModel", "PAD_ID", "UNK_ID", "START_ID", "END_ID", "PREDICTABLE_FROM"]

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
        **kwargs,
    ):
        super().__init__(**kwargs)
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

        # Ragged ids where the backend allows it (TensorFlow: the export).
        self.vectorize = keras.layers.TextVectorization(
            vocabulary=vocabulary, ragged=keras.backend.backend() == "tensorflow",
            name="vectorize",
        )
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

    def build(self, input_shape):
        self.embedding.build(input_shape)
        shape = (*input_shape, self.embedding_dim)
        for layer in self.recurrent:
            layer.build(shape)
            shape = (*input_shape, self.units)
        if self.projection is not None:
            self.projection.build(shape)
        self.built = True

    def tokenize(self, texts):
        """`(batch, None)` int32 word ids of strings (no `<s>`): a
        `tf.RaggedTensor` on the TensorFlow backend, padded with 0 elsewhere."""
        import tensorflow as tf

        return tf.cast(self.vectorize(texts), tf.int32)

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

    def _logits(self, h):
        if self.projection is not None:
            h = self.projection(h)
        return self.embedding(h, reverse=True)

    def call(self, ids, training=False):
        x, _ = self._run(ids, training=training)
        return self._logits(x)

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
        }
