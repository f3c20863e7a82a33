"""The WebSocket client against real servers we did not write: the
``websockets`` library's asyncio server, hypercorn and uvicorn (an ASGI
echo app, ``ws_app.py``) and aiohttp's server (``ws_aiohttp.py``), in
cleartext and over TLS (trustme CA), directly and through proxy.py
(``CONNECT``) and pproxy (SOCKS5).

Every scenario is written once as a coroutine over :class:`WsApi` and runs
against each server of its row of ``MATRIX``, on asyncio, on trio and
through the blocking API (``webwire.websocket.sync``, driven by
``run_sync``).
"""

from __future__ import annotations

import json
import os
import ssl
import threading
from collections.abc import AsyncIterator, Callable, Coroutine, Iterator
from contextlib import aclosing, asynccontextmanager
from typing import Any

import pytest
from proxies import (  # noqa: F401  (fixtures)
    ProxyInfo,
    SocksProxies,
    http_proxy,
    socks_proxies,
)
from ws_aiohttp import AiohttpServer
from ws_app import FORBIDDEN_BODY, WebsocketsServer, ws_asgi_app

import webwire
import webwire.websocket as aws
from conftest import ServerInfo, ServerThread, TLSFiles, _hypercorn_serve_app
from webwire import Retry
from webwire._sync import run_sync
from webwire.websocket import State
from webwire.websocket import sync as sws

# -- one async face over the async and blocking APIs ---------------------------------


class Conn:
    """A connection of either API behind ``async`` methods."""

    def __init__(self, ws: Any, is_async: bool) -> None:
        self.ws = ws
        self.is_async = is_async

    def __getattr__(self, name: str) -> Any:
        return getattr(self.ws, name)

    @property
    def core(self) -> aws.ClientConnection:
        """The async connection object (the blocking one wraps it)."""
        return self.ws if self.is_async else self.ws._connection  # type: ignore[no-any-return]

    async def send(self, message: Any) -> None:
        if self.is_async:
            await self.ws.send(message)
        else:
            self.ws.send(message)

    async def recv(self, timeout: float | None = None) -> Any:
        if self.is_async:
            return await self.ws.recv(timeout)
        return self.ws.recv(timeout)

    async def ping(self) -> float:
        if self.is_async:
            latency: float = await (await self.ws.ping())
            return latency
        return self.ws.ping().wait(10.0)  # type: ignore[no-any-return]

    async def close(self, code: int = 1000, reason: str = "") -> None:
        if self.is_async:
            await self.ws.close(code, reason)
        else:
            self.ws.close(code, reason)

    async def recv_streaming(self) -> list[Any]:
        if self.is_async:
            return [piece async for piece in self.ws.recv_streaming()]
        return list(self.ws.recv_streaming())

    async def messages(self) -> list[Any]:
        """Iterate until the connection closes."""
        if self.is_async:
            return [message async for message in self.ws]
        return list(self.ws)


class WsApi:
    """``connect`` of either API."""

    def __init__(self, is_async: bool) -> None:
        self.is_async = is_async

    async def open(self, uri: str, **options: Any) -> Conn:
        if self.is_async:
            return Conn(await aws.connect(uri, **options), True)
        return Conn(sws.connect(uri, **options), False)

    @asynccontextmanager
    async def connect(self, uri: str, **options: Any) -> AsyncIterator[Conn]:
        if self.is_async:
            async with aws.connect(uri, **options) as ws:
                yield Conn(ws, True)
        else:
            with sws.connect(uri, **options) as ws:
                yield Conn(ws, False)

    async def reconnect(self, uri: str, **options: Any) -> AsyncIterator[Conn]:
        if self.is_async:
            async for ws in aws.connect(uri, **options):
                yield Conn(ws, True)
        else:
            for ws in sws.reconnect(uri, **options):
                yield Conn(ws, False)


Scenario = Callable[[WsApi, "Servers", str], Coroutine[Any, Any, None]]
"""``scenario(api, servers, name)``: runs against the server ``servers[name]``."""


# -- servers -----------------------------------------------------------------------


async def matrix_asgi_app(scope: dict[str, Any], receive: Any, send: Any) -> None:
    """What hypercorn and uvicorn serve here: ``ws_app.py``'s ASGI app and two
    more WebSocket routes, as the other servers have them: ``/big/N`` sends
    one binary message of ``N`` bytes, ``/headers`` the request's header
    fields as JSON; then both echo."""
    path = scope.get("path", "")
    if scope["type"] != "websocket" or not (path.startswith("/big/") or path == "/headers"):
        await ws_asgi_app(scope, receive, send)
        return
    message = await receive()
    if message["type"] != "websocket.connect":
        return
    await send({"type": "websocket.accept"})
    if path == "/headers":
        headers = scope["headers"]
        fields = [[name.decode("latin-1"), value.decode("latin-1")] for name, value in headers]
        await send({"type": "websocket.send", "text": json.dumps(fields)})
    else:
        await send({"type": "websocket.send", "bytes": b"\x5a" * int(path[5:])})
    while True:
        message = await receive()
        if message["type"] != "websocket.receive":
            return
        if message.get("text") is not None:
            await send({"type": "websocket.send", "text": message["text"]})
        else:
            await send({"type": "websocket.send", "bytes": message.get("bytes") or b""})


def _uvicorn_ws_serve(sock: Any, stop: Any) -> Any:
    async def serve() -> None:
        import asyncio

        import uvicorn

        config = uvicorn.Config(
            matrix_asgi_app,
            lifespan="on",
            log_config=None,
            log_level="warning",
            access_log=False,
            ws="websockets-sansio",
            timeout_graceful_shutdown=1,
        )
        server = uvicorn.Server(config)

        async def watch() -> None:
            await stop.wait()
            server.should_exit = True

        watcher = asyncio.ensure_future(watch())
        try:
            await server.serve(sockets=[sock])
        finally:
            watcher.cancel()

    return serve()


class Servers:
    """Base URLs (``ws://`` or ``wss://``) of the running servers."""

    def __init__(self, **urls: str) -> None:
        self.urls = urls
        self.ca_path = ""

    def __getitem__(self, name: str) -> str:
        return self.urls[name]


@pytest.fixture(scope="module")
def websockets_server() -> Iterator[WebsocketsServer]:
    server = WebsocketsServer()
    server.start()
    yield server
    server.stop()


@pytest.fixture(scope="module")
def websockets_tls_server(tls_files: TLSFiles) -> Iterator[WebsocketsServer]:
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(tls_files.cert_path, tls_files.key_path)
    server = WebsocketsServer(ssl_context=context)
    server.start()
    yield server
    server.stop()


def _asgi_server(name: str, serve: Any) -> Iterator[str]:
    thread = ServerThread(name, serve)
    thread.start()
    try:
        yield f"ws://127.0.0.1:{thread.port}"
    finally:
        thread.stop()


@pytest.fixture(scope="module")
def hypercorn_ws() -> Iterator[str]:
    yield from _asgi_server("hypercorn-ws", _hypercorn_serve_app(matrix_asgi_app))


@pytest.fixture(scope="module")
def uvicorn_ws() -> Iterator[str]:
    yield from _asgi_server("uvicorn-ws", _uvicorn_ws_serve)


@pytest.fixture(scope="module")
def aiohttp_ws() -> Iterator[AiohttpServer]:
    server = AiohttpServer()
    server.start()
    yield server
    server.stop()


@pytest.fixture(scope="module")
def aiohttp_tls(tls_files: TLSFiles) -> Iterator[AiohttpServer]:
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(tls_files.cert_path, tls_files.key_path)
    server = AiohttpServer(ssl_context=context)
    server.start()
    yield server
    server.stop()


@pytest.fixture
def servers(
    websockets_server: WebsocketsServer,
    websockets_tls_server: WebsocketsServer,
    hypercorn_ws: str,
    uvicorn_ws: str,
    aiohttp_ws: AiohttpServer,
    aiohttp_tls: AiohttpServer,
    hypercorn_https: ServerInfo,
    ca_path: str,
    monkeypatch: pytest.MonkeyPatch,
) -> Servers:
    for name in ("http_proxy", "https_proxy", "all_proxy", "no_proxy"):
        monkeypatch.delenv(name, raising=False)
        monkeypatch.delenv(name.upper(), raising=False)
    result = Servers(
        websockets=websockets_server.url,
        websockets_tls=websockets_tls_server.url,
        hypercorn=hypercorn_ws,
        uvicorn=uvicorn_ws,
        aiohttp=aiohttp_ws.url,
        aiohttp_tls=aiohttp_tls.url,
        hypercorn_tls=f"wss://127.0.0.1:{hypercorn_https.url.port}",
    )
    result.ca_path = ca_path
    return result


# -- scenarios -------------------------------------------------------------------------
#
# A scenario runs against one server (``name``, a key of :class:`Servers`). MATRIX says
# which servers each scenario runs against; a server left out is left out for the
# reason given next to it.

H1 = ["websockets", "hypercorn", "uvicorn", "aiohttp"]
"""The cleartext HTTP/1.1 servers."""


def _echo_path(name: str) -> str:
    return "/ws" if name == "hypercorn_tls" else "/echo"


async def s_echo(api: WsApi, s: Servers, name: str) -> None:
    url = s[name] + _echo_path(name)
    async with api.connect(url, verify=s.ca_path) as ws:
        assert ws.state is State.OPEN
        if name == "hypercorn_tls":
            # hypercorn enables extended CONNECT (RFC 8441): ALPN picks
            # HTTP/2 and the WebSocket is one stream of that connection.
            assert ws.http_version == "HTTP/2"
            assert ws.response.status_code == 200
        else:
            assert ws.http_version == "HTTP/1.1"
            assert ws.response.status_code == 101
        await ws.send("héllo")
        assert await ws.recv() == "héllo"
        await ws.send(b"\x00\x01\xff")
        assert await ws.recv() == b"\x00\x01\xff"
        await ws.send("")
        assert await ws.recv() == ""
        assert ws.remote_address[0] == "127.0.0.1"
        assert ws.local_address[0] == "127.0.0.1"
    assert ws.state is State.CLOSED
    assert ws.close_code == 1000


async def s_large_fragmented(api: WsApi, s: Servers, name: str) -> None:
    chunk = os.urandom(1024 * 1024)
    fragments = [chunk] * 4  # 4 MiB in four frames
    async with api.connect(s[name] + "/echo", max_size=8 * 2**20) as ws:
        await ws.send(fragments)
        assert await ws.recv() == chunk * 4
        text = ["ab" * 300_000, "çd" * 300_000, "é"]
        await ws.send(text)
        assert await ws.recv() == "".join(text)


async def s_deflate(api: WsApi, s: Servers, name: str) -> None:
    # websockets and aiohttp tell the app what was negotiated and /ext
    # sends it; ASGI does not, so there /ext is the echo route and the
    # response's Sec-WebSocket-Extensions field says it alone.
    reports = name in ("websockets", "aiohttp")
    async with api.connect(s[name] + "/ext") as ws:
        if reports:
            assert await ws.recv() == "permessage-deflate"
        assert "permessage-deflate" in ws.response.headers["Sec-WebSocket-Extensions"]
        stream = ws.core._stream
        written: list[int] = []
        write = stream.write

        async def counting(data: bytes, timeout: float | None) -> None:
            written.append(len(data))
            await write(data, timeout)

        stream.write = counting  # type: ignore[method-assign]
        message = "compress me " * 50_000  # 600 kB
        await ws.send(message)
        assert await ws.recv() == message
        assert sum(written) < 10_000  # sent compressed
    # zlib settings of the user's choice: still permessage-deflate.
    settings = {"level": 9, "memLevel": 8}
    async with api.connect(s[name] + "/ext", compression=settings) as ws:
        if reports:
            assert await ws.recv() == "permessage-deflate"
        assert "permessage-deflate" in ws.response.headers["Sec-WebSocket-Extensions"]
        message = "compress me " * 50_000
        await ws.send(message)
        assert await ws.recv() == message
    async with api.connect(s[name] + "/ext", compression=None) as ws:
        if reports:
            assert await ws.recv() == ""
        assert "Sec-WebSocket-Extensions" not in ws.response.headers
        await ws.send("plain")
        assert await ws.recv() == "plain"


async def s_fragments_received(api: WsApi, s: Servers, name: str) -> None:
    async with api.connect(s[name] + "/fragments", compression=None) as ws:
        # websockets ends a fragmented message with an empty final frame.
        assert await ws.recv_streaming() == ["frag1 ", "frag2 ", "frag3", ""]
        assert await ws.recv() == b"ab"
    async with api.connect(s[name] + "/fragments") as ws:
        assert await ws.recv() == "frag1 frag2 frag3"
        assert await ws.recv_streaming() == [b"a", b"b", b""]


async def s_ping_latency(api: WsApi, s: Servers, name: str) -> None:
    async with api.connect(s[name] + "/echo") as ws:
        latency = await ws.ping()
        assert 0.0 <= latency < 10.0
        assert ws.latency == latency
        await ws.send("after ping")
        assert await ws.recv() == "after ping"


async def s_keepalive(api: WsApi, s: Servers, name: str) -> None:
    """Keepalive pings every 50 ms get their pongs from the server (the
    latency is measured), and the connection stays open."""
    import time

    async with api.connect(s[name] + "/echo", ping_interval=0.05, ping_timeout=5.0) as ws:
        deadline = time.monotonic() + 10.0
        while ws.latency == 0.0 and time.monotonic() < deadline:
            if api.is_async:
                import anyio

                await anyio.sleep(0.02)
            else:
                time.sleep(0.02)
        assert ws.latency > 0.0
        assert ws.state is State.OPEN
        await ws.send("still open")
        assert await ws.recv() == "still open"


async def s_unanswered_pings(api: WsApi, s: Servers, name: str) -> None:
    """A server that stops answering pings while its TCP connection stays
    up is found out by the keepalive (ping_interval + ping_timeout): the
    connection is failed with 1011 (sent; nothing received: 1006) and
    ``recv()`` raises ConnectionClosedError instead of waiting forever."""
    options = {"ping_interval": 0.2, "ping_timeout": 0.2, "close_timeout": 2.0}
    async with api.connect(s[name] + "/silent", **options) as ws:
        await ws.send("last words")
        assert await ws.recv(timeout=10.0) == "last words"
        with pytest.raises(webwire.ConnectionClosedError) as info:
            await ws.recv(timeout=10.0)  # ReadTimeout here: not detected
        assert ws.state is State.CLOSED
    error = info.value
    assert error.sent is not None and error.sent.code == 1011
    assert error.sent.reason == "keepalive ping timeout"
    assert error.rcvd is None and error.code == 1006
    assert ws.close_code == 1006
    with pytest.raises(webwire.ConnectionClosedError):
        await ws.send("too late")


async def s_server_close(api: WsApi, s: Servers, name: str) -> None:
    async with api.connect(s[name] + "/close/4000/going%20home") as ws:
        with pytest.raises(webwire.ConnectionClosedError) as info:
            await ws.recv()
        assert info.value.code == 4000
        assert info.value.reason == "going home"
        assert info.value.rcvd_then_sent is True
        assert ws.close_code == 4000
        assert ws.close_reason == "going home"
    async with api.connect(s[name] + "/close/1000/done") as ws:
        assert await ws.messages() == []  # a normal closure ends the loop
        assert ws.close_code == 1000
        with pytest.raises(webwire.ConnectionClosedOK):
            await ws.send("too late")


async def s_abrupt_disconnect(api: WsApi, s: Servers, name: str) -> None:
    async with api.connect(s[name] + "/abort") as ws:
        await ws.send("bye")
        with pytest.raises(webwire.ConnectionClosedError) as info:
            await ws.messages()
        assert info.value.code == 1006
        assert info.value.rcvd is None
        assert ws.state is State.CLOSED


async def s_max_size(api: WsApi, s: Servers, name: str) -> None:
    async with api.connect(s[name] + "/big/2000", max_size=1000) as ws:
        with pytest.raises(webwire.ConnectionClosedError) as info:
            await ws.recv()
        assert info.value.sent is not None
        assert info.value.sent.code == 1009
    async with api.connect(s[name] + "/big/2000", max_size=2000) as ws:
        assert await ws.recv() == b"\x5a" * 2000


async def s_subprotocol(api: WsApi, s: Servers, name: str) -> None:
    url = s[name] + "/subprotocol"
    async with api.connect(url, subprotocols=["superchat", "chat"]) as ws:
        assert ws.subprotocol == "chat"
        assert await ws.recv() == "chat"
    async with api.connect(url, subprotocols=["other"]) as ws:
        assert ws.subprotocol is None
        assert await ws.recv() == ""
    if name == "websockets":
        # The only server here that also speaks superchat (after chat).
        async with api.connect(url, subprotocols=["superchat"]) as ws:
            assert ws.subprotocol == "superchat"
            assert await ws.recv() == "superchat"


async def s_refused(api: WsApi, s: Servers, name: str) -> None:
    with pytest.raises(webwire.InvalidStatus) as info:
        await api.open(s[name] + "/forbidden")
    error = info.value
    assert isinstance(error, webwire.InvalidHandshake)
    assert error.status_code == 403
    if name in ("websockets", "aiohttp"):
        # An ASGI app that closes before accepting gets the server's own
        # 403 response; these two servers send the app's.
        assert error.body == FORBIDDEN_BODY.encode()
        assert error.headers["Content-Type"].startswith("text/plain")


async def s_headers(api: WsApi, s: Servers, name: str) -> None:
    options = {
        "additional_headers": {"X-Token": "abc"},
        "user_agent_header": "tester/1.0",
        "origin": "https://app.test",
    }
    async with api.connect(s[name] + "/headers", **options) as ws:
        fields = {name.lower(): value for name, value in json.loads(await ws.recv())}
    assert fields["x-token"] == "abc"
    assert fields["user-agent"] == "tester/1.0"
    assert fields["origin"] == "https://app.test"
    assert fields["sec-websocket-version"] == "13"
    assert "accept-encoding" not in fields
    async with api.connect(s[name] + "/headers", user_agent_header=None) as ws:
        fields = {name.lower(): value for name, value in json.loads(await ws.recv())}
    assert "user-agent" not in fields


async def s_tls_verification(api: WsApi, s: Servers, name: str) -> None:
    url = s[name] + _echo_path(name)
    with pytest.raises(webwire.ConnectError):
        await api.open(url)  # the test CA is not trusted
    context = ssl.create_default_context(cafile=s.ca_path)
    async with api.connect(url, ssl=context) as ws:
        await ws.send("secure")
        assert await ws.recv() == "secure"
        assert ws.core._stream.get_extra_info("ssl_object") is not None


# Servers left out, and why:
MATRIX: dict[Scenario, list[str]] = {
    s_echo: [*H1, "websockets_tls", "aiohttp_tls", "hypercorn_tls"],
    s_large_fragmented: H1,
    s_deflate: H1,
    # aiohttp: its frame writer sets FIN on every data frame; no public API
    # sends a message in several frames. hypercorn, uvicorn: an ASGI
    # ``websocket.send`` event carries one whole message.
    s_fragments_received: ["websockets"],
    s_ping_latency: H1,
    s_keepalive: H1,
    # Only aiohttp leaves pongs to the application (``receive()`` answers
    # them); websockets, hypercorn (wsproto) and uvicorn answer pings in
    # their protocol layer whatever the app does. The silent-network case
    # on every server is test_websocket_dead_peer.py (a black-holing relay).
    s_unanswered_pings: ["aiohttp"],
    s_server_close: H1,
    # hypercorn, uvicorn: ASGI has no way for an app to abort its TCP
    # connection without a close frame.
    s_abrupt_disconnect: ["websockets", "aiohttp"],
    s_max_size: H1,
    s_subprotocol: H1,
    s_refused: H1,
    s_headers: H1,
    s_tls_verification: ["websockets_tls", "aiohttp_tls", "hypercorn_tls"],
}
CASES = [
    pytest.param(scenario, name, id=f"{scenario.__name__[2:]}-{name}")
    for scenario, names in MATRIX.items()
    for name in names
]


@pytest.mark.anyio
@pytest.mark.parametrize(("scenario", "name"), CASES)
async def test_async(scenario: Scenario, name: str, servers: Servers, anyio_backend: str) -> None:
    await scenario(WsApi(True), servers, name)


@pytest.mark.parametrize(("scenario", "name"), CASES)
def test_sync(scenario: Scenario, name: str, servers: Servers) -> None:
    run_sync(scenario(WsApi(False), servers, name))


async def s_bad_uri(api: WsApi) -> None:
    for uri in ("http://127.0.0.1/", "ws:///nohost", "wss://h/#frag"):
        with pytest.raises(webwire.InvalidURL):
            await api.open(uri)
    with pytest.raises(webwire.ConnectError):
        await api.open("ws://127.0.0.1:1/", open_timeout=5)


@pytest.mark.anyio
async def test_bad_uri_async(anyio_backend: str) -> None:
    await s_bad_uri(WsApi(True))


def test_bad_uri_sync() -> None:
    run_sync(s_bad_uri(WsApi(False)))


# -- reconnection after a server restart ----------------------------------------------


async def s_reconnect(api: WsApi, server: WebsocketsServer | AiohttpServer) -> None:
    retry = Retry(None, backoff_factor=0.05, backoff_max=0.2)
    restarted = threading.Event()

    def restart() -> None:
        server.stop()
        threading.Timer(0.5, lambda: (server.start(), restarted.set())).start()

    seen: list[int] = []
    async with aclosing(api.reconnect(server.url + "/echo", retry=retry)) as connections:
        async for ws in connections:
            await ws.send(f"hello {len(seen)}")
            assert await ws.recv() == f"hello {len(seen)}"
            seen.append(len(seen))
            if len(seen) == 2:
                await ws.close()
                break
            threading.Thread(target=restart).start()
            # The server going away (1001) ends the iteration normally.
            assert await ws.messages() == []
            assert ws.close_code == 1001
    assert seen == [0, 1]
    assert restarted.wait(10.0)


# hypercorn, uvicorn: the test harness (conftest.ServerThread) cannot start
# them again on the same port.
@pytest.fixture(params=["websockets", "aiohttp"])
def restartable(request: pytest.FixtureRequest) -> Iterator[WebsocketsServer | AiohttpServer]:
    server = WebsocketsServer() if request.param == "websockets" else AiohttpServer()
    server.start()
    yield server
    server.stop()


@pytest.mark.anyio
async def test_reconnect_async(
    restartable: WebsocketsServer | AiohttpServer, anyio_backend: str
) -> None:
    await s_reconnect(WsApi(True), restartable)


def test_reconnect_sync(restartable: WebsocketsServer | AiohttpServer) -> None:
    run_sync(s_reconnect(WsApi(False), restartable))


async def s_fatal_error_not_retried(api: WsApi, s: Servers, name: str) -> None:
    with pytest.raises(webwire.InvalidStatus):
        async with aclosing(api.reconnect(s[name] + "/forbidden")) as connections:
            async for _ in connections:
                raise AssertionError("no connection expected")


@pytest.mark.anyio
@pytest.mark.parametrize("name", H1)
async def test_fatal_error_not_retried_async(
    servers: Servers, name: str, anyio_backend: str
) -> None:
    await s_fatal_error_not_retried(WsApi(True), servers, name)


@pytest.mark.parametrize("name", H1)
def test_fatal_error_not_retried_sync(servers: Servers, name: str) -> None:
    run_sync(s_fatal_error_not_retried(WsApi(False), servers, name))


# -- proxies -------------------------------------------------------------------------------


async def s_proxies(
    api: WsApi, s: Servers, proxy: ProxyInfo, socks: SocksProxies
) -> None:
    for name in ("websockets", "aiohttp"):
        async with api.connect(
            s[f"{name}_tls"] + "/echo", verify=s.ca_path, proxy=proxy.url
        ) as ws:
            await ws.send(f"through CONNECT to {name}")
            assert await ws.recv() == f"through CONNECT to {name}"
        async with api.connect(s[name] + "/echo", proxy=socks.socks5.url) as ws:
            await ws.send(f"through SOCKS5 to {name}")
            assert await ws.recv() == f"through SOCKS5 to {name}"


@pytest.mark.anyio
async def test_proxies_async(
    servers: Servers,
    http_proxy: ProxyInfo,  # noqa: F811
    socks_proxies: SocksProxies,  # noqa: F811
    anyio_backend: str,
) -> None:
    await s_proxies(WsApi(True), servers, http_proxy, socks_proxies)


def test_proxies_sync(
    servers: Servers,
    http_proxy: ProxyInfo,  # noqa: F811
    socks_proxies: SocksProxies,  # noqa: F811
) -> None:
    run_sync(s_proxies(WsApi(False), servers, http_proxy, socks_proxies))


# -- threads and many connections ----------------------------------------------------------


def test_sync_threads_share_a_connection(servers: Servers) -> None:
    """One thread iterates the messages while four others send."""
    count = 200
    received: list[Any] = []
    with sws.connect(servers["websockets"] + "/echo") as ws:

        def reader() -> None:
            for message in ws:
                received.append(message)
                if len(received) == 4 * count:
                    return

        def writer(n: int) -> None:
            for i in range(count):
                ws.send(f"{n}:{i}")
            ws.ping().wait(10.0)

        threads = [threading.Thread(target=reader)]
        threads += [threading.Thread(target=writer, args=(n,)) for n in range(4)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(30.0)
        assert not any(thread.is_alive() for thread in threads)
    assert sorted(received) == sorted(f"{n}:{i}" for n in range(4) for i in range(count))
    for n in range(4):
        mine = [m for m in received if m.startswith(f"{n}:")]
        assert mine == [f"{n}:{i}" for i in range(count)]  # each sender's order kept


def test_sync_concurrent_recv_refused(servers: Servers) -> None:
    with sws.connect(servers["websockets"] + "/echo") as ws:
        errors: list[BaseException] = []

        def receive() -> None:
            try:
                ws.recv(timeout=5.0)
            except BaseException as exc:
                errors.append(exc)

        first = threading.Thread(target=receive)
        first.start()
        import time

        deadline = time.monotonic() + 5
        while not ws._connection._receiving and time.monotonic() < deadline:
            time.sleep(0.01)
        with pytest.raises(webwire.ConcurrencyError):
            ws.recv(timeout=1.0)
        ws.send("wake")
        first.join(10.0)
        assert errors == []


def _open_fds() -> int:
    return len(os.listdir("/proc/self/fd"))


@pytest.mark.anyio
@pytest.mark.parametrize("anyio_backend", ["asyncio"])
async def test_many_connections_bounded_fds(
    websockets_server: WebsocketsServer, anyio_backend: str
) -> None:
    import anyio

    n = 200
    before = _open_fds()
    connections: list[aws.ClientConnection] = []

    async def open_one() -> None:
        connections.append(await aws.connect(websockets_server.url + "/echo"))

    async with anyio.create_task_group() as tg:
        for _ in range(n):
            tg.start_soon(open_one)
    during = _open_fds()
    # One socket per connection here, one in the server (same process).
    assert during - before <= 2 * n + 10
    for ws in connections[:5]:
        await ws.send("x")
        assert await ws.recv() == "x"
    async with anyio.create_task_group() as tg:
        for ws in connections:
            tg.start_soon(ws.close)
    assert all(ws.state is State.CLOSED for ws in connections)
    # The server's side (in this process) closes its sockets in its own time.
    for _ in range(250):
        if _open_fds() - before <= 10:
            break
        await anyio.sleep(0.02)
    assert _open_fds() - before <= 10


@pytest.mark.anyio
async def test_connections_share_a_client(
    websockets_server: WebsocketsServer, anyio_backend: str
) -> None:
    """The handshakes of several connections go through one AsyncClient;
    each connection leaves its pool once upgraded."""
    async with webwire.AsyncClient(http2=False) as client:
        connections = [
            await aws.connect(websockets_server.url + "/echo", client=client) for _ in range(5)
        ]
        assert client.transport.pool.connections() == []  # type: ignore[attr-defined]
        for i, ws in enumerate(connections):
            await ws.send(str(i))
            assert await ws.recv() == str(i)
        for ws in connections:
            await ws.close()
        assert not client.is_closed


# -- Unix domain socket ----------------------------------------------------------------------


@pytest.fixture
def unix_server(tmp_path: Any) -> Iterator[WebsocketsServer]:
    server = WebsocketsServer(unix_path=str(tmp_path / "ws.sock"))
    server.start()
    yield server
    server.stop()


async def s_unix(api: WsApi, path: str) -> None:
    if api.is_async:
        ws = Conn(await aws.unix_connect(path, "ws://localhost/echo"), True)
    else:
        ws = Conn(sws.unix_connect(path, "ws://localhost/echo"), False)
    try:
        await ws.send("over a Unix socket")
        assert await ws.recv() == "over a Unix socket"
    finally:
        await ws.close()
    assert ws.close_code == 1000


@pytest.mark.anyio
async def test_unix_async(unix_server: WebsocketsServer, anyio_backend: str) -> None:
    assert unix_server.unix_path is not None
    await s_unix(WsApi(True), unix_server.unix_path)


def test_unix_sync(unix_server: WebsocketsServer) -> None:
    assert unix_server.unix_path is not None
    run_sync(s_unix(WsApi(False), unix_server.unix_path))


def test_connections_share_a_client_sync(websockets_server: WebsocketsServer) -> None:
    """The blocking API: handshakes through one ``webwire.Client``, from
    several threads at once."""
    with webwire.Client(http2=False) as client:
        results: list[Any] = [None] * 8

        def run(i: int) -> None:
            with sws.connect(websockets_server.url + "/echo", client=client) as ws:
                ws.send(f"thread {i}")
                results[i] = ws.recv(timeout=10.0)

        threads = [threading.Thread(target=run, args=(i,)) for i in range(8)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(30.0)
        assert results == [f"thread {i}" for i in range(8)]
        assert client._client.transport.pool.connections() == []  # type: ignore[union-attr]


async def s_ws_through_http_proxy(api: WsApi, s: Servers, proxy: ProxyInfo) -> None:
    """ws:// through an HTTP proxy (proxy.py) goes through a CONNECT tunnel
    opened for the handshake alone (a proxy would not upgrade a forwarded
    request); a refused handshake's tunnel is not kept for other requests."""
    for name in H1:
        async with api.connect(s[name] + "/echo", proxy=proxy.url) as ws:
            await ws.send(f"via proxy to {name}")
            assert await ws.recv() == f"via proxy to {name}"
        assert ws.close_code == 1000
    with pytest.raises(webwire.InvalidStatus) as info:
        await api.open(s["websockets"] + "/forbidden", proxy=proxy.url)
    assert info.value.status_code == 403
    client = webwire.AsyncClient(proxy=proxy.url) if api.is_async else webwire.Client(
        proxy=proxy.url
    )
    try:
        async with api.connect(s["websockets"] + "/echo", client=client) as ws:
            await ws.send("shared client")
            assert await ws.recv() == "shared client"
        with pytest.raises(webwire.InvalidStatus):
            await api.open(s["websockets"] + "/forbidden", client=client)
        pool = (client if api.is_async else client._client).transport.pool  # type: ignore[union-attr]
        assert pool is not None and pool.connections() == []  # tunnels are single-use
    finally:
        if api.is_async:
            await client.aclose()  # type: ignore[misc]
        else:
            client.close()


@pytest.mark.anyio
async def test_ws_through_http_proxy_async(
    servers: Servers, http_proxy: ProxyInfo, anyio_backend: str  # noqa: F811
) -> None:
    await s_ws_through_http_proxy(WsApi(True), servers, http_proxy)


def test_ws_through_http_proxy_sync(servers: Servers, http_proxy: ProxyInfo) -> None:  # noqa: F811
    run_sync(s_ws_through_http_proxy(WsApi(False), servers, http_proxy))


@pytest.mark.anyio
async def test_handshake_is_traced(
    websockets_server: WebsocketsServer, anyio_backend: str
) -> None:
    """The handshake is a request of the client: its trace callbacks see
    it (method, URL, the Sec-WebSocket-* fields) and its 101 answer."""
    seen: list[Any] = []

    async def on_start(session: Any, ctx: Any, params: Any) -> None:
        seen.append(("start", params.method, str(params.url), params.headers["Upgrade"]))

    async def on_end(session: Any, ctx: Any, params: Any) -> None:
        seen.append(("end", params.response.status_code))

    trace = webwire.TraceConfig()
    trace.on_request_start.append(on_start)
    trace.on_request_end.append(on_end)
    async with webwire.AsyncClient(http2=False, trace=[trace]) as client:
        async with aws.connect(websockets_server.url + "/echo", client=client) as ws:
            await ws.send("traced")
            assert await ws.recv() == "traced"
    url = websockets_server.url.replace("ws://", "http://") + "/echo"
    assert seen == [("start", "GET", url, "websocket"), ("end", 101)]


# -- WebSocket over HTTP/2 (RFC 8441) ----------------------------------------------------------


async def s_http2_streams_share_a_connection(api: WsApi, s: Servers) -> None:
    """Against hypercorn over TLS the WebSockets are streams of one HTTP/2
    connection, next to ordinary requests; closing one (either side) ends
    its stream only, at once (close_timeout is far beyond the test's
    timeout), and the connection keeps serving."""
    url = s["hypercorn_tls"] + "/ws"
    http_url = url.replace("wss://", "https://").replace("/ws", "/json")
    client_cls = webwire.AsyncClient if api.is_async else webwire.Client
    client = client_cls(verify=s.ca_path)
    try:
        for round_ in range(3):
            async with api.connect(url, client=client, close_timeout=60) as ws:
                assert ws.http_version == "HTTP/2"
                await ws.send(f"round {round_}")
                assert await ws.recv() == f"round {round_}"
                response = client.get(http_url)
                if api.is_async:
                    response = await response
                assert response.status_code == 200
                assert response.http_version == "HTTP/2"
            assert ws.close_code == 1000
        pool = client.transport.pool  # type: ignore[union-attr]
        if pool is None:
            pool = client._client.transport.pool  # type: ignore[union-attr]
        assert len(pool.connections()) == 1
    finally:
        if api.is_async:
            await client.aclose()
        else:
            client.close()


@pytest.mark.timeout(30)
@pytest.mark.anyio
async def test_http2_streams_share_a_connection_async(
    servers: Servers, anyio_backend: str
) -> None:
    await s_http2_streams_share_a_connection(WsApi(True), servers)


@pytest.mark.timeout(30)
def test_http2_streams_share_a_connection_sync(servers: Servers) -> None:
    run_sync(s_http2_streams_share_a_connection(WsApi(False), servers))


# -- 1,000 connections on one client ------------------------------------------------------

_ECHO_SERVER_SCRIPT = """
import asyncio, sys
from websockets.asyncio.server import serve

async def echo(ws):
    async for message in ws:
        await ws.send(message)

async def main():
    async with serve(echo, "127.0.0.1", 0, ping_interval=None, backlog=1024) as server:
        print(server.sockets[0].getsockname()[1], flush=True)
        await asyncio.get_running_loop().run_in_executor(None, sys.stdin.read)

asyncio.run(main())
"""


@pytest.fixture(scope="module")
def echo_process() -> Iterator[str]:
    """The websockets server in a process of its own, so that this
    process's file descriptors and allocations are the client's alone."""
    import subprocess
    import sys

    proc = subprocess.Popen(
        [sys.executable, "-c", _ECHO_SERVER_SCRIPT],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
    )
    try:
        assert proc.stdout is not None
        port = int(proc.stdout.readline())
        yield f"ws://127.0.0.1:{port}"
    finally:
        assert proc.stdin is not None and proc.stdout is not None
        proc.stdin.close()
        try:
            proc.wait(15.0)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        proc.stdout.close()


THOUSAND = 1000
PER_CONNECTION_BYTES = {None: 32 * 1024, "deflate": 96 * 1024}
"""Most memory (traced by tracemalloc) one open, idle connection may hold:
about 18 KiB without compression; permessage-deflate (RFC 7692) adds the
two zlib contexts of the ``websockets`` extension, about 46 KiB."""


@pytest.mark.timeout(300)
@pytest.mark.anyio
@pytest.mark.parametrize("compression", [None, "deflate"])
async def test_thousand_connections_one_client(
    echo_process: str, compression: Any, anyio_backend: str
) -> None:
    """1,000 WebSockets at once through one AsyncClient: one socket each
    while open, every descriptor given back after close, and the memory
    they hold (tracemalloc) under PER_CONNECTION_BYTES each."""
    import gc
    import tracemalloc

    import anyio

    connections: list[aws.ClientConnection] = []
    async with webwire.AsyncClient(http2=False, trust_env=False) as client:
        # Warm up (imports, caches, the pool's TLS-free setup).
        async with client.websocket(echo_process + "/warm", ping_interval=None) as ws:
            await ws.send("warm")
            assert await ws.recv() == "warm"
        gc.collect()
        fds_before = _open_fds()
        tracemalloc.start()
        try:
            memory_before = tracemalloc.get_traced_memory()[0]
            limiter = anyio.Semaphore(100)

            async def open_one(i: int) -> None:
                async with limiter:
                    connections.append(
                        await client.websocket(
                            f"{echo_process}/c{i}", ping_interval=None, compression=compression
                        )
                    )

            async with anyio.create_task_group() as tg:
                for i in range(THOUSAND):
                    tg.start_soon(open_one, i)
            assert len(connections) == THOUSAND
            for ws in connections[::97]:  # they work
                await ws.send("x")
                assert await ws.recv() == "x"
            gc.collect()
            grown = tracemalloc.get_traced_memory()[0] - memory_before
        finally:
            tracemalloc.stop()
        fds_open = _open_fds()
        assert client.transport.pool.connections() == []  # type: ignore[attr-defined]
        # At most one descriptor per connection (other tests' servers may
        # close theirs meanwhile, so no lower bound).
        assert fds_open - fds_before <= THOUSAND + 20
        assert all(ws.local_address is not None for ws in connections)
        bound = PER_CONNECTION_BYTES[compression]
        assert grown / THOUSAND < bound, f"{grown / THOUSAND:.0f} B each"

        async with anyio.create_task_group() as tg:
            for ws in connections:
                tg.start_soon(ws.close)
        assert all(ws.close_code == 1000 for ws in connections)
    connections.clear()
    gc.collect()
    assert _open_fds() - fds_before <= 5


# -- write_limit -----------------------------------------------------------------------


def test_write_limit_refused() -> None:
    from webwire.websocket import connect
    from webwire.websocket import sync as sws

    # webwire writes each frame through to the socket: there is no write
    # buffer for a high-water mark to bound, so the option is refused.
    with pytest.raises(TypeError, match="write_limit is not supported"):
        connect("ws://127.0.0.1/", write_limit=2**16)
    with pytest.raises(TypeError, match="write_limit is not supported"):
        sws.connect("ws://127.0.0.1/", write_limit=2**16)
