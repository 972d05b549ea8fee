"""What the captioning model reads, made from raw images and captions in TensorFlow.

`CaptioningPreprocessor` turns images (encoded bytes, file paths or decoded
arrays) into `float32` pixels in [0, 255] of `image_size` square, and
captions into SentencePiece ids for teacher forcing (`<s> caption` in,
`caption </s>` out); it turns the ids the model writes back into text.
It runs in `tf.data` (training, on any Keras backend) and in the
SavedModel's graph (serving), so both see the same pixels and pieces. What
it fitted on the data, the SentencePiece model, is its `proto`.
"""

import base64

from rnnapps.tasks.captioning import pipeline

__all__ = ["CaptioningPreprocessor"]


class CaptioningPreprocessor:
    """Images and captions to the ids and pixels `ShowAndTell` reads (TensorFlow ops).

    Args:
        tokenizer: a keras-hub `SentencePieceTokenizer` fitted on the
            training captions (`from_captions` fits one).
        image_size: images are resized to `image_size` x `image_size`.
        max_length: most ids per caption, the end token included.

    Example:

    >>> preprocessor = CaptioningPreprocessor.from_captions(
    ...     ["a red apple", "a green apple", "a red car"] * 10, vocabulary_size=20,
    ...     image_size=8, max_length=6)
    >>> caption_in, caption_out = preprocessor.captions(["a red car"])
    >>> caption_in.shape, caption_out.shape   # padded to a multiple of 8 steps
    (TensorShape([1, 8]), TensorShape([1, 8]))
    >>> preprocessor.detokenize(caption_out.numpy()).numpy().tolist()
    [b'a red car']
    >>> restored = CaptioningPreprocessor.from_config(preprocessor.get_config())
    >>> restored.detokenize(caption_out.numpy()).numpy().tolist()
    [b'a red car']
    """

    def __init__(self, tokenizer, image_size=64, max_length=24):
        for name, value, least in (("image_size", image_size, 1), ("max_length", max_length, 2)):
            if not isinstance(value, int) or value < least:
                raise ValueError(f"{name} must be an integer of at least {least}. "
                                 f"Received: {name}={value!r}")
        self.tokenizer = tokenizer
        self.image_size = image_size
        self.max_length = max_length

    @classmethod
    def from_captions(cls, captions, vocabulary_size, image_size=64, max_length=24):
        """Fits the SentencePiece model on `captions` (a list of str).

        Raises `ValueError` when no vocabulary of at least 16 pieces fits them.
        """
        from rnnapps.text import fit_sentencepiece

        tokenizer = fit_sentencepiece(captions, vocabulary_size)
        return cls(tokenizer, image_size=image_size, max_length=max_length)

    @property
    def vocabulary_size(self):
        return int(self.tokenizer.vocabulary_size())

    # === Images ===

    def decode(self, data):
        """Encoded image bytes (a scalar string tensor) -> `(size, size, 3)` pixels."""
        return pipeline.decode_image(data, self.image_size)

    def images(self, split):
        """A `tf.data.Dataset` of the `Split`'s images, decoded and resized, in order."""
        return pipeline.image_dataset(split, self.image_size)

    # === Captions ===

    def captions(self, texts):
        """`(caption_in, caption_out)` ids `(batch, steps)` of a batch of strings."""
        import tensorflow as tf

        return self._teacher_forcing(tf.convert_to_tensor(texts, tf.string))

    def _teacher_forcing(self, texts):
        import tensorflow as tf

        from rnnapps.text import teacher_forcing

        if not hasattr(self, "_forced"):  # the tokenizer gives lists outside a graph
            self._forced = tf.function(
                lambda t: teacher_forcing(self.tokenizer, t, self.max_length))
        return self._forced(texts)

    def detokenize(self, tokens):
        """Strings `(batch,)` from `(batch, steps)` ids: up to the end token, padding dropped."""
        from rnnapps.text import detokenize

        return detokenize(self.tokenizer, tokens)

    def dataset(self, split, batch_size, shuffle_seed=None, cache=True, redraw=0.0):
        """Batched `({"image", "caption_in"}, caption_out)` of a `Split`, one
        example per caption (`pipeline.make_dataset`).

        On JAX, which compiles the training step once per batch shape, a
        training split (`shuffle_seed` given) of at least 16 batches leaves
        out each caption length's last partial batch, a different one every
        epoch; TensorFlow's graph takes any shape and sees every caption.
        """
        import keras

        pairs = sum(len(c) for c in split.captions)
        drop = (shuffle_seed is not None and keras.backend.backend() == "jax"
                and pairs >= 16 * batch_size)
        return pipeline.make_dataset(
            split, self.tokenizer, self.image_size, self.max_length, batch_size,
            shuffle_seed=shuffle_seed, cache=cache, redraw=redraw, drop_remainder=drop,
        )

    # === Config ===

    def get_config(self):
        """JSON: the settings and the SentencePiece model (base64)."""
        return {
            "image_size": self.image_size,
            "max_length": self.max_length,
            "proto": base64.b64encode(self.tokenizer.proto).decode("ascii"),
        }

    @classmethod
    def from_config(cls, config, tokenizer=None):
        """The preprocessor of `get_config()`; `tokenizer` (e.g. the one a
        saved model keeps) stands for a config without its `proto`."""
        config = dict(config)
        proto = config.pop("proto", None)
        if tokenizer is None:
            if proto is None:
                raise ValueError("the config has no SentencePiece proto: pass the tokenizer")
            import keras_hub

            tokenizer = keras_hub.tokenizers.SentencePieceTokenizer(
                proto=base64.b64decode(proto), dtype="int32")
        return cls(tokenizer, **config)
