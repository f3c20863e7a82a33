"""The HTTP clients compared by ``benchmarks/http1.py`` and their scenarios.

Every scenario function builds its client, warms it up (opens the
connections it will use), then times only the requests, and verifies every
response (status 200 and the exact body, or the exact byte count for the
download), so that a client that skips work cannot look fast. Each returns
a :class:`Timing` of the timed part: its wall-clock duration and the CPU
time (user + system) this process spent in it, both read by one
:class:`Stopwatch` at the same two points.

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
import resource
from collections.abc import Awaitable, Callable, Coroutine
from dataclasses import dataclass
from time import perf_counter
from typing import Any

from _servers import HELLO_BODY

__all__ = [
    "CLIENTS",
    "SCENARIOS",
    "ClientSpec",
    "ResponseMismatch",
    "Stopwatch",
    "Timing",
    "Workload",
    "check_download",
    "check_hello",
    "run_concurrent",
    "run_tasks",
]

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
        ca_path: PEM file of the CA to trust for ``https`` URLs (``""``:
            plain HTTP).
    """

    hello_url: str
    big_url: str
    big_size: int
    requests: int
    concurrency: int
    ca_path: str = ""


@dataclass(frozen=True)
class Timing:
    """What one timed part cost.

    Attributes:
        elapsed: Wall-clock seconds (``time.perf_counter``).
        cpu: User + system CPU seconds consumed by this process, all its
            threads included, over the same interval
            (``getrusage(RUSAGE_SELF)``). The server runs in another process
            and is not counted.
    """

    elapsed: float
    cpu: float


def process_cpu_seconds() -> float:
    """User + system CPU time of this process so far, in seconds."""
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


class Stopwatch:
    """Reads the wall clock and the process CPU time when created and at :meth:`stop`.

    The CPU reading is taken just outside the wall-clock reading at both ends,
    so the CPU interval covers the wall-clock interval plus one clock read.
    """

    def __init__(self) -> None:
        self._cpu = process_cpu_seconds()
        self._wall = perf_counter()

    def stop(self) -> Timing:
        """Return the wall-clock and CPU time since creation."""
        wall = perf_counter()
        cpu = process_cpu_seconds()
        return Timing(wall - self._wall, cpu - self._cpu)


AsyncScenario = Callable[[Workload, str], Coroutine[Any, Any, Timing]]
SyncScenario = Callable[[Workload], Timing]


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


async def run_tasks(runtime: str, count: int, fn: Callable[[], Awaitable[None]]) -> None:
    """Run ``count`` copies of ``fn`` at once on ``runtime`` and wait for all."""
    if runtime == "trio":
        import trio

        async with trio.open_nursery() as nursery:
            for _ in range(count):
                nursery.start_soon(fn)
    else:
        import asyncio

        await asyncio.gather(*(fn() for _ in range(count)))


async def run_concurrent(
    work: Workload, runtime: str, one: Callable[[], Awaitable[None]]
) -> Timing:
    """Warm the pool with one request per task, then time the whole workload."""
    per_task = work.requests // work.concurrency

    async def warm() -> None:
        await one()

    async def worker() -> None:
        for _ in range(per_task):
            await one()

    await run_tasks(runtime, work.concurrency, warm)
    watch = Stopwatch()
    await run_tasks(runtime, work.concurrency, worker)
    return watch.stop()


# -- webwire ---------------------------------------------------------------


def _webwire_options() -> dict[str, Any]:
    import webwire

    return {
        "timeout": webwire.Timeout(TIMEOUT),
        "limits": webwire.Limits(max_connections=POOL_SIZE, max_keepalive_connections=POOL_SIZE),
        "trust_env": False,
    }


async def webwire_async_sequential(work: Workload, runtime: str) -> Timing:
    """Sequential GETs with ``webwire.AsyncClient`` (asyncio or trio)."""
    import webwire

    url = work.hello_url
    async with webwire.AsyncClient(**_webwire_options()) as client:
        r = await client.get(url)
        check_hello("webwire", r.status_code, r.content)
        watch = Stopwatch()
        for _ in range(work.requests):
            r = await client.get(url)
            check_hello("webwire", r.status_code, r.content)
        return watch.stop()


async def webwire_async_concurrent(work: Workload, runtime: str) -> Timing:
    """Concurrent GETs with ``webwire.AsyncClient`` (asyncio or trio)."""
    import webwire

    url = work.hello_url
    async with webwire.AsyncClient(**_webwire_options()) as client:

        async def one() -> None:
            r = await client.get(url)
            check_hello("webwire", r.status_code, r.content)

        return await run_concurrent(work, runtime, one)


async def webwire_async_download(work: Workload, runtime: str) -> Timing:
    """Streamed download with ``webwire.AsyncClient`` (asyncio or trio)."""
    import webwire

    async with webwire.AsyncClient(**_webwire_options()) as client:
        watch = Stopwatch()
        received = 0
        async with client.stream("GET", work.big_url) as r:
            async for chunk in r.aiter_bytes():
                received += len(chunk)
            status = r.status_code
        timing = watch.stop()
    check_download("webwire", status, received, work.big_size)
    return timing


def webwire_sync_sequential(work: Workload) -> Timing:
    """Sequential GETs with the blocking ``webwire.Client``."""
    import webwire

    url = work.hello_url
    with webwire.Client(**_webwire_options()) as client:
        r = client.get(url)
        check_hello("webwire", r.status_code, r.content)
        watch = Stopwatch()
        for _ in range(work.requests):
            r = client.get(url)
            check_hello("webwire", r.status_code, r.content)
        return watch.stop()


def webwire_sync_download(work: Workload) -> Timing:
    """Streamed download with the blocking ``webwire.Client``."""
    import webwire

    with webwire.Client(**_webwire_options()) as client:
        watch = Stopwatch()
        received = 0
        with client.stream("GET", work.big_url) as r:
            for chunk in r.iter_bytes():
                received += len(chunk)
            status = r.status_code
        timing = watch.stop()
    check_download("webwire", status, received, work.big_size)
    return timing


# -- aiohttp ---------------------------------------------------------------


def _aiohttp_session() -> Any:
    import aiohttp

    return aiohttp.ClientSession(
        connector=aiohttp.TCPConnector(limit=POOL_SIZE),
        timeout=aiohttp.ClientTimeout(total=None, sock_read=TIMEOUT, sock_connect=TIMEOUT),
    )


async def aiohttp_sequential(work: Workload, runtime: str) -> Timing:
    """Sequential GETs with ``aiohttp.ClientSession``."""
    url = work.hello_url
    async with _aiohttp_session() as session:
        async with session.get(url) as r:
            check_hello("aiohttp", r.status, await r.read())
        watch = Stopwatch()
        for _ in range(work.requests):
            async with session.get(url) as r:
                check_hello("aiohttp", r.status, await r.read())
        return watch.stop()


async def aiohttp_concurrent(work: Workload, runtime: str) -> Timing:
    """Concurrent GETs with ``aiohttp.ClientSession``."""
    url = work.hello_url
    async with _aiohttp_session() as session:

        async def one() -> None:
            async with session.get(url) as r:
                check_hello("aiohttp", r.status, await r.read())

        return await run_concurrent(work, runtime, one)


async def aiohttp_download(work: Workload, runtime: str) -> Timing:
    """Streamed download with ``aiohttp.ClientSession`` (``iter_any``)."""
    async with _aiohttp_session() as session:
        watch = Stopwatch()
        received = 0
        async with session.get(work.big_url) as r:
            async for chunk in r.content.iter_any():
                received += len(chunk)
            status = r.status
        timing = watch.stop()
    check_download("aiohttp", status, received, work.big_size)
    return timing


# -- httpx -----------------------------------------------------------------


def _httpx_options() -> dict[str, Any]:
    import httpx

    return {
        "timeout": TIMEOUT,
        "limits": httpx.Limits(max_connections=POOL_SIZE, max_keepalive_connections=POOL_SIZE),
        "trust_env": False,
    }


async def httpx_async_sequential(work: Workload, runtime: str) -> Timing:
    """Sequential GETs with ``httpx.AsyncClient``."""
    import httpx

    url = work.hello_url
    async with httpx.AsyncClient(**_httpx_options()) as client:
        r = await client.get(url)
        check_hello("httpx", r.status_code, r.content)
        watch = Stopwatch()
        for _ in range(work.requests):
            r = await client.get(url)
            check_hello("httpx", r.status_code, r.content)
        return watch.stop()


async def httpx_async_concurrent(work: Workload, runtime: str) -> Timing:
    """Concurrent GETs with ``httpx.AsyncClient``."""
    import httpx

    url = work.hello_url
    async with httpx.AsyncClient(**_httpx_options()) as client:

        async def one() -> None:
            r = await client.get(url)
            check_hello("httpx", r.status_code, r.content)

        return await run_concurrent(work, runtime, one)


async def httpx_async_download(work: Workload, runtime: str) -> Timing:
    """Streamed download with ``httpx.AsyncClient`` (``aiter_bytes``)."""
    import httpx

    async with httpx.AsyncClient(**_httpx_options()) as client:
        watch = Stopwatch()
        received = 0
        async with client.stream("GET", work.big_url) as r:
            async for chunk in r.aiter_bytes():
                received += len(chunk)
            status = r.status_code
        timing = watch.stop()
    check_download("httpx", status, received, work.big_size)
    return timing


def httpx_sync_sequential(work: Workload) -> Timing:
    """Sequential GETs with ``httpx.Client``."""
    import httpx

    url = work.hello_url
    with httpx.Client(**_httpx_options()) as client:
        r = client.get(url)
        check_hello("httpx", r.status_code, r.content)
        watch = Stopwatch()
        for _ in range(work.requests):
            r = client.get(url)
            check_hello("httpx", r.status_code, r.content)
        return watch.stop()


def httpx_sync_download(work: Workload) -> Timing:
    """Streamed download with ``httpx.Client`` (``iter_bytes``)."""
    import httpx

    with httpx.Client(**_httpx_options()) as client:
        watch = Stopwatch()
        received = 0
        with client.stream("GET", work.big_url) as r:
            for chunk in r.iter_bytes():
                received += len(chunk)
            status = r.status_code
        timing = watch.stop()
    check_download("httpx", status, received, work.big_size)
    return timing


# -- urllib3 and requests --------------------------------------------------


def urllib3_sequential(work: Workload) -> Timing:
    """Sequential GETs with ``urllib3.PoolManager``."""
    import urllib3

    url = work.hello_url
    timeout = urllib3.Timeout(TIMEOUT)
    with urllib3.PoolManager(timeout=timeout, retries=False) as pool:
        r = pool.request("GET", url)
        check_hello("urllib3", r.status, r.data)
        watch = Stopwatch()
        for _ in range(work.requests):
            r = pool.request("GET", url)
            check_hello("urllib3", r.status, r.data)
        return watch.stop()


def urllib3_download(work: Workload) -> Timing:
    """Streamed download with ``urllib3.PoolManager`` (``stream(64 KiB)``)."""
    import urllib3

    timeout = urllib3.Timeout(TIMEOUT)
    with urllib3.PoolManager(timeout=timeout, retries=False) as pool:
        watch = Stopwatch()
        received = 0
        r = pool.request("GET", work.big_url, preload_content=False)
        for chunk in r.stream(SYNC_CHUNK):
            received += len(chunk)
        r.release_conn()
        timing = watch.stop()
        check_download("urllib3", r.status, received, work.big_size)
    return timing


def _requests_session() -> Any:
    import requests  # type: ignore[import-untyped,unused-ignore]

    session = requests.Session()
    session.trust_env = False
    return session


def requests_sequential(work: Workload) -> Timing:
    """Sequential GETs with ``requests.Session``."""
    url = work.hello_url
    with _requests_session() as session:
        r = session.get(url, timeout=TIMEOUT)
        check_hello("requests", r.status_code, r.content)
        watch = Stopwatch()
        for _ in range(work.requests):
            r = session.get(url, timeout=TIMEOUT)
            check_hello("requests", r.status_code, r.content)
        return watch.stop()


def requests_download(work: Workload) -> Timing:
    """Streamed download with ``requests.Session`` (``iter_content(64 KiB)``)."""
    with _requests_session() as session:
        watch = Stopwatch()
        received = 0
        with session.get(work.big_url, stream=True, timeout=TIMEOUT) as r:
            for chunk in r.iter_content(SYNC_CHUNK):
                received += len(chunk)
            status: int = r.status_code
        timing = watch.stop()
    check_download("requests", status, received, work.big_size)
    return timing


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
