"""rnnapps.diagnostics: the gradient reaching each time step, on any backend."""

import numpy as np
import pytest

import keras

from rnnapps.diagnostics import GradientThroughTime
from rnnapps.diagnostics import first_over_last
from rnnapps.diagnostics import hidden_state_gradients
from rnnapps.diagnostics import plot_gradient_norms
from rnnapps.diagnostics import recurrent_layers
from rnnapps.layers import IRNN

STEPS, UNITS = 6, 3


def prediction_as_loss(y_true, y_pred):
    return y_pred  # L = sum of the predictions: dL/dy_pred = 1 for every example


def linear_rnn(gain, return_sequences=False):
    """h_t = x_t U + gain * h_{t-1}; y = sum_i h_T,i (or its mean over t)."""
    layers = [
        keras.Input((STEPS, 2)),
        keras.layers.SimpleRNN(
            UNITS, activation=None, use_bias=False, return_sequences=return_sequences,
            recurrent_initializer=keras.initializers.Identity(gain), name="rnn",
        ),
    ]
    if return_sequences:
        layers.append(keras.layers.GlobalAveragePooling1D())
    layers.append(keras.layers.Dense(1, use_bias=False, kernel_initializer="ones"))
    return keras.Sequential(layers)


def batch(size=4, steps=STEPS, seed=0):
    x = np.random.default_rng(seed).normal(size=(size, steps, 2)).astype("float32")
    return x, np.zeros((size, 1), "float32")


@pytest.mark.parametrize("gain", [0.5, 1.3])
def test_matches_the_product_of_jacobians_of_a_linear_rnn(gain):
    # dL/dh_T = ones(UNITS); each step back multiplies by W^T = gain * I.
    x, y = batch()
    norms = hidden_state_gradients(linear_rnn(gain), x, y, loss=prediction_as_loss)
    expected = np.sqrt(UNITS) * gain ** np.arange(STEPS - 1, -1, -1)
    np.testing.assert_allclose(norms, expected, rtol=1e-5)
    assert (first_over_last(norms) < 1) == (gain < 1)


def test_is_the_total_derivative_through_later_steps_and_the_own_output():
    # y = mean_t sum_i h_t,i: dL/dh_t = (1/T) sum_{k >= t} gain^(k-t) * ones.
    gain = 0.8
    x, y = batch()
    norms = hidden_state_gradients(linear_rnn(gain, return_sequences=True), x, y,
                                   loss=prediction_as_loss)
    expected = [np.sqrt(UNITS) / STEPS * sum(gain**j for j in range(STEPS - t))
                for t in range(STEPS)]
    np.testing.assert_allclose(norms, expected, rtol=1e-5)


def test_irnn_measures_like_the_relu_simple_rnn_with_the_same_weights():
    x, y = batch(steps=12)
    irnn = keras.Sequential([keras.Input((12, 2)), IRNN(5), keras.layers.Dense(1)])
    plain = keras.Sequential([
        keras.Input((12, 2)),
        keras.layers.SimpleRNN(5, activation="relu"),
        keras.layers.Dense(1),
    ])
    plain.set_weights(irnn.get_weights())
    np.testing.assert_allclose(
        hidden_state_gradients(irnn, x, y, loss="mse"),
        hidden_state_gradients(plain, x, y, loss="mse"),
        rtol=1e-5,
    )


@pytest.mark.parametrize("make", [keras.layers.LSTM, keras.layers.GRU, IRNN])
def test_leaves_the_layer_as_it_was(make):
    x, y = batch(steps=10)
    layer = make(4)
    model = keras.Sequential([keras.Input((10, 2)), layer, keras.layers.Dense(1)])
    model.compile(loss="mse")
    before = keras.ops.convert_to_numpy(model(x))
    norms = hidden_state_gradients(model, x, y)
    assert norms.shape == (10,) and np.isfinite(norms).all() and (norms > 0).all()
    assert not layer.unroll
    assert "call" not in vars(layer.cell) and "inner_loop" not in vars(layer)
    np.testing.assert_allclose(keras.ops.convert_to_numpy(model(x)), before, rtol=1e-6)
    model.fit(x, y, epochs=1, verbose=0)  # still trains with its own loop


def test_padded_steps_get_no_gradient():
    x, y = batch(steps=8)
    x[:, 5:] = 0.0  # every example padded after 5 steps
    model = keras.Sequential([
        keras.Input((8, 2)),
        keras.layers.Masking(0.0),
        keras.layers.LSTM(4),
        keras.layers.Dense(1),
    ])
    model.compile(loss="mse")
    norms = hidden_state_gradients(model, x, y)
    assert (norms[:5] > 0).all() and (norms[5:] == 0).all()
    assert first_over_last(norms) == pytest.approx(norms[0] / norms[4])


def test_finds_layers_in_bidirectional_wrappers_and_nested_models():
    inner = keras.Sequential(
        [keras.Input((7, 2)), keras.layers.GRU(3, return_sequences=True, name="gru")],
        name="encoder",
    )
    model = keras.Sequential([
        keras.Input((7, 2)),
        inner,
        keras.layers.Bidirectional(keras.layers.SimpleRNN(3), name="bi"),
        keras.layers.Dense(1),
    ])
    model.compile(loss="mse")
    assert list(recurrent_layers(model)) == ["encoder/gru", "bi/forward", "bi/backward"]
    x, y = batch(steps=7)
    for name in ("gru", "bi/backward"):
        norms = hidden_state_gradients(model, x, y, layer=name)
        assert norms.shape == (7,) and (norms > 0).all()


def test_bad_arguments_are_clear_errors():
    x, y = batch()
    dense = keras.Sequential([keras.Input((STEPS, 2)), keras.layers.Flatten(), keras.layers.Dense(1)])
    with pytest.raises(ValueError, match="has no recurrent layer"):
        hidden_state_gradients(dense, x, y, loss="mse")
    model = linear_rnn(1.0)
    with pytest.raises(ValueError, match="not compiled with a loss"):
        hidden_state_gradients(model, x, y)
    with pytest.raises(ValueError, match="no recurrent layer named 'lstm'. Its recurrent layers: rnn"):
        hidden_state_gradients(model, x, y, layer="lstm", loss="mse")
    class ProjectedCell(keras.layers.SimpleRNNCell):  # output = h W, state = h
        def build(self, input_shape):
            super().build(input_shape)
            self.projection = keras.layers.Dense(self.units)
            self.projection.build((None, self.units))

        def call(self, inputs, states, training=False):
            output, new_states = super().call(inputs, states, training=training)
            return self.projection(output), new_states

    projected = keras.Sequential([
        keras.Input((STEPS, 2)), keras.layers.RNN(ProjectedCell(3)), keras.layers.Dense(1),
    ])
    with pytest.raises(ValueError, match="returns an output that is not its state"):
        hidden_state_gradients(projected, x, y, loss="mse")
    stateful = keras.Sequential([
        keras.Input((STEPS, 2), batch_size=4), keras.layers.LSTM(2, stateful=True), keras.layers.Dense(1),
    ])
    with pytest.raises(ValueError, match="is stateful"):
        hidden_state_gradients(stateful, x, y, loss="mse")
    with pytest.raises(ValueError, match="every must be an integer"):
        GradientThroughTime(x, y, every=0)


def test_callback_records_before_training_and_every_epoch(tmp_path):
    x, y = batch(size=16, steps=9)
    model = keras.Sequential([keras.Input((9, 2)), IRNN(4), keras.layers.Dense(1)])
    model.compile(optimizer="sgd", loss="mse")
    log_dir = tmp_path / "logs" if keras.backend.backend() == "tensorflow" else None
    monitor = GradientThroughTime(x, y, every=2, log_dir=log_dir)
    history = model.fit(x, y, epochs=4, verbose=0, callbacks=[monitor])
    assert monitor.epochs == [0, 2, 4]
    assert monitor.norms.shape == (3, 9)
    np.testing.assert_allclose(monitor.norms[-1], hidden_state_gradients(model, x, y), rtol=1e-5)
    assert len(history.history["grad_ratio"]) == 2  # logged on the measured epochs
    if log_dir is not None:
        events = list((log_dir / "gradients").glob("events.out.tfevents.*"))
        assert events and events[0].stat().st_size > 1000  # scalars and the plot image


def test_plot_writes_the_whole_file_or_nothing(tmp_path):
    path = tmp_path / "gradients.png"
    figure = plot_gradient_norms(np.array([[1.0, 0.5, 0.0], [1.0, 2.0, 4.0]]), path, title="t")
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert [line.get_label() for line in figure.axes[0].get_lines()] == ["0", "1"]
    assert figure.axes[0].get_yscale() == "log"
    with pytest.raises(ValueError, match="does not exist"):
        plot_gradient_norms({"a": [1.0, 2.0]}, tmp_path / "missing" / "plot.png")
    with pytest.raises(ValueError, match="curves is empty"):
        plot_gradient_norms({})
    assert [p.name for p in tmp_path.iterdir()] == ["gradients.png"]
