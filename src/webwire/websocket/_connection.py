"""An open WebSocket connection: :class:`ClientConnection` (RFC 6455).

Written once as coroutines against the :class:`~webwire._backends.base.Backend`
interface; the blocking API (:mod:`webwire.websocket.sync`) runs the same
coroutines on the blocking backend.

Each connection runs two tasks in a task group it owns (threads on the
blocking backend): a background reader and a keepalive task, which pings
every ``ping_interval`` seconds and fails the connection with 1011 when no
pong comes within ``ping_timeout``. The stream is read by whoever holds the
connection's reader role (:mod:`._reading`): a ``recv()`` with nothing
queued reads it itself, in the caller's task, and the background reader
reads while nobody receives (it answers pings, sees the closing handshake,
and queues at most ``max_queue`` fragments ahead of the application, then
stops reading so the server feels back-pressure). Frames are written under
one lock, in the order the engine produced them (the permessage-deflate
context depends on it); the engine itself is only touched under the
backend's bookkeeping lock, so threads may share a connection on the
blocking backend.

The byte stream is any :class:`~webwire._backends.base.NetworkStream`: an
HTTP/1.1 connection detached after ``101``, or an HTTP/2 or HTTP/3 stream.
"""

from __future__ import annotations

import json
import logging
import os
import uuid
from collections.abc import AsyncIterable, AsyncIterator, Awaitable, Generator, Iterable
from typing import TYPE_CHECKING, Any

from webwire._backends.base import Backend, NetworkStream
from webwire._exceptions import (
    ConcurrencyError,
    ConnectionClosed,
    ConnectionClosedOK,
    JSONDecodingError,
    LocalProtocolError,
    TimeoutException,
    TransportError,
)
from webwire._proto.websocket import (
    Fragment,
    State,
    WebSocketProtocol,
    check_close,
)

from ._reading import Receiving

if TYPE_CHECKING:
    from webwire.http._client import AsyncClient
    from webwire.http._models import Response
    from webwire.http._request import Request
    from webwire.http._tracing import WebSocketTracer

__all__ = ["ClientConnection", "PongWaiter"]

Data = str | bytes
_log = logging.getLogger("webwire.websocket")


class PongWaiter:
    """What :meth:`ClientConnection.ping` returns: ``await`` it (or call
    :meth:`wait`) for the round-trip time of the ping, in seconds.

    Raises (when awaited):
        ConnectionClosed: The connection closed before the pong arrived.
        ReadTimeout: ``wait(timeout)`` ran out first.
    """

    __slots__ = ("_connection", "_event", "_latency", "_sent_at")

    def __init__(self, connection: ClientConnection, sent_at: float) -> None:
        self._connection = connection
        self._event = connection._backend.create_event()
        self._sent_at = sent_at
        self._latency: float | None = None

    def _set(self, now: float | None) -> None:
        if now is not None:
            self._latency = now - self._sent_at
        self._event.set()

    async def wait(self, timeout: float | None = None) -> float:
        """Wait for the pong.

        Returns:
            Seconds between sending the ping and receiving its pong.

        Raises:
            ReadTimeout: No pong within ``timeout`` seconds.
            ConnectionClosed: The connection closed first.
        """
        if not await self._event.wait(timeout):
            from webwire._exceptions import ReadTimeout

            raise ReadTimeout(f"no pong within {timeout} s")
        if self._latency is None:
            raise self._connection._closed_error()
        return self._latency

    def __await__(self) -> Generator[Any, None, float]:
        return self.wait().__await__()


class ClientConnection(Receiving):
    """An open WebSocket connection, client side (RFC 6455), made by
    :func:`webwire.websocket.connect`.

    Use ``async with`` (closes on exit), iterate it for the messages, or
    call :meth:`recv`/:meth:`send`. One task may receive at a time; any
    number may send (messages are not interleaved). Close it with
    :meth:`close` (from any task); its background tasks do not belong to
    the task that opened it (on trio they run in a system task), so a
    cancelled caller does not tear the connection down, and an unclosed
    connection lives until the event loop ends.

    Attributes:
        id: A unique identifier (for logs).
        request: The handshake request (:class:`~webwire.Request`).
        response: The handshake response (:class:`~webwire.Response`,
            ``101`` on HTTP/1.1; its body is not read).
        subprotocol: The subprotocol the server chose, or ``None``.
        http_version: ``"HTTP/1.1"`` (``"HTTP/2"`` over RFC 8441).
        logger: The connection's logger.

    Tracing: opened with a client that has :class:`~webwire.TraceConfig`
    objects (or with ``trace=``), the connection emits ``on_ws_connect``,
    ``on_ws_message_sent``/``_received``, ``on_ws_ping``/``_pong`` and
    ``on_ws_closed`` (see :class:`~webwire.TraceConfig`); received-side
    signals are emitted by whichever reads the stream (a receiving call,
    or the background reader task: a thread on the blocking API).
    """

    def __init__(
        self,
        backend: Backend,
        stream: NetworkStream,
        protocol: WebSocketProtocol,
        *,
        request: Request | None = None,
        response: Response | None = None,
        subprotocol: str | None = None,
        http_version: str = "HTTP/1.1",
        ping_interval: float | None = 20.0,
        ping_timeout: float | None = 20.0,
        close_timeout: float | None = 10.0,
        max_queue: int = 16,
        logger: logging.Logger | logging.LoggerAdapter[Any] | None = None,
        owned_client: AsyncClient | None = None,
        tracer: WebSocketTracer | None = None,
    ) -> None:
        self.id = uuid.uuid4()
        self.request = request
        self.response = response
        self.subprotocol = subprotocol
        self.http_version = http_version
        self.logger = logger or _log
        self._backend = backend
        self._stream = stream
        self._protocol = protocol
        self._ping_interval = ping_interval
        self._ping_timeout = ping_timeout
        self._close_timeout = close_timeout
        self._owned_client = owned_client
        self._lock = backend.create_bookkeeping_lock()
        self._write_lock = backend.create_lock()
        self._send_lock = backend.create_lock()
        self._closed_event = backend.create_event()
        self._pings: dict[bytes, PongWaiter] = {}
        self._receiving = False
        self._fragmenting = False  # a fragmented message is being sent
        self._partial: list[Data] = []
        self._close_deadline: float | None = None
        self._transport_error: BaseException | None = None
        self._task_group: Any = None
        self._finished = False
        self._tracer = tracer
        self._rx_text = False
        self._rx_size = 0
        self.latency = 0.0
        """Round-trip time of the last keepalive or :meth:`ping`, in
        seconds (0 until one completed)."""
        self._init_receiving(max_queue)

    # -- lifecycle -----------------------------------------------------------

    async def _start(self) -> None:
        """Enter the task group and start the reader and keepalive tasks."""
        tracer = self._tracer
        if tracer is not None:
            names = [getattr(ext, "name", str(ext)) for ext in self._protocol.extensions]
            await tracer.connect(self.http_version, self.subprotocol, names)
        group = self._backend.create_detached_task_group()
        await group.__aenter__()
        self._task_group = group
        group.start_soon(self._reader if tracer is None else self._traced_reader)
        if self._ping_interval is not None:
            group.start_soon(self._keepalive)

    async def _finish(self) -> None:
        """Join the tasks and release the handshake client (once)."""
        with self._lock:
            if self._finished:
                return
            self._finished = True
        if not self._eof:
            # Dropped (the stream aborted) without the transport's end being
            # read: end the connection, so that the reader task stops.
            self._shutdown()
        group, self._task_group = self._task_group, None
        try:
            if group is not None:
                await group.__aexit__(None, None, None)
        finally:
            client, self._owned_client = self._owned_client, None
            if client is not None:
                await client.aclose()

    async def __aenter__(self) -> ClientConnection:
        return self

    async def __aexit__(self, *args: object) -> None:
        await self.close()

    # -- properties ----------------------------------------------------------

    @property
    def state(self) -> State:
        """``State.OPEN``, ``State.CLOSING`` or ``State.CLOSED``
        (RFC 6455 section 4.1, 7.1.3, 7.1.4)."""
        with self._lock:
            return self._protocol.state

    @property
    def closed(self) -> bool:
        """Whether the connection is closed (the transport ended)."""
        return self._closed_event.is_set()

    @property
    def close_code(self) -> int | None:
        """The close code received (RFC 6455 section 7.1.5; 1006 when the
        connection dropped without one), ``None`` while not closed."""
        if not self.closed:
            return None
        rcvd = self._protocol.close_rcvd
        return 1006 if rcvd is None else rcvd.code

    @property
    def close_reason(self) -> str | None:
        """The close reason received (section 7.1.6), ``None`` while not
        closed."""
        if not self.closed:
            return None
        rcvd = self._protocol.close_rcvd
        return "" if rcvd is None else rcvd.reason

    @property
    def local_address(self) -> Any:
        """The local socket address (``(host, port)``; ``None`` when not
        known, e.g. over a proxy tunnel's stream)."""
        return self._stream.get_extra_info("sockname")

    @property
    def remote_address(self) -> Any:
        """The peer's socket address (``(host, port)``), or ``None``."""
        return self._stream.get_extra_info("peername")

    # -- tracing (only with a tracer) -------------------------------------------

    async def _traced_reader(self) -> None:
        """The reader, then ``on_ws_closed`` once the transport ended."""
        await self._reader()
        tracer = self._tracer
        assert tracer is not None
        rcvd = self._protocol.close_rcvd
        code, reason = (1006, "") if rcvd is None else (rcvd.code, rcvd.reason)
        await self._trace_safe(tracer.closed(code, reason))

    async def _trace_fragment(self, fragment: Fragment) -> None:
        data = fragment.data
        if isinstance(data, str):
            self._rx_text = True
            self._rx_size += len(data.encode())
        else:
            self._rx_size += len(data)
        if fragment.fin:
            opcode = "text" if self._rx_text else "binary"
            size, self._rx_size, self._rx_text = self._rx_size, 0, False
            assert self._tracer is not None
            await self._trace_safe(self._tracer.message_received(opcode, size))

    async def _trace_safe(self, emission: Awaitable[None]) -> None:
        """Run a trace emission in a background task: a failing callback is
        logged, not raised."""
        try:
            await emission
        except Exception:
            self.logger.exception("WebSocket trace callback failed")

    async def _trace_sent(self, kind: str, size: int) -> None:
        """``on_ws_message_sent`` unless the connection is closing (the send
        then fails)."""
        with self._lock:
            closing = self._protocol.state is not State.OPEN
        if not closing:
            assert self._tracer is not None
            await self._tracer.message_sent(kind, size)

    def _handshake_closed(self) -> bool:
        """Whether close frames went both ways (RFC 6455 section 7.1.2)."""
        with self._lock:
            return self._protocol.close_rcvd is not None and self._protocol.close_sent is not None

    def _arm_close_timer(self) -> None:
        timeout = self._close_timeout
        self._close_deadline = (
            None if timeout is None else self._backend.monotonic() + timeout
        )
        if timeout is None:
            # Wait for the server's end of stream as long as it takes.
            self._close_deadline = float("inf")

    def _shutdown(self) -> None:
        """The transport ended: mark the connection closed, wake everyone
        (synchronous, idempotent)."""
        with self._lock:
            self._protocol.receive_eof()
            pings, self._pings = self._pings, {}
        self._stream.abort()
        for waiter in pings.values():
            waiter._set(None)
        self._closed_event.set()
        with self._lock:
            self._end_of_stream()

    def _pong(self, data: bytes) -> None:
        """A pong acknowledges its ping and every ping sent before it."""
        now = self._backend.monotonic()
        done: list[PongWaiter] = []
        with self._lock:
            if data not in self._pings:
                return
            for key in list(self._pings):
                done.append(self._pings.pop(key))
                if key == data:
                    break
        for waiter in done:
            waiter._set(now)
        self.latency = now - done[-1]._sent_at

    # -- writing -------------------------------------------------------------

    async def _flush(self, timeout: float | None = None) -> None:
        """Write what the engine has queued, in order. A failed write ends
        the transport (the reader then reports the connection closed)."""
        with self._lock:
            if not self._protocol.has_data_to_send():
                return
        async with self._write_lock:
            with self._lock:
                data, eof = self._protocol.data_to_send()
            if not data and not eof:
                return
            try:
                if data:
                    await self._stream.write(data, timeout)
                if eof:
                    await self._stream.send_eof()
            except TransportError as exc:
                if not eof:
                    self._transport_error = self._transport_error or exc
                    self._abort()

    async def _raise_closed(self) -> None:
        """Wait until the connection is closed, then raise its error."""
        await self._closed_event.wait()
        raise self._closed_error()

    def _closed_error(self) -> ConnectionClosed:
        error = self._protocol.closed_error()
        if error.__cause__ is None and self._transport_error is not None:
            error.__cause__ = self._transport_error
        return error

    async def _write_frame(
        self, kind: str, data: bytes | str, fin: bool, alone: bool = False
    ) -> bool:
        """Write one frame; with ``alone`` (a message in one frame, sent
        without the send lock) nothing is written and ``False`` returned
        while a fragmented message is in progress."""
        write_lock = self._write_lock
        await write_lock.acquire()
        try:
            with self._lock:
                if alone and self._fragmenting:
                    return False
                protocol = self._protocol
                if protocol.state is not State.OPEN:
                    closing = True
                else:
                    closing = False
                    if kind == "text":
                        protocol.send_text(data, fin)
                    elif kind == "binary":
                        protocol.send_binary(data, fin)  # type: ignore[arg-type]
                    else:
                        protocol.send_continuation(data, fin)
                    out, _ = protocol.data_to_send()
            if not closing:
                try:
                    await self._stream.write(out, None)
                    return True
                except TransportError as exc:
                    self._transport_error = self._transport_error or exc
                    self._abort()
        finally:
            write_lock.release()
        await self._raise_closed()
        raise AssertionError("unreachable")  # pragma: no cover

    # -- sending -------------------------------------------------------------

    async def send(
        self,
        message: Data | Iterable[Data] | AsyncIterable[Data],
        text: bool | None = None,
    ) -> None:
        """Send a message (RFC 6455 section 5.6).

        Args:
            message: ``str`` (a text message), ``bytes``-like (binary), or
                an iterable or async iterable of ``str`` or of ``bytes``
                (one fragmented message, one frame per item, section 5.4;
                an empty iterable sends nothing).
            text: Send ``bytes`` as a text message (they must be UTF-8),
                or ``str`` as binary (encoded as UTF-8); ``None``: by type.

        Raises:
            ConnectionClosed: The connection is closed (or closing).
            TypeError: ``message`` has another type, or the fragments of
                an iterable mix ``str`` and ``bytes`` (the connection is
                then failed with 1011: the message cannot be completed).
        """
        if isinstance(message, (str, bytes, bytearray, memoryview)):
            kind, data = _kind(message, text)
            # The write lock alone keeps it whole, unless a fragmented
            # message started meanwhile: then it waits for its end.
            if (
                self._tracer is None
                and not self._fragmenting
                and await self._write_frame(kind, data, True, alone=True)
            ):
                return
            async with self._send_lock:
                if self._tracer is not None:
                    await self._trace_sent(kind, _size(data))
                await self._write_frame(kind, data, True)
            return
        if isinstance(message, dict):
            raise TypeError("a dict cannot be sent: encode it first (json.dumps)")
        if isinstance(message, AsyncIterable):
            items: AsyncIterator[Data] = message.__aiter__()
        elif isinstance(message, Iterable):
            items = _aiter(message)
        else:
            raise TypeError(
                f"cannot send {type(message).__name__}: expected str, bytes or iterable"
            )
        async with self._send_lock:
            with self._lock:
                self._fragmenting = True
            try:
                await self._send_fragments(items, text)
            finally:
                with self._lock:
                    self._fragmenting = False

    async def _send_fragments(self, items: AsyncIterator[Data], text: bool | None) -> None:
        # One fragment is held back, so the last one goes out with FIN set.
        kind: str | None = None
        pending: bytes | str | None = None
        started = False
        size = 0
        async for item in items:
            if not isinstance(item, (str, bytes, bytearray, memoryview)):
                await self._abort_fragments(started)
                raise TypeError(
                    f"message fragments must be str or bytes, not {type(item).__name__}"
                )
            item_kind, data = _kind(item, text)
            if kind is None:
                kind = item_kind
            elif item_kind != kind:
                await self._abort_fragments(started)
                raise TypeError("the fragments of one message must all be str or all bytes")
            if pending is not None:
                await self._write_frame("continuation" if started else kind, pending, False)
                started = True
            pending = data
            if self._tracer is not None:
                size += _size(data)
        if pending is None or kind is None:
            return
        if self._tracer is not None:
            await self._trace_sent(kind, size)
        await self._write_frame("continuation" if started else kind, pending, True)

    async def _abort_fragments(self, started: bool) -> None:
        if started:
            await self._fail(1011, "message fragments of mixed types")

    async def _fail(self, code: int, reason: str, *, write: bool = True) -> None:
        """Fail the connection (section 7.1.7): send a close frame with
        ``code`` (unless ``write`` is off: the sending side is stuck) within
        ``close_timeout``, and end the transport."""
        with self._lock:
            self._protocol.fail(code, reason)
        if write and await self._write_lock.acquire(self._close_timeout):
            try:
                with self._lock:
                    data, _ = self._protocol.data_to_send()
                if data:
                    try:
                        await self._stream.write(data, self._close_timeout)
                    except TransportError:
                        pass
            finally:
                self._write_lock.release()
        self._abort()

    async def ping(self, data: Data | None = None) -> PongWaiter:
        """Send a ping (RFC 6455 section 5.5.2).

        Args:
            data: Payload (at most 125 bytes; ``str`` is UTF-8 encoded);
                4 random bytes when ``None``.

        Returns:
            A :class:`PongWaiter`: ``latency = await (await ws.ping())``,
            the round-trip time in seconds.

        Raises:
            ConnectionClosed: The connection is closed.
            ConcurrencyError: A ping with the same payload is waiting.
            LocalProtocolError: The payload is over 125 bytes.
        """
        payload = os.urandom(4) if data is None else _kind(data, False)[1]
        assert isinstance(payload, bytes)
        if len(payload) > 125:
            raise LocalProtocolError("a ping carries at most 125 bytes (RFC 6455 section 5.5)")
        waiter = await self._ping(payload, None)
        assert waiter is not None
        if self._tracer is not None:
            await self._tracer.ping("sent", payload)
        return waiter

    async def _ping(self, payload: bytes, lock_timeout: float | None) -> PongWaiter | None:
        """Send a ping; ``None`` when the write lock (held by a send that
        the peer does not read) was not free within ``lock_timeout``."""
        if not await self._write_lock.acquire(lock_timeout):
            return None
        try:
            with self._lock:
                closed = self._protocol.state is not State.OPEN
                if not closed:
                    if payload in self._pings:
                        raise ConcurrencyError("a ping with the same payload is waiting")
                    waiter = PongWaiter(self, self._backend.monotonic())
                    self._pings[payload] = waiter
                    self._protocol.send_ping(payload)
                    out, _ = self._protocol.data_to_send()
            if not closed:
                try:
                    await self._stream.write(out, None)
                except TransportError as exc:
                    self._transport_error = self._transport_error or exc
                    self._abort()
                self._wake_reader()  # to read the pong
                return waiter
        finally:
            self._write_lock.release()
        await self._raise_closed()
        raise AssertionError("unreachable")  # pragma: no cover

    async def pong(self, data: Data = b"") -> None:
        """Send an unsolicited pong (a unidirectional heartbeat, section
        5.5.3), at most 125 bytes (``str`` is UTF-8 encoded).

        Raises:
            ConnectionClosed: The connection is closed.
            LocalProtocolError: The payload is over 125 bytes.
        """
        payload = _kind(data, False)[1]
        assert isinstance(payload, bytes)
        async with self._write_lock:
            with self._lock:
                closed = self._protocol.state is not State.OPEN
                if not closed:
                    self._protocol.send_pong(payload)
                    out, _ = self._protocol.data_to_send()
            if not closed:
                try:
                    await self._stream.write(out, None)
                except TransportError as exc:
                    self._transport_error = self._transport_error or exc
                    self._abort()
        if closed:
            await self._raise_closed()
        if self._tracer is not None:
            await self._tracer.pong("sent", payload)

    # -- receiving -----------------------------------------------------------

    def _enter_receive(self) -> None:
        with self._lock:
            if self._receiving:
                raise ConcurrencyError(
                    "another task (or thread) is receiving from this connection"
                )
            self._receiving = True
            self._recv_seq += 1
            self._ever_received = True

    def _leave_receive(self) -> None:
        with self._lock:
            self._receiving = False

    async def recv(self, timeout: float | None = None, decode: bool | None = None) -> Data:
        """Receive the next message (reassembled from its fragments).

        Args:
            timeout: Seconds to wait at most; ``None``: no limit. A message
                partly received when it runs out is kept for the next call.
            decode: ``False`` returns a text message as UTF-8 ``bytes``,
                ``True`` a binary one decoded as UTF-8 ``str``.

        Returns:
            ``str`` for a text message, ``bytes`` for a binary one.

        Raises:
            ConnectionClosedOK: The connection closed normally (1000/1001).
            ConnectionClosedError: It closed with an error: protocol error
                (1002), invalid UTF-8 (1007), message over ``max_size``
                (1009), keepalive timeout (1011), or dropped (1006). The
                messages received before such a failure are returned
                first; the failure's close frame (RFC 6455 section 7.1.7)
                goes out once they are taken and the caller asks for more,
                or ``close_timeout`` seconds after the failure.
            ReadTimeout: ``timeout`` ran out.
            ConcurrencyError: Another task is receiving.
        """
        self._enter_receive()
        try:
            partial = self._partial
            if timeout is None and not partial:
                # The common case: a message in one frame.
                fragment = await self._next_fragment(None)
                if fragment.fin:
                    return fragment.data if decode is None else _decode(fragment.data, decode)
                partial.append(fragment.data)
            deadline = None if timeout is None else self._backend.monotonic() + timeout
            while True:
                left = None if deadline is None else max(0.0, deadline - self._backend.monotonic())
                fragment = await self._next_fragment(left)
                partial.append(fragment.data)
                if fragment.fin:
                    break
            self._partial = []
            first = partial[0]
            message: Data = "".join(partial) if isinstance(first, str) else b"".join(partial)  # type: ignore[arg-type]
        finally:
            self._leave_receive()
        return _decode(message, decode)

    async def recv_streaming(self, decode: bool | None = None) -> AsyncIterator[Data]:
        """The fragments of the next message, as they arrive (``str`` for
        text, ``bytes`` for binary; ``decode`` as in :meth:`recv`, but a
        text fragment may end inside a character only with ``decode=False``).
        Iterate it to the end (or close it with ``aclose()``): until then
        the connection counts as being received from.

        Raises:
            ConnectionClosed: The connection closed before the message ended.
            ConcurrencyError: Another task is receiving.
        """
        self._enter_receive()
        try:
            # Pieces kept by a recv() that timed out are never the last one.
            partial, self._partial = self._partial, []
            for piece in partial:
                yield _decode(piece, decode)
            while True:
                fragment = await self._next_fragment(None)
                yield _decode(fragment.data, decode)
                if fragment.fin:
                    return
        finally:
            self._leave_receive()

    def __aiter__(self) -> _Messages:
        """Messages until the connection closes: the iteration ends after a
        normal closure (1000/1001) and raises ConnectionClosedError
        otherwise."""
        return _Messages(self)

    def _iterate(self) -> _Messages:
        return _Messages(self)

    # -- JSON ----------------------------------------------------------------

    async def send_json(self, obj: Any, *, binary: bool = False) -> None:
        """Send ``obj`` encoded as JSON (RFC 8259), compact, as one text
        message (UTF-8; a binary one with ``binary=True``).

        Raises:
            TypeError, ValueError: ``obj`` cannot be encoded as JSON (a
                value of another type, a circular reference, NaN...).
            ConnectionClosed: The connection is closed.
        """
        text = json.dumps(obj, separators=(",", ":"), ensure_ascii=False, allow_nan=False)
        await self.send(text.encode() if binary else text)

    async def receive_json(self, timeout: float | None = None) -> Any:
        """Receive the next message (text, or binary holding UTF-8) and
        decode it as JSON (RFC 8259).

        Args:
            timeout: Seconds to wait at most, as for :meth:`recv`.

        Returns:
            The decoded value.

        Raises:
            JSONDecodingError: The message is not valid JSON (also a
                :class:`json.JSONDecodeError`); the connection stays open.
            ConnectionClosed, ReadTimeout: As for :meth:`recv`.
        """
        message = await self.recv(timeout)
        return _loads(message, self.request)

    # -- keepalive -----------------------------------------------------------

    async def _keepalive(self) -> None:
        interval = self._ping_interval
        assert interval is not None
        while not await self._closed_event.wait(interval):
            try:
                payload = os.urandom(4)
                waiter = await self._ping(payload, self._ping_timeout)
            except (ConnectionClosed, TransportError):
                return
            if waiter is not None and self._tracer is not None:
                await self._trace_safe(self._tracer.ping("sent", payload))
            if waiter is None:
                # A send has been stuck for ping_timeout: the peer is gone.
                self.logger.info(
                    "sending stuck for %s s: closing the connection", self._ping_timeout
                )
                await self._fail(1011, "keepalive ping timeout", write=False)
                return
            if self._ping_timeout is None:
                continue
            try:
                await waiter.wait(self._ping_timeout)
            except ConnectionClosed:
                return
            except TimeoutException:
                if not self._closed_event.is_set():
                    self.logger.info(
                        "no pong within %s s: closing the connection", self._ping_timeout
                    )
                    await self._fail(1011, "keepalive ping timeout")
                return

    # -- closing -------------------------------------------------------------

    async def close(self, code: int = 1000, reason: str = "") -> None:
        """Close the connection (the closing handshake, RFC 6455 section
        7.1.2), wait until the server ends it (at most ``close_timeout``
        seconds, then it is dropped), and release it. Idempotent; messages
        not yet received are dropped.

        Args:
            code: Close code (section 7.4.1: 1000 normal, 1001 going away,
                3000-4999 for applications).
            reason: Close reason, at most 123 UTF-8 bytes.

        Raises:
            LocalProtocolError: ``code`` may not be sent or ``reason`` is
                too long.
        """
        check_close(code, reason)
        try:
            if await self._write_lock.acquire(self._close_timeout):
                try:
                    with self._lock:
                        self._protocol.send_close(code, reason)
                        out, _ = self._protocol.data_to_send()
                        if self._protocol.close_expected() and self._close_deadline is None:
                            self._arm_close_timer()
                    if out:
                        try:
                            await self._stream.write(out, self._close_timeout)
                        except TransportError as exc:
                            self._transport_error = self._transport_error or exc
                            self._abort()
                finally:
                    self._write_lock.release()
            else:
                # A send has been stuck for close_timeout: the peer does
                # not read, no close frame can get through.
                self._abort()
            self._dropping = True
            self._queue.clear()
            self._wake_reader()
            if not await self._closed_event.wait(self._close_timeout):
                # The server did not end the connection in time.
                self._abort()
                await self._closed_event.wait()
        except BaseException:
            # Cancelled (or failed) while closing: drop the connection, so
            # that its tasks end.
            self._abort()
            raise
        finally:
            await self._finish()

    async def wait_closed(self) -> None:
        """Wait until the connection is closed (by either side or a
        failure). Does not close it."""
        await self._closed_event.wait()


class _Messages:
    """The iterator of ``async for message in ws`` (a plain object, so that
    leaving the loop early needs no asynchronous generator clean-up)."""

    __slots__ = ("_connection",)

    def __init__(self, connection: ClientConnection) -> None:
        self._connection = connection

    def __aiter__(self) -> _Messages:
        return self

    async def __anext__(self) -> Data:
        try:
            return await self._connection.recv()
        except ConnectionClosedOK:
            raise StopAsyncIteration from None

    async def aclose(self) -> None:
        """Nothing to release (the connection stays open)."""


def _kind(message: Any, text: bool | None) -> tuple[str, bytes | str]:
    """``("text" | "binary", payload)`` of one message or fragment."""
    if isinstance(message, str):
        if text is False:
            return "binary", message.encode()
        return "text", message
    if isinstance(message, (bytes, bytearray, memoryview)):
        data = bytes(message)
        return ("text" if text else "binary"), data
    raise TypeError(f"cannot send {type(message).__name__}: expected str or bytes")


def _size(data: bytes | str) -> int:
    """Payload size in bytes (UTF-8 for text)."""
    return len(data.encode()) if isinstance(data, str) else len(data)


def _loads(message: Data, request: Any) -> Any:
    """The JSON value of a message (RFC 8259)."""
    try:
        text = message if isinstance(message, str) else message.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise JSONDecodingError(
            f"the message is not UTF-8: {exc.reason}", "", exc.start, request=request
        ) from exc
    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        raise JSONDecodingError(exc.msg, exc.doc, exc.pos, request=request) from exc
    except RecursionError as exc:
        message_ = "the JSON value nests too deeply"
        raise JSONDecodingError(message_, text, 0, request=request) from exc


def _decode(message: Data, decode: bool | None) -> Data:
    if decode is None:
        return message
    if decode and isinstance(message, bytes):
        return message.decode("utf-8", "replace")
    if decode is False and isinstance(message, str):
        return message.encode()
    return message


class _aiter:
    """An async iterator over a plain iterable (no generator to finalize)."""

    __slots__ = ("_items",)

    def __init__(self, items: Iterable[Data]) -> None:
        self._items = iter(items)

    def __aiter__(self) -> _aiter:
        return self

    async def __anext__(self) -> Data:
        try:
            return next(self._items)
        except StopIteration:
            raise StopAsyncIteration from None
