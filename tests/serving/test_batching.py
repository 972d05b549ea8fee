"""Dynamic batching, with a NumPy function standing in for a model."""

import asyncio
import concurrent.futures
import threading
import time

import numpy as np
import pytest

from rnnapps.serving.batching import Batcher, QueueFull


class BadInput(Exception):
    pass


class Model:
    """y = 2x, slowly; refuses a NaN anywhere in the batch (as the forecasting
    export refuses a NaN window)."""

    def __init__(self, delay=0.05):
        self.delay = delay
        self.calls = []
        self.lock = threading.Lock()

    def __call__(self, arrays):
        x = arrays["x"]
        with self.lock:
            self.calls.append(len(x))
        time.sleep(self.delay)
        if np.isnan(x).any():
            raise BadInput("the window holds NaN")
        return {"y": 2 * x}


def run(coroutine):
    return asyncio.run(coroutine)


@pytest.fixture
def executor():
    with concurrent.futures.ThreadPoolExecutor(2) as pool:
        yield pool


def test_concurrent_requests_merge_and_each_gets_its_own_rows(executor):
    model = Model()

    async def main():
        batcher = Batcher(model, executor, max_batch_size=64, num_batch_threads=1)
        inputs = [np.full((1 + i % 3, 2), float(i), np.float32) for i in range(30)]
        outputs = await asyncio.gather(*(batcher.submit({"x": x}) for x in inputs))
        await batcher.close()
        return inputs, outputs

    inputs, outputs = run(main())
    for x, out in zip(inputs, outputs):
        np.testing.assert_array_equal(out["y"], 2 * x)
    # One thread: the first request runs alone, the rest queue up behind it and merge.
    assert len(model.calls) < 10 and max(model.calls) > 10
    assert sum(model.calls) == sum(len(x) for x in inputs)


def test_batching_off_runs_each_request_alone(executor):
    model = Model(delay=0.0)

    async def main():
        batcher = Batcher(model, executor, max_batch_size=1, num_batch_threads=2)
        await asyncio.gather(*(batcher.submit({"x": np.ones((1, 2))}) for _ in range(10)))

    run(main())
    assert model.calls == [1] * 10


def test_max_batch_size_and_shapes_bound_a_batch(executor):
    model = Model()

    async def main():
        batcher = Batcher(model, executor, max_batch_size=4, num_batch_threads=1)
        same = [batcher.submit({"x": np.ones((1, 3))}) for _ in range(9)]
        other = [batcher.submit({"x": np.ones((1, 5))}) for _ in range(2)]
        big = batcher.submit({"x": np.ones((6, 3))})  # larger than the batch: runs alone
        results = await asyncio.gather(*same, *other, big)
        assert [r["y"].shape for r in results[9:11]] == [(1, 5), (1, 5)]
        assert results[-1]["y"].shape == (6, 3)

    run(main())
    assert max(c for c in model.calls if c != 6) <= 4
    assert 6 in model.calls


def test_a_bad_request_fails_alone_and_its_batch_mates_succeed(executor):
    model = Model()

    async def main():
        batcher = Batcher(model, executor, max_batch_size=16, num_batch_threads=1,
                          is_input_error=lambda e: isinstance(e, BadInput))
        good = [batcher.submit({"x": np.ones((1, 2))}) for _ in range(6)]
        bad = batcher.submit({"x": np.full((1, 2), np.nan)})
        return await asyncio.gather(*good, bad, return_exceptions=True)

    results = run(main())
    assert all(isinstance(r, dict) for r in results[:6])
    assert isinstance(results[6], BadInput)


def test_a_full_queue_refuses_at_once(executor):
    model = Model(delay=0.2)

    async def main():
        batcher = Batcher(model, executor, max_batch_size=2, max_enqueued_batches=1,
                          num_batch_threads=1)
        started = time.monotonic()
        results = await asyncio.gather(
            *(batcher.submit({"x": np.ones((1, 1))}) for _ in range(10)), return_exceptions=True)
        refused = [r for r in results if isinstance(r, QueueFull)]
        return refused, results, time.monotonic() - started

    refused, results, _ = run(main())
    assert refused and "queue" in str(refused[0]) and "full" in str(refused[0])
    served = [r for r in results if isinstance(r, dict)]
    assert served and len(served) + len(refused) == 10


def test_arguments_are_checked(executor):
    with pytest.raises(ValueError, match="max_batch_size must be positive"):
        Batcher(Model(), executor, max_batch_size=0)
    with pytest.raises(ValueError, match="num_batch_threads must be positive"):
        Batcher(Model(), executor, num_batch_threads=0)


def test_under_load_a_batch_waits_for_later_requests_and_a_lone_request_does_not(executor):
    model = Model(delay=0.0)

    async def main():
        batcher = Batcher(model, executor, max_batch_size=8, batch_timeout_micros=300_000,
                          num_batch_threads=2)
        started = time.monotonic()
        await batcher.submit({"x": np.ones((1, 2))})  # alone: runs at once
        alone = time.monotonic() - started
        # Two at once: the model is under load for the next 100 ms ...
        await asyncio.gather(*(batcher.submit({"x": np.ones((1, 2))}) for _ in range(2)))
        # ... so a request waits up to the timeout for the next one.
        first = asyncio.ensure_future(batcher.submit({"x": np.ones((1, 2))}))
        await asyncio.sleep(0.05)
        await asyncio.gather(first, batcher.submit({"x": np.ones((1, 2))}))
        return alone

    alone = run(main())
    assert alone < 0.15
    assert model.calls == [1, 2, 2]


def test_close_answers_the_batch_being_gathered(executor):
    """A batch taken off the queue and waiting for more (or for a thread) is
    answered before `close` returns, never dropped."""
    model = Model(delay=0.1)

    async def main():
        batcher = Batcher(model, executor, max_batch_size=8, batch_timeout_micros=200_000,
                          num_batch_threads=1)
        busy = [asyncio.ensure_future(batcher.submit({"x": np.ones((1, 2))})) for _ in range(2)]
        await asyncio.sleep(0.02)  # both run; the model counts as under load
        late = asyncio.ensure_future(batcher.submit({"x": np.ones((1, 2))}))
        await asyncio.sleep(0.01)  # `late` is out of the queue, waiting for company
        await asyncio.wait_for(batcher.close(), 5)
        assert late.done() and late.result()["y"].shape == (1, 2)
        await asyncio.gather(*busy)

    run(main())
