"""The blocking client: :class:`Client`.

It holds an :class:`~webwire.AsyncClient` bound to the blocking backend and
drives its coroutines with :func:`webwire._sync.run_sync`: no event loop, no
thread, the same code as the async client.
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Mapping, Sequence
from typing import TYPE_CHECKING, Any

from webwire._config import DEFAULT_LIMITS, DEFAULT_TIMEOUT, Limits, Timeout
from webwire._proto.sse import DEFAULT_MAX_EVENT_SIZE
from webwire._sync import run_sync

from ._client import AsyncClient
from ._methods import (
    USE_CLIENT_DEFAULT,
    AuthArg,
    FollowArg,
    MiddlewaresArg,
    RequestContext,
    RetriesArg,
    TimeoutArg,
    TraceArg,
)
from ._sse import DEFAULT_SSE_RETRIES, SyncEventSource

if TYPE_CHECKING:
    from multidict import CIMultiDict
    from yarl import URL

    from webwire._retry import Retry
    from webwire._transport.altsvc import AltSvcCache
    from webwire._transport.connect import CertTypes, VerifyTypes
    from webwire._transport.proxy import ProxyTypes

    from ._auth import Auth, AuthTypes
    from ._cookies import Cookies, CookieTypes
    from ._middleware import EventHook, SyncMiddleware
    from ._models import Response
    from ._request import HeaderTypes, Request, RequestContent
    from ._tracing import TraceConfig
    from ._transports import AsyncBaseTransport
    from ._urls import QueryParams

__all__ = ["Client", "StreamContext"]


class StreamContext:
    """What :meth:`Client.stream` returns: ``with`` it for a streamed
    response, closed (connection released) on exit."""

    __slots__ = ("_context",)

    def __init__(self, context: RequestContext) -> None:
        self._context = context

    def __enter__(self) -> Response:
        return run_sync(self._context.__aenter__())

    def __exit__(self, *args: object) -> None:
        run_sync(self._context.__aexit__(*args))


class Client:
    """A blocking HTTP client with the options and methods of
    :class:`~webwire.AsyncClient`; the methods return read responses.

    Args:
        auth: See :class:`~webwire.AsyncClient` for every argument.
        params: Query parameters of every request.
        headers: Header fields of every request.
        cookies: Initial cookies.
        verify: TLS verification.
        cert: Client certificate.
        http1: Speak HTTP/1.1.
        http2: Speak HTTP/2 (RFC 9113): offered with ALPN next to HTTP/1.1
            over TLS, the server picks. With ``http1=False`` only HTTP/2 is
            spoken: over TLS a server without ``h2`` fails with
            :class:`~webwire.ConnectError`, and cleartext ``http://`` uses
            HTTP/2 with prior knowledge (h2c, section 3.3).
        http3: Use HTTP/3 (RFC 9114) for ``https`` origins that advertise
            it with ``Alt-Svc`` (RFC 7838), falling back to TCP when QUIC
            cannot connect; see :class:`~webwire.AsyncClient`.
        http_versions: Subset of ``{"HTTP/1.1", "HTTP/2", "HTTP/3"}``
            instead of ``http1``/``http2``/``http3``; ``{"HTTP/3"}`` forces
            HTTP/3 (see :class:`~webwire.AsyncClient`).
        timeout: Default time limits (seconds or :class:`~webwire.Timeout`).
        limits: Pool and response limits.
        max_redirects: Most redirects followed by one request.
        follow_redirects: Follow redirects by default.
        follow_insecure_redirects: Follow redirects from https to http.
        raise_for_status: Raise for every final 4xx/5xx response.
        base_url: Prefix of relative request URLs.
        transport: The transport (its coroutines must not wait on an event
            loop: :class:`~webwire.HTTPTransport` or a
            :class:`~webwire.MockTransport` with a plain function).
        trust_env: Honour ``SSL_CERT_FILE``/``SSL_CERT_DIR``, ``.netrc``
            credentials and the proxy variables (see
            :class:`~webwire.AsyncClient`).
        default_encoding: Text encoding of responses without ``charset``: a
            codec name or a function ``(body: bytes) -> str | None``.
        middlewares: Plain functions ``def fn(request, handler) ->
            Response`` wrapping every request, outermost first; ``handler``
            is called as ``handler(request)``. See
            :class:`~webwire.AsyncClient` for where the chain runs.
        trace: :class:`~webwire.TraceConfig` objects (plain-function
            callbacks).
        event_hooks: ``{"request": [fn, ...], "response": [fn, ...]}``
            (plain functions; a response hook may call ``response.read()``).
        retries: Retries per redirect hop: a number or a
            :class:`~webwire.Retry` (``0``: none); see
            :class:`~webwire.AsyncClient`.
        proxy: Send every request through this proxy (a URL or a
            :class:`~webwire.Proxy`; see :class:`~webwire.AsyncClient`).
        mounts: Transports for some URLs, ``{pattern: transport or None}``
            (see :class:`~webwire.AsyncClient`).
        uds: Path of a Unix domain socket to send every request to.
        local_address: Local IP address to bind connections to.
        app: A WSGI application (PEP 3333) to send requests to in process,
            with no network (a :class:`~webwire.WSGITransport` is built for
            it; pass ``transport=WSGITransport(app, ...)`` for its options).
        raise_app_exceptions: With ``app``: re-raise the app's exceptions
            (default), or answer ``500`` when it fails before responding.

    Raises:
        InvalidURL: ``base_url`` is invalid.
        LocalProtocolError: A header holds forbidden characters.
        TypeError: A middleware, hook or trace callback is a coroutine
            function (the blocking client calls plain functions only) or is
            not callable.
        ValueError: ``event_hooks`` has an unknown key, or ``retries`` is
            negative.
        ValueError: ``http_versions`` is invalid or contradicts ``http1``,
            ``http2`` or ``http3``.
        ImportError: HTTP/3 is on and ``qh3`` is missing.
        ValueError: Both ``app`` and ``transport`` are given.
        TypeError: ``app`` is an ASGI app (it needs
            :class:`~webwire.AsyncClient`).
    """

    def __init__(
        self,
        *,
        auth: AuthTypes | None = None,
        params: QueryParams | None = None,
        headers: HeaderTypes | None = None,
        cookies: CookieTypes | None = None,
        verify: VerifyTypes = True,
        cert: CertTypes = None,
        http1: bool = True,
        http2: bool = True,
        http3: bool = False,
        http_versions: Collection[str] | None = None,
        timeout: float | Timeout | None = DEFAULT_TIMEOUT,
        limits: Limits = DEFAULT_LIMITS,
        max_redirects: int = 20,
        follow_redirects: bool = True,
        follow_insecure_redirects: bool = False,
        raise_for_status: bool = False,
        base_url: str | URL = "",
        transport: AsyncBaseTransport | None = None,
        trust_env: bool = True,
        default_encoding: str | Callable[[bytes], str | None] | None = None,
        middlewares: Sequence[SyncMiddleware] = (),
        trace: Sequence[TraceConfig] = (),
        event_hooks: Mapping[str, Sequence[EventHook]] | None = None,
        retries: int | Retry = 0,
        proxy: ProxyTypes | None = None,
        mounts: dict[str, AsyncBaseTransport | None] | None = None,
        uds: str | None = None,
        local_address: str | None = None,
        app: Any = None,
        raise_app_exceptions: bool = True,
    ) -> None:
        self._client = AsyncClient(
            auth=auth,
            params=params,
            headers=headers,
            cookies=cookies,
            verify=verify,
            cert=cert,
            http1=http1,
            http2=http2,
            http3=http3,
            http_versions=http_versions,
            timeout=timeout,
            limits=limits,
            max_redirects=max_redirects,
            follow_redirects=follow_redirects,
            follow_insecure_redirects=follow_insecure_redirects,
            raise_for_status=raise_for_status,
            base_url=base_url,
            transport=transport,
            trust_env=trust_env,
            default_encoding=default_encoding,
            middlewares=middlewares,
            trace=trace,
            event_hooks=event_hooks,
            retries=retries,
            proxy=proxy,
            mounts=mounts,
            uds=uds,
            local_address=local_address,
            app=app,
            raise_app_exceptions=raise_app_exceptions,
            _backend="sync",
        )
        self._client._owner = self

    # -- configuration (shared with the async client inside) -----------------

    @property
    def headers(self) -> CIMultiDict[str]:
        """Header fields of every request (mutable ``CIMultiDict``)."""
        return self._client.headers

    @headers.setter
    def headers(self, headers: HeaderTypes) -> None:
        self._client.headers = headers

    @property
    def cookies(self) -> Cookies:
        """The cookie jar."""
        return self._client.cookies

    @cookies.setter
    def cookies(self, cookies: CookieTypes) -> None:
        self._client.cookies = cookies

    @property
    def auth(self) -> Auth | None:
        """Authentication of every request."""
        return self._client.auth

    @auth.setter
    def auth(self, auth: AuthTypes | None) -> None:
        self._client.auth = auth

    @property
    def timeout(self) -> Timeout:
        """Default time limits."""
        return self._client.timeout

    @timeout.setter
    def timeout(self, timeout: float | Timeout | None) -> None:
        self._client.timeout = timeout

    @property
    def base_url(self) -> URL | None:
        """Prefix of relative request URLs."""
        return self._client.base_url

    @property
    def transport(self) -> AsyncBaseTransport:
        """The transport."""
        return self._client.transport

    @property
    def is_closed(self) -> bool:
        """Whether :meth:`close` was called."""
        return self._client.is_closed

    @property
    def alt_svc(self) -> AltSvcCache | None:
        """The Alt-Svc cache (RFC 7838) of the default transport; see
        :attr:`AsyncClient.alt_svc`."""
        return self._client.alt_svc

    @property
    def follow_redirects(self) -> bool:
        """Whether redirects are followed by default."""
        return self._client.follow_redirects

    @follow_redirects.setter
    def follow_redirects(self, value: bool) -> None:
        self._client.follow_redirects = value

    @property
    def max_redirects(self) -> int:
        """Most redirects followed by one request."""
        return self._client.max_redirects

    @max_redirects.setter
    def max_redirects(self, value: int) -> None:
        self._client.max_redirects = value

    @property
    def event_hooks(self) -> dict[str, list[EventHook]]:
        """The event hooks (``{"request": [...], "response": [...]}``),
        changeable in place or by assignment."""
        return self._client.event_hooks

    @event_hooks.setter
    def event_hooks(self, event_hooks: Mapping[str, Sequence[EventHook]]) -> None:
        self._client.event_hooks = event_hooks

    @property
    def retries(self) -> Retry:
        """The retry policy of every request."""
        return self._client.retries

    # -- requests --------------------------------------------------------------

    def build_request(self, method: str, url: str | URL, **kwargs: Any) -> Request:
        """Build a request; see :meth:`AsyncClient.build_request`."""
        return self._client.build_request(method, url, **kwargs)

    def send(
        self,
        request: Request,
        *,
        stream: bool = False,
        auth: AuthArg = USE_CLIENT_DEFAULT,
        follow_redirects: FollowArg = USE_CLIENT_DEFAULT,
        middlewares: MiddlewaresArg = None,
        trace: TraceArg = None,
        trace_request_ctx: Any = None,
        retries: RetriesArg = None,
    ) -> Response:
        """Send a request; see :meth:`AsyncClient.send`.

        Returns:
            The response (read unless ``stream``; then close it).
        """
        return run_sync(
            self._client.send(
                request,
                stream=stream,
                auth=auth,
                follow_redirects=follow_redirects,
                middlewares=middlewares,
                trace=trace,
                trace_request_ctx=trace_request_ctx,
                retries=retries,
            )
        )

    def request(
        self,
        method: str,
        url: str | URL,
        *,
        content: RequestContent | None = None,
        data: Any = None,
        files: Any = None,
        json: Any = None,
        params: QueryParams | None = None,
        headers: HeaderTypes | None = None,
        cookies: CookieTypes | None = None,
        auth: AuthArg = USE_CLIENT_DEFAULT,
        timeout: TimeoutArg = USE_CLIENT_DEFAULT,
        follow_redirects: FollowArg = USE_CLIENT_DEFAULT,
        extensions: dict[str, Any] | None = None,
        middlewares: MiddlewaresArg = None,
        trace: TraceArg = None,
        trace_request_ctx: Any = None,
        retries: RetriesArg = None,
    ) -> Response:
        """Send a request and read the response; the arguments are those of
        :meth:`AsyncClient.request` (middlewares, hooks and trace callbacks
        are plain functions here).

        Returns:
            The response, body read and connection released.

        Raises:
            See :meth:`AsyncClient.build_request` and :meth:`AsyncClient.send`.
        """
        args = (
            method,
            url,
            params,
            headers,
            cookies,
            content,
            data,
            files,
            json,
            auth,
            timeout,
            follow_redirects,
            extensions,
            middlewares,
            trace,
            trace_request_ctx,
            retries,
        )
        return run_sync(self._client._request(args, False))

    def stream(
        self,
        method: str,
        url: str | URL,
        *,
        content: RequestContent | None = None,
        data: Any = None,
        files: Any = None,
        json: Any = None,
        params: QueryParams | None = None,
        headers: HeaderTypes | None = None,
        cookies: CookieTypes | None = None,
        auth: AuthArg = USE_CLIENT_DEFAULT,
        timeout: TimeoutArg = USE_CLIENT_DEFAULT,
        follow_redirects: FollowArg = USE_CLIENT_DEFAULT,
        extensions: dict[str, Any] | None = None,
        middlewares: MiddlewaresArg = None,
        trace: TraceArg = None,
        trace_request_ctx: Any = None,
        retries: RetriesArg = None,
    ) -> StreamContext:
        """Stream a response: ``with client.stream("GET", url) as r:``.

        Returns:
            A :class:`StreamContext`; the response is closed when the block
            exits.
        """
        args = (
            method,
            url,
            params,
            headers,
            cookies,
            content,
            data,
            files,
            json,
            auth,
            timeout,
            follow_redirects,
            extensions,
            middlewares,
            trace,
            trace_request_ctx,
            retries,
        )
        return StreamContext(RequestContext(self._client, args))

    def get(
        self,
        url: str | URL,
        *,
        params: QueryParams | None = None,
        headers: HeaderTypes | None = None,
        cookies: CookieTypes | None = None,
        auth: AuthArg = USE_CLIENT_DEFAULT,
        timeout: TimeoutArg = USE_CLIENT_DEFAULT,
        follow_redirects: FollowArg = USE_CLIENT_DEFAULT,
        extensions: dict[str, Any] | None = None,
        middlewares: MiddlewaresArg = None,
        trace: TraceArg = None,
        trace_request_ctx: Any = None,
        retries: RetriesArg = None,
    ) -> Response:
        """``GET`` (RFC 9110 section 9.3.1); see :meth:`request`."""
        args = (
            "GET",
            url,
            params,
            headers,
            cookies,
            None,
            None,
            None,
            None,
            auth,
            timeout,
            follow_redirects,
            extensions,
            middlewares,
            trace,
            trace_request_ctx,
            retries,
        )
        return run_sync(self._client._request(args, False))

    def head(
        self,
        url: str | URL,
        *,
        params: QueryParams | None = None,
        headers: HeaderTypes | None = None,
        cookies: CookieTypes | None = None,
        auth: AuthArg = USE_CLIENT_DEFAULT,
        timeout: TimeoutArg = USE_CLIENT_DEFAULT,
        follow_redirects: FollowArg = USE_CLIENT_DEFAULT,
        extensions: dict[str, Any] | None = None,
        middlewares: MiddlewaresArg = None,
        trace: TraceArg = None,
        trace_request_ctx: Any = None,
        retries: RetriesArg = None,
    ) -> Response:
        """``HEAD`` (RFC 9110 section 9.3.2); see :meth:`request`."""
        args = (
            "HEAD",
            url,
            params,
            headers,
            cookies,
            None,
            None,
            None,
            None,
            auth,
            timeout,
            follow_redirects,
            extensions,
            middlewares,
            trace,
            trace_request_ctx,
            retries,
        )
        return run_sync(self._client._request(args, False))

    def options(
        self,
        url: str | URL,
        *,
        params: QueryParams | None = None,
        headers: HeaderTypes | None = None,
        cookies: CookieTypes | None = None,
        auth: AuthArg = USE_CLIENT_DEFAULT,
        timeout: TimeoutArg = USE_CLIENT_DEFAULT,
        follow_redirects: FollowArg = USE_CLIENT_DEFAULT,
        extensions: dict[str, Any] | None = None,
        middlewares: MiddlewaresArg = None,
        trace: TraceArg = None,
        trace_request_ctx: Any = None,
        retries: RetriesArg = None,
    ) -> Response:
        """``OPTIONS`` (RFC 9110 section 9.3.7); see :meth:`request`."""
        args = (
            "OPTIONS",
            url,
            params,
            headers,
            cookies,
            None,
            None,
            None,
            None,
            auth,
            timeout,
            follow_redirects,
            extensions,
            middlewares,
            trace,
            trace_request_ctx,
            retries,
        )
        return run_sync(self._client._request(args, False))

    def delete(
        self,
        url: str | URL,
        *,
        params: QueryParams | None = None,
        headers: HeaderTypes | None = None,
        cookies: CookieTypes | None = None,
        auth: AuthArg = USE_CLIENT_DEFAULT,
        timeout: TimeoutArg = USE_CLIENT_DEFAULT,
        follow_redirects: FollowArg = USE_CLIENT_DEFAULT,
        extensions: dict[str, Any] | None = None,
        middlewares: MiddlewaresArg = None,
        trace: TraceArg = None,
        trace_request_ctx: Any = None,
        retries: RetriesArg = None,
    ) -> Response:
        """``DELETE`` (RFC 9110 section 9.3.5); see :meth:`request`."""
        args = (
            "DELETE",
            url,
            params,
            headers,
            cookies,
            None,
            None,
            None,
            None,
            auth,
            timeout,
            follow_redirects,
            extensions,
            middlewares,
            trace,
            trace_request_ctx,
            retries,
        )
        return run_sync(self._client._request(args, False))

    def post(
        self,
        url: str | URL,
        *,
        content: RequestContent | None = None,
        data: Any = None,
        files: Any = None,
        json: Any = None,
        params: QueryParams | None = None,
        headers: HeaderTypes | None = None,
        cookies: CookieTypes | None = None,
        auth: AuthArg = USE_CLIENT_DEFAULT,
        timeout: TimeoutArg = USE_CLIENT_DEFAULT,
        follow_redirects: FollowArg = USE_CLIENT_DEFAULT,
        extensions: dict[str, Any] | None = None,
        middlewares: MiddlewaresArg = None,
        trace: TraceArg = None,
        trace_request_ctx: Any = None,
        retries: RetriesArg = None,
    ) -> Response:
        """``POST`` (RFC 9110 section 9.3.3); see :meth:`request`."""
        args = (
            "POST",
            url,
            params,
            headers,
            cookies,
            content,
            data,
            files,
            json,
            auth,
            timeout,
            follow_redirects,
            extensions,
            middlewares,
            trace,
            trace_request_ctx,
            retries,
        )
        return run_sync(self._client._request(args, False))

    def put(
        self,
        url: str | URL,
        *,
        content: RequestContent | None = None,
        data: Any = None,
        files: Any = None,
        json: Any = None,
        params: QueryParams | None = None,
        headers: HeaderTypes | None = None,
        cookies: CookieTypes | None = None,
        auth: AuthArg = USE_CLIENT_DEFAULT,
        timeout: TimeoutArg = USE_CLIENT_DEFAULT,
        follow_redirects: FollowArg = USE_CLIENT_DEFAULT,
        extensions: dict[str, Any] | None = None,
        middlewares: MiddlewaresArg = None,
        trace: TraceArg = None,
        trace_request_ctx: Any = None,
        retries: RetriesArg = None,
    ) -> Response:
        """``PUT`` (RFC 9110 section 9.3.4); see :meth:`request`."""
        args = (
            "PUT",
            url,
            params,
            headers,
            cookies,
            content,
            data,
            files,
            json,
            auth,
            timeout,
            follow_redirects,
            extensions,
            middlewares,
            trace,
            trace_request_ctx,
            retries,
        )
        return run_sync(self._client._request(args, False))

    def patch(
        self,
        url: str | URL,
        *,
        content: RequestContent | None = None,
        data: Any = None,
        files: Any = None,
        json: Any = None,
        params: QueryParams | None = None,
        headers: HeaderTypes | None = None,
        cookies: CookieTypes | None = None,
        auth: AuthArg = USE_CLIENT_DEFAULT,
        timeout: TimeoutArg = USE_CLIENT_DEFAULT,
        follow_redirects: FollowArg = USE_CLIENT_DEFAULT,
        extensions: dict[str, Any] | None = None,
        middlewares: MiddlewaresArg = None,
        trace: TraceArg = None,
        trace_request_ctx: Any = None,
        retries: RetriesArg = None,
    ) -> Response:
        """``PATCH`` (RFC 5789); see :meth:`request`."""
        args = (
            "PATCH",
            url,
            params,
            headers,
            cookies,
            content,
            data,
            files,
            json,
            auth,
            timeout,
            follow_redirects,
            extensions,
            middlewares,
            trace,
            trace_request_ctx,
            retries,
        )
        return run_sync(self._client._request(args, False))

    # -- lifetime ----------------------------------------------------------------

    def close(self) -> None:
        """Close the transport and its connections. Idempotent."""
        run_sync(self._client.aclose())

    def __enter__(self) -> Client:
        if self._client.is_closed:
            raise RuntimeError("the client is closed and cannot be opened again")
        return self

    def __exit__(self, *args: object) -> None:
        self.close()

    def __repr__(self) -> str:
        base = self._client.base_url
        return f"<Client base_url={str(base) if base else ''!r}>"

    # -- server-sent events --------------------------------------------------

    def websocket(self, url: str | URL, **options: Any) -> Any:
        """Open a WebSocket connection whose handshake is a request of this
        client, blocking: ``with client.websocket("/ws") as ws: ...``. What
        it shares with the client (transport, TLS, proxy, ``base_url``,
        default headers, cookies, auth) and the options are those of
        :meth:`AsyncClient.websocket`.

        Returns:
            A :class:`webwire.websocket.sync.ClientConnection`, open.

        Raises:
            InvalidURL, ValueError, ConnectionRejected, InvalidHandshake,
            TransportError: As for :meth:`AsyncClient.websocket`.
        """
        from webwire.websocket import sync as sws
        from webwire.websocket._client import DEFAULT_USER_AGENT, client_websocket_url

        if "client" in options:
            raise TypeError("client.websocket() uses this client: do not pass client=")
        options.setdefault(
            "user_agent_header", self._client.headers.get("User-Agent", DEFAULT_USER_AGENT)
        )
        resolved = client_websocket_url(self._client._base_url, url)
        return sws.connect(str(resolved), client=self, **options)

    def webtransport(self, url: str | URL, **options: Any) -> Any:
        """Establish a WebTransport session, blocking: ``with
        client.webtransport("https://host/path") as session: ...``. The
        options and errors are those of :meth:`AsyncClient.webtransport`.

        Returns:
            A :class:`webwire.webtransport.SyncWebTransportSession`: the
            session's methods (and its streams' and datagrams') block and
            return their results; async iterators become iterators.
        """
        from webwire._sync import run_sync
        from webwire.webtransport._session import SyncWebTransportSession

        session = run_sync(self._client.webtransport(url, **options))
        return SyncWebTransportSession(session)

    def sse(
        self,
        url: str | URL,
        *,
        method: str = "GET",
        params: QueryParams | None = None,
        headers: HeaderTypes | None = None,
        cookies: CookieTypes | None = None,
        content: RequestContent | None = None,
        data: Any = None,
        json: Any = None,
        auth: AuthArg = USE_CLIENT_DEFAULT,
        timeout: TimeoutArg = USE_CLIENT_DEFAULT,
        follow_redirects: FollowArg = USE_CLIENT_DEFAULT,
        retry: Retry | int | None = DEFAULT_SSE_RETRIES,
        last_event_id: str | None = None,
        max_event_size: int = DEFAULT_MAX_EVENT_SIZE,
        extensions: dict[str, Any] | None = None,
    ) -> SyncEventSource:
        """Receive server-sent events: ``for event in client.sse(url)`` or
        ``with client.sse(url) as source: for event in source``; the
        arguments, behaviour and errors are those of
        :meth:`AsyncClient.sse` (waits before reconnecting block).

        Returns:
            A :class:`~webwire.http.SyncEventSource` of
            :class:`~webwire.ServerSentEvent` items.
        """
        return SyncEventSource(
            self._client.sse(
                url,
                method=method,
                params=params,
                headers=headers,
                cookies=cookies,
                content=content,
                data=data,
                json=json,
                auth=auth,
                timeout=timeout,
                follow_redirects=follow_redirects,
                retry=retry,
                last_event_id=last_event_id,
                max_event_size=max_event_size,
                extensions=extensions,
            )
        )
