"""The Kneser-Ney n-gram baseline of the next-word task (NumPy only, any backend)."""

import collections
import math
import pathlib
import subprocess
import sys

import numpy as np
import pytest

from rnnapps.tasks.next_word import ngram
from rnnapps.tasks.next_word.ngram import KneserNeyLM

V = 12  # ids 0 pad, 1 unknown, 2 bos, 3 eos, 4..11 words
CORPUS = [[4, 5, 6], [4, 5, 7, 1], [4, 5, 6, 8], [9, 5], [5, 6, 6, 4], [10, 4, 5], [4]]


def random_corpus(seed, sentences=60, vocabulary_size=V, low=4):
    rng = np.random.default_rng(seed)
    return [rng.integers(low, vocabulary_size, size=rng.integers(0, 8)).tolist() for _ in range(sentences)]


def markov_corpus(seed, sentences, vocabulary_size=60):
    """Sentences of a bigram source: after each word, two favoured successors
    take 85% of the probability, the end token 10%."""
    rng = np.random.default_rng(seed)
    words = np.arange(4, vocabulary_size)
    successors = {w: rng.choice(words, size=2, replace=False) for w in [2, *words]}
    corpus = []
    for _ in range(sentences):
        sentence, previous = [], 2
        while len(sentence) < 30:
            u = rng.random()
            if sentence and u < 0.10:
                break
            if u < 0.95:
                previous = int(successors[previous][int(u * 100) % 2])
            else:
                previous = int(rng.choice(words))
            sentence.append(previous)
        corpus.append(sentence)
    return corpus


def contexts_to_check(corpus, order):
    """Every context of the corpus, an unseen one and the empty one."""
    contexts = {()}
    for sentence in corpus:
        padded = [2] * (order - 1) + sentence
        for i in range(order - 1, len(padded) + 1):
            contexts.add(tuple(padded[max(i - (order - 1), 0):i]))
    contexts.add((11, 11, 11, 11))  # never seen in that order
    contexts.add((1,))
    return sorted(contexts)


@pytest.mark.parametrize("discount", ["modified", "absolute"])
@pytest.mark.parametrize("order", [1, 2, 3, 4])
def test_distribution_sums_to_one_and_excludes_only_excluded_ids(order, discount):
    lm = KneserNeyLM(V, order=order, discount=discount).fit(CORPUS)
    for context in contexts_to_check(CORPUS, order):
        p = lm.distribution(list(context))
        assert p.shape == (V,) and p.dtype == np.float64
        assert abs(p.sum() - 1.0) < 1e-9, context
        assert p[0] == 0.0 and p[2] == 0.0
        others = np.delete(p, [0, 2])
        assert np.all(others > 0), context  # eos, unknown and unseen ids too


def test_custom_excluded_ids_and_tokens():
    lm = KneserNeyLM(V, order=2, bos_id=11, eos_id=10, excluded_ids=(0, 11, 1)).fit([[4, 5], [2, 3, 4]])
    p = lm.distribution([4])
    assert abs(p.sum() - 1) < 1e-9 and p[[0, 1, 11]].tolist() == [0, 0, 0]
    assert np.all(p[2:11] > 0)
    assert lm.log_probs([4, 5]).shape == (3,)
    with pytest.raises(ValueError, match="excluded"):
        lm.log_probs([4, 1])


@pytest.mark.parametrize("order", [1, 2, 3])
def test_log_probs_agree_with_distribution(order):
    lm = KneserNeyLM(V, order=order).fit(CORPUS)
    for sentence in [[4, 5, 6], [11, 9, 1, 4], [], [3, 3]]:
        values = lm.log_probs(sentence)
        assert values.dtype == np.float64 and values.shape == (len(sentence) + 1,)
        targets = sentence + [3]
        for i, target in enumerate(targets):
            expected = math.log(lm.distribution(sentence[:i])[target])
            assert values[i] == pytest.approx(expected, rel=1e-12, abs=1e-12)


def test_perplexity_is_the_exponential_of_the_mean_negative_log_prob():
    lm = KneserNeyLM(V, order=3).fit(CORPUS)
    held_out = [[4, 5, 8], [9, 9], [1]]
    values = np.concatenate([lm.log_probs(s) for s in held_out])
    assert len(values) == 3 + 1 + 2 + 1 + 1 + 1
    assert lm.perplexity(held_out) == pytest.approx(math.exp(-values.mean()), rel=1e-12)


def reference_probability(corpus, vocabulary_size, order, discount, context, word, bos=2, eos=3, excluded=(0, 2)):
    """P(word | context) straight from the interpolated Kneser-Ney formulas,
    with dicts: the slow, obvious version of what `KneserNeyLM` vectorises."""
    raw = [collections.Counter() for _ in range(order + 1)]
    for sentence in corpus:
        padded = [bos] * (order - 1) + list(sentence) + [eos]
        for i in range(order - 1, len(padded)):
            for k in range(1, order + 1):
                raw[k][tuple(padded[i - k + 1:i + 1])] += 1
    counts = [None] * (order + 1)
    counts[order] = raw[order]
    for k in range(order - 1, 0, -1):
        counts[k] = collections.Counter(gram[1:] for gram in raw[k + 1])  # distinct left words
    predictable = [w for w in range(vocabulary_size) if w not in excluded]
    if word not in predictable:
        return 0.0
    p = 1.0 / len(predictable)
    history = ([bos] * (order - 1) + list(context))[len(context):] if order > 1 else []
    for k in range(1, order + 1):
        values = list(counts[k].values())
        n = [sum(c == r for c in values) for r in range(5)]
        y = n[1] / (n[1] + 2 * n[2]) if n[1] and n[2] else 0.5
        if discount == "absolute":
            d = {1: y, 2: y, 3: y}
        else:
            d = {}
            for r in (1, 2, 3):
                value = r - (r + 1) * y * n[r + 1] / n[r] if n[r] and n[r + 1] else y
                d[r] = value if 0 < value < r else y
        h = tuple(history[len(history) - (k - 1):]) if k > 1 else ()
        following = {g[-1]: c for g, c in counts[k].items() if g[:-1] == h}
        if not following:
            continue
        total = sum(following.values())
        gamma = sum(d[min(c, 3)] for c in following.values()) / total
        c = following.get(word, 0)
        p = (c - d[min(c, 3)] if c else 0.0) / total + gamma * p
    return p


@pytest.mark.parametrize("discount", ["modified", "absolute"])
@pytest.mark.parametrize("order", [1, 2, 3])
def test_matches_the_formulas_computed_with_dicts(order, discount):
    corpus = random_corpus(seed=order, sentences=80, vocabulary_size=9) + CORPUS
    lm = KneserNeyLM(V, order=order, discount=discount).fit(corpus)
    for context in contexts_to_check(corpus, order)[::3]:
        context = context[-order:] if order > 1 else context
        p = lm.distribution(list(context))
        expected = [reference_probability(corpus, V, order, discount, context, w) for w in range(V)]
        np.testing.assert_allclose(p, expected, rtol=1e-12, atol=1e-15)


def test_one_probability_by_hand_absolute_discount():
    # Padded: <s> 4 5 </s>, <s> 4 6 </s>, <s> 5 </s>.
    lm = KneserNeyLM(8, order=2, discount="absolute").fit([[4, 5], [4, 6], [5]])
    # Unigram continuation counts: 4:{<s>} 1, 5:{4,<s>} 2, </s>:{5,6} 2, 6:{4} 1;
    # total 6, n1 = n2 = 2 -> D = 2 / (2 + 2*2) = 1/3; 4 types; 6 predictable ids.
    d1 = 1 / 3
    p1_5 = (2 - d1) / 6 + d1 * 4 / 6 * (1 / 6)
    # Bigram counts: (<s>,4) 2, (5,</s>) 2, the other four 1 -> D = 4 / (4 + 2*2) = 1/2.
    # After 4: (4,5) 1, (4,6) 1: total 2, two types.
    d2 = 1 / 2
    p2_5_after_4 = (1 - d2) / 2 + d2 * 2 / 2 * p1_5
    assert p2_5_after_4 == pytest.approx(44 / 108)
    assert lm.distribution([4])[5] == pytest.approx(p2_5_after_4, rel=1e-12)
    assert lm.discounts == [pytest.approx((d1,) * 3), pytest.approx((d2,) * 3)]
    # An id never seen gets only the uniform share: D1 * 4/6 * 1/6, scaled by
    # the bigram's back-off weight 1/2 after 4.
    assert lm.distribution([4])[7] == pytest.approx(d2 * (d1 * 4 / 6 / 6))


def test_one_probability_by_hand_modified_discounts():
    # Order 1, raw counts: 4:1 5:1 6:2 7:3 8:4 </s>:1, total 12.
    lm = KneserNeyLM(10, order=1).fit([[4, 5, 6, 6, 7, 7, 7, 8, 8, 8, 8]])
    # n1 = 3, n2 = n3 = n4 = 1: Y = 3/5, D1 = 1 - 2Y/3, D2 = 2 - 3Y, D3+ = 3 - 4Y.
    y = 3 / 5
    d1, d2, d3 = 1 - 2 * y * 1 / 3, 2 - 3 * y, 3 - 4 * y
    assert lm.discounts == [pytest.approx((d1, d2, d3))]
    gamma = (3 * d1 + 1 * d2 + 2 * d3) / 12  # three 1s, one 2, two of 3+
    p = lm.distribution([])
    assert p[8] == pytest.approx((4 - d3) / 12 + gamma / 8, rel=1e-12)
    assert p[9] == pytest.approx(gamma / 8, rel=1e-12)  # unseen: the uniform share


def test_order_one_is_a_smoothed_unigram():
    corpus = random_corpus(seed=5, sentences=200)
    lm = KneserNeyLM(V, order=1).fit(corpus)
    p = lm.distribution([])
    for context in ([4], [5, 6, 7], [11, 1]):
        np.testing.assert_array_equal(lm.distribution(context), p)
    frequency = collections.Counter(w for s in corpus for w in s + [3])
    total = sum(frequency.values())
    for w, c in frequency.items():
        assert p[w] == pytest.approx(c / total, abs=0.02)
    ordered = sorted(frequency, key=frequency.get)
    assert np.all(np.diff(p[ordered]) >= -1e-15)  # more frequent, more likely
    assert 0 < p[1] < min(p[w] for w in frequency)  # unknown id: never seen


def test_higher_orders_beat_a_unigram_on_bigram_structured_text():
    corpus = markov_corpus(0, 2300)  # one source (its seed draws the transitions), split
    train, held_out = corpus[:2000], corpus[2000:]
    perplexity = {n: KneserNeyLM(60, order=n).fit(train).perplexity(held_out) for n in (1, 2, 3)}
    assert perplexity[2] < 0.5 * perplexity[1]
    assert perplexity[3] < perplexity[1]
    # The source's bigram entropy bounds what a bigram model can reach.
    assert perplexity[2] > 2


def test_training_text_is_more_likely_than_random_ids():
    corpus = markov_corpus(3, 500)
    lm = KneserNeyLM(60, order=3).fit(corpus)
    rng = np.random.default_rng(9)
    noise = [rng.integers(4, 60, size=len(s)).tolist() for s in corpus]
    assert lm.perplexity(corpus) < 0.2 * lm.perplexity(noise)


def test_top_k():
    lm = KneserNeyLM(V, order=2).fit(CORPUS)
    ids, probabilities = lm.top_k([4], 3)
    p = lm.distribution([4])
    assert ids.tolist()[0] == 5 and len(ids) == 3
    np.testing.assert_array_equal(probabilities, p[ids])
    assert np.all(np.diff(probabilities) <= 0)
    assert probabilities[-1] >= np.sort(np.delete(p, ids))[-1]
    ids, probabilities = lm.top_k([4], 100)  # more than the 10 predictable ids
    assert sorted(ids.tolist()) == [1, 3, 4, 5, 6, 7, 8, 9, 10, 11]
    assert probabilities.sum() == pytest.approx(1.0)
    # Ties (unseen ids after an unseen context share the uniform share): smaller id first.
    uniform = KneserNeyLM(V, order=1).fit([[4]])
    assert uniform.top_k([], 3)[0].tolist() == [3, 4, 1]
    with pytest.raises(ValueError, match="k must"):
        lm.top_k([4], 0)


def test_arrays_and_lists_give_the_same_model():
    corpus = random_corpus(seed=2)
    from_lists = KneserNeyLM(V, order=3).fit(corpus)
    from_arrays = KneserNeyLM(V, order=3).fit(iter([np.array(s, dtype=np.int32) for s in corpus]))
    held_out = random_corpus(seed=3, sentences=10)
    assert from_lists.perplexity(held_out) == from_arrays.perplexity([np.array(s) for s in held_out])
    np.testing.assert_array_equal(from_lists.distribution(np.array([4, 5])), from_arrays.distribution((4, 5)))


def test_fitting_again_starts_over():
    lm = KneserNeyLM(V, order=2).fit([[9, 9, 9]] * 10)
    assert lm.top_k([9], 1)[0][0] == 9
    lm.fit(CORPUS)
    np.testing.assert_array_equal(lm.distribution([9]), KneserNeyLM(V, order=2).fit(CORPUS).distribution([9]))


def test_bad_input_is_a_clear_value_error():
    with pytest.raises(ValueError, match="order must be at least 1"):
        KneserNeyLM(V, order=0)
    with pytest.raises(ValueError, match="order must be an integer"):
        KneserNeyLM(V, order=2.0)
    with pytest.raises(ValueError, match="eos_id=3 must be predictable"):
        KneserNeyLM(V, excluded_ids=(0, 2, 3))
    with pytest.raises(ValueError, match="bos_id=12 is outside"):
        KneserNeyLM(V, bos_id=12)
    with pytest.raises(ValueError, match="discount"):
        KneserNeyLM(V, discount="good-turing")
    lm = KneserNeyLM(V, order=2)
    with pytest.raises(ValueError, match="not fitted"):
        lm.distribution([4])
    with pytest.raises(ValueError, match="corpus is empty"):
        lm.fit([])
    with pytest.raises(ValueError, match="id 12, outside 0..11"):
        lm.fit([[4, 5], [12]])
    with pytest.raises(ValueError, match="id -1, outside"):
        lm.fit([[4, -1]])
    with pytest.raises(ValueError, match="id 0, one of excluded_ids"):
        lm.fit([[4, 5, 0, 0]])  # padding left in
    with pytest.raises(ValueError, match="id 2, one of excluded_ids"):
        lm.fit([[2, 4]])  # start token added by hand
    with pytest.raises(ValueError, match="integer arrays"):
        lm.fit([np.array([4.0, 5.0])])
    with pytest.raises(ValueError, match="list of sentences"):
        lm.fit(np.array([4, 5, 6]))
    lm.fit(CORPUS)
    with pytest.raises(ValueError, match="id 99, outside"):
        lm.log_probs([4, 99])
    with pytest.raises(ValueError, match="id 12, outside"):
        lm.perplexity([[4], [12]])
    with pytest.raises(ValueError, match="id -3, outside"):
        lm.distribution([4, -3])
    with pytest.raises(ValueError, match="corpus is empty"):
        lm.perplexity([])


def test_save_and_load_round_trip(tmp_path):
    corpus = random_corpus(seed=4, sentences=100)
    for order in (1, 3):
        lm = KneserNeyLM(V, order=order, discount="absolute").fit(corpus)
        path = tmp_path / f"kn{order}.npz"
        lm.save(path)
        loaded = KneserNeyLM.load(path)
        assert loaded.get_config() == lm.get_config() == {
            "vocabulary_size": V, "order": order, "bos_id": 2, "eos_id": 3, "excluded_ids": [0, 2],
            "discount": "absolute",
        }
        assert loaded.discounts == lm.discounts
        held_out = random_corpus(seed=8, sentences=20)
        assert loaded.perplexity(held_out) == lm.perplexity(held_out)
        for context in ([], [4], [4, 5], [11, 11]):
            np.testing.assert_array_equal(loaded.distribution(context), lm.distribution(context))
    with pytest.raises(ValueError, match="not fitted"):
        KneserNeyLM(V).save(tmp_path / "unfitted.npz")


def test_a_large_corpus_gives_normalised_distributions():
    rng = np.random.default_rng(0)
    vocabulary_size = 16_004
    # 400,000 tokens with a Zipf-like word distribution.
    words = np.minimum(rng.zipf(1.2, size=400_000), vocabulary_size - 5) + 3
    cuts = np.cumsum(rng.integers(3, 16, size=45_000))
    sentences = [s.tolist() for s in np.split(words, cuts[cuts < len(words)])]
    lm = KneserNeyLM(vocabulary_size, order=3).fit(sentences[:40_000])
    assert lm.perplexity(sentences[40_000:]) > 1
    for sentence in sentences[40_000:40_100]:
        assert abs(lm.distribution(sentence[:2]).sum() - 1) < 1e-9


def test_module_imports_neither_keras_nor_tensorflow():
    path = pathlib.Path(ngram.__file__)
    code = (
        "import importlib.util, sys\n"
        f"spec = importlib.util.spec_from_file_location('ngram', {str(path)!r})\n"
        "module = importlib.util.module_from_spec(spec); spec.loader.exec_module(module)\n"
        "module.KneserNeyLM(8, order=2).fit([[4, 5]]).distribution([4])\n"
        "print(sorted(m for m in sys.modules if m.split('.')[0] in ('keras', 'tensorflow', 'jax')))\n"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert result.stdout.strip() == "[]"


# --- The n-gram in TensorFlow ops (what the export serves) ------------------------------


@pytest.mark.parametrize("order", [2, 3, 5])
def test_tensorflow_tables_give_the_numpy_models_distribution_and_probabilities(order):
    import tensorflow as tf

    from rnnapps.tasks.next_word.interpolation import NGramTensors, histories, last_history

    rng = np.random.default_rng(order)
    sentences = [list(rng.integers(4, 30, size=rng.integers(1, 9))) for _ in range(300)]
    lm = KneserNeyLM(30, order=order).fit(sentences)
    tables = NGramTensors(lm)
    # Seen and unseen contexts, [UNK] (1) and the end (3) among them.
    texts = [list(rng.integers(1, 30, size=rng.integers(1, 7))) for _ in range(20)]
    texts += sentences[:5]
    ids = np.zeros((len(texts), 9), np.int32)
    for i, text in enumerate(texts):
        ids[i, 0] = 2
        ids[i, 1:len(text) + 1] = text
    context = histories(tf.constant(ids), order).numpy()
    rows, words, expected = [], [], []
    for i, text in enumerate(texts):
        for j, word in enumerate(text + [3]):
            rows.append(context[i, j])
            words.append(word)
            expected.append(lm.distribution(text[:j]))
    rows, expected = np.array(rows), np.array(expected)
    got = tables.distribution(tf.constant(rows)).numpy()
    np.testing.assert_allclose(got, expected, atol=1e-6)
    np.testing.assert_allclose(tables.probabilities(tf.constant(rows), tf.constant(words)).numpy(),
                               expected[np.arange(len(words)), words], atol=1e-6)
    # After each (right-padded) row: the context of its next word.
    last = last_history(tf.constant(ids), order).numpy()
    for i, text in enumerate(texts):
        np.testing.assert_array_equal(last[i], context[i, len(text)])
