"""HTTP/3 routing of the connection pool: whether a request goes over QUIC
(RFC 9114) or TCP, and the pooling of HTTP/3 connections.

The choice per request, for an ``https`` origin with no proxy and no Unix
socket:

* HTTP/3 forced (client ``http_versions={"HTTP/3"}``, or a request's
  ``extensions={"http_versions": {"HTTP/3"}}``): HTTP/3 on the URL's own
  host and port; a failure to connect raises
  (:class:`~webwire.ConnectError`, :class:`~webwire.ConnectTimeout`).
* HTTP/3 allowed (``http3=True``, or ``"HTTP/3"`` among other versions): an
  HTTP/3 connection of the origin already open is used; otherwise a fresh
  ``h3`` alternative of the :class:`~webwire._transport.altsvc.AltSvcCache`
  (RFC 7838: from an earlier response's ``Alt-Svc`` field, or added by
  hand) is connected to. When that connection fails with
  :class:`~webwire.ConnectError` or :class:`~webwire.ConnectTimeout` (UDP
  blocked, nobody listening), the request goes over TCP and the alternative
  is left alone for 5 minutes, doubling after each failure in a row
  (RFC 7838 section 2.4).
* Otherwise: TCP (HTTP/1.1 or HTTP/2, ALPN decides).

Responses of ``https`` origins are checked for ``Alt-Svc`` when HTTP/3 is
allowed (one look through the header fields). HTTP/3 connections are kept
in the pool's own table per origin, never mixed with the TCP connections of
that origin; they count towards ``Limits.max_connections`` and
``max_connections_per_host`` like any other.

WebSocket (RFC 9220): with ``http_version`` ``"auto"`` a WebSocket goes
over HTTP/3 when HTTP/3 is on and the origin's HTTP/3 connection enabled
extended CONNECT (``SETTINGS_ENABLE_CONNECT_PROTOCOL``); ``"HTTP/3"``
forces it.
"""

from __future__ import annotations

import importlib.util
import weakref
from collections.abc import AsyncIterable, Awaitable, Callable, Collection
from typing import TYPE_CHECKING, Any

import yarl

from webwire._backends import init_lock
from webwire._exceptions import (
    ConnectError,
    ConnectTimeout,
    LocalProtocolError,
    UnsupportedProtocol,
)

from ._types import (
    Connection,
    RawResponse,
    StaleConnection,
    TraceHook,
    TransportRequest,
    bound_timeout,
    may_resend,
)
from ._ws_route import extended_connect
from .altsvc import AltService, AltSvcCache
from .connect import _NO_CACHE, Origin, _is_ip

if TYPE_CHECKING:
    from webwire._backends.base import Backend, Event
    from webwire._config import Timeout

    from .pool import ConnectionPool

__all__ = [
    "HTTP_VERSION_NAMES",
    "H3Router",
    "check_http_versions",
    "load_engine",
    "require_qh3",
    "resolve_versions",
]

HTTP_VERSION_NAMES = ("HTTP/1.1", "HTTP/2", "HTTP/3")
"""The names ``http_versions`` accepts."""

_H3_ONLY = frozenset({"HTTP/3"})

_CONNECT = object()
"""A slot for a new HTTP/3 connection is reserved."""

_UNAVAILABLE = object()
"""No HTTP/3 connection is open or may be opened: use TCP."""

Connector = Callable[..., Awaitable[Connection]]
"""``connect_http3(backend, origin, *, address, server_name, tls, limits,
connect_timeout, tickets, on_release)`` of :mod:`webwire._transport.http3`."""


def require_qh3() -> None:
    """Check that the QUIC engine can be imported, without importing it.

    Raises:
        ImportError: ``qh3`` (one of webwire's dependencies) is missing.
    """
    if importlib.util.find_spec("qh3") is None:
        raise ImportError(
            "HTTP/3 needs the qh3 package, a dependency of webwire that is missing "
            "from this environment: pip install qh3"
        )


def load_engine() -> tuple[Connector, Callable[..., Any], Callable[[Backend], Any]]:
    """``(connect_http3, quic_tls_options, SessionTicketStore)``: the
    HTTP/3 connection factory, the QUIC TLS options builder and the ticket
    store class (imported on first use).

    Raises:
        ImportError: ``qh3`` (one of webwire's dependencies) is missing.
    """
    require_qh3()
    from webwire._proto.h3 import quic_tls_options

    from .http3 import SessionTicketStore, connect_http3

    return connect_http3, quic_tls_options, SessionTicketStore


def check_http_versions(versions: object, what: str = "http_versions") -> frozenset[str]:
    """Validate a set of HTTP version names.

    Args:
        versions: A collection of ``"HTTP/1.1"``, ``"HTTP/2"``, ``"HTTP/3"``.
        what: How the value is named in error messages.

    Returns:
        The names as a frozenset.

    Raises:
        ValueError: ``versions`` is a string, empty, or holds another name.
    """
    if isinstance(versions, (str, bytes)) or not isinstance(versions, Collection):
        raise ValueError(
            f'{what} must be a collection such as {{"HTTP/2", "HTTP/3"}}, not {versions!r}'
        )
    names = frozenset(versions)
    unknown = sorted(str(v) for v in names if v not in HTTP_VERSION_NAMES)
    if unknown:
        raise ValueError(
            f"{what} may hold {', '.join(HTTP_VERSION_NAMES)}; unknown: {', '.join(unknown)}"
        )
    if not names:
        raise ValueError(f"{what} must name at least one HTTP version")
    return names


def resolve_versions(
    versions: Collection[str] | None, http1: bool, http2: bool, http3: bool
) -> tuple[bool, bool, bool]:
    """``(http1, http2, http3)`` of the client options.

    ``http_versions`` sets the three flags; flags changed from their
    defaults (``http1=False``, ``http2=False``, ``http3=True``) must agree
    with it.

    Raises:
        ValueError: ``versions`` is invalid, or contradicts a flag.
        ImportError: HTTP/3 is on but ``qh3`` is missing.
    """
    if versions is not None:
        names = check_http_versions(versions)
        wanted = ("HTTP/1.1" in names, "HTTP/2" in names, "HTTP/3" in names)
        for flag, default, name, want in (
            ("http1", True, "HTTP/1.1", wanted[0]),
            ("http2", True, "HTTP/2", wanted[1]),
            ("http3", False, "HTTP/3", wanted[2]),
        ):
            given = {"http1": http1, "http2": http2, "http3": http3}[flag]
            if given != default and given != want:
                raise ValueError(
                    f"{flag}={given} contradicts http_versions={sorted(names)} "
                    f"({name} {'in' if want else 'not in'} it): pass one or the other"
                )
        http1, http2, http3 = wanted
    if http3:
        require_qh3()
    return http1, http2, http3


class H3Router:
    """The HTTP/3 side of a :class:`~webwire._transport.pool.ConnectionPool`
    (see the module docstring for the choice it makes).

    Args:
        pool: The pool whose limits, lock, waiters, DNS cache and TCP path
            are used.
        http1, http2: The TCP versions the pool speaks.
        http3: HTTP/3 is on for every request (``http3=True``); off, only
            requests whose ``extensions["http_versions"]`` name HTTP/3 use
            it.

    Attributes:
        alt_svc: The Alt-Svc cache (the pool's, or a new one), on the
            backend's clock.
    """

    def __init__(self, pool: ConnectionPool, *, http1: bool, http2: bool, http3: bool) -> None:
        self._pool = pool
        backend = pool._backend
        self._backend = backend
        alt_svc = pool._alt_svc
        if alt_svc is None:
            alt_svc = pool._alt_svc = AltSvcCache()
        alt_svc._bind_clock(backend.monotonic)
        self.alt_svc = alt_svc
        tcp = frozenset(
            name for name, on in (("HTTP/1.1", http1), ("HTTP/2", http2)) if on
        )
        self._default_versions = tcp | _H3_ONLY if http3 else tcp
        self._tcp_versions = tcp
        # HTTP/3 cannot go through an HTTP proxy or a Unix socket.
        self._routable = pool._proxy is None and pool._uds is None
        self._pending: dict[Origin, int] = {}
        self._engine: tuple[Connector, Any, Any] | None = None
        self._engine_lock = init_lock()
        # Seconds each HTTP/3 connection took to connect (QUIC handshake).
        self._handshake_times: weakref.WeakKeyDictionary[Connection, float] = (
            weakref.WeakKeyDictionary()
        )

    # -- the engine ------------------------------------------------------------

    def _connector(self) -> tuple[Connector, Any, Any]:
        """``(connect_http3, tls, tickets)``: the TLS options are built once
        and a ticket store kept per pool.

        Raises:
            ConnectError: The CA bundle or client certificate cannot be
                loaded.
        """
        engine = self._engine
        if engine is None:
            # Threads of a blocking client may get here together: one builds.
            with self._engine_lock:
                engine = self._engine
                if engine is None:
                    connect, tls_options, ticket_store = load_engine()
                    pool = self._pool
                    tls = tls_options(pool._verify, pool._cert, pool._trust_env)
                    engine = self._engine = (connect, tls, ticket_store(self._backend))
        return engine

    # -- choosing --------------------------------------------------------------

    def _versions(self, extensions: dict[str, Any]) -> frozenset[str]:
        """The versions a request may use: its ``http_versions`` extension,
        else the client's.

        Raises:
            LocalProtocolError: The extension is invalid, or names only TCP
                versions the client does not speak.
        """
        asked = extensions.get("http_versions")
        if asked is None:
            return self._default_versions
        try:
            names = check_http_versions(asked, 'extensions["http_versions"]')
        except ValueError as exc:
            raise LocalProtocolError(str(exc)) from None
        if "HTTP/3" not in names and not names & self._tcp_versions:
            raise LocalProtocolError(
                f'extensions["http_versions"]={sorted(names)} names no version this client '
                f"speaks over TCP ({', '.join(sorted(self._tcp_versions)) or 'none'})"
            )
        return names

    def _check_forced(self, origin: Origin) -> None:
        """Raise when forced HTTP/3 cannot be used for ``origin``.

        Raises:
            UnsupportedProtocol: The origin is ``http`` (HTTP/3 is for
                ``https``, RFC 9114 section 3.1), or the client goes
                through a proxy or a Unix socket.
        """
        if origin.scheme != "https":
            raise UnsupportedProtocol(
                f"HTTP/3 needs an https URL (RFC 9114 section 3.1), not {origin}"
            )
        if not self._routable:
            raise UnsupportedProtocol(
                "HTTP/3 (QUIC over UDP) cannot go through the client's proxy or Unix socket"
            )

    async def request(
        self,
        method: bytes,
        url: yarl.URL,
        headers: list[tuple[bytes, bytes]],
        body: bytes | AsyncIterable[bytes] | None,
        timeout: Timeout,
        deadline: float | None,
        extensions: dict[str, Any],
    ) -> RawResponse:
        """Send a request over HTTP/3 or TCP, as the module docstring says.

        Raises:
            LocalProtocolError: ``extensions["http_versions"]`` is invalid,
                or only HTTP/2 was allowed and the server chose HTTP/1.1.
            UnsupportedProtocol: HTTP/3 is forced for an ``http`` URL or
                through a proxy.
            ConnectError, ConnectTimeout: Forced HTTP/3 could not connect,
                or the TCP connection failed.
            TransportError: As for :meth:`ConnectionPool.request`.
        """
        pool = self._pool
        versions = self._versions(extensions)
        origin = pool._origin(url)
        https = origin.scheme == "https"
        if "HTTP/3" in versions:
            forced = versions == _H3_ONLY
            if forced:
                self._check_forced(origin)
            if https and self._routable:
                response = await self._try_h3(
                    origin, method, url, headers, body, timeout, deadline, extensions, forced
                )
                if response is not None:
                    self._record(origin, response.headers)
                    return response
        tcp = versions & self._tcp_versions
        if not tcp:
            raise LocalProtocolError(
                f"none of {sorted(versions)} can carry this request over TCP "
                f"(the client speaks {', '.join(sorted(self._tcp_versions)) or 'no TCP version'})"
            )
        ext = extensions
        if "http_versions" in ext:
            ext = {k: v for k, v in ext.items() if k != "http_versions"}
        h1_only = tcp == {"HTTP/1.1"} and pool._http2 and pool._may_multiplex(origin)
        response = await pool.request(
            method,
            url,
            headers,
            body,
            timeout=timeout,
            deadline=deadline,
            extensions=ext,
            _tcp=True,
            _h1_only=h1_only,
        )
        if tcp == {"HTTP/2"} and response.http_version != "HTTP/2":
            await response.stream.aclose()
            raise LocalProtocolError(
                f"{origin} answered over {response.http_version}, and the request allowed "
                'only HTTP/2 (extensions["http_versions"])'
            )
        if https and self._routable and "HTTP/3" in versions:
            self._record(origin, response.headers)
        return response

    def _record(self, origin: Origin, headers: list[tuple[bytes, bytes]]) -> None:
        """Take the ``Alt-Svc`` fields of a response from ``origin`` (RFC
        7838 section 3; several field lines are one comma-separated list)."""
        value: bytes | None = None
        for name, field_value in headers:
            if len(name) == 7 and name.lower() == b"alt-svc":
                value = field_value if value is None else value + b", " + field_value
        if value is not None:
            self.alt_svc.update(origin, value)

    async def _try_h3(
        self,
        origin: Origin,
        method: bytes,
        url: yarl.URL,
        headers: list[tuple[bytes, bytes]],
        body: bytes | AsyncIterable[bytes] | None,
        timeout: Timeout,
        deadline: float | None,
        extensions: dict[str, Any],
        forced: bool,
    ) -> RawResponse | None:
        """The response over HTTP/3, or ``None`` to go over TCP (no usable
        alternative, or connecting failed and HTTP/3 is not forced)."""
        trace: TraceHook | None = extensions.get("trace")
        conn = await self._acquire(origin, timeout, deadline, trace, forced)
        if conn is None:
            return None
        target = (url.raw_path_qs.encode("ascii") or b"/") if method != b"CONNECT" else (
            (url.raw_authority or "").encode("ascii")
        )
        ext = extensions
        if "http_versions" in ext:
            ext = {k: v for k, v in ext.items() if k != "http_versions"}
        request = TransportRequest(method, url, target, headers, body, timeout, deadline, ext)
        retried = False
        while True:
            try:
                response = await conn.handle_request(request)
            except StaleConnection as stale:
                if retried or not may_resend(request, stale):
                    raise stale.error from stale.error.__cause__
                retried = True
                conn = await self._acquire(origin, timeout, deadline, trace, forced)
                if conn is None:
                    return None
                continue
            self._add_handshake_time(conn, response)
            return response

    def _add_handshake_time(self, conn: Connection, response: RawResponse) -> None:
        """``response.extensions["quic_handshake_time"]``: seconds the QUIC
        handshake of its connection took (connect to handshake done)."""
        elapsed = self._handshake_times.get(conn)
        if elapsed is not None:
            response.extensions.setdefault("quic_handshake_time", elapsed)

    # -- pooling -----------------------------------------------------------------

    async def _acquire(
        self,
        origin: Origin,
        timeout: Timeout,
        deadline: float | None,
        trace: TraceHook | None,
        forced: bool,
    ) -> Connection | None:
        """An HTTP/3 connection to ``origin`` with a stream slot reserved,
        or ``None`` (use TCP: no alternative, or connecting failed and
        HTTP/3 is not forced).

        Raises:
            PoolTimeout: No slot became free within ``timeout.pool``.
            ConnectError, ConnectTimeout: Forced HTTP/3 could not connect.
        """
        pool = self._pool
        backend = self._backend
        wait_until: float | None = None
        while True:
            alt: AltService | None = None
            if not forced:
                alt = self.alt_svc.lookup(origin)
            to_close: list[Connection] = []
            event: Event | None = None
            try:
                with pool._lock:
                    taken = self._take_locked(origin, to_close, forced or alt is not None)
                    if taken is None:
                        event = backend.create_event()
                        pool._waiters.append(event)
            finally:
                for stale in to_close:
                    stale.close()
            if taken is _UNAVAILABLE:
                return None
            if taken is _CONNECT:
                try:
                    return await self._connect(origin, alt, timeout, deadline, trace)
                except (ConnectError, ConnectTimeout):
                    if forced:
                        raise
                    self.alt_svc.mark_broken(origin, alt)
                    return None
            if taken is not None:
                return await pool._reused(taken, trace)  # type: ignore[arg-type]
            assert event is not None
            wait_until = await pool._wait_for_slot(event, wait_until, timeout, deadline, trace)

    def _take_locked(
        self, origin: Origin, to_close: list[Connection], may_connect: bool
    ) -> object | None:
        """A reserved slot on an HTTP/3 connection to ``origin``,
        :data:`_CONNECT` (a new connection may be opened), ``None`` (wait)
        or :data:`_UNAVAILABLE` (none open and ``may_connect`` is off)."""
        pool = self._pool
        if pool._closed:
            raise ConnectError("the connection pool is closed")
        shared = pool._h3_shared.get(origin)
        if shared:
            now = self._backend.monotonic()
            for conn in list(shared):
                if conn.is_idle() and conn.has_expired(now):
                    pool._remove_locked(conn)
                    to_close.append(conn)
                elif conn.is_available():
                    conn.reserve()
                    return conn
        if self._pending.get(origin):
            return None  # an HTTP/3 connection is on its way
        if not may_connect:
            return _UNAVAILABLE
        per_host = pool._per_host
        if per_host is not None and pool._host_counts.get(origin, 0) >= per_host:
            return None
        limit = pool._limits.max_connections
        if limit is not None and len(pool._all) + pool._connecting >= limit:
            victim = pool._oldest_idle_locked()
            if victim is None:
                return None
            pool._remove_locked(victim)
            to_close.append(victim)
        pool._connecting += 1
        if per_host is not None:
            pool._host_counts[origin] = pool._host_counts.get(origin, 0) + 1
        self._pending[origin] = self._pending.get(origin, 0) + 1
        return _CONNECT

    def _connect_done_locked(self, origin: Origin) -> None:
        self._pool._connecting -= 1
        left = self._pending.get(origin, 1) - 1
        if left:
            self._pending[origin] = left
        else:
            self._pending.pop(origin, None)

    async def _connect(
        self,
        origin: Origin,
        alt: AltService | None,
        timeout: Timeout,
        deadline: float | None,
        trace: TraceHook | None,
    ) -> Connection:
        """Open an HTTP/3 connection on a reserved slot, to ``alt`` (or the
        origin's own host and UDP port); its first stream slot is reserved
        for the caller.

        Raises:
            ConnectError, ConnectTimeout: DNS or the QUIC handshake failed.
        """
        pool = self._pool
        backend = self._backend
        try:
            if trace is not None:
                await trace("connection_create_start", {})
            host = origin.host if alt is None or alt.host is None else alt.host
            port = origin.port if alt is None else alt.port
            connect, tls, tickets = self._connector()
            now = backend.monotonic()
            connect_timeout = bound_timeout(timeout.connect, deadline, now)
            addresses = await self._resolve(host, port, connect_timeout, trace)
            for index, ip in enumerate(addresses):
                started = backend.monotonic()
                left = connect_timeout
                if left is not None:
                    left = max(0.0, left - (started - now))
                try:
                    conn = await connect(
                        backend,
                        origin,
                        address=(ip, port),
                        server_name=origin.host,
                        tls=tls,
                        limits=pool._limits,
                        connect_timeout=left,
                        tickets=tickets,
                        on_release=pool._release,
                    )
                    break
                except ConnectError as exc:
                    # Refused at once (ICMP unreachable): the next address,
                    # if any (a certificate failure is final).
                    last = index == len(addresses) - 1
                    if last or "certificate" in str(exc):
                        if pool._dns is not None and ip != host:
                            pool._dns.forget(host, port)
                        raise
        except BaseException:
            with pool._lock:
                self._connect_done_locked(origin)
                if pool._per_host is not None:
                    pool._host_gone_locked(origin)
                pool._wake_all_locked()
            raise
        self.alt_svc.mark_working(origin, alt)
        with pool._lock:
            self._handshake_times[conn] = backend.monotonic() - started
            self._connect_done_locked(origin)
            closed = pool._closed
            if not closed:
                pool._add_locked(conn)
                conn.reserve()
            pool._wake_all_locked()
        if closed:
            conn.close()
            raise ConnectError("the connection pool was closed while connecting")
        if trace is not None:
            try:
                await trace("connection_create_end", {})
            except BaseException:
                pool._cancel_reservation(conn)
                raise
        return conn

    async def _resolve(
        self, host: str, port: int, timeout: float | None, trace: TraceHook | None
    ) -> list[str]:
        """The IP addresses to try for ``host`` (through the pool's DNS
        cache), in the resolver's order: the first address of each family
        (an address refused at once is followed by one of the other
        family, as RFC 8305 does for TCP; a silent one is not waited out
        twice).

        Raises:
            ConnectError, ConnectTimeout: Resolution failed or found nothing.
        """
        if _is_ip(host):
            return [host]
        cache = self._pool._dns or _NO_CACHE
        addresses = await cache.resolve(self._backend, host, port, timeout, trace)
        chosen: dict[int, str] = {}
        for family, ip in addresses:
            chosen.setdefault(family, ip)
        if not chosen:
            raise ConnectError(f"cannot connect to {host}:{port}: no address found")
        return list(chosen.values())

    # -- WebSocket (RFC 9220) ----------------------------------------------------

    async def request_protocol(
        self,
        method: bytes,
        url: yarl.URL,
        headers: list[tuple[bytes, bytes]],
        timeout: Timeout,
        deadline: float | None,
        extensions: dict[str, Any],
        protocol: str,
        version: str,
    ) -> RawResponse | None:
        """A WebSocket (or other ``protocol``) as an extended CONNECT over
        HTTP/3 (RFC 9220), or ``None`` to use HTTP/2 or HTTP/1.1.

        ``version`` ``"HTTP/3"`` forces HTTP/3 (as does a client made with
        ``http_versions={"HTTP/3"}``); ``"auto"`` uses it when the origin's
        HTTP/3 connection (open, or opened for a fresh Alt-Svc entry)
        enabled extended CONNECT.

        Raises:
            LocalProtocolError: HTTP/3 is forced and the server did not
                enable extended CONNECT (RFC 9220 section 3).
            UnsupportedProtocol: HTTP/3 is forced for a ``ws://`` URL or
                through a proxy.
            ConnectError, ConnectTimeout: Forced HTTP/3 could not connect.
        """
        pool = self._pool
        origin = pool._origin(url)
        forced = version == "HTTP/3" or self._default_versions == _H3_ONLY
        if forced:
            self._check_forced(origin)
        elif origin.scheme != "https" or not self._routable:
            return None
        trace: TraceHook | None = extensions.get("trace")
        conn = await self._acquire(origin, timeout, deadline, trace, forced)
        if conn is None:
            return None
        try:
            enabled = await _extended_connect_enabled(conn, timeout, deadline)
        except BaseException:
            pool._cancel_reservation(conn)
            raise
        if not enabled:
            pool._cancel_reservation(conn)
            if forced:
                raise LocalProtocolError(
                    f"{origin} did not enable extended CONNECT over HTTP/3 (no "
                    "SETTINGS_ENABLE_CONNECT_PROTOCOL=1, RFC 9220 section 3): "
                    f"cannot open a {protocol} stream over HTTP/3"
                )
            return None
        if method == b"CONNECT":
            target = url.raw_path_qs.encode("ascii") or b"/"
            ext = {k: v for k, v in extensions.items() if k != "http_version"}
            request = TransportRequest(
                b"CONNECT", url, target, headers, None, timeout, deadline, ext
            )
        else:
            request = extended_connect(url, headers, timeout, deadline, extensions, protocol)
        try:
            response = await conn.handle_request(request)
        except StaleConnection as stale:
            raise stale.error from stale.error.__cause__
        self._add_handshake_time(conn, response)
        return response


async def _extended_connect_enabled(
    conn: Connection, timeout: Timeout, deadline: float | None
) -> bool:
    """Whether ``conn`` (HTTP/3) may carry extended CONNECT (RFC 9220
    section 3), waiting for the server's SETTINGS frame (RFC 9114 section
    7.2.4) when the connection offers to (``connect_protocol_enabled``).

    Raises:
        ReadTimeout, ReadError, RemoteProtocolError: No SETTINGS came.
    """
    wait = getattr(conn, "connect_protocol_enabled", None)
    if wait is not None:
        return bool(await wait(timeout, deadline))
    return bool(getattr(conn, "supports_extended_connect", False))
