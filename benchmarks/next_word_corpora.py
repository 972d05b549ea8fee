"""Which offline English corpus helps? Kneser-Ney models of each, on themselves and on reviews.

The `next_word` task can learn English from several corpora that install
offline; the sentiment task's default data is food reviews, a different
register. For each corpus this script fits the task's n-gram baseline (an
interpolated modified Kneser-Ney model, `rnnapps.tasks.next_word.ngram`,
order 5) on the corpus's training split with the task's own vocabulary
(its 16,000 most frequent training words, padding, `[UNK]`, `<s>` and `</s>`
included; `fit_vocabulary`) and prints:

- `sentences`, `words`: the corpus's size (words as the task reads them:
  lower case, punctuation stripped);
- `held-out ppl`, `held-out OOV`: the perplexity of its own test split (the
  task's `_splits`: 5% of the sentences by their MD5 hash) and the share of
  those words outside its vocabulary;
- `review OOV`, `review ppl`: the same for the sentences of the sentiment
  task's training reviews (Amazon Fine Food, `sentiment.load_examples`, cut
  into sentences as `sentiment.sentence_pieces` does) under the corpus's
  model and vocabulary: the domain question. A review word outside the
  vocabulary is `[UNK]`, one cheap token to predict, so a model with a higher
  OOV rate gets a flattering perplexity: compare perplexities only next to
  their OOV rates;
- `ppl on 10%`: the review perplexity on the held-out tenth of the reviews
  (below), the number the in-domain reference can be compared with;
- `seconds`: the whole row (loading, vocabulary, ids, fit and scoring).

Corpora: `wordnet` (WordNet 3.0's glosses and examples), `gcide` (the GCIDE
dictionary's definitions and quotations), `english` (both), all through
`rnnapps.tasks.next_word.data.load_sentences`, and `ding`: the English side
of the aligned parts of the Ding German-English dictionary that are full
sentences (5 words or more, ending in `.`, `?` or `!`; each `;` alternative
counts), parsed as the translation task parses the dictionary (skipped with a
note where Debian's `trans-de-en` is not found). Ding writes apostrophes as
`’`, which the task's standardization keeps (`it’s` would be a word of its own,
never `its`); they are read as `'` here, as the other corpora write them.

The last row, `reviews only`, is the in-domain reference: the same model
fitted on the sentences of 90% of the training reviews, with its own
vocabulary, and scored on the sentences of the other 10% (reviews go to one
side or the other by the SHA-1 hash of their text, so a review that appears
twice is never on both). Its vocabulary holds every training word (fewer
than 16,000), so its model never sees `[UNK]` in training and pays dearly
for each held-out word it has not seen; `reviews, 2+` is the same with only
the words seen at least twice, so that `[UNK]` is learnt from the rest, as
it is from the corpora's rare words. The same holds for a corpus with fewer
than 16,000 distinct words (Ding): `--min-count 2` gives every row such a
vocabulary.

Perplexity counts every predicted token, `</s>` and `[UNK]` included, as the
task's test report does; sentences are cut to the task's 40 words for it
(word counts and OOV rates count every word).

    python benchmarks/next_word_corpora.py                     # ~3 minutes on 2 cores
    python benchmarks/next_word_corpora.py --corpora wordnet,ding --order 3
    python benchmarks/next_word_corpora.py --min-count 2       # every vocabulary: words seen twice
"""

import argparse
import hashlib
import json
import sys
import time

import numpy as np

CORPORA = ("wordnet", "gcide", "english", "ding")
# Share of the training reviews held out for the in-domain reference.
HELD_OUT_BUCKETS = 10


def ding_sentences():
    """The English sentences of the Ding dictionary's aligned parts.

    Raises:
        TaskError: where the dictionary (Debian's `trans-de-en`) is not found.
    """
    from rnnapps.tasks.translation.data import _alternatives
    from rnnapps.tasks.translation.data import _is_sentence
    from rnnapps.tasks.translation.data import aligned_parts
    from rnnapps.tasks.translation.data import ding_path

    with open(ding_path(), encoding="utf-8") as file:
        return [
            english.replace("\u2019", "'").replace("\u2018", "'")
            for _, _, part in aligned_parts(file)
            for english in _alternatives(part)
            if _is_sentence(english, min_words=5)
        ]


def corpus_sentences(name):
    from rnnapps.tasks.next_word.data import load_sentences

    return ding_sentences() if name == "ding" else load_sentences(name)


def review_sentences(data):
    """`(train, held_out)`: the sentences of 90% and 10% of the training reviews."""
    from rnnapps.tasks import sentiment
    from rnnapps.tasks.sentiment.data import _split_sentences

    texts = sentiment.load_examples(data)["train"][0]
    parts = {True: [], False: []}
    for text in texts:
        # SHA-1, not MD5: the MD5 hash (mod 10) of every training review is
        # already nonzero, as bucket 0 went to the validation split.
        bucket = int(hashlib.sha1(text.encode("utf-8")).hexdigest(), 16) % HELD_OUT_BUCKETS
        parts[bucket == 0].extend(s for s in _split_sentences(text) if s)
    return parts[False], parts[True]


def ids_of(sentences, vocabulary):
    """Every sentence's word ids, uncut (sentences without a word dropped)."""
    from rnnapps.language_model import token_ids

    return token_ids(sentences, vocabulary, max_length=None)


def unknown_rate(ids):
    from rnnapps.language_model import UNK_ID

    return float(np.mean(np.concatenate(ids) == UNK_ID))


def fitted_model(train_sentences, args, min_count=1):
    """`(vocabulary, model, words)` fitted on `train_sentences` (`words`: how
    many it holds, uncut). The vocabulary is the task's (`fit_vocabulary`),
    cut to the words seen at least `min_count` times."""
    import collections

    from rnnapps.tasks.next_word.data import fit_vocabulary
    from rnnapps.tasks.next_word.ngram import KneserNeyLM
    from rnnapps.text import standardize

    size = args.vocabulary_size
    if min_count > 1:
        counts = collections.Counter(w for s in train_sentences for w in standardize(s))
        # The 4 are padding, [UNK], <s> and </s>.
        size = min(size, 4 + sum(count >= min_count for count in counts.values()))
    vocabulary = fit_vocabulary(train_sentences, size)
    train = ids_of(train_sentences, vocabulary)
    model = KneserNeyLM(len(vocabulary) + 2, order=args.order).fit(cut(train, args.max_length))
    return vocabulary, model, sum(len(row) for row in train)


def cut(ids, max_length):
    return [row[:max_length] for row in ids]


def scores(model, vocabulary, sentences, max_length):
    """`(perplexity, OOV rate, words)` of `sentences` (OOV and words uncut)."""
    ids = ids_of(sentences, vocabulary)
    words = sum(len(row) for row in ids)
    return model.perplexity(cut(ids, max_length)), unknown_rate(ids), words


def corpus_row(name, reviews, held_out_reviews, args):
    from rnnapps.tasks.next_word.data import _splits

    start = time.perf_counter()
    sentences = corpus_sentences(name)
    splits = _splits(sentences)
    vocabulary, model, words = fitted_model(splits["train"], args, args.min_count)
    held_out_ppl, held_out_oov, test_words = scores(model, vocabulary, splits["test"],
                                                    args.max_length)
    validation_words = sum(len(row) for row in ids_of(splits["validation"], vocabulary))
    words += test_words + validation_words
    review_ppl, review_oov, _ = scores(model, vocabulary, reviews + held_out_reviews,
                                       args.max_length)
    tenth_ppl, _, _ = scores(model, vocabulary, held_out_reviews, args.max_length)
    return {
        "corpus": name, "sentences": len(sentences), "words": words,
        "train_sentences": len(splits["train"]), "vocabulary_size": len(vocabulary) + 2,
        "held_out_perplexity": round(held_out_ppl, 2), "held_out_oov": round(held_out_oov, 4),
        "review_perplexity": round(review_ppl, 2), "review_oov": round(review_oov, 4),
        "review_perplexity_held_out": round(tenth_ppl, 2),
        "seconds": round(time.perf_counter() - start, 1),
    }


def reviews_row(reviews, held_out_reviews, args, min_count):
    """The in-domain reference; `min_count=2` keeps only the words seen twice."""
    start = time.perf_counter()
    vocabulary, model, words = fitted_model(reviews, args, min_count)
    ppl, oov, _ = scores(model, vocabulary, held_out_reviews, args.max_length)
    name = "reviews only" if min_count == args.min_count else f"reviews, {min_count}+"
    return {
        "corpus": name, "sentences": len(reviews), "words": words,
        "train_sentences": len(reviews), "vocabulary_size": len(vocabulary) + 2,
        "held_out_perplexity": round(ppl, 2), "held_out_oov": round(oov, 4),
        "review_perplexity": None, "review_oov": round(oov, 4),
        "review_perplexity_held_out": round(ppl, 2),
        "seconds": round(time.perf_counter() - start, 1),
    }


def print_table(rows):
    def number(value, digits=1):
        return "-" if value is None else f"{value:.{digits}f}"

    print(f"{'corpus':<14} {'sentences':>9} {'words':>10} {'vocab':>6} {'held-out ppl':>12} "
          f"{'held-out OOV':>12} {'review OOV':>10} {'review ppl':>10} {'ppl on 10%':>10} "
          f"{'seconds':>7}")
    for row in rows:
        print(f"{row['corpus']:<14} {row['sentences']:>9,} {row['words']:>10,} "
              f"{row['vocabulary_size']:>6,} {number(row['held_out_perplexity']):>12} "
              f"{row['held_out_oov']:>12.1%} {row['review_oov']:>10.1%} "
              f"{number(row['review_perplexity']):>10} "
              f"{number(row['review_perplexity_held_out']):>10} {row['seconds']:>7.1f}")


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--corpora", default=",".join(CORPORA),
                        help="comma-separated, of %(default)s")
    parser.add_argument("--reviews", default="amazon_fine_food",
                        help="the sentiment data whose training reviews are scored")
    parser.add_argument("--order", type=int, default=5, help="n-gram order")
    parser.add_argument("--vocabulary-size", type=int, default=16_000,
                        help="padding, [UNK], <s> and </s> included (the task's default)")
    parser.add_argument("--min-count", type=int, default=1,
                        help="keep only words seen this often in the vocabularies (1: the "
                             "task's, the most frequent words up to --vocabulary-size)")
    parser.add_argument("--max-length", type=int, default=None,
                        help="words kept per sentence (default: the task's, 40)")
    args = parser.parse_args(argv)
    from rnnapps.task import TaskError
    from rnnapps.tasks.next_word import NextWordConfig

    if args.max_length is None:
        args.max_length = NextWordConfig().max_length
    corpora = [name for name in args.corpora.split(",") if name]
    unknown = sorted(set(corpora) - set(CORPORA))
    if unknown:
        parser.error(f"unknown corpora {unknown}: choose from {', '.join(CORPORA)}")

    reviews, held_out_reviews = review_sentences(args.reviews)
    print(f"{args.reviews}: {len(reviews) + len(held_out_reviews):,} sentences in the training "
          f"reviews ({len(held_out_reviews):,} of them in the held-out 10%); KN order "
          f"{args.order}, vocabulary {args.vocabulary_size:,}"
          + (f" (words seen {args.min_count}+ times)" if args.min_count > 1 else "")
          + f", {args.max_length} words a sentence", flush=True)
    rows, skipped = [], {}
    for name in corpora:
        try:
            rows.append(corpus_row(name, reviews, held_out_reviews, args))
        except TaskError as error:
            if name != "ding":
                raise
            skipped[name] = str(error)
            print(f"ding skipped: {error}", flush=True)
            continue
        print(f"  {name}: done in {rows[-1]['seconds']:.0f} s", flush=True)
    rows.append(reviews_row(reviews, held_out_reviews, args, args.min_count))
    if args.min_count == 1:
        rows.append(reviews_row(reviews, held_out_reviews, args, min_count=2))
    print()
    print_table(rows)
    print("review ppl: all training review sentences; ppl on 10%: the held-out tenth only, "
          "the reviews-only model's test. Compare perplexities next to their OOV rates "
          "([UNK] is one cheap token).")
    print(json.dumps({
        "reviews": args.reviews, "order": args.order, "vocabulary_size": args.vocabulary_size,
        "max_length": args.max_length, "min_count": args.min_count, "rows": rows,
        "skipped": skipped,
    }))
    return 0


if __name__ == "__main__":
    sys.exit(main())
