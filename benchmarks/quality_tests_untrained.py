"""The CI quality tests, run once with training switched off: each must fail.

A quality test is only worth its time if an untrained model fails it. This
script runs the five tasks' CI quality tests in pytest with a
plugin that makes `keras.Model.fit` return at once, without a step, so every
model is exported exactly as it was initialised, then runs them again as they
are. It prints each test's outcome both ways; every test should read
`untrained: failed, trained: passed`.

    python benchmarks/quality_tests_untrained.py           # about 5 minutes on 2 cores
"""

import json
import pathlib
import subprocess
import sys
import tempfile

ROOT = pathlib.Path(__file__).resolve().parents[1]
QUALITY_TESTS = [
    "tests/tasks/test_sentiment.py::test_tiny_model_beats_the_majority_class_on_the_default_reviews",
    "tests/tasks/test_translation.py::test_tiny_model_beats_copying_the_source_on_emoji_names",
    "tests/tasks/test_forecasting.py::test_default_model_beats_seasonal_naive_on_co2_in_five_epochs",
    "tests/tasks/test_next_word.py::test_trained_model_beats_a_unigram_model_and_nears_the_ngram",
    "tests/tasks/test_captioning.py::test_trained_captioner_beats_the_most_frequent_caption",
]

# A pytest plugin: `Model.fit` trains nothing (an empty History, as after 0 epochs).
PLUGIN = '''
import keras

def _no_fit(self, *args, **kwargs):
    history = keras.callbacks.History()
    history.set_model(self)
    history.on_train_begin()
    return history

keras.Model.fit = _no_fit
'''


def outcomes(extra_args, cwd=ROOT, env=None):
    """{test id: "passed" | "failed" | ...} of one pytest run of QUALITY_TESTS."""
    with tempfile.TemporaryDirectory() as folder:
        report = pathlib.Path(folder) / "report.xml"
        subprocess.run(
            [sys.executable, "-m", "pytest", "-n", "0", "-p", "no:cacheprovider", "-q",
             f"--junitxml={report}", *extra_args, *QUALITY_TESTS],
            cwd=cwd, env=env,
        )
        import xml.etree.ElementTree as ElementTree

        results = {}
        for case in ElementTree.parse(report).iter("testcase"):
            kinds = {child.tag for child in case}
            outcome = ("failed" if kinds & {"failure", "error"} else
                       "skipped" if "skipped" in kinds else "passed")
            results[f"{case.get('classname')}::{case.get('name')}"] = outcome
        return results


def main():
    import os

    with tempfile.TemporaryDirectory() as folder:
        (pathlib.Path(folder) / "untrained_fit.py").write_text(PLUGIN)
        env = {**os.environ, "PYTHONPATH": os.pathsep.join(
            [folder, os.environ.get("PYTHONPATH", "")]).rstrip(os.pathsep)}
        untrained = outcomes(["-p", "untrained_fit"], env=env)
    trained = outcomes([])
    rows = []
    for test in sorted(set(untrained) | set(trained)):
        rows.append({"test": test.rsplit(".", 1)[-1], "untrained": untrained.get(test),
                     "trained": trained.get(test)})
        print(f"{rows[-1]['test']}: untrained: {rows[-1]['untrained']}, "
              f"trained: {rows[-1]['trained']}")
    good = all(r["untrained"] == "failed" and r["trained"] == "passed" for r in rows)
    print(json.dumps({"all_fail_untrained_and_pass_trained": good, "tests": rows}))
    return 0 if good else 1


if __name__ == "__main__":
    sys.exit(main())
