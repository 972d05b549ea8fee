"""Sentiment test accuracy: rnnapps vs TF-IDF + logistic regression, same split.

The peer is the strong simple baseline a practitioner tries first: TF-IDF of
word 1-2 grams (min_df=2, sublinear tf) + LogisticRegression with C chosen by
5-fold cross-validation (scikit-learn), fitted on the training and validation
texts. rnnapps is the `rnnapps train sentiment` model with its default
settings (or those given as JSON), fitted on the training split with early
stopping on the validation split, for several seeds. Both are scored on the
same test split.

With `--train-sizes`, both are fitted on random subsets of the training split
of each size (a learning curve: how the gap moves with the amount of data).

    python benchmarks/sentiment_quality.py                          # 3 seeds
    python benchmarks/sentiment_quality.py --config '{"pooling": "mean"}'
    python benchmarks/sentiment_quality.py --train-sizes 900,1800,3600 --seeds 2

Needs scikit-learn (`pip install -e ".[bench]"`).
"""

import argparse
import json
import statistics
import sys
import time

import numpy as np


def tfidf_logistic_regression(train_texts, train_labels, test_texts, test_labels):
    from sklearn.feature_extraction.text import TfidfVectorizer
    from sklearn.linear_model import LogisticRegressionCV
    from sklearn.pipeline import make_pipeline

    model = make_pipeline(
        TfidfVectorizer(ngram_range=(1, 2), min_df=2, sublinear_tf=True),
        LogisticRegressionCV(Cs=[1, 3, 10, 16, 30], cv=5, max_iter=2000),
    )
    model.fit(list(train_texts), list(train_labels))
    return float(model.score(list(test_texts), list(test_labels)))


def recurrent_model(config, splits, train_index, label_names):
    import keras

    from rnnapps.tasks import sentiment
    from rnnapps.tasks.sentiment.data import make_dataset

    def dataset(texts, labels, seed=None):
        ids = np.array([label_names.index(label) for label in labels], np.int32)
        return make_dataset(texts, ids, config.batch_size, seed)

    texts, labels = splits["train"][0][train_index], splits["train"][1][train_index]
    keras.utils.set_random_seed(config.seed)
    model = sentiment.build_model(config, texts, len(label_names))
    history = model.fit(
        dataset(texts, labels, config.seed),
        validation_data=dataset(*splits["validation"]),
        epochs=config.epochs,
        callbacks=[keras.callbacks.EarlyStopping(
            monitor="val_loss", patience=config.patience, restore_best_weights=True)],
        shuffle=False,  # the dataset reshuffles itself
        verbose=0,
    )
    accuracy = model.evaluate(dataset(*splits["test"]), return_dict=True, verbose=0)["accuracy"]
    return float(accuracy), len(history.history["loss"])


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--data", default="amazon_fine_food")
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--config", default="{}", help="SentimentConfig overrides, as JSON")
    parser.add_argument("--train-sizes", default=None,
                        help="comma-separated training-set sizes (default: the whole split)")
    args = parser.parse_args(argv)

    from rnnapps.tasks import sentiment

    splits = sentiment.load_examples(args.data)
    label_names = sorted(set(splits["train"][1]))
    full = len(splits["train"][0])
    sizes = [int(s) for s in args.train_sizes.split(",")] if args.train_sizes else [full]

    rows = []
    for size in sizes:
        for seed in range(args.seeds):
            config = sentiment.SentimentConfig(data=args.data, seed=seed, **json.loads(args.config))
            index = np.random.default_rng(seed).permutation(full)[:size]
            start = time.perf_counter()
            ours, epochs = recurrent_model(config, splits, index, label_names)
            seconds = time.perf_counter() - start
            peer = tfidf_logistic_regression(
                list(splits["train"][0][index]) + list(splits["validation"][0]),
                list(splits["train"][1][index]) + list(splits["validation"][1]),
                *splits["test"],
            )
            rows.append({"train_size": size, "seed": seed, "rnnapps": round(ours, 4),
                         "tfidf_lr": round(peer, 4), "epochs": epochs})
            print(f"train {size:>6}, seed {seed}: rnnapps {ours:.3f} ({epochs} epochs, "
                  f"{seconds:.0f} s), TF-IDF + LR {peer:.3f}", flush=True)
    summary = []
    for size in sizes:
        ours = statistics.median(r["rnnapps"] for r in rows if r["train_size"] == size)
        peer = statistics.median(r["tfidf_lr"] for r in rows if r["train_size"] == size)
        summary.append({"train_size": size, "rnnapps_median": ours, "tfidf_lr_median": peer,
                        "gap_points": round(100 * (peer - ours), 1)})
        print(f"train {size:>6}: median rnnapps {ours:.3f} vs TF-IDF + LR {peer:.3f} "
              f"(gap {100 * (peer - ours):.1f} points)")
    print(json.dumps({"data": args.data, "config": json.loads(args.config),
                      "summary": summary, "runs": rows}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
