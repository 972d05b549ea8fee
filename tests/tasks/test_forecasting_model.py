"""The forecasting model's layers, loss and metrics, on every backend."""

import keras
import numpy as np
import pytest

from rnnapps.tasks.forecasting import metrics
from rnnapps.tasks.forecasting.config import ForecastingConfig
from rnnapps.tasks.forecasting.model import FeedbackCell
from rnnapps.tasks.forecasting.model import InverseScaling
from rnnapps.tasks.forecasting.model import LagMix
from rnnapps.tasks.forecasting.model import PinballLoss
from rnnapps.tasks.forecasting.model import SeasonalLags
from rnnapps.tasks.forecasting.model import WindowScaling
from rnnapps.tasks.forecasting.model import build_model
from rnnapps.tasks.forecasting.model import seasonal_bases
from rnnapps.tasks.forecasting.model import seasonal_lags


def info(quantiles=(), features=1, lookback=6, horizon=3):
    return {
        "lookback": lookback, "horizon": horizon, "quantiles": list(quantiles),
        "columns": [f"c{i}" for i in range(features)],
        "scale": [2.0] * features, "center": [10.0] * features, "season": 2,
    }


def test_window_scaling_references_and_log():
    window = np.array([[[1.0, 5.0], [3.0, 9.0]]])
    scaled, reference = WindowScaling(scale=[2.0, 4.0])(window)
    np.testing.assert_allclose(keras.ops.convert_to_numpy(scaled)[0], [[-1.0, -1.0], [0.0, 0.0]])
    np.testing.assert_allclose(keras.ops.convert_to_numpy(reference), [[3.0, 9.0]])
    scaled, reference = WindowScaling(scale=[2.0, 4.0], center=[1.0, 1.0], reference_steps=None)(window)
    np.testing.assert_allclose(keras.ops.convert_to_numpy(scaled)[0], [[0.0, 1.0], [1.0, 2.0]])
    np.testing.assert_allclose(keras.ops.convert_to_numpy(reference), [[1.0, 1.0]])
    scaled, reference = WindowScaling(scale=[1.0, 1.0], reference_steps=2)(window)
    np.testing.assert_allclose(keras.ops.convert_to_numpy(reference), [[2.0, 7.0]])
    np.testing.assert_allclose(keras.ops.convert_to_numpy(scaled)[0], [[-1.0, -2.0], [1.0, 2.0]])
    scaled, reference = WindowScaling(scale=[1.0, 1.0], log=True)(np.exp(window))
    np.testing.assert_allclose(keras.ops.convert_to_numpy(reference), [[3.0, 9.0]], rtol=1e-5)
    restored = WindowScaling.from_config(WindowScaling([1.0], reference_steps=3, log=True).get_config())
    assert (restored.reference_steps, restored.log) == (3, True)


def test_inverse_scaling_broadcasts_over_quantiles():
    out = InverseScaling(scale=3.0)((np.ones((2, 4, 3)), np.array([[1.0, 0.0], [2.0, 0.0]])))
    out = keras.ops.convert_to_numpy(out)
    assert out.shape == (2, 4, 3)
    np.testing.assert_allclose(out[:, 0, 0], [4.0, 5.0])
    logged = InverseScaling(scale=1.0, log=True)((np.zeros((1, 2)), np.array([[np.log(7.0)]])))
    np.testing.assert_allclose(keras.ops.convert_to_numpy(logged), [[7.0, 7.0]], rtol=1e-5)


def test_pinball_loss_by_hand():
    loss = PinballLoss([0.1, 0.5, 0.9])
    y_true = np.array([[2.0, 0.0]])
    y_pred = np.zeros((1, 2, 3))
    # errors y - ŷ: 2 (first step), 0 (second); pinball for e=2: q*e.
    expected = np.mean([0.1 * 2, 0.5 * 2, 0.9 * 2, 0, 0, 0])
    assert float(loss(y_true, y_pred)) == pytest.approx(expected)
    restored = PinballLoss.from_config(loss.get_config())
    assert restored.quantiles == [0.1, 0.5, 0.9]


@pytest.mark.parametrize("decoder", ["direct", "autoregressive"])
@pytest.mark.parametrize("quantiles", [(), (0.1, 0.5, 0.9)])
@pytest.mark.parametrize(
    "cell, normalization, transform",
    [("lstm", "last", "none"), ("gru", "season", "log"), ("irnn", "standard", "none")],
)
def test_model_shapes_and_units(decoder, quantiles, cell, normalization, transform):
    config = ForecastingConfig(cell=cell, decoder=decoder, units=4, normalization=normalization,
                               transform=transform)
    model = build_model(config, info(quantiles, features=2))
    window = np.random.default_rng(0).normal(size=(5, 6, 2)).astype("float32") + 100.0
    out = keras.ops.convert_to_numpy(model(window))
    assert out.shape == ((5, 3, 3) if quantiles else (5, 3))
    if quantiles:
        assert np.all(np.diff(out, axis=-1) >= 0)  # quantiles never cross
    # Outputs are in the series' units: around the window's level (the
    # training mean, 10, for global standardization), untrained as it is.
    level = window[:, -1:, :1] if normalization != "standard" else np.full((5, 1, 1), 10.0)
    assert np.all(np.abs(out - level.reshape(5, 1, *([1] if quantiles else []))) < 50)


@pytest.mark.parametrize("normalization, expected", [("last", [35.0, 77.0]), ("season", [31.5, 73.5])])
def test_untrained_direct_model_with_a_zero_head_forecasts_the_reference_level(normalization, expected):
    model = build_model(ForecastingConfig(units=4, normalization=normalization), info(features=1))
    head = model.get_layer("head")
    head.set_weights([np.zeros_like(w) for w in head.get_weights()])
    window = np.arange(12, dtype="float32").reshape(2, 6, 1) * 7.0  # season 2: mean of the last 2
    np.testing.assert_allclose(keras.ops.convert_to_numpy(model(window)), np.repeat([expected], 3, 0).T)


@pytest.mark.parametrize("decoder", ["direct", "autoregressive"])
def test_model_saves_and_reloads(tmp_path, decoder):
    model = build_model(ForecastingConfig(decoder=decoder, units=4, quantiles="0.2,0.8"), info((0.2, 0.8)))
    window = np.random.default_rng(1).normal(size=(2, 6, 1)).astype("float32")
    path = tmp_path / "model.keras"
    model.save(path)
    restored = keras.saving.load_model(path)
    np.testing.assert_allclose(
        keras.ops.convert_to_numpy(restored(window)), keras.ops.convert_to_numpy(model(window)), rtol=1e-5
    )
    assert isinstance(restored.loss, PinballLoss)


def test_feedback_cell_feeds_its_own_output_back():
    cell = FeedbackCell(keras.layers.SimpleRNNCell(1, use_bias=False, kernel_initializer="ones",
                                                   recurrent_initializer="zeros", activation=None))
    layer = keras.layers.RNN(cell, return_sequences=True)
    steps = np.zeros((1, 3, 1), "float32")
    layer(steps, initial_state=[np.zeros((1, 1), "float32"), np.ones((1, 1), "float32")])  # builds
    # Each step: y = w_dense * (1 * previous y) + b; with the Dense set to 2y + 0 it doubles.
    cell.projection.set_weights([np.array([[2.0]], "float32"), np.zeros(1, "float32")])
    out = layer(steps, initial_state=[np.zeros((1, 1), "float32"), np.ones((1, 1), "float32")])
    np.testing.assert_allclose(keras.ops.convert_to_numpy(out)[0, :, 0], [2.0, 4.0, 8.0])


def test_metrics_by_hand():
    actual = np.array([[10.0, 20.0], [30.0, 40.0]])
    forecast = np.array([[12.0, 20.0], [30.0, 36.0]])
    m = metrics.forecast_metrics(actual, forecast, mase_scale=2.0, lower=forecast - 1, upper=forecast + 1)
    assert m["mae"] == pytest.approx(1.5)
    assert m["rmse"] == pytest.approx(np.sqrt((4 + 16) / 4))
    assert m["mase"] == pytest.approx(0.75)
    assert m["smape"] == pytest.approx(100 * np.mean([4 / 22, 0, 0, 8 / 76]), abs=1e-4)
    assert m["coverage"] == pytest.approx(0.5) and m["interval_width"] == pytest.approx(2.0)
    history = np.array([1.0, 2.0, 3.0, 10.0, 20.0, 30.0])
    np.testing.assert_allclose(metrics.seasonal_naive(history, 5, 3), [10, 20, 30, 10, 20])
    np.testing.assert_allclose(metrics.naive(history, 2), [30, 30])
    baselines = metrics.baseline_forecasts(np.arange(10.0), [6, 8], 2, 3)
    np.testing.assert_allclose(baselines["seasonal_naive"], [[3, 4], [5, 6]])
    np.testing.assert_allclose(baselines["naive"], [[5, 5], [7, 7]])


def test_mase_scale_is_the_in_sample_seasonal_naive_error():
    from rnnapps.tasks.forecasting.data import seasonal_mae

    assert seasonal_mae(np.array([1.0, 2.0, 4.0, 7.0]), 2) == pytest.approx((3 + 5) / 2)
    assert np.isnan(seasonal_mae(np.array([1.0]), 2))


def test_config_presets_name_real_series():
    from rnnapps.tasks.forecasting.config import PRESETS
    from rnnapps.tasks.forecasting.data import NAMED_SERIES

    assert all(p.data in NAMED_SERIES for p in PRESETS.values())
    assert ForecastingConfig().data == "co2"


# --- The seasonal-lag model (several seasons) ------------------------------


def seasonal_info(quantiles=(), base=None):
    # Seasons 2 and 4, horizon 2, lookback 9: lags 2, 4 and 8.
    return {
        **info(quantiles, features=1, lookback=9, horizon=2), "season": 4, "seasons": [2, 4],
        "base": base,
    }


def test_seasonal_lags_and_bases_by_hand():
    assert seasonal_lags([2, 4], horizon=2, lookback=9) == [2, 4, 8]
    assert seasonal_lags([48, 336], horizon=48, lookback=672) == [48, 96, 336]
    bases = seasonal_bases([2, 4, 8], [2, 4])
    assert bases["naive_8"] == {2: 1.0} and bases["anchored_2"] == {3: 1.0}
    # Season 2: lags 2 and 4 (one and two periods); season 4: lags 4 and 8.
    assert bases["anchored_mean_2"] == {3: 0.5, 4: 0.5}
    assert bases["anchored_mean_4"] == {4: 0.5, 5: 0.5}
    with pytest.raises(ValueError, match="at least the horizon"):
        SeasonalLags(lags=[1, 4], horizon=2)


def test_seasonal_lags_layer_by_hand_and_round_trip():
    window = np.array([[[10.0], [11.0], [12.0], [13.0], [20.0]]]) - 20.0  # last value 0
    layer = SeasonalLags(lags=[2, 3], horizon=2)
    out = keras.ops.convert_to_numpy(layer(window))
    # The window holds x[t-5] .. x[t-1]; step h forecasts x[t+h].
    # plain: x[t+h-s]; anchored: x[t+h-s] - x[t-1-s].
    np.testing.assert_allclose(out[0], [[-7.0, -8.0, 1.0, 1.0], [0.0, -7.0, 8.0, 2.0]])
    restored = SeasonalLags.from_config(layer.get_config())
    np.testing.assert_allclose(keras.ops.convert_to_numpy(restored(window)), out)
    mix = LagMix({"1": 2.0})
    np.testing.assert_allclose(keras.ops.convert_to_numpy(mix(out)), [[-16.0, -14.0]])
    assert LagMix.from_config(mix.get_config()).initial == {1: 2.0}


@pytest.mark.parametrize("base, expected", [
    ("naive_4", [[6.0, 7.0]]),     # the values one season (4 steps) back
    ("anchored_2", [[9.0, 9.0]]),  # 2 steps back (8, 8), plus the rise since then (8 - 7)
])
def test_untrained_seasonal_model_forecasts_its_base(base, expected):
    model = build_model(ForecastingConfig(units=4), seasonal_info(base=base))
    window = np.array([1.0, 2, 3, 4, 5, 6, 7, 8, 8], "float32").reshape(1, 9, 1)
    # The head starts at zero: the forecast is the chosen candidate alone.
    np.testing.assert_allclose(keras.ops.convert_to_numpy(model(window)), expected, rtol=1e-5)


def test_choose_base_picks_the_candidate_that_fits_and_the_model_saves(tmp_path):
    from rnnapps.tasks.forecasting.model import choose_base

    # A series repeating every 4 steps: seasonal naive with lag 4 is exact.
    series = np.tile([1.0, 5.0, 2.0, 8.0], 10).astype("float32")
    windows = np.stack([series[i:i + 9] for i in range(20)])[..., None]
    targets = np.stack([series[i + 9:i + 11] for i in range(20)])
    config = ForecastingConfig(units=4, quantiles="0.1,0.9")
    base, errors = choose_base(config, seasonal_info(), windows, targets)
    assert errors[base] == pytest.approx(0.0, abs=1e-5) and base in ("naive_4", "naive_8")
    assert errors["naive_2"] > 1.0
    model = build_model(config, seasonal_info((0.1, 0.9), base=base))
    out = keras.ops.convert_to_numpy(model(windows[:3]))
    assert out.shape == (3, 2, 2)
    np.testing.assert_allclose(out[..., 0], targets[:3], rtol=1e-5)
    model.save(tmp_path / "model.keras")
    restored = keras.saving.load_model(tmp_path / "model.keras")
    np.testing.assert_allclose(keras.ops.convert_to_numpy(restored(windows[:3])), out, rtol=1e-5)


# --- Seasonal smoothing (a LagMix candidate) --------------------------------


def test_seasonal_smoothing_by_hand():
    from rnnapps.tasks.forecasting.model import seasonal_smoothing

    # Season 2, window [1, 3, 1, 3, 2]: the first two seasons start it at
    # level 2, index [-1, 1]. Step 4 (index position 0) expects 2 - 1 = 1,
    # sees 2: error 1, level 2 + 0.5, index[0] -1 + 0.25. Forecasts:
    # step 5 (position 1): 2.5 + 1 + 0.5 * 1; step 6 (position 0): 2.5 - 0.75 + 0.25 * 1.
    window = np.array([[1.0, 3.0, 1.0, 3.0, 2.0]])
    forecast = seasonal_smoothing(window, [2], 2, alpha=0.5, gammas=[0.25], phi=0.5)
    np.testing.assert_allclose(forecast, [[4.0, 2.0]])
    # Shift and scale pass through (the model smooths scaled windows).
    np.testing.assert_allclose(
        seasonal_smoothing(3.0 * window - 7.0, [2], 2, 0.5, [0.25], 0.5), 3.0 * forecast - 7.0
    )
    with pytest.raises(ValueError, match="two of the longest season"):
        seasonal_smoothing(window, [4], 2, 0.5, [0.25], 0.5)


def test_seasonal_smoothing_layer_is_the_recursion_as_a_matrix_and_round_trips(tmp_path):
    from rnnapps.tasks.forecasting.model import SeasonalSmoothing
    from rnnapps.tasks.forecasting.model import seasonal_smoothing

    rng = np.random.default_rng(0)
    windows = rng.normal(size=(5, 30, 2))
    kwargs = {"alpha": 0.1, "gammas": [0.3, 0.2], "phi": 0.8}
    layer = SeasonalSmoothing([3, 6], horizon=4, **kwargs)
    out = keras.ops.convert_to_numpy(layer(windows.astype("float32")))
    assert out.shape == (5, 4, 1)
    expected = seasonal_smoothing(windows[..., 0], [3, 6], 4, **kwargs)
    np.testing.assert_allclose(out[..., 0], expected, rtol=1e-4, atol=1e-5)
    assert not layer.trainable_weights
    restored = SeasonalSmoothing.from_config(layer.get_config())
    np.testing.assert_allclose(keras.ops.convert_to_numpy(restored(windows.astype("float32"))), out, rtol=1e-5)
    with pytest.raises(ValueError, match="one weight per season"):
        SeasonalSmoothing([3, 6], horizon=4, alpha=0.1, gammas=[0.3], phi=0.8)


def test_choose_smoothing_and_the_model_starting_from_it(tmp_path):
    from rnnapps.tasks.forecasting.model import choose_base
    from rnnapps.tasks.forecasting.model import choose_smoothing
    from rnnapps.tasks.forecasting.model import seasonal_smoothing

    # A noisy season of 4: smoothing averages the noise, a lag copies it.
    noise = np.random.default_rng(0).normal(scale=0.5, size=100)
    series = (np.tile([1.0, 5.0, 2.0, 8.0], 25) + noise).astype("float32")
    lookback, horizon = 25, 2
    windows = np.stack([series[i:i + lookback] for i in range(60)])[..., None]
    targets = np.stack([series[i + lookback:i + lookback + horizon] for i in range(60)])
    grid = {"alpha": (0.05, 0.5), "gamma": (0.05, 0.5), "phi": (0.0, 0.9)}
    weights, error = choose_smoothing(windows[..., 0], targets, [4], horizon, grid)
    assert set(weights) == {"alpha", "gammas", "phi"} and len(weights["gammas"]) == 1
    for alpha in grid["alpha"]:  # no grid point does better
        other = seasonal_smoothing(windows[..., 0], [4], horizon, alpha, [0.05], 0.9)
        assert error <= np.mean(np.abs(other - targets)) + 1e-9
    info_ = {**info((), features=1, lookback=lookback, horizon=horizon), "season": 4, "seasons": [4],
             "smoothing": weights}
    config = ForecastingConfig(units=4, structure="seasonal")
    base, errors = choose_base(config, info_, windows, targets)
    assert errors["smoothing"] == pytest.approx(error, rel=1e-3)
    assert base == "smoothing" and errors["smoothing"] < errors["anchored_4"]
    model = build_model(config, {**info_, "base": "smoothing"})
    out = keras.ops.convert_to_numpy(model(windows[:3]))
    np.testing.assert_allclose(
        out, seasonal_smoothing(windows[:3, :, 0], [4], horizon, **weights), rtol=1e-4, atol=1e-4
    )
    model.save(tmp_path / "model.keras")
    restored = keras.saving.load_model(tmp_path / "model.keras")
    np.testing.assert_allclose(keras.ops.convert_to_numpy(restored(windows[:3])), out, rtol=1e-5)


# --- Known-future covariates: the similar day --------------------------------


def day_type_series(days=12, holiday=9):
    """Days of 4 steps: weekdays 0-4 rise (1, 5, 6, 1), weekends 5-6 and
    the `holiday` stay low (1, 2, 2, 1); a day-type flag (1 = workday)."""
    values, flags = [], []
    for day in range(days):
        workday = day % 7 < 5 and day != holiday
        values += [1.0, 5.0, 6.0, 1.0] if workday else [1.0, 2.0, 2.0, 1.0]
        flags += [float(workday)] * 4
    return np.stack([values, flags], axis=-1).astype("float32")


def test_similar_day_layer_picks_the_latest_day_of_the_same_type_and_round_trips():
    from rnnapps.tasks.forecasting.model import SimilarDay

    series = day_type_series()
    lookback, horizon = 36, 4
    window = series[:lookback][None] - series[lookback - 1]  # scaled: the last value is 0
    future = series[lookback:lookback + horizon, 1:][None] - series[lookback - 1, 1]  # day 9: the holiday
    fallback = np.full((1, horizon), 7.0, "float32")
    layer = SimilarDay([4, 8, 12, 16, 20, 24, 28], horizon, columns=[1], fallback_lag=28)
    out = keras.ops.convert_to_numpy(layer((window, future, fallback)))
    # Day 9 (a holiday, flag 0) is like the last weekend day, day 6 (lag 12),
    # not like day 2 a week back: its values 1, 2, 2, 1 moved by the change
    # since the step before it (none: every day ends at 1).
    np.testing.assert_allclose(out[0, :, 0], [0.0, 1.0, 1.0, 0.0])
    # A week back was a workday: the fallback gives way to the similar day.
    np.testing.assert_allclose(out[0, :, 1], out[0, :, 0])
    # On an ordinary day (day 8, a workday like day 1 a week back) the fallback stays.
    ordinary = layer((series[:32][None] - series[31], series[32:36, 1:][None] - series[31, 1], fallback))
    np.testing.assert_allclose(keras.ops.convert_to_numpy(ordinary)[0, :, 1], fallback[0])
    restored = SimilarDay.from_config(layer.get_config())
    np.testing.assert_allclose(keras.ops.convert_to_numpy(restored((window, future, fallback))), out)
    with pytest.raises(ValueError, match="fallback_lag must be one of the lags"):
        SimilarDay([4, 8], horizon, columns=[1], fallback_lag=28)
    with pytest.raises(ValueError, match="at least the horizon"):
        SimilarDay([2, 8], horizon, columns=[1], fallback_lag=8)


def test_future_scaling_matches_the_window_scaling():
    from rnnapps.tasks.forecasting.model import FutureScaling

    window = np.array([[[1.0, 3.0, 10.0], [2.0, 5.0, 20.0]]], "float32")
    scaled, reference = WindowScaling(scale=[1.0, 2.0, 5.0])(window)
    # The future holding the window's values of columns 2 and 1 scales to the same.
    future = window[:, :, [2, 1]]
    layer = FutureScaling([1.0, 2.0, 5.0], columns=[2, 1])
    out = keras.ops.convert_to_numpy(layer((future, reference)))
    np.testing.assert_allclose(out, keras.ops.convert_to_numpy(scaled)[:, :, [2, 1]])
    assert FutureScaling.from_config(layer.get_config()).columns == [2, 1]


def future_info(base=None, smoothing=None):
    return {
        "lookback": 36, "horizon": 4, "quantiles": [], "columns": ["load", "workday"],
        "future_columns": ["workday"], "scale": [1.0, 1.0], "center": [0.0, 0.0],
        "season": 28, "seasons": [4, 28], "base": base, "smoothing": smoothing,
    }


def test_choose_base_with_future_covariates_and_the_two_input_model(tmp_path):
    from rnnapps.tasks.forecasting.model import choose_base

    series = day_type_series(days=40, holiday=30)
    origins = range(36, 40 * 4 - 4 + 1, 4)
    windows = np.stack([series[o - 36:o] for o in origins])
    future = np.stack([series[o:o + 4, 1:] for o in origins])
    targets = np.stack([series[o:o + 4, 0] for o in origins])
    config = ForecastingConfig(units=4)
    base, errors = choose_base(config, future_info(), windows, targets, future)
    # Every day is its latest same-type day: the similar day is exact; a week
    # back is wrong only around the holiday, which the switch fixes.
    assert errors["similar_day"] == pytest.approx(0.0, abs=1e-6)
    assert errors["anchored_28_or_similar_day"] == pytest.approx(0.0, abs=1e-6)
    assert errors["anchored_28"] > 0.01
    assert base == "anchored_28_or_similar_day"  # equal errors: the covariates decide
    model = build_model(config, future_info(base=base))
    assert sorted(i.name for i in model.inputs) == ["future", "window"]
    out = keras.ops.convert_to_numpy(model({"window": windows, "future": future}))
    np.testing.assert_allclose(out, targets, atol=1e-5)
    model.save(tmp_path / "model.keras")
    restored = keras.saving.load_model(tmp_path / "model.keras")
    np.testing.assert_allclose(
        keras.ops.convert_to_numpy(restored({"window": windows, "future": future})), out, atol=1e-5)
    # The network structure reads the future covariates too, with the direct decoder only.
    network = build_model(ForecastingConfig(units=4, structure="network", lookback=36),
                          {**future_info(), "season": 4})
    assert keras.ops.convert_to_numpy(network({"window": windows, "future": future})).shape == targets.shape
    with pytest.raises(ValueError, match="need the direct decoder"):
        build_model(ForecastingConfig(units=4, structure="network", decoder="autoregressive"),
                    {**future_info(), "season": 4})


# --- MSTL as a matrix (a LagMix candidate) -----------------------------------


@pytest.mark.parametrize("n, period, seasonal", [(60, 4, 7), (97, 12, 11), (200, 7, 15)])
def test_stl_matrix_is_statsmodels_stl(n, period, seasonal):
    import statsmodels.api as sm

    from rnnapps.tasks.forecasting.mstl_matrix import stl_matrix

    rng = np.random.default_rng(n)
    y = rng.normal(size=n).cumsum() + 3 * np.sin(np.arange(n) * 2 * np.pi / period)
    expected = sm.tsa.STL(y, period=period, seasonal=seasonal, seasonal_deg=0).fit().seasonal
    np.testing.assert_allclose(stl_matrix(n, period, seasonal) @ y, expected, atol=1e-5 * np.abs(y).max())


def test_mstl_forecast_layer_is_statsforecast_mstl_with_exponential_smoothing(tmp_path):
    from statsforecast.models import MSTL
    from statsforecast.models import SimpleExponentialSmoothing

    from rnnapps.tasks.forecasting.model import MSTLForecast

    rng = np.random.default_rng(1)
    t = np.arange(96.0)
    y = 20 + 0.3 * rng.normal(size=96).cumsum() + 2 * np.sin(2 * np.pi * t / 4) + 3 * np.cos(2 * np.pi * t / 12)
    expected = MSTL(season_length=[4, 12], trend_forecaster=SimpleExponentialSmoothing(alpha=0.5)).forecast(
        y=y, h=6)["mean"]
    layer = MSTLForecast([4, 12], horizon=6, alpha=0.5, steps=96)
    window = np.concatenate([np.zeros(10), y])[None, :, None].astype("float32")  # only the last 96 count
    out = keras.ops.convert_to_numpy(layer(window))
    assert out.shape == (1, 6, 1) and not layer.trainable_weights
    np.testing.assert_allclose(out[0, :, 0], expected, rtol=1e-5)
    restored = MSTLForecast.from_config(layer.get_config())
    np.testing.assert_allclose(keras.ops.convert_to_numpy(restored(window)), out, rtol=1e-6)
    with pytest.raises(ValueError, match="must not exceed the window"):
        MSTLForecast([4, 12], horizon=6, alpha=0.5, steps=200)(window)


def test_choose_mstl_fits_the_smoothing_weight_as_ets_does():
    from rnnapps.tasks.forecasting.model import choose_mstl

    rng = np.random.default_rng(0)
    season = np.tile([0.0, 3.0, 1.0, -4.0], 24)
    # A level that wanders: the last value is the best guess (alpha near 1);
    # noise around a fixed level: a long average is (alpha small).
    wandering = np.stack([season + rng.normal(size=96).cumsum() for _ in range(8)])
    steady = np.stack([season + rng.normal(size=96) for _ in range(8)])
    assert choose_mstl(wandering, [4, 12]) == {"alpha": 0.99, "steps": 96}
    assert choose_mstl(steady, [4, 12])["alpha"] <= 0.1
    assert choose_mstl(steady[:, :50], [4, 12])["steps"] == 48  # whole longest seasons


def test_the_model_starting_from_mstl_forecasts_it_and_saves(tmp_path):
    from rnnapps.tasks.forecasting.model import MSTLForecast

    rng = np.random.default_rng(2)
    series = (np.tile([1.0, 5.0, 2.0, 8.0], 30) + rng.normal(scale=0.3, size=120)).astype("float32")
    windows = np.stack([series[i:i + 49] for i in range(5)])[..., None]
    info_ = {**info((), features=1, lookback=49, horizon=4), "season": 12, "seasons": [4, 12],
             "mstl": {"alpha": 0.5, "steps": 48}, "base": "mstl"}
    model = build_model(ForecastingConfig(units=4, structure="seasonal"), info_)
    out = keras.ops.convert_to_numpy(model(windows))
    expected = keras.ops.convert_to_numpy(MSTLForecast([4, 12], 4, 0.5, 48)(windows))[..., 0]
    np.testing.assert_allclose(out, expected, rtol=1e-4, atol=1e-4)
    assert set(seasonal_bases([4, 8, 12, 24], [4, 12], smoothing=True, mstl=True)) >= {
        "smoothing", "mstl", "smoothing_mstl_mean"}
    model.save(tmp_path / "model.keras")
    restored = keras.saving.load_model(tmp_path / "model.keras")
    np.testing.assert_allclose(keras.ops.convert_to_numpy(restored(windows)), out, rtol=1e-5)
