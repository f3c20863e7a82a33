"""One HTTP/2 connection shared by many requests (RFC 9113).

Requests run concurrently as streams of one TCP (usually TLS) connection,
up to the server's ``SETTINGS_MAX_CONCURRENT_STREAMS``. There is no
background task: whichever request needs data from the server takes the
connection's *reader* role, reads, feeds :class:`~webwire._proto.h2.
H2Connection` and files the events per stream, waking the requests they
belong to; when it has what it needs it hands the role to another waiting
request. Writes go through one write lock, which also keeps the frames of
concurrent requests in order. The same code therefore runs on asyncio,
trio and the blocking backend, where threads sharing a ``Client`` take the
reader role in turn.

All state shared between requests (the ``h2`` state machine, the stream
table, the reader role) is touched only under the backend's bookkeeping
lock (a real lock only on the blocking backend) and never across an
``await``, so a request cancelled at any ``await`` leaves it consistent;
its stream is reset (RST_STREAM ``CANCEL``, sent with the next write).

A ``2xx`` answer to ``CONNECT`` (RFC 9113 section 8.5), extended CONNECT
included (RFC 8441 section 4: a WebSocket), carries
``extensions["detach"]``: the stream handed over as a
:class:`~webwire._backends.base.NetworkStream` (:class:`HTTP2TunnelStream`)
of DATA frames, full duplex, while the connection stays in the pool and
goes on serving other streams. The tunnel's writer waits for flow-control
credit as one more waiter of the connection, so one task (or thread) may
read the tunnel while another writes it.
"""

from __future__ import annotations

from collections.abc import AsyncIterable, AsyncIterator, Callable
from typing import NoReturn

from webwire._backends.base import Backend, Event, NetworkStream
from webwire._config import Limits, Timeout
from webwire._exceptions import (
    LocalProtocolError,
    ReadError,
    ReadTimeout,
    RemoteProtocolError,
    TransportError,
    WriteError,
    WriteTimeout,
)
from webwire._proto import events as ev
from webwire._proto.h2 import MAX_STREAM_ID, ErrorCodes, H2Connection

from ._h2_tunnel import TUNNEL_CLOSE_WAIT, HTTP2TunnelStream, _TunnelResponseStream
from ._types import (
    Connection,
    RawResponse,
    ResponseStream,
    StaleConnection,
    TransportRequest,
    bound_timeout,
    close_body_iterator,
    total_timeout_error,
)
from .connect import Origin

__all__ = ["TUNNEL_CLOSE_WAIT", "HTTP2Connection", "HTTP2TunnelStream"]

READ_SIZE = 256 * 1024


_REFUSED = (ErrorCodes.REFUSED_STREAM,)


class _Stream:
    """What one request's stream has received and who waits for it."""

    __slots__ = (
        "done_receiving",
        "error",
        "events",
        "got_head",
        "released",
        "stream_id",
        "waiting",
        "wake",
        "wants_window",
    )

    def __init__(self, stream_id: int, wake: Event) -> None:
        self.stream_id = stream_id
        self.events: list[ev.Event] = []
        self.error: BaseException | None = None
        self.wake = wake
        self.waiting = False
        self.done_receiving = False
        self.released = False
        self.wants_window = False
        self.got_head = False


class HTTP2Connection(Connection):
    """An HTTP/2 client connection over one :class:`NetworkStream`.

    Args:
        origin: The origin it serves (its pool key).
        stream: The connected stream (TLS with ALPN ``h2``, or cleartext
            with prior knowledge, RFC 9113 section 3.3).
        backend: The concurrency backend.
        limits: Keep-alive expiry and header limits.
        on_release: Called (synchronously) each time a request ends.
    """

    http_version = "HTTP/2"
    multiplexed = True

    def __init__(
        self,
        origin: Origin,
        stream: NetworkStream,
        backend: Backend,
        *,
        limits: Limits,
        on_release: Callable[[Connection], None],
    ) -> None:
        self.origin = origin
        self.idle_since = backend.monotonic()
        self._stream = stream
        self._backend = backend
        self._limits = limits
        self._on_release = on_release
        self._h2 = H2Connection(max_header_list_size=limits.max_header_size)
        self._lock = backend.create_bookkeeping_lock()
        self._write_lock = backend.create_lock()
        self._streams: dict[int, _Stream] = {}
        self._reserved = 0
        self._active = 0
        self._reading = False
        # Waiters that are not a stream's receiver: tunnel writers waiting
        # for flow-control credit, requests waiting for the server's SETTINGS.
        self._extra_waiters: list[_Stream] = []
        self._broken: BaseException | None = None
        self._closed = False
        self.requests_sent = 0

    # -- Connection interface (called under the pool lock) ---------------

    def can_handle(self, origin: Origin) -> bool:
        """Whether ``origin`` is the origin of this connection."""
        return origin == self.origin

    def is_available(self) -> bool:
        """Whether another stream may be opened now."""
        with self._lock:
            h2 = self._h2
            return (
                self._broken is None
                and not self._closed
                and h2.goaway is None
                and self._reserved + self._active < h2.max_concurrent_streams
                and h2.next_stream_id + 2 * self._reserved <= MAX_STREAM_ID
            )

    def is_idle(self) -> bool:
        """Whether no request is in flight."""
        return self._reserved + self._active == 0

    def has_expired(self, now: float) -> bool:
        """Closed, broken, GOAWAY received, out of stream ids, or idle past
        ``keepalive_expiry``; an idle connection the server closed too."""
        with self._lock:
            if self._closed or self._broken is not None:
                return True
            h2 = self._h2
            if h2.goaway is not None or h2.stream_ids_exhausted():
                return self.is_idle()
            if not self.is_idle():
                return False
            expiry = self._limits.keepalive_expiry
            return expiry is not None and now - self.idle_since > expiry

    def reserve(self) -> None:
        """Take a stream slot for a request about to start."""
        with self._lock:
            self._reserved += 1

    # -- requests --------------------------------------------------------

    async def handle_request(self, request: TransportRequest) -> RawResponse:
        """Send ``request`` on a new stream and return the response head.

        Raises:
            StaleConnection: The server refused the stream or sent GOAWAY
                before processing it (safe to retry elsewhere).
            LocalProtocolError: The request cannot be sent over HTTP/2.
            RemoteProtocolError: The server broke the protocol or reset the
                stream.
            ReadTimeout, WriteTimeout, ReadError, WriteError: I/O failures.
        """
        body = request.body
        has_body = body is not None and not (isinstance(body, bytes) and not body)
        try:
            await self._catch_up()
            state = self._open_stream(
                request, end_stream=not has_body and request.method != b"CONNECT"
            )
        except BaseException:
            self._release(None)
            raise
        timeout = request.timeout
        deadline = request.deadline
        try:
            await self._flush(timeout, deadline)
            if has_body:
                assert body is not None
                await self._send_body(state, body, timeout, deadline)
            head = await self._read_head(state, timeout, deadline)
        except BaseException as exc:
            self._release(state)
            if isinstance(exc, Exception):  # not cancelled: send the RST_STREAM now
                await self._flush_quietly(timeout, deadline)
            raise
        if request.method == b"CONNECT" and 200 <= head.status_code < 300:
            tunnel = _TunnelResponseStream(self, state, timeout)
            return RawResponse(
                head.status_code,
                b"",
                "HTTP/2",
                head.headers,
                tunnel,
                {"stream_id": state.stream_id, "detach": tunnel.detach},
            )
        return RawResponse(
            head.status_code,
            b"",
            "HTTP/2",
            head.headers,
            HTTP2ResponseStream(self, state, timeout, deadline),
            {"stream_id": state.stream_id},
        )

    async def _catch_up(self) -> None:
        """On a connection where no request is in flight, read what the
        server sent meanwhile (a GOAWAY, the end of the connection, SETTINGS)
        before opening a stream, so a connection the server closed while
        idle is noticed before the request is sent, and retried elsewhere
        whatever its method."""
        with self._lock:
            if self._active or self._reading or not self._stream.is_readable():
                return
            self._reading = True
        try:
            await self._read_once(0.0)
        except TransportError:
            pass
        finally:
            with self._lock:
                self._reading = False
                self._hand_over_locked()

    def _open_stream(self, request: TransportRequest, *, end_stream: bool) -> _Stream:
        """Send the header section (no await); the slot becomes a stream."""
        url = request.url
        wake = self._backend.create_event()
        with self._lock:
            if self._broken is not None:
                raise StaleConnection(self._broken, unprocessed=True)
            if self._h2.goaway is not None or self._h2.stream_ids_exhausted():
                raise StaleConnection(
                    RemoteProtocolError("the HTTP/2 connection is closing"), unprocessed=True
                )
            protocol = request.extensions.get("protocol")
            stream_id = self._h2.send_request(
                request.method,
                url.scheme.encode("ascii"),
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
        """Send the request content within the flow-control windows; stop
        early when a final response arrives first (the rest is abandoned,
        RFC 9113 section 8.1)."""
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
        view = memoryview(data)
        while True:
            if state.got_head:  # a final response came early (section 8.1)
                return True
            with self._lock:
                self._check_stream(state)
                taken = self._h2.send_data(state.stream_id, view, end_stream=last)
            if taken or (last and not view):
                await self._flush(timeout, deadline)
            view = view[taken:]
            if not view:
                return False
            # Out of flow-control credit: wait for WINDOW_UPDATE (or an
            # early response).
            await self._receive(state, timeout, deadline, need_window=True)

    def _check_stream(self, state: _Stream) -> None:
        """Raise the error that ended ``state`` (lock held)."""
        if state.error is not None:
            raise state.error
        if self._broken is not None:
            raise ReadError(f"the HTTP/2 connection failed: {self._broken}") from self._broken

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
                    f"unexpected HTTP/2 event before the response: {event!r}"
                )

    async def _next_event(
        self, state: _Stream, timeout: Timeout, deadline: float | None
    ) -> ev.Event:
        """The next event of ``state``, receiving as needed.

        Raises:
            The stream's or the connection's error.
        """
        while True:
            with self._lock:
                if state.events:
                    return state.events.pop(0)
                self._check_stream(state)
            await self._receive(state, timeout, deadline)

    async def _receive(
        self,
        state: _Stream,
        timeout: Timeout,
        deadline: float | None,
        *,
        need_window: bool = False,
    ) -> None:
        """Wait until ``state`` has an event or an error (or, with
        ``need_window``, until the connection received anything: a
        WINDOW_UPDATE may have come), reading from the connection when no
        other request is.

        The read timeout counts from this call: traffic of other streams
        does not extend it.

        Raises:
            ReadTimeout: Nothing for this stream within the read timeout.
        """
        backend = self._backend
        now = backend.monotonic()
        limit = None if timeout.read is None else now + timeout.read
        if deadline is not None and (limit is None or deadline <= limit):
            if now >= deadline:
                raise total_timeout_error(timeout)
            limit = deadline
        wake = state.wake
        while True:
            with self._lock:
                if state.error is not None or self._broken is not None:
                    return
                if need_window:
                    # What was awaited may have come while the caller was
                    # writing (another reader took it): credit on the
                    # stream, or (stream 0) the server's SETTINGS.
                    if state.stream_id:
                        if self._h2.send_window(state.stream_id) > 0:
                            return
                    elif self._h2.settings_received:
                        return
                elif state.events:
                    return
                become_reader = not self._reading
                if become_reader:
                    self._reading = True
                else:
                    wake.clear()
                    state.waiting = True
                    state.wants_window = need_window
            left = None if limit is None else max(0.0, limit - backend.monotonic())
            if become_reader:
                await self._read_for(state, left, need_window, timeout, deadline)
                return
            try:
                woke = await wake.wait(left)
            finally:
                with self._lock:
                    state.waiting = False
                    state.wants_window = False
                    if not self._reading:
                        self._hand_over_locked()
            if need_window and woke:
                return
            if not woke:
                with self._lock:
                    if state.events or state.error is not None or self._broken is not None:
                        return
                self._raise_read_timeout(timeout, deadline, None)

    async def _read_for(
        self,
        state: _Stream,
        left: float | None,
        need_window: bool,
        timeout: Timeout,
        deadline: float | None,
    ) -> None:
        """As the reader: read until ``state`` has something (once with
        ``need_window``), within ``left`` seconds; then hand the role on."""
        backend = self._backend
        limit = None if left is None else backend.monotonic() + left
        try:
            while True:
                await self._read_once(left)
                with self._lock:
                    if need_window or state.events or state.error is not None or (
                        self._broken is not None
                    ):
                        break
                left = None if limit is None else max(0.0, limit - backend.monotonic())
        except ReadTimeout as exc:
            self._raise_read_timeout(timeout, deadline, exc)
        finally:
            with self._lock:
                self._reading = False
                self._hand_over_locked()
        await self._flush_quietly(timeout, deadline)

    def _raise_read_timeout(
        self, timeout: Timeout, deadline: float | None, cause: BaseException | None
    ) -> NoReturn:
        """Raise the ReadTimeout of a wait that ran out: the total deadline's
        when it has passed, else the read timeout's."""
        if deadline is not None and self._backend.monotonic() >= deadline:
            raise total_timeout_error(timeout) from cause
        raise ReadTimeout(f"no data received within {timeout.read} seconds") from cause

    async def _flush_quietly(self, timeout: Timeout, deadline: float | None) -> None:
        """Send what receiving queued (acknowledgements, WINDOW_UPDATE,
        RST_STREAM). A failure breaks the connection, and each request
        learns it from its own stream: one that was refused or cut off
        before its head may still be retried, so the write error is not
        what it must see."""
        try:
            await self._flush(timeout, deadline)
        except TransportError:
            pass

    def _hand_over_locked(self) -> None:
        """Wake one waiting request with nothing to do, to become the
        reader (lock held, reader role free)."""
        for other in self._streams.values():
            if other.waiting and not other.events and other.error is None:
                other.wake.set()
                return
        for other in self._extra_waiters:
            if other.waiting:
                other.wake.set()
                return

    async def _read_once(self, timeout: float | None) -> None:
        """Read once from the connection and file the events per stream."""
        try:
            data = await self._stream.read(READ_SIZE, timeout)
        except ReadTimeout:
            raise
        except (ReadError, TransportError) as exc:
            self._fail(exc)
            raise
        with self._lock:
            try:
                self._h2.receive_data(data)
            except RemoteProtocolError as exc:
                self._fail_locked(exc)
                raise
            self._dispatch_locked(self._h2.events())
            for state in self._streams.values():
                if state.wants_window and state.waiting:
                    state.wake.set()
            if self._extra_waiters:
                for state in self._extra_waiters:
                    if state.waiting:
                        state.wake.set()

    def _dispatch_locked(self, events: list[ev.Event]) -> None:
        streams = self._streams
        for event in events:
            kind = type(event)
            if kind is ev.ConnectionTerminated:
                self._terminated_locked(event)  # type: ignore[arg-type]
                continue
            state = streams.get(event.stream_id)  # type: ignore[attr-defined]
            if state is None:
                continue
            if kind is ev.StreamReset:
                code = event.error_code  # type: ignore[attr-defined]
                if code == ErrorCodes.NO_ERROR and state.done_receiving:
                    pass  # complete response, then "stop sending" (section 8.1)
                elif code in _REFUSED:
                    state.error = StaleConnection(
                        RemoteProtocolError(f"the server refused HTTP/2 stream {state.stream_id}"),
                        unprocessed=True,
                    )
                else:
                    state.error = RemoteProtocolError(
                        f"the server reset HTTP/2 stream {state.stream_id} "
                        f"({_error_name(code)})"
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

    def _terminated_locked(self, event: ev.ConnectionTerminated) -> None:
        if event.last_stream_id is None:
            # End of stream from the server.
            error = RemoteProtocolError("the server closed the HTTP/2 connection")
            for state in self._streams.values():
                if not state.done_receiving and state.error is None:
                    state.error = error if state.got_head else StaleConnection(error)
                    if state.waiting:
                        state.wake.set()
            self._broken = error
            return
        if event.error_code != ErrorCodes.NO_ERROR:
            error = RemoteProtocolError(
                f"the server closed the HTTP/2 connection ({_error_name(event.error_code)}"
                f"{': ' + event.reason if event.reason else ''})"
            )
            for state in self._streams.values():
                if (
                    not state.done_receiving
                    and state.error is None
                    and state.stream_id <= event.last_stream_id
                ):
                    state.error = error
                    if state.waiting:
                        state.wake.set()

    def _fail(self, exc: BaseException) -> None:
        with self._lock:
            self._fail_locked(exc)

    def _fail_locked(self, exc: BaseException) -> None:
        """The connection is unusable: every stream still receiving fails."""
        if self._broken is None:
            self._broken = exc
        for state in self._streams.values():
            if not state.done_receiving and state.error is None:
                state.error = exc if isinstance(exc, TransportError) else ReadError(str(exc))
            if state.waiting:
                state.wake.set()
        for state in self._extra_waiters:
            if state.waiting:
                state.wake.set()

    async def _flush(self, timeout: Timeout, deadline: float | None) -> None:
        """Write what ``h2`` has queued (frames of every stream, in order).

        Raises:
            WriteTimeout, WriteError: The write failed; the connection is
                then broken for every stream (a frame may be cut).
        """
        if not self._h2.has_data_to_send():
            return  # nothing queued (what was is being written by another)
        backend = self._backend
        write_timeout = bound_timeout(timeout.write, deadline, backend.monotonic())
        lock = self._write_lock
        if not await lock.acquire(write_timeout):
            raise WriteTimeout(f"the HTTP/2 connection was busy for {timeout.write} seconds")
        try:
            with self._lock:
                data = self._h2.data_to_send()
            if data:
                await self._write(data, write_timeout)
        finally:
            lock.release()

    async def _write(self, data: bytes, timeout: float | None) -> None:
        """Write ``data`` (write lock held); a failed or interrupted write
        breaks the connection, since a frame may be cut."""
        done = False
        try:
            await self._stream.write(data, timeout)
            done = True
        except (WriteError, WriteTimeout) as exc:
            self._fail(exc)
            raise
        finally:
            if not done:
                self._fail(WriteError("a write to the HTTP/2 connection was interrupted"))

    # -- extended CONNECT (RFC 8441) ----------------------------------------

    async def connect_protocol_enabled(self, timeout: Timeout, deadline: float | None) -> bool:
        """Whether the server allows extended CONNECT (its
        ``SETTINGS_ENABLE_CONNECT_PROTOCOL``, RFC 8441 section 3), waiting
        for its first SETTINGS frame if it has not arrived yet.

        Raises:
            ReadTimeout: No SETTINGS within ``timeout.read`` seconds (or
                before ``deadline``).
            ReadError, RemoteProtocolError: The connection failed.
        """
        h2 = self._h2
        if h2.settings_received:
            return h2.connect_protocol_enabled
        await self._flush(timeout, deadline)  # our preface, if not sent yet
        waiter = _Stream(0, self._backend.create_event())
        with self._lock:
            self._extra_waiters.append(waiter)
        try:
            backend = self._backend
            limit = None if timeout.read is None else backend.monotonic() + timeout.read
            while True:
                with self._lock:
                    if h2.settings_received:
                        return h2.connect_protocol_enabled
                    if self._broken is not None:
                        broken = self._broken
                        raise (
                            broken if isinstance(broken, TransportError) else ReadError(str(broken))
                        )
                left = None if limit is None else max(0.0, limit - backend.monotonic())
                message = f"the server sent no HTTP/2 SETTINGS within {timeout.read} seconds"
                if left == 0.0:
                    raise ReadTimeout(message)
                try:
                    await self._receive(
                        waiter, Timeout(None, read=left), deadline, need_window=True
                    )
                except ReadTimeout as exc:
                    if deadline is not None and backend.monotonic() >= deadline:
                        raise
                    raise ReadTimeout(message) from exc
        finally:
            with self._lock:
                self._extra_waiters.remove(waiter)

    # -- release and close -----------------------------------------------

    def _release(self, state: _Stream | None) -> None:
        """End a request: forget its stream (reset it if still open) and
        give the slot back (``state`` is ``None`` when the stream was never
        opened). Synchronous; idempotent per stream."""
        with self._lock:
            if state is None:
                self._reserved -= 1
            else:
                if state.released:
                    return
                state.released = True
                self._active -= 1
                self._streams.pop(state.stream_id, None)
                if state.events:  # DATA nobody will read: credit the connection
                    for event in state.events:
                        if type(event) is ev.Data:
                            self._h2.acknowledge(state.stream_id, len(event.data))
                    state.events = []
                if not self._h2.stream_is_closed(state.stream_id):
                    self._h2.reset_stream(state.stream_id, ErrorCodes.CANCEL)
            if self._reserved + self._active == 0:
                self.idle_since = self._backend.monotonic()
            if not self._reading:
                self._hand_over_locked()
        self._on_release(self)

    async def _release_and_flush(self, state: _Stream, timeout: Timeout) -> None:
        """Release ``state`` and send its RST_STREAM now if it needed one."""
        self._release(state)
        await self._flush_quietly(timeout, None)

    def close(self) -> None:
        """Close at once; requests in flight fail with ``ReadError``."""
        with self._lock:
            self._closed = True
            self._fail_locked(ReadError("the HTTP/2 connection was closed"))
        self._stream.abort()

    async def aclose(self) -> None:
        """Send GOAWAY (best effort) and close."""
        if not self._closed and self._broken is None:
            with self._lock:
                self._h2.close()
            await self._flush_quietly(Timeout(0.1), None)
        self.close()


def _error_name(code: int) -> str:
    try:
        return ErrorCodes(code).name
    except ValueError:
        return f"error code {code:#x}"


class HTTP2ResponseStream(ResponseStream, AsyncIterator[bytes]):
    """The body of one HTTP/2 response. Each step returns the DATA that has
    arrived (joined); consumed bytes are credited back to the server, so a
    body nobody reads holds at most one stream window."""

    __slots__ = ("_conn", "_deadline", "_done", "_state", "_timeout", "trailers")

    def __init__(
        self, conn: HTTP2Connection, state: _Stream, timeout: Timeout, deadline: float | None
    ) -> None:
        self._conn = conn
        self._state = state
        self._timeout = timeout
        self._deadline = deadline
        self._done = False
        self.trailers: list[tuple[bytes, bytes]] = []

    def __aiter__(self) -> HTTP2ResponseStream:
        return self

    async def __anext__(self) -> bytes:
        if self._done:
            raise StopAsyncIteration
        conn = self._conn
        state = self._state
        try:
            while True:
                chunks: list[bytes] = []
                ended = False
                with conn._lock:
                    events = state.events
                    if not events and state.error is not None:
                        raise state.error
                    state.events = []
                    for event in events:
                        kind = type(event)
                        if kind is ev.Data:
                            chunks.append(event.data)  # type: ignore[attr-defined]
                        elif kind is ev.EndOfMessage:
                            self.trailers = event.trailers  # type: ignore[attr-defined]
                            ended = True
                    if chunks:
                        data = chunks[0] if len(chunks) == 1 else b"".join(chunks)
                        conn._h2.acknowledge(state.stream_id, len(data))
                if ended:
                    self._done = True
                    conn._release(state)
                    if not chunks:
                        raise StopAsyncIteration
                    return data
                if chunks:
                    # Send the WINDOW_UPDATE the acknowledgement may have queued.
                    await conn._flush_quietly(self._timeout, self._deadline)
                    return data
                await conn._receive(state, self._timeout, self._deadline)
        except StopAsyncIteration:
            raise
        except BaseException as exc:
            self._done = True
            conn._release(state)
            if isinstance(exc, Exception):  # not cancelled: send the RST_STREAM now
                await conn._flush_quietly(self._timeout, self._deadline)
            raise

    async def aclose(self) -> None:
        """Stop reading; an unfinished stream is reset (RST_STREAM
        ``CANCEL``); the connection stays open for other requests."""
        if not self._done:
            self._done = True
            await self._conn._release_and_flush(self._state, self._timeout)
