"""When received data fails a WebSocket connection (RFC 6455 section 7.1.7),
the messages received before the bad frame are still delivered, and the
close frame goes out after the application answered them (when it comes
back for the next message), or ``close_timeout`` seconds after the failure
at the latest; on the memory backend's fake clock.

Also: who reads the stream (a receiving call itself, or the background
reader while nobody receives) does not change what the server sees: pings
are answered while the application only sends.

The server is the ``websockets`` library's Sans-I/O ``ServerProtocol``; the
bad frames are built with its ``Frame`` class."""

from __future__ import annotations

import math

import pytest
import trio
from websockets.frames import Close, Frame, Opcode
from websockets.server import ServerProtocol

import webwire
from webwire._backends.memory import MemoryBackend, MemoryStream, memory_test
from webwire.websocket import State, connect

from .test_websocket_memory import URI, Behaviour, options, websocket_server

UNEXPECTED_CONT = Frame(Opcode.CONT, b"bad").serialize(mask=False)
"""A continuation frame with no message to continue: a protocol error (1002)."""
BAD_UTF8 = Frame(Opcode.TEXT, b"\xce\xba\xff").serialize(mask=False)
"""A text frame that is not UTF-8 (1007)."""


class Recorder:
    """What the server received, with the fake clock's time of each frame:
    ``("TEXT", b"hello", t)``, ``("CLOSE", 1002, t)``."""

    def __init__(self) -> None:
        self.frames: list[tuple[str, object, float]] = []
        self.done = trio.Event()

    def behaviour(self, *messages: bytes, bad: bytes) -> Behaviour:
        """Send ``messages`` (text) and ``bad`` in one write, then record
        the client's frames and answer its close."""

        async def run(stream: MemoryStream, server: ServerProtocol) -> None:
            for message in messages:
                server.send_text(message)
            await stream.write(b"".join(server.data_to_send()) + bad, None)
            try:
                while True:
                    data = await stream.read(65536, None)
                    if not data:
                        server.receive_eof()
                    else:
                        server.receive_data(data)
                    for frame in server.events_received():
                        assert isinstance(frame, Frame)
                        now = trio.current_time()
                        if frame.opcode is Opcode.CLOSE:
                            close = Close.parse(bytes(frame.data))
                            self.frames.append(("CLOSE", close.code, now))
                        else:
                            self.frames.append((frame.opcode.name, bytes(frame.data), now))
                    for chunk in server.data_to_send():
                        if chunk:
                            await stream.write(chunk, None)
                        else:
                            await stream.aclose()
                            return
                    if not data:
                        return
            finally:
                self.done.set()

        return run


@pytest.mark.parametrize(("bad", "code"), [(UNEXPECTED_CONT, 1002), (BAD_UTF8, 1007)])
@memory_test
async def test_messages_before_a_bad_frame_are_answered_before_the_close(
    bad: bytes, code: int
) -> None:
    backend = MemoryBackend()
    recorder = Recorder()
    websocket_server(backend, recorder.behaviour(b"one", b"two", bad=bad))
    ws = await connect(URI, **options(backend, ping_interval=None))
    try:
        received = []
        with pytest.raises(webwire.ConnectionClosedError) as info:
            async for message in ws:
                received.append(message)
                await ws.send(message)
        assert received == ["one", "two"]
        assert info.value.sent is not None and info.value.sent.code == code
        await recorder.done.wait()
        kinds = [(kind, value) for kind, value, _ in recorder.frames]
        assert kinds == [("TEXT", b"one"), ("TEXT", b"two"), ("CLOSE", code)]
        assert ws.state is State.CLOSED
    finally:
        await ws.close()


@memory_test
async def test_the_close_waits_at_most_close_timeout() -> None:
    """The application takes the message but neither answers it nor comes
    back: the close frame goes out ``close_timeout`` after the failure."""
    backend = MemoryBackend()
    recorder = Recorder()
    websocket_server(backend, recorder.behaviour(b"one", bad=UNEXPECTED_CONT))
    start = trio.current_time()
    ws = await connect(URI, **options(backend, ping_interval=None, close_timeout=4.0))
    try:
        assert await ws.recv() == "one"
        assert ws.state is State.OPEN  # the failure is held
        await ws.wait_closed()
        assert recorder.frames == [("CLOSE", 1002, pytest.approx(start + 4.0))]
        with pytest.raises(webwire.ConnectionClosedError) as info:
            await ws.recv()
        assert info.value.sent is not None and info.value.sent.code == 1002
    finally:
        await ws.close()


@memory_test
async def test_queued_messages_survive_the_failure() -> None:
    """Messages queued before anyone received are delivered after the
    failure, and hold its close frame until they are taken and the
    application asks for more."""
    backend = MemoryBackend()
    recorder = Recorder()
    websocket_server(backend, recorder.behaviour(b"a", b"b", b"c", bad=BAD_UTF8))
    ws = await connect(URI, **options(backend, ping_interval=None, close_timeout=60.0))
    try:
        await trio.sleep(1.0)  # everything arrives and is queued
        assert recorder.frames == []
        assert [await ws.recv(), await ws.recv(), await ws.recv()] == ["a", "b", "c"]
        await trio.sleep(1.0)
        assert recorder.frames == []
        with pytest.raises(webwire.ConnectionClosedError) as info:
            await ws.recv()
        assert info.value.sent is not None and info.value.sent.code == 1007
        assert recorder.frames == [("CLOSE", 1007, pytest.approx(trio.current_time()))]
    finally:
        await ws.close()


@memory_test
async def test_a_receiving_application_is_waited_for() -> None:
    """Once the application has received, messages queued before the
    failure hold its close frame until they are taken and the application
    asks for more."""
    backend = MemoryBackend()
    recorder = Recorder()
    arrive = trio.Event()

    async def later(stream: MemoryStream, server: ServerProtocol) -> None:
        server.send_text(b"first")
        for chunk in server.data_to_send():
            await stream.write(chunk, None)
        await arrive.wait()
        await recorder.behaviour(b"a", b"b", bad=BAD_UTF8)(stream, server)

    websocket_server(backend, later)
    ws = await connect(URI, **options(backend, ping_interval=None, close_timeout=60.0))
    try:
        assert await ws.recv() == "first"
        arrive.set()
        await trio.sleep(1.0)  # "a", "b" and the bad frame arrive and are queued
        assert recorder.frames == []
        assert await ws.recv() == "a"
        await trio.sleep(1.0)
        assert recorder.frames == []
        assert await ws.recv() == "b"
        await ws.send("answer to b")
        with pytest.raises(webwire.ConnectionClosedError) as info:
            await ws.recv()
        assert info.value.sent is not None and info.value.sent.code == 1007
        assert [frame[:2] for frame in recorder.frames] == [
            ("TEXT", b"answer to b"),
            ("CLOSE", 1007),
        ]
    finally:
        await ws.close()


@memory_test
async def test_no_hold_without_earlier_messages() -> None:
    """A bad frame with nothing before it fails the connection at once."""
    backend = MemoryBackend()
    recorder = Recorder()
    websocket_server(backend, recorder.behaviour(bad=UNEXPECTED_CONT))
    start = trio.current_time()
    ws = await connect(URI, **options(backend, ping_interval=None, close_timeout=30.0))
    try:
        with pytest.raises(webwire.ConnectionClosedError) as info:
            await ws.recv()
        assert info.value.sent is not None and info.value.sent.code == 1002
        assert recorder.frames == [("CLOSE", 1002, pytest.approx(start))]
    finally:
        await ws.close()


@memory_test
async def test_the_hold_is_bounded_when_the_application_never_receives() -> None:
    backend = MemoryBackend()
    recorder = Recorder()
    websocket_server(backend, recorder.behaviour(b"one", bad=UNEXPECTED_CONT))
    start = trio.current_time()
    ws = await connect(URI, **options(backend, ping_interval=None, close_timeout=5.0))
    try:
        await ws.wait_closed()
        assert recorder.frames == [("CLOSE", 1002, pytest.approx(start + 5.0))]
        assert await ws.recv() == "one"  # still delivered
        with pytest.raises(webwire.ConnectionClosedError):
            await ws.recv()
    finally:
        await ws.close()


@memory_test
async def test_close_sends_the_held_failure() -> None:
    """``close()`` during the hold sends the failure's code, at once."""
    backend = MemoryBackend()
    recorder = Recorder()
    websocket_server(backend, recorder.behaviour(b"one", bad=UNEXPECTED_CONT))
    start = trio.current_time()
    ws = await connect(URI, **options(backend, ping_interval=None, close_timeout=30.0))
    assert await ws.recv() == "one"
    await ws.close()
    assert recorder.frames == [("CLOSE", 1002, pytest.approx(start))]
    assert ws.state is State.CLOSED


@memory_test
async def test_pings_are_answered_while_the_application_only_sends() -> None:
    """After receiving, the application stops receiving and only sends:
    the background reader takes the stream back and answers the server's
    pings (within a fraction of a second)."""
    backend = MemoryBackend()
    pongs: list[float] = []

    async def pinger(stream: MemoryStream, server: ServerProtocol) -> None:
        server.send_text(b"hello")
        for chunk in server.data_to_send():
            await stream.write(chunk, None)
        for i in range(3):
            await trio.sleep(5.0)
            server.send_ping(bytes([i]))
            for chunk in server.data_to_send():
                await stream.write(chunk, None)
            while len(pongs) <= i:
                data = await stream.read(65536, None)
                server.receive_data(data)
                for frame in server.events_received():
                    assert isinstance(frame, Frame)
                    if frame.opcode is Opcode.PONG:
                        assert bytes(frame.data) == bytes([i])
                        pongs.append(trio.current_time())
        await trio.sleep(math.inf)

    websocket_server(backend, pinger)
    start = trio.current_time()
    async with connect(URI, **options(backend, ping_interval=None)) as ws:
        assert await ws.recv() == "hello"
        for _ in range(16):
            await ws.send(b"x")
            await trio.sleep(1.0)
    assert len(pongs) == 3
    for i, when in enumerate(pongs):
        assert start + 5.0 * (i + 1) <= when < start + 5.0 * (i + 1) + 0.2


# -- the engine layer: invalid UTF-8 in a text frame not yet complete ---------------------


def _frame_in_pieces(opcode: Opcode, payload: bytes, cut: int) -> tuple[bytes, bytes]:
    data = Frame(opcode, payload).serialize(mask=False)
    head = len(data) - len(payload)
    return data[: head + cut], data[head + cut :]


@pytest.mark.parametrize("hold", [False, True])
def test_invalid_utf8_fails_before_the_frame_is_complete(hold: bool) -> None:
    from webwire._proto.websocket import WebSocketProtocol

    protocol = WebSocketProtocol()
    if hold:
        protocol.hold_failures()
    # "κόσμε" then a 4-byte sequence over U+10FFFF: invalid at its first byte.
    payload = "κόσμε".encode() + b"\xf4\x90\x80\x80" + b"edited" * 100
    first, rest = _frame_in_pieces(Opcode.TEXT, payload, 11)
    protocol.receive_data(first)
    assert protocol.events() == []
    assert protocol.state is State.OPEN
    protocol.receive_data(rest[:4])  # the invalid bytes, most of the frame still missing
    assert protocol.events() == []
    if hold:
        assert protocol.failure_held and protocol.state is State.OPEN
        protocol.release_failure()
    out, _ = protocol.data_to_send()
    assert out  # the close frame
    assert protocol.close_sent is not None and protocol.close_sent.code == 1007
    assert protocol.state is State.CLOSING


def test_valid_text_in_pieces_is_not_failed() -> None:
    from webwire._proto.websocket import Fragment, WebSocketProtocol

    protocol = WebSocketProtocol()
    text = "κόσμε ✓ " * 2000
    payload = text.encode()
    data = Frame(Opcode.TEXT, payload, fin=False).serialize(mask=False)
    data += Frame(Opcode.CONT, payload).serialize(mask=False)
    fragments = []
    for start in range(0, len(data), 999):  # cuts inside characters and headers
        protocol.receive_data(data[start : start + 999])
        fragments.extend(protocol.events())
    assert protocol.state is State.OPEN
    assert all(isinstance(f, Fragment) for f in fragments)
    assert "".join(f.data for f in fragments) == text * 2  # type: ignore[union-attr,misc]
