"""The translation model: an encoder-decoder RNN (Sutskever et al. 2014).

    source ids -> Embedding -> [ReverseSequence] -> encoder RNN x layers
                                                        | final states (and outputs)
    <s> target ids -> Embedding -> decoder RNN x layers (initial state = encoder's)
                   -> [Luong or Bahdanau attention over the encoder outputs]
                   -> Dense(vocabulary) logits

Trained with teacher forcing (`model.fit` on `{"source", "target_in"}` ->
`target_out`); translated with `Seq2Seq.translate`, which runs the encoder
once and `rnnapps`'s beam search over single decoder steps, all in
`keras.ops`. Reversal reverses only the valid source tokens
(`ReverseSequence` is mask-aware), so the padding stays at the end.

The SentencePiece tokenizer (keras-hub, one joint vocabulary for both
languages) is fitted on the training split; the model keeps it (so a
`.keras` checkpoint is complete) and the task puts it into the export's
graph. (A joint vocabulary is also what works in a SavedModel: two
TensorFlow Text SentencePiece ops in one graph share one resource name
when loaded, and the second model silently uses the first's pieces.)
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

__all__ = ["Seq2Seq", "PAD_ID", "UNK_ID", "START_ID", "END_ID"]


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
        tokenizer: optional tokenizer of both languages (keras-hub's
            `SentencePieceTokenizer` with a joint vocabulary) kept with the
            model, so that a saved `.keras` file holds everything a
            translation needs; the model itself takes ids.

    Call arguments:
        inputs: dict with `source` `(batch, source_steps)` and `target_in`
            `(batch, target_steps)` int32 ids (0 = padding); `target_in`
            starts with `START_ID`.

    Returns:
        Logits `(batch, target_steps, target_vocabulary_size)`.

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
        tokenizer=None,
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
        self.tokenizer = tokenizer

        # === Layers ===
        self.source_embedding = keras.layers.Embedding(
            source_vocabulary_size, embedding_dim, name="source_embedding"
        )
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
        self.output_projection = keras.layers.Dense(
            target_vocabulary_size, name="output_projection"
        )

    def build(self, input_shape=None):
        """Creates every weight (the model's shapes depend only on its settings)."""
        self.source_embedding.build((None, None))
        self.target_embedding.build((None, None))
        for i, (encoder, decoder) in enumerate(zip(self.encoder_layers, self.decoder_layers)):
            width = self.units if i else self.embedding_dim
            encoder.build((None, None, width))
            decoder.build((None, None, width))
        if self.attention:
            self.attention_layer.build([(None, None, self.units), (None, None, self.units)])
            self.attention_combine.build((None, None, 2 * self.units))
        self.output_projection.build((None, None, self.units))
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

    def _decode(self, target_in, states, encoder_outputs, source_mask, training=False):
        mask = ops.not_equal(target_in, PAD_ID)
        y = self.embedding_dropout(self.target_embedding(target_in), training=training)
        new_states = []
        for i, layer in enumerate(self.decoder_layers):
            if i:
                y = self.layer_dropout(y, training=training)
            y, *layer_states = layer(
                y, initial_state=states[i], mask=mask, training=training
            )
            new_states.append(layer_states)
        if self.attention:
            context = self.attention_layer(
                [y, encoder_outputs], mask=[mask, source_mask]
            )
            y = self.attention_combine(ops.concatenate([y, context], axis=-1))
        y = self.layer_dropout(y, training=training)
        return self.output_projection(y), new_states

    def call(self, inputs, training=False):
        states, encoder_outputs, source_mask = self.encode(inputs["source"], training)
        logits, _ = self._decode(
            inputs["target_in"], states, encoder_outputs, source_mask, training
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

        def step(tokens, carried):
            layer_states, offset = [], 0
            for size in sizes:
                layer_states.append(carried[offset:offset + size])
                offset += size
            outputs = carried[offset] if self.attention else None
            mask = ops.cast(carried[offset + 1], "bool") if self.attention else None
            logits, new_states = self._decode(
                ops.expand_dims(tokens, 1), layer_states, outputs, mask
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
            tokenizer=keras.saving.serialize_keras_object(self.tokenizer),
        )
        return config

    @classmethod
    def from_config(cls, config):
        config = dict(config)
        if config.get("tokenizer") is not None:
            config["tokenizer"] = keras.saving.deserialize_keras_object(config["tokenizer"])
        return cls(**config)
