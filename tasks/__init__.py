"""The rnnapps task packages, installed as `rnnapps.tasks`.

Each subpackage (sentiment, forecasting, translation, captioning) is one complete
application: data loaders, preprocessor, model, presets. A task never imports
another task; what they share lives in `rnnapps` itself.
"""
