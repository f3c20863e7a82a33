"""Connection options against real servers: ``uds=`` (hypercorn on a Unix
socket, cleartext and TLS), ``local_address=``, the DNS cache and
``Limits.max_connections_per_host`` (also with many threads sharing one
blocking client). Each scenario runs on asyncio, trio and the blocking
client."""

from __future__ import annotations

import asyncio
import os
import tempfile
from collections.abc import Callable, Coroutine, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

import pytest

import webwire
from conftest import ServerInfo, ServerThread, TLSFiles
from webwire._sync import run_sync

OpenApi = Callable[..., Any]


def _hypercorn_unix(path: str, tls: TLSFiles | None) -> Any:
    async def serve(sock: Any, stop: asyncio.Event) -> None:
        from app import app
        from hypercorn.asyncio import serve as hypercorn_serve
        from hypercorn.config import Config

        config = Config()
        config.bind = [f"unix:{path}"]
        config.graceful_timeout = 1.0
        config.accesslog = None
        if tls is not None:
            config.certfile = tls.cert_path
            config.keyfile = tls.key_path
        await hypercorn_serve(app, config, shutdown_trigger=stop.wait)  # type: ignore[arg-type]

    return serve


@dataclass(frozen=True)
class UnixServers:
    plain: str  # socket path, cleartext
    tls: str  # socket path, TLS (certificate for localhost)


@pytest.fixture(scope="module")
def unix_servers(tls_files: TLSFiles) -> Iterator[UnixServers]:
    directory = tempfile.mkdtemp(prefix="webwire-uds-")
    paths = [os.path.join(directory, "plain.sock"), os.path.join(directory, "tls.sock")]
    threads = [
        ServerThread("hypercorn-uds", _hypercorn_unix(paths[0], None)),
        ServerThread("hypercorn-uds-tls", _hypercorn_unix(paths[1], tls_files)),
    ]
    for thread in threads:
        thread.start()
    try:
        import time

        deadline = time.monotonic() + 10.0
        while not all(os.path.exists(path) for path in paths):
            assert time.monotonic() < deadline, "hypercorn did not create its Unix sockets"
            time.sleep(0.05)
        yield UnixServers(*paths)
    finally:
        for thread in threads:
            thread.stop()
        for path in paths:
            if os.path.exists(path):
                os.unlink(path)
        os.rmdir(directory)


@dataclass(frozen=True)
class Setup:
    http: ServerInfo
    unix: UnixServers
    ca_path: str


@pytest.fixture
def setup(hypercorn_http: ServerInfo, unix_servers: UnixServers, ca_path: str) -> Setup:
    return Setup(hypercorn_http, unix_servers, ca_path)


Scenario = Callable[[OpenApi, Setup], Coroutine[Any, Any, None]]


async def s_unix_socket(open_api: OpenApi, s: Setup) -> None:
    """Every request goes to the Unix socket whatever the URL's host; the
    connection is kept and reused."""
    async with open_api(uds=s.unix.plain) as api:
        first = await api.get("http://any-name.invalid/echo?a=1")
        assert first.status_code == 200
        echo = first.json()
        assert echo["query"] == "a=1"
        assert ["host", "any-name.invalid"] in echo["headers"]
        second = await api.get("http://any-name.invalid/json")
        assert second.status_code == 200
        assert api.pool.connections_idle() == 1


async def s_unix_socket_tls(open_api: OpenApi, s: Setup) -> None:
    """``https`` over the Unix socket: TLS with the URL's host name, HTTP/2
    with ALPN."""
    async with open_api(uds=s.unix.tls, verify=s.ca_path) as api:
        response = await api.get("https://localhost/echo")
        assert response.status_code == 200
        assert response.http_version == "HTTP/2"
    async with open_api(uds=s.unix.tls, verify=s.ca_path) as api:
        with pytest.raises(webwire.ConnectError):
            await api.get("https://wrong-name.example/echo")  # certificate mismatch


async def s_unix_socket_missing(open_api: OpenApi, s: Setup) -> None:
    async with open_api(uds=s.unix.plain + ".missing") as api:
        with pytest.raises(webwire.ConnectError):
            await api.get("http://localhost/echo")


async def s_local_address(open_api: OpenApi, s: Setup) -> None:
    """The source address is the one asked for; one that is not ours
    cannot be bound."""
    async with open_api(local_address="127.0.0.1") as api:
        echo = (await api.get(f"{s.http.url}/echo")).json()
        assert echo["client"][0] == "127.0.0.1"
    async with open_api(local_address="192.0.2.1") as api:  # TEST-NET-1, not local
        with pytest.raises(webwire.ConnectError):
            await api.get(f"{s.http.url}/echo")


async def s_dns_cache_with_a_real_resolver(open_api: OpenApi, s: Setup) -> None:
    """``localhost`` resolved once for several connections; the trace hook
    sees a miss, then hits."""
    events: list[str] = []

    async def trace(signal: str, params: dict[str, Any]) -> None:
        if signal.startswith("dns_"):
            assert params == {"host": "localhost"}
            events.append(signal)

    url = f"http://localhost:{s.http.url.port}/echo"
    async with open_api(limits=webwire.Limits(max_keepalive_connections=0)) as api:
        for _ in range(3):
            response = await api.get(url, extensions={"trace": trace})
            assert response.status_code == 200
    assert events == [
        "dns_cache_miss",
        "dns_resolvehost_start",
        "dns_resolvehost_end",
        "dns_cache_hit",
        "dns_cache_hit",
    ]


async def s_max_connections_per_host(open_api: OpenApi, s: Setup) -> None:
    """Eight concurrent requests (tasks, or threads on the blocking client)
    share at most two connections to the host."""
    limits = webwire.Limits(max_connections_per_host=2)
    async with open_api(limits=limits, timeout=10.0) as api:

        async def one(i: int) -> Any:
            return await api.get(f"{s.http.url}/delay/0.05")

        results = await api.gather(8, one)
        clients = set()
        for result in results:
            assert not isinstance(result, BaseException), result
            assert result.status_code == 200
            clients.add(tuple(result.json()["client"]))
        assert len(clients) <= 2
        assert len(api.pool.connections()) <= 2


SCENARIOS: list[Scenario] = [
    s_unix_socket,
    s_unix_socket_tls,
    s_unix_socket_missing,
    s_local_address,
    s_dns_cache_with_a_real_resolver,
    s_max_connections_per_host,
]
IDS = [scenario.__name__[2:] for scenario in SCENARIOS]


@pytest.mark.anyio
@pytest.mark.parametrize("scenario", SCENARIOS, ids=IDS)
async def test_async(scenario: Scenario, async_api: OpenApi, setup: Setup) -> None:
    await scenario(async_api, setup)


@pytest.mark.parametrize("scenario", SCENARIOS, ids=IDS)
def test_sync(scenario: Scenario, sync_api: OpenApi, setup: Setup) -> None:
    run_sync(scenario(sync_api, setup))


def test_many_threads_share_the_per_host_limit_and_dns_cache(setup: Setup) -> None:
    """Sixteen threads hammer one blocking client: every request succeeds,
    never more than three connections to the host exist, and the name was
    resolved at most once per connection (concurrent misses each resolve;
    later connections use the cache)."""
    resolved: list[str] = []

    async def trace(signal: str, params: dict[str, Any]) -> None:
        if signal == "dns_resolvehost_start":
            resolved.append(params["host"])

    limits = webwire.Limits(max_connections_per_host=3)
    url = f"http://localhost:{setup.http.url.port}/echo"
    with webwire.Client(limits=limits, timeout=20.0) as client:

        def work(i: int) -> set[tuple[str, int]]:
            seen = set()
            for _ in range(10):
                response = client.get(url, extensions={"trace": trace})
                assert response.status_code == 200
                seen.add(tuple(response.json()["client"]))
            return seen

        with ThreadPoolExecutor(16) as pool:
            clients = set().union(*pool.map(work, range(16)))
        assert len(clients) <= 3
        assert len(client._client._transport.pool.connections()) <= 3
    assert 1 <= len(resolved) <= 3
    assert set(resolved) == {"localhost"}
