"""Behaviour that only concerns some backends: concurrency between tasks,
cancellation, the asyncio read buffer, and threads on the blocking backend."""

from __future__ import annotations

import os
import threading
import time

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


def test_sync_background_thread_is_a_daemon_and_stops() -> None:
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

    cancel = backend.start_background(work)
    start = time.monotonic()
    while not seen and time.monotonic() - start < 5:
        time.sleep(0.005)
    assert seen and seen[0] is not threading.current_thread()
    assert seen[0].daemon
    cancel()
    assert stopped.wait(5)
    seen[0].join(5)
    assert not seen[0].is_alive()
