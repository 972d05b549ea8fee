"""The translation task from raw data to a served SavedModel, on the backend
Keras runs (TensorFlow or JAX); the export is always built on TensorFlow."""

import json
import pathlib

import pytest

from cli_support import assert_one_line_error
from cli_support import assert_serves_empty_batch
from cli_support import last_json
from rnnapps.task import TaskError
from rnnapps.tasks import translation
from rnnapps.tasks.translation import data as translation_data


def loads_saved_models_in_process(reason="loads a SavedModel in this process (tf.saved_model.load)"):
    return pytest.mark.tensorflow_only(reason=reason)

TINY = dict(
    train_size=400, vocabulary_size=300, units=16, embedding_dim=8, epochs=1,
    batch_size=32, beam_size=2, max_length=24,
)

# The quality test: the German and English CLDR names of the emoji (the emoji
# package, a dependency), short phrase pairs with a small shared vocabulary
# ("mann mit bart mittlere hautfarbe" -> "man: beard: medium skin tone"):
# 3,721 / 201 / 226 pairs after merging repeated German names. Learnable in
# four epochs of a tiny model (~40 s on 2 CPU cores).
QUALITY = dict(
    train_size=0, vocabulary_size=1000, units=32, embedding_dim=32, epochs=4, batch_size=32,
    learning_rate=5e-3, beam_size=1, max_length=24, patience=1,
    # The settings the margins below were measured with (the Ding default's
    # dropout and schedule changed after; these stay).
    dropout=0.2, lr_schedule="constant",
)
# Copying the German source scores BLEU 0.41 / chrF 17.96 on the test pairs;
# seeds 0-4 of the tiny model scored BLEU 12.1-15.5 / chrF 38.6-42.3, the same
# settings untrained (epochs=0) at most 0.13 / 4.6
# (benchmarks/translation_ci_margin.py): the smallest margin over the copy was
# 11.7 BLEU / 20.7 chrF, twice what the test asks.
QUALITY_MARGIN = {"bleu": 5.0, "chrf": 10.0}


def write_emoji_names(path):
    """Writes the emoji's German and English CLDR names as `source<TAB>target`
    lines (one per emoji that has both) to `path`; returns `path`."""
    import emoji

    emoji.config.load_language("de")
    lines = []
    for names in emoji.EMOJI_DATA.values():
        if "de" in names and "en" in names:
            german, english = (names[k].strip(":").replace("_", " ") for k in ("de", "en"))
            lines.append(f"{german}\t{english}\n")
    path.write_text("".join(lines), encoding="utf-8")
    return path


def copy_scores(pairs):
    """BLEU and chrF of copying each source: the identity "translation"."""
    return translation.corpus_scores([s for s, _ in pairs], [r for _, r in pairs])


# CI time: the JAX pass trains the tiny models of the Translator and CLI tests below, not this one.
@pytest.mark.tensorflow_only(reason="time budget: a 40 s training; the quality runs on TensorFlow in CI")
def test_tiny_model_beats_copying_the_source_on_emoji_names(tmp_path):
    from rnnapps.task import train

    data = write_emoji_names(tmp_path / "emoji_de_en.tsv")
    config = translation.TranslationConfig(
        data=str(data), export_dir=str(tmp_path / "exports"), **QUALITY
    )
    result = train(translation.task, config, verbose=0, log=lambda *lines: None)
    test = translation.load_examples(str(data))["test"]
    copying = copy_scores(test)
    assert 0.2 < copying["bleu"] < 1 and 15 < copying["chrf"] < 21  # the data is what it was
    metrics = result["metrics"]
    assert metrics["sentences"] == len(test) > 200
    for key, margin in QUALITY_MARGIN.items():
        assert metrics[key] >= copying[key] + margin, (key, metrics, copying)


DING_LINES = [
    "# Version :: devel",
    "Aal {m} [zool.] | Aale {pl} :: eel | eels",
    "Das Abendessen hat mir gut geschmeckt. :: I really enjoyed my supper.",
    "Wie spät ist es? {adv}; Wieviel Uhr ist es? :: What time is it now?; What's the time, please?",
    "etw. zusammenklammern | Er hat die Blätter zusammengeklammert. :: to clamp sth. together | "
    "He clamped the sheets together firmly.",
    "Zu kurz. :: Too short.",
    "Ungleich | Teile. :: one part | two | three",
]


def test_parse_ding_keeps_aligned_sentences_only():
    pairs = translation_data.parse_ding(DING_LINES)
    assert pairs == [
        ("Das Abendessen hat mir gut geschmeckt.", ["I really enjoyed my supper."]),
        ("Wie spät ist es?", ["What time is it now?", "What's the time, please?"]),
        ("Er hat die Blätter zusammengeklammert.", ["He clamped the sheets together firmly."]),
    ]


def test_dictionary_lookup_never_learns_a_held_out_source(tmp_path, monkeypatch):
    ding_file = tmp_path / "de-en"
    ding_file.write_text("\n".join(DING_LINES + [
        "Abendessen {n} | Abendessen {pl} :: supper | suppers",
        "schmecken {vi} | geschmeckt :: to taste | tasted",
        "Teile {pl} :: parts",
        "Zu kurz. :: Too short.",
    ]) + "\n", encoding="utf-8")
    monkeypatch.setenv("RNNAPPS_DING", str(ding_file))
    splits = {"train": [], "validation": [("Teile", ["Parts"])], "test": [("Zu kurz.", ["Too short."])]}
    lookup = translation.dictionary_lookup("ding", splits)
    assert lookup.translate("Das Abendessen hat geschmeckt.") == "Das supper hat tasted."
    assert lookup.word("Aale") == "eels" and lookup.word("aal") == "eel"  # as written, then lower-cased
    # Single words only, and no entry whose German side is a held-out source.
    assert "Teile" not in lookup.entries and "Zu kurz." not in lookup.entries
    assert lookup.word("Teile") == "Teile"
    # Only for German -> English data.
    assert translation.dictionary_lookup("pairs.tsv", splits) is None
    assert translation.dictionary_lookup("ted_hrlr_translate/pt_to_en", splits) is None
    assert translation.dictionary_lookup("wmt14_translate/de-en", splits) is not None


def test_dictionary_pairs_for_training_leave_out_every_held_out_source():
    # Sentences that split_pairs sends to validation/test (hash bucket 0 or 1)
    # or to train, whichever way this dictionary's lines come.
    candidates = [f"Das ist Satz Nummer {i}." for i in range(200)]
    held = next(c for c in candidates if translation_data._bucket(c) < 2)
    kept = next(c for c in candidates if translation_data._bucket(c) >= 2)
    lines = DING_LINES + [
        "Teile {pl} | Teil {n} :: parts | part",
        f"Satz {{m}} | {held}; Ein Satz. :: sentence | That is the sentence.",
        f"{kept} :: That is a sentence.",
        "Haus {n}; Heim {n} (eigenes) :: house; home",
        "Teil {n} :: part",
    ]
    pairs = translation_data.parse_entries(lines, exclude=["TEILE ", "zu  kurz."])
    sources = [s for s, _ in pairs]
    assert ("Aal", "eel") in pairs and ("Aale", "eels") in pairs  # every aligned part
    assert ("Haus", "house") in pairs and ("Heim", "house") in pairs  # every German alternative
    assert ("etw. zusammenklammern", "clamp sth. together") in pairs
    assert ("Das Abendessen hat mir gut geschmeckt.", "I really enjoyed my supper.") in pairs
    # Held out: the excluded sources (as split_pairs compares them) ...
    assert "Teile" not in sources and "Zu kurz." not in sources
    # ... a sentence hashed to validation/test, and every alternative of its part ...
    assert held not in sources and "Ein Satz." not in sources
    # ... but not the rest of its line, nor a sentence hashed to train.
    assert ("Satz", "sentence") in pairs and (kept, "That is a sentence.") in pairs
    assert sources.count("Teil") == 1  # each pair once


def test_ding_dictionary_pairs_hold_no_validation_or_test_source(ding):
    splits = translation.load_examples("ding")
    held_out = [s for split in ("validation", "test") for s, _ in splits[split]]
    pairs = translation_data.ding_entries(exclude=held_out)
    assert len(pairs) > 400_000
    keys = {" ".join(s.lower().split()) for s in held_out}
    assert not [g for g, _ in pairs if " ".join(g.lower().split()) in keys]
    assert all(translation_data._bucket(g) >= 2 for g, _ in pairs if g.endswith((".", "?", "!")))


def test_dictionary_pairs_join_the_sentences_in_a_fresh_sample_each_epoch():
    from rnnapps.tasks.translation.data import make_dataset
    from rnnapps.tasks.translation.preprocessor import TranslationPreprocessor

    sentences = [f"satz {i}" for i in range(10)]
    entries = [f"wort {i}" for i in range(200)]
    preprocessor = TranslationPreprocessor.from_texts(
        sentences + entries, ["sentence", "word"] * 40, 60, sequence_length=8)
    dataset = make_dataset(
        preprocessor, sentences, ["sentence"] * 10, 4, shuffle_seed=0,
        extra=(entries, ["word"] * 200, 5),
    )
    word = preprocessor.tokenizer.token_to_id("▁word")

    def epoch():
        targets = [row for _, y in dataset for row in y.numpy().tolist()]
        return len(targets), sum(row[0] == word for row in targets)

    assert epoch() == (15, 5) and epoch() == (15, 5)  # all sentences, 5 pairs, every epoch
    sources = [
        [tuple(row) for x, y in dataset for row, t in zip(x["source"].numpy().tolist(), y.numpy())
         if t[0] == word]
        for _ in range(3)
    ]
    assert len({frozenset(s) for s in sources}) > 1  # resampled
    with pytest.raises(ValueError, match="shuffle_seed"):
        make_dataset(preprocessor, sentences, sentences, 4, extra=(entries, entries, 5))


def test_training_batches_are_bucketed_by_tokens_and_padded_as_the_preprocessor_pads():
    import numpy as np

    from rnnapps.tasks.translation.data import make_dataset
    from rnnapps.tasks.translation.preprocessor import TranslationPreprocessor

    rng = np.random.default_rng(0)
    words = [f"w{i}" for i in range(40)]
    sources = [" ".join(rng.choice(words, rng.integers(1, 30))) for _ in range(320)]
    targets = [" ".join(rng.choice(words, rng.integers(1, 30))) for _ in range(320)]
    preprocessor = TranslationPreprocessor.from_texts(sources, targets, 60, sequence_length=40)
    train = make_dataset(preprocessor, sources, targets, 16, shuffle_seed=0)
    unsorted = make_dataset(preprocessor, sources, targets, 16)

    def rows(dataset):
        out = set()
        for x, y in dataset:
            for s, t_in, t_out in zip(*(a.numpy().tolist() for a in (x["source"], x["target_in"], y))):
                out.add(tuple(v for v in s if v) + (-1,) + tuple(v for v in t_in if v)
                        + (-1,) + tuple(v for v in t_out if v))
        return out

    # Every pair, once an epoch, with the ids the preprocessor gives it.
    assert rows(train) == rows(unsorted) and len(rows(train)) == 320
    padded = {"sorted": 0, "unsorted": 0}
    for name, dataset in (("sorted", train), ("unsorted", unsorted)):
        for x, y in dataset:
            for ids in (x["source"], x["target_in"], y):
                ids = ids.numpy()
                longest = int((ids != 0).sum(axis=1).max())
                assert ids.shape[1] == -(-longest // 8) * 8  # the preprocessor's padding
            padded[name] += x["target_in"].shape[1] * x["target_in"].shape[0]
    assert x["target_in"].shape[1] == y.shape[1]
    assert padded["sorted"] < 0.8 * padded["unsorted"]  # less padding computed
    first, second = ([y.numpy().tolist() for _, y in train] for _ in range(2))
    assert first != second  # reshuffled every epoch


def test_dictionary_pairs_reach_training_through_load_data(ding):
    import keras

    keras.utils.set_random_seed(0)
    config = translation.TranslationConfig(**{**TINY, "dictionary_pairs": 64})
    data = translation.load_data(config)
    sizes = data.info["sizes"]
    assert sizes["dictionary_pairs"] > 400_000 and sizes["dictionary_pairs_per_epoch"] == 64
    assert sum(int(y.shape[0]) for _, y in data.train) == sizes["train_used"] + 64
    # Validation and test are the sentences alone.
    assert sum(int(y.shape[0]) for _, y in data.test) == sizes["test"]


def test_perplexity_leaves_out_label_smoothing_and_padding():
    import keras
    import numpy as np
    import tensorflow as tf

    from rnnapps.tasks.translation.model import Seq2Seq
    from rnnapps.tasks.translation.model import SmoothedCrossentropy

    keras.utils.set_random_seed(0)
    rng = np.random.default_rng(0)
    source = rng.integers(4, 20, size=(10, 5)).astype("int32")
    target = rng.integers(4, 20, size=(10, 4)).astype("int32")
    target[:, 3] = 0  # padding
    dataset = tf.data.Dataset.from_tensor_slices(
        ({"source": source, "target_in": target}, target)
    ).batch(4)
    model = Seq2Seq(20, 20, embedding_dim=8, units=8, attention="luong", copy=True)
    model.compile(loss=SmoothedCrossentropy(0.0))
    plain = float(np.exp(model.evaluate(dataset, verbose=0)))
    assert translation.perplexity(model, dataset) == pytest.approx(plain, rel=1e-4)
    model.compile(loss=SmoothedCrossentropy(0.3))  # the training loss moves, perplexity not
    assert float(np.exp(model.evaluate(dataset, verbose=0))) > plain * 1.01
    assert translation.perplexity(model, dataset) == pytest.approx(plain, rel=1e-4)


def test_gloss_layer_is_the_lookup_in_tensorflow_and_saves_its_entries(tmp_path):
    import keras
    import numpy as np
    import tensorflow as tf

    from rnnapps.tasks.translation import lexicon
    from rnnapps.tasks.translation.model import Seq2Seq

    lookup = lexicon.Lexicon({"das": "the", "Haus": "house", "alt": "old", "Straße": "street"})
    gloss = lookup.gloss_layer()
    texts = ["Das Haus ist alt.", "", "  DAS   Haus,alt!", "Die Straße (Nr. 5)", "Ärger/Ölpreis"]
    expected = [lookup.gloss(t) for t in texts]
    assert expected[0] == "the house ist old ." and expected[1] == ""
    assert [g.decode() for g in gloss(tf.constant(texts)).numpy()] == expected
    in_data = tf.data.Dataset.from_tensor_slices(texts).batch(2).map(gloss)
    assert [g.decode() for batch in in_data for g in batch.numpy()] == expected
    # Kept with the model in its preprocessor (with the tokenizer), entries
    # saved as an asset.
    from rnnapps.tasks.translation.preprocessor import TranslationPreprocessor

    preprocessor = TranslationPreprocessor.from_texts(
        texts * 5, expected * 5, 60, gloss=gloss, sequence_length=8)
    size = preprocessor.vocabulary_size
    model = Seq2Seq(size, size, embedding_dim=4, units=4, attention="luong", copy=True,
                    preprocessor=preprocessor)
    model.build()
    model.save(tmp_path / "model.keras")
    reloaded = keras.saving.load_model(tmp_path / "model.keras").preprocessor
    assert reloaded.gloss.entries == lookup.entries
    assert [g.decode() for g in reloaded.gloss(tf.constant(texts)).numpy()] == expected
    assert reloaded.glossed_strings(texts[:1]) == ["Das Haus ist alt. = the house ist old ."]
    assert reloaded.source_sequence_length == 16 and reloaded.sequence_length == 8
    np.testing.assert_array_equal(reloaded.encode_source(texts).numpy(),
                                  preprocessor.encode_source(texts).numpy())


def test_default_data_is_the_ding_dictionary_with_disjoint_sources(ding):
    splits = translation.load_examples("ding")
    sizes = {k: len(v) for k, v in splits.items()}
    assert 14_000 < sizes["train"] < 17_000 and 600 < sizes["test"] < 1100
    keys = {
        split: {" ".join(s.lower().split()) for s, _ in pairs} for split, pairs in splits.items()
    }
    assert not keys["train"] & keys["test"] and not keys["train"] & keys["validation"]
    assert not keys["validation"] & keys["test"]
    assert all(r and all(t.endswith((".", "?", "!")) for t in r) for _, r in splits["test"])
    assert translation.load_examples("ding")["test"] == splits["test"]  # deterministic


def test_missing_ding_names_the_debian_package(monkeypatch, tmp_path):
    monkeypatch.setenv("RNNAPPS_CACHE", str(tmp_path))
    monkeypatch.delenv("RNNAPPS_DING", raising=False)
    monkeypatch.setattr(translation_data, "DING_FILE", pathlib.PurePosixPath("nowhere/de-en"))
    with pytest.raises(TaskError, match="trans-de-en") as error:
        translation.load_examples("ding")
    assert "apt-get install trans-de-en" in str(error.value)


@pytest.mark.parametrize("name", ["wmt14_translate/de-en", "ted_hrlr_translate/pt_to_en"])
def test_tfds_loaders_with_mock_data(name):
    import tensorflow_datasets as tfds

    with tfds.testing.mock_data(num_examples=30):
        splits = translation.load_examples(name)
    assert set(splits) == {"train", "validation", "test"}
    assert all(len(pairs) > 0 for pairs in splits.values())
    source, references = splits["test"][0]
    assert isinstance(source, str) and isinstance(references[0], str)


def test_tsv_file_with_header_and_repeated_sources(tmp_path):
    lines = ["source\ttarget"] + [f"Satz Nummer {i}.\tSentence number {i}.\textra" for i in range(300)]
    lines.append("satz  nummer 7.\tSentence no. 7.")
    path = tmp_path / "pairs.tsv"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    splits = translation.load_examples(str(path))
    assert sum(len(p) for p in splits.values()) == 300
    merged = [r for split in splits.values() for s, r in split if s == "Satz Nummer 7."]
    assert merged == [["Sentence number 7.", "Sentence no. 7."]]


@pytest.mark.parametrize(
    "content, message",
    [
        (None, "no such data file"),
        ("Hallo Welt.\n", "line 1: expected source<TAB>target"),
        ("Hallo.\tHello.\nWelt.\t\n", "line 2: empty source or target"),
        (b"\xff\xfe\x00bad", "not UTF-8"),
        ("", "holds no sentence pairs"),
    ],
)
def test_bad_tsv_gives_a_clear_error(tmp_path, content, message):
    path = tmp_path / "pairs.tsv"
    if isinstance(content, bytes):
        path.write_bytes(content)
    elif content is not None:
        path.write_text(content, encoding="utf-8")
    with pytest.raises(TaskError, match=message):
        translation.load_examples(str(path))


def test_a_split_column_splits_a_tsv_file_and_evaluation_scores_a_file_whole(tmp_path):
    lines = ["source\ttarget\tsplit"] + [
        f"Satz Nummer {i}.\tSentence number {i}.\t{'train' if i < 80 else 'Validation' if i < 90 else 'test'}"
        for i in range(100)
    ] + ["satz  nummer 95.\tSentence no. 95.\ttest"]
    path = tmp_path / "pairs.tsv"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    splits = translation.load_examples(str(path))
    assert {k: len(v) for k, v in splits.items()} == {"train": 80, "validation": 10, "test": 10}
    assert ("Satz Nummer 95.", ["Sentence number 95.", "Sentence no. 95."]) in splits["test"]
    # `rnnapps evaluate --data FILE`: the test rows of a file with a split column ...
    pairs, name = translation_data.evaluation_pairs(str(path))
    assert pairs == splits["test"] and name == "pairs.tsv (its test rows)"
    # ... and the whole of a file without one (not the tenth its hash puts in test).
    plain = tmp_path / "plain.tsv"
    plain.write_text("\n".join(line.rsplit("\t", 1)[0] for line in lines[1:]) + "\n", encoding="utf-8")
    pairs, name = translation_data.evaluation_pairs(str(plain))
    assert len(pairs) == 100 and name == "plain.tsv (whole file)"
    data = translation.task.load_evaluation_data(translation.TranslationConfig(data=str(plain)))
    assert data.info["sizes"]["test"] == 100 and data.raw["test"] == pairs
    # The training run's own file, the run known: scored on its test split.
    config = translation.TranslationConfig(data=str(plain))
    own = translation.task.load_evaluation_data(config, trained=config)
    assert own.raw["test"] == translation.load_examples(str(plain))["test"] and 0 < len(own.raw["test"]) < 20
    # A source in two splits, or an unknown split, is an error naming the line or source.
    path.write_text("\n".join(lines + ["Satz Nummer 3.\tSentence 3.\ttest"]) + "\n", encoding="utf-8")
    with pytest.raises(TaskError, match="appear in two splits"):
        translation.load_examples(str(path))
    path.write_text("\n".join(lines[:5] + ["Satz.\tSentence.\tdev"]) + "\n", encoding="utf-8")
    with pytest.raises(TaskError, match="line 6: the 'split' column must be one of"):
        translation.load_examples(str(path))


def emoji_dictionary(path):
    """A user's German -> English word dictionary (TSV) for the emoji names."""
    path.write_text(
        "# German -> English, a few words of the emoji names\nsource\ttarget\n"
        "mann\tman\nfrau\twoman\nmittlere\tmedium\nhautfarbe\tskin tone\n"
        "daumen hoch\tthumbs up\n", encoding="utf-8")
    return path


def test_own_dictionary_glosses_any_data_and_says_so(tmp_path, capsys):
    import keras

    data = write_emoji_names(tmp_path / "emoji_de_en.tsv")
    dictionary = emoji_dictionary(tmp_path / "words.tsv")
    keras.utils.set_random_seed(0)
    config = translation.TranslationConfig(
        **{**TINY, "train_size": 100, "dictionary_pairs": 3}, data=str(data),
        dictionary=str(dictionary),
    )
    loaded = translation.load_data(config)
    line = capsys.readouterr().out.strip().splitlines()[-1]
    assert line == (f"Dictionary gloss: on, from {dictionary} (4 words); the decoder copies "
                    "from the source and its gloss")
    assert loaded.info["dictionary"] == "gloss" and loaded.info["dictionary_file"] == "words.tsv"
    # The source is fed with its gloss, word by word (single words only: the
    # phrase "daumen hoch" does not gloss), in training and in the export's graph.
    import tensorflow as tf

    glossed = loaded.raw["gloss"](tf.constant(["mann mittlere hautfarbe", "daumen hoch"])).numpy()
    assert [g.decode() for g in glossed] == ["man medium skin tone", "daumen hoch"]
    # The dictionary's pairs, phrases included, can join the training pairs.
    assert loaded.info["sizes"]["dictionary_pairs"] == 5
    assert loaded.raw["lookup"].translate("frau mittlere hautfarbe") == "Woman medium skin tone"
    # Without a dictionary the same file trains without a gloss, and says why.
    translation.load_data(translation.TranslationConfig(**TINY, data=str(data)))
    line = capsys.readouterr().out.strip().splitlines()[-1]
    assert line.startswith("Dictionary gloss: off (the Ding dictionary glosses only ding")
    assert "give --dictionary FILE" in line


@pytest.mark.parametrize(
    "content, message",
    [
        (None, "no such dictionary file: words.tsv"),
        ("mann\tman\nfrau woman\n", "dictionary words.tsv, line 2: expected source word<TAB>target word"),
        ("mann\t\n", "line 1: expected source word<TAB>target word"),
        ("", "dictionary words.tsv holds no entries"),
        ("# comments only\n\n", "dictionary words.tsv holds no entries"),
        (b"\xff\xfe\x00bad", "dictionary words.tsv is not UTF-8"),
    ],
)
def test_bad_dictionary_is_one_line_and_writes_nothing(tmp_path, content, message, run_here):
    pairs = tmp_path / "pairs.tsv"
    pairs.write_text("".join(f"Satz {i}.\tSentence {i}.\n" for i in range(60)), encoding="utf-8")
    dictionary = tmp_path / "words.tsv"
    if isinstance(content, bytes):
        dictionary.write_bytes(content)
    elif content is not None:
        dictionary.write_text(content, encoding="utf-8")
    work = tmp_path / "work"
    work.mkdir()
    proc = run_here("train", "translation", "--data", str(pairs), "--dictionary", "../words.tsv",
                    "--export-dir", "out", cwd=work)
    assert_one_line_error(proc, message.replace("words.tsv", "../words.tsv"), work)


@loads_saved_models_in_process(reason="evaluate and predict load the SavedModel in this process")
def test_train_evaluate_predict_export_from_the_command_line(tmp_path, ding, run_here):
    def here(*args):  # the commands run in this process: no TensorFlow start-up each
        return run_here(*args, cwd=tmp_path)

    flags = [f"--{k.replace('_', '-')}={v}" for k, v in TINY.items()]
    result = last_json(here("train", "translation", *flags))
    export = tmp_path / result["export_path"]
    assert export == tmp_path / "saved_models" / "translation" / "1"
    metrics = result["metrics"]
    assert metrics["sentences"] == result["data"]["sizes"]["test"] > 500
    assert metrics["beam_size"] == 2 and metrics["perplexity"] > 1
    # The baseline to beat, on the same references: the Ding dictionary word by word.
    lookup = metrics["dictionary_lookup"]
    assert 2 < lookup["bleu"] < 10 and 20 < lookup["chrf"] < 40
    metadata = json.loads((export / "assets.extra" / "rnnapps.json").read_text())
    assert metadata["data"]["decoding"]["beam_size"] == 2

    # The export decodes the test split exactly as the trained model did.
    evaluated = last_json(here("evaluate", "translation", "--model", str(export)))
    assert evaluated["metrics"]["bleu"] == metrics["bleu"]
    assert evaluated["metrics"]["dictionary_lookup"] == lookup
    assert evaluated["metrics"]["chrf"] == metrics["chrf"]
    # Your own file: scored whole. Here the test split written out as a
    # user's TSV (one line per reference): the same sentences, the same scores.
    test = translation.load_examples("ding")["test"]
    own = tmp_path / "held_out.tsv"
    own.write_text("".join(f"{s}\t{r}\n" for s, refs in test for r in refs), encoding="utf-8")
    whole = last_json(here("evaluate", "translation", "--model", str(export), "--data", str(own)))
    assert whole["data"] == {"name": "held_out.tsv (whole file)", "sizes": {"test": len(test)}}
    assert {k: whole["metrics"][k] for k in ("bleu", "chrf")} == {
        k: metrics[k] for k in ("bleu", "chrf")}
    assert "dictionary_lookup" not in whole["metrics"]  # a file's name says no language pair

    long_text = "Das ist ein sehr langer Satz. " * 200
    predicted = last_json(here(
        "predict", "translation", "--model", str(export), "Wie spät ist es?", "", long_text,
    ))["predictions"]
    assert [p["text"] for p in predicted] == ["Wie spät ist es?", "", long_text]
    assert all(isinstance(p["translation"], str) and p["score"] <= 0 for p in predicted)

    # Re-export the checkpoint with greedy decoding: a new version, the setting saved.
    checkpoint = tmp_path / pathlib.Path(result["checkpoint"]).parent
    exported = last_json(here(
        "export", "translation", "--checkpoint", str(checkpoint), "--beam-size", "1",
        "--export-dir", str(tmp_path / "saved_models"),
    ))
    greedy = pathlib.Path(exported["export_path"])
    assert greedy.name == "2"
    saved = json.loads((greedy / "assets.extra" / "rnnapps.json").read_text())
    assert saved["data"]["decoding"]["beam_size"] == 1

    # Strings in, strings out, in a fresh process without rnnapps and without a GPU.
    script = f"""
import json, sys
import tensorflow as tf
import tensorflow_text  # registers the SentencePiece ops the graph uses
loaded = tf.saved_model.load({str(export)!r})
texts = ["Das Abendessen hat mir geschmeckt.", "", "x" * 100000, "Très bon café ☕"]
out = loaded.signatures["serving_default"](text=tf.constant(texts))
print(json.dumps({{"t": [t.decode() for t in out["translations"].numpy()],
                  "s": out["scores"].numpy().tolist(),
                  "rnnapps": any(m.startswith("rnnapps") for m in sys.modules)}}))
"""
    # An empty batch gives empty outputs on every CPU (the network never runs),
    # checked with oneDNN on and off in the same fresh processes as the script.
    served = assert_serves_empty_batch(export, tmp_path, {
        "translations": ([0], "string"), "scores": ([0], "float32"),
    }, script=script)
    assert served["rnnapps"] is False
    assert len(served["t"]) == 4 and all(isinstance(t, str) for t in served["t"])
    assert all(s <= 0 for s in served["s"])


@pytest.mark.parametrize(
    "args, message",
    [
        (["train", "translation", "--data", "missing.tsv"], "no such data file: missing.tsv"),
        (["train", "translation", "--data", "wmt99"], "unknown data 'wmt99'"),
        (["train", "translation", "--beam-size", "0"], "--beam-size must be at least 1"),
        (["train", "translation", "--max-length", "2"], "--max-length must be at least 4"),
        (["train", "translation", "--copy", "--attention", "none"], "--copy needs --attention"),
        (["train", "translation", "--data", "pairs.tsv", "--dictionary", "gloss"],
         "--dictionary gloss needs German -> English data"),
        (["train", "translation", "--dictionary", "missing.tsv"],
         "no such dictionary file: missing.tsv"),
        (["train", "translation", "--dictionary-pairs", "-1"], "--dictionary-pairs must be 0"),
        (["train", "translation", "--label-smoothing", "1"], "--label-smoothing must be in [0, 1)"),
        (["train", "translation", "--data", "pairs.tsv", "--dictionary-pairs", "100"],
         "--dictionary-pairs needs a dictionary"),
        (["predict", "translation", "--model", "nowhere", "Hallo"], "not an exported model"),
    ],
)
def test_cli_errors_are_one_line(tmp_path, args, message, run_here):
    assert_one_line_error(run_here(*args, cwd=tmp_path), message, tmp_path)


def test_small_vocabulary_request_is_lowered_for_a_small_corpus(tmp_path):
    from rnnapps.tasks.translation.preprocessor import TranslationPreprocessor

    preprocessor = TranslationPreprocessor.from_texts(
        ["ein kleiner Satz.", "noch ein Satz."] * 20, ["a small sentence."] * 40, 5000)
    assert 16 <= preprocessor.vocabulary_size < 5000


def test_cosine_schedule_falls_to_a_tenth_over_the_epoch_cap_of_the_training_pairs():
    import dataclasses

    from rnnapps.tasks.translation.preprocessor import TranslationPreprocessor
    from rnnapps.tasks.translation.task import make_model

    preprocessor = TranslationPreprocessor.from_texts(
        ["ein kleiner Satz.", "noch ein Satz."] * 20, ["a small sentence."] * 40, 60)
    config = translation.TranslationConfig(
        units=8, embedding_dim=8, epochs=3, batch_size=10, learning_rate=2e-3,
        dictionary="none")
    assert float(make_model(config, preprocessor, train_pairs=95).optimizer.learning_rate) == (
        pytest.approx(2e-3))
    cosine = dataclasses.replace(config, lr_schedule="cosine")
    # 95 pairs, 10 a step: 10 steps an epoch, 30 over the cap.
    schedule = make_model(cosine, preprocessor, train_pairs=95).optimizer.inner_optimizer
    rates = [float(schedule._learning_rate(step)) for step in (0, 15, 30, 45)]
    assert rates == pytest.approx([2e-3, 1.1e-3, 2e-4, 2e-4], rel=1e-5)


def test_presets_and_reverse_default():
    config = translation.TranslationConfig()
    # The default: Luong attention, copying, the dictionary's gloss, source in reading order.
    assert config.attention == "luong" and config.copies and config.dictionary == "auto"
    assert not config.reversed_source
    # Chosen on validation: tied embeddings, label smoothing, dropout 0.3, a
    # cosine schedule from 2e-3 over 30 epochs, beam 8, length penalty 1.5.
    assert config.tie_embeddings and config.label_smoothing == 0.1 and config.dropout == 0.3
    assert (config.learning_rate, config.lr_schedule, config.epochs) == (2e-3, "cosine", 30)
    assert (config.beam_size, config.length_penalty) == (8, 1.5)
    assert config.dictionary_pairs == 0
    plain = translation.PRESETS["ding_plain"]  # the model before all of this
    assert plain.reversed_source and not plain.copies and plain.dictionary == "none"
    assert not plain.tie_embeddings and plain.label_smoothing == 0.0
    assert translation.TranslationConfig(attention="luong", reverse=True).reversed_source
    assert not translation.TranslationConfig(attention="luong", copy=False).copies


# The Python API and the command line on the backend Keras runs (the JAX
# pass runs these too): a few hundred emoji names, a model of a few
# thousand weights, short sentences (few shapes for JAX to compile).
API_TINY = dict(vocabulary_size=120, units=16, embedding_dim=8, max_length=8, beam_size=2,
                batch_size=64, seed=0)


def emoji_pairs(tmp_path, count=256):
    pairs = translation.load_examples(str(write_emoji_names(tmp_path / "emoji_de_en.tsv")))
    return [(s, r[0]) for s, r in pairs["train"][:count]], pairs["test"][:32]


def test_translator_fits_predicts_evaluates_and_exports_raw_strings(tmp_path):
    import keras
    import numpy as np

    keras.utils.set_random_seed(0)
    train, test = emoji_pairs(tmp_path)
    sources = np.array([s for s, _ in train])  # arrays and lists alike
    translator = translation.Translator.from_data(
        (sources, [t for _, t in train]), dictionary={"mann": "man", "frau": "woman"},
        **API_TINY)
    assert translator.preprocessor is translator.model.preprocessor
    assert translator.config.units == 16 and translator.preprocessor.gloss is not None
    history = translator.fit(sources, [t for _, t in train], epochs=2, verbose=0,
                             validation_data=([s for s, _ in test], [r[0] for _, r in test]))
    assert len(history.history["val_loss"]) == 2
    assert history.history["loss"][1] < history.history["loss"][0]
    # (Few shapes: JAX compiles the beam search once per batch shape.)
    translations, scores = translator.predict(["mann", "frau mit bart", ""], return_scores=True)
    assert len(translations) == 3 and all(isinstance(t, str) for t in translations)
    assert all(s <= 0 for s in scores)
    metrics = translator.evaluate(["mann", "frau mit bart", "frau"], [["man"], "woman: beard", "woman"])
    assert set(metrics) == {"bleu", "chrf", "sentences"} and metrics["sentences"] == 3
    export = translator.export(tmp_path / "exports")
    assert export == tmp_path / "exports" / "translation" / "1"
    assert (export / "saved_model.pb").is_file()
    metadata = json.loads((export / "assets.extra" / "rnnapps.json").read_text())
    assert metadata["data"]["dictionary"] == "gloss" and metadata["config"]["units"] == 16


@pytest.mark.parametrize(
    "call, message",
    [
        (lambda: translation.Translator.from_data([]), "data is empty|sources is empty"),
        (lambda: translation.Translator.from_data([("ein Haus", "")]), r"targets\[0\] is an empty"),
        (lambda: translation.Translator.from_data((["a", "b"], ["x"])), "as many"),
        (lambda: translation.Translator.from_data([("a", "b")], unit=3), "unknown TranslationConfig"),
        (lambda: translation.Translator.from_data("ein Haus"), "not one str"),
    ],
)
def test_translator_rejects_bad_input_in_one_line(call, message):
    with pytest.raises((ValueError, TaskError), match=message):
        call()


def test_train_and_export_from_the_command_line_on_this_backend(tmp_path, run_here):
    import keras

    train, test = emoji_pairs(tmp_path, count=300)
    data = tmp_path / "pairs.tsv"
    data.write_text("source\ttarget\tsplit\n" + "".join(
        f"{s}\t{t}\ttrain\n" for s, t in train) + "".join(
        f"{s}\t{r[0]}\t{split}\n" for (s, r), split in zip(test, ["validation", "test"] * 16)),
        encoding="utf-8")
    flags = [f"--{k.replace('_', '-')}={v}" for k, v in API_TINY.items()]
    result = last_json(run_here("train", "translation", "--data", str(data), "--epochs", "1",
                                *flags, cwd=tmp_path))
    assert result["backend"] == keras.backend.backend()
    assert result["metrics"]["sentences"] == 16 and result["metrics"]["beam_size"] == 2
    assert (tmp_path / result["export_path"] / "saved_model.pb").is_file()
    assert result["examples"][0] == "Example translations from the test split:"


# Trains on JAX in a new process, saves the model's own translations of a
# few sentences and exports (the export is built on TensorFlow, in a third
# process, from the .keras file).
_TRAIN_ON_JAX = """
import json, pathlib, sys
import keras
sys.path.insert(0, {tests!r})
from test_translation import API_TINY, emoji_pairs
from rnnapps.tasks.translation import Translator
assert keras.backend.backend() == "jax"
keras.utils.set_random_seed(0)
folder = pathlib.Path({folder!r})
train, test = emoji_pairs(folder)
translator = Translator.from_data(train, dictionary={{"mann": "man"}}, **API_TINY)
translator.fit([s for s, _ in train], [t for _, t in train], epochs=3, verbose=0)
sources = [s for s, _ in test[:12]] + ["mann", ""]
translations, scores = translator.predict(sources, return_scores=True)
export = translator.export(folder / "exports")
print(json.dumps({{"sources": sources, "translations": translations, "scores": scores,
                  "export": str(export)}}))
"""


@loads_saved_models_in_process()
def test_export_of_weights_trained_on_jax_translates_as_the_jax_model(tmp_path):
    import os
    import subprocess
    import sys

    import numpy as np
    import tensorflow as tf
    import tensorflow_text  # noqa: F401  (the SentencePiece ops of the export)

    pytest.importorskip("jax")
    script = _TRAIN_ON_JAX.format(tests=str(pathlib.Path(__file__).parent), folder=str(tmp_path))
    proc = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                          timeout=1200, env={**os.environ, "KERAS_BACKEND": "jax"})
    assert proc.returncode == 0, proc.stderr[-3000:]
    on_jax = json.loads(proc.stdout.strip().splitlines()[-1])
    serve = tf.saved_model.load(on_jax["export"]).signatures["serving_default"]
    out = serve(text=tf.constant(on_jax["sources"]))
    assert [t.decode() for t in out["translations"].numpy()] == on_jax["translations"]
    np.testing.assert_allclose(out["scores"].numpy(), on_jax["scores"], rtol=1e-5, atol=1e-5)
    assert any(on_jax["translations"])  # something was learnt to compare
