"""The request methods of :class:`~webwire.AsyncClient` and what they return.

``client.get(url)`` and its siblings only gather their arguments into a
:class:`RequestContext`; awaiting or entering it runs
``AsyncClient._request``, which builds and sends the request.
"""

from __future__ import annotations

import warnings
from collections.abc import Generator, Sequence
from typing import TYPE_CHECKING, Any, Union, cast

from webwire._config import Timeout
from webwire._proto.sse import DEFAULT_MAX_EVENT_SIZE
from webwire._retry import Retry

from ._auth import AuthTypes
from ._cookies import CookieTypes
from ._middleware import Middleware, Pipeline
from ._request import HeaderTypes, RequestContent
from ._sse import DEFAULT_SSE_RETRIES, EventSource, sse_timeout
from ._tracing import TraceConfig

if TYPE_CHECKING:
    from yarl import URL

    from ._client import AsyncClient
    from ._models import Response
    from ._request import Request
    from ._urls import QueryParams

__all__ = ["USE_CLIENT_DEFAULT", "RequestContext", "UseClientDefault"]


class UseClientDefault:
    """Type of :data:`USE_CLIENT_DEFAULT`: "use the client's setting"."""

    _instance: UseClientDefault | None = None

    def __new__(cls) -> UseClientDefault:
        if cls._instance is None:
            cls._instance = super().__new__(cls)
        return cls._instance

    def __repr__(self) -> str:
        return "USE_CLIENT_DEFAULT"


USE_CLIENT_DEFAULT = UseClientDefault()
"""Per-request default meaning "the value the client was built with"."""

TimeoutArg = Union[float, Timeout, None, UseClientDefault]  # noqa: UP007
AuthArg = Union[AuthTypes, None, UseClientDefault]  # noqa: UP007
FollowArg = Union[bool, UseClientDefault]  # noqa: UP007

MiddlewaresArg = Union[Sequence[Middleware], None]  # noqa: UP007
TraceArg = Union[Sequence[TraceConfig], None]  # noqa: UP007
RetriesArg = Union[int, Retry, None]  # noqa: UP007

# (method, url, params, headers, cookies, content, data, files, json, auth,
#  timeout, follow_redirects, extensions, middlewares, trace, trace_request_ctx,
#  retries)
_Args = tuple[Any, ...]


class RequestContext:
    """What :meth:`AsyncClient.get` and friends return.

    ``await`` it for a :class:`~webwire.Response` whose body is read (the
    connection is released), or use it as ``async with`` for a streamed
    response, released on exit. Like a coroutine, one that is neither
    awaited nor entered warns (``RuntimeWarning: ... was never awaited``)
    when it is garbage-collected: the request was never sent.
    """

    __slots__ = ("_args", "_client", "_response", "_used")

    def __init__(self, client: _AsyncRequestMethods, args: _Args) -> None:
        self._client = client
        self._args = args
        self._response: Response | None = None
        self._used = False

    def __await__(self) -> Generator[Any, None, Response]:
        self._used = True
        return self._client._request(self._args, False).__await__()

    async def __aenter__(self) -> Response:
        self._used = True
        self._response = await self._client._request(self._args, True)
        return self._response

    def __del__(self) -> None:
        if not self._used:
            self._used = True
            warnings.warn(
                f"{self!r} was never awaited: the request was not sent "
                "(await it, or use it with 'async with')",
                RuntimeWarning,
                stacklevel=2,
                source=self,
            )

    def __repr__(self) -> str:
        return f"<RequestContext {self._args[0]} {str(self._args[1])!r}>"

    async def __aexit__(self, *args: object) -> None:
        response, self._response = self._response, None
        if response is not None:
            await response._aclose()


class _AsyncRequestMethods:
    """The request methods of :class:`~webwire.AsyncClient` (its base
    class): :meth:`request`, :meth:`get` and the other methods pack their
    arguments, in the order of ``_Args``, into a :class:`RequestContext`;
    :meth:`build_request` builds a request and :meth:`send` sends one."""

    __slots__ = ()

    if TYPE_CHECKING:
        # Provided by AsyncClient.
        _timeout: Timeout
        _pipeline: Pipeline | None

        def _build(self, args: _Args) -> Request: ...

        async def _request(self, args: _Args, stream: bool) -> Response: ...

        def _build_pipeline(
            self, middlewares: Any = None, trace: Any = None, retries: Any = None
        ) -> Pipeline | None: ...

        async def _send(
            self,
            request: Request,
            auth: AuthArg,
            follow_redirects: FollowArg,
            stream: bool,
            pipe: Pipeline | None = None,
            trace_request_ctx: Any = None,
        ) -> Response: ...

    # -- building and sending requests ---------------------------------------

    def build_request(
        self,
        method: str,
        url: str | URL,
        *,
        params: QueryParams | None = None,
        headers: HeaderTypes | None = None,
        cookies: CookieTypes | None = None,
        content: RequestContent | None = None,
        data: Any = None,
        files: Any = None,
        json: Any = None,
        timeout: TimeoutArg = USE_CLIENT_DEFAULT,
        extensions: dict[str, Any] | None = None,
    ) -> Request:
        """Build a request with the client's base URL, parameters, headers
        and cookies, to pass to :meth:`send`.

        Args:
            method: The method.
            url: Absolute URL, or relative to ``base_url``.
            params: Query parameters (merged over the client's).
            headers: Header fields (merged over the client's).
            cookies: Cookies for this request only.
            content: Raw body: bytes, text or (async) iterable of bytes.
            data: Form fields (or raw body).
            files: Files for a multipart body.
            json: A value sent as JSON.
            timeout: Time limits (seconds or :class:`~webwire.Timeout`).
            extensions: Extra details for the transport.

        Returns:
            The request.

        Raises:
            InvalidURL: The URL is invalid or relative without ``base_url``.
            UnsupportedProtocol: The scheme is not http/https.
            LocalProtocolError: The method or a header holds forbidden
                characters.
        """
        return self._build(
            (
                method,
                url,
                params,
                headers,
                cookies,
                content,
                data,
                files,
                json,
                None,
                timeout,
                USE_CLIENT_DEFAULT,
                extensions,
                None,
                None,
                None,
                None,
            )
        )

    async def send(
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
        """Send a request, following redirects and running authentication.

        Args:
            request: The request (from :meth:`build_request` or built by
                hand; it gets the client's timeout when it has none).
            stream: Return with the body unread (the caller must read or
                close the response).
            auth: Authentication for this request (default: the client's;
                ``None``: none, except credentials in the URL).
            follow_redirects: Follow redirects for this request.
            middlewares: Middlewares of this request instead of the
                client's (``()``: none; ``None``: the client's).
            trace: Trace configs of this request instead of the client's.
            trace_request_ctx: Passed to each trace config's context factory.
            retries: Retry policy of this request (``None``: the client's).

        Returns:
            The final response; earlier ones are in ``response.history``.

        Raises:
            TransportError: The request could not be carried (timeouts
                included).
            TooManyRedirects: More than ``max_redirects`` redirects.
            InvalidURL: A redirect is invalid or from https to http.
            HTTPStatusError: 4xx/5xx and the client raises for status.
        """
        request.extensions.setdefault("timeout", self._timeout)
        if middlewares is None and trace is None and retries is None:
            pipe = self._pipeline
        else:
            pipe = self._build_pipeline(middlewares, trace, retries)
        return await self._send(request, auth, follow_redirects, stream, pipe, trace_request_ctx)

    # -- request methods -----------------------------------------------------

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
    ) -> RequestContext:
        """Send a request: ``await`` the result for a read response, or use
        it with ``async with`` to stream it.

        Args:
            method: The method (``"GET"``, ``"POST"``, ...).
            url: Absolute URL, or relative to ``base_url``.
            content: Raw body: bytes, text (UTF-8) or (async) iterable of
                bytes.
            data: Form fields (``application/x-www-form-urlencoded``, or
                multipart with ``files``).
            files: Files for a ``multipart/form-data`` body.
            json: A value sent as JSON (RFC 8259).
            params: Query parameters (merged over the client's).
            headers: Header fields (merged over the client's).
            cookies: Cookies for this request only (sent to its origin).
            auth: Authentication (default: the client's; ``None``: none,
                except credentials in the URL).
            timeout: Time limits in seconds or a :class:`~webwire.Timeout`
                (``None``: no limit).
            follow_redirects: Follow redirects (default: the client's).
            extensions: Extra details for the transport, e.g.
                ``{"http_versions": {"HTTP/3"}}`` to force HTTP/3 (RFC 9114)
                for this request, or a set without ``"HTTP/3"`` to keep it
                on TCP (see ``http_versions`` of the client).
            middlewares: Middlewares of this request instead of the
                client's (``()``: none; ``None``: the client's).
            trace: Trace configs of this request instead of the client's
                (``()``: none).
            trace_request_ctx: Given to each trace config's context factory
                (``trace_config_ctx.trace_request_ctx`` in the callbacks).
            retries: Retry policy of this request: a number or a
                :class:`~webwire.Retry` (``0``: none; ``None``: the client's).

        Returns:
            A :class:`RequestContext`: awaitable and async context manager.

        Raises:
            See :meth:`build_request` and :meth:`send` (raised when awaited).
        """
        return RequestContext(
            self,
            (
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
            ),
        )

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
    ) -> RequestContext:
        """Stream a response: ``async with client.stream("GET", url) as r``.

        Takes the arguments of :meth:`request`; the body is read as it is
        iterated and the connection released when the block exits.

        Returns:
            A :class:`RequestContext`.
        """
        return RequestContext(
            self,
            (
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
            ),
        )

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
    ) -> RequestContext:
        """``GET`` (RFC 9110 section 9.3.1); see :meth:`request`."""
        return RequestContext(
            self,
            (
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
            ),
        )

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
    ) -> RequestContext:
        """``HEAD`` (RFC 9110 section 9.3.2); see :meth:`request`."""
        return RequestContext(
            self,
            (
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
            ),
        )

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
    ) -> RequestContext:
        """``OPTIONS`` (RFC 9110 section 9.3.7); see :meth:`request`."""
        return RequestContext(
            self,
            (
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
            ),
        )

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
    ) -> RequestContext:
        """``DELETE`` (RFC 9110 section 9.3.5); see :meth:`request`."""
        return RequestContext(
            self,
            (
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
            ),
        )

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
    ) -> RequestContext:
        """``POST`` (RFC 9110 section 9.3.3); see :meth:`request`."""
        return RequestContext(
            self,
            (
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
            ),
        )

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
    ) -> RequestContext:
        """``PUT`` (RFC 9110 section 9.3.4); see :meth:`request`."""
        return RequestContext(
            self,
            (
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
            ),
        )

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
    ) -> RequestContext:
        """``PATCH`` (RFC 5789); see :meth:`request`."""
        return RequestContext(
            self,
            (
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
            ),
        )

    # -- server-sent events --------------------------------------------------

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
    ) -> EventSource:
        """Receive server-sent events (HTML Living Standard, section 9.2):
        ``async for event in client.sse(url)``, or ``async with
        client.sse(url) as source: async for event in source``.

        The request carries ``Accept: text/event-stream``, ``Cache-Control:
        no-store`` and, when reconnecting (or given), ``Last-Event-ID``.
        See :class:`~webwire.http.EventSource` for reconnection.

        Args:
            url: Absolute URL, or relative to ``base_url``.
            method: The method (``GET``; a ``POST`` with a body works too,
                with a body that can be sent again when reconnecting).
            params: Query parameters.
            headers: Header fields (over the client's and the ones above).
            cookies: Cookies for these requests only.
            content: Raw request body.
            data: Form fields.
            json: A value sent as JSON.
            auth: Authentication (default: the client's).
            timeout: Time limits in seconds or a :class:`~webwire.Timeout`;
                by default the client's, with a 60 s read timeout (a silent
                stream is taken as dropped and reconnected) and no total.
            follow_redirects: Follow redirects (default: the client's).
            retry: Reconnection policy: a ``Retry`` counting consecutive
                failed attempts (its backoff is a lower bound on the wait),
                an ``int`` (``Retry(n)``; default 5), or ``None`` for no
                reconnection.
            last_event_id: Last event ID to resume from (sent as
                ``Last-Event-ID`` on the first request too).
            max_event_size: Most characters of one line plus an event's
                data (:class:`~webwire.RemoteProtocolError` beyond).
            extensions: Extra details for the transport.

        Returns:
            An :class:`~webwire.http.EventSource` of
            :class:`~webwire.ServerSentEvent` items.

        Raises:
            SSEError: (when entered or iterated) A response is not ``200``
                with ``Content-Type: text/event-stream`` (nor ``204``).
            TransportError: (when iterated) A network error with no
                reconnection left.
            TypeError: ``retry`` has another type.
        """
        return EventSource(
            cast("AsyncClient", self),
            method,
            url,
            request_kwargs={
                "params": params,
                "headers": headers,
                "cookies": cookies,
                "content": content,
                "data": data,
                "json": json,
                "timeout": sse_timeout(self._timeout, timeout),
                "extensions": extensions,
            },
            send_kwargs={"auth": auth, "follow_redirects": follow_redirects},
            retry=retry,
            last_event_id=last_event_id,
            max_event_size=max_event_size,
        )

    def websocket(self, url: str | URL, **options: Any) -> Any:
        """Open a WebSocket connection (RFC 6455) whose handshake is a
        request of this client: ``ws = await client.websocket("/ws")`` or
        ``async with client.websocket("/ws") as ws: ...`` (``async for``
        reconnects), as with :func:`webwire.websocket.connect`, which it
        returns.

        What the handshake shares with the client's requests: its
        transport (TLS settings, proxy, mounts, Unix socket, connection
        limits), ``base_url`` (a relative URL is joined to it, ``http``
        becomes ``ws`` and ``https`` ``wss``; absolute ``ws``/``wss``/
        ``http``/``https`` URLs are taken as they are), its default header
        fields (``User-Agent`` included; ``Accept``, ``Accept-Encoding`` and
        hop-by-hop fields are left out), its cookies (the jar's cookies for
        the URL are sent; ``Set-Cookie`` fields of the handshake response
        are stored), its authentication (the client's ``auth``, or
        credentials in the URL: Basic, Digest, a function or an
        :class:`~webwire.Auth` flow; Digest answers the ``401`` challenge
        by sending the handshake again), its middlewares, event hooks and
        tracing.
        Redirects are not followed (RFC 6455 section 4.1).

        Args:
            url: ``ws``/``wss`` URL, ``http``/``https`` URL, or relative to
                ``base_url``.
            options: Options of :func:`webwire.websocket.connect`
                (``subprotocols``, ``additional_headers``, ``compression``,
                ``open_timeout``, ``ping_interval``, ``max_size``...); not
                ``proxy``, ``ssl`` or ``unix_socket_path`` (the client's
                apply).

        Returns:
            A :class:`webwire.websocket.connect` (await it for a
            :class:`~webwire.websocket.ClientConnection`).

        Raises:
            InvalidURL: The URL is invalid or relative without ``base_url``.
            ValueError: ``proxy``, ``ssl`` or ``unix_socket_path`` was given.
            ConnectionRejected, InvalidHandshake, TransportError: (when
                awaited) As for :func:`webwire.websocket.connect`.
        """
        from webwire.websocket._client import DEFAULT_USER_AGENT, client_websocket_url, connect

        if "client" in options:
            raise TypeError("client.websocket() uses this client: do not pass client=")
        client = cast("AsyncClient", self)
        options.setdefault(
            "user_agent_header", client.headers.get("User-Agent", DEFAULT_USER_AGENT)
        )
        return connect(client_websocket_url(client._base_url, url), client=client, **options)
