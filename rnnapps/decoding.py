"""Beam search over a recurrent decoder, in `keras.ops` (any backend, in-graph).

Shared by the tasks that generate text (translation, captioning) and usable
with any decoder written as a step function.

keras-hub's samplers (`keras_hub.samplers.BeamSampler`) drive a decoder that
re-reads a fixed-length prompt buffer through a key/value cache and rank
beams by raw log-probability; a recurrent decoder carries its state instead,
and comparing translations of different lengths needs a length penalty. So
this module has its own beam search: a `while` loop (`keras.ops.while_loop`)
that stops when every beam has emitted the end token or at `max_length`,
and ranks the finished beams by the GNMT length-normalised score
`log P(y | x) / ((5 + |y|) / 6) ** alpha` (Wu et al. 2016). Beam size 1 is
greedy decoding.
"""

from keras import ops

__all__ = ["compiled", "beam_search", "length_normalised"]

_NEG_INF = -1e9


def _gather_beams(values, beams, batch, beam_size):
    """`values[b * K + beams[b, k]]` for a tensor flattened to `(batch * K, ...)`."""
    shape = ops.shape(values)
    grouped = ops.reshape(values, (batch, beam_size, *shape[1:]))
    index = ops.reshape(beams, (batch, beam_size) + (1,) * (len(shape) - 1))
    gathered = ops.take_along_axis(grouped, index, axis=1)
    return ops.reshape(gathered, shape)


def length_normalised(log_probs, lengths, length_penalty):
    """GNMT's length normalisation (Wu et al. 2016): `log_probs / ((5 +
    lengths) / 6) ** length_penalty`, how `beam_search` ranks and scores
    sequences of `lengths` tokens (the end token included)."""
    return log_probs / ops.power((5.0 + lengths) / 6.0, length_penalty)


def beam_search(
    step_fn,
    initial_states,
    batch_size,
    beam_size=4,
    max_length=50,
    start_id=2,
    end_id=3,
    length_penalty=0.6,
    return_all=False,
):
    """Decodes with beam search; returns the best sequence per example.

    Args:
        step_fn: `step_fn(tokens, states) -> (logits, states)`: `tokens` is
            `(batch * beam_size,)` int32 (the previous token of each beam),
            `states` a list of `(batch * beam_size, ...)` tensors; `logits`
            is `(batch * beam_size, vocabulary)`.
        initial_states: list of `(batch, ...)` tensors (e.g. the encoder's
            final LSTM states, or its outputs for attention: anything the
            step needs, per example); they are repeated for every beam.
        batch_size: the batch size (an int or a scalar tensor).
        beam_size: beams kept per example; 1 is greedy decoding.
        max_length: most tokens generated, the end token included.
        start_id, end_id: the start and end token ids.
        length_penalty: alpha of the length normalisation; 0 ranks by the
            raw log-probability (which favours short outputs).

    Returns:
        `(tokens, scores)`: `tokens` `(batch, max_length)` int32, the best
        beam's tokens, 0 after the end token (the end token itself is
        kept); `scores` `(batch,)` its length-normalised log-probability.
        Beams that emitted the end token are preferred to beams cut off at
        `max_length`. With `return_all=True`: every beam, best first,
        `tokens` `(batch, beam_size, max_length)` and `scores`
        `(batch, beam_size)` (a beam cut off where another ended scores
        `-1e9`).

    Example (a toy decoder that always predicts the token after its input):

    >>> import numpy as np
    >>> from keras import ops
    >>> def step(tokens, states):
    ...     logits = ops.one_hot(ops.minimum(tokens + 1, 5), 6) * 10.0
    ...     return logits, states
    >>> tokens, scores = beam_search(step, [ops.zeros((2, 1))], 2, beam_size=3,
    ...                              max_length=6, start_id=2, end_id=5)
    >>> ops.convert_to_numpy(tokens).tolist()
    [[3, 4, 5, 0, 0, 0], [3, 4, 5, 0, 0, 0]]
    """
    if beam_size < 1:
        raise ValueError(f"beam_size must be at least 1. Received: beam_size={beam_size}")
    if max_length < 1:
        raise ValueError(f"max_length must be at least 1. Received: max_length={max_length}")
    k = beam_size
    states = [ops.repeat(s, k, axis=0) for s in initial_states]
    tokens = ops.zeros((batch_size, k, max_length), "int32")
    last = ops.full((batch_size * k,), start_id, "int32")
    # Only the first beam is live at the start, so the first step's top-k
    # picks k different tokens instead of k copies of one.
    first = ops.convert_to_tensor([0.0] + [_NEG_INF] * (k - 1), "float32")
    scores = ops.tile(ops.expand_dims(first, 0), (batch_size, 1))
    finished = ops.zeros((batch_size, k), "bool")
    lengths = ops.zeros((batch_size, k), "int32")
    positions = ops.arange(max_length, dtype="int32")

    def cond(step, last, states, tokens, scores, finished, lengths):
        return ops.logical_and(step < max_length, ops.logical_not(ops.all(finished)))

    def body(step, last, states, tokens, scores, finished, lengths):
        logits, new_states = step_fn(last, list(states))
        log_probs = ops.log_softmax(ops.cast(logits, "float32"), axis=-1)
        vocabulary = ops.shape(log_probs)[-1]
        log_probs = ops.reshape(log_probs, (batch_size, k, vocabulary))
        # A finished beam can only repeat the end token, at no cost, so it
        # keeps its score and competes with the live beams as it is.
        end_only = ops.where(
            ops.arange(vocabulary) == end_id, 0.0, _NEG_INF
        )
        log_probs = ops.where(ops.expand_dims(finished, -1), end_only, log_probs)
        total = ops.reshape(ops.expand_dims(scores, -1) + log_probs, (batch_size, -1))
        top_scores, top_index = ops.top_k(total, k)
        top_index = ops.cast(top_index, "int32")
        beams = top_index // vocabulary
        chosen = top_index % vocabulary
        was_finished = ops.take_along_axis(finished, beams, axis=1)
        tokens = ops.take_along_axis(tokens, ops.expand_dims(beams, -1), axis=1)
        write = ops.where(was_finished, 0, chosen)
        tokens = ops.where(
            positions == step, ops.expand_dims(write, -1), tokens
        )
        lengths = ops.take_along_axis(lengths, beams, axis=1) + ops.cast(
            ops.logical_not(was_finished), "int32"
        )
        finished = ops.logical_or(was_finished, chosen == end_id)
        # A state the step hands back as it got it (an attention decoder's
        # image regions) has stayed what `ops.repeat` made it, the same for
        # every beam of an example: reordering its beams would copy it for
        # nothing.
        states = [new if new is old else _gather_beams(new, beams, batch_size, k)
                  for old, new in zip(states, new_states)]
        last = ops.reshape(chosen, (-1,))
        return step + 1, last, states, tokens, top_scores, finished, lengths

    loop = ops.while_loop(
        cond,
        body,
        (ops.convert_to_tensor(0, "int32"), last, states, tokens, scores, finished, lengths),
        maximum_iterations=max_length,
    )
    _, _, _, tokens, scores, finished, lengths = loop
    lengths = ops.cast(ops.maximum(lengths, 1), "float32")
    normalised = length_normalised(scores, lengths, length_penalty)
    # A beam cut off by max_length loses to any beam that ended.
    eligible = ops.logical_or(finished, ops.logical_not(ops.any(finished, axis=1, keepdims=True)))
    normalised = ops.where(eligible, normalised, _NEG_INF)
    if return_all:
        order = ops.cast(ops.argsort(-normalised, axis=1), "int32")
        return (ops.take_along_axis(tokens, ops.expand_dims(order, -1), axis=1),
                ops.take_along_axis(normalised, order, axis=1))
    best = ops.expand_dims(ops.cast(ops.argmax(normalised, axis=1), "int32"), -1)
    best_tokens = ops.take_along_axis(tokens, ops.expand_dims(best, -1), axis=1)[:, 0]
    best_scores = ops.take_along_axis(normalised, best, axis=1)[:, 0]
    return best_tokens, best_scores


def compiled(model, fn):
    """`fn(*arrays)` (`keras.ops` on `model`'s layers, e.g. a beam search)
    compiled on the backend Keras runs: a `tf.function` on TensorFlow;
    `jax.jit` on JAX with the model's variables passed in
    (`keras.StatelessScope`), not baked into the program, so that it compiles
    once per input shape and always reads the current weights; `fn` itself
    elsewhere. Called with NumPy arrays; returns the backend's tensors.

    >>> import keras, numpy as np
    >>> model = keras.Sequential([keras.Input((2,)), keras.layers.Dense(1, use_bias=False)])
    >>> model.set_weights([np.ones((2, 1), "float32")])
    >>> double = compiled(model, lambda x: 2 * model(x))
    >>> float(keras.ops.convert_to_numpy(double(np.array([[1.0, 2.0]], "float32")))[0, 0])
    6.0
    """
    import keras

    backend = keras.backend.backend()
    if backend == "tensorflow":
        import tensorflow as tf

        return tf.function(fn, reduce_retracing=True)
    if backend != "jax":
        return fn
    import jax

    if not model.built:
        model.build()
    variables = list(model.variables)

    @jax.jit
    def run(values, *arrays):
        with keras.StatelessScope(state_mapping=list(zip(variables, values))):
            return fn(*arrays)

    return lambda *arrays: run([v.value for v in variables], *arrays)
