"""The HTTP/2 clients compared by ``benchmarks/http2.py`` and their scenarios.

The same rules as ``_clients.py``: every scenario function builds its client,
warms it up, times only the requests and checks every response (status 200
and the exact body, or the exact byte count), and returns the
:class:`~_clients.Timing` of the timed part. In addition every function
checks, once, on its first response, that the protocol is the one it claims
to measure (HTTP/2, or HTTP/1.1 for the ``-h1`` reference clients), so that
a client that falls back to HTTP/1.1 fails instead of being timed.

All clients talk to ``https://127.0.0.1`` and trust the benchmark's CA
(``Workload.ca_path``); each is limited to one connection, which the
benchmark checks against nginx's connection count.

Scenarios:

* ``sequential``: ``Workload.requests`` GETs of a 13-byte body, one after
  the other on one connection.
* ``multiplexed``: ``Workload.requests`` GETs of the same body with
  ``Workload.concurrency`` in flight at once on one connection: as many
  tasks each doing its share of requests one after the other (webwire,
  httpx), or, for niquests, its multiplexed mode: batches of
  ``concurrency`` lazy requests, each batch resolved with ``gather()``.
* ``download``: one streamed GET of ``Workload.big_size`` bytes, iterating
  over the body chunks as the client delivers them and counting bytes.
"""

from __future__ import annotations

import ssl
from typing import Any

from _clients import (
    AsyncScenario,
    ClientSpec,
    ResponseMismatch,
    Stopwatch,
    SyncScenario,
    Timing,
    Workload,
    check_download,
    check_hello,
    run_concurrent,
)

__all__ = ["CLIENTS", "SCENARIOS", "check_protocol"]

SCENARIOS = ("sequential", "multiplexed", "download")
TIMEOUT = 10.0


def check_protocol(client: str, got: object, expected: object) -> None:
    """Raise :class:`ResponseMismatch` unless the response came over the expected protocol."""
    if got != expected:
        raise ResponseMismatch(
            f"{client}: the response came over {got!r}, not {expected!r}; not timing it"
        )


def _ssl_context(work: Workload) -> ssl.SSLContext:
    return ssl.create_default_context(cafile=work.ca_path)


# -- webwire ---------------------------------------------------------------


def _webwire_options(work: Workload, http2: bool) -> dict[str, Any]:
    import webwire

    return {
        "timeout": webwire.Timeout(TIMEOUT),
        "limits": webwire.Limits(max_connections=1, max_keepalive_connections=1),
        "trust_env": False,
        "verify": work.ca_path,
        "http1": not http2,
        "http2": http2,
    }


def _webwire_async(http2: bool) -> dict[str, AsyncScenario | SyncScenario]:
    """The scenario functions of ``webwire.AsyncClient`` over HTTP/2 or HTTP/1.1."""
    label = "webwire (HTTP/2)" if http2 else "webwire (HTTP/1.1)"
    version = "HTTP/2" if http2 else "HTTP/1.1"

    async def sequential(work: Workload, runtime: str) -> Timing:
        import webwire

        url = work.hello_url
        async with webwire.AsyncClient(**_webwire_options(work, http2)) as client:
            r = await client.get(url)
            check_protocol(label, r.http_version, version)
            check_hello(label, r.status_code, r.content)
            watch = Stopwatch()
            for _ in range(work.requests):
                r = await client.get(url)
                check_hello(label, r.status_code, r.content)
            return watch.stop()

    async def multiplexed(work: Workload, runtime: str) -> Timing:
        import webwire

        url = work.hello_url
        async with webwire.AsyncClient(**_webwire_options(work, http2)) as client:
            r = await client.get(url)
            check_protocol(label, r.http_version, version)
            check_hello(label, r.status_code, r.content)

            async def one() -> None:
                r = await client.get(url)
                check_hello(label, r.status_code, r.content)

            return await run_concurrent(work, runtime, one)

    async def download(work: Workload, runtime: str) -> Timing:
        import webwire

        async with webwire.AsyncClient(**_webwire_options(work, http2)) as client:
            watch = Stopwatch()
            received = 0
            async with client.stream("GET", work.big_url) as r:
                check_protocol(label, r.http_version, version)
                async for chunk in r.aiter_bytes():
                    received += len(chunk)
                status = r.status_code
            timing = watch.stop()
        check_download(label, status, received, work.big_size)
        return timing

    if not http2:
        return {"sequential": sequential}
    return {"sequential": sequential, "multiplexed": multiplexed, "download": download}


def _webwire_sync(http2: bool) -> dict[str, AsyncScenario | SyncScenario]:
    """The scenario functions of the blocking ``webwire.Client`` over HTTP/2 or HTTP/1.1."""
    label = "webwire (HTTP/2)" if http2 else "webwire (HTTP/1.1)"
    version = "HTTP/2" if http2 else "HTTP/1.1"

    def sequential(work: Workload) -> Timing:
        import webwire

        url = work.hello_url
        with webwire.Client(**_webwire_options(work, http2)) as client:
            r = client.get(url)
            check_protocol(label, r.http_version, version)
            check_hello(label, r.status_code, r.content)
            watch = Stopwatch()
            for _ in range(work.requests):
                r = client.get(url)
                check_hello(label, r.status_code, r.content)
            return watch.stop()

    def download(work: Workload) -> Timing:
        import webwire

        with webwire.Client(**_webwire_options(work, http2)) as client:
            watch = Stopwatch()
            received = 0
            with client.stream("GET", work.big_url) as r:
                check_protocol(label, r.http_version, version)
                for chunk in r.iter_bytes():
                    received += len(chunk)
                status = r.status_code
            timing = watch.stop()
        check_download(label, status, received, work.big_size)
        return timing

    if not http2:
        return {"sequential": sequential}
    return {"sequential": sequential, "download": download}


# -- httpx -----------------------------------------------------------------


def _httpx_options(work: Workload) -> dict[str, Any]:
    import httpx

    return {
        "http1": False,
        "http2": True,
        "verify": _ssl_context(work),
        "timeout": TIMEOUT,
        "limits": httpx.Limits(max_connections=1, max_keepalive_connections=1),
        "trust_env": False,
    }


async def httpx_async_sequential(work: Workload, runtime: str) -> Timing:
    """Sequential GETs with ``httpx.AsyncClient(http2=True)``."""
    import httpx

    url = work.hello_url
    async with httpx.AsyncClient(**_httpx_options(work)) as client:
        r = await client.get(url)
        check_protocol("httpx", r.http_version, "HTTP/2")
        check_hello("httpx", r.status_code, r.content)
        watch = Stopwatch()
        for _ in range(work.requests):
            r = await client.get(url)
            check_hello("httpx", r.status_code, r.content)
        return watch.stop()


async def httpx_async_multiplexed(work: Workload, runtime: str) -> Timing:
    """Concurrent GETs from many tasks with ``httpx.AsyncClient(http2=True)``."""
    import httpx

    url = work.hello_url
    async with httpx.AsyncClient(**_httpx_options(work)) as client:
        r = await client.get(url)
        check_protocol("httpx", r.http_version, "HTTP/2")
        check_hello("httpx", r.status_code, r.content)

        async def one() -> None:
            r = await client.get(url)
            check_hello("httpx", r.status_code, r.content)

        return await run_concurrent(work, runtime, one)


async def httpx_async_download(work: Workload, runtime: str) -> Timing:
    """Streamed download with ``httpx.AsyncClient(http2=True)`` (``aiter_bytes``)."""
    import httpx

    async with httpx.AsyncClient(**_httpx_options(work)) as client:
        watch = Stopwatch()
        received = 0
        async with client.stream("GET", work.big_url) as r:
            check_protocol("httpx", r.http_version, "HTTP/2")
            async for chunk in r.aiter_bytes():
                received += len(chunk)
            status = r.status_code
        timing = watch.stop()
    check_download("httpx", status, received, work.big_size)
    return timing


def httpx_sync_sequential(work: Workload) -> Timing:
    """Sequential GETs with ``httpx.Client(http2=True)``."""
    import httpx

    url = work.hello_url
    with httpx.Client(**_httpx_options(work)) as client:
        r = client.get(url)
        check_protocol("httpx", r.http_version, "HTTP/2")
        check_hello("httpx", r.status_code, r.content)
        watch = Stopwatch()
        for _ in range(work.requests):
            r = client.get(url)
            check_hello("httpx", r.status_code, r.content)
        return watch.stop()


def httpx_sync_download(work: Workload) -> Timing:
    """Streamed download with ``httpx.Client(http2=True)`` (``iter_bytes``)."""
    import httpx

    with httpx.Client(**_httpx_options(work)) as client:
        watch = Stopwatch()
        received = 0
        with client.stream("GET", work.big_url) as r:
            check_protocol("httpx", r.http_version, "HTTP/2")
            for chunk in r.iter_bytes():
                received += len(chunk)
            status = r.status_code
        timing = watch.stop()
    check_download("httpx", status, received, work.big_size)
    return timing


# -- niquests --------------------------------------------------------------


def _niquests_options(work: Workload, multiplexed: bool) -> dict[str, Any]:
    return {
        "multiplexed": multiplexed,
        "disable_http3": True,
        "pool_connections": 1,
        "pool_maxsize": 1,
        "timeout": TIMEOUT,
        "verify": work.ca_path,
    }


def _niquests_session(work: Workload, multiplexed: bool = False) -> Any:
    import niquests

    session = niquests.Session(**_niquests_options(work, multiplexed))
    session.trust_env = False
    return session


def _niquests_async_session(work: Workload, multiplexed: bool = False) -> Any:
    import niquests

    session = niquests.AsyncSession(**_niquests_options(work, multiplexed))
    session.trust_env = False
    return session


async def niquests_async_sequential(work: Workload, runtime: str) -> Timing:
    """Sequential GETs with ``niquests.AsyncSession``."""
    url = work.hello_url
    async with _niquests_async_session(work) as session:
        r = await session.get(url)
        check_protocol("niquests", r.http_version, 20)
        check_hello("niquests", r.status_code, r.content)
        watch = Stopwatch()
        for _ in range(work.requests):
            r = await session.get(url)
            check_hello("niquests", r.status_code, r.content)
        return watch.stop()


async def niquests_async_multiplexed(work: Workload, runtime: str) -> Timing:
    """Batches of lazy GETs resolved by ``gather()`` on ``AsyncSession(multiplexed=True)``."""
    url = work.hello_url
    batches = work.requests // work.concurrency
    async with _niquests_async_session(work, multiplexed=True) as session:
        r = await session.get(url)
        await session.gather()
        check_protocol("niquests", r.http_version, 20)
        check_hello("niquests", r.status_code, r.content)

        async def batch() -> None:
            responses = [await session.get(url) for _ in range(work.concurrency)]
            await session.gather()
            for r in responses:
                check_hello("niquests", r.status_code, r.content)

        await batch()
        watch = Stopwatch()
        for _ in range(batches):
            await batch()
        return watch.stop()


async def niquests_async_download(work: Workload, runtime: str) -> Timing:
    """Streamed download with ``niquests.AsyncSession`` (``iter_content()``)."""
    async with _niquests_async_session(work) as session:
        watch = Stopwatch()
        received = 0
        r = await session.get(work.big_url, stream=True)
        check_protocol("niquests", r.http_version, 20)
        async for chunk in await r.iter_content():
            received += len(chunk)
        status: int = r.status_code
        await r.close()
        timing = watch.stop()
    check_download("niquests", status, received, work.big_size)
    return timing


def niquests_sync_sequential(work: Workload) -> Timing:
    """Sequential GETs with ``niquests.Session``."""
    url = work.hello_url
    with _niquests_session(work) as session:
        r = session.get(url)
        check_protocol("niquests", r.http_version, 20)
        check_hello("niquests", r.status_code, r.content)
        watch = Stopwatch()
        for _ in range(work.requests):
            r = session.get(url)
            check_hello("niquests", r.status_code, r.content)
        return watch.stop()


def niquests_sync_multiplexed(work: Workload) -> Timing:
    """Batches of lazy GETs resolved by ``gather()`` on ``Session(multiplexed=True)``."""
    url = work.hello_url
    batches = work.requests // work.concurrency
    with _niquests_session(work, multiplexed=True) as session:
        r = session.get(url)
        session.gather()
        check_protocol("niquests", r.http_version, 20)
        check_hello("niquests", r.status_code, r.content)

        def batch() -> None:
            responses = [session.get(url) for _ in range(work.concurrency)]
            session.gather()
            for r in responses:
                check_hello("niquests", r.status_code, r.content)

        batch()
        watch = Stopwatch()
        for _ in range(batches):
            batch()
        return watch.stop()


def niquests_sync_download(work: Workload) -> Timing:
    """Streamed download with ``niquests.Session`` (``iter_content()``)."""
    with _niquests_session(work) as session:
        watch = Stopwatch()
        received = 0
        with session.get(work.big_url, stream=True) as r:
            check_protocol("niquests", r.http_version, 20)
            for chunk in r.iter_content():
                received += len(chunk)
            status: int = r.status_code
        timing = watch.stop()
    check_download("niquests", status, received, work.big_size)
    return timing


def _by_prefix(prefix: str, names: tuple[str, ...]) -> dict[str, AsyncScenario | SyncScenario]:
    funcs = globals()
    return {scenario: funcs[f"{prefix}_{scenario}"] for scenario in names}


SEQUENTIAL_DOWNLOAD = ("sequential", "download")

CLIENTS: tuple[ClientSpec, ...] = (
    ClientSpec("webwire-asyncio", "asyncio", "webwire", "AsyncClient", _webwire_async(True)),
    ClientSpec("webwire-trio", "trio", "webwire", "AsyncClient", _webwire_async(True)),
    ClientSpec(
        "httpx-async", "asyncio", "httpx", "AsyncClient", _by_prefix("httpx_async", SCENARIOS)
    ),
    ClientSpec(
        "niquests-async",
        "asyncio",
        "niquests",
        "AsyncSession",
        _by_prefix("niquests_async", SCENARIOS),
    ),
    ClientSpec("webwire-sync", "sync", "webwire", "Client", _webwire_sync(True)),
    ClientSpec(
        "httpx-sync", "sync", "httpx", "Client", _by_prefix("httpx_sync", SEQUENTIAL_DOWNLOAD)
    ),
    ClientSpec(
        "niquests-sync", "sync", "niquests", "Session", _by_prefix("niquests_sync", SCENARIOS)
    ),
    ClientSpec("webwire-asyncio-h1", "asyncio", "webwire", "AsyncClient", _webwire_async(False)),
    ClientSpec("webwire-trio-h1", "trio", "webwire", "AsyncClient", _webwire_async(False)),
    ClientSpec("webwire-sync-h1", "sync", "webwire", "Client", _webwire_sync(False)),
)
"""Every client, HTTP/2 unless its name ends in ``-h1`` (webwire over HTTP/1.1 on TLS)."""
