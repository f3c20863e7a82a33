"""The request pipeline against real servers (hypercorn over HTTP/1.1,
HTTP/1.1 with TLS and HTTP/2): a retrying middleware, the order of trace
signals on streamed uploads and downloads, event hooks across redirects,
and ``retries=`` on 503 with ``Retry-After``.

Each scenario runs on asyncio, on trio and through the blocking client.
"""

from __future__ import annotations

import hashlib
import uuid
from collections.abc import Callable, Coroutine
from typing import Any

import pytest
from app import pattern_bytes

import webwire
from webwire._sync import run_sync
from webwire.http._tracing import SIGNALS

OpenApi = Callable[..., Any]
Scenario = Callable[[OpenApi, Any], Coroutine[Any, Any, None]]

REQUEST_SIGNALS = {
    "request_start",
    "request_chunk_sent",
    "request_redirect",
    "request_end",
    "request_exception",
    "response_chunk_received",
}


def options(server: Any, **kwargs: Any) -> dict[str, Any]:
    result: dict[str, Any] = {
        "base_url": str(server.url),
        "verify": server.verify,
        "http2": server.http2,
    }
    result.update(kwargs)
    return result


def is_async(open_api: OpenApi) -> bool:
    return bool(open_api.__name__ == "open_async")


def retrying_middleware(open_api: OpenApi, log: list[int]) -> Any:
    """A middleware sending a request again once after a 503."""
    if is_async(open_api):

        async def async_mw(request: webwire.Request, handler: Any) -> webwire.Response:
            response: webwire.Response = await handler(request)
            log.append(response.status_code)
            if response.status_code == 503:
                await response.aclose()
                response = await handler(request)
                log.append(response.status_code)
            return response

        return async_mw

    def sync_mw(request: webwire.Request, handler: Any) -> webwire.Response:
        response: webwire.Response = handler(request)
        log.append(response.status_code)
        if response.status_code == 503:
            response.close()
            response = handler(request)
            log.append(response.status_code)
        return response

    return sync_mw


def recording_trace(log: list[tuple[str, Any]]) -> webwire.TraceConfig:
    trace = webwire.TraceConfig()

    def recorder(signal: str) -> Any:
        def callback(client: Any, ctx: Any, params: Any) -> None:
            log.append((signal[3:], params))

        return callback

    for signal in SIGNALS:
        getattr(trace, signal).append(recorder(signal))
    return trace


def collapse(names: list[str]) -> list[str]:
    """Signal names with each run of one chunk signal collapsed to one."""
    out: list[str] = []
    for name in names:
        if not (out and out[-1] == name and "chunk" in name):
            out.append(name)
    return out


# -- scenarios -------------------------------------------------------------------------


async def s_middleware_retry(open_api: OpenApi, server: Any) -> None:
    log: list[int] = []
    key = uuid.uuid4().hex
    async with open_api(**options(server, middlewares=[retrying_middleware(open_api, log)])) as api:
        response = await api.get(f"/flaky/{key}/1")
        assert response.status_code == 200
        assert response.json()["attempts"] == 2
        assert log == [503, 200]
        assert api.in_use() == 0


async def s_trace_streamed_upload(open_api: OpenApi, server: Any) -> None:
    log: list[tuple[str, Any]] = []
    chunks = [b"first chunk ", b"second chunk ", b"third"]
    async with open_api(**options(server, trace=[recording_trace(log)])) as api:
        response = await api.post("/echo", content=api.body(chunks))
        assert response.status_code == 200
        assert response.json()["body"] == "first chunk second chunk third"
        assert api.in_use() == 0
    names = [name for name, _ in log if name in REQUEST_SIGNALS]
    assert collapse(names) == [
        "request_start",
        "request_chunk_sent",
        "request_end",
        "response_chunk_received",
    ]
    sent = [params.chunk for name, params in log if name == "request_chunk_sent"]
    assert sent == chunks
    received = b"".join(p.chunk for name, p in log if name == "response_chunk_received")
    assert received == response.content
    start = log[0][1]
    assert (start.method, start.url) == ("POST", server.url / "echo")
    end = next(params for name, params in log if name == "request_end")
    assert end.response is response


async def s_trace_streamed_download(open_api: OpenApi, server: Any) -> None:
    log: list[tuple[str, Any]] = []
    size = 300_000
    async with open_api(**options(server)) as api:
        async with api.stream("GET", f"/bytes/{size}", trace=[recording_trace(log)]) as response:
            names = [name for name, _ in log if name in REQUEST_SIGNALS]
            assert names == ["request_start", "request_end"]  # body not read yet
            body = b"".join([chunk async for chunk in response.aiter_bytes()])
        assert body == pattern_bytes(size)
        received = [p.chunk for name, p in log if name == "response_chunk_received"]
        assert len(received) > 1
        assert b"".join(received) == body
        assert api.in_use() == 0


async def s_trace_redirect(open_api: OpenApi, server: Any) -> None:
    log: list[tuple[str, Any]] = []
    async with open_api(**options(server, trace=[recording_trace(log)])) as api:
        response = await api.get("/redirect/2")
        assert response.status_code == 200
    names = collapse([name for name, _ in log if name in REQUEST_SIGNALS])
    assert names == [
        "request_start",
        "request_redirect",
        "request_redirect",
        "request_end",
        "response_chunk_received",
    ]
    redirects = [params for name, params in log if name == "request_redirect"]
    assert [str(p.url.path) for p in redirects] == ["/redirect/2", "/redirect/1"]
    assert [p.response.status_code for p in redirects] == [302, 302]


async def s_event_hooks(open_api: OpenApi, server: Any) -> None:
    seen: list[str] = []

    def on_request(request: webwire.Request) -> None:
        seen.append(f">{request.url.path}")

    def on_response(response: webwire.Response) -> None:
        seen.append(f"<{response.status_code}")

    hooks = {"request": [on_request], "response": [on_response]}
    async with open_api(**options(server, event_hooks=hooks)) as api:
        response = await api.get("/redirect/2")
        assert response.status_code == 200
        assert seen == [">/redirect/2", "<302", ">/redirect/1", "<302", ">/echo", "<200"]
        seen.clear()

        def check(response: webwire.Response) -> None:
            response.raise_for_status()

        api.client.event_hooks["response"].append(check)
        with pytest.raises(webwire.HTTPStatusError) as info:
            await api.get("/status/418")
        assert info.value.response.status_code == 418
        assert seen == [">/status/418", "<418"]
        assert api.in_use() == 0


async def s_retry_after(open_api: OpenApi, server: Any) -> None:
    key = uuid.uuid4().hex
    # backoff_factor 100 s: the second retry would wait 200 s unless the
    # Retry-After of 0 s is honoured.
    retry = webwire.Retry(3, backoff_factor=100.0)
    async with open_api(**options(server, retries=retry)) as api:
        response = await api.get(f"/flaky/{key}/2?retry_after=0")
        assert response.status_code == 200
        assert response.json()["attempts"] == 3
        assert api.in_use() == 0
        # Exhausted: the last 503 is returned, readable.
        key = uuid.uuid4().hex
        response = await api.get(f"/flaky/{key}/5?retry_after=0", retries=2)
        assert response.status_code == 503
        assert response.json() == {"attempts": 3, "failed": True}
        # Not retried: POST (not idempotent).
        key = uuid.uuid4().hex
        response = await api.post(f"/flaky/{key}/1?retry_after=0", content=b"x")
        assert response.status_code == 503
        # POST with allowed_methods=None and a bytes body: retried.
        everything = webwire.Retry(3, allowed_methods=None)
        data = b"payload" * 1000
        response = await api.post(f"/flaky/{key}/1?retry_after=0", content=data, retries=everything)
        assert response.status_code == 200
        assert response.json() == {"attempts": 2, "body_length": len(data)}
        assert api.in_use() == 0


SCENARIOS: list[Scenario] = [
    s_middleware_retry,
    s_trace_streamed_upload,
    s_trace_streamed_download,
    s_trace_redirect,
    s_event_hooks,
    s_retry_after,
]
IDS = [s.__name__[2:] for s in SCENARIOS]


@pytest.fixture(params=["hypercorn-http", "hypercorn-https", "hypercorn-h2"])
def pipeline_server(request: pytest.FixtureRequest) -> Any:
    return request.getfixturevalue(request.param.replace("-", "_"))


@pytest.mark.anyio
@pytest.mark.parametrize("scenario", SCENARIOS, ids=IDS)
async def test_async(scenario: Scenario, pipeline_server: Any, async_api: OpenApi) -> None:
    await scenario(async_api, pipeline_server)


@pytest.mark.parametrize("scenario", SCENARIOS, ids=IDS)
def test_sync(scenario: Scenario, pipeline_server: Any, sync_api: OpenApi) -> None:
    run_sync(scenario(sync_api, pipeline_server))


def test_upload_digest_unchanged_by_tracing(hypercorn_http: Any) -> None:
    """The traced body wrapper sends exactly the bytes of the body."""
    data = pattern_bytes(200_000)
    trace = webwire.TraceConfig()
    with webwire.Client(base_url=str(hypercorn_http.url), trace=[trace]) as client:
        response = client.post("/echo", content=iter([data[:70_000], data[70_000:]]))
    assert response.json()["body_sha256"] == hashlib.sha256(data).hexdigest()
