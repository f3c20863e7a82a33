"""Locks, events, semaphores, clocks and background work of the three
backends, written once and run on asyncio, trio and (through ``run_sync``)
the blocking backend."""

from __future__ import annotations

import logging
from collections.abc import Callable, Coroutine, Iterator
from typing import Any

import pytest

from webwire._backends import Backend, get_backend
from webwire._sync import run_sync

Scenario = Callable[[Backend], Coroutine[Any, Any, None]]
SCENARIOS: dict[str, Scenario] = {}


def scenario(fn: Scenario) -> Scenario:
    SCENARIOS[fn.__name__] = fn
    return fn


@scenario
async def event_wait_times_out(backend: Backend) -> None:
    event = backend.create_event()
    assert not event.is_set()
    start = backend.monotonic()
    assert await event.wait(0.05) is False
    assert backend.monotonic() - start >= 0.04
    assert await event.wait(0) is False
    event.set()
    event.set()
    assert event.is_set()
    assert await event.wait(0.05) is True
    assert await event.wait() is True


@scenario
async def semaphore_acquire_times_out(backend: Backend) -> None:
    semaphore = backend.create_semaphore(2)
    assert await semaphore.acquire(0.05) is True
    assert await semaphore.acquire() is True
    assert await semaphore.acquire(0.05) is False
    semaphore.release()
    assert await semaphore.acquire(0.05) is True


@scenario
async def lock_is_exclusive(backend: Backend) -> None:
    lock = backend.create_lock()
    async with lock:
        pass
    await lock.acquire()
    lock.release()
    async with lock:
        pass


@scenario
async def clock_and_sleep(backend: Backend) -> None:
    start = backend.monotonic()
    await backend.sleep(0.05)
    assert 0.04 <= backend.monotonic() - start < 2.0
    await backend.sleep(0)
    await backend.checkpoint()


@scenario
async def background_runs_and_cancels(backend: Backend) -> None:
    started = backend.create_event()
    stopped = backend.create_event()
    ticks: list[int] = []

    async def work() -> None:
        started.set()
        try:
            while True:
                ticks.append(1)
                await backend.sleep(0.01)
        finally:
            stopped.set()

    cancel = backend.start_background(work)
    assert await started.wait(5)
    assert not stopped.is_set()
    cancel()
    cancel()
    assert await stopped.wait(5)
    count = len(ticks)
    await backend.sleep(0.05)
    assert len(ticks) == count


@scenario
async def background_finishes_on_its_own(backend: Backend) -> None:
    done = backend.create_event()

    async def work() -> None:
        await backend.sleep(0.01)
        done.set()

    cancel = backend.start_background(work)
    assert await done.wait(5)
    cancel()


@pytest.mark.anyio
@pytest.mark.parametrize("name", sorted(SCENARIOS))
async def test_async_backends(name: str, anyio_backend: str) -> None:
    await SCENARIOS[name](get_backend(anyio_backend))


@pytest.mark.parametrize("name", sorted(SCENARIOS))
def test_sync_backend(name: str) -> None:
    run_sync(SCENARIOS[name](get_backend("sync")))


async def _failing_background(backend: Backend) -> None:
    done = backend.create_event()

    async def work() -> None:
        try:
            raise ValueError("boom in background")
        finally:
            done.set()

    backend.start_background(work)
    assert await done.wait(5)
    # Give the runner time to log the failure after ``finally`` ran.
    for _ in range(100):
        await backend.sleep(0.01)
        if _logged_boom:
            break


_logged_boom: list[str] = []


class _Collect(logging.Handler):
    def emit(self, record: logging.LogRecord) -> None:
        if record.exc_info and "boom in background" in str(record.exc_info[1]):
            _logged_boom.append(record.getMessage())


@pytest.fixture
def collect_boom() -> Iterator[list[str]]:
    handler = _Collect()
    logger = logging.getLogger("webwire")
    logger.addHandler(handler)
    _logged_boom.clear()
    try:
        yield _logged_boom
    finally:
        logger.removeHandler(handler)


@pytest.mark.anyio
async def test_background_failure_is_logged_async(
    anyio_backend: str, collect_boom: list[str]
) -> None:
    await _failing_background(get_backend(anyio_backend))
    assert collect_boom


def test_background_failure_is_logged_sync(collect_boom: list[str]) -> None:
    run_sync(_failing_background(get_backend("sync")))
    assert collect_boom
