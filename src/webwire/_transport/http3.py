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

from collections.abc import AsyncIterable, Callable
from typing import Any

from webwire._backends.base import Backend, DatagramSocket
from webwire._config import Limits, Timeout
from webwire._exceptions import (
    ConnectError,
    ConnectTimeout,
    LocalProtocolError,
    ReadError,
    ReadTimeout,
    RemoteProtocolError,
    TransportError,
    WriteError,
    WriteTimeout,
)
from webwire._proto import events as ev
from webwire._proto.h3 import (
    DEFAULT_IDLE_TIMEOUT,
    ErrorCode,
    H3Protocol,
    QuicTLS,
    SessionTicket,
    error_name,
    is_certificate_error,
)

from ._h3_streams import HTTP3ResponseStream, SessionTicketStore, _close_socket, _Stream
from ._types import (
    Connection,
    RawResponse,
    StaleConnection,
    TransportRequest,
    close_body_iterator,
    total_timeout_error,
)
from .connect import Origin

__all__ = [
    "SEND_BUFFER_LIMIT",
    "STREAM_BUFFER_LIMIT",
    "HTTP3Connection",
    "SessionTicketStore",
    "connect_http3",
]

STREAM_BUFFER_LIMIT = 4 * 1024 * 1024
"""Unread response bytes one stream may hold before the connection stops
receiving, unless a request waits for something else from it (it resumes
once the stream is read below half of it)."""

STREAM_BUFFER_HARD_LIMIT = 64 * 1024 * 1024
"""Unread response bytes one stream may hold while other requests keep the
connection receiving; beyond it the stream is reset and its reader gets
:class:`~webwire.ReadError`."""

SEND_BUFFER_LIMIT = 1024 * 1024
"""Request body bytes queued in qh3 and not yet sent, per stream, before
the sender waits for the server's flow-control credit and ACKs."""

_CHUNK = 256 * 1024

_MAX_BATCH = 32
"""Most datagrams already queued on the socket handled together (their
ACKs and what they release are sent at once)."""

_EARLY_METHODS = frozenset((b"GET", b"HEAD", b"OPTIONS"))
"""Methods a request may use to go as 0-RTT data (safe, RFC 9110 section
9.2.1; early data may be replayed, RFC 8470)."""

_QUEUED = 1e-6
"""Receive timeout (seconds) that takes a queued datagram without waiting."""
"""Largest piece of a request body queued at once."""

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

    protocol = H3Protocol(
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


class HTTP3Connection(Connection):
    """An HTTP/3 client connection over one UDP socket; see the module
    documentation. Built by :func:`connect_http3`.

    Attributes:
        session_resumed: Whether the TLS session was resumed from a ticket.
        requests_sent: Requests started on it so far.
    """

    http_version = "HTTP/3"
    multiplexed = True

    def __init__(
        self,
        origin: Origin,
        backend: Backend,
        sock: DatagramSocket,
        protocol: H3Protocol,
        address: tuple[str, int],
        limits: Limits,
        on_release: Callable[[Connection], None],
    ) -> None:
        self.origin = origin
        self.idle_since = backend.monotonic()
        self._backend = backend
        self._sock = sock
        self._proto = protocol
        self._address = address
        self._limits = limits
        self._on_release = on_release
        self._lock = backend.create_bookkeeping_lock()
        self._send_lock = backend.create_lock()
        self._timer_wake = backend.create_event()
        self._resume = backend.create_event()
        self._handshake = backend.create_event()
        self._streams: dict[int, _Stream] = {}
        self._extra_waiters: list[_Stream] = []
        self._reserved = 0
        self._active = 0
        self._over = 0
        self._waiters = 0
        self._send_waiters = 0
        self._broken: BaseException | None = None
        self._closed = False
        self._group: Any = None
        self._timer_at: float | None = None
        self._last_activity = self.idle_since
        self._ping_interval: float | None = None
        self._handshake_deadline: float | None = None
        self._connect_timeout: float | None = None
        self._where = f"{address[0]}, UDP port {address[1]}"
        self.requests_sent = 0
        self._wt: Any = None  # WebTransport sessions (_wt_session.WTRegistry)

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

    # -- start and background tasks ------------------------------------------

    async def _start(
        self, connect_timeout: float | None, server_name: str, early_data: bool
    ) -> None:
        backend = self._backend
        host, port = self._address
        where = f"{server_name} ({host}, UDP port {port})"
        self._where = where
        self._connect_timeout = connect_timeout
        with self._lock:
            self._proto.connect(self._address, backend.monotonic())
            if connect_timeout is not None:
                self._handshake_deadline = backend.monotonic() + connect_timeout
        group = backend.create_detached_task_group()
        await group.__aenter__()
        self._group = group
        group.start_soon(self._receive_loop)
        group.start_soon(self._timer_loop)
        await self._transmit_quietly()  # a failure breaks the connection: reported below
        if early_data and self._proto.early_data_possible and self._broken is None:
            return  # requests go as 0-RTT data; the handshake goes on
        if not await self._handshake.wait(connect_timeout):
            raise ConnectTimeout(self._handshake_timeout_message(connect_timeout))
        with self._lock:
            broken = self._broken
            proto = self._proto
        if broken is not None:
            if isinstance(broken, ConnectError | ConnectTimeout):
                raise broken
            terminated = proto.terminated
            if terminated is not None and is_certificate_error(
                terminated.error_code, terminated.reason
            ):
                raise ConnectError(
                    f"the server certificate of {where} failed to verify: {terminated.reason}"
                ) from broken
            raise ConnectError(f"QUIC handshake with {where} failed: {broken}") from broken

    def _handshake_timeout_message(self, seconds: float | None) -> str:
        return (
            f"no QUIC handshake with {self._where} within {seconds} seconds "
            "(UDP blocked or dropped?)"
        )

    def _handshake_done_locked(self) -> None:
        """The handshake completed (lock held): check ALPN, arm keep-alive
        PINGs and wake who waits for it."""
        proto = self._proto
        if proto.alpn != "h3":
            self._fail_locked(
                ConnectError(f"{self._where} did not agree to HTTP/3 (ALPN {proto.alpn!r})")
            )
        self._handshake_deadline = None
        idle = proto.idle_timeout
        if idle is not None:
            self._ping_interval = idle / 2
        self._handshake.set()
        self._timer_wake.set()

    async def _wait_handshake(self, timeout: Timeout, deadline: float | None) -> None:
        """Wait for the handshake of a connection returned early (0-RTT),
        before a request that may not go as early data.

        Raises:
            StaleConnection: The handshake failed (the request was not sent).
            ReadTimeout: The request's total deadline passed first.
        """
        left = None if deadline is None else max(0.0, deadline - self._backend.monotonic())
        if not await self._handshake.wait(left):
            raise total_timeout_error(timeout)
        broken = self._broken
        if broken is not None:
            error = broken if isinstance(broken, TransportError) else ConnectError(str(broken))
            raise StaleConnection(error, unprocessed=True)

    async def _receive_loop(self) -> None:
        sock = self._sock
        proto = self._proto
        backend = self._backend
        address = self._address
        while True:
            with self._lock:
                if self._closed or self._broken is not None:
                    return
                paused = self._over > 0 and self._waiters == 0
                if paused:
                    self._resume.clear()
            if paused:
                await self._resume.wait(None)
                continue
            try:
                datagrams = [await sock.receive(None)]
                while len(datagrams) < _MAX_BATCH:
                    try:
                        # A timeout just above zero (a zero one is expired
                        # before trio even looks at the socket) takes what
                        # is queued already.
                        datagrams.append(await sock.receive(_QUEUED))
                    except ReadTimeout:
                        break
            except (ReadError, TransportError) as exc:
                if not self._closed:
                    self._fail(ConnectError(str(exc)) if not self._handshake.is_set() else exc)
                return
            with self._lock:
                try:
                    proto.receive_datagrams(datagrams, address, backend.monotonic())
                except RemoteProtocolError as exc:
                    self._dispatch_locked(proto.events())
                    self._fail_locked(exc)
                else:
                    self._dispatch_locked(proto.events())
            await self._transmit_quietly()

    async def _timer_loop(self) -> None:
        backend = self._backend
        proto = self._proto
        wake = self._timer_wake
        handled: float | None = None
        while True:
            with self._lock:
                if self._closed:
                    return
                wake.clear()
                at = proto.next_deadline()
                handshake_at = self._handshake_deadline
                if handshake_at is not None and (at is None or handshake_at < at):
                    at = handshake_at
                ping_at = self._ping_deadline_locked()
                if ping_at is not None and (at is None or ping_at < at):
                    at = ping_at
                self._timer_at = at
            timeout = None if at is None else max(0.0, at - backend.monotonic())
            if timeout is not None and at == handled:
                # The deadline did not move when it was handled (a pacing
                # timer): do not spin on it.
                timeout = max(timeout, 0.001)
            await wake.wait(timeout)
            if self._closed:
                return
            now = backend.monotonic()
            with self._lock:
                self._timer_at = None
                deadline = proto.next_deadline()
                if deadline is not None and deadline <= now:
                    handled = deadline
                    try:
                        proto.handle_deadline(now)
                    except RemoteProtocolError as exc:
                        self._fail_locked(exc)
                    self._dispatch_locked(proto.events())
                handshake_at = self._handshake_deadline
                if handshake_at is not None and handshake_at <= now:
                    self._handshake_deadline = None
                    if not proto.handshake_complete:
                        message = self._handshake_timeout_message(self._connect_timeout)
                        self._fail_locked(ConnectTimeout(message))
                ping_at = self._ping_deadline_locked()
                if ping_at is not None and ping_at <= now:
                    proto.send_ping()
                    self._last_activity = now
            await self._transmit_quietly()
            if proto.terminated is not None and proto.next_deadline() is None:
                # Over (idle timeout, closed by the server): the socket has
                # no further use, and closing it ends the receiver.
                with self._lock:
                    self._fail_locked(ReadError("the HTTP/3 connection is closed"))
                _close_socket(self._sock)
                return

    def _ping_deadline_locked(self) -> float | None:
        """When to send a keep-alive PING: half the idle timeout after the
        last transmission, while the connection is in use or kept idle
        (``Limits.keepalive_expiry``)."""
        interval = self._ping_interval
        if interval is None or self._proto.terminated is not None:
            return None
        if self._reserved + self._active == 0:
            expiry = self._limits.keepalive_expiry
            if expiry is not None and self._backend.monotonic() - self.idle_since > expiry:
                return None
        return self._last_activity + interval

    async def _transmit(self) -> None:
        """Send what the protocol has queued, in order (one sender at a
        time), and re-arm the timer if its deadline moved earlier.

        Raises:
            WriteError: The socket failed (the connection is then broken).
        """
        backend = self._backend
        lock = self._send_lock
        await lock.acquire()
        try:
            with self._lock:
                now = backend.monotonic()
                datagrams = self._proto.datagrams_to_send(now)
                if datagrams:
                    self._last_activity = now
                at = self._proto.next_deadline()
                timer_at = self._timer_at
                if at is not None and (timer_at is None or at < timer_at):
                    self._timer_wake.set()
                self._wake_senders_locked()
            for data in datagrams:
                await self._sock.send(data)
        except (WriteError, TransportError) as exc:
            self._fail(exc)
            raise
        finally:
            lock.release()

    async def _transmit_quietly(self) -> None:
        try:
            await self._transmit()
        except TransportError:
            pass

    def _wake_senders_locked(self) -> None:
        if not self._send_waiters:
            return
        for state in self._streams.values():
            if state.wants_send and state.waiting:
                state.wake.set()
        for state in self._extra_waiters:
            if state.waiting:
                state.wake.set()

    # -- dispatch ------------------------------------------------------------

    def _dispatch_locked(self, events: list[ev.Event]) -> None:
        streams = self._streams
        for event in events:
            kind = type(event)
            if kind is ev.ConnectionTerminated:
                self._terminated_locked(event)  # type: ignore[arg-type]
                continue
            state = streams.get(event.stream_id)  # type: ignore[attr-defined]
            if state is None:
                if self._wt is not None:
                    self._wt.dispatch_locked(event)
                continue
            if kind is ev.Data:
                state.events.append(event)
                state.buffered += len(event.data)  # type: ignore[attr-defined]
                if not state.over and state.buffered > STREAM_BUFFER_LIMIT:
                    state.over = True
                    self._over += 1
                elif state.buffered > STREAM_BUFFER_HARD_LIMIT:
                    self._overflow_locked(state)
            elif kind is ev.StreamReset:
                code = event.error_code  # type: ignore[attr-defined]
                if code == ErrorCode.H3_REQUEST_REJECTED:
                    state.error = StaleConnection(
                        RemoteProtocolError(
                            f"the server rejected HTTP/3 stream {state.stream_id}"
                        ),
                        unprocessed=True,
                    )
                elif not (code == ErrorCode.H3_NO_ERROR and state.done_receiving):
                    state.error = RemoteProtocolError(
                        f"the server reset HTTP/3 stream {state.stream_id} ({error_name(code)})"
                    )
                state.done_receiving = True
            else:
                if kind is ev.EndOfMessage:
                    state.done_receiving = True
                elif kind is ev.ResponseHead:
                    state.got_head = True
                state.events.append(event)
            if state.waiting:
                state.wake.set()
        if self._proto.handshake_complete and not self._handshake.is_set():
            self._handshake_done_locked()

    def _overflow_locked(self, state: _Stream) -> None:
        """``state`` holds too much unread data: reset it (lock held)."""
        state.events = [event for event in state.events if type(event) is not ev.Data]
        state.error = ReadError(
            f"HTTP/3 stream {state.stream_id} was reset: more than "
            f"{STREAM_BUFFER_HARD_LIMIT} bytes of its response were not read "
            "while other requests used the connection"
        )
        state.done_receiving = True
        state.buffered = 0
        if state.over:
            state.over = False
            self._over -= 1
        self._proto.reset_stream(state.stream_id, ErrorCode.H3_REQUEST_CANCELLED)
        self._timer_wake.set()

    def _terminated_locked(self, event: ev.ConnectionTerminated) -> None:
        if self._proto.terminated is None:
            return  # GOAWAY: the refused streams got their StreamReset
        code = event.error_code
        reason = f": {event.reason}" if event.reason else ""
        if event.reason.lower() == "idle timeout":
            error: TransportError = ReadError(
                "the HTTP/3 connection timed out: nothing received for its idle timeout "
                "(RFC 9000 section 10.1)"
            )
        elif code in (0, ErrorCode.H3_NO_ERROR):
            error = ReadError(f"the server closed the HTTP/3 connection{reason}")
        else:
            error = RemoteProtocolError(
                f"the HTTP/3 connection was closed ({error_name(code)}{reason})"
            )
        self._fail_locked(error)

    def _fail(self, exc: BaseException) -> None:
        with self._lock:
            self._fail_locked(exc)

    def _fail_locked(self, exc: BaseException) -> None:
        """The connection is unusable: every stream still receiving fails
        (one that got no response head may be retried elsewhere when the
        method allows, as a :class:`StaleConnection`)."""
        if self._broken is None:
            self._broken = exc
        error = exc if isinstance(exc, TransportError) else ReadError(str(exc))
        for state in self._streams.values():
            if not state.done_receiving and state.error is None:
                state.error = error if state.got_head else StaleConnection(error)
            if state.waiting:
                state.wake.set()
        for state in self._extra_waiters:
            state.wake.set()
        if self._wt is not None:
            self._wt.fail_locked(error)
        self._handshake.set()
        self._resume.set()
        self._timer_wake.set()

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

    async def _send_body(
        self,
        state: _Stream,
        body: bytes | AsyncIterable[bytes],
        timeout: Timeout,
        deadline: float | None,
    ) -> None:
        """Send the request content as the server's flow control allows;
        stop early when a final response arrives first (the rest is
        abandoned and the stream reset when released)."""
        if isinstance(body, bytes):
            await self._send_chunk(state, body, timeout, deadline, last=True)
            return
        iterator = body.__aiter__()
        finished = False
        try:
            async for chunk in iterator:
                if not isinstance(chunk, bytes | bytearray | memoryview):
                    raise LocalProtocolError(
                        f"request body chunks must be bytes, not {type(chunk).__name__}"
                    )
                if chunk and await self._send_chunk(state, bytes(chunk), timeout, deadline):
                    return
            finished = True
        finally:
            if not finished:
                await close_body_iterator(iterator)
        await self._send_chunk(state, b"", timeout, deadline, last=True)

    async def _send_chunk(
        self,
        state: _Stream,
        data: bytes,
        timeout: Timeout,
        deadline: float | None,
        *,
        last: bool = False,
    ) -> bool:
        """Queue ``data`` in pieces, waiting while the stream has more than
        :data:`SEND_BUFFER_LIMIT` bytes unsent. Returns ``True`` when a
        final response came first (the body is abandoned)."""
        view = memoryview(data)
        while True:
            if state.got_head:
                return True
            with self._lock:
                self._check_stream(state)
                if self._proto.send_buffer_size(state.stream_id) < SEND_BUFFER_LIMIT:
                    piece = view[:_CHUNK]
                    view = view[len(piece) :]
                    try:
                        self._proto.send_data(
                            state.stream_id, piece, end_stream=last and not view
                        )
                    except LocalProtocolError as exc:
                        if state.got_head or not self._proto.can_send(state.stream_id):
                            return True  # the server stopped reading (STOP_SENDING)
                        raise WriteError(str(exc)) from exc
                    queued = True
                else:
                    queued = False
            if queued:
                await self._transmit()
                if not view:
                    return False
                continue
            await self._wait(state, timeout, deadline, for_send=True)

    def _check_stream(self, state: _Stream) -> None:
        """Raise the error that ended ``state`` (lock held)."""
        if state.error is not None:
            raise state.error
        if self._broken is not None:
            broken = self._broken
            if isinstance(broken, TransportError):
                raise StaleConnection(broken) if not state.got_head else broken
            raise ReadError(f"the HTTP/3 connection failed: {broken}") from broken

    async def _read_head(
        self, state: _Stream, timeout: Timeout, deadline: float | None
    ) -> ev.ResponseHead:
        while True:
            event = await self._next_event(state, timeout, deadline)
            kind = type(event)
            if kind is ev.ResponseHead:
                return event  # type: ignore[return-value]
            if kind is not ev.InformationalResponse:
                raise RemoteProtocolError(
                    f"unexpected HTTP/3 event before the response: {event!r}"
                )

    async def _next_event(
        self, state: _Stream, timeout: Timeout, deadline: float | None
    ) -> ev.Event:
        while True:
            with self._lock:
                if state.events:
                    event = state.events.pop(0)
                    if type(event) is ev.Data:
                        self._consumed_locked(state, len(event.data))  # type: ignore[attr-defined]
                    return event
                self._check_stream(state)
            await self._wait(state, timeout, deadline)

    async def _wait(
        self,
        state: _Stream,
        timeout: Timeout,
        deadline: float | None,
        *,
        for_send: bool = False,
    ) -> None:
        """Wait until the receiver files something for ``state`` (with
        ``for_send``: until anything was received or sent, which may have
        made room to send).

        Raises:
            ReadTimeout: Nothing within the read timeout (``WriteTimeout``
                with ``for_send``, after the write timeout).
        """
        backend = self._backend
        now = backend.monotonic()
        seconds = timeout.write if for_send else timeout.read
        limit = None if seconds is None else now + seconds
        if deadline is not None and (limit is None or deadline <= limit):
            if now >= deadline:
                raise total_timeout_error(timeout)
            limit = deadline
        with self._lock:
            if state.error is not None or self._broken is not None:
                return
            if not for_send and state.events:
                return
            if (
                for_send
                and state.stream_id >= 0
                and (
                    state.got_head
                    or self._proto.send_buffer_size(state.stream_id) < SEND_BUFFER_LIMIT
                )
            ):
                return
            state.wake.clear()
            state.waiting = True
            state.wants_send = for_send
            self._waiters += 1
            self._send_waiters += for_send
            if self._over:
                self._resume.set()  # this request needs the receiver
        left = None if limit is None else max(0.0, limit - backend.monotonic())
        try:
            woke = await state.wake.wait(left)
        finally:
            with self._lock:
                state.waiting = False
                state.wants_send = False
                self._waiters -= 1
                self._send_waiters -= for_send
        if woke:
            return
        if deadline is not None and backend.monotonic() >= deadline:
            raise total_timeout_error(timeout)
        if for_send:
            raise WriteTimeout(
                f"the server took no request data within {timeout.write} seconds"
            )
        raise ReadTimeout(f"no data received within {timeout.read} seconds")

    def _consumed_locked(self, state: _Stream, size: int) -> None:
        """``size`` bytes of ``state`` were read: resume receiving once the
        stream is below half its buffer limit (lock held)."""
        state.buffered -= size
        if state.over and state.buffered <= STREAM_BUFFER_LIMIT // 2:
            state.over = False
            self._over -= 1
            if self._over == 0:
                self._resume.set()

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
        # flag (the timer) and end by themselves.
        _close_socket(self._sock)

    async def aclose(self) -> None:
        """Send CONNECTION_CLOSE (``H3_NO_ERROR``, best effort), close the
        socket and wait for the background tasks to end."""
        if not self._closed and self._broken is None:
            with self._lock:
                self._proto.close(ErrorCode.H3_NO_ERROR)
            try:
                await self._transmit()
            except TransportError:
                pass
        await self._shutdown()

    async def _shutdown(self) -> None:
        self.close()
        group, self._group = self._group, None
        if group is not None:
            try:
                await group.__aexit__(None, None, None)
            except Exception:
                pass
