"""The connection pool: HTTP/1.1 and HTTP/2 connections, reuse, limits,
waiting for a slot, stale retries.

Connections are kept per origin. A request takes a stream slot on a
connection that has one (an idle HTTP/1.1 connection, or an HTTP/2
connection below the server's stream limit), or opens a new connection
when ``Limits.max_connections`` allows, or waits. The HTTP version is
decided by ALPN once the TLS handshake is done (``h2`` or ``http/1.1``,
RFC 9113 section 3.2), or by prior knowledge for cleartext HTTP/2
(``http1=False``, section 3.3), so it never takes a second connect; while
a connection that may turn out to be HTTP/2 is being opened, other
requests for its origin wait for it instead of opening their own.

All bookkeeping (taking a slot, parking or closing a connection, waking
waiters) is synchronous under the backend's bookkeeping lock (a real lock
only on the blocking backend, shared by threads), so it is correct under
cancellation at any ``await`` and from many threads. Only opening a
connection and waiting for a slot await.

Retries: a request that a connection reports as not processed
(:class:`~webwire._transport._types.StaleConnection`: a keep-alive
connection closed by the server before any response byte, an HTTP/2
stream refused or cut off by GOAWAY) is retried once on another
connection, when its body can be replayed and, unless the server
guaranteed it did nothing, when its method is idempotent (RFC 9110
section 9.2.2).

WebSocket (``extensions["protocol"] == "websocket"``): the pool picks the
HTTP version, see :meth:`ConnectionPool.request`. Over HTTP/2 the
WebSocket is an extended CONNECT stream (RFC 8441) on the origin's shared
connection when its server enabled it (``SETTINGS_ENABLE_CONNECT_PROTOCOL``);
otherwise the ``Upgrade`` GET goes on an HTTP/1.1 connection, opened with
ALPN ``http/1.1`` alone when the origin speaks HTTP/2 without extended
CONNECT.

HTTP/3 (``http3=True`` or ``http_versions``): which requests go over QUIC,
the Alt-Svc cache and the fallback to TCP are in
:mod:`webwire._transport._h3_route`; HTTP/3 connections are pooled apart
from the TCP connections of the same origin.
"""

from __future__ import annotations

import ssl
from collections.abc import AsyncIterable
from typing import TYPE_CHECKING, Any

import yarl

from webwire._backends.base import Backend, Event
from webwire._config import DEFAULT_LIMITS, Limits, Timeout
from webwire._exceptions import ConnectError, PoolTimeout, ProxyError

from ._dns import DNSCache
from ._types import (
    Connection,
    RawResponse,
    StaleConnection,
    TraceHook,
    TransportRequest,
    bound_timeout,
    may_resend,
)
from .connect import CertTypes, Origin, VerifyTypes, create_ssl_context, open_stream, origin_of
from .proxy import Proxy

if TYPE_CHECKING:
    from collections.abc import Collection

    from ._h3_route import H3Router
    from .altsvc import AltSvcCache

__all__ = ["ConnectionPool"]

_CONNECT = object()
"""What :meth:`ConnectionPool._take_locked` returns when the caller may
open a new connection (a slot is reserved for it)."""


def _require_h2() -> None:
    try:
        import h2  # noqa: F401
    except ImportError as exc:  # pragma: no cover - h2 is a dependency
        raise ImportError("HTTP/2 needs the h2 package: pip install 'h2>=4.1'") from exc


class ConnectionPool:
    """Connections to any number of origins, shared by concurrent requests.

    Args:
        backend: The concurrency backend all connections use.
        verify: TLS verification (see :func:`create_ssl_context`).
        cert: Client certificate (see :func:`create_ssl_context`).
        limits: Connection counts, keep-alive expiry and header limits.
        http1: Speak HTTP/1.1.
        http2: Speak HTTP/2: offered with ALPN over TLS; with ``http1``
            off, also used on cleartext connections (prior knowledge).
        trust_env: Honour ``SSL_CERT_FILE``/``SSL_CERT_DIR``.
        local_address: Local IP to bind new connections to.
        proxy: Send every request through this proxy: ``http`` origins
            are forwarded by an HTTP proxy (absolute-form target, RFC 9112
            section 3.2.2, on HTTP/1.1 connections to the proxy, kept per
            origin since many proxies tie a connection to its first
            origin), ``https`` origins go through a ``CONNECT`` tunnel
            (RFC 9110 section 9.3.6) and TLS inside it; with a SOCKS proxy
            every connection is a tunnel. Tunnels are pooled per origin.
        uds: Connect every origin through the Unix domain socket at this
            path instead of TCP (TLS on top for ``https`` origins).
        http3: Use HTTP/3 (RFC 9114) for ``https`` origins that advertise
            it with ``Alt-Svc`` (RFC 7838), falling back to TCP when QUIC
            cannot connect; see :mod:`webwire._transport._h3_route`.
        http_versions: The HTTP versions to use, a subset of
            ``{"HTTP/1.1", "HTTP/2", "HTTP/3"}`` (it sets ``http1``,
            ``http2`` and ``http3``; ``{"HTTP/3"}`` alone forces HTTP/3 on
            the URL's own port).
        alt_svc: The Alt-Svc cache to use (shared with the client); a new
            one by default.

    Raises:
        ValueError: No HTTP version is enabled, ``http_versions`` has an
            unknown name or contradicts ``http1``/``http2``/``http3``.
        ImportError: ``http2`` is on but the ``h2`` package is missing, or
            HTTP/3 is on but ``qh3`` is (a dependency of webwire: ``pip install qh3``).
    """

    def __init__(
        self,
        backend: Backend,
        *,
        verify: VerifyTypes = True,
        cert: CertTypes = None,
        limits: Limits = DEFAULT_LIMITS,
        http1: bool = True,
        http2: bool = True,
        trust_env: bool = True,
        local_address: str | None = None,
        proxy: Proxy | None = None,
        uds: str | None = None,
        http3: bool = False,
        http_versions: Collection[str] | None = None,
        alt_svc: AltSvcCache | None = None,
    ) -> None:
        self._h3: H3Router | None = None
        self._h3_any: H3Router | None = None
        self._alt_svc = alt_svc
        if http3 or http_versions is not None:
            from ._h3_route import resolve_versions

            http1, http2, http3 = resolve_versions(http_versions, http1, http2, http3)
        if not (http1 or http2 or http3):
            raise ValueError("at least one of http1, http2 and http3 must be enabled")
        if http2:
            _require_h2()
        self._backend = backend
        self._verify = verify
        self._cert = cert
        self._limits = limits
        self._http1 = http1
        self._http2 = http2
        self._trust_env = trust_env
        self._local_address = local_address
        self._proxy = proxy
        self._uds = uds
        # Requests to http origins are forwarded by an HTTP proxy.
        self._forward_http = proxy is not None and not proxy.is_socks
        self._ssl_context: ssl.SSLContext | None = None
        self._h1_ssl_context: ssl.SSLContext | None = None
        self._proxy_ssl_context: ssl.SSLContext | None = None
        self._all: set[Connection] = set()
        # Idle single-request connections, most recently used last.
        self._idle: dict[Origin, list[Connection]] = {}
        self._idle_count = 0
        # Multiplexed connections, asked for a slot in turn.
        self._shared: dict[Origin, list[Connection]] = {}
        self._connecting = 0
        self._pending_h2: dict[Origin, int] = {}
        self._waiters: list[Event] = []
        self._lock = backend.create_bookkeeping_lock()
        self._closed = False
        self._origin_cache: dict[tuple[str, str | None, int | None], Origin] = {}
        ttl = limits.dns_cache_ttl
        self._dns = DNSCache(ttl) if ttl is not None and ttl > 0 else None
        self._per_host = limits.max_connections_per_host
        # Connections open or being opened per origin (kept with a per-host limit).
        self._host_counts: dict[Origin, int] = {}
        # HTTP/3 connections, apart from the TCP ones of the same origin.
        self._h3_shared: dict[Origin, list[Connection]] = {}
        if http3:
            from ._h3_route import H3Router

            self._h3 = self._h3_any = H3Router(self, http1=http1, http2=http2, http3=True)

    # -- introspection -------------------------------------------------

    def connections(self) -> list[Connection]:
        """Every open connection of the pool (a snapshot)."""
        with self._lock:
            return list(self._all)

    def connections_in_use(self) -> int:
        """Connections carrying at least one request now, or being opened
        for one."""
        with self._lock:
            return len(self._all) - self._idle_count_locked() + self._connecting

    def connections_idle(self) -> int:
        """Idle keep-alive connections kept for reuse."""
        with self._lock:
            return self._idle_count_locked()

    def _idle_count_locked(self) -> int:
        if not self._shared and not self._h3_shared:
            return self._idle_count
        shared = sum(
            1
            for table in (self._shared, self._h3_shared)
            for conns in table.values()
            for conn in conns
            if conn.is_idle()
        )
        return self._idle_count + shared

    @property
    def ssl_context(self) -> ssl.SSLContext:
        """The TLS context of ``https`` connections (built on first use),
        offering ``h2`` and/or ``http/1.1`` with ALPN.

        Raises:
            ConnectError: The CA bundle or client certificate cannot be
                loaded.
        """
        if self._ssl_context is None:
            alpn = (("h2",) if self._http2 else ()) + (("http/1.1",) if self._http1 else ())
            self._ssl_context = create_ssl_context(
                self._verify, self._cert, alpn_protocols=alpn, trust_env=self._trust_env
            )
        return self._ssl_context

    def _get_h1_ssl_context(self) -> ssl.SSLContext:
        """The TLS context that offers ``http/1.1`` alone with ALPN, for a
        WebSocket ``Upgrade`` to an origin that negotiates HTTP/2 without
        extended CONNECT.

        Raises:
            ConnectError: ``verify`` is a caller's :class:`ssl.SSLContext`
                (its ALPN list cannot be changed without changing it for
                every connection), or the CA bundle cannot be loaded.
        """
        if self._h1_ssl_context is None:
            if isinstance(self._verify, ssl.SSLContext):
                raise ConnectError(
                    "a WebSocket over HTTP/1.1 to an HTTP/2 origin needs a TLS context "
                    "offering only http/1.1 with ALPN, which cannot be derived from the "
                    "SSLContext given as verify=: pass a CA path, or use "
                    'extensions={"http_version": "HTTP/2"}, or a client with http2=False'
                )
            self._h1_ssl_context = create_ssl_context(
                self._verify, self._cert, alpn_protocols=("http/1.1",), trust_env=self._trust_env
            )
        return self._h1_ssl_context

    @property
    def proxy(self) -> Proxy | None:
        """The proxy every request goes through, or ``None``."""
        return self._proxy

    @property
    def alt_svc(self) -> AltSvcCache:
        """The Alt-Svc cache (RFC 7838) deciding which origins are tried
        over HTTP/3; see :class:`~webwire._transport.altsvc.AltSvcCache`."""
        return self._router().alt_svc

    def _router(self) -> H3Router:
        """The HTTP/3 router, made on first use when ``http3`` is off (a
        request asked for HTTP/3 with ``extensions["http_versions"]``)."""
        router = self._h3_any
        if router is None:
            from ._h3_route import H3Router

            with self._lock:
                router = self._h3_any
                if router is None:
                    router = self._h3_any = H3Router(
                        self, http1=self._http1, http2=self._http2, http3=False
                    )
        return router

    def _get_proxy_ssl_context(self) -> ssl.SSLContext:
        """The TLS context towards an ``https://`` proxy (HTTP/1.1 only)."""
        if self._proxy_ssl_context is None:
            self._proxy_ssl_context = create_ssl_context(
                self._verify, self._cert, alpn_protocols=("http/1.1",), trust_env=self._trust_env
            )
        return self._proxy_ssl_context

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
        extensions: dict[str, Any] | None = None,
        _tcp: bool = False,
        _h1_only: bool = False,
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
            extensions: Per-request transport options (see
                :class:`TransportRequest`). ``"protocol"`` (``"websocket"``)
                asks for a WebSocket (RFC 6455, RFC 8441), over the HTTP
                version ``"http_version"`` says: ``"auto"`` (the default)
                uses the origin's HTTP/2 connection when its server enabled
                extended CONNECT (``SETTINGS_ENABLE_CONNECT_PROTOCOL``,
                RFC 8441 section 3) and HTTP/1.1 otherwise; ``"HTTP/1.1"``
                or ``"HTTP/2"`` force one. Send it as the HTTP/1.1
                ``Upgrade`` GET (``Upgrade``, ``Connection``,
                ``Sec-WebSocket-Key``, ``Sec-WebSocket-Version``...): over
                HTTP/2 it is rewritten into the extended CONNECT (``:protocol
                websocket``, RFC 8441 section 5; ``Upgrade``, ``Connection``
                and ``Sec-WebSocket-Key`` dropped, the other fields kept). A
                ``CONNECT`` with ``"protocol"`` is sent as it is, over
                HTTP/2 only. ``RawResponse.http_version`` says which version
                carried it; a ``101`` (HTTP/1.1) or ``2xx`` (HTTP/2) answer
                has ``extensions["detach"]``. ``"http_versions"`` (a set of
                ``"HTTP/1.1"``, ``"HTTP/2"``, ``"HTTP/3"``) narrows the
                versions this request may use (see
                :mod:`webwire._transport._h3_route`).
            _tcp: Send over TCP, the HTTP/3 choice being made (internal).
            _h1_only: Over TCP, on an HTTP/1.1 connection (internal).

        Returns:
            The response; reading its stream to the end (or closing it)
            gives its connection slot back.

        Raises:
            PoolTimeout: No connection became free within ``timeout.pool``.
            ConnectError, ConnectTimeout: The connection could not be opened.
            ReadTimeout, WriteTimeout, ReadError, WriteError,
            RemoteProtocolError, LocalProtocolError: The exchange failed.
            UnsupportedProtocol: The scheme is not http or https.
            LocalProtocolError: A WebSocket request asked for an HTTP
                version the client or server cannot use (HTTP/2 without
                extended CONNECT, HTTP/1.1 disabled, ...).
        """
        if extensions:
            if extensions.get("protocol") is not None:
                from ._ws_route import request_protocol

                return await request_protocol(
                    self, method, url, headers, body, timeout, deadline, extensions
                )
            if not _tcp and (self._h3 is not None or "http_versions" in extensions):
                return await self._router().request(
                    method, url, headers, body, timeout, deadline, extensions
                )
        origin = self._origin(url)
        if method == b"CONNECT":
            target = (url.raw_authority or "").encode("ascii")
        else:
            target = url.raw_path_qs.encode("ascii") or b"/"
        forwarded = self._forward_http and origin.scheme == "http" and method != b"CONNECT"
        if forwarded:
            target, headers = self._forwarded(url, target, headers)
        request = TransportRequest(
            method, url, target, headers, body, timeout, deadline, extensions or {}
        )
        response = await self._send_retrying(request, origin, h1_only=_h1_only)
        if forwarded and response.status_code == 407:
            await response.stream.aclose()
            raise ProxyError(
                f"the proxy {self._proxy.url} wants credentials: "  # type: ignore[union-attr]
                f"407 {response.reason_phrase.decode('latin-1', 'replace')}",
                status_code=407,
            )
        return response

    async def _send_retrying(
        self,
        request: TransportRequest,
        origin: Origin,
        conn: Connection | None = None,
        *,
        h1_only: bool = False,
        tunnel: bool = False,
    ) -> RawResponse:
        """Send ``request`` on ``conn`` (a slot reserved) or on a connection
        acquired for it, and once more on another connection when the first
        reports it did not process it (:class:`StaleConnection`) and the
        request may be replayed: a replayable body and an idempotent method
        (RFC 9110 section 9.2.2), or any method when the server guaranteed
        it did nothing."""
        retried = False
        while True:
            if conn is None:
                trace: TraceHook | None = request.extensions.get("trace")
                conn = await self._acquire(
                    origin, request.timeout, request.deadline, trace, h1_only=h1_only, tunnel=tunnel
                )
            try:
                return await conn.handle_request(request)
            except StaleConnection as stale:
                if retried or not may_resend(request, stale):
                    raise stale.error from stale.error.__cause__
                retried = True
                conn = None

    def _origin(self, url: yarl.URL) -> Origin:
        """The origin of ``url``, from a bounded cache (parsing it is the
        costly part of a request's bookkeeping)."""
        key = (url.scheme, url.raw_host, url.explicit_port)
        origin = self._origin_cache.get(key)
        if origin is None:
            origin = origin_of(url.scheme, url.raw_host, url.explicit_port)
            if len(self._origin_cache) < 1024:
                self._origin_cache[key] = origin
        return origin

    def _forwarded(
        self, url: yarl.URL, target: bytes, headers: list[tuple[bytes, bytes]]
    ) -> tuple[bytes, list[tuple[bytes, bytes]]]:
        """The absolute-form target (RFC 9112 section 3.2.2) and the header
        fields of a request forwarded by the HTTP proxy."""
        assert self._proxy is not None
        host = url.raw_host or ""
        if ":" in host:
            host = f"[{host}]"
        port = url.explicit_port
        authority = host if port is None else f"{host}:{port}"
        absolute = f"{url.scheme}://{authority}".encode("ascii")
        return absolute + target, [*headers, *self._proxy.fields]

    async def _acquire(
        self,
        origin: Origin,
        timeout: Timeout,
        deadline: float | None,
        trace: TraceHook | None = None,
        *,
        h1_only: bool = False,
        tunnel: bool = False,
    ) -> Connection:
        """A connection with a stream slot reserved for one request; the
        steps are reported to ``trace`` (see :data:`TraceHook`). With
        ``h1_only``, an HTTP/1.1 connection (a new one is opened with ALPN
        ``http/1.1`` alone). With ``tunnel`` (an ``http`` origin behind an
        HTTP proxy), a new single-use connection through a ``CONNECT``
        tunnel."""
        backend = self._backend
        wait_until: float | None = None
        while True:
            to_close: list[Connection] = []
            event: Event | None = None
            try:
                with self._lock:
                    taken = self._take_locked(origin, to_close, h1_only, tunnel)
                    if taken is None:
                        event = backend.create_event()
                        self._waiters.append(event)
            finally:
                for stale in to_close:
                    stale.close()
            if taken is _CONNECT:
                return await self._connect(origin, timeout, deadline, trace, h1_only, tunnel)
            if taken is not None:
                return await self._reused(taken, trace)  # type: ignore[arg-type]
            assert event is not None
            wait_until = await self._wait_for_slot(event, wait_until, timeout, deadline, trace)

    async def _reused(self, conn: Connection, trace: TraceHook | None) -> Connection:
        """``conn``, a slot reserved on it, once the reuse is traced (the
        slot is given back when the trace hook fails)."""
        if trace is not None:
            try:
                await trace("connection_reuseconn", {})
            except BaseException:
                self._cancel_reservation(conn)
                raise
        return conn

    async def _wait_for_slot(
        self,
        event: Event,
        wait_until: float | None,
        timeout: Timeout,
        deadline: float | None,
        trace: TraceHook | None,
    ) -> float | None:
        """Wait until ``event`` (registered in ``_waiters``) is set: a slot
        may have come free. The wait ends at ``wait_until`` (absolute
        ``backend.monotonic()`` time), set from ``timeout.pool`` and
        ``deadline`` on the first wait; the same value is returned for the
        next wait.

        Raises:
            PoolTimeout: Nothing came free in time.
        """
        now = self._backend.monotonic()
        if wait_until is None:
            pool_timeout = bound_timeout(timeout.pool, deadline, now)
            wait_until = None if pool_timeout is None else now + pool_timeout
        left = None if wait_until is None else max(0.0, wait_until - now)
        try:
            if trace is not None:
                await trace("connection_queued_start", {})
            woke = await event.wait(left)
            if woke and trace is not None:
                await trace("connection_queued_end", {})
        finally:
            with self._lock:
                if event in self._waiters:
                    self._waiters.remove(event)
        if not woke:
            raise PoolTimeout(
                f"no connection became free within {timeout.pool} s "
                f"(max_connections={self._limits.max_connections}, "
                f"max_connections_per_host={self._per_host})"
            )
        return wait_until

    def _cancel_reservation(self, conn: Connection) -> None:
        """Give back a slot reserved for a request that will not be sent
        (its trace hook failed)."""
        from .http1 import HTTP11Connection
        from .http2 import HTTP2Connection

        if isinstance(conn, HTTP11Connection):
            conn._release(reusable=False)
        elif isinstance(conn, HTTP2Connection) or conn.http_version == "HTTP/3":
            conn._release(None)  # type: ignore[attr-defined]
        else:  # pragma: no cover - every pooled connection is one of those
            conn.close()
            with self._lock:
                self._remove_locked(conn)
                self._wake_all_locked()

    def _take_locked(
        self,
        origin: Origin,
        to_close: list[Connection],
        h1_only: bool = False,
        tunnel: bool = False,
    ) -> object | None:
        """Reserve a slot on a connection to ``origin`` (returned), or a slot
        for a new connection (:data:`_CONNECT`), or ``None`` (wait).
        Expired idle connections met on the way go to ``to_close``. With
        ``h1_only``, HTTP/2 connections are passed over (and not waited
        for)."""
        if self._closed:
            raise ConnectError("the connection pool is closed")
        now = self._backend.monotonic()
        idle = None if tunnel else self._idle.get(origin)
        while idle:
            conn = idle.pop()
            self._idle_count -= 1
            if conn.has_expired(now):
                self._remove_locked(conn)
                to_close.append(conn)
                continue
            conn.reserve()
            return conn
        shared = None if h1_only else self._shared.get(origin)
        if shared:
            for conn in list(shared):
                if conn.is_idle() and conn.has_expired(now):
                    self._remove_locked(conn)
                    to_close.append(conn)
                elif conn.is_available():
                    conn.reserve()
                    return conn
        if not h1_only and self._pending_h2.get(origin):
            return None  # a connection that may carry HTTP/2 is on its way
        per_host = self._per_host
        if per_host is not None and self._host_counts.get(origin, 0) >= per_host:
            return None
        limit = self._limits.max_connections
        if limit is not None and len(self._all) + self._connecting >= limit:
            victim = self._oldest_idle_locked()
            if victim is None:
                return None
            self._remove_locked(victim)
            to_close.append(victim)
        self._connecting += 1
        if per_host is not None:
            self._host_counts[origin] = self._host_counts.get(origin, 0) + 1
        if not h1_only and self._may_multiplex(origin):
            self._pending_h2[origin] = self._pending_h2.get(origin, 0) + 1
        return _CONNECT

    def _may_multiplex(self, origin: Origin) -> bool:
        if self._forward_http and origin.scheme == "http":
            return False
        return self._http2 and (origin.scheme == "https" or not self._http1)

    def _oldest_idle_locked(self) -> Connection | None:
        oldest: Connection | None = None
        for conns in self._idle.values():
            if conns and (oldest is None or conns[0].idle_since < oldest.idle_since):
                oldest = conns[0]
        for table in (self._shared, self._h3_shared):
            for conns in table.values():
                for conn in conns:
                    if conn.is_idle() and (oldest is None or conn.idle_since < oldest.idle_since):
                        oldest = conn
        return oldest

    def _add_locked(self, conn: Connection) -> None:
        self._all.add(conn)
        if conn.multiplexed:
            table = self._h3_shared if conn.http_version == "HTTP/3" else self._shared
            table.setdefault(conn.origin, []).append(conn)

    def _remove_locked(self, conn: Connection) -> None:
        """Forget ``conn`` (wherever it is parked)."""
        if conn not in self._all:
            return
        self._all.remove(conn)
        origin = conn.origin
        if self._per_host is not None:
            self._host_gone_locked(origin)
        for table in (self._idle, self._shared, self._h3_shared):
            parked = table.get(origin)
            if parked is not None and conn in parked:
                parked.remove(conn)
                if table is self._idle:
                    self._idle_count -= 1
                if not parked:
                    del table[origin]

    def _host_gone_locked(self, origin: Origin) -> None:
        """One connection to ``origin`` closed or failed to open."""
        left = self._host_counts.get(origin, 1) - 1
        if left > 0:
            self._host_counts[origin] = left
        else:
            self._host_counts.pop(origin, None)

    def _wake_all_locked(self) -> None:
        waiters, self._waiters = self._waiters, []
        for event in waiters:
            event.set()

    async def _connect(
        self,
        origin: Origin,
        timeout: Timeout,
        deadline: float | None,
        trace: TraceHook | None = None,
        h1_only: bool = False,
        tunnel: bool = False,
    ) -> Connection:
        """Open a connection on a reserved slot; its first stream slot is
        reserved for the caller. With ``h1_only``, an HTTP/1.1 connection
        (ALPN ``http/1.1`` alone over TLS); with ``tunnel``, through a
        ``CONNECT`` tunnel of the HTTP proxy even to an ``http`` origin,
        closed after its one request."""
        multiplex = not h1_only and self._may_multiplex(origin)
        try:
            if trace is not None:
                await trace("connection_create_start", {})
            if origin.scheme != "https":
                ssl_context = None
            elif h1_only:
                ssl_context = self._get_h1_ssl_context()
            else:
                ssl_context = self.ssl_context
            if self._proxy is None and self._uds is None:
                stream = await open_stream(
                    self._backend,
                    origin,
                    ssl_context=ssl_context,
                    connect_timeout=timeout.connect,
                    deadline=deadline,
                    local_address=self._local_address,
                    dns=self._dns,
                    trace=trace,
                )
            else:
                stream = await self._open_routed(
                    origin, timeout, deadline, trace, ssl_context, tunnel
                )
            try:
                conn = self._new_connection(origin, stream, h1_only, tunnel)
            except BaseException:
                stream.abort()
                raise
        except BaseException:
            with self._lock:
                self._connect_done_locked(origin, multiplex)
                if self._per_host is not None:
                    self._host_gone_locked(origin)
                self._wake_all_locked()
            raise
        with self._lock:
            self._connect_done_locked(origin, multiplex)
            closed = self._closed
            if not closed:
                self._add_locked(conn)
                conn.reserve()
            self._wake_all_locked()
        if closed:
            conn.close()
            raise ConnectError("the connection pool was closed while connecting")
        if trace is not None:
            try:
                await trace("connection_create_end", {})
            except BaseException:
                self._cancel_reservation(conn)
                raise
        return conn

    async def _open_routed(
        self,
        origin: Origin,
        timeout: Timeout,
        deadline: float | None,
        trace: TraceHook | None,
        ssl_context: ssl.SSLContext | None = None,
        tunnel: bool = False,
    ) -> Any:
        """A stream to ``origin`` through the proxy or the Unix socket (TLS
        with the origin on top for ``https``, with ``ssl_context``), or to
        the HTTP proxy itself for forwarded requests (unless ``tunnel``)."""
        backend = self._backend
        proxy = self._proxy
        if proxy is not None and self._forward_http and origin.scheme == "http" and not tunnel:
            return await open_stream(
                backend,
                proxy.origin,
                ssl_context=self._get_proxy_ssl_context()
                if proxy.origin.scheme == "https"
                else None,
                connect_timeout=timeout.connect,
                deadline=deadline,
                local_address=self._local_address,
                dns=self._dns,
                trace=trace,
            )
        if proxy is not None:
            from .proxy import open_tunnel

            https_proxy = proxy.origin.scheme == "https"
            stream = await open_tunnel(
                backend,
                proxy,
                origin,
                proxy_ssl_context=self._get_proxy_ssl_context() if https_proxy else None,
                timeout=timeout,
                deadline=deadline,
                limits=self._limits,
                local_address=self._local_address,
                dns=self._dns,
                trace=trace,
            )
        else:
            assert self._uds is not None
            stream = await backend.connect_unix(
                self._uds, timeout=bound_timeout(timeout.connect, deadline, backend.monotonic())
            )
        if origin.scheme != "https":
            return stream
        try:
            return await stream.start_tls(
                ssl_context or self.ssl_context,
                origin.host,
                bound_timeout(timeout.connect, deadline, backend.monotonic()),
            )
        except BaseException:
            stream.abort()
            raise

    def _connect_done_locked(self, origin: Origin, multiplex: bool) -> None:
        self._connecting -= 1
        if multiplex:
            left = self._pending_h2.get(origin, 1) - 1
            if left:
                self._pending_h2[origin] = left
            else:
                self._pending_h2.pop(origin, None)

    def _new_connection(
        self, origin: Origin, stream: Any, h1_only: bool = False, single_use: bool = False
    ) -> Connection:
        """The connection object for a freshly opened ``stream`` (HTTP/1.1
        whatever ALPN said with ``h1_only``; closed after its first request
        with ``single_use``).

        Raises:
            ConnectError: TLS negotiated no HTTP version this client speaks.
        """
        if single_use:
            from .http1 import HTTP11Connection

            return HTTP11Connection(
                origin, stream, self._backend, limits=self._limits, on_release=self._release_once
            )
        if h1_only or (self._forward_http and origin.scheme == "http"):
            use_h2 = False
        elif origin.scheme == "https":
            alpn = stream.get_extra_info("alpn_protocol")
            use_h2 = alpn == "h2" and self._http2
            if not use_h2 and not self._http1:
                raise ConnectError(
                    f"{origin} did not negotiate HTTP/2 with ALPN (got {alpn!r}) and "
                    "HTTP/1.1 is disabled (http1=False)"
                )
        else:
            use_h2 = self._http2 and not self._http1
        if use_h2:
            from .http2 import HTTP2Connection

            return HTTP2Connection(
                origin, stream, self._backend, limits=self._limits, on_release=self._release
            )
        from .http1 import HTTP11Connection

        return HTTP11Connection(
            origin, stream, self._backend, limits=self._limits, on_release=self._release
        )

    def _release(self, conn: Connection) -> None:
        """Called by a connection when one of its requests ended
        (synchronous): park, keep or close it, and wake waiters."""
        close = False
        with self._lock:
            if conn.is_idle():
                in_pool = conn in self._all
                if not in_pool or self._closed or conn.has_expired(self._backend.monotonic()):
                    close = True
                else:
                    keep = self._limits.max_keepalive_connections
                    idle = self._idle_count_locked()
                    if conn.multiplexed:
                        close = keep is not None and idle > keep
                    elif keep is not None and idle >= keep:
                        close = True
                    else:
                        self._idle.setdefault(conn.origin, []).append(conn)
                        self._idle_count += 1
                if close:
                    self._remove_locked(conn)
            if self._waiters:
                self._wake_all_locked()
        if close:
            conn.close()

    def _release_once(self, conn: Connection) -> None:
        """``_release`` of a single-use connection: it leaves the pool."""
        with self._lock:
            self._remove_locked(conn)
            if self._waiters:
                self._wake_all_locked()
        conn.close()

    async def aclose(self) -> None:
        """Close every idle connection and refuse new requests. Connections
        in use are closed when their last request ends."""
        with self._lock:
            self._closed = True
            idle = [conn for conn in self._all if conn.is_idle()]
            for conn in idle:
                self._remove_locked(conn)
            self._wake_all_locked()
        for conn in idle:
            await conn.aclose()
