"""The Backend interface: the only door from webwire to sockets, loops and clocks.

Everything above ``_backends`` is written once as coroutines against this
interface and runs unchanged on asyncio, trio and the blocking backend. On
the blocking backend no ``await`` ever suspends, so the same coroutines are
driven to completion by :func:`webwire._sync.run_sync`.

Contract for every implementation:

* Timeouts are per operation, in seconds, ``None`` for no limit. A timeout
  raises the matching webwire exception (``ConnectTimeout``, ``ReadTimeout``,
  ``WriteTimeout``); it never leaves the stream half-written in a way the
  caller is not told about.
* ``OSError``, ``ssl.SSLError`` and loop-specific errors are mapped here:
  connecting raises :class:`~webwire.ConnectError`, reading
  :class:`~webwire.ReadError`, writing :class:`~webwire.WriteError`, with
  the original as ``__cause__``. Nothing else escapes except cancellation of
  the surrounding task (``asyncio.CancelledError``, ``trio.Cancelled``).
* ``read`` returns ``b""`` at end of stream (the peer closed its side).
* ``abort()`` is synchronous and never fails, so pool bookkeeping can run in
  ``finally`` blocks without awaiting (cancellation safety).
* Long-lived concurrent work runs in task groups
  (:meth:`Backend.create_task_group`): join on exit, the rest cancelled when
  one task fails, the first error re-raised as itself (never an
  ``ExceptionGroup``). On the blocking backend each task is a thread and
  cancellation is cooperative: every wait of the backend (``sleep``,
  ``Event.wait``, ``Lock.acquire``, ``Semaphore.acquire``, channel
  operations, datagram ``receive``, ``checkpoint``, connecting) ends by
  raising the backend's internal cancellation once the task's group is
  cancelled (the group absorbs it), and a thread blocked reading or
  writing a stream is woken by aborting that stream.
"""

from __future__ import annotations

import ssl
from abc import ABC, abstractmethod
from collections.abc import Awaitable, Callable, Sequence
from contextlib import AbstractContextManager, nullcontext
from types import TracebackType
from typing import Any, Generic, TypeVar

__all__ = [
    "Backend",
    "Channel",
    "ChannelClosed",
    "DatagramSocket",
    "Event",
    "Lock",
    "NetworkStream",
    "Semaphore",
    "TaskGroup",
]

T = TypeVar("T")


_NO_LOCK: AbstractContextManager[Any] = nullcontext()


class NetworkStream(ABC):
    """A connected byte stream (TCP, optionally inside TLS)."""

    @abstractmethod
    async def read(self, max_bytes: int, timeout: float | None) -> bytes:
        """Receive up to ``max_bytes`` bytes.

        Returns whatever is buffered at once, without suspending, when
        something is buffered; otherwise waits for data.

        Returns:
            1 to ``max_bytes`` bytes, or ``b""`` when the peer closed.

        Raises:
            ReadTimeout: Nothing arrived within ``timeout`` seconds.
            ReadError: The connection failed (reset, TLS error, closed
                locally).
        """

    @abstractmethod
    async def write(self, data: bytes, timeout: float | None) -> None:
        """Send all of ``data``, waiting while the socket's buffer is full.

        Raises:
            WriteTimeout: The data could not be handed to the kernel within
                ``timeout`` seconds.
            WriteError: The connection failed (reset, broken pipe, closed).
        """

    @abstractmethod
    async def send_eof(self) -> None:
        """Close the sending direction (TCP half-close, ``shutdown(SHUT_WR)``)
        and keep reading; the peer reads end of stream.

        Raises:
            WriteError: The connection is closed or failed, or it is a TLS
                stream (TLS has no half-close: close_notify ends both
                directions).
        """

    @abstractmethod
    async def aclose(self) -> None:
        """Close gracefully (TLS close_notify where possible). Never raises
        network errors; idempotent."""

    @abstractmethod
    def abort(self) -> None:
        """Close at once without waiting. Synchronous, never raises,
        idempotent; safe in ``finally`` blocks under cancellation."""

    @abstractmethod
    def is_readable(self) -> bool:
        """Whether a read would not block: data or EOF is waiting.

        On an idle keep-alive connection this means the server closed it (or
        sent something unsolicited); either way it must not be reused.
        """

    @abstractmethod
    async def start_tls(
        self,
        ssl_context: ssl.SSLContext,
        server_hostname: str | None,
        timeout: float | None,
    ) -> NetworkStream:
        """Upgrade this stream to TLS (used inside proxy tunnels).

        Returns:
            The new TLS stream; this object must not be used afterwards.

        Raises:
            ConnectTimeout: The handshake did not finish within ``timeout``.
            ConnectError: The handshake failed (certificate verification
                included).
        """

    @abstractmethod
    def get_extra_info(self, name: str) -> Any:
        """Connection details, ``None`` when unknown.

        Names: ``"ssl_object"`` (:class:`ssl.SSLObject` or socket),
        ``"alpn_protocol"`` (``str`` such as ``"h2"`` / ``"http/1.1"``),
        ``"peername"`` and ``"sockname"`` (address tuples), ``"socket"``.
        """


class DatagramSocket(ABC):
    """A connected UDP socket: datagrams to and from one remote address
    (for QUIC, RFC 9000)."""

    @abstractmethod
    async def send(self, data: bytes) -> None:
        """Send one datagram of ``len(data)`` bytes (at most 65,507).

        Raises:
            WriteError: The socket is closed or the send failed (ICMP
                unreachable reported by the kernel included).
        """

    async def send_many(self, datagrams: Sequence[bytes]) -> None:
        """Send ``datagrams`` in order, each as one datagram (what a QUIC
        connection has queued at once): backends that can hand several to
        the kernel in one call do so (Linux ``UDP_SEGMENT``); the default
        calls :meth:`send` for each.

        Raises:
            WriteError: As :meth:`send`; the datagrams before the failing
                one may have been sent.
        """
        for data in datagrams:
            await self.send(data)

    @abstractmethod
    async def receive(self, timeout: float | None = None) -> bytes:
        """Receive one datagram, waiting at most ``timeout`` seconds.

        Returns:
            The datagram's payload (possibly empty).

        Raises:
            ReadTimeout: Nothing arrived within ``timeout`` seconds.
            ReadError: The socket is closed (locally included) or failed.
        """

    async def receive_many(self, max_count: int, timeout: float | None = None) -> list[bytes]:
        """Receive one datagram, waiting at most ``timeout`` seconds, and
        then, without waiting, up to ``max_count - 1`` more that are already
        queued: a burst (a QUIC flight, RFC 9002) costs one wake-up instead
        of one per datagram. Datagrams come in arrival order; none is lost
        when an error ends a batch (what was taken is returned, the error is
        raised by the next call).

        The default takes one datagram with :meth:`receive`; the backends
        read the kernel's queue natively.

        Args:
            max_count: Most datagrams returned (at least 1).
            timeout: Seconds to wait for the first one; ``None`` waits
                without limit.

        Returns:
            Between 1 and ``max_count`` payloads.

        Raises:
            ValueError: ``max_count`` is below 1.
            ReadTimeout: Nothing arrived within ``timeout`` seconds.
            ReadError: The socket is closed (locally included) or failed
                before any datagram was taken.
        """
        if max_count < 1:
            raise ValueError(f"max_count must be at least 1, not {max_count}")
        return [await self.receive(timeout)]

    @abstractmethod
    async def aclose(self) -> None:
        """Close the socket; a pending ``receive`` raises ``ReadError``.
        Never raises network errors; idempotent."""

    @abstractmethod
    def get_extra_info(self, name: str) -> Any:
        """``"sockname"`` and ``"peername"`` (address tuples) or
        ``"socket"``; ``None`` when unknown."""


class Lock(ABC):
    """A mutual-exclusion lock; ``async with lock:``."""

    @abstractmethod
    async def acquire(self, timeout: float | None = None) -> bool:
        """Take the lock, waiting at most ``timeout`` seconds.

        Returns:
            ``True`` when taken, ``False`` on timeout.
        """

    @abstractmethod
    def release(self) -> None:
        """Release the lock (``RuntimeError`` if it is not held)."""

    @abstractmethod
    def locked(self) -> bool:
        """Whether some task holds the lock."""

    async def __aenter__(self) -> None:
        await self.acquire()

    async def __aexit__(self, *args: object) -> None:
        self.release()


class Event(ABC):
    """A resettable flag that tasks (or threads, on the blocking backend)
    wait for."""

    @abstractmethod
    def set(self) -> None:
        """Set the flag and wake every waiter. Synchronous."""

    @abstractmethod
    def clear(self) -> None:
        """Reset the flag; later ``wait`` calls block until the next
        ``set``. Synchronous."""

    @abstractmethod
    def is_set(self) -> bool: ...

    @abstractmethod
    async def wait(self, timeout: float | None = None) -> bool:
        """Wait until set or ``timeout`` seconds pass.

        Returns:
            ``True`` if the flag is set, ``False`` on timeout.
        """


class Semaphore(ABC):
    """A counting semaphore."""

    @abstractmethod
    async def acquire(self, timeout: float | None = None) -> bool:
        """Take one unit, waiting up to ``timeout`` seconds.

        Returns:
            ``True`` when taken, ``False`` on timeout.
        """

    @abstractmethod
    def release(self) -> None: ...


class ChannelClosed(Exception):
    """The channel was closed: ``send`` on a closed channel, or ``receive``
    on a closed channel with nothing left in it."""


class Channel(ABC, Generic[T]):
    """A bounded first-in first-out queue between tasks (per-stream event
    queues). ``send`` waits while ``max_size`` items are queued: that is
    the back-pressure a fast producer feels."""

    @abstractmethod
    async def send(self, item: T, timeout: float | None = None) -> bool:
        """Queue ``item``, waiting at most ``timeout`` seconds for room.

        Returns:
            ``True`` when queued, ``False`` on timeout.

        Raises:
            ChannelClosed: The channel is closed.
        """

    @abstractmethod
    def send_nowait(self, item: T) -> bool:
        """Queue ``item`` if there is room. Synchronous.

        Returns:
            ``True`` when queued, ``False`` when the channel is full.

        Raises:
            ChannelClosed: The channel is closed.
        """

    @abstractmethod
    async def receive(self, timeout: float | None = None) -> T:
        """Take the oldest item, waiting at most ``timeout`` seconds.

        Raises:
            ReadTimeout: Nothing arrived within ``timeout`` seconds.
            ChannelClosed: The channel is closed and empty.
        """

    @abstractmethod
    def receive_nowait(self) -> T:
        """Take the oldest item without waiting. Synchronous.

        Raises:
            IndexError: The channel is empty (and open).
            ChannelClosed: The channel is closed and empty.
        """

    @abstractmethod
    def close(self) -> None:
        """Close: queued items can still be received, then receivers get
        ``ChannelClosed``; waiting senders get ``ChannelClosed`` at once.
        Synchronous, idempotent."""

    @abstractmethod
    def __len__(self) -> int:
        """Items queued now."""


class TaskGroup(ABC):
    """Concurrent tasks that are joined together:
    ``async with backend.create_task_group() as tg: tg.start_soon(fn, arg)``.

    Leaving the ``async with`` block waits for every task. When a task
    raises, the other tasks are cancelled and, once all have ended, the
    first exception is re-raised by the ``async with`` (as itself, never an
    ``ExceptionGroup``; later errors are dropped). When the block's body
    raises, the tasks are cancelled and the body's exception propagates
    (unless a task had already failed: the first error wins).
    :meth:`cancel` ends every task; a group cancelled that way exits
    quietly. As with a trio nursery, a task failure or :meth:`cancel`
    also cancels the body while it is still running (its next wait raises
    the backend's cancellation, which the group absorbs on exit), and a
    cancellation from outside the group cancels its tasks and propagates.

    Enter and exit a group in the same task (the same thread on the
    blocking backend).
    """

    @abstractmethod
    def start_soon(self, fn: Callable[..., Awaitable[Any]], *args: Any) -> None:
        """Start ``fn(*args)`` as a task of the group (a thread on the
        blocking backend).

        Raises:
            RuntimeError: The group has already exited.
        """

    @abstractmethod
    def cancel(self) -> None:
        """Cancel every task of the group (synchronous, idempotent)."""

    def release(self) -> None:
        """Give up joining the group (synchronous, idempotent): it ends by
        itself once its tasks have ended, their errors dropped. For the
        detached group of an object closed synchronously; ``async with``'s
        exit may still follow and then waits as usual. A no-op where no
        host task waits for the exit (asyncio, the blocking backend)."""

    @abstractmethod
    async def __aenter__(self) -> TaskGroup: ...

    @abstractmethod
    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> bool | None: ...


class Backend(ABC):
    """Factory of streams, primitives and time for one concurrency model.

    Attributes:
        name: ``"asyncio"``, ``"trio"`` or ``"sync"``.
    """

    name: str = ""

    @abstractmethod
    async def connect_tcp(
        self,
        host: str,
        port: int,
        *,
        timeout: float | None,
        ssl_context: ssl.SSLContext | None = None,
        server_hostname: str | None = None,
        local_address: str | None = None,
        addresses: Sequence[tuple[int, str]] | None = None,
    ) -> NetworkStream:
        """Resolve ``host`` and open a TCP connection (TCP_NODELAY set),
        with TLS on top when ``ssl_context`` is given (SNI from
        ``server_hostname``, ALPN from the context).

        The resolved addresses are raced (Happy Eyeballs, RFC 8305):
        families interleaved, IPv6 first, the next attempt started 250 ms
        after the previous one or as soon as it fails, the first success
        kept and every other attempt closed. Cancelling the call at any
        point leaves no socket open.

        Args:
            host: Host name or IP literal (IPv6 without brackets).
            port: TCP port.
            timeout: Seconds for resolution, connection and TLS handshake
                together.
            ssl_context: TLS configuration, or ``None`` for cleartext.
            server_hostname: SNI and certificate host name; defaults to
                ``host``.
            local_address: Local IP to bind before connecting.
            addresses: ``(family, ip)`` pairs already resolved for
                ``host`` (see :meth:`resolve`): raced instead of resolving
                again.

        Raises:
            ConnectTimeout: Not connected within ``timeout`` seconds.
            ConnectError: Resolution, connection or handshake failed (for
                every address: the message names the host and the last
                failure).
        """

    async def resolve(
        self, host: str, port: int, *, timeout: float | None
    ) -> list[tuple[int, str]]:
        """Resolve ``host`` for a TCP connection to ``port``.

        Returns:
            ``(family, ip)`` pairs (``socket.AF_INET``/``AF_INET6``, IP
            literal) in the resolver's order.

        Raises:
            ConnectTimeout: Not resolved within ``timeout`` seconds.
            ConnectError: The name cannot be resolved (or the backend has
                no resolver).
        """
        resolver = getattr(self, "_resolve_host", None)
        if resolver is None:
            from webwire._exceptions import ConnectError

            raise ConnectError(f"the {self.name} backend cannot resolve host names")
        result: list[tuple[int, str]] = await resolver(host, port, timeout)
        return result

    @abstractmethod
    async def connect_unix(self, path: str, *, timeout: float | None) -> NetworkStream:
        """Open a stream to the Unix domain socket at ``path``.

        Raises:
            ConnectTimeout: Not connected within ``timeout`` seconds.
            ConnectError: No such socket, refused, or not supported here.
        """

    @abstractmethod
    async def connect_udp(
        self,
        remote_addr: tuple[str, int],
        local_addr: tuple[str, int] | None = None,
    ) -> DatagramSocket:
        """Open a UDP socket connected to ``remote_addr`` (an IP literal and
        a port: resolve names first), bound to ``local_addr`` or to any
        local port of the same family.

        Raises:
            ConnectError: The socket cannot be created, bound or connected.
        """

    @abstractmethod
    async def sleep(self, seconds: float) -> None:
        """Suspend for ``seconds`` seconds."""

    @abstractmethod
    def monotonic(self) -> float:
        """Seconds of a monotonic clock (the loop's clock where it has one)."""

    @abstractmethod
    def create_lock(self) -> Lock: ...

    @abstractmethod
    def create_event(self) -> Event: ...

    @abstractmethod
    def create_semaphore(self, value: int) -> Semaphore: ...

    def create_bookkeeping_lock(self) -> AbstractContextManager[Any]:
        """A lock for short critical sections that never ``await`` (pool
        bookkeeping): ``with lock: ...``.

        The async backends run every task in one thread and switch only at
        ``await``, so they need no lock and return a shared no-op; the
        blocking backend, used from many threads, returns a
        :class:`threading.Lock`.
        """
        return _NO_LOCK

    @abstractmethod
    def create_channel(self, max_size: int) -> Channel[Any]:
        """A new bounded channel holding at most ``max_size`` (>= 1) items."""

    @abstractmethod
    def create_task_group(self) -> TaskGroup:
        """A new task group; see :class:`TaskGroup`."""

    def loop_token(self) -> object | None:
        """What identifies the running event loop (objects made on one loop,
        connections included, cannot be used on another): compare with
        ``is``. ``None`` where there is no loop (the blocking backend)."""
        return None

    def create_detached_task_group(self) -> TaskGroup:
        """A task group for the background tasks of an object that outlives
        the call that made it (a WebSocket connection opened with ``await
        connect()``): it may be exited by another task than the one that
        entered it, in any order relative to other groups, and a
        cancellation of the entering task does not reach its tasks. Same
        interface as :meth:`create_task_group`, which it is by default (on
        asyncio and the blocking backend tasks are not tied to a scope of
        the entering task); trio runs it in a system task."""
        return self.create_task_group()

    async def checkpoint(self) -> None:
        """Let other tasks run (and cancellation arrive). No-op by default."""
