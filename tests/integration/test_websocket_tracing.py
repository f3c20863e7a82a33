"""Tracing, middlewares and event hooks on WebSocket connections, against
the ``websockets`` library's server and hypercorn (an ASGI echo app), on
asyncio, trio and the blocking API."""

from __future__ import annotations

import logging
import threading
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from typing import Any

import pytest
import yarl
from ws_app import WebsocketsServer, ws_asgi_app

import webwire
import webwire.websocket as aws
from conftest import ServerInfo, ServerThread, _hypercorn_serve_app
from webwire._sync import run_sync
from webwire.websocket import sync as sws

SIGNALS = (
    "on_request_start",
    "on_request_end",
    "on_ws_connect",
    "on_ws_message_sent",
    "on_ws_message_received",
    "on_ws_ping",
    "on_ws_pong",
    "on_ws_closed",
)


class Recorder:
    """A TraceConfig recording ``(signal, params, thread id)``."""

    def __init__(self) -> None:
        self.events: list[tuple[str, Any, int]] = []
        self.config = webwire.TraceConfig()
        for name in SIGNALS:
            getattr(self.config, name).append(self._callback(name[3:]))

    def _callback(self, name: str) -> Any:
        def callback(client: Any, ctx: Any, params: Any) -> None:
            self.events.append((name, params, threading.get_ident()))

        return callback

    def names(self, *, pings: bool = False) -> list[str]:
        return [
            name for name, _, _ in self.events if pings or name not in ("ws_ping", "ws_pong")
        ]

    def params(self, name: str) -> list[Any]:
        return [params for event, params, _ in self.events if event == name]


class Api:
    """``connect`` and clients of either API behind ``async`` methods."""

    def __init__(self, is_async: bool) -> None:
        self.is_async = is_async

    def client(self, **options: Any) -> Any:
        if self.is_async:
            return webwire.AsyncClient(**options)
        return webwire.Client(**options)

    async def aclose(self, client: Any) -> None:
        if self.is_async:
            await client.aclose()
        else:
            client.close()

    @asynccontextmanager
    async def connect(self, uri: str, **options: Any) -> AsyncIterator[Any]:
        if self.is_async:
            async with aws.connect(uri, **options) as ws:
                yield ws
        else:
            with sws.connect(uri, **options) as ws:
                yield ws

    async def call(self, value: Any) -> Any:
        """Await ``value`` on the async API; return it on the blocking one."""
        if self.is_async:
            return await value
        return value


@pytest.fixture(scope="module")
def websockets_url() -> Iterator[str]:
    server = WebsocketsServer()
    server.start()
    yield server.url
    server.stop()


@pytest.fixture(scope="module")
def hypercorn_url() -> Iterator[str]:
    thread = ServerThread("hypercorn-ws-trace", _hypercorn_serve_app(ws_asgi_app))
    thread.start()
    try:
        yield f"ws://127.0.0.1:{thread.port}"
    finally:
        thread.stop()


@pytest.fixture
def urls(
    websockets_url: str,
    hypercorn_url: str,
    hypercorn_https: ServerInfo,
    ca_path: str,
    monkeypatch: pytest.MonkeyPatch,
) -> dict[str, str]:
    for name in ("http_proxy", "https_proxy", "all_proxy", "no_proxy"):
        monkeypatch.delenv(name, raising=False)
        monkeypatch.delenv(name.upper(), raising=False)
    return {
        "websockets": websockets_url,
        "hypercorn": hypercorn_url,
        "hypercorn_tls": f"wss://127.0.0.1:{hypercorn_https.url.port}",
        "ca_path": ca_path,
    }


# -- scenarios ---------------------------------------------------------------------


async def s_signal_order(api: Api, urls: dict[str, str]) -> None:
    for server in ("websockets", "hypercorn"):
        base = urls[server]
        recorder = Recorder()
        url = base + "/echo"
        async with api.connect(url, trace=[recorder.config], ping_interval=None) as ws:
            await api.call(ws.send("héllo"))  # 6 UTF-8 bytes
            assert await api.call(ws.recv()) == "héllo"
            await api.call(ws.send(b"\x00" * 70_000))
            assert await api.call(ws.recv()) == b"\x00" * 70_000
            await api.call(ws.send(["ab", "cd", "é"]))  # one fragmented message
            assert await api.call(ws.recv()) == "abcdé"
        assert recorder.names() == [
            "request_start",
            "request_end",
            "ws_connect",
            "ws_message_sent",
            "ws_message_received",
            "ws_message_sent",
            "ws_message_received",
            "ws_message_sent",
            "ws_message_received",
            "ws_closed",
        ], server
        connect = recorder.params("ws_connect")[0]
        assert connect.url == yarl.URL(url)
        assert connect.http_version == "HTTP/1.1"
        assert connect.subprotocol is None
        # The echo servers negotiate permessage-deflate, offered by default.
        assert connect.extensions == ("permessage-deflate",), server
        sent = [(p.opcode, p.size) for p in recorder.params("ws_message_sent")]
        received = [(p.opcode, p.size) for p in recorder.params("ws_message_received")]
        expected = [("text", 6), ("binary", 70_000), ("text", 6)]
        assert sent == expected, server
        assert received == expected, server
        assert all(p.url == yarl.URL(url) for p in recorder.params("ws_message_sent"))
        closed = recorder.params("ws_closed")[0]
        assert (closed.code, closed.reason) == (1000, ""), server
        request_start = recorder.params("request_start")[0]
        assert request_start.method == "GET"
        assert request_start.headers["Upgrade"] == "websocket"
        assert recorder.params("request_end")[0].response.status_code == 101


async def s_server_close_and_pings(api: Api, urls: dict[str, str]) -> None:
    recorder = Recorder()
    url = urls["hypercorn"] + "/close/4000/bye"
    async with api.connect(url, trace=[recorder.config], ping_interval=None) as ws:
        await api.call(ws.wait_closed())
    closed = recorder.params("ws_closed")
    assert [(p.code, p.reason) for p in closed] == [(4000, "bye")]

    recorder = Recorder()
    async with api.connect(
        urls["websockets"] + "/echo", trace=[recorder.config], ping_interval=None
    ) as ws:
        waiter = await api.call(ws.ping(b"abc"))
        if api.is_async:
            await waiter
        else:
            waiter.wait(10.0)
        await api.call(ws.pong(b"xyz"))
    pings = [(p.direction, p.data) for p in recorder.params("ws_ping")]
    pongs = [(p.direction, p.data) for p in recorder.params("ws_pong")]
    assert pings == [("sent", b"abc")]
    assert sorted(pongs) == [("received", b"abc"), ("sent", b"xyz")]


async def s_client_pipeline(api: Api, urls: dict[str, str]) -> None:
    """A client's middlewares and event hooks see the opening handshake;
    its trace configs follow the connection."""
    seen: list[tuple[str, Any]] = []

    if api.is_async:

        async def middleware(request: Any, handler: Any) -> Any:
            seen.append(("middleware-request", (request.method, str(request.url))))
            response = await handler(request)
            seen.append(("middleware-response", response.status_code))
            return response

    else:

        def middleware(request: Any, handler: Any) -> Any:  # type: ignore[misc]
            seen.append(("middleware-request", (request.method, str(request.url))))
            response = handler(request)
            seen.append(("middleware-response", response.status_code))
            return response

    def on_request(request: Any) -> None:
        seen.append(("hook-request", request.headers.get("Sec-WebSocket-Version")))

    def on_response(response: Any) -> None:
        seen.append(("hook-response", response.status_code))

    recorder = Recorder()
    client = api.client(
        middlewares=[middleware],
        event_hooks={"request": [on_request], "response": [on_response]},
        trace=[recorder.config],
    )
    try:
        url = urls["hypercorn"] + "/echo"
        async with api.connect(url, client=client, ping_interval=None) as ws:
            await api.call(ws.send(b"1234"))
            assert await api.call(ws.recv()) == b"1234"
    finally:
        await api.aclose(client)
    http_url = urls["hypercorn"].replace("ws://", "http://") + "/echo"
    assert seen == [
        ("middleware-request", ("GET", http_url)),
        ("hook-request", "13"),
        ("hook-response", 101),
        ("middleware-response", 101),
    ]
    assert recorder.names() == [
        "request_start",
        "request_end",
        "ws_connect",
        "ws_message_sent",
        "ws_message_received",
        "ws_closed",
    ]
    received_thread = recorder.events[4][2]
    if api.is_async:
        assert received_thread == threading.get_ident()
    else:
        # The blocking API: the reader thread emits the received signals.
        assert received_thread != threading.get_ident()
        assert recorder.events[3][2] == threading.get_ident()  # sent: the caller


async def s_failing_callback(api: Api, urls: dict[str, str]) -> None:
    """A sent-side callback's exception reaches the sender; a received-side
    one is logged and the connection goes on."""

    def fail(client: Any, ctx: Any, params: Any) -> None:
        raise RuntimeError(f"callback failed on {params.opcode}")

    config = webwire.TraceConfig()
    config.on_ws_message_sent.append(fail)
    async with api.connect(urls["websockets"] + "/echo", trace=[config]) as ws:
        with pytest.raises(RuntimeError, match="callback failed on text"):
            await api.call(ws.send("x"))
    config = webwire.TraceConfig()
    config.on_ws_message_received.append(fail)
    logged: list[logging.LogRecord] = []
    handler = logging.Handler()
    handler.emit = logged.append  # type: ignore[method-assign]
    logger = logging.getLogger("webwire.websocket")
    logger.addHandler(handler)
    try:
        async with api.connect(urls["websockets"] + "/echo", trace=[config]) as ws:
            await api.call(ws.send("y"))
            assert await api.call(ws.recv()) == "y"
            await api.call(ws.send("z"))
            assert await api.call(ws.recv()) == "z"
    finally:
        logger.removeHandler(handler)
    failures = [r for r in logged if r.exc_info and isinstance(r.exc_info[1], RuntimeError)]
    assert len(failures) == 2
    assert "callback failed on text" in str(failures[0].exc_info[1])  # type: ignore[index]


async def s_http2(api: Api, urls: dict[str, str]) -> None:
    """Over HTTP/2 (RFC 8441 extended CONNECT, hypercorn over TLS) the
    pipeline sees the handshake request and its 200 response, and the
    connection's signals follow the stream."""
    seen: list[Any] = []

    def on_response(response: Any) -> None:
        seen.append((response.request.method, response.status_code, response.http_version))

    recorder = Recorder()
    client = api.client(
        verify=urls["ca_path"], event_hooks={"response": [on_response]}, trace=[recorder.config]
    )
    try:
        url = urls["hypercorn_tls"] + "/ws"
        async with api.connect(url, client=client, ping_interval=None) as ws:
            assert ws.http_version == "HTTP/2"
            await api.call(ws.send("über"))
            assert await api.call(ws.recv()) == "über"
    finally:
        await api.aclose(client)
    assert seen == [("GET", 200, "HTTP/2")]
    assert recorder.names() == [
        "request_start",
        "request_end",
        "ws_connect",
        "ws_message_sent",
        "ws_message_received",
        "ws_closed",
    ]
    assert recorder.params("ws_connect")[0].http_version == "HTTP/2"
    assert [p.size for p in recorder.params("ws_message_received")] == [5]
    assert recorder.params("ws_closed")[0].code == 1000


SCENARIOS = [
    s_signal_order,
    s_server_close_and_pings,
    s_client_pipeline,
    s_failing_callback,
    s_http2,
]
IDS = [s.__name__[2:] for s in SCENARIOS]


@pytest.mark.anyio
@pytest.mark.parametrize("scenario", SCENARIOS, ids=IDS)
async def test_async(scenario: Any, urls: dict[str, str], anyio_backend: str) -> None:
    await scenario(Api(True), urls)


@pytest.mark.parametrize("scenario", SCENARIOS, ids=IDS)
def test_sync(scenario: Any, urls: dict[str, str]) -> None:
    run_sync(scenario(Api(False), urls))


@pytest.mark.anyio
async def test_coroutine_callbacks(urls: dict[str, str], anyio_backend: str) -> None:
    """On AsyncClient a callback may be ``async def``."""
    events: list[tuple[str, int]] = []

    async def sent(client: Any, ctx: Any, params: Any) -> None:
        events.append(("sent", params.size))

    async def received(client: Any, ctx: Any, params: Any) -> None:
        events.append(("received", params.size))

    config = webwire.TraceConfig()
    config.on_ws_message_sent.append(sent)
    config.on_ws_message_received.append(received)
    async with aws.connect(urls["websockets"] + "/echo", trace=[config]) as ws:
        await ws.send(b"abc")
        assert await ws.recv() == b"abc"
    assert events == [("sent", 3), ("received", 3)]


def test_sync_refuses_coroutine_callbacks(urls: dict[str, str]) -> None:
    async def sent(client: Any, ctx: Any, params: Any) -> None:
        pass

    config = webwire.TraceConfig()
    config.on_ws_message_sent.append(sent)
    with pytest.raises(TypeError, match="coroutine function"):
        sws.connect(urls["websockets"] + "/echo", trace=[config])


def test_trace_with_client_refused() -> None:
    with pytest.raises(ValueError, match="trace"):
        aws.connect("ws://example.invalid/", client=webwire.AsyncClient(), trace=[])
