"""WebSocket over HTTP/2 (RFC 8441) against hypercorn over TLS: the pool
opens an extended CONNECT stream on its shared HTTP/2 connection, and real
WebSocket frames (built and parsed by ``websockets.protocol.Protocol``, the
client side in the OPEN state) go through it: an echoed text message, a
2 MiB binary message, the closing handshake. Several tunnels and ordinary
GETs share ONE connection. The pool's version choice: an HTTP/2 server
that enabled extended CONNECT gets HTTP/2, an HTTP/1.1-only server the
``Upgrade`` GET (``101``), and forcing HTTP/1.1 on the HTTP/2 server opens
a connection offering ``http/1.1`` alone with ALPN.

Each scenario runs on asyncio, trio and the blocking backend; on the
blocking backend one thread reads the tunnel while another writes it.
"""

from __future__ import annotations

import base64
import os
from collections.abc import Callable, Coroutine
from typing import Any

import pytest
import yarl
from websockets.frames import Frame, Opcode
from websockets.protocol import Protocol, Side, State

import webwire
from conftest import ServerInfo
from webwire._backends import get_backend
from webwire._backends.base import Backend, NetworkStream
from webwire._sync import run_sync
from webwire._transport._types import RawResponse
from webwire._transport.pool import ConnectionPool

Scenario = Callable[[Backend, ServerInfo, bool], Coroutine[Any, Any, None]]
TIMEOUT = webwire.Timeout(10.0)


def upgrade_headers(url: yarl.URL) -> list[tuple[bytes, bytes]]:
    """The fields of a WebSocket ``Upgrade`` GET (RFC 6455 section 4.1)."""
    key = base64.b64encode(os.urandom(16))
    return [
        (b"Host", (url.raw_authority or "").encode()),
        (b"Upgrade", b"websocket"),
        (b"Connection", b"Upgrade"),
        (b"Sec-WebSocket-Key", key),
        (b"Sec-WebSocket-Version", b"13"),
    ]


async def open_ws(
    pool: ConnectionPool, server: ServerInfo, version: str = "auto"
) -> tuple[RawResponse, NetworkStream]:
    url = server.url / "ws"
    response = await pool.request(
        b"GET",
        url,
        upgrade_headers(url),
        None,
        timeout=TIMEOUT,
        deadline=None,
        extensions={"protocol": "websocket", "http_version": version},
    )
    assert response.status_code in (101, 200), response.status_code
    return response, response.extensions["detach"]()


async def get_json(pool: ConnectionPool, server: ServerInfo) -> RawResponse:
    url = server.url / "json"
    response = await pool.request(
        b"GET",
        url,
        [(b"Host", (url.raw_authority or "").encode())],
        None,
        timeout=TIMEOUT,
        deadline=None,
    )
    body = b"".join([chunk async for chunk in response.stream])
    assert response.status_code == 200 and body
    return response


class WebSocket:
    """WebSocket frames over a byte stream, by ``websockets``' Sans-I/O
    protocol (client side, opening handshake already done)."""

    def __init__(self, stream: NetworkStream) -> None:
        self.stream = stream
        self.protocol = Protocol(Side.CLIENT, state=State.OPEN, max_size=None)
        self.frames: list[Frame] = []

    async def flush(self) -> None:
        for data in self.protocol.data_to_send():
            if data:
                await self.stream.write(data, 10.0)

    async def send(self, message: str | bytes) -> None:
        if isinstance(message, str):
            self.protocol.send_text(message.encode())
        else:
            self.protocol.send_binary(message)
        await self.flush()

    async def next_frame(self) -> Frame:
        while not self.frames:
            data = await self.stream.read(256 * 1024, 10.0)
            if data:
                self.protocol.receive_data(data)
            else:
                self.protocol.receive_eof()
            self.frames += [
                event for event in self.protocol.events_received() if isinstance(event, Frame)
            ]
            await self.flush()  # pongs, the close reply
            assert data or self.frames, "the stream ended before a frame"
        return self.frames.pop(0)

    async def receive(self) -> str | bytes:
        frame = await self.next_frame()
        if frame.opcode is Opcode.TEXT:
            return frame.data.decode()
        assert frame.opcode is Opcode.BINARY, frame
        return bytes(frame.data)

    async def close(self) -> None:
        """The closing handshake (RFC 6455 section 7), then the end of the
        byte stream."""
        self.protocol.send_close(1000, "bye")
        await self.flush()
        frame = await self.next_frame()
        assert frame.opcode is Opcode.CLOSE
        assert self.protocol.close_rcvd is not None and self.protocol.close_rcvd.code == 1000
        if self.stream.get_extra_info("http_version") == "HTTP/2":
            # hypercorn forgets an HTTP/2 WebSocket stream once it answered
            # the client's Close, without ending it, and takes any DATA
            # frame that follows (the empty one that would carry our
            # END_STREAM included) as fatal for the whole connection: the
            # stream is reset instead (RST_STREAM CANCEL, RFC 8441 section 4).
            self.stream.abort()
            return
        # Over HTTP/1.1 the server closes the connection after its Close.
        assert await self.stream.read(10, 10.0) == b""
        self.protocol.receive_eof()
        assert self.protocol.state is State.CLOSED
        await self.stream.aclose()


async def both(is_async: bool, *fns: Callable[[], Coroutine[Any, Any, None]]) -> None:
    """Run the coroutine functions at once: as tasks (asyncio/trio through
    anyio) or as threads (blocking backend), re-raising the first error."""
    errors: list[BaseException] = []

    async def run(fn: Callable[[], Coroutine[Any, Any, None]]) -> None:
        try:
            await fn()
        except BaseException as exc:  # reported below
            errors.append(exc)

    if is_async:
        import anyio

        async with anyio.create_task_group() as tg:
            for fn in fns:
                tg.start_soon(run, fn)
    else:
        import threading

        threads = [threading.Thread(target=run_sync, args=(run(fn),)) for fn in fns]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(60)
        assert not any(thread.is_alive() for thread in threads)
    if errors:
        raise errors[0]


# -- scenarios ------------------------------------------------------------------


async def s_echo_over_http2(backend: Backend, server: ServerInfo, is_async: bool) -> None:
    pool = ConnectionPool(backend, verify=server.verify)
    try:
        response, stream = await open_ws(pool, server)
        assert response.http_version == "HTTP/2"
        assert response.status_code == 200
        assert stream.get_extra_info("alpn_protocol") == "h2"
        ws = WebSocket(stream)
        await ws.send("héllo")
        assert await ws.receive() == "héllo"
        big = os.urandom(2 * 1024 * 1024)
        received: list[str | bytes] = []

        async def write() -> None:
            await ws.send(big)

        async def read() -> None:
            received.append(await ws.receive())

        # One task (thread) writes the 2 MiB message while another reads its echo.
        await both(is_async, read, write)
        assert received == [big]
        await ws.close()
        assert pool.connections_in_use() == 0
        # The connection stays pooled for ordinary requests.
        assert (await get_json(pool, server)).http_version == "HTTP/2"
        assert len(pool.connections()) == 1
    finally:
        await pool.aclose()


async def s_tunnels_and_gets_on_one_connection(
    backend: Backend, server: ServerInfo, is_async: bool
) -> None:
    pool = ConnectionPool(backend, verify=server.verify)
    try:
        sockets = []
        for _ in range(3):
            response, stream = await open_ws(pool, server, "HTTP/2")
            assert response.http_version == "HTTP/2"
            sockets.append(WebSocket(stream))
        for _ in range(3):
            assert (await get_json(pool, server)).http_version == "HTTP/2"
        for i, ws in enumerate(sockets):
            await ws.send(f"tunnel {i}")
        for i, ws in reversed(list(enumerate(sockets))):
            assert await ws.receive() == f"tunnel {i}"
        (conn,) = pool.connections()
        assert not conn.is_idle()
        for ws in sockets:
            await ws.close()
        assert conn.is_idle()
        assert pool.connections() == [conn]
    finally:
        await pool.aclose()


async def s_many_tunnels_at_once(backend: Backend, server: ServerInfo, is_async: bool) -> None:
    """Eight WebSockets opened, used and closed at once (tasks, or threads
    sharing the pool on the blocking backend), with GETs in between: one
    connection carries them all."""
    pool = ConnectionPool(backend, verify=server.verify)
    try:

        def worker(i: int) -> Callable[[], Coroutine[Any, Any, None]]:
            async def run() -> None:
                response, stream = await open_ws(pool, server)
                assert response.http_version == "HTTP/2"
                ws = WebSocket(stream)
                message = bytes([i]) * (100_000 + i)
                await ws.send(message)
                assert (await get_json(pool, server)).http_version == "HTTP/2"
                assert await ws.receive() == message
                await ws.close()

            return run

        await both(is_async, *[worker(i) for i in range(8)])
        (conn,) = pool.connections()
        assert conn.is_idle()
    finally:
        await pool.aclose()


async def s_http11_server_gets_upgrade(
    backend: Backend, server: ServerInfo, is_async: bool
) -> None:
    pool = ConnectionPool(backend, verify=server.verify)
    try:
        response, stream = await open_ws(pool, server)
        assert (response.status_code, response.http_version) == (101, "HTTP/1.1")
        ws = WebSocket(stream)
        await ws.send("over HTTP/1.1")
        assert await ws.receive() == "over HTTP/1.1"
        await ws.close()
    finally:
        await pool.aclose()


async def s_forced_http11_on_http2_server(
    backend: Backend, server: ServerInfo, is_async: bool
) -> None:
    pool = ConnectionPool(backend, verify=server.verify)
    try:
        assert (await get_json(pool, server)).http_version == "HTTP/2"
        response, stream = await open_ws(pool, server, "HTTP/1.1")
        assert (response.status_code, response.http_version) == (101, "HTTP/1.1")
        # A connection of its own, which offered http/1.1 alone with ALPN.
        assert stream.get_extra_info("alpn_protocol") == "http/1.1"
        ws = WebSocket(stream)
        await ws.send("forced")
        assert await ws.receive() == "forced"
        await ws.close()
        assert len(pool.connections()) == 1  # the detached one left the pool
    finally:
        await pool.aclose()


async def s_forced_http2_on_http11_server(
    backend: Backend, server: ServerInfo, is_async: bool
) -> None:
    pool = ConnectionPool(backend, verify=server.verify)
    try:
        with pytest.raises(webwire.LocalProtocolError, match="HTTP/2"):
            await open_ws(pool, server, "HTTP/2")
        assert pool.connections_in_use() == 0
    finally:
        await pool.aclose()


H2_SCENARIOS = [s_echo_over_http2, s_tunnels_and_gets_on_one_connection, s_many_tunnels_at_once]
H2_IDS = [s.__name__[2:] for s in H2_SCENARIOS]


@pytest.mark.anyio
@pytest.mark.parametrize("scenario", H2_SCENARIOS, ids=H2_IDS)
async def test_http2_async(scenario: Scenario, hypercorn_h2: ServerInfo) -> None:
    await scenario(get_backend(), hypercorn_h2, True)


@pytest.mark.parametrize("scenario", H2_SCENARIOS, ids=H2_IDS)
def test_http2_sync(scenario: Scenario, hypercorn_h2: ServerInfo) -> None:
    run_sync(scenario(get_backend("sync"), hypercorn_h2, False))


@pytest.mark.anyio
async def test_forced_http11_async(hypercorn_h2: ServerInfo) -> None:
    await s_forced_http11_on_http2_server(get_backend(), hypercorn_h2, True)


def test_forced_http11_sync(hypercorn_h2: ServerInfo) -> None:
    run_sync(s_forced_http11_on_http2_server(get_backend("sync"), hypercorn_h2, False))


H1_SCENARIOS = [s_http11_server_gets_upgrade, s_forced_http2_on_http11_server]
H1_IDS = [s.__name__[2:] for s in H1_SCENARIOS]


@pytest.mark.anyio
@pytest.mark.parametrize("scenario", H1_SCENARIOS, ids=H1_IDS)
async def test_http11_server_async(scenario: Scenario, hypercorn_http: ServerInfo) -> None:
    await scenario(get_backend(), hypercorn_http, True)


@pytest.mark.parametrize("scenario", H1_SCENARIOS, ids=H1_IDS)
def test_http11_server_sync(scenario: Scenario, hypercorn_http: ServerInfo) -> None:
    run_sync(scenario(get_backend("sync"), hypercorn_http, False))
