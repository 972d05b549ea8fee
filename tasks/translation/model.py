"""The translation model: an encoder-decoder RNN (Sutskever et al. 2014).

    source ids -> Embedding -> [ReverseSequence] -> encoder RNN x layers
                                                        | final states (and outputs)
    <s> target ids -> Embedding -> decoder RNN x layers (initial state = encoder's)
                   -> [Luong or Bahdanau attention over the encoder outputs]
                   -> Dense(vocabulary) logits
                   -> [copy: mixed with the attention over the source tokens]

Trained with teacher forcing (`model.fit` on `{"source", "target_in"}` ->
`target_out`); translated with `Seq2Seq.translate`, which runs the encoder
once and `rnnapps`'s beam search over single decoder steps, all in
`keras.ops`. Reversal reverses only the valid source tokens
(`ReverseSequence` is mask-aware), so the padding stays at the end.

With `copy=True` (which needs attention and one vocabulary for both sides)
the model is a pointer-generator (See, Liu & Manning 2017): at each step a
gate `p_gen = sigmoid(w [h; context; embedded input])` mixes the softmax
over the vocabulary with the attention weights over the source tokens,
`P(y) = p_gen P_vocab(y) + (1 - p_gen) sum_{i: x_i = y} a_i`, so a token of
the source (a name, a number, or a dictionary's translation fed with the
source) can be written out without having been learned as an output. The
model then returns log-probabilities in place of logits (a softmax of them
gives the same distribution, so losses `from_logits=True` and the beam
search take them as they are).

The model takes ids only (`keras.ops` and Keras layers: it trains on any
backend). It may carry the task's `TranslationPreprocessor` (the
SentencePiece model of both languages and the dictionary gloss, TensorFlow
ops for `tf.data` and the export's graph) without calling it, so that a
`.keras` checkpoint is complete: the export, built on TensorFlow, rebuilds
the preprocessor from it whichever backend trained the weights. (A joint
vocabulary is also what works in a SavedModel: two TensorFlow Text
SentencePiece ops in one graph share one resource name when loaded, and
the second model silently uses the first's pieces.)
"""

import keras
from keras import ops

from rnnapps.decoding import beam_search
from rnnapps.layers import IRNN
from rnnapps.layers import ReverseSequence
from rnnapps.text import END_ID
from rnnapps.text import PAD_ID
from rnnapps.text import START_ID
from rnnapps.text import UNK_ID

__all__ = ["Seq2Seq", "SmoothedCrossentropy", "PAD_ID", "UNK_ID", "START_ID", "END_ID"]


_CELLS = {"lstm": keras.layers.LSTM, "gru": keras.layers.GRU, "irnn": IRNN}
_ATTENTION = {
    "luong": keras.layers.Attention,  # dot-product scores
    "bahdanau": keras.layers.AdditiveAttention,
}


@keras.saving.register_keras_serializable(package="rnnapps.translation")
class Seq2Seq(keras.Model):
    """Encoder-decoder RNN with optional attention and reversed source.

    Args:
        source_vocabulary_size, target_vocabulary_size: token ids are below
            these; 0 is padding.
        embedding_dim: size of both embeddings.
        units: recurrent units per layer (encoder and decoder alike).
        layers: stacked recurrent layers in the encoder and in the decoder.
        cell: `"lstm"`, `"gru"` or `"irnn"`.
        attention: `None`, `"luong"` or `"bahdanau"`.
        reverse: feed the source tokens backwards (padding stays at the end).
        dropout: dropout on the embeddings and between layers.
        copy: a pointer-generator: mix the output distribution with the
            attention over the source tokens (needs `attention` and equal
            vocabulary sizes).
        preprocessor: optional `TranslationPreprocessor` kept with the
            model (never called by it), so that a saved `.keras` file holds
            everything a translation needs; the model itself takes ids.
        tie_embeddings: one embedding matrix for source, target and output
            (Press & Wolf 2017; needs equal vocabulary sizes): the output
            logits are the decoder's state, projected to `embedding_dim`
            where `units` differs, times the embeddings, plus a bias.

    Call arguments:
        inputs: dict with `source` `(batch, source_steps)` and `target_in`
            `(batch, target_steps)` int32 ids (0 = padding); `target_in`
            starts with `START_ID`.

    Returns:
        Logits `(batch, target_steps, target_vocabulary_size)`; with `copy`,
        log-probabilities.

    Example:

    >>> import numpy as np
    >>> model = Seq2Seq(20, 30, embedding_dim=8, units=16)
    >>> logits = model({"source": np.array([[5, 6, 3, 0]]),
    ...                 "target_in": np.array([[2, 7, 8]])})
    >>> tuple(logits.shape)
    (1, 3, 30)
    >>> tokens, scores = model.translate(np.array([[5, 6, 3, 0]]), beam_size=2, max_length=5)
    >>> tuple(tokens.shape), tuple(scores.shape)
    ((1, 5), (1,))
    """

    def __init__(
        self,
        source_vocabulary_size,
        target_vocabulary_size,
        embedding_dim=128,
        units=256,
        layers=1,
        cell="lstm",
        attention=None,
        reverse=True,
        dropout=0.0,
        copy=False,
        tie_embeddings=False,
        preprocessor=None,
        **kwargs,
    ):
        super().__init__(**kwargs)
        if cell not in _CELLS:
            raise ValueError(
                f"cell must be one of {', '.join(_CELLS)}. Received: cell={cell!r}"
            )
        if attention not in (None, *_ATTENTION):
            raise ValueError(
                "attention must be None, 'luong' or 'bahdanau'. "
                f"Received: attention={attention!r}"
            )
        if copy and not attention:
            raise ValueError(
                "copy needs attention (it copies where the decoder attends). "
                f"Received: copy={copy!r}, attention={attention!r}"
            )
        if copy and source_vocabulary_size != target_vocabulary_size:
            raise ValueError(
                "copy needs one vocabulary for source and target. Received: "
                f"source_vocabulary_size={source_vocabulary_size}, "
                f"target_vocabulary_size={target_vocabulary_size}"
            )
        if tie_embeddings and source_vocabulary_size != target_vocabulary_size:
            raise ValueError(
                "tie_embeddings needs one vocabulary for source and target. Received: "
                f"source_vocabulary_size={source_vocabulary_size}, "
                f"target_vocabulary_size={target_vocabulary_size}"
            )
        for name, value in (("units", units), ("layers", layers), ("embedding_dim", embedding_dim)):
            if not isinstance(value, int) or value < 1:
                raise ValueError(f"{name} must be a positive integer. Received: {name}={value!r}")
        self.source_vocabulary_size = source_vocabulary_size
        self.target_vocabulary_size = target_vocabulary_size
        self.embedding_dim = embedding_dim
        self.units = units
        self.num_layers = layers
        self.cell = cell
        self.attention = attention
        self.reverse = reverse
        self.dropout = dropout
        self.copy = bool(copy)
        self.preprocessor = preprocessor
        self.tie_embeddings = bool(tie_embeddings)

        # === Layers ===
        self.source_embedding = keras.layers.Embedding(
            source_vocabulary_size, embedding_dim, name="source_embedding"
        )
        if not self.tie_embeddings:
            self.target_embedding = keras.layers.Embedding(
                target_vocabulary_size, embedding_dim, name="target_embedding"
            )
        self.reverse_source = ReverseSequence(name="reverse_source")
        rnn = _CELLS[cell]
        self.encoder_layers = [
            rnn(units, return_sequences=True, return_state=True, name=f"encoder_{i}")
            for i in range(layers)
        ]
        self.decoder_layers = [
            rnn(units, return_sequences=True, return_state=True, name=f"decoder_{i}")
            for i in range(layers)
        ]
        self.embedding_dropout = keras.layers.Dropout(dropout, name="embedding_dropout")
        self.layer_dropout = keras.layers.Dropout(dropout, name="layer_dropout")
        if attention:
            self.attention_layer = _ATTENTION[attention](name=f"{attention}_attention")
            # Luong et al.'s attentional hidden state tanh(W [context; h]).
            self.attention_combine = keras.layers.Dense(
                units, activation="tanh", name="attention_combine"
            )
        if self.tie_embeddings:
            # logits = down(y) E^T + b, E the one embedding matrix.
            self.output_down = (
                keras.layers.Dense(embedding_dim, use_bias=False, name="output_down")
                if units != embedding_dim else None
            )
        else:
            self.output_projection = keras.layers.Dense(
                target_vocabulary_size, name="output_projection"
            )
        if self.copy:
            self.copy_gate = keras.layers.Dense(1, activation="sigmoid", name="copy_gate")

    def build(self, input_shape=None):
        """Creates every weight (the model's shapes depend only on its settings)."""
        self.source_embedding.build((None, None))
        if self.tie_embeddings:
            if self.output_down is not None:
                self.output_down.build((None, None, self.units))
            self.output_bias = self.add_weight(
                shape=(self.target_vocabulary_size,), initializer="zeros", name="output_bias"
            )
        else:
            self.target_embedding.build((None, None))
        for i, (encoder, decoder) in enumerate(zip(self.encoder_layers, self.decoder_layers)):
            width = self.units if i else self.embedding_dim
            encoder.build((None, None, width))
            decoder.build((None, None, width))
        if self.attention:
            self.attention_layer.build([(None, None, self.units), (None, None, self.units)])
            self.attention_combine.build((None, None, 2 * self.units))
        if not self.tie_embeddings:
            self.output_projection.build((None, None, self.units))
        if self.copy:
            self.copy_gate.build((None, None, 2 * self.units + self.embedding_dim))
        self.built = True

    # === Pieces shared by training and decoding ===

    def encode(self, source, training=False):
        """`(states per layer, encoder outputs, source mask)` for `source` ids."""
        mask = ops.not_equal(source, PAD_ID)
        x = self.embedding_dropout(self.source_embedding(source), training=training)
        if self.reverse:
            x = self.reverse_source(x, mask=mask)
        states = []
        for i, layer in enumerate(self.encoder_layers):
            if i:
                x = self.layer_dropout(x, training=training)
            x, *layer_states = layer(x, mask=mask, training=training)
            states.append(layer_states)
        return states, x, mask

    def _encoder_order(self, source):
        """`source` ids in the order the encoder read them (what attention points at)."""
        if not self.reverse:
            return source
        return self.reverse_source(source, mask=ops.not_equal(source, PAD_ID))

    def _decode(self, target_in, states, encoder_outputs, source_mask, training=False,
                source=None):
        mask = ops.not_equal(target_in, PAD_ID)
        target_embedding = self.source_embedding if self.tie_embeddings else self.target_embedding
        embedded = self.embedding_dropout(target_embedding(target_in), training=training)
        y = embedded
        new_states = []
        for i, layer in enumerate(self.decoder_layers):
            if i:
                y = self.layer_dropout(y, training=training)
            y, *layer_states = layer(
                y, initial_state=states[i], mask=mask, training=training
            )
            new_states.append(layer_states)
        if self.attention:
            context, weights = self.attention_layer(
                [y, encoder_outputs], mask=[mask, source_mask], return_attention_scores=True
            )
            hidden = y
            y = self.attention_combine(ops.concatenate([y, context], axis=-1))
        y = self.layer_dropout(y, training=training)
        logits = self._logits(y)
        if not self.copy:
            return logits, new_states
        gate = self.copy_gate(ops.concatenate([hidden, context, embedded], axis=-1))
        generated = ops.softmax(ops.cast(logits, "float32"), axis=-1)
        copied = self._copy_distribution(ops.cast(weights, "float32"), source)
        gate = ops.cast(gate, "float32")
        mixed = gate * generated + (1.0 - gate) * copied
        return ops.log(ops.maximum(mixed, 1e-9)), new_states

    def _logits(self, y):
        if not self.tie_embeddings:
            return self.output_projection(y)
        if self.output_down is not None:
            y = self.output_down(y)
        embeddings = ops.cast(self.source_embedding.embeddings, y.dtype)
        return ops.matmul(y, ops.transpose(embeddings)) + ops.cast(self.output_bias, y.dtype)

    def _copy_distribution(self, weights, source):
        """`(batch, steps, vocabulary)`: each step's attention weights summed
        per source token id (`source` in the encoder's order)."""
        shape = ops.shape(weights)
        batch, steps, source_steps = shape[0], shape[1], shape[2]
        ids = ops.broadcast_to(ops.expand_dims(ops.cast(source, "int32"), 1), shape)
        rows = ops.broadcast_to(
            ops.reshape(ops.arange(batch * steps, dtype="int32"), (batch, steps, 1)), shape
        )
        indices = ops.reshape(ops.stack([rows, ids], axis=-1), (-1, 2))
        copied = ops.scatter(
            indices, ops.reshape(weights, (-1,)), (batch * steps, self.target_vocabulary_size)
        )
        return ops.reshape(copied, (batch, steps, self.target_vocabulary_size))

    def call(self, inputs, training=False):
        states, encoder_outputs, source_mask = self.encode(inputs["source"], training)
        logits, _ = self._decode(
            inputs["target_in"], states, encoder_outputs, source_mask, training,
            source=self._encoder_order(inputs["source"]) if self.copy else None,
        )
        return logits

    def translate(self, source, beam_size=4, max_length=50, length_penalty=0.6):
        """Target token ids for `source` ids by beam search (1 = greedy).

        Returns `(tokens, scores)` as `beam_search` does: `(batch,
        max_length)` ids ending with `END_ID` (0 after it) and the
        length-normalised log-probability of each.
        """
        if not self.built:  # not inside the decoding loop's trace
            self.build()
        states, encoder_outputs, source_mask = self.encode(source)
        sizes = [len(s) for s in states]
        flat = [s for layer_states in states for s in layer_states]
        extra = [encoder_outputs, ops.cast(source_mask, "int32")] if self.attention else []
        if self.copy:
            extra.append(ops.cast(self._encoder_order(source), "int32"))

        def step(tokens, carried):
            layer_states, offset = [], 0
            for size in sizes:
                layer_states.append(carried[offset:offset + size])
                offset += size
            outputs = carried[offset] if self.attention else None
            mask = ops.cast(carried[offset + 1], "bool") if self.attention else None
            copy_source = carried[offset + 2] if self.copy else None
            logits, new_states = self._decode(
                ops.expand_dims(tokens, 1), layer_states, outputs, mask, source=copy_source
            )
            new_flat = [s for layer_states in new_states for s in layer_states]
            return logits[:, 0, :], new_flat + carried[len(new_flat):]

        return beam_search(
            step,
            flat + extra,
            ops.shape(source)[0],
            beam_size=beam_size,
            max_length=max_length,
            start_id=START_ID,
            end_id=END_ID,
            length_penalty=length_penalty,
        )

    def get_config(self):
        config = super().get_config()
        config.update(
            source_vocabulary_size=self.source_vocabulary_size,
            target_vocabulary_size=self.target_vocabulary_size,
            embedding_dim=self.embedding_dim,
            units=self.units,
            layers=self.num_layers,
            cell=self.cell,
            attention=self.attention,
            reverse=self.reverse,
            dropout=self.dropout,
            copy=self.copy,
            tie_embeddings=self.tie_embeddings,
            preprocessor=keras.saving.serialize_keras_object(self.preprocessor),
        )
        return config

    @classmethod
    def from_config(cls, config):
        config = dict(config)
        if config.get("preprocessor") is not None:
            # Registers TranslationPreprocessor and DictionaryGloss (their
            # TensorFlow import waits until they run).
            from rnnapps.tasks.translation import gloss  # noqa: F401
            from rnnapps.tasks.translation import preprocessor  # noqa: F401

            config["preprocessor"] = keras.saving.deserialize_keras_object(config["preprocessor"])
        return cls(**config)


@keras.saving.register_keras_serializable(package="rnnapps.translation")
class SmoothedCrossentropy(keras.losses.Loss):
    """Token cross-entropy with label smoothing, padding ignored.

    The target distribution puts `1 - label_smoothing` on the reference
    token and spreads `label_smoothing` evenly over the vocabulary (Szegedy
    et al. 2016; Vaswani et al. 2017 use 0.1). Tokens equal to
    `ignore_class` count for nothing, and the loss is the mean over the
    others, as `SparseCategoricalCrossentropy(ignore_class=...)` takes it
    (with `label_smoothing=0` the two agree). `y_pred` are logits (or
    log-probabilities: a log-softmax leaves them as they are).

    >>> import numpy as np
    >>> loss = SmoothedCrossentropy(label_smoothing=0.0)
    >>> logits = np.log(np.array([[[0.5, 0.25, 0.25], [0.1, 0.8, 0.1]]], "float32"))
    >>> round(float(loss(np.array([[1, 0]]), logits)), 4)  # -log 0.25; padding ignored
    1.3863
    """

    def __init__(self, label_smoothing=0.1, ignore_class=PAD_ID,
                 name="smoothed_crossentropy", **kwargs):
        super().__init__(name=name, **kwargs)
        if not 0.0 <= label_smoothing < 1.0:
            raise ValueError(
                f"label_smoothing must be in [0, 1). Received: label_smoothing={label_smoothing}"
            )
        self.label_smoothing = float(label_smoothing)
        self.ignore_class = ignore_class

    def call(self, y_true, y_pred):
        y_true = ops.cast(y_true, "int32")
        log_probs = ops.log_softmax(ops.cast(y_pred, "float32"), axis=-1)
        picked = ops.take_along_axis(log_probs, ops.expand_dims(y_true, -1), axis=-1)
        loss = -(1.0 - self.label_smoothing) * ops.squeeze(picked, -1)
        loss = loss - self.label_smoothing * ops.mean(log_probs, axis=-1)
        # Mean over the tokens that count: weight them total / valid, as
        # Keras does with a mask under "sum_over_batch_size".
        valid = ops.cast(ops.not_equal(y_true, self.ignore_class), "float32")
        total = ops.cast(ops.size(valid), "float32")
        return loss * valid * ops.divide_no_nan(total, ops.sum(valid))

    def get_config(self):
        config = super().get_config()
        config.update(label_smoothing=self.label_smoothing, ignore_class=self.ignore_class)
        return config
