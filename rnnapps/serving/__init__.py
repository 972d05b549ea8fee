"""Serving exports: TensorFlow Serving's REST API and a web page (`rnnapps serve`).

- `rnnapps.serving.server`: the ASGI application and `serve()`, the command.
- `rnnapps.serving.models`: which SavedModel versions are loaded, kept in
  step with the folders on disk.
- `rnnapps.serving.batching`: dynamic batching of concurrent requests.
- `rnnapps.serving.rest`: TF Serving's JSON formats, NumPy in and out.

Nothing here imports TensorFlow until a model is loaded.
"""
