"""The margin of the translation quality test: a tiny model against copying the source.

`tests/tasks/test_translation.py::test_tiny_model_beats_copying_the_source_on_emoji_names`
trains a tiny model (the test's `QUALITY` settings) through `rnnapps.task.train`
on the German and English CLDR names of the emoji (short phrase pairs from the
emoji package) and asserts that its test BLEU and chrF clear copying the German
source by a margin. This script measures what that margin rests on, seed by
seed: the trained model, the same settings with `epochs=0` (`train` exports
the freshly built model, which the test must reject) and the copy.

Run it with oneDNN on and off (`TF_ENABLE_ONEDNN_OPTS=0|1`) before changing
the margin:

    python benchmarks/translation_ci_margin.py --seeds 0,1,2,3,4
"""

import argparse
import json
import os
import pathlib
import statistics
import sys
import tempfile

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "tests", "tasks"))
from test_translation import QUALITY  # noqa: E402  (the test's configuration and data)
from test_translation import copy_scores  # noqa: E402
from test_translation import write_emoji_names  # noqa: E402

sys.path.insert(0, os.path.dirname(__file__))
from _ci_margin import trained_and_untrained  # noqa: E402


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", default="0,1,2,3,4", help="comma-separated seeds")
    args = parser.parse_args()

    from rnnapps.tasks import translation

    with tempfile.TemporaryDirectory() as folder:
        data = str(write_emoji_names(pathlib.Path(folder) / "emoji_de_en.tsv"))
        copying = copy_scores(translation.load_examples(data)["test"])
        rows = trained_and_untrained(
            translation.task,
            lambda seed, epochs: translation.TranslationConfig(
                **{**QUALITY, "epochs": epochs}, data=data, seed=seed, export_dir=folder),
            QUALITY["epochs"], [int(s) for s in args.seeds.split(",")],
            keys=("bleu", "chrf"), baseline={"copy": copying},
        )
    summary = {"onednn": os.environ.get("TF_ENABLE_ONEDNN_OPTS", "default"), "copy": copying}
    for key in ("bleu", "chrf"):
        trained = [r["trained"][key] for r in rows]
        summary[key] = {
            "trained_min": min(trained), "trained_median": statistics.median(trained),
            "untrained_max": max(r["untrained"][key] for r in rows),
            "smallest_margin_over_copy": round(min(trained) - copying[key], 2),
        }
    print(json.dumps(summary))


if __name__ == "__main__":
    main()
