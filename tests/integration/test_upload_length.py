"""A streamed upload with an explicit ``Content-Length`` is sent with that
length and no ``Transfer-Encoding`` (RFC 9112 section 6.2), and a body that
does not match the declared length is refused, against hypercorn over
HTTP/1.1 and HTTP/2, on asyncio, trio and the blocking client."""

from __future__ import annotations

from collections.abc import Callable, Coroutine
from typing import Any

import pytest

import webwire
from conftest import ServerInfo
from webwire._sync import run_sync

OpenApi = Callable[..., Any]
Scenario = Callable[[OpenApi, ServerInfo], Coroutine[Any, Any, None]]


@pytest.fixture(params=["hypercorn-http", "hypercorn-h2"])
def upload_server(request: pytest.FixtureRequest) -> ServerInfo:
    info: ServerInfo = request.getfixturevalue(request.param.replace("-", "_"))
    return info


def both(scenario: Scenario) -> tuple[Any, Any]:
    @pytest.mark.anyio
    async def async_test(async_api: OpenApi, upload_server: ServerInfo) -> None:
        await scenario(async_api, upload_server)

    def sync_test(sync_api: OpenApi, upload_server: ServerInfo) -> None:
        run_sync(scenario(sync_api, upload_server))

    return async_test, sync_test


def options(server: ServerInfo) -> dict[str, Any]:
    return {"base_url": str(server.url), "verify": server.verify, "http2": server.http2}


async def s_declared_length(open_api: OpenApi, server: ServerInfo) -> None:
    async with open_api(**options(server)) as api:
        body = api.body([b"abc", b"defg", b"h"])
        r = await api.post("/echo", content=body, headers={"Content-Length": "8"})
        assert r.status_code == 200
        echo = r.json()
        assert echo["body"] == "abcdefgh"
        names = [name for name, _ in echo["headers"]]
        assert "transfer-encoding" not in names
        assert [v for k, v in echo["headers"] if k == "content-length"] == ["8"]
        assert api.in_use() == 0


test_declared_length_async, test_declared_length_sync = both(s_declared_length)


async def s_length_mismatch(open_api: OpenApi, server: ServerInfo) -> None:
    async with open_api(**options(server)) as api:
        for chunks in ([b"abc"], [b"abcdefghij"]):  # shorter, longer than 8
            with pytest.raises(webwire.LocalProtocolError, match="Content-Length"):
                await api.post("/echo", content=api.body(chunks), headers={"Content-Length": "8"})
        for content in (b"abc", b"abcdefghij"):  # a body in memory, declared wrong
            with pytest.raises(webwire.LocalProtocolError, match="Content-Length"):
                await api.post("/echo", content=content, headers={"Content-Length": "8"})
        # The client still works (the broken request's connection was dropped).
        r = await api.post("/echo", content=b"ok")
        assert r.json()["body"] == "ok"
        assert api.in_use() == 0


test_length_mismatch_async, test_length_mismatch_sync = both(s_length_mismatch)
