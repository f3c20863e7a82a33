"""The request pipeline against MockTransport: middlewares, event hooks,
tracing, retries, typed verb methods and the un-awaited request warning.

Each scenario is one coroutine run on asyncio, on trio and on the blocking
client (whose middlewares, hooks and trace callbacks are plain functions).
"""

from __future__ import annotations

import gc
import inspect
import threading
from collections.abc import Awaitable, Callable
from typing import Any

import pytest

import webwire
from webwire._retry import Retry
from webwire._sync import run_sync

Scenario = Callable[[Any], Awaitable[None]]
Body = Callable[[webwire.Request, Callable[[webwire.Request], Awaitable[Any]]], Awaitable[Any]]


def both(scenario: Scenario) -> tuple[Any, Any]:
    """Two tests for one scenario: AsyncClient (asyncio and trio) and Client."""

    @pytest.mark.anyio
    async def test_async(async_api: Any) -> None:
        await scenario(async_api)

    def test_sync(sync_api: Any) -> None:
        run_sync(scenario(sync_api))

    return test_async, test_sync


def middleware(open_api: Any, body: Body) -> Any:
    """A middleware of the right kind for the client ``open_api`` opens:
    ``async def`` for AsyncClient, a plain function for Client; ``body`` is
    written once as a coroutine that awaits ``call(request)``."""
    if open_api.__name__ == "open_async":

        async def async_mw(request: webwire.Request, handler: Any) -> Any:
            return await body(request, handler)

        return async_mw

    def sync_mw(request: webwire.Request, handler: Any) -> Any:
        async def call(next_request: webwire.Request) -> Any:
            return handler(next_request)

        return run_sync(body(request, call))

    return sync_mw


class Server:
    """A MockTransport handler: answers from a list of responses (the last
    repeats) and keeps the requests it saw."""

    def __init__(self, *answers: Callable[[webwire.Request], webwire.Response]) -> None:
        self.answers = list(answers) or [lambda r: webwire.Response(200, text="ok")]
        self.requests: list[webwire.Request] = []
        self.responses: list[webwire.Response] = []

    def __call__(self, request: webwire.Request) -> webwire.Response:
        self.requests.append(request)
        answer = self.answers[min(len(self.requests), len(self.answers)) - 1]
        response = answer(request)
        self.responses.append(response)
        return response

    def transport(self) -> webwire.MockTransport:
        return webwire.MockTransport(self)


def status(code: int, **headers: str) -> Callable[[webwire.Request], webwire.Response]:
    return lambda request: webwire.Response(code, headers=headers, text=f"status {code}")


def fail(exc: type[Exception]) -> Callable[[webwire.Request], webwire.Response]:
    def answer(request: webwire.Request) -> webwire.Response:
        raise exc("failed on purpose")

    return answer


URL = "http://example.com/path"


# -- middlewares ---------------------------------------------------------------


async def scenario_middleware_order(open_api: Any) -> None:
    log: list[str] = []

    def named(name: str) -> Any:
        async def body(request: webwire.Request, call: Any) -> Any:
            log.append(f"{name} in")
            request.headers.add("X-Chain", name)
            response = await call(request)
            log.append(f"{name} out {response.status_code}")
            return response

        return middleware(open_api, body)

    server = Server()
    async with open_api(
        transport=server.transport(), middlewares=[named("a"), named("b")]
    ) as api:
        response = await api.get(URL)
    assert response.status_code == 200
    assert response.text == "ok"
    assert log == ["a in", "b in", "b out 200", "a out 200"]
    assert server.requests[0].headers.getall("X-Chain") == ["a", "b"]


async def scenario_middleware_short_circuit(open_api: Any) -> None:
    async def body(request: webwire.Request, call: Any) -> Any:
        return webwire.Response(203, text="cached", request=request)

    server = Server()
    async with open_api(
        transport=server.transport(), middlewares=[middleware(open_api, body)]
    ) as api:
        response = await api.get(URL)
    assert response.status_code == 203
    assert response.text == "cached"
    assert server.requests == []


async def scenario_middleware_retries(open_api: Any) -> None:
    async def body(request: webwire.Request, call: Any) -> Any:
        response = await call(request)
        if response.status_code == 500:
            response = await call(request)
        return response

    server = Server(status(500), status(200))
    async with open_api(
        transport=server.transport(), middlewares=[middleware(open_api, body)]
    ) as api:
        response = await api.post(URL, content=b"data")
    assert response.status_code == 200
    assert [r.content for r in server.requests] == [b"data", b"data"]


async def scenario_middleware_rewrites_request(open_api: Any) -> None:
    async def body(request: webwire.Request, call: Any) -> Any:
        replacement = webwire.Request(
            "PUT", request.url.with_path("/rewritten"), headers={"X-New": "1"}, content=b"new"
        )
        return await call(replacement)

    server = Server()
    async with open_api(
        transport=server.transport(), middlewares=[middleware(open_api, body)]
    ) as api:
        response = await api.get(URL)
    assert response.status_code == 200
    sent = server.requests[0]
    assert (sent.method, sent.url.path, sent.headers["X-New"], sent.content) == (
        "PUT",
        "/rewritten",
        "1",
        b"new",
    )
    assert response.request is sent


class Boom(Exception):
    pass


async def scenario_middleware_exception_propagates(open_api: Any) -> None:
    error = Boom("from the middleware")

    async def body(request: webwire.Request, call: Any) -> Any:
        raise error

    async with open_api(
        transport=Server().transport(), middlewares=[middleware(open_api, body)]
    ) as api:
        with pytest.raises(Boom) as info:
            await api.get(URL)
    assert info.value is error


async def scenario_middleware_must_return_response(open_api: Any) -> None:
    async def body(request: webwire.Request, call: Any) -> Any:
        await call(request)
        return "not a response"

    async with open_api(
        transport=Server().transport(), middlewares=[middleware(open_api, body)]
    ) as api:
        with pytest.raises(TypeError, match=r"must return a webwire\.Response"):
            await api.get(URL)


async def scenario_per_request_middlewares(open_api: Any) -> None:
    seen: list[str] = []

    def tag(name: str) -> Any:
        async def body(request: webwire.Request, call: Any) -> Any:
            seen.append(name)
            return await call(request)

        return middleware(open_api, body)

    async with open_api(transport=Server().transport(), middlewares=[tag("client")]) as api:
        await api.get(URL)
        await api.get(URL, middlewares=[tag("request")])
        await api.get(URL, middlewares=())
        await api.request("GET", URL, middlewares=[tag("request")])
    assert seen == ["client", "request", "request"]


async def scenario_middleware_per_hop_auth_inside(open_api: Any) -> None:
    hops: list[tuple[str, str | None]] = []

    async def body(request: webwire.Request, call: Any) -> Any:
        hops.append((request.url.path, request.headers.get("Authorization")))
        return await call(request)

    server = Server(
        lambda r: webwire.Response(302, headers={"Location": "/final"}),
        status(200),
    )
    async with open_api(
        transport=server.transport(),
        middlewares=[middleware(open_api, body)],
        auth=("user", "secret"),
    ) as api:
        response = await api.get("http://example.com/start")
    assert response.status_code == 200
    assert [r.status_code for r in response.history] == [302]
    # Once per hop; authentication runs inside the handler, after the chain.
    assert [path for path, _ in hops] == ["/start", "/final"]
    assert hops[0] == ("/start", None)
    # ... which the transport saw.
    assert all(r.headers["Authorization"].startswith("Basic ") for r in server.requests)


def test_sync_client_refuses_coroutine_functions() -> None:
    async def amw(request: Any, handler: Any) -> Any:
        return await handler(request)

    async def ahook(item: Any) -> None:
        pass

    async def acallback(client: Any, ctx: Any, params: Any) -> None:
        pass

    with pytest.raises(TypeError, match="coroutine function"):
        webwire.Client(middlewares=[amw])
    with pytest.raises(TypeError, match="coroutine function"):
        webwire.Client(event_hooks={"response": [ahook]})
    trace = webwire.TraceConfig()
    trace.on_request_start.append(acallback)
    with pytest.raises(TypeError, match="coroutine function"):
        webwire.Client(trace=[trace])
    with webwire.Client(transport=webwire.MockTransport(Server())) as client:
        with pytest.raises(TypeError, match="coroutine function"):
            client.get(URL, middlewares=[amw])
        with pytest.raises(TypeError, match="coroutine function"):
            client.event_hooks = {"request": [ahook]}


def test_sync_client_refuses_awaitable_results() -> None:
    """A callback added after construction that returns an awaitable is
    refused when called (and the awaitable closed)."""

    async def later(client: Any, ctx: Any, params: Any) -> None:
        pass

    trace = webwire.TraceConfig()
    with webwire.Client(transport=webwire.MockTransport(Server()), trace=[trace]) as client:
        trace.on_request_start.append(later)
        with pytest.raises(TypeError, match="plain functions only"):
            client.get(URL)


def test_bad_configuration() -> None:
    with pytest.raises(ValueError, match="event_hooks keys"):
        webwire.AsyncClient(event_hooks={"requests": []})
    with pytest.raises(TypeError, match="callable"):
        webwire.AsyncClient(middlewares=[42])  # type: ignore[list-item]
    with pytest.raises(TypeError, match="sequence of functions"):
        webwire.AsyncClient(middlewares=lambda r, h: h(r))  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="TraceConfig"):
        webwire.AsyncClient(trace=[object()])  # type: ignore[list-item]
    with pytest.raises(ValueError, match="retries must be >= 0"):
        webwire.AsyncClient(retries=-1)
    with pytest.raises(TypeError, match="retries must be an int"):
        webwire.AsyncClient(retries="3")  # type: ignore[arg-type]


@pytest.mark.anyio
async def test_async_callbacks_may_be_coroutines_or_plain() -> None:
    log: list[str] = []

    async def amw(request: webwire.Request, handler: Any) -> webwire.Response:
        log.append("async middleware")
        return await handler(request)

    def plain_mw(request: webwire.Request, handler: Any) -> Any:
        log.append("plain middleware")
        return handler(request)  # an awaitable, awaited by the client

    async def ahook(response: webwire.Response) -> None:
        log.append(f"async hook {(await response.aread()).decode()}")

    def plain_hook(request: webwire.Request) -> None:
        log.append("plain hook")

    async def astart(client: Any, ctx: Any, params: Any) -> None:
        log.append(f"async trace {ctx.trace_request_ctx}")

    trace = webwire.TraceConfig()
    trace.on_request_start.append(astart)
    async with webwire.AsyncClient(
        transport=webwire.MockTransport(Server()),
        middlewares=[amw, plain_mw],
        event_hooks={"request": [plain_hook], "response": [ahook]},
        trace=[trace],
    ) as client:
        response = await client.get(URL, trace_request_ctx="ctx")
    assert response.text == "ok"
    assert log == [
        "async trace ctx",
        "async middleware",
        "plain middleware",
        "plain hook",
        "async hook ok",
    ]


# -- event hooks ------------------------------------------------------------------


async def scenario_event_hooks(open_api: Any) -> None:
    seen: list[str] = []

    def on_request(request: webwire.Request) -> None:
        seen.append(f"request {request.method} {request.url.path}")

    def on_response(response: webwire.Response) -> None:
        # The body is not read yet when the hook runs.
        seen.append(f"response {response.status_code} read={response.is_stream_consumed}")

    server = Server(lambda r: webwire.Response(307, headers={"Location": "/next"}), status(200))
    hooks = {"request": [on_request], "response": [on_response]}
    async with open_api(transport=server.transport(), event_hooks=hooks) as api:
        response = await api.get(URL)
        assert response.status_code == 200
        assert seen == [
            "request GET /path",
            "response 307 read=False",
            "request GET /next",
            "response 200 read=False",
        ]
        seen.clear()
        api.client.event_hooks["request"].append(lambda r: seen.append("appended"))
        await api.get("http://example.com/next")
        assert seen == ["request GET /next", "appended", "response 200 read=False"]
        seen.clear()
        api.client.event_hooks = {"response": [on_response]}
        await api.get("http://example.com/next")
        assert seen == ["response 200 read=False"]
        assert set(api.client.event_hooks) == {"request", "response"}


async def scenario_event_hook_raise_for_status(open_api: Any) -> None:
    def check(response: webwire.Response) -> None:
        response.raise_for_status()

    server = Server(status(404))
    async with open_api(transport=server.transport(), event_hooks={"response": [check]}) as api:
        with pytest.raises(webwire.HTTPStatusError) as info:
            await api.get(URL)
    assert info.value.response.status_code == 404
    assert info.value.response.is_closed


async def scenario_event_hook_reads_body(open_api: Any) -> None:
    bodies: list[bytes] = []

    def read_sync(response: webwire.Response) -> None:
        bodies.append(response.read())

    async def read_async(response: webwire.Response) -> None:
        bodies.append(await response.aread())

    hook = read_async if open_api.__name__ == "open_async" else read_sync
    async with open_api(
        transport=Server(status(200)).transport(), event_hooks={"response": [hook]}
    ) as api:
        response = await api.get(URL)
    assert bodies == [b"status 200"]
    assert response.content == b"status 200"


# -- tracing ---------------------------------------------------------------------


def recording_trace(log: list[Any], factory: Any = None) -> webwire.TraceConfig:
    """A TraceConfig whose every signal appends ``(signal, ctx, params)``."""
    from webwire.http._tracing import SIGNALS

    trace = webwire.TraceConfig() if factory is None else webwire.TraceConfig(factory)

    def recorder(signal: str) -> Any:
        def callback(client: Any, ctx: Any, params: Any) -> None:
            log.append((signal[3:], client, ctx, params))

        return callback

    for signal in SIGNALS:
        getattr(trace, signal).append(recorder(signal))
    return trace


async def scenario_trace_signals(open_api: Any) -> None:
    log: list[Any] = []
    server = Server(
        lambda r: webwire.Response(302, headers={"Location": "/b"}),
        lambda r: webwire.Response(200, content=iter([b"status ", b"200"])),  # streamed
    )
    async with open_api(transport=server.transport(), trace=[recording_trace(log)]) as api:
        response = await api.post(URL, content=b"payload", trace_request_ctx={"id": 7})
        client = api.client
    assert response.status_code == 200
    names = [entry[0] for entry in log]
    assert names == [
        "request_start",
        "request_chunk_sent",
        "request_redirect",
        "request_end",
        "response_chunk_received",
        "response_chunk_received",
    ]
    assert {id(entry[1]) for entry in log} == {id(client)}
    ctxs = {id(entry[2]) for entry in log}
    assert len(ctxs) == 1  # one context per request and trace config
    assert log[0][2].trace_request_ctx == {"id": 7}
    start = log[0][3]
    assert isinstance(start, webwire.TraceRequestStartParams)
    assert (start.method, str(start.url)) == ("POST", URL)
    assert start.headers["Host"] == "example.com"
    assert isinstance(log[1][3], webwire.TraceRequestChunkSentParams)
    assert log[1][3].chunk == b"payload"
    redirect = log[2][3]
    assert isinstance(redirect, webwire.TraceRequestRedirectParams)
    assert redirect.response.status_code == 302
    end = log[3][3]
    assert isinstance(end, webwire.TraceRequestEndParams)
    assert (end.method, str(end.url), end.response) == ("GET", "http://example.com/b", response)
    assert isinstance(log[4][3], webwire.TraceResponseChunkReceivedParams)
    assert [log[4][3].chunk, log[5][3].chunk] == [b"status ", b"200"]
    assert response.content == b"status 200"
    with pytest.raises(AttributeError):
        start.method = "PUT"  # frozen


async def scenario_trace_exception(open_api: Any) -> None:
    log: list[Any] = []
    server = Server(fail(webwire.ReadError))
    async with open_api(transport=server.transport(), trace=[recording_trace(log)]) as api:
        with pytest.raises(webwire.ReadError) as info:
            await api.get(URL)
    assert [entry[0] for entry in log] == ["request_start", "request_exception"]
    params = log[1][3]
    assert isinstance(params, webwire.TraceRequestExceptionParams)
    assert params.exception is info.value


async def scenario_trace_streamed_body_and_factory(open_api: Any) -> None:
    log: list[Any] = []

    class Context:
        def __init__(self, trace_request_ctx: Any) -> None:
            self.trace_request_ctx = trace_request_ctx

    trace = recording_trace(log, Context)
    server = Server()
    async with open_api(transport=server.transport()) as api:
        # Per-request trace configs only.
        await api.post(URL, content=api.body([b"one", b"two"]), trace=[trace])
        await api.get(URL)
    sent = [entry[3].chunk for entry in log if entry[0] == "request_chunk_sent"]
    assert sent == [b"one", b"two"]
    assert server.requests[0].content == b"onetwo"
    assert isinstance(log[0][2], Context)
    assert log[0][2].trace_request_ctx is None
    assert len([entry for entry in log if entry[0] == "request_start"]) == 1


async def scenario_trace_callback_exception_propagates(open_api: Any) -> None:
    trace = webwire.TraceConfig()

    def broken(client: Any, ctx: Any, params: Any) -> None:
        raise Boom("callback failed")

    trace.on_request_end.append(broken)
    async with open_api(transport=Server().transport(), trace=[trace]) as api:
        with pytest.raises(Boom):
            await api.get(URL)


class SignallingTransport(webwire.AsyncBaseTransport):
    """A transport emitting the pool's trace signals through the request's
    ``extensions["trace"]`` hook, as the connection pool does."""

    async def handle_async_request(self, request: webwire.Request) -> webwire.Response:
        hook = request.extensions.get("trace")
        if hook is not None:
            await hook("connection_queued_start", {})
            await hook("connection_queued_end", {})
            await hook("dns_cache_miss", {"host": "example.com"})
            await hook("dns_resolvehost_start", {"host": "example.com"})
            await hook("dns_resolvehost_end", {"host": "example.com"})
            await hook("connection_create_start", {})
            await hook("connection_create_end", {})
            await hook("connection_reuseconn", {})
            await hook("dns_cache_hit", {"host": "example.com"})
            await hook("unknown_signal", {"ignored": True})
        return webwire.Response(200, text="ok", request=request)


async def scenario_trace_transport_signals(open_api: Any) -> None:
    log: list[Any] = []
    async with open_api(transport=SignallingTransport(), trace=[recording_trace(log)]) as api:
        await api.get(URL)
        await api.get(URL, trace=())  # disabled: no hook in the extensions
    pairs = [(entry[0], entry[3]) for entry in log[1:-1]]
    assert pairs == [
        ("connection_queued_start", webwire.TraceConnectionQueuedStartParams()),
        ("connection_queued_end", webwire.TraceConnectionQueuedEndParams()),
        ("dns_cache_miss", webwire.TraceDnsCacheMissParams("example.com")),
        ("dns_resolvehost_start", webwire.TraceDnsResolveHostStartParams("example.com")),
        ("dns_resolvehost_end", webwire.TraceDnsResolveHostEndParams("example.com")),
        ("connection_create_start", webwire.TraceConnectionCreateStartParams()),
        ("connection_create_end", webwire.TraceConnectionCreateEndParams()),
        ("connection_reuseconn", webwire.TraceConnectionReuseconnParams()),
        ("dns_cache_hit", webwire.TraceDnsCacheHitParams("example.com")),
    ]
    assert [entry[0] for entry in (log[0], log[-1])] == ["request_start", "request_end"]


# -- retries ------------------------------------------------------------------------


async def scenario_retry_status(open_api: Any) -> None:
    server = Server(status(503, **{"Retry-After": "0"}), status(429), status(200))
    async with open_api(transport=server.transport(), retries=3) as api:
        response = await api.get(URL)
    assert response.status_code == 200
    assert len(server.requests) == 3
    assert all(r.is_closed for r in server.responses[:2])  # drained and released


async def scenario_retry_exhausted_returns_last_response(open_api: Any) -> None:
    server = Server(status(503))
    async with open_api(transport=server.transport(), retries=2) as api:
        response = await api.get(URL)
    assert response.status_code == 503
    assert response.text == "status 503"
    assert len(server.requests) == 3


async def scenario_retry_not_for_post_or_streams(open_api: Any) -> None:
    server = Server(status(503))
    async with open_api(transport=server.transport(), retries=3) as api:
        assert (await api.post(URL, content=b"x")).status_code == 503
        assert len(server.requests) == 1
        everything = Retry(3, allowed_methods=None)
        assert (await api.post(URL, content=b"x", retries=everything)).status_code == 503
        assert len(server.requests) == 5
        body = api.body([b"a", b"b"])  # one-shot: never replayed
        assert (await api.post(URL, content=body, retries=everything)).status_code == 503
        assert len(server.requests) == 6
        assert (await api.get(URL, retries=0)).status_code == 503
        assert len(server.requests) == 7


async def scenario_retry_errors(open_api: Any) -> None:
    server = Server(fail(webwire.ConnectError), fail(webwire.ConnectTimeout), status(200))
    async with open_api(transport=server.transport(), retries=3) as api:
        # Connection errors: the request never left, any method is retried.
        assert (await api.post(URL, content=b"x")).status_code == 200
        assert len(server.requests) == 3
    server = Server(fail(webwire.ReadError), status(200))
    async with open_api(transport=server.transport(), retries=3) as api:
        with pytest.raises(webwire.ReadError):
            await api.post(URL, content=b"x")  # may have been processed
        assert len(server.requests) == 1
        assert (await api.get(URL)).status_code == 200  # server's 2nd answer
    server = Server(fail(webwire.ReadTimeout), status(200))
    async with open_api(transport=server.transport(), retries=3) as api:
        assert (await api.get(URL)).status_code == 200
        assert len(server.requests) == 2
    server = Server(fail(webwire.ReadError))
    async with open_api(transport=server.transport(), retries=Retry(5, read=1)) as api:
        with pytest.raises(webwire.ReadError):
            await api.get(URL)
        assert len(server.requests) == 2  # read=1: one retry, then the last error
    server = Server(fail(webwire.LocalProtocolError))
    async with open_api(transport=server.transport(), retries=3) as api:
        with pytest.raises(webwire.LocalProtocolError):
            await api.get(URL)
        assert len(server.requests) == 1  # not a retryable error


# -- many threads -----------------------------------------------------------------


def test_sync_pipeline_shared_by_threads() -> None:
    """Per-request pipeline state (trace contexts, retry counters) is kept
    apart when many threads share one Client."""
    log: list[Any] = []
    lock = threading.Lock()

    def record(client: Any, ctx: Any, params: Any) -> None:
        with lock:
            log.append((ctx.trace_request_ctx, type(params).__name__))

    trace = webwire.TraceConfig()
    trace.on_request_start.append(record)
    trace.on_request_end.append(record)
    calls: dict[str, int] = {}

    def handler(request: webwire.Request) -> webwire.Response:
        key = request.url.path
        with lock:
            calls[key] = calls.get(key, 0) + 1
            first = calls[key] == 1
        return webwire.Response(503 if first else 200, text=key)

    def mw(request: webwire.Request, handler: Any) -> webwire.Response:
        request.headers["X-Thread"] = request.url.path
        response: webwire.Response = handler(request)
        return response

    errors: list[BaseException] = []
    with webwire.Client(
        transport=webwire.MockTransport(handler), trace=[trace], retries=2, middlewares=[mw]
    ) as client:

        def work(n: int) -> None:
            try:
                for i in range(20):
                    key = f"/{n}/{i}"
                    response = client.get(f"http://example.com{key}", trace_request_ctx=key)
                    assert response.status_code == 200
                    assert response.text == key
                    assert response.request.headers["X-Thread"] == key
            except BaseException as exc:
                errors.append(exc)

        threads = [threading.Thread(target=work, args=(n,)) for n in range(8)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(30)
    assert errors == []
    assert len(log) == 8 * 20 * 2
    for n in range(8):
        for i in range(20):
            key = f"/{n}/{i}"
            assert [kind for ctx, kind in log if ctx == key] == [
                "TraceRequestStartParams",
                "TraceRequestEndParams",
            ]
            assert calls[key] == 2


# -- the Retry policy ----------------------------------------------------------------


def test_retry_counters_and_history() -> None:
    retry = Retry(3, connect=1, read=2, status=1)
    assert not retry.is_exhausted()
    after = retry.increment(method="GET", error=webwire.ConnectError("x"))
    assert (after.total, after.connect, after.read, after.status) == (2, 0, 2, 1)
    assert (retry.total, retry.connect) == (3, 1)  # immutable
    after = after.increment(method="GET", error=webwire.ConnectTimeout("x"))
    assert after.connect == -1 and after.is_exhausted()
    response = webwire.Response(503)
    status_retry = retry.increment(method="GET", response=response)
    assert status_retry.status == 0 and not status_retry.is_exhausted()
    assert status_retry.increment(response=response).is_exhausted()
    history = status_retry.history
    assert len(history) == 1
    assert (history[0].method, history[0].error, history[0].status) == ("GET", None, 503)
    assert Retry(0).increment(error=webwire.ReadError("x")).is_exhausted()
    unlimited = Retry(None, read=0)
    assert not unlimited.increment(error=webwire.ConnectError("x")).is_exhausted()
    assert unlimited.increment(error=webwire.ReadError("x")).is_exhausted()


def test_retry_backoff() -> None:
    retry = Retry(10, backoff_factor=0.5, backoff_max=3.0)
    waits = []
    for _ in range(5):
        retry = retry.increment(error=webwire.ConnectError("x"))
        waits.append(retry.get_backoff_time())
    assert waits == [0.0, 1.0, 2.0, 3.0, 3.0]
    jittery = Retry(10, backoff_factor=1.0, backoff_jitter=0.5)
    jittery = jittery.increment().increment()
    assert 2.0 <= jittery.get_backoff_time() <= 2.5


def test_retry_after() -> None:
    retry = Retry()
    assert retry.get_retry_after(webwire.Response(503, headers={"Retry-After": "7"})) == 7.0
    assert retry.get_retry_after(webwire.Response(503)) is None
    assert retry.get_retry_after(webwire.Response(503, headers={"Retry-After": "soon"})) is None
    past = webwire.Response(503, headers={"Retry-After": "Wed, 21 Oct 2015 07:28:00 GMT"})
    assert retry.get_retry_after(past) == 0.0
    future = webwire.Response(503, headers={"Retry-After": "Fri, 01 Jan 2100 00:00:00 GMT"})
    delay = retry.get_retry_after(future)
    assert delay is not None and delay > 365 * 24 * 3600


def test_retry_from_int_and_checks() -> None:
    assert Retry.from_int(2).total == 2
    policy = Retry(1)
    assert Retry.from_int(policy) is policy
    assert Retry.from_int(None).total == 0
    assert Retry(allowed_methods=["get"]).allowed_methods == frozenset({"GET"})
    assert Retry().is_retry("GET", 503) and not Retry().is_retry("POST", 503)
    assert Retry(allowed_methods=None).is_retry("POST", 429)
    assert not Retry().is_retry("GET", 500)
    assert Retry(status_forcelist=[500]).is_retry("GET", 500)
    with pytest.raises(ValueError, match="backoff_factor"):
        Retry(backoff_factor=-1)
    with pytest.raises(TypeError, match="total"):
        Retry(1.5)  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="allowed_methods"):
        Retry(allowed_methods="GET")
    assert Retry(2, connect=1).new(read=4).read == 4
    assert webwire.Retry is Retry and webwire.http.Retry is Retry


# -- typed verb methods -------------------------------------------------------------

VERBS = ["get", "head", "options", "delete", "post", "put", "patch", "request", "stream"]


@pytest.mark.parametrize("cls", [webwire.AsyncClient, webwire.Client])
def test_verbs_have_typed_keywords(cls: type) -> None:
    for name in VERBS:
        signature = inspect.signature(getattr(cls, name))
        kinds = {p.kind for p in signature.parameters.values()}
        assert inspect.Parameter.VAR_KEYWORD not in kinds, name
        for option in ("middlewares", "trace", "trace_request_ctx", "retries", "timeout"):
            assert option in signature.parameters, (name, option)
    assert "json" in inspect.signature(cls.post).parameters
    assert "json" not in inspect.signature(cls.get).parameters


def test_misspelt_keyword_is_refused() -> None:
    client = webwire.AsyncClient(transport=webwire.MockTransport(Server()))
    with pytest.raises(TypeError, match="jsn"):
        client.post(URL, jsn=1)  # type: ignore[call-arg]
    with pytest.raises(TypeError, match="jsn"):
        client.stream("POST", URL, jsn=1)  # type: ignore[call-arg]
    with webwire.Client(transport=webwire.MockTransport(Server())) as sync_client:
        with pytest.raises(TypeError, match="jsn"):
            sync_client.post(URL, jsn=1)  # type: ignore[call-arg]


# -- un-awaited requests ---------------------------------------------------------------


def test_unawaited_request_warns() -> None:
    client = webwire.AsyncClient(transport=webwire.MockTransport(Server()))
    with pytest.warns(RuntimeWarning, match="was never awaited"):
        context = client.get(URL)
        del context
        gc.collect()


@pytest.mark.anyio
async def test_awaited_or_entered_request_does_not_warn() -> None:
    async with webwire.AsyncClient(transport=webwire.MockTransport(Server())) as client:
        await client.get(URL)
        async with client.get(URL) as response:
            await response.aread()
        async with client.stream("GET", URL) as response:
            await response.aread()
        gc.collect()  # warnings are errors: a warning here fails the test


for _name, _scenario in list(globals().items()):
    if _name.startswith("scenario_"):
        globals()[f"test_{_name[9:]}_async"], globals()[f"test_{_name[9:]}_sync"] = both(
            _scenario
        )
