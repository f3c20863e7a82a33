"""The trio backend: :func:`trio.open_tcp_stream` plus :class:`trio.SSLStream`.

Timeouts are cancel scopes (``trio.move_on_after``), opened only when an
operation may have to wait: on a cleartext connection a zero-timeout
``poll`` first checks whether the socket is ready, and a ready socket is
read or written without a scope (a scope costs about as much as the system
call itself). TLS streams use ``https_compatible=True``: a server that
closes the TCP connection without a TLS close_notify ends the stream
(``b""``) instead of failing it, as HTTPS requires (RFC 9110 section 8.6
leaves truncation detection to the message framing).
"""

from __future__ import annotations

import select
import ssl
from collections.abc import Awaitable, Callable
from typing import Any, cast

import trio

from ._common import (
    CLOSE_WAIT,
    WRITE_CHUNK,
    check_port,
    connect_error,
    connect_timeout,
    describe,
    read_error,
    read_timeout,
    run_logging_errors,
    socket_extra_info,
    tls_error,
    tls_timeout,
    write_error,
    write_timeout,
)
from .base import Backend, Event, Lock, NetworkStream, Semaphore

__all__ = ["TrioBackend", "TrioStream"]

_STREAM_ERRORS = (
    trio.BrokenResourceError,
    trio.ClosedResourceError,
    trio.BusyResourceError,
    OSError,
)

_CONNECT_ERRORS = (
    OSError,
    trio.BrokenResourceError,
    trio.ClosedResourceError,
    ValueError,
    OverflowError,
)


def _describe(exc: BaseException) -> str:
    """:func:`describe` of the error that broke a stream (the cause of a
    :class:`trio.BrokenResourceError`), or of ``exc`` itself."""
    cause = exc.__cause__
    if isinstance(exc, trio.BrokenResourceError) and cause is not None:
        return describe(cause)
    return describe(exc)


def _scope(timeout: float | None) -> trio.CancelScope:
    """A cancel scope that expires after ``timeout`` seconds (never when
    ``None``)."""
    if timeout is None:
        return trio.CancelScope()
    return trio.move_on_after(max(timeout, 0.0))


class TrioStream(NetworkStream):
    """A TCP (optionally TLS) connection as a trio stream.

    Args:
        stream: A :class:`trio.SocketStream` or a :class:`trio.SSLStream`
            over one.
        sock: The trio socket underneath (closed by :meth:`abort`).
    """

    __slots__ = ("_poll_in", "_poll_out", "_receive", "_send", "_socket", "_stream")

    def __init__(self, stream: trio.abc.Stream, sock: trio.socket.SocketType) -> None:
        self._stream = stream
        self._socket = sock
        self._poll_in: select.poll | None = None
        self._poll_out: select.poll | None = None
        if isinstance(stream, trio.SocketStream) and hasattr(select, "poll"):
            self._poll_in = select.poll()
            self._poll_in.register(sock.fileno(), select.POLLIN)
            self._poll_out = select.poll()
            self._poll_out.register(sock.fileno(), select.POLLOUT)
        # Both stream kinds return ``bytes`` (trio's annotation is wider).
        self._receive = cast("Callable[[int], Awaitable[bytes]]", stream.receive_some)
        self._send = stream.send_all

    async def read(self, max_bytes: int, timeout: float | None) -> bytes:
        """Receive up to ``max_bytes`` (>= 1) bytes within ``timeout``
        seconds.

        Returns:
            1 to ``max_bytes`` bytes; ``b""`` once the peer closed.

        Raises:
            ReadTimeout: Nothing arrived within ``timeout`` seconds.
            ReadError: Reset, TLS failure, closed or aborted locally, or
                another task is already reading.
        """
        try:
            poll_in = self._poll_in
            if timeout is None or (poll_in is not None and poll_in.poll(0)):
                return await self._receive(max_bytes)
            with trio.move_on_after(max(timeout, 0.0)):
                return await self._receive(max_bytes)
        except _STREAM_ERRORS as exc:
            raise read_error(_describe(exc)) from exc
        raise read_timeout(timeout)

    async def write(self, data: bytes, timeout: float | None) -> None:
        """Send all of ``data``. Data larger than 256 KiB is sent in pieces,
        each within ``timeout`` seconds, so a slow but moving peer does not
        time out a large upload.

        Raises:
            WriteTimeout: A piece could not be sent within ``timeout``
                seconds (the connection must then be closed).
            WriteError: Reset, broken pipe, closed or aborted locally.
        """
        try:
            poll_out = self._poll_out
            if poll_out is not None and len(data) <= WRITE_CHUNK and poll_out.poll(0):
                # Writable: one send() takes at least one byte without waiting.
                sent = await self._socket.send(data)
                if sent == len(data):
                    return
                data = data[sent:]
            if len(data) <= WRITE_CHUNK:
                if timeout is None:
                    await self._send(data)
                    return
                with trio.move_on_after(max(timeout, 0.0)):
                    await self._send(data)
                    return
            else:
                view = memoryview(data)
                for start in range(0, len(view), WRITE_CHUNK):
                    with _scope(timeout) as scope:
                        await self._send(view[start : start + WRITE_CHUNK])
                    if scope.cancelled_caught:
                        break
                else:
                    return
        except _STREAM_ERRORS as exc:
            raise write_error(_describe(exc)) from exc
        raise write_timeout(timeout)

    async def aclose(self) -> None:
        """Close the connection; the socket is closed even when cancelled.
        Never raises network errors; idempotent."""
        try:
            with trio.move_on_after(CLOSE_WAIT):
                await self._stream.aclose()
        except _STREAM_ERRORS:
            pass
        finally:
            self._socket.close()

    def abort(self) -> None:
        """Close the socket at once; tasks blocked on it and later reads
        raise :class:`~webwire.ReadError`. Synchronous, never raises,
        idempotent."""
        try:
            self._socket.close()
        except OSError:
            pass

    def is_readable(self) -> bool:
        """Whether the socket has data or end of stream waiting (for TLS,
        encrypted bytes or EOF on the socket underneath)."""
        try:
            return self._socket.is_readable()
        except (OSError, ValueError):
            return True

    async def start_tls(
        self,
        ssl_context: ssl.SSLContext,
        server_hostname: str | None,
        timeout: float | None,
    ) -> NetworkStream:
        """See :meth:`NetworkStream.start_tls`; the socket is closed when the
        handshake fails, times out or is cancelled."""
        result: TrioStream | None = None
        try:
            tls = trio.SSLStream(
                self._stream, ssl_context, server_hostname=server_hostname, https_compatible=True
            )
            with _scope(timeout):
                await tls.do_handshake()
                result = TrioStream(tls, self._socket)
        except _CONNECT_ERRORS as exc:
            raise tls_error(_describe(exc)) from exc
        finally:
            if result is None:
                self.abort()
        if result is None:
            raise tls_timeout(timeout)
        return result

    def get_extra_info(self, name: str) -> Any:
        """Connection details, ``None`` when unknown.

        ``"ssl_object"`` is the :class:`trio.SSLStream`, which offers the
        :class:`ssl.SSLObject` methods (``version()``, ``getpeercert()``,
        ``selected_alpn_protocol()``...). ``"socket"`` is the trio socket.
        """
        stream = self._stream
        tls = stream if isinstance(stream, trio.SSLStream) else None
        return socket_extra_info(name, tls, self._socket)


class _TrioLock(Lock):
    __slots__ = ("_lock",)

    def __init__(self) -> None:
        self._lock = trio.Lock()

    async def acquire(self) -> None:
        """Wait until the lock is free and take it."""
        await self._lock.acquire()

    def release(self) -> None:
        """Release the lock (it must be held by the calling task)."""
        self._lock.release()


class _TrioEvent(Event):
    __slots__ = ("_event",)

    def __init__(self) -> None:
        self._event = trio.Event()

    def set(self) -> None:
        """Set the flag and wake every waiter."""
        self._event.set()

    def is_set(self) -> bool:
        """Whether the flag is set."""
        return self._event.is_set()

    async def wait(self, timeout: float | None = None) -> bool:
        """Wait until set or ``timeout`` seconds pass; ``True`` if set."""
        with _scope(timeout):
            await self._event.wait()
        return self._event.is_set()


class _TrioSemaphore(Semaphore):
    __slots__ = ("_semaphore",)

    def __init__(self, value: int) -> None:
        self._semaphore = trio.Semaphore(value)

    async def acquire(self, timeout: float | None = None) -> bool:
        """Take one unit within ``timeout`` seconds; ``False`` on timeout."""
        with _scope(timeout):
            await self._semaphore.acquire()
            return True
        return False

    def release(self) -> None:
        """Give one unit back."""
        self._semaphore.release()


class TrioBackend(Backend):
    """The backend for code running under trio."""

    name = "trio"

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
        """See :meth:`Backend.connect_tcp`; uses :func:`trio.open_tcp_stream`
        with Happy Eyeballs (RFC 8305, 250 ms between attempts)."""
        check_port(host, port)
        tcp: trio.SocketStream | None = None
        result: TrioStream | None = None
        try:
            with _scope(timeout):
                tcp = await trio.open_tcp_stream(
                    host, port, happy_eyeballs_delay=0.25, local_address=local_address
                )
                if ssl_context is None:
                    result = TrioStream(tcp, tcp.socket)
                else:
                    tls = trio.SSLStream(
                        tcp,
                        ssl_context,
                        server_hostname=server_hostname or host,
                        https_compatible=True,
                    )
                    await tls.do_handshake()
                    result = TrioStream(tls, tcp.socket)
        except _CONNECT_ERRORS as exc:
            raise connect_error(host, port, _describe(exc)) from exc
        finally:
            if result is None and tcp is not None:
                tcp.socket.close()
        if result is None:
            raise connect_timeout(host, port, timeout)
        return result

    async def sleep(self, seconds: float) -> None:
        """Suspend for ``seconds`` seconds."""
        await trio.sleep(max(seconds, 0.0))

    def monotonic(self) -> float:
        """trio's clock, in seconds."""
        return trio.current_time()

    def create_lock(self) -> Lock:
        """A new lock over :class:`trio.Lock`."""
        return _TrioLock()

    def create_event(self) -> Event:
        """A new event over :class:`trio.Event`."""
        return _TrioEvent()

    def create_semaphore(self, value: int) -> Semaphore:
        """A new semaphore holding ``value`` units."""
        return _TrioSemaphore(value)

    def start_background(self, fn: Callable[[], Awaitable[None]]) -> Callable[[], None]:
        """Run ``fn()`` as a trio system task (cancelled when the run's main
        task ends). An exception it raises is logged on the ``webwire``
        logger instead of crashing the run.

        Returns:
            A synchronous, idempotent function that cancels the task.
        """
        scope = trio.CancelScope()

        async def runner() -> None:
            with scope:
                await run_logging_errors(fn)

        trio.lowlevel.spawn_system_task(runner, name=f"webwire background {fn!r}")

        def cancel() -> None:
            scope.cancel()

        return cancel

    async def checkpoint(self) -> None:
        """Let other tasks run and deliver pending cancellation."""
        await trio.lowlevel.checkpoint()
