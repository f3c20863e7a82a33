"""Opening WebSocket connections: :func:`connect`, :func:`unix_connect`,
reconnection and :func:`process_exception`.

The opening handshake (RFC 6455 section 4.1) is an ordinary request sent
through webwire's HTTP client and connection pool, so TLS settings, proxies
(HTTP ``CONNECT`` and SOCKS, also from the environment), Unix sockets and
tracing apply to it. Its ``Sec-WebSocket-*`` fields are built and the
answer checked by :class:`webwire._proto.websocket.Handshake`; after ``101``
the connection leaves the pool as a byte stream that the WebSocket engine
runs over.
"""

from __future__ import annotations

import logging
import ssl as _ssl
from collections.abc import Callable, Generator, Mapping, Sequence
from typing import TYPE_CHECKING, Any, Literal

import yarl

from webwire._config import Timeout
from webwire._exceptions import (
    ConnectionRejected,
    InvalidHandshake,
    InvalidStatus,
    InvalidURL,
    NetworkError,
    RemoteProtocolError,
    TimeoutException,
    TransportError,
)
from webwire._proto.websocket import (
    DEFAULT_MAX_SIZE,
    Compression,
    Handshake,
    deflate_settings,
)
from webwire._retry import Retry

from ._connection import ClientConnection

if TYPE_CHECKING:
    from webwire._backends.base import Backend
    from webwire._transport.connect import CertTypes, VerifyTypes
    from webwire._transport.proxy import ProxyTypes
    from webwire.http._client import AsyncClient
    from webwire.http._models import Response
    from webwire.http._tracing import TraceConfig, WebSocketTracer

__all__ = ["DEFAULT_USER_AGENT", "connect", "process_exception", "unix_connect"]

HTTPVersion = Literal["auto", "HTTP/1.1", "HTTP/2", "HTTP/3"]

DEFAULT_USER_AGENT = "webwire"
"""``User-Agent`` of the handshake unless ``user_agent_header`` is given."""

_BODY_LIMIT = 64 * 1024
_UNSET: Any = object()

_HOP_BY_HOP = ("Keep-Alive", "Proxy-Connection", "TE", "Trailer", "Transfer-Encoding")

_RETRIED_STATUSES = frozenset({500, 502, 503, 504})


def process_exception(exc: Exception) -> Exception | None:
    """Decide whether a failed connection attempt of ``async for ws in
    connect(...)`` is retried.

    Retried (returns ``None``): network errors and timeouts
    (:class:`~webwire.ConnectError`, :class:`~webwire.ReadError`,
    :class:`~webwire.TimeoutException`...), a connection closed during the
    handshake (:class:`~webwire.RemoteProtocolError`), and
    :class:`~webwire.InvalidStatus` with 500, 502, 503 or 504 (server or
    proxy errors). Everything else is fatal: the exception to raise is
    returned (``exc`` itself).

    Pass your own function as ``process_exception=`` to change this.
    """
    if isinstance(exc, (NetworkError, TimeoutException, RemoteProtocolError)):
        return None
    if isinstance(exc, InvalidStatus) and exc.status_code in _RETRIED_STATUSES:
        return None
    return exc


def _parse_uri(uri: str | yarl.URL) -> yarl.URL:
    try:
        url = uri if isinstance(uri, yarl.URL) else yarl.URL(uri)
    except (TypeError, ValueError) as exc:
        raise InvalidURL(f"invalid WebSocket URI {uri!r}: {exc}") from exc
    if url.scheme not in ("ws", "wss"):
        raise InvalidURL(
            f"a WebSocket URI has the scheme ws or wss (RFC 6455 section 3), not {uri!r}"
        )
    if not url.host:
        raise InvalidURL(f"the WebSocket URI {uri!r} has no host")
    if url.fragment:
        raise InvalidURL(f"a WebSocket URI has no fragment (RFC 6455 section 3): {uri!r}")
    return url


def client_websocket_url(base_url: yarl.URL | None, url: str | yarl.URL) -> yarl.URL:
    """The ``ws``/``wss`` URL of ``client.websocket(url)``: an absolute
    ``ws``/``wss`` URL as it is, an ``http``/``https`` one (or a relative
    one, joined with the client's ``base_url`` as for requests) with the
    scheme mapped ``http`` -> ``ws``, ``https`` -> ``wss`` (RFC 6455
    section 3).

    Raises:
        InvalidURL: The URL is invalid, relative without ``base_url``, or
            of another scheme.
    """
    from webwire.http._urls import build_url

    try:
        parsed = url if isinstance(url, yarl.URL) else yarl.URL(url)
    except (TypeError, ValueError) as exc:
        raise InvalidURL(f"invalid WebSocket URL {url!r}: {exc}") from exc
    if parsed.scheme in ("ws", "wss"):
        return _parse_uri(parsed)
    if parsed.scheme and parsed.scheme not in ("http", "https"):
        raise InvalidURL(f"a WebSocket URL has the scheme ws or wss (or http/https), not {url!r}")
    if not parsed.scheme and base_url is None:
        raise InvalidURL(f"the WebSocket URL {url!r} is relative and the client has no base_url")
    try:
        full = build_url(base_url, url)
    except Exception as exc:
        raise InvalidURL(f"invalid WebSocket URL {url!r}: {exc}") from exc
    return _parse_uri(full.with_scheme("wss" if full.scheme == "https" else "ws"))


class connect:
    """Open a WebSocket connection (RFC 6455; RFC 7692 compression).

    Three ways to use it::

        ws = await connect("wss://example.com/ws")       # close it yourself
        async with connect("wss://example.com/ws") as ws: ...   # closed on exit
        async for ws in connect("wss://example.com/ws"):  # reconnects
            ...

    In the third form a new connection is opened each time the loop comes
    back (the previous one is closed first); a failed attempt is retried
    when ``process_exception`` returns ``None`` for it, after the backoff of
    ``retry`` (a :class:`~webwire.Retry`: ``get_backoff_time()`` seconds;
    its count is started afresh after each successful connection), and
    raised otherwise or once ``retry`` is exhausted.

    Args:
        uri: ``ws://`` or ``wss://`` URI.
        additional_headers: Extra header fields of the handshake request.
        user_agent_header: ``User-Agent`` value; ``None`` sends none.
        origin: ``Origin`` field value (RFC 6454), or ``None``.
        subprotocols: Subprotocols to offer, most preferred first.
        compression: ``"deflate"`` (permessage-deflate, RFC 7692; the
            messages sent are compressed with zlib level 1, the fastest,
            and memLevel 5), a mapping of zlib settings to compress with
            instead (``{"level": 6, "memLevel": 8}``: smaller, slower; other
            keys raise ValueError), or ``None``.
        open_timeout: Seconds for the connection and the handshake
            together (``None``: no limit).
        close_timeout: Seconds to wait for the server to end the connection
            after the closing handshake started, then it is dropped.
        ping_interval: Seconds between keepalive pings (``None``: none).
        ping_timeout: Seconds to wait for a keepalive pong before failing
            the connection with 1011 (``None``: wait forever).
        max_size: Largest message received, in bytes (1 MiB by default;
            ``None``: no limit); a larger one fails the connection with
            1009.
        max_queue: Received message fragments (frames) buffered before the
            connection stops reading from the network (back-pressure).
        write_limit: Not supported (a :class:`TypeError`): webwire keeps
            no write buffer to bound. Each frame is written through to the
            socket: ``send`` returns once the kernel took all of its bytes
            (the socket's send buffer is the only buffer), so a peer that
            does not read stops ``send`` at once.
        proxy: Proxy URL or :class:`~webwire.Proxy` (``http``, ``https``,
            ``socks5``...): ``wss`` and ``ws`` both go through a tunnel.
        trust_env: Honour proxy variables (``HTTPS_PROXY``, ``NO_PROXY``...)
            and ``SSL_CERT_FILE``/``SSL_CERT_DIR``.
        ssl: An :class:`ssl.SSLContext` for ``wss`` (instead of ``verify``).
        verify: TLS verification: ``True``, ``False`` or a CA bundle path.
        cert: Client certificate (see :class:`~webwire.AsyncClient`).
        logger: Logger of the connection (``webwire.websocket``).
        http_version: ``"auto"``, ``"HTTP/1.1"``, ``"HTTP/2"`` (RFC 8441
            extended CONNECT) or ``"HTTP/3"`` (RFC 9220, QUIC; ``wss``
            only). ``"auto"`` uses HTTP/3 when it is on (``http3=True``,
            or the ``client=``'s) and the origin's HTTP/3 connection
            enabled extended CONNECT, then HTTP/2 when the server enabled
            it, then HTTP/1.1.
        http3: Let ``"auto"`` use HTTP/3 (RFC 9220) for origins that
            advertise it with ``Alt-Svc`` (RFC 7838) or in the client's
            ``alt_svc`` cache (the private client only; with ``client=``
            its ``http3`` applies).
        process_exception: See above.
        retry: Reconnection policy of the ``async for`` form (default: no
            limit; the first retry at once, then after 2, 4, 8... seconds,
            at most 60, plus up to 1 second of jitter).
        client: An :class:`~webwire.AsyncClient` (or :class:`~webwire.Client`
            for the blocking API) whose transport, cookies, headers and
            tracing carry the handshake; by default a private one is made
            with the options above and closed with the connection.
        unix_socket_path: Connect to this Unix domain socket instead of TCP.
        trace: :class:`~webwire.TraceConfig` objects for the private client
            (the handshake's request signals) and the connection's
            ``on_ws_*`` signals; with ``client=``, the client's trace
            configs are used instead.

    Raises:
        InvalidURL: ``uri`` is not a ws/wss URI.
        ConnectionRejected: (an :class:`~webwire.InvalidStatus`) The server
            answered with a status other than 101 (``status_code``,
            ``headers`` and the first 64 KiB of ``body``).
        TypeError: ``write_limit`` was given (not supported, see above).
        InvalidHandshake: The answer is not a valid WebSocket acceptance.
        ConnectError, ConnectTimeout, ReadTimeout, ProxyError...: The
            connection or the handshake failed (``open_timeout``).
    """

    def __init__(
        self,
        uri: str | yarl.URL,
        *,
        additional_headers: Mapping[str, str] | Sequence[tuple[str, str]] | None = None,
        user_agent_header: str | None = DEFAULT_USER_AGENT,
        origin: str | None = None,
        subprotocols: Sequence[str] | None = None,
        compression: Compression = "deflate",
        open_timeout: float | None = 10.0,
        close_timeout: float | None = 10.0,
        ping_interval: float | None = 20.0,
        ping_timeout: float | None = 20.0,
        max_size: int | None = DEFAULT_MAX_SIZE,
        max_queue: int = 16,
        write_limit: Any = _UNSET,
        proxy: ProxyTypes | None = None,
        trust_env: bool = True,
        ssl: _ssl.SSLContext | None = None,
        verify: VerifyTypes = True,
        cert: CertTypes = None,
        logger: logging.Logger | logging.LoggerAdapter[Any] | None = None,
        http_version: HTTPVersion = "auto",
        http3: bool = False,
        process_exception: Callable[[Exception], Exception | None] = process_exception,
        retry: Retry | int | None = None,
        client: Any = None,
        unix_socket_path: str | None = None,
        trace: Sequence[TraceConfig] | None = None,
        _backend: str | Backend | None = None,
    ) -> None:
        self._url = _parse_uri(uri)
        if http_version not in ("auto", "HTTP/1.1", "HTTP/2", "HTTP/3"):
            raise ValueError(
                "http_version must be 'auto', 'HTTP/1.1', 'HTTP/2' or 'HTTP/3', "
                f"not {http_version!r}"
            )
        if max_queue < 1:
            raise ValueError(f"max_queue must be >= 1, not {max_queue}")
        if max_size is not None and max_size < 1:
            raise ValueError(f"max_size must be >= 1 byte or None, not {max_size}")
        deflate_settings(compression)
        if write_limit is not _UNSET:
            raise TypeError(
                "write_limit is not supported: webwire has no write buffer (each frame is "
                "written through to the socket and send() returns once the kernel took it)"
            )
        for name, value in (
            ("open_timeout", open_timeout),
            ("close_timeout", close_timeout),
            ("ping_interval", ping_interval),
            ("ping_timeout", ping_timeout),
        ):
            if value is not None and not value >= 0:
                raise ValueError(f"{name} must be >= 0 seconds or None, not {value!r}")
        if client is not None and (proxy is not None or ssl is not None or unix_socket_path):
            raise ValueError("pass proxy, ssl and unix_socket_path to the client, not with client=")
        if client is not None and trace is not None:
            raise ValueError("pass trace to the client, not with client=")
        self._trace = trace
        self._headers = _header_list(additional_headers)
        self._user_agent = user_agent_header
        self._origin = origin
        self._subprotocols = list(subprotocols) if subprotocols is not None else None
        if isinstance(subprotocols, str):
            raise TypeError("subprotocols must be a sequence of str, not a str")
        self._compression = compression
        self._open_timeout = open_timeout
        self._close_timeout = close_timeout
        self._ping_interval = ping_interval
        self._ping_timeout = ping_timeout
        self._max_size = max_size
        self._max_queue = max_queue
        self._proxy = proxy
        self._trust_env = trust_env
        self._verify: VerifyTypes = ssl if ssl is not None else verify
        self._cert = cert
        self._logger = logger
        self._http_version = http_version
        self._http3 = http3
        self.process_exception = process_exception
        if retry is None:
            retry = Retry(total=None, backoff_factor=1.0, backoff_max=60.0, backoff_jitter=1.0)
        self._retry = Retry.from_int(retry)
        inner = getattr(client, "_client", None)  # webwire.Client wraps an AsyncClient
        self._client: AsyncClient | None = client if inner is None else inner
        self._uds = unix_socket_path
        self._backend = _backend
        self.connection: ClientConnection | None = None

    # -- the handshake ---------------------------------------------------------

    def _make_client(self) -> AsyncClient:
        from webwire.http._client import AsyncClient

        version = self._http_version
        h3_only = version == "HTTP/3"
        return AsyncClient(
            verify=self._verify,
            cert=self._cert,
            http1=version in ("auto", "HTTP/1.1"),
            http2=version in ("auto", "HTTP/2"),
            http3=self._http3 or h3_only,
            proxy=self._proxy,
            trust_env=self._trust_env,
            uds=self._uds,
            follow_redirects=False,
            limits=_limits(),
            trace=self._trace or (),
            _backend=self._backend,
        )

    async def _open(self) -> ClientConnection:
        """One connection attempt: handshake, then the open connection."""
        owned = self._client is None
        client = self._make_client() if owned else self._client
        assert client is not None
        try:
            return await self._handshake(client, owned)
        except BaseException:
            if owned:
                await client.aclose()
            raise

    async def _handshake(self, client: AsyncClient, owned: bool) -> ClientConnection:
        url = self._url
        backend = client._backend or client._init_backend()
        handshake = Handshake(
            secure=url.scheme == "wss",
            host=url.raw_host or "",
            port=url.port or (443 if url.scheme == "wss" else 80),
            resource=url.raw_path_qs or "/",
            origin=self._origin,
            subprotocols=self._subprotocols,
            compression=self._compression,
            max_size=self._max_size,
            logger=self._logger,
        )
        http_url = url.with_scheme("https" if url.scheme == "wss" else "http")
        fields: list[tuple[str, Any]] = [*handshake.request_headers()]
        fields.append(("Accept-Encoding", None))  # no content coding of an error body
        fields.append(("Accept", None))
        for name in _HOP_BY_HOP:  # a client's default fields that would not fit
            fields.append((name, None))
        fields.append(("User-Agent", self._user_agent))
        fields.extend(self._headers)
        timeout = Timeout(self._open_timeout, total=self._open_timeout)
        request = client.build_request(
            "GET",
            http_url,
            headers=fields,
            timeout=timeout,
            extensions={"protocol": "websocket", "http_version": self._http_version},
        )
        response = await client.send(request, stream=True, follow_redirects=False)
        detach = response.extensions.get("detach")
        accepted = response.status_code == 101 or (
            response.http_version != "HTTP/1.1" and 200 <= response.status_code < 300
        )
        if not accepted or detach is None:
            body = await _read_some(response, _BODY_LIMIT)
            if accepted:
                raise InvalidHandshake(
                    f"the server accepted the WebSocket handshake over {response.http_version} "
                    "but the connection cannot be handed over",
                    request=request,
                )
            raise ConnectionRejected(
                f"the server rejected the WebSocket handshake: HTTP {response.status_code}"
                + (f" {response.reason_phrase}" if response.reason_phrase else ""),
                status_code=response.status_code,
                headers=response.headers,
                body=body,
                request=request,
            )
        stream = detach()
        try:
            await response._aclose()
            handshake.process_response(
                response.status_code,
                response.reason_phrase,
                response.headers.items(),
                http_version=response.http_version,
            )
        except BaseException:
            stream.abort()
            raise
        connection = ClientConnection(
            backend,
            stream,
            handshake.open(),
            request=request,
            response=response,
            subprotocol=handshake.subprotocol,
            http_version=response.http_version,
            ping_interval=self._ping_interval,
            ping_timeout=self._ping_timeout,
            close_timeout=self._close_timeout,
            max_queue=self._max_queue,
            logger=self._logger,
            owned_client=client if owned else None,
            tracer=_tracer(client, url),
        )
        try:
            await connection._start()
        except BaseException:
            stream.abort()
            raise
        return connection

    # -- the three forms -------------------------------------------------------

    def __await__(self) -> Generator[Any, None, ClientConnection]:
        return self._open().__await__()

    async def __aenter__(self) -> ClientConnection:
        self.connection = await self._open()
        return self.connection

    async def __aexit__(self, *args: object) -> None:
        connection, self.connection = self.connection, None
        if connection is not None:
            await connection.close()

    def __aiter__(self) -> _Reconnecting:
        return _Reconnecting(self)


class _Reconnecting:
    """The iterator of ``async for ws in connect(...)``."""

    def __init__(self, factory: connect) -> None:
        self._factory = factory
        self._current: ClientConnection | None = None

    def __aiter__(self) -> _Reconnecting:
        return self

    async def __anext__(self) -> ClientConnection:
        previous, self._current = self._current, None
        if previous is not None:
            await previous.close()
        factory = self._factory
        retry = factory._retry
        while True:
            try:
                connection = await factory._open()
            except Exception as exc:
                fatal = factory.process_exception(exc)
                if fatal is not None:
                    if fatal is exc:
                        raise
                    raise fatal from exc
                retry = retry.increment(error=exc)
                if retry.is_exhausted():
                    raise
                delay = retry.get_backoff_time()
                (factory._logger or logging.getLogger("webwire.websocket")).info(
                    "connection attempt failed (%s); retrying in %.1f s", exc, delay
                )
                await _backend_of(factory).sleep(delay)
                continue
            self._current = connection
            return connection

    async def aclose(self) -> None:
        """Close the current connection and end the iteration."""
        previous, self._current = self._current, None
        if previous is not None:
            await previous.close()


def _tracer(client: AsyncClient, url: yarl.URL) -> WebSocketTracer | None:
    """The ``on_ws_*`` emitter of a connection opened through ``client``
    (``None`` when it has no trace configs)."""
    if not client._traces:
        return None
    from webwire.http._tracing import WebSocketTracer

    return WebSocketTracer(client._owner, client._traces, url, client._sync)


def _backend_of(factory: connect) -> Backend:
    from webwire._backends import get_backend

    spec = factory._backend
    if factory._client is not None:
        return factory._client._backend or factory._client._init_backend()
    if spec is not None and not isinstance(spec, str):
        return spec
    return get_backend(spec)


def unix_connect(
    path: str | None = None, uri: str | yarl.URL | None = None, **options: Any
) -> connect:
    """Open a WebSocket connection over the Unix domain socket at ``path``.

    Args:
        path: Path of the socket.
        uri: The URI of the handshake (``ws://localhost/`` by default;
            ``wss://`` runs TLS over the socket).
        options: As for :func:`connect`.

    Returns:
        What :func:`connect` returns (await it, ``async with`` or ``async
        for``).

    Raises:
        ValueError: ``path`` is missing.
    """
    if path is None:
        raise ValueError("unix_connect needs the socket's path")
    return connect(uri or "ws://localhost/", unix_socket_path=str(path), **options)


def _header_list(
    headers: Mapping[str, str] | Sequence[tuple[str, str]] | None,
) -> list[tuple[str, str]]:
    if headers is None:
        return []
    items = list(headers.items()) if isinstance(headers, Mapping) else list(headers)
    checked: list[tuple[str, str]] = []
    for name, value in items:
        if not isinstance(name, str) or not isinstance(value, str):
            raise TypeError("additional_headers must map str names to str values")
        if name.lower() in ("sec-websocket-key", "sec-websocket-version", "upgrade", "connection"):
            raise ValueError(f"{name} is set by the WebSocket handshake itself")
        checked.append((name, value))
    return checked


def _limits() -> Any:
    from webwire._config import Limits

    # The handshake's connection leaves the pool: nothing is kept alive.
    return Limits(max_keepalive_connections=0)


async def _read_some(response: Response, limit: int) -> bytes:
    """Up to ``limit`` bytes of a refused handshake's body; the response is
    closed."""
    parts: list[bytes] = []
    size = 0
    source = response._iterator("raw", check=_no_check)
    try:
        async for chunk in source:
            parts.append(chunk[: limit - size])
            size += len(parts[-1])
            if size >= limit:
                break
    except TransportError:
        pass
    finally:
        await source.aclose()
        await response._aclose()
    return b"".join(parts)


def _no_check() -> None:
    return None

