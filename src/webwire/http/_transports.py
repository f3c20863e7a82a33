"""Transports: what a client hands each request to.

:class:`HTTPTransport` carries requests over the network through the
connection pool; :class:`MockTransport` answers them with a function (for
tests, no network). Both are coroutine based and serve
:class:`~webwire.AsyncClient` and :class:`~webwire.Client` alike (the blocking
client binds them to the blocking backend).
"""

from __future__ import annotations

import inspect
from abc import ABC, abstractmethod
from collections.abc import Awaitable, Callable, Collection
from typing import TYPE_CHECKING, Union

from multidict import CIMultiDict, CIMultiDictProxy

from webwire._backends import init_lock
from webwire._config import DEFAULT_LIMITS, DEFAULT_TIMEOUT, Limits, Timeout
from webwire._exceptions import LocalProtocolError
from webwire._transport.altsvc import AltSvcCache

from ._models import Response
from ._request import Request

if TYPE_CHECKING:
    from webwire._backends.base import Backend
    from webwire._transport.connect import CertTypes, VerifyTypes
    from webwire._transport.pool import ConnectionPool
    from webwire._transport.proxy import Proxy, ProxyTypes

__all__ = ["AsyncBaseTransport", "HTTPTransport", "MockHandler", "MockTransport"]


class AsyncBaseTransport(ABC):
    """Base class of transports: send one request, return its response.

    A transport sends exactly the request it is given (no redirects, cookies
    or auth: the client does those) and returns the response with its body
    not yet read. ``request.extensions["timeout"]`` holds the
    :class:`~webwire.Timeout` and ``request.extensions["deadline"]`` the
    absolute ``Timeout.total`` deadline (backend clock) or ``None``.
    """

    def _bind_backend(self, backend: Backend) -> None:
        """Called by the client with its backend before the first request."""

    @abstractmethod
    async def handle_async_request(self, request: Request) -> Response:
        """Send ``request`` and return the response, body unread.

        Args:
            request: The request to send.

        Returns:
            The response (streamed).

        Raises:
            TransportError: The request could not be carried.
        """

    async def aclose(self) -> None:
        """Release the transport's resources (connections)."""

    async def __aenter__(self) -> AsyncBaseTransport:
        return self

    async def __aexit__(self, *args: object) -> None:
        await self.aclose()


class HTTPTransport(AsyncBaseTransport):
    """Requests over HTTP/1.1, HTTP/2 and HTTP/3 through a pool of
    keep-alive connections (HTTP/2 and HTTP/3 streams share one connection
    per origin).

    The pool is created on the first request, on the backend of the client
    using the transport (asyncio, trio or blocking); one transport serves one
    backend.

    Args:
        verify: TLS certificate verification: ``True`` (system/certifi CAs),
            ``False``, a CA bundle path or an :class:`ssl.SSLContext`.
        cert: Client certificate: a PEM path, ``(cert, key)`` or
            ``(cert, key, password)``.
        limits: Pool and response limits.
        http1: Speak HTTP/1.1.
        http2: Speak HTTP/2: offered with ALPN over TLS; with ``http1``
            off, also on cleartext connections (prior knowledge).
        trust_env: Honour ``SSL_CERT_FILE``/``SSL_CERT_DIR``.
        proxy: Send every request through this proxy: a URL (``http://``,
            ``https://``, ``socks4://``, ``socks4a://``, ``socks5://``,
            ``socks5h://``, credentials as ``user:password@``) or a
            :class:`~webwire.Proxy`. ``http`` requests are forwarded by an
            HTTP proxy (RFC 9112 section 3.2.2); ``https`` requests go
            through a ``CONNECT`` tunnel (RFC 9110 section 9.3.6) with TLS to
            the origin inside it. Failures raise :class:`~webwire.ProxyError`.
        uds: Path of a Unix domain socket to send every request to instead
            of opening TCP connections.
        local_address: Local IP address to bind connections to (the source
            address), e.g. ``"0.0.0.0"`` for IPv4 only.
        http3: Use HTTP/3 (RFC 9114, QUIC) for ``https`` origins that
            advertise it in an ``Alt-Svc`` response field (RFC 7838) or in
            :attr:`alt_svc`; when QUIC cannot connect the request goes over
            TCP and the origin is not tried over HTTP/3 again for 5 minutes
            (doubling per failure, at most 48 hours).
        http_versions: The versions to use, a subset of ``{"HTTP/1.1",
            "HTTP/2", "HTTP/3"}``, instead of ``http1``/``http2``/``http3``;
            ``{"HTTP/3"}`` forces HTTP/3 on the URL's own port (no TCP).
        alt_svc: The Alt-Svc cache to use (a new one by default).

    Raises:
        ValueError: No HTTP version is enabled, ``http_versions`` holds an
            unknown name or contradicts ``http1``/``http2``/``http3``, or
            both ``proxy`` and ``uds`` are given.
        ImportError: HTTP/3 is on and ``qh3`` is missing (a dependency of
            webwire: ``pip install qh3``).
        UnsupportedProtocol, InvalidURL: The proxy URL is unusable.
    """

    def __init__(
        self,
        *,
        verify: VerifyTypes = True,
        cert: CertTypes = None,
        limits: Limits = DEFAULT_LIMITS,
        http1: bool = True,
        http2: bool = True,
        trust_env: bool = True,
        proxy: ProxyTypes | None = None,
        uds: str | None = None,
        local_address: str | None = None,
        http3: bool = False,
        http_versions: Collection[str] | None = None,
        alt_svc: AltSvcCache | None = None,
    ) -> None:
        if http3 or http_versions is not None:
            from webwire._transport._h3_route import resolve_versions

            http1, http2, http3 = resolve_versions(http_versions, http1, http2, http3)
            http_versions = None
        if not (http1 or http2 or http3):
            raise ValueError("at least one of http1, http2 and http3 must be enabled")
        if proxy is not None and uds is not None:
            raise ValueError("pass either proxy or uds, not both")
        from webwire._transport.proxy import build_proxy

        self._proxy = None if proxy is None else build_proxy(proxy)
        self._uds = None if uds is None else str(uds)
        self._local_address = local_address
        self._verify = verify
        self._cert = cert
        self._limits = limits
        self._http1 = http1
        self._http2 = http2
        self._http3 = http3
        self._alt_svc = alt_svc if alt_svc is not None else AltSvcCache()
        self._trust_env = trust_env
        self._backend: Backend | None = None
        self._pool: ConnectionPool | None = None
        self._pool_lock = init_lock()

    @property
    def proxy(self) -> Proxy | None:
        """The proxy every request goes through, or ``None``."""
        return self._proxy

    @property
    def pool(self) -> ConnectionPool | None:
        """The connection pool, ``None`` before the first request."""
        return self._pool

    @property
    def alt_svc(self) -> AltSvcCache:
        """The Alt-Svc cache (RFC 7838): the HTTP/3 alternatives of origins
        learnt from responses (with ``http3`` on) or added with
        :meth:`AltSvcCache.add`, and the ones that failed to connect."""
        return self._alt_svc

    def _bind_backend(self, backend: Backend) -> None:
        if self._backend is None:
            self._backend = backend
        elif self._backend is not backend:
            raise RuntimeError(
                f"this HTTPTransport runs on the {self._backend.name} backend and cannot "
                f"serve a client on {backend.name}"
            )

    def _create_pool(self) -> ConnectionPool:
        from webwire._transport.pool import ConnectionPool

        # First requests of a blocking client may come from many threads at
        # once: exactly one pool is made, so Limits hold for all of them.
        with self._pool_lock:
            if self._pool is not None:
                return self._pool
            if self._backend is None:
                from webwire._backends import get_backend

                self._backend = get_backend(None)
            self._pool = ConnectionPool(
                self._backend,
                verify=self._verify,
                cert=self._cert,
                limits=self._limits,
                http1=self._http1,
                http2=self._http2,
                trust_env=self._trust_env,
                local_address=self._local_address,
                proxy=self._proxy,
                uds=self._uds,
                http3=self._http3,
                alt_svc=self._alt_svc,
            )
            return self._pool

    async def handle_async_request(self, request: Request) -> Response:
        """Send ``request`` on a pooled connection.

        Returns:
            The response; its body stream returns the connection to the pool
            when read to the end and closes it when closed early.

        Raises:
            LocalProtocolError: A header holds a character outside latin-1.
            TransportError: Connecting, sending or receiving failed.
        """
        pool = self._pool or self._create_pool()
        try:
            headers = [
                (name.encode("latin-1"), value.encode("latin-1"))
                for name, value in request.headers.items()
            ]
        except UnicodeEncodeError as exc:
            raise LocalProtocolError(
                "header fields must be latin-1 text (RFC 9110 section 5.5)", request=request
            ) from exc
        extensions = request.extensions
        timeout = extensions.get("timeout", DEFAULT_TIMEOUT)
        if not isinstance(timeout, Timeout):
            timeout = Timeout(timeout)
        raw = await pool.request(
            request.method.encode("ascii"),
            request.url,
            headers,
            request.stream,
            timeout=timeout,
            deadline=extensions.get("deadline"),
            extensions=extensions,
        )
        fields: CIMultiDict[str] = CIMultiDict(
            [(name.decode("latin-1"), value.decode("latin-1")) for name, value in raw.headers]
        )
        return Response._from_transport(
            raw.status_code,
            raw.reason_phrase.decode("latin-1"),
            raw.http_version,
            CIMultiDictProxy(fields),
            raw.stream,
            raw.extensions,
            request,
        )

    async def aclose(self) -> None:
        """Close the pool's connections."""
        pool, self._pool = self._pool, None
        if pool is not None:
            await pool.aclose()


MockHandler = Callable[[Request], Union[Response, Awaitable[Response]]]  # noqa: UP007


class MockTransport(AsyncBaseTransport):
    """Answer requests with a function instead of the network.

    The request body is read before the handler is called, so
    ``request.content`` works there.

    Args:
        handler: ``handler(request) -> Response``, a plain function (usable
            from both clients) or an ``async def`` (AsyncClient only).
    """

    def __init__(self, handler: MockHandler) -> None:
        self.handler = handler

    async def handle_async_request(self, request: Request) -> Response:
        """Call the handler.

        Returns:
            The handler's response, with ``request`` set on it.

        Raises:
            TypeError: The handler did not return a :class:`~webwire.Response`.
        """
        if request._content is None:
            await request._aread_keep_body()
        result = self.handler(request)
        if inspect.isawaitable(result):
            result = await result
        if not isinstance(result, Response):
            raise TypeError(f"MockTransport handler must return a webwire.Response, not {result!r}")
        if result._request is None:
            result._request = request
        return result
