"""Locks, events, semaphores, channels and clocks of the three backends,
written once and run on asyncio (also on uvloop), trio and (through
``run_sync``) the blocking backend. Concurrent parts run in the backend's
own task group, so on the blocking backend they run on threads."""

from __future__ import annotations

from collections.abc import Callable, Coroutine
from typing import Any

import pytest

from webwire._backends import Backend, ChannelClosed, get_backend
from webwire._exceptions import ReadTimeout
from webwire._sync import run_sync

Scenario = Callable[[Backend], Coroutine[Any, Any, None]]
SCENARIOS: dict[str, Scenario] = {}


def scenario(fn: Scenario) -> Scenario:
    SCENARIOS[fn.__name__] = fn
    return fn


async def eventually(backend: Backend, check: Callable[[], bool], within: float = 5.0) -> bool:
    deadline = backend.monotonic() + within
    while backend.monotonic() < deadline:
        if check():
            return True
        await backend.sleep(0.005)
    return check()


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
async def event_clear_resets_the_flag(backend: Backend) -> None:
    event = backend.create_event()
    event.clear()
    assert not event.is_set()
    event.set()
    event.clear()
    assert not event.is_set()
    assert await event.wait(0.02) is False
    event.set()
    assert await event.wait(0.02) is True
    event.clear()
    event.clear()
    assert not event.is_set()


@scenario
async def event_set_then_clear_still_wakes_the_waiter(backend: Backend) -> None:
    event = backend.create_event()
    waiting = backend.create_event()
    results: list[bool] = []

    async def waiter() -> None:
        waiting.set()
        results.append(await event.wait(5))

    async with backend.create_task_group() as group:
        group.start_soon(waiter)
        assert await waiting.wait(5)
        await backend.sleep(0.05)
        event.set()
        event.clear()
    assert results == [True]
    assert not event.is_set()


@scenario
async def event_wakes_every_waiter(backend: Backend) -> None:
    event = backend.create_event()
    woken: list[int] = []

    async def waiter(index: int) -> None:
        assert await event.wait(5)
        woken.append(index)

    async with backend.create_task_group() as group:
        for index in range(5):
            group.start_soon(waiter, index)
        await backend.sleep(0.05)
        assert woken == []
        event.set()
    assert sorted(woken) == [0, 1, 2, 3, 4]


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
    assert not lock.locked()
    async with lock:
        assert lock.locked()
    assert not lock.locked()
    assert await lock.acquire() is True
    lock.release()
    async with lock:
        pass
    with pytest.raises(RuntimeError):
        lock.release()


@scenario
async def lock_acquire_times_out(backend: Backend) -> None:
    lock = backend.create_lock()
    outcomes: list[bool] = []

    async def contender(timeout: float) -> None:
        taken = await lock.acquire(timeout)
        outcomes.append(taken)
        if taken:
            lock.release()

    assert await lock.acquire(0) is True
    async with backend.create_task_group() as group:
        group.start_soon(contender, 0.05)
    assert outcomes == [False]
    assert lock.locked()
    async with backend.create_task_group() as group:
        group.start_soon(contender, 5)
        await backend.sleep(0.05)
        assert outcomes == [False]
        lock.release()
    assert outcomes == [False, True]
    assert not lock.locked()


@scenario
async def lock_serialises_tasks(backend: Backend) -> None:
    lock = backend.create_lock()
    inside = 0
    most = 0

    async def worker() -> None:
        nonlocal inside, most
        for _ in range(5):
            async with lock:
                inside += 1
                most = max(most, inside)
                await backend.sleep(0.001)
                inside -= 1

    async with backend.create_task_group() as group:
        for _ in range(4):
            group.start_soon(worker)
    assert most == 1
    assert inside == 0


@scenario
async def clock_and_sleep(backend: Backend) -> None:
    start = backend.monotonic()
    await backend.sleep(0.05)
    assert 0.04 <= backend.monotonic() - start < 2.0
    await backend.sleep(0)
    await backend.sleep(-1)
    await backend.checkpoint()


@scenario
async def channel_is_fifo_and_bounded(backend: Backend) -> None:
    channel = backend.create_channel(3)
    assert len(channel) == 0
    for item in ("a", "b", "c"):
        assert channel.send_nowait(item) is True
    assert len(channel) == 3
    assert channel.send_nowait("d") is False
    assert await channel.send("d", 0.05) is False
    assert await channel.send("d", 0) is False
    assert len(channel) == 3
    assert await channel.receive() == "a"
    assert await channel.send("d", 1) is True
    assert [channel.receive_nowait() for _ in range(3)] == ["b", "c", "d"]
    with pytest.raises(IndexError):
        channel.receive_nowait()
    with pytest.raises(ReadTimeout):
        await channel.receive(0.05)
    with pytest.raises(ReadTimeout):
        await channel.receive(0)
    assert len(channel) == 0


@scenario
async def channel_back_pressure(backend: Backend) -> None:
    channel = backend.create_channel(2)
    sent: list[int] = []
    received: list[int] = []

    async def producer() -> None:
        for index in range(10):
            assert await channel.send(index)
            sent.append(index)
        channel.close()

    async with backend.create_task_group() as group:
        group.start_soon(producer)
        assert await eventually(backend, lambda: len(sent) == 2)
        await backend.sleep(0.05)
        # Full: the producer waits instead of queueing more.
        assert sent == [0, 1]
        assert len(channel) == 2
        while True:
            try:
                item = await channel.receive(5)
            except ChannelClosed:
                break
            assert len(channel) <= 2
            received.append(item)
    assert received == list(range(10))
    assert sent == list(range(10))


@scenario
async def channel_close_semantics(backend: Backend) -> None:
    channel = backend.create_channel(2)
    channel.send_nowait(1)
    channel.close()
    channel.close()
    with pytest.raises(ChannelClosed):
        await channel.send(2)
    with pytest.raises(ChannelClosed):
        channel.send_nowait(2)
    assert len(channel) == 1
    assert await channel.receive(1) == 1
    with pytest.raises(ChannelClosed):
        await channel.receive(1)
    with pytest.raises(ChannelClosed):
        channel.receive_nowait()


@scenario
async def channel_close_wakes_waiting_sender_and_receiver(backend: Backend) -> None:
    full = backend.create_channel(1)
    full.send_nowait("x")
    empty = backend.create_channel(1)
    errors: list[str] = []

    async def blocked_sender() -> None:
        try:
            await full.send("y")
        except ChannelClosed:
            errors.append("send")

    async def blocked_receiver() -> None:
        try:
            await empty.receive()
        except ChannelClosed:
            errors.append("receive")

    async with backend.create_task_group() as group:
        group.start_soon(blocked_sender)
        group.start_soon(blocked_receiver)
        await backend.sleep(0.05)
        assert errors == []
        full.close()
        empty.close()
    assert sorted(errors) == ["receive", "send"]
    # Items queued before the close stay receivable.
    assert full.receive_nowait() == "x"


@scenario
async def channel_many_producers_and_consumers(backend: Backend) -> None:
    channel = backend.create_channel(4)
    received: list[int] = []
    producers_done = backend.create_semaphore(0)

    async def producer(base: int) -> None:
        for index in range(50):
            await channel.send(base + index)
        producers_done.release()

    async def consumer() -> None:
        while True:
            try:
                received.append(await channel.receive(10))
            except ChannelClosed:
                return

    async with backend.create_task_group() as group:
        for base in (0, 1000, 2000):
            group.start_soon(producer, base)
        for _ in range(3):
            group.start_soon(consumer)
        for _ in range(3):
            assert await producers_done.acquire(10)
        channel.close()
    assert sorted(received) == sorted(base + i for base in (0, 1000, 2000) for i in range(50))


@pytest.mark.anyio
@pytest.mark.parametrize("name", sorted(SCENARIOS))
async def test_async_backends(name: str, anyio_backend: str) -> None:
    await SCENARIOS[name](get_backend(anyio_backend))


@pytest.mark.anyio
@pytest.mark.parametrize(
    "anyio_backend", [pytest.param(("asyncio", {"use_uvloop": True}), id="uvloop")]
)
@pytest.mark.parametrize("name", sorted(SCENARIOS))
async def test_asyncio_backend_on_uvloop(name: str, anyio_backend: object) -> None:
    pytest.importorskip("uvloop")
    await SCENARIOS[name](get_backend("asyncio"))


@pytest.mark.parametrize("name", sorted(SCENARIOS))
def test_sync_backend(name: str) -> None:
    run_sync(SCENARIOS[name](get_backend("sync")))
