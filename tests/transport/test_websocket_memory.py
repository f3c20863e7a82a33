"""WebSocket timing on the memory backend's fake clock: keepalive pings
that detect a dead peer, ``open_timeout``, ``close_timeout``, a live peer
kept open by its pongs, and back-pressure of ``max_queue``.

The server is the ``websockets`` library's Sans-I/O ``ServerProtocol``
over an in-memory stream; some servers complete the handshake and then
stop answering (they neither read nor write), as a dead peer would."""

from __future__ import annotations

import math
from collections.abc import Awaitable, Callable

import pytest
import trio
from websockets.server import ServerProtocol

import webwire
from webwire._backends.memory import MemoryBackend, MemoryStream, memory_test, settle
from webwire.websocket import State, connect

HOST = "ws.test"
URI = f"ws://{HOST}/"
Behaviour = Callable[[MemoryStream, ServerProtocol], Awaitable[None]]


async def handshake(stream: MemoryStream) -> ServerProtocol | None:
    """Answer the opening handshake; ``None`` if the client went away."""
    server = ServerProtocol()
    while True:
        data = await stream.read(65536, None)
        if not data:
            return None
        server.receive_data(data)
        events = server.events_received()
        if events:
            break
    server.send_response(server.accept(events[0]))  # type: ignore[arg-type]
    for chunk in server.data_to_send():
        await stream.write(chunk, None)
    return server


def websocket_server(backend: MemoryBackend, behaviour: Behaviour) -> None:
    async def handler(stream: MemoryStream) -> None:
        server = await handshake(stream)
        if server is not None:
            await behaviour(stream, server)

    backend.serve_tcp(HOST, 80, handler)


async def dead_after_handshake(stream: MemoryStream, server: ServerProtocol) -> None:
    await trio.sleep(math.inf)


async def live(stream: MemoryStream, server: ServerProtocol) -> None:
    """Answer pings and the closing handshake; echo messages frame by
    frame."""
    while True:
        data = await stream.read(65536, None)
        if not data:
            server.receive_eof()
        else:
            server.receive_data(data)
        for frame in server.events_received():
            name = frame.opcode.name  # type: ignore[union-attr]
            if server.state is not State.OPEN:
                break  # a close frame came in the same read
            data, fin = frame.data, frame.fin  # type: ignore[union-attr]
            if name == "TEXT":
                server.send_text(data, fin)
            elif name == "BINARY":
                server.send_binary(data, fin)
            elif name == "CONT":
                server.send_continuation(data, fin)
        for chunk in server.data_to_send():
            if chunk:
                await stream.write(chunk, None)
            else:
                await stream.aclose()
                return
        if not data:
            return


def options(backend: MemoryBackend, **extra: object) -> dict[str, object]:
    values: dict[str, object] = {"_backend": backend, "compression": None}
    values.update(extra)
    return values


@memory_test
async def test_keepalive_detects_dead_peer() -> None:
    backend = MemoryBackend()
    websocket_server(backend, dead_after_handshake)
    start = trio.current_time()
    ws = await connect(URI, **options(backend, ping_interval=5.0, ping_timeout=3.0))
    try:
        with pytest.raises(webwire.ConnectionClosedError) as info:
            await ws.recv()
        # First ping at 5 s; no pong by 5 + 3 s: failed with 1011.
        assert trio.current_time() - start == pytest.approx(8.0)
        error = info.value
        assert error.sent is not None and error.sent.code == 1011
        assert error.sent.reason == "keepalive ping timeout"
        assert error.rcvd is None and error.code == 1006
        assert ws.state is State.CLOSED
        assert ws.close_code == 1006
    finally:
        await ws.close()
    assert trio.current_time() - start == pytest.approx(8.0)


@memory_test
async def test_keepalive_keeps_live_peer() -> None:
    backend = MemoryBackend()
    websocket_server(backend, live)
    start = trio.current_time()
    async with connect(URI, **options(backend, ping_interval=5.0, ping_timeout=3.0)) as ws:
        await trio.sleep(100.0)
        assert ws.state is State.OPEN
        assert ws.latency == 0.0  # the memory link has no delay
        await ws.send("still here")
        assert await ws.recv() == "still here"
        latency = await (await ws.ping())
        assert latency == 0.0
    assert ws.close_code == 1000
    assert trio.current_time() - start == pytest.approx(100.0)


@memory_test
async def test_open_timeout() -> None:
    backend = MemoryBackend()

    async def never_answers(stream: MemoryStream) -> None:
        await trio.sleep(math.inf)

    backend.serve_tcp(HOST, 80, never_answers)
    start = trio.current_time()
    with pytest.raises(webwire.TimeoutException):
        await connect(URI, **options(backend, open_timeout=2.5))
    assert trio.current_time() - start == pytest.approx(2.5)
    await settle()
    assert backend.open_connections() == []


@memory_test
async def test_close_timeout() -> None:
    backend = MemoryBackend()
    websocket_server(backend, dead_after_handshake)
    start = trio.current_time()
    ws = await connect(URI, **options(backend, ping_interval=None, close_timeout=4.0))
    await trio.sleep(1.0)
    await ws.close()
    # No close frame back, no end of stream: dropped after 4 s.
    assert trio.current_time() - start == pytest.approx(5.0)
    assert ws.state is State.CLOSED
    with pytest.raises(webwire.ConnectionClosedError) as info:
        await ws.recv()
    assert info.value.sent is not None and info.value.sent.code == 1000
    assert info.value.rcvd is None
    await settle()
    assert backend.open_connections() == []


@memory_test
async def test_close_completes_at_once_with_live_peer() -> None:
    backend = MemoryBackend()
    websocket_server(backend, live)
    start = trio.current_time()
    ws = await connect(URI, **options(backend, close_timeout=4.0))
    await ws.close(1001, "bye")
    assert trio.current_time() - start == pytest.approx(0.0)
    with pytest.raises(webwire.ConnectionClosedOK) as info:
        await ws.recv()
    assert info.value.code == 1001 and info.value.reason == "bye"


@memory_test
async def test_recv_timeout_keeps_connection() -> None:
    backend = MemoryBackend()
    websocket_server(backend, live)
    start = trio.current_time()
    async with connect(URI, **options(backend)) as ws:
        with pytest.raises(webwire.ReadTimeout):
            await ws.recv(timeout=1.5)
        assert trio.current_time() - start == pytest.approx(1.5)
        await ws.send(b"after")
        assert await ws.recv(timeout=1.0) == b"after"


@memory_test
async def test_max_queue_backpressure() -> None:
    """With the queue full the reader stops reading: the server's writes
    fill the in-memory link and block; receiving drains it again."""
    backend = MemoryBackend(buffer_size=4096)
    blocked = trio.Event()
    sent: list[int] = []

    async def flood(stream: MemoryStream, server: ServerProtocol) -> None:
        for i in range(200):
            server.send_binary(bytes([i % 256]) * 1000)
            with trio.move_on_after(10.0) as scope:
                for chunk in server.data_to_send():
                    await stream.write(chunk, None)
            if scope.cancelled_caught:
                blocked.set()
                await trio.sleep(math.inf)
            sent.append(i)
        await trio.sleep(math.inf)

    websocket_server(backend, flood)
    async with connect(URI, **options(backend, max_queue=4, ping_interval=None)) as ws:
        await blocked.wait()
        # 4 queued + what the 4 KiB link and the reader's buffer hold.
        assert len(sent) < 20
        first = await ws.recv()
        assert first == b"\x00" * 1000


@memory_test
async def test_connections_outlive_the_scope_that_opened_them() -> None:
    """Connections opened with ``await connect()`` may be closed in any
    order, from another task, after the scope that opened them ended."""
    backend = MemoryBackend()
    websocket_server(backend, live)
    connections = []
    with trio.move_on_after(1.0):
        for _ in range(3):
            connections.append(await connect(URI, **options(backend)))
        await trio.sleep(5.0)  # cancelled here
    for ws in connections:
        await ws.send("alive")
        assert await ws.recv() == "alive"

    async with trio.open_nursery() as nursery:
        nursery.start_soon(connections[0].close)  # from another task
    await connections[2].close()
    await connections[1].close()
    assert [ws.close_code for ws in connections] == [1000, 1000, 1000]
    await settle()
    assert backend.open_connections() == []


@memory_test
async def test_connection_over_any_byte_stream() -> None:
    """``ClientConnection`` runs over any NetworkStream (here an in-memory
    pair with no HTTP at all, as an HTTP/2 or HTTP/3 stream would be):
    nothing above the stream depends on how it was obtained."""
    from websockets.protocol import SERVER, Protocol

    from webwire._backends.memory import stream_pair
    from webwire._proto.websocket import WebSocketProtocol
    from webwire.websocket import ClientConnection

    backend = MemoryBackend()
    client_end, server_end = stream_pair()

    async def server_task() -> None:
        await live(server_end, Protocol(SERVER))  # type: ignore[arg-type]

    async with trio.open_nursery() as nursery:
        nursery.start_soon(server_task)
        ws = ClientConnection(backend, client_end, WebSocketProtocol(), http_version="HTTP/2")
        await ws._start()
        await ws.send(["frag", "ments"])
        assert await ws.recv() == "fragments"
        assert ws.remote_address == ("127.0.0.1", 8000)
        await ws.close()
    assert ws.close_code == 1000


@memory_test
async def test_keepalive_while_a_send_is_stuck() -> None:
    """A dead peer that stopped reading leaves a large send blocked on a
    full link: the keepalive cannot even send its ping, and fails the
    connection ``ping_timeout`` after it was due; the send raises."""
    backend = MemoryBackend(buffer_size=16384)
    websocket_server(backend, dead_after_handshake)
    start = trio.current_time()
    ws = await connect(URI, **options(backend, ping_interval=5.0, ping_timeout=3.0))
    with pytest.raises(webwire.ConnectionClosedError) as info:
        await ws.send(b"x" * 1_000_000)
    assert trio.current_time() - start == pytest.approx(8.0)
    assert info.value.code == 1006
    assert info.value.sent is not None and info.value.sent.code == 1011
    await ws.close()
    assert trio.current_time() - start == pytest.approx(8.0)


@memory_test
async def test_close_while_a_send_is_stuck() -> None:
    backend = MemoryBackend(buffer_size=16384)
    websocket_server(backend, dead_after_handshake)
    start = trio.current_time()
    ws = await connect(URI, **options(backend, ping_interval=None, close_timeout=2.0))
    failures: list[BaseException] = []

    async def stuck_send() -> None:
        try:
            await ws.send(b"x" * 1_000_000)
        except webwire.ConnectionClosed as exc:
            failures.append(exc)

    async with trio.open_nursery() as nursery:
        nursery.start_soon(stuck_send)
        await trio.sleep(1.0)
        await ws.close()
    # The close frame could not be queued behind the send: dropped after
    # close_timeout.
    assert trio.current_time() - start == pytest.approx(3.0)
    assert len(failures) == 1 and isinstance(failures[0], webwire.ConnectionClosedError)
    assert ws.close_code == 1006


@memory_test
async def test_reconnect_backoff_times() -> None:
    """``async for ws in connect()``: refused attempts are retried after the
    Retry policy's backoff (0, then 2, 4 s...); the first attempt after the
    server appears (at 5 s) connects, at 0 + 0 + 2 + 4 = 6 s."""
    from webwire import Retry

    backend = MemoryBackend()
    attempts: list[float] = []
    start = trio.current_time()

    async def appear_later() -> None:
        await trio.sleep(5.0)
        websocket_server(backend, live)

    def process(exc: Exception) -> Exception | None:
        attempts.append(trio.current_time() - start)
        assert isinstance(exc, webwire.ConnectError)
        return None

    retry = Retry(None, backoff_factor=1.0)
    async with trio.open_nursery() as nursery:
        nursery.start_soon(appear_later)
        async for ws in connect(URI, retry=retry, process_exception=process, **options(backend)):
            assert trio.current_time() - start == pytest.approx(6.0)
            await ws.close()
            break
    assert attempts == pytest.approx([0.0, 0.0, 2.0])


@memory_test
async def test_reconnect_gives_up_when_exhausted() -> None:
    from webwire import Retry

    backend = MemoryBackend()
    start = trio.current_time()
    with pytest.raises(webwire.ConnectError):
        async for _ in connect(URI, retry=Retry(3, backoff_factor=0.5), **options(backend)):
            raise AssertionError("no server: no connection")
    # Backoffs 0, 1, 2 seconds before retries 1 to 3.
    assert trio.current_time() - start == pytest.approx(3.0)


@memory_test
async def test_bad_input_gives_clear_errors() -> None:
    backend = MemoryBackend()
    websocket_server(backend, live)
    with pytest.raises(ValueError, match="max_queue"):
        connect(URI, max_queue=0)
    with pytest.raises(ValueError, match="compression"):
        connect(URI, compression="br")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="http_version"):
        connect(URI, http_version="HTTP/4")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="set by the WebSocket handshake"):
        connect(URI, additional_headers={"Sec-WebSocket-Key": "x"})
    with pytest.raises(ValueError, match="subprotocol"):
        await connect(URI, subprotocols=["bad token"], **options(backend))
    async with await connect(URI, **options(backend)) as ws:
        with pytest.raises(TypeError, match="dict"):
            await ws.send({"a": 1})  # type: ignore[arg-type]
        with pytest.raises(TypeError):
            await ws.send(42)  # type: ignore[arg-type]
        with pytest.raises(webwire.LocalProtocolError, match="125"):
            await ws.ping(b"x" * 126)
        with pytest.raises(webwire.LocalProtocolError, match="1005"):
            await ws.close(1005)
        assert ws.state is State.OPEN
        # Fragments of mixed types: refused before anything went out, the
        # connection stays usable...
        with pytest.raises(TypeError, match="all be str or all bytes"):
            await ws.send(["text", b"bytes"])
        await ws.send("fine")
        assert await ws.recv() == "fine"
        # ...but once a frame went out the message cannot be finished: the
        # connection is failed with 1011.
        with pytest.raises(TypeError, match="all be str or all bytes"):
            await ws.send(["text", "more", b"bytes"])
        with pytest.raises(webwire.ConnectionClosedError) as info:
            await ws.recv()
        assert info.value.sent is not None and info.value.sent.code == 1011
