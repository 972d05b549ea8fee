"""The next-word task: data, the language model, the export, the CLI and the
Python API (`NextWordPredictor`), on the TensorFlow and the JAX pass."""

import json
import os
import pathlib
import subprocess
import sys

import numpy as np
import pytest

from cli_support import assert_one_line_error
from cli_support import assert_serves_empty_batch
from cli_support import last_json
from cli_support import run_cli
from rnnapps.task import TaskError

# The SavedModel is loaded in this process: TensorFlow by nature.
loads_the_export = pytest.mark.tensorflow_only(reason="loads the SavedModel in this process")
# The JAX pass trains the task in the cheaper tests marked `on_any_backend` below.
time_budget = pytest.mark.tensorflow_only(reason="time budget: the JAX pass trains smaller")

TINY = ["--vocabulary-size", "600", "--embedding-dim", "16", "--units", "24", "--epochs", "1",
        "--batch-size", "32", "--ngram-order", "3"]


@pytest.fixture(scope="module")
def sentences_file(tmp_path_factory, english_text):
    """2,000 real WordNet sentences as a user's text file, three to a line."""
    from rnnapps.datasets import english

    sentences = english.wordnet_sentences()[:2000]
    path = tmp_path_factory.mktemp("data") / "english.txt"
    path.write_text("\n".join(" ".join(sentences[i:i + 3]) for i in range(0, 2000, 3)) + "\n")
    return path


@pytest.fixture(scope="module")
def trained(tmp_path_factory, sentences_file):
    """`rnnapps train next_word` on the text file: (folder, result JSON)."""
    cwd = tmp_path_factory.mktemp("run")
    result = last_json(run_cli("train", "next_word", "--data", str(sentences_file), *TINY, cwd=cwd))
    return cwd, result


# === Data ===


def test_text_file_is_cut_into_sentences_with_a_deterministic_split(sentences_file):
    from rnnapps.tasks.next_word import data

    sentences = data.load_sentences(str(sentences_file))
    assert 1900 <= len(sentences) <= 2100  # three per line, cut again
    splits = data._splits(sentences)
    assert sum(len(v) for v in splits.values()) == len(sentences)
    assert not set(splits["train"]) & set(splits["test"])
    assert 40 < len(splits["test"]) < 180 and 40 < len(splits["validation"]) < 180
    assert list(data._splits(sentences)["test"]) == list(splits["test"])


def test_vocabulary_ids_and_pairs():
    import tensorflow as tf

    from rnnapps.language_model import sentence_batches
    from rnnapps.language_model import token_ids
    from rnnapps.tasks.next_word import data

    vocabulary = data.fit_vocabulary(["the cat sat", "the dog sat", "the cat"], 7)
    # Ids: 0 padding, 1 [UNK], 2 <s>, 3 </s>, then the words by frequency.
    assert vocabulary[:2] == ["<s>", "</s>"] and vocabulary[2:] == ["the", "sat", "cat"]
    ids = token_ids(["The cat ran!", "...", "the dog"], vocabulary, max_length=2)
    assert [r.tolist() for r in ids] == [[4, 6], [4, 1]]  # cut to 2 words; '...' dropped
    x, y = next(iter(sentence_batches(ids, batch_size=4, fixed_shapes=False)))
    assert sorted(x.numpy().tolist()) == [[2, 4, 1], [2, 4, 6]]
    assert sorted(y.numpy().tolist()) == [[4, 1, 3], [4, 6, 3]]
    # Fixed shapes (JAX's default): padded to the batch size too, with rows
    # of padding only, which no loss counts.
    x, y = next(iter(sentence_batches(ids, batch_size=4, fixed_shapes=True)))
    assert sorted(x.numpy().tolist()) == [[0, 0, 0], [0, 0, 0], [2, 4, 1], [2, 4, 6]]
    assert sorted(y.numpy().tolist()) == [[0, 0, 0], [0, 0, 0], [4, 1, 3], [4, 6, 3]]
    for fixed_shapes in (False, True):
        dataset = sentence_batches([np.array([4])] * 70, batch_size=32, fixed_shapes=fixed_shapes)
        assert int(dataset.cardinality()) == 3 == len(list(dataset))
        assert tf.data.experimental.cardinality(dataset) > 0
    # Fixed shapes: one per length bucket, whatever the lengths in a batch.
    rng = np.random.default_rng(0)
    ids = [rng.integers(4, 9, size=n) for n in rng.integers(1, 41, size=500)]
    batches = list(sentence_batches(ids, batch_size=16, fixed_shapes=True))
    assert {tuple(x.shape) for x, _ in batches} == {(16, n) for n in (7, 11, 15, 23, 31, 41)}
    assert sum(int((y.numpy() != 0).sum()) for _, y in batches) == sum(len(r) + 1 for r in ids)


def test_the_preprocessor_reads_words_as_the_vocabulary_was_fitted(tmp_path):
    from rnnapps.language_model import token_ids
    from rnnapps.tasks.next_word import NextWordPreprocessor
    from rnnapps.tasks.next_word import data

    texts = ["Don't STOP, Bob!", "café au lait -- (très) bon...", "   ", "a-b c_d e'f \u00e9t\u00e9"]
    vocabulary = data.fit_vocabulary(texts, 30)
    preprocessor = NextWordPreprocessor(vocabulary, max_length=3)
    expected = token_ids(texts, vocabulary, max_length=3)  # TextVectorization's own lookup
    got = [row for row in preprocessor.tokenize(texts).numpy() if len(row)]
    assert [list(r[:3]) for r in got] == [list(r) for r in expected]
    assert preprocessor.lengths(texts).tolist() == [3, 3, 0, 3]
    again = NextWordPreprocessor.from_config(json.loads(json.dumps(preprocessor.get_config())))
    assert again.tokenize(texts).to_list() == preprocessor.tokenize(texts).to_list()
    with pytest.raises(ValueError, match="max_length must be at least 1"):
        NextWordPreprocessor(vocabulary, max_length=0)


@pytest.mark.parametrize("content, message", [
    (None, "no such text file"),
    (b"\xff\xfe caf\xe9\n", "is not UTF-8 text"),
    (b"", "split of"),
])
def test_bad_text_files_give_a_clear_error(tmp_path, content, message):
    from rnnapps.tasks.next_word import NextWordConfig, load_data

    path = tmp_path / "corpus.txt"
    if content is not None:
        path.write_bytes(content)
    with pytest.raises(TaskError, match=message):
        load_data(NextWordConfig(data=str(path)))
    with pytest.raises(TaskError, match="unknown data 'shakespeare'"):
        load_data(NextWordConfig(data="shakespeare"))


# === Quality ===


@time_budget
def test_trained_model_beats_a_unigram_model_and_nears_the_ngram(english_text):
    # The default data (WordNet), cut to 20,000 training sentences, a
    # 2,000-word vocabulary and a small LSTM trained for 2 epochs (about a
    # minute on 2 cores), scored on the whole test split against a unigram
    # and a trigram Kneser-Ney model fitted on the same training ids.
    # Measured, seeds 0-2: perplexity 55.5, 54.2, 56.4 (the same with oneDNN
    # off) against the unigram's 76.9 and the trigram's 40.9: 0.70-0.73x and
    # 1.32-1.38x. The untrained model scores 1999 (uniform) and fails both.
    import keras

    from rnnapps.tasks import next_word
    from rnnapps.tasks.next_word.ngram import KneserNeyLM

    config = next_word.NextWordConfig(max_sentences=20_000, vocabulary_size=2_000, embedding_dim=32,
                                      units=64, epochs=2, batch_size=128, learning_rate=5e-3)
    keras.utils.set_random_seed(config.seed)
    data = next_word.load_data(config)
    model = next_word.build_model(config, data.raw["vocabulary"])
    model.fit(data.train, epochs=config.epochs, verbose=0)
    perplexity = next_word.language_model_metrics(model, data.test)["perplexity"]

    def baseline(order):
        lm = KneserNeyLM(data.info["vocabulary_size"], order=order).fit(data.raw["train"])
        return lm.perplexity(data.raw["test"])

    unigram, trigram = baseline(1), baseline(3)
    assert 60 < unigram < 95 and 30 < trigram < 50  # the baselines themselves
    assert perplexity < 0.85 * unigram
    assert perplexity < 1.6 * trigram


# === The exported model, through the CLI ===


@time_budget
def test_train_reports_perplexity_next_to_the_ngram_baseline(trained):
    _, result = trained
    metrics = result["metrics"]
    assert result["export_path"].endswith("next_word/1")
    # One epoch on 1,800 sentences: the LSTM's perplexity 56.7 (seeds 0 and
    # 1), where a uniform guess over the 600 words scores about 600; top-1 /
    # top-5 0.11 / 0.38, where a uniform guess gets 0.01 at best. The
    # trigram model is deterministic: 17.97, 0.29 / 0.54.
    assert 1 < metrics["recurrent_perplexity"] < 120
    assert 0.05 < metrics["recurrent_top1_accuracy"] <= metrics["recurrent_top5_accuracy"]
    assert metrics["recurrent_top5_accuracy"] > 0.25
    assert 15 < metrics["ngram_perplexity"] < 21 and metrics["ngram_order"] == 3
    assert 0.25 < metrics["ngram_top1_accuracy"] < metrics["ngram_top5_accuracy"] < 0.6
    # What the model serves is the mixture, its weight chosen on validation
    # (0.0 to 1.0): never worse there than either model alone, so on test
    # no worse than the better of them but for chance.
    assert 0 <= metrics["ngram_weight"] <= 1
    best = min(metrics["recurrent_perplexity"], metrics["ngram_perplexity"])
    assert 1 < metrics["perplexity"] < 1.03 * best
    assert metrics["top5_accuracy"] > 0.25
    assert any("Next words" in line for line in result["examples"])


@loads_the_export
def test_predict_prints_k_suggestions_and_a_continuation(trained, run_here):
    cwd, result = trained
    proc = run_here("predict", "next_word", "--model", result["export_path"], "--k", "3",
                    "I would like a cup of", "", cwd=cwd)
    out = last_json(proc)
    first, empty = out["predictions"]
    assert [len(p["next_words"]) for p in out["predictions"]] == [3, 3]
    probabilities = [s["probability"] for s in first["next_words"]]
    assert probabilities == sorted(probabilities, reverse=True) and 0 < sum(probabilities) <= 1
    words = [s["word"] for s in first["next_words"]]
    assert "[UNK]" not in words and "<s>" not in words and all(words)
    assert isinstance(first["continuation"], str) and "[UNK]" not in first["continuation"]
    assert "I would like a cup of ->" in proc.stdout
    bad = run_here("predict", "next_word", "--model", result["export_path"], "--k", "0", "tea",
                   cwd=cwd)
    assert bad.returncode == 2 and "--k must be at least 1" in bad.stderr.strip().splitlines()[-1]


@loads_the_export
def test_evaluate_scores_the_export_like_training_did(trained, sentences_file, run_here):
    from rnnapps.tasks.next_word import data

    cwd, result = trained

    def evaluate(path):
        return last_json(run_here("evaluate", "next_word", "--model", result["export_path"],
                                  "--data", str(path), cwd=cwd))["metrics"]

    # The run's own file is scored on its test split; another file whole:
    # here one holding that test split's sentences, then a copy of all of it.
    test_file = pathlib.Path(cwd) / "test.txt"
    test_file.write_text("\n".join(data._splits(data.load_sentences(str(sentences_file)))["test"]))
    copy = pathlib.Path(cwd) / "copy.txt"
    copy.write_text(sentences_file.read_text())
    for metrics in (evaluate(sentences_file), evaluate(test_file)):
        # The `score` signature gives the perplexity the training run measured.
        assert metrics["perplexity"] == pytest.approx(result["metrics"]["perplexity"], rel=1e-3)
        assert metrics["tokens"] == result["metrics"]["tokens"]
    assert evaluate(copy)["tokens"] > 15 * metrics["tokens"]  # all of it, not its test twentieth
    # Suggestions (vocabulary words only) measured 0.07 / 0.25 for seeds 0
    # and 1; a uniform guess over 596 words would get at most 0.01.
    assert 0.035 < metrics["suggestion_top1"] <= metrics["suggestion_top5"]
    assert metrics["suggestion_top5"] > 0.15
    assert metrics["suggestion_positions"] > 500


@time_budget
def test_export_serves_without_rnnapps(trained):
    cwd, result = trained
    export = str(pathlib.Path(cwd) / result["export_path"])
    script = f"""
import json, sys
import tensorflow as tf
loaded = tf.saved_model.load({export!r})
serve = loaded.signatures["serving_default"]
out = serve(text=tf.constant(["a cup of", "the", "x " * 100]), k=tf.constant([2, 4, 1]))
score = loaded.signatures["score"](text=tf.constant(["a cup of tea", "tea cup of a"]))
try:
    serve(text=tf.constant(["a"]), k=tf.constant([0]))
    error = None
except tf.errors.InvalidArgumentError as e:
    error = e.message
print(json.dumps({{
    "words": out["words"].numpy().astype(str).tolist(),
    "p": out["probabilities"].numpy().tolist(),
    "continuation": out["continuation"].numpy().astype(str).tolist(),
    "score": score["log_probability"].numpy().tolist(),
    "tokens": score["tokens"].numpy().tolist(),
    "error": error,
    "rnnapps": any(m.startswith("rnnapps") for m in sys.modules),
}}))
"""
    # An empty batch gives empty outputs on every CPU (the network never runs),
    # checked with oneDNN on and off in the same fresh processes as the script.
    served = assert_serves_empty_batch(export, cwd, {
        "words": ([0, 0], "string"), "probabilities": ([0, 0], "float32"),
        "continuation": ([0], "string"),
    }, script=script)
    assert served["rnnapps"] is False
    # Rows asking for fewer than the batch's largest k are padded with "" and 0.
    assert [sum(1 for w in row if w) for row in served["words"]] == [2, 4, 1]
    assert served["p"][0][2:] == [0.0, 0.0] and all(p > 0 for p in served["p"][1])
    assert all(row == sorted(row, reverse=True) for row in served["p"])
    assert len(served["continuation"]) == 3
    assert served["tokens"] == [5, 5] and all(s < 0 for s in served["score"])
    assert "k must be at least 1" in served["error"]


def test_bad_input_is_one_line(tmp_path, run_here):
    proc = run_here("train", "next_word", "--data", "missing.txt", "--epochs", "1", cwd=tmp_path)
    assert_one_line_error(proc, "no such text file: missing.txt", tmp_path)


@time_budget
def test_pretrained_trains_once_into_the_cache_then_loads(tmp_path, monkeypatch, sentences_file):
    from rnnapps import language_model
    from rnnapps.tasks import next_word

    monkeypatch.setenv("RNNAPPS_CACHE", str(tmp_path / "cache"))
    tiny = next_word.NextWordConfig(data=str(sentences_file), vocabulary_size=300, embedding_dim=8,
                                    units=8, epochs=1, ngram_order=0)
    monkeypatch.setitem(next_word.task.presets, "tiny", tiny)
    lines = []
    first = language_model.pretrained("tiny", log=lines.append)
    assert isinstance(first, language_model.WordLanguageModel)
    assert any("Training the tiny language model once" in str(line) for line in lines)
    cached = sorted(p.name for p in language_model.cache_dir().iterdir())
    assert len(cached) == 1 and cached[0].startswith("tiny-") and cached[0].endswith(".keras")
    lines.clear()
    again = language_model.pretrained("tiny", log=lines.append)
    assert lines == [] and again.vocabulary == first.vocabulary  # loaded, not trained
    with pytest.raises(ValueError, match="no language model preset 'klingon'"):
        language_model.pretrained("klingon")


# === On any backend: the Python API and the command line (JAX pass too) ===

# Short sentences (at most 6 words kept): one length bucket, so JAX compiles
# the training step once.
SMALL = dict(vocabulary_size=200, embedding_dim=8, units=16, max_length=6, batch_size=32,
             learning_rate=0.01,
             epochs=2, ngram_order=0, continuation_length=3)
PROMPTS = ["I would like a cup of", "the", "", "A large body of water"]


@pytest.fixture(scope="module")
def small_sentences(english_text):
    from rnnapps.datasets import english

    return english.wordnet_sentences()[:400]


def test_python_api_fits_predicts_evaluates_and_exports(small_sentences, tmp_path):
    import keras

    from rnnapps.export import read_metadata
    from rnnapps.tasks.next_word import NextWordConfig, NextWordPredictor

    keras.utils.set_random_seed(0)
    predictor = NextWordPredictor.from_data(small_sentences, NextWordConfig(**SMALL), units=12)
    assert predictor.config.units == 12 and predictor.model.units == 12
    assert predictor.preprocessor.vocabulary == predictor.model.vocabulary
    history = predictor.fit(small_sentences[:360], validation_data=small_sentences[360:],
                            verbose=0)
    assert set(history.history) >= {"loss", "val_loss"}
    predictions = predictor.predict(PROMPTS, k=3)
    assert [p["text"] for p in predictions] == PROMPTS
    for prediction in predictions:
        probabilities = [s["probability"] for s in prediction["next_words"]]
        assert len(probabilities) == 3 and probabilities == sorted(probabilities, reverse=True)
        assert all(s["word"] not in ("", "[UNK]", "<s>", "</s>") for s in prediction["next_words"])
        assert isinstance(prediction["continuation"], str)
    metrics = predictor.evaluate(small_sentences[360:])
    # 200 words after one epoch of 360 sentences: far from uniform (about 200).
    assert 1 < metrics["perplexity"] < 150 and metrics["tokens"] > 100
    assert 0 <= metrics["top1_accuracy"] <= metrics["top5_accuracy"] <= 1
    export = predictor.export(tmp_path / "saved_models")
    assert export.name == "1" and (export / "saved_model.pb").is_file()
    assert read_metadata(export)["config"]["units"] == 12
    for bad, message in (([], "x is empty"), ("a cup of", "wrap it in a list")):
        with pytest.raises((ValueError, TaskError), match=message):
            predictor.predict(bad)
    with pytest.raises(ValueError, match="k must be at least 1"):
        predictor.predict(["tea"], k=0)
    with pytest.raises(ValueError, match="leave y out"):
        predictor.fit(small_sentences, [1] * len(small_sentences))
    with pytest.raises(ValueError, match="has no sentence"):
        NextWordPredictor.from_data(["", "  "])


def test_cli_trains_and_exports_on_this_backend(sentences_file, tmp_path, run_here):
    import keras

    args = [f"--{k.replace('_', '-')}={v}" for k, v in SMALL.items()]
    result = last_json(run_here("train", "next_word", "--data", str(sentences_file), *args,
                                cwd=tmp_path))
    assert result["backend"] == keras.backend.backend()
    assert (tmp_path / result["export_path"] / "saved_model.pb").is_file()
    assert 1 < result["metrics"]["perplexity"] < 200
    assert any("Next words" in line for line in result["examples"])


_TRAIN_ON_JAX = """
import json, sys
import keras
from rnnapps.datasets import english
from rnnapps.tasks.next_word import NextWordConfig, NextWordPredictor

assert keras.backend.backend() == "jax"
sentences = english.wordnet_sentences()[:400]
keras.utils.set_random_seed(0)
predictor = NextWordPredictor.from_data(sentences, NextWordConfig(**json.loads(sys.argv[1])))
predictor.fit(sentences, verbose=0)
prompts = json.loads(sys.argv[2])
print(json.dumps({
    "predictions": predictor.predict(prompts, k=4),
    "metrics": predictor.evaluate(sentences[:100]),
    "test_sentences": list(sentences[:100]),
    "export": str(predictor.export(sys.argv[3]).resolve()),
}))
"""


@loads_the_export
def test_export_of_jax_weights_answers_like_the_jax_model(english_text, tmp_path):
    """Trained on JAX (a subprocess), exported on TensorFlow: the SavedModel
    suggests the same words with the same probabilities (1e-5) and the same
    continuations, and scores the same perplexity."""
    import tensorflow as tf

    env = {**os.environ, "KERAS_BACKEND": "jax", "TF_CPP_MIN_LOG_LEVEL": "3"}
    done = subprocess.run(
        [sys.executable, "-c", _TRAIN_ON_JAX, json.dumps(SMALL), json.dumps(PROMPTS),
         str(tmp_path / "saved_models")],
        capture_output=True, text=True, env=env, cwd=tmp_path, timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]
    on_jax = json.loads(done.stdout.strip().splitlines()[-1])
    loaded = tf.saved_model.load(on_jax["export"])
    out = loaded.signatures["serving_default"](text=tf.constant(PROMPTS),
                                               k=tf.fill([len(PROMPTS)], 4))
    for i, prediction in enumerate(on_jax["predictions"]):
        assert [w.decode() for w in out["words"][i].numpy()] == [
            s["word"] for s in prediction["next_words"]]
        np.testing.assert_allclose(out["probabilities"][i].numpy(),
                                   [s["probability"] for s in prediction["next_words"]], atol=1e-5)
        assert out["continuation"][i].numpy().decode() == prediction["continuation"]
    score = loaded.signatures["score"](text=tf.constant(on_jax["test_sentences"]))
    tokens = int(score["tokens"].numpy().sum())
    perplexity = float(np.exp(-score["log_probability"].numpy().astype(np.float64).sum() / tokens))
    assert tokens == on_jax["metrics"]["tokens"]
    assert perplexity == pytest.approx(on_jax["metrics"]["perplexity"], rel=1e-4)
