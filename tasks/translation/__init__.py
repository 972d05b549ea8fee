"""Translation (many-to-many): source strings in, translated strings out.

An encoder-decoder LSTM (Sutskever, Vinyals & Le 2014) with Luong attention;
for German -> English, the source is fed with its word-by-word Ding dictionary
gloss, which the decoder may copy from (a pointer-generator). SentencePiece
subwords (keras-hub), tied embeddings, label smoothing, beam search with a
length penalty, BLEU and chrF with sacrebleu next to the dictionary lookup's;
the source can be fed backwards (`--reverse`). From the command line:
`rnnapps train translation`; from Python:

    from rnnapps.tasks import translation

    config = translation.TranslationConfig(epochs=5)
    data = translation.load_data(config)      # tf.data: ({"source", "target_in"}, target_out)
    model = translation.build_model(config, data)
    model.fit(data.train, validation_data=data.validation, epochs=config.epochs)
    translate = translation.translator(model, config)
    translate(["Wie spät ist es?"])           # strings in, strings out
"""

import pathlib

import numpy as np

from rnnapps.task import Task
from rnnapps.task import TaskData
from rnnapps.task import TaskError
from rnnapps.task import add_decoding_export_flags
from rnnapps.task import decoding_export_info
from rnnapps.tasks.translation.config import PRESETS
from rnnapps.tasks.translation.config import TranslationConfig
from rnnapps.tasks.translation.data import load_examples

__all__ = [
    "TranslationConfig", "PRESETS", "TranslationTask", "load_data", "load_examples",
    "build_model", "translator", "corpus_scores", "perplexity", "dictionary_lookup", "task",
]


# --dictionary values that are not a file.
DICTIONARY_CHOICES = ("auto", "gloss", "none")


def load_data(config, log=print):
    """`TaskData` for a `TranslationConfig`.

    Fits the SentencePiece tokenizer (one vocabulary for both languages)
    on the training split (it is `data.raw["tokenizer"]`) and leaves out training pairs whose target
    is longer than `max_length` tokens. `data.raw[split]` holds the
    `(source, references)` pairs, `data.raw["lookup"]` the Ding dictionary
    (`dictionary_lookup`) where the run glosses or adds its pairs, else
    `None`; `info` the sizes and the decoding settings the export uses.

    The dictionary (`config.dictionary`): a user's TSV file glosses any
    data; `auto` glosses German -> English data with the Ding dictionary.
    One line saying which, or why none, goes to `log`.

    Seed (`keras.utils.set_random_seed`) before calling this, not after: in
    TensorFlow, setting the seed clears the kernel caches, which deletes
    the SentencePiece model the datasets hold.
    """
    _check_backend()
    if config.max_length < 4:
        raise TaskError(f"--max-length must be at least 4. Received: {config.max_length}")
    if config.vocabulary_size < 16:
        raise TaskError(f"--vocabulary-size must be at least 16. Received: {config.vocabulary_size}")
    if config.beam_size < 1:
        raise TaskError(f"--beam-size must be at least 1. Received: {config.beam_size}")
    own_dictionary = config.dictionary not in DICTIONARY_CHOICES
    if config.dictionary == "gloss" and not _german_english(config.data):
        raise TaskError(
            "--dictionary gloss needs German -> English data (ding, or a tfds de-en dataset "
            f"with the Ding dictionary installed); for other data give --dictionary FILE (a "
            f"TSV of source word<TAB>target word). Received: --data {config.data}"
        )
    if config.copy and config.attention == "none":
        raise TaskError("--copy needs --attention luong or bahdanau (it copies where the decoder attends)")
    if config.dictionary_pairs < 0:
        raise TaskError(
            f"--dictionary-pairs must be 0 (none) or more. Received: {config.dictionary_pairs}"
        )
    if config.dictionary_pairs and not own_dictionary and not _german_english(config.data):
        raise TaskError(
            "--dictionary-pairs needs a dictionary: German -> English data (ding, or a tfds "
            "de-en dataset with the Ding dictionary installed) or --dictionary FILE. "
            f"Received: --data {config.data}"
        )
    if not 0.0 <= config.label_smoothing < 1.0:
        raise TaskError(
            f"--label-smoothing must be in [0, 1). Received: {config.label_smoothing}"
        )
    if config.train_size < 0:
        raise TaskError(f"--train-size must be 0 (all) or more. Received: {config.train_size}")
    own_entries = None
    if own_dictionary:  # read before the data: a bad file fails fast
        from rnnapps.tasks.translation.data import read_dictionary

        own_entries = read_dictionary(config.dictionary)
    splits = load_examples(config.data)
    if config.train_size:
        splits["train"] = splits["train"][: config.train_size]

    from rnnapps.tasks.translation import text

    gloss = None
    wants_gloss = own_dictionary or config.dictionary == "gloss" or (
        config.dictionary == "auto" and _german_english(config.data)
    )
    lookup = None
    if own_dictionary:
        lookup = own_lookup(own_entries, splits)
    elif wants_gloss or config.dictionary_pairs:
        lookup = dictionary_lookup(_data_name(config.data), splits)
        if lookup is None and (config.dictionary == "gloss" or config.dictionary_pairs):
            flag = "--dictionary gloss" if config.dictionary == "gloss" else "--dictionary-pairs"
            raise TaskError(
                f"{flag} needs the Ding dictionary (Debian package trans-de-en) for "
                f"{config.data}: run `python -m rnnapps.datasets.debian trans-de-en`"
            )
        # (auto: a tfds de-en dataset without the Ding dictionary installed
        # trains on its sentences alone.)
    if lookup is not None and wants_gloss:
        gloss = lookup.gloss_layer()
    log(_dictionary_line(config, lookup if wants_gloss else None))
    sources = {split: _glossed([s for s, _ in pairs], gloss) for split, pairs in splits.items()}
    train_sources = sources["train"]
    train_targets = [r[0] for _, r in splits["train"]]
    tokenizer = text.fit_tokenizer(train_sources + train_targets, config.vocabulary_size)
    lengths = text.token_lengths(tokenizer, train_targets)
    keep = lengths <= config.max_length - 1
    if not keep.any():
        raise TaskError(f"no training target is {config.max_length - 1} tokens or shorter")
    train_sources = [s for s, k in zip(train_sources, keep) if k]
    train_targets = [t for t, k in zip(train_targets, keep) if k]
    decoding = _decoding(config, glossed=gloss is not None)
    extra = None
    if config.dictionary_pairs:
        extra = _dictionary_pairs(splits, gloss, tokenizer, config, own_entries)
    datasets = {
        "train": text.make_dataset(
            train_sources, train_targets, tokenizer, config.max_length, config.batch_size,
            shuffle_seed=config.seed, source_max_length=decoding["source_max_length"],
            extra=extra,
        )
    }
    for split in ("validation", "test"):
        datasets[split] = text.make_dataset(
            sources[split], [r[0] for _, r in splits[split]], tokenizer,
            config.max_length, config.batch_size, source_max_length=decoding["source_max_length"],
        )
    sizes = {split: len(pairs) for split, pairs in splits.items()}
    sizes["train_used"] = len(train_sources)
    if extra is not None:
        sizes["dictionary_pairs"] = len(extra[0])
        sizes["dictionary_pairs_per_epoch"] = extra[2]
    name = _data_name(config.data)
    info = {
        "name": name,
        "sizes": sizes,
        "vocabulary_size": int(tokenizer.vocabulary_size()),
        "decoding": decoding,
        "dictionary": "none" if gloss is None else "gloss",
        # Where the gloss comes from: the Ding dictionary or the user's file.
        **({"dictionary_file": pathlib.Path(config.dictionary).name} if own_dictionary else {}),
    }
    return TaskData(
        train=datasets["train"], validation=datasets["validation"], test=datasets["test"],
        info=info,
        raw={**splits, "tokenizer": tokenizer, "gloss": gloss, "lookup": lookup},
    )


GLOSS_SEPARATOR = " = "


def _dictionary_pairs(splits, gloss, tokenizer, config, own_entries=None):
    """`(sources, targets, per epoch)`: the dictionary's word and phrase
    pairs for training (the user's `own_entries`, else the Ding
    dictionary's `data.ding_entries`; no held-out source), sources glossed
    like the sentences, targets of at most `max_length - 1` tokens."""
    from rnnapps.tasks.translation import data as data_module
    from rnnapps.tasks.translation import text

    held_out = {data_module._group_key(s) for s in _held_out_sources(splits)}
    if own_entries is not None:
        entries = [(s, t) for s, t in own_entries if data_module._group_key(s) not in held_out]
    else:
        entries = data_module.ding_entries(exclude=_held_out_sources(splits))
    targets = [english for _, english in entries]
    keep = text.token_lengths(tokenizer, targets) <= config.max_length - 1
    sources = _glossed([german for (german, _), k in zip(entries, keep) if k], gloss)
    targets = [t for t, k in zip(targets, keep) if k]
    return sources, targets, min(config.dictionary_pairs, len(sources))


def own_lookup(entries, splits):
    """The word-by-word `lexicon.Lexicon` of a user's dictionary entries
    (`data.read_dictionary`): single-word sources only (the gloss goes
    token by token), the first entry of a word winning, none whose source
    is a validation or test source."""
    from rnnapps.tasks.translation import data as data_module
    from rnnapps.tasks.translation import lexicon

    held_out = {data_module._group_key(s) for s in _held_out_sources(splits)}
    table = {}
    for source, target in entries:
        if len(lexicon.tokenize(source)) == 1 and data_module._group_key(source) not in held_out:
            table.setdefault(source, target)
    return lexicon.Lexicon(table)


def _dictionary_line(config, lookup):
    """One line for the training output: whether the source is glossed and
    copied from, from which dictionary, or why not."""
    copying = "the decoder copies from the source and its gloss" if config.copies else (
        "no copying (--no-copy or --attention none)")
    if lookup is not None:
        where = ("the Ding dictionary" if config.dictionary in DICTIONARY_CHOICES
                 else config.dictionary)
        return f"Dictionary gloss: on, from {where} ({len(lookup):,} words); {copying}"
    if config.dictionary == "none":
        why = "--dictionary none"
    elif _german_english(config.data):
        why = f"the Ding dictionary is not installed for {config.data}"
    else:
        why = (f"the Ding dictionary glosses only ding and tfds de-en data; give --dictionary "
               f"FILE, a TSV of source word<TAB>target word, to gloss {_data_name(config.data)}")
    copying = "the decoder copies from the source" if config.copies else copying
    return f"Dictionary gloss: off ({why}); {copying}"


def _glossed(sources, gloss, batch_size=4096):
    """`sources` followed by their glosses (`source = gloss`), computed by
    the same `DictionaryGloss` graph the export runs; unchanged without one."""
    if gloss is None:
        return list(sources)
    import tensorflow as tf

    glossed = []
    for start in range(0, len(sources), batch_size):
        batch = tf.constant(list(sources[start:start + batch_size]), tf.string)
        glossed += [g.decode("utf-8") for g in gloss(batch).numpy().tolist()]
    return [f"{s}{GLOSS_SEPARATOR}{g}" for s, g in zip(sources, glossed)]


def _data_name(data):
    """`ding`, a tfds name, or a file's name (not its path)."""
    from rnnapps.tasks.translation.data import TFDS_PREFIXES

    if data == "ding" or data.split("/")[0] in TFDS_PREFIXES:
        return data
    return pathlib.Path(data).name


def _is_file(data):
    """Whether `data` names a file (not `ding` or a tfds dataset)."""
    from rnnapps.tasks.translation.data import TFDS_PREFIXES

    return data != "ding" and data.split("/")[0] not in TFDS_PREFIXES


def _check_backend():
    import keras

    if keras.backend.backend() != "tensorflow":
        raise TaskError(
            "the translation task needs the TensorFlow backend (its tokenizer and decoder run "
            f"in TensorFlow graphs); KERAS_BACKEND is {keras.backend.backend()!r}. The Seq2Seq "
            "model and its beam search alone run on any backend"
        )


def _decoding(config, glossed=False):
    return {
        "beam_size": config.beam_size,
        "length_penalty": config.length_penalty,
        "max_length": config.max_length,
        # A glossed source is about twice as long.
        "source_max_length": config.max_length * (2 if glossed else 1),
    }


def build_model(config, data):
    """A compiled `Seq2Seq` for `config`, holding `data`'s tokenizer."""
    import keras

    from rnnapps.optimizers import ClippedOptimizer
    from rnnapps.tasks.translation.model import PAD_ID
    from rnnapps.tasks.translation.model import Seq2Seq
    from rnnapps.tasks.translation.model import SmoothedCrossentropy

    model = Seq2Seq(
        source_vocabulary_size=data.info["vocabulary_size"],
        target_vocabulary_size=data.info["vocabulary_size"],
        embedding_dim=config.embedding_dim,
        units=config.units,
        layers=config.layers,
        cell=config.cell,
        attention=None if config.attention == "none" else config.attention,
        reverse=config.reversed_source,
        dropout=config.dropout,
        copy=config.copies,
        tokenizer=data.raw["tokenizer"],
        gloss=data.raw.get("gloss"),
        tie_embeddings=config.tie_embeddings,
        name=f"translation_{config.cell}",
    )
    model.build()  # BackupAndRestore and the optimizer need the weights now
    model.compile(
        optimizer=ClippedOptimizer(
            keras.optimizers.Adam(config.learning_rate), clipnorm=config.clipnorm
        ),
        loss=(
            SmoothedCrossentropy(config.label_smoothing, ignore_class=PAD_ID)
            if config.label_smoothing
            else keras.losses.SparseCategoricalCrossentropy(from_logits=True, ignore_class=PAD_ID)
        ),
        # Variable-length batches: XLA would compile once per shape.
        jit_compile=False,
    )
    return model


def translator(model, decoding):
    """A `tf.function` `strings -> (translations, scores)`: the export's graph.

    Tokenizes, encodes, beam-searches and detokenizes in one graph
    (TensorFlow backend). `decoding` holds `beam_size`, `length_penalty`,
    `max_length` (a `TranslationConfig` or `info["decoding"]`).
    """
    import tensorflow as tf

    from rnnapps.tasks.translation import text

    if not isinstance(decoding, dict):
        decoding = _decoding(decoding, glossed=model.gloss is not None)

    def translate(texts):
        texts = tf.convert_to_tensor(texts, tf.string)
        if model.gloss is not None:
            texts = tf.strings.join([texts, model.gloss(texts)], separator=GLOSS_SEPARATOR)
        source = text.encode_source(
            model.tokenizer, texts, decoding.get("source_max_length", decoding["max_length"])
        )
        tokens, scores = model.translate(
            source,
            beam_size=decoding["beam_size"],
            max_length=decoding["max_length"],
            length_penalty=decoding["length_penalty"],
        )
        return text.decode_tokens(model.tokenizer, tokens), scores

    # One trace for every batch (a Python list of strings would retrace per call).
    return tf.function(translate, input_signature=[tf.TensorSpec([None], tf.string)])


def perplexity(model, dataset):
    """Per-token perplexity of `model` on a `({"source", "target_in"},
    target_out)` dataset: exp of the mean negative log-likelihood of the
    reference tokens, padding left out, without label smoothing (which the
    training loss includes)."""
    import keras
    import tensorflow as tf

    from rnnapps.tasks.translation.model import PAD_ID

    nll = keras.losses.SparseCategoricalCrossentropy(
        from_logits=True, ignore_class=PAD_ID, reduction="sum"
    )

    # Compiled once for every batch length (eager calls cost ~0.5 s a batch on CPU).
    @tf.function(reduce_retracing=True)
    def batch_sums(inputs, targets):
        count = tf.math.count_nonzero(tf.not_equal(targets, PAD_ID), dtype=tf.int64)
        return nll(targets, model(inputs, training=False)), count

    total, tokens = 0.0, 0
    for inputs, targets in dataset:
        batch_total, batch_tokens = batch_sums(inputs, targets)
        total += float(batch_total)
        tokens += int(batch_tokens)
    return float(np.exp(total / max(tokens, 1)))


def corpus_scores(hypotheses, references):
    """Detokenized corpus BLEU and chrF (sacrebleu) against all references.

    `references` is one list of reference strings per hypothesis (any
    number each).
    """
    import sacrebleu

    most = max(len(r) for r in references)
    streams = [[r[i] if i < len(r) else None for r in references] for i in range(most)]
    bleu = sacrebleu.corpus_bleu(hypotheses, streams)
    chrf = sacrebleu.corpus_chrf(hypotheses, streams)
    return {"bleu": round(bleu.score, 2), "chrf": round(chrf.score, 2)}


def dictionary_lookup(data_name, splits):
    """The word-by-word Ding dictionary lookup (`lexicon.Lexicon`) for the
    data `data_name`, built without any validation or test source, or `None`
    where it does not apply: data other than German -> English (a TSV file,
    other tfds pairs), or a tfds de-en dataset without the Ding dictionary
    installed.
    """
    from rnnapps.tasks.translation import data as data_module
    from rnnapps.tasks.translation import lexicon

    if not _german_english(data_name):
        return None
    try:
        path = data_module.ding_path()
    except TaskError:
        if data_name == "ding":
            raise
        return None
    try:
        with open(path, encoding="utf-8") as file:
            return lexicon.Lexicon(lexicon.parse_lexicon(file, exclude=_held_out_sources(splits)))
    except (OSError, UnicodeDecodeError) as error:
        raise TaskError(f"cannot read the Ding dictionary {path}: {error}")


def _held_out_sources(splits):
    """The validation and test sources, which no dictionary entry may be."""
    return [source for split in ("validation", "test") for source, _ in splits.get(split, [])]


def _german_english(data):
    return data == "ding" or data.endswith("/de-en")


def _lookup_scores(data):
    """`(scores, hypotheses)` of the dictionary lookup on the test split,
    or `(None, None)` where there is none (`dictionary_lookup`)."""
    lookup = data.raw.get("lookup")  # load_data's, where the run glosses
    if lookup is None:
        lookup = dictionary_lookup(_data_name(data.raw.get("data", data.info["name"])), data.raw)
    if lookup is None:
        return None, None
    pairs = data.raw["test"]
    hypotheses = [lookup.translate(source) for source, _ in pairs]
    return corpus_scores(hypotheses, [r for _, r in pairs]), hypotheses


def _translate_all(translate, sources, batch_size=128):
    outputs, scores = [], []
    for start in range(0, len(sources), batch_size):
        strings, batch_scores = translate(list(sources[start:start + batch_size]))
        outputs.extend(s.decode("utf-8") for s in np.asarray(strings).tolist())
        scores.extend(np.asarray(batch_scores).tolist())
    return outputs, scores


class TranslationTask(Task):
    name = "translation"
    config_class = TranslationConfig
    presets = PRESETS
    data_fields = ("data", "batch_size", "seed")
    predict_help = "sentences to translate ('-' reads one per line from stdin)"

    def load_data(self, config):
        return load_data(config)

    def build_model(self, config, data):
        return build_model(config, data)

    def load_evaluation_data(self, config, trained=None):
        """The pairs `rnnapps evaluate` scores (the export holds its
        tokenizer and gloss: no tokenizer is refitted, no pipeline built).

        A TSV file is scored whole (or its `test` rows, where it has a
        `split` column: `data.evaluation_pairs`), unless it is the data of
        the training run (`trained`, the export's config, where known):
        that is scored on the run's own test split. `ding` and tfds data,
        on their test split. The dictionary lookup baseline comes along
        where the run had a dictionary (`dictionary_lookup`, `own_lookup`).
        """
        from rnnapps.tasks.translation.data import evaluation_pairs
        from rnnapps.tasks.translation.data import read_dictionary

        name = _data_name(config.data)
        if _is_file(config.data) and (trained is None or trained.data != config.data):
            pairs, name = evaluation_pairs(config.data)
            # No train or validation source here: the lookup keeps every entry.
            splits = {"train": [], "validation": [], "test": pairs}
        else:
            splits = load_examples(config.data)
            if config.train_size:
                splits["train"] = splits["train"][: config.train_size]
        lookup = None
        if config.dictionary not in DICTIONARY_CHOICES and pathlib.Path(config.dictionary).is_file():
            lookup = own_lookup(read_dictionary(config.dictionary), splits)
        return TaskData(
            train=None, validation=None, test=None,
            info={"name": name, "sizes": {split: len(pairs) for split, pairs in splits.items()
                                          if pairs or split == "test"}},
            raw={**splits, "lookup": lookup, "data": config.data},
        )

    def load_checkpoint(self, path):
        from rnnapps.tasks.translation import model  # noqa: F401  (registers Seq2Seq)

        return super().load_checkpoint(path)

    def serving_signature(self, model, info):
        import tensorflow as tf

        translate = translator(model, info["decoding"])

        def serve(text):
            translations, scores = translate(text)
            return {"translations": translations, "scores": scores}

        return serve, [tf.TensorSpec([None], tf.string, name="text")]

    def _test_scores(self, translate, data, limit=None):
        pairs = data.raw["test"][:limit] if limit else data.raw["test"]
        hypotheses, _ = _translate_all(translate, [s for s, _ in pairs])
        return corpus_scores(hypotheses, [r for _, r in pairs]), hypotheses

    def test_metrics(self, model, data):
        loss = model.evaluate(data.test, verbose=0)  # the training objective (smoothed)
        translate = translator(model, data.info["decoding"])
        scores, hypotheses = self._test_scores(translate, data)
        self._hypotheses = hypotheses
        lookup, self._lookup_hypotheses = _lookup_scores(data)
        return {
            **scores,
            "loss": round(float(loss), 4),
            "perplexity": round(perplexity(model, data.test), 3),
            "sentences": len(hypotheses),
            **{k: v for k, v in data.info["decoding"].items() if not k.endswith("max_length")},
            # The baseline to beat: the Ding dictionary, word by word.
            **({"dictionary_lookup": lookup} if lookup else {}),
        }

    def example_predictions(self, model, data, count=5):
        hypotheses = getattr(self, "_hypotheses", None)
        if not hypotheses:
            return []
        lookups = getattr(self, "_lookup_hypotheses", None) or [None] * len(hypotheses)
        lines = ["Example translations from the test split:"]
        for (source, references), hypothesis, lookup in zip(data.raw["test"][:count], hypotheses, lookups):
            lines += [f"  source:    {source}", f"  output:    {hypothesis}"]
            if lookup is not None:
                lines.append(f"  lookup:    {lookup}")
            lines.append(f"  reference: {references[0]}")
        return lines

    def add_arguments(self, command, parser):
        if command == "export":
            add_decoding_export_flags(parser, length_penalty=True)

    def export_info(self, info, options):
        return decoding_export_info(info, options)

    def evaluate_export(self, loaded, data, options=None):
        serve = loaded.signatures["serving_default"]

        def translate(texts):
            import tensorflow as tf

            out = serve(text=tf.constant(texts, tf.string))
            return out["translations"].numpy(), out["scores"].numpy()

        scores, _ = self._test_scores(translate, data)
        lookup, _ = _lookup_scores(data)
        return {
            **scores, "sentences": len(data.raw["test"]),
            **({"dictionary_lookup": lookup} if lookup else {}),
        }

    def predict_export(self, loaded, inputs, metadata=None, options=None):
        import tensorflow as tf

        out = loaded.signatures["serving_default"](text=tf.constant(list(inputs), tf.string))
        translations = [t.decode("utf-8") for t in out["translations"].numpy()]
        return [
            {"text": text, "translation": translation, "score": round(float(score), 4)}
            for text, translation, score in zip(inputs, translations, out["scores"].numpy())
        ]

    def format_prediction(self, prediction):
        return f"{prediction['translation']}\t{prediction['score']:.4f}\t{prediction['text'][:100]}"


task = TranslationTask()
