"""An interpolated Kneser-Ney n-gram language model, the next-word baseline.

The recurrent language model of `rnnapps.tasks.next_word` has to beat the
classic count-based model on the same held-out sentences; this module is that
model, over integer token ids, in NumPy: an order-3 model of 1.35 million
tokens of WordNet glosses fits in about a second and scores 150,000 held-out
tokens in about 0.1 s on 2 cores (nltk's `KneserNeyInterpolated`, a Python
loop per probability, is far too slow at this size).

The method is interpolated Kneser-Ney smoothing (Chen & Goodman 1998, "An
empirical study of smoothing techniques for language modeling"), by default
in its *modified* form, with three discounts per order:

    P_k(w | h) = (c_k(h, w) - D_k(c_k(h, w))) / c_k(h)
                 + gamma_k(h) * P_(k-1)(w | h'),
    gamma_k(h) = (D_k1 N_1(h .) + D_k2 N_2(h .) + D_k3+ N_3+(h .)) / c_k(h),

where h' is h without its first word, c_k(h) = sum over w of c_k(h, w), and
N_r(h .) is the number of words seen after h with count r (3 or more for
N_3+). The bottom of the recursion, P_0, is the uniform distribution over the
predictable ids, so every predictable id (unseen ones and the unknown-word id
included) gets a probability above 0. A context h that was never seen at
order k backs off fully: P_k(w | h) = P_(k-1)(w | h').

- **Counts**: the highest order uses raw counts; every lower order uses
  continuation counts, the number of distinct words seen *before* the n-gram
  (N_1+(. h w)). Since every sentence starts with order - 1 start tokens,
  every n-gram of a lower order has a left context, so n-grams that begin
  with the start token get continuation counts too (KenLM keeps raw counts
  for those, as it pads with one start token only; here that raised the
  held-out perplexity of WordNet glosses, 127.7 to 131.0 at order 4).
- **Discounts**: from the count-of-counts n_1..n_4 of each order (of the
  counts that order uses), Y = n_1 / (n_1 + 2 n_2) and
  D_r = r - (r + 1) Y n_(r+1) / n_r for r = 1, 2, 3 (D_3 serves all counts of
  3 or more). `discount="absolute"` uses the single discount D = Y for every
  count instead (Chen & Goodman's "interpolated Kneser-Ney"). Where the
  count-of-counts cannot give a discount in (0, r) (tiny corpora, where
  n_r or n_(r+1) is 0 and the formula would give D_r = r), D_r falls back to
  Y, and Y to 0.5 when n_1 or n_2 is 0.
- **Sentences**: each training sentence is padded with order - 1 start tokens
  (`bos_id`) and one end token (`eos_id`); every real token and the end token
  are predicted, the start tokens never are. Perplexity counts the end token.

The n-grams are stored as sorted int64 keys (the dense id of the context times
the vocabulary size, plus the word) with precomputed discounted terms, so
scoring a corpus and `distribution()` are vectorised lookups
(`np.searchsorted`), and the model saves to one `.npz` file.

>>> lm = KneserNeyLM(vocabulary_size=10, order=2)
>>> lm = lm.fit([[4, 5, 6], [4, 5, 7], [4, 5, 6, 8], [9, 5]])
>>> p = lm.distribution([4])
>>> round(float(p.sum()), 9), float(p[0]), float(p[2])  # padding, start: never
(1.0, 0.0, 0.0)
>>> ids, probabilities = lm.top_k([4], 2)
>>> ids.tolist()
[5, 3]
>>> lm.log_probs([4, 5, 6]).shape  # 4, 5, 6, then the end token
(4,)
>>> lm.perplexity([[4, 5, 6]]) < lm.perplexity([[6, 9, 4]])
True
"""

import itertools
import json

import numpy as np

__all__ = ["KneserNeyLM"]

_DISCOUNTS = ("modified", "absolute")


class KneserNeyLM:
    """Interpolated (modified) Kneser-Ney n-gram model over ids 0..V-1.

    Args:
        vocabulary_size: V; token ids are 0..V-1.
        order: n, the length of the longest n-gram (1: a smoothed unigram).
        bos_id: the start token, prepended order - 1 times to each sentence.
        eos_id: the end token, appended once and predicted like a word.
        excluded_ids: ids never predicted (padding and the start token): they
            get probability 0, every other id (the end token and the unknown
            word included) gets a probability above 0 in every context, and
            the distribution over the predictable ids sums to 1.
        discount: "modified" (three discounts per order, the default) or
            "absolute" (one discount per order).

    Attributes:
        discounts: after `fit`, one (D1, D2, D3+) tuple per order, unigrams
            first (three equal values for `discount="absolute"`).

    Example:

    >>> lm = KneserNeyLM(vocabulary_size=8, order=3).fit([[4, 5, 6], [4, 5, 7]])
    >>> round(float(lm.distribution([4, 5]).sum()), 9)
    1.0
    >>> int(lm.top_k([4, 5], 1)[0][0]) in (6, 7)
    True
    """

    def __init__(self, vocabulary_size, order=3, bos_id=2, eos_id=3, excluded_ids=(0, 2),
                 discount="modified"):
        vocabulary_size = _integer(vocabulary_size, "vocabulary_size")
        order = _integer(order, "order")
        if order < 1:
            raise ValueError(f"order must be at least 1, got {order}")
        if vocabulary_size < 1:
            raise ValueError(f"vocabulary_size must be at least 1, got {vocabulary_size}")
        bos_id = _integer(bos_id, "bos_id")
        eos_id = _integer(eos_id, "eos_id")
        excluded_ids = tuple(sorted({_integer(i, "excluded_ids") for i in excluded_ids}))
        for name, value in (("bos_id", bos_id), ("eos_id", eos_id)):
            if not 0 <= value < vocabulary_size:
                raise ValueError(f"{name}={value} is outside 0..{vocabulary_size - 1}")
        bad = [i for i in excluded_ids if not 0 <= i < vocabulary_size]
        if bad:
            raise ValueError(f"excluded_ids {bad} are outside 0..{vocabulary_size - 1}")
        if bos_id == eos_id:
            raise ValueError(f"bos_id and eos_id must differ, both are {bos_id}")
        if eos_id in excluded_ids:
            raise ValueError(f"eos_id={eos_id} must be predictable, not in excluded_ids")
        if len(excluded_ids) >= vocabulary_size:
            raise ValueError("excluded_ids leave no predictable id")
        if discount not in _DISCOUNTS:
            raise ValueError(f"discount must be one of {_DISCOUNTS}, got {discount!r}")
        self.vocabulary_size = vocabulary_size
        self.order = order
        self.bos_id = bos_id
        self.eos_id = eos_id
        self.excluded_ids = excluded_ids
        self.discount = discount
        self._predictable = np.ones(vocabulary_size, dtype=bool)
        self._predictable[list(excluded_ids)] = False
        self._uniform = 1.0 / int(self._predictable.sum())
        self._fitted = False

    # ------------------------------------------------------------------ fit

    def fit(self, sequences):
        """Counts the n-grams of `sequences` (sentences of ids, without start
        and end tokens) and computes the discounts. Returns self."""
        tokens, offsets = self._padded(sequences, "training")
        n, vocabulary = self.order, self.vocabulary_size
        predicted = np.flatnonzero(offsets >= n - 1)
        # Dense ids of every m-gram (m < n) that lies within one padded
        # sentence: id_m = rank of id_(m-1)(prefix) * V + last token. They are
        # the contexts; `_gram_tables[m - 1]` maps keys back to ids.
        gram_ids = [np.zeros(len(tokens), dtype=np.int64)]
        self._gram_tables = []
        for m in range(1, n):
            previous = np.empty_like(gram_ids[-1])
            previous[0] = 0
            previous[1:] = gram_ids[-1][:-1]
            inside = offsets >= m - 1
            table, inverse = np.unique(previous[inside] * vocabulary + tokens[inside],
                                       return_inverse=True)
            ids = np.full(len(tokens), -1, dtype=np.int64)
            ids[inside] = inverse.reshape(-1)
            gram_ids.append(ids)
            self._gram_tables.append(table)
        words = tokens[predicted]
        self._levels = [None] * n
        self.discounts = [None] * n
        higher_type_of = None  # (k+1)-gram type of each predicted position
        higher_count = 0
        for k in range(n, 0, -1):
            contexts = gram_ids[k - 1][predicted - 1] if k > 1 else np.zeros_like(words)
            keys, type_of, raw = np.unique(contexts * vocabulary + words,
                                           return_inverse=True, return_counts=True)
            type_of = type_of.reshape(-1)
            if k == n:
                counts = raw
            else:
                # Continuation count: the number of (k+1)-gram types that end
                # in this k-gram (each type's suffix is the k-gram at the same
                # position).
                suffix = np.empty(higher_count, dtype=np.int64)
                suffix[higher_type_of] = type_of
                counts = np.bincount(suffix, minlength=len(keys))
            higher_type_of, higher_count = type_of, len(keys)
            discounts = _discounts(counts, self.discount)
            self.discounts[k - 1] = tuple(float(d) for d in discounts)
            self._levels[k - 1] = _level(keys, counts, discounts, vocabulary)
        self._fitted = True
        return self

    # -------------------------------------------------------------- scoring

    def log_probs(self, sequence):
        """Natural-log probabilities of each token of `sequence`, then of the
        end token, each given its history (len(sequence) + 1 values)."""
        self._check_fitted()
        return np.log(self._probabilities([sequence], "scored"))

    def perplexity(self, sequences):
        """exp(-mean log-probability) over every predicted token of
        `sequences`, the end tokens included."""
        self._check_fitted()
        probabilities = self._probabilities(sequences, "scored")
        return float(np.exp(-np.mean(np.log(probabilities))))

    def distribution(self, context):
        """P(next id | the last order - 1 ids of `context`, start-padded), a
        float64 array of shape (vocabulary_size,): excluded ids get 0, every
        other id more than 0, and it sums to 1."""
        self._check_fitted()
        history = self._context(context)
        probabilities = np.where(self._predictable, self._uniform, 0.0)
        for k in range(1, self.order + 1):
            level = self._levels[k - 1]
            found, context_id = self._context_id(history[len(history) - (k - 1):])
            if not found:
                break  # a longer context containing it is unseen too
            row = np.searchsorted(level["contexts"], context_id)
            if row == len(level["contexts"]) or level["contexts"][row] != context_id:
                continue  # seen as an m-gram but never followed by a word: back off
            start, stop = level["starts"][row], level["starts"][row + 1]
            probabilities *= level["gammas"][row]
            probabilities[level["keys"][start:stop] % self.vocabulary_size] += level["terms"][start:stop]
        return probabilities

    def top_k(self, context, k):
        """(ids, probabilities) of the k most likely next ids, most likely
        first (ties: the smaller id first). Excluded ids are never among them;
        fewer than k come back where fewer ids are predictable."""
        k = _integer(k, "k")
        if k < 1:
            raise ValueError(f"k must be at least 1, got {k}")
        probabilities = self.distribution(context)
        candidates = np.flatnonzero(self._predictable)
        k = min(k, len(candidates))
        scores = probabilities[candidates]
        if k < len(candidates):
            keep = np.argpartition(-scores, k - 1)[:k]
            # Ties at the boundary: argpartition picks arbitrarily, so take
            # all ids scoring at least the k-th score, then sort.
            threshold = scores[keep].min()
            keep = np.flatnonzero(scores >= threshold)
        else:
            keep = np.arange(len(candidates))
        keep = keep[np.lexsort((candidates[keep], -scores[keep]))][:k]
        ids = candidates[keep]
        return ids, probabilities[ids]

    # ----------------------------------------------------------- persistence

    def get_config(self):
        """The constructor arguments, JSON-serialisable."""
        return {
            "vocabulary_size": self.vocabulary_size,
            "order": self.order,
            "bos_id": self.bos_id,
            "eos_id": self.eos_id,
            "excluded_ids": list(self.excluded_ids),
            "discount": self.discount,
        }

    def save(self, path):
        """Writes the fitted model to `path`, an uncompressed `.npz` file."""
        self._check_fitted()
        arrays = {"config": np.array(json.dumps({**self.get_config(), "discounts": self.discounts}))}
        for m, table in enumerate(self._gram_tables, start=1):
            arrays[f"grams_{m}"] = table
        for k, level in enumerate(self._levels, start=1):
            for name, value in level.items():
                arrays[f"level_{k}_{name}"] = value
        with open(path, "wb") as file:
            np.savez(file, **arrays)

    @classmethod
    def load(cls, path):
        """The model that `save` wrote to `path`."""
        with np.load(path, allow_pickle=False) as data:
            config = json.loads(str(data["config"]))
            discounts = config.pop("discounts")
            model = cls(**config)
            model.discounts = [tuple(d) for d in discounts]
            model._gram_tables = [data[f"grams_{m}"] for m in range(1, model.order)]
            model._levels = [
                {name: data[f"level_{k}_{name}"] for name in ("keys", "terms", "contexts", "starts", "gammas")}
                for k in range(1, model.order + 1)
            ]
        model._fitted = True
        return model

    def __repr__(self):
        state = "fitted" if self._fitted else "not fitted"
        return (f"KneserNeyLM(vocabulary_size={self.vocabulary_size}, order={self.order}, "
                f"discount={self.discount!r}, {state})")

    # ------------------------------------------------------------- internals

    def _check_fitted(self):
        if not self._fitted:
            raise ValueError("this KneserNeyLM is not fitted yet: call fit(sequences) first")

    def _padded(self, sequences, what):
        """The sentences as one int64 array, each padded with order - 1 start
        tokens and one end token, and each position's offset in its sentence."""
        if isinstance(sequences, np.ndarray) and sequences.ndim == 1 and sequences.dtype != object:
            raise ValueError(f"the {what} sequences must be a list of sentences, got one flat array of ids")
        sequences = list(sequences)
        if not sequences:
            raise ValueError(f"the {what} corpus is empty: no sentences")
        lengths = np.fromiter((len(s) for s in sequences), dtype=np.int64, count=len(sequences))
        flat = _flatten(sequences, int(lengths.sum()), what)
        if len(flat):
            low, high = int(flat.min()), int(flat.max())
            if low < 0 or high >= self.vocabulary_size:
                bad = low if low < 0 else high
                raise ValueError(f"the {what} sequences contain id {bad}, outside 0..{self.vocabulary_size - 1}")
            excluded = ~self._predictable[flat]
            if excluded.any():
                bad = int(flat[np.argmax(excluded)])
                raise ValueError(
                    f"the {what} sequences contain id {bad}, one of excluded_ids {list(self.excluded_ids)} "
                    "that is never predicted (strip padding; the model adds the start and end tokens)"
                )
        padded_lengths = lengths + self.order
        total = int(padded_lengths.sum())
        starts = np.zeros(len(sequences), dtype=np.int64)
        np.cumsum(padded_lengths[:-1], out=starts[1:])
        tokens = np.full(total, self.bos_id, dtype=np.int64)
        sentence_of = np.repeat(np.arange(len(sequences)), lengths)
        tokens[np.arange(len(flat)) + self.order * sentence_of + (self.order - 1)] = flat
        tokens[starts + self.order - 1 + lengths] = self.eos_id
        offsets = np.arange(total, dtype=np.int64) - np.repeat(starts, padded_lengths)
        return tokens, offsets

    def _probabilities(self, sequences, what):
        """P(token | history) of every predicted position of `sequences`, in
        order, as one flat array."""
        tokens, offsets = self._padded(sequences, what)
        n, vocabulary = self.order, self.vocabulary_size
        predicted = np.flatnonzero(offsets >= n - 1)
        words = tokens[predicted]
        gram_ids = [np.zeros(len(tokens), dtype=np.int64)]
        for m in range(1, n):
            previous = np.empty_like(gram_ids[-1])
            previous[0] = 0
            previous[1:] = gram_ids[-1][:-1]
            table = self._gram_tables[m - 1]
            keys = previous * vocabulary + tokens
            rows = np.minimum(np.searchsorted(table, keys), len(table) - 1)
            found = (previous >= 0) & (offsets >= m - 1) & (table[rows] == keys)
            gram_ids.append(np.where(found, rows, -1))
        probabilities = np.full(len(words), self._uniform)
        for k in range(1, n + 1):
            level = self._levels[k - 1]
            contexts = gram_ids[k - 1][predicted - 1] if k > 1 else np.zeros_like(words)
            rows = np.minimum(np.searchsorted(level["contexts"], contexts), len(level["contexts"]) - 1)
            seen = (contexts >= 0) & (level["contexts"][rows] == contexts)
            keys = contexts * vocabulary + words
            entries = np.minimum(np.searchsorted(level["keys"], keys), len(level["keys"]) - 1)
            terms = np.where(seen & (level["keys"][entries] == keys), level["terms"][entries], 0.0)
            probabilities = np.where(seen, terms + level["gammas"][rows] * probabilities, probabilities)
        return probabilities

    def _context(self, context):
        """The last order - 1 ids of `context`, start-padded to that length."""
        context = np.asarray([] if context is None else context, dtype=np.int64).reshape(-1)
        if len(context) and (context.min() < 0 or context.max() >= self.vocabulary_size):
            bad = int(context.min() if context.min() < 0 else context.max())
            raise ValueError(f"the context contains id {bad}, outside 0..{self.vocabulary_size - 1}")
        kept = context[max(len(context) - (self.order - 1), 0):] if self.order > 1 else context[:0]
        padding = np.full(self.order - 1 - len(kept), self.bos_id, dtype=np.int64)
        return np.concatenate([padding, kept])

    def _context_id(self, context):
        """(found, dense id) of the m-gram `context` (m < order; id 0 for m = 0)."""
        context_id = 0
        for m, token in enumerate(context, start=1):
            table = self._gram_tables[m - 1]
            key = context_id * self.vocabulary_size + int(token)
            row = int(np.searchsorted(table, key))
            if row == len(table) or table[row] != key:
                return False, -1
            context_id = row
        return True, context_id


def _integer(value, name):
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)):
        raise ValueError(f"{name} must be an integer, got {value!r}")
    return int(value)


def _flatten(sequences, total, what):
    """All ids of `sequences` in one int64 array (lists via one fromiter pass,
    arrays via concatenate)."""
    if all(isinstance(s, np.ndarray) for s in sequences):
        for s in sequences:
            if s.ndim != 1 or (s.size and s.dtype.kind not in "iu"):
                raise ValueError(f"the {what} sequences must be 1-D integer arrays, got {s.dtype} of shape {s.shape}")
        if total == 0:
            return np.zeros(0, dtype=np.int64)
        return np.concatenate(sequences).astype(np.int64, copy=False)
    for s in sequences:
        if isinstance(s, (str, bytes)) or not hasattr(s, "__len__"):
            raise ValueError(f"each {what} sequence must be a list or array of ids, got {type(s).__name__}")
    try:
        return np.fromiter(itertools.chain.from_iterable(sequences), dtype=np.int64, count=total)
    except (TypeError, ValueError, OverflowError) as error:
        raise ValueError(f"the {what} sequences must hold integer ids: {error}") from None


def _discounts(counts, kind):
    """(D1, D2, D3+) from the count-of-counts of one order's counts."""
    n1, n2, n3, n4 = (int(np.count_nonzero(counts == r)) for r in (1, 2, 3, 4))
    y = n1 / (n1 + 2 * n2) if n1 > 0 and n2 > 0 else 0.5
    if kind == "absolute":
        return np.array([y, y, y])
    discounts = []
    for r, (low, high) in enumerate(((n1, n2), (n2, n3), (n3, n4)), start=1):
        d = r - (r + 1) * y * high / low if low > 0 and high > 0 else y
        discounts.append(d if 0 < d < r else y)
    return np.array(discounts)


def _level(keys, counts, discounts, vocabulary_size):
    """One order's lookup arrays: sorted n-gram keys with their discounted
    terms (c - D(c)) / c(h), and per context its gamma and its slice."""
    contexts, starts = np.unique(keys // vocabulary_size, return_index=True)
    bucket = np.minimum(counts, 3) - 1
    totals = np.add.reduceat(counts, starts).astype(np.float64)
    mass = np.add.reduceat(discounts[bucket], starts)
    rows = np.repeat(np.arange(len(contexts)), np.diff(np.append(starts, len(keys))))
    return {
        "keys": keys,
        "terms": (counts - discounts[bucket]) / totals[rows],
        "contexts": contexts,
        "starts": np.append(starts, len(keys)).astype(np.int64),
        "gammas": mass / totals,
    }
