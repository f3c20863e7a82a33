"""The machinery of an HTTP/3 connection (:mod:`webwire._transport.http3`):
the handshake, the receiver and timer tasks, transmission, the filing of
events per stream, waiting, and request bodies sent within the server's
flow control. :class:`~webwire._transport.http3.HTTP3Connection` builds on
it with the pool-facing interface.
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
from webwire._proto.h3 import ErrorCode, H3Protocol, error_name, is_certificate_error

from ._h3_streams import STREAM_BUFFER_LIMIT, _close_socket, _Stream
from ._types import Connection, StaleConnection, close_body_iterator, total_timeout_error
from .connect import Origin

__all__ = ["SEND_BUFFER_LIMIT", "STREAM_BUFFER_HARD_LIMIT", "STREAM_BUFFER_LIMIT"]

STREAM_BUFFER_HARD_LIMIT = 64 * 1024 * 1024
"""Unread response bytes one stream may hold while other requests keep the
connection receiving; beyond it the stream is reset and its reader gets
:class:`~webwire.ReadError`."""

SEND_BUFFER_LIMIT = 1024 * 1024
"""Request body bytes queued in qh3 and not yet sent, per stream, before
the sender waits for the server's flow-control credit and ACKs."""

_CHUNK = 256 * 1024
"""Largest piece of a request body queued at once."""

_MAX_BATCH = 32
"""Most datagrams already queued on the socket handled together (their
ACKs and what they release are sent at once)."""

_NEVER = float("inf")
"""``_timer_at`` while the timer task waits with no deadline."""

_EARLY_METHODS = frozenset((b"GET", b"HEAD", b"OPTIONS"))
"""Methods a request may use to go as 0-RTT data (safe, RFC 9110 section
9.2.1; early data may be replayed, RFC 8470)."""


class _H3Engine:
    """State, background tasks and stream I/O of one HTTP/3 connection."""

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
                datagrams = await sock.receive_many(_MAX_BATCH, None)
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
            if len(datagrams) == 1:
                # One packet in (an exchange of small messages): let the task
                # it woke run first, so that what it sends next carries the
                # ACK instead of an ACK-only packet going out before it. A
                # larger batch is transmitted at once (many streams busy).
                await backend.checkpoint()
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
                self._timer_at = _NEVER if at is None else at
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
        if not await lock.acquire(0.0):  # uncontended: no scheduler turn
            await lock.acquire()
        try:
            with self._lock:
                now = backend.monotonic()
                datagrams = self._proto.datagrams_to_send(now)
                if datagrams:
                    self._last_activity = now
                at = self._proto.next_deadline()
                timer_at = self._timer_at
                # The timer task reads the deadline again before it waits
                # (``_timer_at`` is None until then): wake it only when it
                # waits for a later one.
                if at is not None and timer_at is not None and at < timer_at:
                    self._timer_wake.set()
                self._wake_senders_locked()
            if len(datagrams) == 1:
                await self._sock.send(datagrams[0])
            elif datagrams:
                await self._sock.send_many(datagrams)
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
        """Wake the senders that may queue more now: those whose stream
        holds less than :data:`SEND_BUFFER_LIMIT` unsent bytes (a sender
        woken without room would only wait again), the response's head
        included, and waiters for any traffic (stream id -1)."""
        if not self._send_waiters:
            return
        size = self._proto.send_buffer_size
        for state in self._streams.values():
            if (
                state.wants_send
                and state.waiting
                and (state.got_head or size(state.stream_id) < SEND_BUFFER_LIMIT)
            ):
                state.wake.set()
        for state in self._extra_waiters:
            if state.waiting and (
                state.stream_id < 0 or size(state.stream_id) < SEND_BUFFER_LIMIT
            ):
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
                if not state.over and state.buffered > state.limit:
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
        if state.over and state.buffered <= state.limit // 2:
            state.over = False
            self._over -= 1
            if self._over == 0:
                self._resume.set()
