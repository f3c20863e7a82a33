"""Response features against real servers (hypercorn and uvicorn, HTTP/1.1
in cleartext and over TLS, and HTTP/2), on asyncio, trio and the blocking
client: ``next_request``, ``max_body_size``, ``default_encoding``,
``headers.raw``, empty bodies and removable default header fields."""

from __future__ import annotations

from collections.abc import Callable, Coroutine
from typing import Any

import pytest
from app import GERMAN_TEXT, pattern_bytes

import webwire
from conftest import ServerInfo
from webwire._sync import run_sync

OpenApi = Callable[..., Any]
Scenario = Callable[[OpenApi, ServerInfo], Coroutine[Any, Any, None]]


def both(scenario: Scenario) -> tuple[Any, Any]:
    @pytest.mark.anyio
    async def async_test(async_api: OpenApi, server: ServerInfo) -> None:
        await scenario(async_api, server)

    def sync_test(sync_api: OpenApi, server: ServerInfo) -> None:
        run_sync(scenario(sync_api, server))

    return async_test, sync_test


@pytest.fixture(params=["hypercorn-http", "uvicorn-https", "hypercorn-h2"])
def server(request: pytest.FixtureRequest) -> ServerInfo:
    info: ServerInfo = request.getfixturevalue(request.param.replace("-", "_"))
    return info


def options(server: ServerInfo, **kwargs: Any) -> dict[str, Any]:
    result: dict[str, Any] = {
        "base_url": str(server.url),
        "verify": server.verify,
        "http2": server.http2,
    }
    result.update(kwargs)
    return result


async def s_next_request(open_api: OpenApi, server: ServerInfo) -> None:
    async with open_api(**options(server, follow_redirects=False)) as api:
        response = await api.get("/redirect/2")
        assert response.status_code == 302
        assert not response.is_error and response.ok
        follow = response.next_request
        assert follow is not None and follow.url.path == "/redirect/1"
        if api.is_async:
            second = await api.client.send(follow)
        else:
            second = api.client.send(follow)
        assert second.next_request is not None
        assert second.next_request.url.path == "/echo"
        final = await api.get("/echo")
        assert final.next_request is None
        assert api.in_use() == 0


test_next_request_async, test_next_request_sync = both(s_next_request)


async def s_max_body_size(open_api: OpenApi, server: ServerInfo) -> None:
    limits = webwire.Limits(max_body_size=100_000)
    async with open_api(**options(server, limits=limits)) as api:
        assert (await api.get("/bytes/100000")).content == pattern_bytes(100_000)
        with pytest.raises(webwire.ResponseTooLarge):
            await api.get("/bytes/100001")
        with pytest.raises(webwire.ResponseTooLarge):
            await api.get("/gzip", extensions={"max_body_size": 1000})  # decoded size counts
        r = await api.get("/bytes/300000", extensions={"max_body_size": None})
        assert len(r.content) == 300_000
        assert api.in_use() == 0


test_max_body_size_async, test_max_body_size_sync = both(s_max_body_size)


async def s_default_encoding(open_api: OpenApi, server: ServerInfo) -> None:
    async with open_api(**options(server, default_encoding="latin-1")) as api:
        r = await api.get("/no-charset")
        assert r.encoding == "latin-1" and r.text == GERMAN_TEXT
        async with api.stream("GET", "/no-charset") as streamed:
            lines = [line async for line in streamed.aiter_lines()]
        assert "".join(lines) == GERMAN_TEXT


test_default_encoding_async, test_default_encoding_sync = both(s_default_encoding)


async def s_raw_headers_and_empty_body(open_api: OpenApi, server: ServerInfo) -> None:
    async with open_api(**options(server, headers={"User-Agent": None})) as api:
        r = await api.get("/headers")
        assert "user-agent" not in {k.lower() for k in r.json()["headers"]}
        raw = r.headers.raw
        assert all(isinstance(k, bytes) and isinstance(v, bytes) for k, v in raw)
        assert (b"content-type", b"application/json") in [(k.lower(), v) for k, v in raw]
        async with api.stream("GET", "/status/204") as empty:
            assert [chunk async for chunk in empty.aiter_bytes()] == []


test_raw_headers_async, test_raw_headers_sync = both(s_raw_headers_and_empty_body)
