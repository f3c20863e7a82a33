"""Aborting an HTTP/2 tunnel stream (RFC 8441) wakes a read waiting on it,
on the in-memory backend with a fake clock.

A WebSocket over HTTP/2 is one stream of a shared connection: whichever
task waits first reads the connection for every stream, the others wait
to be handed their stream's frames. When the WebSocket fails its
connection (a keepalive timeout while a send is stuck on flow control),
it aborts the stream; a read of that stream waiting to be handed frames
must end at once with ``ReadError`` (the stream left the connection's
table, so no frame or connection failure would ever wake it), and the
task reading for the connection goes on serving the other streams.
"""

from __future__ import annotations

import pytest
import trio

import webwire
from webwire._backends.memory import MemoryBackend, memory_test

from .test_http2_tunnel_memory import open_pool, open_tunnel, serve


@pytest.fixture
def backend() -> MemoryBackend:
    return MemoryBackend()


@memory_test
async def test_abort_wakes_a_read_waiting_for_the_connections_reader(
    backend: MemoryBackend,
) -> None:
    serve(backend)
    async with open_pool(backend) as pool:
        _, first = await open_tunnel(pool, "/silent")
        _, second = await open_tunnel(pool, "/echo")
        errors: list[BaseException] = []
        first_done: list[bytes] = []
        ended_at: list[float] = []

        async def read_first() -> None:
            # Waits first: it reads the connection for every stream.
            first_done.append(await first.read(100, None))

        async def read_second() -> None:
            try:
                await second.read(100, None)
            except webwire.TransportError as exc:
                errors.append(exc)
                ended_at.append(trio.current_time())

        with trio.fail_after(30.0):
            async with trio.open_nursery() as nursery:
                nursery.start_soon(read_first)
                await trio.testing.wait_all_tasks_blocked()
                nursery.start_soon(read_second)
                await trio.testing.wait_all_tasks_blocked()
                aborted_at = trio.current_time()
                second.abort()
                await trio.testing.wait_all_tasks_blocked()
                # The waiting read of the aborted stream ended at once.
                assert len(errors) == 1, "the read of the aborted stream still waits"
                assert type(errors[0]) is webwire.ReadError
                assert "closed" in str(errors[0])
                assert ended_at == [aborted_at]
                # The connection's reader still serves the other stream.
                assert first_done == []
                nursery.cancel_scope.cancel()
        assert first_done == []
        with pytest.raises(webwire.ReadError, match="closed"):
            await second.read(100, 1.0)
        with pytest.raises(webwire.WriteError, match="closed"):
            await second.write(b"x", 1.0)
        await first.aclose()
        assert pool.connections_in_use() == 0


@memory_test
async def test_abort_wakes_a_read_when_the_other_stream_reads_for_it(
    backend: MemoryBackend,
) -> None:
    """The reverse order: the aborted stream's read waits while the
    other stream's read holds the connection; after the abort the other
    stream still gets its data."""
    serve(backend)
    async with open_pool(backend) as pool:
        _, echo = await open_tunnel(pool, "/echo")
        _, silent = await open_tunnel(pool, "/silent")
        outcome: list[object] = []
        echoed: list[bytes] = []

        async def read_silent() -> None:
            try:
                await silent.read(100, None)
            except webwire.TransportError as exc:
                outcome.append(exc)

        async def read_echo() -> None:
            echoed.append(await echo.read(100, None))

        with trio.fail_after(30.0):
            async with trio.open_nursery() as nursery:
                nursery.start_soon(read_echo)
                await trio.testing.wait_all_tasks_blocked()
                nursery.start_soon(read_silent)
                await trio.testing.wait_all_tasks_blocked()
                silent.abort()
                await trio.testing.wait_all_tasks_blocked()
                assert len(outcome) == 1 and type(outcome[0]) is webwire.ReadError
                await echo.write(b"still here", 5.0)
        assert echoed == [b"still here"]
        await echo.aclose()
        assert pool.connections_in_use() == 0
