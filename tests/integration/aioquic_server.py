"""An HTTP/3 test server on aioquic, with WebSocket over HTTP/3 (RFC 9220).

:class:`AioquicH3Server` runs aioquic's asyncio ``serve()`` and its
``H3Connection`` on 127.0.0.1 (UDP port 0) in a thread with its own loop:

* Every request that is not an extended CONNECT goes to the ASGI app of
  ``app.py`` through a small HTTP/3 -> ASGI bridge, so the routes are the ones
  the TCP servers answer (``/echo``, ``/json``, ``/bytes/{n}``,
  ``/stream/{n}``, ``/status/{code}``, ``/headers``, ``/delay/{seconds}``,
  ``/slow-body``, ``/stall``, redirects, cookies, ...). ``scope["http_version"]``
  is ``"3"``; ``:authority`` is given to the app as ``Host``.
* Every response carries ``Alt-Svc: h3=":PORT"; ma=3600`` (RFC 7838).
* SETTINGS carry ``SETTINGS_ENABLE_CONNECT_PROTOCOL = 1`` (aioquic always
  sends it); an extended CONNECT with ``:protocol websocket`` (RFC 9220
  section 3) and ``Sec-WebSocket-Version: 13`` is answered 200 and the
  stream's DATA then carries WebSocket frames (RFC 6455 section 5), run by
  ``websockets.protocol.Protocol`` (server side, state OPEN): messages are
  echoed, pings answered, a close answered and the stream ended.
  ``/ws/close/{code}`` (optionally ``/ws/close/{code}/{reason}``) closes at
  once with that code; ``/ws/reject`` answers 403 instead of 200; another
  ``:protocol`` is answered 501, a plain CONNECT 405.
* The QUIC idle timeout (RFC 9000 section 10.1) is configurable.
* Session tickets are kept, so a client can resume (and send 0-RTT data,
  RFC 9001 section 4.6); :attr:`AioquicH3Server.stats` counts the QUIC
  connections accepted, the handshakes completed, the resumed sessions and
  the accepted 0-RTT data.
"""

from __future__ import annotations

import asyncio
import contextlib
import re
import threading
from collections.abc import Awaitable, Callable, MutableMapping
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import unquote

from aioquic.asyncio.protocol import QuicConnectionProtocol
from aioquic.asyncio.server import QuicServer, serve
from aioquic.buffer import encode_uint_var
from aioquic.h3.connection import H3_ALPN, ErrorCode, FrameType, H3Connection, encode_frame
from aioquic.h3.events import DataReceived, H3Event, HeadersReceived
from aioquic.h3.exceptions import H3Error
from aioquic.quic.configuration import QuicConfiguration
from aioquic.quic.connection import Limit, QuicConnection
from aioquic.quic.events import (
    ConnectionTerminated,
    HandshakeCompleted,
    ProtocolNegotiated,
    QuicEvent,
    StopSendingReceived,
    StreamReset,
)
from aioquic.tls import SessionTicket
from websockets.frames import Frame, Opcode
from websockets.protocol import OPEN, Protocol, Side

__all__ = ["AioquicH3Server", "ServerStats"]

Message = MutableMapping[str, Any]
ASGIApp = Callable[
    [Message, Callable[[], Awaitable[Message]], Callable[[Message], Awaitable[None]]],
    Awaitable[None],
]

# Response body bytes a stream may have queued but unacknowledged before the
# app's ``send`` waits: keeps a large download from sitting in memory.
_SEND_HIGH_WATER = 1024 * 1024
_WS_CLOSE_PATH = re.compile(r"^/ws/close/(\d+)(?:/(.*))?$")


@dataclass
class ServerStats:
    """Counters of one :class:`AioquicH3Server` (read from any thread).

    Attributes:
        connections: QUIC connections accepted (an Initial packet with a new
            connection ID that the server took up).
        handshakes: Handshakes completed.
        resumed: Handshakes that resumed a TLS session with a ticket this
            server issued (RFC 8446 section 2.2).
        early_data: Handshakes whose 0-RTT data was accepted.
        requests: Request streams started (HTTP and WebSocket).
        websockets: Extended CONNECTs answered 200.
        cancelled: Requests the client cancelled (RESET_STREAM or
            STOP_SENDING) before their response was complete.
    """

    connections: int = 0
    handshakes: int = 0
    resumed: int = 0
    early_data: int = 0
    requests: int = 0
    websockets: int = 0
    cancelled: int = 0
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False, compare=False)

    def add(self, name: str, amount: int = 1) -> None:
        """Add ``amount`` to the counter ``name``."""
        with self._lock:
            setattr(self, name, getattr(self, name) + amount)

    def snapshot(self) -> dict[str, int]:
        """The counters as a dict, read together."""
        with self._lock:
            return {
                "connections": self.connections,
                "handshakes": self.handshakes,
                "resumed": self.resumed,
                "early_data": self.early_data,
                "requests": self.requests,
                "websockets": self.websockets,
                "cancelled": self.cancelled,
            }


class _RequestHandler:
    """Runs one request stream through the ASGI app."""

    def __init__(
        self,
        protocol: _H3ServerProtocol,
        stream_id: int,
        scope: Message,
    ) -> None:
        self.protocol = protocol
        self.stream_id = stream_id
        self.scope = scope
        self.queue: asyncio.Queue[Message] = asyncio.Queue()
        self._status: int | None = None
        self._headers: list[tuple[bytes, bytes]] = []
        self._head_sent = False
        self._ended = False
        self.disconnected = False

    def receive_data(self, data: bytes, end_stream: bool) -> None:
        self.queue.put_nowait({"type": "http.request", "body": data, "more_body": not end_stream})

    def disconnect(self) -> None:
        if not self.disconnected:
            self.disconnected = True
            self.queue.put_nowait({"type": "http.disconnect"})

    async def receive(self) -> Message:
        return await self.queue.get()

    async def send(self, message: Message) -> None:
        if self.disconnected or self._ended:
            return
        kind = message["type"]
        if kind == "http.response.start":
            self._status = int(message["status"])
            self._headers = [(bytes(k).lower(), bytes(v)) for k, v in message.get("headers", [])]
            return
        if kind != "http.response.body":
            return
        if self._status is None:
            raise RuntimeError("http.response.body before http.response.start")
        more = bool(message.get("more_body", False))
        body = bytes(message.get("body", b""))
        if not self._head_sent:
            self._head_sent = True
            self.protocol.send_head(self.stream_id, self._status, self._headers)
        if body or not more:
            self.protocol.send_body(self.stream_id, body, end_stream=not more)
        if not more:
            self._ended = True
        else:
            await self.protocol.wait_writable(self.stream_id)

    async def run(self, app: ASGIApp) -> None:
        try:
            await app(self.scope, self.receive, self.send)
        except Exception:
            if self.disconnected:
                return
            if not self._head_sent:
                self.protocol.send_head(self.stream_id, 500, [])
                self.protocol.send_body(self.stream_id, b"server error", end_stream=True)
            else:
                self.protocol.reset(self.stream_id, ErrorCode.H3_INTERNAL_ERROR)
            return
        if not self._ended and not self.disconnected:
            # The app returned without finishing its response.
            if not self._head_sent:
                self.protocol.send_head(self.stream_id, self._status or 500, self._headers)
            self.protocol.send_body(self.stream_id, b"", end_stream=True)


class _EchoProtocol(Protocol):
    """websockets' sans-I/O protocol that echoes each data frame as it is parsed.

    Echoing in :meth:`recv_frame` keeps the order of the peer's frames: a
    message followed at once by a Close is echoed before the Close is
    answered (RFC 6455 section 5.5.1: no data after a Close).
    """

    def recv_frame(self, frame: Frame) -> None:
        super().recv_frame(frame)
        if self.state is not OPEN:
            return
        if frame.opcode is Opcode.TEXT:
            self.send_text(frame.data, fin=frame.fin)
        elif frame.opcode is Opcode.BINARY:
            self.send_binary(frame.data, fin=frame.fin)
        elif frame.opcode is Opcode.CONT:
            self.send_continuation(frame.data, fin=frame.fin)


class _WebSocketHandler:
    """The WebSocket of one extended CONNECT stream (RFC 9220 section 3)."""

    def __init__(self, protocol: _H3ServerProtocol, stream_id: int) -> None:
        self.protocol = protocol
        self.stream_id = stream_id
        self.ws = _EchoProtocol(Side.SERVER, state=OPEN, max_size=16 * 1024 * 1024)
        self._ended = False

    def close_now(self, code: int, reason: str) -> None:
        self.ws.send_close(code, reason)
        self.flush()

    def receive_data(self, data: bytes, end_stream: bool) -> None:
        if data:
            self.ws.receive_data(data)
        if end_stream:
            self.ws.receive_eof()
        self.ws.events_received()  # echoed as parsed: see _EchoProtocol
        self.flush()

    def flush(self) -> None:
        for chunk in self.ws.data_to_send():
            if self._ended:
                return
            if chunk:
                self.protocol.send_body(self.stream_id, chunk, end_stream=False)
            else:
                self._ended = True
                self.protocol.send_body(self.stream_id, b"", end_stream=True)

    def disconnect(self) -> None:
        self._ended = True


class _H3ServerProtocol(QuicConnectionProtocol):
    """One QUIC connection of :class:`AioquicH3Server`."""

    def __init__(self, *args: Any, owner: AioquicH3Server, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.owner = owner
        self.h3: H3Connection | None = None
        self.handlers: dict[int, _RequestHandler | _WebSocketHandler] = {}
        self.tasks: set[asyncio.Task[None]] = set()
        self._writable = asyncio.Event()
        self.highest_stream_id = -4
        self.goaway_id: int | None = None
        owner.stats.add("connections")
        owner.protocols.add(self)

    # -- QUIC events ----------------------------------------------------------

    def datagram_received(self, data: bytes | str, addr: Any) -> None:
        super().datagram_received(data, addr)  # type: ignore[arg-type]
        # A datagram of ACK frames alone frees send buffers without raising
        # any QUIC event: senders waiting for room look again after every
        # datagram, not only after events.
        self._writable.set()

    def quic_event_received(self, event: QuicEvent) -> None:
        if isinstance(event, ProtocolNegotiated):
            if event.alpn_protocol in H3_ALPN and self.h3 is None:
                self.h3 = H3Connection(self._quic)
        elif isinstance(event, HandshakeCompleted):
            self.owner.stats.add("handshakes")
            if event.session_resumed:
                self.owner.stats.add("resumed")
            if event.early_data_accepted:
                self.owner.stats.add("early_data")
        elif isinstance(event, (StreamReset, StopSendingReceived)):
            # RESET_STREAM or STOP_SENDING (RFC 9000 section 3.5): the client
            # cancelled the request; the app sees http.disconnect.
            handler = self.handlers.pop(event.stream_id, None)
            if handler is not None:
                self.owner.stats.add("cancelled")
                handler.disconnect()
        elif isinstance(event, ConnectionTerminated):
            for handler in self.handlers.values():
                handler.disconnect()
            self.handlers.clear()
            self.owner.protocols.discard(self)
        # Acknowledgements free send buffers: let waiting senders look again.
        self._writable.set()
        if self.h3 is None:
            return
        try:
            h3_events = self.h3.handle_event(event)
        except H3Error:
            return
        for h3_event in h3_events:
            self._h3_event(h3_event)

    def _h3_event(self, event: H3Event) -> None:
        if isinstance(event, HeadersReceived):
            if event.stream_id in self.handlers:
                return  # trailers: ignored
            self._start(event.stream_id, event.headers, event.stream_ended)
        elif isinstance(event, DataReceived):
            handler = self.handlers.get(event.stream_id)
            if handler is not None:
                handler.receive_data(event.data, event.stream_ended)
                self.transmit()

    def _start(self, stream_id: int, headers: list[tuple[bytes, bytes]], ended: bool) -> None:
        if self.goaway_id is not None and stream_id >= self.goaway_id:
            # Not processed (RFC 9114 section 5.2): the client may retry it.
            self.reset(stream_id, ErrorCode.H3_REQUEST_REJECTED)
            return
        self.highest_stream_id = max(self.highest_stream_id, stream_id)
        self.owner.stats.add("requests")
        pseudo: dict[bytes, bytes] = {}
        fields: list[tuple[bytes, bytes]] = []
        for name, value in headers:
            if name.startswith(b":"):
                pseudo[name] = value
            else:
                fields.append((name, value))
        method = pseudo.get(b":method", b"GET")
        authority = pseudo.get(b":authority", b"")
        if method == b"CONNECT":
            self._connect(stream_id, pseudo, fields)
            return
        raw_path = pseudo.get(b":path", b"/")
        path_part, _, query = raw_path.partition(b"?")
        if not any(name == b"host" for name, _ in fields) and authority:
            fields.insert(0, (b"host", authority))
        addr = self._peer_address()
        scope: Message = {
            "type": "http",
            "asgi": {"version": "3.0", "spec_version": "2.3"},
            "http_version": "3",
            "method": method.decode("ascii"),
            "scheme": pseudo.get(b":scheme", b"https").decode("ascii"),
            "path": unquote(path_part.decode("latin-1")),
            "raw_path": path_part,
            "query_string": query,
            "root_path": "",
            "headers": fields,
            "client": addr,
            "server": ("127.0.0.1", self.owner.port),
            "extensions": {},
        }
        handler = _RequestHandler(self, stream_id, scope)
        self.handlers[stream_id] = handler
        if ended:
            handler.receive_data(b"", True)
        task = asyncio.ensure_future(self._run(handler))
        self.tasks.add(task)
        task.add_done_callback(self.tasks.discard)

    async def _run(self, handler: _RequestHandler) -> None:
        try:
            await handler.run(self.owner.app)
        finally:
            if self.handlers.get(handler.stream_id) is handler:
                del self.handlers[handler.stream_id]
            self.transmit()

    def _connect(
        self, stream_id: int, pseudo: dict[bytes, bytes], fields: list[tuple[bytes, bytes]]
    ) -> None:
        protocol = pseudo.get(b":protocol")
        if protocol is None:
            self._reply(stream_id, 405, b"plain CONNECT is not served here")
            return
        if protocol != b"websocket":
            self._reply(stream_id, 501, b"unknown :protocol")
            return
        values = dict(fields)
        if values.get(b"sec-websocket-version") != b"13":
            self._reply(stream_id, 400, b"Sec-WebSocket-Version: 13 expected")
            return
        path = pseudo.get(b":path", b"/").partition(b"?")[0].decode("latin-1")
        if path == "/ws/reject":
            self._reply(stream_id, 403, b"rejected")
            return
        head: list[tuple[bytes, bytes]] = []
        offered = values.get(b"sec-websocket-protocol")
        if offered:
            head.append((b"sec-websocket-protocol", offered.split(b",")[0].strip()))
        handler = _WebSocketHandler(self, stream_id)
        self.handlers[stream_id] = handler
        self.owner.stats.add("websockets")
        self.send_head(stream_id, 200, head)
        match = _WS_CLOSE_PATH.match(path)
        if match is not None:
            handler.close_now(int(match.group(1)), unquote(match.group(2) or ""))
        self.transmit()

    def _reply(self, stream_id: int, status: int, body: bytes) -> None:
        headers = [(b"content-type", b"text/plain"), (b"content-length", str(len(body)).encode())]
        self.send_head(stream_id, status, headers)
        self.send_body(stream_id, body, end_stream=True)
        self.transmit()

    def _peer_address(self) -> tuple[str, int] | None:
        paths = getattr(self._quic, "_network_paths", None)
        if paths:
            addr = paths[0].addr
            return (str(addr[0]), int(addr[1]))
        return None

    # -- sending ----------------------------------------------------------------

    def send_head(self, stream_id: int, status: int, headers: list[tuple[bytes, bytes]]) -> None:
        if self.h3 is None:
            return
        alt_svc = f'h3=":{self.owner.port}"; ma=3600'.encode()
        head = [
            (b":status", str(status).encode()),
            (b"server", b"aioquic-test"),
            (b"alt-svc", alt_svc),
            *headers,
        ]
        try:
            self.h3.send_headers(stream_id, head, end_stream=False)
        except (H3Error, AssertionError, ValueError):
            return
        self.transmit()

    def send_body(self, stream_id: int, data: bytes, *, end_stream: bool) -> None:
        if self.h3 is None:
            return
        try:
            self.h3.send_data(stream_id, data, end_stream)
        except (H3Error, AssertionError, ValueError):
            return
        self.transmit()

    def reset(self, stream_id: int, code: int) -> None:
        with contextlib.suppress(AssertionError, ValueError):
            self._quic.reset_stream(stream_id, code)
        self.transmit()

    def _unsent(self, stream_id: int) -> int:
        stream = getattr(self._quic, "_streams", {}).get(stream_id)
        if stream is None:
            return 0
        return len(stream.sender._buffer)

    async def wait_writable(self, stream_id: int) -> None:
        """Wait while more than the high-water mark is queued on the stream."""
        while self._unsent(stream_id) > _SEND_HIGH_WATER:
            handler = self.handlers.get(stream_id)
            if handler is None or (isinstance(handler, _RequestHandler) and handler.disconnected):
                return
            self._writable.clear()
            await self._writable.wait()

    def send_goaway(self, stream_id: int | None) -> None:
        """Send GOAWAY (RFC 9114 section 5.2) on the control stream:
        requests on ``stream_id`` and above are refused (default: every
        stream after the highest one seen)."""
        if self.h3 is None or self.h3._local_control_stream_id is None:
            return
        if stream_id is None:
            stream_id = self.highest_stream_id + 4
        self.goaway_id = stream_id
        frame = encode_frame(FrameType.GOAWAY, encode_uint_var(stream_id))
        self._quic.send_stream_data(self.h3._local_control_stream_id, frame)
        self.transmit()

    def abort(self) -> None:
        for task in self.tasks:
            task.cancel()
        self.close()


class AioquicH3Server:
    """An HTTP/3 server on aioquic in its own thread (see the module docstring).

    Args:
        cert_path: PEM certificate chain of the server.
        key_path: PEM private key.
        idle_timeout: QUIC idle timeout in seconds (RFC 9000 section 10.1).
        app: The ASGI app for non-CONNECT requests (default ``app.app``).
        retry: Validate client addresses with a Retry packet first
            (RFC 9000 section 8.1.2).
        max_streams: Bidirectional streams a client may have open at once
            (``initial_max_streams_bidi``, raised again as streams end,
            RFC 9000 section 4.6).
        name: Label used in errors.

    Attributes:
        port: The UDP port (set by :meth:`start`).
        stats: :class:`ServerStats` counters.
    """

    def __init__(
        self,
        cert_path: str,
        key_path: str,
        *,
        idle_timeout: float = 60.0,
        app: ASGIApp | None = None,
        retry: bool = False,
        max_streams: int = 128,
        name: str = "aioquic-h3",
    ) -> None:
        if app is None:
            from app import app as default_app

            app = default_app
        self.app: ASGIApp = app
        self.name = name
        self.idle_timeout = idle_timeout
        self.stats = ServerStats()
        self.port = 0
        self.protocols: set[_H3ServerProtocol] = set()
        self._cert_path = cert_path
        self._key_path = key_path
        self._retry = retry
        self.max_streams = max_streams
        self._tickets: dict[bytes, SessionTicket] = {}
        self._loop: asyncio.AbstractEventLoop | None = None
        self._stop: asyncio.Event | None = None
        self._ready = threading.Event()
        self._error: BaseException | None = None
        self._thread = threading.Thread(target=self._run, name=f"server-{name}", daemon=True)

    def start(self) -> None:
        """Start the thread and wait until the UDP socket is bound.

        Raises:
            RuntimeError: The server did not start within 10 seconds, or
                failed to.
        """
        self._thread.start()
        if not self._ready.wait(10.0):
            raise RuntimeError(f"{self.name} did not start")
        if self._error is not None:
            raise RuntimeError(f"{self.name} failed to start") from self._error

    def stop(self) -> None:
        """Close every connection, the socket, and wait for the thread.

        Raises:
            RuntimeError: The thread did not end within 15 seconds, or the
                server loop crashed.
        """
        loop, stop = self._loop, self._stop
        if loop is not None and stop is not None and self._thread.is_alive():
            with contextlib.suppress(RuntimeError):
                loop.call_soon_threadsafe(stop.set)
        self._thread.join(15.0)
        if self._thread.is_alive():
            raise RuntimeError(f"{self.name} did not shut down")
        if self._error is not None:
            raise RuntimeError(f"{self.name} crashed") from self._error

    def call_soon(self, callback: Callable[[], object]) -> None:
        """Run ``callback`` on the server's loop (from any thread)."""
        if self._loop is None:
            raise RuntimeError(f"{self.name} is not running")
        self._loop.call_soon_threadsafe(callback)

    def close_connections(self, error_code: int = 0, reason: str = "") -> None:
        """Close every QUIC connection (CONNECTION_CLOSE, RFC 9000 section 10.2)."""

        def close_all() -> None:
            for protocol in list(self.protocols):
                protocol.close(error_code=error_code, reason_phrase=reason)

        self.call_soon(close_all)

    def send_goaway(self, stream_id: int | None = None) -> None:
        """Send GOAWAY on every connection (RFC 9114 section 5.2).

        Args:
            stream_id: First request stream ID that is not processed
                (default: the one after the highest seen on each
                connection); later requests are reset with
                H3_REQUEST_REJECTED.
        """

        def goaway_all() -> None:
            for protocol in list(self.protocols):
                protocol.send_goaway(stream_id)

        self.call_soon(goaway_all)

    def _run(self) -> None:
        try:
            asyncio.run(self._main())
        except BaseException as exc:  # reported by start() or stop()
            self._error = exc
            self._ready.set()

    def _configuration(self) -> QuicConfiguration:
        configuration = QuicConfiguration(
            alpn_protocols=H3_ALPN,
            is_client=False,
            idle_timeout=self.idle_timeout,
            max_datagram_frame_size=65536,
        )
        configuration.load_cert_chain(self._cert_path, self._key_path)
        return configuration

    def _create_protocol(self, quic: QuicConnection, **kwargs: Any) -> _H3ServerProtocol:
        if self.max_streams != 128:
            # aioquic has no configuration setting for it; the transport
            # parameters are built from this limit during the handshake.
            quic._local_max_streams_bidi = Limit(
                frame_type=quic._local_max_streams_bidi.frame_type,
                name="max_streams_bidi",
                value=self.max_streams,
            )
        return _H3ServerProtocol(quic, owner=self, **kwargs)

    def _store_ticket(self, ticket: SessionTicket) -> None:
        self._tickets[ticket.ticket] = ticket

    def _fetch_ticket(self, label: bytes) -> SessionTicket | None:
        return self._tickets.get(label)

    async def _main(self) -> None:
        self._loop = asyncio.get_running_loop()
        self._stop = asyncio.Event()
        server: QuicServer = await serve(
            "127.0.0.1",
            0,
            configuration=self._configuration(),
            create_protocol=self._create_protocol,
            session_ticket_fetcher=self._fetch_ticket,
            session_ticket_handler=self._store_ticket,
            retry=self._retry,
        )
        transport = server._transport
        assert transport is not None
        self.port = int(transport.get_extra_info("sockname")[1])
        self._ready.set()
        try:
            await self._stop.wait()
        finally:
            for protocol in list(self.protocols):
                protocol.abort()
            # Let the CONNECTION_CLOSE frames leave before the socket closes.
            await asyncio.sleep(0.05)
            server.close()
            tasks = [t for p in self.protocols for t in p.tasks]
            if tasks:
                await asyncio.gather(*tasks, return_exceptions=True)
