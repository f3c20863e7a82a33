"""A UDP relay that loses, reorders and duplicates datagrams, for QUIC tests.

:class:`LossyUDPRelay` listens on 127.0.0.1 (port 0) and forwards every
datagram between its clients and one target address, in a thread running a
``select`` loop. Each client address gets its own upstream socket, so the
answers of the target find their way back. Every datagram, in either
direction, is independently (with a seeded :class:`random.Random`, so a run
is repeatable for a given sequence of datagrams):

* dropped with probability ``loss``;
* else held back and sent after the next datagram in the same direction
  (or after ``hold`` seconds when none follows) with probability
  ``reorder``;
* and sent twice with probability ``duplicate``.

Counters of what the relay forwarded, dropped, reordered and duplicated are
read with :meth:`LossyUDPRelay.counters`.
"""

from __future__ import annotations

import contextlib
import random
import select
import socket
import threading
import time
from dataclasses import dataclass

__all__ = ["LossyUDPRelay", "RelayCounters"]

_MAX_DATAGRAM = 65536


@dataclass(frozen=True)
class RelayCounters:
    """What a relay did so far (both directions together).

    Attributes:
        received: Datagrams the relay read (from clients and from the target).
        forwarded: Datagrams sent on (a duplicate counts twice).
        dropped: Datagrams thrown away.
        reordered: Datagrams held back and sent after a later one.
        duplicated: Datagrams sent twice.
    """

    received: int
    forwarded: int
    dropped: int
    reordered: int
    duplicated: int


class _Held:
    """A datagram held back to be sent after the next one on its path."""

    __slots__ = ("data", "deadline", "destination", "sock")

    def __init__(
        self, sock: socket.socket, destination: tuple[str, int], data: bytes, deadline: float
    ) -> None:
        self.sock = sock
        self.destination = destination
        self.data = data
        self.deadline = deadline


class LossyUDPRelay:
    """A lossy UDP relay between clients and ``target`` (see the module docstring).

    Args:
        target: ``(host, port)`` the datagrams of clients are sent to.
        loss: Probability (0..1) that a datagram is dropped.
        reorder: Probability that a datagram is held back and sent after
            the next one.
        duplicate: Probability that a datagram is sent twice.
        seed: Seed of the random choices.
        hold: Seconds a held-back datagram waits at most for a later one.

    Attributes:
        address: ``("127.0.0.1", port)`` clients send to.
        port: The relay's UDP port.

    Raises:
        ValueError: A probability outside 0..1.
    """

    def __init__(
        self,
        target: tuple[str, int],
        *,
        loss: float = 0.05,
        reorder: float = 0.05,
        duplicate: float = 0.05,
        seed: int = 0,
        hold: float = 0.01,
    ) -> None:
        for name, value in (("loss", loss), ("reorder", reorder), ("duplicate", duplicate)):
            if not 0.0 <= value <= 1.0:
                raise ValueError(f"{name} must be between 0 and 1, not {value!r}")
        self.target = target
        self.loss = loss
        self.reorder = reorder
        self.duplicate = duplicate
        self.hold = hold
        self._random = random.Random(seed)
        self._lock = threading.Lock()
        self._received = self._forwarded = self._dropped = 0
        self._reordered = self._duplicated = 0
        self._front = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self._front.bind(("127.0.0.1", 0))
        self._front.setblocking(False)
        self.address: tuple[str, int] = self._front.getsockname()
        self.port = self.address[1]
        # client address -> upstream socket, and back
        self._upstream: dict[tuple[str, int], socket.socket] = {}
        self._client_of: dict[socket.socket, tuple[str, int]] = {}
        # one held datagram per (socket, destination) path
        self._held: dict[tuple[int, tuple[str, int]], _Held] = {}
        self._wake_r, self._wake_w = socket.socketpair()
        self._wake_r.setblocking(False)
        self._closed = False
        self._error: BaseException | None = None
        self._thread = threading.Thread(target=self._run, name="udp-relay", daemon=True)
        self._thread.start()

    def counters(self) -> RelayCounters:
        """The counters so far, read together."""
        with self._lock:
            return RelayCounters(
                self._received,
                self._forwarded,
                self._dropped,
                self._reordered,
                self._duplicated,
            )

    def set_rates(
        self,
        *,
        loss: float | None = None,
        reorder: float | None = None,
        duplicate: float | None = None,
    ) -> None:
        """Change probabilities while the relay runs (``None``: unchanged)."""
        with self._lock:
            if loss is not None:
                self.loss = loss
            if reorder is not None:
                self.reorder = reorder
            if duplicate is not None:
                self.duplicate = duplicate

    def close(self) -> None:
        """Stop the thread and close every socket (idempotent).

        Raises:
            RuntimeError: The relay's loop crashed.
        """
        if not self._closed:
            self._closed = True
            with contextlib.suppress(OSError):
                self._wake_w.send(b"x")
            self._thread.join(5.0)
            for sock in [self._front, *self._upstream.values(), self._wake_r, self._wake_w]:
                sock.close()
        if self._error is not None:
            raise RuntimeError("the UDP relay crashed") from self._error

    def __enter__(self) -> LossyUDPRelay:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    # -- the relay thread ---------------------------------------------------------

    def _run(self) -> None:
        try:
            self._loop()
        except BaseException as exc:  # reported by close()
            self._error = exc

    def _loop(self) -> None:
        while not self._closed:
            timeout = self._next_timeout()
            readable, _, _ = select.select(
                [self._front, self._wake_r, *self._client_of], [], [], timeout
            )
            for sock in readable:
                if sock is self._wake_r:
                    return
                self._read_all(sock)
            self._flush_expired(time.monotonic())

    def _next_timeout(self) -> float | None:
        if not self._held:
            return None
        earliest = min(held.deadline for held in self._held.values())
        return max(0.0, earliest - time.monotonic())

    def _read_all(self, sock: socket.socket) -> None:
        while True:
            try:
                data, source = sock.recvfrom(_MAX_DATAGRAM)
            except (BlockingIOError, InterruptedError):
                return
            except OSError:
                # ICMP errors (a port unreachable) surface here on Linux.
                return
            if sock is self._front:
                upstream = self._upstream_for(source)
                self._relay(upstream, self.target, data)
            else:
                self._relay(self._front, self._client_of[sock], data)

    def _upstream_for(self, client: tuple[str, int]) -> socket.socket:
        upstream = self._upstream.get(client)
        if upstream is None:
            upstream = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
            upstream.bind(("127.0.0.1", 0))
            upstream.setblocking(False)
            self._upstream[client] = upstream
            self._client_of[upstream] = client
        return upstream

    def _relay(self, sock: socket.socket, destination: tuple[str, int], data: bytes) -> None:
        with self._lock:
            self._received += 1
            draw = self._random.random
            lost = draw() < self.loss
            held_back = draw() < self.reorder
            doubled = draw() < self.duplicate
            if lost:
                self._dropped += 1
        if lost:
            return
        key = (sock.fileno(), destination)
        earlier = self._held.pop(key, None)
        if held_back and earlier is None:
            with self._lock:
                self._reordered += 1
            self._held[key] = _Held(sock, destination, data, time.monotonic() + self.hold)
        else:
            self._send(sock, destination, data)
        if doubled:
            with self._lock:
                self._duplicated += 1
            self._send(sock, destination, data)
        if earlier is not None:
            self._send(earlier.sock, earlier.destination, earlier.data)

    def _flush_expired(self, now: float) -> None:
        for key, held in list(self._held.items()):
            if held.deadline <= now:
                del self._held[key]
                self._send(held.sock, held.destination, held.data)

    def _send(self, sock: socket.socket, destination: tuple[str, int], data: bytes) -> None:
        try:
            sock.sendto(data, destination)
        except OSError:
            return  # a full buffer or an unreachable port: a loss like any other
        with self._lock:
            self._forwarded += 1
