"""HTTP/3 version choice against real servers: one client with
``http3=True`` on an HTTP/1.1-only server (uvicorn), an HTTP/2 server
(hypercorn over TLS) and hypercorn with HTTP/3 (``quic_bind``, aioquic
inside) after its ``Alt-Svc``; the fallback to TCP when the UDP port is
closed (remembered: not tried again); forced HTTP/3 that cannot connect;
forced HTTP/3 to the aioquic server (no TCP at all) and WebSocket over
HTTP/3 (RFC 9220).

Each scenario is one coroutine taking an ``open_api`` factory (see
``tests/conftest.py``); it runs on asyncio and trio, and through the
blocking ``webwire.Client``.
"""

from __future__ import annotations

import json
import socket
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from app import JSON_DOCUMENT

import webwire
import webwire.websocket
from webwire._sync import run_sync

OpenApi = Callable[..., Any]


class Signals:
    """A trace hook (``extensions={"trace": ...}``) recording the signals of
    getting a connection."""

    def __init__(self) -> None:
        self.names: list[str] = []

    async def __call__(self, name: str, params: dict[str, Any]) -> None:
        self.names.append(name)

    def take(self) -> list[str]:
        names, self.names = self.names, []
        return [name for name in names if name.startswith("connection_")]


@pytest.fixture
def closed_udp_port() -> int:
    """A UDP port on 127.0.0.1 that nothing listens on (ICMP unreachable)."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.bind(("127.0.0.1", 0))
    port: int = sock.getsockname()[1]
    sock.close()
    return port


@pytest.fixture
def silent_udp_port() -> Iterator[int]:
    """A UDP port on 127.0.0.1 bound by a socket that never answers (the
    datagrams are dropped, as by a firewall)."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.bind(("127.0.0.1", 0))
    try:
        yield sock.getsockname()[1]
    finally:
        sock.close()


# -- scenarios ---------------------------------------------------------------------


async def s_three_servers(open_api: OpenApi, servers: dict[str, Any]) -> None:
    """One client, http3=True: HTTP/1.1 from uvicorn, HTTP/2 from hypercorn,
    and HTTP/3 from hypercorn with quic_bind once it sent Alt-Svc."""
    h1, h2, h3 = servers["h1"], servers["h2"], servers["h3"]
    async with open_api(http3=True, verify=h3.ca_path) as api:
        for _ in range(2):
            r = await api.get(f"{h1.url}/json")
            assert (r.http_version, r.json()) == ("HTTP/1.1", JSON_DOCUMENT)
            assert "alt-svc" not in r.headers
            r = await api.get(f"{h2.url}/json")
            assert (r.http_version, r.json()) == ("HTTP/2", JSON_DOCUMENT)
        first = await api.get(f"{h3.url}/json")
        assert first.http_version == "HTTP/2"  # TCP first: nothing known yet
        assert f'h3=":{h3.udp_port}"' in first.headers["Alt-Svc"]
        second = await api.get(f"{h3.url}/json")
        assert (second.http_version, second.json()) == ("HTTP/3", JSON_DOCUMENT)
        assert second.extensions["quic_handshake_time"] > 0
        posted = await api.post(f"{h3.url}/echo", content=b"x" * 100_000)
        assert posted.http_version == "HTTP/3"
        assert posted.json()["body_length"] == 100_000
        cache = api.client.alt_svc
        assert [alt.port for alt in cache.get(str(h3.url))] == [h3.udp_port]
        assert cache.get(str(h2.url)) == [] and cache.get(str(h1.url)) == []
        pool = api.pool
        versions = sorted(conn.http_version for conn in pool.connections())
        assert versions == ["HTTP/1.1", "HTTP/2", "HTTP/2", "HTTP/3"]
        assert api.in_use() == 0


async def s_fallback_is_remembered(open_api: OpenApi, server: Any, closed_port: int) -> None:
    """An alternative on a closed UDP port: the request goes over TCP and
    QUIC is not tried again for the next requests."""
    signals = Signals()
    trace = {"trace": signals}
    async with open_api(http3=True, verify=server.ca_path, timeout=5.0) as api:
        alt = api.client.alt_svc.add(str(server.url), port=closed_port)
        r = await api.get(f"{server.url}/json", extensions=trace)
        assert (r.http_version, r.json()) == ("HTTP/2", JSON_DOCUMENT)
        # the QUIC attempt, then the TCP connection
        assert signals.take() == [
            "connection_create_start",
            "connection_create_start",
            "connection_create_end",
        ]
        assert api.client.alt_svc.is_broken(str(server.url), alt)
        for _ in range(3):
            r = await api.get(f"{server.url}/json", extensions=trace)
            assert r.http_version == "HTTP/2"
            assert signals.take() == ["connection_reuseconn"]  # no QUIC attempt
        assert [conn.http_version for conn in api.pool.connections()] == ["HTTP/2"]


async def s_forced_closed_port(open_api: OpenApi, server: Any, closed_port: int) -> None:
    url = f"https://127.0.0.1:{closed_port}/json"
    timeout = webwire.Timeout(5.0, connect=2.0)
    async with open_api(http_versions={"HTTP/3"}, verify=server.ca_path, timeout=timeout) as api:
        with pytest.raises((webwire.ConnectError, webwire.ConnectTimeout)):
            await api.get(url)
        assert api.pool.connections() == []


async def s_forced_silent_port(open_api: OpenApi, server: Any, silent_port: int) -> None:
    url = f"https://127.0.0.1:{silent_port}/json"
    timeout = webwire.Timeout(5.0, connect=0.5)
    async with open_api(verify=server.ca_path, timeout=timeout) as api:
        with pytest.raises(webwire.ConnectTimeout):
            await api.get(url, extensions={"http_versions": {"HTTP/3"}})
        assert api.pool.connections() == []


async def s_forced_http3_only_server(open_api: OpenApi, server: Any) -> None:
    """The aioquic server has no TCP side: forced HTTP/3 on the URL's port."""
    async with open_api(http_versions={"HTTP/3"}, verify=server.ca_path) as api:
        r = await api.get(f"{server.url}/json")
        assert (r.http_version, r.json()) == ("HTTP/3", JSON_DOCUMENT)
        gathered = await api.gather(8, lambda i: api.get(f"{server.url}/echo?n={i}"))
        assert [json.loads(g.content)["query"] for g in gathered] == [
            f"n={i}" for i in range(8)
        ]
        assert len(api.pool.connections()) == 1  # multiplexed on one connection
    # per request, on a client with HTTP/3 off
    async with open_api(verify=server.ca_path) as api:
        r = await api.get(f"{server.url}/json", extensions={"http_versions": {"HTTP/3"}})
        assert r.http_version == "HTTP/3"


# -- the tests: asyncio, trio and sync --------------------------------------------------


@pytest.fixture
def three_servers(uvicorn_https: Any, hypercorn_https: Any, h3_hypercorn: Any) -> dict[str, Any]:
    return {"h1": uvicorn_https, "h2": hypercorn_https, "h3": h3_hypercorn}


@pytest.mark.anyio
async def test_three_servers(async_api: OpenApi, three_servers: dict[str, Any]) -> None:
    await s_three_servers(async_api, three_servers)


def test_three_servers_sync(sync_api: OpenApi, three_servers: dict[str, Any]) -> None:
    run_sync(s_three_servers(sync_api, three_servers))


@pytest.mark.anyio
async def test_fallback_is_remembered(
    async_api: OpenApi, hypercorn_https: Any, closed_udp_port: int
) -> None:
    await s_fallback_is_remembered(async_api, hypercorn_https, closed_udp_port)


def test_fallback_is_remembered_sync(
    sync_api: OpenApi, hypercorn_https: Any, closed_udp_port: int
) -> None:
    run_sync(s_fallback_is_remembered(sync_api, hypercorn_https, closed_udp_port))


@pytest.mark.anyio
async def test_forced_closed_port(
    async_api: OpenApi, hypercorn_https: Any, closed_udp_port: int
) -> None:
    await s_forced_closed_port(async_api, hypercorn_https, closed_udp_port)


def test_forced_closed_port_sync(
    sync_api: OpenApi, hypercorn_https: Any, closed_udp_port: int
) -> None:
    run_sync(s_forced_closed_port(sync_api, hypercorn_https, closed_udp_port))


@pytest.mark.anyio
async def test_forced_silent_port(
    async_api: OpenApi, hypercorn_https: Any, silent_udp_port: int
) -> None:
    await s_forced_silent_port(async_api, hypercorn_https, silent_udp_port)


def test_forced_silent_port_sync(
    sync_api: OpenApi, hypercorn_https: Any, silent_udp_port: int
) -> None:
    run_sync(s_forced_silent_port(sync_api, hypercorn_https, silent_udp_port))


@pytest.mark.anyio
async def test_forced_http3_only_server(async_api: OpenApi, aioquic_h3: Any) -> None:
    await s_forced_http3_only_server(async_api, aioquic_h3)


def test_forced_http3_only_server_sync(sync_api: OpenApi, aioquic_h3: Any) -> None:
    run_sync(s_forced_http3_only_server(sync_api, aioquic_h3))


# -- WebSocket over HTTP/3 (RFC 9220) ------------------------------------------------------


@pytest.mark.anyio
async def test_websocket_over_http3(aioquic_h3: Any) -> None:
    ws_url = str(aioquic_h3.url.with_scheme("wss")) + "/ws"
    before = aioquic_h3.server.stats.snapshot()["websockets"]
    async with webwire.websocket.connect(
        ws_url, http_version="HTTP/3", verify=aioquic_h3.ca_path
    ) as ws:
        assert ws.http_version == "HTTP/3"
        await ws.send("hello")
        assert await ws.recv() == "hello"
    # "auto" on a client with http3=True, the origin in its Alt-Svc cache
    async with webwire.AsyncClient(http3=True, verify=aioquic_h3.ca_path) as client:
        assert client.alt_svc is not None
        client.alt_svc.add(str(aioquic_h3.url))
        async with client.websocket(ws_url) as ws:
            assert ws.http_version == "HTTP/3"
            await ws.send(b"\x00\x01")
            assert await ws.recv() == b"\x00\x01"
    assert aioquic_h3.server.stats.snapshot()["websockets"] == before + 2


def test_websocket_over_http3_sync(aioquic_h3: Any) -> None:
    ws_url = str(aioquic_h3.url.with_scheme("wss")) + "/ws"
    with webwire.Client(http_versions={"HTTP/3"}, verify=aioquic_h3.ca_path) as client:
        with client.websocket(ws_url) as ws:
            assert ws.http_version == "HTTP/3"
            ws.send("sync")
            assert ws.recv(10) == "sync"


@pytest.mark.anyio
async def test_websocket_auto_stays_on_tcp_without_http3(hypercorn_https: Any) -> None:
    """http3 on, but the origin has no HTTP/3: the WebSocket goes over TCP
    (HTTP/2 extended CONNECT or HTTP/1.1) as before."""
    ws_url = str(hypercorn_https.url.with_scheme("wss")) + "/ws"
    async with webwire.AsyncClient(http3=True, verify=hypercorn_https.ca_path) as client:
        async with client.websocket(ws_url) as ws:
            assert ws.http_version in ("HTTP/1.1", "HTTP/2")
            await ws.send("tcp")
            assert await ws.recv() == "tcp"


# -- many requests at once, one HTTP/3 connection ---------------------------------------------


async def s_first_requests_share_one_connection(open_api: OpenApi, server: Any) -> None:
    """16 first requests at once (tasks, or threads of a blocking client)
    with the origin's HTTP/3 alternative known: one QUIC connection is
    opened and the others wait for it, then share it."""
    async with open_api(http3=True, verify=server.ca_path) as api:
        api.client.alt_svc.add(str(server.url))
        responses = await api.gather(16, lambda i: api.get(f"{server.url}/json?n={i}"))
        assert [(r.http_version, r.status_code) for r in responses] == [("HTTP/3", 200)] * 16
        assert [conn.http_version for conn in api.pool.connections()] == ["HTTP/3"]
        assert api.in_use() == 0


@pytest.mark.anyio
async def test_first_requests_share_one_connection(async_api: OpenApi, h3_hypercorn: Any) -> None:
    await s_first_requests_share_one_connection(async_api, h3_hypercorn)


def test_first_requests_share_one_connection_sync(sync_api: OpenApi, h3_hypercorn: Any) -> None:
    run_sync(s_first_requests_share_one_connection(sync_api, h3_hypercorn))
