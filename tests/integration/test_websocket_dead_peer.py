"""A dead peer on real sockets: the keepalive finds it out on every backend.

A TCP relay (:class:`BlackholeRelay`, a thread on 127.0.0.1, port 0) sits
between the client and a real WebSocket server. After the opening handshake
and one echo it "black-holes": both of its sockets stay open, nothing is
forwarded either way and no FIN is sent, as when the network drops packets
silently. The client, with ``ping_interval=0.2`` and ``ping_timeout=0.2``,
must fail the connection with 1011 (no pong in time) and report
:class:`webwire.ConnectionClosedError` from ``recv()`` within
``ping_interval + ping_timeout``: never hang, leak no descriptor. In a
second scenario the relay stops reading while the client sends a large
message: the blocked ``send()`` is ended the same way. Both run against the
``websockets`` server (cleartext and TLS), aiohttp, hypercorn and uvicorn
over HTTP/1.1 and hypercorn over HTTP/2 (RFC 8441), on asyncio, on trio and
through the blocking API.

Timing is not measured here (the fake-clock tests in
``tests/transport/test_websocket_memory.py`` do that); a generous outer bound
(``recv(timeout=10)``, pytest-timeout) turns a hang into a failure.
"""

from __future__ import annotations

import http.client
import os
import selectors
import socket
import ssl
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest
from test_websocket import WsApi, _uvicorn_ws_serve
from ws_aiohttp import AiohttpServer
from ws_app import WebsocketsServer, ws_asgi_app

import webwire
from conftest import ServerInfo, ServerThread, TLSFiles, _hypercorn_serve_app
from webwire._sync import run_sync
from webwire.websocket import State

# -- the relay -------------------------------------------------------------------------------


class BlackholeRelay:
    """A TCP relay in a daemon thread: accepts on 127.0.0.1 (port 0) and
    connects each client to ``127.0.0.1:upstream_port``, then copies bytes
    both ways (an end of stream is passed on as ``shutdown(SHUT_WR)``).

    After :meth:`blackhole` it forwards nothing more: what arrives from
    either side is read and dropped (counted in :attr:`dropped`), no socket
    is closed or shut down, so neither end sees a FIN or a reset. An end of
    stream from either side is not passed on either. After :meth:`stall` it
    stops reading altogether (also without closing anything): the ends'
    socket buffers fill up and their writes block. :meth:`close` closes
    every socket and ends the thread.
    """

    def __init__(self, upstream_port: int) -> None:
        self._upstream_port = upstream_port
        self._listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self._listener.bind(("127.0.0.1", 0))
        self._listener.listen(16)
        self.port: int = self._listener.getsockname()[1]
        self._selector = selectors.DefaultSelector()
        self._selector.register(self._listener, selectors.EVENT_READ)
        self._peers: dict[socket.socket, socket.socket] = {}
        self._blackholed = threading.Event()
        self._stalled = threading.Event()
        self._closing = threading.Event()
        self.dropped = {"from_client": 0, "from_server": 0}
        """Bytes read and dropped since :meth:`blackhole`, per direction."""
        self.client_ports: list[int] = []
        """The clients' local ports, in the order they connected."""
        self._thread = threading.Thread(target=self._run, name="blackhole-relay", daemon=True)
        self._thread.start()

    def blackhole(self) -> None:
        """Stop forwarding, from now on, in both directions."""
        self._blackholed.set()

    def stall(self) -> None:
        """Stop reading from both sides, from now on."""
        self._stalled.set()

    def close(self) -> None:
        """Close every socket (the ends then see the connection end)."""
        self._closing.set()
        self._thread.join(10.0)
        assert not self._thread.is_alive(), "the relay thread did not end"

    def _run(self) -> None:
        try:
            while not self._closing.is_set():
                if self._stalled.is_set():
                    for sock in self._peers:
                        if sock in self._selector.get_map():
                            self._selector.unregister(sock)
                for key, _ in self._selector.select(0.05):
                    sock = key.fileobj
                    assert isinstance(sock, socket.socket)
                    if sock is self._listener:
                        self._accept()
                    else:
                        self._pump(sock, key.data)
        finally:
            for sock in list(self._peers):
                sock.close()
            self._selector.close()
            self._listener.close()

    def _accept(self) -> None:
        client, address = self._listener.accept()
        self.client_ports.append(address[1])
        upstream = socket.create_connection(("127.0.0.1", self._upstream_port), timeout=5.0)
        upstream.settimeout(None)
        self._peers[client] = upstream
        self._peers[upstream] = client
        self._selector.register(client, selectors.EVENT_READ, "from_client")
        self._selector.register(upstream, selectors.EVENT_READ, "from_server")

    def _pump(self, sock: socket.socket, direction: str) -> None:
        if self._stalled.is_set():
            return  # unregistered by the loop
        try:
            data = sock.recv(65536)
        except OSError:
            data = b""
        if self._blackholed.is_set():
            self.dropped[direction] += len(data)
            if not data:
                self._selector.unregister(sock)  # keep it open, say nothing
            return
        peer = self._peers[sock]
        if data:
            peer.sendall(data)
        else:
            self._selector.unregister(sock)
            try:
                peer.shutdown(socket.SHUT_WR)
            except OSError:
                pass


# -- servers ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class Target:
    """A WebSocket server to put the relay in front of.

    Attributes:
        port: Where the server listens.
        scheme: ``ws`` or ``wss``.
        path: The echo route.
        http_version: What the WebSocket runs over.
    """

    port: int
    scheme: str = "ws"
    path: str = "/echo"
    http_version: str = "HTTP/1.1"


def _port(url: str) -> int:
    return int(url.rsplit(":", 1)[1])


@pytest.fixture(scope="module")
def websockets_target() -> Iterator[Target]:
    server = WebsocketsServer()
    server.start()
    yield Target(server.port)
    server.stop()


@pytest.fixture(scope="module")
def websockets_tls_target(tls_files: TLSFiles) -> Iterator[Target]:
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(tls_files.cert_path, tls_files.key_path)
    server = WebsocketsServer(ssl_context=context)
    server.start()
    yield Target(server.port, scheme="wss")
    server.stop()


@pytest.fixture(scope="module")
def aiohttp_target() -> Iterator[Target]:
    server = AiohttpServer()
    server.start()
    yield Target(server.port)
    server.stop()


@pytest.fixture(scope="module")
def hypercorn_target() -> Iterator[Target]:
    thread = ServerThread("hypercorn-ws", _hypercorn_serve_app(ws_asgi_app))
    thread.start()
    # hypercorn opens its own descriptor for the listening socket once it
    # serves: wait for that, so that the tests' descriptor counts hold.
    _wait_serving(thread.port)
    yield Target(thread.port)
    thread.stop()


def _wait_serving(port: int) -> None:
    """Wait until an HTTP request to 127.0.0.1:PORT gets an answer."""
    deadline = time.monotonic() + 10.0
    while True:
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=5.0)
        try:
            conn.request("GET", "/")
            conn.getresponse().read()
            return
        except OSError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.05)
        finally:
            conn.close()


@pytest.fixture(scope="module")
def uvicorn_target() -> Iterator[Target]:
    thread = ServerThread("uvicorn-ws", _uvicorn_ws_serve)
    thread.start()
    _wait_serving(thread.port)
    yield Target(thread.port)
    thread.stop()


@pytest.fixture
def hypercorn_h2_target(hypercorn_https: ServerInfo) -> Target:
    # RFC 8441: the WebSocket is one stream of an HTTP/2 connection; the
    # whole connection goes silent.
    port = hypercorn_https.url.port
    assert port is not None
    return Target(port, scheme="wss", path="/ws", http_version="HTTP/2")


TARGETS = ["websockets", "websockets_tls", "aiohttp", "hypercorn", "uvicorn", "hypercorn_h2"]


@pytest.fixture(params=TARGETS)
def target(request: pytest.FixtureRequest) -> Target:
    value: Target = request.getfixturevalue(f"{request.param}_target")
    return value


# -- the scenario ----------------------------------------------------------------------------


def _open_fds() -> int:
    return len(os.listdir("/proc/self/fd"))


def _held(port: int) -> bool:
    """Whether this process holds the TCP socket bound to 127.0.0.1:PORT
    open (its inode in /proc/net/tcp is one of our descriptors')."""
    inodes = set()
    for fd in os.listdir("/proc/self/fd"):
        try:
            link = os.readlink(f"/proc/self/fd/{fd}")
        except OSError:
            continue  # closed meanwhile
        if link.startswith("socket:["):
            inodes.add(int(link[8:-1]))
    with open("/proc/net/tcp") as table:
        next(table)  # the header
        for line in table:
            fields = line.split()
            local_port = int(fields[1].rsplit(":", 1)[1], 16)
            if local_port == port and int(fields[9]) in inodes:
                return True
    return False


async def _settle(api: WsApi, done: Any) -> None:
    """Wait (at most 5 s) until ``done()``: the other ends of the sockets
    (the server, in this process) close theirs in their own time."""
    for _ in range(250):
        if done():
            return
        if api.is_async:
            import anyio

            await anyio.sleep(0.02)
        else:
            time.sleep(0.02)


async def s_blackholed(api: WsApi, target: Target, ca_path: str) -> None:
    relay = BlackholeRelay(target.port)
    try:
        before = _open_fds()
        url = f"{target.scheme}://127.0.0.1:{relay.port}{target.path}"
        options = {"ping_interval": 0.2, "ping_timeout": 0.2, "close_timeout": 2.0}
        async with api.connect(url, verify=ca_path, **options) as ws:
            assert ws.http_version == target.http_version
            await ws.send("before the drop")
            assert await ws.recv(timeout=10.0) == "before the drop"
            assert relay.client_ports == [ws.local_address[1]]
            assert _held(relay.client_ports[0])  # the client's socket
            relay.blackhole()
            with pytest.raises(webwire.ConnectionClosedError) as info:
                await ws.recv(timeout=10.0)  # ReadTimeout here: not detected
            assert ws.state is State.CLOSED
            with pytest.raises(webwire.ConnectionClosedError):
                await ws.send("too late")
        error = info.value
        # The client failed the connection (RFC 6455 section 7.1.7) with
        # 1011 and received no close frame: the code it reports is 1006.
        assert error.sent is not None and error.sent.code == 1011
        assert error.sent.reason == "keepalive ping timeout"
        assert error.rcvd is None and error.code == 1006
        assert error.rcvd_then_sent is None
        assert ws.close_code == 1006
        assert ws.close_reason == ""
        # The unanswered pings (and the 1011 close frame) went into the hole.
        assert relay.dropped["from_client"] > 0
        assert relay.dropped["from_server"] == 0
        # The client's socket is closed; still open: the relay's two
        # sockets (black-holed, so the server's one stays open too).
        await _settle(api, lambda: not _held(relay.client_ports[0]))
        assert not _held(relay.client_ports[0])
        await _settle(api, lambda: _open_fds() - before <= 3)
        assert _open_fds() - before <= 3
    finally:
        relay.close()
    # The relay's listener and selector were open before ``before``.
    await _settle(api, lambda: _open_fds() <= before - 2)
    assert _open_fds() <= before - 2


async def s_stalled_send(api: WsApi, target: Target, ca_path: str) -> None:
    """The link stops carrying anything while a large message is being
    sent: the send blocks on full socket buffers (or HTTP/2 flow control),
    the keepalive cannot even get its ping out within ping_timeout, fails
    the connection with 1011 and ends the transport: the blocked ``send()``
    raises ConnectionClosedError."""
    relay = BlackholeRelay(target.port)
    try:
        before = _open_fds()
        url = f"{target.scheme}://127.0.0.1:{relay.port}{target.path}"
        options = {
            "ping_interval": 0.2,
            "ping_timeout": 0.2,
            "close_timeout": 2.0,
            "compression": None,
        }
        async with api.connect(url, verify=ca_path, **options) as ws:
            await ws.send("before the drop")
            assert await ws.recv(timeout=10.0) == "before the drop"
            relay.stall()
            with pytest.raises(webwire.ConnectionClosedError) as info:
                # Far more than the loopback socket buffers hold.
                await ws.send(bytes(64 * 2**20))
            assert ws.state is State.CLOSED
            with pytest.raises(webwire.ConnectionClosedError):
                await ws.recv(timeout=10.0)
        error = info.value
        assert error.sent is not None and error.sent.code == 1011
        assert error.sent.reason == "keepalive ping timeout"
        assert error.rcvd is None and error.code == 1006
        assert ws.close_code == 1006
        await _settle(api, lambda: not _held(relay.client_ports[0]))
        assert not _held(relay.client_ports[0])
        await _settle(api, lambda: _open_fds() - before <= 3)
        assert _open_fds() - before <= 3
    finally:
        relay.close()
    await _settle(api, lambda: _open_fds() <= before - 2)
    assert _open_fds() <= before - 2


@pytest.mark.timeout(60)
@pytest.mark.anyio
async def test_stalled_send_async(target: Target, ca_path: str, anyio_backend: str) -> None:
    await s_stalled_send(WsApi(True), target, ca_path)


@pytest.mark.timeout(60)
def test_stalled_send_sync(target: Target, ca_path: str) -> None:
    run_sync(s_stalled_send(WsApi(False), target, ca_path))


@pytest.mark.timeout(60)
@pytest.mark.anyio
async def test_blackholed_async(target: Target, ca_path: str, anyio_backend: str) -> None:
    await s_blackholed(WsApi(True), target, ca_path)


@pytest.mark.timeout(60)
def test_blackholed_sync(target: Target, ca_path: str) -> None:
    run_sync(s_blackholed(WsApi(False), target, ca_path))
