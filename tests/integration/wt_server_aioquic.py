"""A WebTransport echo server over aioquic, draft-ietf-webtrans-http3-02.

The server speaks the draft-02 dialect of WebTransport over HTTP/3 through
aioquic's low-level ``H3Connection(enable_webtransport=True)``: the server
advertises ``SETTINGS_ENABLE_WEBTRANSPORT`` (0x2b603742) and
``SETTINGS_H3_DATAGRAM`` (0x33, RFC 9297) and accepts extended CONNECT
requests with ``:protocol = webtransport`` (RFC 9220 section 3).

Routes (the ``:path`` of the CONNECT request; the query string is ignored
unless a route names a parameter):

``/echo``
    Every client-initiated bidirectional stream is echoed on itself (the
    server ends its side when the client ends its side). Every client
    unidirectional stream is echoed on a new server unidirectional stream.
    Every datagram is echoed on the session (RFC 9297 quarter-stream-id
    prefix, as aioquic encodes it).
``/close?code=N&reason=TEXT&delay=SECONDS``
    The server closes the session with a CLOSE_WEBTRANSPORT_SESSION capsule
    (type 0x2843: 32-bit code, UTF-8 reason) and ends the CONNECT stream,
    ``delay`` seconds (default 0) after accepting it. Defaults: code
    :data:`CLOSE_CODE`, reason :data:`CLOSE_REASON`.
``/drain``
    Like ``/echo``, but the server first sends a DRAIN_WEBTRANSPORT_SESSION
    capsule (type 0x78ae).
``/server-streams?count=N``
    The server opens ``N`` (default 1) bidirectional streams and ``N``
    unidirectional streams. On each bidirectional stream it sends
    :data:`SERVER_BIDI_PAYLOAD` and then echoes what the client sends on
    it, ending its side when the client ends. On each unidirectional stream
    it sends :data:`SERVER_UNI_PAYLOAD` and ends the stream. Datagrams are
    echoed.
``/reset?code=N``
    On the first data of every client stream the server resets its sending
    side (RESET_STREAM) and asks the client to stop sending
    (STOP_SENDING), both with WebTransport application error code ``N``
    (default :data:`RESET_CODE`) mapped into the HTTP/3 error space.
``/count``
    A WebTransport session on which the server opens one unidirectional
    stream carrying the JSON object of :meth:`WebTransportServer.counts`.
    A plain HTTP/3 ``GET /count`` answers the same JSON.

Any other path is refused with ``404``. The server records every session
(path, request headers, how it ended) in :attr:`WebTransportServer.sessions`.

The server runs in a thread with its own asyncio loop (:class:`WebTransportServer`,
``start()``/``stop()``/``restart()`` on the same port), or as a script
printing its port on standard output when ready::

    python wt_server_aioquic.py --cert server.pem --key server.key [--port 0]
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import socket
import sys
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qs, urlsplit

from aioquic.asyncio import QuicConnectionProtocol, serve
from aioquic.asyncio.server import QuicServer
from aioquic.buffer import Buffer, BufferReadError, encode_uint_var
from aioquic.h3.connection import FrameType, H3Connection, H3Stream
from aioquic.h3.events import (
    DatagramReceived,
    DataReceived,
    H3Event,
    HeadersReceived,
    WebTransportStreamDataReceived,
)
from aioquic.quic.configuration import QuicConfiguration
from aioquic.quic.connection import stream_is_unidirectional
from aioquic.quic.events import (
    ConnectionTerminated,
    ProtocolNegotiated,
    QuicEvent,
    StreamReset,
)

__all__ = [
    "CLOSE_CODE",
    "CLOSE_REASON",
    "CLOSE_WEBTRANSPORT_SESSION",
    "DRAIN_WEBTRANSPORT_SESSION",
    "RESET_CODE",
    "SERVER_BIDI_PAYLOAD",
    "SERVER_UNI_PAYLOAD",
    "WEBTRANSPORT_SESSION_GONE",
    "SessionRecord",
    "WebTransportServer",
    "encode_capsule",
    "parse_capsules",
    "webtransport_code_to_http",
]

CLOSE_WEBTRANSPORT_SESSION = 0x2843
DRAIN_WEBTRANSPORT_SESSION = 0x78AE
#: HTTP/3 error code for the streams of a session that has ended.
WEBTRANSPORT_SESSION_GONE = 0x170D7B68
#: First HTTP/3 error code of the range that carries WebTransport codes.
_APP_ERROR_FIRST = 0x52E4A40FA8DB

CLOSE_CODE = 4242
CLOSE_REASON = "closed by the server"
RESET_CODE = 7
SERVER_BIDI_PAYLOAD = b"bidirectional stream opened by the server\n"
SERVER_UNI_PAYLOAD = b"unidirectional stream opened by the server\n"

ROUTES = ("/echo", "/close", "/drain", "/server-streams", "/reset", "/count")


def webtransport_code_to_http(code: int) -> int:
    """Map a WebTransport application error code (0 to 2**32 - 1) to the HTTP/3 error code
    carried by RESET_STREAM and STOP_SENDING: ``first + code + code // 0x1e``, which skips
    the reserved (greased) codepoints of RFC 9114 section 8.1."""
    return _APP_ERROR_FIRST + code + code // 0x1E


def encode_capsule(capsule_type: int, payload: bytes) -> bytes:
    """One capsule (RFC 9297 section 3.2): type, length, payload."""
    return encode_uint_var(capsule_type) + encode_uint_var(len(payload)) + payload


def parse_capsules(buffer: bytearray) -> list[tuple[int, bytes]]:
    """Take the complete capsules off the front of ``buffer`` (a partial one stays)."""
    capsules: list[tuple[int, bytes]] = []
    while buffer:
        buf = Buffer(data=bytes(buffer))
        try:
            capsule_type = buf.pull_uint_var()
            length = buf.pull_uint_var()
        except BufferReadError:
            break
        start = buf.tell()
        if len(buffer) < start + length:
            break
        capsules.append((capsule_type, bytes(buffer[start : start + length])))
        del buffer[: start + length]
    return capsules


@dataclass
class SessionRecord:
    """What the server saw of one WebTransport session.

    Attributes:
        session_id: The CONNECT stream's id.
        path: The ``:path`` of the CONNECT request (with its query string).
        headers: The request header fields, names and values as text.
        accepted: Whether the server answered ``200``.
        closed: Whether the session has ended.
        close_code: The application error code of the client's
            CLOSE_WEBTRANSPORT_SESSION capsule, or of the server's own for
            ``/close``; ``None`` when the session ended without one.
        close_reason: The reason of that capsule.
        closed_by: ``"client"``, ``"server"``, ``"connection"`` (the QUIC
            connection ended first) or ``None`` while open.
        streams: Streams of this session seen or opened by the server.
        datagrams: Datagrams received on this session.
    """

    session_id: int
    path: str
    headers: dict[str, str]
    accepted: bool = False
    closed: bool = False
    close_code: int | None = None
    close_reason: str | None = None
    closed_by: str | None = None
    streams: int = 0
    datagrams: int = 0


@dataclass
class _Session:
    record: SessionRecord
    route: str
    query: dict[str, str]
    capsule_buffer: bytearray = field(default_factory=bytearray)
    # client uni stream id -> server uni stream id (echo)
    uni_echo: dict[int, int] = field(default_factory=dict)
    streams: set[int] = field(default_factory=set)
    reset_done: set[int] = field(default_factory=set)


#: Current-draft SETTINGS added by ``any_draft`` servers: SETTINGS_WT_MAX_SESSIONS (drafts
#: 07 to 12), SETTINGS_WT_ENABLED (draft 13 on) and the session flow-control limits
#: (WT_INITIAL_MAX_DATA, WT_INITIAL_MAX_STREAMS_UNI, WT_INITIAL_MAX_STREAMS_BIDI), set so
#: high that this server never needs to send flow-control capsules.
ANY_DRAFT_SETTINGS = {
    0x14E9CD29: 100,
    0x2C7CF000: 1,
    0x2B61: 1 << 50,
    0x2B64: 1 << 30,
    0x2B65: 1 << 30,
}


class _AnyDraftH3Connection(H3Connection):
    """aioquic's draft-02 connection that also advertises the later drafts' SETTINGS."""

    def _get_local_settings(self) -> dict[int, int]:
        settings = super()._get_local_settings()
        settings.update(ANY_DRAFT_SETTINGS)
        return settings


class _WebTransportProtocol(QuicConnectionProtocol):
    """One QUIC connection: HTTP/3 with WebTransport draft-02 sessions."""

    def __init__(self, *args: Any, server: WebTransportServer, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._server = server
        self._http: H3Connection | None = None
        self._sessions: dict[int, _Session] = {}
        self._stream_session: dict[int, int] = {}

    # -- events ------------------------------------------------------------

    def quic_event_received(self, event: QuicEvent) -> None:
        if isinstance(event, ProtocolNegotiated):
            if self._server.any_draft:
                self._http = _AnyDraftH3Connection(self._quic, enable_webtransport=True)
            else:
                self._http = H3Connection(self._quic, enable_webtransport=True)
        if isinstance(event, StreamReset):
            self._stream_reset(event.stream_id)
        if isinstance(event, ConnectionTerminated):
            self._connection_gone()
        if self._http is not None:
            for h3_event in self._http.handle_event(event):
                self._h3_event(h3_event)
        self.transmit()

    def _h3_event(self, event: H3Event) -> None:
        if isinstance(event, HeadersReceived):
            self._headers(event)
        elif isinstance(event, DataReceived):
            self._connect_data(event)
        elif isinstance(event, WebTransportStreamDataReceived):
            self._stream_data(event)
        elif isinstance(event, DatagramReceived):
            session = self._sessions.get(event.stream_id)
            if session is not None and not session.record.closed:
                session.record.datagrams += 1
                if session.route in ("/echo", "/drain", "/server-streams"):
                    assert self._http is not None
                    self._http.send_datagram(event.stream_id, event.data)

    def _headers(self, event: HeadersReceived) -> None:
        assert self._http is not None
        headers = {k.decode("latin-1"): v.decode("latin-1") for k, v in event.headers}
        method = headers.get(":method")
        raw_path = headers.get(":path", "/")
        split = urlsplit(raw_path)
        route = split.path
        query = {k: v[-1] for k, v in parse_qs(split.query).items()}
        if method == "CONNECT" and headers.get(":protocol") in self._server.connect_protocols:
            record = SessionRecord(session_id=event.stream_id, path=raw_path, headers=headers)
            self._server._record(record)
            status = self._check_request(route, headers)
            if status != 200:
                self._http.send_headers(
                    event.stream_id, [(b":status", str(status).encode())], end_stream=True
                )
                record.closed = True
                return
            record.accepted = True
            session = _Session(record=record, route=route, query=query)
            self._sessions[event.stream_id] = session
            response = [(b":status", b"200")]
            if headers.get(":protocol") == "webtransport":
                response.append((b"sec-webtransport-http3-draft", b"draft02"))
            self._http.send_headers(event.stream_id, response)
            self._start_route(session)
        elif method == "GET" and route == "/count":
            body = json.dumps(self._server.counts()).encode()
            self._http.send_headers(
                event.stream_id,
                [
                    (b":status", b"200"),
                    (b"content-type", b"application/json"),
                    (b"content-length", str(len(body)).encode()),
                ],
            )
            self._http.send_data(event.stream_id, body, end_stream=True)
        else:
            self._other_request(event.stream_id, headers)

    def _other_request(self, stream_id: int, headers: dict[str, str]) -> None:
        """Answer a request that is neither a WebTransport CONNECT nor ``GET /count``."""
        assert self._http is not None
        self._http.send_headers(stream_id, [(b":status", b"404")], end_stream=True)

    def _other_data(self, event: DataReceived) -> None:
        """Request body bytes on a stream that is not a WebTransport session's."""

    def _check_request(self, route: str, headers: dict[str, str]) -> int:
        """The status to answer a WebTransport CONNECT for ``route`` with (200 accepts)."""
        return 200 if route in self._server.routes else 404

    def _start_route(self, session: _Session) -> None:
        assert self._http is not None
        session_id = session.record.session_id
        if session.route == "/close":
            delay = float(session.query.get("delay", "0"))
            if delay > 0:
                self._loop.call_later(delay, self._server_close, session)
            else:
                self._server_close(session)
        elif session.route == "/drain":
            self._http.send_data(
                session_id, encode_capsule(DRAIN_WEBTRANSPORT_SESSION, b""), end_stream=False
            )
        elif session.route == "/server-streams":
            for _ in range(int(session.query.get("count", "1"))):
                bidi = self._open_stream(session, unidirectional=False)
                self._quic.send_stream_data(bidi, SERVER_BIDI_PAYLOAD)
                uni = self._open_stream(session, unidirectional=True)
                self._quic.send_stream_data(uni, SERVER_UNI_PAYLOAD, end_stream=True)
        elif session.route == "/count":
            uni = self._open_stream(session, unidirectional=True)
            self._quic.send_stream_data(
                uni, json.dumps(self._server.counts()).encode(), end_stream=True
            )

    def _open_stream(self, session: _Session, *, unidirectional: bool) -> int:
        assert self._http is not None
        session_id = session.record.session_id
        stream_id = self._http.create_webtransport_stream(
            session_id, is_unidirectional=unidirectional
        )
        if not unidirectional:
            # aioquic does not register a bidirectional stream it opens as a
            # WebTransport stream: without this the peer's bytes on it would
            # be parsed as HTTP/3 frames.
            stream = H3Stream(stream_id)
            stream.frame_type = FrameType.WEBTRANSPORT_STREAM
            stream.session_id = session_id
            self._http._stream[stream_id] = stream
        session.streams.add(stream_id)
        session.record.streams += 1
        self._stream_session[stream_id] = session_id
        return stream_id

    def _stream_data(self, event: WebTransportStreamDataReceived) -> None:
        session = self._sessions.get(event.session_id)
        if session is None or session.record.closed:
            # A stream for an unknown or ended session: refuse it.
            self._abort_stream(event.stream_id, WEBTRANSPORT_SESSION_GONE)
            return
        stream_id = event.stream_id
        if stream_id not in session.streams:
            session.streams.add(stream_id)
            session.record.streams += 1
            self._stream_session[stream_id] = event.session_id
        self._route_stream_data(session, event)

    def _route_stream_data(self, session: _Session, event: WebTransportStreamDataReceived) -> None:
        """Serve bytes that arrived on a stream of ``session`` (by its route)."""
        stream_id = event.stream_id
        if session.route == "/reset":
            if stream_id not in session.reset_done:
                session.reset_done.add(stream_id)
                code = webtransport_code_to_http(int(session.query.get("code", RESET_CODE)))
                self._abort_stream(stream_id, code)
            return
        if session.route not in ("/echo", "/drain", "/server-streams"):
            return
        if stream_is_unidirectional(stream_id):
            echo = session.uni_echo.get(stream_id)
            if echo is None:
                echo = self._open_stream(session, unidirectional=True)
                session.uni_echo[stream_id] = echo
            self._send(echo, event.data, event.stream_ended)
            if event.stream_ended:
                del session.uni_echo[stream_id]
        else:
            self._send(stream_id, event.data, event.stream_ended)

    def _send(self, stream_id: int, data: bytes, end_stream: bool) -> None:
        try:
            self._quic.send_stream_data(stream_id, data, end_stream=end_stream)
        except RuntimeError:
            # The peer sent STOP_SENDING (our side is reset) or we ended it already.
            pass

    def _abort_stream(self, stream_id: int, code: int) -> None:
        """Reset our sending side (if any) and stop the peer's (if any)."""
        ours = not stream_is_unidirectional(stream_id) or (stream_id & 1) == 1
        theirs = not stream_is_unidirectional(stream_id) or (stream_id & 1) == 0
        stream = self._quic._streams.get(stream_id)
        if stream is None:
            return
        if ours:
            # No effect once the stream has been reset or all its data acknowledged.
            self._quic.reset_stream(stream_id, code)
        if theirs and not stream.receiver.is_finished:
            self._quic.stop_stream(stream_id, code)

    def _stream_reset(self, stream_id: int) -> None:
        session = self._sessions.get(stream_id)
        if session is not None and not session.record.closed:
            self._end_session(session, by="client")
        elif session is None:
            self._on_stream_reset(stream_id)

    def _on_stream_reset(self, stream_id: int) -> None:
        """The peer reset a (non-CONNECT) stream."""

    def _connect_data(self, event: DataReceived) -> None:
        session = self._sessions.get(event.stream_id)
        if session is None:
            self._other_data(event)
            return
        session.capsule_buffer.extend(event.data)
        for capsule_type, payload in parse_capsules(session.capsule_buffer):
            if capsule_type == CLOSE_WEBTRANSPORT_SESSION and len(payload) >= 4:
                session.record.close_code = int.from_bytes(payload[:4], "big")
                session.record.close_reason = payload[4:].decode("utf-8", "replace")
                self._end_session(session, by="client")
                return
        if event.stream_ended and not session.record.closed:
            self._end_session(session, by="client")

    # -- session end -------------------------------------------------------

    def _server_close(self, session: _Session) -> None:
        if session.record.closed:
            return
        assert self._http is not None
        code = int(session.query.get("code", CLOSE_CODE))
        reason = session.query.get("reason", CLOSE_REASON)
        session.record.close_code = code
        session.record.close_reason = reason
        payload = code.to_bytes(4, "big") + reason.encode("utf-8")
        self._http.send_data(
            session.record.session_id,
            encode_capsule(CLOSE_WEBTRANSPORT_SESSION, payload),
            end_stream=True,
        )
        self._end_session(session, by="server", fin=False)
        self.transmit()

    def _end_session(self, session: _Session, *, by: str, fin: bool = True) -> None:
        """Mark the session ended, end our side of the CONNECT stream and abort the session's
        streams with WEBTRANSPORT_SESSION_GONE."""
        record = session.record
        record.closed = True
        record.closed_by = by
        session_id = record.session_id
        if fin:
            stream = self._quic._streams.get(session_id)
            sender = stream.sender if stream is not None else None
            if sender is not None and sender._buffer_fin is None and not sender.is_finished:
                try:
                    assert self._http is not None
                    self._http.send_data(session_id, b"", end_stream=True)
                except Exception:  # the stream's send side is gone already
                    pass
        for stream_id in sorted(session.streams):
            self._abort_stream(stream_id, WEBTRANSPORT_SESSION_GONE)
            self._stream_session.pop(stream_id, None)
        session.streams.clear()
        self._on_session_end(session)
        self._server._session_ended(record)

    def _on_session_end(self, session: _Session) -> None:
        """Release what the route holds for ``session``."""

    def _connection_gone(self) -> None:
        for session in self._sessions.values():
            if not session.record.closed:
                session.record.closed = True
                session.record.closed_by = "connection"
                self._on_session_end(session)
                self._server._session_ended(session.record)

    def connection_lost(self, exc: Exception | None) -> None:
        self._connection_gone()
        super().connection_lost(exc)


class WebTransportServer:
    """The WebTransport server of this module, on its own thread and asyncio loop.

    Args:
        cert_path: PEM certificate chain of the server.
        key_path: PEM private key.
        host: Address to bind (UDP).
        port: UDP port; ``0`` picks a free one (known after :meth:`start`).
        any_draft: Also serve clients of later drafts: advertise
            :data:`ANY_DRAFT_SETTINGS` besides draft-02's and accept the
            ``webtransport-h3`` upgrade token. The streams, datagrams and
            capsules this server uses have the same encoding in all of them;
            it ignores flow-control capsules. Off for the tests (draft-02
            only); the benchmark turns it on so that every client can run.

    Attributes:
        port: The UDP port (after :meth:`start`).
        sessions: Every session seen, oldest first (thread-safe to read).
    """

    def __init__(
        self,
        cert_path: str,
        key_path: str,
        *,
        host: str = "127.0.0.1",
        port: int = 0,
        any_draft: bool = False,
    ) -> None:
        self.any_draft = any_draft
        self.connect_protocols = (
            ("webtransport", "webtransport-h3") if any_draft else ("webtransport",)
        )
        self.cert_path = cert_path
        self.key_path = key_path
        self.host = host
        self.port = port
        self.sessions: list[SessionRecord] = []
        self._lock = threading.Lock()
        self._thread: threading.Thread | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._stop: asyncio.Event | None = None
        self._ready = threading.Event()
        self._error: BaseException | None = None
        self._changed = threading.Condition(self._lock)
        self.on_session: Callable[[SessionRecord], None] | None = None

    #: The routes accepted (a subclass adds its own).
    routes: tuple[str, ...] = ROUTES
    #: The protocol class serving each QUIC connection.
    protocol_class: type[_WebTransportProtocol] = _WebTransportProtocol

    def configuration(self) -> QuicConfiguration:
        """The QUIC configuration: ALPN ``h3``, datagrams on, generous flow-control windows."""
        config = QuicConfiguration(
            is_client=False,
            alpn_protocols=["h3"],
            max_datagram_frame_size=65536,
            max_data=32 << 20,
            max_stream_data=16 << 20,
            idle_timeout=60.0,
        )
        config.load_cert_chain(self.cert_path, self.key_path)
        return config

    # -- lifecycle ---------------------------------------------------------

    def start(self) -> None:
        """Start serving (on :attr:`port`, or a free port the first time) and wait until the
        socket is bound.

        Raises:
            RuntimeError: The server did not start within 10 seconds or failed to bind.
        """
        if self._thread is not None:
            raise RuntimeError("the WebTransport server is already running")
        self._ready.clear()
        self._error = None
        self._thread = threading.Thread(target=self._run, name="wt-aioquic", daemon=True)
        self._thread.start()
        if not self._ready.wait(10.0):
            raise RuntimeError("the WebTransport server did not start")
        if self._error is not None:
            self._thread.join(5.0)
            self._thread = None
            raise RuntimeError("the WebTransport server failed to start") from self._error

    def stop(self) -> None:
        """Close every connection and the socket, and wait for the thread to end.

        Raises:
            RuntimeError: The thread did not end within 15 seconds or crashed.
        """
        thread, loop, stop = self._thread, self._loop, self._stop
        if thread is None:
            return
        if loop is not None and stop is not None and thread.is_alive():
            try:
                loop.call_soon_threadsafe(stop.set)
            except RuntimeError:
                pass
        thread.join(15.0)
        self._thread = None
        if thread.is_alive():
            raise RuntimeError("the WebTransport server did not shut down")
        if self._error is not None:
            raise RuntimeError("the WebTransport server crashed") from self._error

    def restart(self) -> None:
        """Stop, then start again on the same port (connections are lost)."""
        self.stop()
        self.start()

    @property
    def is_running(self) -> bool:
        """Whether the server thread runs."""
        return self._thread is not None and self._thread.is_alive()

    def _run(self) -> None:
        try:
            asyncio.run(self._main())
        except BaseException as exc:
            self._error = exc
            self._ready.set()

    async def _main(self) -> None:
        self._loop = asyncio.get_running_loop()
        self._stop = asyncio.Event()
        protocols: list[_WebTransportProtocol] = []

        def create_protocol(*args: Any, **kwargs: Any) -> _WebTransportProtocol:
            protocol = self.protocol_class(*args, server=self, **kwargs)
            protocols.append(protocol)
            return protocol

        server: QuicServer = await serve(
            self.host,
            self.port,
            configuration=self.configuration(),
            create_protocol=create_protocol,
        )
        transport = server._transport
        assert transport is not None
        self.port = transport.get_extra_info("sockname")[1]
        sock = transport.get_extra_info("socket")
        if sock is not None:
            # A bulk upload arrives faster than this pure-Python server reads it: a
            # larger receive buffer (capped by net.core.rmem_max) avoids losses.
            with contextlib.suppress(OSError):
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4 << 20)
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 4 << 20)
        self._ready.set()
        try:
            await self._stop.wait()
        finally:
            for protocol in protocols:
                protocol.close()
            await asyncio.sleep(0)
            server.close()

    # -- bookkeeping -------------------------------------------------------

    def _record(self, record: SessionRecord) -> None:
        with self._changed:
            self.sessions.append(record)
            self._changed.notify_all()
        if self.on_session is not None:
            self.on_session(record)

    def _session_ended(self, record: SessionRecord) -> None:
        with self._changed:
            self._changed.notify_all()

    def counts(self) -> dict[str, int]:
        """``{"sessions": opened, "active": still open, "refused": answered 404}``."""
        with self._lock:
            opened = sum(1 for r in self.sessions if r.accepted)
            active = sum(1 for r in self.sessions if r.accepted and not r.closed)
            refused = sum(1 for r in self.sessions if not r.accepted)
        return {"sessions": opened, "active": active, "refused": refused}

    def wait_for(self, predicate: Callable[[], bool], timeout: float = 10.0) -> bool:
        """Wait until ``predicate()`` (called under the server's lock whenever a session
        starts or ends) is true; return its last value."""
        with self._changed:
            return self._changed.wait_for(predicate, timeout)

    def reset_records(self) -> None:
        """Forget the recorded sessions."""
        with self._lock:
            self.sessions.clear()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--cert", required=True, help="PEM certificate chain")
    parser.add_argument("--key", required=True, help="PEM private key")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument(
        "--any-draft", action="store_true", help="also serve clients of later drafts"
    )
    args = parser.parse_args(argv)
    server = WebTransportServer(
        args.cert, args.key, host=args.host, port=args.port, any_draft=args.any_draft
    )
    server.start()
    print(server.port, flush=True)
    try:
        # Serve until standard input closes (the parent process ended or asked us to stop).
        sys.stdin.read()
    except KeyboardInterrupt:
        pass
    finally:
        server.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
