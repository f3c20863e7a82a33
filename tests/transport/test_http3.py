"""HTTP3Connection driven directly against real HTTP/3 servers on 127.0.0.1:
hypercorn (``quic_bind``, aioquic inside) serving the integration app, and a
small aioquic server (``h3_fixtures.py``) for session tickets, trailers,
resets, GOAWAY and extended CONNECT.

Every scenario is a coroutine taking a backend; it runs on asyncio and trio
(anyio) and on the blocking backend through ``webwire._sync.run_sync``.
"""

from __future__ import annotations

import hashlib
import json
import os
import socket
import threading
from collections.abc import AsyncIterator, Callable, Coroutine, Iterator
from typing import Any

import pytest
import yarl

from transport.h3_fixtures import (
    ServerInfo,
    TLSFiles,
    make_tls_files,
    pattern_bytes,
    start_aioquic,
    start_hypercorn,
)
from webwire._backends import get_backend
from webwire._backends.base import Backend
from webwire._config import Limits, Timeout
from webwire._exceptions import (
    ConnectError,
    ConnectTimeout,
    LocalProtocolError,
    ReadError,
    RemoteProtocolError,
)
from webwire._proto.h3 import quic_tls_options
from webwire._sync import run_sync
from webwire._transport._types import Connection, RawResponse, StaleConnection, TransportRequest
from webwire._transport.connect import Origin
from webwire._transport.http3 import HTTP3Connection, SessionTicketStore, connect_http3

Scenario = Callable[..., Coroutine[Any, Any, None]]
MiB = 1024 * 1024
TIMEOUT = Timeout(20.0)


# ------------------------------------------------------------------ fixtures


@pytest.fixture(scope="module")
def h3_tls(tmp_path_factory: pytest.TempPathFactory) -> TLSFiles:
    return make_tls_files(str(tmp_path_factory.mktemp("h3tls")))


@pytest.fixture(scope="module")
def hypercorn_h3(h3_tls: TLSFiles) -> Iterator[ServerInfo]:
    info, stop = start_hypercorn(h3_tls)
    try:
        yield info
    finally:
        stop()


@pytest.fixture(scope="module")
def aioquic_h3(h3_tls: TLSFiles) -> Iterator[ServerInfo]:
    info, stop = start_aioquic(h3_tls)
    try:
        yield info
    finally:
        stop()


@pytest.fixture(scope="module")
def aioquic_h3_short_idle(h3_tls: TLSFiles) -> Iterator[ServerInfo]:
    """The aioquic server with a 0.5 s QUIC idle timeout."""
    info, stop = start_aioquic(h3_tls, idle_timeout=0.5)
    try:
        yield info
    finally:
        stop()


# ------------------------------------------------------------------ helpers


class Client:
    """Opens HTTP3Connections to one server and records releases."""

    def __init__(self, backend: Backend, info: ServerInfo, **limits: Any) -> None:
        self.backend = backend
        self.info = info
        self.limits = Limits(**limits)
        self.releases: list[Connection] = []
        self.authority = f"127.0.0.1:{info.udp_port}".encode()

    async def open(
        self,
        *,
        verify: Any = None,
        tickets: SessionTicketStore | None = None,
        connect_timeout: float = 10.0,
        early_data: bool = False,
    ) -> HTTP3Connection:
        return await connect_http3(
            self.backend,
            Origin("https", "127.0.0.1", self.info.udp_port),
            address=self.info.address,
            server_name="127.0.0.1",
            tls=quic_tls_options(self.info.ca_path if verify is None else verify),
            limits=self.limits,
            connect_timeout=connect_timeout,
            tickets=tickets,
            on_release=self.releases.append,
            early_data=early_data,
        )

    def request(
        self,
        method: bytes,
        path: str,
        body: Any = None,
        headers: list[tuple[bytes, bytes]] | None = None,
        extensions: dict[str, Any] | None = None,
    ) -> TransportRequest:
        url = yarl.URL(f"https://127.0.0.1:{self.info.udp_port}{path}")
        fields = [(b"Host", self.authority), *(headers or [])]
        return TransportRequest(
            method, url, path.encode(), fields, body, TIMEOUT, None, extensions or {}
        )

    async def send(self, conn: HTTP3Connection, request: TransportRequest) -> RawResponse:
        conn.reserve()
        return await conn.handle_request(request)

    async def fetch(
        self, conn: HTTP3Connection, method: bytes, path: str, body: Any = None
    ) -> tuple[RawResponse, bytes]:
        response = await self.send(conn, self.request(method, path, body))
        return response, await read_all(response)


async def read_all(response: RawResponse) -> bytes:
    return b"".join([chunk async for chunk in response.stream])  # type: ignore[attr-defined]


def body_of(chunks: list[bytes]) -> AsyncIterator[bytes]:
    async def gen() -> AsyncIterator[bytes]:
        for chunk in chunks:
            yield chunk

    return gen()


async def run_all(backend: Backend, n: int, fn: Callable[[int], Coroutine[Any, Any, None]]) -> None:
    async with backend.create_task_group() as group:
        for i in range(n):
            group.start_soon(fn, i)


def open_fds() -> int:
    return len(os.listdir("/proc/self/fd"))


# ------------------------------------------------------------------ scenarios


async def s_get_and_post(backend: Backend, info: ServerInfo) -> None:
    client = Client(backend, info)
    conn = await client.open()
    try:
        response, body = await client.fetch(conn, b"GET", "/json")
        assert response.status_code == 200
        assert response.http_version == "HTTP/3"
        assert json.loads(body)["name"] == "webwire"
        payload = pattern_bytes(300_000)
        response, body = await client.fetch(conn, b"POST", "/echo", payload)
        document = json.loads(body)
        assert document["http_version"] == "3"
        assert document["body_sha256"] == hashlib.sha256(payload).hexdigest()
        streamed = [b"a" * 70_000, b"b" * 5, b"c" * 200_000]
        response, body = await client.fetch(conn, b"POST", "/echo", body_of(streamed))
        assert json.loads(body)["body_length"] == 270_005
        # Connection-specific fields are dropped, Host becomes :authority.
        request = client.request(
            b"GET", "/headers", headers=[(b"Connection", b"keep-alive"), (b"X-Test", b"1")]
        )
        response = await client.send(conn, request)
        headers = json.loads(await read_all(response))["headers"]
        assert headers["x-test"] == "1"
        assert "connection" not in headers
        assert len(client.releases) == 4
        assert conn.is_idle() and conn.is_available()
    finally:
        await conn.aclose()
    assert conn.has_expired(backend.monotonic())


async def s_concurrent(backend: Backend, info: ServerInfo) -> None:
    client = Client(backend, info)
    conn = await client.open()
    results: dict[int, bytes] = {}
    resets = info.stats.get("reset_by_client")

    async def one(i: int) -> None:
        response, body = await client.fetch(conn, b"GET", f"/bytes/{1000 + i}")
        assert response.status_code == 200
        results[i] = body

    try:
        await run_all(backend, 100, one)
        assert sorted(results) == list(range(100))
        for i, body in results.items():
            assert body == pattern_bytes(1000 + i)
        assert conn.requests_sent == 100
        assert len(client.releases) == 100
        if resets is not None:  # complete exchanges are not reset
            assert info.stats["reset_by_client"] == resets
    finally:
        await conn.aclose()


async def s_download_64mib(backend: Backend, info: ServerInfo) -> None:
    client = Client(backend, info)
    conn = await client.open()
    try:
        response = await client.send(conn, client.request(b"GET", f"/bytes/{64 * MiB}"))
        digest = hashlib.sha256()
        size = 0
        async for chunk in response.stream:  # type: ignore[attr-defined]
            digest.update(chunk)
            size += len(chunk)
        assert size == 64 * MiB
        assert digest.hexdigest() == hashlib.sha256(pattern_bytes(64 * MiB)).hexdigest()
    finally:
        await conn.aclose()


async def s_upload_64mib(backend: Backend, info: ServerInfo) -> None:
    client = Client(backend, info)
    conn = await client.open()
    try:
        chunk = b"x" * MiB
        response, body = await client.fetch(conn, b"POST", "/count", body_of([chunk] * 64))
        assert response.status_code == 200
        assert body == str(64 * MiB).encode()
        # One bytes body of 16 MiB: queued in pieces, never all at once.
        response, body = await client.fetch(conn, b"POST", "/count", b"y" * (16 * MiB))
        assert body == str(16 * MiB).encode()
    finally:
        await conn.aclose()


async def s_cancel_one_stream(backend: Backend, info: ServerInfo) -> None:
    client = Client(backend, info)
    conn = await client.open()
    before = info.stats["reset_by_client"]
    try:
        responses = [
            await client.send(conn, client.request(b"GET", f"/bytes/{8 * MiB}")) for _ in range(3)
        ]
        iterator = responses[1].stream.__aiter__()
        first = await iterator.__anext__()
        assert first
        await responses[1].stream.aclose()  # resets stream 1 only
        assert len(client.releases) == 1
        for response in (responses[0], responses[2]):
            assert await read_all(response) == pattern_bytes(8 * MiB)
        response, body = await client.fetch(conn, b"GET", "/bytes/10")
        assert body == pattern_bytes(10)
        assert info.stats["reset_by_client"] > before
    finally:
        await conn.aclose()


async def s_trailers_reset_status(backend: Backend, info: ServerInfo) -> None:
    client = Client(backend, info)
    conn = await client.open()
    try:
        response = await client.send(conn, client.request(b"GET", "/trailers"))
        assert await read_all(response) == b"body"
        assert response.stream.trailers == [(b"x-checksum", b"abc")]  # type: ignore[attr-defined]
        response = await client.send(conn, client.request(b"GET", "/reset"))
        with pytest.raises(RemoteProtocolError, match="H3_INTERNAL_ERROR"):
            await read_all(response)
        response, _ = await client.fetch(conn, b"GET", "/status/418")
        assert response.status_code == 418
        assert conn.is_available()
    finally:
        await conn.aclose()


async def s_goaway(backend: Backend, info: ServerInfo) -> None:
    client = Client(backend, info)
    conn = await client.open()
    try:
        _, body = await client.fetch(conn, b"GET", "/goaway")
        assert body == b"bye"
        for _ in range(1000):
            if not conn.is_available():
                break
            await backend.sleep(0.01)
        assert not conn.is_available()
        assert conn.has_expired(backend.monotonic())  # idle, after GOAWAY
        with pytest.raises(StaleConnection) as info_exc:
            await client.send(conn, client.request(b"GET", "/bytes/1"))
        assert info_exc.value.unprocessed
    finally:
        await conn.aclose()


async def s_resumption(backend: Backend, info: ServerInfo) -> None:
    client = Client(backend, info)
    tickets = SessionTicketStore(backend)
    first = await client.open(tickets=tickets)
    try:
        await client.fetch(first, b"GET", "/bytes/10")
        for _ in range(1000):  # the ticket comes after the handshake
            if len(tickets):
                break
            await backend.sleep(0.01)
        assert not first.session_resumed
    finally:
        await first.aclose()
    assert len(tickets) == 1
    resumed_before = info.stats["resumed"]
    second = await client.open(tickets=tickets)
    try:
        assert second.session_resumed
        _, body = await client.fetch(second, b"GET", "/bytes/10")
        assert body == pattern_bytes(10)
        assert info.stats["resumed"] == resumed_before + 1
    finally:
        await second.aclose()


async def s_zero_rtt(backend: Backend, info: ServerInfo) -> None:
    client = Client(backend, info)
    tickets = SessionTicketStore(backend)
    first = await client.open(tickets=tickets, early_data=True)  # no ticket: full handshake
    try:
        assert first._proto.handshake_complete
        await client.fetch(first, b"GET", "/bytes/10")
        for _ in range(1000):
            if len(tickets):
                break
            await backend.sleep(0.01)
    finally:
        await first.aclose()
    early_before = info.stats["early_data"]
    requests_before = info.stats["early_requests"]
    second = await client.open(tickets=tickets, early_data=True)
    try:
        # The GET goes as 0-RTT data; the POST waits for the handshake.
        _, body = await client.fetch(second, b"GET", "/bytes/20")
        assert body == pattern_bytes(20)
        assert second.session_resumed and second.early_data_accepted
        _, body = await client.fetch(second, b"POST", "/count", b"p" * 1000)
        assert body == b"1000"
        assert info.stats["early_data"] == early_before + 1
        # Whether the GET itself went before the handshake completed depends
        # on thread timing here; test_http3_memory checks it on a fake clock.
        assert info.stats["early_requests"] in (requests_before, requests_before + 1)
    finally:
        await second.aclose()


async def s_extended_connect(backend: Backend, info: ServerInfo) -> None:
    client = Client(backend, info)
    conn = await client.open()
    try:
        # SETTINGS may come just after the handshake: waited for.
        assert await conn.connect_protocol_enabled(TIMEOUT, None)
        assert conn.supports_extended_connect
        request = client.request(b"CONNECT", "/tunnel", extensions={"protocol": "echo"})
        response = await client.send(conn, request)
        assert response.status_code == 200
        stream = response.extensions["detach"]()
        assert stream.get_extra_info("http_version") == "HTTP/3"
        await stream.write(b"hello over h3", 5.0)
        got = b""
        while len(got) < 13:
            got += await stream.read(100, 5.0)
        assert got == b"hello over h3"
        big = pattern_bytes(3 * MiB)
        await stream.write(big, 10.0)
        got = b""
        while len(got) < len(big):
            got += await stream.read(MiB, 10.0)
        assert got == big
        await stream.send_eof()
        assert await stream.read(10, 5.0) == b""
        await stream.aclose()
        # The connection goes on serving requests.
        response, body = await client.fetch(conn, b"GET", "/bytes/5")
        assert body == pattern_bytes(5)
        # :protocol needs CONNECT.
        with pytest.raises(LocalProtocolError):
            await client.send(
                conn, client.request(b"GET", "/x", extensions={"protocol": "echo"})
            )
    finally:
        await conn.aclose()


async def s_websocket_over_h3(backend: Backend, info: ServerInfo) -> None:
    """RFC 9220 against hypercorn: extended CONNECT, then webwire's
    WebSocket connection over the detached stream, unchanged."""
    from webwire._proto.websocket import Handshake
    from webwire.websocket._connection import ClientConnection

    client = Client(backend, info)
    conn = await client.open()
    try:
        assert await conn.connect_protocol_enabled(TIMEOUT, None)
        handshake = Handshake(
            secure=True, host="127.0.0.1", port=info.udp_port, resource="/ws", compression=None
        )
        fields = [(n.encode(), v.encode()) for n, v in handshake.request_headers()]
        request = client.request(
            b"CONNECT", "/ws", headers=fields, extensions={"protocol": "websocket"}
        )
        response = await client.send(conn, request)
        assert response.status_code == 200
        stream = response.extensions["detach"]()
        handshake.process_response(
            response.status_code,
            "",
            [(n.decode(), v.decode()) for n, v in response.headers],
            http_version="HTTP/3",
        )
        ws = ClientConnection(
            backend, stream, handshake.open(), http_version="HTTP/3", ping_interval=None
        )
        await ws._start()
        await ws.send("hello over HTTP/3")
        assert await ws.recv() == "hello over HTTP/3"
        await ws.send(b"\x00" * 100_000)
        assert await ws.recv() == b"\x00" * 100_000
        await ws.close()
        # The connection still serves requests.
        _, body = await client.fetch(conn, b"GET", "/json")
        assert json.loads(body)["name"] == "webwire"
    finally:
        await conn.aclose()


async def s_server_idle_timeout(backend: Backend, info: ServerInfo) -> None:
    # Kept for 0 s once idle: no keep-alive PING, so the server's 0.5 s idle
    # timeout (the smaller of both, RFC 9000 section 10.1) ends it.
    client = Client(backend, info, keepalive_expiry=0.0)
    conn = await client.open()
    try:
        assert conn._proto.idle_timeout == 0.5
        _, body = await client.fetch(conn, b"GET", "/bytes/3")
        assert body == pattern_bytes(3)
        for _ in range(1000):
            if conn._proto.terminated is not None:
                break
            await backend.sleep(0.01)
        terminated = conn._proto.terminated
        assert terminated is not None and "idle" in terminated.reason.lower()
        assert conn.has_expired(backend.monotonic())
        assert not conn.is_available()
        with pytest.raises(StaleConnection) as caught:
            await client.send(conn, client.request(b"GET", "/bytes/1"))
        assert caught.value.unprocessed
    finally:
        await conn.aclose()


async def s_certificate_failure(backend: Backend, info: ServerInfo, other_ca: str) -> None:
    client = Client(backend, info)
    fds = open_fds()
    with pytest.raises(ConnectError, match=r"certificate .*failed to verify"):
        await client.open(verify=other_ca)
    assert open_fds() == fds


async def s_no_server(backend: Backend) -> None:
    # A bound UDP socket that never answers: the handshake times out.
    silent = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    silent.bind(("127.0.0.1", 0))
    try:
        info = ServerInfo(silent.getsockname()[1], "")
        client = Client(backend, info)
        with pytest.raises(ConnectTimeout, match="no QUIC handshake"):
            await client.open(verify=False, connect_timeout=0.3)
    finally:
        silent.close()
    # Nothing listens on the port: ICMP port unreachable, or the timeout.
    with pytest.raises((ConnectError, ConnectTimeout)):
        await client.open(verify=False, connect_timeout=2.0)


async def s_close_leaks_nothing(backend: Backend, info: ServerInfo) -> None:
    client = Client(backend, info)
    fds = open_fds()
    threads = threading.active_count()
    conn = await client.open()
    response = await client.send(conn, client.request(b"GET", f"/bytes/{4 * MiB}"))
    await conn.aclose()
    with pytest.raises(ReadError):
        await read_all(response)
    assert open_fds() == fds
    assert threading.active_count() == threads
    # close() (synchronous) too.
    conn = await client.open()
    await client.fetch(conn, b"GET", "/bytes/1")
    conn.close()
    assert conn.has_expired(backend.monotonic())
    for _ in range(1000):
        if open_fds() == fds and threading.active_count() == threads:
            break
        await backend.sleep(0.01)
    assert open_fds() == fds
    assert threading.active_count() == threads


# ------------------------------------------------------------------ runners


SCENARIOS_HYPERCORN: list[Scenario] = [
    s_get_and_post,
    s_concurrent,
    s_download_64mib,
    s_websocket_over_h3,
]
SCENARIOS_AIOQUIC: list[Scenario] = [
    s_concurrent,
    s_upload_64mib,
    s_cancel_one_stream,
    s_trailers_reset_status,
    s_goaway,
    s_resumption,
    s_zero_rtt,
    s_extended_connect,
    s_close_leaks_nothing,
]


@pytest.mark.anyio
@pytest.mark.parametrize("scenario", SCENARIOS_HYPERCORN, ids=lambda s: s.__name__)
async def test_hypercorn_async(scenario: Scenario, hypercorn_h3: ServerInfo) -> None:
    await scenario(get_backend(), hypercorn_h3)


@pytest.mark.parametrize("scenario", SCENARIOS_HYPERCORN, ids=lambda s: s.__name__)
def test_hypercorn_sync(scenario: Scenario, hypercorn_h3: ServerInfo) -> None:
    run_sync(scenario(get_backend("sync"), hypercorn_h3))


@pytest.mark.anyio
@pytest.mark.parametrize("scenario", SCENARIOS_AIOQUIC, ids=lambda s: s.__name__)
async def test_aioquic_async(scenario: Scenario, aioquic_h3: ServerInfo) -> None:
    await scenario(get_backend(), aioquic_h3)


@pytest.mark.parametrize("scenario", SCENARIOS_AIOQUIC, ids=lambda s: s.__name__)
def test_aioquic_sync(scenario: Scenario, aioquic_h3: ServerInfo) -> None:
    run_sync(scenario(get_backend("sync"), aioquic_h3))


@pytest.mark.anyio
async def test_server_idle_timeout_async(aioquic_h3_short_idle: ServerInfo) -> None:
    await s_server_idle_timeout(get_backend(), aioquic_h3_short_idle)


def test_server_idle_timeout_sync(aioquic_h3_short_idle: ServerInfo) -> None:
    run_sync(s_server_idle_timeout(get_backend("sync"), aioquic_h3_short_idle))


@pytest.mark.anyio
async def test_certificate_failure_async(aioquic_h3: ServerInfo, h3_tls: TLSFiles) -> None:
    await s_certificate_failure(get_backend(), aioquic_h3, h3_tls.other_ca_path)


def test_certificate_failure_sync(aioquic_h3: ServerInfo, h3_tls: TLSFiles) -> None:
    run_sync(s_certificate_failure(get_backend("sync"), aioquic_h3, h3_tls.other_ca_path))


@pytest.mark.anyio
async def test_no_server_async() -> None:
    await s_no_server(get_backend())


def test_no_server_sync() -> None:
    run_sync(s_no_server(get_backend("sync")))


@pytest.mark.anyio
@pytest.mark.parametrize("anyio_backend", ["trio"])
async def test_sync_close_ends_background_tasks_trio(
    aioquic_h3: ServerInfo, anyio_backend: str
) -> None:
    """On trio the background tasks run in a system task; a connection
    closed with the synchronous ``close()`` (as the pool closes them) must
    not leave that task parked until the run ends."""
    import trio

    living = trio.lowlevel.current_statistics().tasks_living
    client = Client(get_backend(), aioquic_h3)
    conn = await client.open()
    response, body = await client.fetch(conn, b"GET", "/bytes/10")
    assert response.status_code == 200 and len(body) == 10
    assert trio.lowlevel.current_statistics().tasks_living > living
    conn.close()
    with trio.fail_after(10):
        while trio.lowlevel.current_statistics().tasks_living > living:
            await trio.sleep(0.01)
