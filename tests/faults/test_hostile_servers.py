"""HTTP/1.1 clients against hostile scripted servers: smuggled bytes after
a response without content, data that never stops (total timeout), unbounded
trailer sections and chunk extensions, obs-folds, controls in the reason
phrase, and unusable ``Location`` values.

Scenarios run on asyncio, trio and the blocking client. Real durations are
never asserted: pytest's timeout catches a request that does not end.
"""

from __future__ import annotations

from collections.abc import Callable, Coroutine
from typing import Any

import pytest
from scripted_server import Connection, ScriptedServer, response

import webwire
from webwire._sync import run_sync

OpenApi = Callable[..., Any]
Scenario = Callable[[OpenApi], Coroutine[Any, Any, None]]

OK = response(b"hello")
SMUGGLED = b"HTTP/1.1 200 OK\r\nContent-Length: 6\r\n\r\nHACKED"


def serve(answer: Callable[[bytes], bytes]) -> Callable[[Connection], None]:
    """A keep-alive server answering each request with ``answer(request)``."""

    def handler(conn: Connection) -> None:
        while request := conn.read_request():
            conn.send(answer(request))

    return handler


def endless(head: bytes, piece: bytes) -> Callable[[Connection], None]:
    """Answer one request with ``head`` then ``piece`` again and again, as
    fast as the client reads, until it goes away or the server stops."""

    def handler(conn: Connection) -> None:
        if conn.read_request():
            conn.send(head)
            block = piece * max(1, 65536 // len(piece))
            while not conn.stop.is_set():
                conn.send(block)

    return handler


# -- 1. bytes after a response that has no content ---------------------------------


async def s_head_answered_with_content(open_api: OpenApi) -> None:
    def answer(request: bytes) -> bytes:
        if request.startswith(b"HEAD"):
            # Content-Length 39 announces what follows: a whole response.
            return b"HTTP/1.1 200 OK\r\nContent-Length: 39\r\n\r\n" + SMUGGLED
        return OK

    with ScriptedServer(serve(answer)) as server:
        async with open_api() as api:
            head = await api.head(server.url)
            assert head.status_code == 200
            assert head.content == b""
            r = await api.get(server.url)
            assert r.content == b"hello"
            assert api.in_use() == 0
        assert server.accepted == 2


async def s_head_answered_with_hacked(open_api: OpenApi) -> None:
    def answer(request: bytes) -> bytes:
        if request.startswith(b"HEAD"):
            return b"HTTP/1.1 200 OK\r\nContent-Length: 6\r\n\r\nHACKED"
        return OK

    with ScriptedServer(serve(answer)) as server:
        async with open_api() as api:
            for _ in range(2):
                assert (await api.head(server.url)).content == b""
                assert (await api.get(server.url)).content == b"hello"
            assert api.in_use() == 0
        # Each connection that answered HEAD with bytes is dropped after it.
        assert server.accepted == 3


async def s_no_content_answers_with_bytes_after(open_api: OpenApi) -> None:
    extra = {
        b"/204": b"HTTP/1.1 204 No Content\r\n\r\n" + SMUGGLED,
        b"/304": b"HTTP/1.1 304 Not Modified\r\nContent-Length: 6\r\n\r\n" + SMUGGLED,
    }

    def answer(request: bytes) -> bytes:
        return extra.get(request.split(b" ")[1], OK)

    with ScriptedServer(serve(answer)) as server:
        async with open_api() as api:
            for path, status in (("/204", 204), ("/304", 304)):
                assert (await api.get(server.url + path)).status_code == status
                assert (await api.get(server.url + "/")).content == b"hello"
        assert server.accepted == 3


async def s_bytes_after_head_in_a_later_packet(open_api: OpenApi) -> None:
    def handler(conn: Connection) -> None:
        while request := conn.read_request():
            if request.startswith(b"HEAD"):
                conn.send(b"HTTP/1.1 200 OK\r\nContent-Length: 39\r\n\r\n")
                conn.stop.wait(0.05)
                conn.send(SMUGGLED)
            else:
                conn.send(OK)

    with ScriptedServer(handler) as server:
        async with open_api() as api:
            assert (await api.head(server.url)).status_code == 200
            await api.sleep(0.3)
            assert (await api.get(server.url)).content == b"hello"
        assert server.accepted == 2


# -- 2. Timeout.total while data keeps arriving --------------------------------------


async def expect_total_timeout(
    open_api: OpenApi, handler: Callable[[Connection], None], *, stream: bool, **options: Any
) -> None:
    timeout = webwire.Timeout(10.0, total=1.0)
    with ScriptedServer(handler) as server:
        async with open_api(timeout=timeout, **options) as api:
            with pytest.raises(webwire.TimeoutException, match=r"total timeout of 1\.0 s"):
                if stream:
                    async with api.stream("GET", server.url) as r:
                        async for _ in r.aiter_bytes():
                            pass
                else:
                    await api.get(server.url)
            assert api.in_use() == 0


async def s_total_endless_interim_responses(open_api: OpenApi) -> None:
    handler = endless(b"", b"HTTP/1.1 100 Continue\r\n\r\n")
    await expect_total_timeout(open_api, handler, stream=False)


async def s_total_endless_body_streamed(open_api: OpenApi) -> None:
    handler = endless(b"HTTP/1.1 200 OK\r\nContent-Length: 1000000000000\r\n\r\n", b"x")
    await expect_total_timeout(open_api, handler, stream=True)
    chunked = endless(
        b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n", b"8\r\nxxxxxxxx\r\n"
    )
    await expect_total_timeout(open_api, chunked, stream=True)


async def s_total_endless_chunk_extension(open_api: OpenApi) -> None:
    # Limits high enough that only the total timeout can stop it.
    limits = webwire.Limits(max_header_size=2**40)
    head = b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5;ext="
    await expect_total_timeout(open_api, endless(head, b"a"), stream=True, limits=limits)


async def s_total_endless_trailer_section(open_api: OpenApi) -> None:
    limits = webwire.Limits(max_header_size=2**40)
    head = b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n0\r\nX-Trailer: "
    await expect_total_timeout(open_api, endless(head, b"a"), stream=False, limits=limits)


# -- 3. trailer section and chunk extensions bounded like a head -----------------------


async def expect_cut_off(open_api: OpenApi, head: bytes, piece: bytes) -> None:
    sent = [0]

    def handler(conn: Connection) -> None:
        if conn.read_request():
            conn.send(head)
            block = piece * (65536 // len(piece))
            while not conn.stop.is_set() and sent[0] < 300 * 1024 * 1024:
                conn.send(block)
                sent[0] += len(block)

    limits = webwire.Limits(max_header_size=16384)
    with ScriptedServer(handler) as server:
        async with open_api(limits=limits) as api:
            with pytest.raises(webwire.RemoteProtocolError, match="exceed"):
                await api.get(server.url)
            assert api.in_use() == 0
    # The client gave up long before the 300 MiB (socket buffers hold a few MiB).
    assert sent[0] < 100 * 1024 * 1024


async def s_trailer_section_bounded(open_api: OpenApi) -> None:
    head = b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nok\r\n0\r\nX-Big: "
    await expect_cut_off(open_api, head, b"a")
    # Many small trailer fields.
    head = b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n"
    await expect_cut_off(open_api, head, b"X-T: v\r\n")


async def s_chunk_extension_bounded(open_api: OpenApi) -> None:
    head = b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n2;name="
    await expect_cut_off(open_api, head, b"a")


# -- 7. obs-fold and the reason phrase ---------------------------------------------


async def s_obs_fold_becomes_a_space(open_api: OpenApi) -> None:
    payload = (
        b"HTTP/1.1 200 OK\r\nX-Folded: first\r\n   second\r\n\tthird\r\n"
        b"Content-Length: 5\r\n\r\nhello"
    )
    with ScriptedServer(serve(lambda request: payload)) as server:
        async with open_api() as api:
            r = await api.get(server.url)
            assert r.headers["X-Folded"] == "first second third"
            assert r.content == b"hello"


async def s_nul_in_reason_phrase(open_api: OpenApi) -> None:
    payload = b"HTTP/1.1 200 O\x00K\r\nContent-Length: 0\r\n\r\n"
    with ScriptedServer(serve(lambda request: payload)) as server:
        async with open_api() as api:
            with pytest.raises(webwire.RemoteProtocolError, match="reason phrase"):
                await api.get(server.url)
            assert api.in_use() == 0


# -- 4, 5. port 0 and unusable Location values ---------------------------------------


async def s_port_zero(open_api: OpenApi) -> None:
    with pytest.raises(webwire.InvalidURL, match="port 0"):
        async with open_api() as api:
            await api.get("http://127.0.0.1:0/")
    location = {b"/zero": b"http://127.0.0.1:0/x", b"/tab": b"/a\tb"}

    def answer(request: bytes) -> bytes:
        target = location[request.split(b" ")[1]]
        return response(b"", b"302 Found", (b"Location: " + target,))

    with ScriptedServer(serve(answer)) as server:
        async with open_api() as api:
            with pytest.raises(webwire.InvalidURL, match="port 0"):
                await api.get(server.url + "/zero")
            with pytest.raises(webwire.InvalidURL, match="TAB"):
                await api.get(server.url + "/tab")
            assert api.in_use() == 0


SCENARIOS: list[Scenario] = [
    s_head_answered_with_content,
    s_head_answered_with_hacked,
    s_no_content_answers_with_bytes_after,
    s_bytes_after_head_in_a_later_packet,
    s_total_endless_interim_responses,
    s_total_endless_body_streamed,
    s_total_endless_chunk_extension,
    s_total_endless_trailer_section,
    s_trailer_section_bounded,
    s_chunk_extension_bounded,
    s_obs_fold_becomes_a_space,
    s_nul_in_reason_phrase,
    s_port_zero,
]
IDS = [s.__name__[2:] for s in SCENARIOS]


@pytest.mark.anyio
@pytest.mark.timeout(60)
@pytest.mark.parametrize("scenario", SCENARIOS, ids=IDS)
async def test_async(scenario: Scenario, async_api: OpenApi) -> None:
    await scenario(async_api)


@pytest.mark.timeout(60)
@pytest.mark.parametrize("scenario", SCENARIOS, ids=IDS)
def test_sync(scenario: Scenario, sync_api: OpenApi) -> None:
    run_sync(scenario(sync_api))
