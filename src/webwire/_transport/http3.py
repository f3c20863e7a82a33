"""One HTTP/3 connection shared by many requests (RFC 9114, over QUIC RFC 9000).

Requests run concurrently as streams of one QUIC connection, up to the
server's ``MAX_STREAMS``. The connection owns two background tasks, in a
task group from :meth:`~webwire._backends.base.Backend.
create_detached_task_group` (threads on the blocking backend):

* the *receiver* waits for datagrams, feeds them to :class:`~webwire._proto.
  h3.H3Protocol`, files the events per stream, wakes the requests they
  belong to, and sends what the protocol has to send (ACKs, the data the
  acknowledgements let through);
* the *timer* sleeps until the protocol's next deadline (loss detection,
  ACK delay, idle timeout) or the next keep-alive PING, and is woken
  whenever a request queued something to send or its deadline moved.

Requests send their head and body under the bookkeeping lock and transmit;
a request body is queued in pieces, each only once qh3 has sent most of the
previous ones (the server's flow control and congestion control decide), so
a large upload is never buffered whole. Received data is credited to the
server by qh3 as it is delivered, so the receiver bounds memory itself: when
a stream holds more than :data:`STREAM_BUFFER_LIMIT` unread bytes it stops
receiving datagrams until that stream is read down, unless another request
is waiting for data or credit from the connection (reading responses one
after the other must not deadlock); the connection is meanwhile unavailable
for new requests, which the pool sends elsewhere. A stream that reaches
:data:`STREAM_BUFFER_HARD_LIMIT` unread bytes that way is reset and its
reader gets :class:`~webwire.ReadError`. While receiving is paused the QUIC
idle timeout runs: a response left unread for that long ends the
connection.

Session tickets (:class:`SessionTicketStore`) resume TLS sessions on later
connections; with ``early_data`` a resumed connection is returned before its
handshake completes and safe requests go as 0-RTT data (RFC 9001 section
4.6). Idle connections send a PING (RFC 9000 section 19.2) every half idle
timeout while in use or kept (``Limits.keepalive_expiry``), so the QUIC idle
timeout ends only connections nobody keeps.

All state shared between requests lives under the backend's bookkeeping
lock and is never held across an ``await``. A response closed early resets
its stream (``H3_REQUEST_CANCELLED``) and the connection goes on serving the
others; a connection-level error fails every open stream. A ``2xx`` answer to
``CONNECT`` (RFC 9114 section 4.4) or an extended CONNECT (RFC 9220: a
WebSocket) carries ``extensions["detach"]``: the stream as a byte stream
(:class:`~webwire._transport._h3_tunnel.HTTP3TunnelStream`).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from webwire._backends.base import Backend
from webwire._config import Limits, Timeout
from webwire._exceptions import (
    ReadError,
    ReadTimeout,
    RemoteProtocolError,
    TransportError,
    WriteTimeout,
)
from webwire._proto.h3 import (
    DEFAULT_IDLE_TIMEOUT,
    ErrorCode,
    H3Protocol,
    QuicTLS,
    SessionTicket,
)

from ._h3_engine import (
    _EARLY_METHODS,
    SEND_BUFFER_LIMIT,
    STREAM_BUFFER_HARD_LIMIT,
    STREAM_BUFFER_LIMIT,
    _H3Engine,
)
from ._h3_streams import HTTP3ResponseStream, SessionTicketStore, _close_socket, _Stream
from ._types import (
    Connection,
    RawResponse,
    StaleConnection,
    TransportRequest,
)
from .connect import Origin

__all__ = [
    "SEND_BUFFER_LIMIT",
    "STREAM_BUFFER_HARD_LIMIT",
    "STREAM_BUFFER_LIMIT",
    "HTTP3Connection",
    "SessionTicketStore",
    "connect_http3",
]


async def connect_http3(
    backend: Backend,
    origin: Origin,
    *,
    address: tuple[str, int],
    server_name: str,
    tls: QuicTLS,
    limits: Limits,
    connect_timeout: float | None,
    tickets: SessionTicketStore | None,
    on_release: Callable[[Connection], None],
    idle_timeout: float = DEFAULT_IDLE_TIMEOUT,
    early_data: bool = False,
    webtransport: bool = False,
    windows: tuple[int, int, dict[int, int]] | None = None,
) -> HTTP3Connection:
    """Open an HTTP/3 connection: a UDP socket to ``address`` and the QUIC
    handshake (RFC 9000 section 7, TLS 1.3 per RFC 9001, ALPN ``h3``).

    Args:
        backend: The concurrency backend.
        origin: The https origin the requests are for (the pool key).
        address: IP literal and UDP port (an Alt-Svc port may differ from
            the origin's).
        server_name: SNI and the name the certificate must hold.
        tls: From :func:`~webwire._proto.h3.quic_tls_options`.
        limits: Keep-alive expiry and header limits.
        connect_timeout: Seconds for the whole handshake, ``None`` for no
            limit (the QUIC idle timeout still ends a silent attempt).
        tickets: Session tickets to resume with and to fill, or ``None``.
        on_release: Called (synchronously) each time a request ends.
        idle_timeout: QUIC idle timeout, seconds (RFC 9000 section 10.1).
        early_data: With a ticket from ``tickets`` that allows it, return
            before the handshake completes and send the first safe requests
            (``GET``, ``HEAD``, ``OPTIONS`` without content) as 0-RTT data
            (RFC 9001 section 4.6, RFC 8470: the server may see them twice);
            other requests wait for the handshake. A handshake that then
            fails or outlives ``connect_timeout`` fails those requests as
            retryable (the pool sends them again on a new connection).
        webtransport: Offer WebTransport (SETTINGS and QUIC datagrams);
            sessions are then carried by
            :mod:`webwire._transport._wt_session`.
        windows: ``(stream_window, connection_window, wt_settings)``: the
            QUIC receive windows to advertise (bytes) and the WebTransport
            SETTINGS of the current draft (see
            :class:`~webwire._proto.h3.H3Protocol`); ``None`` for the defaults.

    Raises:
        ConnectTimeout: No handshake within ``connect_timeout`` (UDP blocked
            or dropped on the way).
        ConnectError: The socket cannot be opened, the port is unreachable
            (ICMP), the certificate failed to verify, or the server refused
            the handshake or HTTP/3.
    """
    port = address[1]
    ticket = None if tickets is None else tickets.get(server_name, port)
    handler = None
    if tickets is not None:
        store = tickets

        def handler(new: SessionTicket) -> None:
            store.add(server_name, port, new)

    extra: dict[str, Any] = {}
    if windows is not None:
        extra = {
            "stream_window": windows[0],
            "connection_window": windows[1],
            "wt_settings": windows[2],
        }
    protocol = H3Protocol(
        **extra,
        server_name=server_name,
        tls=tls,
        idle_timeout=idle_timeout,
        session_ticket=ticket,
        ticket_handler=handler,
        max_header_size=limits.max_header_size,
        webtransport=webtransport,
    )
    sock = await backend.connect_udp(address)
    conn = HTTP3Connection(origin, backend, sock, protocol, address, limits, on_release)
    try:
        await conn._start(connect_timeout, server_name, early_data)
    except BaseException:
        await conn._shutdown()
        raise
    return conn


class HTTP3Connection(_H3Engine, Connection):
    """An HTTP/3 client connection over one UDP socket; see the module
    documentation. Built by :func:`connect_http3`.

    Attributes:
        session_resumed: Whether the TLS session was resumed from a ticket.
        requests_sent: Requests started on it so far.
    """

    http_version = "HTTP/3"
    multiplexed = True

    # -- properties --------------------------------------------------------

    @property
    def supports_extended_connect(self) -> bool:
        """Whether the server allows extended CONNECT
        (``SETTINGS_ENABLE_CONNECT_PROTOCOL``, RFC 9220 section 3)."""
        return self._proto.supports_extended_connect

    @property
    def early_data_accepted(self) -> bool:
        """Whether the server accepted the requests sent as 0-RTT data
        (``False`` until the handshake completed)."""
        return self._proto.early_data_accepted

    @property
    def session_resumed(self) -> bool:
        """Whether the handshake resumed an earlier TLS session (a ticket
        from :class:`SessionTicketStore`)."""
        return self._proto.session_resumed

    # -- Connection interface (called under the pool lock) -------------------

    def can_handle(self, origin: Origin) -> bool:
        """Whether ``origin`` is the origin of this connection."""
        return origin == self.origin

    def is_available(self) -> bool:
        """Whether another stream may be opened now: the connection is
        open, no GOAWAY arrived, no stream holds it paused, and the
        server's ``MAX_STREAMS`` leaves a slot."""
        with self._lock:
            proto = self._proto
            return (
                self._broken is None
                and not self._closed
                and proto.terminated is None
                and proto.goaway is None
                and self._over == 0
                and self._reserved < proto.streams_left
            )

    def is_idle(self) -> bool:
        """Whether no request is in flight."""
        return self._reserved + self._active == 0

    def has_expired(self, now: float) -> bool:
        """Closed, broken, terminated by the server or the idle timeout,
        GOAWAY received (once idle), or idle past ``keepalive_expiry``."""
        with self._lock:
            proto = self._proto
            if self._closed or self._broken is not None or proto.terminated is not None:
                return True
            if proto.goaway is not None:
                return self.is_idle()
            if not self.is_idle():
                return False
            expiry = self._limits.keepalive_expiry
            return expiry is not None and now - self.idle_since > expiry

    def reserve(self) -> None:
        """Take a stream slot for a request about to start."""
        with self._lock:
            self._reserved += 1

    # -- requests --------------------------------------------------------------

    async def handle_request(self, request: TransportRequest) -> RawResponse:
        """Send ``request`` on a new stream and return the response head.

        Raises:
            StaleConnection: The server rejected the stream, sent GOAWAY
                before it, or the connection ended before a response head
                (the pool retries when it may).
            LocalProtocolError: The request cannot be sent over HTTP/3.
            RemoteProtocolError: The server broke the protocol or reset the
                stream.
            ReadTimeout, WriteTimeout, ReadError, WriteError: I/O failures.
        """
        body = request.body
        has_body = body is not None and not (isinstance(body, bytes) and not body)
        try:
            if not self._proto.handshake_complete and not (
                request.method in _EARLY_METHODS
                and not has_body
                and "protocol" not in request.extensions
            ):
                await self._wait_handshake(request.timeout, request.deadline)
            if "protocol" in request.extensions and not self._proto.settings_received:
                await self.connect_protocol_enabled(request.timeout, request.deadline)
            state = self._open_stream(
                request, end_stream=not has_body and request.method != b"CONNECT"
            )
        except BaseException:
            self._release(None)
            raise
        timeout = request.timeout
        deadline = request.deadline
        try:
            await self._transmit()
            if has_body:
                assert body is not None
                await self._send_body(state, body, timeout, deadline)
            head = await self._read_head(state, timeout, deadline)
        except BaseException:
            self._release(state)
            raise
        if request.method == b"CONNECT" and 200 <= head.status_code < 300:
            from ._h3_tunnel import TunnelResponseStream

            tunnel = TunnelResponseStream(self, state, timeout)
            return RawResponse(
                head.status_code,
                b"",
                "HTTP/3",
                head.headers,
                tunnel,
                {"stream_id": state.stream_id, "detach": tunnel.detach},
            )
        return RawResponse(
            head.status_code,
            b"",
            "HTTP/3",
            head.headers,
            HTTP3ResponseStream(self, state, timeout, deadline),
            {"stream_id": state.stream_id},
        )

    def _open_stream(self, request: TransportRequest, *, end_stream: bool) -> _Stream:
        """Send the header section (no await); the slot becomes a stream."""
        wake = self._backend.create_event()
        with self._lock:
            if self._broken is not None:
                raise StaleConnection(self._broken, unprocessed=True)
            proto = self._proto
            if self._closed or proto.terminated is not None or proto.goaway is not None:
                raise StaleConnection(
                    RemoteProtocolError("the HTTP/3 connection is closing"), unprocessed=True
                )
            protocol = request.extensions.get("protocol")
            stream_id = proto.send_request(
                request.method,
                request.url.scheme.encode("ascii"),
                request.target,
                request.headers,
                end_stream=end_stream,
                protocol=protocol.encode("ascii") if isinstance(protocol, str) else None,
            )
            state = _Stream(stream_id, wake)
            self._streams[stream_id] = state
            self._reserved -= 1
            self._active += 1
            self.requests_sent += 1
            return state

    async def connect_protocol_enabled(self, timeout: Timeout, deadline: float | None) -> bool:
        """Whether the server allows extended CONNECT
        (``SETTINGS_ENABLE_CONNECT_PROTOCOL``, RFC 9220 section 3), waiting
        for its SETTINGS frame if it has not arrived yet.

        Raises:
            ReadTimeout: No SETTINGS within ``timeout.read`` seconds (or
                before ``deadline``).
            ReadError, RemoteProtocolError: The connection failed.
        """
        proto = self._proto
        waiter = _Stream(-1, self._backend.create_event())  # woken by any traffic
        wait_timeout = Timeout(None, write=timeout.read)
        with self._lock:
            self._extra_waiters.append(waiter)
        try:
            while True:
                with self._lock:
                    if proto.settings_received:
                        return proto.supports_extended_connect
                    broken = self._broken
                    if broken is not None:
                        raise broken if isinstance(broken, TransportError) else ReadError(
                            str(broken)
                        )
                try:
                    await self._wait(waiter, wait_timeout, deadline, for_send=True)
                except WriteTimeout as exc:
                    raise ReadTimeout(
                        f"the server sent no HTTP/3 SETTINGS within {timeout.read} seconds"
                    ) from exc
        finally:
            with self._lock:
                self._extra_waiters.remove(waiter)

    # -- release and close -----------------------------------------------------

    def _release(self, state: _Stream | None) -> None:
        """End a request: forget its stream (reset it both ways unless it
        is complete) and give the slot back. Synchronous; idempotent per
        stream. The reset is sent by the timer task."""
        with self._lock:
            if state is None:
                self._reserved -= 1
            else:
                if state.released:
                    return
                state.released = True
                self._active -= 1
                self._streams.pop(state.stream_id, None)
                state.events = []
                if state.over:
                    state.over = False
                    self._over -= 1
                    if self._over == 0:
                        self._resume.set()
                state.buffered = 0
                proto = self._proto
                if not state.done_receiving or proto.can_send(state.stream_id):
                    proto.reset_stream(state.stream_id, ErrorCode.H3_REQUEST_CANCELLED)
                    self._timer_wake.set()
                else:
                    proto.forget_stream(state.stream_id)
            if self._reserved + self._active == 0:
                self.idle_since = self._backend.monotonic()
        self._on_release(self)

    def close(self) -> None:
        """Close at once (no CONNECTION_CLOSE sent); requests in flight fail
        with ``ReadError``. Synchronous, idempotent; the background tasks
        end by themselves (:meth:`aclose` also waits for them)."""
        with self._lock:
            if self._closed:
                return
            self._closed = True
            self._fail_locked(ReadError("the HTTP/3 connection was closed"))
        # The background tasks see the closed socket (the receiver) and the
        # flag (the timer) and end by themselves; their group then ends too
        # (nobody may await its exit).
        _close_socket(self._sock)
        group = self._group
        if group is not None:
            group.release()

    async def aclose(self) -> None:
        """Send CONNECTION_CLOSE (``H3_NO_ERROR``, best effort), close the
        socket and wait for the background tasks to end. A cancellation
        while sending still closes the socket."""
        try:
            if not self._closed and self._broken is None:
                with self._lock:
                    self._proto.close(ErrorCode.H3_NO_ERROR)
                try:
                    await self._transmit()
                except TransportError:
                    pass
        finally:
            self.close()
        await self._shutdown()

    async def _shutdown(self) -> None:
        self.close()
        group, self._group = self._group, None
        if group is not None:
            try:
                await group.__aexit__(None, None, None)
            except Exception:
                pass
