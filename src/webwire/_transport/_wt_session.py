"""The transport side of WebTransport sessions (draft-ietf-webtrans-http3)
on an :class:`~webwire._transport.http3.HTTP3Connection` opened with
``webtransport=True``.

* :class:`WTRegistry` hangs on the connection (``conn._wt``) and receives,
  under the connection's bookkeeping lock, the events its per-request
  dispatch does not place: streams the server opened, resets, STOP_SENDING,
  datagrams, and the data of each session's CONNECT stream (parsed as
  capsules, RFC 9297 section 3, at once: a CLOSE_WEBTRANSPORT_SESSION is
  seen even when nobody reads).
* :class:`WTSessionCore` is one session: its CONNECT stream, the capsules
  it sends, session flow control (current draft section 5: the server's
  WT_MAX_DATA and WT_MAX_STREAMS), and bounded channels for the streams
  the server opens and for datagrams.
* :class:`WTStreamCore` is one WebTransport stream as bytes each way.

Memory bounds. qh3 credits received stream data to the server as soon as
it is delivered, so what a reader leaves unread is bounded as for HTTP/3
responses (:mod:`webwire._transport.http3`): a stream holding more than
``stream_buffer_limit`` (default ``STREAM_BUFFER_LIMIT``, 4 MiB) unread
bytes pauses receiving for the whole
connection until it is read down (unless another task waits for data or
credit on it: then up to ``STREAM_BUFFER_HARD_LIMIT``, beyond which that
stream is reset and its reader gets :class:`~webwire.ReadError`). Streams
the server opens wait in a channel of ``max_incoming_streams`` entries;
one more is refused (``WT_BUFFERED_STREAM_REJECTED``, section 4.4).
Datagrams wait in a channel of ``max_datagrams`` entries; newer ones are
dropped while it is full (datagrams are unreliable by design, RFC 9221
section 5) and counted in ``datagrams_dropped``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from webwire._config import Timeout
from webwire._exceptions import (
    LocalProtocolError,
    ReadError,
    ReadTimeout,
    RemoteProtocolError,
    SessionClosed,
    StreamReset,
    WriteError,
    WriteTimeout,
)
from webwire._proto import events as ev
from webwire._proto import webtransport as wt
from webwire._proto.h3 import ErrorCode

from ._h3_streams import _Stream
from ._types import StaleConnection

if TYPE_CHECKING:
    from .http3 import HTTP3Connection

__all__ = ["WTRegistry", "WTSessionCore", "WTStreamCore"]

DEFAULT_MAX_INCOMING_STREAMS = 128
"""Streams opened by the server that wait to be taken, per session."""

EARLY_STREAM_LIMIT = 16
"""Streams the server may open before its answer to the session request is
processed here (kept until it is)."""

EARLY_BUFFER_LIMIT = 1024 * 1024
"""Bytes those early streams may carry meanwhile, together."""

DEFAULT_MAX_DATAGRAMS = 256
"""Received datagrams that wait to be taken, per session."""


def _reset_error(stream_id: int, http_code: int, what: str) -> StreamReset:
    code = wt.http_code_to_webtransport(http_code)
    shown = f"code {code}" if code is not None else f"HTTP/3 code {http_code:#x}"
    return StreamReset(
        f"the server {what} WebTransport stream {stream_id} ({shown})",
        code=code,
        http_code=http_code,
    )


class WTRegistry:
    """The WebTransport sessions of one connection (``conn._wt``)."""

    def __init__(self, conn: HTTP3Connection) -> None:
        self.conn = conn
        self.sessions: dict[int, WTSessionCore] = {}
        self.streams: dict[int, WTStreamCore] = {}
        # Streams the server opened for a session whose CONNECT is not
        # answered here yet (their events, replayed once it is).
        self.early: dict[int, list[ev.Event]] = {}
        self.early_bytes = 0

    # -- events from the connection's dispatch (lock held) --------------------

    def dispatch_locked(self, event: ev.Event) -> None:
        """Place one event no request stream took."""
        kind = type(event)
        early = self.early
        if early:
            target = getattr(event, "target", event.stream_id)  # type: ignore[attr-defined]
            if target in early:
                early[target].append(event)
                if kind is ev.Data:
                    self.early_bytes += len(event.data)  # type: ignore[attr-defined]
                    if self.early_bytes > EARLY_BUFFER_LIMIT:
                        self._refuse_locked(target, wt.WT_BUFFERED_STREAM_REJECTED, False)
                        del early[target]
                return
        if kind is ev.Data or kind is ev.EndOfMessage or kind is ev.StreamReset:
            session = self.sessions.get(event.stream_id)  # type: ignore[attr-defined]
            if session is not None:
                session.connect_event_locked(event)
        elif kind is wt.WebTransportDatagram:
            session = self.sessions.get(event.session_id)  # type: ignore[attr-defined]
            if session is not None:
                session.datagram_locked(event.data)  # type: ignore[attr-defined]
        elif kind is wt.WebTransportStreamOpened:
            self._opened_locked(event)  # type: ignore[arg-type]
        elif kind is wt.WebTransportStreamReset or kind is wt.WebTransportStopSending:
            stream = self.streams.get(event.target)  # type: ignore[attr-defined]
            if stream is not None:
                code = event.error_code  # type: ignore[attr-defined]
                if kind is wt.WebTransportStreamReset:
                    stream.reset_locked(code)
                else:
                    stream.stopped_locked(code)

    def _opened_locked(self, event: wt.WebTransportStreamOpened) -> None:
        conn = self.conn
        stream_id = event.target
        session = self.sessions.get(event.session_id)
        refusal: int | None = None
        if session is None and event.session_id in conn._streams:
            # The session's answer is not processed yet: keep the stream's
            # events until it is (bounded).
            if len(self.early) < EARLY_STREAM_LIMIT:
                self.early[stream_id] = [event]
                return
            refusal = wt.WT_BUFFERED_STREAM_REJECTED
        elif session is None or session.closed_error is not None:
            refusal = wt.WT_SESSION_GONE
        elif len(session.incoming) >= session.max_incoming:
            refusal = wt.WT_BUFFERED_STREAM_REJECTED
        if refusal is not None:
            self._refuse_locked(stream_id, refusal, event.unidirectional)
            if session is not None:
                session.streams_refused += 1
                session.incoming_ended_locked(event.unidirectional)
            return
        assert session is not None
        stream = WTStreamCore(session, stream_id, readable=True, writable=not event.unidirectional)
        session.incoming.send_nowait(stream)
        session.wake_locked()

    def _refuse_locked(self, stream_id: int, code: int, unidirectional: bool) -> None:
        conn = self.conn
        conn._proto.stop_stream(stream_id, code)
        if not unidirectional:
            conn._proto.abort_stream(stream_id, code)
        conn._proto.forget_webtransport_stream(stream_id)
        conn._timer_wake.set()

    def replay_early_locked(self, session_id: int) -> None:
        """Session ``session_id`` is established: hand it the streams the
        server opened before."""
        for stream_id, events in list(self.early.items()):
            first = events[0]
            if first.session_id != session_id:  # type: ignore[attr-defined]
                continue
            del self.early[stream_id]
            self.early_bytes -= sum(
                len(e.data) for e in events if type(e) is ev.Data  # type: ignore[attr-defined]
            )
            for event in events:
                self.dispatch_locked(event)
                if type(event) is wt.WebTransportStreamOpened:
                    # Its Data and EndOfMessage now go to the stream's state.
                    self.conn._dispatch_locked(events[1:])
                    break

    def fail_locked(self, error: BaseException) -> None:
        """The connection failed: every session ends."""
        for session in list(self.sessions.values()):
            session.end_locked(
                SessionClosed(f"the WebTransport session's connection ended: {error}")
            )


class WTSessionCore:
    """One WebTransport session on ``conn``: ``session_id`` is its CONNECT
    stream; ``draft`` the server's draft."""

    def __init__(
        self,
        conn: HTTP3Connection,
        session_id: int,
        draft: wt.Draft,
        *,
        max_incoming: int = DEFAULT_MAX_INCOMING_STREAMS,
        max_datagrams: int = DEFAULT_MAX_DATAGRAMS,
        max_local_streams: int | None = None,
        creation_timeout: float | None = None,
        datagram_limit: int | None = None,
        stream_buffer_limit: int | None = None,
    ) -> None:
        backend = conn._backend
        self.conn = conn
        self.session_id = session_id
        self.draft = draft
        self.streams: dict[int, WTStreamCore] = {}
        self.max_incoming = max_incoming
        # Local limits (ClientConfig): streams opened here and open at once,
        # seconds a new stream may wait, largest datagram to send.
        self.max_local_streams = max_local_streams
        self.local_open = 0
        self.creation_timeout = creation_timeout
        self.datagram_limit = datagram_limit
        self.stream_buffer_limit = stream_buffer_limit
        self.incoming = backend.create_channel(max_incoming)
        self.datagram_channel = backend.create_channel(max_datagrams)
        self.parser = wt.CapsuleParser()
        self.closed_error: SessionClosed | None = None
        self.close_code: int | None = None
        self.close_reason: str | None = None
        self.draining = False
        self.fin_sent = False
        self.fin_received = False
        self.changed = backend.create_event()
        self.waiters: list[Any] = []
        # statistics
        self.bytes_sent = 0
        self.bytes_received = 0
        self.datagrams_sent = 0
        self.datagrams_received = 0
        self.datagrams_dropped = 0
        self.streams_opened = 0
        self.streams_accepted = 0
        self.streams_refused = 0
        # session flow control (current draft section 5): what the server allows
        settings = conn._proto.received_settings
        if draft.flow_control:
            self.max_data: int | None = settings.get(wt.SETTINGS_WT_INITIAL_MAX_DATA, 0)
            self.max_bidi: int | None = settings.get(wt.SETTINGS_WT_INITIAL_MAX_STREAMS_BIDI, 0)
            self.max_uni: int | None = settings.get(wt.SETTINGS_WT_INITIAL_MAX_STREAMS_UNI, 0)
        else:
            self.max_data = self.max_bidi = self.max_uni = None
        self.opened_bidi = 0
        self.opened_uni = 0
        # What this client allows the server (current draft section 5): the
        # session data window and stream limits it sent in its SETTINGS,
        # raised by WT_MAX_DATA / WT_MAX_STREAMS as the application reads
        # data and streams the server opened end.
        local = conn._proto.local_wt_settings if draft.flow_control else {}
        self.recv_window: int | None = local.get(wt.SETTINGS_WT_INITIAL_MAX_DATA)
        self.recv_limit = self.recv_window or 0
        self.consumed = 0
        self.incoming_window = {
            False: local.get(wt.SETTINGS_WT_INITIAL_MAX_STREAMS_BIDI, 0),
            True: local.get(wt.SETTINGS_WT_INITIAL_MAX_STREAMS_UNI, 0),
        }
        self.incoming_limit = dict(self.incoming_window)
        self.incoming_ended = {False: 0, True: 0}
        self.credit_capsules_sent = 0

    # -- events (lock held) ----------------------------------------------------

    def wake_locked(self) -> None:
        """Wake every task waiting for something of this session."""
        self.changed.set()
        for event in self.waiters:
            event.set()
        self.waiters = []

    def connect_event_locked(self, event: ev.Event) -> None:
        """Data, end or reset of the CONNECT stream."""
        kind = type(event)
        if kind is ev.Data:
            try:
                capsules = self.parser.feed(event.data)  # type: ignore[attr-defined]
                for capsule_type, payload in capsules:
                    self._capsule_locked(capsule_type, payload)
            except RemoteProtocolError as exc:
                self._protocol_error_locked(str(exc))
        elif kind is ev.EndOfMessage:
            self.fin_received = True
            self.end_locked(self._closed_by_server())
        else:
            code = event.error_code  # type: ignore[attr-defined]
            self.end_locked(
                SessionClosed(
                    f"the server reset the WebTransport session's CONNECT stream "
                    f"(HTTP/3 code {code:#x})"
                )
            )

    def _closed_by_server(self) -> SessionClosed:
        if self.close_code is not None:
            return SessionClosed(
                f"the server closed the WebTransport session (code {self.close_code}"
                + (f": {self.close_reason}" if self.close_reason else "")
                + ")",
                code=self.close_code,
                reason=self.close_reason or "",
            )
        return SessionClosed("the server ended the WebTransport session", code=0, reason="")

    def _capsule_locked(self, capsule_type: int, payload: bytes) -> None:
        if capsule_type == wt.CAPSULE_CLOSE_SESSION:
            if self.close_code is None:
                self.close_code, self.close_reason = wt.decode_close(payload)
            self.end_locked(self._closed_by_server())
        elif capsule_type == wt.CAPSULE_DRAIN_SESSION:
            self.draining = True
            self.wake_locked()
        elif self.draft.flow_control and capsule_type in (
            wt.CAPSULE_WT_MAX_DATA,
            wt.CAPSULE_WT_MAX_STREAMS_BIDI,
            wt.CAPSULE_WT_MAX_STREAMS_UNI,
        ):
            value = wt.decode_varint_payload(payload)
            if capsule_type == wt.CAPSULE_WT_MAX_DATA:
                self.max_data = max(self.max_data or 0, value)
            elif capsule_type == wt.CAPSULE_WT_MAX_STREAMS_BIDI:
                self.max_bidi = max(self.max_bidi or 0, value)
            else:
                self.max_uni = max(self.max_uni or 0, value)
            self.wake_locked()
        # Other capsule types are ignored (RFC 9297 section 3.2).

    def _protocol_error_locked(self, message: str) -> None:
        conn = self.conn
        conn._proto.reset_stream(self.session_id, ErrorCode.H3_MESSAGE_ERROR)
        conn._timer_wake.set()
        self.end_locked(SessionClosed(f"the server broke the WebTransport session: {message}"))

    def datagram_locked(self, data: bytes) -> None:
        if self.closed_error is not None:
            return
        try:
            queued = self.datagram_channel.send_nowait(data)
        except Exception:
            queued = False
        if queued:
            self.datagrams_received += 1
        else:
            self.datagrams_dropped += 1

    def end_locked(self, error: SessionClosed) -> None:
        """The session is over: its streams end with ``error`` (reset
        both ways with WT_SESSION_GONE, section 6), the channels close."""
        if self.closed_error is not None:
            return
        self.closed_error = error
        conn = self.conn
        registry: WTRegistry = conn._wt
        registry.sessions.pop(self.session_id, None)
        for stream in list(self.streams.values()):
            stream.session_gone_locked(error)
        self.incoming.close()
        self.datagram_channel.close()
        conn._timer_wake.set()
        self.wake_locked()

    # -- flow control (lock held) ---------------------------------------------

    def consumed_locked(self, size: int) -> None:
        """The application read (or dropped) ``size`` bytes of the session's
        streams: once half the session window is used up, grant the server
        a new one with WT_MAX_DATA (section 5.6.4)."""
        self.consumed += size
        window = self.recv_window
        if window is None:
            return
        target = self.consumed + window
        if target - self.recv_limit >= window // 2:
            self.recv_limit = target
            self._send_credit_locked(wt.CAPSULE_WT_MAX_DATA, target)

    def incoming_ended_locked(self, unidirectional: bool) -> None:
        """A stream the server opened is over (read, refused or reset):
        allow it one more with WT_MAX_STREAMS once half the initial limit
        is used up (section 5.6.2)."""
        self.incoming_ended[unidirectional] += 1
        window = self.incoming_window[unidirectional]
        if not window:
            return
        target = self.incoming_ended[unidirectional] + window
        if target - self.incoming_limit[unidirectional] >= max(1, window // 2):
            self.incoming_limit[unidirectional] = target
            capsule = wt.CAPSULE_WT_MAX_STREAMS_UNI if unidirectional else (
                wt.CAPSULE_WT_MAX_STREAMS_BIDI
            )
            self._send_credit_locked(capsule, target)

    def _send_credit_locked(self, capsule_type: int, value: int) -> None:
        conn = self.conn
        if self.fin_sent or self.closed_error is not None or conn._broken is not None:
            return
        if not conn._proto.can_send(self.session_id):
            return
        try:
            conn._proto.send_data(
                self.session_id,
                wt.encode_capsule(capsule_type, wt.encode_varint(value)),
                end_stream=False,
            )
        except LocalProtocolError:
            return
        self.credit_capsules_sent += 1
        conn._timer_wake.set()

    def stream_credit_locked(self, unidirectional: bool) -> bool:
        limit = self.max_uni if unidirectional else self.max_bidi
        if limit is None:
            return True
        return (self.opened_uni if unidirectional else self.opened_bidi) < limit

    def data_credit_locked(self) -> int | None:
        if self.max_data is None:
            return None
        return max(0, self.max_data - self.bytes_sent)

    def waiter_locked(self) -> Any:
        """An event set at the next change of this session (lock held:
        registered in the same critical section as the failed check)."""
        event = self.conn._backend.create_event()
        self.waiters.append(event)
        return event

    # -- operations -------------------------------------------------------------

    def check_open_locked(self) -> None:
        if self.closed_error is not None:
            raise self.closed_error
        broken = self.conn._broken
        if broken is not None:
            raise SessionClosed(f"the WebTransport session's connection ended: {broken}")

    async def open_stream(self, unidirectional: bool, timeout: float | None) -> WTStreamCore:
        """Open a stream of the session, waiting for the server's stream
        credit (QUIC MAX_STREAMS; current draft: WT_MAX_STREAMS) and, with
        ``max_local_streams``, for one of the streams opened here to end.
        With ``creation_timeout`` (``stream_creation_timeout``) that many
        seconds apply instead of ``timeout``.

        Raises:
            SessionClosed: The session is closed or closing.
            WriteTimeout: No stream could be opened in time (the message
                names ``stream_creation_timeout`` when it applied).
        """
        conn = self.conn
        backend = conn._backend
        what = ""
        if self.creation_timeout is not None:
            timeout = self.creation_timeout
            what = "stream_creation_timeout="
        limit = None if timeout is None else backend.monotonic() + timeout
        while True:
            with conn._lock:
                self.check_open_locked()
                if self.fin_sent:
                    raise SessionClosed("the WebTransport session is closing")
                local_room = (
                    self.max_local_streams is None or self.local_open < self.max_local_streams
                )
                if (
                    local_room
                    and self.stream_credit_locked(unidirectional)
                    and conn._proto.streams_left > 0
                ):
                    try:
                        stream_id = conn._proto.create_webtransport_stream(
                            self.session_id, unidirectional=unidirectional
                        )
                    except LocalProtocolError as exc:
                        raise WriteError(f"cannot open a WebTransport stream: {exc}") from exc
                    if unidirectional:
                        self.opened_uni += 1
                    else:
                        self.opened_bidi += 1
                    self.streams_opened += 1
                    self.local_open += 1
                    stream = WTStreamCore(
                        self, stream_id, readable=not unidirectional, writable=True, local=True
                    )
                    break
                waiter = self.waiter_locked()
                extra = _Stream(-1, waiter)
                extra.waiting = True
                conn._extra_waiters.append(extra)
                conn._send_waiters += 1
            try:
                left = None if limit is None else max(0.0, limit - backend.monotonic())
                if left == 0.0 or not await waiter.wait(left):
                    raise WriteTimeout(self._creation_timeout_message(what, timeout))
            finally:
                with conn._lock:
                    conn._extra_waiters.remove(extra)
                    conn._send_waiters -= 1
        await conn._transmit()
        return stream

    def _creation_timeout_message(self, what: str, timeout: float | None) -> str:
        if self.max_local_streams is not None and self.local_open >= self.max_local_streams:
            cause = f"{self.local_open} streams opened here are open (max_streams)"
        else:
            cause = "the server allowed no new stream"
        return f"no new WebTransport stream within {what}{timeout} seconds: {cause}"

    async def send_capsule(self, capsule: bytes, *, end: bool) -> None:
        """Send ``capsule`` on the CONNECT stream, ending it with ``end``.

        Raises:
            SessionClosed: Our side of the CONNECT stream already ended.
        """
        conn = self.conn
        with conn._lock:
            if self.fin_sent:
                raise SessionClosed("the WebTransport session is closing")
            if conn._broken is not None or not conn._proto.can_send(self.session_id):
                self.fin_sent = self.fin_sent or end
                return
            try:
                conn._proto.send_data(self.session_id, capsule, end_stream=end)
            except LocalProtocolError:
                pass
            self.fin_sent = self.fin_sent or end
        await conn._transmit_quietly()

    def send_datagram(self, data: bytes) -> None:
        """Queue a datagram (sent by the caller's next transmit).

        Raises:
            SessionClosed: The session is closed.
            WebTransportError subclass DatagramTooLarge: checked by the caller.
        """
        conn = self.conn
        with conn._lock:
            self.check_open_locked()
            try:
                conn._proto.send_webtransport_datagram(self.session_id, data)
            except LocalProtocolError as exc:
                raise WriteError(str(exc)) from exc
            self.datagrams_sent += 1

    def max_datagram_size(self) -> int:
        """Largest datagram payload to send, bytes: what one QUIC packet
        carries, lowered to ``datagram_limit`` (``max_datagram_size``)."""
        size = self.conn._proto.max_datagram_size(self.session_id)
        limit = self.datagram_limit
        return size if limit is None else min(size, limit)

    async def wait_fin(self, timeout: float) -> None:
        """Wait up to ``timeout`` seconds for the server to end the
        session (its FIN, a reset, or the connection ending)."""
        conn = self.conn
        backend = conn._backend
        limit = backend.monotonic() + timeout
        while True:
            with conn._lock:
                if self.closed_error is not None or conn._broken is not None:
                    return
                waiter = self.waiter_locked()
            left = limit - backend.monotonic()
            if left <= 0 or not await waiter.wait(left):
                return


class WTStreamCore:
    """One WebTransport stream as bytes each way, over ``session``.

    Reading returns the bytes as they arrive (``b""`` at the end); writing
    waits for QUIC flow-control credit (at most ``SEND_BUFFER_LIMIT``
    bytes queued unsent) and, on the current draft, for the session's data
    credit. Errors: :class:`~webwire.StreamReset` (reset or stopped by the
    server, or aborted here), :class:`~webwire.SessionClosed` (the session
    ended), :class:`~webwire.ReadError`/:class:`~webwire.WriteError` (the
    connection failed), timeouts.
    """

    def __init__(
        self,
        session: WTSessionCore,
        stream_id: int,
        *,
        readable: bool,
        writable: bool,
        local: bool = False,
    ) -> None:
        conn = session.conn
        self.session = session
        self.local = local
        self.conn = conn
        self.stream_id = stream_id
        self.readable = readable
        self.writable = writable
        self.state = _Stream(stream_id, conn._backend.create_event())
        if session.stream_buffer_limit is not None:
            self.state.limit = session.stream_buffer_limit
        self.writer = _Stream(stream_id, conn._backend.create_event())
        self.eof = not readable
        self.eof_sent = not writable
        self.stop_error: StreamReset | None = None
        self.local_error: StreamReset | None = None
        self.forgotten = False
        self.closed = conn._backend.create_event()
        self.bytes_received = 0
        self.bytes_sent = 0
        if readable:
            conn._streams[stream_id] = self.state
        conn._extra_waiters.append(self.writer)
        session.streams[stream_id] = self
        conn._wt.streams[stream_id] = self
        if not readable:
            self.state.done_receiving = True

    # -- events (lock held) ------------------------------------------------------

    def reset_locked(self, http_code: int) -> None:
        state = self.state
        if state.error is None and not self.eof:
            state.error = _reset_error(self.stream_id, http_code, "reset")
        state.done_receiving = True
        state.wake.set()
        self._maybe_forget_locked()

    def stopped_locked(self, http_code: int) -> None:
        if self.stop_error is None and not self.eof_sent:
            self.stop_error = _reset_error(self.stream_id, http_code, "stopped (STOP_SENDING)")
            # Our side is over: answer with RESET_STREAM (RFC 9000 section 3.5).
            self.conn._proto.abort_stream(self.stream_id, http_code)
            self.conn._timer_wake.set()
        self.eof_sent = True
        self.writer.wake.set()
        self._maybe_forget_locked()

    def session_gone_locked(self, error: SessionClosed) -> None:
        conn = self.conn
        state = self.state
        if not self.eof and not isinstance(state.error, StreamReset):
            state.error = error
            conn._proto.stop_stream(self.stream_id, wt.WT_SESSION_GONE)
        if not self.eof_sent:
            self.stop_error = self.stop_error or StreamReset(
                f"WebTransport stream {self.stream_id} ended with its session: {error}"
            )
            conn._proto.abort_stream(self.stream_id, wt.WT_SESSION_GONE)
            self.eof_sent = True
        state.wake.set()
        self.writer.wake.set()
        self._forget_locked()

    def _maybe_forget_locked(self) -> None:
        if (self.eof or self.state.error is not None) and self.eof_sent:
            self._forget_locked()

    def _forget_locked(self) -> None:
        if self.forgotten:
            return
        self.forgotten = True
        self.closed.set()
        session = self.session
        if self.local:
            session.local_open -= 1
            session.wake_locked()
        else:
            session.incoming_ended_locked(not self.writable)
        conn = self.conn
        conn._streams.pop(self.stream_id, None)
        if self.writer in conn._extra_waiters:
            conn._extra_waiters.remove(self.writer)
        self.session.streams.pop(self.stream_id, None)
        conn._wt.streams.pop(self.stream_id, None)
        conn._proto.forget_webtransport_stream(self.stream_id)

    # -- reading -----------------------------------------------------------------

    def _read_error_locked(self) -> BaseException | None:
        if self.local_error is not None:
            return self.local_error
        error = self.state.error
        if error is None:
            broken = self.conn._broken
            if broken is None:
                return None
            error = broken
        if isinstance(error, StaleConnection):
            error = error.error
        if isinstance(error, SessionClosed | StreamReset | ReadError):
            return error
        return ReadError(str(error))

    async def read(self, max_bytes: int, timeout: float | None) -> bytes:
        """Up to ``max_bytes`` bytes (at least 1), or ``b""`` at the end.

        Raises:
            StreamReset, SessionClosed, ReadError, ReadTimeout.
        """
        conn = self.conn
        state = self.state
        backend = conn._backend
        limit = None if timeout is None else backend.monotonic() + timeout
        while True:
            with conn._lock:
                events = state.events
                if events:
                    data = self._take_locked(events, max_bytes)
                    if data is not None:
                        return data
                if self.eof:
                    self._maybe_forget_locked()
                    return b""
                error = self._read_error_locked()
                if error is not None:
                    raise error
            left = None if limit is None else max(0.0, limit - backend.monotonic())
            message = (
                f"no data on WebTransport stream {self.stream_id} within {timeout} seconds"
            )
            if left == 0.0:
                raise ReadTimeout(message)
            try:
                await conn._wait(state, Timeout(None, read=left), None)
            except ReadTimeout as exc:
                raise ReadTimeout(message) from exc

    def _take_locked(self, events: list[ev.Event], max_bytes: int) -> bytes | None:
        first = events[0]
        if type(first) is ev.EndOfMessage:
            events.pop(0)
            self.eof = True
            return None
        data: bytes = first.data  # type: ignore[attr-defined]
        if len(data) > max_bytes:
            first.data = data[max_bytes:]  # type: ignore[attr-defined]
            data = data[:max_bytes]
        else:
            # What else arrived, up to max_bytes, in one piece: one read
            # per packet would cost a wake-up each.
            count = 1
            size = len(data)
            for event in events[1:]:
                if type(event) is not ev.Data:
                    break
                size += len(event.data)  # type: ignore[attr-defined]
                if size > max_bytes:
                    break
                count += 1
            if count > 1:
                data = b"".join([e.data for e in events[:count]])  # type: ignore[attr-defined]
            del events[:count]
        self.conn._consumed_locked(self.state, len(data))
        self.bytes_received += len(data)
        session = self.session
        session.bytes_received += len(data)
        session.consumed_locked(len(data))
        return data

    # -- writing -----------------------------------------------------------------

    def _write_error_locked(self) -> BaseException | None:
        if self.local_error is not None:
            return self.local_error
        session = self.session
        if session.closed_error is not None:
            return session.closed_error
        if self.stop_error is not None:
            return self.stop_error
        if self.eof_sent:
            return WriteError(f"WebTransport stream {self.stream_id} was ended for sending")
        broken = self.conn._broken
        if broken is not None:
            if isinstance(broken, StaleConnection):
                broken = broken.error
            return WriteError(f"the HTTP/3 connection failed: {broken}")
        return None

    async def write(self, data: bytes, timeout: float | None, *, end: bool = False) -> None:
        """Send ``data`` (ending the stream with ``end``), waiting for
        credit.

        Raises:
            StreamReset, SessionClosed, WriteError, WriteTimeout.
        """
        from ._h3_engine import _CHUNK, SEND_BUFFER_LIMIT

        conn = self.conn
        session = self.session
        backend = conn._backend
        proto = conn._proto
        limit = None if timeout is None else backend.monotonic() + timeout
        view = memoryview(data)
        while view or end:
            waiter = None
            with conn._lock:
                error = self._write_error_locked()
                if error is not None:
                    raise error
                room = proto.send_buffer_size(self.stream_id) < SEND_BUFFER_LIMIT
                credit = session.data_credit_locked()
                if room and (credit is None or credit > 0 or not view):
                    size = _CHUNK if credit is None else min(_CHUNK, credit)
                    piece = view[:size]
                    view = view[len(piece) :]
                    last = end and not view
                    try:
                        proto.send_stream_data(self.stream_id, piece, end_stream=last)
                    except LocalProtocolError as exc:
                        raise WriteError(str(exc)) from exc
                    self.bytes_sent += len(piece)
                    session.bytes_sent += len(piece)
                    if last:
                        end = False
                        self.eof_sent = True
                        self._maybe_forget_locked()
                    sent = True
                else:
                    sent = False
                    if room:
                        waiter = session.waiter_locked()
            if sent:
                await conn._transmit()
                continue
            left = None if limit is None else max(0.0, limit - backend.monotonic())
            message = (
                f"the server gave no flow-control credit on WebTransport stream "
                f"{self.stream_id} within {timeout} seconds"
            )
            if left == 0.0:
                raise WriteTimeout(message)
            if waiter is not None:
                if not await waiter.wait(left):
                    raise WriteTimeout(message)
                continue
            try:
                await conn._wait(self.writer, Timeout(None, write=left), None, for_send=True)
            except WriteTimeout as exc:
                raise WriteTimeout(message) from exc

    # -- ending ------------------------------------------------------------------

    def abort(self, code: int) -> None:
        """RESET_STREAM with WebTransport code ``code``; later writes raise
        :class:`~webwire.StreamReset`. Never raises for a closed stream."""
        http_code = wt.webtransport_code_to_http(code)
        conn = self.conn
        with conn._lock:
            if not self.eof_sent:
                conn._proto.abort_stream(self.stream_id, http_code)
                conn._timer_wake.set()
                self.eof_sent = True
                self.local_error = self.local_error or StreamReset(
                    f"WebTransport stream {self.stream_id} was aborted (code {code})", code=code
                )
            self.writer.wake.set()
            self._maybe_forget_locked()

    def stop(self, code: int) -> None:
        """STOP_SENDING with WebTransport code ``code``; unread data is
        dropped and later reads return the end."""
        http_code = wt.webtransport_code_to_http(code)
        conn = self.conn
        with conn._lock:
            if not self.eof and self.state.error is None:
                conn._proto.stop_stream(self.stream_id, http_code)
                conn._timer_wake.set()
            size = sum(len(e.data) for e in self.state.events if type(e) is ev.Data)  # type: ignore[attr-defined]
            if size:
                conn._consumed_locked(self.state, size)
                self.session.consumed_locked(size)
            self.state.events = []
            self.eof = True
            self.state.done_receiving = True
            self.state.wake.set()
            conn._streams.pop(self.stream_id, None)
            self._maybe_forget_locked()

    async def wait_closed(self, timeout: float | None) -> None:
        """Wait until the stream is over both ways: read to its end (or
        reset, stopped), ended or aborted for sending, or its session or
        connection ended.

        Raises:
            ReadTimeout: Not over within ``timeout`` seconds.
        """
        if not await self.closed.wait(timeout):
            raise ReadTimeout(f"WebTransport stream {self.stream_id} did not end in time")
