"""HTTP/1.1 against real servers (hypercorn and uvicorn, cleartext and TLS).

Each scenario is one coroutine taking an ``open_api`` factory (see
``tests/conftest.py``); it runs as an async test on asyncio and trio, and
as a sync test through the blocking ``webwire.Client``.
"""

from __future__ import annotations

import codecs
import email.parser
import email.policy
import gc
import hashlib
import json
import socket
import time
from collections.abc import Callable, Coroutine, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import aclosing
from typing import Any

import anyio
import anyio.lowlevel
import pytest
from app import GERMAN_TEXT, HAS_BROTLI, JSON_DOCUMENT, LATIN1_TEXT, pattern_bytes

import webwire
from webwire._sync import run_sync

OpenApi = Callable[..., Any]
Scenario = Callable[[OpenApi, Any], Coroutine[Any, Any, None]]

TEN_MB = 10 * 1024 * 1024


def options(server: Any, **kwargs: Any) -> dict[str, Any]:
    """Client options for ``server`` (base URL and CA; HTTP/1.1 only unless
    the server is the HTTP/2 variant, which runs these scenarios over
    HTTP/2), plus ``kwargs``."""
    result: dict[str, Any] = {
        "base_url": str(server.url),
        "verify": server.verify,
        "http2": server.http2,
    }
    result.update(kwargs)
    return result


def pool_of(client: Any) -> Any:
    """The connection pool of an ``AsyncClient`` or ``Client`` (internal)."""
    inner = getattr(client, "_client", client)
    return inner._transport.pool


def header_value(echo: dict[str, Any], name: str) -> list[str]:
    """Values of header ``name`` in an ``/echo`` document."""
    return [v for k, v in echo["headers"] if k == name]


# -- scenarios ---------------------------------------------------------------


async def s_get(open_api: OpenApi, server: Any) -> None:
    async with open_api(**options(server)) as api:
        r = await api.get("/json")
        assert r.status_code == 200
        assert r.is_success
        assert r.http_version == ("HTTP/2" if server.http2 else "HTTP/1.1")
        assert r.headers["Content-Type"] == "application/json"
        assert r.json() == JSON_DOCUMENT
        assert json.loads(r.content) == JSON_DOCUMENT
        assert str(r.url) == f"{server.url}/json"
        assert r.request.method == "GET"
        assert r.elapsed.total_seconds() >= 0
        assert r.history == []
        assert api.in_use() == 0


async def s_post_json(open_api: OpenApi, server: Any) -> None:
    payload = {"a": 1, "b": ["x", None], "c": "\u2603"}
    async with open_api(**options(server)) as api:
        r = await api.post("/echo", json=payload)
        echo = r.json()
        assert echo["method"] == "POST"
        assert json.loads(echo["body"]) == payload
        assert header_value(echo, "content-type") == ["application/json"]
        assert header_value(echo, "content-length") == [str(echo["body_length"])]


async def s_post_form(open_api: OpenApi, server: Any) -> None:
    async with open_api(**options(server)) as api:
        r = await api.post("/echo", data={"a": "1", "b": "x y&z"})
        echo = r.json()
        assert header_value(echo, "content-type") == ["application/x-www-form-urlencoded"]
        assert echo["body"] in ("a=1&b=x+y%26z", "a=1&b=x%20y%26z")


async def s_post_multipart(open_api: OpenApi, server: Any) -> None:
    files = {"upload": ("name.txt", b"file \x00 content\r\n--not-a-boundary", "text/plain")}
    async with open_api(**options(server)) as api:
        r = await api.post("/echo", data={"field": "value"}, files=files)
        echo = r.json()
        (content_type,) = header_value(echo, "content-type")
        assert content_type.startswith("multipart/form-data; boundary=")
    body = r.request.content
    assert hashlib.sha256(body).hexdigest() == echo["body_sha256"]
    message = email.parser.BytesParser(policy=email.policy.HTTP).parsebytes(
        b"Content-Type: " + content_type.encode() + b"\r\n\r\n" + body
    )
    parts = {
        part.get_param("name", header="content-disposition"): part for part in message.iter_parts()
    }
    assert parts["field"].get_payload(decode=True) == b"value"
    upload = parts["upload"]
    assert upload.get_filename() == "name.txt"
    assert upload.get_content_type() == "text/plain"
    assert upload.get_payload(decode=True) == files["upload"][1]


async def s_post_streamed(open_api: OpenApi, server: Any) -> None:
    chunks = [b"a" * 1000, b"", b"b" * 70000, b"c"]
    expected = b"".join(chunks)
    async with open_api(**options(server)) as api:
        r = await api.post("/echo", content=api.body(chunks))
        echo = r.json()
        assert echo["body_length"] == len(expected)
        assert echo["body_sha256"] == hashlib.sha256(expected).hexdigest()
        # HTTP/2 frames the body itself: no Transfer-Encoding (RFC 9113 8.2.2).
        assert header_value(echo, "transfer-encoding") == ([] if server.http2 else ["chunked"])
        r = await api.post("/echo", content=b"raw bytes")
        assert r.json()["body"] == "raw bytes"
        assert header_value(r.json(), "content-length") == ["9"]
        r = await api.post("/echo", content="text \u00e9")
        assert r.json()["body"] == "text \u00e9"
        assert api.in_use() == 0


async def s_head(open_api: OpenApi, server: Any) -> None:
    async with open_api(**options(server)) as api:
        first = await api.get("/echo")
        r = await api.head("/bytes/1000")
        assert r.status_code == 200
        assert r.headers["content-length"] == "1000"
        assert r.content == b""
        # The connection is still usable: no body was expected after HEAD.
        after = await api.get("/echo")
        assert after.json()["client"] == first.json()["client"]


async def s_params_and_headers(open_api: OpenApi, server: Any) -> None:
    client_opts = options(server, headers={"X-Client": "c"}, params={"fixed": "1"})
    async with open_api(**client_opts) as api:
        r = await api.get("/echo", params={"q": "x y", "e": "\u00e9"}, headers={"X-Test": "v"})
        echo = r.json()
        args = dict(echo["args"])
        assert args["q"] == "x y"
        assert args["e"] == "\u00e9"
        assert args["fixed"] == "1"
        assert header_value(echo, "x-test") == ["v"]
        assert header_value(echo, "x-client") == ["c"]
        assert header_value(echo, "host") == [f"127.0.0.1:{server.url.port}"]
        r = await api.get("/headers", headers={"X-Client": "override"})
        assert r.json()["headers"]["x-client"] == "override"


async def s_keepalive(open_api: OpenApi, server: Any) -> None:
    async with open_api(**options(server)) as api:
        first = (await api.get("/echo")).json()["client"]
        assert api.in_use() == 0
        assert api.idle() == 1
        second = (await api.get("/echo")).json()["client"]
        assert first == second
        assert api.idle() == 1
        assert api.in_use() == 0


async def s_stream_10mb(open_api: OpenApi, server: Any) -> None:
    async with open_api(**options(server)) as api:
        digest = hashlib.sha256()
        total = 0
        async with api.stream("GET", f"/bytes/{TEN_MB}") as r:
            assert r.status_code == 200
            assert api.in_use() == 1
            async for chunk in r.aiter_bytes():
                total += len(chunk)
                digest.update(chunk)
        assert total == TEN_MB
        assert digest.hexdigest() == hashlib.sha256(pattern_bytes(TEN_MB)).hexdigest()
        assert api.in_use() == 0
        assert api.idle() == 1


async def s_stream_lines(open_api: OpenApi, server: Any) -> None:
    async with open_api(**options(server)) as api:
        async with api.stream("GET", "/stream/20") as r:
            lines = [line async for line in r.aiter_lines() if line]
        assert [json.loads(line)["id"] for line in lines] == list(range(20))
        assert api.in_use() == 0


async def s_stream_closed_early(open_api: OpenApi, server: Any) -> None:
    async with open_api(**options(server)) as api:
        async with api.stream("GET", f"/bytes/{TEN_MB}") as r:
            async with aclosing(r.aiter_bytes()) as chunks:
                async for chunk in chunks:
                    assert chunk
                    break
        # Body not read to the end: an HTTP/1.1 connection is closed, not
        # pooled; HTTP/2 resets only the stream and keeps the connection.
        assert api.in_use() == 0
        assert api.idle() == (1 if server.http2 else 0)
        assert (await api.get("/json")).json() == JSON_DOCUMENT


async def s_redirects(open_api: OpenApi, server: Any) -> None:
    async with open_api(**options(server)) as api:
        r = await api.get("/redirect/3")
        assert r.status_code == 200
        assert r.url.path == "/echo"
        assert [h.status_code for h in r.history] == [302, 302, 302]
        assert [h.url.path for h in r.history] == ["/redirect/3", "/redirect/2", "/redirect/1"]
        r = await api.get("/relative-redirect")
        assert r.url.path == "/echo"
        assert r.json()["query"] == "via=relative"
        r = await api.get("/absolute-redirect")
        assert r.json()["query"] == "via=absolute"
        r = await api.get("/redirect/2", follow_redirects=False)
        assert r.status_code == 302
        assert r.is_redirect
        assert r.headers["location"] == "/redirect/1"
        assert api.in_use() == 0


async def s_redirect_methods(open_api: OpenApi, server: Any) -> None:
    async with open_api(**options(server)) as api:
        r = await api.post("/redirect-to", params={"url": "/echo", "status": "307"}, content=b"hi")
        assert r.json()["method"] == "POST"
        assert r.json()["body"] == "hi"
        r = await api.post("/redirect-to", params={"url": "/echo", "status": "303"}, content=b"hi")
        assert r.json()["method"] == "GET"
        assert r.json()["body"] == ""
        assert header_value(r.json(), "content-length") in ([], ["0"])


async def s_too_many_redirects(open_api: OpenApi, server: Any) -> None:
    async with open_api(**options(server, max_redirects=2)) as api:
        with pytest.raises(webwire.TooManyRedirects):
            await api.get("/redirect/5")
        assert api.in_use() == 0


async def s_cookies(open_api: OpenApi, server: Any) -> None:
    async with open_api(**options(server)) as api:
        r = await api.get("/cookies/set", params={"a": "1", "b": "two"})
        assert r.url.path == "/cookies"
        assert r.json() == {"cookies": {"a": "1", "b": "two"}}
        assert r.history[0].cookies["a"] == "1"
        r = await api.get("/cookies")
        assert r.json() == {"cookies": {"a": "1", "b": "two"}}
        r = await api.get("/cookies", cookies={"c": "3"})
        assert r.json()["cookies"]["c"] == "3"


async def s_content_codings(open_api: OpenApi, server: Any) -> None:
    codings = ["gzip", "deflate"] + (["br"] if HAS_BROTLI else [])
    async with open_api(**options(server)) as api:
        for coding in codings:
            r = await api.get(f"/{coding}")
            assert r.headers["content-encoding"] == coding
            assert r.json()[coding] is True
            assert r.json()["padding"] == "z" * 2000
        echo = (await api.get("/echo")).json()
        (accept,) = header_value(echo, "accept-encoding")
        assert "gzip" in accept
        async with api.stream("GET", "/gzip") as streamed:
            raw = b"".join([chunk async for chunk in streamed.aiter_raw()])
        assert raw[:2] == b"\x1f\x8b"


async def s_charsets(open_api: OpenApi, server: Any) -> None:
    async with open_api(**options(server)) as api:
        r = await api.get("/html-latin1")
        assert r.encoding is not None
        assert codecs.lookup(r.encoding).name == "iso8859-1"
        assert r.text == f"<p>{LATIN1_TEXT}</p>"
        r = await api.get("/no-charset")
        assert r.text == GERMAN_TEXT
        r = await api.get("/json")
        assert r.json()["unicode"] == "h\u00e9llo \u2603"


async def s_basic_auth(open_api: OpenApi, server: Any) -> None:
    async with open_api(**options(server)) as api:
        r = await api.get("/basic-auth/user/secret", auth=("user", "secret"))
        assert r.json() == {"authenticated": True, "user": "user"}
        r = await api.get("/basic-auth/user/secret", auth=webwire.BasicAuth("user", "wrong"))
        assert r.status_code == 401
    async with open_api(**options(server, auth=("user", "secret"))) as api:
        r = await api.get("/basic-auth/user/secret")
        assert r.status_code == 200


async def s_raise_for_status(open_api: OpenApi, server: Any) -> None:
    async with open_api(**options(server)) as api:
        ok = await api.get("/status/204")
        assert ok.raise_for_status() is ok
        r = await api.get("/status/418")
        assert r.status_code == 418
        assert not r.is_success
        with pytest.raises(webwire.HTTPStatusError) as info:
            r.raise_for_status()
        assert info.value.response.status_code == 418
        r = await api.get("/status/503")
        with pytest.raises(webwire.HTTPStatusError):
            r.raise_for_status()
    async with open_api(**options(server, raise_for_status=True)) as api:
        with pytest.raises(webwire.HTTPStatusError) as info:
            await api.get("/status/404")
        assert info.value.response.status_code == 404
        assert api.in_use() == 0


async def s_read_timeout(open_api: OpenApi, server: Any) -> None:
    async with open_api(**options(server, timeout=webwire.Timeout(5.0, read=0.5))) as api:
        for path in ("/stall?head=0", "/stall"):
            start = time.monotonic()
            with pytest.raises(webwire.ReadTimeout):
                await api.get(path)
            assert 0.4 < time.monotonic() - start < 3.0
            assert api.in_use() == 0
        assert (await api.get("/json")).status_code == 200


async def s_total_timeout(open_api: OpenApi, server: Any) -> None:
    timeout = webwire.Timeout(read=1, total=1.5)
    async with open_api(**options(server, timeout=timeout)) as api:
        start = time.monotonic()
        with pytest.raises(webwire.ReadTimeout):
            await api.get("/slow-body")
        assert 1.3 < time.monotonic() - start < 2.5
        assert api.in_use() == 0
        assert (await api.get("/json")).status_code == 200


async def s_build_and_send(open_api: OpenApi, server: Any) -> None:
    async with open_api(**options(server)) as api:
        request = api.client.build_request("PUT", "/echo", content=b"payload")
        assert request.method == "PUT"
        if api.is_async:
            r = await api.client.send(request)
        else:
            r = api.client.send(request)
        assert r.json()["method"] == "PUT"
        assert r.json()["body"] == "payload"


SCENARIOS: list[Scenario] = [
    s_get,
    s_post_json,
    s_post_form,
    s_post_multipart,
    s_post_streamed,
    s_head,
    s_params_and_headers,
    s_keepalive,
    s_stream_10mb,
    s_stream_lines,
    s_stream_closed_early,
    s_redirects,
    s_redirect_methods,
    s_too_many_redirects,
    s_cookies,
    s_content_codings,
    s_charsets,
    s_basic_auth,
    s_raise_for_status,
    s_read_timeout,
    s_total_timeout,
    s_build_and_send,
]
IDS = [s.__name__[2:] for s in SCENARIOS]


@pytest.mark.anyio
@pytest.mark.parametrize("scenario", SCENARIOS, ids=IDS)
async def test_async(scenario: Scenario, server: Any, async_api: OpenApi) -> None:
    await scenario(async_api, server)


@pytest.mark.parametrize("scenario", SCENARIOS, ids=IDS)
def test_sync(scenario: Scenario, server: Any, sync_api: OpenApi) -> None:
    run_sync(scenario(sync_api, server))


# -- concurrency ---------------------------------------------------------------


@pytest.mark.anyio
async def test_concurrent_requests_share_ten_connections(server: Any, async_api: OpenApi) -> None:
    limits = webwire.Limits(max_connections=10, max_keepalive_connections=10)
    ports: list[Any] = []
    async with async_api(**options(server, limits=limits)) as api:

        async def one(i: int) -> None:
            r = await api.get("/delay/0.05", params={"i": str(i)})
            assert r.status_code == 200
            assert dict(r.json()["args"]) == {"i": str(i)}
            ports.append(tuple(r.json()["client"]))

        async with anyio.create_task_group() as tg:
            for i in range(50):
                tg.start_soon(one, i)
        assert len(ports) == 50
        if server.http2:
            assert len(set(ports)) == 1  # multiplexed on one connection
        else:
            assert 1 < len(set(ports)) <= 10
        assert api.in_use() == 0
        assert api.idle() <= 10


def test_concurrent_requests_share_ten_connections_sync(server: Any) -> None:
    limits = webwire.Limits(max_connections=10, max_keepalive_connections=10)
    with webwire.Client(**options(server, limits=limits)) as client:

        def one(i: int) -> Any:
            r = client.get("/delay/0.05", params={"i": str(i)})
            assert dict(r.json()["args"]) == {"i": str(i)}
            return tuple(r.json()["client"])

        with ThreadPoolExecutor(max_workers=20) as executor:
            ports = list(executor.map(one, range(50)))
        assert len(ports) == 50
        if server.http2:
            assert len(set(ports)) == 1  # multiplexed on one connection
        else:
            assert 1 < len(set(ports)) <= 10
        pool = pool_of(client)
        assert pool.connections_in_use() == 0


# -- async-only API: ``async with client.get()`` ---------------------------------


@pytest.mark.anyio
async def test_async_with_get_releases_connection(server: Any, anyio_backend: str) -> None:
    async with webwire.AsyncClient(**options(server)) as client:
        async with client.get(f"/bytes/{TEN_MB}") as r:
            assert r.status_code == 200
            pool = pool_of(client)
            assert pool.connections_in_use() == 1
            async for chunk in r.aiter_bytes():
                assert chunk
                break
        assert pool.connections_in_use() == 0
        async with client.get("/json") as r:
            assert await r.aread() == json.dumps(JSON_DOCUMENT).encode()
            assert r.json() == JSON_DOCUMENT
        assert pool.connections_in_use() == 0
        assert pool.connections_idle() == 1


# -- connection failures -----------------------------------------------------------


@pytest.fixture
def closed_port() -> Iterator[int]:
    """A port bound on 127.0.0.1 but not listening: connections are refused."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.bind(("127.0.0.1", 0))
    try:
        yield sock.getsockname()[1]
    finally:
        sock.close()


async def s_connect_refused(open_api: OpenApi, port: int) -> None:
    async with open_api() as api:
        with pytest.raises(webwire.ConnectError) as info:
            await api.get(f"http://127.0.0.1:{port}/")
        assert not isinstance(info.value, OSError)
        assert api.in_use() == 0


@pytest.mark.anyio
async def test_connect_refused(closed_port: int, async_api: OpenApi) -> None:
    await s_connect_refused(async_api, closed_port)


def test_connect_refused_sync(closed_port: int, sync_api: OpenApi) -> None:
    run_sync(s_connect_refused(sync_api, closed_port))


async def s_tls(open_api: OpenApi, server: Any) -> None:
    async with open_api() as api:
        with pytest.raises(webwire.ConnectError):
            await api.get(f"{server.url}/json")
        assert api.in_use() == 0
    async with open_api(verify=server.ca_path) as api:
        r = await api.get(f"{server.url}/json")
        assert r.json() == JSON_DOCUMENT
        assert r.url.scheme == "https"
    import ssl

    context = ssl.create_default_context(cafile=server.ca_path)
    async with open_api(verify=context) as api:
        assert (await api.get(f"{server.url}/json")).status_code == 200


@pytest.mark.anyio
async def test_tls_verification(https_server: Any, async_api: OpenApi) -> None:
    await s_tls(async_api, https_server)


def test_tls_verification_sync(https_server: Any, sync_api: OpenApi) -> None:
    run_sync(s_tls(sync_api, https_server))


@pytest.mark.anyio
async def test_tls_uvicorn(uvicorn_https: Any, async_api: OpenApi) -> None:
    await s_tls(async_api, uvicorn_https)


# -- cancellation safety ---------------------------------------------------------------


def one_connection(server: Any) -> dict[str, Any]:
    """Options with a single pool slot: a leaked slot shows as PoolTimeout."""
    return options(
        server,
        limits=webwire.Limits(max_connections=1),
        timeout=webwire.Timeout(5.0, pool=1.0),
    )


@pytest.mark.anyio
@pytest.mark.parametrize("delay", [0.0, 0.001, 0.01, 0.1])
@pytest.mark.parametrize("path", ["/stall?head=0", "/stall", "/slow-body"])
async def test_cancel_request(server: Any, async_api: OpenApi, delay: float, path: str) -> None:
    async with async_api(**one_connection(server)) as api:
        for _ in range(3):
            with anyio.move_on_after(delay) as scope:
                await api.get(path)
            assert scope.cancelled_caught
            assert api.in_use() == 0
            r = await api.get("/json")
            assert r.status_code == 200
            assert api.in_use() == 0


@pytest.mark.anyio
@pytest.mark.parametrize("host", ["127.0.0.1", "localhost"])
async def test_cancel_during_tls_connect(https_server: Any, async_api: OpenApi, host: str) -> None:
    """Cancel at many instants of resolution, TCP connect and TLS handshake:
    no slot and no socket may leak (an unclosed socket fails the test as a
    ResourceWarning once collected)."""
    base = https_server.url.with_host(host)
    async with async_api(**one_connection(https_server)) as api:
        for i in range(60):
            with anyio.move_on_after((i % 30) * 0.0002):
                await api.get(f"{base}/stall?head=0")
            assert api.in_use() == 0
        assert (await api.get(f"{base}/json")).status_code == 200
    # Let abandoned connection attempts finish, so a leak is reported here.
    await anyio.sleep(0.5)
    gc.collect()


@pytest.mark.anyio
async def test_cancel_while_streaming_body(server: Any, async_api: OpenApi) -> None:
    async with async_api(**one_connection(server)) as api:
        # Cancelled between two chunks of a fast body (the next read may not
        # wait, so the checkpoint delivers it), then inside a read that waits.
        for path, checkpoint in ((f"/bytes/{TEN_MB}", True), ("/slow-body", False)):
            with anyio.CancelScope() as scope:
                async with api.stream("GET", path) as r, aclosing(r.aiter_bytes()) as chunks:
                    async for _ in chunks:
                        scope.cancel()
                        if checkpoint:
                            await anyio.lowlevel.checkpoint()
            assert scope.cancelled_caught
            assert api.in_use() == 0
            assert (await api.get("/json")).status_code == 200
            assert api.in_use() == 0
        # Cancelled by a deadline while blocked reading the body.
        with anyio.move_on_after(0.5) as scope:
            async with api.stream("GET", "/slow-body") as r:
                await r.aread()
        assert scope.cancelled_caught
        assert api.in_use() == 0
        assert (await api.get("/json")).status_code == 200


@pytest.mark.anyio
async def test_cancel_while_waiting_for_pool(server: Any, async_api: OpenApi) -> None:
    async with async_api(**one_connection(server)) as api:
        async with api.stream("GET", "/slow-body"):
            assert api.in_use() == 1
            # HTTP/1.1 waits for the pool's only connection; HTTP/2 shares it
            # and waits for the response instead.
            with anyio.move_on_after(0.1) as scope:
                await api.get("/delay/1" if server.http2 else "/json")
            assert scope.cancelled_caught
        assert api.in_use() == 0
        assert (await api.get("/json")).status_code == 200


@pytest.mark.anyio
async def test_cancel_concurrent_requests(server: Any, async_api: OpenApi) -> None:
    limits = webwire.Limits(max_connections=3)
    timeout = webwire.Timeout(5.0, pool=1.0)
    async with async_api(**options(server, limits=limits, timeout=timeout)) as api:
        with anyio.move_on_after(0.3):
            async with anyio.create_task_group() as tg:
                for i in range(12):
                    path = "/slow-body" if i % 2 else "/stall"
                    tg.start_soon(api.get, path)
        assert api.in_use() == 0
        async with anyio.create_task_group() as tg:
            for _ in range(3):
                tg.start_soon(api.get, "/delay/0.2")
        assert api.in_use() == 0
