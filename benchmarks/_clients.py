"""The HTTP clients compared by ``benchmarks/http1.py`` and their scenarios.

Every scenario function builds its client, warms it up (opens the
connections it will use), then times only the requests, and verifies every
response (status 200 and the exact body, or the exact byte count for the
download), so that a client that skips work cannot look fast. Each returns
the elapsed time in seconds of the timed part.

Scenarios:

* ``sequential``: ``Workload.requests`` keep-alive GETs of a 13-byte body,
  one after the other on one connection.
* ``concurrent``: ``Workload.requests`` GETs of the same body issued by
  ``Workload.concurrency`` tasks at once over one pool (async clients).
* ``download``: one GET of ``Workload.big_size`` bytes, iterating over the
  body chunks as the client delivers them and counting bytes.
"""

from __future__ import annotations

import importlib
from collections.abc import Awaitable, Callable, Coroutine
from dataclasses import dataclass
from time import perf_counter
from typing import Any

from _servers import HELLO_BODY

__all__ = ["CLIENTS", "SCENARIOS", "ClientSpec", "ResponseMismatch", "Workload"]

SCENARIOS = ("sequential", "concurrent", "download")
POOL_SIZE = 100
TIMEOUT = 10.0
SYNC_CHUNK = 64 * 1024


class ResponseMismatch(RuntimeError):
    """A client returned a wrong status or body: its timing is not valid."""


@dataclass(frozen=True)
class Workload:
    """What one measurement does.

    Attributes:
        hello_url: URL answering 200 with the 13-byte ``Hello, world!``.
        big_url: URL answering 200 with ``big_size`` bytes.
        big_size: Size of the large body, in bytes.
        requests: Number of timed GETs in ``sequential`` and ``concurrent``
            (for ``concurrent``, a multiple of ``concurrency``).
        concurrency: Number of requests in flight at once in ``concurrent``.
    """

    hello_url: str
    big_url: str
    big_size: int
    requests: int
    concurrency: int


AsyncScenario = Callable[[Workload, str], Coroutine[Any, Any, float]]
SyncScenario = Callable[[Workload], float]


@dataclass(frozen=True)
class ClientSpec:
    """One client under test.

    Attributes:
        name: Label in the results table.
        runtime: ``"asyncio"``, ``"trio"`` or ``"sync"``.
        module: Module imported to decide whether the client is available.
        attribute: Attribute of ``module`` that must exist (``""``: none).
        scenarios: Scenario name -> function. Async functions take the
            workload and the runtime name; sync functions the workload.
    """

    name: str
    runtime: str
    module: str
    attribute: str
    scenarios: dict[str, AsyncScenario | SyncScenario]

    def unavailable_reason(self) -> str | None:
        """Return why the client cannot run here, or ``None`` when it can."""
        try:
            mod = importlib.import_module(self.module)
            if self.runtime == "trio":
                importlib.import_module("trio")
        except Exception as exc:
            return f"import failed: {type(exc).__name__}: {exc}"
        if self.attribute and not hasattr(mod, self.attribute):
            return f"{self.module}.{self.attribute} does not exist yet"
        return None


def check_hello(client: str, status: int, body: bytes) -> None:
    """Raise :class:`ResponseMismatch` unless ``status`` is 200 and ``body`` is right."""
    if status != 200 or body != HELLO_BODY:
        raise ResponseMismatch(f"{client}: got status {status} and body {body[:40]!r}")


def check_download(client: str, status: int, received: int, expected: int) -> None:
    """Raise :class:`ResponseMismatch` unless the whole large body arrived."""
    if status != 200 or received != expected:
        raise ResponseMismatch(
            f"{client}: got status {status} and {received} bytes, expected {expected}"
        )


async def _run_tasks(runtime: str, count: int, fn: Callable[[], Awaitable[None]]) -> None:
    """Run ``count`` copies of ``fn`` at once on ``runtime`` and wait for all."""
    if runtime == "trio":
        import trio

        async with trio.open_nursery() as nursery:
            for _ in range(count):
                nursery.start_soon(fn)
    else:
        import asyncio

        await asyncio.gather(*(fn() for _ in range(count)))


async def _concurrent(work: Workload, runtime: str, one: Callable[[], Awaitable[None]]) -> float:
    """Warm the pool with one request per task, then time the whole workload."""
    per_task = work.requests // work.concurrency

    async def warm() -> None:
        await one()

    async def worker() -> None:
        for _ in range(per_task):
            await one()

    await _run_tasks(runtime, work.concurrency, warm)
    start = perf_counter()
    await _run_tasks(runtime, work.concurrency, worker)
    return perf_counter() - start


# -- webwire ---------------------------------------------------------------


def _webwire_options() -> dict[str, Any]:
    import webwire

    return {
        "timeout": webwire.Timeout(TIMEOUT),
        "limits": webwire.Limits(max_connections=POOL_SIZE, max_keepalive_connections=POOL_SIZE),
        "trust_env": False,
    }


async def webwire_async_sequential(work: Workload, runtime: str) -> float:
    """Sequential GETs with ``webwire.AsyncClient`` (asyncio or trio)."""
    import webwire

    url = work.hello_url
    async with webwire.AsyncClient(**_webwire_options()) as client:
        r = await client.get(url)
        check_hello("webwire", r.status_code, r.content)
        start = perf_counter()
        for _ in range(work.requests):
            r = await client.get(url)
            check_hello("webwire", r.status_code, r.content)
        return perf_counter() - start


async def webwire_async_concurrent(work: Workload, runtime: str) -> float:
    """Concurrent GETs with ``webwire.AsyncClient`` (asyncio or trio)."""
    import webwire

    url = work.hello_url
    async with webwire.AsyncClient(**_webwire_options()) as client:

        async def one() -> None:
            r = await client.get(url)
            check_hello("webwire", r.status_code, r.content)

        return await _concurrent(work, runtime, one)


async def webwire_async_download(work: Workload, runtime: str) -> float:
    """Streamed download with ``webwire.AsyncClient`` (asyncio or trio)."""
    import webwire

    async with webwire.AsyncClient(**_webwire_options()) as client:
        start = perf_counter()
        received = 0
        async with client.stream("GET", work.big_url) as r:
            async for chunk in r.aiter_bytes():
                received += len(chunk)
            status = r.status_code
        elapsed = perf_counter() - start
    check_download("webwire", status, received, work.big_size)
    return elapsed


def webwire_sync_sequential(work: Workload) -> float:
    """Sequential GETs with the blocking ``webwire.Client``."""
    import webwire

    url = work.hello_url
    with webwire.Client(**_webwire_options()) as client:
        r = client.get(url)
        check_hello("webwire", r.status_code, r.content)
        start = perf_counter()
        for _ in range(work.requests):
            r = client.get(url)
            check_hello("webwire", r.status_code, r.content)
        return perf_counter() - start


def webwire_sync_download(work: Workload) -> float:
    """Streamed download with the blocking ``webwire.Client``."""
    import webwire

    with webwire.Client(**_webwire_options()) as client:
        start = perf_counter()
        received = 0
        with client.stream("GET", work.big_url) as r:
            for chunk in r.iter_bytes():
                received += len(chunk)
            status = r.status_code
        elapsed = perf_counter() - start
    check_download("webwire", status, received, work.big_size)
    return elapsed


# -- aiohttp ---------------------------------------------------------------


def _aiohttp_session() -> Any:
    import aiohttp

    return aiohttp.ClientSession(
        connector=aiohttp.TCPConnector(limit=POOL_SIZE),
        timeout=aiohttp.ClientTimeout(total=None, sock_read=TIMEOUT, sock_connect=TIMEOUT),
    )


async def aiohttp_sequential(work: Workload, runtime: str) -> float:
    """Sequential GETs with ``aiohttp.ClientSession``."""
    url = work.hello_url
    async with _aiohttp_session() as session:
        async with session.get(url) as r:
            check_hello("aiohttp", r.status, await r.read())
        start = perf_counter()
        for _ in range(work.requests):
            async with session.get(url) as r:
                check_hello("aiohttp", r.status, await r.read())
        return perf_counter() - start


async def aiohttp_concurrent(work: Workload, runtime: str) -> float:
    """Concurrent GETs with ``aiohttp.ClientSession``."""
    url = work.hello_url
    async with _aiohttp_session() as session:

        async def one() -> None:
            async with session.get(url) as r:
                check_hello("aiohttp", r.status, await r.read())

        return await _concurrent(work, runtime, one)


async def aiohttp_download(work: Workload, runtime: str) -> float:
    """Streamed download with ``aiohttp.ClientSession`` (``iter_any``)."""
    async with _aiohttp_session() as session:
        start = perf_counter()
        received = 0
        async with session.get(work.big_url) as r:
            async for chunk in r.content.iter_any():
                received += len(chunk)
            status = r.status
        elapsed = perf_counter() - start
    check_download("aiohttp", status, received, work.big_size)
    return elapsed


# -- httpx -----------------------------------------------------------------


def _httpx_options() -> dict[str, Any]:
    import httpx

    return {
        "timeout": TIMEOUT,
        "limits": httpx.Limits(max_connections=POOL_SIZE, max_keepalive_connections=POOL_SIZE),
        "trust_env": False,
    }


async def httpx_async_sequential(work: Workload, runtime: str) -> float:
    """Sequential GETs with ``httpx.AsyncClient``."""
    import httpx

    url = work.hello_url
    async with httpx.AsyncClient(**_httpx_options()) as client:
        r = await client.get(url)
        check_hello("httpx", r.status_code, r.content)
        start = perf_counter()
        for _ in range(work.requests):
            r = await client.get(url)
            check_hello("httpx", r.status_code, r.content)
        return perf_counter() - start


async def httpx_async_concurrent(work: Workload, runtime: str) -> float:
    """Concurrent GETs with ``httpx.AsyncClient``."""
    import httpx

    url = work.hello_url
    async with httpx.AsyncClient(**_httpx_options()) as client:

        async def one() -> None:
            r = await client.get(url)
            check_hello("httpx", r.status_code, r.content)

        return await _concurrent(work, runtime, one)


async def httpx_async_download(work: Workload, runtime: str) -> float:
    """Streamed download with ``httpx.AsyncClient`` (``aiter_bytes``)."""
    import httpx

    async with httpx.AsyncClient(**_httpx_options()) as client:
        start = perf_counter()
        received = 0
        async with client.stream("GET", work.big_url) as r:
            async for chunk in r.aiter_bytes():
                received += len(chunk)
            status = r.status_code
        elapsed = perf_counter() - start
    check_download("httpx", status, received, work.big_size)
    return elapsed


def httpx_sync_sequential(work: Workload) -> float:
    """Sequential GETs with ``httpx.Client``."""
    import httpx

    url = work.hello_url
    with httpx.Client(**_httpx_options()) as client:
        r = client.get(url)
        check_hello("httpx", r.status_code, r.content)
        start = perf_counter()
        for _ in range(work.requests):
            r = client.get(url)
            check_hello("httpx", r.status_code, r.content)
        return perf_counter() - start


def httpx_sync_download(work: Workload) -> float:
    """Streamed download with ``httpx.Client`` (``iter_bytes``)."""
    import httpx

    with httpx.Client(**_httpx_options()) as client:
        start = perf_counter()
        received = 0
        with client.stream("GET", work.big_url) as r:
            for chunk in r.iter_bytes():
                received += len(chunk)
            status = r.status_code
        elapsed = perf_counter() - start
    check_download("httpx", status, received, work.big_size)
    return elapsed


# -- urllib3 and requests --------------------------------------------------


def urllib3_sequential(work: Workload) -> float:
    """Sequential GETs with ``urllib3.PoolManager``."""
    import urllib3

    url = work.hello_url
    timeout = urllib3.Timeout(TIMEOUT)
    with urllib3.PoolManager(timeout=timeout, retries=False) as pool:
        r = pool.request("GET", url)
        check_hello("urllib3", r.status, r.data)
        start = perf_counter()
        for _ in range(work.requests):
            r = pool.request("GET", url)
            check_hello("urllib3", r.status, r.data)
        return perf_counter() - start


def urllib3_download(work: Workload) -> float:
    """Streamed download with ``urllib3.PoolManager`` (``stream(64 KiB)``)."""
    import urllib3

    timeout = urllib3.Timeout(TIMEOUT)
    with urllib3.PoolManager(timeout=timeout, retries=False) as pool:
        start = perf_counter()
        received = 0
        r = pool.request("GET", work.big_url, preload_content=False)
        for chunk in r.stream(SYNC_CHUNK):
            received += len(chunk)
        r.release_conn()
        elapsed = perf_counter() - start
        check_download("urllib3", r.status, received, work.big_size)
    return elapsed


def _requests_session() -> Any:
    import requests  # type: ignore[import-untyped,unused-ignore]

    session = requests.Session()
    session.trust_env = False
    return session


def requests_sequential(work: Workload) -> float:
    """Sequential GETs with ``requests.Session``."""
    url = work.hello_url
    with _requests_session() as session:
        r = session.get(url, timeout=TIMEOUT)
        check_hello("requests", r.status_code, r.content)
        start = perf_counter()
        for _ in range(work.requests):
            r = session.get(url, timeout=TIMEOUT)
            check_hello("requests", r.status_code, r.content)
        elapsed: float = perf_counter() - start
        return elapsed


def requests_download(work: Workload) -> float:
    """Streamed download with ``requests.Session`` (``iter_content(64 KiB)``)."""
    with _requests_session() as session:
        start = perf_counter()
        received = 0
        with session.get(work.big_url, stream=True, timeout=TIMEOUT) as r:
            for chunk in r.iter_content(SYNC_CHUNK):
                received += len(chunk)
            status: int = r.status_code
        elapsed = perf_counter() - start
    check_download("requests", status, received, work.big_size)
    return elapsed


def _async_spec(name: str, runtime: str, module: str, attribute: str, prefix: str) -> ClientSpec:
    funcs = globals()
    return ClientSpec(
        name,
        runtime,
        module,
        attribute,
        {scenario: funcs[f"{prefix}_{scenario}"] for scenario in SCENARIOS},
    )


def _sync_spec(name: str, module: str, attribute: str, prefix: str) -> ClientSpec:
    funcs = globals()
    return ClientSpec(
        name,
        "sync",
        module,
        attribute,
        {scenario: funcs[f"{prefix}_{scenario}"] for scenario in ("sequential", "download")},
    )


CLIENTS: tuple[ClientSpec, ...] = (
    _async_spec("webwire-asyncio", "asyncio", "webwire", "AsyncClient", "webwire_async"),
    _async_spec("webwire-trio", "trio", "webwire", "AsyncClient", "webwire_async"),
    _async_spec("aiohttp", "asyncio", "aiohttp", "ClientSession", "aiohttp"),
    _async_spec("httpx-async", "asyncio", "httpx", "AsyncClient", "httpx_async"),
    _sync_spec("webwire-sync", "webwire", "Client", "webwire_sync"),
    _sync_spec("httpx-sync", "httpx", "Client", "httpx_sync"),
    _sync_spec("urllib3", "urllib3", "PoolManager", "urllib3"),
    _sync_spec("requests", "requests", "Session", "requests"),
)
