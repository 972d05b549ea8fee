"""The captioning task: the CLI's `Task` and the Python API's `Captioner`.

Both build on the same pieces: `CaptioningPreprocessor` (images and
captions to pixels and ids, in tf.data and in the export), the model
(`ShowAndTell` or `ShowAttendAndTell`, `keras.ops` only, any backend) and
the decoding below (beam search and reranking in `keras.ops` on the
training backend; the export's graph on TensorFlow).
"""

import collections
import hashlib
import pathlib
import weakref

import numpy as np

from rnnapps.task import Task
from rnnapps.task import TaskData
from rnnapps.task import TaskError
from rnnapps.task import add_decoding_export_flags
from rnnapps.task import decoding_export_info
from rnnapps.task import learning_rate
from rnnapps.tasks.captioning.config import PRESETS
from rnnapps.tasks.captioning.config import CaptioningConfig
from rnnapps.tasks.captioning.data import Split
from rnnapps.tasks.captioning.data import load_examples
from rnnapps.tasks.captioning.preprocessor import CaptioningPreprocessor

__all__ = [
    "Captioner", "CaptioningTask", "load_data", "build_model", "captioner", "remember",
    "bleu_scores", "caption_parts", "nearest_neighbour_captions", "most_frequent_caption",
    "redrawn_scores", "learning_rate",
]

NOT_DECODABLE = "could not decode the image: it is not a PNG, JPEG, GIF or BMP file"


def _check_config(config):
    checks = [
        ("--image-size", config.image_size, 32 if config.backbone != "none" else 16),
        ("--max-length", config.max_length, 4),
        ("--vocabulary-size", config.vocabulary_size, 16),
        ("--beam-size", config.beam_size, 1),
        ("--batch-size", config.batch_size, 1),
        ("--units", config.units, 1),
        ("--embedding-dim", config.embedding_dim, 1),
        ("--train-size", config.train_size, 0),
        ("--rerank", config.rerank, 0),
        ("--ensemble", config.ensemble, 1),
        ("--consensus", config.consensus, 0),
        ("--average-epochs", config.average_epochs, 1),
    ]
    for flag, value, least in checks:
        if value < least:
            raise TaskError(f"{flag} must be at least {least}. Received: {value}")
    if not 0.0 <= config.rerank_confidence < 1.0:
        raise TaskError(f"--rerank-confidence must be at least 0 and below 1. "
                        f"Received: {config.rerank_confidence}")
    if not 0.0 <= config.retrieval <= 1.0:
        raise TaskError(f"--retrieval must be a weight between 0 and 1. "
                        f"Received: {config.retrieval}")
    if config.redraw is not None and not 0.0 <= config.redraw <= 1.0:
        raise TaskError(f"--redraw must be a share between 0 and 1. Received: {config.redraw}")
    if config.redraw and config.data != "emoji":
        raise TaskError(
            f"--redraw applies only to the emoji data (it draws each emoji again from its "
            f"glyph); the images of {_data_name(config.data)} cannot be redrawn: leave it out "
            f"(--augment shifts and zooms any image)"
        )
    try:
        filters = _filters(config)
    except ValueError:
        raise TaskError(f"--filters must be positive integers, e.g. 32,64,128,256. "
                        f"Received: {config.filters!r}")
    if config.decoder == "attention" and config.backbone == "none" and config.feature_map:
        ratio = config.image_size // max(config.feature_map, 1)
        if (config.feature_map < 1 or ratio * config.feature_map != config.image_size
                or ratio & (ratio - 1) or ratio > 2 ** len(filters)):
            raise TaskError(
                f"--feature-map must be --image-size ({config.image_size}) divided by a power "
                f"of two, at most 2**{len(filters)} (one pooling per block of --filters). "
                f"Received: {config.feature_map}"
            )
    if config.positions and config.decoder != "attention":
        raise TaskError("--positions places the regions the attention decoder looks at: it "
                        "needs --decoder attention")
    if config.backbone_weights and config.backbone == "none":
        raise TaskError("--backbone-weights needs a --backbone (e.g. --backbone mobilenet_v2)")
    if (config.backbone_weights and config.backbone_weights != "imagenet"
            and not pathlib.Path(config.backbone_weights).is_file()):
        raise TaskError(f"no such file: {config.backbone_weights} (--backbone-weights: "
                        "imagenet or the path of a weights file)")


def _redraw(config):
    """The share of training emoji redrawn each epoch (`config.redraw`,
    0.5 by default on emoji, 0 on other data)."""
    if config.redraw is not None:
        return config.redraw
    return 0.5 if config.data == "emoji" else 0.0


def _filters(config):
    filters = tuple(int(f) for f in str(config.filters).split(","))
    if not filters or min(filters) < 1:
        raise ValueError(config.filters)
    return filters


def _data_name(data):
    from rnnapps.tasks.captioning.data import TFDS_NAMES

    if data == "emoji" or data.split("/")[0].split(":")[0] in TFDS_NAMES:
        return data
    return pathlib.Path(data).name


def _same_data(data, other):
    """Whether `data` (a name or a CSV's path) is `other`."""
    return data == other or (pathlib.Path(data).is_file() and pathlib.Path(other).is_file()
                             and pathlib.Path(data).resolve() == pathlib.Path(other).resolve())


def _decoding(config):
    return {
        "beam_size": config.beam_size,
        "length_penalty": config.length_penalty,
        "max_length": config.max_length,
        "image_size": config.image_size,
        "rerank": config.rerank,
        "consensus": config.consensus,
        "rerank_confidence": config.rerank_confidence,
        "retrieval": config.retrieval,
        "rerank_beams": config.rerank_beams,
    }


def _splits(config, whole="split"):
    splits = load_examples(config.data, config.image_column, config.caption_column, whole)
    if config.train_size:
        train = splits["train"]
        n = config.train_size
        train.captions, train.names = train.captions[:n], train.names[:n]
        if train.images is not None:
            train.images = train.images[:n]
        if train.dataset is not None:
            train.dataset = train.dataset.take(n)
    sizes = {split: len(s) for split, s in splits.items()}
    if whole == "test" and sizes["test"]:
        return splits
    if min(sizes.values()) == 0:
        raise TaskError(
            "too few images for a train/validation/test split (80/10/10 by file name): "
            f"{sizes['train']}/{sizes['validation']}/{sizes['test']}; each split needs one"
        )
    return splits


def _sizes(splits):
    sizes = {split: len(s) for split, s in splits.items()}
    sizes["train_captions"] = sum(len(c) for c in splits["train"].captions)
    sizes["skipped_images"] = sum(len(s.skipped) for s in splits.values())
    return sizes


def load_data(config):
    """`TaskData` for a `CaptioningConfig`.

    Fits the SentencePiece tokenizer on the training captions (it is
    `data.raw["tokenizer"]`). `data.raw[split]` holds the `Split`s (images
    and all reference captions); `info` the sizes (images per split,
    training captions, images skipped because they could not be decoded)
    and the decoding settings the export uses.
    """
    _check_config(config)
    splits = _splits(config)
    preprocessor = _fit_preprocessor(config, splits["train"])
    cache = splits["train"].dataset is None  # in-memory sources: keep the decoded images
    datasets = {
        split: preprocessor.dataset(
            splits[split], config.batch_size,
            shuffle_seed=config.seed if split == "train" else None, cache=cache,
            redraw=_redraw(config) if split == "train" else 0.0,
        )
        for split in splits
    }
    info = {
        "name": _data_name(config.data),
        "sizes": _sizes(splits),
        "skipped": [name for s in splits.values() for name in s.skipped][:20],
        **_preprocessing_info(config, preprocessor),
    }
    return TaskData(
        train=datasets["train"], validation=datasets["validation"], test=datasets["test"],
        info=info, raw={**splits, "tokenizer": preprocessor.tokenizer,
                        "preprocessor": preprocessor},
    )


def _fit_preprocessor(config, train):
    try:
        return CaptioningPreprocessor.from_captions(
            [c for captions in train.captions for c in captions], config.vocabulary_size,
            image_size=config.image_size, max_length=config.max_length,
        )
    except ValueError as error:
        raise TaskError(str(error))


def _preprocessing_info(config, preprocessor):
    """What the export process rebuilds the preprocessor from: its settings
    here, its SentencePiece model in the `.keras` file (the model keeps the
    tokenizer)."""
    settings = preprocessor.get_config()
    del settings["proto"]
    return {"vocabulary_size": preprocessor.vocabulary_size, "preprocessor": settings,
            "decoding": _decoding(config)}


def preprocessor_of(model, info):
    """The `CaptioningPreprocessor` of a trained `model` and its run's `info`
    (runs from before the preprocessor: the decoding settings)."""
    settings = info.get("preprocessor") or {
        "image_size": info["decoding"]["image_size"],
        "max_length": info["decoding"]["max_length"],
    }
    return CaptioningPreprocessor.from_config(settings, tokenizer=model.tokenizer)


def build_model(config, data):
    """A compiled `ShowAndTell` for `config`, holding `data`'s tokenizer."""
    return _build_model(config, data.raw["preprocessor"], len(data.raw["train"]),
                        data.info["sizes"]["train_captions"])


def _build_model(config, preprocessor, train_images, train_captions):
    import keras

    from rnnapps.optimizers import ClippedOptimizer
    from rnnapps.tasks.captioning.model import CaptionEnsemble
    from rnnapps.tasks.captioning.model import ShowAndTell
    from rnnapps.tasks.captioning.model import ShowAttendAndTell
    from rnnapps.text import PAD_ID

    attention = config.decoder == "attention"
    options = dict(feature_map=config.feature_map or None,
                   attention_penalty=config.attention_penalty,
                   positions=config.positions) if attention else {}
    members = max(1, config.ensemble)
    try:
        models = [(ShowAttendAndTell if attention else ShowAndTell)(
            **options,
            filters=_filters(config),
            vocabulary_size=preprocessor.vocabulary_size,
            image_size=config.image_size,
            backbone=None if config.backbone == "none" else config.backbone,
            backbone_weights=config.backbone_weights,
            fine_tune=config.fine_tune,
            embedding_dim=config.embedding_dim,
            units=config.units,
            cell=config.cell,
            dropout=config.dropout,
            augment=config.augment,
            tokenizer=preprocessor.tokenizer,  # an ensemble keeps the first member's
            memory_size=train_images if config.rerank and members == 1 else 0,
            memory_length=config.max_length,
            name=f"captioning_{config.decoder}_{config.cell}" + (f"_{i}" if members > 1 else ""),
        ) for i in range(members)]
        # Each member draws its own initial weights (one seed, drawn in turn).
        model = models[0] if members == 1 else CaptionEnsemble(
            models, memory_size=train_images if config.rerank else 0,
            memory_length=config.max_length, name=f"captioning_ensemble_{members}")
    except (ValueError, OSError) as error:  # a weights file of another network, not HDF5...
        raise TaskError(f"cannot build the model: {str(error).splitlines()[0]}")
    except Exception as error:  # keras.utils.get_file's "URL fetch failure"
        if config.backbone_weights != "imagenet":
            raise
        raise TaskError(
            f"--backbone-weights imagenet downloads keras.applications' ImageNet weights for "
            f"{config.backbone} once (into ~/.keras/models), and the download failed "
            f"({str(error).splitlines()[0]}): run once where the network is reachable, or "
            f"pass the path of the *_notop.h5 weights file with --backbone-weights"
        )
    model.build()  # BackupAndRestore and the optimizer need the weights now
    model.compile(
        optimizer=ClippedOptimizer(
            keras.optimizers.Adam(learning_rate(config, train_captions)),
            clipnorm=config.clipnorm,
        ),
        # An ensemble computes its own loss (`CaptionEnsemble.compute_loss`).
        loss=None if members > 1 else keras.losses.SparseCategoricalCrossentropy(
            from_logits=True, ignore_class=PAD_ID),
        # JAX compiles one step per caption length (3 of them: `pipeline.LENGTH_BOUNDARIES`);
        # TensorFlow's graph takes every length as it is.
        jit_compile=keras.backend.backend() == "jax",
    )
    return model


# Per model, its compiled generators by decoding settings: a jitted
# function compiles once per image batch shape, for every call of the run.
_GENERATORS = weakref.WeakKeyDictionary()


def _token_generator(model, decoding):
    """Decoded images `(batch, size, size, 3)` -> (ids, scores), compiled for the backend."""
    key = tuple(sorted(decoding.items()))
    kept = _GENERATORS.setdefault(model, {})
    if key not in kept:
        kept[key] = _compile_generator(model, decoding)
    return kept[key]


def _generate(model, images, decoding):
    """`model.generate` with a run's decoding settings (runs from before a
    setting existed: its behaviour then)."""
    return model.generate(
        images, beam_size=decoding["beam_size"], max_length=decoding["max_length"],
        length_penalty=decoding["length_penalty"], rerank=decoding.get("rerank", 0),
        consensus=decoding.get("consensus", 32.0),
        confidence=decoding.get("rerank_confidence", 0.0),
        retrieval=decoding.get("retrieval", 0.0),
        rerank_beams=decoding.get("rerank_beams", False),
    )


def _compile_generator(model, decoding):
    from rnnapps.decoding import compiled

    return compiled(model, lambda images: _generate(model, images, decoding))


def _generator(model, decoding, preprocessor=None):
    """Decoded images `(batch, size, size, 3)` -> (captions, scores) as
    TensorFlow tensors: beam search (and reranking) in `keras.ops` on the
    Keras backend, the ids detokenized by the preprocessor (TensorFlow)."""
    import keras

    if preprocessor is None:
        preprocessor = preprocessor_of(model, {"decoding": decoding})
    if keras.backend.backend() == "tensorflow":
        import tensorflow as tf

        def generate(images):
            tokens, scores = _generate(model, images, decoding)
            return preprocessor.detokenize(tokens), scores

        # Any number of images: one trace for full and partial batches (a
        # trace of the beam search takes seconds).
        size = decoding["image_size"]
        signature = [tf.TensorSpec([None, size, size, 3], tf.float32)]
        return tf.function(generate, input_signature=signature)
    tokens_of = _token_generator(model, decoding)

    def generate(images):
        tokens, scores = tokens_of(keras.ops.convert_to_tensor(np.asarray(images)))
        return (preprocessor.detokenize(keras.ops.convert_to_numpy(tokens)),
                keras.ops.convert_to_numpy(scores))

    return generate


def remember(model, train, max_length, preprocessor=None):
    """Fills `model`'s memory (`set_memory`) with the first caption of every
    image of the `train` split and its embedding by the trained encoder;
    a model built without one (`rerank=0`) is left as it is. Returns
    whether it filled one. A split of another size than the memory fills
    it with its first images (and leaves the rest empty)."""
    if not getattr(model, "memory_size", 0):
        return False
    if preprocessor is None:
        preprocessor = CaptioningPreprocessor(model.tokenizer, model.image_size, max_length)
    size = model.memory_size
    tokens = preprocessor.captions([captions[0] for captions in train.captions[:size]])[1].numpy()
    embeddings = _embeddings(model, train, model.image_size)[:size]
    if len(embeddings) < size:
        missing = size - len(embeddings)
        embeddings = np.concatenate([embeddings, np.zeros((missing, embeddings.shape[1]),
                                                          "float32")])
        tokens = np.concatenate([tokens, np.zeros((missing, tokens.shape[1]), tokens.dtype)])
    model.set_memory(embeddings, tokens)
    return True


def _decode_checked(data, image_size):
    """`pipeline.decode_image`, failing with `NOT_DECODABLE` for a non-image."""
    import tensorflow as tf

    from rnnapps.tasks.captioning import pipeline

    known = tf.reduce_any([
        tf.io.is_jpeg(data),
        tf.equal(tf.strings.substr(data, 0, 8), b"\x89PNG\r\n\x1a\n"),
        tf.equal(tf.strings.substr(data, 0, 3), b"GIF"),
        tf.equal(tf.strings.substr(data, 0, 2), b"BM"),
    ])
    check = tf.debugging.Assert(known, [NOT_DECODABLE])
    with tf.control_dependencies([check]):
        return pipeline.decode_image(tf.identity(data), image_size)


def captioner(model, decoding, preprocessor=None):
    """A `tf.function` `encoded images -> (captions, scores)`: the export's graph.

    Decodes (PNG, JPEG, GIF, BMP, any size), resizes, encodes, beam-searches
    and detokenizes in one graph (TensorFlow backend). `decoding` holds
    `beam_size`, `length_penalty`, `max_length` and `image_size` (a
    `CaptioningConfig` or `info["decoding"]`); `preprocessor` detokenizes
    (default: one holding the model's tokenizer). Data that is not an
    image fails with `InvalidArgumentError` ("could not decode the image ...").
    """
    import tensorflow as tf

    if not isinstance(decoding, dict):
        decoding = _decoding(decoding)
    size = decoding["image_size"]
    generate = _generator(model, decoding, preprocessor)

    def caption(images):
        images = tf.convert_to_tensor(images, tf.string)
        pixels = tf.map_fn(
            lambda data: _decode_checked(data, size), images,
            fn_output_signature=tf.TensorSpec([size, size, 3], tf.float32),
        )
        return generate(pixels)

    return tf.function(caption)


# === Scores and baselines ===


def _reference_streams(references):
    """sacrebleu's reference streams (the i-th reference of every image; None
    where an image has fewer) from one list of references per image."""
    most = max(len(r) for r in references)
    return [[r[i] if i < len(r) else None for r in references] for i in range(most)]


def bleu_scores(hypotheses, references):
    """Corpus BLEU-1..4 (sacrebleu, detokenized, case-sensitive) against all
    references (`references`: one list of reference captions per image)."""
    import sacrebleu

    streams = _reference_streams(references)
    return {
        f"bleu{n}": round(sacrebleu.BLEU(max_ngram_order=n).corpus_score(hypotheses, streams).score, 2)
        for n in (1, 2, 3, 4)
    }


def bleu_margin(hypotheses, baseline, references, order=4, samples=1000, confidence=0.95,
                seed=0, groups=None):
    """How far `hypotheses` lead `baseline` in corpus BLEU-`order`, with a
    paired bootstrap interval (Koehn 2004): the images are drawn again with
    replacement `samples` times, and both systems are scored on each draw.

    With `groups` (one key per image), whole groups are drawn instead of
    images (a cluster bootstrap): where the images of a group are alike and
    go to one split together, as the variants of one emoji do, the split
    holds fewer independent samples than images, and drawing images alone
    makes the interval too narrow.

    The statistics are sacrebleu's own per-caption n-gram counts, so the
    lead on the whole split is exactly the difference of `bleu_scores`.

    Returns `{"margin", "low", "high"}`: the lead on the split and the
    bounds of the central `confidence` share of the leads on the draws.

    >>> references = [["a red heart"], ["a blue car"], ["a green tree"], ["a big dog"]]
    >>> lead = bleu_margin(["a red heart", "a blue car", "a green tree", "a dog"],
    ...                    ["a red car", "a blue heart", "a tree", "a big cat"],
    ...                    references, order=1, samples=200)
    >>> lead["low"] <= lead["margin"] <= lead["high"], lead["margin"] > 0
    (True, True)
    """
    import sacrebleu

    if not len(hypotheses) == len(baseline) == len(references) > 0:
        raise ValueError(f"bleu_margin needs as many hypotheses, baseline captions and "
                         f"reference lists, at least one. Received: {len(hypotheses)}, "
                         f"{len(baseline)} and {len(references)}")
    bleu = sacrebleu.BLEU(max_ngram_order=order)
    streams = _reference_streams(references)
    # Per-caption sufficient statistics (sacrebleu's paired tests read the same).
    ours = np.asarray(bleu._extract_corpus_statistics(hypotheses, streams))
    theirs = np.asarray(bleu._extract_corpus_statistics(baseline, streams))

    if groups is not None:
        if len(groups) != len(ours):
            raise ValueError(f"bleu_margin needs one group per image. Received: {len(groups)} "
                             f"groups for {len(ours)} images")
        # BLEU reads summed statistics, so a group's rows sum into one
        # (groups in order of first appearance).
        index = {key: i for i, key in enumerate(dict.fromkeys(groups))}
        rows = np.array([index[key] for key in groups])
        ours, theirs = (np.stack([stats[rows == g].sum(0) for g in range(len(index))])
                        for stats in (ours, theirs))

    def lead(chosen):
        return (bleu._compute_score_from_stats(ours[chosen].sum(0).tolist()).score
                - bleu._compute_score_from_stats(theirs[chosen].sum(0).tolist()).score)

    draws = np.random.default_rng(seed).integers(0, len(ours), (samples, len(ours)))
    leads = np.array([lead(chosen) for chosen in draws])
    tail = (1.0 - confidence) / 2.0 * 100.0
    return {"margin": round(lead(np.arange(len(ours))), 2),
            "low": round(float(np.percentile(leads, tail)), 2),
            "high": round(float(np.percentile(leads, 100.0 - tail)), 2)}


def caption_parts(captions, train_captions):
    """Which part of the test split each image is in, for the report.

    `"composition"`: none of its captions occurs in training, but every word
    of one of them does (a caption made of parts the training set shows in
    other combinations); `"rest"`: the others (a caption seen in training,
    or one with a word no training caption has, like most flags' country
    names). On the emoji split no test caption occurs in training.

    >>> caption_parts([["red heart"], ["blue square"], ["red car"]],
    ...               [["red heart"], ["blue heart"], ["red square"]])
    ['rest', 'composition', 'rest']
    """
    seen = {c for image in train_captions for c in image}
    words = {w for c in seen for w in c.lower().split()}
    return [
        "composition" if not seen.intersection(image)
        and any(set(c.lower().split()) <= words for c in image) else "rest"
        for image in captions
    ]


def _compare(methods, references, parts=None):
    """BLEU-1..4 of each method's captions (`{name: captions}`), overall and,
    with `parts`, on each part of the images."""
    report = {"images": len(references),
              **{name: bleu_scores(captions, references) for name, captions in methods.items()}}
    for part in sorted(set(parts or ())):
        chosen = [i for i, p in enumerate(parts) if p == part]
        report[part] = _compare(
            {name: [captions[i] for i in chosen] for name, captions in methods.items()},
            [references[i] for i in chosen],
        )
    return report


def most_frequent_caption(captions, candidates=50, sample=500, seed=0):
    """The baseline that gives every image one caption: the most frequent
    training caption. Where several are equally frequent (on emoji every
    caption is unique), of the `candidates` among them whose words are most
    common, the one with the highest BLEU-4 against the captions of a
    sample of `sample` training images.

    >>> most_frequent_caption([["a dog"], ["a cat", "a dog"], ["two birds"]])
    'a dog'
    """
    import sacrebleu

    counts = collections.Counter(c for image in captions for c in image)
    words = collections.Counter(w for image in captions for c in image for w in c.lower().split())
    top = max(counts.values())
    tied = [c for c, n in counts.items() if n == top]
    if len(tied) == 1:
        return tied[0]

    def commonness(caption):
        tokens = caption.lower().split()
        return sum(words[w] for w in tokens) / max(len(tokens), 1)

    tied = sorted(tied, key=lambda c: (-commonness(c), c))[:candidates]
    rng = np.random.default_rng(seed)
    chosen = rng.choice(len(captions), min(sample, len(captions)), replace=False)
    references = [captions[i] for i in chosen]
    most = max(len(r) for r in references)
    streams = [[r[i] if i < len(r) else None for r in references] for i in range(most)]
    bleu = sacrebleu.BLEU()
    return max(tied, key=lambda c: bleu.corpus_score([c] * len(references), streams).score)


def _weights_fingerprint(model):
    """A digest of the weights `encode` reads (all but the memory)."""
    import keras

    digest = hashlib.blake2b(digest_size=16)
    for variable in model.weights:
        if variable.name not in ("memory_keys", "memory_tokens"):
            digest.update(np.ascontiguousarray(keras.ops.convert_to_numpy(variable)).tobytes())
    return digest.digest()


def _embeddings(model, split, image_size, batch_size=128):
    """`model.encode` of every image of `split`. The last result per split
    is kept while the weights stay the same: filling the memory and the
    nearest-image baselines (test, redrawn) encode the training images once."""
    import keras

    from rnnapps.tasks.captioning import pipeline

    kept = _GENERATORS.setdefault(model, {})
    if "encode" not in kept:
        from rnnapps.decoding import compiled

        kept["encode"] = compiled(model, lambda images: model.encode(images))
    encode = kept["encode"]
    cache = kept.setdefault("embeddings", {})  # id(split): (weak reference, key, embeddings)
    for number in [n for n, (ref, _, _) in cache.items() if ref() is None]:
        del cache[number]
    key = (image_size, len(split), _weights_fingerprint(model))
    ref, known_key, known = cache.get(id(split), (None, None, None))
    if ref is not None and ref() is split and known_key == key:
        return known
    chunks = [
        keras.ops.convert_to_numpy(encode(keras.ops.convert_to_tensor(batch)))
        for batch in pipeline.image_dataset(split, image_size).batch(batch_size).as_numpy_iterator()
    ]
    embeddings = np.concatenate(chunks) if chunks else np.zeros((0, model.feature_dim), "float32")
    cache[id(split)] = (weakref.ref(split), key, embeddings)
    return embeddings


def nearest_neighbour_captions(model, train, test, image_size):
    """The baseline that retrieves: for each test image, the first caption of
    the training image nearest to it (cosine) in `model`'s image embedding."""
    def normalised(x):
        return x / np.maximum(np.linalg.norm(x, axis=1, keepdims=True), 1e-12)

    train_x = normalised(_embeddings(model, train, image_size))
    test_x = normalised(_embeddings(model, test, image_size))
    nearest = np.concatenate([
        np.argmax(test_x[i:i + 1024] @ train_x.T, axis=1) for i in range(0, len(test_x), 1024)
    ]) if len(test_x) else np.zeros(0, int)
    return [train.captions[j][0] for j in nearest]


def redrawn_scores(model, decoding, train, test, constant=None, generate=None):
    """BLEU of the model and both baselines on `test`'s emoji redrawn
    (`data.redrawn`: 50-100 % size, anywhere, any background colour);
    `generate`: the `_generator` to caption with (default: a new one)."""
    from rnnapps.tasks.captioning import pipeline
    from rnnapps.tasks.captioning.data import redrawn

    moved = redrawn(test)
    size = decoding["image_size"]
    constant = constant or most_frequent_caption(train.captions)
    generate = generate or _generator(model, decoding)
    return _compare({
        "model": _caption_all(generate, pipeline.image_dataset(moved, size)),
        "nearest_neighbour": nearest_neighbour_captions(model, train, moved, size),
        "most_frequent": [constant] * len(moved),
    }, moved.captions)


def _caption_all(generate, images, batch_size=64):
    """Captions of a tf.data dataset of decoded images (or a list of encoded ones)."""
    captions = []
    for batch in images.batch(batch_size).as_numpy_iterator():
        strings, _ = generate(batch)
        captions.extend(s.decode("utf-8") for s in strings.numpy().tolist())
    return captions


class CaptioningTask(Task):
    name = "captioning"
    config_class = CaptioningConfig
    presets = PRESETS
    data_fields = ("data", "image_column", "caption_column", "batch_size", "seed")
    predict_inputs_are_paths = True
    predict_help = "image files to caption (PNG, JPEG, GIF or BMP; '-' reads paths from stdin)"

    def load_data(self, config):
        return load_data(config)

    def build_model(self, config, data):
        return build_model(config, data)

    def load_evaluation_data(self, config, trained=None):
        """The test split of the export's own data (`trained`, its training
        config, where known), as the run tested it; any other CSV whole, or
        its test rows where it has a `split` column. The export holds its
        tokenizer and image size: only the images and captions are needed."""
        own = trained is not None and _same_data(config.data, trained.data)
        splits = _splits(config, whole="split" if own else "test")
        return TaskData(
            train=None, validation=None, test=None,
            info={"name": _data_name(config.data), "sizes": _sizes(splits)}, raw=splits,
        )

    def load_checkpoint(self, path):
        from rnnapps.tasks.captioning import model  # noqa: F401  (registers ShowAndTell)

        return super().load_checkpoint(path)

    def serving_signature(self, model, info):
        import tensorflow as tf

        caption = captioner(model, info["decoding"], preprocessor_of(model, info))

        def serve(images):
            captions, scores = caption(images)
            return {"captions": captions, "scores": scores}

        return serve, [tf.TensorSpec([None], tf.string, name="images")]

    def after_fit(self, model, data):
        return remember(model, data.raw["train"], data.info["decoding"]["max_length"],
                        data.raw.get("preprocessor"))

    def test_metrics(self, model, data):
        from rnnapps.tasks.captioning import pipeline

        loss = float(model.evaluate(data.test, verbose=0))
        decoding = data.info["decoding"]
        test, train = data.raw["test"], data.raw["train"]
        references = test.captions
        # One generator for both splits: its compiled steps serve both.
        generate = _generator(model, decoding, data.raw.get("preprocessor"))
        hypotheses = _caption_all(generate, pipeline.image_dataset(test, decoding["image_size"]))
        self._hypotheses = hypotheses
        nearest = nearest_neighbour_captions(model, train, test, decoding["image_size"])
        self._nearest = nearest  # (what `benchmarks/captioning_rescore.py` compares)
        constant = most_frequent_caption(train.captions)
        report = _compare(
            {"model": hypotheses, "nearest_neighbour": nearest,
             "most_frequent": [constant] * len(references)},
            references, caption_parts(references, train.captions),
        )
        metrics = {
            **report.pop("model"),
            "loss": round(loss, 4),
            "perplexity": round(float(np.exp(loss)), 3),
            "images": report.pop("images"),
            "nearest_neighbour": report.pop("nearest_neighbour"),
            "most_frequent": {**report.pop("most_frequent"), "caption": constant},
            "parts": report,
            **{k: decoding.get(k) for k in ("beam_size", "length_penalty", "rerank", "consensus",
                                             "rerank_confidence", "retrieval")},
        }
        if test.glyphs is not None:
            metrics["redrawn"] = redrawn_scores(model, decoding, train, test, constant, generate)
        return metrics

    def example_predictions(self, model, data, count=6):
        hypotheses = getattr(self, "_hypotheses", None)
        if not hypotheses:
            return []
        test = data.raw["test"]
        lines = ["Example captions from the test split:"]
        for name, references, hypothesis in list(zip(test.names, test.captions, hypotheses))[:count]:
            lines.append(f"  {name}: {hypothesis!r} (reference: {references[0]!r})")
        return lines

    def add_arguments(self, command, parser):
        if command == "export":
            add_decoding_export_flags(parser)
            parser.add_argument("--rerank", dest="export_rerank", type=int, default=None,
                                help="training captions the beam's caption competes with "
                                     "(0 = off; default: the training run's)")
            parser.add_argument("--consensus", dest="export_consensus", type=float,
                                default=None, help="weight of the agreement with them "
                                "(default: the training run's)")
            parser.add_argument("--retrieval", dest="export_retrieval", type=float,
                                default=None, help="weight of the retrieved captions' votes "
                                "in beam search (0 = off; default: the training run's)")

    def export_info(self, info, options):
        info = decoding_export_info(info, options)
        decoding = dict(info["decoding"])
        rerank, consensus = options.get("export_rerank"), options.get("export_consensus")
        if rerank is not None:
            if rerank < 0:
                raise TaskError(f"--rerank must be at least 0. Received: {rerank}")
            if rerank and not decoding.get("rerank"):
                raise TaskError("--rerank needs a run trained with --rerank above 0 (its "
                                "checkpoint holds no training captions)")
            decoding["rerank"] = rerank
        if consensus is not None:
            if consensus < 0:
                raise TaskError(f"--consensus must be at least 0. Received: {consensus}")
            decoding["consensus"] = consensus
        retrieval = options.get("export_retrieval")
        if retrieval is not None:
            if not 0.0 <= retrieval <= 1.0:
                raise TaskError(f"--retrieval must be a weight between 0 and 1. "
                                f"Received: {retrieval}")
            decoding["retrieval"] = retrieval
        return {**info, "decoding": decoding}

    def _serve_all(self, loaded, encoded, batch_size=64):
        import tensorflow as tf

        serve = loaded.signatures["serving_default"]
        captions, scores = [], []
        encoded = list(encoded)
        for start in range(0, len(encoded), batch_size):
            out = serve(images=tf.constant(encoded[start:start + batch_size], tf.string))
            captions.extend(c.decode("utf-8") for c in out["captions"].numpy().tolist())
            scores.extend(float(s) for s in out["scores"].numpy())
        return captions, scores

    def evaluate_export(self, loaded, data, options=None):
        from rnnapps.tasks.captioning import pipeline

        test = data.raw["test"]
        captions, _ = self._serve_all(loaded, pipeline.encoded_images(test))
        metrics = {**bleu_scores(captions, test.captions), "images": len(captions)}
        if test.glyphs is not None:
            from rnnapps.tasks.captioning.data import redrawn

            moved = redrawn(test)
            captions, _ = self._serve_all(loaded, moved.images)
            metrics["redrawn"] = bleu_scores(captions, moved.captions)
        return metrics

    def predict_export(self, loaded, inputs, metadata=None, options=None):
        import tensorflow as tf

        encoded = []
        for path in inputs:
            try:
                encoded.append(pathlib.Path(path).read_bytes())
            except OSError as error:
                raise TaskError(f"cannot read {path}: {error.strerror or error}")
        predictions = []
        for path, data in zip(inputs, encoded):
            try:
                (caption,), (score,) = self._serve_all(loaded, [data])
            except tf.errors.InvalidArgumentError as error:
                reason = NOT_DECODABLE if NOT_DECODABLE in error.message else (
                    "could not decode the image: " + error.message.splitlines()[0][:200]
                )
                raise TaskError(f"{path}: {reason}")
            predictions.append({"image": str(path), "caption": caption, "score": round(score, 4)})
        return predictions

    def format_prediction(self, prediction):
        return f"{prediction['caption']}\t{prediction['score']:.4f}\t{prediction['image']}"



# === The Python API ===


def _image_split(images, captions=None, name="x"):
    """A `Split` of the user's images (file paths, encoded bytes, or a NumPy
    array of HxWx3 images) and captions (a string, or a list of strings,
    per image)."""
    import pathlib

    from rnnapps.task import raw_values

    if hasattr(images, "as_numpy_iterator"):  # tf.data.Dataset
        images = list(images.as_numpy_iterator())
    if hasattr(images, "to_numpy"):  # pandas Series
        images = images.to_numpy()
    if isinstance(images, (str, bytes)):
        raise TaskError(f"{name} must be a list of images, not one {type(images).__name__}; "
                        f"wrap it in a list")
    if isinstance(images, np.ndarray) and images.dtype != object:
        if images.ndim != 4 or images.shape[-1] != 3:
            raise TaskError(f"{name} as an array must hold HxWx3 images: shape (count, "
                            f"height, width, 3). Received: shape {images.shape}")
        arrays = images
    else:
        try:
            values = list(images)
        except TypeError:
            raise TaskError(f"{name} must be a list of image paths, encoded images or a NumPy "
                            f"array of images. Received: {type(images).__name__}")
        if values and all(isinstance(v, np.ndarray) and v.ndim == 3 for v in values):
            if len({v.shape for v in values}) > 1:
                raise TaskError(f"{name}: images given as arrays must share one size; "
                                f"pass encoded images or file paths for images of any size")
            arrays = np.stack(values)
        else:
            arrays = None
    if arrays is not None:
        count = len(arrays)
    else:
        count = len(values)
        kinds = {type(v) for v in values}
        if not kinds <= {str, bytes} or len(kinds) > 1:
            raise TaskError(f"{name} must hold file paths (str), encoded images (bytes) or "
                            f"HxWx3 arrays, one kind. Received: "
                            f"{', '.join(sorted(k.__name__ for k in kinds))}")
    if count == 0:
        raise TaskError(f"{name} is empty: pass at least one image")
    if captions is None:
        references = [[] for _ in range(count)]
    else:
        references = []
        for i, value in enumerate(raw_values(captions, "y")):
            texts = [value] if isinstance(value, str) else [
                v.decode("utf-8") if isinstance(v, bytes) else v for v in value]
            if not texts or not all(isinstance(t, str) and t.strip() for t in texts):
                raise TaskError(f"y[{i}] must be a non-empty caption or list of captions. "
                                f"Received: {value!r}")
            references.append(texts)
        if len(references) != count:
            raise TaskError(f"x and y must have one entry per image: {count} images, "
                            f"{len(references)} captions")
    names = [f"image {i}" for i in range(count)]
    if arrays is not None:
        import tensorflow as tf

        dataset = tf.data.Dataset.from_tensor_slices(np.asarray(arrays, "uint8"))
        return Split(captions=references, names=names, dataset=dataset)
    if kinds == {str}:
        missing = [v for v in values if not pathlib.Path(v).is_file()]
        if missing:
            raise TaskError(f"{name}: no such image file: {missing[0]}")
        return Split(captions=references, names=values, images=values, files=True)
    if any(not v for v in values):
        raise TaskError(f"{name}: an image is empty (0 bytes)")
    return Split(captions=references, names=names, images=values)


class Captioner:
    """Captions images: a Show and Tell model fitted on your images and captions.

    `from_data` fits the SentencePiece vocabulary on the captions
    (`CaptioningPreprocessor`) and builds the compiled model for a
    `CaptioningConfig` (keyword arguments override its fields); `fit`,
    `predict` and `evaluate` take raw images, preprocessed in tf.data, on
    any Keras backend; `export` writes the SavedModel (image bytes in,
    captions out), built on TensorFlow whatever backend trained it.

    Images are file paths, encoded images (bytes: PNG, JPEG, GIF, BMP) or a
    NumPy array `(count, height, width, 3)`; captions one string per image,
    or a list of strings per image.

    Attributes:
        model: the `keras.Model` on pixels and ids (`ShowAndTell` or
            `ShowAttendAndTell`; with `ensemble=N` above 1, a `CaptionEnsemble`
            of N of them).
        preprocessor: the `CaptioningPreprocessor`.
        config: the `CaptioningConfig`.

    Example:

    >>> import numpy as np
    >>> images = np.zeros((32, 16, 16, 3), "uint8")     # 32 images of 16x16 pixels
    >>> images[16:, :, :, 0] = 255                       # half of them red
    >>> captions = ["a black square"] * 16 + ["a red square"] * 16
    >>> captioner = Captioner.from_data(
    ...     images, captions, image_size=16, filters="8,16", decoder="show_and_tell",
    ...     units=16, embedding_dim=8, vocabulary_size=20, max_length=16, beam_size=2)
    >>> history = captioner.fit(images, captions, epochs=2, batch_size=8, verbose=0)
    >>> written = captioner.predict(images[[0, -1]])     # two captions (untrained: any text)
    >>> len(written), all(isinstance(caption, str) for caption in written)
    (2, True)
    >>> sorted(captioner.evaluate(images, captions))     # corpus BLEU against the references
    ['bleu1', 'bleu2', 'bleu3', 'bleu4', 'images']
    """

    def __init__(self, model, preprocessor, config):
        self.model = model
        self.preprocessor = preprocessor
        self.config = config

    @classmethod
    def from_data(cls, images, captions, config=None, **overrides):
        """A new `Captioner`: the vocabulary fitted on `captions`, the model built
        (untrained) for `config` (default `CaptioningConfig()`) with `overrides`."""
        import dataclasses

        config = dataclasses.replace(config or CaptioningConfig(), **overrides)
        if config.redraw:
            raise TaskError("redraw applies only to the emoji data of `rnnapps train "
                            "captioning`; leave it out (augment shifts and zooms any image)")
        config = dataclasses.replace(config, redraw=0.0, data="python")
        _check_config(config)
        split = _image_split(images, captions)
        preprocessor = _fit_preprocessor(config, split)
        model = _build_model(config, preprocessor, len(split),
                             sum(len(c) for c in split.captions))
        return cls(model, preprocessor, config)

    def _dataset(self, split, batch_size, shuffle_seed=None):
        return self.preprocessor.dataset(split, batch_size, shuffle_seed=shuffle_seed,
                                         cache=split.dataset is None)

    def fit(self, x, y, validation_data=None, epochs=None, batch_size=None, callbacks=None,
            verbose="auto"):
        """Trains on images `x` and captions `y`; returns the Keras `History`.

        `validation_data` is `(images, captions)`. With reranking
        (`config.rerank`), the model then remembers the first caption of
        each of `x`'s images (as many as it has room for).
        """
        train = _image_split(x, y)
        batch_size = batch_size or self.config.batch_size
        if batch_size < 1:
            raise ValueError(f"batch_size must be at least 1. Received: batch_size={batch_size}")
        validation = None
        if validation_data is not None:
            if not isinstance(validation_data, (tuple, list)) or len(validation_data) != 2:
                raise TaskError("validation_data must be a pair (images, captions)")
            validation = self._dataset(_image_split(*validation_data, name="validation x"),
                                       batch_size)
        history = self.model.fit(
            self._dataset(train, batch_size, shuffle_seed=self.config.seed),
            validation_data=validation, epochs=epochs or self.config.epochs,
            callbacks=callbacks, verbose=verbose, shuffle=False,
        )
        remember(self.model, train, self.config.max_length, self.preprocessor)
        return history

    def _decoding(self):
        return _decoding(self.config)

    def predict(self, x, batch_size=64):
        """The caption of each image of `x` (a list of strings)."""
        split = _image_split(x)
        return _caption_all(_generator(self.model, self._decoding(), self.preprocessor),
                            self.preprocessor.images(split), batch_size)

    def evaluate(self, x, y, batch_size=64):
        """Corpus BLEU-1..4 (`bleu_scores`) of the captions of images `x`
        against their reference captions `y`, and the `images` scored."""
        split = _image_split(x, y)
        hypotheses = _caption_all(_generator(self.model, self._decoding(), self.preprocessor),
                                  self.preprocessor.images(split), batch_size)
        return {**bleu_scores(hypotheses, split.captions), "images": len(split)}

    def export(self, export_dir="saved_models"):
        """Writes the SavedModel (`serving_default`: `images` (encoded bytes) in,
        `captions` and `scores` out) to `export_dir/captioning/<version>/`;
        returns that folder. Built on TensorFlow on any backend."""
        import json
        import pathlib
        import tempfile

        from rnnapps.task import export_checkpoint
        from rnnapps.task import export_metadata

        info = {"name": "python", "sizes": {"train": self.model.memory_size},
                **_preprocessing_info(self.config, self.preprocessor)}
        with tempfile.TemporaryDirectory(prefix="rnnapps-captioner-") as folder:
            folder = pathlib.Path(folder)
            self.model.save(str(folder / "model.keras"))
            (folder / "task.json").write_text(json.dumps(
                export_metadata(CaptioningTask(), self.config, info), default=str))
            return export_checkpoint(CaptioningTask.name, folder, export_dir)
