"""One HTTP/1.1 connection: sends a request, returns the response head and
streams its body (RFC 9112).

The connection carries one request at a time. It reads only when the
caller asks for more of the response, so the blocking backend needs no
thread. Every failure closes the connection and hands it back to the pool
through ``on_release``; the pool's bookkeeping is synchronous, so a request
cancelled at any ``await`` never leaks a pool slot.
"""

from __future__ import annotations

from collections.abc import AsyncIterable, AsyncIterator, Callable
from typing import Any

from webwire._backends.base import Backend, NetworkStream
from webwire._config import Timeout
from webwire._exceptions import LocalProtocolError, ReadError, RemoteProtocolError, WriteError
from webwire._proto.events import Data, EndOfMessage, Event, InformationalResponse, ResponseHead
from webwire._proto.h1 import H1Connection

from ._types import RawResponse, ResponseStream, bound_timeout

__all__ = ["HTTP11Connection", "StaleConnection"]

READ_SIZE = 256 * 1024


class StaleConnection(Exception):
    """A reused keep-alive connection turned out to be closed by the server
    before it sent any byte of a response; the request may be retried on a
    new connection. Never reaches users: the pool turns it into a retry or
    into the ``__cause__`` error."""

    def __init__(self, error: BaseException) -> None:
        super().__init__(str(error))
        self.error = error


class HTTP11Connection:
    """An HTTP/1.1 client connection over one :class:`NetworkStream`.

    Attributes:
        origin: The pool key of the connection.
        requests_sent: Requests started on this connection so far.
        idle_since: ``backend.monotonic()`` when it became idle.
    """

    __slots__ = (
        "_backend",
        "_closed",
        "_h1",
        "_in_use",
        "_on_release",
        "_stream",
        "idle_since",
        "origin",
        "requests_sent",
    )

    def __init__(
        self,
        origin: Any,
        stream: NetworkStream,
        backend: Backend,
        *,
        max_header_size: int,
        max_header_count: int,
        on_release: Callable[[HTTP11Connection, bool], None],
    ) -> None:
        self.origin = origin
        self._stream = stream
        self._backend = backend
        self._h1 = H1Connection(max_header_size=max_header_size, max_header_count=max_header_count)
        self._on_release = on_release
        self._closed = False
        self._in_use = False
        self.requests_sent = 0
        self.idle_since = 0.0

    def is_reusable(self) -> bool:
        """Whether an idle connection can carry another request: not closed,
        and the server neither closed it nor sent anything unasked."""
        return not self._closed and not self._stream.is_readable()

    def close(self) -> None:
        """Close at once (synchronous, never raises)."""
        self._closed = True
        self._stream.abort()

    async def request(
        self,
        method: bytes,
        target: bytes,
        headers: list[tuple[bytes, bytes]],
        body: bytes | AsyncIterable[bytes] | None,
        *,
        timeout: Timeout,
        deadline: float | None,
    ) -> RawResponse:
        """Send one request and read the response head.

        Returns:
            The response; its ``stream`` reads the body on demand and
            releases the connection when it ends or is closed.

        Raises:
            StaleConnection: A reused connection was found closed before any
                response byte arrived (the caller may retry).
            LocalProtocolError: The request cannot be serialised.
            RemoteProtocolError: The response is malformed or cut short.
            ReadTimeout, WriteTimeout, ReadError, WriteError: I/O failures.
        """
        reused = self.requests_sent > 0
        self.requests_sent += 1
        self._in_use = True
        h1 = self._h1
        backend = self._backend
        try:
            try:
                if body is None or isinstance(body, bytes):
                    h1.send_request(method, target, headers, end_stream=not body)
                    if body:
                        h1.send_data(body)
                        h1.end_request()
                    await self._stream.write(
                        h1.data_to_send(),
                        bound_timeout(timeout.write, deadline, backend.monotonic()),
                    )
                else:
                    h1.send_request(method, target, headers, end_stream=False)
                    await self._stream.write(
                        h1.data_to_send(),
                        bound_timeout(timeout.write, deadline, backend.monotonic()),
                    )
                    await self._send_body(body, timeout, deadline)
            except WriteError as exc:
                if reused and not h1.received_any:
                    raise StaleConnection(exc) from exc
                raise
            head, rest = await self._read_head(timeout, deadline, reused)
        except BaseException:
            self._release(reusable=False)
            raise
        stream = HTTP11ResponseStream(self, timeout, deadline, rest)
        return RawResponse(
            head.status_code,
            head.reason_phrase,
            head.http_version,
            head.headers,
            stream,
        )

    async def _send_body(
        self, body: AsyncIterable[bytes], timeout: Timeout, deadline: float | None
    ) -> None:
        h1 = self._h1
        backend = self._backend
        async for chunk in body:
            if not isinstance(chunk, bytes | bytearray | memoryview):
                raise LocalProtocolError(
                    f"request body chunks must be bytes, not {type(chunk).__name__}"
                )
            if not chunk:
                continue
            h1.send_data(bytes(chunk))
            await self._stream.write(
                h1.data_to_send(), bound_timeout(timeout.write, deadline, backend.monotonic())
            )
        h1.end_request()
        data = h1.data_to_send()
        if data:
            await self._stream.write(
                data, bound_timeout(timeout.write, deadline, backend.monotonic())
            )

    async def _read_head(
        self, timeout: Timeout, deadline: float | None, reused: bool
    ) -> tuple[ResponseHead, list[Event]]:
        h1 = self._h1
        stream = self._stream
        backend = self._backend
        while True:
            events = h1.events()
            for index, event in enumerate(events):
                if type(event) is ResponseHead:
                    return event, events[index + 1 :]
                if type(event) is InformationalResponse:
                    if event.status_code == 101:
                        raise RemoteProtocolError(
                            "the server switched protocols (101) on a plain request"
                        )
                    continue
                raise RemoteProtocolError(f"unexpected event before the response: {event!r}")
            try:
                data = await stream.read(
                    READ_SIZE, bound_timeout(timeout.read, deadline, backend.monotonic())
                )
            except ReadError as exc:
                if reused and not h1.received_any:
                    raise StaleConnection(exc) from exc
                raise
            try:
                h1.receive_data(data)
            except RemoteProtocolError as exc:
                if not data and reused and not h1.received_any:
                    raise StaleConnection(exc) from exc
                raise

    def _release(self, *, reusable: bool) -> None:
        if not self._in_use:
            return
        self._in_use = False
        if reusable:
            try:
                self._h1.start_next_cycle()
            except Exception:
                reusable = False
        if not reusable:
            self._closed = True
            self._stream.abort()
        self._on_release(self, reusable)


class HTTP11ResponseStream(ResponseStream, AsyncIterator[bytes]):
    """The body of one HTTP/1.1 response, read from the socket on demand.

    Each step returns the content of one read (the pieces a read produced
    joined), so a chunked body of many small chunks costs one step a read.
    """

    __slots__ = ("_conn", "_deadline", "_done", "_events", "_timeout")

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
                        conn._release(reusable=h1.keep_alive)
                        break
                if chunks:
                    return chunks[0] if len(chunks) == 1 else b"".join(chunks)
                if self._done:
                    raise StopAsyncIteration
                data = await conn._stream.read(
                    READ_SIZE,
                    bound_timeout(self._timeout.read, self._deadline, conn._backend.monotonic()),
                )
                h1.receive_data(data)
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
