"""Training past one device and one machine with `tf.distribute`.

`rnnapps train TASK --distribute mirrored` trains on every local GPU
(`tf.distribute.MirroredStrategy`); `--distribute multi-worker` on several
machines (`tf.distribute.MultiWorkerMirroredStrategy`), each started with
the same command and a `TF_CONFIG` naming the cluster and its own place in
it, as Kubernetes operators and cloud trainers set it:

    TF_CONFIG='{"cluster": {"worker": ["host1:12345", "host2:12345"]},
                "task": {"type": "worker", "index": 0}}' \\
        rnnapps train sentiment --distribute multi-worker

The config's `batch_size` is the *global* batch: each step splits it over
the replicas, and the gradients are summed across them before
`ClippedOptimizer` clips their norm, so one step on N replicas is the step
one device takes on the whole batch. Worker 0 (or the `chief`) writes the
checkpoints and the export; the others write theirs to a scratch folder.
From Python:

    strategy = rnnapps.distribute.make_strategy("multi-worker", timeout=60)
    with strategy.scope():
        model = ...  # build and compile
    rnnapps.distribute.prepare_model(model)  # see below
    model.fit(...)

Keras 3's TensorFlow trainer does not run `fit` under
`MultiWorkerMirroredStrategy` as released (keras-team/keras#20585: its
shape probe and its per-step log reduction fail on per-replica values);
`prepare_model` mends both for one model, without touching Keras itself.
"""

import json
import os
import sys

from rnnapps.errors import TaskError

__all__ = ["KINDS", "read_tf_config", "make_strategy", "make_distribution", "is_chief",
           "prepare_model", "describe"]

KINDS = ("none", "mirrored", "multi-worker")


def _error(message):
    return TaskError(message)


def read_tf_config(text=None):
    """The cluster of a `TF_CONFIG` (the environment's, by default), checked.

    Returns:
        `(cluster, task_type, task_index)`: `cluster` maps each job
        (`"chief"`, `"worker"`) to its `host:port` addresses.

    Raises:
        rnnapps.task.TaskError: one line naming what is wrong: unset, not
        JSON, no cluster, this task not in the cluster, a bad address.

    >>> read_tf_config('{"cluster": {"worker": ["a:1", "b:2"]}, '
    ...                '"task": {"type": "worker", "index": 1}}')
    ({'worker': ['a:1', 'b:2']}, 'worker', 1)
    """
    if text is None:
        text = os.environ.get("TF_CONFIG")
    if not text or not text.strip():
        raise _error("--distribute multi-worker needs TF_CONFIG (the cluster and this "
                     "worker's place in it), and it is not set")
    try:
        config = json.loads(text)
    except json.JSONDecodeError as error:
        raise _error(f"TF_CONFIG is not JSON: {error}") from None
    if not isinstance(config, dict) or not isinstance(config.get("cluster"), dict):
        raise _error('TF_CONFIG has no "cluster" (e.g. {"cluster": {"worker": ["host1:12345", '
                     '"host2:12345"]}, "task": {"type": "worker", "index": 0}})')
    cluster = config["cluster"]
    for job, addresses in cluster.items():
        if not isinstance(addresses, list) or not addresses:
            raise _error(f"TF_CONFIG's cluster job {job!r} must be a list of host:port addresses")
        for address in addresses:
            host, _, port = str(address).rpartition(":")
            if not host or not port.isdigit():
                raise _error(f"TF_CONFIG's cluster job {job!r} has a bad address {address!r} "
                             "(want host:port)")
    if not set(cluster) & {"worker", "chief"}:
        raise _error("TF_CONFIG's cluster has neither a \"worker\" nor a \"chief\" job")
    task = config.get("task")
    if not isinstance(task, dict) or "type" not in task:
        raise _error('TF_CONFIG has no "task" (this process\'s place in the cluster, e.g. '
                     '{"type": "worker", "index": 0})')
    kind, index = task["type"], task.get("index", 0)
    if kind not in cluster or not isinstance(index, int) or not 0 <= index < len(cluster[kind]):
        size = len(cluster.get(kind, []))
        raise _error(f"TF_CONFIG's task {kind}:{index} is not in its cluster ({kind!r} has "
                     f"{size} {'task' if size == 1 else 'tasks'})")
    return cluster, kind, index


# Run as its own process: while TensorFlow waits for a missing peer it holds
# the GIL (no Python thread runs) and ignores SIGTERM, so only a process
# outside it can stop the wait, with SIGKILL.
_WATCHDOG = r"""
import os, select, signal, socket, sys
timeout, pid, peers = float(sys.argv[1]), int(sys.argv[2]), sys.argv[3:]
ready, _, _ = select.select([sys.stdin], [], [], timeout)
if not ready:
    missing = []
    for address in peers:
        host, _, port = address.rpartition(":")
        try:
            socket.create_connection((host.strip("[]"), int(port)), timeout=1.0).close()
        except OSError:
            missing.append(address)
    sys.stderr.write(
        f"rnnapps: error: the cluster in TF_CONFIG did not come up within {timeout:g} s: no "
        f"answer from {', '.join(missing or peers)} (is every worker started, with the same "
        "TF_CONFIG cluster, and its port open?)\n")
    sys.stderr.flush()
    os.kill(pid, signal.SIGKILL)
"""


def _start_watchdog(cluster, me, timeout):
    """A process that kills this one, after one line on stderr naming the
    peers that do not answer, unless told within `timeout` seconds that the
    cluster is up (`_stop_watchdog`)."""
    import subprocess

    peers = [a for job, addresses in cluster.items() for i, a in enumerate(addresses)
             if (job, i) != me]
    return subprocess.Popen([sys.executable, "-c", _WATCHDOG, str(timeout), str(os.getpid()),
                             *peers], stdin=subprocess.PIPE)


def _stop_watchdog(watchdog):
    watchdog.stdin.write(b"up")
    watchdog.stdin.close()
    watchdog.wait()


def make_strategy(kind, timeout=120.0):
    """A `tf.distribute.Strategy` for `kind` (one of `KINDS`), or `None` for
    `"none"`. `"multi-worker"` reads `TF_CONFIG` (`read_tf_config`) and waits
    at most `timeout` seconds for every worker to join (an all-reduce across
    them); past that a watchdog process prints one line naming the peers
    that did not answer and kills this one (exit status -9), rather than
    let it hang."""
    if kind not in KINDS:
        raise _error(f"--distribute must be one of {', '.join(KINDS)}. Received: {kind!r}")
    if kind == "none":
        return None
    import tensorflow as tf

    if kind == "mirrored":
        return tf.distribute.MirroredStrategy()
    cluster, task_type, task_index = read_tf_config()
    watchdog = _start_watchdog(cluster, (task_type, task_index), timeout)
    _configure_coordination(cluster, heartbeat=30.0)
    strategy = tf.distribute.MultiWorkerMirroredStrategy()
    # A barrier: returns once every worker has joined.
    strategy.reduce("SUM", strategy.run(lambda: tf.constant(1.0)), axis=None)
    _stop_watchdog(watchdog)
    return strategy


def make_distribution(kind):
    """On JAX: a `keras.distribution.DataParallel` over every local device
    for `"mirrored"` (each step's batch split over them, gradients averaged),
    `None` for `"none"`. `"multi-worker"` is `tf.distribute`'s and needs the
    TensorFlow backend: one line saying so.

    On a CPU, JAX shows one device unless told otherwise:
    `XLA_FLAGS=--xla_force_host_platform_device_count=2` makes two of it,
    which is how the tests run data parallelism without a GPU.
    """
    if kind not in KINDS:
        raise _error(f"--distribute must be one of {', '.join(KINDS)}. Received: {kind!r}")
    if kind == "none":
        return None
    if kind == "multi-worker":
        raise _error("--distribute multi-worker runs on tf.distribute: train with "
                     "--backend tensorflow (on JAX, --distribute mirrored uses every local device)")
    import keras

    return keras.distribution.DataParallel(devices=keras.distribution.list_devices())


def _configure_coordination(cluster, heartbeat):
    """TensorFlow's coordination service as `MultiWorkerMirroredStrategy`
    sets it up, but with a peer declared lost after `heartbeat` seconds
    without a heartbeat rather than TensorFlow's 10: on a loaded machine a
    busy worker can miss 10 s of them and take the whole cluster down."""
    from tensorflow.compiler.xla.tsl.protobuf import coordination_config_pb2
    from tensorflow.python.eager import context

    if context.context().coordination_service is not None:
        return
    leader = "chief" if "chief" in cluster else "worker"
    context.context().configure_coordination_service(
        service_type="standalone",
        service_leader=f"/job:{leader}/replica:0/task:0",
        heartbeat_timeout_in_ms=int(heartbeat * 1000),
        coordinated_jobs=[
            coordination_config_pb2.CoordinatedJob(name=job, num_tasks=len(cluster[job]))
            for job in ("chief", "worker") if job in cluster
        ],
    )


def is_chief(strategy):
    """Whether this process writes checkpoints and exports: always, except
    under multi-worker training, where only the chief (or worker 0) does."""
    resolver = getattr(strategy, "cluster_resolver", None)
    if resolver is None or not resolver.cluster_spec().as_dict():
        return True
    if resolver.task_type == "chief":
        return True
    return resolver.task_type == "worker" and resolver.task_id == 0 and (
        "chief" not in resolver.cluster_spec().as_dict())


def describe(strategy, batch_size):
    """JSON facts of a run's distribution (what `rnnapps train` prints):
    `strategy` is a `tf.distribute.Strategy`, a `keras.distribution`
    distribution (JAX) or `None`."""
    mesh = getattr(strategy, "device_mesh", None)
    if mesh is not None:  # keras.distribution.DataParallel
        replicas = int(mesh.shape[0])
        return {"strategy": type(strategy).__name__, "replicas": replicas,
                "global_batch_size": batch_size,
                "per_replica_batch_size": batch_size / replicas if batch_size else None,
                "chief": True}
    if strategy is None:
        return {"strategy": "none", "replicas": 1, "global_batch_size": batch_size,
                "per_replica_batch_size": batch_size, "chief": True}
    replicas = strategy.num_replicas_in_sync
    facts = {"strategy": type(strategy).__name__, "replicas": replicas,
             "global_batch_size": batch_size,
             "per_replica_batch_size": batch_size / replicas, "chief": is_chief(strategy)}
    resolver = getattr(strategy, "cluster_resolver", None)
    if resolver is not None and resolver.cluster_spec().as_dict():
        facts.update(task_type=resolver.task_type, task_id=resolver.task_id,
                     workers=len(resolver.cluster_spec().as_dict().get("worker", [])))
    return facts


def _multi_worker(strategy):
    import tensorflow as tf

    return isinstance(strategy, tf.distribute.MultiWorkerMirroredStrategy) and bool(
        strategy.cluster_resolver.cluster_spec().as_dict())


def prepare_model(model):
    """Lets `model.fit`/`evaluate` run under `MultiWorkerMirroredStrategy`
    on Keras 3 (a no-op under any other strategy or none).

    Two steps of Keras's TensorFlow trainer fail there (keras-team/keras
    #20585): the symbolic build reduces a whole input batch across workers
    only to read its shapes, and the per-step logs (scalars) are reduced
    along an axis they lack. This gives `model` its own build, from this
    worker's part of the first batch, and wraps the trainer's step
    functions so that their scalar logs are averaged over the replicas
    (they already agree: the metrics are synchronised).
    """
    import keras

    if keras.backend.backend() != "tensorflow":  # no tf.distribute strategy there
        return model
    import tensorflow as tf
    from keras import tree

    strategy = model.distribute_strategy
    if not _multi_worker(strategy):
        return model

    def local(value):
        if isinstance(value, tf.distribute.DistributedValues):
            return strategy.experimental_local_results(value)[0]
        return value

    def maybe_symbolic_build(iterator=None, data_batch=None):
        if iterator is not None:
            for _, _, batches in iterator:
                data_batch = next(batches)
                break
        with strategy.scope():
            model._symbolic_build(data_batch=tree.map_structure(local, data_batch))

    model._maybe_symbolic_build = maybe_symbolic_build
    for name in ("train_step", "test_step"):
        setattr(model, name, _with_vector_logs(getattr(model, name)))
    return model


def _with_vector_logs(step):
    """`step` with each scalar log as a vector of one: Keras averages the
    replicas' logs along axis 0 under multi-worker training."""
    from keras import ops, tree

    def vector_logs(data):
        return tree.map_structure(
            lambda v: ops.reshape(v, (1,)) if len(ops.shape(v)) == 0 else v, step(data))

    return vector_logs
