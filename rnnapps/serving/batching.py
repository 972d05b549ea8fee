"""Dynamic batching: concurrent requests to one signature run as one batch.

As TF Serving's batching (`--enable_batching`): requests queue per model
version and signature; a batch closes when it holds `max_batch_size` rows, or
when its first request has waited `batch_timeout_micros`, and runs as soon as
a batch thread is free. Unlike TF Serving, the timeout applies only under
concurrent load (two requests outstanding at once within the last 100 ms):
a lone client's request runs at once, with no latency added, and under load
batches fill up, which is what the timeout is for. At most `num_batch_threads` batches run at once,
in worker threads, off the event loop. The queue holds
at most `max_enqueued_batches * max_batch_size` rows; a request past that is
refused at once (`QueueFull`, answered 503) instead of waiting unboundedly.

Requests merge only with requests of the same inner shapes (a forecasting
window of 22 steps never shares a batch with one of 30). A batch that fails on
bad input (a NaN window, bytes that are not an image) is re-run one request at
a time, so only the request that caused the error fails.
"""

import asyncio
import collections
import dataclasses
import math
import time

import numpy as np

__all__ = ["Batcher", "QueueFull"]

# How long after two requests were last outstanding at once the model counts
# as under load (and a batch waits up to its timeout for more); at least three
# timeouts.
_LOAD_MEMORY = 0.1


class QueueFull(Exception):
    """The batch queue has no room for the request."""


@dataclasses.dataclass
class _Task:
    arrays: dict
    rows: int
    key: tuple
    future: asyncio.Future


class Batcher:
    """Merges concurrent calls of `run` into batches.

    Args:
        run: A blocking function of a dict of NumPy arrays (leading dimension
            the batch) returning a dict of NumPy arrays (leading dimension the
            batch); it runs in `executor`.
        executor: A `concurrent.futures.Executor` for `run`.
        max_batch_size: Most rows in one batch (1 turns batching off: each
            request runs alone). A request larger than this runs alone.
        batch_timeout_micros: How long the first request of a batch waits
            for others under concurrent load (0: only for as long as every
            batch thread is busy).
        max_enqueued_batches: Queue capacity, in batches.
        num_batch_threads: Most batches running at once.
        is_input_error: A predicate on an exception from `run`: `True` when
            the input caused it (the batch is then re-run one request at a
            time).
    """

    def __init__(self, run, executor, max_batch_size=64, batch_timeout_micros=0,
                 max_enqueued_batches=16, num_batch_threads=2, is_input_error=None):
        if max_batch_size < 1:
            raise ValueError(f"max_batch_size must be positive. Received: {max_batch_size}")
        if num_batch_threads < 1:
            raise ValueError(f"num_batch_threads must be positive. Received: {num_batch_threads}")
        self.run = run
        self.executor = executor
        self.max_batch_size = max_batch_size
        self.timeout = batch_timeout_micros / 1e6
        self.capacity = max_enqueued_batches * max_batch_size
        self.is_input_error = is_input_error or (lambda error: False)
        self._queue = collections.deque()
        self._queued_rows = 0
        self._arrived = asyncio.Event()
        self._threads = asyncio.Semaphore(num_batch_threads)
        self._running = set()
        self._held = []
        self._outstanding = 0  # requests submitted and not yet answered
        self._last_concurrent = -math.inf  # when two were last outstanding at once
        self._loop_task = None
        self.batch_sizes = collections.Counter()  # rows per batch run, for tests and logs

    async def submit(self, arrays):
        """The outputs for `arrays`, once its batch has run.

        Raises:
            QueueFull: the queue is full.
            Exception: whatever `run` raised for this request's rows.
        """
        rows = len(next(iter(arrays.values())))
        if self._queued_rows + rows > self.capacity and self._queue:
            raise QueueFull(
                "The batch scheduling queue to which this task was submitted is full"
            )
        if self._loop_task is None:
            self._loop_task = asyncio.get_running_loop().create_task(self._loop())
        key = tuple(sorted((name, a.dtype.str, a.shape[1:]) for name, a in arrays.items()))
        task = _Task(arrays, rows, key, asyncio.get_running_loop().create_future())
        self._queue.append(task)
        self._queued_rows += rows
        self._outstanding += 1
        if self._outstanding > 1:
            self._last_concurrent = time.monotonic()
        self._arrived.set()
        try:
            return await task.future
        finally:
            self._outstanding -= 1

    def _take(self, batch, rows):
        """Moves queued tasks of the batch's shapes into `batch`, up to the size."""
        key = batch[0].key
        for task in list(self._queue):
            if rows >= self.max_batch_size:
                break
            if task.key == key and rows + task.rows <= self.max_batch_size:
                self._queue.remove(task)
                self._queued_rows -= task.rows
                batch.append(task)
                rows += task.rows
        return rows

    async def _loop(self):
        while True:
            while not self._queue:
                self._arrived.clear()
                await self._arrived.wait()
            first = self._queue.popleft()
            self._queued_rows -= first.rows
            # The batch being gathered: out of the queue, not yet running
            # (`close` waits for it too).
            batch = self._held = [first]
            rows = self._take(batch, first.rows)
            # Wait for more only under concurrent load (two requests outstanding
            # at once within the last 100 ms): there a fuller batch costs less
            # per example, while a lone client's request runs at once.
            memory = max(_LOAD_MEMORY, 3 * self.timeout)
            loaded = time.monotonic() - self._last_concurrent < memory
            deadline = time.monotonic() + (self.timeout if loaded else 0.0)
            while rows < self.max_batch_size and time.monotonic() < deadline:
                self._arrived.clear()
                try:
                    await asyncio.wait_for(self._arrived.wait(), deadline - time.monotonic())
                except asyncio.TimeoutError:
                    pass
                rows = self._take(batch, rows)
            # Wait for a free thread; what arrives meanwhile joins the batch.
            await self._threads.acquire()
            rows = self._take(batch, rows)
            task = asyncio.get_running_loop().create_task(self._execute(batch))
            self._running.add(task)
            task.add_done_callback(self._running.discard)
            self._held = []

    async def _execute(self, batch):
        loop = asyncio.get_running_loop()
        try:
            live = [t for t in batch if not t.future.done()]  # a client may have gone
            if not live:
                return
            try:
                outputs = await loop.run_in_executor(self.executor, self._run_merged, live)
            except Exception as error:  # noqa: BLE001 - delivered to the requests
                if len(live) > 1 and self.is_input_error(error):
                    await self._run_one_by_one(live)
                else:
                    for task in live:
                        _deliver(task.future, error=error)
                return
            for task, output in zip(live, outputs):
                _deliver(task.future, output)
        finally:
            self._threads.release()

    async def _run_one_by_one(self, batch):
        loop = asyncio.get_running_loop()
        for task in batch:
            try:
                output = await loop.run_in_executor(self.executor, self.run, task.arrays)
            except Exception as error:  # noqa: BLE001
                _deliver(task.future, error=error)
            else:
                _deliver(task.future, output)

    def _run_merged(self, batch):
        self.batch_sizes[sum(t.rows for t in batch)] += 1
        if len(batch) == 1:
            return [self.run(batch[0].arrays)]
        names = batch[0].arrays.keys()
        merged = {name: np.concatenate([t.arrays[name] for t in batch]) for name in names}
        outputs = self.run(merged)
        bounds = np.cumsum([0] + [t.rows for t in batch])
        return [
            {name: value[start:end] for name, value in outputs.items()}
            for start, end in zip(bounds[:-1], bounds[1:])
        ]

    async def close(self):
        """Finishes what is queued, gathered and running, then stops."""
        while self._queue or self._held or self._running:
            await asyncio.sleep(0.01)
        if self._loop_task is not None:
            self._loop_task.cancel()
            try:
                await self._loop_task
            except asyncio.CancelledError:
                pass
            self._loop_task = None


def _deliver(future, output=None, error=None):
    if future.done():
        return
    if error is not None:
        future.set_exception(error)
    else:
        future.set_result(output)
