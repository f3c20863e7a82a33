"""HTTP11Connection driven directly over real backend streams to raw-socket
servers: full-duplex early responses, a response after a failed write,
detach after 101 and after CONNECT 200, the pool-facing state
(``is_available``, ``is_idle``, ``has_expired``) and ``on_release`` called
exactly once per request, on failure and cancellation included.

Every scenario is a coroutine taking a backend; it runs on asyncio and trio
(anyio) and on the blocking backend through ``webwire._sync.run_sync``.
"""

from __future__ import annotations

import socket
import ssl
import struct
from collections.abc import AsyncIterator, Callable, Coroutine
from typing import Any

import pytest
import yarl

from faults.scripted_server import Connection as ServerConn
from faults.scripted_server import ScriptedServer, response
from webwire._backends import get_backend
from webwire._backends.base import Backend, NetworkStream
from webwire._config import Limits, Timeout
from webwire._exceptions import (
    LocalProtocolError,
    ReadError,
    RemoteProtocolError,
    WriteError,
)
from webwire._sync import run_sync
from webwire._transport._detached import DetachedStream
from webwire._transport._types import Connection, StaleConnection, TransportRequest
from webwire._transport.connect import Origin
from webwire._transport.http1 import HTTP11Connection

Scenario = Callable[[Backend], Coroutine[Any, Any, None]]
MiB = 1024 * 1024
TIMEOUT = Timeout(5.0)
OK = response(b"hello")
TOO_LARGE = response(b"too large", b"413 Content Too Large", (b"Connection: close",))
UPGRADE = [
    (b"Host", b"127.0.0.1"),
    (b"Upgrade", b"websocket"),
    (b"Connection", b"Upgrade"),
]


# ------------------------------------------------------------------ helpers


OPENED: list[HTTP11Connection] = []
"""Connections opened by the running test (closed after it)."""


def close_opened() -> None:
    """Close what the test left open (on the test's own event loop)."""
    while OPENED:
        OPENED.pop().close()


class Client:
    """One HTTP11Connection to a scripted server, recording releases."""

    def __init__(self, backend: Backend, server: ScriptedServer, **limits: Any) -> None:
        self.backend = backend
        self.server = server
        self.limits = Limits(**limits)
        self.releases: list[Connection] = []
        self.conn: HTTP11Connection | None = None

    async def open(
        self, wrap: Callable[[NetworkStream], NetworkStream] | None = None
    ) -> HTTP11Connection:
        stream = await self.backend.connect_tcp("127.0.0.1", self.server.port, timeout=5.0)
        if wrap is not None:
            stream = wrap(stream)
        origin = Origin("http", "127.0.0.1", self.server.port)
        self.conn = HTTP11Connection(
            origin, stream, self.backend, limits=self.limits, on_release=self.releases.append
        )
        OPENED.append(self.conn)
        return self.conn

    def request(
        self,
        method: bytes = b"GET",
        body: bytes | Any = None,
        headers: list[tuple[bytes, bytes]] | None = None,
        target: bytes = b"/",
        timeout: Timeout = TIMEOUT,
    ) -> TransportRequest:
        url = yarl.URL(self.server.url)
        fields = [(b"Host", b"127.0.0.1")] if headers is None else headers
        return TransportRequest(method, url, target, fields, body, timeout, None)


async def read_body(raw: Any) -> bytes:
    return b"".join([chunk async for chunk in raw.stream])


async def chunks(
    total: int,
    size: int = 64 * 1024,
    sent: list[int] | None = None,
    closed: list[bool] | None = None,
) -> AsyncIterator[bytes]:
    """``total`` bytes in ``size`` pieces, counting what was taken and
    whether the generator was closed."""
    piece = b"x" * size
    try:
        for _ in range(total // size):
            if sent is not None:
                sent.append(size)
            yield piece
    finally:
        if closed is not None:
            closed.append(True)


def read_head(conn: ServerConn) -> bytes:
    """Read a request head only (the body, if any, is left unread)."""
    data = b""
    while b"\r\n\r\n" not in data:
        more = conn.sock.recv(65536)
        if not more:
            return b""
        data += more
    return data


def drain(conn: ServerConn, counter: list[int]) -> None:
    """Read and count everything until the client closes."""
    conn.sock.settimeout(10.0)
    while True:
        try:
            data = conn.sock.recv(1 << 20)
        except OSError:
            return
        if not data:
            return
        counter.append(len(data))


def rst_close(conn: ServerConn) -> None:
    conn.sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    conn.sock.close()


class Blind(NetworkStream):
    """A stream that never reports data waiting, as a backend that cannot
    see it would: the driver only learns of a response when a write fails."""

    def __init__(self, stream: NetworkStream) -> None:
        self.inner = stream
        self.write_errors: list[Exception] = []

    async def read(self, max_bytes: int, timeout: float | None) -> bytes:
        return await self.inner.read(max_bytes, timeout)

    async def write(self, data: bytes, timeout: float | None) -> None:
        try:
            await self.inner.write(data, timeout)
        except Exception as exc:
            self.write_errors.append(exc)
            raise

    async def send_eof(self) -> None:
        await self.inner.send_eof()

    async def aclose(self) -> None:
        await self.inner.aclose()

    def abort(self) -> None:
        self.inner.abort()

    def is_readable(self) -> bool:
        return False

    async def start_tls(
        self, ssl_context: ssl.SSLContext, server_hostname: str | None, timeout: float | None
    ) -> NetworkStream:
        return await self.inner.start_tls(ssl_context, server_hostname, timeout)

    def get_extra_info(self, name: str) -> Any:
        return self.inner.get_extra_info(name)


def answer_all(conn: ServerConn) -> None:
    while conn.read_request():
        conn.send(OK)


def answer_once(payload: bytes, *, head_only: bool = False) -> Callable[[ServerConn], None]:
    """Read one request (or only its head), send ``payload``, then close."""

    def handler(conn: ServerConn) -> None:
        if read_head(conn) if head_only else conn.read_request():
            conn.send(payload)

    return handler


async def wait_until(backend: Backend, condition: Callable[[], bool], seconds: float = 3.0) -> None:
    """Poll ``condition`` every 10 ms (the server works in its own thread)."""
    for _ in range(int(seconds / 0.01)):
        if condition():
            return
        await backend.sleep(0.01)
    raise AssertionError("condition not reached")


# --------------------------------------------------- life cycle and release


async def s_keep_alive_cycle(backend: Backend) -> None:
    """Two requests on one connection; the pool-facing state at each step."""
    with ScriptedServer(answer_all) as server:
        client = Client(backend, server, keepalive_expiry=5.0)
        conn = await client.open()
        assert conn.http_version == "HTTP/1.1"
        assert conn.can_handle(Origin("http", "127.0.0.1", server.port))
        assert not conn.can_handle(Origin("https", "127.0.0.1", server.port))
        assert conn.is_available() and conn.is_idle()
        assert not conn.has_expired(backend.monotonic())
        conn.reserve()
        assert not conn.is_available() and not conn.is_idle()
        with pytest.raises(RuntimeError):
            conn.reserve()
        raw = await conn.handle_request(client.request())
        assert (raw.status_code, raw.http_version) == (200, "HTTP/1.1")
        assert client.releases == []
        assert not conn.has_expired(backend.monotonic() + 100.0)  # in use
        assert await read_body(raw) == b"hello"
        assert client.releases == [conn]
        await raw.stream.aclose()
        assert client.releases == [conn]
        assert conn.is_idle() and conn.is_available()
        now = backend.monotonic()
        assert not conn.has_expired(now)
        assert conn.has_expired(conn.idle_since + 5.1)
        raw = await conn.handle_request(client.request(b"POST", b"data"))
        assert await read_body(raw) == b"hello"
        assert client.releases == [conn, conn]
        assert conn.requests_sent == 2
        assert server.accepted == 1
        await conn.aclose()
        assert conn.has_expired(backend.monotonic())
        assert not conn.is_available()


async def s_no_expiry_without_limit(backend: Backend) -> None:
    """keepalive_expiry=None: an idle connection never expires by time."""
    with ScriptedServer(answer_all) as server:
        client = Client(backend, server, keepalive_expiry=None)
        conn = await client.open()
        raw = await conn.handle_request(client.request())
        await read_body(raw)
        assert not conn.has_expired(backend.monotonic() + 1e6)
        conn.close()
        assert conn.has_expired(backend.monotonic())


async def s_connection_close_response(backend: Backend) -> None:
    """``Connection: close`` in the response: released once, then expired."""

    def handler(conn: ServerConn) -> None:
        if conn.read_request():
            conn.send(response(b"bye", headers=(b"Connection: close",)))
            conn.stop.wait(5.0)

    with ScriptedServer(handler) as server:
        client = Client(backend, server)
        conn = await client.open()
        raw = await conn.handle_request(client.request())
        assert await read_body(raw) == b"bye"
        assert client.releases == [conn]
        assert conn.has_expired(backend.monotonic())
        assert not conn.is_available()


async def s_peer_closes_idle_connection(backend: Backend) -> None:
    """The server closes a keep-alive connection while it is idle: it
    expires as soon as the end of stream is readable."""

    def handler(conn: ServerConn) -> None:
        if conn.read_request():
            conn.send(OK)
            conn.stop.wait(0.2)

    with ScriptedServer(handler) as server:
        client = Client(backend, server)
        conn = await client.open()
        raw = await conn.handle_request(client.request())
        assert await read_body(raw) == b"hello"
        await wait_until(backend, lambda: conn.has_expired(backend.monotonic()))
        assert not conn.is_available()
        assert conn.is_idle()


async def s_stale_reused_connection(backend: Backend) -> None:
    """A reused connection found closed before any response byte raises
    StaleConnection (the pool may retry); released once per request."""
    with ScriptedServer(answer_once(OK)) as server:
        client = Client(backend, server)
        conn = await client.open()
        raw = await conn.handle_request(client.request())
        assert await read_body(raw) == b"hello"
        await wait_until(backend, lambda: conn.has_expired(backend.monotonic()))
        with pytest.raises(StaleConnection) as info:
            await conn.handle_request(client.request())
        assert isinstance(info.value.error, ReadError | WriteError | RemoteProtocolError)
        assert client.releases == [conn, conn]


async def s_failure_releases_once(backend: Backend) -> None:
    """A malformed response fails the request: released once, closed."""
    with ScriptedServer(answer_once(b"garbage\r\n\r\n")) as server:
        client = Client(backend, server)
        conn = await client.open()
        with pytest.raises(RemoteProtocolError):
            await conn.handle_request(client.request())
        assert client.releases == [conn]
        assert conn.has_expired(backend.monotonic())
        conn.close()
        assert client.releases == [conn]


async def s_failure_in_body_releases_once(backend: Backend) -> None:
    """A body cut short fails while streaming: released once."""
    cut = b"HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nabc"
    with ScriptedServer(answer_once(cut)) as server:
        client = Client(backend, server)
        conn = await client.open()
        raw = await conn.handle_request(client.request())
        with pytest.raises(RemoteProtocolError, match="Content-Length"):
            await read_body(raw)
        await raw.stream.aclose()
        assert client.releases == [conn]


async def s_read_timeout_releases_once(backend: Backend) -> None:
    """No answer within the read timeout: ReadTimeout, released once."""

    def handler(conn: ServerConn) -> None:
        conn.read_request()
        conn.stop.wait(5.0)

    with ScriptedServer(handler) as server:
        client = Client(backend, server)
        conn = await client.open()
        from webwire._exceptions import ReadTimeout

        with pytest.raises(ReadTimeout):
            await conn.handle_request(client.request(timeout=Timeout(5.0, read=0.2)))
        assert client.releases == [conn]
        assert conn.has_expired(backend.monotonic())


async def s_invalid_request_releases_once(backend: Backend) -> None:
    """A request that cannot be serialised fails before any byte is sent."""
    with ScriptedServer(answer_all) as server:
        client = Client(backend, server)
        conn = await client.open()
        bad = client.request(headers=[(b"Host", b"x\r\nInjected: 1")])
        with pytest.raises(LocalProtocolError):
            await conn.handle_request(bad)
        assert client.releases == [conn]


async def s_body_framing(backend: Backend) -> None:
    """The driver frames bodies: Content-Length for bytes, chunked for a
    stream; fields that already frame the body are kept."""
    seen: list[bytes] = []

    def handler(conn: ServerConn) -> None:
        while True:
            request = conn.read_request()
            if not request:
                return
            seen.append(request)
            conn.send(OK)

    with ScriptedServer(handler) as server:
        client = Client(backend, server)
        conn = await client.open()
        requests = [
            client.request(b"POST", b"abc"),
            client.request(b"POST", chunks(3 * 4, size=4)),
            client.request(b"PUT", b""),
            client.request(b"GET"),
            client.request(
                b"POST",
                chunks(8, size=4),
                headers=[(b"Host", b"127.0.0.1"), (b"Content-Length", b"8")],
            ),
            client.request(b"POST", b"x" * (INLINE + 1)),
        ]
        for request in requests:
            raw = await conn.handle_request(request)
            assert await read_body(raw) == b"hello"
        assert len(client.releases) == len(requests)
    heads = [request.split(b"\r\n\r\n", 1)[0].lower() for request in seen]
    assert heads[0].endswith(b"content-length: 3") and seen[0].endswith(b"\r\n\r\nabc")
    assert heads[1].endswith(b"transfer-encoding: chunked")
    assert seen[1].endswith(b"4\r\nxxxx\r\n" * 3 + b"0\r\n\r\n")
    assert heads[2].endswith(b"content-length: 0")
    assert b"content-length" not in heads[3] and b"transfer-encoding" not in heads[3]
    assert b"transfer-encoding" not in heads[4] and seen[4].endswith(b"xxxxxxxx")
    assert heads[5].endswith(b"content-length: %d" % (INLINE + 1))


INLINE = 64 * 1024


# ------------------------------------------------------------ full duplex


def early_413(counter: list[int], payload: bytes = TOO_LARGE) -> Callable[[ServerConn], None]:
    """Answer ``payload`` right after the request head, then read and count
    the rest of what the client sends, until it closes."""

    def handler(conn: ServerConn) -> None:
        if read_head(conn):
            conn.send(payload)
            drain(conn, counter)

    return handler


EARLY = response(b"too large", b"413 Content Too Large")  # keep-alive on its side


async def s_early_response_streamed_upload(backend: Backend) -> None:
    """An early 413 during a 50 MiB streamed upload is returned; the rest of
    the body is not read and the connection is closed, not reused."""
    counter: list[int] = []
    sent: list[int] = []
    closed: list[bool] = []
    with ScriptedServer(early_413(counter, EARLY)) as server:
        client = Client(backend, server)
        conn = await client.open()
        body = chunks(50 * MiB, sent=sent, closed=closed)
        raw = await conn.handle_request(client.request(b"POST", body))
        assert raw.status_code == 413
        assert await read_body(raw) == b"too large"
        assert client.releases == [conn]
        assert conn.has_expired(backend.monotonic())
        assert closed == [True]
    assert sum(sent) < 50 * MiB
    assert sum(counter) < 50 * MiB


async def s_early_response_bytes_upload(backend: Backend) -> None:
    """The same with a 50 MiB ``bytes`` body (written in pieces)."""
    counter: list[int] = []
    with ScriptedServer(early_413(counter, EARLY)) as server:
        client = Client(backend, server)
        conn = await client.open()
        raw = await conn.handle_request(client.request(b"POST", b"x" * (50 * MiB)))
        assert raw.status_code == 413
        assert await read_body(raw) == b"too large"
        assert client.releases == [conn]
        assert conn.has_expired(backend.monotonic())
    assert sum(counter) < 50 * MiB


async def s_interim_responses_are_skipped(backend: Backend) -> None:
    """100 Continue and 103 during an upload are skipped; the final answer
    that follows is returned."""
    counter: list[int] = []
    payload = b"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 103 Early Hints\r\nLink: </a>\r\n\r\n" + EARLY
    with ScriptedServer(early_413(counter, payload)) as server:
        client = Client(backend, server)
        conn = await client.open()
        raw = await conn.handle_request(client.request(b"POST", chunks(50 * MiB)))
        assert raw.status_code == 413
        assert await read_body(raw) == b"too large"


async def s_response_after_complete_body_keeps_connection(backend: Backend) -> None:
    """A 413 sent after the whole body was read leaves the connection
    reusable (the request was complete)."""

    def handler(conn: ServerConn) -> None:
        while conn.read_request():
            conn.send(EARLY)

    with ScriptedServer(handler) as server:
        client = Client(backend, server)
        conn = await client.open()
        raw = await conn.handle_request(client.request(b"POST", chunks(MiB)))
        assert raw.status_code == 413
        await read_body(raw)
        assert conn.is_available()
        raw = await conn.handle_request(client.request(b"POST", b"again"))
        assert raw.status_code == 413
        await read_body(raw)
        assert server.accepted == 1


async def s_write_error_then_response(backend: Backend) -> None:
    """The server answers, then resets while the client is still writing:
    the write fails, and the response already received is returned."""

    def handler(conn: ServerConn) -> None:
        if read_head(conn):
            conn.send(TOO_LARGE)
            conn.stop.wait(0.1)
            rst_close(conn)

    with ScriptedServer(handler) as server:
        client = Client(backend, server)
        blind: list[Blind] = []

        def wrap(stream: NetworkStream) -> NetworkStream:
            blind.append(Blind(stream))
            return blind[0]

        conn = await client.open(wrap)
        raw = await conn.handle_request(client.request(b"POST", b"x" * (50 * MiB)))
        assert [type(error) for error in blind[0].write_errors] == [WriteError]
        assert raw.status_code == 413
        assert await read_body(raw) == b"too large"
        assert client.releases == [conn]
        assert conn.has_expired(backend.monotonic())


async def s_write_error_without_response(backend: Backend) -> None:
    """The server resets without answering: the WriteError is raised."""

    def handler(conn: ServerConn) -> None:
        if read_head(conn):
            rst_close(conn)

    with ScriptedServer(handler) as server:
        client = Client(backend, server)
        conn = await client.open(Blind)
        with pytest.raises(WriteError):
            await conn.handle_request(client.request(b"POST", b"x" * (50 * MiB)))
        assert client.releases == [conn]


# ------------------------------------------------------------------ detach

SWITCH = b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\r\n"


def switch_then_echo(answer: bytes) -> Callable[[ServerConn], None]:
    """Read the request head, send ``answer`` (head and leftover bytes in
    one write), then echo whatever arrives."""

    def handler(conn: ServerConn) -> None:
        if not read_head(conn):
            return
        conn.send(answer)
        while True:
            data = conn.sock.recv(65536)
            if not data:
                return
            conn.send(data)

    return handler


async def s_detach_after_101(backend: Backend) -> None:
    """101 to an Upgrade request: empty body, ``detach`` gives a stream
    whose first bytes are the leftover ones; the connection leaves the pool
    and closing it does not close the handed-over stream."""
    with ScriptedServer(switch_then_echo(SWITCH + b"leftover")) as server:
        client = Client(backend, server)
        conn = await client.open()
        raw = await conn.handle_request(client.request(headers=UPGRADE))
        assert (raw.status_code, raw.reason_phrase) == (101, b"Switching Protocols")
        assert (b"Upgrade", b"websocket") in raw.headers
        assert await read_body(raw) == b""
        assert client.releases == []
        stream = raw.extensions["detach"]()
        assert isinstance(stream, DetachedStream)
        assert client.releases == [conn]
        assert conn.has_expired(backend.monotonic())
        assert not conn.is_available()
        conn.close()
        await raw.stream.aclose()
        assert client.releases == [conn]
        with pytest.raises(RuntimeError):
            raw.extensions["detach"]()
        assert stream.is_readable()
        assert await stream.read(4, 5.0) == b"left"
        assert await stream.read(100, 5.0) == b"over"
        await stream.write(b"ping", 5.0)
        received = b""
        while len(received) < 4:
            received += await stream.read(100, 5.0)
        assert received == b"ping"
        await stream.aclose()


async def s_detach_after_connect_200(backend: Backend) -> None:
    """2xx to CONNECT: a tunnel, detached the same way."""
    answer = b"HTTP/1.1 200 Connection Established\r\n\r\nearly"
    with ScriptedServer(switch_then_echo(answer)) as server:
        client = Client(backend, server)
        conn = await client.open()
        authority = b"127.0.0.1:%d" % server.port
        request = client.request(b"CONNECT", headers=[(b"Host", authority)], target=authority)
        raw = await conn.handle_request(request)
        assert raw.status_code == 200
        assert await read_body(raw) == b""
        stream = raw.extensions["detach"]()
        assert client.releases == [conn]
        assert await stream.read(100, 5.0) == b"early"
        await stream.write(b"tunnel", 5.0)
        received = b""
        while len(received) < 6:
            received += await stream.read(100, 5.0)
        assert received == b"tunnel"
        stream.abort()


async def s_switch_not_detached_is_closed(backend: Backend) -> None:
    """Closing a 101 response without detaching closes the connection."""
    eof: list[bool] = []

    def handler(conn: ServerConn) -> None:
        if read_head(conn):
            conn.send(SWITCH)
            eof.append(conn.sock.recv(10) == b"")

    with ScriptedServer(handler) as server:
        client = Client(backend, server)
        conn = await client.open()
        raw = await conn.handle_request(client.request(headers=UPGRADE))
        await raw.stream.aclose()
        assert client.releases == [conn]
        assert conn.has_expired(backend.monotonic())
        with pytest.raises(RuntimeError):
            raw.extensions["detach"]()
    assert eof == [True]


async def s_101_without_upgrade_refused(backend: Backend) -> None:
    """A 101 to a request without Upgrade stays a RemoteProtocolError."""
    with ScriptedServer(switch_then_echo(SWITCH)) as server:
        client = Client(backend, server)
        conn = await client.open()
        with pytest.raises(RemoteProtocolError, match="without Upgrade"):
            await conn.handle_request(client.request())
        assert client.releases == [conn]


async def s_connect_refused_is_a_response(backend: Backend) -> None:
    """A 407 to CONNECT is an ordinary response with a body; no detach."""
    refused = response(b"auth", b"407 Proxy Authentication Required")
    with ScriptedServer(answer_once(refused, head_only=True)) as server:
        client = Client(backend, server)
        conn = await client.open()
        authority = b"example.com:443"
        raw = await conn.handle_request(
            client.request(b"CONNECT", headers=[(b"Host", authority)], target=authority)
        )
        assert raw.status_code == 407
        assert "detach" not in raw.extensions
        assert await read_body(raw) == b"auth"
        assert client.releases == [conn]


SCENARIOS: list[Scenario] = [
    s_keep_alive_cycle,
    s_no_expiry_without_limit,
    s_connection_close_response,
    s_peer_closes_idle_connection,
    s_stale_reused_connection,
    s_failure_releases_once,
    s_failure_in_body_releases_once,
    s_read_timeout_releases_once,
    s_invalid_request_releases_once,
    s_body_framing,
    s_early_response_streamed_upload,
    s_early_response_bytes_upload,
    s_interim_responses_are_skipped,
    s_response_after_complete_body_keeps_connection,
    s_write_error_then_response,
    s_write_error_without_response,
    s_detach_after_101,
    s_detach_after_connect_200,
    s_switch_not_detached_is_closed,
    s_101_without_upgrade_refused,
    s_connect_refused_is_a_response,
]
IDS = [s.__name__[2:] for s in SCENARIOS]


@pytest.mark.anyio
@pytest.mark.parametrize("scenario", SCENARIOS, ids=IDS)
async def test_async(scenario: Scenario, anyio_backend: str) -> None:
    try:
        await scenario(get_backend(anyio_backend))
    finally:
        close_opened()


@pytest.mark.parametrize("scenario", SCENARIOS, ids=IDS)
def test_sync(scenario: Scenario) -> None:
    try:
        run_sync(scenario(get_backend("sync")))
    finally:
        close_opened()


# ------------------------------------------------------------ cancellation


def silent(conn: ServerConn) -> None:
    conn.read_request()
    conn.stop.wait(5.0)


@pytest.mark.anyio
async def test_cancelled_request_releases_once(anyio_backend: str) -> None:
    import anyio

    backend = get_backend(anyio_backend)
    with ScriptedServer(silent) as server:
        client = Client(backend, server)
        conn = await client.open()
        with anyio.move_on_after(0.2) as scope:
            await conn.handle_request(client.request())
        assert scope.cancelled_caught
        assert client.releases == [conn]
        assert conn.has_expired(backend.monotonic())


@pytest.mark.anyio
async def test_cancelled_upload_releases_once(anyio_backend: str) -> None:
    import anyio

    def handler(conn: ServerConn) -> None:
        if read_head(conn):
            conn.stop.wait(5.0)  # never reads the body: the upload stalls

    backend = get_backend(anyio_backend)
    with ScriptedServer(handler) as server:
        client = Client(backend, server)
        conn = await client.open()
        with anyio.move_on_after(0.3) as scope:
            await conn.handle_request(client.request(b"POST", chunks(500 * MiB)))
        assert scope.cancelled_caught
        assert client.releases == [conn]


@pytest.mark.anyio
async def test_cancelled_body_read_releases_once(anyio_backend: str) -> None:
    import anyio

    stall = b"HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nab"

    def handler(conn: ServerConn) -> None:
        if conn.read_request():
            conn.send(stall)
            conn.stop.wait(5.0)

    backend = get_backend(anyio_backend)
    with ScriptedServer(handler) as server:
        client = Client(backend, server)
        conn = await client.open()
        raw = await conn.handle_request(client.request())
        with anyio.move_on_after(0.2) as scope:
            await read_body(raw)
        assert scope.cancelled_caught
        await raw.stream.aclose()
        assert client.releases == [conn]


def test_sync_request_in_flight_is_refused() -> None:
    async def scenario() -> None:
        backend = get_backend("sync")
        with ScriptedServer(answer_all) as server:
            client = Client(backend, server)
            conn = await client.open()
            raw = await conn.handle_request(client.request())
            with pytest.raises(RuntimeError, match="in flight"):
                await conn.handle_request(client.request())
            assert await read_body(raw) == b"hello"
            assert client.releases == [conn]

    run_sync(scenario())
