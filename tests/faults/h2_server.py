"""Scripted HTTP/2 servers for fault tests: h2's server side over plain
sockets in threads (cleartext, prior knowledge, RFC 9113 section 3.3).

A test writes a handler ``handler(peer)`` that reads requests with
:meth:`Peer.next_request` and answers however it likes: normal responses,
RST_STREAM, GOAWAY mid-load, a tiny stream limit.
"""

from __future__ import annotations

import socket
import threading
from collections.abc import Callable
from types import TracebackType

import h2.config
import h2.connection
import h2.events
import h2.exceptions
import h2.settings
from scripted_server import Connection, ScriptedServer

__all__ = ["H2Server", "Peer"]


class Peer:
    """One accepted HTTP/2 connection as a handler sees it.

    Attributes:
        conn: h2's server-side connection.
        index: 0 for the first connection of the server, 1 for the next...
        stop: Set when the server shuts down.
        bodies: Request body bytes received per stream so far.
    """

    def __init__(self, sock: socket.socket, index: int, stop: threading.Event, **settings: int):
        self.sock = sock
        self.index = index
        self.stop = stop
        config = h2.config.H2Configuration(client_side=False, header_encoding=None)
        self.conn = h2.connection.H2Connection(config=config)
        self.conn.initiate_connection()
        if settings:
            self.conn.update_settings(
                {getattr(h2.settings.SettingCodes, k.upper()): v for k, v in settings.items()}
            )
        self.flush()
        self.bodies: dict[int, bytes] = {}
        self.ended: set[int] = set()
        self._pending: list[tuple[int, dict[bytes, bytes]]] = []

    def flush(self) -> None:
        data = self.conn.data_to_send()
        if data:
            self.sock.sendall(data)

    def pump(self) -> bool:
        """Receive once and handle the events; ``False`` when the client
        closed."""
        try:
            data = self.sock.recv(65536)
        except OSError:
            return False
        if not data:
            return False
        try:
            events = self.conn.receive_data(data)
        except h2.exceptions.ProtocolError:
            return False
        for event in events:
            if isinstance(event, h2.events.RequestReceived):
                assert event.stream_id is not None
                self._pending.append((event.stream_id, dict(event.headers or [])))
                self.bodies[event.stream_id] = b""
                if event.stream_ended is not None:
                    self.ended.add(event.stream_id)
            elif isinstance(event, h2.events.DataReceived):
                assert event.stream_id is not None
                self.bodies[event.stream_id] = self.bodies.get(event.stream_id, b"") + (
                    event.data or b""
                )
                self.conn.acknowledge_received_data(
                    event.flow_controlled_length or 0, event.stream_id
                )
                if event.stream_ended is not None:
                    self.ended.add(event.stream_id)
            elif isinstance(event, h2.events.StreamEnded):
                assert event.stream_id is not None
                self.ended.add(event.stream_id)
        self.flush()
        return True

    def next_request(self) -> tuple[int, dict[bytes, bytes]] | None:
        """The next request's stream id and header fields (pseudo-headers
        included), or ``None`` when the client closed."""
        while not self._pending:
            if not self.pump():
                return None
        return self._pending.pop(0)

    def respond(self, stream_id: int, status: int = 200, body: bytes = b"") -> None:
        """Send a complete response (flow control permitting, small bodies)."""
        self.conn.send_headers(
            stream_id,
            [(b":status", str(status).encode()), (b"content-length", str(len(body)).encode())],
            end_stream=not body,
        )
        if body:
            self.conn.send_data(stream_id, body, end_stream=True)
        self.flush()

    def serve_forever(self) -> None:
        """Answer every further request with 200 and its path as the body."""
        while True:
            request = self.next_request()
            if request is None:
                return
            stream_id, fields = request
            self.respond(stream_id, 200, fields[b":path"])


Handler = Callable[[Peer], None]


class H2Server(ScriptedServer):
    """Cleartext HTTP/2 server on 127.0.0.1 (random port): a
    :class:`ScriptedServer` whose connections read the client preface and
    run ``handler`` on a :class:`Peer`.

    An exception a handler raises (an assertion, say) other than the client
    going away is re-raised when the ``with`` block exits.

    Args:
        handler: Called with each accepted connection's :class:`Peer`.
        settings: SETTINGS sent to clients (``max_concurrent_streams=2``).

    Attributes:
        connections: Connections accepted so far.
        closed: Connections whose handler has returned.
    """

    def __init__(self, handler: Handler, **settings: int) -> None:
        super().__init__(self._run)
        self.handler = handler
        self.settings = settings
        self.closed = 0
        self.errors: list[BaseException] = []

    @property
    def connections(self) -> int:
        return self.accepted

    def __enter__(self) -> H2Server:
        super().__enter__()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        super().__exit__(exc_type, exc, tb)
        if self.errors and exc is None:
            raise self.errors[0]

    def _run(self, conn: Connection) -> None:
        sock = conn.sock
        try:
            preface = b""
            while len(preface) < 24:
                data = sock.recv(24 - len(preface))
                if not data:
                    return
                preface += data
            peer = Peer(sock, conn.index, conn.stop, **self.settings)
            assert not peer.conn.receive_data(preface)
            self.handler(peer)
        except (OSError, h2.exceptions.ProtocolError):
            pass
        except BaseException as exc:
            self.errors.append(exc)
        finally:
            try:
                sock.close()
            except OSError:
                pass
            self.closed += 1
