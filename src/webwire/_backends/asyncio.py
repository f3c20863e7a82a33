"""The asyncio backend: streams built on :class:`asyncio.Protocol`.

A connection is one transport plus one :class:`_StreamProtocol` that keeps
the received bytes in a list of chunks. ``read`` returns buffered bytes
without suspending; only when the buffer is empty does it create a single
future and wait for ``data_received``. The read timeout uses one timer per
connection that is re-armed only when it would fire too early or too late,
not one timer per read. Reading is paused while more than 256 KiB wait unread, and
``write`` waits for ``resume_writing`` when the transport's buffer is full, so
memory stays bounded in both directions.

Datagram sockets queue received datagrams in their protocol the same way,
channels and task groups are built on futures and tasks directly (so they
behave the same on Python 3.10, without :class:`asyncio.TaskGroup`), and
:meth:`AsyncioBackend.connect_tcp` races addresses with the shared Happy
Eyeballs code.

A peer that stops reading an upload often answers first and then resets
the connection (an early 413, RFC 9112 section 9.6). The kernel keeps the
answer's bytes readable after the reset, but asyncio's transport stops
reading at the first failed send and closes its socket. On a cleartext
connection :meth:`_StreamProtocol.connection_lost` therefore reads what the
kernel still holds before the socket is closed, so ``read`` returns those
bytes before it reports the lost connection. TLS connections cannot do
this (see :class:`AsyncioStream`).
"""

from __future__ import annotations

import asyncio
import socket
import ssl
from collections import deque
from collections.abc import Sequence
from time import monotonic as _monotonic
from typing import Any, NoReturn, cast

from webwire._exceptions import ConnectError, ReadError, WriteError, WriteTimeout

from . import _asyncio_primitives as primitives
from . import _happy_eyeballs
from ._asyncio_primitives import expire, with_timeout
from ._common import (
    CLOSE_WAIT,
    MAX_DATAGRAM,
    check_port,
    connect_error,
    connect_timeout,
    describe,
    open_udp_socket,
    read_error,
    read_timeout,
    selected_alpn,
    set_nodelay,
    tls_alert_error,
    tls_error,
    tls_timeout,
    unix_connect_error,
    unix_connect_timeout,
    write_error,
)
from ._happy_eyeballs import TCPTarget, fixed_resolver
from ._udp_batch import GSO_FALLBACK_ERRNOS, gso_ancillary, gso_groups, gso_supported
from .base import (
    Backend,
    Channel,
    DatagramSocket,
    Event,
    Lock,
    NetworkStream,
    Semaphore,
    TaskGroup,
)

__all__ = ["AsyncioBackend", "AsyncioDatagramSocket", "AsyncioStream"]

_WRITE_PIECE = 2 * 1024 * 1024
"""Largest piece of a write handed to the transport at once: each piece
costs a send attempt and a flow-control check, so large messages go in few
pieces, while ``write``'s ``timeout`` still bounds the drain of each piece
(a slow but moving peer does not time out a large upload)."""

_READ_HIGH_WATER = 256 * 1024
"""Unread bytes above which the transport stops reading from the socket."""

_READ_LOW_WATER = 64 * 1024
"""Unread bytes at or below which reading resumes."""

_RECOVER_LIMIT = 16 * 1024 * 1024
"""Most bytes taken from the socket of a connection lost to an error (more
than a kernel's receive buffer normally holds)."""

_RECOVER_SIZE = 256 * 1024
"""Bytes asked for by each receive call while recovering them."""


class _StreamProtocol(asyncio.Protocol):
    """Receive buffer and flow-control state of one connection.

    Attributes:
        tls: Whether the connection was upgraded to TLS. Its unread bytes
            are then not recovered when the connection is lost: the socket
            holds ciphertext, and the TLS layer reports the loss only after
            the socket is closed (its descriptor number may already belong
            to another connection).
    """

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
        self.eof_sent = False
        self.reader: asyncio.Future[bool] | None = None
        self.read_deadline: float | None = None
        self.read_timer: asyncio.TimerHandle | None = None
        self.drainers: list[asyncio.Future[bool]] = []
        self.lost_waiters: list[asyncio.Future[bool]] = []
        self.tls = False

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
            if not (self.eof or self.tls):
                self.recover_unread()
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

    def recover_unread(self) -> None:
        """Buffer the bytes the kernel still holds for a cleartext
        connection that an error ended (at most :data:`_RECOVER_LIMIT`
        bytes), so that reads return them before the error.

        The transport stopped reading when the error struck; a peer's reply
        sent just before it reset the connection is still in the socket's
        receive queue. Both asyncio's selector loops and uvloop call
        ``connection_lost`` before they close the socket, which is read
        here through a duplicate of its descriptor until it has nothing
        more (would block), reaches end of stream or fails. Best effort:
        kernels that discard received data on a reset (Windows) leave
        nothing to read. Never raises.
        """
        transport = self.transport
        raw = None if transport is None else transport.get_extra_info("socket")
        dup = getattr(raw, "dup", None)
        if dup is None:
            return
        try:
            sock = cast(socket.socket, dup())
        except OSError:
            return
        with sock:
            recovered = 0
            try:
                sock.setblocking(False)
                while recovered < _RECOVER_LIMIT:
                    data = sock.recv(_RECOVER_SIZE)
                    if not data:
                        return
                    self.chunks.append(data)
                    self.size += len(data)
                    recovered += len(data)
            except OSError:
                return

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

    When a write fails because the peer reset the connection, reads still
    return the bytes the peer sent before the reset (its early response to
    an upload, RFC 9112 section 9.6), then raise
    :class:`~webwire.ReadError`; the blocking and trio backends return
    ``b""`` after those bytes instead, as the kernel reports the reset only
    once, to the failed send. On TLS connections those bytes are lost unless
    the loop had read them before the write failed: the TLS layer reads only
    through the transport, which stops at the failed send, and the socket
    under it holds ciphertext. On uvloop as on asyncio's selector loops the
    socket is read in ``connection_lost``, before it is closed; the
    recovery is best effort on any other loop.

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
            ReadError: The connection was reset (after the bytes received
                before the reset have been read), failed TLS, was closed or
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
                error = protocol.read_error
                raise (tls_alert_error(error) or ReadError(error)) from protocol.cause
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

        Data larger than 2 MiB is handed over in pieces, and ``timeout``
        bounds the wait for each piece to drain, so a slow but moving peer
        does not time out a large upload.

        Raises:
            WriteTimeout: The buffer did not drain within ``timeout`` seconds.
            WriteError: The connection is closed, was lost, or was aborted.
        """
        protocol = self._protocol
        transport = self._transport
        if len(data) <= _WRITE_PIECE:
            if protocol.closed or transport.is_closing() or protocol.eof_sent:
                self._raise_write_error()
            transport.write(data)
            if protocol.write_paused:
                await self._drain(timeout)
            return
        view = memoryview(data)
        for start in range(0, len(view), _WRITE_PIECE):
            if protocol.closed or transport.is_closing() or protocol.eof_sent:
                self._raise_write_error()
            transport.write(view[start : start + _WRITE_PIECE])
            if protocol.write_paused:
                await self._drain(timeout)

    def _raise_write_error(self) -> NoReturn:
        protocol = self._protocol
        if protocol.eof_sent and not protocol.closed and protocol.read_error is None:
            raise WriteError("cannot send: the sending side was closed (send_eof)")
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
            timer = None if timeout is None else loop.call_later(timeout, expire, future)
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

    async def send_eof(self) -> None:
        """Half-close: the peer reads end of stream, reading goes on.

        Raises:
            WriteError: The connection is closed, failed or uses TLS.
        """
        protocol = self._protocol
        transport = self._transport
        if protocol.closed or transport.is_closing() or protocol.read_error is not None:
            self._raise_write_error()
        if not transport.can_write_eof():
            raise WriteError("cannot half-close a TLS connection (TLS has no half-close)")
        try:
            transport.write_eof()
        except (OSError, RuntimeError) as exc:
            raise write_error(describe(exc)) from exc
        protocol.eof_sent = True

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
        timer = protocol.loop.call_later(CLOSE_WAIT, expire, future)
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
        connection make the upgrade impossible. The connection is aborted
        when the handshake fails, times out or is cancelled."""
        protocol = self._protocol
        if protocol.size or protocol.closed or protocol.read_error is not None:
            raise ConnectError("cannot start TLS: connection is closed or has unread data")
        protocol.tls = True
        try:
            new_transport = await with_timeout(
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
        except BaseException:
            self.abort()
            raise
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


_MAX_QUEUED_DATAGRAMS = 1024
"""Datagrams a socket keeps unread; later ones are dropped, as the kernel
drops them when its receive buffer is full."""


class _DatagramProtocol(asyncio.DatagramProtocol):
    """Receive queue and error state of one datagram socket."""

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self.loop = loop
        self.queue: deque[bytes] = deque()
        self.error: Exception | None = None
        self.sending = False
        self.send_failure: Exception | None = None
        self.closed = False
        self.write_paused = False
        self.reader: asyncio.Future[bool] | None = None
        self.drainers: list[asyncio.Future[bool]] = []

    def datagram_received(self, data: bytes, addr: Any) -> None:
        if len(self.queue) < _MAX_QUEUED_DATAGRAMS:
            self.queue.append(data)
        self._wake_reader()

    def error_received(self, exc: Exception) -> None:
        # ICMP errors (port unreachable...) arrive here, from a send or from
        # the reader; they are raised once by the matching call.
        if self.sending:
            self.send_failure = exc
        else:
            self.error = exc
            self._wake_reader()

    def connection_lost(self, exc: Exception | None) -> None:
        self.closed = True
        self._wake_reader()
        _StreamProtocol._wake_all(self.drainers)

    def pause_writing(self) -> None:
        self.write_paused = True

    def resume_writing(self) -> None:
        self.write_paused = False
        _StreamProtocol._wake_all(self.drainers)

    def _wake_reader(self) -> None:
        reader = self.reader
        if reader is not None and not reader.done():
            reader.set_result(False)


class AsyncioDatagramSocket(DatagramSocket):
    """A connected UDP socket on an asyncio datagram transport.

    Args:
        transport: The datagram transport.
        protocol: The :class:`_DatagramProtocol` receiving its events.
        sock: The transport's socket (asyncio transports drop empty
            datagrams, which are sent on it directly).
    """

    __slots__ = ("_gso", "_protocol", "_socket", "_transport")

    def __init__(
        self,
        transport: asyncio.DatagramTransport,
        protocol: _DatagramProtocol,
        sock: socket.socket,
    ) -> None:
        self._transport = transport
        self._protocol = protocol
        self._socket = sock
        self._gso = gso_supported(sock)

    async def send(self, data: bytes) -> None:
        """Send one datagram; waits while the transport's buffer is full.

        Raises:
            WriteError: The socket is closed or the kernel refused the
                datagram (ICMP unreachable, too large).
        """
        protocol = self._protocol
        if protocol.closed or self._transport.is_closing():
            raise write_error("socket is closed")
        protocol.sending = True
        try:
            if data:
                self._transport.sendto(data)
            else:
                self._socket.send(data)
        except (OSError, RuntimeError, ValueError) as exc:
            raise write_error(describe(exc)) from exc
        finally:
            protocol.sending = False
        failure, protocol.send_failure = protocol.send_failure, None
        if failure is not None:
            raise write_error(describe(failure)) from failure
        while protocol.write_paused and not protocol.closed:
            future: asyncio.Future[bool] = protocol.loop.create_future()
            protocol.drainers.append(future)
            try:
                await future
            finally:
                protocol.drainers.remove(future)

    async def send_many(self, datagrams: Sequence[bytes]) -> None:
        """See :meth:`DatagramSocket.send_many`: runs of equal-sized
        datagrams go in one segmented ``sendmsg`` while the transport has
        nothing buffered; the rest, and everything once the kernel refuses
        segmentation, through the transport one by one.

        Raises:
            WriteError: As :meth:`send`.
        """
        if not self._gso or len(datagrams) < 2:
            for data in datagrams:
                await self.send(data)
            return
        protocol = self._protocol
        transport = self._transport
        if protocol.closed or transport.is_closing():
            raise write_error("socket is closed")
        for start, end in gso_groups(datagrams):
            if (
                end - start > 1
                and self._gso
                and not protocol.write_paused
                and not cast(Any, transport).get_write_buffer_size()
            ):
                first = datagrams[start]
                try:
                    self._socket.sendmsg(
                        [b"".join(datagrams[start:end])], gso_ancillary(len(first))
                    )
                    continue
                except (BlockingIOError, InterruptedError):
                    pass  # the transport buffers them below
                except OSError as exc:
                    if exc.errno not in GSO_FALLBACK_ERRNOS:
                        raise write_error(describe(exc)) from exc
                    self._gso = False
            for index in range(start, end):
                await self.send(datagrams[index])

    async def receive(self, timeout: float | None = None) -> bytes:
        """Receive one datagram within ``timeout`` seconds.

        Raises:
            ReadTimeout: Nothing arrived within ``timeout`` seconds.
            ReadError: The socket is closed, the kernel reported an error
                (ICMP port unreachable), or another task is receiving.
        """
        protocol = self._protocol
        while True:
            if protocol.queue:
                return protocol.queue.popleft()
            error, protocol.error = protocol.error, None
            if error is not None:
                raise read_error(describe(error)) from error
            if protocol.closed:
                raise read_error("socket is closed")
            if protocol.reader is not None:
                raise ReadError("another task is already receiving on this socket")
            loop = protocol.loop
            future: asyncio.Future[bool] = loop.create_future()
            protocol.reader = future
            timer = None if timeout is None else loop.call_later(timeout, expire, future)
            try:
                timed_out = await future
            finally:
                protocol.reader = None
                if timer is not None:
                    timer.cancel()
            if timed_out and not (protocol.queue or protocol.error or protocol.closed):
                raise read_timeout(timeout)

    async def receive_many(self, max_count: int, timeout: float | None = None) -> list[bytes]:
        """See :meth:`DatagramSocket.receive_many`: after the first
        datagram, those the transport queued and then those waiting in the
        kernel are taken with non-blocking reads of the socket (no event
        loop turn per datagram). An error met while draining is raised by
        the next call.

        Raises:
            ValueError: ``max_count`` is below 1.
            ReadTimeout: Nothing arrived within ``timeout`` seconds.
            ReadError: As :meth:`receive`.
        """
        if max_count < 1:
            raise ValueError(f"max_count must be at least 1, not {max_count}")
        protocol = self._protocol
        queue = protocol.queue
        batch = [queue.popleft() if queue else await self.receive(timeout)]
        while queue and len(batch) < max_count:
            batch.append(queue.popleft())
        if len(batch) < max_count and protocol.error is None and not protocol.closed:
            recv = self._socket.recv
            try:
                while len(batch) < max_count:
                    batch.append(recv(MAX_DATAGRAM))
            except (BlockingIOError, InterruptedError):
                pass
            except OSError as exc:
                protocol.error = exc
        return batch

    async def aclose(self) -> None:
        """Close the socket; a pending ``receive`` raises
        :class:`~webwire.ReadError`. Idempotent."""
        protocol = self._protocol
        if not protocol.closed:
            protocol.closed = True
            protocol._wake_reader()
            _StreamProtocol._wake_all(protocol.drainers)
            self._transport.close()

    def get_extra_info(self, name: str) -> Any:
        """``"sockname"``, ``"peername"``, ``"socket"``; ``None`` when
        unknown."""
        if name in ("sockname", "peername", "socket"):
            return self._transport.get_extra_info(name)
        return None


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
        addresses: Sequence[tuple[int, str]] | None = None,
    ) -> NetworkStream:
        """See :meth:`Backend.connect_tcp`; addresses are raced with Happy
        Eyeballs (RFC 8305, :mod:`._happy_eyeballs`)."""
        check_port(host, port)
        target = TCPTarget(host, port, ssl_context, server_hostname or host, local_address)
        resolve = self._resolve_host if addresses is None else fixed_resolver(addresses)
        return await _happy_eyeballs.connect_tcp(
            self, target, timeout, resolve=resolve, connect=self._connect_address
        )

    async def _resolve_host(
        self, host: str, port: int, timeout: float | None
    ) -> list[tuple[int, str]]:
        """Happy Eyeballs resolver hook: ``(family, ip)`` pairs of ``host``."""
        loop = asyncio.get_running_loop()
        try:
            infos = await with_timeout(
                loop.getaddrinfo(host, port, type=socket.SOCK_STREAM), timeout
            )
        except TimeoutError as exc:
            raise connect_timeout(host, port, timeout) from exc
        except (OSError, UnicodeError, ValueError) as exc:
            raise connect_error(host, port, describe(exc)) from exc
        return [(info[0], str(info[4][0])) for info in infos]

    async def _connect_address(
        self, target: TCPTarget, family: int, ip: str, timeout: float | None
    ) -> NetworkStream:
        """Happy Eyeballs connector hook: TCP to ``ip``, then TLS."""
        loop = asyncio.get_running_loop()
        protocol = _StreamProtocol(loop)
        local = None if target.local_address is None else (target.local_address, 0)
        start = loop.time()
        try:
            transport, _ = await with_timeout(
                loop.create_connection(
                    lambda: protocol, ip, target.port, family=family, local_addr=local
                ),
                timeout,
            )
        except TimeoutError as exc:
            raise connect_timeout(target.host, target.port, timeout) from exc
        except (OSError, ValueError, OverflowError) as exc:
            raise connect_error(target.host, target.port, describe(exc)) from exc
        sock = transport.get_extra_info("socket")
        if sock is not None:
            set_nodelay(sock)
        stream = AsyncioStream(transport, protocol)
        if target.ssl_context is None:
            return stream
        left = None if timeout is None else timeout - (loop.time() - start)
        try:
            return await stream.start_tls(target.ssl_context, target.server_hostname, left)
        except TimeoutError as exc:
            raise connect_timeout(target.host, target.port, timeout) from exc.__cause__
        except ConnectError as exc:
            raise connect_error(target.host, target.port, str(exc)) from exc.__cause__

    async def connect_unix(self, path: str, *, timeout: float | None) -> NetworkStream:
        """See :meth:`Backend.connect_unix`."""
        loop = asyncio.get_running_loop()
        protocol = _StreamProtocol(loop)
        try:
            transport, _ = await with_timeout(
                loop.create_unix_connection(lambda: protocol, path), timeout
            )
        except TimeoutError as exc:
            raise unix_connect_timeout(path, timeout) from exc
        except (OSError, ValueError, NotImplementedError) as exc:
            raise unix_connect_error(path, describe(exc)) from exc
        return AsyncioStream(transport, protocol)

    async def connect_udp(
        self,
        remote_addr: tuple[str, int],
        local_addr: tuple[str, int] | None = None,
    ) -> DatagramSocket:
        """See :meth:`Backend.connect_udp`."""
        sock = open_udp_socket(remote_addr, local_addr)
        loop = asyncio.get_running_loop()
        protocol = _DatagramProtocol(loop)
        try:
            sock.setblocking(False)
            transport, _ = await loop.create_datagram_endpoint(lambda: protocol, sock=sock)
        except (OSError, ValueError) as exc:
            sock.close()
            raise connect_error(remote_addr[0], remote_addr[1], describe(exc)) from exc
        except BaseException:
            sock.close()
            raise
        return AsyncioDatagramSocket(transport, protocol, sock)

    async def sleep(self, seconds: float) -> None:
        """Suspend for ``seconds`` seconds."""
        await asyncio.sleep(seconds)

    def loop_token(self) -> object | None:
        """The running event loop."""
        return asyncio.get_running_loop()

    def monotonic(self) -> float:
        """Seconds of :func:`time.monotonic` (the standard loops' clock).

        Callers only take differences of these values, so the few
        microseconds by which another loop's clock (uvloop) may differ do
        not matter; looking the loop up on every call would.
        """
        return _monotonic()

    def create_lock(self) -> Lock:
        """A new lock over :class:`asyncio.Lock`."""
        return primitives.create_lock()

    def create_event(self) -> Event:
        """A new event over :class:`asyncio.Event`."""
        return primitives.create_event()

    def create_semaphore(self, value: int) -> Semaphore:
        """A new semaphore holding ``value`` units."""
        return primitives.create_semaphore(value)

    def create_channel(self, max_size: int) -> Channel[Any]:
        """A new channel holding at most ``max_size`` items."""
        return primitives.create_channel(max_size)

    def create_task_group(self) -> TaskGroup:
        """A new task group on plain tasks; see
        :func:`._asyncio_primitives.create_task_group`."""
        return primitives.create_task_group()

    async def checkpoint(self) -> None:
        """Let other tasks run (``asyncio.sleep(0)``)."""
        await asyncio.sleep(0)
