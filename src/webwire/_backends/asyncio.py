"""The asyncio backend: streams built on :class:`asyncio.Protocol`.

A connection is one transport plus one :class:`_StreamProtocol` that keeps
the received bytes in a list of chunks. ``read`` returns buffered bytes
without suspending; only when the buffer is empty does it create a single
future and wait for ``data_received``. The read timeout uses one timer per
connection that is re-armed only when it would fire too early or too late,
not one timer per read. Reading is paused while more than 256 KiB wait unread, and
``write`` waits for ``resume_writing`` when the transport's buffer is full, so
memory stays bounded in both directions.
"""

from __future__ import annotations

import asyncio
import ipaddress
import socket
import ssl
import sys
from collections.abc import Awaitable, Callable, Coroutine
from time import monotonic as _monotonic
from typing import Any, NoReturn, TypeVar, cast

from webwire._exceptions import ConnectError, ReadError, WriteError, WriteTimeout

from ._common import (
    CLOSE_WAIT,
    WRITE_CHUNK,
    check_port,
    connect_error,
    connect_timeout,
    describe,
    read_timeout,
    run_logging_errors,
    selected_alpn,
    set_nodelay,
    tls_error,
    tls_timeout,
)
from .base import Backend, Event, Lock, NetworkStream, Semaphore

__all__ = ["AsyncioBackend", "AsyncioStream"]

T = TypeVar("T")

_READ_HIGH_WATER = 256 * 1024
"""Unread bytes above which the transport stops reading from the socket."""

_READ_LOW_WATER = 64 * 1024
"""Unread bytes at or below which reading resumes."""

_background_tasks: set[asyncio.Task[None]] = set()


def _expire(future: asyncio.Future[bool]) -> None:
    """Timer callback: wake a waiter with ``True`` meaning "timed out"."""
    if not future.done():
        future.set_result(True)


def _is_ip_literal(host: str) -> bool:
    try:
        ipaddress.ip_address(host)
    except ValueError:
        return False
    return True


async def _resolve(loop: asyncio.AbstractEventLoop, host: str, port: int) -> list[str]:
    """The IP addresses of ``host``, IPv6 and IPv4 interleaved."""
    if _is_ip_literal(host):
        return [host]
    infos = await loop.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    v6 = [str(info[4][0]) for info in infos if info[0] == socket.AF_INET6]
    v4 = [str(info[4][0]) for info in infos if info[0] == socket.AF_INET]
    ordered: list[str] = []
    first, second = (v6, v4) if infos and infos[0][0] == socket.AF_INET6 else (v4, v6)
    for index in range(max(len(first), len(second))):
        for family in (first, second):
            if index < len(family) and family[index] not in ordered:
                ordered.append(family[index])
    if not ordered:
        raise OSError(f"no address found for {host}")
    return ordered


async def _with_timeout(aw: Coroutine[Any, Any, T], timeout: float | None) -> T:
    """Await ``aw`` for at most ``timeout`` seconds.

    Raises:
        TimeoutError: The time ran out (``aw`` was cancelled).
    """
    if timeout is None:
        return await aw
    if sys.version_info >= (3, 11):
        async with asyncio.timeout(max(timeout, 0.0)):
            return await aw
    try:
        return await asyncio.wait_for(aw, max(timeout, 0.0))
    except asyncio.TimeoutError as exc:
        raise TimeoutError from exc


class _StreamProtocol(asyncio.Protocol):
    """Receive buffer and flow-control state of one connection."""

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self.loop = loop
        self.transport: asyncio.Transport | None = None
        self.chunks: list[bytes] = []
        self.size = 0
        self.eof = False
        self.closed = False
        self.read_error: str | None = None
        self.cause: BaseException | None = None
        self.read_paused = False
        self.write_paused = False
        self.reader: asyncio.Future[bool] | None = None
        self.read_deadline: float | None = None
        self.read_timer: asyncio.TimerHandle | None = None
        self.drainers: list[asyncio.Future[bool]] = []
        self.lost_waiters: list[asyncio.Future[bool]] = []

    # asyncio.Protocol callbacks ------------------------------------------

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # uvloop's transports implement the interface without subclassing.
        self.transport = cast(asyncio.Transport, transport)

    def data_received(self, data: bytes) -> None:
        self.chunks.append(data)
        self.size += len(data)
        if self.size > _READ_HIGH_WATER and not self.read_paused and self.transport is not None:
            self.read_paused = True
            self.transport.pause_reading()
        reader = self.reader
        if reader is not None and not reader.done():
            reader.set_result(False)

    def eof_received(self) -> bool:
        self.eof = True
        self._wake_reader()
        return False

    def connection_lost(self, exc: Exception | None) -> None:
        self.closed = True
        self.cancel_read_timer()
        if exc is None:
            self.eof = True
        elif self.read_error is None:
            self.read_error = f"connection lost: {describe(exc)}"
            self.cause = exc
        self._wake_reader()
        self._wake_all(self.drainers)
        self._wake_all(self.lost_waiters)

    def pause_writing(self) -> None:
        self.write_paused = True

    def resume_writing(self) -> None:
        self.write_paused = False
        self._wake_all(self.drainers)

    # helpers -------------------------------------------------------------

    def arm_read_timer(self, deadline: float) -> None:
        """Make sure the read timer fires at ``deadline`` (loop time) or
        earlier; an earlier firing re-arms itself."""
        self.read_deadline = deadline
        timer = self.read_timer
        if timer is not None:
            if timer.when() <= deadline:
                return
            timer.cancel()
        self.read_timer = self.loop.call_at(deadline, self._on_read_timer)

    def cancel_read_timer(self) -> None:
        self.read_deadline = None
        if self.read_timer is not None:
            self.read_timer.cancel()
            self.read_timer = None

    def _on_read_timer(self) -> None:
        self.read_timer = None
        reader = self.reader
        deadline = self.read_deadline
        if reader is None or reader.done() or deadline is None:
            return
        if deadline - self.loop.time() <= 0.001:
            reader.set_result(True)
        else:
            self.read_timer = self.loop.call_at(deadline, self._on_read_timer)

    def _wake_reader(self) -> None:
        reader = self.reader
        if reader is not None and not reader.done():
            reader.set_result(False)

    @staticmethod
    def _wake_all(waiters: list[asyncio.Future[bool]]) -> None:
        for waiter in waiters:
            if not waiter.done():
                waiter.set_result(False)

    def take(self, max_bytes: int) -> bytes:
        """Remove and return up to ``max_bytes`` buffered bytes (some are
        buffered)."""
        chunks = self.chunks
        data = chunks[0] if len(chunks) == 1 else b"".join(chunks)
        chunks.clear()
        if len(data) > max_bytes:
            chunks.append(data[max_bytes:])
            data = data[:max_bytes]
        self.size -= len(data)
        if self.read_paused and self.size <= _READ_LOW_WATER:
            self.read_paused = False
            if self.transport is not None:
                self.transport.resume_reading()
        return data

    def fail_locally(self, message: str) -> None:
        """Drop buffered data; later reads raise ``ReadError(message)``."""
        self.chunks.clear()
        self.size = 0
        self.cancel_read_timer()
        if self.read_error is None:
            self.read_error = message
        self._wake_reader()
        self._wake_all(self.drainers)


class AsyncioStream(NetworkStream):
    """A TCP (optionally TLS) connection on an asyncio transport.

    Args:
        transport: The connected transport.
        protocol: The :class:`_StreamProtocol` receiving its events.
    """

    __slots__ = ("_protocol", "_transport")

    def __init__(self, transport: asyncio.Transport, protocol: _StreamProtocol) -> None:
        self._transport = transport
        self._protocol = protocol

    async def read(self, max_bytes: int, timeout: float | None) -> bytes:
        """Receive up to ``max_bytes`` (>= 1) bytes, waiting at most
        ``timeout`` seconds when nothing is buffered.

        Returns:
            1 to ``max_bytes`` bytes; ``b""`` once the peer closed its side.

        Raises:
            ReadTimeout: Nothing arrived within ``timeout`` seconds.
            ReadError: The connection was reset, failed TLS, was closed or
                aborted locally, or another task is already reading.
        """
        protocol = self._protocol
        if protocol.size:
            return protocol.take(max_bytes)
        return await self._wait_and_read(max_bytes, timeout)

    async def _wait_and_read(self, max_bytes: int, timeout: float | None) -> bytes:
        protocol = self._protocol
        loop = protocol.loop
        while True:
            if protocol.size:
                return protocol.take(max_bytes)
            if protocol.read_error is not None:
                raise ReadError(protocol.read_error) from protocol.cause
            if protocol.eof:
                return b""
            if protocol.reader is not None:
                raise ReadError("another task is already reading from this connection")
            future: asyncio.Future[bool] = loop.create_future()
            protocol.reader = future
            if timeout is None:
                protocol.read_deadline = None
            else:
                protocol.arm_read_timer(loop.time() + timeout)
            try:
                timed_out = await future
            finally:
                protocol.reader = None
            if timed_out and not (protocol.size or protocol.eof or protocol.read_error):
                raise read_timeout(timeout)

    async def write(self, data: bytes, timeout: float | None) -> None:
        """Send all of ``data``; waits while the transport's buffer is full.

        Data larger than 256 KiB is handed over in pieces, and ``timeout``
        bounds the wait for each piece to drain, so a slow but moving peer
        does not time out a large upload.

        Raises:
            WriteTimeout: The buffer did not drain within ``timeout`` seconds.
            WriteError: The connection is closed, was lost, or was aborted.
        """
        protocol = self._protocol
        transport = self._transport
        if len(data) <= WRITE_CHUNK:
            if protocol.closed or transport.is_closing():
                self._raise_write_error()
            transport.write(data)
            if protocol.write_paused:
                await self._drain(timeout)
            return
        view = memoryview(data)
        for start in range(0, len(view), WRITE_CHUNK):
            if protocol.closed or transport.is_closing():
                self._raise_write_error()
            transport.write(view[start : start + WRITE_CHUNK])
            if protocol.write_paused:
                await self._drain(timeout)

    def _raise_write_error(self) -> NoReturn:
        protocol = self._protocol
        message = protocol.read_error or "connection is closed"
        raise WriteError(f"cannot send: {message}") from protocol.cause

    async def _drain(self, timeout: float | None) -> None:
        protocol = self._protocol
        loop = protocol.loop
        while protocol.write_paused:
            if protocol.closed or protocol.read_error is not None:
                self._raise_write_error()
            future: asyncio.Future[bool] = loop.create_future()
            protocol.drainers.append(future)
            timer = None if timeout is None else loop.call_later(timeout, _expire, future)
            try:
                timed_out = await future
            finally:
                protocol.drainers.remove(future)
                if timer is not None:
                    timer.cancel()
            if protocol.closed or protocol.read_error is not None:
                self._raise_write_error()
            if timed_out and protocol.write_paused:
                raise WriteTimeout(f"send buffer did not drain within {timeout} seconds")

    async def aclose(self) -> None:
        """Close the connection (sending TLS close_notify), waiting at most
        0.1 seconds for the transport to finish before aborting it. Never
        raises network errors; idempotent."""
        protocol = self._protocol
        transport = self._transport
        protocol.fail_locally("connection was closed locally")
        if protocol.closed:
            return
        transport.close()
        if protocol.closed:
            return
        future: asyncio.Future[bool] = protocol.loop.create_future()
        protocol.lost_waiters.append(future)
        timer = protocol.loop.call_later(CLOSE_WAIT, _expire, future)
        try:
            await future
        finally:
            timer.cancel()
            protocol.lost_waiters.remove(future)
            if not protocol.closed:
                transport.abort()

    def abort(self) -> None:
        """Close at once without TLS close_notify; later reads raise
        :class:`~webwire.ReadError` and writes :class:`~webwire.WriteError`.
        Synchronous, never raises, idempotent."""
        self._protocol.fail_locally("connection was aborted locally")
        self._transport.abort()

    def is_readable(self) -> bool:
        """Whether data, end of stream or an error is waiting (a read would
        return at once)."""
        protocol = self._protocol
        return bool(protocol.size or protocol.eof or protocol.closed or protocol.read_error)

    async def start_tls(
        self,
        ssl_context: ssl.SSLContext,
        server_hostname: str | None,
        timeout: float | None,
    ) -> NetworkStream:
        """See :meth:`NetworkStream.start_tls`; also raises
        :class:`~webwire.ConnectError` when unread data or a closed
        connection make the upgrade impossible."""
        protocol = self._protocol
        if protocol.size or protocol.closed or protocol.read_error is not None:
            raise ConnectError("cannot start TLS: connection is closed or has unread data")
        try:
            new_transport = await _with_timeout(
                protocol.loop.start_tls(
                    self._transport, protocol, ssl_context, server_hostname=server_hostname
                ),
                timeout,
            )
        except TimeoutError as exc:
            self.abort()
            raise tls_timeout(timeout) from exc
        except (OSError, ValueError, RuntimeError) as exc:
            self.abort()
            raise tls_error(describe(exc)) from exc
        tls_transport = cast(asyncio.Transport, new_transport)
        protocol.transport = tls_transport
        return AsyncioStream(tls_transport, protocol)

    def get_extra_info(self, name: str) -> Any:
        """Connection details (``"ssl_object"``, ``"alpn_protocol"``,
        ``"peername"``, ``"sockname"``, ``"socket"``), ``None`` when
        unknown."""
        if name == "alpn_protocol":
            return selected_alpn(self._transport.get_extra_info("ssl_object"))
        return self._transport.get_extra_info(name)


class _AsyncioLock(Lock):
    __slots__ = ("_lock",)

    def __init__(self) -> None:
        self._lock = asyncio.Lock()

    async def acquire(self) -> None:
        """Wait until the lock is free and take it."""
        await self._lock.acquire()

    def release(self) -> None:
        """Release the lock (``RuntimeError`` if it is not held)."""
        self._lock.release()


class _AsyncioEvent(Event):
    __slots__ = ("_event",)

    def __init__(self) -> None:
        self._event = asyncio.Event()

    def set(self) -> None:
        """Set the flag and wake every waiter."""
        self._event.set()

    def is_set(self) -> bool:
        """Whether the flag is set."""
        return self._event.is_set()

    async def wait(self, timeout: float | None = None) -> bool:
        """Wait until set or ``timeout`` seconds pass; ``True`` if set."""
        if self._event.is_set():
            return True
        try:
            await _with_timeout(self._event.wait(), timeout)
        except TimeoutError:
            return self._event.is_set()
        return True


class _AsyncioSemaphore(Semaphore):
    __slots__ = ("_semaphore",)

    def __init__(self, value: int) -> None:
        self._semaphore = asyncio.Semaphore(value)

    async def acquire(self, timeout: float | None = None) -> bool:
        """Take one unit within ``timeout`` seconds; ``False`` on timeout."""
        try:
            await _with_timeout(self._semaphore.acquire(), timeout)
        except TimeoutError:
            return False
        return True

    def release(self) -> None:
        """Give one unit back."""
        self._semaphore.release()


class AsyncioBackend(Backend):
    """The backend for code running under asyncio (any event loop
    implementation, uvloop included)."""

    name = "asyncio"

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
        """See :meth:`Backend.connect_tcp`. The resolved addresses are tried
        one at a time, IPv6 and IPv4 interleaved (RFC 8305 section 4), each
        attempt but the last limited to half of the time left."""
        check_port(host, port)
        loop = asyncio.get_running_loop()
        options: dict[str, Any] = {}
        if ssl_context is not None:
            options = {"ssl": ssl_context, "server_hostname": server_hostname or host}
        if local_address is not None:
            options["local_addr"] = (local_address, 0)
        deadline = None if timeout is None else loop.time() + timeout
        try:
            addresses = await _with_timeout(_resolve(loop, host, port), timeout)
            # Addresses are tried one after another, families interleaved
            # (RFC 8305 section 4); every attempt but the last gets half of
            # the time left. asyncio's own racing (happy_eyeballs_delay) is
            # not used: its helper tasks can leak a connected socket when
            # the connect is cancelled.
            for index, address in enumerate(addresses):
                protocol = _StreamProtocol(loop)
                left = None if deadline is None else max(0.0, deadline - loop.time())
                last = index == len(addresses) - 1
                try:
                    transport, _ = await _with_timeout(
                        loop.create_connection(lambda p=protocol: p, address, port, **options),  # type: ignore[misc]
                        left if last or left is None else left / 2,
                    )
                    break
                except (TimeoutError, OSError):
                    if last:
                        raise
        except TimeoutError as exc:
            raise connect_timeout(host, port, timeout) from exc
        except (OSError, ValueError, OverflowError, UnicodeError) as exc:
            raise connect_error(host, port, describe(exc)) from exc
        sock = transport.get_extra_info("socket")
        if sock is not None and sock.family in (socket.AF_INET, socket.AF_INET6):
            set_nodelay(sock)
        return AsyncioStream(transport, protocol)

    async def sleep(self, seconds: float) -> None:
        """Suspend for ``seconds`` seconds."""
        await asyncio.sleep(seconds)

    def monotonic(self) -> float:
        """Seconds of :func:`time.monotonic` (the standard loops' clock).

        Callers only take differences of these values, so the few
        microseconds by which another loop's clock (uvloop) may differ do
        not matter; looking the loop up on every call would.
        """
        return _monotonic()

    def create_lock(self) -> Lock:
        """A new lock over :class:`asyncio.Lock`."""
        return _AsyncioLock()

    def create_event(self) -> Event:
        """A new event over :class:`asyncio.Event`."""
        return _AsyncioEvent()

    def create_semaphore(self, value: int) -> Semaphore:
        """A new semaphore holding ``value`` units."""
        return _AsyncioSemaphore(value)

    def start_background(self, fn: Callable[[], Awaitable[None]]) -> Callable[[], None]:
        """Run ``fn()`` as a task of the running loop. An exception it raises
        is logged on the ``webwire`` logger.

        Returns:
            A synchronous, idempotent function that cancels the task.
        """
        task = asyncio.get_running_loop().create_task(run_logging_errors(fn))
        _background_tasks.add(task)
        task.add_done_callback(_background_tasks.discard)

        def cancel() -> None:
            task.cancel()

        return cancel

    async def checkpoint(self) -> None:
        """Let other tasks run (``asyncio.sleep(0)``)."""
        await asyncio.sleep(0)
