"""The trio backend: :func:`trio.open_tcp_stream` plus :class:`trio.SSLStream`.

Timeouts are cancel scopes (``trio.move_on_after``), opened only when an
operation may have to wait: on a cleartext connection a zero-timeout
``poll`` first checks whether the socket is ready, and a ready socket is
read or written without a scope (a scope costs about as much as the system
call itself). TLS streams use ``https_compatible=True``: a server that
closes the TCP connection without a TLS close_notify ends the stream
(``b""``) instead of failing it, as HTTPS requires (RFC 9110 section 8.6
leaves truncation detection to the message framing).

Task groups wrap a nursery but never let an ``ExceptionGroup`` out: a
failing task records its error and cancels the nursery, and the first error
is re-raised as itself. The primitive factories are methods, so a backend
built on trio (the in-memory test backend) can override them one by one.
"""

from __future__ import annotations

import select
import socket
import ssl
import sys
from collections.abc import Awaitable, Callable, Sequence
from contextlib import AbstractAsyncContextManager
from types import TracebackType
from typing import Any, TypeVar, cast

import trio

from webwire._exceptions import WriteError

from . import _happy_eyeballs
from ._common import (
    CLOSE_WAIT,
    MAX_DATAGRAM,
    WRITE_CHUNK,
    check_port,
    connect_error,
    connect_timeout,
    describe,
    open_udp_socket,
    read_error,
    read_timeout,
    socket_extra_info,
    tls_error,
    tls_timeout,
    unix_connect_error,
    unix_connect_timeout,
    write_error,
    write_timeout,
)
from ._happy_eyeballs import TCPTarget, fixed_resolver
from ._udp_batch import GSO_FALLBACK_ERRNOS, gso_ancillary, gso_groups, gso_supported
from .base import (
    Backend,
    Channel,
    ChannelClosed,
    DatagramSocket,
    Event,
    Lock,
    NetworkStream,
    Semaphore,
    TaskGroup,
)

if sys.version_info >= (3, 11):
    _BaseExceptionGroup = BaseExceptionGroup  # noqa: F821 (a builtin since 3.11)
else:  # pragma: no cover - trio depends on the backport before 3.11
    from exceptiongroup import (  # type: ignore[import-not-found,unused-ignore]
        BaseExceptionGroup as _BaseExceptionGroup,
    )

__all__ = ["TrioBackend", "TrioDatagramSocket", "TrioStream"]

T = TypeVar("T")

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

    When a write fails because the peer reset the connection, a cleartext
    stream still reads the bytes the peer sent before the reset (its early
    response to an upload, RFC 9112 section 9.6), then ``b""``: the failed
    send leaves the socket open, the kernel keeps those bytes and reports
    the reset only once, to the send. A TLS stream cannot: a failed send
    breaks :class:`trio.SSLStream` for good, and later reads raise
    :class:`~webwire.ReadError` even when a response is waiting on the
    socket (it is only returned when read before the write failed).

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
            ReadError: Reset, TLS failure (a TLS stream whose write failed
                included), closed or aborted locally, or another task is
                already reading.
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

    async def send_eof(self) -> None:
        """Half-close: the peer reads end of stream, reading goes on.

        Raises:
            WriteError: The connection is closed, failed or uses TLS.
        """
        stream = self._stream
        if not isinstance(stream, trio.SocketStream):
            raise WriteError("cannot half-close a TLS connection (TLS has no half-close)")
        if self._socket.fileno() == -1:
            raise write_error("connection is closed")
        try:
            await stream.send_eof()
        except _STREAM_ERRORS as exc:
            raise write_error(_describe(exc)) from exc

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


class TrioDatagramSocket(DatagramSocket):
    """A connected UDP socket as a trio socket.

    Args:
        sock: A connected trio UDP socket.
        raw: The standard socket ``sock`` wraps (non-blocking), read
            directly by :meth:`receive_many`; ``None`` to take one
            datagram per call.
    """

    __slots__ = ("_error", "_gso", "_raw", "_socket")

    def __init__(self, sock: trio.socket.SocketType, raw: socket.socket | None = None) -> None:
        self._socket = sock
        self._raw = raw
        self._error: OSError | None = None
        self._gso = raw is not None and hasattr(sock, "sendmsg") and gso_supported(raw)

    async def send(self, data: bytes) -> None:
        """Send one datagram.

        Raises:
            WriteError: The socket is closed or the kernel refused the
                datagram (ICMP unreachable, too large).
        """
        try:
            await self._socket.send(data)
        except _STREAM_ERRORS as exc:
            raise write_error(describe(exc)) from exc

    async def send_many(self, datagrams: Sequence[bytes]) -> None:
        """See :meth:`DatagramSocket.send_many`: runs of equal-sized
        datagrams go in one segmented ``sendmsg``; one by one once the
        kernel refuses segmentation.

        Raises:
            WriteError: As :meth:`send`.
        """
        if not self._gso or len(datagrams) < 2:
            for data in datagrams:
                await self.send(data)
            return
        sock = self._socket
        for start, end in gso_groups(datagrams):
            if end - start > 1 and self._gso:
                try:
                    await sock.sendmsg(
                        [b"".join(datagrams[start:end])], gso_ancillary(len(datagrams[start]))
                    )
                    continue
                except OSError as exc:
                    if exc.errno not in GSO_FALLBACK_ERRNOS:
                        raise write_error(describe(exc)) from exc
                    self._gso = False
                except _STREAM_ERRORS as exc:
                    raise write_error(describe(exc)) from exc
            for index in range(start, end):
                await self.send(datagrams[index])

    async def receive(self, timeout: float | None = None) -> bytes:
        """Receive one datagram within ``timeout`` seconds.

        Raises:
            ReadTimeout: Nothing arrived within ``timeout`` seconds.
            ReadError: The socket is closed (a pending receive included),
                the kernel reported an error (ICMP port unreachable), or
                another task is receiving.
        """
        error = self._error
        if error is not None:
            self._error = None
            await trio.lowlevel.checkpoint()
            raise read_error(describe(error)) from error
        try:
            if timeout is None:  # no cancel scope to enter and leave
                return await self._socket.recv(MAX_DATAGRAM)
            with trio.move_on_after(max(timeout, 0.0)):
                return await self._socket.recv(MAX_DATAGRAM)
        except _STREAM_ERRORS as exc:
            raise read_error(describe(exc)) from exc
        raise read_timeout(timeout)

    async def receive_many(self, max_count: int, timeout: float | None = None) -> list[bytes]:
        """See :meth:`DatagramSocket.receive_many`: after the first
        datagram, those already queued in the kernel are taken with
        non-blocking reads (no scheduler turn per datagram). An error met
        while draining is raised by the next call.

        Raises:
            ValueError: ``max_count`` is below 1.
            ReadTimeout: Nothing arrived within ``timeout`` seconds.
            ReadError: As :meth:`receive`.
        """
        if max_count < 1:
            raise ValueError(f"max_count must be at least 1, not {max_count}")
        batch = [await self.receive(timeout)]
        raw = self._raw
        if raw is None or max_count == 1:
            return batch
        recv = raw.recv
        try:
            while len(batch) < max_count:
                batch.append(recv(MAX_DATAGRAM))
        except (BlockingIOError, InterruptedError):
            pass
        except OSError as exc:
            self._error = exc
        return batch

    async def aclose(self) -> None:
        """Close the socket; a pending ``receive`` raises
        :class:`~webwire.ReadError`. Idempotent."""
        self._socket.close()

    def get_extra_info(self, name: str) -> Any:
        """``"sockname"``, ``"peername"``, ``"socket"`` (the trio socket);
        ``None`` when unknown."""
        return socket_extra_info(name, None, self._socket)


class _TrioLock(Lock):
    __slots__ = ("_lock",)

    def __init__(self) -> None:
        self._lock = trio.Lock()

    async def acquire(self, timeout: float | None = None) -> bool:
        """Take the lock within ``timeout`` seconds; ``False`` on timeout."""
        if timeout is not None and timeout <= 0:
            try:
                self._lock.acquire_nowait()
            except trio.WouldBlock:
                return False
            return True
        with _scope(timeout):
            await self._lock.acquire()
            return True
        return False

    def release(self) -> None:
        """Release the lock (it must be held by the calling task)."""
        self._lock.release()

    def locked(self) -> bool:
        """Whether the lock is held."""
        return self._lock.locked()


class _TrioEvent(Event):
    """A :class:`trio.Event`, which cannot be reset: clearing a set event
    replaces it with a new one (waiters only ever wait on an unset one)."""

    __slots__ = ("_event",)

    def __init__(self) -> None:
        self._event = trio.Event()

    def set(self) -> None:
        """Set the flag and wake every waiter."""
        self._event.set()

    def clear(self) -> None:
        """Reset the flag."""
        if self._event.is_set():
            self._event = trio.Event()

    def is_set(self) -> bool:
        """Whether the flag is set."""
        return self._event.is_set()

    async def wait(self, timeout: float | None = None) -> bool:
        """Wait until set or ``timeout`` seconds pass; ``True`` if set."""
        event = self._event
        with _scope(timeout):
            await event.wait()
        return event.is_set()


class _TrioSemaphore(Semaphore):
    __slots__ = ("_semaphore",)

    def __init__(self, value: int) -> None:
        self._semaphore = trio.Semaphore(value)

    async def acquire(self, timeout: float | None = None) -> bool:
        """Take one unit within ``timeout`` seconds; ``False`` on timeout."""
        if timeout is not None and timeout <= 0:
            try:
                self._semaphore.acquire_nowait()
            except trio.WouldBlock:
                return False
            return True
        with _scope(timeout):
            await self._semaphore.acquire()
            return True
        return False

    def release(self) -> None:
        """Give one unit back."""
        self._semaphore.release()


class _TrioChannel(Channel[T]):
    """A trio memory channel (both ends kept together)."""

    __slots__ = ("_receive", "_send")

    def __init__(self, max_size: int) -> None:
        if max_size < 1:
            raise ValueError("a channel holds at least one item")
        self._send, self._receive = trio.open_memory_channel[T](max_size)

    async def send(self, item: T, timeout: float | None = None) -> bool:
        """Queue ``item``, waiting up to ``timeout`` seconds for room."""
        if timeout is not None and timeout <= 0:
            return self.send_nowait(item)
        try:
            with _scope(timeout):
                await self._send.send(item)
                return True
        except (trio.ClosedResourceError, trio.BrokenResourceError) as exc:
            raise ChannelClosed("the channel is closed") from exc
        return False

    def send_nowait(self, item: T) -> bool:
        """Queue ``item`` if there is room; ``False`` when full."""
        try:
            self._send.send_nowait(item)
        except trio.WouldBlock:
            return False
        except (trio.ClosedResourceError, trio.BrokenResourceError) as exc:
            raise ChannelClosed("the channel is closed") from exc
        return True

    async def receive(self, timeout: float | None = None) -> T:
        """Take the oldest item, waiting up to ``timeout`` seconds."""
        if timeout is not None and timeout <= 0:
            try:
                return self.receive_nowait()
            except IndexError:
                raise read_timeout(timeout) from None
        try:
            with _scope(timeout):
                return await self._receive.receive()
        except trio.EndOfChannel as exc:
            raise ChannelClosed("the channel is closed") from exc
        raise read_timeout(timeout)

    def receive_nowait(self) -> T:
        """Take the oldest item; ``IndexError`` when empty."""
        try:
            return self._receive.receive_nowait()
        except trio.WouldBlock:
            raise IndexError("the channel is empty") from None
        except trio.EndOfChannel as exc:
            raise ChannelClosed("the channel is closed") from exc

    def close(self) -> None:
        """Close; waiting senders and (once empty) receivers get
        :class:`ChannelClosed`."""
        self._send.close()

    def __len__(self) -> int:
        return self._send.statistics().current_buffer_used


def _is_cancellation(exc: BaseException) -> bool:
    """Whether ``exc`` is :class:`trio.Cancelled` or a group of only
    those."""
    if isinstance(exc, _BaseExceptionGroup):
        return all(_is_cancellation(inner) for inner in exc.exceptions)
    return isinstance(exc, trio.Cancelled)


def _first_leaf(exc: BaseException) -> BaseException:
    """The first exception inside (nested) exception groups, preferring one
    that is not a cancellation; ``exc`` itself when it is no group."""
    while isinstance(exc, _BaseExceptionGroup) and exc.exceptions:
        inner = exc.exceptions
        exc = next((e for e in inner if not _is_cancellation(e)), inner[0])
    return exc


class _TrioTaskGroup(TaskGroup):
    """A nursery whose tasks never raise into it: a task's error is kept
    (the first one) and the nursery cancelled, so no exception group
    forms; a group the nursery raises anyway (an outer cancellation) is
    unwrapped."""

    def __init__(self) -> None:
        self._manager: AbstractAsyncContextManager[trio.Nursery] | None = None
        self._nursery: trio.Nursery | None = None
        self._error: BaseException | None = None

    async def __aenter__(self) -> TaskGroup:
        if self._manager is not None:
            raise RuntimeError("a task group can be entered only once")
        self._manager = trio.open_nursery()
        self._nursery = await self._manager.__aenter__()
        return self

    def start_soon(self, fn: Callable[..., Awaitable[Any]], *args: Any) -> None:
        """Start ``fn(*args)`` as a task of the nursery."""
        if self._nursery is None:
            raise RuntimeError("the task group is not active")
        self._nursery.start_soon(self._run, fn, args, name=fn)

    async def _run(self, fn: Callable[..., Awaitable[Any]], args: tuple[Any, ...]) -> None:
        try:
            await fn(*args)
        except BaseException as exc:
            if _is_cancellation(exc):
                raise
            if self._error is None:
                self._error = _first_leaf(exc)
            self.cancel()

    def cancel(self) -> None:
        """Cancel the nursery: every task and the body."""
        if self._nursery is not None:
            self._nursery.cancel_scope.cancel()

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> bool | None:
        manager = self._manager
        if manager is None or self._nursery is None:
            raise RuntimeError("the task group was not entered")
        passed = exc
        if exc is not None and not _is_cancellation(exc):
            # The body failed: its error is kept out of the nursery (which
            # would wrap it in a group) and re-raised below.
            if self._error is None:
                self._error = exc
            self.cancel()
            passed = None
        problem: BaseException | None = None
        try:
            await manager.__aexit__(
                type(passed) if passed else None, passed, passed.__traceback__ if passed else None
            )
        except BaseException as raised:
            problem = _first_leaf(raised)
        finally:
            self._nursery = None
        if self._error is not None:
            if self._error is exc:
                return False
            raise self._error
        if problem is not None:
            if problem is exc:
                return False
            raise problem
        return True if exc is not None else None


class _TrioDetachedTaskGroup(_TrioTaskGroup):
    """Tasks in a nursery owned by a trio system task, so that the group is
    not nested in the entering task's cancel scopes: it can be exited from
    any task, in any order. A task's first error is kept (the other tasks
    are cancelled) and re-raised on exit; the system task itself never
    fails (trio would end the run)."""

    def __init__(self) -> None:
        self._nursery: trio.Nursery | None = None
        self._done = trio.Event()
        self._finished = trio.Event()
        self._entered = False
        self._error: BaseException | None = None

    async def __aenter__(self) -> TaskGroup:
        if self._entered:
            raise RuntimeError("a task group can be entered only once")
        self._entered = True
        ready = trio.Event()

        async def host() -> None:
            try:
                async with trio.open_nursery() as nursery:
                    self._nursery = nursery
                    ready.set()
                    await self._done.wait()
            except BaseException as exc:  # never into the system nursery
                if not _is_cancellation(exc) and self._error is None:
                    self._error = _first_leaf(exc)
            finally:
                self._nursery = None
                ready.set()
                self._finished.set()

        import contextvars

        trio.lowlevel.spawn_system_task(host, context=contextvars.copy_context())
        await ready.wait()
        return self

    def start_soon(self, fn: Callable[..., Awaitable[Any]], *args: Any) -> None:
        """Start ``fn(*args)`` in the group's nursery."""
        if self._nursery is None or self._done.is_set():
            raise RuntimeError("the task group is not active")
        self._nursery.start_soon(self._run, fn, args, name=fn)

    def release(self) -> None:
        """Let the system task end once the group's tasks have ended."""
        self._done.set()

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> bool | None:
        if exc is not None:
            self.cancel()
        self._done.set()
        await self._finished.wait()
        if self._error is not None and self._error is not exc:
            raise self._error
        return None


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
        try:
            with _scope(timeout):
                infos = await trio.socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
                return [(int(info[0]), str(info[4][0])) for info in infos]
        except (OSError, UnicodeError, ValueError) as exc:
            raise connect_error(host, port, describe(exc)) from exc
        raise connect_timeout(host, port, timeout)

    async def _connect_address(
        self, target: TCPTarget, family: int, ip: str, timeout: float | None
    ) -> NetworkStream:
        """Happy Eyeballs connector hook: TCP to ``ip``, then TLS; the
        socket is closed when anything fails or the attempt is cancelled."""
        host, port = target.host, target.port
        try:
            sock = trio.socket.socket(family, socket.SOCK_STREAM)
        except OSError as exc:
            raise connect_error(host, port, describe(exc)) from exc
        result: TrioStream | None = None
        try:
            with _scope(timeout):
                if target.local_address is not None:
                    await sock.bind((target.local_address, 0))
                await sock.connect((ip, port))
                tcp = trio.SocketStream(sock)
                if target.ssl_context is None:
                    result = TrioStream(tcp, sock)
                else:
                    tls = trio.SSLStream(
                        tcp,
                        target.ssl_context,
                        server_hostname=target.server_hostname,
                        https_compatible=True,
                    )
                    await tls.do_handshake()
                    result = TrioStream(tls, sock)
        except _CONNECT_ERRORS as exc:
            raise connect_error(host, port, _describe(exc)) from exc
        finally:
            if result is None:
                sock.close()
        if result is None:
            raise connect_timeout(host, port, timeout)
        return result

    async def connect_unix(self, path: str, *, timeout: float | None) -> NetworkStream:
        """See :meth:`Backend.connect_unix`; uses
        :func:`trio.open_unix_socket`."""
        result: TrioStream | None = None
        try:
            with _scope(timeout):
                stream = await trio.open_unix_socket(path)
                result = TrioStream(stream, stream.socket)
        except (OSError, RuntimeError, ValueError) as exc:
            raise unix_connect_error(path, describe(exc)) from exc
        if result is None:
            raise unix_connect_timeout(path, timeout)
        return result

    async def connect_udp(
        self,
        remote_addr: tuple[str, int],
        local_addr: tuple[str, int] | None = None,
    ) -> DatagramSocket:
        """See :meth:`Backend.connect_udp`."""
        sock = open_udp_socket(remote_addr, local_addr)
        return TrioDatagramSocket(trio.socket.from_stdlib_socket(sock), sock)

    async def sleep(self, seconds: float) -> None:
        """Suspend for ``seconds`` seconds."""
        await trio.sleep(max(seconds, 0.0))

    def monotonic(self) -> float:
        """trio's clock, in seconds."""
        return trio.current_time()

    def loop_token(self) -> object | None:
        """The running ``trio.run``'s token."""
        return trio.lowlevel.current_trio_token()

    def create_lock(self) -> Lock:
        """A new lock over :class:`trio.Lock`."""
        return _TrioLock()

    def create_event(self) -> Event:
        """A new resettable event over :class:`trio.Event`."""
        return _TrioEvent()

    def create_semaphore(self, value: int) -> Semaphore:
        """A new semaphore holding ``value`` units."""
        return _TrioSemaphore(value)

    def create_channel(self, max_size: int) -> Channel[Any]:
        """A new channel over a trio memory channel of ``max_size`` items."""
        return _TrioChannel[Any](max_size)

    def create_task_group(self) -> TaskGroup:
        """A new task group over a nursery (see :class:`_TrioTaskGroup`)."""
        return _TrioTaskGroup()

    def create_detached_task_group(self) -> TaskGroup:
        """A task group run by a trio system task (see
        :class:`_TrioDetachedTaskGroup`)."""
        return _TrioDetachedTaskGroup()

    async def checkpoint(self) -> None:
        """Let other tasks run and deliver pending cancellation."""
        await trio.lowlevel.checkpoint()
