"""WebSocket requests of the connection pool: over which HTTP version a
request with ``extensions["protocol"]`` goes, and how it is sent there.

* HTTP/1.1 (RFC 6455 section 4.1): the ``Upgrade`` GET on an HTTP/1.1
  connection; one opened with ALPN ``http/1.1`` alone when the origin's
  usual connection is HTTP/2 without extended CONNECT, or a ``CONNECT``
  tunnel of its own behind an HTTP proxy (which would not upgrade a
  forwarded request).
* HTTP/2 (RFC 8441): the extended CONNECT on a stream of the origin's
  HTTP/2 connection once its server enabled it
  (``SETTINGS_ENABLE_CONNECT_PROTOCOL``).
* HTTP/3 (RFC 9220): handed to the HTTP/3 router
  (:mod:`webwire._transport._h3_route`).
"""

from __future__ import annotations

from collections.abc import AsyncIterable
from typing import TYPE_CHECKING, Any

import yarl

from webwire._config import Timeout
from webwire._exceptions import LocalProtocolError

from ._types import Connection, RawResponse, StaleConnection, TraceHook, TransportRequest
from .connect import Origin

if TYPE_CHECKING:
    from .pool import ConnectionPool

__all__ = ["HTTP_VERSIONS", "extended_connect", "request_protocol"]

_WS_DROPPED = frozenset(
    {b"upgrade", b"connection", b"sec-websocket-key", b"keep-alive", b"proxy-connection"}
)
"""Fields of a WebSocket ``Upgrade`` GET that its extended CONNECT does not
carry (RFC 8441 section 5: no ``Sec-WebSocket-Key``, no ``Upgrade``)."""

HTTP_VERSIONS = ("auto", "HTTP/1.1", "HTTP/2", "HTTP/3")
"""Values of ``extensions["http_version"]`` for a WebSocket request."""


async def request_protocol(
    pool: ConnectionPool,
    method: bytes,
    url: yarl.URL,
    headers: list[tuple[bytes, bytes]],
    body: bytes | AsyncIterable[bytes] | None,
    timeout: Timeout,
    deadline: float | None,
    extensions: dict[str, Any],
) -> RawResponse:
    """A request with ``extensions["protocol"]``: a WebSocket over the
    HTTP version chosen by ``extensions["http_version"]`` (see
    :meth:`ConnectionPool.request`)."""
    protocol = extensions["protocol"]
    if not isinstance(protocol, str) or not protocol:
        raise LocalProtocolError(f'extensions["protocol"] must be a string, not {protocol!r}')
    version = extensions.get("http_version", "auto")
    if version not in HTTP_VERSIONS:
        raise LocalProtocolError(
            f'extensions["http_version"] must be one of {", ".join(HTTP_VERSIONS)}, '
            f"not {version!r}"
        )
    if body is not None and not (isinstance(body, bytes) and not body):
        raise LocalProtocolError(f"a {protocol} request has no content")
    origin = pool._origin(url)
    if version == "HTTP/3" or (version == "auto" and pool._h3 is not None):
        # RFC 9220: over HTTP/3 when forced, or under "auto" when the
        # origin's HTTP/3 connection enabled extended CONNECT.
        routed = await pool._router().request_protocol(
            method, url, headers, timeout, deadline, extensions, protocol, version
        )
        if routed is not None:
            return routed
        version = "auto"
    trace: TraceHook | None = extensions.get("trace")
    if method == b"CONNECT":
        if version == "HTTP/1.1":
            raise LocalProtocolError(
                "an extended CONNECT (RFC 8441) needs HTTP/2: send the HTTP/1.1 "
                "Upgrade GET instead"
            )
        version = "HTTP/2"
    if version != "HTTP/1.1" and pool._may_multiplex(origin):
        h2_request = extended_connect(
            url, headers, timeout, deadline, extensions, protocol
        )
        retried = False
        while True:
            conn = await pool._acquire(origin, timeout, deadline, trace)
            if conn.multiplexed:
                try:
                    enabled = await conn.connect_protocol_enabled(  # type: ignore[attr-defined]
                        timeout, deadline
                    )
                except BaseException:
                    pool._cancel_reservation(conn)
                    raise
                if enabled:
                    try:
                        return await conn.handle_request(h2_request)
                    except StaleConnection as stale:
                        if retried:
                            raise stale.error from stale.error.__cause__
                        retried = True
                        continue
                pool._cancel_reservation(conn)
                if version == "HTTP/2" or method == b"CONNECT":
                    raise LocalProtocolError(
                        f"{origin} did not enable extended CONNECT (no "
                        "SETTINGS_ENABLE_CONNECT_PROTOCOL=1, RFC 8441 section 3): "
                        f"cannot open a {protocol} stream over HTTP/2"
                    )
                if not pool._http1:
                    raise LocalProtocolError(
                        f"{origin} did not enable extended CONNECT over HTTP/2 (RFC 8441) "
                        f"and HTTP/1.1 is disabled (http1=False): no way to open a {protocol}"
                    )
                # HTTP/2 without extended CONNECT: HTTP/1.1 on its own connection.
                return await _request_h1(
                    pool, origin, method, url, headers, timeout, deadline, extensions, True
                )
            # ALPN chose HTTP/1.1 (or an HTTP/1.1 connection was idle).
            if version == "HTTP/2" or method == b"CONNECT":
                pool._cancel_reservation(conn)
                raise LocalProtocolError(
                    f"{origin} does not speak HTTP/2 (ALPN chose HTTP/1.1): "
                    f"cannot open a {protocol} stream over HTTP/2"
                )
            return await _send_h1(
                pool, conn, origin, method, url, headers, timeout, deadline, extensions, False
            )
    if version == "HTTP/2":
        why = (
            "HTTP/2 is disabled (http2=False)"
            if not pool._http2
            else f"HTTP/2 is not used for {origin} (cleartext HTTP/2 needs prior "
            "knowledge: http1=False)"
            if origin.scheme == "http"
            else f"HTTP/2 is not used for {origin}"
        )
        raise LocalProtocolError(f"{why}: cannot open a {protocol} stream over HTTP/2")
    if not pool._http1:
        raise LocalProtocolError(
            f"HTTP/1.1 is disabled (http1=False): cannot open a {protocol} over HTTP/1.1"
        )
    h1_only = pool._may_multiplex(origin)
    # An HTTP proxy forwards plain http requests, which it would not
    # upgrade: the WebSocket of an http origin goes through a CONNECT
    # tunnel (RFC 9110 section 9.3.6) opened for it alone.
    tunnel = pool._forward_http and origin.scheme == "http"
    return await _request_h1(
        pool, origin, method, url, headers, timeout, deadline, extensions, h1_only, tunnel
    )


def extended_connect(
    url: yarl.URL,
    headers: list[tuple[bytes, bytes]],
    timeout: Timeout,
    deadline: float | None,
    extensions: dict[str, Any],
    protocol: str,
) -> TransportRequest:
    """The extended CONNECT (RFC 8441 section 4) of a WebSocket request:
    ``:path`` from the URL, the fields of the ``Upgrade`` GET but those
    tied to HTTP/1.1's upgrade (RFC 8441 section 5)."""
    fields = [(name, value) for name, value in headers if name.lower() not in _WS_DROPPED]
    target = url.raw_path_qs.encode("ascii") or b"/"
    ext = {k: v for k, v in extensions.items() if k != "http_version"}
    ext["protocol"] = protocol
    return TransportRequest(b"CONNECT", url, target, fields, None, timeout, deadline, ext)


async def _request_h1(
    pool: ConnectionPool,
    origin: Origin,
    method: bytes,
    url: yarl.URL,
    headers: list[tuple[bytes, bytes]],
    timeout: Timeout,
    deadline: float | None,
    extensions: dict[str, Any],
    h1_only: bool,
    tunnel: bool = False,
) -> RawResponse:
    """Send the HTTP/1.1 ``Upgrade`` request on an HTTP/1.1 connection;
    with ``h1_only``, one opened with ALPN ``http/1.1`` alone (the
    origin's usual connection would be HTTP/2); with ``tunnel``, a new
    connection through a ``CONNECT`` tunnel of the HTTP proxy, used for
    this request only."""
    trace: TraceHook | None = extensions.get("trace")
    if h1_only or tunnel:
        conn = await pool._acquire(
            origin, timeout, deadline, trace, h1_only=True, tunnel=tunnel
        )
    else:
        conn = await pool._acquire(origin, timeout, deadline, trace)
        if conn.multiplexed:  # pragma: no cover - only when h2c prior knowledge
            pool._cancel_reservation(conn)
            raise LocalProtocolError(f"{origin} is HTTP/2 only: no HTTP/1.1 upgrade possible")
    return await _send_h1(
        pool, conn, origin, method, url, headers, timeout, deadline, extensions, h1_only, tunnel
    )


async def _send_h1(
    pool: ConnectionPool,
    conn: Connection,
    origin: Origin,
    method: bytes,
    url: yarl.URL,
    headers: list[tuple[bytes, bytes]],
    timeout: Timeout,
    deadline: float | None,
    extensions: dict[str, Any],
    h1_only: bool,
    tunnel: bool = False,
) -> RawResponse:
    """Send the ``Upgrade`` request on ``conn`` (a slot reserved), once
    more on a new connection if a reused one turned out closed."""
    target = url.raw_path_qs.encode("ascii") or b"/"
    forwarded = pool._forward_http and origin.scheme == "http" and not tunnel
    if forwarded:
        target, headers = pool._forwarded(url, target, headers)
    ext = {k: v for k, v in extensions.items() if k not in ("protocol", "http_version")}
    request = TransportRequest(method, url, target, headers, None, timeout, deadline, ext)
    return await pool._send_retrying(request, origin, conn, h1_only=h1_only, tunnel=tunnel)
