"""The HTTP/3 clients compared by ``benchmarks/http3.py`` and their scenarios.

The same rules as ``_clients.py`` and ``_clients_h2.py``: every scenario
function builds its client, warms it up, times only the requests, checks
every response (status 200 and the exact body, or the exact byte count) and
returns the :class:`~_clients.Timing` of the timed part. Every function also
checks, once, on its first response, that it came over HTTP/3, so that a
client that falls back to TCP fails instead of being timed.

Every client is forced onto HTTP/3 from the first request (no Alt-Svc
discovery over TCP first): webwire with ``http_versions={"HTTP/3"}``,
niquests with HTTP/1.1 and HTTP/2 disabled and the origin seeded into its
QUIC cache. All talk to ``https://127.0.0.1:PORT`` (UDP) and trust the
benchmark's CA (``Workload.ca_path``), with one connection each.

Scenarios:

* ``sequential``: ``Workload.requests`` GETs of a 13-byte body, one after
  the other on one connection.
* ``multiplexed``: ``Workload.requests`` GETs of the same body with
  ``Workload.concurrency`` in flight at once on one connection: as many
  tasks each doing its share of requests one after the other (webwire), or,
  for niquests, its multiplexed mode: batches of ``concurrency`` lazy
  requests, each batch resolved with ``gather()``.
* ``download``: one streamed GET of ``Workload.big_size`` bytes, iterating
  over the body chunks as the client delivers them and counting bytes.
"""

from __future__ import annotations

import importlib
import importlib.util
import inspect
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

from _clients import (
    AsyncScenario,
    ClientSpec,
    Stopwatch,
    SyncScenario,
    Timing,
    Workload,
    check_download,
    check_hello,
    run_concurrent,
)
from _clients_h2 import check_protocol

__all__ = ["CLIENTS", "SCENARIOS", "WEBWIRE_H3_MISSING", "webwire_http3_missing"]

SCENARIOS = ("sequential", "multiplexed", "download")
TIMEOUT = 10.0
WEBWIRE_H3_MISSING = "webwire cannot speak HTTP/3 yet"


def webwire_http3_missing() -> str | None:
    """Why webwire's HTTP/3 client cannot run here, or ``None`` when it can.

    webwire speaks HTTP/3 once its clients take ``http_versions`` and its
    HTTP/3 transport (``webwire._transport.http3``, on qh3) imports.
    """
    try:
        webwire = importlib.import_module("webwire")
    except Exception as exc:
        return f"import failed: {type(exc).__name__}: {exc}"
    client = getattr(webwire, "AsyncClient", None)
    if client is None or "http_versions" not in inspect.signature(client).parameters:
        return f"{WEBWIRE_H3_MISSING} (no http_versions option)"
    try:
        found = importlib.util.find_spec("webwire._transport.http3") is not None
    except Exception:
        found = False
    if not found:
        return f"{WEBWIRE_H3_MISSING} (no webwire._transport.http3)"
    try:
        importlib.import_module("webwire._transport.http3")
    except Exception as exc:
        return f"{WEBWIRE_H3_MISSING}: {type(exc).__name__}: {exc}"
    return None


@dataclass(frozen=True)
class WebwireH3Spec(ClientSpec):
    """A webwire client, available only when webwire can speak HTTP/3."""

    def unavailable_reason(self) -> str | None:
        """Return why the client cannot run here, or ``None`` when it can."""
        reason = super().unavailable_reason()
        return reason if reason is not None else webwire_http3_missing()


# -- webwire ---------------------------------------------------------------


def _webwire_options(work: Workload) -> dict[str, Any]:
    import webwire

    return {
        "timeout": webwire.Timeout(TIMEOUT),
        "limits": webwire.Limits(max_connections=1, max_keepalive_connections=1),
        "trust_env": False,
        "verify": work.ca_path,
        "http_versions": {"HTTP/3"},
    }


LABEL = "webwire (HTTP/3)"


async def webwire_async_sequential(work: Workload, runtime: str) -> Timing:
    """Sequential GETs with ``webwire.AsyncClient(http_versions={"HTTP/3"})``."""
    import webwire

    url = work.hello_url
    async with webwire.AsyncClient(**_webwire_options(work)) as client:
        r = await client.get(url)
        check_protocol(LABEL, r.http_version, "HTTP/3")
        check_hello(LABEL, r.status_code, r.content)
        watch = Stopwatch()
        for _ in range(work.requests):
            r = await client.get(url)
            check_hello(LABEL, r.status_code, r.content)
        return watch.stop()


async def webwire_async_multiplexed(work: Workload, runtime: str) -> Timing:
    """Concurrent GETs from many tasks on one HTTP/3 connection."""
    import webwire

    url = work.hello_url
    async with webwire.AsyncClient(**_webwire_options(work)) as client:
        r = await client.get(url)
        check_protocol(LABEL, r.http_version, "HTTP/3")
        check_hello(LABEL, r.status_code, r.content)

        async def one() -> None:
            r = await client.get(url)
            check_hello(LABEL, r.status_code, r.content)

        return await run_concurrent(work, runtime, one)


async def webwire_async_download(work: Workload, runtime: str) -> Timing:
    """Streamed download over HTTP/3 with ``webwire.AsyncClient`` (``aiter_bytes``)."""
    import webwire

    async with webwire.AsyncClient(**_webwire_options(work)) as client:
        watch = Stopwatch()
        received = 0
        async with client.stream("GET", work.big_url) as r:
            check_protocol(LABEL, r.http_version, "HTTP/3")
            async for chunk in r.aiter_bytes():
                received += len(chunk)
            status = r.status_code
        timing = watch.stop()
    check_download(LABEL, status, received, work.big_size)
    return timing


def webwire_sync_sequential(work: Workload) -> Timing:
    """Sequential GETs over HTTP/3 with the blocking ``webwire.Client``."""
    import webwire

    url = work.hello_url
    with webwire.Client(**_webwire_options(work)) as client:
        r = client.get(url)
        check_protocol(LABEL, r.http_version, "HTTP/3")
        check_hello(LABEL, r.status_code, r.content)
        watch = Stopwatch()
        for _ in range(work.requests):
            r = client.get(url)
            check_hello(LABEL, r.status_code, r.content)
        return watch.stop()


def webwire_sync_download(work: Workload) -> Timing:
    """Streamed download over HTTP/3 with the blocking ``webwire.Client`` (``iter_bytes``)."""
    import webwire

    with webwire.Client(**_webwire_options(work)) as client:
        watch = Stopwatch()
        received = 0
        with client.stream("GET", work.big_url) as r:
            check_protocol(LABEL, r.http_version, "HTTP/3")
            for chunk in r.iter_bytes():
                received += len(chunk)
            status = r.status_code
        timing = watch.stop()
    check_download(LABEL, status, received, work.big_size)
    return timing


# -- niquests --------------------------------------------------------------


def _niquests_options(work: Workload, multiplexed: bool) -> dict[str, Any]:
    return {
        "multiplexed": multiplexed,
        "disable_http1": True,
        "disable_http2": True,
        "pool_connections": 1,
        "pool_maxsize": 1,
        "timeout": TIMEOUT,
        "verify": work.ca_path,
    }


def _force_http3(session: Any, work: Workload) -> Any:
    """Seed the session's QUIC cache with the origin: HTTP/3 from the first request."""
    origin = urlsplit(work.hello_url)
    session.trust_env = False
    session.quic_cache_layer.add_domain(origin.hostname, origin.port)
    return session


def _niquests_session(work: Workload, multiplexed: bool = False) -> Any:
    import niquests

    return _force_http3(niquests.Session(**_niquests_options(work, multiplexed)), work)


def _niquests_async_session(work: Workload, multiplexed: bool = False) -> Any:
    import niquests

    return _force_http3(niquests.AsyncSession(**_niquests_options(work, multiplexed)), work)


async def niquests_async_sequential(work: Workload, runtime: str) -> Timing:
    """Sequential GETs with ``niquests.AsyncSession`` over HTTP/3."""
    url = work.hello_url
    async with _niquests_async_session(work) as session:
        r = await session.get(url)
        check_protocol("niquests", r.http_version, 30)
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
        check_protocol("niquests", r.http_version, 30)
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
    """Streamed download with ``niquests.AsyncSession`` over HTTP/3 (``iter_content()``)."""
    async with _niquests_async_session(work) as session:
        watch = Stopwatch()
        received = 0
        r = await session.get(work.big_url, stream=True)
        check_protocol("niquests", r.http_version, 30)
        async for chunk in await r.iter_content():
            received += len(chunk)
        status: int = r.status_code
        await r.close()
        timing = watch.stop()
    check_download("niquests", status, received, work.big_size)
    return timing


def niquests_sync_sequential(work: Workload) -> Timing:
    """Sequential GETs with ``niquests.Session`` over HTTP/3."""
    url = work.hello_url
    with _niquests_session(work) as session:
        r = session.get(url)
        check_protocol("niquests", r.http_version, 30)
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
        check_protocol("niquests", r.http_version, 30)
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
    """Streamed download with ``niquests.Session`` over HTTP/3 (``iter_content()``)."""
    with _niquests_session(work) as session:
        watch = Stopwatch()
        received = 0
        with session.get(work.big_url, stream=True) as r:
            check_protocol("niquests", r.http_version, 30)
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
    WebwireH3Spec(
        "webwire-asyncio",
        "asyncio",
        "webwire",
        "AsyncClient",
        _by_prefix("webwire_async", SCENARIOS),
    ),
    WebwireH3Spec(
        "webwire-trio", "trio", "webwire", "AsyncClient", _by_prefix("webwire_async", SCENARIOS)
    ),
    ClientSpec(
        "niquests-async",
        "asyncio",
        "niquests",
        "AsyncSession",
        _by_prefix("niquests_async", SCENARIOS),
    ),
    WebwireH3Spec(
        "webwire-sync", "sync", "webwire", "Client", _by_prefix("webwire_sync", SEQUENTIAL_DOWNLOAD)
    ),
    ClientSpec(
        "niquests-sync", "sync", "niquests", "Session", _by_prefix("niquests_sync", SCENARIOS)
    ),
)
"""Every client, all forced onto HTTP/3."""
