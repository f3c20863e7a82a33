"""The transports an :class:`~webwire.AsyncClient` is built with: the one
of ``app=``, the default one, and the router of ``mounts`` and of the proxy
environment variables."""

from __future__ import annotations

from collections.abc import Collection
from typing import TYPE_CHECKING, Any

from ._asgi import ASGITransport, is_asgi_app
from ._proxies import Router, URLPattern, environment_proxies
from ._transports import AsyncBaseTransport, HTTPTransport

if TYPE_CHECKING:
    from webwire._config import Limits
    from webwire._transport.connect import CertTypes, VerifyTypes
    from webwire._transport.proxy import ProxyTypes

__all__ = ["app_transport", "build_transports"]


def app_transport(
    app: Any, transport: AsyncBaseTransport | None, raise_app_exceptions: bool, backend: Any
) -> AsyncBaseTransport:
    """The transport for ``app=``: ASGI on AsyncClient, WSGI on Client."""
    if transport is not None:
        raise ValueError("give either app= or transport=, not both")
    sync = backend == "sync" or getattr(backend, "name", None) == "sync"
    if sync:
        if is_asgi_app(app):
            raise TypeError(
                f"{app!r} is an ASGI app: send requests to it with AsyncClient(app=...)"
            )
        from ._wsgi import WSGITransport

        return WSGITransport(app, raise_app_exceptions=raise_app_exceptions)
    if not is_asgi_app(app):
        raise TypeError(
            f"{app!r} is not an ASGI app (async def app(scope, receive, send)); "
            "a WSGI app is served by Client(app=...)"
        )
    return ASGITransport(app, raise_app_exceptions=raise_app_exceptions)


def build_transports(
    transport: AsyncBaseTransport | None,
    proxy: ProxyTypes | None,
    mounts: dict[str, AsyncBaseTransport | None] | None,
    *,
    verify: VerifyTypes,
    cert: CertTypes,
    limits: Limits,
    http1: bool,
    http2: bool,
    trust_env: bool,
    uds: str | None,
    local_address: str | None,
    http3: bool = False,
    http_versions: Collection[str] | None = None,
) -> tuple[AsyncBaseTransport, Router[AsyncBaseTransport] | None]:
    """The client's default transport (``transport``, else an
    :class:`~webwire.HTTPTransport` of the other arguments, through
    ``proxy``) and the router of ``mounts`` and, with ``trust_env`` and none
    of ``proxy``, ``mounts``, ``transport`` and ``uds``, of the proxy
    environment variables (``None``: every request takes the default).

    Raises:
        ValueError: Both ``proxy`` and ``transport`` are given;
            ``http_versions`` is invalid or contradicts ``http1``,
            ``http2`` or ``http3``.
        ImportError: HTTP/3 is on and ``qh3`` is missing.
        TypeError: A ``mounts`` value is not a transport or ``None``.
        InvalidURL: A mount pattern or a proxy URL is invalid.
    """
    if proxy is not None and transport is not None:
        raise ValueError("pass either proxy or transport, not both")
    if http3 or http_versions is not None:
        from webwire._transport._h3_route import resolve_versions

        # Checked here too, so that a client with transport= rejects them.
        http1, http2, http3 = resolve_versions(http_versions, http1, http2, http3)

    def http_transport(via: ProxyTypes | None) -> HTTPTransport:
        return HTTPTransport(
            verify=verify,
            cert=cert,
            limits=limits,
            http1=http1,
            http2=http2,
            trust_env=trust_env,
            proxy=via,
            uds=uds,
            local_address=local_address,
            http3=http3,
        )

    default = transport or http_transport(proxy)
    router: Router[AsyncBaseTransport] | None = None
    routes = [(URLPattern(key), value) for key, value in (mounts or {}).items()]
    for pattern, mounted in routes:
        if mounted is not None and not isinstance(mounted, AsyncBaseTransport):
            raise TypeError(
                f"mounts[{pattern.pattern!r}] must be a transport or None, "
                f"not {type(mounted).__name__}"
            )
    if trust_env and proxy is None and mounts is None and transport is None and uds is None:
        env = environment_proxies()
        if env:
            shared = {url: http_transport(url) for url in {env.http, env.https} if url}
            for scheme, url in (("http", env.http), ("https", env.https)):
                if url is not None:
                    routes.append((URLPattern(f"{scheme}://"), shared[url]))
            router = Router(default, routes, env.no_proxy)
    elif routes:
        router = Router(default, routes)
    return default, router
