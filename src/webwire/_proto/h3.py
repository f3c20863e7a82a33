"""The client side of HTTP/3 as a sans-I/O state machine (RFC 9114), over ``qh3``.

:class:`H3Protocol` wraps :class:`qh3.quic.connection.QuicConnection` (QUIC,
RFC 9000/9001/9002, with TLS 1.3 inside) and
:class:`qh3.h3.connection.H3Connection` (HTTP/3 framing and QPACK, RFC 9114
and RFC 9204) and speaks the protocol events of :mod:`webwire._proto.events`,
so the transport above handles HTTP/3 like HTTP/2: datagrams in with
:meth:`H3Protocol.receive_datagram`, events out with :meth:`H3Protocol.events`,
datagrams to send with :meth:`H3Protocol.datagrams_to_send`, and timers
through :meth:`H3Protocol.next_deadline` / :meth:`H3Protocol.handle_deadline`.
It does no I/O; the clock is passed in (``now``, seconds of the caller's
monotonic clock) with every call that needs it.

What this layer keeps for its callers:

* QUIC flow control (RFC 9000 section 4) is kept by qh3, which credits
  received stream data to the server as soon as it is delivered here. The
  memory a stream nobody reads may take is therefore bounded by the
  transport, which stops receiving datagrams while a stream holds more than
  its buffer limit (see :mod:`webwire._transport.http3`); the server can send
  at most qh3's windows (:data:`STREAM_WINDOW` per stream,
  :data:`CONNECTION_WINDOW` per connection) beyond what was delivered.
* Sending: :meth:`send_data` queues bytes in qh3; :meth:`send_buffer_size`
  says how many wait for their first transmission (the peer's flow control
  and congestion control hold them back), so callers can wait instead of
  queueing a whole upload.
* The server's SETTINGS (RFC 9114 section 7.2.4):
  ``SETTINGS_ENABLE_CONNECT_PROTOCOL`` (RFC 9220 section 3) is exposed as
  :attr:`H3Protocol.supports_extended_connect`.
* GOAWAY (RFC 9114 section 5.2): recorded with its stream id; requests at
  or above it end with a :class:`~webwire._proto.events.StreamReset`
  carrying ``H3_REQUEST_REJECTED`` so the caller can retry them elsewhere.
* Connection-specific header fields (RFC 9114 section 4.2) are dropped from
  requests, names lower-cased, ``Host`` turned into ``:authority``.
* TLS (RFC 9001): :func:`quic_tls_options` maps webwire's ``verify`` and
  ``cert`` options to qh3's configuration once; session tickets
  (RFC 8446 section 4.6.1) are handed to a callback for resumption.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from qh3.h3 import events as h3e
from qh3.h3.connection import H3_ALPN, ErrorCode, H3Connection, Setting
from qh3.quic import events as qe
from qh3.quic.configuration import QuicConfiguration
from qh3.quic.connection import QuicConnection, QuicConnectionError
from qh3.tls import SessionTicket

from webwire._exceptions import LocalProtocolError, RemoteProtocolError
from webwire._proto._fields import (
    check_extended_connect,
    multiplexed_request_fields,
    validate_request,
)
from webwire._proto._h3_tls import QuicTLS, quic_tls_options
from webwire._proto._h3_wt import WebTransportH3Connection, WebTransportMethods, translate
from webwire._proto.events import (
    ConnectionTerminated,
    Data,
    EndOfMessage,
    Event,
    InformationalResponse,
    ResponseHead,
    StreamReset,
)

__all__ = [
    "CONNECTION_WINDOW",
    "STREAM_WINDOW",
    "ErrorCode",
    "H3Protocol",
    "QuicTLS",
    "SessionTicket",
    "error_name",
    "quic_tls_options",
]

Headers = list[tuple[bytes, bytes]]

STREAM_WINDOW = 2 * 1024 * 1024
"""Bytes the server may send on one stream beyond what was delivered
(``initial_max_stream_data_bidi_local``, RFC 9000 section 18.2)."""

CONNECTION_WINDOW = 8 * 1024 * 1024
"""Bytes the server may send on the whole connection beyond what was
delivered (``initial_max_data``)."""

MAX_DATAGRAM_FRAME_SIZE = 65536
"""The largest DATAGRAM frame a WebTransport connection accepts (QUIC
``max_datagram_frame_size``, RFC 9221 section 3), bytes."""

DEFAULT_IDLE_TIMEOUT = 30.0
"""Seconds without anything received before the connection is closed
(``max_idle_timeout``, RFC 9000 section 10.1)."""

_CRYPTO_ERROR = 0x100
"""QUIC CRYPTO_ERROR base: 0x100 + the TLS alert (RFC 9001 section 4.8)."""

_CERT_ALERTS = frozenset({42, 43, 44, 45, 46, 48})
"""TLS alerts about the server's certificate (bad_certificate,
unsupported_certificate, certificate_revoked, certificate_expired,
certificate_unknown, unknown_ca)."""

_QUIC_ERRORS = {
    0x0: "NO_ERROR",
    0x1: "INTERNAL_ERROR",
    0x2: "CONNECTION_REFUSED",
    0x3: "FLOW_CONTROL_ERROR",
    0x4: "STREAM_LIMIT_ERROR",
    0x5: "STREAM_STATE_ERROR",
    0x6: "FINAL_SIZE_ERROR",
    0x7: "FRAME_ENCODING_ERROR",
    0x8: "TRANSPORT_PARAMETER_ERROR",
    0x9: "CONNECTION_ID_LIMIT_ERROR",
    0xA: "PROTOCOL_VIOLATION",
    0xB: "INVALID_TOKEN",
    0xC: "APPLICATION_ERROR",
    0xD: "CRYPTO_BUFFER_EXCEEDED",
    0xE: "KEY_UPDATE_ERROR",
    0xF: "AEAD_LIMIT_REACHED",
    0x10: "NO_VIABLE_PATH",
}


def error_name(code: int) -> str:
    """A readable name of an HTTP/3 (RFC 9114 section 8.1), QPACK or QUIC
    transport (RFC 9000 section 20.1) error code: ``"H3_NO_ERROR"``,
    ``"CRYPTO_ERROR (TLS alert 42)"``, or the code in hex."""
    try:
        return ErrorCode(code).name
    except ValueError:
        pass
    if code in _QUIC_ERRORS:
        return _QUIC_ERRORS[code]
    if _CRYPTO_ERROR <= code < _CRYPTO_ERROR + 0x100:
        return f"CRYPTO_ERROR (TLS alert {code - _CRYPTO_ERROR})"
    return f"error code {code:#x}"


def is_certificate_error(code: int, reason: str) -> bool:
    """Whether a QUIC close (``code``, ``reason``) reports a failed server
    certificate verification (a TLS certificate alert)."""
    if _CRYPTO_ERROR <= code < _CRYPTO_ERROR + 0x100 and code - _CRYPTO_ERROR in _CERT_ALERTS:
        return True
    lowered = reason.lower()
    return "certificate" in lowered or "issuer" in lowered


# -- the protocol --------------------------------------------------------------

_WT_KINDS = frozenset(
    {
        h3e.WebTransportStreamDataReceived,
        h3e.DatagramReceived,
        h3e.StreamReset,
        h3e.StopSending,
    }
)


class _Stream:
    __slots__ = ("got_head", "trailers")

    def __init__(self) -> None:
        self.got_head = False
        self.trailers = False


class H3Protocol(WebTransportMethods):
    """Client side of one HTTP/3 connection, without I/O (RFC 9114).

    Args:
        server_name: The server's host name (TLS SNI and the name its
            certificate must hold, RFC 9001 section 4).
        tls: TLS settings from :func:`quic_tls_options`.
        idle_timeout: Seconds of silence after which the connection is
            closed (QUIC ``max_idle_timeout``, RFC 9000 section 10.1).
        session_ticket: A ticket from an earlier connection to the same
            server, to resume its TLS session (RFC 8446 section 2.2).
        ticket_handler: Called with each session ticket the server issues.
        max_header_size: Most bytes of a decoded response header section
            (names and values); a larger one resets the stream.
        stream_window: Per-stream receive window, bytes.
        connection_window: Connection receive window, bytes.
        webtransport: Offer WebTransport (draft-ietf-webtrans-http3): the
            SETTINGS of draft-02 and of the current draft
            (:data:`webwire._proto.webtransport.CLIENT_SETTINGS`) and the
            QUIC ``max_datagram_frame_size`` transport parameter (RFC 9221)
            for HTTP Datagrams (RFC 9297). See :mod:`webwire._proto._h3_wt`.
        wt_settings: With ``webtransport``, the current draft's SETTINGS
            to send instead of
            :data:`~webwire._proto.webtransport.CLIENT_SETTINGS`.
    """

    def __init__(
        self,
        *,
        server_name: str,
        tls: QuicTLS,
        idle_timeout: float = DEFAULT_IDLE_TIMEOUT,
        session_ticket: SessionTicket | None = None,
        ticket_handler: Callable[[SessionTicket], None] | None = None,
        max_header_size: int = 64 * 1024,
        stream_window: int = STREAM_WINDOW,
        connection_window: int = CONNECTION_WINDOW,
        webtransport: bool = False,
        wt_settings: dict[int, int] | None = None,
    ) -> None:
        config = QuicConfiguration(
            is_client=True,
            alpn_protocols=list(H3_ALPN),
            idle_timeout=idle_timeout,
            server_name=server_name,
            max_stream_data=stream_window,
            max_data=connection_window,
            session_ticket=session_ticket,
            max_datagram_frame_size=MAX_DATAGRAM_FRAME_SIZE if webtransport else None,
        )
        tls.configure(config)
        self._quic = QuicConnection(configuration=config, session_ticket_handler=ticket_handler)
        self._h3: H3Connection | None = None
        self._webtransport = webtransport
        self._wt_settings = wt_settings
        self._wt_streams: set[int] = set()
        self._events: list[Event] = []
        self._streams: dict[int, _Stream] = {}
        self._max_header_size = max_header_size
        self._goaway: int | None = None
        self._terminated: ConnectionTerminated | None = None
        self._closed_locally = False
        self._handshake_complete = False
        self.alpn: str | None = None
        """The ALPN protocol negotiated (``"h3"``), ``None`` before."""
        self.session_resumed = False
        """Whether the TLS session was resumed from a ticket."""
        self.early_data_accepted = False
        """Whether the server accepted 0-RTT data."""

    # -- state -----------------------------------------------------------

    @property
    def handshake_complete(self) -> bool:
        """Whether the QUIC/TLS handshake completed (RFC 9001 section 4.1.1)."""
        return self._handshake_complete

    @property
    def early_data_possible(self) -> bool:
        """Whether requests may be sent before the handshake completes, as
        0-RTT data (RFC 9001 section 4.6): the session ticket given allows
        it. Whether the server accepted them is known after the handshake
        (:attr:`early_data_accepted`); qh3 sends them again if it did not."""
        return self._quic._remembered_transport_parameters() is not None

    @property
    def settings_received(self) -> bool:
        """Whether the server's SETTINGS frame arrived (RFC 9114 section 7.2.4)."""
        return self._h3 is not None and self._h3.received_settings is not None

    @property
    def supports_extended_connect(self) -> bool:
        """Whether the server sent ``SETTINGS_ENABLE_CONNECT_PROTOCOL`` = 1
        (RFC 9220 section 3); ``False`` until its SETTINGS arrive."""
        settings = None if self._h3 is None else self._h3.received_settings
        return bool(settings and settings.get(Setting.ENABLE_CONNECT_PROTOCOL, 0) == 1)

    @property
    def streams_left(self) -> int:
        """Request streams the client may still open: the server's
        cumulative ``MAX_STREAMS`` for bidirectional streams (RFC 9000
        section 4.6) minus the streams opened so far; 0 before the
        handshake told it."""
        core = self._quic._core
        if core is None:
            return 0
        limits = core.stream_limits
        return max(0, int(limits[0]) - int(limits[2]))

    @property
    def next_stream_id(self) -> int:
        """The stream id the next request would get."""
        return self._quic.get_next_available_stream_id()

    @property
    def idle_timeout(self) -> float | None:
        """The connection's idle timeout in seconds: the smaller of ours and
        the server's ``max_idle_timeout`` (RFC 9000 section 10.1), once the
        handshake told it; ``None`` when neither side set one."""
        ours = self._quic.configuration.idle_timeout or None
        theirs: float | None = None
        bridge = self._quic._tls
        params = None if bridge is None else bridge.remote_transport_parameters
        if params is not None and params.max_idle_timeout:
            theirs = params.max_idle_timeout / 1000.0
        if ours is None or (theirs is not None and theirs < ours):
            return theirs
        return ours

    @property
    def goaway(self) -> int | None:
        """The stream id of the server's GOAWAY (requests at or above it
        were not processed), ``None`` before one arrived."""
        return self._goaway

    @property
    def terminated(self) -> ConnectionTerminated | None:
        """How the connection ended, ``None`` while it is open."""
        return self._terminated

    def next_deadline(self) -> float | None:
        """When :meth:`handle_deadline` must be called next (the caller's
        clock, seconds), or ``None`` when no timer is armed."""
        if self._terminated is not None and self._quic._core is None:
            return None
        return self._quic.get_timer()

    def handle_deadline(self, now: float) -> None:
        """Run the timers due at ``now``: loss detection, ACK delay, the
        idle timeout (which terminates the connection)."""
        self._call(self._quic.handle_timer, now)
        self._receive()

    # -- connection ------------------------------------------------------

    def connect(self, addr: tuple[str, int], now: float) -> None:
        """Start the handshake with the server at ``addr`` (an IP literal
        and a UDP port): the first flight is then in
        :meth:`datagrams_to_send`.

        Raises:
            LocalProtocolError: ``addr`` is not an IP address.
        """
        try:
            self._quic.connect(addr, now)
        except OSError as exc:
            raise LocalProtocolError(f"not an IP address: {addr[0]!r}") from exc
        if self._webtransport:
            self._h3 = WebTransportH3Connection(self._quic, self._wt_settings)
        else:
            self._h3 = H3Connection(self._quic)
        self._drain()

    def receive_datagram(self, data: bytes, addr: tuple[str, int], now: float) -> None:
        """Feed one UDP datagram from the server.

        Raises:
            RemoteProtocolError: The server broke HTTP/3 or QUIC (the
                connection is then closed with the error's code, whose
                CONNECTION_CLOSE is in :meth:`datagrams_to_send`).
        """
        self._call(self._quic.receive_datagram, data, addr, now)
        self._receive()

    def receive_datagrams(self, datagrams: list[bytes], addr: tuple[str, int], now: float) -> None:
        """Feed several UDP datagrams from the server that arrived together
        (cheaper than one :meth:`receive_datagram` call each).

        Raises:
            RemoteProtocolError: As :meth:`receive_datagram`.
        """
        if len(datagrams) == 1:
            self._call(self._quic.receive_datagram, datagrams[0], addr, now)
        else:
            self._call(self._quic.receive_many_datagrams, datagrams, addr, now)
        self._receive()

    def datagrams_to_send(self, now: float) -> list[bytes]:
        """UDP payloads to send now (possibly none)."""
        try:
            return [data for data, _ in self._quic.datagrams_to_send(now)]
        except QuicConnectionError:
            return []

    def send_ping(self, uid: int = 0) -> None:
        """Queue a PING frame (RFC 9000 section 19.2): keeps an idle
        connection alive and checks that the server still answers."""
        if self._terminated is None and self._quic._core is not None:
            self._call(self._quic.send_ping, uid)

    def close(self, error_code: int = ErrorCode.H3_NO_ERROR, reason: str = "") -> None:
        """Close the connection (CONNECTION_CLOSE, RFC 9000 section 10.2,
        queued in :meth:`datagrams_to_send`). Never raises."""
        self._closed_locally = True
        if self._quic._core is None:
            return
        try:
            self._quic.close(error_code=error_code, reason_phrase=reason)
        except QuicConnectionError:
            pass
        if self._terminated is None:
            self._terminated = ConnectionTerminated(error_code, reason or "closed locally", None)

    # -- sending ---------------------------------------------------------

    def send_request(
        self,
        method: bytes,
        scheme: bytes,
        target: bytes,
        headers: Headers,
        *,
        end_stream: bool,
        protocol: bytes | None = None,
    ) -> int:
        """Open a request stream with the request's header section (RFC
        9114 section 4.1).

        ``Host`` becomes ``:authority``; connection-specific fields
        (``Connection``, ``Keep-Alive``, ``Transfer-Encoding``, ``Upgrade``,
        ...) are dropped, ``TE`` kept only as ``trailers`` (section 4.2).
        ``CONNECT`` sends ``:authority`` from ``target`` and no ``:path``
        unless ``protocol`` is given: an extended CONNECT (RFC 9220 section
        3, RFC 8441 section 4) with ``:protocol``, ``:scheme``,
        ``:authority`` (from ``Host``) and ``:path`` (``target``), allowed
        only once the server enabled it.

        Returns:
            The new stream's id.

        Raises:
            LocalProtocolError: The method, target or a field is invalid
                (:func:`webwire._proto._fields.validate_request`), the
                request has no authority, the connection is closing or
                closed, or ``protocol`` is not allowed (method other than
                ``CONNECT``, not a token, or not enabled by the server).
        """
        validate_request(method, target, headers)
        if protocol is not None:
            check_extended_connect(method, protocol, self.supports_extended_connect, "HTTP/3")
        fields = multiplexed_request_fields(method, scheme, target, headers, protocol, "HTTP/3")
        self._check_open()
        h3 = self._h3
        assert h3 is not None
        stream_id = self._quic.get_next_available_stream_id()
        self._call_local(h3.send_headers, stream_id, fields, end_stream)
        self._streams[stream_id] = _Stream()
        return stream_id

    def _check_open(self) -> None:
        if self._h3 is None:
            raise LocalProtocolError("the HTTP/3 connection is not started (connect first)")
        if self._terminated is not None:
            raise LocalProtocolError("the HTTP/3 connection is closed")
        if self._goaway is not None:
            raise LocalProtocolError("the server sent GOAWAY: no new streams")

    def send_data(
        self, stream_id: int, data: bytes | memoryview, *, end_stream: bool = False
    ) -> None:
        """Queue ``data`` as one DATA frame (RFC 9114 section 7.2.1); qh3
        sends it as the server's flow control and congestion control allow
        (see :meth:`send_buffer_size`).

        Raises:
            LocalProtocolError: The stream is closed or reset, or the
                connection is closed.
        """
        if self._terminated is not None:
            raise LocalProtocolError("the HTTP/3 connection is closed")
        if not self.can_send(stream_id):
            raise LocalProtocolError(f"HTTP/3 stream {stream_id} is closed for sending")
        h3 = self._h3
        assert h3 is not None
        if data or end_stream:
            self._call_local(h3.send_data, stream_id, data, end_stream)

    def end_stream(self, stream_id: int, trailers: Headers | None = None) -> None:
        """End the request on ``stream_id``, with trailer fields if given.

        Raises:
            LocalProtocolError: The stream is closed, or the connection is.
        """
        if trailers:
            if self._terminated is not None or not self.can_send(stream_id):
                raise LocalProtocolError(f"HTTP/3 stream {stream_id} is closed for sending")
            h3 = self._h3
            assert h3 is not None
            fields = [(name.lower(), value) for name, value in trailers]
            self._call_local(h3.send_headers, stream_id, fields, True)
        else:
            self.send_data(stream_id, b"", end_stream=True)

    def can_send(self, stream_id: int) -> bool:
        """Whether ``stream_id`` can still carry request data (not ended,
        not reset, no STOP_SENDING from the server)."""
        core = self._quic._core
        if core is None:
            return self._terminated is None
        try:
            return bool(core.can_send_stream(stream_id))
        except (RuntimeError, ValueError):
            return False

    def send_buffer_size(self, stream_id: int | None = None) -> int:
        """Bytes queued on ``stream_id`` (every stream with ``None``) that
        wait for their first transmission: what the server's flow control
        or congestion control hold back now."""
        try:
            return self._quic.get_send_buffer_size(stream_id)
        except (QuicConnectionError, ValueError, RuntimeError):
            return 0

    def reset_stream(
        self, stream_id: int, error_code: int = ErrorCode.H3_REQUEST_CANCELLED
    ) -> None:
        """Abandon ``stream_id`` both ways: RESET_STREAM for our side and
        STOP_SENDING for the server's (RFC 9114 section 4.1.1, RFC 9000
        section 3.5). Never raises."""
        self._streams.pop(stream_id, None)
        if self._terminated is not None or self._quic._core is None:
            return
        for operation in (self._quic.reset_stream, self._quic.stop_stream):
            try:
                operation(stream_id, error_code)
            except (QuicConnectionError, ValueError, RuntimeError, AssertionError):
                pass

    def forget_stream(self, stream_id: int) -> None:
        """Drop the bookkeeping of a stream that ended both ways."""
        self._streams.pop(stream_id, None)

    # -- receiving -------------------------------------------------------

    def events(self) -> list[Event]:
        """Events produced so far (taken)."""
        events = self._events
        self._events = []
        return events

    def _call(self, operation: Callable[..., Any], *args: Any) -> Any:
        try:
            return operation(*args)
        except QuicConnectionError as exc:
            self._terminate(int(exc.error_code), exc.reason_phrase)
            raise RemoteProtocolError(f"HTTP/3 connection failed: {exc.reason_phrase}") from exc
        except BaseException as exc:
            self._unexpected(exc)
            raise  # not reached: _unexpected raises

    def _unexpected(self, exc: BaseException) -> None:
        """An error qh3 did not map (malformed input reaching its parsers,
        a panic of its Rust core): close the connection and raise it as a
        RemoteProtocolError. Cancellation and interrupts pass through."""
        if not isinstance(exc, Exception) and type(exc).__name__ != "PanicException":
            raise exc
        self.close(ErrorCode.H3_INTERNAL_ERROR, "internal error")
        raise RemoteProtocolError(f"HTTP/3 connection failed: {exc!r}") from exc

    def _receive(self) -> None:
        try:
            self._drain()
        except RemoteProtocolError:
            raise
        except BaseException as exc:
            self._unexpected(exc)

    def _call_local(self, operation: Callable[..., Any], *args: Any) -> Any:
        try:
            return operation(*args)
        except (QuicConnectionError, AssertionError, RuntimeError, ValueError) as exc:
            raise LocalProtocolError(f"cannot send on HTTP/3 stream: {exc}") from exc
        except Exception as exc:  # qh3's H3 ProtocolError subclasses (FrameUnexpected)
            raise LocalProtocolError(f"cannot send on HTTP/3 stream: {exc!r}") from exc

    def _drain(self) -> None:
        quic = self._quic
        h3 = self._h3
        while True:
            event = quic.next_event()
            if event is None:
                break
            kind = type(event)
            if kind is qe.HandshakeCompleted:
                self._handshake_complete = True
                self.alpn = event.alpn_protocol  # type: ignore[attr-defined]
                self.session_resumed = bool(event.session_resumed)  # type: ignore[attr-defined]
                self.early_data_accepted = bool(event.early_data_accepted)  # type: ignore[attr-defined]
            elif kind is qe.ConnectionTerminated:
                self._terminate(event.error_code, event.reason_phrase)  # type: ignore[attr-defined]
            elif h3 is not None:
                for h3_event in h3.handle_event(event):
                    self._translate(h3_event)
        if self._terminated is None:
            close = quic._close_event
            if close is not None:
                # The server closed the connection, or qh3 closed it on a
                # protocol error: report it at once rather than after the
                # draining period (RFC 9000 section 10.2).
                self._terminate(close.error_code, close.reason_phrase)
                if not self._closed_locally and close.error_code not in (0, ErrorCode.H3_NO_ERROR):
                    raise RemoteProtocolError(
                        f"HTTP/3 connection closed: {error_name(close.error_code)}"
                        + (f": {close.reason_phrase}" if close.reason_phrase else "")
                    )

    def _terminate(self, code: int, reason: str) -> None:
        if self._terminated is not None:
            return
        terminated = ConnectionTerminated(int(code), reason or "", self._goaway)
        self._terminated = terminated
        self._events.append(terminated)

    def _translate(self, event: h3e.H3Event) -> None:
        kind = type(event)
        out = self._events
        if self._webtransport and kind in _WT_KINDS and translate(self, event):
            return
        if kind is h3e.DataReceived:
            stream_id = event.stream_id  # type: ignore[attr-defined]
            if stream_id not in self._streams:
                return
            data = event.data  # type: ignore[attr-defined]
            if data:
                out.append(Data(stream_id, data))
            if event.stream_ended:  # type: ignore[attr-defined]
                self._end(stream_id, [])
        elif kind is h3e.HeadersReceived:
            self._headers(event)  # type: ignore[arg-type]
        elif kind is h3e.InformationalHeadersReceived:
            stream_id = event.stream_id  # type: ignore[attr-defined]
            if stream_id in self._streams:
                status, fields = self._split_status(stream_id, event.headers)  # type: ignore[attr-defined]
                if status is not None:
                    out.append(InformationalResponse(stream_id, status, b"", fields))
        elif kind is h3e.StreamReset:
            stream_id = event.stream_id  # type: ignore[attr-defined]
            if self._streams.pop(stream_id, None) is not None:
                out.append(StreamReset(stream_id, int(event.error_code)))  # type: ignore[attr-defined]
        elif kind is h3e.GoawayReceived:
            self._receive_goaway(int(event.stream_id))  # type: ignore[attr-defined]
        # StopSending: qh3 already ended our sending side; can_send() says so.

    def _headers(self, event: h3e.HeadersReceived) -> None:
        stream_id = event.stream_id
        stream = self._streams.get(stream_id)
        if stream is None:
            return
        if not stream.got_head:
            status, fields = self._split_status(stream_id, event.headers)
            if status is None:
                return
            if status < 200:
                self._events.append(InformationalResponse(stream_id, status, b"", fields))
                return
            stream.got_head = True
            self._events.append(ResponseHead(stream_id, status, b"", fields, "HTTP/3"))
            if event.stream_ended:
                self._end(stream_id, [])
            return
        trailers = [(bytes(n), bytes(v)) for n, v in event.headers if n[:1] != b":"]
        self._end(stream_id, trailers)

    def _end(self, stream_id: int, trailers: Headers) -> None:
        self._streams.pop(stream_id, None)
        self._events.append(EndOfMessage(stream_id, trailers))

    def _split_status(self, stream_id: int, headers: Headers) -> tuple[int | None, Headers]:
        """``:status`` and the other fields; a malformed or oversized
        section resets the stream (H3_MESSAGE_ERROR / H3_EXCESSIVE_LOAD,
        RFC 9114 section 4.1.2) and reports a StreamReset."""
        status = -1
        size = 0
        fields: Headers = []
        for name, value in headers:
            size += len(name) + len(value)
            if name[:1] == b":":
                if name == b":status" and len(value) == 3 and value.isdigit():
                    status = int(value)
                continue
            fields.append((bytes(name), bytes(value)))
        if size > self._max_header_size:
            self.reset_stream(stream_id, ErrorCode.H3_EXCESSIVE_LOAD)
            self._events.append(StreamReset(stream_id, ErrorCode.H3_EXCESSIVE_LOAD))
            return None, []
        if status < 100:
            self.reset_stream(stream_id, ErrorCode.H3_MESSAGE_ERROR)
            self._events.append(StreamReset(stream_id, ErrorCode.H3_MESSAGE_ERROR))
            return None, []
        return status, fields

    def _receive_goaway(self, stream_id: int) -> None:
        self._goaway = stream_id if self._goaway is None else min(self._goaway, stream_id)
        for open_id in sorted(self._streams):
            if open_id >= stream_id:
                self.reset_stream(open_id, ErrorCode.H3_REQUEST_CANCELLED)
                self._events.append(StreamReset(open_id, ErrorCode.H3_REQUEST_REJECTED))
        self._events.append(ConnectionTerminated(ErrorCode.H3_NO_ERROR, "GOAWAY", stream_id))
