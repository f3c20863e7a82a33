"""Loopback demo servers: hypercorn serving the demo app over HTTP, HTTPS
and HTTP/3.

The TLS listener offers HTTP/2 and HTTP/1.1 by ALPN (RFC 7301; ``h2``
first, so a client offering both gets HTTP/2, and a client offering only
``http/1.1`` gets HTTP/1.1). A UDP socket on the same port number serves
HTTP/3 (RFC 9114, hypercorn's ``quic_bind`` with aioquic inside), and the
TLS listener's responses advertise it with ``Alt-Svc: h3=":PORT"`` (RFC
7838). The cleartext listener speaks HTTP/1.1, and
HTTP/2 to a client that starts with the HTTP/2 connection preface (h2c with
prior knowledge, RFC 9113 section 3.3).

Both listeners run in one background thread with its own asyncio loop. The
listening sockets are bound to ``127.0.0.1`` port 0 and put in the listening
state here, before the thread starts, so their ports are known at once and a
client connecting early simply waits in the accept backlog.

The HTTPS listener uses a throwaway certificate authority made with
``trustme``; its certificate is written to a temporary PEM file
(:attr:`DemoServers.ca_path`) for the client's ``verify=``.
"""

from __future__ import annotations

import asyncio
import os
import socket
import tempfile
import threading
from pathlib import Path
from types import TracebackType
from typing import Any

from ._demo_app import app

__all__ = ["DemoServers", "MissingExtra", "require_demo_extra"]

_START_TIMEOUT = 10.0
_STOP_TIMEOUT = 10.0


class MissingExtra(RuntimeError):
    """An optional dependency of ``webwire demo`` is not installed."""


def require_demo_extra() -> None:
    """Check that the packages of the ``webwire[demo]`` extra are importable.

    Raises:
        MissingExtra: One of hypercorn, aioquic (hypercorn's HTTP/3), trustme,
            trio or rich is missing; the message names the package and the
            extra to install.
    """
    import importlib.util

    for name in ("hypercorn", "aioquic", "trustme", "trio", "rich"):
        if importlib.util.find_spec(name) is None:
            raise MissingExtra(
                f"'webwire demo' needs {name}: install it with pip install 'webwire[demo]'"
            )


def _udp_socket(port: int) -> socket.socket | None:
    """A UDP socket on ``127.0.0.1:port`` for HTTP/3, or ``None`` when the
    port is taken for UDP."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    try:
        sock.bind(("127.0.0.1", port))
    except OSError:
        sock.close()
        return None
    return sock


def _tls_and_quic_sockets() -> tuple[socket.socket, socket.socket]:
    """A listening TCP socket and a UDP socket with the same port number
    (so that ``Alt-Svc: h3=":PORT"`` names the TLS listener's port)."""
    for _ in range(20):
        tcp = _listening_socket()
        udp = _udp_socket(tcp.getsockname()[1])
        if udp is not None:
            return tcp, udp
        tcp.close()
    raise RuntimeError("no free port for both TCP and UDP on 127.0.0.1")


def _listening_socket() -> socket.socket:
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    try:
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        sock.bind(("127.0.0.1", 0))
        sock.listen(128)
    except OSError:
        sock.close()
        raise
    return sock


def _quiet_cancellation(loop: asyncio.AbstractEventLoop, context: dict[str, Any]) -> None:
    """Loop exception handler that drops connection tasks cancelled at
    shutdown and reports everything else as usual."""
    if isinstance(context.get("exception"), asyncio.CancelledError):
        return
    loop.default_exception_handler(context)


def _cancel_leftovers(loop: asyncio.AbstractEventLoop) -> None:
    """Cancel and reap the connection tasks still running after shutdown."""
    tasks = asyncio.all_tasks(loop)
    for task in tasks:
        task.cancel()
    if tasks:
        loop.run_until_complete(asyncio.gather(*tasks, return_exceptions=True))
    loop.run_until_complete(loop.shutdown_asyncgens())


def _track_datagram_endpoints(loop: asyncio.AbstractEventLoop) -> list[asyncio.BaseTransport]:
    """Record the datagram transports made on ``loop`` (the list returned),
    so that they can be closed when the server stops."""
    made: list[asyncio.BaseTransport] = []
    create = loop.create_datagram_endpoint

    async def tracked(*args: Any, **kwargs: Any) -> Any:
        transport, protocol = await create(*args, **kwargs)
        made.append(transport)
        return transport, protocol

    loop.create_datagram_endpoint = tracked  # type: ignore[method-assign]
    return made


class DemoServers:
    """Hypercorn on two loopback ports, cleartext and TLS (TCP, and UDP for
    HTTP/3 on the TLS port number), in a thread.

    Use as a context manager::

        with DemoServers() as servers:
            webwire.get(servers.http_url + "/get")
            webwire.get(servers.https_url + "/get", verify=servers.ca_path)

    Attributes:
        http_url: ``"http://127.0.0.1:PORT"`` of the cleartext listener
            (HTTP/1.1, and h2c with prior knowledge).
        https_url: ``"https://127.0.0.1:PORT"`` of the TLS listener (HTTP/2
            or HTTP/1.1 by ALPN; its certificate is valid for ``127.0.0.1``
            and ``localhost``), and of HTTP/3 on UDP port ``PORT``.
        h3_port: The UDP port of HTTP/3 (the TLS listener's port number).
        wt_url: ``"https://127.0.0.1:PORT"`` of the WebTransport server
            (aioquic, draft-ietf-webtrans-http3-02, its own UDP port; see
            :mod:`webwire.cli._demo_wt_server`).
        ca_path: Path of a PEM file holding the demo CA certificate.
    """

    def __init__(self) -> None:
        self.http_url = ""
        self.https_url = ""
        self.h3_port = 0
        self.wt_url = ""
        self.ca_path = ""
        self._certs = ("", "")
        self._tmp: tempfile.TemporaryDirectory[str] | None = None
        self._thread: threading.Thread | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._stop: asyncio.Event | None = None
        self._ready = threading.Event()
        self._error: BaseException | None = None

    def _write_certificates(self, directory: Path) -> tuple[str, str]:
        import trustme

        ca = trustme.CA()
        server_cert = ca.issue_cert("127.0.0.1", "localhost")
        ca_file = directory / "demo-ca.pem"
        cert_file = directory / "demo-server.pem"
        key_file = directory / "demo-server.key"
        ca.cert_pem.write_to_path(str(ca_file))
        server_cert.private_key_pem.write_to_path(str(key_file))
        for index, pem in enumerate(server_cert.cert_chain_pems):
            pem.write_to_path(str(cert_file), append=index > 0)
        self.ca_path = str(ca_file)
        return str(cert_file), str(key_file)

    def start(self) -> None:
        """Start both listeners and wait until the server is up.

        Raises:
            RuntimeError: The server thread failed to start within 10 seconds
                (the cause is chained).
        """
        from hypercorn.config import Config

        self._tmp = tempfile.TemporaryDirectory(prefix="webwire-demo-")
        certfile, keyfile = self._write_certificates(Path(self._tmp.name))
        self._certs = (certfile, keyfile)
        (secure, quic), plain = _tls_and_quic_sockets(), _listening_socket()
        try:
            config = Config()
            config.certfile, config.keyfile = certfile, keyfile
            config.alpn_protocols = ["h2", "http/1.1"]
            config.errorlog = None
            config.accesslog = None
            config.graceful_timeout = 1.0
            config.bind = [f"fd://{os.dup(secure.fileno())}"]
            config.insecure_bind = [f"fd://{os.dup(plain.fileno())}"]
            config.quic_bind = [f"fd://{os.dup(quic.fileno())}"]
            self.https_url = f"https://127.0.0.1:{secure.getsockname()[1]}"
            self.h3_port = quic.getsockname()[1]
            self.http_url = f"http://127.0.0.1:{plain.getsockname()[1]}"
        finally:
            secure.close()
            quic.close()
            plain.close()
        self._thread = threading.Thread(
            target=self._run, args=(config,), name="webwire-demo-server", daemon=True
        )
        self._thread.start()
        if not self._ready.wait(_START_TIMEOUT) or self._error is not None:
            self.stop()
            raise RuntimeError("the demo server did not start") from self._error

    def _run(self, config: Any) -> None:
        loop = asyncio.new_event_loop()
        loop.set_exception_handler(_quiet_cancellation)
        self._loop = loop
        datagram = _track_datagram_endpoints(loop)
        try:
            loop.run_until_complete(self._serve(config))
        except BaseException as exc:
            self._error = exc
        finally:
            self._ready.set()
            _cancel_leftovers(loop)
            for transport in datagram:  # hypercorn leaves its QUIC socket open
                transport.close()
            loop.run_until_complete(asyncio.sleep(0))
            loop.close()

    async def _serve(self, config: Any) -> None:
        from hypercorn.asyncio import serve

        from ._demo_wt_server import start_webtransport_server

        self._stop = asyncio.Event()
        wt_server, wt_port = await start_webtransport_server(*self._certs)
        self.wt_url = f"https://127.0.0.1:{wt_port}"

        async def started(scope: Any, receive: Any, send: Any) -> None:
            if scope["type"] == "lifespan":
                self._ready.set()
            await app(scope, receive, send)

        try:
            await serve(started, config, shutdown_trigger=self._stop.wait)
        finally:
            wt_server.close()

    def stop(self) -> None:
        """Shut the listeners down and remove the temporary certificates.

        Idempotent; waits up to 10 seconds for the server thread to end.
        """
        loop, stop, thread = self._loop, self._stop, self._thread
        if loop is not None and stop is not None and thread is not None and thread.is_alive():
            try:
                loop.call_soon_threadsafe(stop.set)
            except RuntimeError:
                pass
        if thread is not None:
            thread.join(_STOP_TIMEOUT)
        self._thread = None
        if self._tmp is not None:
            self._tmp.cleanup()
            self._tmp = None

    def __enter__(self) -> DemoServers:
        self.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()
