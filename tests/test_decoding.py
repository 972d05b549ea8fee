"""`rnnapps.decoding.beam_search`, on every backend."""

import numpy as np
import pytest

from keras import ops

from rnnapps.decoding import beam_search

END_ID = 3


def table_step(table):
    """A decoder whose next-token log-probabilities depend on the last token only."""
    logits = ops.convert_to_tensor(np.log(np.asarray(table, "float32") + 1e-9))

    def step(tokens, states):
        return ops.take(logits, tokens, axis=0), states

    return step


# Tokens: 0 pad, 1 "a", 2 start, 3 end, 4 "b". Greedy takes "a" (0.6) and then
# ends at 0.55 (total 0.33); beam search finds "b" (0.4) then end at 1.0.
TABLE = [
    [1, 0, 0, 0, 0],
    [0, 0, 0, 0.55, 0.45],
    [0, 0.6, 0, 0, 0.4],
    [0, 0, 0, 1, 0],
    [0, 0, 0, 1.0, 0],
]


def test_beam_search_finds_what_greedy_misses():
    state = [ops.zeros((1, 1))]
    greedy, greedy_score = beam_search(table_step(TABLE), state, 1, beam_size=1, max_length=4, length_penalty=0.0)
    beam, beam_score = beam_search(table_step(TABLE), state, 1, beam_size=2, max_length=4, length_penalty=0.0)
    assert ops.convert_to_numpy(greedy)[0].tolist()[:2] == [1, 3]
    assert ops.convert_to_numpy(beam)[0].tolist() == [4, 3, 0, 0]
    np.testing.assert_allclose(ops.convert_to_numpy(beam_score), np.log([0.4]), rtol=1e-4)
    np.testing.assert_allclose(ops.convert_to_numpy(greedy_score), np.log([0.33]), rtol=1e-4)


def test_return_all_gives_every_beam_best_first():
    # The two beams of TABLE: "b end" (0.4) and "a end" (0.33), best first;
    # the first is what beam search returns without return_all.
    state = [ops.zeros((1, 1))]
    tokens, scores = beam_search(table_step(TABLE), state, 1, beam_size=2, max_length=4,
                                 length_penalty=0.0, return_all=True)
    assert ops.convert_to_numpy(tokens).tolist() == [[[4, 3, 0, 0], [1, 3, 0, 0]]]
    np.testing.assert_allclose(ops.convert_to_numpy(scores), np.log([[0.4, 0.33]]), rtol=1e-4)
    best, best_score = beam_search(table_step(TABLE), state, 1, beam_size=2, max_length=4,
                                   length_penalty=0.0)
    assert ops.convert_to_numpy(best).tolist() == [ops.convert_to_numpy(tokens)[0, 0].tolist()]


def test_length_penalty_prefers_longer_outputs():
    # End now with 0.3, or continue "a a a end" with 0.7 * 0.7 * 0.7 * 1.
    table = [
        [1, 0, 0, 0, 0],
        [0, 0.7, 0, 0.3, 0],
        [0, 0.7, 0, 0.3, 0],
        [0, 0, 0, 1, 0],
        [0, 0, 0, 1, 0],
    ]
    step = table_step(table)
    state = [ops.zeros((1, 1))]
    short, _ = beam_search(step, state, 1, beam_size=4, max_length=5, length_penalty=0.0)
    long, _ = beam_search(step, state, 1, beam_size=4, max_length=5, length_penalty=2.0)
    short, long = ops.convert_to_numpy(short)[0], ops.convert_to_numpy(long)[0]
    assert (short != 0).sum() < (long != 0).sum()
    assert END_ID in short.tolist() and END_ID in long.tolist()


def test_max_length_stops_an_endless_decoder():
    table = np.full((5, 5), 1e-6)
    table[:, 1] = 1.0  # always "a", never the end token
    tokens, scores = beam_search(table_step(table), [ops.zeros((3, 2))], 3, beam_size=2, max_length=7)
    tokens = ops.convert_to_numpy(tokens)
    assert tokens.shape == (3, 7) and (tokens == 1).all()
    assert np.isfinite(ops.convert_to_numpy(scores)).all()


@pytest.mark.parametrize("kwargs", [{"beam_size": 0}, {"max_length": 0}])
def test_beam_search_rejects_bad_settings(kwargs):
    with pytest.raises(ValueError, match=next(iter(kwargs))):
        beam_search(table_step(TABLE), [ops.zeros((1, 1))], 1, **kwargs)


def test_beam_search_compiles_on_the_backend():
    # What the tasks' test scores rely on: the search inside jax.jit or a
    # tf.function (as in the exports) decodes as it does eagerly.
    import keras

    backend = keras.backend.backend()
    if backend == "jax":
        import jax

        compile_ = jax.jit
    elif backend == "tensorflow":
        import tensorflow as tf

        compile_ = tf.function
    else:
        pytest.skip(f"no compiled function tested on {backend}")

    def search(states):
        return beam_search(table_step(TABLE), [states], 2, beam_size=2, max_length=4,
                           length_penalty=0.6)

    states = np.zeros((2, 1), "float32")
    eager, compiled = search(states), compile_(search)(states)
    assert ops.convert_to_numpy(compiled[0]).tolist() == [[4, 3, 0, 0]] * 2
    np.testing.assert_array_equal(ops.convert_to_numpy(compiled[0]), ops.convert_to_numpy(eager[0]))
    np.testing.assert_allclose(ops.convert_to_numpy(compiled[1]), ops.convert_to_numpy(eager[1]),
                               rtol=1e-6)


@pytest.mark.parametrize("compiled", [False, True], ids=["eager", "compiled"])
def test_states_the_step_hands_back_unchanged_are_not_reordered(compiled):
    # Each example's own table (a per-example state the step reads and hands
    # back as it is, as an attention decoder does with the image's regions),
    # and a state that changes every step (the tokens written so far). Beam
    # search leaves the first as it is instead of reordering its beams; what
    # it writes must not change for that.
    import keras

    swapped = [0, 4, 2, 3, 1]  # "a" and "b" trade places
    tables = np.log(np.asarray([TABLE, np.asarray(TABLE)[swapped][:, swapped]], "float32") + 1e-9)

    def step(copy):
        def run(tokens, states):
            table, written = states
            rows = ops.take_along_axis(table, ops.reshape(tokens, (-1, 1, 1)), axis=1)[:, 0]
            written = written + ops.one_hot(tokens, 5)
            return rows + 0.01 * written, [table + 0.0 if copy else table, written]
        return run

    def search(copy):
        def go(tables):
            return beam_search(step(copy), [tables, ops.zeros((2, 5))], 2, beam_size=2,
                               max_length=5, length_penalty=0.6)
        if compiled and keras.backend.backend() == "tensorflow":
            import tensorflow as tf

            return tf.function(go)(tables)
        if compiled and keras.backend.backend() == "jax":
            import jax

            return jax.jit(go)(tables)
        return go(tables)

    kept, copied = search(copy=False), search(copy=True)
    np.testing.assert_array_equal(ops.convert_to_numpy(kept[0]), ops.convert_to_numpy(copied[0]))
    np.testing.assert_allclose(ops.convert_to_numpy(kept[1]), ops.convert_to_numpy(copied[1]),
                               rtol=1e-6)
    # Each example decoded by its own table: "b end" and, swapped, "a end".
    assert ops.convert_to_numpy(kept[0])[:, :2].tolist() == [[4, 3], [1, 3]]
