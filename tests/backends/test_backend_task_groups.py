"""Task groups of the three backends: join, failure, cancellation, nesting,
and every kind of wait ended by cancellation. Written once and run on
asyncio (also on uvloop), trio and (through ``run_sync``, one thread per
task) the blocking backend."""

from __future__ import annotations

from collections.abc import Callable, Coroutine
from typing import Any

import pytest

from webwire._backends import Backend, Event, get_backend
from webwire._sync import run_sync

from .servers import UDPEchoServer

Scenario = Callable[[Backend], Coroutine[Any, Any, None]]
SCENARIOS: dict[str, Scenario] = {}

pytestmark = pytest.mark.timeout(30)


def scenario(fn: Scenario) -> Scenario:
    SCENARIOS[fn.__name__] = fn
    return fn


async def forever(backend: Backend, started: Event, ended: list[str], name: str) -> None:
    """Sleep until cancelled, recording ``name`` in ``ended`` on the way
    out."""
    started.set()
    try:
        await backend.sleep(3600)
    finally:
        ended.append(name)


@scenario
async def joins_every_task(backend: Backend) -> None:
    done: list[int] = []

    async def work(index: int, pause: float) -> None:
        await backend.sleep(pause)
        done.append(index)

    async with backend.create_task_group() as group:
        group.start_soon(work, 1, 0.05)
        group.start_soon(work, 2, 0.01)
        group.start_soon(work, 3, 0)
    assert sorted(done) == [1, 2, 3]


@scenario
async def task_can_start_more_tasks(backend: Backend) -> None:
    done: list[str] = []

    async def child() -> None:
        await backend.sleep(0.02)
        done.append("child")

    async def parent(group: Any) -> None:
        group.start_soon(child)
        done.append("parent")

    async with backend.create_task_group() as group:
        group.start_soon(parent, group)
    assert sorted(done) == ["child", "parent"]


@scenario
async def failing_task_cancels_the_rest_and_reraises_itself(backend: Backend) -> None:
    started = backend.create_event()
    ended: list[str] = []
    error = ValueError("boom")
    body_cancelled: list[bool] = []

    async def fail() -> None:
        assert await started.wait(5)
        raise error

    with pytest.raises(ValueError) as caught:
        async with backend.create_task_group() as group:
            group.start_soon(forever, backend, started, ended, "sleeper")
            group.start_soon(fail)
            try:
                await backend.create_event().wait()
            finally:
                body_cancelled.append(True)
    assert caught.value is error
    assert type(caught.value) is ValueError
    assert ended == ["sleeper"]
    assert body_cancelled == [True]


@scenario
async def first_error_wins_later_ones_are_dropped(backend: Backend) -> None:
    started = backend.create_event()

    async def raises_when_cancelled() -> None:
        try:
            started.set()
            await backend.sleep(3600)
        finally:
            raise KeyError("second")

    async def fail() -> None:
        assert await started.wait(5)
        raise ValueError("first")

    with pytest.raises(ValueError, match="first"):
        async with backend.create_task_group() as group:
            group.start_soon(raises_when_cancelled)
            group.start_soon(fail)


@scenario
async def body_error_cancels_tasks_and_propagates(backend: Backend) -> None:
    started = backend.create_event()
    ended: list[str] = []
    with pytest.raises(RuntimeError, match="from the body"):
        async with backend.create_task_group() as group:
            group.start_soon(forever, backend, started, ended, "a")
            group.start_soon(forever, backend, started, ended, "b")
            assert await started.wait(5)
            raise RuntimeError("from the body")
    assert sorted(ended) == ["a", "b"]


@scenario
async def cancel_from_the_body_exits_quietly(backend: Backend) -> None:
    started = backend.create_event()
    ended: list[str] = []
    after_cancel: list[str] = []
    async with backend.create_task_group() as group:
        group.start_soon(forever, backend, started, ended, "a")
        group.start_soon(forever, backend, started, ended, "b")
        assert await started.wait(5)
        group.cancel()
        group.cancel()
        try:
            # The body is cancelled too: its next wait ends it.
            await backend.sleep(3600)
        finally:
            after_cancel.append("body")
    assert sorted(ended) == ["a", "b"]
    assert after_cancel == ["body"]
    # Cancellation did not leak out of the group.
    await backend.sleep(0.01)
    await backend.checkpoint()


@scenario
async def cancel_from_a_task_exits_quietly(backend: Backend) -> None:
    started = backend.create_event()
    ended: list[str] = []

    async def canceller(group: Any) -> None:
        assert await started.wait(5)
        group.cancel()

    async with backend.create_task_group() as group:
        group.start_soon(forever, backend, started, ended, "sleeper")
        group.start_soon(canceller, group)
    assert ended == ["sleeper"]
    await backend.sleep(0.01)


@scenario
async def cancel_after_the_body_ended(backend: Backend) -> None:
    started = backend.create_event()
    ended: list[str] = []
    group = backend.create_task_group()
    async with group:
        group.start_soon(forever, backend, started, ended, "a")
        assert await started.wait(5)
        group.cancel()
    assert ended == ["a"]
    group.cancel()
    with pytest.raises(RuntimeError):
        group.start_soon(forever, backend, started, ended, "late")
    with pytest.raises(RuntimeError):
        backend.create_task_group().start_soon(forever, backend, started, ended, "early")


@scenario
async def outer_cancel_reaches_nested_groups(backend: Backend) -> None:
    started = backend.create_semaphore(0)
    ended: list[str] = []

    async def inner_owner() -> None:
        async with backend.create_task_group() as inner:
            for name in ("inner-a", "inner-b"):
                inner.start_soon(sleeper, name)
            started.release()
            try:
                await backend.sleep(3600)
            finally:
                ended.append("inner-body")

    async def sleeper(name: str) -> None:
        started.release()
        try:
            await backend.sleep(3600)
        finally:
            ended.append(name)

    async with backend.create_task_group() as outer:
        outer.start_soon(inner_owner)
        for _ in range(3):
            assert await started.acquire(5)
        outer.cancel()
    assert sorted(ended) == ["inner-a", "inner-b", "inner-body"]


@scenario
async def inner_group_cancel_stays_inside(backend: Backend) -> None:
    started = backend.create_event()
    ended: list[str] = []
    async with backend.create_task_group() as outer:
        async with backend.create_task_group() as inner:
            inner.start_soon(forever, backend, started, ended, "inner")
            assert await started.wait(5)
            inner.cancel()
        # The outer group and its body are not cancelled.
        await backend.sleep(0.01)
        ended.append("outer body went on")
        outer.start_soon(backend.sleep, 0)
    assert ended == ["inner", "outer body went on"]


@scenario
async def cancellation_ends_every_kind_of_wait(backend: Backend) -> None:
    waiting = backend.create_semaphore(0)
    ended: list[str] = []
    lock = backend.create_lock()
    await lock.acquire()
    empty_semaphore = backend.create_semaphore(0)
    full = backend.create_channel(1)
    full.send_nowait("x")
    empty = backend.create_channel(1)
    never = backend.create_event()

    async def wait_on(name: str, wait: Callable[[], Coroutine[Any, Any, Any]]) -> None:
        waiting.release()
        try:
            await wait()
        finally:
            ended.append(name)

    async def spin() -> None:
        while True:
            await backend.checkpoint()
            await backend.sleep(0.001)

    with UDPEchoServer() as server:
        udp = await backend.connect_udp(("127.0.0.1", server.port))
        try:
            waits: dict[str, Callable[[], Coroutine[Any, Any, Any]]] = {
                "sleep": lambda: backend.sleep(3600),
                "event": never.wait,
                "lock": lock.acquire,
                "semaphore": empty_semaphore.acquire,
                "channel send": lambda: full.send("y"),
                "channel receive": empty.receive,
                "datagram receive": udp.receive,
                "checkpoint": spin,
            }
            async with backend.create_task_group() as group:
                for name, wait in waits.items():
                    group.start_soon(wait_on, name, wait)
                for _ in waits:
                    assert await waiting.acquire(5)
                await backend.sleep(0.05)
                assert ended == []
                group.cancel()
            assert sorted(ended) == sorted(waits)
        finally:
            await udp.aclose()
    lock.release()
    # Nothing was taken by the cancelled waits.
    assert full.receive_nowait() == "x"
    assert len(full) == 0
    assert await lock.acquire(0)


@scenario
async def many_tasks(backend: Backend) -> None:
    total = 0
    lock = backend.create_lock()

    async def add(amount: int) -> None:
        nonlocal total
        await backend.sleep(0.001)
        async with lock:
            total += amount

    async with backend.create_task_group() as group:
        for amount in range(1, 41):
            group.start_soon(add, amount)
    assert total == sum(range(1, 41))


@scenario
async def detached_group_outlives_the_task_that_entered_it(backend: Backend) -> None:
    ended: list[str] = []
    started = backend.create_event()
    detached: list[Any] = []

    async def opener() -> None:
        group = backend.create_detached_task_group()
        await group.__aenter__()
        group.start_soon(forever, backend, started, ended, "detached")
        detached.append(group)

    async with backend.create_task_group() as group:
        group.start_soon(opener)
        assert await started.wait(5)
        group.cancel()
    # The cancellation of the group that entered it did not reach its task.
    assert ended == []
    done: list[int] = []

    async def work() -> None:
        await backend.sleep(0)
        done.append(1)

    async with backend.create_task_group() as other:
        other.start_soon(work)
    assert done == [1]
    # Exited by another task than the one that entered it.
    detached[0].cancel()
    await detached[0].__aexit__(None, None, None)
    assert ended == ["detached"]
    # Exiting it left this task's groups working.
    async with backend.create_task_group() as last:
        last.start_soon(work)
    await backend.sleep(0)
    assert done == [1, 1]


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
