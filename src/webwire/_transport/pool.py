"""The connection pool: reuse, limits, waiting for a slot, stale retries.

All bookkeeping (taking a slot, returning or discarding a connection,
waking a waiter) is synchronous and guarded by the backend's bookkeeping
lock (a real lock only on the blocking backend, shared by threads), so it is correct
under cancellation at any ``await`` and on the blocking backend from many
threads. Only opening a connection and waiting for a slot await.

Stale connections: before an idle connection is reused it is checked for
a pending EOF; if a reused connection still turns out closed before any
byte of the response arrived, an idempotent request (RFC 9110 section
9.2.2) is retried once on a new connection.
"""

from __future__ import annotations

import ssl
from collections.abc import AsyncIterable

import yarl

from webwire._backends.base import Backend, Event
from webwire._config import DEFAULT_LIMITS, Limits, Timeout
from webwire._exceptions import ConnectError, PoolTimeout

from ._types import RawResponse, bound_timeout
from .connect import CertTypes, Origin, VerifyTypes, create_ssl_context, open_stream, origin_of
from .http1 import HTTP11Connection, StaleConnection

__all__ = ["ConnectionPool"]

IDEMPOTENT_METHODS = frozenset({b"GET", b"HEAD", b"OPTIONS", b"TRACE", b"PUT", b"DELETE"})


class ConnectionPool:
    """Connections to any number of origins, shared by concurrent requests.

    Args:
        backend: The concurrency backend all connections use.
        verify: TLS verification (see :func:`create_ssl_context`).
        cert: Client certificate (see :func:`create_ssl_context`).
        limits: Connection counts and keep-alive expiry.
        http1: Offer HTTP/1.1.
        http2: Offer HTTP/2 (not carried by this pool yet: HTTP/1.1 is used).
        trust_env: Honour ``SSL_CERT_FILE``/``SSL_CERT_DIR``.
        local_address: Local IP to bind new connections to.
    """

    def __init__(
        self,
        backend: Backend,
        *,
        verify: VerifyTypes = True,
        cert: CertTypes = None,
        limits: Limits = DEFAULT_LIMITS,
        http1: bool = True,
        http2: bool = False,
        trust_env: bool = True,
        local_address: str | None = None,
    ) -> None:
        self._backend = backend
        self._verify = verify
        self._cert = cert
        self._limits = limits
        self._trust_env = trust_env
        self._local_address = local_address
        self._ssl_context: ssl.SSLContext | None = None
        self._idle: dict[Origin, list[HTTP11Connection]] = {}
        self._idle_count = 0
        self._in_use = 0
        self._connecting = 0
        self._waiters: list[Event] = []
        self._lock = backend.create_bookkeeping_lock()
        self._closed = False
        self._origin_cache: dict[tuple[str, str | None, int | None], Origin] = {}

    # -- introspection -------------------------------------------------

    def connections_in_use(self) -> int:
        """Connections carrying a request now, or being opened for one."""
        return self._in_use + self._connecting

    def connections_idle(self) -> int:
        """Idle keep-alive connections kept for reuse."""
        return self._idle_count

    @property
    def ssl_context(self) -> ssl.SSLContext:
        """The TLS context of ``https`` connections (built on first use).

        Raises:
            ConnectError: The CA bundle or client certificate cannot be
                loaded.
        """
        if self._ssl_context is None:
            self._ssl_context = create_ssl_context(
                self._verify, self._cert, trust_env=self._trust_env
            )
        return self._ssl_context

    # -- requests ------------------------------------------------------

    async def request(
        self,
        method: bytes,
        url: yarl.URL,
        headers: list[tuple[bytes, bytes]],
        body: bytes | AsyncIterable[bytes] | None,
        *,
        timeout: Timeout,
        deadline: float | None,
    ) -> RawResponse:
        """Send a request on a pooled connection and return the response head
        with its body stream.

        Args:
            method: Request method, e.g. ``b"GET"``.
            url: Absolute ``http``/``https`` URL.
            headers: Header fields to send as given (Host included).
            body: The content, an async iterable of chunks, or ``None``.
            timeout: Connect, read, write and pool limits (seconds).
            deadline: Absolute ``backend.monotonic()`` time bounding every
                step, or ``None``.

        Returns:
            The response; reading its stream to the end (or closing it)
            returns the connection to the pool.

        Raises:
            PoolTimeout: No connection became free within ``timeout.pool``.
            ConnectError, ConnectTimeout: The connection could not be opened.
            ReadTimeout, WriteTimeout, ReadError, WriteError,
            RemoteProtocolError, LocalProtocolError: The exchange failed.
            UnsupportedProtocol: The scheme is not http or https.
        """
        key = (url.scheme, url.raw_host, url.explicit_port)
        origin = self._origin_cache.get(key)
        if origin is None:
            origin = origin_of(url.scheme, url.raw_host, url.explicit_port)
            if len(self._origin_cache) < 1024:
                self._origin_cache[key] = origin
        target = url.raw_path_qs.encode("ascii") or b"/"
        retried = False
        while True:
            conn = await self._acquire(origin, timeout, deadline)
            try:
                return await conn.request(
                    method, target, headers, body, timeout=timeout, deadline=deadline
                )
            except StaleConnection as stale:
                replayable = body is None or isinstance(body, bytes)
                if retried or not replayable or method not in IDEMPOTENT_METHODS:
                    raise stale.error from stale.error.__cause__
                retried = True

    async def _acquire(
        self, origin: Origin, timeout: Timeout, deadline: float | None
    ) -> HTTP11Connection:
        backend = self._backend
        wait_until: float | None = None
        while True:
            conn, may_connect = self._take(origin)
            if conn is not None:
                return conn
            if may_connect:
                return await self._connect(origin, timeout, deadline)
            now = backend.monotonic()
            if wait_until is None:
                pool_timeout = bound_timeout(timeout.pool, deadline, now)
                wait_until = None if pool_timeout is None else now + pool_timeout
            left = None if wait_until is None else max(0.0, wait_until - now)
            event = backend.create_event()
            with self._lock:
                self._waiters.append(event)
            woke = False
            try:
                woke = await event.wait(left)
            finally:
                with self._lock:
                    if event in self._waiters:
                        self._waiters.remove(event)
                    elif not woke:
                        # Woken but cancelled or timed out meanwhile: pass it on.
                        self._wake_one_locked()
            if not woke:
                raise PoolTimeout(
                    f"no connection became free within {timeout.pool} s "
                    f"(max_connections={self._limits.max_connections})"
                )

    def _take(self, origin: Origin) -> tuple[HTTP11Connection | None, bool]:
        """Take an idle connection for ``origin``, or reserve a slot for a new
        one. Returns ``(conn, False)``, ``(None, True)`` (slot reserved) or
        ``(None, False)`` (must wait)."""
        if self._closed:
            raise ConnectError("the connection pool is closed")
        expiry = self._limits.keepalive_expiry
        now = self._backend.monotonic() if expiry is not None else 0.0
        to_close: list[HTTP11Connection] = []
        try:
            with self._lock:
                idle = self._idle.get(origin)
                while idle:
                    conn = idle.pop()
                    self._idle_count -= 1
                    if (expiry is not None and now - conn.idle_since > expiry) or (
                        not conn.is_reusable()
                    ):
                        to_close.append(conn)
                        continue
                    self._in_use += 1
                    return conn, False
                limit = self._limits.max_connections
                total = self._in_use + self._connecting + self._idle_count
                if limit is not None and total >= limit:
                    victim = self._pop_oldest_idle_locked()
                    if victim is None:
                        return None, False
                    to_close.append(victim)
                self._connecting += 1
                return None, True
        finally:
            for conn in to_close:
                conn.close()

    def _pop_oldest_idle_locked(self) -> HTTP11Connection | None:
        oldest: HTTP11Connection | None = None
        for conns in self._idle.values():
            if conns and (oldest is None or conns[0].idle_since < oldest.idle_since):
                oldest = conns[0]
        if oldest is not None:
            self._idle[oldest.origin].remove(oldest)
            self._idle_count -= 1
        return oldest

    async def _connect(
        self, origin: Origin, timeout: Timeout, deadline: float | None
    ) -> HTTP11Connection:
        try:
            ssl_context = self.ssl_context if origin.scheme == "https" else None
            stream = await open_stream(
                self._backend,
                origin,
                ssl_context=ssl_context,
                connect_timeout=timeout.connect,
                deadline=deadline,
                local_address=self._local_address,
            )
        except BaseException:
            with self._lock:
                self._connecting -= 1
                self._wake_one_locked()
            raise
        limits = self._limits
        conn = HTTP11Connection(
            origin,
            stream,
            self._backend,
            max_header_size=limits.max_header_size,
            max_header_count=limits.max_header_count,
            on_release=self._release,
        )
        with self._lock:
            self._connecting -= 1
            self._in_use += 1
            closed = self._closed
        if closed:
            self._release(conn, False)
            conn.close()
            raise ConnectError("the connection pool was closed while connecting")
        return conn

    def _release(self, conn: HTTP11Connection, reusable: bool) -> None:
        """Called by a connection when its request is over (synchronous)."""
        close = False
        with self._lock:
            self._in_use -= 1
            if reusable and not self._closed:
                keep = self._limits.max_keepalive_connections
                if keep is not None and self._idle_count >= keep:
                    close = True
                else:
                    conn.idle_since = self._backend.monotonic()
                    self._idle.setdefault(conn.origin, []).append(conn)
                    self._idle_count += 1
            else:
                close = True
            self._wake_one_locked()
        if close:
            conn.close()

    def _wake_one_locked(self) -> None:
        if self._waiters:
            self._waiters.pop(0).set()

    async def aclose(self) -> None:
        """Close every idle connection and refuse new requests. Connections
        in use are closed when their responses are released."""
        with self._lock:
            self._closed = True
            conns = [c for conns in self._idle.values() for c in conns]
            self._idle.clear()
            self._idle_count = 0
            waiters, self._waiters = self._waiters, []
        for event in waiters:
            event.set()
        for conn in conns:
            conn.close()
