"""Sentiment test accuracy: rnnapps vs TF-IDF + logistic regression, same split.

The peer is the strong simple baseline a practitioner tries first: TF-IDF of
word 1-2 grams (min_df=2, sublinear tf) + LogisticRegression with C chosen by
5-fold cross-validation on the training split (scikit-learn). rnnapps is the
`rnnapps train sentiment` model with its default settings (or those given
as JSON), trained with several seeds; the script prints each seed's test
accuracy, their median, and the peer's accuracy on the same test split.

    python benchmarks/sentiment_quality.py                 # default data, 3 seeds
    python benchmarks/sentiment_quality.py --seeds 5 --config '{"cell": "gru"}'

Needs scikit-learn (`pip install -e ".[bench]"`).
"""

import argparse
import dataclasses
import json
import statistics
import sys
import tempfile
import time


def tfidf_logistic_regression(splits):
    from sklearn.feature_extraction.text import TfidfVectorizer
    from sklearn.linear_model import LogisticRegressionCV
    from sklearn.pipeline import make_pipeline

    train_x = list(splits["train"][0]) + list(splits["validation"][0])
    train_y = list(splits["train"][1]) + list(splits["validation"][1])
    model = make_pipeline(
        TfidfVectorizer(ngram_range=(1, 2), min_df=2, sublinear_tf=True),
        LogisticRegressionCV(Cs=[1, 3, 10, 16, 30], cv=5, max_iter=2000),
    )
    model.fit(train_x, train_y)
    return float(model.score(list(splits["test"][0]), list(splits["test"][1])))


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--data", default="amazon_fine_food")
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--config", default="{}", help="SentimentConfig overrides, as JSON")
    args = parser.parse_args(argv)

    from rnnapps.task import train
    from rnnapps.tasks import sentiment

    splits = sentiment.load_examples(args.data)
    peer = tfidf_logistic_regression(splits)
    print(f"TF-IDF (1-2 grams) + LogisticRegression (C by 5-fold CV): test accuracy {peer:.3f}")

    accuracies = []
    with tempfile.TemporaryDirectory() as export_dir:
        for seed in range(args.seeds):
            config = sentiment.SentimentConfig(
                data=args.data, seed=seed, export_dir=export_dir, **json.loads(args.config)
            )
            start = time.perf_counter()
            result = train(sentiment.task, config, verbose=0, log=lambda line: None)
            accuracy = result["metrics"]["accuracy"]
            accuracies.append(accuracy)
            print(
                f"rnnapps sentiment seed {seed}: test accuracy {accuracy:.3f} "
                f"({result['epochs_run']} epochs, {time.perf_counter() - start:.0f} s)",
                flush=True,
            )
    median = statistics.median(accuracies)
    settings = {k: v for k, v in dataclasses.asdict(config).items() if k not in ("export_dir", "seed")}
    print(json.dumps({
        "data": args.data, "peer_tfidf_lr": round(peer, 4),
        "rnnapps_accuracies": accuracies, "rnnapps_median": median,
        "median_minus_peer": round(median - peer, 4), "config": settings,
    }))
    return 0


if __name__ == "__main__":
    sys.exit(main())
