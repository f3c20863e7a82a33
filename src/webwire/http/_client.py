"""The asynchronous client: :class:`AsyncClient`.

It is the only implementation of request building, redirects, cookies,
authentication and timeouts; :class:`~webwire.Client` runs these very
coroutines on the blocking backend.
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Mapping, Sequence
from typing import TYPE_CHECKING, Any

from multidict import CIMultiDict, getversion
from yarl import URL

from webwire._backends import get_backend, init_lock
from webwire._config import DEFAULT_LIMITS, DEFAULT_TIMEOUT, Limits, Timeout
from webwire._exceptions import TooManyRedirects, WebwireError
from webwire._retry import Retry

from ._asgi import ASGITransport
from ._auth import Auth, AuthTypes, BasicAuth, FlowDriver, NetRCAuth, build_auth, netrc_path
from ._client_setup import app_transport, build_transports
from ._cookies import Cookies, CookieTypes, bind_cookies
from ._decoders import accept_encoding, check_text_encoding
from ._methods import (
    USE_CLIENT_DEFAULT,
    AuthArg,
    FollowArg,
    RequestContext,
    UseClientDefault,
    _Args,
    _AsyncRequestMethods,
)
from ._middleware import (
    EventHook,
    Middleware,
    Pipeline,
    check_event_hooks,
    check_middlewares,
)
from ._models import Response
from ._redirects import build_redirect_request
from ._request import (
    HeaderTypes,
    Request,
    check_method,
    encode_body,
    split_removals,
    validate_headers,
)
from ._tracing import TraceConfig, check_trace_configs
from ._transports import AsyncBaseTransport
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
    from webwire._transport.altsvc import AltSvcCache
    from webwire._transport.connect import CertTypes, VerifyTypes
    from webwire._transport.proxy import ProxyTypes

__all__ = ["USE_CLIENT_DEFAULT", "AsyncClient", "RequestContext", "UseClientDefault"]

_STANDARD_METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})
_DRAIN_LIMIT = 64 * 1024
_URL_CACHE_SIZE = 256




def _to_timeout(timeout: float | Timeout | None) -> Timeout:
    if isinstance(timeout, Timeout):
        return timeout
    return Timeout(timeout)


def _check_body_limit(value: Any) -> None:
    """Check the ``max_body_size`` request extension (bytes or ``None``).

    Raises:
        ValueError: It is not a non-negative int or ``None``.
    """
    if value is not None and (isinstance(value, bool) or not isinstance(value, int) or value < 0):
        raise ValueError(
            f"the max_body_size extension must be a number of bytes >= 0 or None, not {value!r}"
        )


def _merge_param_lists(
    first: list[tuple[str, str]], second: list[tuple[str, str]]
) -> list[tuple[str, str]]:
    """Parameters of ``first`` whose names are not in ``second``, then
    ``second``."""
    if not first:
        return second
    names = {name for name, _ in second}
    return [item for item in first if item[0] not in names] + second




class AsyncClient(_AsyncRequestMethods):
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
            defaults ``Accept``, ``Accept-Encoding`` and ``User-Agent``; a
            field set to ``None`` removes that default, for example
            ``{"User-Agent": None}``).
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
        http3: Use HTTP/3 (RFC 9114, QUIC over UDP) for ``https`` origins
            that advertise it: after a response with ``Alt-Svc: h3=":443"``
            (RFC 7838; kept in :attr:`alt_svc` for its ``ma`` seconds,
            86,400 by default), new requests to that origin go over HTTP/3
            to the advertised port. When the QUIC handshake fails
            (:class:`~webwire.ConnectError`,
            :class:`~webwire.ConnectTimeout`: UDP blocked, nobody
            listening) the request goes over TCP and the origin is not
            tried over HTTP/3 for 5 minutes, doubling per failure up to 48
            hours (RFC 7838 section 2.4). Not used through a proxy or a
            Unix socket. ``response.http_version`` tells which version
            answered.
        http_versions: The HTTP versions to use, a subset of
            ``{"HTTP/1.1", "HTTP/2", "HTTP/3"}``, instead of ``http1``,
            ``http2`` and ``http3``: ``{"HTTP/3"}`` alone forces HTTP/3 on
            the URL's own host and port (a failed handshake raises; no
            TCP); ``{"HTTP/2", "HTTP/3"}`` is ``http1=False, http3=True``.
            A request may narrow it with ``extensions={"http_versions":
            {...}}`` (``{"HTTP/3"}`` forces HTTP/3 for that request, a set
            without it keeps it on TCP).
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
        trust_env: Honour ``SSL_CERT_FILE``/``SSL_CERT_DIR``; use the
            ``.netrc`` file (``$NETRC`` or ``~/.netrc``, when it exists) for
            Basic credentials of requests without other authentication; and,
            when neither ``proxy``, ``mounts`` nor ``transport`` is given,
            the proxy variables ``http_proxy``, ``https_proxy``,
            ``all_proxy`` and ``no_proxy`` (lower or upper case, lower case
            wins), read once here.
        default_encoding: Text encoding of responses that declare no
            ``charset``: a codec name, or a function ``(body: bytes) -> str |
            None`` choosing one from the body (called with the whole body,
            or the first chunk when streaming; ``None`` from it means no
            choice). ``None`` (default): UTF-8 when the body is valid UTF-8,
            else a guess (UTF-8 when streaming). Used by ``text``,
            ``iter_text`` and ``iter_lines``.
        middlewares: Functions ``async def fn(request, handler) ->
            Response`` wrapping every request (aiohttp's client middleware
            model), outermost first. A middleware may change the request,
            call ``await handler(request)`` any number of times (retry) or
            return a response without calling it; its exceptions propagate
            unchanged. The chain runs once per redirect hop (redirects are
            followed outside it); authentication runs inside ``handler``, so
            a middleware sees the request before ``Authorization`` is added
            and gets the response that ends the authentication exchange.
            Plain functions are accepted too (a result is awaited only when
            awaitable).
        trace: :class:`~webwire.TraceConfig` objects whose callbacks follow
            every request (aiohttp's tracing model).
        event_hooks: ``{"request": [fn, ...], "response": [fn, ...]}``:
            ``fn(request)`` before each hop is sent, ``fn(response)`` when its
            head arrived (body unread: a hook may read it). An exception from
            a hook propagates (``raise_for_status`` in a response hook).
        retries: Retries per redirect hop: a number (``Retry(n)``) or a
            :class:`~webwire.Retry`; ``0`` (default): none beyond the one
            retry of a request a reused connection lost before processing it.
            Connection errors are retried for any method; read errors and the
            statuses of ``Retry.status_forcelist`` for ``allowed_methods`` and
            replayable bodies only, waiting the backoff or ``Retry-After``
            within ``Timeout.total``. The response of the last attempt is
            returned, or its error raised.
        proxy: Send every request through this proxy: a URL
            (``http://``, ``https://``, ``socks4://``, ``socks4a://``,
            ``socks5://``, ``socks5h://``, credentials as
            ``user:password@``) or a :class:`~webwire.Proxy`. Proxy
            credentials go to the proxy only. Failures raise
            :class:`~webwire.ProxyError`.
        mounts: Transports for some URLs: ``{pattern: transport}`` where a
            pattern is ``"all://"``, ``"http://"``, ``"https://"``, with a
            host (``"all://example.com"``, ``"http://*.example.com"`` for
            subdomains, ``"all://*example.com"`` for the domain and its
            subdomains) and a port (``"https://example.com:8443"``). The most
            specific match wins; ``None`` as transport means the default
            transport (no proxy). Every request, redirects included, picks
            its transport by its own URL.
        uds: Path of a Unix domain socket to send every request to.
        local_address: Local IP address to bind connections to.
        app: An ASGI 3 application to send requests to in process, with no
            network (an :class:`~webwire.ASGITransport` is built for it).
            Open the client with ``async with`` for streamed responses;
            pass ``transport=ASGITransport(app, lifespan=True, ...)`` for
            the lifespan protocol and the other options.
        raise_app_exceptions: With ``app``: re-raise the app's exceptions
            (default), or answer ``500`` when it fails before responding.

    Cookies given as a mapping (or :class:`~webwire.Cookies` entries
    without a domain) are bound to the host of ``base_url``; without a base
    URL, to the host of the first request the client sends. They are never
    sent to other hosts. Use :meth:`Cookies.set` with ``domain=`` for
    cookies of other hosts.

    Raises:
        InvalidURL: ``base_url`` is not an absolute http(s) URL, a mount
            pattern or a proxy URL is invalid.
        UnsupportedProtocol: A proxy URL's scheme is not supported.
        ValueError: ``proxy`` is given with ``transport``.
        ValueError: ``http_versions`` is empty, names another version, or
            contradicts ``http1``, ``http2`` or ``http3``.
        ImportError: HTTP/3 is on and the ``qh3`` package is missing
            (a dependency of webwire: ``pip install qh3``).
        TypeError: A ``mounts`` value is not a transport or ``None``.
        LocalProtocolError: A header holds forbidden characters.
        TypeError: A middleware, hook or trace callback is not callable.
        ValueError: ``event_hooks`` has a key other than ``"request"`` and
            ``"response"``, or ``retries`` is negative.
        ValueError: Both ``app`` and ``transport`` are given.
        TypeError: ``app`` is not an ASGI app (a WSGI app needs
            :class:`~webwire.Client`).
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
        middlewares: Sequence[Middleware] = (),
        trace: Sequence[TraceConfig] = (),
        event_hooks: Mapping[str, Sequence[EventHook]] | None = None,
        retries: int | Retry = 0,
        proxy: ProxyTypes | None = None,
        mounts: dict[str, AsyncBaseTransport | None] | None = None,
        uds: str | None = None,
        local_address: str | None = None,
        app: Any = None,
        raise_app_exceptions: bool = True,
        _backend: str | Backend | None = None,
    ) -> None:
        from webwire import __version__

        if app is not None:
            transport = app_transport(app, transport, raise_app_exceptions, _backend)

        self._auth = build_auth(auth)
        self._params = normalize_params(params) if params is not None else []
        self._headers: CIMultiDict[str] = CIMultiDict()
        if headers is not None:
            self.headers = headers
        self._defaults = [
            ("Accept", "*/*"),
            ("Accept-Encoding", accept_encoding()),
            ("User-Agent", f"webwire/{__version__}"),
        ]
        self._base_headers: list[tuple[str, str]] = []
        self._host_in_base = False
        self._headers_version = -1
        self._timeout = _to_timeout(timeout)
        self._max_decoded_size = limits.max_decompressed_size
        # auth, cookies and body decoding
        self._trust_env = trust_env
        self._netrc: NetRCAuth | bool | None = None  # None: not looked up yet
        self._max_body_size = limits.max_body_size
        if isinstance(default_encoding, str):
            try:
                check_text_encoding(default_encoding)
            except WebwireError as exc:
                raise ValueError(f"default_encoding: {exc}") from None
        self._default_encoding = default_encoding
        self._pending_cookies: list[Cookies] = []
        self.max_redirects = max_redirects
        self.follow_redirects = follow_redirects
        self.follow_insecure_redirects = follow_insecure_redirects
        self.raise_for_status = raise_for_status
        self._base_url = parse_url(base_url) if base_url else None
        self.cookies = cookies  # type: ignore[assignment]
        self._transport, self._router = build_transports(
            transport,
            proxy,
            mounts,
            verify=verify,
            cert=cert,
            limits=limits,
            http1=http1,
            http2=http2,
            trust_env=trust_env,
            uds=uds,
            local_address=local_address,
            http3=http3,
            http_versions=http_versions,
        )
        self._backend_spec = _backend
        self._backend: Backend | None = None
        self._init_lock = init_lock()
        self._loop: object | None = None  # the event loop of the first request
        self._sync = _backend == "sync" or getattr(_backend, "name", None) == "sync"
        self._closed = False
        # An in-process ASGI app's task group lives while the client is open.
        self._transport_entered = False
        self._url_cache: dict[str, tuple[URL, str, tuple[str, str] | None]] = {}
        # Request pipeline (middlewares, trace, event hooks, retries).
        self._owner: Any = self
        self._middlewares = check_middlewares(middlewares, self._sync)
        self._traces = check_trace_configs(trace, self._sync)
        self._event_hooks = check_event_hooks(event_hooks, self._sync)
        self._hooks_live = event_hooks is not None
        self._retry = Retry.from_int(retries)
        self._pipeline = self._build_pipeline()

    # -- configuration ----------------------------------------------------

    @property
    def headers(self) -> CIMultiDict[str]:
        """Header fields sent with every request (mutable)."""
        return self._headers

    @headers.setter
    def headers(self, headers: HeaderTypes) -> None:
        own, removed = split_removals(headers)
        merged: CIMultiDict[Any] = CIMultiDict(validate_headers(own))
        for name in removed:
            merged[name] = None
        self._headers = merged

    @property
    def cookies(self) -> Cookies:
        """The cookie jar, updated from every response."""
        return self._cookies

    @cookies.setter
    def cookies(self, cookies: CookieTypes | None) -> None:
        jar, unbound = bind_cookies(cookies, self._base_url)
        self._cookies = jar
        self._pending_cookies = [unbound] if unbound is not None else []

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

    @property
    def alt_svc(self) -> AltSvcCache | None:
        """The Alt-Svc cache of the client's default transport (RFC 7838):
        the HTTP/3 alternatives of origins, learnt from responses when
        ``http3`` is on, and the ones that failed to connect. Seed it to
        try HTTP/3 for an origin that never sent ``Alt-Svc``:
        ``client.alt_svc.add("https://example.com")`` (its own UDP port).
        ``None`` when the transport is not an
        :class:`~webwire.HTTPTransport`."""
        return getattr(self._transport, "alt_svc", None)

    @property
    def event_hooks(self) -> dict[str, list[EventHook]]:
        """The event hooks: ``{"request": [...], "response": [...]}``; the
        lists may be changed in place, or a new mapping assigned.

        Raises:
            ValueError, TypeError: On assignment, as for the constructor.
        """
        if not self._hooks_live:
            self._hooks_live = True
            self._pipeline = self._build_pipeline()
        return self._event_hooks

    @event_hooks.setter
    def event_hooks(self, event_hooks: Mapping[str, Sequence[EventHook]]) -> None:
        self._event_hooks = check_event_hooks(event_hooks, self._sync)
        self._hooks_live = True
        self._pipeline = self._build_pipeline()

    @property
    def retries(self) -> Retry:
        """The retry policy of every request."""
        return self._retry

    def _build_pipeline(
        self,
        middlewares: Any = None,
        trace: Any = None,
        retries: Any = None,
    ) -> Pipeline | None:
        """The pipeline of the client's settings, or of one request's
        overrides (``None``: the client's)."""
        sync = self._sync
        return Pipeline.build(
            self._middlewares if middlewares is None else check_middlewares(middlewares, sync),
            self._event_hooks if self._hooks_live else None,
            self._traces if trace is None else check_trace_configs(trace, sync),
            self._retry if retries is None else Retry.from_int(retries),
            sync,
        )

    def _header_base(self) -> list[tuple[str, str]]:
        version = getversion(self._headers)  # type: ignore[arg-type]
        if version != self._headers_version:
            own, removed = split_removals(self._headers)
            merged: CIMultiDict[str] = CIMultiDict(self._defaults)
            merged.update(validate_headers(own))
            for name in removed:  # {"User-Agent": None} removes a default
                merged.popall(name, None)
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
            own, removed = split_removals(headers)
            fields.update(validate_headers(own))
            for name in removed:
                fields.popall(name, None)
        body_headers, body = encode_body(content, data, files, json)
        ext: dict[str, Any] = {
            "timeout": self._timeout if timeout is USE_CLIENT_DEFAULT else _to_timeout(timeout)
        }
        if extensions:
            ext.update(extensions)
            if "max_body_size" in extensions:
                _check_body_limit(extensions["max_body_size"])
        request = Request._build(method, full, fields, body, body_headers, ext, url_auth)
        if self._pending_cookies:
            self._bind_pending_cookies(request)
        if cookies is not None:
            request._cookies = cookies if isinstance(cookies, Cookies) else Cookies(cookies)
            self._cookies.set_cookie_header(request, request._cookies)
        elif not self._cookies.jar_is_empty:
            self._cookies.set_cookie_header(request)
        return request

    def _bind_pending_cookies(self, request: Request) -> None:
        """Bind the client's domain-less cookies to the host of its first
        request (no ``base_url`` was given)."""
        try:
            pending = self._pending_cookies.pop()  # atomic: one thread wins
        except IndexError:
            return
        jar, _ = bind_cookies(pending, request.url)
        self._cookies.update(jar)

    def _netrc_auth(self, request: Request) -> Auth | None:
        """Basic credentials for the request's host from ``.netrc``
        (``trust_env``), unless the request carries ``Authorization``."""
        netrc = self._netrc
        if netrc is None:
            path = netrc_path()
            netrc = self._netrc = NetRCAuth(path) if path is not None else False
        if netrc is False or "Authorization" in request.headers:
            return None
        assert isinstance(netrc, NetRCAuth)
        credentials = netrc.credentials(request.url.host or "")
        return None if credentials is None else BasicAuth(*credentials)

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
            if self._router is not None:
                for mounted in self._router.transports():
                    mounted._bind_backend(backend)
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
        if args[13] is None and args[14] is None and args[16] is None:
            return await self._send(request, args[9], args[11], stream, self._pipeline, args[15])
        pipe = self._build_pipeline(args[13], args[14], args[16])
        return await self._send(request, args[9], args[11], stream, pipe, args[15])

    async def _send(
        self,
        request: Request,
        auth: AuthArg,
        follow_redirects: FollowArg,
        stream: bool,
        pipe: Pipeline | None = None,
        trace_request_ctx: Any = None,
    ) -> Response:
        if self._closed:
            raise RuntimeError("the client is closed: create a new one to send requests")
        backend = self._backend or self._init_backend()
        if self._loop is not None and backend.loop_token() is not self._loop:
            raise self._other_loop(backend)
        total = request.extensions["timeout"].total
        request.extensions["deadline"] = None if total is None else backend.monotonic() + total
        # auth=None: no authentication but the URL's; default: the client's,
        # else the URL's, else .netrc (trust_env).
        if auth is USE_CLIENT_DEFAULT:
            resolved = self._auth
            if resolved is None:
                if request._url_auth is not None:
                    resolved = BasicAuth(*request._url_auth)
                elif self._trust_env and self._netrc is not False:
                    resolved = self._netrc_auth(request)
        elif auth is None:
            resolved = None if request._url_auth is None else BasicAuth(*request._url_auth)
        else:
            resolved = build_auth(auth)  # type: ignore[arg-type]
        if follow_redirects is USE_CLIENT_DEFAULT:
            follow_redirects = self.follow_redirects
        if pipe is None:
            response = await self._send_handling_redirects(
                request, resolved, bool(follow_redirects), None
            )
        else:
            response = await pipe.send(
                self, request, resolved, bool(follow_redirects), trace_request_ctx
            )
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
        self, request: Request, auth: Auth | None, follow_redirects: bool, run: Any = None
    ) -> Response:
        """Follow redirects; each hop goes through ``run`` (the pipeline of
        this send, see :class:`~webwire.http._middleware.Pipeline`) when
        there is one."""
        history: list[Response] = []
        first = request
        redirects = 0
        while True:
            hop_auth = auth
            if auth is not None and request is not first:
                old, new = first.url, request.url
                if origin(old) != origin(new) and not is_https_upgrade(old, new):
                    hop_auth = None
            if run is None:
                if hop_auth is None:
                    # No authentication flow: one frame less on the hot path.
                    response = await self._send_single(request)
                else:
                    response = await self._send_handling_auth(request, hop_auth, history)
            else:
                response = await run.hop(request, self._hop_terminal(hop_auth, history))
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
                if run is not None:
                    await run.redirect(request, response)
            except BaseException:
                await response._aclose()
                raise
            response.history = list(history)
            history.append(response)
            redirects += 1
            request = next_request

    def _hop_terminal(self, auth: Auth | None, history: list[Response]) -> Any:
        """The handler at the end of a hop's middleware chain."""

        def terminal(request: Request) -> Any:
            return self._send_handling_auth(request, auth, history)

        return terminal

    async def _send_handling_auth(
        self, request: Request, auth: Auth | None, history: list[Response]
    ) -> Response:
        if auth is None:
            return await self._send_single(request)
        if auth.requires_request_body and request._content is None:
            await request.aread()
        # The blocking client runs sync_auth_flow (it may block), the async
        # one async_auth_flow when overridden (it may await), else auth_flow.
        if self._sync:
            flow = FlowDriver(auth.sync_auth_flow(request))
        elif type(auth).async_auth_flow is Auth.async_auth_flow:
            flow = FlowDriver(auth.auth_flow(request))
        else:
            flow = FlowDriver(auth.async_auth_flow(request))
        try:
            first = await flow.start()
            if first is None:
                return await self._send_single(request)
            request = first
            while True:
                response = await self._send_single(request)
                try:
                    if auth.requires_response_body:
                        await response._aread()
                    next_request = await flow.send(response)
                    if next_request is None:
                        return response
                    await response._adrain(_DRAIN_LIMIT)
                except BaseException:
                    await response._aclose()
                    raise
                response.history = list(history)
                history.append(response)
                request = next_request
        finally:
            await flow.aclose()

    async def _send_single(self, request: Request) -> Response:
        backend = self._backend
        assert backend is not None
        start = backend.monotonic()
        try:
            response = await self._transport_for_url(request.url).handle_async_request(request)
        except WebwireError as exc:
            if exc.request is None:
                exc.request = request
            raise
        response._clock = backend.monotonic
        response._start = start
        response._sync = self._sync
        response._max_decoded_size = self._max_decoded_size
        response._max_body_size = request.extensions.get("max_body_size", self._max_body_size)
        response.default_encoding = self._default_encoding
        response._client = self
        if "Set-Cookie" in response.headers:
            self._cookies.extract_cookies(response)
        return response

    def _transport_for_url(self, url: URL) -> AsyncBaseTransport:
        """The transport for ``url``: a mounted one (proxies included) or
        the default."""
        router = self._router
        if router is None:
            return self._transport
        return router.select(url)

    # -- WebTransport ----------------------------------------------------------

    async def webtransport(self, url: str | URL, **options: Any) -> Any:
        """Establish a WebTransport session (draft-ietf-webtrans-http3 over
        HTTP/3) with this client's backend and TLS settings (``verify``,
        ``cert``, ``trust_env``); a relative ``url`` is joined to
        ``base_url``. The options are those of
        :func:`webwire.webtransport.open_session` (``headers``,
        ``timeout`` in seconds, ``config``...).

        Returns:
            An established :class:`webwire.webtransport.WebTransportSession`
            (``async with`` closes it).

        Raises:
            InvalidURL, ConnectError, ConnectTimeout, WebTransportError:
                As :func:`~webwire.webtransport.open_session`.
        """
        from webwire.webtransport._connect import open_session

        if "client" in options:
            raise TypeError("client.webtransport() uses this client: do not pass client=")
        target = parse_url(url, allow_relative=True)
        if self._base_url is not None and not target.is_absolute():
            target = self._base_url.join(target)
        return await open_session(target, client=self, **options)

    # -- lifetime ------------------------------------------------------------

    async def aclose(self) -> None:
        """Close the transport and its connections. Idempotent."""
        if not self._closed:
            self._closed = True
            if self._router is not None:
                for mounted in self._router.transports():
                    await mounted.aclose()
            backend = self._backend
            loop = self._loop
            if loop is not None and backend is not None and backend.loop_token() is not loop:
                raise self._other_loop(backend)
            await self._transport.aclose()

    async def __aenter__(self) -> AsyncClient:
        if self._closed:
            raise RuntimeError("the client is closed and cannot be opened again")
        transport = self._transport
        if (
            isinstance(transport, ASGITransport)
            and not self._transport_entered
            and not transport.is_open
        ):
            if self._backend is None:
                self._init_backend()
            await transport.__aenter__()
            self._transport_entered = True
        return self

    async def __aexit__(self, *args: object) -> None:
        if self._transport_entered:
            self._transport_entered = False
            self._closed = True
            await self._transport.__aexit__(*args)
            return
        await self.aclose()

    def __repr__(self) -> str:
        return f"<AsyncClient base_url={str(self._base_url) if self._base_url else ''!r}>"
