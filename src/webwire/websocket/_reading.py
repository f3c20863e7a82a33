"""The receiving side of :class:`~webwire.websocket.ClientConnection`: who
reads the byte stream, where received messages wait, and when the close
frame of a failure found in received data goes out (RFC 6455).

One task (or thread) at a time holds the connection's *reader role*: it
reads the stream, feeds the ``websockets`` engine (which answers pings and
echoes close frames), writes what the engine answers, and queues received
message fragments. Whoever needs data takes the role when it is free:

* ``recv()`` with nothing queued reads the stream itself, in the caller's
  task (thread on the blocking API), so a message reaches the caller
  without a switch to another task;
* the background reader task reads while nobody receives: it answers pings
  and sees the closing handshake of a connection the application only sends
  on, and it queues up to ``max_queue`` fragments ahead of the application
  (then it stops reading, and the server feels back-pressure). It yields
  the role to receiving callers: after a read during which a ``recv()``
  started it stands back, and it waits (without reading) while receiving
  calls keep coming, checking every :data:`_POLL_INTERVAL` seconds.

A failure found in received data (a protocol error, invalid UTF-8, a
message over ``max_size``) stops parsing at once, but its close frame is
held while messages received before it are still queued for, or being
answered by, the application: it goes out when the application comes back
for the next message and none is left (so the answers to those messages go
out first), when the connection is closed, or after ``close_timeout``
seconds (10 when ``close_timeout`` is ``None``). With nothing queued and
the application waiting for a message (or never having received one) it
goes out at once.
"""

from __future__ import annotations

from collections import deque
from typing import TYPE_CHECKING, Any

from webwire._exceptions import ReadTimeout, TimeoutException, TransportError
from webwire._proto.websocket import (
    Fragment,
    PingReceived,
    PongReceived,
    State,
)

if TYPE_CHECKING:
    from collections.abc import Awaitable
    from contextlib import AbstractContextManager

    from webwire._backends.base import Backend, Event, NetworkStream
    from webwire._exceptions import ConnectionClosed
    from webwire._proto.websocket import WebSocketProtocol
    from webwire.http._tracing import WebSocketTracer

__all__ = ["Receiving"]

_READ_SIZE = 65536
"""Bytes asked for by the first read."""
_MAX_READ_SIZE = 1048576
"""Largest read: the size doubles each time a read comes back full (large
messages then take few reads; it never shrinks, as a smaller read would
split the pieces the transport received); 256 KiB is what asyncio's
transports hand over at once, so a read joins no pieces."""
_POLL_INTERVAL = 0.05
"""Seconds between the background reader's checks, while receiving calls
keep coming, of whether they stopped (it then takes the reader role back)."""
_HOLD_LIMIT = 10.0
"""Longest hold of a failure's close frame, in seconds, when
``close_timeout`` is ``None``."""


class Receiving:
    """The reader role, the message queue and the held failure of one
    connection (a base of :class:`~webwire.websocket.ClientConnection`,
    which sets every attribute below)."""

    _backend: Backend
    _stream: NetworkStream
    _protocol: WebSocketProtocol
    _lock: AbstractContextManager[Any]
    _closed_event: Event
    _close_timeout: float | None
    _close_deadline: float | None
    _transport_error: BaseException | None
    _tracer: WebSocketTracer | None
    http_version: str

    def _init_receiving(self, max_queue: int) -> None:
        backend = self._backend
        self._queue: deque[Fragment] = deque()
        self._max_queue = max(1, max_queue)
        self._read_size = _READ_SIZE
        self._reading = False  # the reader role is taken
        self._eof = False  # the transport ended (and that was processed)
        self._dropping = False  # closed locally: received messages are dropped
        self._arrived = backend.create_event()  # for a recv() waiting for the role
        self._rx_waiting = False
        self._bg_wake = backend.create_event()
        self._bg_idle = False  # the background reader waits for the role
        self._bg_full = False  # the background reader waits for room
        self._recv_seq = 0  # receiving calls so far
        self._ever_received = False
        self._hold_deadline: float | None = None
        self._protocol.hold_failures()

    # -- hooks the connection class provides (declared for type checking) ----

    if TYPE_CHECKING:

        async def _flush(self, timeout: float | None = None) -> None:
            ...

        def _pong(self, data: bytes) -> None:
            ...

        def _arm_close_timer(self) -> None:
            ...

        def _closed_error(self) -> ConnectionClosed:
            ...

        def _handshake_closed(self) -> bool:
            ...

        def _shutdown(self) -> None:
            ...

        async def _trace_fragment(self, fragment: Fragment) -> None:
            ...

        async def _trace_safe(self, emission: Awaitable[None]) -> None:
            ...

    # -- reading ----------------------------------------------------------------

    def _wake_reader(self) -> None:
        """Have the background reader take the reader role as soon as it
        is free (after a close, a ping, a receiving call that gave up)."""
        with self._lock:
            self._wake_reader_locked()

    def _wake_reader_locked(self) -> None:
        self._bg_idle = False
        self._bg_full = False
        self._bg_wake.set()

    def _abort(self) -> None:
        """Drop the transport; whoever reads next sees it ended."""
        self._stream.abort()
        self._wake_reader()

    def _read_timeout(self) -> float | None:
        deadline = self._close_deadline
        if deadline is None or deadline == float("inf"):
            return None
        return max(0.0, deadline - self._backend.monotonic())

    async def _read_once(self, limit: float | None, receiving: bool) -> bool:
        """As the reader: read once (within ``limit`` seconds, ``None``: no
        limit) and process what came; ``False`` when ``limit`` ran out
        first. The close timer (``close_timeout`` after a close frame was
        sent) ends the transport when it runs out."""
        close_left = self._read_timeout()
        if close_left is None:
            timeout = limit
        elif limit is None or close_left <= limit:
            timeout, limit = close_left, None
        else:
            timeout = limit
        size = self._read_size
        try:
            data = await self._stream.read(size, timeout)
            if len(data) == size and size < _MAX_READ_SIZE:
                self._read_size = size * 2
        except TimeoutException as exc:
            if limit is not None:
                return False
            # The server did not end the connection within close_timeout of
            # the closing handshake.
            self._transport_error = exc
            data = b""
        except TransportError as exc:
            self._transport_error = exc
            data = b""
        await self._process(data, receiving)
        return True

    async def _process(self, data: bytes, receiving: bool) -> None:
        """Feed ``data`` (``b""``: the end of the transport) to the engine,
        queue the fragments, write the engine's answers. Everything is
        recorded before the first ``await``, so a receiving caller cancelled
        here loses nothing (what is left to write goes out with the next
        write, in order)."""
        protocol = self._protocol
        queue = self._queue
        with self._lock:
            if data:
                protocol.receive_data(data)
            else:
                protocol.receive_eof()
            events = protocol.events()
        for event in events:
            if type(event) is Fragment:
                if not self._dropping:
                    queue.append(event)
            elif type(event) is PongReceived:
                self._pong(event.data)
        if data and protocol.failure_held and self._hold_deadline is None:
            with self._lock:
                # Nothing left to answer: nothing queued, and the
                # application waits for more (or never received).
                release = not queue and (
                    receiving or self._rx_waiting or not self._ever_received
                )
                if release:
                    protocol.release_failure()
            if not release:
                bound = self._close_timeout
                bound = _HOLD_LIMIT if bound is None else bound
                self._hold_deadline = self._backend.monotonic() + bound
                self._wake_reader()
        if (
            self._close_deadline is None
            and protocol.state is not State.OPEN
            and protocol.close_expected()
        ):
            self._arm_close_timer()
        if protocol.has_data_to_send():
            await self._flush()
        tracer = self._tracer
        if tracer is not None:
            for event in events:
                if type(event) is Fragment:
                    await self._trace_fragment(event)
                elif type(event) is PongReceived:
                    await self._trace_safe(tracer.pong("received", event.data))
                elif type(event) is PingReceived:
                    await self._trace_safe(tracer.ping("received", event.data))
        if not data or (self.http_version != "HTTP/1.1" and self._handshake_closed()):
            # On a stream of a multiplexed connection (RFC 8441) the closing
            # handshake is the end: the stream is reset rather than waiting
            # for the server's END_STREAM, which some servers never send.
            self._shutdown()

    async def _release_failure(self) -> None:
        """Send the close frame of the held failure (if still held)."""
        with self._lock:
            self._protocol.release_failure()
            self._hold_deadline = None
            if self._close_deadline is None and self._protocol.close_expected():
                self._arm_close_timer()
        self._wake_reader()
        await self._flush()

    def _end_of_stream(self) -> None:
        """Mark the transport ended for the readers (lock held)."""
        self._eof = True
        self._arrived.set()
        self._bg_wake.set()

    async def _reader(self) -> None:
        """The background reader: reads while nobody receives."""
        backend = self._backend
        seen = self._recv_seq
        force = True
        try:
            while True:
                with self._lock:
                    if self._eof:
                        return
                    force = force or self._bg_wake.is_set()
                    room = (
                        len(self._queue) < self._max_queue
                        or self._protocol.state is not State.OPEN
                    )
                    free = not self._reading
                    quiet = self._recv_seq == seen
                    held = self._hold_deadline is not None
                    # Woken on purpose (a close, a ping, an abort), it reads
                    # once even with the queue full.
                    take = free and not held and (force or (quiet and room))
                    if take:
                        self._reading = True
                    else:
                        self._bg_wake.clear()
                        self._bg_idle = not free and quiet and not held
                        self._bg_full = free and not room and not held
                    seen = self._recv_seq
                if take:
                    force = False
                    try:
                        await self._read_once(None, False)
                    finally:
                        with self._lock:
                            self._reading = False
                            if self._rx_waiting:
                                self._arrived.set()
                    continue
                deadline = self._hold_deadline
                if deadline is not None:
                    wait: float | None = max(0.0, deadline - backend.monotonic())
                elif self._bg_idle:
                    wait = None  # the receiving call holding the role wakes it
                else:
                    # Polls (also with the queue full: a receiving call on
                    # another thread may take a fragment just after the check).
                    wait = _POLL_INTERVAL
                force = await self._bg_wake.wait(wait)
                if deadline is not None and backend.monotonic() >= deadline:
                    if self._protocol.failure_held:
                        await self._release_failure()
                    self._hold_deadline = None
                    force = True
        except BaseException as exc:
            self._transport_error = self._transport_error or exc
            self._shutdown()
            raise

    async def _next_fragment(self, timeout: float | None) -> Fragment:
        """The next received fragment, reading the stream when nothing is
        queued and the reader role is free.

        Raises:
            ConnectionClosed: The connection closed (after the fragments
                queued before).
            ReadTimeout: Nothing within ``timeout`` seconds.
        """
        queue = self._queue
        if queue:
            try:
                fragment = queue.popleft()
            except IndexError:
                pass  # emptied by close() meanwhile
            else:
                if self._bg_full:
                    self._wake_reader()
                return fragment
        backend = self._backend
        deadline = None if timeout is None else backend.monotonic() + timeout
        while True:
            with self._lock:
                if queue:
                    return queue.popleft()
                closed = self._eof
                release = not closed and self._protocol.failure_held
                role = not closed and not release and not self._reading
                if role:
                    self._reading = True
                elif not closed and not release:
                    self._arrived.clear()
                    self._rx_waiting = True
            if closed:
                raise self._closed_error()
            if release:
                await self._release_failure()
                continue
            left = None if deadline is None else max(0.0, deadline - backend.monotonic())
            if role:
                done = False
                try:
                    done = await self._read_once(left, True)
                finally:
                    with self._lock:
                        self._reading = False
                        if not done or self._bg_idle:
                            self._wake_reader_locked()
                if not done:
                    raise ReadTimeout(f"no message received within {timeout} seconds")
                if queue:
                    return queue.popleft()
                continue
            try:
                arrived = await self._arrived.wait(left)
            finally:
                self._rx_waiting = False
            if not arrived:
                with self._lock:
                    if queue:
                        return queue.popleft()
                raise ReadTimeout(f"no message received within {timeout} seconds")
