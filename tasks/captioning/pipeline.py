"""Images and captions as tf.data pipelines, and the image decoding the export shares.

Images are decoded (PNG, JPEG, GIF's first frame, BMP; alpha dropped) and
resized to `image_size` x `image_size` (bilinear, antialiased, aspect ratio
not kept) by `decode_image`, in tf.data for training and inside the
SavedModel's graph for serving, so both see the same pixels: `float32`
values in [0, 255]. Captions are SentencePiece ids (`rnnapps.text`): the
decoder reads `<s> caption` and predicts `caption </s>`.
"""

from rnnapps.task import without_autotune_thread
from rnnapps.text import teacher_forcing

__all__ = [
    "decode_image", "resize_image", "redraw_image", "image_dataset", "make_dataset",
    "encoded_images",
]


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


def redraw_image(glyph, seed, image_size, scales=(0.5, 1.0), canvas=(136, 128), white=0.3):
    """A glyph drawn anew: `float32` `(size, size, 3)` in [0, 255].

    `glyph` is a decoded RGBA `uint8` image of the subject alone (the
    emoji's `Split.glyphs`), `seed` a `(2,)` integer tensor: the glyph is
    scaled by a factor from `scales` (relative to the largest size that
    fits the `canvas`, width x height), placed where it fits whole, on a
    random background colour (white with probability `white`), in
    premultiplied alpha, and the canvas squeezed to `image_size` square as
    `resize_image` would. The same seed gives the same drawing.
    """
    import tensorflow as tf

    seeds = tf.random.experimental.stateless_split(tf.cast(seed, tf.int64), 5)
    glyph = tf.cast(glyph, tf.float32) / 255.0
    alpha = glyph[..., 3:]
    layer = tf.concat([glyph[..., :3] * alpha, alpha], axis=-1)
    height = tf.cast(tf.shape(glyph)[0], tf.float32)
    width = tf.cast(tf.shape(glyph)[1], tf.float32)
    fit = tf.minimum(tf.minimum(canvas[0] / width, canvas[1] / height), 1.0)
    scale = tf.random.stateless_uniform([], seeds[0], *scales) * fit
    # In the output's pixels: the canvas is squeezed to image_size square.
    rows = tf.maximum(1, tf.cast(tf.round(height * scale * image_size / canvas[1]), tf.int32))
    columns = tf.maximum(1, tf.cast(tf.round(width * scale * image_size / canvas[0]), tf.int32))
    rows, columns = tf.minimum(rows, image_size), tf.minimum(columns, image_size)
    layer = tf.image.resize(layer, tf.stack([rows, columns]), antialias=True)
    top = tf.random.stateless_uniform([], seeds[1], 0, image_size - rows + 1, tf.int32)
    left = tf.random.stateless_uniform([], seeds[2], 0, image_size - columns + 1, tf.int32)
    layer = tf.image.pad_to_bounding_box(layer, top, left, image_size, image_size)
    background = tf.random.stateless_uniform([3], seeds[3])
    background = tf.where(tf.random.stateless_uniform([], seeds[4]) < white, 1.0, background)
    image = layer[..., :3] + background * (1.0 - layer[..., 3:])
    return tf.clip_by_value(image * 255.0, 0.0, 255.0)


def image_dataset(split, image_size):
    """A `tf.data.Dataset` of the split's images, decoded and resized, in order."""
    import tensorflow as tf

    if split.dataset is not None:
        return without_autotune_thread(split.dataset.map(
            lambda image: resize_image(image, image_size), num_parallel_calls=tf.data.AUTOTUNE
        ))
    images = tf.data.Dataset.from_tensor_slices(tf.constant(list(split.images), tf.string))
    if split.files:
        images = images.map(tf.io.read_file, num_parallel_calls=tf.data.AUTOTUNE)
    return without_autotune_thread(images.map(
        lambda data: decode_image(data, image_size), num_parallel_calls=tf.data.AUTOTUNE
    ))


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


# Training batches group captions of up to 7, up to 15 and more pieces:
# `teacher_forcing` pads to a multiple of 8 steps (<s> included).
LENGTH_BOUNDARIES = (8, 16)


def make_dataset(split, tokenizer, image_size, max_length, batch_size, shuffle_seed=None,
                 cache=True, redraw=0.0, drop_remainder=False):
    """Batched `({"image", "caption_in"}, caption_out)`, one example per caption.

    The decoded images are cached in memory (`cache`, for the in-memory
    sources); the training split (`shuffle_seed` given) is reshuffled
    every epoch, in batches of captions of about one length
    (`LENGTH_BOUNDARIES`). With `redraw` (a share in [0, 1], for a split
    with glyphs: the emoji), that share of the images, chosen anew every
    epoch, is drawn anew (`redraw_image`) instead of as stored. With
    `drop_remainder`, the training split leaves out each length's last
    partial batch (other captions every epoch): every batch then has one of
    three shapes, which a compiling backend (JAX) compiles once each.
    """
    import tensorflow as tf

    redraw = float(redraw)
    if not 0.0 <= redraw <= 1.0:
        raise ValueError(f"redraw must be a share between 0 and 1. Received: {redraw}")
    images = None
    if redraw < 1.0 or split.glyphs is None:
        images = image_dataset(split, image_size)
        if cache:
            images = images.cache()
    if redraw > 0.0 and split.glyphs is not None:
        glyphs = tf.data.Dataset.from_tensor_slices(tf.constant(list(split.glyphs), tf.string))
        glyphs = glyphs.map(
            lambda data: tf.io.decode_png(data, channels=4), num_parallel_calls=tf.data.AUTOTUNE
        ).cache()
        seeds = tf.data.Dataset.random(
            seed=shuffle_seed or 0, rerandomize_each_iteration=True).batch(3)
        if images is None:
            images = tf.data.Dataset.zip(glyphs, seeds).map(
                lambda glyph, seed: redraw_image(glyph, seed[:2], image_size),
                num_parallel_calls=tf.data.AUTOTUNE,
            )
        else:
            def draw(image, glyph, seed):
                chosen = tf.random.stateless_uniform([], tf.stack([seed[2], seed[0]])) < redraw
                return tf.cond(chosen, lambda: redraw_image(glyph, seed[:2], image_size),
                               lambda: tf.cast(image, tf.float32))

            images = tf.data.Dataset.zip(images, glyphs, seeds).map(
                draw, num_parallel_calls=tf.data.AUTOTUNE)
    captions = tf.data.Dataset.from_tensor_slices(tf.ragged.constant(split.captions, tf.string))
    pairs = tf.data.Dataset.zip(images, captions).flat_map(
        lambda image, texts: tf.data.Dataset.from_tensor_slices(texts).map(
            lambda text: (image, text)
        )
    )
    def encode(images, texts):
        caption_in, caption_out = teacher_forcing(tokenizer, texts, max_length)
        return {"image": images, "caption_in": caption_in}, caption_out

    if shuffle_seed is None:
        batches = pairs.batch(batch_size)
    else:
        count = sum(len(c) for c in split.captions)
        pairs = pairs.shuffle(min(count, 20_000), seed=shuffle_seed, reshuffle_each_iteration=True)
        # Batches of captions of about one length: the decoder runs as many
        # steps as the batch's longest caption (on emoji 12 instead of 22 on average).
        batches = pairs.map(
            lambda image, text: (image, text, tf.shape(tokenizer(text))[0]),
            num_parallel_calls=tf.data.AUTOTUNE,
        ).bucket_by_sequence_length(
            lambda image, text, length: length, LENGTH_BOUNDARIES,
            [batch_size] * (len(LENGTH_BOUNDARIES) + 1), drop_remainder=drop_remainder,
        ).map(lambda images, texts, lengths: (images, texts))
    batches = batches.map(encode, num_parallel_calls=tf.data.AUTOTUNE).prefetch(tf.data.AUTOTUNE)
    return without_autotune_thread(batches)
