"""Behaviour that only concerns some backends: concurrency between tasks,
cancellation, the asyncio read buffer, and threads on the blocking backend."""

from __future__ import annotations

import asyncio
import os
import sys
import threading
import time
from typing import Any

import anyio
import pytest

from webwire._backends import get_backend
from webwire._backends.asyncio import _READ_HIGH_WATER, AsyncioStream
from webwire._exceptions import ReadError, ReadTimeout
from webwire._sync import run_sync

from .servers import ThreadServer, echo, sender, silent


@pytest.mark.anyio
async def test_second_concurrent_reader_is_refused(anyio_backend: str) -> None:
    backend = get_backend(anyio_backend)
    with ThreadServer(silent) as server:
        stream = await backend.connect_tcp("127.0.0.1", server.port, timeout=5)
        try:
            errors: list[BaseException] = []

            async def reader() -> None:
                try:
                    await stream.read(10, 0.3)
                except (ReadError, ReadTimeout) as exc:
                    errors.append(exc)

            async with anyio.create_task_group() as group:
                group.start_soon(reader)
                group.start_soon(reader)
            assert sorted(type(e).__name__ for e in errors) == ["ReadError", "ReadTimeout"]
        finally:
            await stream.aclose()


@pytest.mark.anyio
async def test_cancelled_read_leaves_stream_usable(anyio_backend: str) -> None:
    backend = get_backend(anyio_backend)
    with ThreadServer(echo) as server:
        stream = await backend.connect_tcp("127.0.0.1", server.port, timeout=5)
        try:
            with anyio.move_on_after(0.1) as scope:
                await stream.read(10, None)
            assert scope.cancelled_caught
            await stream.write(b"again", 5)
            assert await stream.read(10, 5) == b"again"
        finally:
            await stream.aclose()


@pytest.mark.anyio
async def test_abort_wakes_a_blocked_reader(anyio_backend: str) -> None:
    backend = get_backend(anyio_backend)
    with ThreadServer(silent) as server:
        stream = await backend.connect_tcp("127.0.0.1", server.port, timeout=5)
        errors: list[BaseException] = []

        async def reader() -> None:
            try:
                await stream.read(10, 10)
            except ReadError as exc:
                errors.append(exc)

        start = time.monotonic()
        async with anyio.create_task_group() as group:
            group.start_soon(reader)
            await anyio.sleep(0.1)
            stream.abort()
        assert len(errors) == 1
        assert time.monotonic() - start < 5
        await stream.aclose()


@pytest.mark.anyio
@pytest.mark.parametrize("anyio_backend", ["asyncio"])
async def test_asyncio_read_of_buffered_data_does_not_suspend(anyio_backend: str) -> None:
    backend = get_backend("asyncio")
    with ThreadServer(sender(b"abcdef")) as server:
        stream = await backend.connect_tcp("127.0.0.1", server.port, timeout=5)
        try:
            assert await stream.read(3, 5) == b"abc"
            coro = stream.read(100, 5)
            with pytest.raises(StopIteration) as done:
                coro.send(None)
            assert done.value.value == b"def"
        finally:
            await stream.aclose()


@pytest.mark.anyio
@pytest.mark.parametrize("anyio_backend", ["asyncio"])
async def test_asyncio_read_buffer_is_bounded(anyio_backend: str) -> None:
    backend = get_backend("asyncio")
    payload = os.urandom(8 * 1024 * 1024)
    with ThreadServer(sender(payload)) as server:
        stream = await backend.connect_tcp("127.0.0.1", server.port, timeout=5)
        assert isinstance(stream, AsyncioStream)
        try:
            await anyio.sleep(0.3)
            protocol = stream._protocol
            assert protocol.read_paused
            # At most one more socket read lands after pausing.
            assert protocol.size <= _READ_HIGH_WATER + 256 * 1024
            received = bytearray()
            while len(received) < len(payload):
                received += await stream.read(65536, 5)
            assert received == payload
            assert not protocol.read_paused
        finally:
            await stream.aclose()


def test_sync_abort_from_another_thread_wakes_reader() -> None:
    backend = get_backend("sync")
    with ThreadServer(silent) as server:
        stream = run_sync(backend.connect_tcp("127.0.0.1", server.port, timeout=5))
        timer = threading.Timer(0.1, stream.abort)
        timer.start()
        start = time.monotonic()
        try:
            with pytest.raises(ReadError):
                run_sync(stream.read(10, 10))
        finally:
            timer.join()
        assert time.monotonic() - start < 5
        run_sync(stream.aclose())


def test_sync_coroutines_finish_on_first_step() -> None:
    backend = get_backend("sync")
    with ThreadServer(echo) as server:
        connect = backend.connect_tcp("127.0.0.1", server.port, timeout=5)
        with pytest.raises(StopIteration) as done:
            connect.send(None)
        stream = done.value.value
        for coro, expected in [
            (stream.write(b"hello", 5), None),
            (stream.read(100, 5), b"hello"),
            (backend.sleep(0.001), None),
            (backend.create_event().wait(0.001), False),
            (stream.aclose(), None),
        ]:
            with pytest.raises(StopIteration) as done:
                coro.send(None)
            assert done.value.value == expected


def test_sync_task_group_runs_tasks_on_daemon_threads_and_joins_them() -> None:
    backend = get_backend("sync")
    seen: list[threading.Thread] = []
    stopped = threading.Event()

    async def work() -> None:
        seen.append(threading.current_thread())
        try:
            while True:
                await backend.sleep(10)
        finally:
            stopped.set()

    async def scenario() -> None:
        async with backend.create_task_group() as group:
            group.start_soon(work)
            group.start_soon(work)
            while len(seen) < 2:
                await backend.sleep(0.005)
            group.cancel()

    run_sync(scenario())
    assert len(seen) == 2
    assert threading.current_thread() not in seen
    assert all(thread.daemon for thread in seen)
    # The group joined its threads before exiting.
    assert not any(thread.is_alive() for thread in seen)
    assert stopped.is_set()


def test_sync_task_that_suspends_is_reported() -> None:
    backend = get_backend("sync")

    class Suspend:
        def __await__(self) -> Any:
            yield None

    async def suspends() -> None:
        await Suspend()

    async def scenario() -> None:
        async with backend.create_task_group() as group:
            group.start_soon(suspends)

    with pytest.raises(RuntimeError, match="suspended"):
        run_sync(scenario())


def test_sync_cancelled_group_in_a_plain_thread_does_not_affect_other_threads() -> None:
    backend = get_backend("sync")
    results: list[str] = []

    async def cancelled_group() -> None:
        async with backend.create_task_group() as group:
            group.cancel()
            await backend.sleep(3600)
        results.append("group exited")

    worker = threading.Thread(target=lambda: run_sync(cancelled_group()))
    worker.start()
    worker.join(10)
    assert not worker.is_alive()
    # This thread is in no group: its waits are not cancelled.
    assert run_sync(backend.create_event().wait(0.02)) is False
    run_sync(backend.sleep(0.01))
    assert results == ["group exited"]


def test_sync_primitives_shared_by_many_threads() -> None:
    backend = get_backend("sync")
    lock = backend.create_lock()
    semaphore = backend.create_semaphore(3)
    channel = backend.create_channel(8)
    counter = 0
    most_inside = 0
    inside = 0
    guard = threading.Lock()

    def worker(index: int) -> None:
        nonlocal counter, most_inside, inside
        for step in range(200):
            run_sync(lock.acquire())
            counter += 1
            lock.release()
            if step % 20 == 0:
                assert run_sync(semaphore.acquire(10))
                with guard:
                    inside += 1
                    most_inside = max(most_inside, inside)
                time.sleep(0.0005)
                with guard:
                    inside -= 1
                semaphore.release()
            assert run_sync(channel.send((index, step), 10))

    received: list[tuple[int, int]] = []

    def consumer() -> None:
        while len(received) < 8 * 200:
            received.append(run_sync(channel.receive(10)))

    threads = [threading.Thread(target=worker, args=(i,)) for i in range(8)]
    threads.append(threading.Thread(target=consumer))
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)
    assert not any(thread.is_alive() for thread in threads)
    assert counter == 8 * 200
    assert 1 <= most_inside <= 3
    assert sorted(received) == [(i, s) for i in range(8) for s in range(200)]
    for index in range(8):
        steps = [s for i, s in received if i == index]
        assert steps == sorted(steps)


@pytest.mark.anyio
@pytest.mark.parametrize("anyio_backend", ["asyncio"])
async def test_asyncio_outer_cancellation_propagates_through_group(anyio_backend: str) -> None:
    backend = get_backend("asyncio")
    ended: list[str] = []
    entered = asyncio.Event()

    async def sleeper() -> None:
        try:
            await asyncio.sleep(3600)
        finally:
            ended.append("task")

    async def owner() -> None:
        async with backend.create_task_group() as group:
            group.start_soon(sleeper)
            entered.set()
            await asyncio.sleep(3600)

    task = asyncio.get_running_loop().create_task(owner())
    await entered.wait()
    await asyncio.sleep(0.01)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert ended == ["task"]


@pytest.mark.anyio
@pytest.mark.parametrize("anyio_backend", ["asyncio"])
async def test_asyncio_group_leaves_no_pending_cancellation(anyio_backend: str) -> None:
    backend = get_backend("asyncio")
    current = asyncio.current_task()
    assert current is not None
    before = current.cancelling() if sys.version_info >= (3, 11) else 0

    async def fail() -> None:
        raise ValueError("boom")

    # The failure cancels the body; that cancellation must not outlive the
    # group, nor confuse an enclosing timeout.
    for _ in range(2):
        with pytest.raises(ValueError):
            async with backend.create_task_group() as group:
                group.start_soon(fail)
                await asyncio.sleep(3600)
    async with backend.create_task_group() as group:
        group.cancel()
    if sys.version_info >= (3, 11):
        assert current.cancelling() == before
        async with asyncio.timeout(5):
            with pytest.raises(ValueError):
                async with backend.create_task_group() as group:
                    group.start_soon(fail)
                    await asyncio.sleep(3600)
    await asyncio.sleep(0.01)


@pytest.mark.anyio
@pytest.mark.parametrize("anyio_backend", ["asyncio"])
async def test_asyncio_channel_wakeup_is_not_lost_to_a_cancelled_receiver(
    anyio_backend: str,
) -> None:
    backend = get_backend("asyncio")
    channel = backend.create_channel(1)
    got: list[str] = []

    async def receiver(name: str) -> None:
        got.append(f"{name}:{await channel.receive()}")

    first = asyncio.get_running_loop().create_task(receiver("first"))
    await asyncio.sleep(0.01)
    second = asyncio.get_running_loop().create_task(receiver("second"))
    await asyncio.sleep(0.01)
    # The first receiver is woken, then cancelled before it runs: the
    # wake-up passes to the second one.
    channel.send_nowait("item")
    first.cancel()
    await asyncio.wait_for(second, 5)
    assert got == ["second:item"]
    assert first.cancelled()


@pytest.mark.anyio
@pytest.mark.parametrize("anyio_backend", ["trio"])
async def test_trio_outer_cancel_scope_is_not_wrapped(anyio_backend: str) -> None:
    import trio

    backend = get_backend("trio")
    ended: list[str] = []

    async def sleeper() -> None:
        try:
            await trio.sleep_forever()
        finally:
            ended.append("task")

    with trio.move_on_after(0.05) as scope:
        async with backend.create_task_group() as group:
            group.start_soon(sleeper)
            await trio.sleep_forever()
    assert scope.cancelled_caught
    assert ended == ["task"]

    async def cancelled_then_raises() -> None:
        try:
            await trio.sleep_forever()
        finally:
            ended.append("second")

    # Between the group and the cancelled scope, the cancellation is a
    # trio.Cancelled, never an exception group.
    seen: list[type[BaseException]] = []
    with trio.CancelScope() as outer:
        try:
            async with backend.create_task_group() as group:
                group.start_soon(cancelled_then_raises)
                await trio.sleep(0.01)
                outer.cancel()
                await trio.sleep_forever()
        except BaseException as exc:
            seen.append(type(exc))
            raise
    assert outer.cancelled_caught
    assert seen == [trio.Cancelled]
    assert ended == ["task", "second"]


@pytest.mark.anyio
@pytest.mark.parametrize("anyio_backend", ["trio"])
async def test_trio_task_error_from_nested_nursery_is_unwrapped(anyio_backend: str) -> None:
    import trio

    backend = get_backend("trio")

    async def nested_failure() -> None:
        async with trio.open_nursery() as nursery:
            nursery.start_soon(trio.sleep_forever)
            raise KeyError("inside a nursery")

    with pytest.raises(KeyError, match="inside a nursery") as caught:
        async with backend.create_task_group() as group:
            group.start_soon(nested_failure)
    assert type(caught.value) is KeyError


@pytest.mark.timeout(60)
def test_sync_threads_reading_and_writing_with_different_timeouts() -> None:
    """One thread reads with no timeout while another writes with one (and
    a third reads nothing with a timeout of 0): neither changes the other's
    timeout, so the blocking read never fails at once and every byte sent
    comes back from the echo server."""
    backend = get_backend("sync")
    count = 3000
    with ThreadServer(echo) as server:
        stream = run_sync(backend.connect_tcp("127.0.0.1", server.port, timeout=5))
        received = bytearray()
        errors: list[BaseException] = []

        def reader() -> None:
            try:
                while len(received) < count:
                    received.extend(run_sync(stream.read(65536, None)))
            except BaseException as exc:
                errors.append(exc)

        def writer() -> None:
            try:
                for i in range(count):
                    run_sync(stream.write(bytes([i % 251]), 5.0 + (i % 2)))
            except BaseException as exc:
                errors.append(exc)

        threads = [threading.Thread(target=reader), threading.Thread(target=writer)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(45.0)
        assert not any(thread.is_alive() for thread in threads)
        assert errors == []
        assert bytes(received) == bytes(i % 251 for i in range(count))
        run_sync(stream.aclose())
