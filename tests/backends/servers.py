"""Small blocking TCP/TLS servers run in threads, for the backend tests.

Each accepted connection is served by its own thread calling a handler
``handler(conn, stop)``; ``stop`` is set when the server shuts down, and
handlers poll it so that every thread ends and every socket is closed when
the ``with`` block exits.
"""

from __future__ import annotations

import os
import select
import socket
import ssl
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from types import TracebackType

import trustme

Handler = Callable[[socket.socket, threading.Event], None]

POLL = 0.02


@dataclass
class TLSMaterial:
    """A trusted CA with its server and client contexts, plus a server
    context whose certificate comes from another, untrusted CA."""

    ca: trustme.CA
    server_context: ssl.SSLContext
    client_context: ssl.SSLContext
    untrusted_server_context: ssl.SSLContext
    alpn: list[str] = field(default_factory=lambda: ["h2", "http/1.1"])


def make_tls_material() -> TLSMaterial:
    ca = trustme.CA()
    other_ca = trustme.CA()
    alpn = ["h2", "http/1.1"]

    server = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ca.issue_cert("127.0.0.1", "localhost").configure_cert(server)
    server.set_alpn_protocols(alpn)

    untrusted = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    other_ca.issue_cert("127.0.0.1", "localhost").configure_cert(untrusted)

    client = ssl.create_default_context()
    ca.configure_trust(client)
    client.set_alpn_protocols(alpn)
    return TLSMaterial(ca, server, client, untrusted, alpn)


class ThreadServer:
    """A listening socket on 127.0.0.1 (random port) served by threads.

    Args:
        handler: Called once per accepted connection, in its own thread.
        tls: Server TLS context; the handshake runs before ``handler``.
        recv_buffer: SO_RCVBUF for accepted sockets (bytes), to make a
            server that does not read fill up quickly.
        host: Loopback address to listen on (``"127.0.0.1"`` or ``"::1"``).
        port: Port to listen on (0: any free port).
        unix: Listen on a Unix domain socket at this path instead of TCP.
    """

    def __init__(
        self,
        handler: Handler,
        *,
        tls: ssl.SSLContext | None = None,
        recv_buffer: int | None = None,
        host: str = "127.0.0.1",
        port: int = 0,
        unix: str | None = None,
    ) -> None:
        self.handler = handler
        self.tls = tls
        self.stop = threading.Event()
        if unix is not None:
            self.listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        else:
            family = socket.AF_INET6 if ":" in host else socket.AF_INET
            self.listener = socket.socket(family, socket.SOCK_STREAM)
        if recv_buffer is not None:
            self.listener.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, recv_buffer)
        self.listener.bind(unix if unix is not None else (host, port))
        self.listener.listen(16)
        self.port: int = 0 if unix is not None else self.listener.getsockname()[1]
        self.threads: list[threading.Thread] = []
        self.errors: list[BaseException] = []
        self._acceptor = threading.Thread(target=self._accept_loop, daemon=True)

    def __enter__(self) -> ThreadServer:
        self._acceptor.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop.set()
        self._acceptor.join(5)
        self.listener.close()
        for thread in self.threads:
            thread.join(5)
        alive = [t for t in [self._acceptor, *self.threads] if t.is_alive()]
        assert not alive, f"server threads did not stop: {alive}"

    def _accept_loop(self) -> None:
        while not self.stop.is_set():
            readable, _, _ = select.select([self.listener], [], [], POLL)
            if not readable:
                continue
            conn, _ = self.listener.accept()
            thread = threading.Thread(target=self._serve, args=(conn,), daemon=True)
            self.threads.append(thread)
            thread.start()

    def _serve(self, conn: socket.socket) -> None:
        try:
            if self.tls is not None:
                conn.settimeout(5)
                conn = self.tls.wrap_socket(conn, server_side=True)
            conn.settimeout(POLL)
            self.handler(conn, self.stop)
        except (OSError, ValueError) as exc:
            self.errors.append(exc)
        finally:
            conn.close()


def recv_some(conn: socket.socket, stop: threading.Event, size: int = 65536) -> bytes:
    """Receive up to ``size`` bytes, polling ``stop``; ``b""`` at EOF or stop."""
    while not stop.is_set():
        try:
            return conn.recv(size)
        except TimeoutError:
            continue
    return b""


def send_all(conn: socket.socket, data: bytes, stop: threading.Event) -> None:
    """Send ``data`` completely, polling ``stop``."""
    view = memoryview(data)
    while view and not stop.is_set():
        try:
            sent = conn.send(view)
        except TimeoutError:
            continue
        view = view[sent:]


def echo(conn: socket.socket, stop: threading.Event) -> None:
    """Send back everything received, until EOF."""
    while True:
        data = recv_some(conn, stop)
        if not data:
            return
        send_all(conn, data, stop)


def delayed_echo(delay: float) -> Handler:
    """A handler that sends each received piece back after ``delay``
    seconds."""

    def handler(conn: socket.socket, stop: threading.Event) -> None:
        while True:
            data = recv_some(conn, stop)
            if not data or stop.wait(delay):
                return
            send_all(conn, data, stop)

    return handler


def close_at_once(conn: socket.socket, stop: threading.Event) -> None:
    """Close the connection as soon as it is accepted."""


def silent(conn: socket.socket, stop: threading.Event) -> None:
    """Hold the connection open, never reading and never sending."""
    stop.wait()


def reset(conn: socket.socket, stop: threading.Event) -> None:
    """Wait for the first bytes, then close with SO_LINGER 0 so the peer
    receives a TCP RST."""
    recv_some(conn, stop)
    conn.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, b"\x01\x00\x00\x00\x00\x00\x00\x00")


def answer_then_reset(
    reply: bytes, answered: threading.Event | None = None, delay: float = 0.05
) -> Handler:
    """A handler that reads the first bytes, sends ``reply`` without reading
    anything more, waits ``delay`` seconds (so the reply is in the peer's
    receive queue), then closes with SO_LINGER 0 (the peer, still sending,
    receives a TCP RST) and sets ``answered``: an early final response to an
    upload followed by an immediate close (RFC 9112 section 9.6)."""

    def handler(conn: socket.socket, stop: threading.Event) -> None:
        recv_some(conn, stop)
        send_all(conn, reply, stop)
        stop.wait(delay)
        conn.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, b"\x01\x00\x00\x00\x00\x00\x00\x00")
        conn.close()
        if answered is not None:
            answered.set()

    return handler


def sender(payload: bytes) -> Handler:
    """A handler that sends ``payload`` and then holds the connection open
    until the peer closes."""

    def handler(conn: socket.socket, stop: threading.Event) -> None:
        send_all(conn, payload, stop)
        while recv_some(conn, stop):
            pass

    return handler


def send_and_close(payload: bytes) -> Handler:
    """A handler that sends ``payload`` and closes at once (over TLS: no
    close_notify, as many HTTPS servers do)."""

    def handler(conn: socket.socket, stop: threading.Event) -> None:
        send_all(conn, payload, stop)

    return handler


def close_when(event: threading.Event) -> Handler:
    """A handler that closes the connection once ``event`` is set."""

    def handler(conn: socket.socket, stop: threading.Event) -> None:
        while not (event.wait(POLL) or stop.is_set()):
            pass

    return handler


def slow_reader(expected: int, chunk: int = 65536, pause: float = 0.001) -> Handler:
    """A handler that reads ``expected`` bytes in small steps with pauses,
    then replies with the byte count as ASCII digits."""

    def handler(conn: socket.socket, stop: threading.Event) -> None:
        received = 0
        while received < expected:
            data = recv_some(conn, stop, chunk)
            if not data:
                return
            received += len(data)
            time.sleep(pause)
        send_all(conn, str(received).encode(), stop)
        while recv_some(conn, stop):
            pass

    return handler


def count_until_eof(conn: socket.socket, stop: threading.Event) -> None:
    """Read until the peer half-closes, then reply ``b"got N"`` (N bytes
    received) and close."""
    received = 0
    while True:
        data = recv_some(conn, stop)
        if not data:
            break
        received += len(data)
    if not stop.is_set():
        send_all(conn, f"got {received}".encode(), stop)


class Blackhole:
    """A listening socket whose accept queue is full, so the kernel drops
    every further SYN: a connect to it hangs, like a connect to an address
    that never answers, but only on loopback.

    Args:
        host: Loopback address (``"127.0.0.1"`` or ``"::1"``).
        port: Port to listen on (0: any free port).
    """

    def __init__(self, host: str, port: int = 0) -> None:
        family = socket.AF_INET6 if ":" in host else socket.AF_INET
        self.listener = socket.socket(family, socket.SOCK_STREAM)
        self.listener.bind((host, port))
        self.listener.listen(0)
        self.port: int = self.listener.getsockname()[1]
        self.fillers: list[socket.socket] = []
        for _ in range(3):
            filler = socket.socket(family, socket.SOCK_STREAM)
            filler.setblocking(False)
            filler.connect_ex((host, self.port))
            self.fillers.append(filler)
        time.sleep(0.05)

    def __enter__(self) -> Blackhole:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def close(self) -> None:
        for sock in [*self.fillers, self.listener]:
            sock.close()


class UDPEchoServer:
    """A UDP socket on a loopback address, served by a thread that sends
    every datagram back to its sender (``b"quit"`` excepted: it is
    dropped).

    Args:
        host: ``"127.0.0.1"`` or ``"::1"``.
    """

    def __init__(self, host: str = "127.0.0.1") -> None:
        family = socket.AF_INET6 if ":" in host else socket.AF_INET
        self.sock = socket.socket(family, socket.SOCK_DGRAM)
        self.sock.bind((host, 0))
        self.host = host
        self.port: int = self.sock.getsockname()[1]
        self.received: list[bytes] = []
        self.stop = threading.Event()
        self._thread = threading.Thread(target=self._serve, daemon=True)

    def __enter__(self) -> UDPEchoServer:
        self._thread.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.stop.set()
        self._thread.join(5)
        self.sock.close()
        assert not self._thread.is_alive()

    def _serve(self) -> None:
        while not self.stop.is_set():
            readable, _, _ = select.select([self.sock], [], [], POLL)
            if not readable:
                continue
            data, addr = self.sock.recvfrom(65536)
            self.received.append(data)
            if data != b"quit":
                self.sock.sendto(data, addr)


def open_fds() -> int:
    """How many file descriptors this process has open."""
    return len(os.listdir("/proc/self/fd"))


_OTHER_SOCKET_TABLES = ("udp", "udp6", "unix", "netlink", "raw", "raw6")


def _table_rows(name: str) -> list[list[str]]:
    try:
        with open(f"/proc/net/{name}") as table:
            return [line.split() for line in table.readlines()[1:]]
    except OSError:
        return []


def race_sockets(port: int) -> frozenset[str]:
    """The inodes of this process's sockets that a connection to ``port``
    may have left: TCP sockets whose local or remote port is ``port``, and
    sockets listed in no table (an attempt that failed or never connected).

    Sockets of other tests' servers and clients (TCP on other ports, UDP,
    Unix) are not counted, so background threads cannot change the count.
    """
    ours: set[str] = set()
    for fd in os.listdir("/proc/self/fd"):
        try:
            link = os.readlink(f"/proc/self/fd/{fd}")
        except OSError:
            continue
        if link.startswith("socket:["):
            ours.add(link[8:-1])
    elsewhere: set[str] = set()
    related: set[str] = set()
    for name in ("tcp", "tcp6"):
        for row in _table_rows(name):
            local, remote, inode = row[1], row[2], row[9]
            ports = {int(local.rsplit(":", 1)[1], 16), int(remote.rsplit(":", 1)[1], 16)}
            (related if port in ports else elsewhere).add(inode)
    for name in _OTHER_SOCKET_TABLES:
        for row in _table_rows(name):
            index = 6 if name == "unix" else 9
            if len(row) > index:
                elsewhere.add(row[index])
    return frozenset(inode for inode in ours if inode in related or inode not in elsewhere)


def closed_port() -> int:
    """A loopback port with nothing listening on it."""
    probe = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    probe.bind(("127.0.0.1", 0))
    port: int = probe.getsockname()[1]
    probe.close()
    return port
