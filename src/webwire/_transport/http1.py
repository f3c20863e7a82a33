"""One HTTP/1.1 connection of the pool (RFC 9112): send a request, return
the response head and stream its body.

The connection carries one request at a time. The request driver is
full-duplex without threads: between pieces of the request body it looks
whether the server has sent anything and feeds it to the state machine, so
an early final response (413, 401, ...) ends the upload and is returned;
when a write fails because the server stopped reading, the response that
may already be there is still read. A response body is read only when the
caller asks for more, so the blocking backend needs no thread either.

A 101 (Switching Protocols) answer to an ``Upgrade`` request, or a 2xx
answer to ``CONNECT``, is returned with an empty body and
``extensions["detach"]``: the connection handed over as a byte stream
(:class:`~webwire._transport._detached.DetachedStream`), out of the pool.

Every request ends exactly once with ``on_release(conn)``: its body read to
the end or closed, the connection detached, or a failure (cancellation
included). Bookkeeping is synchronous, so a request cancelled at any
``await`` never leaks a pool slot.
"""

from __future__ import annotations

from collections.abc import AsyncIterable, AsyncIterator, Callable
from typing import TYPE_CHECKING

from webwire._backends.base import Backend, NetworkStream
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
from webwire._proto.events import Data, EndOfMessage, Event, InformationalResponse, ResponseHead
from webwire._proto.h1 import ClientState, H1Connection, H1State

from ._detached import DetachedStream
from ._types import (
    Connection,
    RawResponse,
    ResponseStream,
    StaleConnection,
    TransportRequest,
    close_body_iterator,
    total_timeout_error,
)
from ._types import bound_timeout as _bound

if TYPE_CHECKING:
    from .connect import Origin

__all__ = ["HTTP11Connection", "HTTP11ResponseStream", "SwitchedResponseStream"]

READ_SIZE = 256 * 1024
"""Bytes asked of the socket per read."""
WRITE_PIECE = 256 * 1024
"""Request body bytes written at a time; between pieces the connection looks
for an early response."""
INLINE_BODY = 64 * 1024
"""A ``bytes`` body up to this size is written together with the head."""
PEEK_TIMEOUT = 0.002
"""Longest wait (seconds) of a look for an early response. The socket said
it was readable, but over TLS that may be a record that holds no data (a
TLS 1.3 session ticket): the look must not wait for a response."""

Head = ResponseHead | InformationalResponse


class HTTP11Connection(Connection):
    """An HTTP/1.1 client connection over one :class:`NetworkStream`.

    Args:
        origin: The origin the connection was opened for.
        stream: The connected (TLS) stream; owned from now on.
        backend: The backend the stream belongs to.
        limits: Header limits and ``keepalive_expiry`` (seconds).
        on_release: Called with the connection, synchronously, once per
            request when the request ends (see :class:`Connection`).

    Attributes:
        origin: The pool key of the connection.
        http_version: ``"HTTP/1.1"``.
        idle_since: ``backend.monotonic()`` when the last request ended (or
            the connection was made).
        requests_sent: Requests started on this connection so far.
    """

    http_version = "HTTP/1.1"

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
        self._stream = stream
        self._backend = backend
        self._h1 = H1Connection(
            max_header_size=limits.max_header_size, max_header_count=limits.max_header_count
        )
        self._expiry = limits.keepalive_expiry
        self._on_release = on_release
        self._in_use = False  # a slot is taken: reserve() until the request ends
        self._active = False  # handle_request() was called for that slot
        self._closed = False
        self._detached = False
        self._events: list[Event] = []  # taken from the state machine, not yet used
        self.requests_sent = 0
        self.idle_since = backend.monotonic()

    # ------------------------------------------------------ pool interface

    def can_handle(self, origin: Origin) -> bool:
        """Whether ``origin`` is the one this connection was opened for."""
        return origin == self.origin

    def is_available(self) -> bool:
        """Whether a request can start now: no request in flight, not
        closed, reusable after the last response, not expired, and the
        server has not closed it (nothing readable on an idle connection)."""
        return not self._in_use and not self.has_expired(self._backend.monotonic())

    def is_idle(self) -> bool:
        """Whether no request is in flight (or reserved)."""
        return not self._in_use

    def has_expired(self, now: float) -> bool:
        """Whether the connection must be closed rather than used again.

        Args:
            now: ``backend.monotonic()`` time, in seconds.

        Returns:
            ``True`` when closed or detached, when the last response left it
            unusable (``Connection: close``, an unfinished exchange), when
            the server closed it or sent something unasked while idle, or
            when idle for more than ``Limits.keepalive_expiry`` seconds. A
            connection in use expires only by being closed.
        """
        if self._closed:
            return True
        if self._in_use:
            return False
        if self._h1.state is not H1State.IDLE or self._stream.is_readable():
            return True
        expiry = self._expiry
        return expiry is not None and now - self.idle_since > expiry

    def reserve(self) -> None:
        """Take the connection's one request slot.

        Raises:
            RuntimeError: The slot is taken, or the connection is closed.
        """
        if self._in_use or self._closed:
            raise RuntimeError("this HTTP/1.1 connection is busy or closed")
        self._in_use = True

    def close(self) -> None:
        """Close at once (synchronous, never raises, idempotent). A request
        in flight fails at its next read or write. A detached stream is not
        touched: it belongs to whoever detached it."""
        self._closed = True
        if not self._detached:
            self._stream.abort()

    async def aclose(self) -> None:
        """Close gracefully (TLS close_notify) when idle, at once otherwise;
        never raises network errors."""
        if self._closed or self._in_use:
            self.close()
            return
        self._closed = True
        try:
            await self._stream.aclose()
        except BaseException:
            self._stream.abort()
            raise

    # ------------------------------------------------------------ requests

    async def handle_request(self, request: TransportRequest) -> RawResponse:
        """Send one request and read the response head (RFC 9112).

        The body is framed here: a ``bytes`` body gets ``Content-Length``,
        a streamed body chunked coding (RFC 9112 section 7.1), unless the
        fields already frame it.

        Returns:
            The response; its ``stream`` reads the body on demand and
            releases the connection when it ends or is closed. After a 101
            to an ``Upgrade`` request or a 2xx to ``CONNECT`` the body is
            empty and ``extensions["detach"]`` hands the connection over.

        Raises:
            StaleConnection: A reused connection was found closed before any
                response byte arrived (the caller may retry).
            LocalProtocolError: The request cannot be serialised.
            RemoteProtocolError: The response is malformed or cut short, or
                a 101 answered a request without ``Upgrade``.
            ReadTimeout, WriteTimeout, ReadError, WriteError: I/O failures.
            RuntimeError: A request is already in flight on the connection.
        """
        if not self._in_use:
            self.reserve()
        elif self._active:
            raise RuntimeError("a request is already in flight on this HTTP/1.1 connection")
        self._active = True
        reused = self.requests_sent > 0
        self.requests_sent += 1
        try:
            try:
                head = await self._send(request)
                if head is None:
                    head = await self._read_head(request)
            except (ReadError, WriteError, RemoteProtocolError) as exc:
                if reused and not self._h1.received_any:
                    raise StaleConnection(exc) from exc
                raise
            return self._response(head, request)
        except BaseException:
            self._release(reusable=False)
            raise

    def _response(self, head: Head, request: TransportRequest) -> RawResponse:
        """The RawResponse for a final (or switching) response head."""
        h1 = self._h1
        if h1.state is H1State.SWITCHED:
            if h1.our_state is not ClientState.DONE:
                raise RemoteProtocolError(
                    "the server switched protocols before the request body was sent"
                )
            self._events = []
            version = head.http_version if isinstance(head, ResponseHead) else "HTTP/1.1"
            return RawResponse(
                head.status_code,
                head.reason_phrase,
                version,
                head.headers,
                SwitchedResponseStream(self),
                {"detach": self._detach},
            )
        assert isinstance(head, ResponseHead)
        events, self._events = self._events, []
        stream = HTTP11ResponseStream(self, request.timeout, request.deadline, events)
        return RawResponse(
            head.status_code, head.reason_phrase, head.http_version, head.headers, stream
        )

    # -------------------------------------------------------------- sending

    async def _send(self, request: TransportRequest) -> Head | None:
        """Send the request, watching for an early response.

        Returns:
            A final (or switching) response head that arrived before the
            request body was complete (the rest of the body is abandoned),
            or ``None`` once the whole request is sent.
        """
        h1 = self._h1
        body = request.body
        if body is None:
            h1.send_request(request.method, request.target, request.headers, end_stream=True)
            return await self._write(h1.data_to_send(), request)
        if isinstance(body, bytes):
            h1.send_request(request.method, request.target, request.headers, body_length=len(body))
            if len(body) <= INLINE_BODY:
                h1.send_data(body)
                h1.end_request()
                return await self._write(h1.data_to_send(), request)
            head = await self._write(h1.data_to_send(), request)
            if head is None:
                head = await self._send_piece(body, request)
            if head is None:
                h1.end_request()
                head = await self._write(h1.data_to_send(), request)
            return head
        h1.send_request(request.method, request.target, request.headers, chunked=True)
        head = await self._write(h1.data_to_send(), request)
        if head is None:
            head = await self._send_stream(body, request)
        return head

    async def _send_stream(
        self, body: AsyncIterable[bytes], request: TransportRequest
    ) -> Head | None:
        """Send a streamed body, then end the request. Returns an early
        response head, or ``None``. The body's iterator is closed when it
        is left before its end (early response, failure, cancellation)."""
        h1 = self._h1
        iterator = body.__aiter__()
        finished = False
        try:
            async for chunk in iterator:
                if not isinstance(chunk, bytes | bytearray | memoryview):
                    raise LocalProtocolError(
                        f"request body chunks must be bytes, not {type(chunk).__name__}"
                    )
                if not chunk:
                    continue
                head = await self._send_piece(bytes(chunk), request)
                if head is not None:
                    return head
            finished = True
        finally:
            if not finished:
                await close_body_iterator(iterator)
        h1.end_request()
        return await self._write(h1.data_to_send(), request)

    async def _send_piece(self, data: bytes, request: TransportRequest) -> Head | None:
        """Send body bytes in pieces of :data:`WRITE_PIECE`, looking for an
        early response before each. Returns its head, or ``None``."""
        h1 = self._h1
        for start in range(0, len(data), WRITE_PIECE):
            piece = data if len(data) <= WRITE_PIECE else data[start : start + WRITE_PIECE]
            h1.send_data(piece)
            head = await self._write(h1.data_to_send(), request, peek=True)
            if head is not None:
                return head
        return None

    async def _write(
        self, data: bytes, request: TransportRequest, *, peek: bool = False
    ) -> Head | None:
        """Write ``data``; with ``peek``, first take in what the server has
        sent (see :meth:`_peek`), as close to the write as possible: an
        async backend may lose unread bytes once a write to a reset
        connection fails. When the write fails, a response the server sent
        before it stopped reading is looked for.

        Returns:
            The head of a response that arrived, or ``None`` after a
            successful write (the data was not written when a head is
            returned by the look before it).

        Raises:
            WriteError, WriteTimeout: The write failed and no response head
                could be read.
        """
        deadline = request.deadline
        now = self._backend.monotonic()
        if deadline is not None and now >= deadline:
            raise total_timeout_error(request.timeout, WriteTimeout)
        timeout = _bound(request.timeout.write, deadline, now)
        if peek:
            head = await self._peek(request)
            if head is not None:
                return head
        try:
            await self._stream.write(data, timeout)
        except WriteError:
            head = await self._head_after_write_error(request, wait=True)
            if head is None:
                raise
            return head
        except WriteTimeout as exc:
            head = await self._head_after_write_error(request, wait=False)
            if head is None:
                if deadline is not None and self._backend.monotonic() >= deadline:
                    raise total_timeout_error(request.timeout, WriteTimeout) from exc
                raise
            return head
        return None

    async def _head_after_write_error(
        self, request: TransportRequest, *, wait: bool
    ) -> Head | None:
        """The response head the server sent before the write failed, read
        within the read timeout (``wait``) or only from what is already
        readable; ``None`` when there is none."""
        try:
            if not wait:
                return await self._peek(request)
            return await self._read_head(request)
        except TransportError:
            return None

    async def _peek(self, request: TransportRequest) -> Head | None:
        """Feed what the server has sent so far, without waiting for more.

        Returns:
            A final or switching response head, once one has arrived.

        Raises:
            RemoteProtocolError: The server closed the connection without a
                response, or sent a malformed one.
            ReadError: The connection failed.
        """
        h1 = self._h1
        stream = self._stream
        # Let the event loop take in what arrived (asyncio only sees data
        # the loop has read; a write that never blocks never runs it).
        await self._backend.checkpoint()
        while stream.is_readable():
            now = self._backend.monotonic()
            if request.deadline is not None and now >= request.deadline:
                raise total_timeout_error(request.timeout)
            timeout = _bound(PEEK_TIMEOUT, request.deadline, now)
            try:
                data = await stream.read(READ_SIZE, timeout)
            except ReadTimeout:
                return None
            h1.receive_data(data)
            head = self._take_head()
            if head is not None or not data:
                return head
        return None

    # ------------------------------------------------------------ receiving

    def _take_head(self) -> Head | None:
        """Take the response head from the events received so far: a final
        head, or the 101 of a protocol switch; 1xx interim responses (100
        Continue, 103 Early Hints) are dropped. The events after it stay
        for the body."""
        events = self._events
        new = self._h1.events()
        if new:
            events += new
        while events:
            event = events.pop(0)
            if isinstance(event, ResponseHead):
                return event
            if isinstance(event, InformationalResponse):
                if event.status_code == 101:
                    return event
                continue
            raise RemoteProtocolError(f"unexpected event before the response: {event!r}")
        return None

    async def _read_head(self, request: TransportRequest) -> Head:
        """Read until a final (or switching) response head has arrived."""
        h1 = self._h1
        timeout = request.timeout
        deadline = request.deadline
        while True:
            head = self._take_head()
            if head is not None:
                return head
            h1.receive_data(await self._read(timeout, deadline))

    async def _read(self, timeout: Timeout, deadline: float | None) -> bytes:
        """Read what the server sent, within ``Timeout.read`` seconds and
        before the ``Timeout.total`` deadline (however fast data comes).

        Raises:
            ReadTimeout: Nothing arrived within the read timeout, or the
                total deadline passed (the message names the total).
            ReadError: The connection failed.
        """
        if deadline is None:
            return await self._stream.read(READ_SIZE, timeout.read)
        left = deadline - self._backend.monotonic()
        if left <= 0.0:
            raise total_timeout_error(timeout)
        read = timeout.read
        if read is not None and read <= left:
            return await self._stream.read(READ_SIZE, read)
        try:
            return await self._stream.read(READ_SIZE, left)
        except ReadTimeout as exc:
            raise total_timeout_error(timeout) from exc

    # ------------------------------------------------------------- ending

    def _release(self, *, reusable: bool) -> None:
        """End the current request: recycle or close the connection, then
        tell the pool (once per request; later calls do nothing)."""
        if not self._in_use:
            return
        self._in_use = False
        self._active = False
        self._events = []
        if reusable and not self._closed:
            try:
                self._h1.start_next_cycle()
            except LocalProtocolError:
                reusable = False
        if not reusable:
            self.close()
        self.idle_since = self._backend.monotonic()
        self._on_release(self)

    def _detach(self) -> NetworkStream:
        """Hand the connection over after a protocol switch (the
        ``"detach"`` extension): the stream yields the bytes that followed
        the response head first. The connection leaves the pool.

        Raises:
            RuntimeError: Already detached, or the response was closed (the
                connection with it).
        """
        if self._detached:
            raise RuntimeError("the connection was already detached")
        if self._closed or not self._in_use:
            raise RuntimeError("the response was closed: its connection is gone")
        self._detached = True
        stream = DetachedStream(self._stream, self._h1.trailing_data)
        self._release(reusable=False)
        return stream


class HTTP11ResponseStream(ResponseStream, AsyncIterator[bytes]):
    """The body of one HTTP/1.1 response, read from the socket on demand.

    Each step returns the content of one read (the pieces a read produced
    joined), so a chunked body of many small chunks costs one step a read.

    Attributes:
        trailers: The trailer fields of a chunked body, once it ended.
    """

    __slots__ = ("_conn", "_deadline", "_done", "_events", "_timeout", "trailers")

    def __init__(
        self,
        conn: HTTP11Connection,
        timeout: Timeout,
        deadline: float | None,
        events: list[Event],
    ) -> None:
        self._conn = conn
        self._timeout = timeout
        self._deadline = deadline
        self._done = False
        self._events = events
        self.trailers: list[tuple[bytes, bytes]] = []

    def __aiter__(self) -> HTTP11ResponseStream:
        return self

    async def __anext__(self) -> bytes:
        if self._done:
            raise StopAsyncIteration
        conn = self._conn
        h1 = conn._h1
        try:
            while True:
                events = self._events
                if events:
                    self._events = []
                else:
                    events = h1.events()
                chunks: list[bytes] = []
                for event in events:
                    kind = type(event)
                    if kind is Data:
                        chunks.append(event.data)  # type: ignore[attr-defined]
                    elif kind is EndOfMessage:
                        self._done = True
                        self.trailers = event.trailers  # type: ignore[attr-defined]
                        conn._release(reusable=h1.keep_alive)
                        break
                if chunks:
                    return chunks[0] if len(chunks) == 1 else b"".join(chunks)
                if self._done:
                    raise StopAsyncIteration
                h1.receive_data(await conn._read(self._timeout, self._deadline))
        except StopAsyncIteration:
            raise
        except BaseException:
            self._done = True
            conn._release(reusable=False)
            raise

    async def aclose(self) -> None:
        """Stop reading; a body not read to its end closes the connection."""
        if not self._done:
            self._done = True
            self._conn._release(reusable=False)


class SwitchedResponseStream(ResponseStream, AsyncIterator[bytes]):
    """The (empty) body of a 101 or of a 2xx to ``CONNECT``.

    Reading it to the end keeps the connection for ``detach``; closing it
    before ``detach`` closes the connection (the ``http`` layer closes a
    response whose body has ended, so detach before reading it there).
    """

    __slots__ = ("_conn",)

    def __init__(self, conn: HTTP11Connection) -> None:
        self._conn = conn

    def __aiter__(self) -> SwitchedResponseStream:
        return self

    async def __anext__(self) -> bytes:
        raise StopAsyncIteration

    async def aclose(self) -> None:
        """Close the connection unless it was detached (idempotent)."""
        self._conn._release(reusable=False)
