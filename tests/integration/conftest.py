"""Real HTTP servers for the integration tests.

The ASGI app of ``app.py`` is served by hypercorn and uvicorn, in cleartext
and over TLS with a trustme CA, on 127.0.0.1. Each server runs in its own
thread with its own asyncio loop, on a listening socket bound here (port 0)
and handed over, so the port is known before the server starts. Servers are
started once per session, on first use, and shut down at the end.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import http.client
import socket
import ssl
import threading
import time
from collections.abc import Callable, Coroutine, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import trustme
import yarl
from app import app
from wt_servers import (  # noqa: F401  (WebTransport server fixtures)
    wt_aioquic,
    wt_aioquic_any_draft,
    wt_aioquic_restartable,
    wt_proxy,
    wt_proxy_restartable,
    wt_pywebtransport,
    wt_server,
)

SERVER_NAMES = [
    "hypercorn-http",
    "hypercorn-https",
    "hypercorn-h2",
    "uvicorn-http",
    "uvicorn-https",
]


@dataclass(frozen=True)
class ServerInfo:
    """Where a test server listens.

    Attributes:
        name: ``"hypercorn-http"``, ``"uvicorn-https"``, ...
        url: Base URL such as ``http://127.0.0.1:PORT``.
        verify: Path of the CA bundle that signed the server certificate
            (``https``), or ``True`` (``http``).
        ca_path: The CA bundle path (also for ``http`` servers).
    """

    name: str
    url: yarl.URL
    verify: str | bool
    ca_path: str
    http2: bool = False

    @property
    def is_tls(self) -> bool:
        """Whether the server speaks TLS."""
        return self.url.scheme == "https"


@dataclass(frozen=True)
class TLSFiles:
    """The trustme CA and server certificate, written to files."""

    ca_path: str
    cert_path: str
    key_path: str


def _listening_socket() -> socket.socket:
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", 0))
    sock.listen(128)
    sock.setblocking(False)
    return sock


class ServerThread:
    """Runs one ASGI server coroutine on its own loop in a daemon thread.

    Args:
        name: Label used in errors.
        serve: Builds the server coroutine from the listening socket and
            the asyncio event to wait for before shutting down.
        request_stop: Extra step run on the server's loop to ask it to stop.
    """

    def __init__(
        self,
        name: str,
        serve: Callable[[socket.socket, asyncio.Event], Coroutine[Any, Any, None]],
    ) -> None:
        self.name = name
        self._serve = serve
        self._sock = _listening_socket()
        self.port: int = self._sock.getsockname()[1]
        self._loop: asyncio.AbstractEventLoop | None = None
        self._stop: asyncio.Event | None = None
        self._ready = threading.Event()
        self._error: BaseException | None = None
        self._thread = threading.Thread(target=self._run, name=f"server-{name}", daemon=True)

    def start(self) -> None:
        """Start the thread and wait until its loop runs."""
        self._thread.start()
        if not self._ready.wait(10.0):
            raise RuntimeError(f"{self.name} did not start")
        if self._error is not None:
            raise RuntimeError(f"{self.name} failed to start") from self._error

    def _run(self) -> None:
        try:
            asyncio.run(self._main())
        except BaseException as exc:  # reported by stop()
            self._error = exc
            self._ready.set()

    async def _main(self) -> None:
        self._loop = asyncio.get_running_loop()
        self._stop = asyncio.Event()
        self._ready.set()
        await self._serve(self._sock, self._stop)

    def stop(self) -> None:
        """Ask the server to shut down and wait for its thread."""
        loop, stop = self._loop, self._stop
        if loop is not None and stop is not None and self._thread.is_alive():
            try:
                loop.call_soon_threadsafe(stop.set)
            except RuntimeError:
                pass
        self._thread.join(15.0)
        self._sock.close()
        if self._thread.is_alive():
            raise RuntimeError(f"{self.name} did not shut down")
        if self._error is not None:
            raise RuntimeError(f"{self.name} crashed") from self._error


def _hypercorn_serve(
    tls: TLSFiles | None,
) -> Callable[[socket.socket, asyncio.Event], Coroutine[Any, Any, None]]:
    async def serve(sock: socket.socket, stop: asyncio.Event) -> None:
        from hypercorn.asyncio import serve as hypercorn_serve
        from hypercorn.config import Config

        config = Config()
        # Hypercorn takes ownership of a duplicate; ours is closed by stop().
        config.bind = [f"fd://{sock.dup().detach()}"]
        config.graceful_timeout = 1.0
        config.keep_alive_timeout = 30.0
        # hypercorn sends GOAWAY after 1,000 requests on a connection and then
        # answers the requests already on their way with a connection error;
        # the many-request tests keep one connection on purpose.
        config.keep_alive_max_requests = 1_000_000
        config.accesslog = None
        if tls is not None:
            config.certfile = tls.cert_path
            config.keyfile = tls.key_path
        await hypercorn_serve(app, config, shutdown_trigger=stop.wait)  # type: ignore[arg-type]

    return serve


def _uvicorn_serve(
    tls: TLSFiles | None,
) -> Callable[[socket.socket, asyncio.Event], Coroutine[Any, Any, None]]:
    async def serve(sock: socket.socket, stop: asyncio.Event) -> None:
        import uvicorn

        config = uvicorn.Config(
            app,
            lifespan="on",
            log_config=None,
            log_level="warning",
            access_log=False,
            ws="none",
            timeout_keep_alive=30,
            timeout_graceful_shutdown=1,
            ssl_certfile=tls.cert_path if tls else None,
            ssl_keyfile=tls.key_path if tls else None,
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

    return serve


def _probe(info: ServerInfo) -> None:
    """One plain request with the standard library, to fail fast and loudly
    when a server or the certificates are broken."""
    deadline = time.monotonic() + 10.0
    while True:
        conn: http.client.HTTPConnection
        if info.is_tls:
            context = ssl.create_default_context(cafile=info.ca_path)
            conn = http.client.HTTPSConnection(
                "127.0.0.1", info.url.port, timeout=5.0, context=context
            )
        else:
            conn = http.client.HTTPConnection("127.0.0.1", info.url.port, timeout=5.0)
        try:
            conn.request("GET", "/json")
            response = conn.getresponse()
            response.read()
            if response.status == 200:
                return
            raise RuntimeError(f"{info.name} answered {response.status} to the probe")
        except OSError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.05)
        finally:
            conn.close()


@pytest.fixture(scope="session")
def tls_files(tmp_path_factory: pytest.TempPathFactory) -> TLSFiles:
    """A trustme CA and a certificate for 127.0.0.1 and localhost, as files."""
    directory: Path = tmp_path_factory.mktemp("tls")
    ca = trustme.CA()
    cert = ca.issue_cert("127.0.0.1", "localhost")
    ca_path = directory / "ca.pem"
    cert_path = directory / "server.pem"
    key_path = directory / "server.key"
    ca.cert_pem.write_to_path(str(ca_path))
    for blob in cert.cert_chain_pems:
        blob.write_to_path(str(cert_path), append=True)
    cert.private_key_pem.write_to_path(str(key_path))
    return TLSFiles(str(ca_path), str(cert_path), str(key_path))


@pytest.fixture(scope="session")
def ca_path(tls_files: TLSFiles) -> str:
    """Path of the PEM bundle of the test CA (for ``verify=``)."""
    return tls_files.ca_path


def _start(name: str, tls_files: TLSFiles) -> Iterator[ServerInfo]:
    kind, scheme = name.split("-")
    tls = tls_files if scheme == "https" else None
    serve = _hypercorn_serve(tls) if kind == "hypercorn" else _uvicorn_serve(tls)
    thread = ServerThread(name, serve)
    thread.start()
    info = ServerInfo(
        name=name,
        url=yarl.URL.build(scheme=scheme, host="127.0.0.1", port=thread.port),
        verify=tls_files.ca_path if tls else True,
        ca_path=tls_files.ca_path,
    )
    try:
        _probe(info)
        yield info
    finally:
        thread.stop()


@pytest.fixture(scope="session")
def hypercorn_http(tls_files: TLSFiles) -> Iterator[ServerInfo]:
    """hypercorn, cleartext HTTP/1.1."""
    yield from _start("hypercorn-http", tls_files)


@pytest.fixture(scope="session")
def hypercorn_https(tls_files: TLSFiles) -> Iterator[ServerInfo]:
    """hypercorn over TLS (trustme certificate)."""
    yield from _start("hypercorn-https", tls_files)


@pytest.fixture(scope="session")
def uvicorn_http(tls_files: TLSFiles) -> Iterator[ServerInfo]:
    """uvicorn, cleartext HTTP/1.1."""
    yield from _start("uvicorn-http", tls_files)


@pytest.fixture(scope="session")
def uvicorn_https(tls_files: TLSFiles) -> Iterator[ServerInfo]:
    """uvicorn over TLS (trustme certificate)."""
    yield from _start("uvicorn-https", tls_files)


@pytest.fixture(scope="session")
def hypercorn_h2(hypercorn_https: ServerInfo) -> ServerInfo:
    """hypercorn over TLS, spoken to with HTTP/2 (``http2`` set: the HTTP/1.1
    scenarios run again over HTTP/2)."""
    return dataclasses.replace(hypercorn_https, name="hypercorn-h2", http2=True)


@pytest.fixture(params=SERVER_NAMES)
def server(request: pytest.FixtureRequest) -> ServerInfo:
    """Each test server in turn."""
    info: ServerInfo = request.getfixturevalue(request.param.replace("-", "_"))
    return info


@pytest.fixture
def http_server(hypercorn_http: ServerInfo) -> ServerInfo:
    """One cleartext server, for tests where the server does not matter."""
    return hypercorn_http


@pytest.fixture
def https_server(hypercorn_https: ServerInfo) -> ServerInfo:
    """One TLS server, for tests where the server does not matter."""
    return hypercorn_https


def _hypercorn_serve_app(
    asgi_app: Any,
) -> Callable[[socket.socket, asyncio.Event], Coroutine[Any, Any, None]]:
    async def serve(sock: socket.socket, stop: asyncio.Event) -> None:
        from hypercorn.asyncio import serve as hypercorn_serve
        from hypercorn.config import Config

        config = Config()
        config.bind = [f"fd://{sock.dup().detach()}"]
        config.graceful_timeout = 1.0
        config.accesslog = None
        await hypercorn_serve(asgi_app, config, shutdown_trigger=stop.wait)

    return serve


@pytest.fixture(scope="session")
def sse_server() -> Iterator[ServerInfo]:
    """hypercorn, cleartext HTTP/1.1, serving the sse-starlette app of
    ``sse_app.py``."""
    from sse_app import app as sse_asgi_app

    thread = ServerThread("hypercorn-sse", _hypercorn_serve_app(sse_asgi_app))
    thread.start()
    info = ServerInfo(
        name="hypercorn-sse",
        url=yarl.URL.build(scheme="http", host="127.0.0.1", port=thread.port),
        verify=True,
        ca_path="",
    )
    try:
        yield info
    finally:
        thread.stop()


# -- HTTP/3 servers (h3_servers.py, aioquic_server.py, udp_relay.py) ------------------


@pytest.fixture(scope="session")
def h3_hypercorn(tls_files: TLSFiles) -> Iterator[Any]:
    """hypercorn serving ``app.py`` over HTTP/3 (UDP) and TLS on TCP (HTTP/2,
    HTTP/1.1) on one port number, advertising ``Alt-Svc: h3=":PORT"``:
    an :class:`h3_servers.H3ServerInfo`."""
    from h3_servers import start_hypercorn_h3

    with start_hypercorn_h3(tls_files.cert_path, tls_files.key_path, tls_files.ca_path) as info:
        yield info


@pytest.fixture(scope="session")
def aioquic_h3(tls_files: TLSFiles) -> Iterator[Any]:
    """The aioquic HTTP/3 server of ``aioquic_server.py`` (``app.py`` routes,
    RFC 9220 WebSocket, counters in ``info.server.stats``): an
    :class:`h3_servers.H3ServerInfo`. Shared by the session: compare counters
    before and after, never their absolute values."""
    from h3_servers import start_aioquic_h3

    with start_aioquic_h3(tls_files.cert_path, tls_files.key_path, tls_files.ca_path) as info:
        yield info


@pytest.fixture
def aioquic_h3_factory(tls_files: TLSFiles) -> Iterator[Callable[..., Any]]:
    """Starts private aioquic HTTP/3 servers with options, e.g.
    ``aioquic_h3_factory(idle_timeout=0.5)`` or ``(retry=True)``; they stop
    when the test ends."""
    from h3_servers import start_aioquic_h3

    with contextlib.ExitStack() as stack:

        def start(**options: Any) -> Any:
            return stack.enter_context(
                start_aioquic_h3(
                    tls_files.cert_path, tls_files.key_path, tls_files.ca_path, **options
                )
            )

        yield start


@pytest.fixture
def lossy_relay() -> Iterator[Callable[..., Any]]:
    """Makes :class:`udp_relay.LossyUDPRelay` instances:
    ``lossy_relay(target, loss=0.05, reorder=0.05, duplicate=0.05, seed=0)``;
    they are closed when the test ends."""
    from udp_relay import LossyUDPRelay

    relays: list[LossyUDPRelay] = []

    def make(target: tuple[str, int], **options: Any) -> LossyUDPRelay:
        relay = LossyUDPRelay(target, **options)
        relays.append(relay)
        return relay

    yield make
    for relay in relays:
        relay.close()
