"""Extended CONNECT tunnels (RFC 8441) on a pooled HTTP/2 connection, on
the in-memory backend with a fake clock: the request the server sees, full
duplex bytes both ways, 4 MiB each way under small flow-control windows,
the server's RST_STREAM and END_STREAM, ordinary requests multiplexed next
to an open tunnel, timeouts at exact virtual times, and the pool's choice
of HTTP version for a WebSocket (HTTP/1.1 ``Upgrade`` when the server did
not enable extended CONNECT).

The server is h2's own server side over a MemoryStream ("TLS" with ALPN
``h2``); a connection that does not start with the HTTP/2 preface is
answered as HTTP/1.1 (``101`` then raw echo).
"""

from __future__ import annotations

import functools
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import h2.config
import h2.connection
import h2.errors
import h2.events
import h2.exceptions
import h2.settings
import pytest
import trio
import yarl

import webwire
import webwire._transport.http2 as http2_module
from webwire._backends.base import NetworkStream
from webwire._backends.memory import MemoryBackend, MemoryStream, memory_test, settle
from webwire._proto.h2 import H2Connection
from webwire._transport.http2 import HTTP2Connection, HTTP2TunnelStream
from webwire._transport.pool import ConnectionPool

HOST = "tunnel.test"
URL = yarl.URL(f"https://{HOST}")
TIMEOUT = webwire.Timeout(5.0)
WS = {"protocol": "websocket"}


def ws_headers(host: str = HOST) -> list[tuple[bytes, bytes]]:
    """The fields of a WebSocket ``Upgrade`` GET (RFC 6455 section 4.1)."""
    return [
        (b"Host", host.encode()),
        (b"Upgrade", b"websocket"),
        (b"Connection", b"Upgrade"),
        (b"Sec-WebSocket-Key", b"dGhlIHNhbXBsZSBub25jZQ=="),
        (b"Sec-WebSocket-Version", b"13"),
        (b"Sec-WebSocket-Protocol", b"chat"),
        (b"Origin", b"https://tunnel.test"),
        (b"Cookie", b"a=1"),
    ]


def pattern(size: int, seed: int = 0) -> bytes:
    block = bytes((i * 7 + seed) % 251 for i in range(251))
    return (block * (size // 251 + 1))[:size]


class TunnelServer:
    """h2's server side on each accepted connection. ``CONNECT`` paths:

    * ``/echo``: 200, echoes the DATA it receives, crediting it back only
      once echoed (so a client that does not read stops sending);
      END_STREAM echoed too.
    * ``/source/N``: 200, sends N bytes then END_STREAM.
    * ``/sink``: 200, counts the bytes (``sunk``) and ends its side when
      the client ended its own.
    * ``/stall``: 200, never credits what it receives.
    * ``/silent``: 200, then nothing.
    * ``/reset``: 200, resets the stream (CANCEL) at the first DATA.
    * ``/refuse``: 403 with a body.

    ``GET /conn`` answers the connection's number. A connection that does
    not open with the HTTP/2 preface gets an HTTP/1.1 ``101`` and raw echo.

    Attributes:
        accepted: Connections accepted (HTTP/2 and HTTP/1.1).
        requests: Header sections received, as dicts, in order.
        h1_requests: HTTP/1.1 request heads received.
        resets: ``(stream_id, error_code)`` of the client's RST_STREAM.
        sunk: Bytes received on ``/sink`` streams.
    """

    def __init__(
        self, *, connect_protocol: bool = True, window: int = 16384, max_streams: int = 100
    ) -> None:
        self.connect_protocol = connect_protocol
        self.window = window
        self.max_streams = max_streams
        self.accepted = 0
        self.requests: list[dict[bytes, bytes]] = []
        self.h1_requests: list[bytes] = []
        self.resets: list[tuple[int, int]] = []
        self.sunk = 0

    async def __call__(self, stream: MemoryStream) -> None:
        self.accepted += 1
        number = self.accepted
        try:
            first = await stream.read(65536, None)
            if not first.startswith(b"PRI * HTTP/2.0"):
                await self._http1(stream, first)
                return
            await self._http2(stream, first, number)
        except webwire.TransportError:
            pass  # the client closed or reset the connection

    async def _http1(self, stream: MemoryStream, data: bytes) -> None:
        while b"\r\n\r\n" not in data:
            more = await stream.read(65536, None)
            if not more:
                return
            data += more
        head, rest = data.split(b"\r\n\r\n", 1)
        self.h1_requests.append(head)
        await stream.write(
            b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n"
            b"Connection: Upgrade\r\n\r\n" + rest,
            None,
        )
        while True:
            data = await stream.read(65536, None)
            if not data:
                await stream.send_eof()
                return
            await stream.write(data, None)

    async def _http2(self, stream: MemoryStream, data: bytes, number: int) -> None:
        config = h2.config.H2Configuration(client_side=False, header_encoding=None)
        conn = h2.connection.H2Connection(config=config)
        codes = h2.settings.SettingCodes
        values = {
            codes.MAX_CONCURRENT_STREAMS: self.max_streams,
            codes.INITIAL_WINDOW_SIZE: self.window,
        }
        if self.connect_protocol:
            values[codes.ENABLE_CONNECT_PROTOCOL] = 1
        conn.local_settings = h2.settings.Settings(client=False, initial_values=values)
        conn.initiate_connection()
        kinds: dict[int, str] = {}
        outbound: dict[int, bytearray] = {}
        ending: set[int] = set()
        await stream.write(conn.data_to_send(), None)
        while data:
            for event in conn.receive_data(data):
                self._event(conn, event, number, kinds, outbound, ending)
            self._pump(conn, kinds, outbound, ending)
            out = conn.data_to_send()
            if out:
                await stream.write(out, None)
            data = await stream.read(65536, None)

    def _event(
        self,
        conn: Any,
        event: Any,
        number: int,
        kinds: dict[int, str],
        outbound: dict[int, bytearray],
        ending: set[int],
    ) -> None:
        if isinstance(event, h2.events.RequestReceived):
            headers = dict(event.headers)
            self.requests.append(headers)
            sid = event.stream_id
            path = headers[b":path"].decode()
            if headers[b":method"] == b"GET":
                body = str(number).encode()
                conn.send_headers(sid, [(b":status", b"200")])
                conn.send_data(sid, body, end_stream=True)
                return
            if path == "/refuse":
                conn.send_headers(sid, [(b":status", b"403")])
                conn.send_data(sid, b"no tunnel", end_stream=True)
                return
            conn.send_headers(sid, [(b":status", b"200")])
            kind = path.split("/")[1]
            kinds[sid] = kind
            outbound[sid] = bytearray()
            if kind == "source":
                outbound[sid] += pattern(int(path.split("/")[2]))
                ending.add(sid)
        elif isinstance(event, h2.events.DataReceived):
            sid = event.stream_id
            kind = kinds.get(sid)
            if kind == "echo":
                outbound[sid] += event.data
            elif kind == "sink":
                self.sunk += len(event.data)
                conn.acknowledge_received_data(event.flow_controlled_length, sid)
            elif kind == "reset":
                conn.reset_stream(sid, h2.errors.ErrorCodes.CANCEL)
                kinds.pop(sid)
            elif kind is None:
                conn.acknowledge_received_data(event.flow_controlled_length, sid)
        elif isinstance(event, h2.events.StreamEnded):
            if kinds.get(event.stream_id) in ("echo", "sink"):
                ending.add(event.stream_id)
        elif isinstance(event, h2.events.StreamReset):
            self.resets.append((event.stream_id, event.error_code))
            kinds.pop(event.stream_id, None)
            outbound.pop(event.stream_id, None)

    def _pump(
        self,
        conn: Any,
        kinds: dict[int, str],
        outbound: dict[int, bytearray],
        ending: set[int],
    ) -> None:
        for sid, buf in list(outbound.items()):
            if sid not in kinds:
                continue
            try:
                while buf:
                    window = conn.local_flow_control_window(sid)
                    size = min(window, conn.max_outbound_frame_size, len(buf))
                    if size <= 0:
                        break
                    conn.send_data(sid, bytes(buf[:size]))
                    del buf[:size]
                    if kinds[sid] == "echo":  # credit what was echoed
                        conn.acknowledge_received_data(size, sid)
                if not buf and sid in ending:
                    conn.end_stream(sid)
                    ending.discard(sid)
                    kinds.pop(sid)
            except h2.exceptions.StreamClosedError:
                kinds.pop(sid, None)


def small_windows(monkeypatch: pytest.MonkeyPatch) -> None:
    """Make the client announce 64 KiB windows (stream and connection), so
    the server must wait for the client's reads."""
    monkeypatch.setattr(
        http2_module,
        "H2Connection",
        functools.partial(H2Connection, initial_window_size=65535, connection_window_size=65535),
    )


@pytest.fixture
def backend() -> MemoryBackend:
    return MemoryBackend()


def serve(backend: MemoryBackend, **options: Any) -> TunnelServer:
    server = TunnelServer(**options)
    backend.serve_tcp(HOST, 443, server, alpn="h2")
    return server


@asynccontextmanager
async def open_pool(backend: MemoryBackend, **options: Any) -> AsyncIterator[ConnectionPool]:
    pool = ConnectionPool(backend, **options)
    try:
        yield pool
    finally:
        await pool.aclose()
        for conn in pool.connections():
            conn.close()
    await settle()
    assert backend.open_connections() == []


async def open_tunnel(
    pool: ConnectionPool, path: str, **extensions: Any
) -> tuple[webwire._transport._types.RawResponse, NetworkStream]:
    response = await pool.request(
        b"GET",
        URL.with_path(path),
        ws_headers(),
        None,
        timeout=TIMEOUT,
        deadline=None,
        extensions={**WS, **extensions},
    )
    assert response.status_code in (101, 200), response.status_code
    return response, response.extensions["detach"]()


async def read_exactly(stream: NetworkStream, size: int, chunk: int = 65536) -> bytes:
    parts: list[bytes] = []
    got = 0
    while got < size:
        data = await stream.read(min(chunk, size - got), 5.0)
        assert data, f"end of stream after {got} of {size} bytes"
        parts.append(data)
        got += len(data)
    return b"".join(parts)


async def get_conn(pool: ConnectionPool) -> bytes:
    response = await pool.request(
        b"GET",
        URL.with_path("/conn"),
        [(b"Host", HOST.encode())],
        None,
        timeout=TIMEOUT,
        deadline=None,
    )
    assert response.http_version == "HTTP/2"
    body = b"".join([chunk async for chunk in response.stream])
    return body


@memory_test
async def test_extended_connect_request_and_duplex_echo(backend: MemoryBackend) -> None:
    server = serve(backend)
    async with open_pool(backend) as pool:
        response, tunnel = await open_tunnel(pool, "/echo")
        assert isinstance(tunnel, HTTP2TunnelStream)
        assert response.http_version == "HTTP/2"
        headers = server.requests[0]
        assert headers[b":method"] == b"CONNECT"
        assert headers[b":protocol"] == b"websocket"
        assert headers[b":scheme"] == b"https"
        assert headers[b":path"] == b"/echo"
        assert headers[b":authority"] == HOST.encode()
        assert headers[b"sec-websocket-version"] == b"13"
        assert headers[b"sec-websocket-protocol"] == b"chat"
        assert headers[b"origin"] == b"https://tunnel.test"
        assert headers[b"cookie"] == b"a=1"
        for dropped in (b"upgrade", b"connection", b"sec-websocket-key", b"host"):
            assert dropped not in headers
        assert tunnel.get_extra_info("alpn_protocol") == "h2"
        assert tunnel.get_extra_info("stream_id") == 1
        # One task reads while another writes.
        received: list[bytes] = []

        async def reader() -> None:
            received.append(await read_exactly(tunnel, 3 * 1000))

        async with trio.open_nursery() as nursery:
            nursery.start_soon(reader)
            for i in range(3):
                await tunnel.write(pattern(1000, i), 5.0)
        assert received == [b"".join(pattern(1000, i) for i in range(3))]
        await tunnel.send_eof()
        assert await tunnel.read(100, 5.0) == b""
        assert await tunnel.read(100, 5.0) == b""
        await tunnel.aclose()
        await response.stream.aclose()
        assert pool.connections_in_use() == 0
        assert server.resets == []  # both sides ended: nothing to reset


@memory_test
async def test_four_mib_each_way_under_flow_control(
    backend: MemoryBackend, monkeypatch: pytest.MonkeyPatch
) -> None:
    small_windows(monkeypatch)
    serve(backend, window=16384)
    size = 4 * 1024 * 1024
    payload = pattern(size, 3)
    async with open_pool(backend) as pool:
        _, tunnel = await open_tunnel(pool, "/echo")
        received: list[bytes] = []

        async def reader() -> None:
            received.append(await read_exactly(tunnel, size, chunk=50_000))

        async with trio.open_nursery() as nursery:
            nursery.start_soon(reader)
            await tunnel.write(payload, 30.0)
            await tunnel.send_eof()
        assert received[0] == payload
        assert await tunnel.read(10, 5.0) == b""
        await tunnel.aclose()
        # The connection's windows were all credited back: it still works.
        assert await get_conn(pool) == b"1"


@memory_test
async def test_server_source_then_end_stream(
    backend: MemoryBackend, monkeypatch: pytest.MonkeyPatch
) -> None:
    small_windows(monkeypatch)
    serve(backend)
    size = 4 * 1024 * 1024
    async with open_pool(backend) as pool:
        _, tunnel = await open_tunnel(pool, f"/source/{size}")
        assert await read_exactly(tunnel, size, chunk=7_000) == pattern(size)
        assert await tunnel.read(10, 5.0) == b""
        assert tunnel.is_readable()
        # Our side is still open: we may send, then end it.
        await tunnel.aclose()
        assert pool.connections_in_use() == 0


@memory_test
async def test_send_eof_then_server_ends(backend: MemoryBackend) -> None:
    server = serve(backend)
    async with open_pool(backend) as pool:
        _, tunnel = await open_tunnel(pool, "/sink")
        await tunnel.write(b"x" * 50_000, 5.0)
        await tunnel.send_eof()
        await tunnel.send_eof()  # idempotent
        assert await tunnel.read(10, 5.0) == b""
        assert server.sunk == 50_000
        with pytest.raises(webwire.WriteError, match="ended"):
            await tunnel.write(b"more", 5.0)
        await tunnel.aclose()
        with pytest.raises(webwire.ReadError, match="closed"):
            await tunnel.read(10, 5.0)


@memory_test
async def test_peer_reset_is_read_and_write_error(backend: MemoryBackend) -> None:
    serve(backend)
    async with open_pool(backend) as pool:
        _, tunnel = await open_tunnel(pool, "/reset")
        await tunnel.write(b"trigger", 5.0)
        with pytest.raises(webwire.ReadError, match="CANCEL"):
            await tunnel.read(10, 5.0)
        with pytest.raises(webwire.WriteError):
            await tunnel.write(b"more", 5.0)
        await tunnel.aclose()
        assert pool.connections_in_use() == 0
        assert await get_conn(pool) == b"1"


@memory_test
async def test_abort_resets_the_stream(backend: MemoryBackend) -> None:
    server = serve(backend)
    async with open_pool(backend) as pool:
        _, tunnel = await open_tunnel(pool, "/silent")
        tunnel.abort()
        tunnel.abort()
        assert pool.connections_in_use() == 0
        assert await get_conn(pool) == b"1"  # sends the queued RST_STREAM too
        await settle()
        assert server.resets == [(1, h2.errors.ErrorCodes.CANCEL)]
        with pytest.raises(webwire.WriteError):
            await tunnel.write(b"x", 1.0)


@memory_test
async def test_requests_multiplexed_next_to_open_tunnels(backend: MemoryBackend) -> None:
    server = serve(backend, max_streams=6)
    async with open_pool(backend) as pool:
        _, first = await open_tunnel(pool, "/echo")
        _, second = await open_tunnel(pool, "/echo")
        results: list[bytes] = []

        async def get() -> None:
            results.append(await get_conn(pool))

        async with trio.open_nursery() as nursery:
            for _ in range(4):
                nursery.start_soon(get)
            await first.write(b"one", 5.0)
            await second.write(b"two", 5.0)
        assert results == [b"1"] * 4
        assert await read_exactly(first, 3) == b"one"
        assert await read_exactly(second, 3) == b"two"
        assert server.accepted == 1
        # The tunnels hold two of the server's six stream slots.
        (conn,) = pool.connections()
        assert isinstance(conn, HTTP2Connection)
        for _ in range(4):
            assert conn.is_available()
            conn.reserve()
        assert not conn.is_available()
        for _ in range(4):
            conn._release(None)
        await first.aclose()
        await second.aclose()
        assert conn.is_idle()


@memory_test
async def test_tunnels_count_against_the_stream_limit(backend: MemoryBackend) -> None:
    server = serve(backend, max_streams=1)
    async with open_pool(backend) as pool:
        _, tunnel = await open_tunnel(pool, "/echo")
        # The only stream slot is the tunnel's: a request opens another connection.
        assert await get_conn(pool) == b"2"
        assert server.accepted == 2
        await tunnel.aclose()
        assert await get_conn(pool) in (b"1", b"2")
        assert server.accepted == 2


@memory_test
async def test_read_and_write_timeouts_at_exact_times(backend: MemoryBackend) -> None:
    serve(backend, window=16384)
    async with open_pool(backend) as pool:
        _, silent = await open_tunnel(pool, "/silent")
        start = backend.monotonic()
        with pytest.raises(webwire.ReadTimeout):
            await silent.read(10, 2.0)
        assert backend.monotonic() - start == pytest.approx(2.0)
        _, stall = await open_tunnel(pool, "/stall")
        start = backend.monotonic()
        with pytest.raises(webwire.WriteTimeout):
            await stall.write(b"x" * 100_000, 3.0)
        assert backend.monotonic() - start == pytest.approx(3.0)
        # Neither timeout broke the connection.
        assert await get_conn(pool) == b"1"
        await silent.aclose()
        start = backend.monotonic()
        await stall.aclose()  # the server never ends its side: bounded wait
        assert backend.monotonic() - start == pytest.approx(http2_module.TUNNEL_CLOSE_WAIT)


@memory_test
async def test_refused_extended_connect_is_a_response(backend: MemoryBackend) -> None:
    serve(backend)
    async with open_pool(backend) as pool:
        response = await pool.request(
            b"GET",
            URL.with_path("/refuse"),
            ws_headers(),
            None,
            timeout=TIMEOUT,
            deadline=None,
            extensions=WS,
        )
        assert response.status_code == 403
        assert "detach" not in response.extensions
        assert b"".join([c async for c in response.stream]) == b"no tunnel"
        assert pool.connections_in_use() == 0


@memory_test
async def test_detach_after_close_is_refused(backend: MemoryBackend) -> None:
    server = serve(backend)
    async with open_pool(backend) as pool:
        response = await pool.request(
            b"GET", URL.with_path("/echo"), ws_headers(), None,
            timeout=TIMEOUT, deadline=None, extensions=WS,
        )
        await response.stream.aclose()
        with pytest.raises(RuntimeError, match="closed"):
            response.extensions["detach"]()
        await settle()
        assert pool.connections_in_use() == 0
        assert await get_conn(pool) == b"1"
        assert server.resets == [(1, h2.errors.ErrorCodes.CANCEL)]


@memory_test
async def test_auto_falls_back_to_http11_without_the_setting(backend: MemoryBackend) -> None:
    server = serve(backend, connect_protocol=False)
    async with open_pool(backend) as pool:
        response, stream = await open_tunnel(pool, "/chat")
        assert response.status_code == 101
        assert response.http_version == "HTTP/1.1"
        assert server.accepted == 2  # the HTTP/2 connection, then HTTP/1.1
        assert server.h1_requests[0].startswith(b"GET /chat HTTP/1.1\r\n")
        assert b"Sec-WebSocket-Key: " in server.h1_requests[0]
        await stream.write(b"ping", 5.0)
        assert await read_exactly(stream, 4) == b"ping"
        await stream.aclose()
        # The HTTP/2 connection stays pooled for ordinary requests...
        assert await get_conn(pool) == b"1"
        # ... and a second WebSocket goes straight to a new HTTP/1.1 connection.
        response, stream = await open_tunnel(pool, "/chat")
        assert response.http_version == "HTTP/1.1"
        assert server.accepted == 3
        await stream.aclose()
        # Forcing HTTP/2 is refused clearly.
        with pytest.raises(webwire.LocalProtocolError, match="extended CONNECT"):
            await open_tunnel(pool, "/chat", http_version="HTTP/2")
        assert pool.connections_in_use() == 0


@memory_test
async def test_forced_http11_and_forced_http2(backend: MemoryBackend) -> None:
    server = serve(backend)
    async with open_pool(backend) as pool:
        response, stream = await open_tunnel(pool, "/chat", http_version="HTTP/1.1")
        assert (response.status_code, response.http_version) == (101, "HTTP/1.1")
        await stream.aclose()
        response, stream = await open_tunnel(pool, "/echo", http_version="HTTP/2")
        assert (response.status_code, response.http_version) == (200, "HTTP/2")
        await stream.aclose()
        assert server.accepted == 2
        with pytest.raises(webwire.LocalProtocolError, match="http_version"):
            await open_tunnel(pool, "/echo", http_version="HTTP/4")


@memory_test
async def test_http2_disabled_or_cleartext(backend: MemoryBackend) -> None:
    server = TunnelServer()
    backend.serve_tcp(HOST, 80, server)
    plain = URL.with_scheme("http")
    async with open_pool(backend) as pool:
        response = await pool.request(
            b"GET", plain.with_path("/chat"), ws_headers(), None,
            timeout=TIMEOUT, deadline=None, extensions=WS,
        )
        assert (response.status_code, response.http_version) == (101, "HTTP/1.1")
        response.extensions["detach"]().abort()
        with pytest.raises(webwire.LocalProtocolError, match="HTTP/2 is not used"):
            await pool.request(
                b"GET", plain.with_path("/chat"), ws_headers(), None,
                timeout=TIMEOUT, deadline=None, extensions={**WS, "http_version": "HTTP/2"},
            )
    # Prior knowledge (http1=False): the extended CONNECT goes over h2c.
    async with open_pool(backend, http1=False) as pool:
        response = await pool.request(
            b"GET", plain.with_path("/echo"), ws_headers(), None,
            timeout=TIMEOUT, deadline=None, extensions=WS,
        )
        assert (response.status_code, response.http_version) == (200, "HTTP/2")
        assert server.requests[-1][b":scheme"] == b"http"
        tunnel = response.extensions["detach"]()
        await tunnel.write(b"h2c", 5.0)
        assert await read_exactly(tunnel, 3) == b"h2c"
        await tunnel.aclose()
        with pytest.raises(webwire.LocalProtocolError, match=r"HTTP/1\.1 is disabled"):
            await pool.request(
                b"GET", plain.with_path("/chat"), ws_headers(), None,
                timeout=TIMEOUT, deadline=None, extensions={**WS, "http_version": "HTTP/1.1"},
            )


@memory_test
async def test_connection_loss_fails_the_tunnel(backend: MemoryBackend) -> None:
    server = TunnelServer()
    listener = backend.serve_tcp(HOST, 443, server, alpn="h2")
    async with open_pool(backend) as pool:
        _, tunnel = await open_tunnel(pool, "/silent")
        listener.connections[0].abort()  # the server's end goes away
        with pytest.raises(webwire.ReadError):
            await tunnel.read(10, 5.0)
        with pytest.raises(webwire.WriteError):
            await tunnel.write(b"x", 5.0)
        await tunnel.aclose()
        assert pool.connections_in_use() == 0


class ConnectProxy:
    """An HTTP proxy that answers ``CONNECT`` with 200 and then plays the
    origin itself (``server``) inside the tunnel, where TLS reports ALPN
    ``h2``."""

    def __init__(self, server: TunnelServer) -> None:
        self.server = server
        self.targets: list[bytes] = []

    async def __call__(self, stream: MemoryStream) -> None:
        data = b""
        while b"\r\n\r\n" not in data:
            more = await stream.read(65536, None)
            if not more:
                return
            data += more
        self.targets.append(data.split(b"\r\n", 1)[0])
        await stream.write(b"HTTP/1.1 200 Connection established\r\n\r\n", None)
        await self.server(stream)


@pytest.mark.parametrize("connect_protocol", [True, False], ids=["h2", "h1-fallback"])
@memory_test
async def test_websocket_choice_inside_a_proxy_tunnel(
    backend: MemoryBackend, connect_protocol: bool
) -> None:
    from webwire._transport.proxy import Proxy

    server = TunnelServer(connect_protocol=connect_protocol)
    proxy = ConnectProxy(server)
    backend.serve_tcp("proxy.test", 3128, proxy, alpn="h2")
    async with open_pool(backend, proxy=Proxy("http://proxy.test:3128")) as pool:
        response, stream = await open_tunnel(pool, "/echo")
        if connect_protocol:
            assert (response.status_code, response.http_version) == (200, "HTTP/2")
            assert proxy.targets == [b"CONNECT tunnel.test:443 HTTP/1.1"]
        else:
            assert (response.status_code, response.http_version) == (101, "HTTP/1.1")
            assert proxy.targets == [b"CONNECT tunnel.test:443 HTTP/1.1"] * 2
            assert server.h1_requests[0].startswith(b"GET /echo HTTP/1.1\r\n")
        await stream.write(b"through the proxy", 5.0)
        assert await read_exactly(stream, 17) == b"through the proxy"
        await stream.aclose()


@memory_test
async def test_unread_data_of_a_closed_tunnel_is_credited(
    backend: MemoryBackend, monkeypatch: pytest.MonkeyPatch
) -> None:
    """With 64 KiB windows, a tunnel abandoned with 60,000 unread bytes
    (some buffered, some still on their way) must give the connection its
    credit back, or the next transfer would stall."""
    small_windows(monkeypatch)
    serve(backend)
    async with open_pool(backend) as pool:
        _, first = await open_tunnel(pool, "/source/60000")
        assert len(await first.read(1000, 5.0)) == 1000
        first.abort()
        _, second = await open_tunnel(pool, "/source/200000")
        assert await read_exactly(second, 200_000) == pattern(200_000)
        await second.aclose()
        _, third = await open_tunnel(pool, "/source/60000")
        await settle()
        await third.aclose()  # drains what arrived, crediting it
        _, fourth = await open_tunnel(pool, "/source/200000")
        assert await read_exactly(fourth, 200_000) == pattern(200_000)
        await fourth.aclose()


@memory_test
async def test_bad_websocket_requests_are_refused_clearly(backend: MemoryBackend) -> None:
    serve(backend)
    async with open_pool(backend, http2=False) as pool:
        with pytest.raises(webwire.LocalProtocolError, match=r"HTTP/2 is disabled \(http2=False\)"):
            await open_tunnel(pool, "/echo", http_version="HTTP/2")
    async with open_pool(backend) as pool:
        with pytest.raises(webwire.LocalProtocolError, match="needs HTTP/2"):
            await pool.request(
                b"CONNECT", URL.with_path("/echo"), ws_headers(), None,
                timeout=TIMEOUT, deadline=None, extensions={**WS, "http_version": "HTTP/1.1"},
            )
        with pytest.raises(webwire.LocalProtocolError, match="no content"):
            await pool.request(
                b"GET", URL.with_path("/echo"), ws_headers(), b"body",
                timeout=TIMEOUT, deadline=None, extensions=WS,
            )
        with pytest.raises(webwire.LocalProtocolError, match="must be a string"):
            await pool.request(
                b"GET", URL.with_path("/echo"), ws_headers(), None,
                timeout=TIMEOUT, deadline=None, extensions={"protocol": b"websocket"},
            )
        # A CONNECT with "protocol" is sent as it is, over HTTP/2.
        response = await pool.request(
            b"CONNECT", URL.with_path("/echo"),
            [(b"Host", HOST.encode()), (b"Sec-WebSocket-Version", b"13")], None,
            timeout=TIMEOUT, deadline=None, extensions=WS,
        )
        assert (response.status_code, response.http_version) == (200, "HTTP/2")
        tunnel = response.extensions["detach"]()
        await tunnel.write(b"as is", 5.0)
        assert await read_exactly(tunnel, 5) == b"as is"
        await tunnel.aclose()
        assert pool.connections_in_use() == 0


@memory_test
async def test_http11_fallback_with_a_callers_ssl_context(backend: MemoryBackend) -> None:
    """The HTTP/1.1-only TLS context cannot be derived from a context the
    caller passed as ``verify``: a clear error, and nothing leaks."""
    import ssl

    serve(backend, connect_protocol=False)
    async with open_pool(backend, verify=ssl.create_default_context()) as pool:
        with pytest.raises(webwire.ConnectError, match=r"offering only http/1\.1"):
            await open_tunnel(pool, "/chat")
        assert pool.connections_in_use() == 0
        assert await get_conn(pool) == b"1"


@memory_test
async def test_waiting_for_the_servers_settings_is_bounded(backend: MemoryBackend) -> None:
    """A server that accepts but never sends its SETTINGS: the WebSocket
    request fails with ReadTimeout after exactly the read timeout."""

    async def mute(stream: MemoryStream) -> None:
        while await stream.read(65536, None):
            pass

    backend.serve_tcp(HOST, 443, mute, alpn="h2")
    async with open_pool(backend) as pool:
        start = backend.monotonic()
        with pytest.raises(webwire.ReadTimeout, match=r"SETTINGS within 2\.0 seconds"):
            await pool.request(
                b"GET", URL.with_path("/chat"), ws_headers(), None,
                timeout=webwire.Timeout(5.0, read=2.0), deadline=None, extensions=WS,
            )
        assert backend.monotonic() - start == pytest.approx(2.0)
        assert pool.connections_in_use() == 0
