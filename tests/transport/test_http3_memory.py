"""HTTP3Connection on the in-memory backend with a fake clock: an aioquic
HTTP/3 server runs over a MemoryDatagramSocket (its clock is trio's fake
clock too), behind links that lose, reorder and duplicate datagrams.
Transfers must complete with every byte; timeouts, the QUIC idle timeout,
keep-alive PINGs and the per-stream receive bound are checked on the fake
clock, where every wait is exact and takes no real time.
"""

from __future__ import annotations

import hashlib
import random
import threading
from collections.abc import AsyncIterator
from typing import Any

import pytest
import trio
import trustme
import yarl
from aioquic.buffer import Buffer
from aioquic.h3.connection import H3_ALPN, H3Connection
from aioquic.h3.events import DataReceived, HeadersReceived
from aioquic.quic.configuration import QuicConfiguration
from aioquic.quic.connection import QuicConnection
from aioquic.quic.packet import pull_quic_header

import webwire._transport._h3_engine as h3_engine
from webwire._backends import get_backend
from webwire._backends.memory import MemoryBackend, MemoryDatagramSocket, memory_test
from webwire._config import Limits, Timeout
from webwire._exceptions import ConnectError, ConnectTimeout, ReadError, ReadTimeout
from webwire._proto.h3 import quic_tls_options
from webwire._sync import run_sync
from webwire._transport._types import RawResponse, StaleConnection, TransportRequest
from webwire._transport.connect import Origin
from webwire._transport.http3 import HTTP3Connection, SessionTicketStore, connect_http3

HOST = "127.0.0.1"
PORT = 443
MiB = 1024 * 1024


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    directory = tmp_path_factory.mktemp("h3mem")
    ca = trustme.CA()
    cert = ca.issue_cert(HOST, "localhost")
    paths = {
        "ca": str(directory / "ca.pem"),
        "cert": str(directory / "cert.pem"),
        "key": str(directory / "key.pem"),
    }
    ca.cert_pem.write_to_path(paths["ca"])
    cert.cert_chain_pems[0].write_to_path(paths["cert"])
    cert.private_key_pem.write_to_path(paths["key"])
    return paths


def pattern(n: int) -> bytes:
    return (bytes(range(256)) * (n // 256 + 1))[:n]


class Server:
    """aioquic's HTTP/3 server side on each in-memory datagram path.

    Routes: ``/bytes/{n}``, ``POST /count`` (the body's length),
    ``/delay/{s}`` (answers after ``s`` virtual seconds), ``POST /reject``
    (413 as soon as the head arrives, the body never read).

    Attributes:
        duplicate: Fraction of datagrams, each way, handled twice.
        resets: Streams the client reset or stopped.
    """

    def __init__(self, pki: dict[str, str], *, idle_timeout: float = 60.0, seed: int = 7):
        self.config = QuicConfiguration(
            is_client=False, alpn_protocols=H3_ALPN, idle_timeout=idle_timeout
        )
        self.config.load_cert_chain(pki["cert"], pki["key"])
        self.duplicate = 0.0
        self.rng = random.Random(seed)
        self.resets = 0
        self.connections = 0
        self.tickets: dict[bytes, Any] = {}
        self.early_requests = 0

    async def __call__(self, sock: MemoryDatagramSocket) -> None:
        from webwire._exceptions import ReadError as MemReadError
        from webwire._exceptions import ReadTimeout as MemReadTimeout

        peer = sock.get_extra_info("peername")
        quic: QuicConnection | None = None
        h3: H3Connection | None = None
        counts: dict[int, int] = {}
        paths: dict[int, str] = {}
        pending: list[tuple[float, int]] = []

        async def send() -> None:
            assert quic is not None
            for data, _ in quic.datagrams_to_send(trio.current_time()):
                await sock.send(data)
                if self.rng.random() < self.duplicate:
                    await sock.send(data)

        while True:
            now = trio.current_time()
            deadlines = [t for t, _ in pending]
            if quic is not None and quic.get_timer() is not None:
                deadlines.append(quic.get_timer())  # type: ignore[arg-type]
            # At least 1 ms: aioquic may keep a timer at "now" (pacing), which
            # would spin on a fake clock that only moves when all wait.
            timeout = None if not deadlines else max(0.001, min(deadlines) - now)
            try:
                data = await sock.receive(timeout)
            except MemReadTimeout:
                data = None
            except MemReadError:
                return
            now = trio.current_time()
            if data is not None:
                if quic is None:
                    header = pull_quic_header(Buffer(data=data), host_cid_length=8)
                    quic = QuicConnection(
                        configuration=self.config,
                        original_destination_connection_id=header.destination_cid,
                        session_ticket_fetcher=lambda key: self.tickets.get(key),
                        session_ticket_handler=lambda t: self.tickets.__setitem__(t.ticket, t),
                    )
                    h3 = H3Connection(quic)
                    self.connections += 1
                for _ in range(2 if self.rng.random() < self.duplicate else 1):
                    quic.receive_datagram(data, peer, now)
            assert quic is not None and h3 is not None
            timer = quic.get_timer()
            if timer is not None and timer <= now:
                quic.handle_timer(now)
            for due, stream_id in [p for p in pending if p[0] <= now]:
                pending.remove((due, stream_id))
                h3.send_headers(stream_id, [(b":status", b"200")])
                h3.send_data(stream_id, b"late", end_stream=True)
            while (event := quic.next_event()) is not None:
                name = type(event).__name__
                if name in ("StreamReset", "StopSendingReceived"):
                    self.resets += 1
                if name == "ConnectionTerminated":
                    await send()
                    return
                for h3_event in h3.handle_event(event):
                    if isinstance(h3_event, HeadersReceived):
                        self.early_requests += not quic._handshake_complete
                        path = dict(h3_event.headers)[b":path"].decode()
                        paths[h3_event.stream_id] = path
                        counts[h3_event.stream_id] = 0
                        if path == "/reject":  # answers before the body
                            h3.send_headers(h3_event.stream_id, [(b":status", b"413")])
                            h3.send_data(h3_event.stream_id, b"too big", end_stream=True)
                        elif h3_event.stream_ended:
                            self.route(h3, h3_event.stream_id, path, 0, pending)
                    elif isinstance(h3_event, DataReceived):
                        counts[h3_event.stream_id] += len(h3_event.data)
                        if h3_event.stream_ended and paths[h3_event.stream_id] != "/reject":
                            path = paths[h3_event.stream_id]
                            count = counts[h3_event.stream_id]
                            self.route(h3, h3_event.stream_id, path, count, pending)
            await send()

    def route(
        self, h3: H3Connection, stream_id: int, path: str, count: int, pending: list[Any]
    ) -> None:
        if path.startswith("/bytes/"):
            n = int(path[7:])
            h3.send_headers(stream_id, [(b":status", b"200")])
            h3.send_data(stream_id, pattern(n), end_stream=True)
        elif path == "/count":
            h3.send_headers(stream_id, [(b":status", b"200")])
            h3.send_data(stream_id, str(count).encode(), end_stream=True)
        elif path.startswith("/delay/"):
            pending.append((trio.current_time() + float(path[7:]), stream_id))
        else:
            h3.send_headers(stream_id, [(b":status", b"404")], end_stream=True)


async def open_conn(
    backend: MemoryBackend,
    pki: dict[str, str],
    *,
    connect_timeout: float = 30.0,
    port: int = PORT,
    tickets: SessionTicketStore | None = None,
    early_data: bool = False,
    **limits: Any,
) -> HTTP3Connection:
    return await connect_http3(
        backend,
        Origin("https", HOST, port),
        address=(HOST, port),
        server_name=HOST,
        tls=quic_tls_options(pki["ca"]),
        limits=Limits(**limits),
        connect_timeout=connect_timeout,
        tickets=tickets,
        on_release=lambda conn: None,
        early_data=early_data,
    )


def request(method: bytes, path: str, body: Any = None, timeout: float = 60.0) -> TransportRequest:
    url = yarl.URL(f"https://{HOST}{path}")
    return TransportRequest(
        method, url, path.encode(), [(b"Host", HOST.encode())], body, Timeout(timeout), None
    )


async def send(conn: HTTP3Connection, req: TransportRequest) -> RawResponse:
    conn.reserve()
    return await conn.handle_request(req)


async def read_all(response: RawResponse) -> bytes:
    return b"".join([chunk async for chunk in response.stream])  # type: ignore[attr-defined]


# ------------------------------------------------------------------ lossy links


@memory_test
async def test_lossy_link_download_and_upload(pki: dict[str, str]) -> None:
    backend = MemoryBackend()
    server = Server(pki)
    server.duplicate = 0.05
    backend.serve_udp(HOST, PORT, server, loss=0.05, delay=0.01, jitter=0.005, seed=11)
    conn = await open_conn(backend, pki)
    try:
        response = await send(conn, request(b"GET", f"/bytes/{2 * MiB}"))
        body = await read_all(response)
        assert len(body) == 2 * MiB
        assert hashlib.sha256(body).digest() == hashlib.sha256(pattern(2 * MiB)).digest()

        async def upload() -> AsyncIterator[bytes]:
            for _ in range(8):
                yield b"u" * (128 * 1024)

        response = await send(conn, request(b"POST", "/count", upload()))
        assert await read_all(response) == str(MiB).encode()
        # Several at once over the same lossy link.
        results: dict[int, bytes] = {}

        async def one(i: int) -> None:
            results[i] = await read_all(await send(conn, request(b"GET", f"/bytes/{5000 + i}")))

        async with backend.create_task_group() as group:
            for i in range(20):
                group.start_soon(one, i)
        assert all(results[i] == pattern(5000 + i) for i in range(20))
    finally:
        await conn.aclose()
    assert backend.open_connections() == []


# ------------------------------------------------------------------ timers


@memory_test
async def test_connect_timeout_and_refused(pki: dict[str, str]) -> None:
    backend = MemoryBackend()
    backend.serve_udp(HOST, PORT, None, silent=True)
    start = trio.current_time()
    with pytest.raises(ConnectTimeout, match="no QUIC handshake"):
        await open_conn(backend, pki, connect_timeout=3.0)
    assert trio.current_time() - start == pytest.approx(3.0)
    other = MemoryBackend()
    with pytest.raises(ConnectError):
        await open_conn(other, pki)
    assert backend.open_connections() == []


@memory_test
async def test_read_timeout_resets_stream(pki: dict[str, str]) -> None:
    backend = MemoryBackend()
    server = Server(pki)
    backend.serve_udp(HOST, PORT, server)
    conn = await open_conn(backend, pki)
    try:
        start = trio.current_time()
        with pytest.raises(ReadTimeout):
            await send(conn, request(b"GET", "/delay/100", timeout=5.0))
        assert trio.current_time() - start == pytest.approx(5.0)
        response = await send(conn, request(b"GET", "/delay/2"))
        assert await read_all(response) == b"late"
        assert server.resets >= 1
        assert conn.is_idle() and conn.is_available()
    finally:
        await conn.aclose()


@memory_test
async def test_server_idle_timeout(pki: dict[str, str]) -> None:
    backend = MemoryBackend()
    backend.serve_udp(HOST, PORT, Server(pki, idle_timeout=10.0))
    conn = await open_conn(backend, pki, keepalive_expiry=1.0)
    try:
        assert await read_all(await send(conn, request(b"GET", "/bytes/3"))) == pattern(3)
        await trio.sleep(3.0)
        # Past keep-alive expiry: no PING keeps it, but it is not dead yet.
        assert conn.has_expired(backend.monotonic())
        assert conn._proto.terminated is None
        await trio.sleep(20.0)
        assert conn._proto.terminated is not None
        assert not conn.is_available()
        assert backend.open_connections() == []  # the dead connection let its socket go
    finally:
        await conn.aclose()


@memory_test
async def test_keepalive_ping(pki: dict[str, str]) -> None:
    backend = MemoryBackend()
    server = Server(pki, idle_timeout=10.0)
    backend.serve_udp(HOST, PORT, server)
    conn = await open_conn(backend, pki, keepalive_expiry=None)
    try:
        await trio.sleep(120.0)  # twelve idle timeouts of the server
        assert conn._proto.terminated is None
        assert not conn.has_expired(backend.monotonic())
        assert await read_all(await send(conn, request(b"GET", "/bytes/4"))) == pattern(4)
        assert server.connections == 1
    finally:
        await conn.aclose()


@memory_test
async def test_in_flight_request_fails_when_connection_dies(pki: dict[str, str]) -> None:
    backend = MemoryBackend()
    backend.serve_udp(HOST, PORT, Server(pki))
    conn = await open_conn(backend, pki)
    response = await send(conn, request(b"GET", f"/bytes/{MiB}"))
    conn.close()
    with pytest.raises(ReadError):
        await read_all(response)
    assert conn.has_expired(backend.monotonic())
    await conn.aclose()
    assert backend.open_connections() == []


@memory_test
async def test_upload_is_queued_in_bounded_pieces(pki: dict[str, str]) -> None:
    backend = MemoryBackend()
    backend.serve_udp(HOST, PORT, Server(pki), delay=0.02)
    conn = await open_conn(backend, pki)
    proto = conn._proto
    queued: list[int] = []
    send_data = proto.send_data

    def spy(stream_id: int, data: Any, *, end_stream: bool = False) -> None:
        send_data(stream_id, data, end_stream=end_stream)
        queued.append(proto.send_buffer_size(stream_id))

    proto.send_data = spy  # type: ignore[method-assign]
    try:
        body = b"b" * (16 * MiB)
        response = await send(conn, request(b"POST", "/count", body))
        assert await read_all(response) == str(16 * MiB).encode()
        # Never more than the limit plus one piece waits in qh3.
        assert max(queued) <= h3_engine.SEND_BUFFER_LIMIT + h3_engine._CHUNK
        assert len(queued) >= 16 * MiB // h3_engine._CHUNK
    finally:
        await conn.aclose()


@memory_test
async def test_early_response_ends_upload(pki: dict[str, str]) -> None:
    backend = MemoryBackend()
    server = Server(pki)
    backend.serve_udp(HOST, PORT, server)
    conn = await open_conn(backend, pki)
    produced: list[int] = []
    closed: list[bool] = []

    async def endless() -> AsyncIterator[bytes]:
        try:
            while True:
                produced.append(1)
                yield b"z" * 65536
        finally:
            closed.append(True)

    try:
        response = await send(conn, request(b"POST", "/reject", endless()))
        assert response.status_code == 413
        assert await read_all(response) == b"too big"
        assert closed == [True]
        assert len(produced) < 200  # stopped long before 12 MiB
        await trio.sleep(0.1)  # the reset goes out with the next transmission
        assert server.resets >= 1  # the unfinished upload was reset
        assert await read_all(await send(conn, request(b"GET", "/bytes/7"))) == pattern(7)
    finally:
        await conn.aclose()


@memory_test
async def test_cancelled_request_resets_its_stream_only(pki: dict[str, str]) -> None:
    backend = MemoryBackend()
    server = Server(pki)
    backend.serve_udp(HOST, PORT, server)
    conn = await open_conn(backend, pki)
    try:
        with trio.move_on_after(1.0) as scope:
            await send(conn, request(b"GET", "/delay/30"))
        assert scope.cancelled_caught
        assert conn.is_idle()
        await trio.sleep(0.1)
        assert server.resets >= 1
        assert await read_all(await send(conn, request(b"GET", "/bytes/9"))) == pattern(9)
    finally:
        await conn.aclose()


@memory_test
async def test_zero_rtt(pki: dict[str, str]) -> None:
    backend = MemoryBackend()
    server = Server(pki)
    backend.serve_udp(HOST, PORT, server, delay=0.02)
    tickets = SessionTicketStore(backend)
    conn = await open_conn(backend, pki, tickets=tickets, early_data=True)
    await read_all(await send(conn, request(b"GET", "/bytes/1")))
    await trio.sleep(0.1)
    await conn.aclose()
    assert server.early_requests == 0
    start = trio.current_time()
    conn = await open_conn(backend, pki, tickets=tickets, early_data=True)
    try:
        assert trio.current_time() == start  # no round trip before the request
        assert await read_all(await send(conn, request(b"GET", "/bytes/5"))) == pattern(5)
        assert server.early_requests == 1  # it came before the handshake completed
        assert trio.current_time() - start == pytest.approx(0.04, abs=0.005)  # one round trip
        assert conn.early_data_accepted and conn.session_resumed
        # Not safe to replay: waits for the handshake (done by now), not early.
        response = await send(conn, request(b"POST", "/count", b"abc"))
        assert await read_all(response) == b"3"
        assert server.early_requests == 1
        await trio.sleep(0.1)
    finally:
        await conn.aclose()
    # A POST first on an early connection waits for the handshake.
    conn = await open_conn(backend, pki, tickets=tickets, early_data=True)
    try:
        assert not conn._proto.handshake_complete
        response = await send(conn, request(b"POST", "/count", b"abcd"))
        assert await read_all(response) == b"4"
        assert server.early_requests == 1
    finally:
        await conn.aclose()


@memory_test
async def test_early_data_handshake_timeout(pki: dict[str, str]) -> None:
    backend = MemoryBackend()
    backend.serve_udp(HOST, PORT, Server(pki))
    backend.serve_udp(HOST, 444, None, silent=True)
    tickets = SessionTicketStore(backend)
    conn = await open_conn(backend, pki, tickets=tickets)
    await read_all(await send(conn, request(b"GET", "/bytes/1")))
    await trio.sleep(0.1)
    await conn.aclose()
    ticket = tickets.get(HOST, PORT)
    assert ticket is not None
    tickets.add(HOST, 444, ticket)  # the same server name, now silent
    start = trio.current_time()
    conn = await open_conn(
        backend, pki, port=444, tickets=tickets, early_data=True, connect_timeout=3.0
    )
    assert trio.current_time() == start  # returned before any handshake
    with pytest.raises(StaleConnection) as caught:
        await send(conn, request(b"GET", "/bytes/1"))
    assert isinstance(caught.value.error, ConnectTimeout)
    assert trio.current_time() - start == pytest.approx(3.0)
    assert conn.has_expired(backend.monotonic())
    with pytest.raises(StaleConnection):  # nothing else is sent on it
        await send(conn, request(b"POST", "/count", b"x"))
    await conn.aclose()
    assert backend.open_connections() == []


# ------------------------------------------------------------------ bounded buffers


@memory_test
async def test_unread_stream_pauses_receiving(pki: dict[str, str]) -> None:
    backend = MemoryBackend()
    backend.serve_udp(HOST, PORT, Server(pki))
    conn = await open_conn(backend, pki)
    try:
        response = await send(conn, request(b"GET", f"/bytes/{12 * MiB}"))
        await trio.sleep(5.0)  # nobody reads: the receiver pauses
        state = response.stream._state  # type: ignore[attr-defined]
        assert state.over
        assert state.buffered <= h3_engine.STREAM_BUFFER_LIMIT + 4 * MiB
        assert not conn.is_available()  # new requests go elsewhere meanwhile
        body = await read_all(response)
        assert len(body) == 12 * MiB and body == pattern(12 * MiB)
        assert conn.is_available()
    finally:
        await conn.aclose()


@memory_test
async def test_unread_stream_reset_past_hard_limit(
    pki: dict[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(h3_engine, "STREAM_BUFFER_LIMIT", 256 * 1024)
    monkeypatch.setattr(h3_engine, "STREAM_BUFFER_HARD_LIMIT", 2 * MiB)
    backend = MemoryBackend()
    server = Server(pki)
    backend.serve_udp(HOST, PORT, server)
    conn = await open_conn(backend, pki)
    try:
        unread = await send(conn, request(b"GET", f"/bytes/{6 * MiB}"))
        # Reading another response keeps the connection receiving ...
        other = await send(conn, request(b"GET", f"/bytes/{6 * MiB}"))
        assert await read_all(other) == pattern(6 * MiB)
        # ... and the stream nobody read was reset past the hard limit.
        with pytest.raises(ReadError, match="not read"):
            await read_all(unread)
        assert server.resets >= 1
        assert conn.is_available()
    finally:
        await conn.aclose()


@memory_test
async def test_upload_while_another_stream_is_unread(
    pki: dict[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(h3_engine, "STREAM_BUFFER_LIMIT", 256 * 1024)
    monkeypatch.setattr(h3_engine, "SEND_BUFFER_LIMIT", 64 * 1024)
    backend = MemoryBackend()
    backend.serve_udp(HOST, PORT, Server(pki), delay=0.005)
    conn = await open_conn(backend, pki)
    try:
        unread = await send(conn, request(b"GET", f"/bytes/{3 * MiB}"))
        start = trio.current_time()
        response = await send(conn, request(b"POST", "/count", b"q" * (4 * MiB), timeout=30.0))
        assert await read_all(response) == str(4 * MiB).encode()
        assert trio.current_time() - start < 30.0
        assert await read_all(unread) == pattern(3 * MiB)
    finally:
        await conn.aclose()


# ------------------------------------------------------------------ tickets


def test_session_ticket_store_many_threads() -> None:
    store = SessionTicketStore(get_backend("sync"))
    tickets = [object() for _ in range(50)]
    errors: list[BaseException] = []

    def work(n: int) -> None:
        try:
            for i in range(300):
                name = f"host{(n + i) % 300}"
                store.add(name, 443, tickets[i % 50])  # type: ignore[arg-type]
                store._tickets.get((name, 443))
                if i % 97 == 0:
                    store.clear()
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=work, args=(n,)) for n in range(16)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert not errors
    assert len(store) <= 256


def test_session_ticket_store_keeps_latest_per_server() -> None:
    async def scenario() -> None:
        store = SessionTicketStore(get_backend("sync"))

        class Ticket:
            is_valid = True

        first, second, expired = Ticket(), Ticket(), Ticket()
        expired.is_valid = False  # type: ignore[misc]
        store.add("a.test", 443, first)  # type: ignore[arg-type]
        store.add("a.test", 443, second)  # type: ignore[arg-type]
        store.add("b.test", 443, expired)  # type: ignore[arg-type]
        assert store.get("a.test", 443) is second
        assert store.get("a.test", 8443) is None
        assert store.get("b.test", 443) is None
        for i in range(300):
            store.add(f"h{i}.test", 443, first)  # type: ignore[arg-type]
        assert len(store) == 256
        assert store.get("a.test", 443) is None  # the oldest went first

    run_sync(scenario())
