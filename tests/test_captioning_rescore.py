"""`benchmarks/captioning_rescore.py`: a finished run scored again, with the
lead over the nearest image and its bootstrap intervals (`--bootstrap`: by
image, and by emoji family).

It runs `rnnapps train captioning` and the benchmark in their own processes,
on the TensorFlow pass only (time budget)."""

import json
import os
import pathlib
import subprocess
import sys

import pytest

import keras

pytestmark = pytest.mark.skipif(
    keras.backend.backend() != "tensorflow",
    reason="runs `rnnapps train` in its own processes: on the TensorFlow pass only (time budget)",
)

ROOT = pathlib.Path(__file__).resolve().parents[1]
TINY = {"train_size": 300, "image_size": 16, "units": 16,  # (`--train` splits on commas)
        "embedding_dim": 8, "epochs": 1}


def test_rescoring_reproduces_the_run_and_bounds_its_lead(tmp_path, emoji_font):
    env = {**os.environ, "RNNAPPS_EMOJI_FONT": str(emoji_font)}
    flags = [f"--{k.replace('_', '-')}={v}" for k, v in TINY.items()]
    trained = subprocess.run(
        [sys.executable, "-m", "rnnapps.cli", "train", "captioning", *flags, "--seed", "3",
         "--export-dir", str(tmp_path)], capture_output=True, text=True, env=env, timeout=600)
    assert trained.returncode == 0, trained.stderr[-3000:]
    run = json.loads(trained.stdout.strip().splitlines()[-1])["metrics"]
    done = subprocess.run(
        [sys.executable, str(ROOT / "benchmarks" / "captioning_rescore.py"), str(tmp_path),
         "--seed", "3", "--train", ",".join(f"{k}={v}" for k, v in TINY.items()),
         "--bootstrap", "200"], capture_output=True, text=True, env=env, timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]
    [row] = [json.loads(line) for line in done.stdout.splitlines() if line.startswith("{")]
    test = row["test"]
    # The run's own checkpoint, data and decoding: its own test report again.
    assert test["model"] == [run["bleu1"], run["bleu4"]]
    assert test["nearest_neighbour"] == [run["nearest_neighbour"]["bleu1"],
                                         run["nearest_neighbour"]["bleu4"]]
    for split in ("test", "validation"):
        scores = row[split]
        for i, n in enumerate((1, 4)):
            lead = scores["lead_over_nearest"][f"bleu{n}"]
            expected = scores["model"][i] - scores["nearest_neighbour"][i]
            assert lead["margin"] == pytest.approx(expected, abs=0.02), (split, n)
            assert lead["low"] <= lead["margin"] <= lead["high"]
            assert lead["low"] < lead["high"]  # hundreds of images, two systems that differ
            # The same lead with whole emoji families drawn: fewer samples than images.
            by_family = scores["lead_over_nearest_by_family"][f"bleu{n}"]
            assert by_family["margin"] == lead["margin"]
            assert by_family["low"] <= by_family["margin"] <= by_family["high"]
        assert 1 < scores["families"] < scores["images"]
