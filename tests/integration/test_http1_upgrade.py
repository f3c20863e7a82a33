"""HTTP/1.1 protocol switch against a real server: a WebSocket upgrade
request (RFC 6455 section 4.1) sent with webwire gets 101 from hypercorn,
the connection is detached from the pool, and one WebSocket message and
the closing handshake are exchanged over it with frames built by hand.

Runs on asyncio, trio and the blocking client, in cleartext and over TLS.
"""

from __future__ import annotations

import base64
import hashlib
import os
import struct
from collections.abc import Callable, Coroutine
from typing import Any

import pytest

from conftest import ServerInfo
from webwire._backends.base import NetworkStream
from webwire._sync import run_sync

OpenApi = Callable[..., Any]
Scenario = Callable[[OpenApi, ServerInfo], Coroutine[Any, Any, None]]

GUID = b"258EAFA5-E914-47DA-95CA-C5AB0DC85B11"
OP_TEXT, OP_CLOSE = 0x1, 0x8


def client_frame(opcode: int, payload: bytes) -> bytes:
    """A final, masked client frame (RFC 6455 section 5.2) of fewer than 126
    payload bytes."""
    assert len(payload) < 126
    mask = os.urandom(4)
    masked = bytes(byte ^ mask[i % 4] for i, byte in enumerate(payload))
    return bytes([0x80 | opcode, 0x80 | len(payload)]) + mask + masked


async def read_exactly(stream: NetworkStream, size: int) -> bytes:
    data = b""
    while len(data) < size:
        more = await stream.read(size - len(data), 5.0)
        assert more, f"end of stream after {len(data)} of {size} bytes"
        data += more
    return data


async def read_frame(stream: NetworkStream) -> tuple[int, bytes]:
    """One unmasked server frame of fewer than 126 payload bytes:
    ``(opcode, payload)``."""
    first, second = await read_exactly(stream, 2)
    assert first & 0x80, "fragmented frame"
    assert not second & 0x80, "a server frame must not be masked"
    length = second & 0x7F
    assert length < 126
    return first & 0x0F, await read_exactly(stream, length)


async def s_websocket_over_detached_connection(open_api: OpenApi, server: ServerInfo) -> None:
    key = base64.b64encode(os.urandom(16)).decode("ascii")
    headers = {
        "Upgrade": "websocket",
        "Connection": "Upgrade",
        "Sec-WebSocket-Key": key,
        "Sec-WebSocket-Version": "13",
    }
    expected_accept = base64.b64encode(hashlib.sha1(key.encode() + GUID).digest()).decode()
    async with open_api(verify=server.verify, http2=False) as api:
        async with api.stream("GET", server.url / "ws", headers=headers) as response:
            assert response.status_code == 101
            assert response.http_version == "HTTP/1.1"
            assert response.headers["upgrade"].lower() == "websocket"
            assert response.headers["sec-websocket-accept"] == expected_accept
            # Detach before the (empty) body is read: a response whose body
            # ended is closed, and with it a connection not detached.
            stream = response.extensions["detach"]()
            assert api.in_use() == 0
            assert api.idle() == 0
            assert await response.aread() == b""
        # Closing the response leaves the detached connection alone.
        await stream.write(client_frame(OP_TEXT, "héllo".encode()), 5.0)
        assert await read_frame(stream) == (OP_TEXT, "héllo".encode())
        await stream.write(client_frame(OP_CLOSE, struct.pack("!H", 1000)), 5.0)
        opcode, payload = await read_frame(stream)
        assert opcode == OP_CLOSE
        assert payload[:2] == struct.pack("!H", 1000)
        await stream.aclose()
        # The pool goes on with new connections.
        assert (await api.get(server.url / "json")).status_code == 200


async def s_upgrade_refused_is_a_response(open_api: OpenApi, server: ServerInfo) -> None:
    """An upgrade request the server refuses (no WebSocket key: 400) is an
    ordinary response, without ``detach``."""
    headers = {"Upgrade": "websocket", "Connection": "Upgrade"}
    async with open_api(verify=server.verify, http2=False) as api:
        response = await api.get(server.url / "ws", headers=headers)
        assert response.status_code == 400
        assert "detach" not in response.extensions
        assert api.in_use() == 0
        assert (await api.get(server.url / "json")).status_code == 200


async def s_detach_after_close_is_refused(open_api: OpenApi, server: ServerInfo) -> None:
    """A 101 response closed without detaching closes its connection;
    ``detach`` then refuses."""
    key = base64.b64encode(os.urandom(16)).decode("ascii")
    headers = {
        "Upgrade": "websocket",
        "Connection": "Upgrade",
        "Sec-WebSocket-Key": key,
        "Sec-WebSocket-Version": "13",
    }
    async with open_api(verify=server.verify, http2=False) as api:
        async with api.stream("GET", server.url / "ws", headers=headers) as response:
            assert response.status_code == 101
        assert api.in_use() == 0
        with pytest.raises(RuntimeError, match="closed"):
            response.extensions["detach"]()


SCENARIOS = [
    s_websocket_over_detached_connection,
    s_upgrade_refused_is_a_response,
    s_detach_after_close_is_refused,
]
IDS = [s.__name__[2:] for s in SCENARIOS]


@pytest.fixture(params=["hypercorn-http", "hypercorn-https"])
def ws_server(request: pytest.FixtureRequest) -> ServerInfo:
    """hypercorn, which serves WebSocket over HTTP/1.1 (uvicorn runs with
    ``ws="none"`` here)."""
    info: ServerInfo = request.getfixturevalue(request.param.replace("-", "_"))
    return info


@pytest.mark.anyio
@pytest.mark.parametrize("scenario", SCENARIOS, ids=IDS)
async def test_async(scenario: Scenario, async_api: OpenApi, ws_server: ServerInfo) -> None:
    await scenario(async_api, ws_server)


@pytest.mark.parametrize("scenario", SCENARIOS, ids=IDS)
def test_sync(scenario: Scenario, sync_api: OpenApi, ws_server: ServerInfo) -> None:
    run_sync(scenario(sync_api, ws_server))
