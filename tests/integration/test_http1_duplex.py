"""HTTP/1.1 full duplex against real servers: an early final response to a
50 MiB upload is returned and the rest of the upload abandoned.

``/reject-upload`` answers 413 without reading the request body, with
HTTP/1.1 only, in cleartext and over TLS:

* ``?linger=0.3`` (the server keeps the connection a moment, as a lingering
  close does): on asyncio, trio and the blocking client, against hypercorn
  and uvicorn (hypercorn in cleartext only, see :func:`upload_server`).
* without ``linger``: on asyncio, trio and the blocking client, against
  the same servers. uvicorn discards the rest of the body. hypercorn
  closes at once and resets the connection under the client that is still
  sending, and the 413 is read from what the kernel kept after the failed
  write: the blocking and trio backends read it from their socket, the
  asyncio backend takes it from the socket before its transport closes it.
  Over TLS that recovery is impossible on asyncio and trio (their TLS
  layers stop at the failed send): against a server that resets at once
  (hypercorn, left out over TLS anyway) they return the 413 only when they
  read it before the write failed.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable, Coroutine, Iterator
from typing import Any

import pytest
import yarl
from app import REJECT_UPLOAD_BODY

from conftest import ServerInfo
from webwire._sync import run_sync

OpenApi = Callable[..., Any]
Scenario = Callable[[OpenApi, ServerInfo, str], Coroutine[Any, Any, None]]

MiB = 1024 * 1024
UPLOAD = 50 * MiB
PIECE = 64 * 1024


class Upload:
    """A 50 MiB request body in 64 KiB pieces that counts what was taken."""

    def __init__(self) -> None:
        self.taken = 0
        self.piece = b"u" * PIECE

    def sync(self) -> Iterator[bytes]:
        for _ in range(UPLOAD // PIECE):
            self.taken += PIECE
            yield self.piece

    async def asynchronous(self) -> AsyncIterator[bytes]:
        for item in self.sync():
            yield item

    def body(self, is_async: bool) -> Any:
        return self.asynchronous() if is_async else self.sync()


def client_options(server: ServerInfo) -> dict[str, Any]:
    return {"verify": server.verify, "http2": False, "timeout": 20.0}


LINGER = "reject-upload?linger=0.3"
IMMEDIATE = "reject-upload"


async def s_early_413_streamed(open_api: OpenApi, server: ServerInfo, path: str) -> None:
    upload = Upload()
    async with open_api(**client_options(server)) as api:
        response = await api.post(
            server.url.join(yarl.URL(path)), content=upload.body(api.is_async)
        )
        assert response.status_code == 413
        assert response.http_version == "HTTP/1.1"
        assert response.content == REJECT_UPLOAD_BODY
        assert upload.taken < UPLOAD
        assert api.in_use() == 0
        # The client goes on working (on a new connection).
        assert (await api.get(server.url / "json")).status_code == 200


async def s_early_413_bytes(open_api: OpenApi, server: ServerInfo, path: str) -> None:
    async with open_api(**client_options(server)) as api:
        response = await api.post(server.url.join(yarl.URL(path)), content=b"b" * UPLOAD)
        assert response.status_code == 413
        assert response.content == REJECT_UPLOAD_BODY
        assert api.in_use() == 0
        assert (await api.get(server.url / "json")).status_code == 200


async def s_early_413_streamed_response(open_api: OpenApi, server: ServerInfo, path: str) -> None:
    upload = Upload()
    async with open_api(**client_options(server)) as api:
        url = server.url.join(yarl.URL(path))
        async with api.stream("PUT", url, content=upload.body(api.is_async)) as response:
            assert response.status_code == 413
            assert await response.aread() == REJECT_UPLOAD_BODY
        assert api.in_use() == 0
        assert api.idle() == 0  # the abandoned upload closed the connection


SCENARIOS = [s_early_413_streamed, s_early_413_bytes, s_early_413_streamed_response]
IDS = [s.__name__[2:] for s in SCENARIOS]


@pytest.fixture(params=["hypercorn-http", "uvicorn-http", "uvicorn-https"])
def upload_server(request: pytest.FixtureRequest) -> ServerInfo:
    """The servers that survive a client abandoning an upload.

    hypercorn over TLS is left out: the upload bytes still in flight when
    the client stops reach it after its close_notify, its connection task
    fails with ``SSLError: APPLICATION_DATA_AFTER_CLOSE_NOTIFY``, and that
    surfaces as a crash of the server when it shuts down, whatever the
    client did.
    """
    info: ServerInfo = request.getfixturevalue(request.param.replace("-", "_"))
    return info


@pytest.mark.anyio
@pytest.mark.parametrize("scenario", SCENARIOS, ids=IDS)
async def test_async_lingering(
    scenario: Scenario, async_api: OpenApi, upload_server: ServerInfo
) -> None:
    await scenario(async_api, upload_server, LINGER)


@pytest.mark.parametrize("scenario", SCENARIOS, ids=IDS)
def test_sync_lingering(scenario: Scenario, sync_api: OpenApi, upload_server: ServerInfo) -> None:
    run_sync(scenario(sync_api, upload_server, LINGER))


@pytest.mark.parametrize("scenario", SCENARIOS, ids=IDS)
def test_sync_immediate(scenario: Scenario, sync_api: OpenApi, upload_server: ServerInfo) -> None:
    run_sync(scenario(sync_api, upload_server, IMMEDIATE))


@pytest.mark.anyio
@pytest.mark.parametrize("scenario", SCENARIOS, ids=IDS)
async def test_async_immediate(
    scenario: Scenario, async_api: OpenApi, upload_server: ServerInfo
) -> None:
    await scenario(async_api, upload_server, IMMEDIATE)
