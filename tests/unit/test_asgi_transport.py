"""AsyncClient(app=...) and ASGITransport against a Starlette application,
on asyncio and trio: the HTTP scope, request and response streaming,
disconnects, app exceptions and the lifespan protocol."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import anyio
import pytest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse, Response, StreamingResponse
from starlette.routing import Route

import webwire
from webwire._backends.memory import MemoryBackend, memory_test

BASE = "http://testserver"


class Probe:
    """What the app saw, for the test to check."""

    def __init__(self) -> None:
        self.chunks_sent = 0
        self.stream_ended = anyio.Event()
        self.upload_chunks: list[bytes] = []
        self.events: list[str] = []


class Watch:
    """ASGI middleware: sets ``probe.stream_ended`` when a request to
    ``/endless`` returns from the app (the app saw the disconnect)."""

    def __init__(self, app: Any, probe: Probe) -> None:
        self.app = app
        self.probe = probe

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        try:
            await self.app(scope, receive, send)
        finally:
            if scope["type"] == "http" and scope["path"] == "/endless":
                self.probe.stream_ended.set()


def make_app(probe: Probe) -> Starlette:
    async def echo(request: Request) -> Response:
        body = await request.body()
        return JSONResponse(
            {
                "method": request.method,
                "path": request.url.path,
                "scope_path": request.scope["path"],
                "raw_path": request.scope["raw_path"].decode("ascii"),
                "root_path": request.scope["root_path"],
                "query": request.scope["query_string"].decode("ascii"),
                "args": sorted(request.query_params.multi_items()),
                "headers": [[k, v] for k, v in request.headers.items()],
                "body": body.decode("latin-1"),
                "client": list(request.client) if request.client else None,
                "scheme": request.url.scheme,
                "server": list(request.scope["server"]),
                "http_version": request.scope["http_version"],
                "asgi": request.scope["asgi"],
            }
        )

    async def upload(request: Request) -> Response:
        async for chunk in request.stream():
            if chunk:
                probe.upload_chunks.append(chunk)
        return PlainTextResponse(str(len(probe.upload_chunks)))

    async def endless(request: Request) -> Response:
        class Numbers:
            """An endless body (an iterator object: nothing to finalize)."""

            def __aiter__(self) -> Numbers:
                return self

            async def __anext__(self) -> bytes:
                await anyio.sleep(0)
                n = probe.chunks_sent
                probe.chunks_sent += 1
                return f"{n}\n".encode()

        return StreamingResponse(Numbers(), media_type="text/plain")

    async def boom(request: Request) -> Response:
        raise ValueError("boom from the app")

    async def state(request: Request) -> Response:
        return JSONResponse({"items": request.state.items})

    async def background(request: Request) -> Response:
        return PlainTextResponse("ok")

    app = Starlette(
        routes=[
            Route("/echo", echo, methods=["GET", "POST", "PUT", "DELETE", "HEAD"]),
            Route("/path/{rest:path}", echo),
            Route("/upload", upload, methods=["POST"]),
            Route("/endless", endless),
            Route("/boom", boom),
            Route("/state", state),
            Route("/ok", background),
        ]
    )
    app.add_middleware(Watch, probe=probe)
    return app


@pytest.fixture
def probe() -> Probe:
    return Probe()


@pytest.fixture
def app(probe: Probe) -> Starlette:
    return make_app(probe)


@pytest.mark.anyio
async def test_echo_scope(app: Starlette) -> None:
    async with webwire.AsyncClient(app=app, base_url=BASE) as client:
        response = await client.post(
            "/echo?b=2&a=1&a=x",
            content=b"hello app",
            headers={"X-Custom": "Value", "Content-Type": "text/plain"},
        )
    assert response.status_code == 200
    data = response.json()
    assert data["method"] == "POST"
    assert data["path"] == "/echo"
    assert data["query"] == "b=2&a=1&a=x"
    assert data["args"] == [["a", "1"], ["a", "x"], ["b", "2"]]
    assert data["body"] == "hello app"
    headers = dict(data["headers"])
    assert headers["x-custom"] == "Value"
    assert headers["content-type"] == "text/plain"
    assert headers["content-length"] == "9"
    assert headers["host"] == "testserver"
    assert data["client"] == ["127.0.0.1", 123]
    assert data["scheme"] == "http"
    assert data["server"] == ["testserver", 80]
    assert data["http_version"] == "1.1"
    assert data["asgi"]["version"] == "3.0"


@pytest.mark.anyio
async def test_methods_and_https_server(app: Starlette) -> None:
    async with webwire.AsyncClient(app=app) as client:
        for method in ("GET", "PUT", "DELETE"):
            response = await client.request(method, "https://example.org:8443/echo")
            assert response.json()["method"] == method
            assert response.json()["scheme"] == "https"
            assert response.json()["server"] == ["example.org", 8443]
        head = await client.head("https://example.org/echo")
        assert head.status_code == 200
        assert head.content == b""


@pytest.mark.anyio
async def test_path_percent_decoded(app: Starlette) -> None:
    async with webwire.AsyncClient(app=app, base_url=BASE) as client:
        response = await client.get("/path/a%20b/%C3%A9t%C3%A9")
    data = response.json()
    assert data["scope_path"] == "/path/a b/été"
    assert data["raw_path"] == "/path/a%20b/%C3%A9t%C3%A9"


@pytest.mark.anyio
async def test_root_path_and_client(app: Starlette) -> None:
    transport = webwire.ASGITransport(app, root_path="/api", client=("10.1.2.3", 4567))
    async with webwire.AsyncClient(transport=transport, base_url=BASE) as client:
        response = await client.get("/api/echo")
    data = response.json()
    assert response.status_code == 200
    assert data["root_path"] == "/api"
    assert data["scope_path"] == "/api/echo"
    assert data["client"] == ["10.1.2.3", 4567]


@pytest.mark.anyio
async def test_request_body_streamed_in_chunks(app: Starlette, probe: Probe) -> None:
    async def body() -> AsyncIterator[bytes]:
        for part in (b"one", b"two", b"three"):
            yield part

    async with webwire.AsyncClient(app=app, base_url=BASE) as client:
        response = await client.post("/upload", content=body())
    assert response.text == "3"
    assert probe.upload_chunks == [b"one", b"two", b"three"]


@pytest.mark.anyio
async def test_endless_response_streams_and_disconnects(app: Starlette, probe: Probe) -> None:
    async with webwire.AsyncClient(app=app, base_url=BASE) as client:
        async with client.stream("GET", "/endless") as response:
            assert response.status_code == 200
            lines = []
            async for line in response.aiter_lines():
                lines.append(line)
                if len(lines) == 5:
                    break
        assert lines == ["0", "1", "2", "3", "4"]
        # The app is told and stops producing.
        with anyio.fail_after(5):
            await probe.stream_ended.wait()
        sent = probe.chunks_sent
        await anyio.sleep(0.01)
        assert probe.chunks_sent == sent


@pytest.mark.anyio
async def test_raw_app_sees_http_disconnect() -> None:
    seen: list[Any] = []
    done = anyio.Event()

    async def app(scope: Any, receive: Any, send: Any) -> None:
        assert scope["type"] == "http"
        message = await receive()
        assert message == {"type": "http.request", "body": b"", "more_body": False}
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": b"first", "more_body": True})
        seen.append(await receive())
        try:
            await send({"type": "http.response.body", "body": b"late", "more_body": True})
        except OSError as exc:
            seen.append(type(exc))
        done.set()

    async with webwire.AsyncClient(app=app, base_url=BASE) as client:
        async with client.stream("GET", "/") as response:
            async for chunk in response.aiter_bytes():
                assert chunk == b"first"
                break
        with anyio.fail_after(5):
            await done.wait()
    assert seen == [{"type": "http.disconnect"}, OSError]


@pytest.mark.anyio
async def test_app_exception_propagates_unchanged(app: Starlette) -> None:
    async with webwire.AsyncClient(app=app, base_url=BASE) as client:
        with pytest.raises(ValueError, match="boom from the app"):
            await client.get("/boom")
        # The client still works afterwards.
        assert (await client.get("/ok")).text == "ok"


@pytest.mark.anyio
async def test_app_exception_as_500(app: Starlette) -> None:
    async with webwire.AsyncClient(
        app=app, base_url=BASE, raise_app_exceptions=False
    ) as client:
        response = await client.get("/boom")
    assert response.status_code == 500


@pytest.mark.anyio
async def test_raw_app_exception_before_start() -> None:
    class Failure(Exception):
        pass

    async def app(scope: Any, receive: Any, send: Any) -> None:
        raise Failure("no response")

    async with webwire.AsyncClient(app=app, base_url=BASE) as client:
        with pytest.raises(Failure):
            await client.get("/")
    async with webwire.AsyncClient(
        app=app, base_url=BASE, raise_app_exceptions=False
    ) as client:
        response = await client.get("/")
        assert response.status_code == 500


@pytest.mark.anyio
async def test_app_without_response() -> None:
    async def app(scope: Any, receive: Any, send: Any) -> None:
        await receive()

    async with webwire.AsyncClient(app=app, base_url=BASE) as client:
        with pytest.raises(webwire.RemoteProtocolError, match="without sending a response"):
            await client.get("/")
    async with webwire.AsyncClient(
        app=app, base_url=BASE, raise_app_exceptions=False
    ) as client:
        assert (await client.get("/")).status_code == 500


@pytest.mark.anyio
async def test_app_failing_mid_body() -> None:
    async def app(scope: Any, receive: Any, send: Any) -> None:
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": b"part", "more_body": True})
        raise KeyError("mid-body")

    async with webwire.AsyncClient(app=app, base_url=BASE) as client:
        with pytest.raises(KeyError):
            await client.get("/")
    async with webwire.AsyncClient(
        app=app, base_url=BASE, raise_app_exceptions=False
    ) as client:
        with pytest.raises(webwire.RemoteProtocolError):
            await client.get("/")


@pytest.mark.anyio
async def test_buffered_without_async_with(app: Starlette) -> None:
    client = webwire.AsyncClient(app=app, base_url=BASE)
    try:
        response = await client.post("/echo", json={"a": 1})
        assert response.json()["body"] == '{"a":1}'
        with pytest.raises(ValueError):
            await client.get("/boom")
    finally:
        await client.aclose()


@pytest.mark.anyio
async def test_concurrent_requests(app: Starlette) -> None:
    results: dict[int, str] = {}
    async with webwire.AsyncClient(app=app, base_url=BASE) as client:

        async def one(i: int) -> None:
            response = await client.get("/echo", params={"i": str(i)})
            results[i] = response.json()["query"]

        async with anyio.create_task_group() as tg:
            for i in range(20):
                tg.start_soon(one, i)
    assert results == {i: f"i={i}" for i in range(20)}


@pytest.mark.anyio
async def test_lifespan_with_state() -> None:
    events: list[str] = []

    @asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[dict[str, Any]]:
        events.append("startup")
        yield {"items": ["from", "lifespan"]}
        events.append("shutdown")

    app = make_app(Probe())
    app.router.lifespan_context = lifespan
    transport = webwire.ASGITransport(app, lifespan=True)
    async with webwire.AsyncClient(transport=transport, base_url=BASE) as client:
        assert events == ["startup"]
        response = await client.get("/state")
        assert response.json() == {"items": ["from", "lifespan"]}
    assert events == ["startup", "shutdown"]


@pytest.mark.anyio
async def test_lifespan_startup_failure() -> None:
    @asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        raise RuntimeError("database unavailable")
        yield

    app = make_app(Probe())
    app.router.lifespan_context = lifespan
    transport = webwire.ASGITransport(app, lifespan=True)
    with pytest.raises(webwire.LifespanError, match="database unavailable"):
        async with webwire.AsyncClient(transport=transport, base_url=BASE):
            pytest.fail("entered despite a failed startup")


@pytest.mark.anyio
async def test_lifespan_unsupported_app_tolerated() -> None:
    async def app(scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            raise RuntimeError("only http")
        await send({"type": "http.response.start", "status": 204, "headers": []})
        await send({"type": "http.response.body"})

    transport = webwire.ASGITransport(app, lifespan=True)
    async with webwire.AsyncClient(transport=transport, base_url=BASE) as client:
        assert (await client.get("/")).status_code == 204


@pytest.mark.anyio
async def test_lifespan_shutdown_failure() -> None:
    async def app(scope: Any, receive: Any, send: Any) -> None:
        assert scope["type"] == "lifespan"
        await receive()
        await send({"type": "lifespan.startup.complete"})
        await receive()
        await send({"type": "lifespan.shutdown.failed", "message": "flush failed"})

    transport = webwire.ASGITransport(app, lifespan=True)
    with pytest.raises(webwire.LifespanError, match="flush failed"):
        async with webwire.AsyncClient(transport=transport, base_url=BASE):
            pass


@pytest.mark.anyio
async def test_unclosed_stream_ended_on_client_exit(app: Starlette, probe: Probe) -> None:
    async with webwire.AsyncClient(app=app, base_url=BASE) as client:
        response = await client.send(client.build_request("GET", "/endless"), stream=True)
        assert response.status_code == 200
    with anyio.fail_after(5):
        await probe.stream_ended.wait()


def test_bad_arguments(app: Starlette) -> None:
    with pytest.raises(ValueError, match="either app= or transport="):
        webwire.AsyncClient(app=app, transport=webwire.MockTransport(lambda r: None))  # type: ignore[arg-type,return-value]

    def wsgi_app(environ: Any, start_response: Any) -> list[bytes]:
        return []

    with pytest.raises(TypeError, match="Client\\(app="):
        webwire.AsyncClient(app=wsgi_app)
    with pytest.raises(TypeError, match="AsyncClient\\(app="):
        webwire.Client(app=app)
    with pytest.raises(TypeError):
        webwire.ASGITransport(wsgi_app)


@pytest.mark.anyio
async def test_sse_streams_through_the_app() -> None:
    from sse_starlette.sse import EventSourceResponse, ServerSentEvent

    produced: list[int] = []

    async def events(request: Request) -> Response:
        async def produce() -> AsyncIterator[ServerSentEvent]:
            i = 0
            while True:
                i += 1
                produced.append(i)
                yield ServerSentEvent(data=str(i), id=str(i))
                await anyio.sleep(0.001)

        return EventSourceResponse(produce(), ping=0)

    app = Starlette(routes=[Route("/events", events)])
    async with webwire.AsyncClient(app=app, base_url=BASE) as client:
        got = []
        async with client.sse("/events") as source:
            async for event in source:
                got.append(event.data)
                if len(got) == 3:
                    break
        assert got == ["1", "2", "3"]
        # The endless app was running while the events were read.
        assert len(produced) < 100


@memory_test
async def test_read_timeout_on_fake_clock() -> None:
    import trio

    async def app(scope: Any, receive: Any, send: Any) -> None:
        await trio.sleep(3600)

    async def stalled_body(scope: Any, receive: Any, send: Any) -> None:
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": b"x", "more_body": True})
        await trio.sleep(3600)

    for target in (app, stalled_body):
        async with webwire.AsyncClient(
            app=target, base_url=BASE, timeout=7.0, _backend=MemoryBackend()
        ) as client:
            start = trio.current_time()
            with pytest.raises(webwire.ReadTimeout):
                await client.get("/")
            assert trio.current_time() - start == 7.0


@pytest.mark.anyio
async def test_transport_opened_by_the_caller(app: Starlette, probe: Probe) -> None:
    transport = webwire.ASGITransport(app)
    assert not transport.is_open
    async with transport:
        assert transport.is_open
        async with webwire.AsyncClient(transport=transport, base_url=BASE) as client:
            async with client.stream("GET", "/endless") as response:
                async for line in response.aiter_lines():
                    assert line == "0"
                    break
        # Still open for another client.
        assert transport.is_open
        async with webwire.AsyncClient(transport=transport, base_url=BASE) as client:
            assert (await client.get("/ok")).text == "ok"
    assert not transport.is_open


@pytest.mark.anyio
async def test_protocol_misuse_by_the_app() -> None:
    async def body_first(scope: Any, receive: Any, send: Any) -> None:
        await send({"type": "http.response.body", "body": b"x"})

    async def bad_status(scope: Any, receive: Any, send: Any) -> None:
        await send({"type": "http.response.start", "status": "200", "headers": []})

    for app in (body_first, bad_status):
        async with webwire.AsyncClient(app=app, base_url=BASE) as client:
            with pytest.raises(webwire.RemoteProtocolError, match="ASGI"):
                await client.get("/")
