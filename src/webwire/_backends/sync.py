"""The blocking backend: plain sockets, ``ssl.SSLSocket`` and ``threading``.

Every ``async def`` here finishes without suspending: it blocks the calling
thread instead. That is what lets :func:`webwire._sync.run_sync` drive the
coroutines of the transport layer to completion on their first step, so the
synchronous API runs the same code as the async one.

Task groups run each task on a thread and cancel cooperatively (see
:mod:`._sync_primitives`): every wait of this backend, connecting included,
ends once the thread's group is cancelled. A thread blocked reading a
stream is woken by aborting that stream (:meth:`SyncStream.abort`).
"""

from __future__ import annotations

import functools
import select
import socket
import ssl
import threading
import time
from collections.abc import Sequence
from contextlib import AbstractContextManager
from typing import Any

from webwire._exceptions import ConnectError, ConnectTimeout, ReadError, WriteError

from . import _happy_eyeballs
from . import _sync_primitives as primitives
from ._common import (
    MAX_DATAGRAM,
    WRITE_CHUNK,
    check_port,
    connect_error,
    connect_timeout,
    describe,
    open_udp_socket,
    read_error,
    read_timeout,
    set_nodelay,
    socket_extra_info,
    tls_error,
    tls_timeout,
    unix_connect_error,
    unix_connect_timeout,
    write_error,
    write_timeout,
)
from ._happy_eyeballs import TCPTarget, fixed_resolver
from ._sync_primitives import wakeable
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

__all__ = ["SyncBackend", "SyncDatagramSocket", "SyncStream"]

_TIMED_OUT = (TimeoutError, BlockingIOError, ssl.SSLWantReadError, ssl.SSLWantWriteError)
"""What a socket raises when its timeout (or non-blocking mode) stops it."""

_HAS_POLL = hasattr(select, "poll")

_RECHECK = 0.05
"""Longest single wait, in seconds, of a TLS call that needs bytes another
thread may take first: a write waiting to read (a TLS 1.2 renegotiation),
and every read once that has happened on the stream."""


class SyncStream(NetworkStream):
    """A blocking TCP (optionally TLS) connection.

    One thread may read while another writes, each with its own timeout:
    the socket stays in non-blocking mode and every call waits with
    ``poll`` (a socket timeout would be shared by all threads). An
    ``ssl.SSLSocket`` also needs a lock (OpenSSL forbids using one
    ``SSL`` object from two threads at once, and CPython releases the GIL
    around each call), so a TLS stream makes every TLS call (read, write, pending, shutdown) under a
    per-stream lock; the waits for the socket to become readable or
    writable happen outside the lock, with ``poll``. A TLS socket is
    closed by :meth:`abort` or :meth:`aclose` only once no thread waits on
    it (the last one closes it), so that a waiting thread never polls a
    descriptor number the system has given to another socket.

    Args:
        sock: A connected ``socket.socket`` or ``ssl.SSLSocket`` (the
            handshake done).
    """

    __slots__ = ("_aborted", "_lock", "_sock", "_users", "_writes_read")

    def __init__(self, sock: socket.socket) -> None:
        self._sock = sock
        self._aborted = False
        self._lock: threading.Lock | None = None
        self._users = 0
        self._writes_read = False
        if isinstance(sock, ssl.SSLSocket):
            self._lock = threading.Lock()
        # Non-blocking for good: each call waits with ``poll`` under its own
        # timeout. A socket timeout (``settimeout``) is one per socket and
        # changing it switches the descriptor's blocking mode outside the
        # GIL, so threads reading and writing with different timeouts would
        # change each other's (a blocking-mode read could then fail at once
        # with EAGAIN).
        try:
            sock.setblocking(False)
        except OSError:
            pass

    async def read(self, max_bytes: int, timeout: float | None) -> bytes:
        """Receive up to ``max_bytes`` (>= 1) bytes, blocking at most
        ``timeout`` seconds (``None``: no limit; 0: only what is there).

        Returns:
            1 to ``max_bytes`` bytes; ``b""`` once the peer closed (a TLS
            peer closing without close_notify included).

        Raises:
            ReadTimeout: Nothing arrived within ``timeout`` seconds.
            ReadError: Reset, TLS failure, or closed or aborted locally.
        """
        if self._lock is not None:
            return self._read_tls(max_bytes, timeout)
        sock = self._sock
        deadline: float | None = None
        while True:
            try:
                data = sock.recv(max_bytes)
            except BlockingIOError:
                pass
            except (OSError, ValueError) as exc:
                if self._aborted:
                    raise ReadError("connection was closed locally") from exc
                raise read_error(describe(exc)) from exc
            else:
                if data or not self._aborted:
                    return data
                raise ReadError("connection was closed locally")
            if self._aborted:
                raise ReadError("connection was closed locally")
            wait: float | None = None
            if timeout is not None:
                now = time.monotonic()
                if deadline is None:
                    deadline = now + timeout
                wait = deadline - now
                if wait <= 0.0:
                    raise read_timeout(timeout)
            _wait_socket(sock, False, wait)

    def _read_tls(self, max_bytes: int, timeout: float | None) -> bytes:
        """:meth:`read` on a TLS stream: ``SSL_read`` under the stream's
        lock, waiting for the socket outside it, all within ``timeout``
        seconds.

        Raises:
            ReadTimeout: Nothing arrived within ``timeout`` seconds.
            ReadError: Reset, TLS failure, or closed or aborted locally.
        """
        sock = self._sock
        lock = self._lock
        assert lock is not None
        deadline: float | None = None
        while True:
            with lock:
                if self._aborted:
                    raise ReadError("connection was closed locally")
                try:
                    return sock.recv(max_bytes)
                except ssl.SSLWantReadError:
                    want_write = False
                except ssl.SSLWantWriteError:
                    want_write = True
                except (ssl.SSLZeroReturnError, ssl.SSLEOFError):
                    return b""
                except (OSError, ValueError) as exc:
                    raise read_error(describe(exc)) from exc
                wait: float | None = None
                if timeout is not None:
                    now = time.monotonic()
                    if deadline is None:
                        deadline = now + timeout
                    wait = deadline - now
                    if wait <= 0.0:
                        raise read_timeout(timeout)
                if self._writes_read and not want_write:
                    wait = _RECHECK if wait is None else min(wait, _RECHECK)
                self._users += 1
            self._wait_tls(want_write, wait)

    async def write(self, data: bytes, timeout: float | None) -> None:
        """Send all of ``data``. Data larger than 256 KiB is sent in pieces,
        each within ``timeout`` seconds (``None``: no limit), so a slow but
        moving peer does not time out a large upload.

        Raises:
            WriteTimeout: A piece could not be sent within ``timeout``
                seconds (the connection must then be closed).
            WriteError: Reset, broken pipe, or closed or aborted locally.
        """
        if self._lock is not None:
            if len(data) <= WRITE_CHUNK:
                self._send_tls(data, timeout)
            else:
                view = memoryview(data)
                for start in range(0, len(view), WRITE_CHUNK):
                    self._send_tls(view[start : start + WRITE_CHUNK], timeout)
            return
        if len(data) <= WRITE_CHUNK:
            self._send_plain(data, timeout)
        else:
            view = memoryview(data)
            for start in range(0, len(view), WRITE_CHUNK):
                self._send_plain(view[start : start + WRITE_CHUNK], timeout)

    def _send_plain(self, data: bytes | memoryview, timeout: float | None) -> None:
        """Send one piece of a :meth:`write` on a cleartext stream within
        ``timeout`` seconds, waiting with ``poll`` while the socket's send
        buffer is full.

        Raises:
            WriteTimeout: The piece could not be sent within ``timeout``
                seconds.
            WriteError: Reset, broken pipe, or closed or aborted locally.
        """
        sock = self._sock
        deadline: float | None = None
        view = memoryview(data)
        while True:
            if self._aborted:
                raise write_error("connection was closed locally")
            try:
                sent = sock.send(view)
            except BlockingIOError:
                sent = 0
            except (OSError, ValueError) as exc:
                raise write_error(describe(exc)) from exc
            if sent:
                view = view[sent:]
                if not view:
                    return
                continue
            wait: float | None = None
            if timeout is not None:
                now = time.monotonic()
                if deadline is None:
                    deadline = now + timeout
                wait = deadline - now
                if wait <= 0.0:
                    raise write_timeout(timeout)
            _wait_socket(sock, True, wait)

    def _send_tls(self, data: bytes | memoryview, timeout: float | None) -> None:
        """Send one piece of a :meth:`write` on a TLS stream within
        ``timeout`` seconds: ``SSL_write`` under the stream's lock, waiting
        for the socket outside it. After a want-read or want-write
        ``SSL_write`` is retried with the same bytes, as OpenSSL requires.

        Raises:
            WriteTimeout: The piece could not be sent within ``timeout``
                seconds.
            WriteError: Reset, broken pipe, TLS failure, or closed or
                aborted locally.
        """
        sock = self._sock
        lock = self._lock
        assert lock is not None
        deadline: float | None = None
        while True:
            with lock:
                if self._aborted:
                    raise write_error("connection was closed locally")
                if not data:
                    return
                try:
                    sent = sock.send(data)
                except ssl.SSLWantWriteError:
                    want_write = True
                except ssl.SSLWantReadError:
                    want_write = False
                    self._writes_read = True
                except (OSError, ValueError) as exc:
                    raise write_error(describe(exc)) from exc
                else:
                    if sent >= len(data):
                        return
                    data = data[sent:]
                    continue
                wait: float | None = None
                if timeout is not None:
                    now = time.monotonic()
                    if deadline is None:
                        deadline = now + timeout
                    wait = deadline - now
                    if wait <= 0.0:
                        raise write_timeout(timeout)
                if not want_write:
                    wait = _RECHECK if wait is None else min(wait, _RECHECK)
                self._users += 1
            self._wait_tls(want_write, wait)

    def _wait_tls(self, write: bool, timeout: float | None) -> None:
        """Wait, without the lock, until the TLS socket is readable
        (writable when ``write``), fails or hangs up, or ``timeout`` seconds
        pass. The caller counted itself in ``_users`` under the lock; this
        uncounts it, and the last thread out closes an aborted socket."""
        try:
            _wait_socket(self._sock, write, timeout)
        finally:
            lock = self._lock
            assert lock is not None
            with lock:
                self._users -= 1
                if self._aborted and not self._users:
                    self._sock.close()

    async def send_eof(self) -> None:
        """Half-close (``shutdown(SHUT_WR)``): the peer reads end of
        stream, reading goes on.

        Raises:
            WriteError: The connection is closed, failed or uses TLS.
        """
        sock = self._sock
        if isinstance(sock, ssl.SSLSocket):
            raise WriteError("cannot half-close a TLS connection (TLS has no half-close)")
        if self._aborted:
            raise write_error("connection is closed")
        try:
            sock.shutdown(socket.SHUT_WR)
        except (OSError, ValueError) as exc:
            raise write_error(describe(exc)) from exc

    async def aclose(self) -> None:
        """Send TLS close_notify without waiting for the reply, then close
        the socket (a TLS socket other threads wait on is shut down, which
        wakes them, and the last of them closes it). Never raises network
        errors; idempotent."""
        sock = self._sock
        lock = self._lock
        if lock is None:
            self._aborted = True
            if sock.fileno() != -1:
                sock.close()
            return
        assert isinstance(sock, ssl.SSLSocket)
        with lock:
            aborted, self._aborted = self._aborted, True
            if aborted or sock.fileno() == -1:
                return
            try:
                sock.unwrap()
            except (OSError, ValueError):
                pass
            if self._users:
                _shutdown(sock)
            else:
                sock.close()

    def abort(self) -> None:
        """Shut the socket down and close it at once (a TLS socket other
        threads wait on: once the last of them wakes); a thread blocked
        reading or writing it wakes up, and later reads raise
        :class:`~webwire.ReadError`. Synchronous, never raises, idempotent."""
        self._aborted = True
        sock = self._sock
        lock = self._lock
        if lock is not None:
            with lock:
                _shutdown(sock)
                if not self._users:
                    sock.close()
            return
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
        data, end of stream or an error on the socket (a closed or aborted
        stream counts as readable)."""
        sock = self._sock
        lock = self._lock
        if lock is None:
            try:
                return _poll_now(sock)
            except (OSError, ValueError):
                return True
        assert isinstance(sock, ssl.SSLSocket)
        with lock:
            if self._aborted:
                return True
            try:
                return bool(sock.pending()) or _poll_now(sock)
            except (OSError, ValueError):
                return True

    async def start_tls(
        self,
        ssl_context: ssl.SSLContext,
        server_hostname: str | None,
        timeout: float | None,
    ) -> NetworkStream:
        """See :meth:`NetworkStream.start_tls`; the socket is closed when the
        handshake fails or times out. Over a TLS stream (a tunnel through an
        ``https`` proxy) the new layer runs on memory buffers."""
        if self._lock is not None:
            from ._tls_layer import TLSLayerStream

            return await TLSLayerStream.connect(self, ssl_context, server_hostname, timeout)
        return SyncStream(_handshake(self._sock, ssl_context, server_hostname, timeout))

    def get_extra_info(self, name: str) -> Any:
        """Connection details (``"ssl_object"`` is the ``ssl.SSLSocket``,
        ``"socket"`` the socket), ``None`` when unknown."""
        sock = self._sock
        return socket_extra_info(name, sock if isinstance(sock, ssl.SSLSocket) else None, sock)


def _poll_millis(timeout: float) -> int:
    """``timeout`` seconds as a ``poll`` timeout: whole milliseconds,
    rounded up, at least 0."""
    return max(0, int(timeout * 1000 + 0.999))


def _poll_now(sock: socket.socket) -> bool:
    """Whether ``sock`` is readable, at end of stream or failed right now.

    Raises:
        OSError, ValueError: ``sock`` is closed.
    """
    if _HAS_POLL:
        poller = select.poll()
        poller.register(sock, select.POLLIN)
        return bool(poller.poll(0))
    readable, _, _ = select.select([sock], [], [], 0)  # pragma: no cover - no poll()
    return bool(readable)  # pragma: no cover - no poll()


def _wait_socket(sock: socket.socket, write: bool, timeout: float | None) -> None:
    """Block until ``sock`` is readable (writable when ``write``), fails or
    hangs up, or ``timeout`` seconds pass (``None``: no limit). Errors of
    the wait itself are left to the next call on the socket to report."""
    try:
        if _HAS_POLL:
            poller = select.poll()
            poller.register(sock, select.POLLOUT if write else select.POLLIN)
            poller.poll(None if timeout is None else _poll_millis(timeout))
        else:  # pragma: no cover - platforms without poll()
            fds = [sock]
            select.select([] if write else fds, fds if write else [], fds, timeout)
    except (OSError, ValueError):
        pass


def _shutdown(sock: socket.socket) -> None:
    """Shut ``sock`` down in both directions at the socket level (also for
    an ``ssl.SSLSocket``), waking a thread blocked on it; never raises."""
    try:
        socket.socket.shutdown(sock, socket.SHUT_RDWR)
    except (OSError, ValueError):
        pass


def _handshake(
    sock: socket.socket,
    ssl_context: ssl.SSLContext,
    server_hostname: str | None,
    timeout: float | None,
) -> ssl.SSLSocket:
    """Wrap ``sock`` in TLS and finish the handshake within ``timeout``
    seconds; ``sock`` is closed on failure and on cancellation."""
    try:
        sock.settimeout(None if timeout is None else max(timeout, 0.0))
        tls = ssl_context.wrap_socket(
            sock, server_hostname=server_hostname, do_handshake_on_connect=False
        )
    except (OSError, ValueError) as exc:
        sock.close()
        raise tls_error(describe(exc)) from exc
    try:
        with wakeable(functools.partial(_shutdown, tls), check_after=True):
            tls.do_handshake()
    except _TIMED_OUT as exc:
        tls.close()
        raise tls_timeout(timeout) from exc
    except (OSError, ValueError) as exc:
        tls.close()
        raise tls_error(describe(exc)) from exc
    except BaseException:
        tls.close()
        raise
    return tls


def _wait_ready(
    sock: socket.socket, waker: socket.socket, write: bool, timeout: float | None
) -> None:
    """Block until ``sock`` is readable (writable when ``write``), ``waker``
    has a byte (which is drained), or ``timeout`` seconds pass."""
    if hasattr(select, "poll"):
        poller = select.poll()
        poller.register(sock, select.POLLOUT if write else select.POLLIN)
        poller.register(waker, select.POLLIN)
        poller.poll(None if timeout is None else _poll_millis(timeout))
    else:  # pragma: no cover - platforms without poll()
        select.select([waker] if write else [sock, waker], [sock] if write else [], [], timeout)
    try:
        while waker.recv(64):
            pass
    except OSError:
        pass


class SyncDatagramSocket(DatagramSocket):
    """A connected, non-blocking UDP socket driven with ``poll``.

    A socket pair wakes a thread waiting in :meth:`receive` (or in a
    :meth:`send` on a full buffer) when the socket is closed or the
    thread's task group is cancelled. The sockets are closed by
    :meth:`aclose`, or by the last thread still using them.

    Args:
        sock: A connected UDP socket.
    """

    __slots__ = (
        "_busy",
        "_closed",
        "_error",
        "_gso",
        "_lock",
        "_sock",
        "_wake_in",
        "_wake_out",
    )

    def __init__(self, sock: socket.socket) -> None:
        sock.setblocking(False)
        self._sock = sock
        self._gso = gso_supported(sock)
        self._wake_in, self._wake_out = socket.socketpair()
        self._wake_in.setblocking(False)
        self._wake_out.setblocking(False)
        self._lock = threading.Lock()
        self._busy = 0
        self._closed = False
        self._error: OSError | None = None

    def _enter(self, closed_error: ReadError | WriteError | ConnectError) -> None:
        with self._lock:
            if self._closed:
                raise closed_error
            self._busy += 1

    def _leave(self) -> None:
        with self._lock:
            self._busy -= 1
            if self._closed and not self._busy:
                self._close_sockets()

    def _close_sockets(self) -> None:
        for sock in (self._sock, self._wake_in, self._wake_out):
            sock.close()

    def _wake(self) -> None:
        try:
            self._wake_out.send(b"\0")
        except OSError:
            pass

    async def send(self, data: bytes) -> None:
        """Send one datagram, blocking while the socket buffer is full.

        Raises:
            WriteError: The socket is closed or the kernel refused the
                datagram (ICMP unreachable, too large).
        """
        self._enter(write_error("socket is closed"))
        try:
            with wakeable(self._wake):
                while True:
                    try:
                        self._sock.send(data)
                        return
                    except BlockingIOError:
                        pass
                    except OSError as exc:
                        raise write_error(describe(exc)) from exc
                    if self._closed:
                        raise write_error("socket is closed")
                    _wait_ready(self._sock, self._wake_in, True, None)
                    primitives.check_cancelled()
        finally:
            self._leave()

    async def send_many(self, datagrams: Sequence[bytes]) -> None:
        """See :meth:`DatagramSocket.send_many`: runs of equal-sized
        datagrams go in one segmented ``sendmsg`` (blocking while the
        socket buffer is full); one by one once the kernel refuses
        segmentation.

        Raises:
            WriteError: As :meth:`send`.
        """
        if not self._gso or len(datagrams) < 2:
            for data in datagrams:
                await self.send(data)
            return
        for start, end in gso_groups(datagrams):
            if end - start > 1 and self._gso:
                buffer = b"".join(datagrams[start:end])
                if self._send_segmented(buffer, len(datagrams[start])):
                    continue
            for index in range(start, end):
                await self.send(datagrams[index])

    def _send_segmented(self, buffer: bytes, segment: int) -> bool:
        """One segmented send; ``False`` when the kernel refused
        segmentation (then off for this socket)."""
        self._enter(write_error("socket is closed"))
        try:
            with wakeable(self._wake):
                while True:
                    try:
                        self._sock.sendmsg([buffer], gso_ancillary(segment))
                        return True
                    except BlockingIOError:
                        pass
                    except OSError as exc:
                        if exc.errno in GSO_FALLBACK_ERRNOS:
                            self._gso = False
                            return False
                        raise write_error(describe(exc)) from exc
                    if self._closed:
                        raise write_error("socket is closed")
                    _wait_ready(self._sock, self._wake_in, True, None)
                    primitives.check_cancelled()
        finally:
            self._leave()

    async def receive(self, timeout: float | None = None) -> bytes:
        """Receive one datagram, blocking at most ``timeout`` seconds.

        Raises:
            ReadTimeout: Nothing arrived within ``timeout`` seconds.
            ReadError: The socket is closed (from another thread
                included) or the kernel reported an error (ICMP port
                unreachable).
        """
        self._enter(read_error("socket is closed"))
        try:
            return self._receive_locked(timeout)
        finally:
            self._leave()

    async def receive_many(self, max_count: int, timeout: float | None = None) -> list[bytes]:
        """See :meth:`DatagramSocket.receive_many`: one blocking wait, then
        non-blocking reads of what the kernel already queued. An error met
        while draining is raised by the next call.

        Raises:
            ValueError: ``max_count`` is below 1.
            ReadTimeout: Nothing arrived within ``timeout`` seconds.
            ReadError: As :meth:`receive`.
        """
        if max_count < 1:
            raise ValueError(f"max_count must be at least 1, not {max_count}")
        self._enter(read_error("socket is closed"))
        try:
            batch = [self._receive_locked(timeout)]
            recv = self._sock.recv
            try:
                while len(batch) < max_count:
                    batch.append(recv(MAX_DATAGRAM))
            except (BlockingIOError, InterruptedError):
                pass
            except OSError as exc:
                self._error = exc
            return batch
        finally:
            self._leave()

    def _receive_locked(self, timeout: float | None) -> bytes:
        """One datagram (the socket entered with :meth:`_enter`)."""
        error = self._error
        if error is not None:
            self._error = None
            raise read_error(describe(error)) from error
        deadline = None if timeout is None else time.monotonic() + max(timeout, 0.0)
        with wakeable(self._wake):
            while True:
                if self._closed:
                    raise read_error("socket is closed")
                try:
                    return self._sock.recv(MAX_DATAGRAM)
                except BlockingIOError:
                    pass
                except OSError as exc:
                    raise read_error(describe(exc)) from exc
                left = None if deadline is None else deadline - time.monotonic()
                if left is not None and left <= 0:
                    raise read_timeout(timeout)
                _wait_ready(self._sock, self._wake_in, False, left)
                primitives.check_cancelled()

    async def aclose(self) -> None:
        """Close the socket; a receive blocked in another thread raises
        :class:`~webwire.ReadError`. Idempotent."""
        with self._lock:
            if self._closed:
                return
            self._closed = True
            if self._busy:
                self._wake()
            else:
                self._close_sockets()

    def get_extra_info(self, name: str) -> Any:
        """``"sockname"``, ``"peername"``, ``"socket"``; ``None`` when
        unknown."""
        return socket_extra_info(name, None, self._sock)


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
        addresses: Sequence[tuple[int, str]] | None = None,
    ) -> NetworkStream:
        """See :meth:`Backend.connect_tcp`; addresses are raced with Happy
        Eyeballs (RFC 8305, :mod:`._happy_eyeballs`), one thread per
        attempt. An IP literal, or a name with a single address, is
        connected in the calling thread."""
        check_port(host, port)
        target = TCPTarget(host, port, ssl_context, server_hostname or host, local_address)
        resolve = self._resolve_host if addresses is None else fixed_resolver(addresses)
        return await _happy_eyeballs.connect_tcp(
            self, target, timeout, resolve=resolve, connect=self._connect_address
        )

    async def _resolve_host(
        self, host: str, port: int, timeout: float | None
    ) -> list[tuple[int, str]]:
        """Happy Eyeballs resolver hook: ``(family, ip)`` pairs of ``host``.
        With a timeout, or inside a task group, the lookup runs on a helper
        thread so that the timeout and cancellation can end the wait."""

        def lookup() -> list[tuple[int, str]]:
            infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
            return [(int(info[0]), str(info[4][0])) for info in infos]

        try:
            if timeout is None and not primitives.current_tokens():
                return lookup()
            return primitives.run_in_thread(lookup, timeout, f"webwire resolve {host}")
        except TimeoutError as exc:
            raise connect_timeout(host, port, timeout) from exc
        except (OSError, UnicodeError, ValueError) as exc:
            raise connect_error(host, port, describe(exc)) from exc

    async def _connect_address(
        self, target: TCPTarget, family: int, ip: str, timeout: float | None
    ) -> NetworkStream:
        """Happy Eyeballs connector hook: TCP to ``ip``, then TLS with what
        is left of ``timeout``. Cancellation shuts the socket down, which
        ends a blocked connect or handshake at once; the socket is closed
        whenever the attempt fails."""
        host, port = target.host, target.port
        start = time.monotonic()
        try:
            sock = socket.socket(family, socket.SOCK_STREAM)
        except OSError as exc:
            raise connect_error(host, port, describe(exc)) from exc
        try:
            if target.local_address is not None:
                sock.bind((target.local_address, 0))
            sock.settimeout(None if timeout is None else max(timeout, 0.0))
            with wakeable(functools.partial(_shutdown, sock), check_after=True):
                sock.connect((ip, port))
        except BaseException as exc:
            sock.close()
            if isinstance(exc, _TIMED_OUT):
                raise connect_timeout(host, port, timeout) from exc
            if isinstance(exc, (OSError, ValueError, OverflowError)):
                raise connect_error(host, port, describe(exc)) from exc
            raise
        set_nodelay(sock)
        if target.ssl_context is None:
            return SyncStream(sock)
        left = None if timeout is None else timeout - (time.monotonic() - start)
        try:
            if left is not None and left <= 0.0:
                sock.close()
                raise tls_timeout(timeout)
            tls = _handshake(sock, target.ssl_context, target.server_hostname, left)
        except ConnectTimeout as exc:
            raise connect_timeout(host, port, timeout) from exc.__cause__
        except ConnectError as exc:
            raise connect_error(host, port, str(exc)) from exc.__cause__
        return SyncStream(tls)

    async def connect_unix(self, path: str, *, timeout: float | None) -> NetworkStream:
        """See :meth:`Backend.connect_unix`."""
        family = getattr(socket, "AF_UNIX", None)
        if family is None:  # pragma: no cover - platforms without AF_UNIX
            raise unix_connect_error(path, "Unix domain sockets are not supported here")
        try:
            sock = socket.socket(family, socket.SOCK_STREAM)
        except OSError as exc:
            raise unix_connect_error(path, describe(exc)) from exc
        try:
            sock.settimeout(None if timeout is None else max(timeout, 0.0))
            with wakeable(functools.partial(_shutdown, sock), check_after=True):
                sock.connect(path)
        except BaseException as exc:
            sock.close()
            if isinstance(exc, _TIMED_OUT):
                raise unix_connect_timeout(path, timeout) from exc
            if isinstance(exc, (OSError, ValueError)):
                raise unix_connect_error(path, describe(exc)) from exc
            raise
        return SyncStream(sock)

    async def connect_udp(
        self,
        remote_addr: tuple[str, int],
        local_addr: tuple[str, int] | None = None,
    ) -> DatagramSocket:
        """See :meth:`Backend.connect_udp`."""
        sock = open_udp_socket(remote_addr, local_addr)
        try:
            return SyncDatagramSocket(sock)
        except OSError as exc:
            sock.close()
            raise connect_error(remote_addr[0], remote_addr[1], describe(exc)) from exc

    async def sleep(self, seconds: float) -> None:
        """Block for ``seconds`` seconds; in a task group, end early by
        raising the internal cancellation once the group is cancelled."""
        primitives.sleep(seconds)

    def monotonic(self) -> float:
        """:func:`time.monotonic`, in seconds."""
        return time.monotonic()

    def create_bookkeeping_lock(self) -> AbstractContextManager[Any]:
        """A :class:`threading.Lock`: the blocking client is shared by
        threads."""
        return threading.Lock()

    def create_lock(self) -> Lock:
        """A new lock (cancellation-aware, usable across threads)."""
        return primitives.create_lock()

    def create_event(self) -> Event:
        """A new event (cancellation-aware, usable across threads)."""
        return primitives.create_event()

    def create_semaphore(self, value: int) -> Semaphore:
        """A new semaphore holding ``value`` units."""
        return primitives.create_semaphore(value)

    def create_channel(self, max_size: int) -> Channel[Any]:
        """A new channel holding at most ``max_size`` items, usable across
        threads."""
        return primitives.create_channel(max_size)

    def create_task_group(self) -> TaskGroup:
        """A new task group running each task on its own daemon thread,
        driven by :func:`webwire._sync.run_sync`; see
        :mod:`._sync_primitives` for cooperative cancellation."""
        return primitives.create_task_group()

    def create_detached_task_group(self) -> TaskGroup:
        """A task group whose tasks run under its own cancellation only:
        entering it does not change the calling thread's cancellation state,
        so any thread may exit it, in any order relative to other groups,
        and a cancellation of the entering thread's groups does not reach
        its tasks."""
        return primitives.create_task_group(detached=True)

    async def checkpoint(self) -> None:
        """Raise the internal cancellation if the calling thread's task
        group was cancelled; otherwise do nothing."""
        primitives.check_cancelled()
