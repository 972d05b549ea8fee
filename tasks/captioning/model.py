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
from rnnapps.decoding import length_normalised
from rnnapps.layers import IRNN
from rnnapps.layers import IRNNCell
from rnnapps.text import END_ID
from rnnapps.text import PAD_ID
from rnnapps.text import START_ID
from rnnapps.text import UNK_ID

__all__ = [
    "ShowAndTell", "ShowAttendAndTell", "CaptionEnsemble", "BACKBONES", "consensus_scores",
    "retrieved_contexts", "retrieved_continuations", "small_cnn", "BatchNormalization",
]

_CELLS = {"lstm": keras.layers.LSTM, "gru": keras.layers.GRU, "irnn": IRNN}

# keras.applications backbones: (constructor, module with preprocess_input).
BACKBONES = {
    "mobilenet_v2": ("MobileNetV2", "mobilenet_v2"),
    "resnet50": ("ResNet50", "resnet"),
    "efficientnet_b0": ("EfficientNetB0", "efficientnet"),
    "densenet121": ("DenseNet121", "densenet"),
}


@keras.saving.register_keras_serializable(package="rnnapps.captioning")
class BatchNormalization(keras.layers.BatchNormalization):
    """`keras.layers.BatchNormalization` whose training step on TensorFlow is
    one fused kernel (`tf.nn.fused_batch_norm`, as `tf.keras` 2 used).

    The same layer, weights and arithmetic: while training, the images'
    batch mean and (biased) variance normalise the batch and update the
    moving statistics by `momentum`; otherwise the moving statistics
    normalise. Keras 3 computes the training step from separate moments
    and elementwise ops on every backend, which on a CPU made the small
    CNN's four normalisations a quarter of its training step (89 ms ->
    68 ms for the default encoder on a batch of 32, forward and backward,
    with this). Elsewhere (JAX, PyTorch, inference, another axis or rank,
    a mask, renorm, `synchronized`) it is `BatchNormalization` itself.
    It keeps Keras's class name so that a `.keras` file stores its weights
    under the same paths: weights saved before it load into it
    (`model.load_weights`), and the other way round.

    >>> import numpy as np
    >>> x = np.random.default_rng(0).normal(3.0, 2.0, (8, 4, 4, 2)).astype("float32")
    >>> fused, plain = BatchNormalization(), keras.layers.BatchNormalization()
    >>> y, z = fused(x, training=True), plain(x, training=True)
    >>> bool(np.allclose(ops.convert_to_numpy(y), ops.convert_to_numpy(z), atol=1e-4))
    True
    >>> bool(np.allclose(ops.convert_to_numpy(fused.moving_variance),
    ...                  ops.convert_to_numpy(plain.moving_variance), rtol=1e-5))
    True
    """

    def _fusable(self, inputs, training, mask):
        return (training and self.trainable and mask is None and not self.renorm
                and not self.synchronized and keras.backend.backend() == "tensorflow"
                and len(inputs.shape) == 4 and self.axis in (3, -1))

    def call(self, inputs, training=None, mask=None):
        if not self._fusable(inputs, training, mask):
            return super().call(inputs, training=training, mask=mask)
        import tensorflow as tf

        x = tf.cast(inputs, "float32")
        channels = tf.shape(x)[-1]
        gamma = tf.cast(self.gamma, "float32") if self.scale else tf.ones([channels])
        beta = tf.cast(self.beta, "float32") if self.center else tf.zeros([channels])
        outputs, mean, variance = tf.compat.v1.nn.fused_batch_norm(
            x, gamma, beta, epsilon=self.epsilon, is_training=True, data_format="NHWC")[:3]
        # The fused kernel hands back the unbiased variance (Bessel's
        # correction); BatchNormalization keeps the biased one.
        count = tf.cast(tf.size(x) // channels, "float32")
        variance = variance * (count - 1.0) / tf.maximum(count, 1.0)
        momentum = self.momentum
        self.moving_mean.assign(
            tf.cast(self.moving_mean, "float32") * momentum + mean * (1.0 - momentum))
        self.moving_variance.assign(
            tf.cast(self.moving_variance, "float32") * momentum + variance * (1.0 - momentum))
        return tf.cast(outputs, self.compute_dtype)


def small_cnn(filters=(32, 64, 128, 256), pools=None, global_pool=True, name="small_cnn"):
    """The default encoder, trained from scratch: per entry of `filters` a
    3x3 convolution, batch normalisation and ReLU, the first `pools` of
    them (default: all) followed by 2x2 max pooling; then global average
    pooling, or, with `global_pool=False`, the feature map itself (what an
    attention decoder looks at). Takes images scaled to [-1, 1]."""
    pools = len(filters) if pools is None else pools
    layers = []
    for i, width in enumerate(filters):
        layers += [
            keras.layers.Conv2D(width, 3, padding="same", use_bias=False, name=f"conv_{i}"),
            BatchNormalization(name=f"norm_{i}"),
            keras.layers.ReLU(name=f"relu_{i}"),
        ]
        if i < pools:
            layers.append(keras.layers.MaxPooling2D(2, name=f"pool_{i}"))
    if global_pool:
        layers.append(keras.layers.GlobalAveragePooling2D(name="pool"))
    return keras.Sequential(layers, name=name)


def _ngram_matches(equal, valid):
    """Clipped n-gram matches of every candidate against every other.

    `equal` `(batch, count, count, steps, steps)`: n-gram `i` of candidate
    `c` equals n-gram `j` of candidate `d`; `valid` `(batch, count, steps)`:
    candidate `c` has an n-gram at `i`. A gram matches as often as it
    occurs in both (BLEU's clipping): its `r`-th occurrence in `c` matches
    when `d` holds it more than `r` times.
    """
    steps = ops.shape(valid)[-1]
    itself = ops.diagonal(equal, axis1=1, axis2=2)  # (batch, steps, steps, count)
    itself = ops.transpose(itself, (0, 3, 1, 2))
    earlier = ops.cast(ops.tril(ops.ones((steps, steps)), -1), "float32")
    seen = ops.sum(ops.cast(itself, "float32") * earlier, axis=-1)  # (batch, count, steps)
    held = ops.sum(ops.cast(equal, "float32"), axis=-1)  # (batch, count, count, steps)
    matched = ops.logical_and(ops.expand_dims(seen, 2) < held, ops.expand_dims(valid, 2))
    return ops.sum(ops.cast(matched, "float32"), axis=-1)


def consensus_scores(candidates, weights):
    """Each candidate caption's mean agreement with the others (consensus).

    Devlin et al. (2015) caption an image with the retrieved caption that
    agrees most with the other retrieved ones. Agreement of two captions:
    the mean, over unigrams and bigrams, of the F1 of their clipped n-gram
    matches.

    Args:
        candidates: `(batch, count, steps)` ids, 0 = padding (`END_ID` is
            ignored).
        weights: `(batch, count)` the vote of each candidate (0: it votes
            for no one).

    Returns:
        `(batch, count)`: `sum_{d != c} w_d F(c, d) / sum_{d != c} w_d`.

    Example:

    >>> import numpy as np
    >>> captions = np.array([[[5, 6, 7, 3], [5, 6, 3, 0], [8, 9, 3, 0]]])   # END_ID is 3
    >>> scores = consensus_scores(captions, np.ones((1, 3)))  # F(0, 1) = (4/5 + 2/3) / 2
    >>> np.round(ops.convert_to_numpy(scores).astype(float), 3).tolist()
    [[0.367, 0.367, 0.0]]
    """
    tokens = ops.cast(candidates, "int32")
    tokens = ops.where(ops.equal(tokens, END_ID), 0, tokens)
    count = ops.shape(tokens)[1]
    valid = ops.not_equal(tokens, 0)
    both = ops.logical_and(valid[:, :, None, :, None], valid[:, None, :, None, :])
    unigrams = ops.logical_and(
        ops.equal(tokens[:, :, None, :, None], tokens[:, None, :, None, :]), both)
    bigrams = ops.logical_and(unigrams[..., :-1, :-1], unigrams[..., 1:, 1:])
    agreement = 0.0
    for equal, present in ((unigrams, valid),
                           (bigrams, ops.logical_and(valid[..., :-1], valid[..., 1:]))):
        matches = _ngram_matches(equal, present)
        grams = ops.sum(ops.cast(present, "float32"), axis=-1)
        pairs = ops.expand_dims(grams, 2) + ops.expand_dims(grams, 1)
        agreement += 0.5 * ops.where(pairs > 0, 2.0 * matches / ops.maximum(pairs, 1.0), 0.0)
    others = 1.0 - ops.eye(count)
    votes = ops.expand_dims(ops.cast(weights, "float32"), 1) * others
    return ops.sum(agreement * votes, axis=-1) / ops.maximum(ops.sum(votes, axis=-1), 1e-9)



def retrieved_contexts(captions):
    """What `retrieved_continuations` matches a caption so far against.

    Args:
        captions: `(batch, count, steps)` ids of retrieved captions, each
            ending with `END_ID`, 0 after it.

    Returns:
        `[before, previous, following]`, each `(batch, count, steps)` int32:
        per position `j` of every caption, its id (`following`), the id
        before it (`previous`: `START_ID` at the first) and the one before
        that (`before`: -1, nothing, at the first, `START_ID` at the
        second).
    """
    captions = ops.cast(captions, "int32")
    start = ops.full_like(captions[..., :1], START_ID)
    nothing = ops.full_like(captions[..., :1], -1)
    previous = ops.concatenate([start, captions[..., :-1]], axis=-1)
    before = ops.concatenate([nothing, start, captions[..., :-2]], axis=-1)
    return [before, previous, captions]


def retrieved_continuations(last, before_last, contexts, vocabulary_size):
    """The next id of a caption so far, as the retrieved captions continue it.

    A k-nearest-neighbour language model over the K captions retrieved for
    the image (Khandelwal et al. 2020's kNN-LM, with the image's nearest
    training captions as the datastore): where a retrieved caption holds
    the caption's last two ids, the id that follows them there gets a vote;
    where none does, the captions holding its last id vote.

    Args:
        last: `(batch,)` the last id of each caption so far (`START_ID` at
            its start).
        before_last: `(batch,)` the id before it (-1 at the start).
        contexts: `retrieved_contexts` of each example's retrieved captions.
        vocabulary_size: the number of ids.

    Returns:
        `(batch, vocabulary_size)` the distribution of the votes, all zeros
        where no retrieved caption holds the last id.

    Example:

    >>> import numpy as np
    >>> captions = np.array([[[5, 6, 7, 3], [5, 8, 3, 0]]])   # END_ID is 3
    >>> contexts = retrieved_contexts(captions)
    >>> votes = retrieved_continuations(np.array([5]), np.array([2]), contexts, 10)
    >>> ops.convert_to_numpy(votes)[0].round(2).tolist()   # "<s> 5" goes on with 6 or 8
    [0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.5, 0.0, 0.5, 0.0]
    """
    before, previous, following = contexts
    real = ops.not_equal(following, PAD_ID)
    one = ops.logical_and(ops.equal(previous, ops.reshape(last, (-1, 1, 1))), real)
    two = ops.logical_and(one, ops.equal(before, ops.reshape(before_last, (-1, 1, 1))))
    batch = ops.shape(following)[0]
    has_two = ops.any(ops.reshape(two, (batch, -1)), axis=-1)
    voting = ops.where(ops.reshape(has_two, (-1, 1)), ops.reshape(two, (batch, -1)),
                       ops.reshape(one, (batch, -1)))
    # The votes added up per (caption so far, id): a segment sum over the
    # batch's count x steps positions, not a one-hot of the vocabulary at
    # every position (which made this most of a beam step).
    ids = ops.reshape(following, (batch, -1)) + ops.reshape(
        ops.arange(batch, dtype="int32") * vocabulary_size, (-1, 1))
    counts = ops.segment_sum(ops.reshape(ops.cast(voting, "float32"), (-1,)),
                             ops.reshape(ids, (-1,)), num_segments=batch * vocabulary_size)
    counts = ops.reshape(counts, (batch, vocabulary_size))
    return counts / ops.maximum(ops.sum(counts, axis=-1, keepdims=True), 1.0)


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
        memory_size: training captions the model can remember for
            `generate(..., rerank=K)` (0 = none): the embedding of each
            training image and the ids of its caption, kept as
            non-trainable weights (saved with the model and in the export)
            and filled by `set_memory` after training.
        memory_length: most ids per remembered caption, its end token
            included.

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
        memory_size=0,
        memory_length=24,
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
        self.memory_size = int(memory_size)
        self.memory_length = int(memory_length)

        # === Layers ===
        self.augmentation = keras.Sequential([
            keras.layers.RandomTranslation(self.augment, self.augment, fill_mode="nearest"),
            keras.layers.RandomZoom(self.augment, fill_mode="nearest"),
        ], name="augmentation") if self.augment else None
        self.encoder = self._make_encoder(backbone_weights)
        if backbone:
            self.encoder.trainable = self.fine_tune
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
        self._make_decoder()
        self.output_dropout = keras.layers.Dropout(dropout, name="output_dropout")
        self.output_projection = keras.layers.Dense(vocabulary_size, name="output_projection")

    def _make_encoder(self, backbone_weights, pooling="avg"):
        if self.backbone:
            constructor, _ = BACKBONES[self.backbone]
            return getattr(keras.applications, constructor)(
                include_top=False, weights=backbone_weights, pooling=pooling,
                input_shape=(self.image_size, self.image_size, 3),
            )
        return small_cnn(self.filters)

    def _make_decoder(self):
        self.decoder = _CELLS[self.cell](
            self.units, return_sequences=True, return_state=True, name="decoder"
        )

    def build(self, input_shape=None):
        """Creates every weight (the shapes depend only on the settings)."""
        if not self.encoder.built:
            self.encoder.build((None, self.image_size, self.image_size, 3))
        features = self.feature_dim
        for projection in self.state_projections:
            projection.build((None, features))
        self.word_embedding.build((None, None))
        self._build_decoder()
        self._build_memory()
        self.built = True

    def _build_memory(self):
        """The remembered training images' embeddings and captions (`set_memory`)."""
        if self.memory_size:
            self.memory_keys = self.add_weight(
                shape=(self.memory_size, self.feature_dim), initializer="zeros",
                trainable=False, name="memory_keys")
            self.memory_tokens = self.add_weight(
                shape=(self.memory_size, self.memory_length), initializer="zeros",
                dtype="int32", trainable=False, name="memory_tokens")

    def _build_decoder(self):
        self.decoder.build((None, None, self.embedding_dim))
        self.output_projection.build((None, None, self.units))

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

    def _encoder_output(self, images, training=False):
        images = ops.cast(images, "float32")
        if training and self.augmentation is not None:
            images = self.augmentation(images, training=True)
        train_encoder = training and (not self.backbone or self.fine_tune)
        return self.encoder(self._preprocess(images), training=train_encoder)

    def encode(self, images, training=False):
        """The image embedding `(batch, feature_dim)` of `(batch, size, size, 3)` images."""
        return self._encoder_output(images, training)

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

    def generate(self, images, beam_size=3, max_length=20, length_penalty=0.6, rerank=0,
                 consensus=32.0, confidence=0.0, retrieval=0.0, rerank_beams=False):
        """Caption token ids for `images` by beam search (1 = greedy).

        The unknown token (`UNK_ID`) is never generated. With `rerank=K`
        (and a memory, `set_memory`), the beam's caption competes with the
        remembered captions of the K training images nearest in the image
        embedding (cosine): each candidate scores its length-normalised
        log-probability under the model plus `consensus` times its mean
        n-gram agreement with the K retrieved captions (Devlin et al.
        2015's consensus reranking; `consensus_scores`), and the best
        wins. The consensus term fades out for images unlike any training
        image: it is weighed by `g = (s - confidence) / (1 - confidence)`,
        clipped to [0, 1], where `s` is the cosine similarity of the
        nearest remembered image (so with `confidence=0.95` an image whose
        nearest training image is less similar than 0.95 keeps the most
        likely candidate, usually the beam's).

        With `retrieval=lam` as well, beam search itself reads the K
        retrieved captions: at every step the model's next-token
        probabilities are mixed with the votes of the retrieved captions
        that continue the caption so far (`retrieved_continuations`, a
        kNN-LM over them), `(1 - lam g) p_model + lam g p_retrieved`,
        with the same fade `g` (and the model alone where no retrieved
        caption continues it). A caption can then take a retrieved
        caption's words where the image is like a training image, and the
        model's words where it is not or where the captions disagree.

        With `rerank_beams=True` every caption the beam ends with competes
        in the reranking, not only its best (a beam cut off at
        `max_length` where another ended does not).

        Returns `(tokens, scores)` as `rnnapps.decoding.beam_search` does:
        `(batch, max_length)` ids ending with `END_ID` (0 after it) and the
        length-normalised log-probability of each (under the model alone).
        """
        if not self.built:  # not inside the decoding loop's trace
            self.build()
        if not 0.0 <= confidence < 1.0:
            raise ValueError(f"confidence must be in [0, 1). Received: confidence={confidence}")
        if not 0.0 <= retrieval <= 1.0:
            raise ValueError(f"retrieval must be in [0, 1]. Received: retrieval={retrieval}")
        states, embedding = self._decoding_start_and_embedding(images)
        k = min(int(rerank), self.memory_size)
        retrieved = self._retrieve(embedding, k, max_length, confidence) if k else None
        if retrieved is not None and retrieval:
            gate, remembered = retrieved
            # Carried along every beam: the token before the last (-1 at
            # the start), the mixing weight and the retrieved captions.
            extra = [ops.full_like(ops.cast(gate[:, 0], "int32"), -1),
                     retrieval * gate, *retrieved_contexts(remembered)]
        else:
            extra = []
        count = len(states)

        def step(tokens, carried):
            logits, new_states = self._decoding_step(tokens, carried[:count])
            logits = self._never_unknown(logits)
            if not extra:
                return logits, new_states
            before_last, weight, contexts = carried[count], carried[count + 1], carried[count + 2:]
            votes = retrieved_continuations(tokens, before_last, contexts, self.vocabulary_size)
            weight = weight * ops.cast(ops.sum(votes, axis=-1, keepdims=True) > 0, "float32")
            mixed = (1.0 - weight) * ops.softmax(ops.cast(logits, "float32"), axis=-1) \
                + weight * votes
            last = ops.reshape(ops.cast(tokens, "int32"), ops.shape(before_last))
            return ops.log(mixed + 1e-12), [*new_states, last, *carried[count + 1:]]

        every = bool(rerank_beams) and retrieved is not None
        tokens, scores = beam_search(
            step, [*states, *extra], ops.shape(images)[0], beam_size=beam_size,
            max_length=max_length, start_id=START_ID, end_id=END_ID,
            length_penalty=length_penalty, return_all=every,
        )
        if retrieved is None:
            return tokens, scores
        if every:
            # Every beam competes; a beam cut off where another ended does not.
            dropped = scores <= -1e8
        else:
            tokens, dropped = ops.expand_dims(tokens, 1), None
        return self._rerank(tokens, states, retrieved, max_length, length_penalty, consensus,
                            dropped)

    def _retrieve(self, embedding, k, max_length, confidence):
        """The K remembered captions nearest to each image `(batch, k,
        max_length)` and the confidence fade `(batch, 1)` of its nearest."""
        batch = ops.shape(embedding)[0]
        query = embedding / (ops.norm(embedding, axis=-1, keepdims=True) + 1e-12)
        similarity, nearest = ops.top_k(ops.matmul(query, ops.transpose(self.memory_keys)), k)
        gate = ops.clip((similarity[:, :1] - confidence) / (1.0 - confidence), 0.0, 1.0)
        remembered = ops.take(self.memory_tokens, ops.reshape(nearest, (-1,)), axis=0)
        remembered = ops.reshape(remembered, (batch, k, self.memory_length))
        width = self.memory_length
        if width < max_length:
            remembered = ops.pad(remembered, ((0, 0), (0, 0), (0, max_length - width)))
        return gate, ops.cast(remembered[..., :max_length], "int32")

    def set_memory(self, embeddings, tokens):
        """Remembers training captions for `generate(..., rerank=K)`.

        `embeddings` `(memory_size, feature_dim)`: `encode` of each training
        image; `tokens` `(memory_size, steps)`: the ids of its caption,
        ending with `END_ID`, 0 after (cut to `memory_length`). The model
        must have been built with this `memory_size`.
        """
        if not self.built:
            self.build()
        embeddings = ops.convert_to_numpy(embeddings).astype("float32")
        tokens = ops.convert_to_numpy(tokens).astype("int32")
        if not self.memory_size or embeddings.shape != (self.memory_size, self.feature_dim) \
                or tokens.shape[0] != self.memory_size:
            raise ValueError(
                f"set_memory needs {self.memory_size} embeddings of size {self.feature_dim} "
                f"and as many captions (the model's memory_size). Received: embeddings of "
                f"shape {embeddings.shape}, tokens of shape {tokens.shape}")
        norms = (embeddings ** 2).sum(axis=1, keepdims=True) ** 0.5
        fitted = tokens[:, :self.memory_length]
        padded = ops.convert_to_numpy(ops.pad(fitted, ((0, 0), (0, self.memory_length - fitted.shape[1]))))
        self.memory_keys.assign(embeddings / (norms + 1e-12))
        self.memory_tokens.assign(padded)

    def _rerank(self, tokens, states, retrieved, max_length, length_penalty, consensus,
                dropped=None):
        """`tokens` `(batch, beams, max_length)`: the beam's captions that
        compete with the retrieved ones (`dropped` `(batch, beams)`: those
        that do not)."""
        batch = ops.shape(tokens)[0]
        gate, remembered = retrieved
        k = ops.shape(remembered)[1]
        beams = ops.shape(tokens)[1]
        candidates = ops.concatenate([tokens, remembered], 1)
        count = k + beams
        flat = ops.reshape(candidates, (-1, max_length))
        start = ops.full((ops.shape(flat)[0], 1), START_ID, "int32")
        logits = self._sequence_logits(
            [ops.repeat(s, count, axis=0) for s in states],
            ops.concatenate([start, flat[:, :-1]], axis=1))
        # Scored as beam search scores: the unknown token is never written.
        log_probs = ops.log_softmax(self._never_unknown(ops.cast(logits, "float32")), axis=-1)
        picked = ops.take_along_axis(log_probs, ops.expand_dims(flat, -1), axis=-1)[..., 0]
        real = ops.cast(ops.not_equal(flat, PAD_ID), "float32")
        lengths = ops.maximum(ops.sum(real, axis=1), 1.0)
        likelihood = length_normalised(ops.sum(picked * real, axis=1), lengths, length_penalty)
        likelihood = ops.reshape(likelihood, (batch, count))
        # The remembered captions vote; the beam's caption only competes.
        empty = ops.equal(candidates[:, :, 0], PAD_ID)  # an unfilled memory
        if dropped is not None:
            empty = ops.logical_or(empty, ops.pad(dropped, ((0, 0), (0, k))))
        voters = ops.concatenate([ops.zeros((batch, beams)), ops.ones((batch, k))], axis=1)
        agreement = consensus_scores(candidates, voters * ops.cast(ops.logical_not(empty),
                                                                   "float32"))
        total = ops.where(empty, -1e9, likelihood + consensus * gate * agreement)
        best = ops.expand_dims(ops.cast(ops.argmax(total, axis=1), "int32"), 1)
        chosen = ops.take_along_axis(candidates, ops.expand_dims(best, -1), axis=1)[:, 0]
        return chosen, ops.take_along_axis(likelihood, best, axis=1)[:, 0]

    def _never_unknown(self, logits):
        """Logits that never pick the unknown token: it stands for characters
        the vocabulary lacks, and detokenizes to " ⁇ "."""
        return logits + ops.where(ops.arange(self.vocabulary_size) == UNK_ID, -1e9, 0.0)

    def _decoding_start_and_embedding(self, images):
        """What beam search carries per image (here the decoder's states),
        and the image embedding (`encode`)."""
        features = self.encode(images)
        return self.initial_state(features), features

    def _decoding_step(self, tokens, carried):
        """`(batch,)` previous tokens -> `(batch, vocabulary)` logits, new carried states."""
        logits, new_states = self._decode(ops.expand_dims(tokens, 1), carried)
        return logits[:, 0, :], new_states

    def _sequence_logits(self, carried, caption_in):
        """Teacher-forced logits `(batch, steps, vocabulary)` from what
        `_decoding_start_and_embedding` carries."""
        return self._decode(caption_in, carried)[0]

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
            memory_size=self.memory_size,
            memory_length=self.memory_length,
        )
        return config

    @classmethod
    def from_config(cls, config):
        config = dict(config)
        if config.get("tokenizer") is not None:
            config["tokenizer"] = keras.saving.deserialize_keras_object(config["tokenizer"])
        return cls(**config)


@keras.saving.register_keras_serializable(package="rnnapps.captioning")
class ShowAttendAndTell(ShowAndTell):
    """Soft attention over the image's regions at every word (Xu et al. 2015).

    *Show, Attend and Tell*'s deterministic soft attention: the encoder
    keeps its spatial feature map `a` (`feature_map x feature_map` regions
    of `feature_dim` channels) instead of pooling it; the mean region sets
    the decoder's initial state (as `ShowAndTell`'s pooled embedding
    does), and before each word the previous hidden state `h` scores every
    region,

        e_i = w . tanh(W_a a_i + W_h h),   alpha = softmax(e),
        z = beta * sum_i alpha_i a_i,      beta = sigmoid(w_b . h)   (the gating scalar)

    the cell reads `[E y_prev; z]`, and the word comes from the deep output
    layer `Dense(tanh(L_h h + L_z z + E y_prev))`. While training, the
    doubly stochastic regularisation `attention_penalty * mean_i (1 - sum_t
    alpha_ti)^2` (over the caption's real steps) asks every region to be
    looked at about once over the caption.

    Takes the same inputs as `ShowAndTell` and has the same `generate`
    (beam search; the regions travel with the beams), so the task's export
    is unchanged. `attention_maps` gives the weights of each written word.

    Args:
        vocabulary_size: token ids are below this; 0 is padding.
        feature_map: the side of the small CNN's attention grid: its first
            `log2(image_size / feature_map)` blocks pool (the image size
            divided by a power of two, at most one per block). Default: the
            first three pool (8x8 regions of 64x64 images). Ignored with a
            `backbone`, whose last feature map is the grid.
        attention_dim: size of the attention's hidden layer (default: `units`).
        attention_penalty: weight of the doubly stochastic regularisation
            (0 = off).
        positions: add a learned embedding of each region's place in the
            grid to the regions the decoder attends over (its keys and the
            context it reads), as a Vision Transformer adds one to its
            patches, so the decoder knows *where* a region is as well as
            what it holds: which of two people is on the left. Starts at
            zero; the image embedding (`encode`, the memory, the initial
            state) is the plain mean region either way.
        **kwargs: as `ShowAndTell` (`image_size`, `filters`, `cell`, `units`,
            `embedding_dim`, `dropout`, `augment`, `backbone`, `tokenizer`...).

    Example:

    >>> import numpy as np
    >>> model = ShowAttendAndTell(30, image_size=32, filters=(8, 16), feature_map=8,
    ...                           units=16, embedding_dim=8)
    >>> images = np.random.default_rng(0).uniform(0, 255, (2, 32, 32, 3))
    >>> logits = model({"image": images, "caption_in": np.array([[2, 7, 8], [2, 9, 0]])})
    >>> tuple(logits.shape)
    (2, 3, 30)
    >>> tokens, scores = model.generate(images, beam_size=2, max_length=5)
    >>> tuple(model.attention_maps(images, tokens).shape)   # one 8x8 map per written token
    (2, 5, 8, 8)
    """

    def __init__(self, vocabulary_size, feature_map=None, attention_dim=None,
                 attention_penalty=1.0, positions=False, **kwargs):
        image_size = kwargs.get("image_size", 64)
        filters = tuple(kwargs.get("filters", (32, 64, 128, 256)))
        if not feature_map:  # the first three blocks pool: 8x8 regions of 64x64 images
            feature_map = image_size // 2 ** min(3, len(filters))
        self.feature_map = int(feature_map)
        self.attention_dim = int(attention_dim or kwargs.get("units", 256))
        self.attention_penalty = float(attention_penalty)
        self.positions = bool(positions)
        if not kwargs.get("backbone"):
            ratio = image_size // max(self.feature_map, 1)
            pools = ratio.bit_length() - 1
            if (self.feature_map < 1 or ratio * self.feature_map != image_size
                    or ratio != 2 ** pools or pools > len(filters)):
                raise ValueError(
                    f"feature_map must be image_size divided by a power of two, at most "
                    f"2**{len(filters)} (one 2x2 pooling per block of the CNN). Received: "
                    f"feature_map={feature_map}, image_size={image_size}"
                )
            self._pools = pools
        super().__init__(vocabulary_size, **kwargs)

    def _make_encoder(self, backbone_weights):
        if self.backbone:
            return super()._make_encoder(backbone_weights, pooling=None)
        return small_cnn(self.filters, pools=self._pools, global_pool=False)

    def _make_decoder(self):
        cells = {"lstm": keras.layers.LSTMCell, "gru": keras.layers.GRUCell,
                 "irnn": IRNNCell}
        self.decoder_cell = cells[self.cell](self.units, name="decoder")
        self.attention_keys = keras.layers.Dense(self.attention_dim, name="attention_keys")
        self.attention_query = keras.layers.Dense(
            self.attention_dim, use_bias=False, name="attention_query")
        self.attention_score = keras.layers.Dense(1, name="attention_score")
        self.attention_gate = keras.layers.Dense(1, activation="sigmoid", name="attention_gate")
        self.output_hidden = keras.layers.Dense(self.embedding_dim, name="output_hidden")
        self.output_context = keras.layers.Dense(
            self.embedding_dim, use_bias=False, name="output_context")

    def _build_decoder(self):
        features, units = self.feature_dim, self.units
        self.decoder_cell.build((None, self.embedding_dim + features))
        self.attention_keys.build((None, None, features))
        self.attention_query.build((None, units))
        self.attention_score.build((None, None, self.attention_dim))
        self.attention_gate.build((None, units))
        self.output_hidden.build((None, None, units))
        self.output_context.build((None, None, features))
        self.output_projection.build((None, None, self.embedding_dim))
        if self.positions:
            self.region_positions = self.add_weight(
                shape=(self.regions, features), initializer="zeros", name="region_positions")

    @property
    def regions(self):
        """How many regions the decoder attends over (the grid's cells)."""
        if self.backbone:
            rows, columns = self.encoder.output_shape[1:3]
            return rows * columns
        return self.feature_map ** 2

    def _attended(self, regions):
        """The regions as attention sees them: with their places (`positions`)."""
        return regions + self.region_positions if self.positions else regions

    # === The regions ===

    def encode_regions(self, images, training=False):
        """The feature map as regions: `(batch, regions, feature_dim)`."""
        grid = self._encoder_output(images, training)
        shape = ops.shape(grid)
        return ops.reshape(grid, (shape[0], -1, self.feature_dim))

    def encode(self, images, training=False):
        """The image embedding `(batch, feature_dim)`: the mean region."""
        return ops.mean(self.encode_regions(images, training), axis=1)

    # === One decoding step, shared by training and beam search ===

    def _attend(self, hidden, regions, keys):
        query = ops.expand_dims(self.attention_query(hidden), 1)
        scores = ops.squeeze(self.attention_score(ops.tanh(keys + query)), -1)
        weights = ops.softmax(scores, axis=-1)
        context = ops.sum(ops.expand_dims(weights, -1) * regions, axis=1)
        return self.attention_gate(hidden) * context, weights

    def _step(self, words, states, regions, keys):
        context, weights = self._attend(states[0], regions, keys)
        hidden, new_states = self.decoder_cell(ops.concatenate([words, context], -1), states)
        new_states = list(new_states) if isinstance(new_states, (list, tuple)) else [new_states]
        return hidden, new_states, context, weights

    def _output(self, hidden, context, words, training=False):
        x = ops.tanh(self.output_hidden(hidden) + self.output_context(context) + words)
        return self.output_projection(self.output_dropout(x, training=training))

    def _teacher_forced(self, images, caption_in, training=False):
        regions = self.encode_regions(images, training)
        states = self.initial_state(ops.mean(regions, axis=1), training)
        regions = self._attended(regions)
        return self._scan(states, regions, self.attention_keys(regions), caption_in, training)

    def _scan(self, states, regions, keys, caption_in, training=False):
        """Teacher-forced logits and attention weights from the initial
        states, the regions and their attention keys."""
        words = self.word_dropout(self.word_embedding(caption_in), training=training)

        count = len(states)

        # keras.ops.scan (TensorFlow backend) stacks outputs shaped like the
        # carry: the carry holds the step's context and weights too.
        def body(carried, x):
            hidden, new_states, context, weights = self._step(x, carried[:count], regions, keys)
            carried = [*new_states, context, weights]
            return carried, carried

        start = [*states, ops.zeros_like(regions[:, 0, :]), ops.zeros_like(regions[:, :, 0])]
        _, steps = ops.scan(body, start, ops.transpose(words, (1, 0, 2)))
        # The cells' first state is their output h.
        hidden, context, weights = (ops.moveaxis(steps[i], 0, 1) for i in (0, -2, -1))
        return self._output(hidden, context, words, training), weights

    def call(self, inputs, training=False):
        logits, weights = self._teacher_forced(inputs["image"], inputs["caption_in"], training)
        if training and self.attention_penalty:
            mask = ops.cast(ops.not_equal(inputs["caption_in"], PAD_ID), weights.dtype)
            coverage = ops.sum(weights * ops.expand_dims(mask, -1), axis=1)
            self.add_loss(self.attention_penalty * ops.mean(ops.square(1.0 - coverage)))
        return logits

    def _decoding_start_and_embedding(self, images):
        regions = self.encode_regions(images)
        embedding = ops.mean(regions, axis=1)
        states = self.initial_state(embedding)
        regions = self._attended(regions)
        return [*states, regions, self.attention_keys(regions)], embedding

    def _sequence_logits(self, carried, caption_in):
        *states, regions, keys = carried
        return self._scan(states, regions, keys, caption_in)[0]

    def _decoding_step(self, tokens, carried):
        *states, regions, keys = carried
        words = self.word_embedding(tokens)
        hidden, new_states, context, _ = self._step(words, states, regions, keys)
        return self._output(hidden, context, words), [*new_states, regions, keys]

    def attention_maps(self, images, tokens):
        """The attention weights over the grid while writing each of `tokens`.

        `tokens` `(batch, steps)` as `generate` returns them; gives
        `(batch, steps, rows, columns)`, each step's weights summing to 1
        (those after the end token are meaningless).
        """
        tokens = ops.cast(tokens, "int32")
        start = ops.full((ops.shape(tokens)[0], 1), START_ID, "int32")
        caption_in = ops.concatenate([start, tokens[:, :-1]], axis=1)
        _, weights = self._teacher_forced(images, caption_in)
        side = int(round(ops.shape(weights)[-1] ** 0.5))
        return ops.reshape(weights, (*ops.shape(weights)[:2], side, -1))

    def get_config(self):
        config = super().get_config()
        config.update(
            feature_map=self.feature_map,
            attention_dim=self.attention_dim,
            attention_penalty=self.attention_penalty,
            positions=self.positions,
        )
        return config


@keras.saving.register_keras_serializable(package="rnnapps.captioning")
class CaptionEnsemble(keras.Model):
    """Several captioners trained side by side, captioning as one.

    The members (`ShowAndTell` or `ShowAttendAndTell` models of one
    vocabulary and image size, built from different initial weights) train
    together in one `fit`, each on its own cross-entropy (the training loss
    is their mean: each member learns alone, as independently trained
    models do); validation, `evaluate` and decoding use their mixture, the
    mean of the members' next-token probabilities (Sutskever et al. 2014
    decode with an ensemble of 5; Vinyals et al. 2015 ensemble Show and
    Tell). Beam search steps every member and ranks by the mixture, and
    reranking (`generate(..., rerank=K)`) scores candidates by it too. The
    image embedding is the members' L2-normalised embeddings side by side,
    scaled so that its cosine similarity is the mean of theirs: the memory
    of training images (`set_memory`) and the nearest-image lookup use it.

    Args:
        members: the captioners (built without a memory, `memory_size=0`).
        memory_size: training captions remembered for reranking (0 = none).
        memory_length: most ids per remembered caption, its end token included.

    Example:

    >>> import numpy as np
    >>> members = [ShowAndTell(30, image_size=32, filters=(8, 16), units=16, embedding_dim=8)
    ...            for _ in range(2)]
    >>> ensemble = CaptionEnsemble(members)
    >>> images = np.random.default_rng(0).uniform(0, 255, (2, 32, 32, 3))
    >>> log_probs = ensemble({"image": images, "caption_in": np.array([[2, 7, 8], [2, 9, 0]])})
    >>> tuple(log_probs.shape)   # log of the mean of the members' probabilities
    (2, 3, 30)
    >>> tokens, scores = ensemble.generate(images, beam_size=2, max_length=5)
    >>> tuple(tokens.shape), tuple(scores.shape)
    ((2, 5), (2,))
    """

    # Decoding and the memory work as a single captioner's, on the mixture:
    # the methods below feed them the members' combined steps.
    generate = ShowAndTell.generate
    set_memory = ShowAndTell.set_memory
    _build_memory = ShowAndTell._build_memory
    _rerank = ShowAndTell._rerank
    _retrieve = ShowAndTell._retrieve
    _never_unknown = ShowAndTell._never_unknown

    def __init__(self, members, memory_size=0, memory_length=24, **kwargs):
        super().__init__(**kwargs)
        members = list(members)
        if not members:
            raise ValueError("CaptionEnsemble needs at least one member. Received: members=[]")
        first = members[0]
        for member in members:
            if not isinstance(member, ShowAndTell):
                raise ValueError(f"every member must be a ShowAndTell or ShowAttendAndTell "
                                 f"model. Received: {type(member).__name__}")
            if (member.vocabulary_size, member.image_size) != (first.vocabulary_size,
                                                               first.image_size):
                raise ValueError(
                    f"the members must share one vocabulary size and image size. Received: "
                    f"{[(m.vocabulary_size, m.image_size) for m in members]}")
            if member.memory_size:
                raise ValueError("the members must be built without a memory (memory_size=0): "
                                 "the ensemble remembers the training captions itself")
        for member in members[1:]:
            # A `.keras` file saves a layer's assets under its first path only:
            # one tokenizer, the first member's, serves the ensemble.
            if member.tokenizer is first.tokenizer:
                member.tokenizer = None
        self.members = members
        self.vocabulary_size = first.vocabulary_size
        self.image_size = first.image_size
        self.memory_size = int(memory_size)
        self.memory_length = int(memory_length)

    def build(self, input_shape=None):
        for member in self.members:
            if not member.built:
                member.build()
        self._build_memory()
        self.built = True

    @property
    def tokenizer(self):
        """The members' tokenizer (the first member's; they share one vocabulary)."""
        return self.members[0].tokenizer

    @property
    def feature_dim(self):
        """The size of the image embedding: the members' side by side."""
        return sum(member.feature_dim for member in self.members)

    def _joined(self, embeddings):
        """The members' embeddings, each L2-normalised, side by side, scaled by
        `1 / sqrt(members)`: a unit vector whose cosine with another is the
        mean of the members' cosines."""
        scale = float(len(self.members)) ** -0.5
        return ops.concatenate([
            scale * e / (ops.norm(e, axis=-1, keepdims=True) + 1e-12) for e in embeddings
        ], axis=-1)

    def encode(self, images, training=False):
        """The image embedding `(batch, feature_dim)`: the members' side by side."""
        return self._joined([member.encode(images, training) for member in self.members])

    def _mixture(self, logits, decoding=True):
        """Log of the mean of the members' probabilities, from their logits;
        when `decoding`, of their distributions without the unknown token
        (which decoding never writes, as a single captioner's does not)."""
        log_probs = [ops.cast(x, "float32") for x in logits]
        if decoding:
            log_probs = [self._never_unknown(x) for x in log_probs]
        log_probs = [ops.log_softmax(x, axis=-1) for x in log_probs]
        return ops.logsumexp(ops.stack(log_probs), axis=0) - ops.log(float(len(logits)))

    def call(self, inputs, training=False):
        """Training: every member's logits (a list); otherwise the mixture's
        log-probabilities `(batch, steps, vocabulary_size)` (of every token:
        the loss of a caption holding an unknown piece stays finite)."""
        logits = [member(inputs, training=training) for member in self.members]
        return logits if training else self._mixture(logits, decoding=False)

    def compute_loss(self, x=None, y=None, y_pred=None, sample_weight=None, training=True):
        """Training: the mean of the members' cross-entropies (each member's
        gradient is its own); otherwise the mixture's. Padding is ignored."""
        targets = ops.cast(y, "int32")
        valid = ops.cast(ops.not_equal(targets, PAD_ID), "float32")
        tokens = ops.maximum(ops.sum(valid), 1.0)

        def nll(log_probs):
            picked = ops.take_along_axis(log_probs, ops.expand_dims(targets, -1), axis=-1)
            return -ops.sum(picked[..., 0] * valid) / tokens

        if isinstance(y_pred, (list, tuple)):
            loss = ops.mean(ops.stack([
                nll(ops.log_softmax(ops.cast(logits, "float32"), axis=-1)) for logits in y_pred
            ]))
        else:
            loss = nll(ops.cast(y_pred, "float32"))
        # The members' attention penalties (training only), averaged as their losses are.
        for extra in self.losses:
            loss = loss + ops.cast(ops.sum(extra), loss.dtype) / len(self.members)
        return loss

    # === Decoding: the members step together ===

    def _split(self, carried):
        """What beam search carries for the ensemble, member by member: the
        decoder's states, and for attention the regions and their keys."""
        parts, start = [], 0
        for member in self.members:
            count = len(member.state_projections)
            count += 2 if isinstance(member, ShowAttendAndTell) else 0
            parts.append(carried[start:start + count])
            start += count
        return parts

    def _decoding_start_and_embedding(self, images):
        carried, embeddings = [], []
        for member in self.members:
            states, embedding = member._decoding_start_and_embedding(images)
            carried.extend(states)
            embeddings.append(embedding)
        return carried, self._joined(embeddings)

    def _decoding_step(self, tokens, carried):
        logits, new_carried = [], []
        for member, states in zip(self.members, self._split(carried)):
            step_logits, new_states = member._decoding_step(tokens, states)
            logits.append(step_logits)
            new_carried.extend(new_states)
        return self._mixture(logits), new_carried

    def _sequence_logits(self, carried, caption_in):
        return self._mixture([member._sequence_logits(states, caption_in)
                              for member, states in zip(self.members, self._split(carried))])

    def get_config(self):
        config = super().get_config()
        config.update(
            members=[keras.saving.serialize_keras_object(m) for m in self.members],
            memory_size=self.memory_size,
            memory_length=self.memory_length,
        )
        return config

    @classmethod
    def from_config(cls, config):
        config = dict(config)
        config["members"] = [keras.saving.deserialize_keras_object(m) for m in config["members"]]
        return cls(**config)
