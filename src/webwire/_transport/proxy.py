"""Proxies: the :class:`Proxy` configuration and the ways through one.

- ``http://`` and ``https://`` proxies (the latter reached over TLS):
  requests to ``http`` origins are forwarded with the absolute-form request
  target (RFC 9112 section 3.2.2) on connections to the proxy, pooled per
  proxy; ``https`` origins are reached through a ``CONNECT`` tunnel
  (RFC 9110 section 9.3.6) inside which TLS to the origin is negotiated
  (ALPN ``h2``/``http/1.1``), so the proxy sees no request content.
- ``socks4``, ``socks4a``, ``socks5`` and ``socks5h`` proxies (RFC 1928,
  RFC 1929): every connection is a tunnel (see :mod:`._socks`).

Proxy credentials (``Proxy-Authorization``, Basic scheme, RFC 9110
section 11.7.1 and RFC 7617) are sent to the proxy only: on the tunnel
request or on forwarded requests, never inside a tunnel.
"""

from __future__ import annotations

import base64
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Union

import yarl

from webwire._exceptions import InvalidURL, ProxyError, TransportError, UnsupportedProtocol

from ._types import TransportRequest, bound_timeout
from .connect import Origin

if TYPE_CHECKING:
    import ssl

    from webwire._backends.base import Backend, NetworkStream
    from webwire._config import Limits, Timeout

    from ._dns import DNSCache
    from ._types import TraceHook

__all__ = ["Proxy", "ProxyTypes", "open_http_tunnel"]

PROXY_SCHEMES: dict[str, int] = {
    "http": 80,
    "https": 443,
    "socks4": 1080,
    "socks4a": 1080,
    "socks5": 1080,
    "socks5h": 1080,
}
"""Supported proxy URL schemes and their default ports."""

_ERROR_BODY_LIMIT = 4096


def _check_field(text: str, what: str) -> bytes:
    if any(char in text for char in "\r\n\0"):
        raise ValueError(f"the proxy {what} holds CR, LF or NUL (RFC 9110 section 5.5)")
    try:
        return text.encode("latin-1")
    except UnicodeEncodeError as exc:
        raise ValueError(f"the proxy {what} must be latin-1 text") from exc


def _shown(url: yarl.URL) -> str:
    """``url`` for messages, credentials removed."""
    if url.user is None and url.password is None:
        return str(url)
    try:
        return str(url.with_user(None))
    except ValueError:
        return "<proxy URL>"


class Proxy:
    """A proxy to send requests through.

    Args:
        url: The proxy URL, ``scheme://[user:password@]host[:port]``, with
            scheme ``http``, ``https`` (TLS to the proxy), ``socks4``,
            ``socks4a`` (the proxy resolves host names), ``socks5`` or
            ``socks5h`` (the proxy resolves host names). Default ports: 80,
            443 and 1080. Credentials in the URL are percent-decoded.
        auth: ``(user, password)`` for the proxy; overrides credentials in
            the URL. HTTP proxies get them as ``Proxy-Authorization: Basic``
            (RFC 9110 section 11.7.1), SOCKS5 proxies as username/password
            authentication (RFC 1929); a SOCKS4 proxy gets the user as its
            user id.
        headers: Extra header fields for the proxy (HTTP proxies only): sent
            on ``CONNECT`` requests and forwarded ``http`` requests.

    Attributes:
        url: The proxy URL without credentials (:class:`yarl.URL`).
        auth: ``(user, password)`` or ``None``.
        headers: The extra header fields, as ``(name, value)`` pairs.

    Raises:
        UnsupportedProtocol: The scheme is not one of the above.
        InvalidURL: The URL cannot be parsed, has no host, or its port is 0.
        ValueError: ``auth`` or ``headers`` hold CR, LF, NUL or non-latin-1
            text, or SOCKS credentials are not ASCII or longer than 255 bytes.
    """

    __slots__ = ("_fields", "_origin", "auth", "headers", "url")

    def __init__(
        self,
        url: str | yarl.URL,
        *,
        auth: tuple[str, str] | None = None,
        headers: Mapping[str, str] | Sequence[tuple[str, str]] | None = None,
    ) -> None:
        if isinstance(url, str):
            try:
                url = yarl.URL(url)
            except (ValueError, TypeError) as exc:
                raise InvalidURL(f"invalid proxy URL {url!r}: {exc}") from exc
        elif not isinstance(url, yarl.URL):
            raise TypeError(f"proxy URL must be a str or yarl.URL, not {type(url).__name__}")
        scheme = url.scheme.lower()
        default_port = PROXY_SCHEMES.get(scheme)
        if default_port is None:
            raise UnsupportedProtocol(
                f"unsupported proxy scheme {url.scheme!r} in {_shown(url)}: use "
                "http, https, socks4, socks4a, socks5 or socks5h"
            )
        host = url.raw_host
        if not host:
            raise InvalidURL(f"the proxy URL {_shown(url)} has no host")
        try:
            port = url.explicit_port
        except ValueError as exc:
            raise InvalidURL(f"invalid proxy URL port: {exc}") from exc
        if port == 0:
            raise InvalidURL(f"the proxy URL {_shown(url)} has port 0")
        if auth is None and url.user is not None:
            auth = (url.user, url.password or "")
        if auth is not None:
            if not (isinstance(auth, tuple) and len(auth) == 2):
                raise ValueError("proxy auth must be a (user, password) tuple")
            auth = (str(auth[0]), str(auth[1]))
        self.auth = auth
        self.url = yarl.URL.build(scheme=scheme, host=host, port=port, encoded=True)
        self._origin = Origin(scheme, host, port or default_port)
        pairs = list(headers.items()) if isinstance(headers, Mapping) else list(headers or [])
        self.headers = [(str(name), str(value)) for name, value in pairs]
        fields: list[tuple[bytes, bytes]] = []
        for name, value in self.headers:
            fields.append((_check_field(name, "header name"), _check_field(value, "header value")))
        if auth is not None and scheme in ("http", "https"):
            user, password = (_check_field(part, "credentials") for part in auth)
            token = base64.b64encode(user + b":" + password)
            fields.append((b"Proxy-Authorization", b"Basic " + token))
        elif auth is not None:
            for part in auth:
                if not part.isascii() or len(part) > 255:
                    raise ValueError("SOCKS credentials must be ASCII, at most 255 bytes each")
        self._fields = fields

    @property
    def origin(self) -> Origin:
        """Where the proxy listens: scheme, host and port (default filled)."""
        return self._origin

    @property
    def is_socks(self) -> bool:
        """Whether this is a SOCKS proxy."""
        return self._origin.scheme.startswith("socks")

    @property
    def fields(self) -> list[tuple[bytes, bytes]]:
        """Header fields for the proxy: the extra ``headers`` and
        ``Proxy-Authorization`` when credentials are set (HTTP proxies)."""
        return self._fields

    def __eq__(self, other: object) -> bool:
        return (
            isinstance(other, Proxy)
            and (self.url, self.auth, self.headers) == (other.url, other.auth, other.headers)
        )

    def __hash__(self) -> int:
        return hash((self.url, self.auth))

    def __repr__(self) -> str:
        auth = "" if self.auth is None else f", auth=({self.auth[0]!r}, '********')"
        headers = f", headers={self.headers!r}" if self.headers else ""
        return f"Proxy({str(self.url)!r}{auth}{headers})"


ProxyTypes = Union[str, yarl.URL, Proxy]  # noqa: UP007
"""What ``proxy=`` accepts: a URL (string or :class:`yarl.URL`) or a
:class:`Proxy`."""


def build_proxy(proxy: ProxyTypes) -> Proxy:
    """``proxy`` as a :class:`Proxy` (see its Raises)."""
    return proxy if isinstance(proxy, Proxy) else Proxy(proxy)


def _authority(origin: Origin) -> bytes:
    host = f"[{origin.host}]" if ":" in origin.host else origin.host
    return f"{host}:{origin.port}".encode("ascii")


def _ignore_release(conn: object) -> None:
    pass


async def open_http_tunnel(
    backend: Backend,
    stream: NetworkStream,
    proxy: Proxy,
    origin: Origin,
    *,
    timeout: Timeout,
    deadline: float | None,
    limits: Limits,
) -> NetworkStream:
    """Ask the HTTP proxy at the other end of ``stream`` for a tunnel to
    ``origin`` with ``CONNECT`` (RFC 9110 section 9.3.6) and return the
    tunnel as a byte stream.

    ``stream`` is owned from now on: it is closed when this fails.

    Raises:
        ProxyError: The proxy answered with a status other than 2xx
            (``status_code`` set: 407 when it wants credentials), or closed
            the connection before answering.
        ReadTimeout, WriteTimeout: The proxy did not answer in time.
    """
    from .http1 import HTTP11Connection

    conn = HTTP11Connection(
        proxy.origin, stream, backend, limits=limits, on_release=_ignore_release
    )
    authority = _authority(origin)
    request = TransportRequest(
        b"CONNECT",
        proxy.url,
        authority,
        [(b"Host", authority), *proxy.fields],
        None,
        timeout,
        deadline,
        {},
    )
    try:
        response = await conn.handle_request(request)
    except ProxyError:
        conn.close()
        raise
    except TransportError as exc:
        conn.close()
        raise ProxyError(
            f"the proxy {proxy.url} failed while opening a tunnel to {origin}: {exc}"
        ) from exc
    except BaseException:
        conn.close()
        raise
    status = response.status_code
    if 200 <= status < 300:
        return response.extensions["detach"]()  # type: ignore[no-any-return]
    reason = response.reason_phrase.decode("latin-1", "replace")
    await response.stream.aclose()
    conn.close()
    hint = " (credentials missing or refused)" if status == 407 else ""
    raise ProxyError(
        f"the proxy {proxy.url} refused the tunnel to {origin}: {status} {reason}{hint}",
        status_code=status,
    )


async def open_tunnel(
    backend: Backend,
    proxy: Proxy,
    origin: Origin,
    *,
    proxy_ssl_context: ssl.SSLContext | None,
    timeout: Timeout,
    deadline: float | None,
    limits: Limits,
    local_address: str | None,
    dns: DNSCache | None = None,
    trace: TraceHook | None = None,
) -> NetworkStream:
    """A byte stream to ``origin`` through ``proxy`` (HTTP ``CONNECT`` or
    SOCKS), before any TLS with the origin.

    Raises:
        ConnectError, ConnectTimeout: The proxy cannot be reached.
        ProxyError: The proxy refused or failed to open the tunnel.
    """
    from .connect import open_stream

    stream = await open_stream(
        backend,
        proxy.origin if not proxy.is_socks else Origin("http", *proxy.origin[1:]),
        ssl_context=proxy_ssl_context,
        connect_timeout=timeout.connect,
        deadline=deadline,
        local_address=local_address,
        dns=dns,
        trace=trace,
    )
    if proxy.is_socks:
        from ._socks import socks_handshake

        try:
            await socks_handshake(
                backend,
                stream,
                proxy,
                origin,
                timeout=bound_timeout(timeout.connect, deadline, backend.monotonic()),
                dns=dns,
                trace=trace,
            )
        except BaseException:
            stream.abort()
            raise
        return stream
    return await open_http_tunnel(
        backend, stream, proxy, origin, timeout=timeout, deadline=deadline, limits=limits
    )
