"""The captioning model: an image encoder and a recurrent decoder (Show and Tell).

    image (float32 [0, 255]) -> encoder (small CNN, or a keras.applications
        backbone) -> image embedding f (the encoder's pooled features)
    f -> Dense -> the decoder's initial state (h0, and c0 for an LSTM)
    <s> caption ids -> Embedding -> decoder RNN -> Dense(vocabulary) logits

Vinyals et al. (2015) feed the image once, as the decoder's first input; here
it sets the decoder's initial state instead. The information and the
single presentation are the same (Show and Tell found that presenting the
image at every step overfits), and with the image in the state every step
of the decoder is a word step: the same step function drives training,
greedy decoding and beam search from the first token, with no special
image step to carry through the beams.

Trained with teacher forcing (`model.fit` on `{"image", "caption_in"}` ->
`caption_out`); captions come from `ShowAndTell.generate` (beam search from
`rnnapps.decoding`; beam 1 is greedy), all in `keras.ops`. The model keeps
its SentencePiece tokenizer (so a `.keras` file is complete); the task puts
it into the export's graph.
"""

import keras
from keras import ops

from rnnapps.decoding import beam_search
from rnnapps.layers import IRNN
from rnnapps.text import END_ID
from rnnapps.text import PAD_ID
from rnnapps.text import START_ID
from rnnapps.text import UNK_ID

__all__ = ["ShowAndTell", "BACKBONES", "small_cnn"]

_CELLS = {"lstm": keras.layers.LSTM, "gru": keras.layers.GRU, "irnn": IRNN}

# keras.applications backbones: (constructor, module with preprocess_input).
BACKBONES = {
    "mobilenet_v2": ("MobileNetV2", "mobilenet_v2"),
    "resnet50": ("ResNet50", "resnet"),
    "efficientnet_b0": ("EfficientNetB0", "efficientnet"),
    "densenet121": ("DenseNet121", "densenet"),
}


def small_cnn(filters=(32, 64, 128, 256), name="small_cnn"):
    """The default encoder, trained from scratch: per entry of `filters` a
    3x3 convolution, batch normalisation, ReLU and 2x2 max pooling; then
    global average pooling. Takes images scaled to [-1, 1]."""
    layers = []
    for i, width in enumerate(filters):
        layers += [
            keras.layers.Conv2D(width, 3, padding="same", use_bias=False, name=f"conv_{i}"),
            keras.layers.BatchNormalization(name=f"norm_{i}"),
            keras.layers.ReLU(name=f"relu_{i}"),
            keras.layers.MaxPooling2D(2, name=f"pool_{i}"),
        ]
    layers.append(keras.layers.GlobalAveragePooling2D(name="pool"))
    return keras.Sequential(layers, name=name)


@keras.saving.register_keras_serializable(package="rnnapps.captioning")
class ShowAndTell(keras.Model):
    """Image encoder + recurrent caption decoder (Vinyals et al. 2015).

    Args:
        vocabulary_size: token ids are below this; 0 is padding.
        image_size: images are `(image_size, image_size, 3)` floats in [0, 255].
        backbone: `None` for the small CNN trained from scratch, or the name
            of a `keras.applications` network (`BACKBONES`).
        backbone_weights: path of a weights file for the backbone (e.g. the
            `..._notop.h5` files keras.applications downloads); `None`
            starts from random weights. Only used when the model is built
            fresh: a saved model keeps its own weights.
        fine_tune: train the backbone's weights too (default: frozen, its
            batch normalisation in inference mode).
        filters: the small CNN's convolution widths.
        embedding_dim: word embedding size.
        units: recurrent units of the decoder.
        cell: `"lstm"`, `"gru"` or `"irnn"`.
        dropout: on the image embedding, the word embeddings and the
            decoder outputs.
        augment: while training, shift and zoom each image at random by up
            to this fraction of its size (0 = off).
        tokenizer: optional tokenizer kept with the model (keras-hub's
            `SentencePieceTokenizer`); the model itself takes ids.

    Call arguments:
        inputs: dict with `image` `(batch, size, size, 3)` and `caption_in`
            `(batch, steps)` int32 ids starting with `START_ID` (0 = padding).

    Returns:
        Logits `(batch, steps, vocabulary_size)`.

    Example:

    >>> import numpy as np
    >>> model = ShowAndTell(30, image_size=32, filters=(8, 16), units=16, embedding_dim=8)
    >>> images = np.random.default_rng(0).uniform(0, 255, (2, 32, 32, 3))
    >>> logits = model({"image": images, "caption_in": np.array([[2, 7, 8], [2, 9, 0]])})
    >>> tuple(logits.shape)
    (2, 3, 30)
    >>> tokens, scores = model.generate(images, beam_size=2, max_length=5)
    >>> tuple(tokens.shape), tuple(scores.shape)
    ((2, 5), (2,))
    """

    def __init__(
        self,
        vocabulary_size,
        image_size=64,
        backbone=None,
        backbone_weights=None,
        fine_tune=False,
        filters=(32, 64, 128, 256),
        embedding_dim=128,
        units=256,
        cell="lstm",
        dropout=0.0,
        augment=0.0,
        tokenizer=None,
        **kwargs,
    ):
        super().__init__(**kwargs)
        if cell not in _CELLS:
            raise ValueError(f"cell must be one of {', '.join(_CELLS)}. Received: cell={cell!r}")
        if backbone not in (None, *BACKBONES):
            raise ValueError(
                f"backbone must be None or one of {', '.join(BACKBONES)}. "
                f"Received: backbone={backbone!r}"
            )
        for name, value in (("units", units), ("embedding_dim", embedding_dim),
                            ("image_size", image_size), ("vocabulary_size", vocabulary_size)):
            if not isinstance(value, int) or value < 1:
                raise ValueError(f"{name} must be a positive integer. Received: {name}={value!r}")
        if backbone and image_size < 32:
            raise ValueError(
                f"a keras.applications backbone needs images of at least 32x32. "
                f"Received: image_size={image_size}"
            )
        self.vocabulary_size = vocabulary_size
        self.image_size = image_size
        self.backbone = backbone
        self.fine_tune = bool(fine_tune)
        self.filters = tuple(int(f) for f in filters)
        self.embedding_dim = embedding_dim
        self.units = units
        self.cell = cell
        self.dropout = dropout
        self.augment = float(augment)
        self.tokenizer = tokenizer

        # === Layers ===
        self.augmentation = keras.Sequential([
            keras.layers.RandomTranslation(self.augment, self.augment, fill_mode="nearest"),
            keras.layers.RandomZoom(self.augment, fill_mode="nearest"),
        ], name="augmentation") if self.augment else None
        if backbone:
            constructor, _ = BACKBONES[backbone]
            self.encoder = getattr(keras.applications, constructor)(
                include_top=False, weights=backbone_weights, pooling="avg",
                input_shape=(image_size, image_size, 3),
            )
            self.encoder.trainable = self.fine_tune
        else:
            self.encoder = small_cnn(self.filters)
        self.image_dropout = keras.layers.Dropout(dropout, name="image_dropout")
        self.state_projections = [
            keras.layers.Dense(units, activation="tanh", name="initial_h"),
        ]
        if cell == "lstm":
            self.state_projections.append(keras.layers.Dense(units, name="initial_c"))
        self.word_embedding = keras.layers.Embedding(
            vocabulary_size, embedding_dim, name="word_embedding"
        )
        self.word_dropout = keras.layers.Dropout(dropout, name="word_dropout")
        self.decoder = _CELLS[cell](
            units, return_sequences=True, return_state=True, name="decoder"
        )
        self.output_dropout = keras.layers.Dropout(dropout, name="output_dropout")
        self.output_projection = keras.layers.Dense(vocabulary_size, name="output_projection")

    def build(self, input_shape=None):
        """Creates every weight (the shapes depend only on the settings)."""
        if not self.encoder.built:
            self.encoder.build((None, self.image_size, self.image_size, 3))
        features = self.feature_dim
        for projection in self.state_projections:
            projection.build((None, features))
        self.word_embedding.build((None, None))
        self.decoder.build((None, None, self.embedding_dim))
        self.output_projection.build((None, None, self.units))
        self.built = True

    @property
    def feature_dim(self):
        """The size of the image embedding."""
        return self.encoder.output_shape[-1] if self.backbone else self.filters[-1]

    # === Pieces shared by training and decoding ===

    def _preprocess(self, images):
        images = ops.cast(images, "float32")
        if not self.backbone:
            return images / 127.5 - 1.0
        _, module = BACKBONES[self.backbone]
        return getattr(keras.applications, module).preprocess_input(images)

    def encode(self, images, training=False):
        """The image embedding `(batch, feature_dim)` of `(batch, size, size, 3)` images."""
        images = ops.cast(images, "float32")
        if training and self.augmentation is not None:
            images = self.augmentation(images, training=True)
        train_encoder = training and (not self.backbone or self.fine_tune)
        return self.encoder(self._preprocess(images), training=train_encoder)

    def initial_state(self, features, training=False):
        """The decoder's initial state(s) from image embeddings."""
        features = self.image_dropout(features, training=training)
        return [projection(features) for projection in self.state_projections]

    def _decode(self, caption_in, states, training=False):
        mask = ops.not_equal(caption_in, PAD_ID)
        x = self.word_dropout(self.word_embedding(caption_in), training=training)
        x, *states = self.decoder(x, initial_state=states, mask=mask, training=training)
        x = self.output_dropout(x, training=training)
        return self.output_projection(x), states

    def call(self, inputs, training=False):
        states = self.initial_state(self.encode(inputs["image"], training), training)
        logits, _ = self._decode(inputs["caption_in"], states, training)
        return logits

    def generate(self, images, beam_size=3, max_length=20, length_penalty=0.6):
        """Caption token ids for `images` by beam search (1 = greedy).

        The unknown token (`UNK_ID`) is never generated. Returns
        `(tokens, scores)` as `rnnapps.decoding.beam_search` does:
        `(batch, max_length)` ids ending with `END_ID` (0 after it) and the
        length-normalised log-probability of each.
        """
        if not self.built:  # not inside the decoding loop's trace
            self.build()
        states = self.initial_state(self.encode(images))

        # Never write the unknown token: it stands for characters the
        # vocabulary lacks, and detokenizes to " ⁇ ".
        unknown = ops.where(ops.arange(self.vocabulary_size) == UNK_ID, -1e9, 0.0)

        def step(tokens, carried):
            logits, new_states = self._decode(ops.expand_dims(tokens, 1), carried)
            return logits[:, 0, :] + unknown, new_states

        return beam_search(
            step, states, ops.shape(images)[0], beam_size=beam_size, max_length=max_length,
            start_id=START_ID, end_id=END_ID, length_penalty=length_penalty,
        )

    def get_config(self):
        config = super().get_config()
        config.update(
            vocabulary_size=self.vocabulary_size,
            image_size=self.image_size,
            backbone=self.backbone,
            fine_tune=self.fine_tune,
            filters=list(self.filters),
            embedding_dim=self.embedding_dim,
            units=self.units,
            cell=self.cell,
            dropout=self.dropout,
            augment=self.augment,
            tokenizer=keras.saving.serialize_keras_object(self.tokenizer),
        )
        return config

    @classmethod
    def from_config(cls, config):
        config = dict(config)
        if config.get("tokenizer") is not None:
            config["tokenizer"] = keras.saving.deserialize_keras_object(config["tokenizer"])
        return cls(**config)
