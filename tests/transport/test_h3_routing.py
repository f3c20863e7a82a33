"""HTTP/3 routing of the pool on the memory backend, with a fake QUIC
connector standing in for ``connect_http3``: forced HTTP/3, Alt-Svc,
fallback to TCP and the remembered failure, per-request overrides, pooling
apart from TCP connections, trace signals and WebSocket (RFC 9220) choice.

The TCP side is a real exchange: a small HTTP/1.1 responder registered with
``MemoryBackend.serve_tcp`` (TLS with ALPN ``http/1.1``) that sends the
``Alt-Svc`` field it is told to. The fake connector records every attempt
and either returns a fake HTTP/3 connection, refuses (ICMP unreachable:
``ConnectError`` at once) or stays silent (UDP dropped: ``ConnectTimeout``
after the connect timeout, on the fake clock).
"""

from __future__ import annotations

import threading
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from typing import Any

import pytest

import webwire
from webwire._backends.memory import MemoryBackend, MemoryStream, memory_test, settle
from webwire._exceptions import ConnectError, ConnectTimeout
from webwire._transport import _h3_route
from webwire._transport._types import (
    Connection,
    RawResponse,
    ResponseStream,
    TransportRequest,
)
from webwire._transport.altsvc import BROKEN_BASE_DELAY
from webwire._transport.connect import Origin

HOST = "h3.test"
URL = f"https://{HOST}/"
ORIGIN = Origin("https", HOST, 443)
CONNECT_TIMEOUT = 3.0


# -- the TCP server ----------------------------------------------------------------


class Responder:
    """HTTP/1.1 over the memory backend's TLS: answers every request with
    ``tcp`` and the ``Alt-Svc`` field in :attr:`alt_svc` (none when
    ``None``).

    Attributes:
        accepted: Connections accepted.
        requests: Request targets received.
    """

    def __init__(self) -> None:
        self.alt_svc: str | None = 'h3=":443"; ma=3600'
        self.accepted = 0
        self.requests: list[bytes] = []

    async def __call__(self, stream: MemoryStream) -> None:
        self.accepted += 1
        buffer = b""
        while True:
            while b"\r\n\r\n" not in buffer:
                data = await stream.read(65536, None)
                if not data:
                    return
                buffer += data
            head, _, buffer = buffer.partition(b"\r\n\r\n")
            self.requests.append(head.split(b"\r\n", 1)[0].split(b" ")[1])
            extra = b"" if self.alt_svc is None else b"Alt-Svc: %s\r\n" % self.alt_svc.encode()
            await stream.write(
                b"HTTP/1.1 200 OK\r\n%sContent-Length: 3\r\n\r\ntcp" % extra, None
            )


# -- the fake HTTP/3 side -------------------------------------------------------------


class FakeBody(ResponseStream):
    def __init__(self, conn: FakeH3Connection, body: bytes) -> None:
        self._conn = conn
        self._body = body
        self._done = False

    async def __aiter__(self) -> AsyncIterator[bytes]:  # type: ignore[override]
        if not self._done:
            yield self._body
            self._finish()

    def _finish(self) -> None:
        if not self._done:
            self._done = True
            self._conn._stream_done()

    async def aclose(self) -> None:
        self._finish()


class FakeH3Connection(Connection):
    """An HTTP/3 connection that answers every request itself with ``h3``
    (and the ``Alt-Svc`` field of its :class:`FakeQuic`)."""

    http_version = "HTTP/3"
    multiplexed = True

    def __init__(
        self,
        quic: FakeQuic,
        origin: Origin,
        address: tuple[str, int],
        on_release: Any,
        keepalive: float | None,
    ) -> None:
        self.quic = quic
        self.keepalive = keepalive
        self.origin = origin
        self.address = address
        self._on_release = on_release
        self.active = 0
        self.closed = False
        self.idle_since = quic.backend.monotonic()
        self.requests: list[TransportRequest] = []
        self.supports_extended_connect = quic.extended_connect

    def can_handle(self, origin: Origin) -> bool:
        return origin == self.origin

    def is_available(self) -> bool:
        return not self.closed and self.active < self.quic.max_streams

    def is_idle(self) -> bool:
        return self.active == 0

    def has_expired(self, now: float) -> bool:
        if self.closed:
            return True
        keepalive = self.keepalive
        return self.active == 0 and keepalive is not None and now - self.idle_since > keepalive

    def reserve(self) -> None:
        self.active += 1

    async def handle_request(self, request: TransportRequest) -> RawResponse:
        self.requests.append(request)
        await self.quic.backend.sleep(self.quic.response_delay)
        headers = [(b"content-length", b"2")]
        if self.quic.alt_svc is not None:
            headers.append((b"alt-svc", self.quic.alt_svc.encode()))
        return RawResponse(200, b"", "HTTP/3", headers, FakeBody(self, b"h3"))

    def _release(self, state: object) -> None:
        self._stream_done()

    def _stream_done(self) -> None:
        self.active -= 1
        self.idle_since = self.quic.backend.monotonic()
        self._on_release(self)

    def close(self) -> None:
        self.closed = True
        self.quic.closed += 1


class FakeQuic:
    """The injected HTTP/3 engine.

    Attributes:
        listening: UDP ``(address, port)`` that complete a handshake.
        refused: UDP ports that answer with ICMP unreachable.
        attempts: ``(address, port, server_name)`` of every connect.
        connections: The connections made.
    """

    def __init__(self, backend: MemoryBackend) -> None:
        self.backend = backend
        self.listening: set[tuple[str, int]] = set()
        self.refused: set[int] = set()
        self.refused_hosts: set[str] = set()
        self.attempts: list[tuple[str, int, str]] = []
        self.connections: list[FakeH3Connection] = []
        self.timeouts: list[float | None] = []
        self.handshake_time = 0.05
        self.response_delay = 0.0
        self.max_streams = 100
        self.extended_connect = True
        self.alt_svc: str | None = None
        self.closed = 0
        self.tls_built = 0

    def tls_options(self, verify: Any, cert: Any, trust_env: bool) -> str:
        self.tls_built += 1
        return "tls"

    async def connect(
        self,
        backend: MemoryBackend,
        origin: Origin,
        *,
        address: tuple[str, int],
        server_name: str,
        tls: Any,
        limits: Any,
        connect_timeout: float | None,
        tickets: Any,
        on_release: Any,
    ) -> Connection:
        assert tls == "tls" and isinstance(tickets, Tickets)
        self.attempts.append((address[0], address[1], server_name))
        self.timeouts.append(connect_timeout)
        if address[1] in self.refused or address[0] in self.refused_hosts:
            raise ConnectError(f"cannot connect to {address[0]}:{address[1]}: unreachable")
        if address not in self.listening:
            assert connect_timeout is not None
            await backend.sleep(connect_timeout)
            raise ConnectTimeout("no QUIC handshake within the connect timeout")
        await backend.sleep(self.handshake_time)
        conn = FakeH3Connection(self, origin, address, on_release, limits.keepalive_expiry)
        self.connections.append(conn)
        return conn


class Tickets:
    def __init__(self, backend: MemoryBackend) -> None:
        self.backend = backend


@pytest.fixture
def backend() -> MemoryBackend:
    return MemoryBackend()


@pytest.fixture
def responder(backend: MemoryBackend) -> Responder:
    responder = Responder()
    backend.serve_tcp(HOST, 443, responder, alpn="http/1.1")
    return responder


@pytest.fixture
def quic(backend: MemoryBackend, monkeypatch: pytest.MonkeyPatch) -> Iterator[FakeQuic]:
    fake = FakeQuic(backend)
    monkeypatch.setattr(_h3_route, "load_engine", lambda: (fake.connect, fake.tls_options, Tickets))
    yield fake


@asynccontextmanager
async def open_client(backend: MemoryBackend, **options: Any) -> AsyncIterator[webwire.AsyncClient]:
    options.setdefault("timeout", webwire.Timeout(10.0, connect=CONNECT_TIMEOUT))
    async with webwire.AsyncClient(_backend=backend, **options) as client:
        yield client
    await settle()
    assert backend.open_connections() == []


async def get(client: webwire.AsyncClient, url: str = URL, **kwargs: Any) -> tuple[str, str]:
    response = await client.get(url, **kwargs)
    assert response.status_code == 200
    return response.http_version, response.text


# -- forced HTTP/3 -------------------------------------------------------------------


@memory_test
async def test_forced_http3_uses_the_urls_own_port(
    backend: MemoryBackend, responder: Responder, quic: FakeQuic
) -> None:
    quic.listening.add((HOST, 443))
    async with open_client(backend, http_versions={"HTTP/3"}) as client:
        assert await get(client) == ("HTTP/3", "h3")
        response = await client.get(URL)
        assert response.http_version == "HTTP/3"
        assert response.extensions["quic_handshake_time"] == pytest.approx(quic.handshake_time)
    assert quic.attempts == [(HOST, 443, HOST)]  # one connection, reused
    assert responder.accepted == 0  # never TCP
    assert quic.tls_built == 1


@memory_test
async def test_forced_http3_to_a_silent_port_raises_connect_timeout(
    backend: MemoryBackend, responder: Responder, quic: FakeQuic
) -> None:
    async with open_client(backend, http_versions={"HTTP/3"}) as client:
        start = backend.monotonic()
        with pytest.raises(ConnectTimeout):
            await client.get(URL)
        assert backend.monotonic() - start == pytest.approx(CONNECT_TIMEOUT)
        # forced: tried again on the next request, never TCP
        with pytest.raises(ConnectTimeout):
            await client.get(URL)
    assert len(quic.attempts) == 2
    assert responder.accepted == 0


@memory_test
async def test_forced_http3_refused_raises_connect_error(
    backend: MemoryBackend, responder: Responder, quic: FakeQuic
) -> None:
    quic.refused.add(443)
    async with open_client(backend, http_versions={"HTTP/3"}) as client:
        with pytest.raises(ConnectError, match="unreachable"):
            await client.get(URL)
        assert client.transport.pool is not None  # type: ignore[attr-defined]
        assert client.transport.pool.connections() == []  # type: ignore[attr-defined]
    assert responder.accepted == 0


@memory_test
async def test_forced_http3_needs_https(backend: MemoryBackend, quic: FakeQuic) -> None:
    async with open_client(backend, http_versions={"HTTP/3"}) as client:
        with pytest.raises(webwire.UnsupportedProtocol, match="https"):
            await client.get(f"http://{HOST}/")
    assert quic.attempts == []


@memory_test
async def test_forced_http3_through_a_proxy_is_refused(
    backend: MemoryBackend, quic: FakeQuic
) -> None:
    async with open_client(
        backend, http_versions={"HTTP/3"}, proxy="http://proxy.test:3128"
    ) as client:
        with pytest.raises(webwire.UnsupportedProtocol, match="proxy"):
            await client.get(URL)
    assert quic.attempts == []


# -- Alt-Svc -------------------------------------------------------------------------


@memory_test
async def test_alt_svc_moves_the_next_requests_to_http3(
    backend: MemoryBackend, responder: Responder, quic: FakeQuic
) -> None:
    responder.alt_svc = 'h3=":8443"; ma=60'
    quic.listening.add((HOST, 8443))
    async with open_client(backend, http3=True) as client:
        assert await get(client) == ("HTTP/1.1", "tcp")
        assert client.alt_svc is not None
        assert [alt.port for alt in client.alt_svc.get(URL)] == [8443]
        assert await get(client) == ("HTTP/3", "h3")
        assert await get(client) == ("HTTP/3", "h3")
        pool = client.transport.pool  # type: ignore[attr-defined]
        versions = sorted(conn.http_version for conn in pool.connections())
        assert versions == ["HTTP/1.1", "HTTP/3"]  # kept apart
    assert quic.attempts == [(HOST, 8443, HOST)]
    assert responder.requests == [b"/"]


@memory_test
async def test_without_http3_alt_svc_is_not_recorded(
    backend: MemoryBackend, responder: Responder, quic: FakeQuic
) -> None:
    async with open_client(backend) as client:
        for _ in range(2):
            assert await get(client) == ("HTTP/1.1", "tcp")
        assert client.alt_svc is not None and len(client.alt_svc) == 0
    assert quic.attempts == []


@memory_test
async def test_alt_svc_to_another_host_keeps_the_origin_as_server_name(
    backend: MemoryBackend, responder: Responder, quic: FakeQuic
) -> None:
    responder.alt_svc = 'h3="alt.test:443"'
    quic.listening.add(("alt.test", 443))
    async with open_client(backend, http3=True) as client:
        assert await get(client) == ("HTTP/1.1", "tcp")
        assert await get(client) == ("HTTP/3", "h3")
    # UDP to the alternative, TLS for the origin (RFC 7838 section 2.1)
    assert quic.attempts == [("alt.test", 443, HOST)]


@memory_test
async def test_alt_svc_expires_after_ma(
    backend: MemoryBackend, responder: Responder, quic: FakeQuic
) -> None:
    responder.alt_svc = 'h3=":443"; ma=30'
    quic.listening.add((HOST, 443))
    limits = webwire.Limits(keepalive_expiry=60.0)
    async with open_client(backend, http3=True, limits=limits) as client:
        assert await get(client) == ("HTTP/1.1", "tcp")
        quic.alt_svc = 'h3=":443"; ma=30'  # refreshed by every HTTP/3 response
        assert await get(client) == ("HTTP/3", "h3")
        await backend.sleep(29.0)
        assert await get(client) == ("HTTP/3", "h3")
        quic.alt_svc = "clear"
        assert await get(client) == ("HTTP/3", "h3")  # the open connection is still used
        assert client.alt_svc is not None and client.alt_svc.get(URL) == []
        await backend.sleep(65.0)  # the HTTP/3 connection expired (keep-alive)
        responder.alt_svc = None
        assert await get(client) == ("HTTP/1.1", "tcp")
        assert len(quic.attempts) == 1
        # an entry not refreshed is used for ma seconds only
        client.alt_svc.add(URL, max_age=30.0)
        await backend.sleep(31.0)
        assert await get(client) == ("HTTP/1.1", "tcp")
    assert len(quic.attempts) == 1


@memory_test
async def test_seeded_cache_tries_http3_first(
    backend: MemoryBackend, responder: Responder, quic: FakeQuic
) -> None:
    responder.alt_svc = None
    quic.listening.add((HOST, 443))
    async with open_client(backend, http3=True) as client:
        assert client.alt_svc is not None
        client.alt_svc.add(URL)
        assert await get(client) == ("HTTP/3", "h3")
    assert responder.accepted == 0


# -- fallback ------------------------------------------------------------------------


@memory_test
async def test_fallback_to_tcp_is_remembered(
    backend: MemoryBackend, responder: Responder, quic: FakeQuic
) -> None:
    responder.alt_svc = 'h3=":443"; ma=86400'
    async with open_client(backend, http3=True) as client:
        assert await get(client) == ("HTTP/1.1", "tcp")
        start = backend.monotonic()
        # UDP dropped: the handshake times out, the request goes over TCP
        assert await get(client) == ("HTTP/1.1", "tcp")
        assert backend.monotonic() - start == pytest.approx(CONNECT_TIMEOUT)
        assert len(quic.attempts) == 1
        # remembered: no QUIC attempt and no wait for the next requests
        start = backend.monotonic()
        assert await get(client) == ("HTTP/1.1", "tcp")
        assert backend.monotonic() == start
        assert len(quic.attempts) == 1
        await backend.sleep(BROKEN_BASE_DELAY - 10)
        assert await get(client) == ("HTTP/1.1", "tcp")
        assert len(quic.attempts) == 1
        await backend.sleep(20)  # 5 minutes passed: tried again, fails again
        assert await get(client) == ("HTTP/1.1", "tcp")
        assert len(quic.attempts) == 2
        await backend.sleep(BROKEN_BASE_DELAY + 10)  # now 10 minutes of waiting
        assert await get(client) == ("HTTP/1.1", "tcp")
        assert len(quic.attempts) == 2
        quic.listening.add((HOST, 443))  # the server's UDP port opens
        await backend.sleep(BROKEN_BASE_DELAY)
        assert await get(client) == ("HTTP/3", "h3")
        assert len(quic.attempts) == 3
        assert client.alt_svc is not None
        assert not client.alt_svc.is_broken(URL)  # reset by the success


@memory_test
async def test_fallback_on_connect_error(
    backend: MemoryBackend, responder: Responder, quic: FakeQuic
) -> None:
    quic.refused.add(443)
    async with open_client(backend, http3=True) as client:
        assert await get(client) == ("HTTP/1.1", "tcp")
        assert await get(client) == ("HTTP/1.1", "tcp")
        assert await get(client) == ("HTTP/1.1", "tcp")
    assert len(quic.attempts) == 1


@memory_test
async def test_waiters_for_a_failing_handshake_go_to_tcp(
    backend: MemoryBackend, responder: Responder, quic: FakeQuic
) -> None:
    responder.alt_svc = None
    results: list[tuple[str, str]] = []
    async with open_client(backend, http3=True) as client:
        assert client.alt_svc is not None
        client.alt_svc.add(URL)

        async def one() -> None:
            results.append(await get(client))

        async with backend.create_task_group() as group:
            for _ in range(5):
                group.start_soon(one)
    assert results == [("HTTP/1.1", "tcp")] * 5
    assert len(quic.attempts) == 1  # the others waited for it, then used TCP


# -- pooling --------------------------------------------------------------------------


@memory_test
async def test_concurrent_requests_share_one_http3_connection(
    backend: MemoryBackend, responder: Responder, quic: FakeQuic
) -> None:
    quic.listening.add((HOST, 443))
    quic.response_delay = 1.0
    results: list[tuple[str, str]] = []
    async with open_client(backend, http_versions={"HTTP/3"}) as client:

        async def one() -> None:
            results.append(await get(client))

        async with backend.create_task_group() as group:
            for _ in range(10):
                group.start_soon(one)
    assert results == [("HTTP/3", "h3")] * 10
    assert len(quic.attempts) == 1
    assert max(len(conn.requests) for conn in quic.connections) == 10


@memory_test
async def test_stream_limit_opens_another_connection(
    backend: MemoryBackend, responder: Responder, quic: FakeQuic
) -> None:
    quic.listening.add((HOST, 443))
    quic.response_delay = 1.0
    quic.max_streams = 2
    async with open_client(backend, http_versions={"HTTP/3"}) as client:
        async with backend.create_task_group() as group:
            for _ in range(5):
                group.start_soon(get, client)
    assert len(quic.connections) == 3


@memory_test
async def test_max_connections_counts_http3(
    backend: MemoryBackend, responder: Responder, quic: FakeQuic
) -> None:
    quic.listening.add((HOST, 443))
    quic.response_delay = 1.0
    quic.max_streams = 1
    limits = webwire.Limits(max_connections=2)
    async with open_client(backend, http_versions={"HTTP/3"}, limits=limits) as client:
        pool_sizes: list[int] = []

        async def one() -> None:
            await get(client)
            pool_sizes.append(len(client.transport.pool.connections()))  # type: ignore[attr-defined]

        async with backend.create_task_group() as group:
            for _ in range(4):
                group.start_soon(one)
    assert len(quic.connections) == 2
    assert max(pool_sizes) <= 2


@memory_test
async def test_trace_signals(backend: MemoryBackend, responder: Responder, quic: FakeQuic) -> None:
    quic.listening.add((HOST, 443))
    signals: list[str] = []

    async def trace(name: str, params: dict[str, Any]) -> None:
        signals.append(name)

    async with open_client(backend, http_versions={"HTTP/3"}) as client:
        await get(client, extensions={"trace": trace})
        await get(client, extensions={"trace": trace})
    assert signals == [
        "connection_create_start",
        "dns_cache_miss",
        "dns_resolvehost_start",
        "dns_resolvehost_end",
        "connection_create_end",
        "connection_reuseconn",
    ]


@memory_test
async def test_dns_goes_through_the_pool_cache(
    backend: MemoryBackend, responder: Responder, quic: FakeQuic
) -> None:
    responder.alt_svc = 'h3="alt.test:443"'
    quic.listening.add(("alt.test", 443))
    limits = webwire.Limits(keepalive_expiry=1.0)
    async with open_client(backend, http3=True, limits=limits) as client:
        await get(client)
        await get(client)
        await backend.sleep(2.0)
        await get(client)  # a new HTTP/3 connection, the address from the cache
    assert backend.resolutions.count(("alt.test", 443)) == 1
    assert len(quic.attempts) == 2


# -- per-request override -------------------------------------------------------------


@memory_test
async def test_per_request_versions(
    backend: MemoryBackend, responder: Responder, quic: FakeQuic
) -> None:
    quic.listening.add((HOST, 443))
    async with open_client(backend) as client:  # http3 off
        h3 = {"http_versions": {"HTTP/3"}}
        assert await get(client, extensions=h3) == ("HTTP/3", "h3")
        assert await get(client) == ("HTTP/1.1", "tcp")
        tcp = {"http_versions": {"HTTP/1.1", "HTTP/2"}}
        assert await get(client, extensions=tcp) == ("HTTP/1.1", "tcp")
    async with open_client(backend, http3=True) as client:
        assert client.alt_svc is not None
        client.alt_svc.add(URL)
        assert await get(client, extensions={"http_versions": ["HTTP/1.1"]}) == (
            "HTTP/1.1",
            "tcp",
        )
        assert await get(client) == ("HTTP/3", "h3")


@memory_test
async def test_per_request_versions_are_validated(
    backend: MemoryBackend, responder: Responder, quic: FakeQuic
) -> None:
    async with open_client(backend) as client:
        for bad in ("HTTP/3", set(), {"HTTP/4"}, 3):
            with pytest.raises(webwire.LocalProtocolError, match="http_versions"):
                await client.get(URL, extensions={"http_versions": bad})
        # HTTP/2 alone, and the server speaks HTTP/1.1 only
        with pytest.raises(webwire.LocalProtocolError, match="only HTTP/2"):
            await client.get(URL, extensions={"http_versions": {"HTTP/2"}})
    async with open_client(backend, http1=False, http2=True) as client:
        with pytest.raises(webwire.LocalProtocolError, match="no version"):
            await client.get(URL, extensions={"http_versions": {"HTTP/1.1"}})


def test_client_options_are_validated() -> None:
    for bad in ({"HTTP/4"}, set(), "HTTP/3", ["HTTP/1.0"]):
        with pytest.raises(ValueError, match="http_versions"):
            webwire.AsyncClient(http_versions=bad)
    with pytest.raises(ValueError, match="contradicts"):
        webwire.AsyncClient(http3=True, http_versions={"HTTP/1.1"})
    with pytest.raises(ValueError, match="contradicts"):
        webwire.Client(http1=False, http_versions={"HTTP/1.1", "HTTP/3"})
    with pytest.raises(ValueError, match="contradicts"):
        webwire.HTTPTransport(http2=False, http_versions={"HTTP/2"})
    # agreeing flags are fine
    webwire.AsyncClient(http3=True, http_versions={"HTTP/2", "HTTP/3"})
    transport = webwire.HTTPTransport(http_versions={"HTTP/3"})
    assert (transport._http1, transport._http2, transport._http3) == (False, False, True)
    with pytest.raises(ValueError, match="at least one"):
        webwire.HTTPTransport(http1=False, http2=False)


def test_missing_qh3_is_named(monkeypatch: pytest.MonkeyPatch) -> None:
    import importlib.util

    real = importlib.util.find_spec
    monkeypatch.setattr(
        importlib.util, "find_spec", lambda name, *a: None if name == "qh3" else real(name, *a)
    )
    with pytest.raises(ImportError, match=r"pip install qh3"):
        webwire.AsyncClient(http3=True)
    with pytest.raises(ImportError, match=r"pip install qh3"):
        webwire.Client(http_versions={"HTTP/3"})
    webwire.Client()  # HTTP/3 off: not needed


# -- WebSocket (RFC 9220) ---------------------------------------------------------------


async def _ws_request(
    client: webwire.AsyncClient, version: str
) -> webwire.Response:
    request = client.build_request(
        "GET",
        "https://h3.test/ws",
        headers={
            "Upgrade": "websocket",
            "Connection": "Upgrade",
            "Sec-WebSocket-Key": "dGhlIHNhbXBsZSBub25jZQ==",
            "Sec-WebSocket-Version": "13",
        },
        extensions={"protocol": "websocket", "http_version": version},
    )
    return await client.send(request, stream=True)


@memory_test
async def test_websocket_auto_uses_http3_with_extended_connect(
    backend: MemoryBackend, responder: Responder, quic: FakeQuic
) -> None:
    quic.listening.add((HOST, 443))
    async with open_client(backend, http3=True) as client:
        assert client.alt_svc is not None
        client.alt_svc.add(URL)
        response = await _ws_request(client, "auto")
        assert response.http_version == "HTTP/3"
        await response.aclose()
    sent = quic.connections[0].requests[0]
    assert sent.method == b"CONNECT"
    assert sent.extensions["protocol"] == "websocket"
    names = {name.lower() for name, _ in sent.headers}
    assert b"upgrade" not in names and b"sec-websocket-key" not in names
    assert b"sec-websocket-version" in names


@memory_test
async def test_websocket_auto_without_extended_connect_uses_tcp(
    backend: MemoryBackend, responder: Responder, quic: FakeQuic
) -> None:
    quic.listening.add((HOST, 443))
    quic.extended_connect = False
    async with open_client(backend, http3=True) as client:
        assert client.alt_svc is not None
        client.alt_svc.add(URL)
        response = await _ws_request(client, "auto")
        assert response.http_version == "HTTP/1.1"  # the responder's plain 200
        await response.aclose()
        with pytest.raises(webwire.LocalProtocolError, match="RFC 9220"):
            await _ws_request(client, "HTTP/3")
    assert quic.connections[0].requests == []


@memory_test
async def test_websocket_http3_forced_without_http3_option(
    backend: MemoryBackend, responder: Responder, quic: FakeQuic
) -> None:
    quic.listening.add((HOST, 443))
    async with open_client(backend) as client:
        response = await _ws_request(client, "HTTP/3")
        assert response.http_version == "HTTP/3"
        await response.aclose()
        # "auto" with HTTP/3 off stays on TCP
        response = await _ws_request(client, "auto")
        assert response.http_version == "HTTP/1.1"
        await response.aclose()


# -- the cache shared by threads of a blocking client ------------------------------------


def test_cache_shared_by_16_threads_of_a_client() -> None:
    client = webwire.Client(http3=True)
    cache = client.alt_svc
    assert cache is not None
    errors: list[BaseException] = []
    barrier = threading.Barrier(16)
    origins = [Origin("https", f"site{n}.test", 443) for n in range(40)]

    def worker(n: int) -> None:
        try:
            barrier.wait()
            for i in range(300):
                origin = origins[(n + i) % len(origins)]
                cache.update(origin, f'h3=":{8000 + n}"; ma=600')
                alt = cache.lookup(origin)
                if alt is not None and i % 5 == 0:
                    cache.mark_broken(origin, alt)
                elif alt is not None:
                    cache.mark_working(origin, alt)
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=worker, args=(n,)) for n in range(16)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    client.close()
    assert errors == []
    assert len(cache) == len(origins)
    for origin in origins:
        alts = cache.get(origin)
        assert len(alts) == 1 and 8000 <= alts[0].port < 8016



@memory_test
async def test_websocket_waits_for_the_servers_settings(
    backend: MemoryBackend, responder: Responder, quic: FakeQuic
) -> None:
    """The connection's ``connect_protocol_enabled`` (which waits for the
    server's SETTINGS) decides, not the property read at once."""
    quic.listening.add((HOST, 443))
    async with open_client(backend, http_versions={"HTTP/3"}) as client:
        await get(client)  # the connection is open
        conn = quic.connections[0]
        conn.supports_extended_connect = False  # SETTINGS not here yet
        waits: list[float] = []

        async def connect_protocol_enabled(timeout: Any, deadline: Any) -> bool:
            waits.append(backend.monotonic())
            await backend.sleep(0.2)
            conn.supports_extended_connect = True
            return True

        conn.connect_protocol_enabled = connect_protocol_enabled  # type: ignore[attr-defined]
        start = backend.monotonic()
        response = await _ws_request(client, "HTTP/3")
        assert response.http_version == "HTTP/3"
        assert waits == [start]
        assert backend.monotonic() - start == pytest.approx(0.2)
        await response.aclose()


@memory_test
async def test_an_address_refused_at_once_is_followed_by_the_other_family(
    backend: MemoryBackend, responder: Responder, quic: FakeQuic, monkeypatch: pytest.MonkeyPatch
) -> None:
    import socket

    async def resolve(host: str, port: int, timeout: float | None) -> list[tuple[int, str]]:
        return [
            (socket.AF_INET6, "::1"),
            (socket.AF_INET6, "::2"),
            (socket.AF_INET, "127.0.0.1"),
            (socket.AF_INET, "127.0.0.2"),
        ]

    monkeypatch.setattr(backend, "_resolve_host", resolve)
    quic.refused_hosts.add("::1")
    quic.listening.add(("127.0.0.1", 443))
    async with open_client(backend, http_versions={"HTTP/3"}) as client:
        assert await get(client) == ("HTTP/3", "h3")
    assert [attempt[:2] for attempt in quic.attempts] == [("::1", 443), ("127.0.0.1", 443)]
    # a silent address is not waited out twice: one timeout, then the error
    quic.attempts.clear()
    quic.refused_hosts.clear()
    quic.listening.clear()
    async with open_client(backend, http_versions={"HTTP/3"}) as client:
        start = backend.monotonic()
        with pytest.raises(ConnectTimeout):
            await client.get(URL)
        assert backend.monotonic() - start == pytest.approx(CONNECT_TIMEOUT)
    assert [attempt[:2] for attempt in quic.attempts] == [("::1", 443)]
