"""The blocking backend: plain sockets, ``ssl.SSLSocket`` and ``threading``.

Every ``async def`` here finishes without suspending: it blocks the calling
thread instead. That is what lets :func:`webwire._sync.run_sync` drive the
coroutines of the transport layer to completion on their first step, so the
synchronous API runs the same code as the async one.
"""

from __future__ import annotations

import select
import socket
import ssl
import threading
import time
from collections.abc import Awaitable, Callable, Coroutine
from contextlib import AbstractContextManager
from typing import Any

from webwire._exceptions import ConnectError, ConnectTimeout, ReadError
from webwire._sync import run_sync

from ._common import (
    WRITE_CHUNK,
    check_port,
    connect_error,
    connect_timeout,
    describe,
    logger,
    read_error,
    read_timeout,
    set_nodelay,
    socket_extra_info,
    tls_error,
    tls_timeout,
    write_error,
    write_timeout,
)
from .base import Backend, Event, Lock, NetworkStream, Semaphore

__all__ = ["SyncBackend", "SyncStream"]

_TIMED_OUT = (TimeoutError, BlockingIOError, ssl.SSLWantReadError, ssl.SSLWantWriteError)
"""What a socket raises when its timeout (or non-blocking mode) stops it."""

_UNSET = object()


class SyncStream(NetworkStream):
    """A blocking TCP (optionally TLS) connection.

    Args:
        sock: A connected ``socket.socket`` or ``ssl.SSLSocket``.
    """

    __slots__ = ("_aborted", "_sock", "_timeout")

    def __init__(self, sock: socket.socket) -> None:
        self._sock = sock
        self._timeout: object = _UNSET
        self._aborted = False

    def _set_timeout(self, timeout: float | None) -> None:
        self._timeout = timeout
        try:
            self._sock.settimeout(None if timeout is None else max(timeout, 0.0))
        except OSError:
            pass

    async def read(self, max_bytes: int, timeout: float | None) -> bytes:
        """Receive up to ``max_bytes`` (>= 1) bytes, blocking at most
        ``timeout`` seconds.

        Returns:
            1 to ``max_bytes`` bytes; ``b""`` once the peer closed (a TLS
            peer closing without close_notify included).

        Raises:
            ReadTimeout: Nothing arrived within ``timeout`` seconds.
            ReadError: Reset, TLS failure, or closed or aborted locally.
        """
        if timeout != self._timeout:
            self._set_timeout(timeout)
        try:
            data = self._sock.recv(max_bytes)
            if data or not self._aborted:
                return data
            raise ReadError("connection was closed locally")
        except _TIMED_OUT as exc:
            raise read_timeout(timeout) from exc
        except (ssl.SSLZeroReturnError, ssl.SSLEOFError):
            return b""
        except (OSError, ValueError) as exc:
            raise read_error(describe(exc)) from exc

    async def write(self, data: bytes, timeout: float | None) -> None:
        """Send all of ``data``. Data larger than 256 KiB is sent in pieces,
        each within ``timeout`` seconds, so a slow but moving peer does not
        time out a large upload.

        Raises:
            WriteTimeout: A piece could not be sent within ``timeout``
                seconds (the connection must then be closed).
            WriteError: Reset, broken pipe, or closed or aborted locally.
        """
        if timeout != self._timeout:
            self._set_timeout(timeout)
        sock = self._sock
        try:
            if len(data) <= WRITE_CHUNK:
                sock.sendall(data)
            else:
                view = memoryview(data)
                for start in range(0, len(view), WRITE_CHUNK):
                    sock.sendall(view[start : start + WRITE_CHUNK])
        except _TIMED_OUT as exc:
            raise write_timeout(timeout) from exc
        except (OSError, ValueError) as exc:
            raise write_error(describe(exc)) from exc

    async def aclose(self) -> None:
        """Send TLS close_notify without waiting for the reply, then close
        the socket. Never raises network errors; idempotent."""
        self._aborted = True
        sock = self._sock
        if sock.fileno() == -1:
            return
        if isinstance(sock, ssl.SSLSocket):
            try:
                sock.settimeout(0.0)
                sock.unwrap()
            except (OSError, ValueError):
                pass
        sock.close()

    def abort(self) -> None:
        """Shut the socket down and close it at once; a thread blocked
        reading it wakes up, and later reads raise
        :class:`~webwire.ReadError`. Synchronous, never raises, idempotent."""
        self._aborted = True
        sock = self._sock
        try:
            sock.shutdown(socket.SHUT_RDWR)
        except (OSError, ValueError):
            pass
        try:
            sock.close()
        except OSError:
            pass

    def is_readable(self) -> bool:
        """Whether a read would not block: decrypted TLS bytes pending, or
        data, end of stream or an error on the socket."""
        sock = self._sock
        try:
            if isinstance(sock, ssl.SSLSocket) and sock.pending():
                return True
            if hasattr(select, "poll"):
                poller = select.poll()
                poller.register(sock, select.POLLIN)
                return bool(poller.poll(0))
            readable, _, _ = select.select([sock], [], [], 0)
            return bool(readable)
        except (OSError, ValueError):
            return True

    async def start_tls(
        self,
        ssl_context: ssl.SSLContext,
        server_hostname: str | None,
        timeout: float | None,
    ) -> NetworkStream:
        """See :meth:`NetworkStream.start_tls`; the socket is closed when the
        handshake fails or times out."""
        return SyncStream(_handshake(self._sock, ssl_context, server_hostname, timeout))

    def get_extra_info(self, name: str) -> Any:
        """Connection details (``"ssl_object"`` is the ``ssl.SSLSocket``,
        ``"socket"`` the socket), ``None`` when unknown."""
        sock = self._sock
        return socket_extra_info(name, sock if isinstance(sock, ssl.SSLSocket) else None, sock)


def _handshake(
    sock: socket.socket,
    ssl_context: ssl.SSLContext,
    server_hostname: str | None,
    timeout: float | None,
) -> ssl.SSLSocket:
    """Wrap ``sock`` in TLS and finish the handshake within ``timeout``
    seconds; ``sock`` is closed on failure."""
    try:
        sock.settimeout(None if timeout is None else max(timeout, 0.0))
        return ssl_context.wrap_socket(sock, server_hostname=server_hostname)
    except _TIMED_OUT as exc:
        sock.close()
        raise tls_timeout(timeout) from exc
    except (OSError, ValueError) as exc:
        sock.close()
        raise tls_error(describe(exc)) from exc


class _SyncLock(Lock):
    __slots__ = ("_lock",)

    def __init__(self) -> None:
        self._lock = threading.Lock()

    async def acquire(self) -> None:
        """Block until the lock is free and take it."""
        self._lock.acquire()

    def release(self) -> None:
        """Release the lock (``RuntimeError`` if it is not held)."""
        self._lock.release()


class _SyncEvent(Event):
    __slots__ = ("_event",)

    def __init__(self) -> None:
        self._event = threading.Event()

    def set(self) -> None:
        """Set the flag and wake every waiting thread."""
        self._event.set()

    def is_set(self) -> bool:
        """Whether the flag is set."""
        return self._event.is_set()

    async def wait(self, timeout: float | None = None) -> bool:
        """Block until set or ``timeout`` seconds pass; ``True`` if set."""
        return self._event.wait(None if timeout is None else max(timeout, 0.0))


class _SyncSemaphore(Semaphore):
    __slots__ = ("_semaphore",)

    def __init__(self, value: int) -> None:
        self._semaphore = threading.Semaphore(value)

    async def acquire(self, timeout: float | None = None) -> bool:
        """Take one unit within ``timeout`` seconds; ``False`` on timeout."""
        return self._semaphore.acquire(timeout=None if timeout is None else max(timeout, 0.0))

    def release(self) -> None:
        """Give one unit back."""
        self._semaphore.release()


class _BackgroundCancelled(BaseException):
    """Raised inside a background thread by ``sleep``/``checkpoint`` once
    its canceller was called."""


_thread_state = threading.local()


def _current_cancel_flag() -> threading.Event | None:
    flag: threading.Event | None = getattr(_thread_state, "cancelled", None)
    return flag


def _run_in_thread(fn: Callable[[], Awaitable[None]], cancelled: threading.Event) -> None:
    _thread_state.cancelled = cancelled
    try:
        awaitable = fn()
        if isinstance(awaitable, Coroutine):
            run_sync(awaitable)
        else:
            raise TypeError(f"background function must return a coroutine, got {awaitable!r}")
    except _BackgroundCancelled:
        pass
    except Exception:
        logger.exception("webwire background thread failed")


class SyncBackend(Backend):
    """The blocking backend used by the synchronous API."""

    name = "sync"

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
        """See :meth:`Backend.connect_tcp`; uses
        :func:`socket.create_connection`, which tries each resolved address in
        turn with the whole ``timeout`` per address, then gives the TLS
        handshake what is left of ``timeout``."""
        check_port(host, port)
        start = time.monotonic()
        source = None if local_address is None else (local_address, 0)
        try:
            sock = socket.create_connection(
                (host, port),
                None if timeout is None else max(timeout, 0.0),
                source_address=source,
            )
        except _TIMED_OUT as exc:
            raise connect_timeout(host, port, timeout) from exc
        except (OSError, ValueError, OverflowError) as exc:
            raise connect_error(host, port, describe(exc)) from exc
        set_nodelay(sock)
        if ssl_context is None:
            return SyncStream(sock)
        left = None if timeout is None else timeout - (time.monotonic() - start)
        if left is not None and left <= 0.0:
            sock.close()
            raise connect_timeout(host, port, timeout)
        try:
            tls = _handshake(sock, ssl_context, server_hostname or host, left)
        except ConnectTimeout as exc:
            raise ConnectTimeout(f"{host}:{port}: {exc}") from exc.__cause__
        except ConnectError as exc:
            raise connect_error(host, port, str(exc)) from exc.__cause__
        return SyncStream(tls)

    async def sleep(self, seconds: float) -> None:
        """Block for ``seconds`` seconds. In a thread started by
        :meth:`start_background` the sleep ends early, raising an internal
        cancellation exception, once the thread's canceller is called."""
        flag = _current_cancel_flag()
        if flag is None:
            time.sleep(max(seconds, 0.0))
        elif flag.wait(max(seconds, 0.0)):
            raise _BackgroundCancelled

    def monotonic(self) -> float:
        """:func:`time.monotonic`, in seconds."""
        return time.monotonic()

    def create_bookkeeping_lock(self) -> AbstractContextManager[Any]:
        """A :class:`threading.Lock`: the blocking client is shared by
        threads."""
        return threading.Lock()

    def create_lock(self) -> Lock:
        """A new lock over :class:`threading.Lock`."""
        return _SyncLock()

    def create_event(self) -> Event:
        """A new event over :class:`threading.Event`."""
        return _SyncEvent()

    def create_semaphore(self, value: int) -> Semaphore:
        """A new semaphore holding ``value`` units."""
        return _SyncSemaphore(value)

    def start_background(self, fn: Callable[[], Awaitable[None]]) -> Callable[[], None]:
        """Run ``fn()`` in a daemon thread, driven by
        :func:`webwire._sync.run_sync` (so it may only await this backend).

        Cancellation is cooperative: the canceller makes this thread's next
        (or current) :meth:`sleep` or :meth:`checkpoint` stop ``fn``, running
        its ``finally`` blocks. A thread blocked reading a socket is woken by
        aborting that socket. An exception ``fn`` raises is logged on the
        ``webwire`` logger.

        Returns:
            A synchronous, idempotent function that cancels ``fn``.
        """
        cancelled = threading.Event()
        thread = threading.Thread(
            target=_run_in_thread,
            args=(fn, cancelled),
            name=f"webwire background {fn!r}",
            daemon=True,
        )
        thread.start()
        return cancelled.set

    async def checkpoint(self) -> None:
        """Stop a cancelled background thread; otherwise does nothing."""
        flag = _current_cancel_flag()
        if flag is not None and flag.is_set():
            raise _BackgroundCancelled
