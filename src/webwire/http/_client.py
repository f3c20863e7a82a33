"""The asynchronous client: :class:`AsyncClient`.

It is the only implementation of request building, redirects, cookies,
authentication and timeouts; :class:`~webwire.Client` runs these very
coroutines on the blocking backend.
"""

from __future__ import annotations

import threading
from collections.abc import Generator
from typing import TYPE_CHECKING, Any, Union

from multidict import CIMultiDict, getversion
from yarl import URL

from webwire._backends import get_backend
from webwire._config import DEFAULT_LIMITS, DEFAULT_TIMEOUT, Limits, Timeout
from webwire._exceptions import TooManyRedirects, WebwireError

from ._auth import Auth, AuthTypes, BasicAuth, build_auth
from ._cookies import Cookies, CookieTypes
from ._decoders import accept_encoding
from ._models import Response
from ._redirects import build_redirect_request
from ._request import (
    HeaderTypes,
    Request,
    RequestContent,
    check_method,
    encode_body,
    validate_headers,
)
from ._transports import AsyncBaseTransport, HTTPTransport
from ._urls import (
    QueryParams,
    build_url,
    host_header,
    is_https_upgrade,
    merge_params,
    normalize_params,
    origin,
    parse_url,
    split_userinfo,
)

if TYPE_CHECKING:
    from webwire._backends.base import Backend
    from webwire._transport.connect import CertTypes, VerifyTypes

__all__ = ["USE_CLIENT_DEFAULT", "AsyncClient", "RequestContext", "UseClientDefault"]

_STANDARD_METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})
_DRAIN_LIMIT = 64 * 1024
_URL_CACHE_SIZE = 256


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

# (method, url, params, headers, cookies, content, data, files, json, auth,
#  timeout, follow_redirects, extensions)
_Args = tuple[Any, ...]


def _to_timeout(timeout: float | Timeout | None) -> Timeout:
    if isinstance(timeout, Timeout):
        return timeout
    return Timeout(timeout)


def _merge_param_lists(
    first: list[tuple[str, str]], second: list[tuple[str, str]]
) -> list[tuple[str, str]]:
    """Parameters of ``first`` whose names are not in ``second``, then
    ``second``."""
    if not first:
        return second
    names = {name for name, _ in second}
    return [item for item in first if item[0] not in names] + second


class RequestContext:
    """What :meth:`AsyncClient.get` and friends return.

    ``await`` it for a :class:`~webwire.Response` whose body is read (the
    connection is released), or use it as ``async with`` for a streamed
    response, released on exit.
    """

    __slots__ = ("_args", "_client", "_response")

    def __init__(self, client: AsyncClient, args: _Args) -> None:
        self._client = client
        self._args = args
        self._response: Response | None = None

    def __await__(self) -> Generator[Any, None, Response]:
        return self._client._request(self._args, False).__await__()

    async def __aenter__(self) -> Response:
        self._response = await self._client._request(self._args, True)
        return self._response

    async def __aexit__(self, *args: object) -> None:
        response, self._response = self._response, None
        if response is not None:
            await response._aclose()


class AsyncClient:
    """An HTTP client for asyncio and trio, with connection pooling,
    redirects, cookies and authentication.

    ``await client.get(url)`` returns a read :class:`~webwire.Response`;
    ``async with client.get(url) as r`` (or ``client.stream("GET", url)``)
    streams it. The concurrency library is detected at the first request.

    Args:
        auth: Authentication for every request: an :class:`~webwire.Auth`,
            ``(user, password)`` (Basic) or a function of the request.
        params: Query parameters added to every request.
        headers: Header fields sent with every request (they override the
            defaults ``Accept``, ``Accept-Encoding`` and ``User-Agent``).
        cookies: Initial cookies (mapping or :class:`~webwire.Cookies`);
            ``Set-Cookie`` fields of responses are stored in
            :attr:`cookies`.
        verify: TLS verification: ``True``, ``False``, a CA bundle path or an
            :class:`ssl.SSLContext`.
        cert: Client certificate: a PEM path or ``(cert, key)``.
        http1: Speak HTTP/1.1.
        http2: Speak HTTP/2 (RFC 9113): offered with ALPN next to HTTP/1.1
            over TLS, the server picks. With ``http1=False`` only HTTP/2 is
            spoken: over TLS a server without ``h2`` fails with
            :class:`~webwire.ConnectError`, and cleartext ``http://`` uses
            HTTP/2 with prior knowledge (h2c, section 3.3).
        timeout: Default time limits in seconds (a number for connect, read,
            write and pool, a :class:`~webwire.Timeout`, or ``None``).
        limits: Pool and response limits.
        max_redirects: Most redirects followed by one request.
        follow_redirects: Follow redirects by default.
        follow_insecure_redirects: Follow redirects from ``https`` to
            ``http`` (refused with :class:`~webwire.InvalidURL` by default).
        raise_for_status: Raise :class:`~webwire.HTTPStatusError` for every
            final 4xx/5xx response (after reading its body).
        base_url: Prefix of relative request URLs.
        transport: The transport (default: :class:`~webwire.HTTPTransport`
            built from ``verify``, ``cert``, ``limits``, ``http1``, ``http2``
            and ``trust_env``).
        trust_env: Honour ``SSL_CERT_FILE``/``SSL_CERT_DIR``.

    Raises:
        InvalidURL: ``base_url`` is not an absolute http(s) URL.
        LocalProtocolError: A header holds forbidden characters.
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
        timeout: float | Timeout | None = DEFAULT_TIMEOUT,
        limits: Limits = DEFAULT_LIMITS,
        max_redirects: int = 20,
        follow_redirects: bool = True,
        follow_insecure_redirects: bool = False,
        raise_for_status: bool = False,
        base_url: str | URL = "",
        transport: AsyncBaseTransport | None = None,
        trust_env: bool = True,
        _backend: str | Backend | None = None,
    ) -> None:
        from webwire import __version__

        self._auth = build_auth(auth)
        self._params = normalize_params(params) if params is not None else []
        self._headers: CIMultiDict[str] = CIMultiDict(
            validate_headers(headers) if headers is not None else []
        )
        self._defaults = [
            ("Accept", "*/*"),
            ("Accept-Encoding", accept_encoding()),
            ("User-Agent", f"webwire/{__version__}"),
        ]
        self._base_headers: list[tuple[str, str]] = []
        self._host_in_base = False
        self._headers_version = -1
        self._cookies = Cookies(cookies)
        self._timeout = _to_timeout(timeout)
        self._max_decoded_size = limits.max_decompressed_size
        self.max_redirects = max_redirects
        self.follow_redirects = follow_redirects
        self.follow_insecure_redirects = follow_insecure_redirects
        self.raise_for_status = raise_for_status
        self._base_url = parse_url(base_url) if base_url else None
        self._transport = transport or HTTPTransport(
            verify=verify,
            cert=cert,
            limits=limits,
            http1=http1,
            http2=http2,
            trust_env=trust_env,
        )
        self._backend_spec = _backend
        self._backend: Backend | None = None
        self._init_lock = threading.Lock()
        self._loop: object | None = None  # the event loop of the first request
        self._sync = _backend == "sync" or getattr(_backend, "name", None) == "sync"
        self._closed = False
        self._url_cache: dict[str, tuple[URL, str, tuple[str, str] | None]] = {}

    # -- configuration ----------------------------------------------------

    @property
    def headers(self) -> CIMultiDict[str]:
        """Header fields sent with every request (mutable)."""
        return self._headers

    @headers.setter
    def headers(self, headers: HeaderTypes) -> None:
        self._headers = CIMultiDict(validate_headers(headers))

    @property
    def cookies(self) -> Cookies:
        """The cookie jar, updated from every response."""
        return self._cookies

    @cookies.setter
    def cookies(self, cookies: CookieTypes) -> None:
        self._cookies = Cookies(cookies)

    @property
    def auth(self) -> Auth | None:
        """Authentication of every request."""
        return self._auth

    @auth.setter
    def auth(self, auth: AuthTypes | None) -> None:
        self._auth = build_auth(auth)

    @property
    def params(self) -> list[tuple[str, str]]:
        """Query parameters of every request, as pairs."""
        return list(self._params)

    @property
    def timeout(self) -> Timeout:
        """Default time limits."""
        return self._timeout

    @timeout.setter
    def timeout(self, timeout: float | Timeout | None) -> None:
        self._timeout = _to_timeout(timeout)

    @property
    def base_url(self) -> URL | None:
        """Prefix of relative request URLs."""
        return self._base_url

    @property
    def transport(self) -> AsyncBaseTransport:
        """The transport requests are handed to."""
        return self._transport

    @property
    def is_closed(self) -> bool:
        """Whether :meth:`aclose` was called."""
        return self._closed

    def _header_base(self) -> list[tuple[str, str]]:
        version = getversion(self._headers)  # type: ignore[arg-type]
        if version != self._headers_version:
            client_fields = validate_headers(self._headers)
            merged: CIMultiDict[str] = CIMultiDict(self._defaults)
            merged.update(client_fields)
            self._base_headers = list(merged.items())
            self._host_in_base = "Host" in merged
            self._headers_version = version
        return self._base_headers

    # -- building requests ---------------------------------------------------

    def _resolve_url(self, url: str | URL) -> tuple[URL, str, tuple[str, str] | None]:
        if isinstance(url, str):
            cached = self._url_cache.get(url)
            if cached is not None:
                return cached
        full, url_auth = split_userinfo(build_url(self._base_url, url))
        entry = (full, host_header(full), url_auth)
        if isinstance(url, str):
            if len(self._url_cache) >= _URL_CACHE_SIZE:
                self._url_cache.clear()
            self._url_cache[url] = entry
        return entry

    def _build(self, args: _Args) -> Request:
        (method, url, params, headers, cookies, content, data, files, json, _, timeout) = args[:11]
        extensions = args[12]
        if method not in _STANDARD_METHODS:
            method = check_method(method)
        full, host, url_auth = self._resolve_url(url)
        if params is not None or self._params:
            extra = normalize_params(params) if params is not None else []
            full = merge_params(full, _merge_param_lists(self._params, extra))
        base = self._header_base()
        if self._host_in_base:
            fields: CIMultiDict[str] = CIMultiDict(base)
        else:
            fields = CIMultiDict([("Host", host), *base])
        if headers is not None:
            fields.update(validate_headers(headers))
        body_headers, body = encode_body(content, data, files, json)
        ext: dict[str, Any] = {
            "timeout": self._timeout if timeout is USE_CLIENT_DEFAULT else _to_timeout(timeout)
        }
        if extensions:
            ext.update(extensions)
        request = Request._build(method, full, fields, body, body_headers, ext, url_auth)
        if cookies is not None:
            request._cookies = cookies if isinstance(cookies, Cookies) else Cookies(cookies)
            self._cookies.set_cookie_header(request, request._cookies)
        elif not self._cookies.jar_is_empty:
            self._cookies.set_cookie_header(request)
        return request

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
            )
        )

    # -- sending -----------------------------------------------------------

    def _init_backend(self) -> Backend:
        # The blocking client's first requests may come from many threads at
        # once: one of them binds the backend, the others use it.
        with self._init_lock:
            backend = self._backend
            if backend is not None:
                return backend
            spec = self._backend_spec
            backend = spec if spec is not None and not isinstance(spec, str) else get_backend(spec)
            self._transport._bind_backend(backend)
            self._loop = backend.loop_token()
            self._backend = backend
            return backend

    def _other_loop(self, backend: Backend) -> WebwireError:
        """The error of a request made on another event loop than the one
        the client's connections belong to (often: a second
        ``asyncio.run()`` after the first one closed its loop)."""
        return WebwireError(
            f"this AsyncClient was first used on another {backend.name} event loop (now "
            "closed, or still running elsewhere), and its connections belong to that loop: "
            "create the client inside the event loop that uses it, e.g. "
            "'async with AsyncClient() as client:' in the coroutine given to asyncio.run()"
        )

    async def _request(self, args: _Args, stream: bool) -> Response:
        request = self._build(args)
        return await self._send(request, args[9], args[11], stream)

    async def send(
        self,
        request: Request,
        *,
        stream: bool = False,
        auth: AuthArg = USE_CLIENT_DEFAULT,
        follow_redirects: FollowArg = USE_CLIENT_DEFAULT,
    ) -> Response:
        """Send a request, following redirects and running authentication.

        Args:
            request: The request (from :meth:`build_request` or built by
                hand; it gets the client's timeout when it has none).
            stream: Return with the body unread (the caller must read or
                close the response).
            auth: Authentication for this request (``None``: the client's).
            follow_redirects: Follow redirects for this request.

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
        return await self._send(request, auth, follow_redirects, stream)

    async def _send(
        self, request: Request, auth: AuthArg, follow_redirects: FollowArg, stream: bool
    ) -> Response:
        if self._closed:
            raise RuntimeError("the client is closed: create a new one to send requests")
        backend = self._backend or self._init_backend()
        if self._loop is not None and backend.loop_token() is not self._loop:
            raise self._other_loop(backend)
        total = request.extensions["timeout"].total
        request.extensions["deadline"] = None if total is None else backend.monotonic() + total
        no_auth = auth is None or isinstance(auth, UseClientDefault)
        resolved = self._auth if no_auth else build_auth(auth)  # type: ignore[arg-type]
        if resolved is None and request._url_auth is not None:
            resolved = BasicAuth(*request._url_auth)
        if follow_redirects is USE_CLIENT_DEFAULT:
            follow_redirects = self.follow_redirects
        response = await self._send_handling_redirects(request, resolved, bool(follow_redirects))
        if stream and not (self.raise_for_status and response.is_error):
            return response
        try:
            await response._aread()
            if not response._closed:
                # A body that was already in memory leaves the stream open.
                await response._aclose()
            if self.raise_for_status:
                response.raise_for_status()
        except BaseException:
            await response._aclose()
            raise
        return response

    async def _send_handling_redirects(
        self, request: Request, auth: Auth | None, follow_redirects: bool
    ) -> Response:
        history: list[Response] = []
        first = request
        redirects = 0
        while True:
            hop_auth = auth
            if auth is not None and request is not first:
                old, new = first.url, request.url
                if origin(old) != origin(new) and not is_https_upgrade(old, new):
                    hop_auth = None
            response = await self._send_handling_auth(request, hop_auth, history)
            if not follow_redirects or not response.has_redirect_location:
                response.history = history
                return response
            try:
                if redirects >= self.max_redirects:
                    raise TooManyRedirects(
                        f"exceeded the limit of {self.max_redirects} redirects", request=request
                    )
                next_request = build_redirect_request(
                    request,
                    response,
                    cookies=self._cookies,
                    first=first,
                    allow_insecure=self.follow_insecure_redirects,
                )
                await response._adrain(_DRAIN_LIMIT)
            except BaseException:
                await response._aclose()
                raise
            response.history = list(history)
            history.append(response)
            redirects += 1
            request = next_request

    async def _send_handling_auth(
        self, request: Request, auth: Auth | None, history: list[Response]
    ) -> Response:
        if auth is None:
            return await self._send_single(request)
        if auth.requires_request_body and request._content is None:
            await request.aread()
        flow = auth.auth_flow(request)
        try:
            try:
                request = next(flow)
            except StopIteration:
                return await self._send_single(request)
            while True:
                response = await self._send_single(request)
                try:
                    if auth.requires_response_body:
                        await response._aread()
                    try:
                        next_request = flow.send(response)
                    except StopIteration:
                        return response
                    await response._adrain(_DRAIN_LIMIT)
                except BaseException:
                    await response._aclose()
                    raise
                response.history = list(history)
                history.append(response)
                request = next_request
        finally:
            flow.close()

    async def _send_single(self, request: Request) -> Response:
        backend = self._backend
        assert backend is not None
        start = backend.monotonic()
        try:
            response = await self._transport.handle_async_request(request)
        except WebwireError as exc:
            if exc.request is None:
                exc.request = request
            raise
        response._clock = backend.monotonic
        response._start = start
        response._sync = self._sync
        response._max_decoded_size = self._max_decoded_size
        if "Set-Cookie" in response.headers:
            self._cookies.extract_cookies(response)
        return response

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
            auth: Authentication (``None``/default: the client's).
            timeout: Time limits in seconds or a :class:`~webwire.Timeout`
                (``None``: no limit).
            follow_redirects: Follow redirects (default: the client's).
            extensions: Extra details for the transport.

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
            ),
        )

    def stream(
        self,
        method: str,
        url: str | URL,
        **kwargs: Any,
    ) -> RequestContext:
        """Stream a response: ``async with client.stream("GET", url) as r``.

        Takes the arguments of :meth:`request`; the body is read as it is
        iterated and the connection released when the block exits.

        Returns:
            A :class:`RequestContext`.
        """
        return self.request(method, url, **kwargs)

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
            ),
        )

    def head(self, url: str | URL, **kwargs: Any) -> RequestContext:
        """``HEAD`` (RFC 9110 section 9.3.2); see :meth:`request`."""
        return self.request("HEAD", url, **kwargs)

    def options(self, url: str | URL, **kwargs: Any) -> RequestContext:
        """``OPTIONS`` (RFC 9110 section 9.3.7); see :meth:`request`."""
        return self.request("OPTIONS", url, **kwargs)

    def delete(self, url: str | URL, **kwargs: Any) -> RequestContext:
        """``DELETE`` (RFC 9110 section 9.3.5); see :meth:`request`."""
        return self.request("DELETE", url, **kwargs)

    def post(self, url: str | URL, **kwargs: Any) -> RequestContext:
        """``POST`` (RFC 9110 section 9.3.3); see :meth:`request`."""
        return self.request("POST", url, **kwargs)

    def put(self, url: str | URL, **kwargs: Any) -> RequestContext:
        """``PUT`` (RFC 9110 section 9.3.4); see :meth:`request`."""
        return self.request("PUT", url, **kwargs)

    def patch(self, url: str | URL, **kwargs: Any) -> RequestContext:
        """``PATCH`` (RFC 5789); see :meth:`request`."""
        return self.request("PATCH", url, **kwargs)

    # -- lifetime ------------------------------------------------------------

    async def aclose(self) -> None:
        """Close the transport and its connections. Idempotent."""
        if not self._closed:
            self._closed = True
            backend = self._backend
            loop = self._loop
            if loop is not None and backend is not None and backend.loop_token() is not loop:
                raise self._other_loop(backend)
            await self._transport.aclose()

    async def __aenter__(self) -> AsyncClient:
        if self._closed:
            raise RuntimeError("the client is closed and cannot be opened again")
        return self

    async def __aexit__(self, *args: object) -> None:
        await self.aclose()

    def __repr__(self) -> str:
        return f"<AsyncClient base_url={str(self._base_url) if self._base_url else ''!r}>"
