"""MSTL's forecast as one matrix: a window in, the next steps out.

MSTL (Bandara, Hyndman & Bergmeir 2021; statsforecast's `MSTL`) peels one
seasonal component per period off the series with STL (Cleveland et al.
1990), forecasts each component by its last period and the deseasonalized
rest with exponential smoothing. Without STL's robustness iterations every
step (loess with fixed weights, moving averages) is linear in the series,
and so is simple exponential smoothing with a fixed weight: the whole
forecast is `window @ M`, `M` `[lookback, horizon]`.

`stl_matrix` builds STL's seasonal component as a matrix, step for step as
statsmodels' `STL` computes it (the NETLIB code; checked against it in the
tests); `mstl_matrices` runs statsforecast's `mstl` loop on those matrices.
The model uses the result as a fixed `LagMix` candidate (`model.MSTLForecast`).
"""

import functools

import numpy as np

__all__ = ["stl_matrix", "mstl_matrices", "mstl_forecast_matrix"]


def _loess_weights(n, len_, degree, xs, nleft, nright):
    """The weights of STL's loess estimate at `xs` (1-based) from the
    points `nleft..nright` of `n` (NETLIB's `est`), as a row of `n`."""
    row = np.zeros(n)
    h = max(xs - nleft, nright - xs)
    if len_ > n:
        h += (len_ - n) // 2
    j = np.arange(nleft, nright + 1, dtype=np.float64)
    r = np.abs(j - xs)
    w = np.where(r <= 0.001 * h, 1.0, (1.0 - (r / h) ** 3) ** 3) if h > 0 else np.ones_like(r)
    w = np.where(r <= 0.999 * h, w, 0.0) if h > 0 else w
    if w.sum() <= 0:
        raise ValueError(f"loess at {xs} has no weight")
    w = w / w.sum()
    if h > 0 and degree > 0:
        a = np.sum(w * j)
        c = np.sum(w * (j - a) ** 2)
        if np.sqrt(c) > 0.001 * (n - 1):
            w = w * ((xs - a) / c * (j - a) + 1.0)
    row[nleft - 1 : nright] = w
    return row


def _loess_matrix(n, len_, degree):
    """STL's loess smoother of `n` points (NETLIB's `ess`, no jumps) as an
    `[n, n]` matrix."""
    if n < 2:
        return np.eye(n)
    rows = []
    if len_ >= n:
        rows = [_loess_weights(n, len_, degree, i, 1, n) for i in range(1, n + 1)]
    else:
        half, nleft, nright = (len_ + 2) // 2, 1, len_
        for i in range(1, n + 1):
            if i > half and nright != n:
                nleft, nright = nleft + 1, nright + 1
            rows.append(_loess_weights(n, len_, degree, i, nleft, nright))
    return np.stack(rows)


def _low_pass_filters(n, period):
    """STL's moving averages of `period`, `period` and 3 (NETLIB's `fts`)
    from `n + 2 period` points to `n`, as one banded `[n, n + 2 period]`."""
    kernel = np.convolve(np.convolve(np.ones(period), np.ones(period)), np.ones(3)) / (3.0 * period * period)
    out = np.zeros((n, n + 2 * period))
    for i in range(n):
        out[i, i : i + len(kernel)] = kernel
    return out


def _cycle_subseries_matrix(n, period, seasonal, degree):
    """STL's cycle-subseries smoothing (NETLIB's `ss`): `[n + 2 period, n]`,
    each subseries smoothed and extended by one period at either end."""
    out = np.zeros((n + 2 * period, n))
    for j in range(period):
        index = np.arange(j, n, period)
        k = len(index)
        smooth = np.zeros((k + 2, k))
        smooth[1 : k + 1] = _loess_matrix(k, seasonal, degree)
        smooth[0] = _loess_weights(k, seasonal, degree, 0, 1, min(seasonal, k))
        smooth[k + 1] = _loess_weights(k, seasonal, degree, k + 1, max(1, k - seasonal + 1), k)
        out[np.ix_(np.arange(k + 2) * period + j, index)] = smooth
    return out


@functools.lru_cache(maxsize=8)
def stl_matrix(n, period, seasonal, seasonal_deg=0, inner_iter=5):
    """STL's seasonal component of `n` points as a matrix `[n, n]`.

    statsmodels' `STL(endog, period, seasonal, seasonal_deg=...)` with its
    defaults otherwise (trend and low-pass windows from the period, degree
    1, no jumps, not robust: `inner_iter` 5 passes, no outer ones) gives
    `stl_matrix(...) @ endog` as its `seasonal`.
    """
    trend = int(np.ceil(1.5 * period / (1 - 1.5 / seasonal)))
    trend += trend % 2 == 0
    low_pass = period + 1
    low_pass += low_pass % 2 == 0
    # The products of n x n matrices are float32 (twice as fast as float64;
    # the model computes in float32 anyway).
    subseries = _cycle_subseries_matrix(n, period, seasonal, seasonal_deg).astype(np.float32)
    low = _loess_matrix(n, low_pass, 1).astype(np.float32) @ _low_pass_filters(n, period).astype(np.float32)
    low[:, period : period + n] -= np.eye(n, dtype=np.float32)  # [n, n + 2 period]
    seasonal_of_detrended = -(low @ subseries)  # B: [n, n]
    # Each pass: season = B (y - trend), trend = T (y - season); as
    # matrices of y, season_1 = B and season_(k+1) = B - Q + Q season_k
    # with Q = B T.
    carry = seasonal_of_detrended @ _loess_matrix(n, trend, 1).astype(np.float32)
    season = seasonal_of_detrended
    for _ in range(inner_iter - 1):
        season = seasonal_of_detrended - carry + carry @ season
    return season


@functools.lru_cache(maxsize=8)
def mstl_matrices(n, seasons):
    """statsforecast's `mstl` decomposition of `n` points as matrices:
    `(seasonal components [len(seasons), n, n], deseasonalized [n, n])`,
    its seasonal windows 7 + 4 k (11, 15, ...), two passes with several
    seasons."""
    seasons = sorted(seasons)
    operators = [stl_matrix(n, s, 7 + 4 * (k + 1)) for k, s in enumerate(seasons)]
    deseasonalized = np.eye(n, dtype=np.float32)
    components = [np.zeros((n, n), np.float32) for _ in seasons]
    for _ in range(2 if len(seasons) > 1 else 1):
        for k, operator in enumerate(operators):
            deseasonalized = deseasonalized + components[k]
            components[k] = operator @ deseasonalized
            deseasonalized = deseasonalized - components[k]
    return np.stack(components), deseasonalized


def mstl_forecast_matrix(n, seasons, horizon, alpha):
    """MSTL's forecast of the next `horizon` steps from `n` as `[n, horizon]`:
    each seasonal component's last period repeated, plus simple
    exponential smoothing (weight `alpha`, started from the first value)
    of the deseasonalized series. `alpha` may be a list: `[len(alpha), n,
    horizon]`.

    Example:

    >>> import numpy as np
    >>> t = np.arange(24.0)
    >>> series = 5 + np.sin(2 * np.pi * t / 4)  # a season of 4 around 5
    >>> np.round(series @ mstl_forecast_matrix(24, [4], horizon=4, alpha=0.5), 3).tolist()
    [5.0, 6.0, 5.0, 4.0]
    """
    components, deseasonalized = mstl_matrices(int(n), tuple(int(s) for s in sorted(seasons)))
    seasonal = np.zeros((n, horizon))
    for component, season in zip(components, sorted(seasons)):
        rows = n - season + np.arange(horizon) % season
        seasonal += component[rows].T
    alphas = np.atleast_1d(np.asarray(alpha, np.float64))
    ages = np.arange(n - 1, -1, -1, dtype=np.float64)  # steps before the last
    weights = alphas[:, None] * (1 - alphas[:, None]) ** ages
    weights[:, 0] = (1 - alphas) ** (n - 1)  # the first value starts the level
    level = weights @ deseasonalized  # [alphas, n]
    out = seasonal[None] + level[:, :, None]
    return out if np.ndim(alpha) else out[0]
