import numpy as np
import pytest

import keras
from keras import ops

from rnnapps.layers import IRNN
from rnnapps.layers import IRNNCell


def numpy_irnn(x, kernel, recurrent_kernel, bias, h0=None):
    """h_t = relu(x_t W + h_{t-1} U + b), all outputs."""
    batch, steps, _ = x.shape
    h = np.zeros((batch, recurrent_kernel.shape[0]), "float32") if h0 is None else h0
    outputs = []
    for t in range(steps):
        h = np.maximum(x[:, t] @ kernel + h @ recurrent_kernel + bias, 0.0)
        outputs.append(h)
    return np.stack(outputs, axis=1)


def to_list(outputs):
    outputs = outputs if isinstance(outputs, (list, tuple)) else [outputs]
    return [ops.convert_to_numpy(o) for o in outputs]


@pytest.fixture
def data():
    rng = np.random.default_rng(0)
    x = rng.standard_normal((3, 6, 4)).astype("float32")
    mask = np.ones((3, 6), bool)
    mask[0, 4:] = False  # right padding
    mask[1, :2] = False  # left padding
    return x, mask


@pytest.mark.parametrize("hoist", [False, True])
def test_outputs_match_numpy_reference(data, hoist):
    x, _ = data
    rng = np.random.default_rng(1)
    kernel = rng.standard_normal((4, 5)).astype("float32") * 0.5
    recurrent_kernel = rng.standard_normal((5, 5)).astype("float32") * 0.3
    bias = rng.standard_normal(5).astype("float32") * 0.1
    layer = IRNN(5, return_sequences=True, hoist_input_projection=hoist)
    layer.build(x.shape)
    layer.set_weights([kernel, recurrent_kernel, bias])
    expected = numpy_irnn(x, kernel, recurrent_kernel, bias)
    np.testing.assert_allclose(to_list(layer(x))[0], expected, rtol=1e-5, atol=1e-5)


def test_initialisation_follows_the_paper():
    layer = IRNN(200, recurrent_gain=0.9)
    layer.build((None, None, 300))
    kernel, recurrent_kernel, bias = layer.get_weights()
    np.testing.assert_array_equal(recurrent_kernel, 0.9 * np.eye(200, dtype="float32"))
    np.testing.assert_array_equal(bias, np.zeros(200))
    # N(0, 0.001): 60,000 draws put the sample std within a few percent.
    assert 0.00095 < kernel.std() < 0.00105
    assert abs(kernel.mean()) < 0.0001


def test_identity_start_integrates_the_inputs():
    # With U = I and b = 0, while x_t W >= 0 the state is the running sum of
    # the projected inputs: the network starts as an integrator that carries
    # information (and gradients) across time unchanged.
    x = np.abs(np.random.default_rng(2).standard_normal((2, 8, 3))).astype("float32")
    layer = IRNN(4, kernel_initializer="ones", return_sequences=True)
    np.testing.assert_allclose(
        to_list(layer(x))[0],
        np.cumsum(x @ np.ones((3, 4), "float32"), axis=1),
        rtol=1e-5,
    )


OPTIONS = [
    {},
    {"return_sequences": True},
    {"return_state": True},
    {"go_backwards": True, "return_sequences": True},
    {"return_sequences": True, "zero_output_for_mask": True},
    {"unroll": True, "return_sequences": True},
]


@pytest.mark.parametrize("hoist", [False, True])
@pytest.mark.parametrize("use_mask", [False, True])
@pytest.mark.parametrize("options", OPTIONS, ids=lambda o: ",".join(o) or "default")
def test_matches_simple_rnn_relu(data, hoist, use_mask, options):
    x, mask = data
    mask = mask if use_mask else None
    ours = IRNN(5, hoist_input_projection=hoist, **options)
    builtin = keras.layers.SimpleRNN(5, activation="relu", **options)
    ours.build(x.shape)
    builtin.build(x.shape)
    weights = [w + 0.1 for w in ours.get_weights()]  # not just the identity
    ours.set_weights(weights)
    builtin.set_weights(weights)
    for a, b in zip(to_list(ours(x, mask=mask)), to_list(builtin(x, mask=mask))):
        np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("unroll", [None, 1, 4, 8, 64])
@pytest.mark.parametrize("go_backwards", [False, True])
def test_scan_unroll_gives_the_same_outputs(data, unroll, go_backwards, monkeypatch):
    # The hoisted, unmasked loop is one `ops.scan` running `_scan_unroll`
    # steps per iteration (None: Keras's own loop); 4 does not divide the 6
    # steps and 64 exceeds them.
    x, _ = data
    kwargs = dict(return_sequences=True, return_state=True, go_backwards=go_backwards)
    reference = IRNN(5, kernel_initializer="glorot_uniform", **kwargs)
    expected = to_list(reference(x))
    monkeypatch.setattr(IRNN, "_scan_unroll", unroll)
    layer = IRNN(5, hoist_input_projection=True, **kwargs)
    layer.build(x.shape)
    layer.set_weights(reference.get_weights())
    for a, b in zip(to_list(layer(x)), expected):
        np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("gradient", ["autodiff", "custom"])
@pytest.mark.parametrize("return_sequences", [False, True])
def test_hoisted_training_step_matches_the_step_by_step_loop(
    data, return_sequences, gradient, monkeypatch
):
    # One SGD step through the hoisted scan (differentiated by the backend or
    # by `_relu_scan`'s own gradient) gives the same weights as one through
    # the per-step cell: the gradients agree.
    monkeypatch.setattr(IRNN, "_scan_gradient", gradient)
    x, _ = data
    y = np.random.default_rng(3).standard_normal((3, 1)).astype("float32")

    z = np.random.default_rng(4).standard_normal((3, 2)).astype("float32")

    def train(hoist):
        # The initial state comes from a Dense layer, so the gradient with
        # respect to the initial state is checked too.
        keras.utils.set_random_seed(0)
        sequence, context = keras.Input(x.shape[1:]), keras.Input((2,))
        state = keras.layers.Dense(5, activation="relu")(context)
        hidden = IRNN(
            5, return_sequences=return_sequences, hoist_input_projection=hoist,
            kernel_initializer="glorot_uniform",
        )(sequence, initial_state=state)
        output = keras.layers.Dense(1)(keras.layers.Flatten()(hidden))
        model = keras.Model([sequence, context], output)
        model.compile(keras.optimizers.SGD(0.1), "mse")
        model.train_on_batch([x, z], y)
        return model.get_weights()

    for a, b in zip(train(True), train(False)):
        np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("hoist", [False, True])
def test_dropout(data, hoist):
    x, _ = data
    kwargs = dict(dropout=0.5, recurrent_dropout=0.5, seed=7, return_sequences=True)
    layer = IRNN(5, kernel_initializer="ones", hoist_input_projection=hoist, **kwargs)
    inference = to_list(layer(x, training=False))[0]
    train_a = to_list(layer(x, training=True))[0]
    train_b = to_list(layer(x, training=True))[0]
    assert not np.allclose(inference, train_a)
    assert not np.allclose(train_a, train_b)  # a fresh mask per batch
    # The hoisted loop applies the same masks as the step-by-step cell.
    reference = IRNN(5, kernel_initializer="ones", hoist_input_projection=not hoist, **kwargs)
    reference.build(x.shape)
    reference.set_weights(layer.get_weights())
    fresh = IRNN(5, kernel_initializer="ones", hoist_input_projection=hoist, **kwargs)
    fresh.build(x.shape)
    fresh.set_weights(layer.get_weights())
    np.testing.assert_allclose(
        to_list(fresh(x, training=True))[0],
        to_list(reference(x, training=True))[0],
        rtol=1e-5,
        atol=1e-5,
    )


@pytest.mark.parametrize("hoist", [False, True])
def test_stateful_carries_state_between_batches(data, hoist):
    x, _ = data
    whole = IRNN(5, return_sequences=True, kernel_initializer="glorot_uniform")
    expected = to_list(whole(x))[0]
    stateful = IRNN(
        5, return_sequences=True, stateful=True, hoist_input_projection=hoist
    )
    stateful.build((3, 3, 4))
    stateful.set_weights(whole.get_weights())
    first = to_list(stateful(x[:, :3]))[0]
    second = to_list(stateful(x[:, 3:]))[0]
    np.testing.assert_allclose(
        np.concatenate([first, second], axis=1), expected, rtol=1e-5, atol=1e-5
    )
    stateful.reset_state()
    np.testing.assert_allclose(to_list(stateful(x[:, :3]))[0], first, rtol=1e-6)


def test_masking_from_embedding_ignores_padding():
    model = keras.Sequential(
        [
            keras.Input((None,), dtype="int32"),
            keras.layers.Embedding(10, 4, mask_zero=True),
            IRNN(6, kernel_initializer="glorot_uniform"),
        ]
    )
    padded = model(np.array([[3, 4, 5, 0, 0]]))
    unpadded = model(np.array([[3, 4, 5]]))
    np.testing.assert_allclose(
        ops.convert_to_numpy(padded), ops.convert_to_numpy(unpadded), rtol=1e-6
    )


def test_cell_in_rnn_stack_and_bidirectional(data):
    x, mask = data
    stacked = keras.layers.RNN([IRNNCell(5), IRNNCell(3)], return_sequences=True)
    assert tuple(stacked(x).shape) == (3, 6, 3)
    bidirectional = keras.layers.Bidirectional(IRNN(5, return_sequences=True))
    assert tuple(bidirectional(x, mask=mask).shape) == (3, 6, 10)
    cell_bidirectional = keras.layers.Bidirectional(keras.layers.RNN(IRNNCell(5)))
    assert tuple(cell_bidirectional(x).shape) == (3, 10)


def test_get_config_round_trip():
    layer = IRNN(
        7, recurrent_gain=0.5, dropout=0.1, return_sequences=True,
        hoist_input_projection=True, seed=3,
    )
    config = layer.get_config()
    clone = IRNN.from_config(config)
    assert clone.get_config() == config
    assert clone.recurrent_gain == 0.5 and clone.units == 7
    cell = IRNNCell(4, recurrent_gain=2.0, recurrent_dropout=0.2)
    cell_clone = IRNNCell.from_config(cell.get_config())
    assert cell_clone.get_config() == cell.get_config()
    cell_clone.build((None, 3))
    np.testing.assert_array_equal(
        ops.convert_to_numpy(cell_clone.recurrent_kernel), 2.0 * np.eye(4)
    )


def test_keras_save_and_reload(tmp_path, data):
    x, _ = data
    inputs = keras.Input((6, 4))
    hidden = keras.layers.Bidirectional(IRNN(5, return_sequences=True))(inputs)
    hidden = keras.layers.RNN(IRNNCell(3), return_sequences=True)(hidden)
    outputs = IRNN(2, recurrent_gain=0.8)(hidden)
    model = keras.Model(inputs, outputs)
    for w in model.weights:  # move the weights off their initial values
        w.assign(w + 0.05)
    path = tmp_path / "irnn.keras"
    model.save(path)
    reloaded = keras.saving.load_model(path)
    assert isinstance(reloaded.layers[-1], IRNN)
    assert reloaded.layers[-1].recurrent_gain == 0.8
    np.testing.assert_allclose(
        ops.convert_to_numpy(reloaded(x)), ops.convert_to_numpy(model(x)), rtol=1e-6
    )


def test_fit_one_step_changes_weights_and_lowers_loss(data):
    x, _ = data
    y = np.ones((3, 1), "float32")
    keras.utils.set_random_seed(0)
    model = keras.Sequential(
        [keras.Input((6, 4)), IRNN(8, kernel_initializer="glorot_uniform"), keras.layers.Dense(1)]
    )
    model.compile(keras.optimizers.SGD(0.01), "mse")
    before = [w.copy() for w in model.get_weights()]
    history = model.fit(x, y, epochs=3, batch_size=3, verbose=0)
    losses = history.history["loss"]
    assert np.all(np.isfinite(losses)) and losses[-1] < losses[0]
    assert not np.allclose(before[0], model.get_weights()[0])


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"units": 0}, "units=0"),
        ({"units": -3}, "units=-3"),
        ({"units": 2.5}, "units=2.5"),
        ({"units": 4, "recurrent_gain": 0}, "recurrent_gain=0"),
        ({"units": 4, "dropout": 1.5}, "dropout=1.5"),
        ({"units": 4, "recurrent_dropout": -0.1}, "recurrent_dropout=-0.1"),
        ({"units": 4, "hoist_input_projection": "yes"}, "hoist_input_projection='yes'"),
    ],
)
def test_bad_arguments_raise_value_error(kwargs, message):
    with pytest.raises(ValueError, match=message):
        IRNN(**kwargs)
    if "hoist_input_projection" not in kwargs:
        with pytest.raises(ValueError, match=message):
            IRNNCell(**kwargs)


def test_wrong_input_rank_raises_value_error():
    with pytest.raises(ValueError, match="ndim=3"):
        IRNN(4)(np.zeros((2, 5), "float32"))


def test_cell_in_keras_rnn_matches_numpy_reference(data):
    x, _ = data
    cell = IRNNCell(5, recurrent_gain=0.7)
    layer = keras.layers.RNN(cell, return_sequences=True)
    layer.build(x.shape)
    kernel, recurrent_kernel, bias = [w + 0.05 for w in layer.get_weights()]
    layer.set_weights([kernel, recurrent_kernel, bias])
    np.testing.assert_allclose(
        to_list(layer(x))[0],
        numpy_irnn(x, kernel, recurrent_kernel, bias),
        rtol=1e-5,
        atol=1e-5,
    )
