"""Images and captions as tf.data pipelines, and the image decoding the export shares.

Images are decoded (PNG, JPEG, GIF's first frame, BMP; alpha dropped) and
resized to `image_size` x `image_size` (bilinear, antialiased, aspect ratio
not kept) by `decode_image`, in tf.data for training and inside the
SavedModel's graph for serving, so both see the same pixels: `float32`
values in [0, 255]. Captions are SentencePiece ids (`rnnapps.text`): the
decoder reads `<s> caption` and predicts `caption </s>`.
"""

from rnnapps.text import teacher_forcing

__all__ = ["decode_image", "resize_image", "image_dataset", "make_dataset", "encoded_images"]


def resize_image(image, image_size):
    """A decoded `uint8` image `(h, w, 3)` -> `float32` `(size, size, 3)` in [0, 255]."""
    import tensorflow as tf

    image = tf.image.resize(image, [image_size, image_size], antialias=True)
    return tf.clip_by_value(image, 0.0, 255.0)


def decode_image(data, image_size):
    """Encoded image bytes (a scalar string tensor) -> `float32` `(size, size, 3)`.

    Raises (when run) `InvalidArgumentError` for data that is not a
    decodable image.
    """
    import tensorflow as tf

    image = tf.io.decode_image(data, channels=3, expand_animations=False)
    image.set_shape([None, None, 3])
    return resize_image(image, image_size)


def image_dataset(split, image_size):
    """A `tf.data.Dataset` of the split's images, decoded and resized, in order."""
    import tensorflow as tf

    if split.dataset is not None:
        return split.dataset.map(
            lambda image: resize_image(image, image_size), num_parallel_calls=tf.data.AUTOTUNE
        )
    images = tf.data.Dataset.from_tensor_slices(tf.constant(list(split.images), tf.string))
    if split.files:
        images = images.map(tf.io.read_file, num_parallel_calls=tf.data.AUTOTUNE)
    return images.map(
        lambda data: decode_image(data, image_size), num_parallel_calls=tf.data.AUTOTUNE
    )


def encoded_images(split):
    """The split's images as encoded bytes, one per image (for the export)."""
    import tensorflow as tf

    if split.dataset is not None:
        for image in split.dataset.map(tf.io.encode_png).as_numpy_iterator():
            yield image
    elif split.files:
        for path in split.images:
            with open(path, "rb") as file:
                yield file.read()
    else:
        yield from split.images


def make_dataset(split, tokenizer, image_size, max_length, batch_size, shuffle_seed=None,
                 cache=True):
    """Batched `({"image", "caption_in"}, caption_out)`, one example per caption.

    The decoded images are cached in memory (`cache`, for the in-memory
    sources); the training split (`shuffle_seed` given) is reshuffled
    every epoch.
    """
    import tensorflow as tf

    images = image_dataset(split, image_size)
    if cache:
        images = images.cache()
    captions = tf.data.Dataset.from_tensor_slices(tf.ragged.constant(split.captions, tf.string))
    pairs = tf.data.Dataset.zip(images, captions).flat_map(
        lambda image, texts: tf.data.Dataset.from_tensor_slices(texts).map(
            lambda text: (image, text)
        )
    )
    if shuffle_seed is not None:
        count = sum(len(c) for c in split.captions)
        pairs = pairs.shuffle(min(count, 20_000), seed=shuffle_seed, reshuffle_each_iteration=True)

    def encode(images, texts):
        caption_in, caption_out = teacher_forcing(tokenizer, texts, max_length)
        return {"image": images, "caption_in": caption_in}, caption_out

    return (
        pairs.batch(batch_size)
        .map(encode, num_parallel_calls=tf.data.AUTOTUNE)
        .prefetch(tf.data.AUTOTUNE)
    )
