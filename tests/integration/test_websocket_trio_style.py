"""The trio-websocket style of API (``open_websocket_url``,
``connect_websocket``, ``wrap_client_stream``...) against real servers we
did not write: the ``websockets`` library's server (cleartext and TLS) and
hypercorn. Async only, as trio-websocket: every test runs on asyncio and
trio.
"""

from __future__ import annotations

import ssl
from collections.abc import Iterator

import anyio
import pytest
from ws_app import FORBIDDEN_BODY, WebsocketsServer, ws_asgi_app

import webwire
from conftest import ServerThread, TLSFiles, _hypercorn_serve_app
from webwire.websocket import (
    CloseReason,
    ConnectionClosed,
    ConnectionRejected,
    Endpoint,
    HandshakeError,
    InvalidStatus,
    WebSocketConnection,
    connect_websocket,
    connect_websocket_url,
    open_websocket,
    open_websocket_url,
    wrap_client_stream,
)

pytestmark = pytest.mark.anyio


@pytest.fixture(scope="module")
def ws_server() -> Iterator[WebsocketsServer]:
    server = WebsocketsServer()
    server.start()
    yield server
    server.stop()


@pytest.fixture(scope="module")
def wss_server(tls_files: TLSFiles) -> Iterator[WebsocketsServer]:
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(tls_files.cert_path, tls_files.key_path)
    server = WebsocketsServer(ssl_context=context)
    server.start()
    yield server
    server.stop()


@pytest.fixture(scope="module")
def hypercorn_ws() -> Iterator[str]:
    thread = ServerThread("hypercorn-ws-trio-style", _hypercorn_serve_app(ws_asgi_app))
    thread.start()
    try:
        yield f"ws://127.0.0.1:{thread.port}"
    finally:
        thread.stop()


@pytest.fixture(autouse=True)
def _no_proxy_env(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("http_proxy", "https_proxy", "all_proxy", "no_proxy"):
        monkeypatch.delenv(name, raising=False)
        monkeypatch.delenv(name.upper(), raising=False)


async def _echo(ws: WebSocketConnection) -> None:
    await ws.send_message("héllo")
    assert await ws.get_message() == "héllo"
    await ws.send_message(b"\x00\xff")
    assert await ws.get_message() == b"\x00\xff"


async def test_open_websocket_url_echo(ws_server: WebsocketsServer, hypercorn_ws: str) -> None:
    for base in (ws_server.url, hypercorn_ws):
        async with open_websocket_url(base + "/echo?x=1") as ws:
            assert ws.closed is None
            assert ws.is_client
            assert ws.path == "/echo?x=1"
            assert ws.subprotocol is None
            assert ws.remote == Endpoint("127.0.0.1", int(base.rsplit(":", 1)[1]), False)
            assert ws.remote.url == base
            assert ws.local.address == "127.0.0.1" and ws.local.port > 0
            headers = dict(ws.handshake_headers)
            assert headers[b"upgrade"].lower() == b"websocket"
            await _echo(ws)
            await ws.ping(b"abc")  # returns once the pong arrived
            await ws.pong(b"unsolicited")
            await ws.send_message("after")
            assert await ws.get_message() == "after"
        closed = ws.closed
        assert isinstance(closed, CloseReason)
        assert (closed.code, closed.name, closed.reason) == (1000, "NORMAL_CLOSURE", "")
        with pytest.raises(ConnectionClosed) as info:
            await ws.get_message()
        assert info.value.reason.code == 1000
        assert info.value.reason.name == "NORMAL_CLOSURE"
        with pytest.raises(ConnectionClosed):
            await ws.send_message("too late")


async def test_open_websocket_host_port_tls(
    ws_server: WebsocketsServer, wss_server: WebsocketsServer, ca_path: str
) -> None:
    async with open_websocket(
        "127.0.0.1", ws_server.port, "/subprotocol", use_ssl=False, subprotocols=["chat"]
    ) as ws:
        assert ws.subprotocol == "chat"
        assert await ws.get_message() == "chat"
    context = ssl.create_default_context(cafile=ca_path)
    async with open_websocket("127.0.0.1", wss_server.port, "/echo", use_ssl=context) as ws:
        assert ws.remote.is_ssl and ws.remote.url.startswith("wss://")
        await _echo(ws)
    async with open_websocket_url(wss_server.url + "/echo", context) as ws:
        await _echo(ws)
    # Verification is on by default: the test CA is unknown to the system.
    with pytest.raises(webwire.ConnectError):
        async with open_websocket("127.0.0.1", wss_server.port, "/echo", use_ssl=True):
            pass


async def test_extra_headers_sent(ws_server: WebsocketsServer) -> None:
    import json

    async with open_websocket_url(
        ws_server.url + "/headers", extra_headers=[(b"X-Token", b"t1"), ("X-Other", "o")]
    ) as ws:
        fields = {name.lower(): value for name, value in json.loads(await ws.get_message())}
    assert fields["x-token"] == "t1"
    assert fields["x-other"] == "o"


async def test_rejected(ws_server: WebsocketsServer, hypercorn_ws: str) -> None:
    with pytest.raises(ConnectionRejected) as info:
        async with open_websocket_url(ws_server.url + "/forbidden"):
            pytest.fail("not reached")
    assert info.value.status_code == 403
    assert info.value.body == FORBIDDEN_BODY.encode()
    assert isinstance(info.value, InvalidStatus)
    assert isinstance(info.value, HandshakeError)
    # hypercorn answers a WebSocket closed before accept with 403.
    with pytest.raises(InvalidStatus) as info2:
        async with open_websocket_url(hypercorn_ws + "/forbidden"):
            pass
    assert type(info2.value) is ConnectionRejected
    assert info2.value.status_code == 403


async def test_closed_by_server(ws_server: WebsocketsServer, hypercorn_ws: str) -> None:
    for base in (ws_server.url, hypercorn_ws):
        async with open_websocket_url(base + "/close/4001/see%20you") as ws:
            with pytest.raises(ConnectionClosed) as info:
                await ws.get_message()
            reason = info.value.reason
            assert (reason.code, reason.name, reason.reason) == (4001, "PRIVATE_CODE", "see you")
            assert reason == "see you"  # still the reason text for str users
            assert ws.closed is not None and ws.closed.code == 4001


async def test_error_in_body_is_not_grouped(ws_server: WebsocketsServer) -> None:
    class Boom(Exception):
        pass

    with pytest.raises(Boom) as info:
        async with open_websocket_url(ws_server.url + "/echo") as ws:
            await ws.send_message("x")
            raise Boom("inside the block")
    assert type(info.value) is Boom
    assert ws.closed is not None and ws.closed.code == 1000
    # Also when the connection is being closed by the server meanwhile.
    with pytest.raises(KeyError):
        async with open_websocket_url(ws_server.url + "/close/1001/bye") as ws:
            await ws.connection.wait_closed()
            raise KeyError("k")


async def test_connect_websocket_task_group(ws_server: WebsocketsServer) -> None:
    async with anyio.create_task_group() as tg:
        ws = await connect_websocket(tg, "127.0.0.1", ws_server.port, "/echo", use_ssl=False)
        await _echo(ws)
        await ws.aclose()
    assert ws.closed is not None and ws.closed.code == 1000
    # Cancelling the nursery drops the connection.
    async with anyio.create_task_group() as tg:
        ws = await connect_websocket_url(tg, ws_server.url + "/echo")
        await _echo(ws)
        tg.cancel_scope.cancel()
    assert ws.closed is not None
    assert ws.closed.code == 1006
    with pytest.raises(ConnectionClosed):
        await ws.send_message("gone")


async def test_connect_websocket_native_nursery(
    ws_server: WebsocketsServer, anyio_backend: str
) -> None:
    from webwire._backends import get_backend

    group = get_backend(anyio_backend).create_task_group()
    async with group:
        ws = await connect_websocket_url(group, ws_server.url + "/echo")
        await _echo(ws)
        await ws.aclose()
    assert ws.closed is not None and ws.closed.code == 1000
    if anyio_backend == "trio":
        import trio

        async with trio.open_nursery() as nursery:
            ws = await connect_websocket_url(nursery, ws_server.url + "/echo")
            await _echo(ws)
            nursery.cancel_scope.cancel()
        assert ws.closed is not None and ws.closed.code == 1006
    with pytest.raises(TypeError, match="nursery"):
        await connect_websocket_url(object(), ws_server.url + "/echo")


async def test_wrap_client_stream(ws_server: WebsocketsServer, anyio_backend: str) -> None:
    stream = await anyio.connect_tcp("127.0.0.1", ws_server.port)
    async with anyio.create_task_group() as tg:
        ws = await wrap_client_stream(tg, stream, "127.0.0.1", "/echo")
        assert ws.remote.port == ws_server.port
        await _echo(ws)
        await ws.aclose()
    assert ws.closed is not None and ws.closed.code == 1000
    with pytest.raises(anyio.ClosedResourceError):
        await stream.send(b"x")  # closed with the connection
    if anyio_backend == "trio":
        import trio

        tstream = await trio.open_tcp_stream("127.0.0.1", ws_server.port)
        async with trio.open_nursery() as nursery:
            ws = await wrap_client_stream(
                nursery, tstream, "127.0.0.1", "/subprotocol", subprotocols=["superchat"]
            )
            assert ws.subprotocol == "superchat"
            assert await ws.get_message() == "superchat"
            await _echo(ws)
            await ws.aclose()
        assert ws.closed is not None and ws.closed.code == 1000
    async with anyio.create_task_group() as tg:
        with pytest.raises(TypeError, match="stream"):
            await wrap_client_stream(tg, object(), "h", "/")


async def test_wrap_client_stream_rejected(ws_server: WebsocketsServer) -> None:
    stream = await anyio.connect_tcp("127.0.0.1", ws_server.port)
    async with anyio.create_task_group() as tg:
        with pytest.raises(ConnectionRejected) as info:
            await wrap_client_stream(tg, stream, "127.0.0.1", "/forbidden")
    assert info.value.status_code == 403


async def test_bad_input(ws_server: WebsocketsServer) -> None:
    with pytest.raises(webwire.InvalidURL):
        async with open_websocket("127.0.0.1", ws_server.port, "no-slash", use_ssl=False):
            pass
    with pytest.raises(webwire.InvalidURL):
        async with open_websocket_url("http://127.0.0.1/"):
            pass
    with pytest.raises(TypeError):
        async with open_websocket("127.0.0.1", ws_server.port, "/", use_ssl="yes"):  # type: ignore[arg-type]
            pass
    async with open_websocket_url(ws_server.url + "/echo") as ws:
        with pytest.raises(TypeError):
            await ws.send_message({"a": 1})  # type: ignore[arg-type]


async def test_wrap_client_stream_webwire_and_tls(
    ws_server: WebsocketsServer, wss_server: WebsocketsServer, ca_path: str, anyio_backend: str
) -> None:
    """A webwire NetworkStream (here over TLS, verified against the test
    CA) and an anyio TLS stream are taken as they are."""
    from anyio.streams.tls import TLSStream

    from webwire._backends import get_backend

    backend = get_backend(anyio_backend)
    context = ssl.create_default_context(cafile=ca_path)
    stream = await backend.connect_tcp(
        "127.0.0.1", wss_server.port, timeout=10.0, ssl_context=context, server_hostname="127.0.0.1"
    )
    async with anyio.create_task_group() as tg:
        ws = await wrap_client_stream(tg, stream, "127.0.0.1", "/echo")
        assert ws.remote.is_ssl
        await _echo(ws)
        await ws.aclose()
    assert ws.closed is not None and ws.closed.code == 1000

    tcp = await anyio.connect_tcp("127.0.0.1", wss_server.port)
    tls = await TLSStream.wrap(tcp, hostname="127.0.0.1", ssl_context=context)
    async with anyio.create_task_group() as tg:
        ws = await wrap_client_stream(tg, tls, "127.0.0.1", "/echo")
        assert ws.remote.is_ssl and ws.remote.port == wss_server.port
        await _echo(ws)
        await ws.aclose()
    assert ws.closed is not None and ws.closed.code == 1000
