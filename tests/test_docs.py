"""Every code example a user reads runs: README, docs/ pages and docstrings."""

import doctest
import importlib
import pathlib
import re

import pytest

ROOT = pathlib.Path(__file__).resolve().parents[1]
PAGES = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
MODULES = [
    "rnnapps.layers.irnn",
    "rnnapps.layers.reverse_sequence",
    "rnnapps.optimizers.clipped",
    "rnnapps.optimizers.discriminative",
    "rnnapps.callbacks.early_stopping_from_start",
    "rnnapps.callbacks.shared_backup_and_restore",
    "rnnapps.distribute",
    "rnnapps.backends",
    "rnnapps.datasets.adding",
    "rnnapps.datasets.digits",
    "rnnapps.datasets.english",
    "rnnapps.decoding",
    "rnnapps.diagnostics",
    "rnnapps.export",
    "rnnapps.predict_files",
    "rnnapps.serving.rest",
    "rnnapps.figures",
    "rnnapps.text",
    "rnnapps.tasks",
    "rnnapps.tasks.forecasting.model",
    "rnnapps.tasks.forecasting.mstl_matrix",
    "rnnapps.tasks.forecasting.metrics",
    "rnnapps.tasks.translation.data",
    "rnnapps.tasks.translation.lexicon",
    "rnnapps.tasks.translation.gloss",
    "rnnapps.tasks.translation.model",
    "rnnapps.tasks.captioning",
    "rnnapps.tasks.sentiment.data",
    "rnnapps.tasks.sentiment.metrics",
    "rnnapps.tasks.captioning.data",
    "rnnapps.tasks.captioning.model",
    "rnnapps.language_model",
    "rnnapps.tasks.next_word",
    "rnnapps.tasks.next_word.data",
    "rnnapps.tasks.next_word.ngram",
    # The Python API of each task (issue 36).
    "rnnapps.tasks.sentiment.task",
    "rnnapps.tasks.sentiment.preprocessor",
    "rnnapps.tasks.forecasting.task",
    "rnnapps.tasks.forecasting.preprocessor",
    "rnnapps.tasks.translation.task",
    "rnnapps.tasks.translation.preprocessor",
    "rnnapps.tasks.captioning.task",
    "rnnapps.tasks.captioning.preprocessor",
    "rnnapps.tasks.next_word.task",
    "rnnapps.tasks.next_word.preprocessor",
]


def python_blocks(path):
    return re.findall(r"```python\n(.*?)```", path.read_text(), flags=re.DOTALL)


@pytest.mark.parametrize("page", PAGES, ids=lambda p: str(p.relative_to(ROOT)))
def test_page_examples_run(page, tmp_path, monkeypatch, request):
    import keras

    marker = re.search(r"<!-- tensorflow_only:?(.*?)-->", page.read_text(), flags=re.DOTALL)
    if marker and keras.backend.backend() != "tensorflow":
        # The page's own reason: TensorFlow by nature, or "time budget: ...".
        pytest.skip(" ".join(marker.group(1).split()) or "the page's examples need TensorFlow")
    if page.name == "gradients.md" and keras.backend.backend() == "jax":
        # 60-80 s on JAX's eager gradient through 3 x 150 unrolled steps (jit
        # compiles far longer); tests/test_diagnostics.py runs the same API on JAX.
        pytest.skip("time budget: the page's API is tested on JAX in test_diagnostics.py")
    if page.name == "translation.md":
        request.getfixturevalue("ding")  # its examples train on the Ding dictionary
    if page.name == "next_word.md":
        request.getfixturevalue("english_text")  # its examples train on WordNet's sentences
    if page.name == "captioning.md":
        request.getfixturevalue("emoji_font")  # its examples train on the emoji drawings
    blocks = python_blocks(page)
    if page.name != "index.md":
        assert blocks, f"{page.name} has no runnable example"
    monkeypatch.chdir(tmp_path)  # examples that write files write them here
    namespace = {"__name__": "docs_example"}
    for block in blocks:
        exec(compile(block, str(page.relative_to(ROOT)), "exec"), namespace)


@pytest.mark.parametrize("module_name", MODULES)
def test_docstring_examples(module_name):
    module = importlib.import_module(module_name)
    finder = doctest.DocTestFinder()
    runner = doctest.DocTestRunner(optionflags=doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE)
    tests = [t for t in finder.find(module) if t.examples]
    assert tests, f"{module_name} has no docstring example"
    for test in tests:
        runner.run(test)
    assert runner.failures == 0
