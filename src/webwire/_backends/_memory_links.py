"""In-memory links for the memory backend: TCP-like stream pairs and
UDP-like datagram pairs on trio's (fake) clock.

:class:`MemoryStream` models TCP: a bounded buffer each way (back-pressure),
half-close, graceful close, reset, and TLS that records the server name and
reports a configured ALPN protocol. :class:`MemoryDatagramSocket` models a
UDP path with random or scripted loss, delay and jitter.
"""

from __future__ import annotations

import heapq
import math
import random
from collections.abc import Callable, Collection
from dataclasses import dataclass
from typing import Any

import trio

from ._common import (
    WRITE_CHUNK,
    read_error,
    read_timeout,
    tls_error,
    write_error,
    write_timeout,
)
from .base import DatagramSocket, NetworkStream

__all__ = [
    "DEFAULT_BUFFER_SIZE",
    "MAX_DATAGRAM_SIZE",
    "FakeSSLObject",
    "LinkConditions",
    "MemoryDatagramSocket",
    "MemoryStream",
    "datagram_pair",
    "stream_pair",
]

DEFAULT_BUFFER_SIZE = 64 * 1024
"""Bytes each direction of a stream holds unread before ``write`` waits."""

MAX_DATAGRAM_SIZE = 65_507
"""Largest UDP payload over IPv4, in bytes."""

_EPHEMERAL = 49_152

Address = tuple[str, int]


def _deadline(timeout: float | None) -> float:
    """The trio time ``timeout`` seconds from now (``inf`` for ``None``)."""
    return math.inf if timeout is None else trio.current_time() + max(timeout, 0.0)


async def _park(lot: trio.lowlevel.ParkingLot, deadline: float) -> bool:
    """Wait on ``lot`` until unparked (``True``) or until the absolute
    ``deadline`` passes (``False``)."""
    if deadline == math.inf:
        await lot.park()
        return True
    with trio.move_on_at(deadline) as scope:
        await lot.park()
    return not scope.cancelled_caught


# -- streams -------------------------------------------------------------------


class _Pipe:
    """One direction of a stream. ``eof``: the writer shut its side down;
    ``reset``: the writer aborted; ``reader_gone``: why writes fail once the
    reading end closed."""

    __slots__ = ("buffer", "capacity", "eof", "readable", "reader_gone", "reset", "writable")

    def __init__(self, capacity: int) -> None:
        self.buffer = bytearray()
        self.capacity = capacity
        self.eof = False
        self.reset = False
        self.reader_gone: str | None = None
        self.readable = trio.lowlevel.ParkingLot()
        self.writable = trio.lowlevel.ParkingLot()


class FakeSSLObject:
    """``get_extra_info("ssl_object")`` of a TLS :class:`MemoryStream`,
    with the :class:`ssl.SSLObject` methods webwire reads, the server name
    sent (SNI) and which end it is (``server_side``)."""

    def __init__(self, server_hostname: str | None, alpn: str | None, server_side: bool) -> None:
        self.server_hostname = server_hostname
        self.server_side = server_side
        self._alpn = alpn

    def selected_alpn_protocol(self) -> str | None:
        """The ALPN protocol selected (RFC 7301), or ``None``."""
        return self._alpn

    def version(self) -> str:
        """Always ``"TLSv1.3"``."""
        return "TLSv1.3"

    def getpeercert(self, binary_form: bool = False) -> dict[str, Any] | bytes:
        """An empty certificate: ``{}``, or ``b""`` in binary form."""
        return b"" if binary_form else {}


class MemoryStream(NetworkStream):
    """One end of an in-memory connection; see :func:`stream_pair`.

    Attributes:
        peer: The other end.
        server_side: Whether this is the server's end.
        tls: Whether TLS is on (``start_tls``, or ``connect_tcp`` with an
            ``ssl_context``; always both ends together).
        server_hostname: The server name the TLS client sent, or ``None``.
        alpn: The ALPN protocol reported once TLS is on.
        ssl_context: The context given to ``start_tls`` or ``connect_tcp``.
    """

    def __init__(
        self, incoming: _Pipe, outgoing: _Pipe, sockname: Any, peername: Any, alpn: str | None
    ) -> None:
        self._in, self._out = incoming, outgoing
        self._sockname, self._peername = sockname, peername
        self._closed = self._eof_sent = self._reading = self._writing = False
        self._on_close: Callable[[Any], None] | None = None
        self.server_side = False
        self.peer: MemoryStream = self
        self.tls = False
        self.server_hostname: str | None = None
        self.alpn = alpn
        self.ssl_context: Any = None

    @property
    def closed(self) -> bool:
        """Whether this end was closed (``aclose`` or ``abort``)."""
        return self._closed

    @property
    def buffered(self) -> int:
        """Bytes written from this end that the peer has not read yet."""
        return len(self._out.buffer)

    async def read(self, max_bytes: int, timeout: float | None) -> bytes:
        """See :meth:`NetworkStream.read`, on the fake clock. A reset is
        reported once the bytes the peer wrote before it were read."""
        if max_bytes < 1:
            raise ValueError("max_bytes must be at least 1")
        if self._reading:
            raise read_error("another task is already reading")
        deadline = _deadline(timeout)
        pipe = self._in
        self._reading = True
        try:
            while True:
                if self._closed:
                    raise read_error("the connection is closed")
                if pipe.buffer:
                    data = bytes(pipe.buffer[:max_bytes])
                    del pipe.buffer[:max_bytes]
                    pipe.writable.unpark_all()
                    return data
                if pipe.reset:
                    raise read_error("connection reset by peer")
                if pipe.eof:
                    return b""
                if not await _park(pipe.readable, deadline):
                    raise read_timeout(timeout)
        finally:
            self._reading = False

    async def write(self, data: bytes, timeout: float | None) -> None:
        """See :meth:`NetworkStream.write`, on the fake clock: waits while
        the peer's buffer is full; over 256 KiB, each piece gets ``timeout``."""
        if self._writing:
            raise write_error("another task is already writing")
        view = memoryview(data).cast("B")
        pipe = self._out
        position = 0
        self._writing = True
        try:
            while True:
                self._check_writable()
                end = min(position + WRITE_CHUNK, len(view))
                deadline = _deadline(timeout)
                while position < end:
                    room = pipe.capacity - len(pipe.buffer)
                    if room <= 0:
                        if not await _park(pipe.writable, deadline):
                            raise write_timeout(timeout)
                        self._check_writable()
                        continue
                    size = min(room, end - position)
                    pipe.buffer += view[position : position + size]
                    position += size
                    pipe.readable.unpark_all()
                if position >= len(view):
                    return
        finally:
            self._writing = False

    def _check_writable(self) -> None:
        if self._closed:
            raise write_error("the connection is closed")
        if self._eof_sent:
            raise write_error("the sending side is shut down")
        if self._out.reader_gone is not None:
            raise write_error(self._out.reader_gone)

    async def send_eof(self) -> None:
        """See :meth:`NetworkStream.send_eof` (``WriteError`` with TLS on)."""
        if self._closed:
            raise write_error("the connection is closed")
        if self.tls:
            raise write_error("TLS streams cannot half-close")
        self._eof_sent = self._out.eof = True
        self._out.readable.unpark_all()

    async def aclose(self) -> None:
        """Close gracefully: the peer reads what was written, then ``b""``;
        its writes raise ``WriteError`` (broken pipe)."""
        self._close(reset=False)

    def abort(self) -> None:
        """Reset: the peer reads what was written, then ``ReadError``; its
        writes raise ``WriteError``."""
        self._close(reset=True)

    def _close(self, *, reset: bool) -> None:
        if self._closed:
            return
        self._closed = True
        incoming, outgoing = self._in, self._out
        if reset:
            outgoing.reset = True
            incoming.reader_gone = "connection reset by peer"
        else:
            outgoing.eof = True
            incoming.reader_gone = "broken pipe: the peer closed the connection"
        incoming.buffer.clear()
        for lot in (incoming.readable, incoming.writable, outgoing.readable, outgoing.writable):
            lot.unpark_all()
        if self._on_close is not None:
            self._on_close(self)

    def is_readable(self) -> bool:
        """Bytes, EOF or a reset are waiting, or this end is closed."""
        pipe = self._in
        return self._closed or bool(pipe.buffer) or pipe.eof or pipe.reset

    async def start_tls(
        self, ssl_context: Any, server_hostname: str | None, timeout: float | None
    ) -> NetworkStream:
        """Turn TLS on for both ends at once (no handshake bytes): both
        record ``server_hostname`` and report :attr:`alpn`.

        Returns:
            This stream.

        Raises:
            ConnectError: The connection is closed or reset (then aborted).
        """
        if self._closed or self._in.eof or self._in.reset:
            self.abort()
            raise tls_error("the connection was closed during the handshake")
        self._enable_tls(ssl_context, server_hostname)
        return self

    def _enable_tls(self, ssl_context: Any, server_hostname: str | None) -> None:
        for end in (self, self.peer):
            end.tls = True
            end.server_hostname = server_hostname
            end.alpn = self.alpn
        self.ssl_context = ssl_context

    def get_extra_info(self, name: str) -> Any:
        """``"peername"``, ``"sockname"``; with TLS on, ``"alpn_protocol"``
        and ``"ssl_object"`` (a :class:`FakeSSLObject`); else ``None``."""
        if name in ("peername", "sockname"):
            return self._peername if name == "peername" else self._sockname
        if not self.tls:
            return None
        if name == "alpn_protocol":
            return self.alpn
        if name == "ssl_object":
            return FakeSSLObject(self.server_hostname, self.alpn, self.server_side)
        return None

    def __repr__(self) -> str:
        state = "closed" if self._closed else "open"
        return f"<MemoryStream {self._sockname!r} -> {self._peername!r} {state}>"


def stream_pair(
    *,
    buffer_size: int = DEFAULT_BUFFER_SIZE,
    alpn: str | None = None,
    addresses: tuple[Any, Any] = (("127.0.0.1", _EPHEMERAL), ("127.0.0.1", 8000)),
) -> tuple[MemoryStream, MemoryStream]:
    """Two linked ends of an in-memory connection.

    Args:
        buffer_size: Bytes each direction holds unread before ``write``
            waits (back-pressure).
        alpn: The ALPN protocol both ends report once TLS is on.
        addresses: The ``sockname`` of each end (the other's ``peername``).

    Returns:
        ``(client_end, server_end)``.

    Raises:
        ValueError: ``buffer_size`` is below 1.
    """
    if buffer_size < 1:
        raise ValueError("buffer_size must be at least 1 byte")
    ahead, back = _Pipe(buffer_size), _Pipe(buffer_size)
    client = MemoryStream(back, ahead, addresses[0], addresses[1], alpn)
    server = MemoryStream(ahead, back, addresses[1], addresses[0], alpn)
    server.server_side = True
    client.peer, server.peer = server, client
    return client, server


# -- datagrams -----------------------------------------------------------------


@dataclass(frozen=True)
class LinkConditions:
    """How one direction of a datagram path treats what is sent on it.

    Attributes:
        loss: Fraction (0 to 1) of datagrams dropped at random.
        drop: 0-based indices of datagrams dropped for sure, counted from
            the first datagram sent this way.
        delay: One-way delay, in seconds of the fake clock.
        jitter: Extra delay per datagram, uniform in 0 to ``jitter``
            seconds (reorders datagrams).
        queue_size: Datagrams the receiver holds, in flight included;
            more are dropped, like a full socket buffer.
    """

    loss: float = 0.0
    drop: Collection[int] = ()
    delay: float = 0.0
    jitter: float = 0.0
    queue_size: int = 1024

    def __post_init__(self) -> None:
        if not 0.0 <= self.loss <= 1.0 or self.delay < 0 or self.jitter < 0:
            raise ValueError("loss must be in [0, 1]; delay and jitter must be >= 0 seconds")
        if self.queue_size < 1:
            raise ValueError("queue_size must be at least 1")
        object.__setattr__(self, "drop", frozenset(self.drop))


class _Link:
    """One direction of a datagram path: a heap ordered by arrival time."""

    __slots__ = ("arrived", "conditions", "dropped", "queue", "receiver_closed", "rng", "sent")

    def __init__(self, conditions: LinkConditions, rng: random.Random) -> None:
        self.conditions = conditions
        self.rng = rng
        self.sent = self.dropped = 0
        self.queue: list[tuple[float, int, bytes]] = []
        self.receiver_closed = False
        self.arrived = trio.lowlevel.ParkingLot()

    def push(self, data: bytes, now: float) -> None:
        index = self.sent
        self.sent += 1
        rules = self.conditions
        lost = index in rules.drop or (rules.loss > 0 and self.rng.random() < rules.loss)
        if lost or self.receiver_closed or len(self.queue) >= rules.queue_size:
            self.dropped += 1
            return
        at = now + rules.delay + (self.rng.uniform(0.0, rules.jitter) if rules.jitter else 0.0)
        heapq.heappush(self.queue, (at, index, data))
        self.arrived.unpark_all()


class MemoryDatagramSocket(DatagramSocket):
    """One end of an in-memory datagram path; see :func:`datagram_pair`.

    Attributes:
        received: Datagrams received so far.
    """

    def __init__(self, incoming: _Link, outgoing: _Link, sockname: Any, peername: Any) -> None:
        self._in, self._out = incoming, outgoing
        self._sockname, self._peername = sockname, peername
        self._closed = False
        self._on_close: Callable[[Any], None] | None = None
        self.received = 0

    @property
    def closed(self) -> bool:
        """Whether the socket was closed."""
        return self._closed

    @property
    def sent(self) -> int:
        """Datagrams sent from this socket, dropped ones included."""
        return self._out.sent

    @property
    def dropped(self) -> int:
        """Datagrams sent from this socket that the path dropped."""
        return self._out.dropped

    @property
    def conditions(self) -> LinkConditions:
        """The conditions of the path from this socket; assign to change
        them mid-test (``drop`` indices keep counting from the start)."""
        return self._out.conditions

    @conditions.setter
    def conditions(self, conditions: LinkConditions) -> None:
        self._out.conditions = conditions

    async def send(self, data: bytes) -> None:
        """See :meth:`DatagramSocket.send`: the datagram arrives after the
        path's delay unless the path drops it (or the peer is closed)."""
        if self._closed:
            raise write_error("the socket is closed")
        if len(data) > MAX_DATAGRAM_SIZE:
            raise write_error(f"message too long: {len(data)} bytes (at most {MAX_DATAGRAM_SIZE})")
        self._out.push(bytes(data), trio.current_time())

    async def receive(self, timeout: float | None = None) -> bytes:
        """See :meth:`DatagramSocket.receive`, on the fake clock."""
        deadline = _deadline(timeout)
        queue = self._in.queue
        while True:
            if self._closed:
                raise read_error("the socket is closed")
            now = trio.current_time()
            if queue and queue[0][0] <= now:
                self.received += 1
                return heapq.heappop(queue)[2]
            if now >= deadline:
                raise read_timeout(timeout)
            await _park(self._in.arrived, min(deadline, queue[0][0]) if queue else deadline)

    async def receive_many(self, max_count: int, timeout: float | None = None) -> list[bytes]:
        """See :meth:`DatagramSocket.receive_many`: the first datagram as
        :meth:`receive`, then those already due on the fake clock."""
        if max_count < 1:
            raise ValueError(f"max_count must be at least 1, not {max_count}")
        batch = [await self.receive(timeout)]
        queue = self._in.queue
        now = trio.current_time()
        while queue and queue[0][0] <= now and len(batch) < max_count:
            self.received += 1
            batch.append(heapq.heappop(queue)[2])
        return batch

    async def aclose(self) -> None:
        """See :meth:`DatagramSocket.aclose`; later datagrams to it are
        dropped."""
        self.close()

    def close(self) -> None:
        """:meth:`aclose`, synchronously."""
        if self._closed:
            return
        self._closed = self._in.receiver_closed = True
        self._in.queue.clear()
        self._in.arrived.unpark_all()
        if self._on_close is not None:
            self._on_close(self)

    def get_extra_info(self, name: str) -> Any:
        """``"sockname"`` and ``"peername"``; ``None`` otherwise."""
        return {"sockname": self._sockname, "peername": self._peername}.get(name)

    def __repr__(self) -> str:
        state = "closed" if self._closed else "open"
        return f"<MemoryDatagramSocket {self._sockname!r} -> {self._peername!r} {state}>"


def datagram_pair(
    *,
    loss: float = 0.0,
    drop: Collection[int] = (),
    delay: float = 0.0,
    jitter: float = 0.0,
    reverse: LinkConditions | None = None,
    seed: int | None = None,
    addresses: tuple[Address, Address] = (("127.0.0.1", _EPHEMERAL), ("127.0.0.1", 443)),
) -> tuple[MemoryDatagramSocket, MemoryDatagramSocket]:
    """Two linked datagram sockets over a path that may drop and delay.

    Args:
        loss: Fraction (0 to 1) dropped at random, both ways unless
            ``reverse`` is given.
        drop: 0-based indices of the first socket's datagrams to drop.
        delay: One-way delay in seconds, both ways unless ``reverse``.
        jitter: Extra random delay per datagram, 0 to ``jitter`` seconds.
        reverse: Conditions from the second socket to the first (default:
            the same ``loss``, ``delay`` and ``jitter``, no ``drop``).
        seed: Seed of the random loss and jitter (``None``: unseeded).
        addresses: The ``sockname`` of each socket.

    Returns:
        ``(first, second)``.
    """
    forward = LinkConditions(loss, drop, delay, jitter)
    backward = reverse or LinkConditions(loss, (), delay, jitter)
    return _datagram_pair(forward, backward, seed, addresses)


def _datagram_pair(
    forward: LinkConditions, backward: LinkConditions, seed: int | None, addresses: tuple[Any, Any]
) -> tuple[MemoryDatagramSocket, MemoryDatagramSocket]:
    ahead = _Link(forward, random.Random(seed))
    back = _Link(backward, random.Random(None if seed is None else seed + 1))
    first = MemoryDatagramSocket(back, ahead, addresses[0], addresses[1])
    second = MemoryDatagramSocket(ahead, back, addresses[1], addresses[0])
    return first, second


# -- servers and the backend -----------------------------------------------------
