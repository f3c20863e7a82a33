"""Misbehaving HTTP/1.1 servers for fault tests: plain sockets and threads.

A :class:`ScriptedServer` listens on 127.0.0.1 (port 0) and runs a test's
handler for every accepted connection in its own thread. Handlers write
whatever bytes the test wants; network errors in handlers (the client went
away) are swallowed, and every socket and thread is cleaned up on exit.
"""

from __future__ import annotations

import socket
import struct
import threading
from collections.abc import Callable
from types import TracebackType

__all__ = ["Connection", "ScriptedServer", "reset", "response"]


class Connection:
    """One accepted connection, as a handler sees it.

    Attributes:
        sock: The connected socket (blocking, 10 s timeout).
        index: 0 for the first connection of the server, 1 for the next, ...
        stop: Set when the server shuts down; wait on it instead of sleeping.
        requests: Requests read on this connection so far.
    """

    def __init__(self, sock: socket.socket, index: int, stop: threading.Event) -> None:
        self.sock = sock
        self.index = index
        self.stop = stop
        self.requests = 0
        self._buffer = b""

    def read_request(self) -> bytes:
        """Read one request (head and Content-Length or chunked body).

        Returns:
            The raw request, or ``b""`` when the client closed first.
        """
        while b"\r\n\r\n" not in self._buffer:
            data = self.sock.recv(65536)
            if not data:
                return b""
            self._buffer += data
        head, _, rest = self._buffer.partition(b"\r\n\r\n")
        lower = head.lower()
        body_length = 0
        for line in lower.split(b"\r\n")[1:]:
            name, _, value = line.partition(b":")
            if name.strip() == b"content-length":
                body_length = int(value.strip())
        if b"transfer-encoding: chunked" in lower:
            while b"\r\n0\r\n\r\n" not in b"\r\n" + rest:
                data = self.sock.recv(65536)
                if not data:
                    return b""
                rest += data
            end = (b"\r\n" + rest).index(b"\r\n0\r\n\r\n") + 5
            body, self._buffer = rest[:end], rest[end:]
        else:
            while len(rest) < body_length:
                data = self.sock.recv(65536)
                if not data:
                    return b""
                rest += data
            body, self._buffer = rest[:body_length], rest[body_length:]
        self.requests += 1
        return head + b"\r\n\r\n" + body

    def send(self, data: bytes) -> None:
        """Send all of ``data``."""
        self.sock.sendall(data)

    def drip(self, data: bytes, interval: float) -> None:
        """Send ``data`` one byte at a time, ``interval`` seconds apart, until
        done, the client goes away or the server stops."""
        for i in range(len(data)):
            if self.stop.wait(interval):
                return
            self.sock.sendall(data[i : i + 1])


Handler = Callable[[Connection], None]


def reset(conn: Connection) -> None:
    """Close with a TCP reset (RST) instead of a FIN: SO_LINGER with 0 s."""
    conn.sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    conn.sock.close()


class ScriptedServer:
    """A listening socket whose connections are handled by ``handler``.

    Use as a context manager; ``url`` is ``http://127.0.0.1:PORT``.
    The handler's connection is closed (FIN) when it returns.

    Attributes:
        accepted: Number of connections accepted so far.
    """

    def __init__(self, handler: Handler) -> None:
        self._handler = handler
        self._listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self._listener.bind(("127.0.0.1", 0))
        self._listener.listen(64)
        self._listener.settimeout(0.05)
        self.port: int = self._listener.getsockname()[1]
        self.url = f"http://127.0.0.1:{self.port}"
        self.accepted = 0
        self._stop = threading.Event()
        self._lock = threading.Lock()
        self._sockets: list[socket.socket] = []
        self._threads: list[threading.Thread] = []
        self._acceptor = threading.Thread(target=self._accept_loop, daemon=True)

    def __enter__(self) -> ScriptedServer:
        self._acceptor.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def _accept_loop(self) -> None:
        while not self._stop.is_set():
            try:
                sock, _ = self._listener.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            sock.settimeout(10.0)
            with self._lock:
                if self._stop.is_set():
                    sock.close()
                    return
                index = self.accepted
                self.accepted += 1
                self._sockets.append(sock)
                thread = threading.Thread(target=self._serve, args=(sock, index), daemon=True)
                self._threads.append(thread)
            thread.start()

    def _serve(self, sock: socket.socket, index: int) -> None:
        try:
            self._handler(Connection(sock, index, self._stop))
        except OSError:
            pass
        finally:
            sock.close()

    def close(self) -> None:
        """Stop accepting, unblock and join every handler, close sockets."""
        self._stop.set()
        self._acceptor.join(5.0)
        self._listener.close()
        with self._lock:
            sockets, threads = list(self._sockets), list(self._threads)
        for sock in sockets:
            try:
                sock.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
        for thread in threads:
            thread.join(5.0)
        for sock in sockets:
            sock.close()


def response(
    body: bytes = b"", status: bytes = b"200 OK", headers: tuple[bytes, ...] = ()
) -> bytes:
    """A complete response with Content-Length."""
    head = [b"HTTP/1.1 " + status, b"Content-Length: " + str(len(body)).encode(), *headers]
    return b"\r\n".join(head) + b"\r\n\r\n" + body
