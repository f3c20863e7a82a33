"""In-process stand-ins for WebTransport sessions, written once against the
Backend interface (asyncio, trio, the blocking backend and the memory
backend's fake clock), and an opener with the signature of
``webwire.webtransport._connect.open_session`` that makes them."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from webwire._backends import Backend, ChannelClosed
from webwire._exceptions import ConnectError, ReadError, SessionClosed

Responder = Callable[["FakeStream", bytes, bool], list[bytes | None]]


def echo(stream: FakeStream, data: bytes, end: bool) -> list[bytes | None]:
    """Echo each write; end of stream ends the reply."""
    out: list[bytes | None] = [data] if data else []
    if end:
        out.append(None)
    return out


def proxy(status: bytes = b"200 OK") -> Responder:
    """A CONNECT proxy: answers the request head with ``status``, then
    echoes."""

    def respond(stream: FakeStream, data: bytes, end: bool) -> list[bytes | None]:
        if not stream.state.get("answered"):
            stream.state["head"] = stream.state.get("head", b"") + data
            if b"\r\n\r\n" not in stream.state["head"]:
                return []
            stream.state["answered"] = True
            return [b"HTTP/1.1 " + status + b"\r\nServer: fake\r\n\r\n"]
        return echo(stream, data, end)

    return respond


class FakeStream:
    """A bidirectional stream whose peer is ``responder``."""

    def __init__(self, backend: Backend, responder: Responder) -> None:
        self._incoming = backend.create_channel(1024)
        self._buffer = b""
        self._eof = False
        self._responder = responder
        self.state: dict[str, Any] = {}
        self.aborted = False
        self.written = b""

    async def write(self, data: bytes, end_stream: bool = False) -> None:
        if self.aborted:
            raise ReadError("stream reset")
        self.written += data
        for item in self._responder(self, bytes(data), end_stream):
            self._incoming.send_nowait(item)

    async def _fill(self) -> bool:
        if self._eof:
            return False
        try:
            item = await self._incoming.receive()
        except ChannelClosed:
            item = None
        if item is None:
            self._eof = True
            return False
        self._buffer += item
        return True

    async def read(self, size: int = -1) -> bytes:
        if not self._buffer:
            await self._fill()
        if size < 0:
            size = len(self._buffer)
        data, self._buffer = self._buffer[:size], self._buffer[size:]
        return data

    async def read_all(self, max_size: int = 1 << 20) -> bytes:
        while await self._fill():
            pass
        data, self._buffer = self._buffer, b""
        return data

    async def readline(self) -> bytes:
        while b"\n" not in self._buffer and await self._fill():
            pass
        index = self._buffer.find(b"\n")
        end = len(self._buffer) if index < 0 else index + 1
        line, self._buffer = self._buffer[:end], self._buffer[end:]
        return line

    async def abort(self, code: int = 0) -> None:
        self.aborted = True
        self._incoming.close()

    async def close(self) -> None:
        self._incoming.close()


class FakeDatagrams:
    """Datagrams echoed by the peer."""

    max_datagram_size = 1200

    def __init__(self, backend: Backend) -> None:
        self._channel = backend.create_channel(64)
        self.sent = 0

    async def send(self, data: bytes) -> None:
        self.sent += 1
        self._channel.send_nowait(bytes(data))

    async def receive(self, timeout: float | None = None) -> bytes:
        data: bytes = await self._channel.receive(timeout)
        return data


class FakeSession:
    """A session with the fake server: ready until closed by either
    side."""

    def __init__(self, server: FakeServer, url: str, headers: dict[str, str]) -> None:
        backend = server.backend
        self.server = server
        self.url = url
        self.headers = headers
        self._closed = backend.create_event()
        self.close_code: int | None = None
        self.close_reason: str | None = None
        self.datagrams = FakeDatagrams(backend)
        self.streams: list[FakeStream] = []

    @property
    def is_ready(self) -> bool:
        return not self._closed.is_set()

    @property
    def is_closed(self) -> bool:
        return self._closed.is_set()

    async def close(self, code: int = 0, reason: str = "") -> None:
        if not self._closed.is_set():
            self.close_code, self.close_reason = code, reason
            self._closed.set()

    def server_close(self, code: int = 0, reason: str = "bye") -> None:
        """The server ends the session."""
        if not self._closed.is_set():
            self.close_code, self.close_reason = code, reason
            self._closed.set()

    async def wait_closed(self) -> None:
        await self._closed.wait()

    async def create_bidirectional_stream(self) -> FakeStream:
        if self.is_closed:
            raise SessionClosed("the session is closed")
        stream = FakeStream(self.server.backend, self.server.responder)
        self.streams.append(stream)
        return stream

    async def incoming_streams(self) -> Any:
        """Server-initiated streams: ``pushed`` of them, each carrying
        ``b"push <n>"`` then its end."""
        for n in range(self.server.pushed):
            stream = FakeStream(self.server.backend, echo)
            await stream.write(b"push %d" % n, end_stream=True)
            yield stream

    async def __aenter__(self) -> FakeSession:
        return self

    async def __aexit__(self, *args: object) -> None:
        await self.close()


class FakeServer:
    """``open`` is a session opener: it records each call, waits
    ``connect_delay`` seconds of the backend's clock, fails the next
    ``fail_next`` attempts (or every attempt while ``down``) with
    ``ConnectError``, and returns a :class:`FakeSession`."""

    def __init__(self, backend: Backend, responder: Responder = echo) -> None:
        self.backend = backend
        self.responder = responder
        self.calls: list[dict[str, Any]] = []
        self.attempt_times: list[float] = []
        self.sessions: list[FakeSession] = []
        self.fail_next = 0
        self.down = False
        self.connect_delay = 0.0
        self.pushed = 0
        self._lock = backend.create_bookkeeping_lock()

    async def open(self, url: str, **options: Any) -> FakeSession:
        with self._lock:
            self.calls.append({"url": url, **options})
            self.attempt_times.append(self.backend.monotonic())
        if self.connect_delay:
            await self.backend.sleep(self.connect_delay)
        with self._lock:
            failing = self.down or self.fail_next > 0
            if self.fail_next > 0:
                self.fail_next -= 1
        if failing:
            raise ConnectError(f"cannot connect to {url}: refused")
        session = FakeSession(self, url, dict(options.get("headers") or {}))
        with self._lock:
            self.sessions.append(session)
        return session

    def open_sessions(self) -> list[FakeSession]:
        return [s for s in self.sessions if not s.is_closed]
