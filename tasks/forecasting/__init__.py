"""Time-series forecasting: a window of history in, the next `horizon` values out.

Use it from the command line (`rnnapps train forecasting`) or from Python,
on your own series:

    from rnnapps.tasks.forecasting import Forecaster

    forecaster = Forecaster.from_data(series, horizon=12, quantiles="0.1,0.5,0.9")
    forecaster.fit(series)
    forecaster.predict(series)["forecast"]     # the next 12 steps
    forecaster.evaluate(series)                # MASE etc. against naive, seasonal naive
    forecaster.export("saved_models")

The folder reads as every task's: `config.py` (the settings), `data.py`
(the series and the splits), `preprocessor.py` (what is fit on a series,
and its windows), `model.py` (Keras layers, any backend), `metrics.py`
(MAE, RMSE, MASE, sMAPE, interval coverage, the baselines), `task.py`
(`ForecastingTask`, the command line's, and `Forecaster`).
"""

from rnnapps.tasks.forecasting.config import PRESETS
from rnnapps.tasks.forecasting.config import ForecastingConfig
from rnnapps.tasks.forecasting.data import NAMED_SERIES
from rnnapps.tasks.forecasting.data import load_data
from rnnapps.tasks.forecasting.data import load_series
from rnnapps.tasks.forecasting.preprocessor import ForecastingPreprocessor
from rnnapps.tasks.forecasting.task import Forecaster
from rnnapps.tasks.forecasting.task import ForecastingTask
from rnnapps.tasks.forecasting.task import build_model

__all__ = [
    "ForecastingConfig", "PRESETS", "NAMED_SERIES", "ForecastingTask", "Forecaster",
    "ForecastingPreprocessor", "load_data", "load_series", "build_model", "task",
]

# (The package attribute `task` is the Task instance `rnnapps.tasks.get_task`
# returns; it shadows the submodule's name, which stays importable as
# `rnnapps.tasks.forecasting.task`.)
task = ForecastingTask()
