"""Connection trace signals emitted by the connection pool through the
request's ``extensions["trace"]`` hook, seen as TraceConfig callbacks:
``on_connection_create_start/end`` for a new connection,
``on_connection_reuseconn`` for a pooled one, and
``on_connection_queued_start/end`` while waiting for a free slot.

Each scenario runs on asyncio, on trio and through the blocking client,
against hypercorn in cleartext and over TLS.
"""

from __future__ import annotations

from collections.abc import Callable, Coroutine
from typing import Any

import pytest

import webwire
from webwire._sync import run_sync
from webwire.http._tracing import SIGNALS

OpenApi = Callable[..., Any]
Scenario = Callable[[OpenApi, Any], Coroutine[Any, Any, None]]

CONNECTION_SIGNALS = {
    "connection_queued_start",
    "connection_queued_end",
    "connection_create_start",
    "connection_create_end",
    "connection_reuseconn",
}


def options(server: Any, **kwargs: Any) -> dict[str, Any]:
    result: dict[str, Any] = {"base_url": str(server.url), "verify": server.verify}
    result.update(kwargs)
    return result


def recording_trace(log: list[tuple[str, Any, Any]]) -> webwire.TraceConfig:
    """Every signal appends ``(name, trace_request_ctx, params)``."""
    trace = webwire.TraceConfig()

    def recorder(signal: str) -> Any:
        def callback(client: Any, ctx: Any, params: Any) -> None:
            log.append((signal[3:], ctx.trace_request_ctx, params))

        return callback

    for signal in SIGNALS:
        getattr(trace, signal).append(recorder(signal))
    return trace


def names_of(log: list[tuple[str, Any, Any]], ctx: Any) -> list[str]:
    return [
        name
        for name, request_ctx, _ in log
        if request_ctx == ctx and (name in CONNECTION_SIGNALS or name.startswith("request_"))
        and name != "request_chunk_sent"
    ]


async def s_create_then_reuse(open_api: OpenApi, server: Any) -> None:
    log: list[tuple[str, Any, Any]] = []
    async with open_api(**options(server, trace=[recording_trace(log)])) as api:
        assert (await api.get("/json", trace_request_ctx="first")).status_code == 200
        assert (await api.get("/json", trace_request_ctx="second")).status_code == 200
    assert names_of(log, "first") == [
        "request_start",
        "connection_create_start",
        "connection_create_end",
        "request_end",
    ]
    assert names_of(log, "second") == ["request_start", "connection_reuseconn", "request_end"]
    params = [p for name, _, p in log if name == "connection_create_start"]
    assert params == [webwire.TraceConnectionCreateStartParams()]


async def s_queued(open_api: OpenApi, server: Any) -> None:
    log: list[tuple[str, Any, Any]] = []
    limits = webwire.Limits(max_connections=1)
    # HTTP/1.1 only: an HTTP/2 connection would carry both requests at once.
    settings = options(server, limits=limits, http2=False, trace=[recording_trace(log)])
    async with open_api(**settings) as api:
        holding: list[bool] = []

        async def holder() -> None:
            async with api.stream("GET", "/json", trace_request_ctx="holder") as response:
                holding.append(True)
                for _ in range(2000):
                    if any(name == "connection_queued_start" for name, _, _ in log):
                        break
                    await api.sleep(0.005)
                await response.aread()

        async def waiter() -> int:
            for _ in range(2000):
                if holding:
                    break
                await api.sleep(0.005)
            response = await api.get("/json", trace_request_ctx="waiter")
            return int(response.status_code)

        async def run(i: int) -> Any:
            if i == 0:
                return await holder()
            return await waiter()

        results = await api.gather(2, run)
    assert results[1] == 200, results
    assert names_of(log, "waiter") == [
        "request_start",
        "connection_queued_start",
        "connection_queued_end",
        "connection_reuseconn",
        "request_end",
    ]


SCENARIOS: list[Scenario] = [s_create_then_reuse, s_queued]
IDS = [s.__name__[2:] for s in SCENARIOS]


@pytest.fixture(params=["hypercorn-http", "hypercorn-https"])
def pool_server(request: pytest.FixtureRequest) -> Any:
    return request.getfixturevalue(request.param.replace("-", "_"))


@pytest.mark.anyio
@pytest.mark.parametrize("scenario", SCENARIOS, ids=IDS)
async def test_async(scenario: Scenario, pool_server: Any, async_api: OpenApi) -> None:
    await scenario(async_api, pool_server)


@pytest.mark.parametrize("scenario", SCENARIOS, ids=IDS)
def test_sync(scenario: Scenario, pool_server: Any, sync_api: OpenApi) -> None:
    run_sync(scenario(sync_api, pool_server))
