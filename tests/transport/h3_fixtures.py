"""HTTP/3 servers for the HTTP/3 transport tests, on 127.0.0.1.

* :func:`start_hypercorn`: hypercorn serving ``tests/integration/app.py``
  over HTTP/3 (``quic_bind``, aioquic inside) on a UDP socket bound here
  (port 0), with TCP on a socket of its own.
* :func:`start_aioquic`: a small aioquic HTTP/3 server written here, for
  what hypercorn cannot be asked to do: session tickets (TLS resumption), a
  short idle timeout, ``SETTINGS_ENABLE_CONNECT_PROTOCOL`` and an extended
  CONNECT echo, request counters. Routes: ``GET /bytes/{n}`` (``n`` bytes of
  a pattern), ``POST /echo`` (the body back), ``POST /count`` (the body's
  length as text, without buffering it), ``GET /status/{code}``,
  ``GET /delay/{seconds}``, ``GET /trailers`` (a body and a trailer
  section), ``GET /reset`` (the stream reset with ``H3_INTERNAL_ERROR``
  after the head), ``GET /goaway`` (GOAWAY, then a 200), and an extended
  CONNECT with ``:protocol echo`` (200, then every DATA payload sent back).
  ``/bytes/{n}`` sends :func:`pattern_bytes`, as the integration app does.

Each server runs on its own asyncio loop in a daemon thread.
"""

from __future__ import annotations

import asyncio
import os
import socket
import subprocess
import sys
import threading
from collections.abc import Callable, Coroutine
from dataclasses import dataclass, field
from typing import Any

import trustme

from integration.app import pattern_bytes  # the pattern of hypercorn's /bytes/{n}

MiB = 1024 * 1024



__all__ = [
    "ServerInfo",
    "TLSFiles",
    "make_tls_files",
    "pattern_bytes",
    "start_aioquic",
    "start_hypercorn",
]


@dataclass
class TLSFiles:
    """A trustme CA and a server certificate for 127.0.0.1/localhost."""

    ca_path: str
    cert_path: str
    key_path: str
    other_ca_path: str


def make_tls_files(directory: str) -> TLSFiles:
    """Write a CA, a server certificate and an unrelated CA to ``directory``."""
    ca = trustme.CA()
    cert = ca.issue_cert("127.0.0.1", "localhost")
    paths = TLSFiles(
        f"{directory}/ca.pem",
        f"{directory}/server.pem",
        f"{directory}/server.key",
        f"{directory}/other-ca.pem",
    )
    ca.cert_pem.write_to_path(paths.ca_path)
    for blob in cert.cert_chain_pems:
        blob.write_to_path(paths.cert_path, append=True)
    cert.private_key_pem.write_to_path(paths.key_path)
    trustme.CA().cert_pem.write_to_path(paths.other_ca_path)
    return paths


@dataclass
class ServerInfo:
    """Where an HTTP/3 test server listens and what it saw.

    Attributes:
        udp_port: The UDP port of HTTP/3.
        ca_path: The CA bundle that signed its certificate.
        stats: Counters kept by the aioquic server (``connections``,
            ``resumed``, ``reset_by_client``).
    """

    udp_port: int
    ca_path: str
    stats: dict[str, int] = field(default_factory=dict)

    @property
    def address(self) -> tuple[str, int]:
        return ("127.0.0.1", self.udp_port)


class _Thread:
    def __init__(self, name: str, main: Callable[[asyncio.Event], Coroutine[Any, Any, None]]):
        self._main = main
        self._ready = threading.Event()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._stop: asyncio.Event | None = None
        self._error: BaseException | None = None
        self._thread = threading.Thread(target=self._run, name=name, daemon=True)

    def start(self) -> None:
        self._thread.start()
        if not self._ready.wait(10):
            raise RuntimeError("the HTTP/3 test server did not start")
        if self._error is not None:
            raise RuntimeError("the HTTP/3 test server failed") from self._error

    def _run(self) -> None:
        async def main() -> None:
            self._loop = asyncio.get_running_loop()
            self._stop = asyncio.Event()
            await self._main(self._stop)

        try:
            asyncio.run(main())
        except BaseException as exc:
            self._error = exc
            self._ready.set()

    def ready(self) -> None:
        self._ready.set()

    def stop(self) -> None:
        if self._loop is not None and self._stop is not None and self._thread.is_alive():
            try:
                self._loop.call_soon_threadsafe(self._stop.set)
            except RuntimeError:
                pass
        self._thread.join(15)


def _udp_socket() -> socket.socket:
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.bind(("127.0.0.1", 0))
    return sock


_HYPERCORN_MAIN = """
import asyncio, sys
sys.path.insert(0, sys.argv[1])
from hypercorn.asyncio import serve
from hypercorn.config import Config
from integration.app import app

async def main():
    config = Config()
    config.bind = [f"fd://{sys.argv[2]}"]
    config.quic_bind = [f"fd://{sys.argv[3]}"]
    config.certfile, config.keyfile = sys.argv[4], sys.argv[5]
    config.graceful_timeout = 1.0
    config.keep_alive_max_requests = 1_000_000
    config.accesslog = None
    config.errorlog = None
    stop = asyncio.Event()
    asyncio.get_running_loop().add_reader(sys.stdin.fileno(), stop.set)
    print("ready", flush=True)
    await serve(app, config, shutdown_trigger=stop.wait)

asyncio.run(main())
"""


def start_hypercorn(tls: TLSFiles) -> tuple[ServerInfo, Callable[[], None]]:
    """hypercorn serving the integration app over HTTP/3, in a process of
    its own (it leaves its QUIC socket open when it stops), on sockets
    bound here. Returns the server's info and a function that stops it."""
    udp = _udp_socket()
    tcp = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    tcp.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    tcp.bind(("127.0.0.1", 0))
    tcp.listen(64)
    info = ServerInfo(udp.getsockname()[1], tls.ca_path)
    tests_dir = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    process = subprocess.Popen(
        [
            sys.executable,
            "-c",
            _HYPERCORN_MAIN,
            tests_dir,
            str(tcp.fileno()),
            str(udp.fileno()),
            tls.cert_path,
            tls.key_path,
        ],
        pass_fds=(tcp.fileno(), udp.fileno()),
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
    )
    tcp.close()
    udp.close()
    assert process.stdout is not None
    if process.stdout.readline().strip() != b"ready":
        process.kill()
        process.wait()
        raise RuntimeError("hypercorn did not start")

    def stop() -> None:
        assert process.stdin is not None and process.stdout is not None
        process.stdin.close()
        try:
            process.wait(15)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
        process.stdout.close()

    return info, stop


def start_aioquic(
    tls: TLSFiles, *, idle_timeout: float = 60.0, connect_protocol: bool = True
) -> tuple[ServerInfo, Callable[[], None]]:
    """The aioquic server of this module (see the module documentation)."""
    from aioquic.asyncio import QuicConnectionProtocol, serve
    from aioquic.h3.connection import H3_ALPN, H3Connection
    from aioquic.h3.events import DataReceived, H3Event, HeadersReceived
    from aioquic.quic.configuration import QuicConfiguration
    from aioquic.quic.events import (
        HandshakeCompleted,
        ProtocolNegotiated,
        QuicEvent,
        StopSendingReceived,
        StreamReset,
    )

    udp = _udp_socket()
    port = udp.getsockname()[1]
    udp.close()
    info = ServerInfo(port, tls.ca_path, {"connections": 0, "resumed": 0, "reset_by_client": 0})
    tickets: dict[bytes, Any] = {}

    class _H3(H3Connection):
        def _get_local_settings(self) -> dict[int, int]:
            settings: dict[int, int] = super()._get_local_settings()
            if connect_protocol:
                settings[0x8] = 1
            return settings

    class Protocol(QuicConnectionProtocol):
        def __init__(self, *args: Any, **kwargs: Any) -> None:
            super().__init__(*args, **kwargs)
            self.h3: H3Connection | None = None
            self.bodies: dict[int, bytearray] = {}
            self.heads: dict[int, dict[bytes, bytes]] = {}
            self.counts: dict[int, int] = {}

        def quic_event_received(self, event: QuicEvent) -> None:
            if isinstance(event, ProtocolNegotiated):
                self.h3 = _H3(self._quic)
                info.stats["connections"] += 1
            elif isinstance(event, HandshakeCompleted) and event.session_resumed:
                info.stats["resumed"] += 1
            if isinstance(event, StopSendingReceived | StreamReset):
                info.stats["reset_by_client"] += 1
            if self.h3 is not None:
                for h3_event in self.h3.handle_event(event):
                    self.h3_event(h3_event)

        def send(self, stream_id: int, status: int, body: bytes = b"", end: bool = True) -> None:
            assert self.h3 is not None
            self.h3.send_headers(
                stream_id,
                [(b":status", str(status).encode()), (b"content-length", str(len(body)).encode())]
                if end
                else [(b":status", str(status).encode())],
            )
            if end:
                self.h3.send_data(stream_id, body, end_stream=True)
            self.transmit()

        def h3_event(self, event: H3Event) -> None:
            if isinstance(event, HeadersReceived):
                head = dict(event.headers)
                self.heads[event.stream_id] = head
                self.bodies[event.stream_id] = bytearray()
                self.counts[event.stream_id] = 0
                if head.get(b":method") == b"CONNECT":
                    if head.get(b":protocol") == b"echo":
                        self.send(event.stream_id, 200, end=False)
                    else:
                        self.send(event.stream_id, 501)
                    return
                if event.stream_ended:
                    self.route(event.stream_id)
            elif isinstance(event, DataReceived):
                head = self.heads.get(event.stream_id, {})
                if head.get(b":method") == b"CONNECT":
                    assert self.h3 is not None
                    if event.data or event.stream_ended:
                        self.h3.send_data(event.stream_id, event.data, event.stream_ended)
                        self.transmit()
                    return
                if head.get(b":path") == b"/count":
                    self.counts[event.stream_id] += len(event.data)
                else:
                    self.bodies[event.stream_id] += event.data
                if event.stream_ended:
                    self.route(event.stream_id)

        def route(self, stream_id: int) -> None:
            assert self.h3 is not None
            path = self.heads[stream_id].get(b":path", b"/").decode()
            if path.startswith("/bytes/"):
                self.stream_bytes(stream_id, int(path[7:]))
            elif path == "/echo":
                self.send(stream_id, 200, bytes(self.bodies.pop(stream_id)))
            elif path == "/count":
                self.send(stream_id, 200, str(self.counts[stream_id]).encode())
            elif path.startswith("/status/"):
                self.send(stream_id, int(path[8:]))
            elif path.startswith("/delay/"):
                asyncio.get_running_loop().call_later(
                    float(path[7:]), self.send, stream_id, 200, b"late"
                )
            elif path == "/trailers":
                self.h3.send_headers(stream_id, [(b":status", b"200")])
                self.h3.send_data(stream_id, b"body", end_stream=False)
                self.h3.send_headers(stream_id, [(b"x-checksum", b"abc")], end_stream=True)
                self.transmit()
            elif path == "/reset":
                self.h3.send_headers(stream_id, [(b":status", b"200")])
                self.h3.send_data(stream_id, b"partial", end_stream=False)
                self.transmit()
                self._quic.reset_stream(stream_id, 0x102)
                self.transmit()
            elif path == "/goaway":
                self.h3.send_headers(stream_id, [(b":status", b"200")])
                self.h3.send_data(stream_id, b"bye", end_stream=True)
                control = self.h3._local_control_stream_id
                assert control is not None
                # GOAWAY (type 0x7) with the next request stream id: nothing
                # after this request will be processed.
                goaway_id = stream_id + 4
                self._quic.send_stream_data(control, bytes([0x07, 0x01, goaway_id]))
                self.transmit()
            else:
                self.send(stream_id, 404)

        def stream_bytes(self, stream_id: int, n: int) -> None:
            assert self.h3 is not None
            self.h3.send_headers(
                stream_id, [(b":status", b"200"), (b"content-length", str(n).encode())]
            )
            data = pattern_bytes(min(n, 1 * MiB))
            sent = 0
            while sent < n:
                piece = min(len(data), n - sent)
                sent += piece
                self.h3.send_data(stream_id, data[:piece], end_stream=sent == n)
            if n == 0:
                self.h3.send_data(stream_id, b"", end_stream=True)
            self.transmit()

    configuration = QuicConfiguration(
        is_client=False, alpn_protocols=H3_ALPN, idle_timeout=idle_timeout
    )
    configuration.load_cert_chain(tls.cert_path, tls.key_path)
    thread: _Thread

    async def main(stop: asyncio.Event) -> None:
        server = await serve(
            "127.0.0.1",
            port,
            configuration=configuration,
            create_protocol=Protocol,
            session_ticket_fetcher=tickets.pop,
            session_ticket_handler=lambda ticket: tickets.__setitem__(ticket.ticket, ticket),
        )
        thread.ready()
        try:
            await stop.wait()
        finally:
            server.close()

    thread = _Thread("aioquic-h3", main)
    thread.start()
    return info, thread.stop
