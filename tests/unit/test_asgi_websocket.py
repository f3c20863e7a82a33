"""WebSocket connections to a Starlette application in process
(``AsyncClient(app=...)``, ASGI WebSocket scope), on asyncio and trio: no
socket, the unchanged WebSocket client over an in-memory stream."""

from __future__ import annotations

from typing import Any

import pytest
from starlette.applications import Starlette
from starlette.responses import PlainTextResponse
from starlette.routing import WebSocketRoute
from starlette.websockets import WebSocket, WebSocketDisconnect

import webwire
import webwire.websocket as aws
from webwire._backends.memory import MemoryBackend, memory_test


class Probe:
    """What the app saw."""

    def __init__(self) -> None:
        self.scope: dict[str, Any] = {}
        self.disconnect: tuple[int, str] | None = None
        self.received: list[Any] = []


def make_app(probe: Probe) -> Starlette:
    async def echo(ws: WebSocket) -> None:
        probe.scope = dict(ws.scope)
        await ws.accept(headers=[(b"x-app", b"yes")])
        try:
            while True:
                message = await ws.receive()
                if message["type"] == "websocket.disconnect":
                    probe.disconnect = (message["code"], message.get("reason") or "")
                    return
                probe.received.append(message.get("text", message.get("bytes")))
                if message.get("text") is not None:
                    await ws.send_text(message["text"])
                else:
                    await ws.send_bytes(message["bytes"])
        except WebSocketDisconnect:  # pragma: no cover
            pass

    async def chat(ws: WebSocket) -> None:
        chosen = "chat" if "chat" in ws.scope["subprotocols"] else None
        await ws.accept(subprotocol=chosen)
        await ws.send_text(",".join(ws.scope["subprotocols"]))
        await ws.close()

    async def closing(ws: WebSocket) -> None:
        await ws.accept()
        await ws.send_text("bye soon")
        await ws.close(4001, "done here")

    async def refuse(ws: WebSocket) -> None:
        await ws.close(1008)

    async def deny(ws: WebSocket) -> None:
        await ws.send_denial_response(PlainTextResponse("log in first", status_code=401))

    async def fail_early(ws: WebSocket) -> None:
        raise RuntimeError("broken before accept")

    async def fail_late(ws: WebSocket) -> None:
        await ws.accept()
        await ws.receive_text()
        raise RuntimeError("broken after accept")

    async def bad_subprotocol(ws: WebSocket) -> None:
        await ws.accept(subprotocol="never-offered")
        probe.disconnect = (await ws.receive())["code"], ""

    async def returns(ws: WebSocket) -> None:
        await ws.accept()
        await ws.send_bytes(b"only this")

    return Starlette(
        routes=[
            WebSocketRoute("/echo", echo),
            WebSocketRoute("/chat", chat),
            WebSocketRoute("/closing", closing),
            WebSocketRoute("/refuse", refuse),
            WebSocketRoute("/deny", deny),
            WebSocketRoute("/fail-early", fail_early),
            WebSocketRoute("/fail-late", fail_late),
            WebSocketRoute("/returns", returns),
            WebSocketRoute("/bad-subprotocol", bad_subprotocol),
        ]
    )


@pytest.fixture
def probe() -> Probe:
    return Probe()


@pytest.fixture
def app(probe: Probe) -> Starlette:
    return make_app(probe)


@pytest.mark.anyio
async def test_echo_text_binary_and_scope(app: Starlette, probe: Probe) -> None:
    async with webwire.AsyncClient(app=app) as client:
        async with aws.connect(
            "ws://testserver/echo?x=1", client=client, additional_headers={"X-Test": "a"}
        ) as ws:
            assert ws.response is not None
            assert ws.response.status_code == 101
            assert ws.response.headers["x-app"] == "yes"
            await ws.send("héllo")
            assert await ws.recv() == "héllo"
            await ws.send(b"\x00\x01")
            assert await ws.recv() == b"\x00\x01"
            await ws.send(["frag", "mented"])
            assert await ws.recv() == "fragmented"
            # No extension is negotiated in process.
            assert ws._protocol.extensions == []
            assert (await ws.ping()) is not None
        assert ws.close_code == 1000
    scope = probe.scope
    assert scope["type"] == "websocket"
    assert scope["scheme"] == "ws"
    assert scope["path"] == "/echo"
    assert scope["raw_path"] == b"/echo"
    assert scope["query_string"] == b"x=1"
    assert scope["asgi"]["version"] == "3.0"
    assert scope["http_version"] == "1.1"
    assert scope["server"] == ("testserver", 80)
    assert scope["subprotocols"] == []
    assert "websocket.http.response" in scope["extensions"]
    headers = dict(scope["headers"])
    assert headers[b"x-test"] == b"a"
    assert headers[b"upgrade"] == b"websocket"
    assert probe.received == ["héllo", b"\x00\x01", "fragmented"]
    assert probe.disconnect == (1000, "")


@pytest.mark.anyio
async def test_large_message(app: Starlette) -> None:
    payload = bytes(range(256)) * 12_000  # about 3 MB, many pipe chunks
    async with webwire.AsyncClient(app=app) as client:
        async with aws.connect("ws://testserver/echo", client=client, max_size=None) as ws:
            await ws.send(payload)
            assert await ws.recv() == payload
            await ws.send("x" * 200_000)
            assert await ws.recv() == "x" * 200_000


@pytest.mark.anyio
async def test_max_size_applies(app: Starlette) -> None:
    async with webwire.AsyncClient(app=app) as client:
        async with aws.connect("ws://testserver/echo", client=client, max_size=1000) as ws:
            await ws.send(b"z" * 2000)
            with pytest.raises(webwire.ConnectionClosedError) as info:
                await ws.recv()
            assert info.value.sent is not None and info.value.sent.code == 1009


@pytest.mark.anyio
async def test_subprotocol(app: Starlette) -> None:
    async with webwire.AsyncClient(app=app) as client:
        async with aws.connect(
            "wss://testserver/chat", client=client, subprotocols=["superchat", "chat"]
        ) as ws:
            assert ws.subprotocol == "chat"
            assert await ws.recv() == "superchat,chat"
            with pytest.raises(webwire.ConnectionClosedOK):
                await ws.recv()


@pytest.mark.anyio
async def test_app_closes_with_code_and_reason(app: Starlette) -> None:
    async with webwire.AsyncClient(app=app) as client:
        async with aws.connect("ws://testserver/closing", client=client) as ws:
            assert await ws.recv() == "bye soon"
            with pytest.raises(webwire.ConnectionClosedError) as info:
                await ws.recv()
            assert ws.close_code == 4001
            assert ws.close_reason == "done here"
            assert info.value.rcvd is not None and info.value.rcvd.code == 4001


@pytest.mark.anyio
async def test_app_returns_without_closing(app: Starlette) -> None:
    async with webwire.AsyncClient(app=app) as client:
        async with aws.connect("ws://testserver/returns", client=client) as ws:
            assert await ws.recv() == b"only this"
            assert [m async for m in ws] == []
            assert ws.close_code == 1000


@pytest.mark.anyio
async def test_refused_before_accept(app: Starlette) -> None:
    async with webwire.AsyncClient(app=app) as client:
        with pytest.raises(webwire.InvalidStatus) as info:
            await aws.connect("ws://testserver/refuse", client=client)
        assert info.value.status_code == 403


@pytest.mark.anyio
async def test_denial_response(app: Starlette) -> None:
    async with webwire.AsyncClient(app=app) as client:
        with pytest.raises(webwire.InvalidStatus) as info:
            await aws.connect("ws://testserver/deny", client=client)
        assert info.value.status_code == 401
        assert info.value.body == b"log in first"


@pytest.mark.anyio
async def test_unknown_route_refused(app: Starlette) -> None:
    async with webwire.AsyncClient(app=app) as client:
        with pytest.raises(webwire.InvalidStatus) as info:
            await aws.connect("ws://testserver/nowhere", client=client)
        assert info.value.status_code == 403


@pytest.mark.anyio
async def test_app_error_before_accept(app: Starlette) -> None:
    async with webwire.AsyncClient(app=app) as client:
        with pytest.raises(RuntimeError, match="broken before accept"):
            await aws.connect("ws://testserver/fail-early", client=client)
    transport = webwire.ASGITransport(app, raise_app_exceptions=False)
    async with webwire.AsyncClient(transport=transport) as client:
        with pytest.raises(webwire.InvalidStatus) as info:
            await aws.connect("ws://testserver/fail-early", client=client)
        assert info.value.status_code == 500


@pytest.mark.anyio
@pytest.mark.parametrize("raise_app_exceptions", [True, False])
async def test_app_error_after_accept(app: Starlette, raise_app_exceptions: bool) -> None:
    transport = webwire.ASGITransport(app, raise_app_exceptions=raise_app_exceptions)
    async with webwire.AsyncClient(transport=transport) as client:
        async with aws.connect("ws://testserver/fail-late", client=client) as ws:
            await ws.send("go")
            with pytest.raises(webwire.ConnectionClosedError) as info:
                await ws.recv()
            assert ws.close_code == 1011
    causes = []
    error: BaseException | None = info.value
    while error is not None:
        causes.append(error)
        error = error.__cause__
    found = any(
        isinstance(e, RuntimeError) and "broken after accept" in str(e) for e in causes
    )
    assert found is raise_app_exceptions


@pytest.mark.anyio
async def test_client_not_open_is_a_clear_error(app: Starlette) -> None:
    client = webwire.AsyncClient(app=app)
    try:
        with pytest.raises(webwire.LocalProtocolError, match="async with"):
            await aws.connect("ws://testserver/echo", client=client)
    finally:
        await client.aclose()


@pytest.mark.anyio
async def test_tracing_and_middleware_in_process(app: Starlette) -> None:
    events: list[str] = []
    config = webwire.TraceConfig()
    config.on_ws_connect.append(lambda c, ctx, p: events.append(f"connect {p.extensions}"))
    config.on_ws_message_sent.append(lambda c, ctx, p: events.append(f"sent {p.size}"))
    config.on_ws_message_received.append(lambda c, ctx, p: events.append(f"received {p.size}"))
    config.on_ws_closed.append(lambda c, ctx, p: events.append(f"closed {p.code}"))

    async def middleware(request: Any, handler: Any) -> Any:
        response = await handler(request)
        events.append(f"{request.method} {response.status_code}")
        return response

    async with webwire.AsyncClient(app=app, trace=[config], middlewares=[middleware]) as client:
        async with aws.connect("ws://testserver/echo", client=client) as ws:
            await ws.send(b"1234")
            assert await ws.recv() == b"1234"
    assert events == ["GET 101", "connect ()", "sent 4", "received 4", "closed 1000"]


@pytest.mark.anyio
async def test_many_connections_at_once(app: Starlette) -> None:
    import anyio

    async with webwire.AsyncClient(app=app) as client:

        async def one(n: int) -> None:
            async with aws.connect("ws://testserver/echo", client=client) as ws:
                for i in range(20):
                    await ws.send(f"{n}-{i}")
                    assert await ws.recv() == f"{n}-{i}"

        async with anyio.create_task_group() as group:
            for n in range(10):
                group.start_soon(one, n)


@pytest.mark.anyio
async def test_client_closed_while_connection_open(app: Starlette) -> None:
    """Closing the client ends the app's tasks; the open connection then
    sees its stream end (1006) instead of waiting forever."""
    import anyio

    async with webwire.AsyncClient(app=app) as client:
        ws = await aws.connect("ws://testserver/echo", client=client)
        await ws.send("a")
        assert await ws.recv() == "a"
    with anyio.fail_after(10):  # a guard against a hang, not a measurement
        with pytest.raises(webwire.ConnectionClosedError):
            await ws.recv()
        await ws.close()
    assert ws.close_code == 1006


@memory_test
async def test_handshake_timeout_on_fake_clock() -> None:
    """An app that never answers the handshake: ``open_timeout`` ends the
    attempt and the app sees the client disconnect."""
    import trio

    seen: list[Any] = []

    async def app(scope: Any, receive: Any, send: Any) -> None:
        seen.append(await receive())
        seen.append(await receive())  # the disconnect
        try:
            await send({"type": "websocket.accept"})
        except OSError as exc:
            seen.append(exc)

    async with webwire.AsyncClient(app=app, _backend=MemoryBackend()) as client:
        start = trio.current_time()
        with pytest.raises(webwire.TimeoutException):
            await aws.connect("ws://testserver/", client=client, open_timeout=5.0)
        assert trio.current_time() - start == 5.0
        await trio.sleep(0.1)
    assert seen[0] == {"type": "websocket.connect"}
    assert seen[1]["type"] == "websocket.disconnect"
    assert isinstance(seen[2], OSError)


@pytest.mark.anyio
async def test_subprotocol_not_offered(app: Starlette, probe: Probe) -> None:
    """The client refuses an acceptance with a subprotocol it did not
    offer (RFC 6455 section 4.1); the app sees the client disconnect."""
    import anyio

    async with webwire.AsyncClient(app=app) as client:
        with pytest.raises(webwire.InvalidHandshake):
            await aws.connect("ws://testserver/bad-subprotocol", client=client)
        with anyio.fail_after(10):  # a guard against a hang, not a measurement
            while probe.disconnect is None:
                await anyio.sleep(0)
    assert probe.disconnect == (1006, "")
