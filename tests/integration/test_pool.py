"""Connection pool limits against a real server: reuse, the idle-connection
cap and eviction of idle connections of another origin. Each scenario runs
on asyncio, trio and the blocking client.

Timing behaviour (keep-alive expiry, pool, read and total timeouts) is
tested on the in-memory backend's fake clock, in
``tests/transport/test_pool_memory.py``."""

from __future__ import annotations

from collections.abc import Callable, Coroutine
from typing import Any

import pytest

import webwire
from webwire._sync import run_sync

OpenApi = Callable[..., Any]
Scenario = Callable[[OpenApi, Any], Coroutine[Any, Any, None]]


async def client_port(api: Any, url: str) -> int:
    """The client-side port of the connection that carried a GET of /echo."""
    r = await api.get(url)
    port: int = r.json()["client"][1]
    return port


async def s_reuse(open_api: OpenApi, server: Any) -> None:
    url = f"{server.url}/echo"
    async with open_api(verify=server.verify) as api:
        first = await client_port(api, url)
        assert await client_port(api, url) == first  # the idle connection
        assert api.idle() == 1
        assert api.in_use() == 0


async def s_max_keepalive(open_api: OpenApi, server: Any) -> None:
    url = f"{server.url}/echo"
    limits = webwire.Limits(max_connections=4, max_keepalive_connections=1)
    async with open_api(limits=limits, verify=server.verify) as api:
        async with api.stream("GET", url) as a, api.stream("GET", url) as b:
            assert api.in_use() == 2
            await a.aread()
            await b.aread()
        assert api.in_use() == 0
        assert api.idle() == 1  # the second released connection was closed


async def s_evicts_idle_of_other_origin(open_api: OpenApi, server: Any) -> None:
    # 127.0.0.1 and localhost are two origins served by the same server.
    other = server.url.with_host("localhost")
    limits = webwire.Limits(max_connections=1)
    timeout = webwire.Timeout(5.0, pool=0.5)
    async with open_api(limits=limits, timeout=timeout, verify=server.verify) as api:
        assert (await api.get(f"{server.url}/echo")).status_code == 200
        assert api.idle() == 1
        # The only slot holds an idle connection to another origin: it is
        # closed to make room instead of waiting for the pool timeout.
        assert (await api.get(f"{other}/echo")).status_code == 200
        assert api.idle() == 1
        assert api.in_use() == 0


SCENARIOS: list[Scenario] = [
    s_reuse,
    s_max_keepalive,
    s_evicts_idle_of_other_origin,
]


@pytest.mark.anyio
@pytest.mark.parametrize("scenario", SCENARIOS, ids=lambda s: s.__name__[2:])
async def test_pool_async(scenario: Scenario, async_api: OpenApi, http_server: Any) -> None:
    await scenario(async_api, http_server)


@pytest.mark.parametrize("scenario", SCENARIOS, ids=lambda s: s.__name__[2:])
def test_pool_sync(scenario: Scenario, sync_api: OpenApi, http_server: Any) -> None:
    run_sync(scenario(sync_api, http_server))


@pytest.mark.anyio
async def test_pool_over_tls(async_api: OpenApi, https_server: Any) -> None:
    await s_reuse(async_api, https_server)


def test_pool_timeout_sync_threads(http_server: Any) -> None:
    """Blocking client shared by threads: with the only connection held,
    other threads get PoolTimeout, and the slot serves them once freed.
    (The timing itself is tested on the memory backend's fake clock.)"""
    import threading

    limits = webwire.Limits(max_connections=1)
    timeout = webwire.Timeout(5.0, pool=0.2)
    errors: list[BaseException] = []
    with webwire.Client(limits=limits, timeout=timeout) as client:
        with client.stream("GET", f"{http_server.url}/echo") as held:

            def waiter() -> None:
                try:
                    client.get(f"{http_server.url}/echo")
                except BaseException as exc:
                    errors.append(exc)

            threads = [threading.Thread(target=waiter) for _ in range(4)]
            for thread in threads:
                thread.start()
            for thread in threads:
                thread.join(10)
            held.read()
        assert len(errors) == 4
        assert all(isinstance(exc, webwire.PoolTimeout) for exc in errors)
        assert client.get(f"{http_server.url}/echo").status_code == 200


def test_pool_over_tls_sync(sync_api: OpenApi, https_server: Any) -> None:
    run_sync(s_reuse(sync_api, https_server))
