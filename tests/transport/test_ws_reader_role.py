"""Who reads a WebSocket's stream: a receiving call with nothing queued reads
it itself, the background reader while nobody receives. On the memory
backend's fake clock: receiving calls that time out or are cancelled while
they read lose no message, keepalive pongs and the closing handshake are
read whoever holds the stream, and queued messages come first."""

from __future__ import annotations

import math

import pytest
import trio
from websockets.server import ServerProtocol

import webwire
from webwire._backends.memory import MemoryBackend, MemoryStream, memory_test
from webwire.websocket import State, connect

from .test_websocket_memory import URI, live, options, websocket_server

COUNT = 300


async def trickle(stream: MemoryStream, server: ServerProtocol) -> None:
    """Send ``COUNT`` numbered messages, one every 3 to 17 ms (fake clock),
    some in one write, then answer the closing handshake."""
    for i in range(COUNT):
        server.send_text(str(i).encode())
        if i % 5 != 4:
            await trio.sleep((i * 7919 % 15 + 3) / 1000)
            for chunk in server.data_to_send():
                await stream.write(chunk, None)
    for chunk in server.data_to_send():
        await stream.write(chunk, None)
    await live(stream, server)


@memory_test
async def test_timed_out_receives_lose_nothing() -> None:
    backend = MemoryBackend()
    websocket_server(backend, trickle)
    received: list[str] = []
    timeouts = 0
    async with connect(URI, **options(backend, ping_interval=None)) as ws:
        while len(received) < COUNT:
            try:
                message = await ws.recv(timeout=0.004)
            except webwire.ReadTimeout:
                timeouts += 1
                continue
            assert isinstance(message, str)
            received.append(message)
    assert received == [str(i) for i in range(COUNT)]
    assert timeouts > 10  # the timeouts did strike while reading


@memory_test
async def test_cancelled_receives_lose_nothing() -> None:
    backend = MemoryBackend()
    websocket_server(backend, trickle)
    received: list[str] = []
    cancelled = 0
    async with connect(URI, **options(backend, ping_interval=None)) as ws:
        while len(received) < COUNT:
            with trio.move_on_after(0.005) as scope:
                message = await ws.recv()
                assert isinstance(message, str)
                received.append(message)
            cancelled += scope.cancelled_caught
    assert received == [str(i) for i in range(COUNT)]
    assert cancelled > 10


@memory_test
async def test_keepalive_pong_is_read_by_a_waiting_receive() -> None:
    """A receive blocked for minutes holds the stream: the keepalive's
    pongs are read by it, and the connection stays open."""
    backend = MemoryBackend()

    async def quiet(stream: MemoryStream, server: ServerProtocol) -> None:
        with trio.move_on_after(300.0):
            await live(stream, server)
        server.send_text(b"late")
        for chunk in server.data_to_send():
            await stream.write(chunk, None)
        await live(stream, server)

    websocket_server(backend, quiet)
    start = trio.current_time()
    async with connect(URI, **options(backend, ping_interval=20.0, ping_timeout=5.0)) as ws:
        assert await ws.recv() == "late"
        assert trio.current_time() - start == pytest.approx(300.0)
        assert ws.state is State.OPEN


@memory_test
async def test_server_close_is_seen_while_only_sending() -> None:
    """After some receives the application only sends: the background
    reader takes the stream back, answers the server's close, and the next
    send raises."""
    backend = MemoryBackend()

    async def closes(stream: MemoryStream, server: ServerProtocol) -> None:
        server.send_text(b"hi")
        for chunk in server.data_to_send():
            await stream.write(chunk, None)
        await trio.sleep(2.0)
        server.send_close(1001, "bye")
        for chunk in server.data_to_send():
            await stream.write(chunk, None)
        await live(stream, server)

    websocket_server(backend, closes)
    ws = await connect(URI, **options(backend, ping_interval=None))
    try:
        assert await ws.recv() == "hi"
        await trio.sleep(3.0)
        assert ws.closed
        assert ws.close_code == 1001
        with pytest.raises(webwire.ConnectionClosedOK):
            await ws.send("too late")
    finally:
        await ws.close()


@memory_test
async def test_two_receivers_are_refused() -> None:
    backend = MemoryBackend()
    websocket_server(backend, live)
    ws = await connect(URI, **options(backend, ping_interval=None))
    async with ws, trio.open_nursery() as nursery:
        nursery.start_soon(ws.recv)
        await trio.sleep(1.0)
        with pytest.raises(webwire.ConcurrencyError):
            await ws.recv()
        await ws.send("x")  # ends the first receive
    assert math.isfinite(trio.current_time())
