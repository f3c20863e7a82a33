"""HTTP/1.1 clients against scripted misbehaving servers.

Every scenario asserts the specific webwire exception, that it comes
quickly (pytest's timeout catches a hang), and that the pool has no
connection in use afterwards. Scenarios run on asyncio, trio and the
blocking client.
"""

from __future__ import annotations

import functools
import os
import time
import zlib
from collections.abc import Callable, Coroutine
from typing import Any

import pytest
from scripted_server import Connection, ScriptedServer, reset, response

import webwire
from webwire._sync import run_sync

OpenApi = Callable[..., Any]
Scenario = Callable[[OpenApi], Coroutine[Any, Any, None]]

OK = response(b"hello")


def answer_all(conn: Connection) -> None:
    """A well-behaved keep-alive server: answers every request with OK."""
    while conn.read_request():
        conn.send(OK)


def answer_with(payload: bytes, *, keep_open: bool = False) -> Callable[[Connection], None]:
    """Read one request, send ``payload`` as is, then close (FIN), or with
    ``keep_open`` leave the connection open until the server stops."""

    def handler(conn: Connection) -> None:
        if conn.read_request():
            conn.send(payload)
            if keep_open:
                conn.stop.wait(30.0)

    return handler


def open_fds() -> set[tuple[str, str]]:
    """The file descriptors this process has open, with what they point to
    (other threads may close theirs meanwhile, so compare with ``<=``)."""
    result = set()
    for fd in os.listdir("/proc/self/fd"):
        try:
            result.add((fd, os.readlink(f"/proc/self/fd/{fd}")))
        except OSError:
            pass
    return result


async def expect_error(
    open_api: OpenApi,
    payload: bytes,
    error: type[Exception],
    *,
    stream: bool = False,
    keep_open: bool = False,
    **client_options: Any,
) -> Exception:
    """GET from a server answering ``payload``; assert ``error`` is raised,
    no pool slot stays in use and no file descriptor leaks. Returns the
    exception."""
    fds = open_fds()
    with ScriptedServer(answer_with(payload, keep_open=keep_open)) as server:
        async with open_api(**client_options) as api:
            with pytest.raises(error) as info:
                if stream:
                    async with api.stream("GET", server.url) as r:
                        async for _ in r.aiter_bytes():
                            pass
                else:
                    await api.get(server.url)
            assert api.in_use() == 0
            # asyncio closes an aborted socket on its next loop iteration.
            await api.sleep(0.05)
    assert open_fds() <= fds, "a file descriptor was left open"
    exc = info.value
    assert isinstance(exc, webwire.WebwireError)
    assert not isinstance(exc, OSError)
    return exc


# -- malformed responses ---------------------------------------------------------


async def s_garbage_status_line(open_api: OpenApi) -> None:
    for payload in (
        b"garbage\r\n\r\n",
        b"HTTP/1.1 abc OK\r\nContent-Length: 0\r\n\r\n",
        b"HTTX/1.1 200 OK\r\nContent-Length: 0\r\n\r\n",
        b"\x00\x01\x02\x03 binary junk\r\n\r\n",
    ):
        await expect_error(open_api, payload, webwire.RemoteProtocolError)


async def s_malformed_header(open_api: OpenApi) -> None:
    for payload in (
        b"HTTP/1.1 200 OK\r\nNo colon here\r\nContent-Length: 0\r\n\r\n",
        b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\nContent-Length: 7\r\n\r\nhello",
        b"HTTP/1.1 200 OK\r\nContent-Length: -1\r\n\r\n",
    ):
        await expect_error(open_api, payload, webwire.RemoteProtocolError)


async def s_truncated_body(open_api: OpenApi) -> None:
    payload = b"HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\n" + b"x" * 10
    await expect_error(open_api, payload, webwire.RemoteProtocolError)
    await expect_error(open_api, payload, webwire.RemoteProtocolError, stream=True)


async def s_truncated_head(open_api: OpenApi) -> None:
    await expect_error(open_api, b"HTTP/1.1 200 OK\r\nContent-Le", webwire.RemoteProtocolError)


async def s_bad_chunked(open_api: OpenApi) -> None:
    head = b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"
    for body in (
        b"zz\r\nabc\r\n0\r\n\r\n",  # chunk size is not hex
        b"3\r\nabcdef\r\n0\r\n\r\n",  # chunk longer than its size
        b"5\r\nab",  # cut inside a chunk
        b"3\r\nabc\r\n",  # no last chunk
    ):
        await expect_error(open_api, head + body, webwire.RemoteProtocolError)


async def s_headers_over_limit(open_api: OpenApi) -> None:
    limits = webwire.Limits(max_header_size=8192)
    big = b"HTTP/1.1 200 OK\r\nX-Big: " + b"a" * 20000 + b"\r\nContent-Length: 0\r\n\r\n"
    await expect_error(open_api, big, webwire.RemoteProtocolError, keep_open=True, limits=limits)
    # ~500 KB of 1 KB header lines, never ended: stopped by size, not by count.
    endless = b"HTTP/1.1 200 OK\r\n" + b"".join(
        b"X-F%d: %s\r\n" % (i, b"a" * 1000) for i in range(500)
    )
    await expect_error(
        open_api, endless, webwire.RemoteProtocolError, keep_open=True, limits=limits
    )
    count = webwire.Limits(max_header_count=20)
    many = b"".join(b"X-H%d: v\r\n" % i for i in range(50))
    payload = b"HTTP/1.1 200 OK\r\n" + many + b"Content-Length: 0\r\n\r\n"
    await expect_error(open_api, payload, webwire.RemoteProtocolError, keep_open=True, limits=count)


# -- connection failures ------------------------------------------------------------


async def s_reset_mid_body(open_api: OpenApi) -> None:
    def handler(conn: Connection) -> None:
        if conn.read_request():
            conn.send(b"HTTP/1.1 200 OK\r\nContent-Length: 100000\r\n\r\n" + b"x" * 1000)
            conn.stop.wait(0.2)
            reset(conn)

    with ScriptedServer(handler) as server:
        async with open_api() as api:
            with pytest.raises(webwire.ReadError) as info:
                async with api.stream("GET", server.url) as r:
                    async for _ in r.aiter_bytes():
                        pass
            assert not isinstance(info.value, OSError)
            assert api.in_use() == 0


async def s_closed_without_answer(open_api: OpenApi) -> None:
    def handler(conn: Connection) -> None:
        conn.read_request()

    with ScriptedServer(handler) as server:
        async with open_api() as api:
            for method in ("GET", "POST"):
                with pytest.raises(webwire.RemoteProtocolError):
                    await api.request(method, server.url)
                assert api.in_use() == 0
            await api.sleep(0.1)
        # One connection per request: a fresh connection is never retried.
        assert server.accepted == 2


async def s_idle_connection_closed(open_api: OpenApi) -> None:
    def handler(conn: Connection) -> None:
        if conn.read_request():
            conn.send(OK)  # keep-alive response, then close while idle

    with ScriptedServer(handler) as server:
        async with open_api() as api:
            assert (await api.get(server.url)).content == b"hello"
            await api.sleep(0.2)
            # The idle connection's EOF is seen before reuse: both a GET and a
            # POST go out on fresh connections.
            assert (await api.get(server.url)).content == b"hello"
            await api.sleep(0.2)
            assert (await api.post(server.url, content=b"data")).content == b"hello"
            assert api.in_use() == 0
        assert server.accepted == 3


def closes_after_second_request(conn: Connection) -> None:
    """First connection: answer one request keep-alive, read the next and
    close without answering (the race the stale check cannot see). Later
    connections answer everything."""
    if conn.index > 0:
        answer_all(conn)
        return
    if conn.read_request():
        conn.send(OK)
        conn.read_request()


async def s_stale_connection_retry(open_api: OpenApi) -> None:
    with ScriptedServer(closes_after_second_request) as server:
        async with open_api() as api:
            assert (await api.get(server.url)).content == b"hello"
            # GET is idempotent: retried once on a new connection.
            assert (await api.get(server.url)).content == b"hello"
            assert server.accepted == 2
            assert api.in_use() == 0


async def s_stale_connection_post(open_api: OpenApi) -> None:
    with ScriptedServer(closes_after_second_request) as server:
        async with open_api() as api:
            assert (await api.get(server.url)).content == b"hello"
            # POST is not idempotent (RFC 9110 section 9.2.2): never replayed.
            with pytest.raises(webwire.RemoteProtocolError):
                await api.post(server.url, content=b"data")
            assert api.in_use() == 0
            await api.sleep(0.1)
            assert server.accepted == 1
            assert (await api.post(server.url, content=b"data")).content == b"hello"


# -- slow servers --------------------------------------------------------------------


def dripping(interval: float) -> Callable[[Connection], None]:
    def handler(conn: Connection) -> None:
        if conn.read_request():
            conn.send(b"HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\n")
            conn.drip(b"x" * 100, interval)

    return handler


async def s_drip_vs_read_timeout(open_api: OpenApi) -> None:
    with ScriptedServer(dripping(0.5)) as server:
        async with open_api(timeout=webwire.Timeout(5.0, read=0.2)) as api:
            start = time.monotonic()
            with pytest.raises(webwire.ReadTimeout):
                await api.get(server.url)
            assert time.monotonic() - start < 2.0
            assert api.in_use() == 0


async def s_drip_vs_total_timeout(open_api: OpenApi) -> None:
    with ScriptedServer(dripping(0.1)) as server:
        async with open_api(timeout=webwire.Timeout(read=1, total=0.5)) as api:
            start = time.monotonic()
            with pytest.raises(webwire.ReadTimeout):
                await api.get(server.url)
            assert 0.4 < time.monotonic() - start < 1.5
            assert api.in_use() == 0


# -- content decoding -----------------------------------------------------------------


@functools.cache
def gzip_bomb() -> bytes:
    """gzip of 200 MiB of zeros (about 200 KB)."""
    compressor = zlib.compressobj(9, zlib.DEFLATED, 31)
    block = bytes(1024 * 1024)
    parts = [compressor.compress(block) for _ in range(200)]
    parts.append(compressor.flush())
    return b"".join(parts)


async def s_decompression_bomb(open_api: OpenApi) -> None:
    bomb = gzip_bomb()
    payload = response(bomb, headers=(b"Content-Encoding: gzip",))
    limits = webwire.Limits(max_decompressed_size=1024 * 1024)
    await expect_error(open_api, payload, webwire.DecodingError, limits=limits)
    await expect_error(open_api, payload, webwire.DecodingError, stream=True, limits=limits)


async def s_corrupt_gzip(open_api: OpenApi) -> None:
    payload = response(b"\x1f\x8b\x08\x00not really gzip", headers=(b"Content-Encoding: gzip",))
    await expect_error(open_api, payload, webwire.DecodingError)


SCENARIOS: list[Scenario] = [
    s_garbage_status_line,
    s_malformed_header,
    s_truncated_body,
    s_truncated_head,
    s_bad_chunked,
    s_headers_over_limit,
    s_reset_mid_body,
    s_closed_without_answer,
    s_idle_connection_closed,
    s_stale_connection_retry,
    s_stale_connection_post,
    s_drip_vs_read_timeout,
    s_drip_vs_total_timeout,
    s_decompression_bomb,
    s_corrupt_gzip,
]
IDS = [s.__name__[2:] for s in SCENARIOS]


@pytest.mark.anyio
@pytest.mark.parametrize("scenario", SCENARIOS, ids=IDS)
async def test_async(scenario: Scenario, async_api: OpenApi) -> None:
    await scenario(async_api)


@pytest.mark.parametrize("scenario", SCENARIOS, ids=IDS)
def test_sync(scenario: Scenario, sync_api: OpenApi) -> None:
    run_sync(scenario(sync_api))
