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
"""

from __future__ import annotations

import ssl
from abc import ABC, abstractmethod
from collections.abc import Awaitable, Callable
from contextlib import AbstractContextManager, nullcontext
from typing import Any

__all__ = ["Backend", "Event", "Lock", "NetworkStream", "Semaphore"]


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


class Lock(ABC):
    """A mutual-exclusion lock; ``async with lock:``."""

    @abstractmethod
    async def acquire(self) -> None: ...

    @abstractmethod
    def release(self) -> None: ...

    async def __aenter__(self) -> None:
        await self.acquire()

    async def __aexit__(self, *args: object) -> None:
        self.release()


class Event(ABC):
    """A one-shot flag that tasks (or threads, on the blocking backend) wait
    for."""

    @abstractmethod
    def set(self) -> None:
        """Set the flag and wake every waiter. Synchronous."""

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
    ) -> NetworkStream:
        """Resolve ``host`` and open a TCP connection (TCP_NODELAY set),
        with TLS on top when ``ssl_context`` is given (SNI from
        ``server_hostname``, ALPN from the context).

        Args:
            host: Host name or IP literal (IPv6 without brackets).
            port: TCP port.
            timeout: Seconds for resolution, connection and TLS handshake
                together.
            ssl_context: TLS configuration, or ``None`` for cleartext.
            server_hostname: SNI and certificate host name; defaults to
                ``host``.
            local_address: Local IP to bind before connecting.

        Raises:
            ConnectTimeout: Not connected within ``timeout`` seconds.
            ConnectError: Resolution, connection or handshake failed.
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
    def start_background(self, fn: Callable[[], Awaitable[None]]) -> Callable[[], None]:
        """Run ``fn()`` concurrently (a task; a daemon thread on the
        blocking backend).

        Returns:
            A synchronous function that cancels it (idempotent).
        """

    async def checkpoint(self) -> None:
        """Let other tasks run (and cancellation arrive). No-op by default."""
