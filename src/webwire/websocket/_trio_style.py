"""The trio-websocket style of API, on trio and asyncio.

:func:`open_websocket` and :func:`open_websocket_url` are async context
managers; :func:`connect_websocket`, :func:`connect_websocket_url` and
:func:`wrap_client_stream` tie a connection to a nursery the caller owns (a
trio nursery, an anyio task group or a webwire task group). The connection
object, :class:`WebSocketConnection`, is a thin face over the same
:class:`~webwire.websocket.ClientConnection` that :func:`connect` returns:
one engine (RFC 6455, the ``websockets`` Sans-I/O layer), two APIs.

The context managers run no nursery of their own (the connection's
background tasks are detached), so an exception raised inside ``async with
open_websocket_url(...)`` leaves it as itself, never wrapped in an
``ExceptionGroup``.
"""

from __future__ import annotations

import ssl as _ssl
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from typing import TYPE_CHECKING, Any, NamedTuple

import yarl

from webwire._backends._foreign import adapt_stream, shield_scope
from webwire._backends.base import NetworkStream
from webwire._exceptions import (
    CloseReason,
    ConnectionTimeout,
    DisconnectionTimeout,
    InvalidURL,
    TimeoutException,
)
from webwire._proto.websocket import DEFAULT_MAX_SIZE
from webwire.http._transports import AsyncBaseTransport

from ._client import connect
from ._connection import ClientConnection, Data

if TYPE_CHECKING:
    from webwire._backends.base import Backend
    from webwire.http._models import Response
    from webwire.http._request import Request

__all__ = [
    "Endpoint",
    "WebSocketConnection",
    "connect_websocket",
    "connect_websocket_url",
    "open_websocket",
    "open_websocket_url",
    "wrap_client_stream",
]

DEFAULT_MESSAGE_QUEUE_SIZE = 1
DEFAULT_CONNECT_TIMEOUT = 60.0
DEFAULT_DISCONNECT_TIMEOUT = 60.0


class Endpoint(NamedTuple):
    """One end of a WebSocket connection.

    Attributes:
        address: IP address (or host name when the socket's is not known,
            e.g. through a proxy tunnel).
        port: TCP port.
        is_ssl: Whether the connection runs over TLS.
    """

    address: str
    port: int
    is_ssl: bool

    @property
    def url(self) -> str:
        """``ws://address:port`` or ``wss://...`` (the port left out when it
        is the scheme's default; an IPv6 address in brackets)."""
        scheme = "wss" if self.is_ssl else "ws"
        host = f"[{self.address}]" if ":" in self.address else self.address
        if self.port == (443 if self.is_ssl else 80):
            return f"{scheme}://{host}"
        return f"{scheme}://{host}:{self.port}"


class WebSocketConnection:
    """An open WebSocket connection, client side, with trio-websocket's
    methods (RFC 6455). It wraps a
    :class:`~webwire.websocket.ClientConnection` (``.connection``).

    Attributes:
        connection: The underlying connection (``recv``/``send``/... also
            work on it).
        path: The resource of the handshake (``"/path?query"``).
        is_client: Always ``True``.
    """

    is_client = True

    def __init__(
        self,
        connection: ClientConnection,
        *,
        host: str,
        port: int,
        is_ssl: bool,
        path: str,
        disconnect_timeout: float | None,
    ) -> None:
        self.connection = connection
        self.path = path
        self._host = host
        self._port = port
        self._is_ssl = is_ssl
        self._disconnect_timeout = disconnect_timeout

    # -- attributes ------------------------------------------------------------

    @property
    def closed(self) -> CloseReason | None:
        """Why the connection closed (``code``, ``name``, ``reason``), or
        ``None`` while it is open."""
        ws = self.connection
        if not ws.closed:
            return None
        return CloseReason(ws.close_code or 1006, ws.close_reason or "")

    @property
    def subprotocol(self) -> str | None:
        """The subprotocol the server chose (RFC 6455 section 1.9), or
        ``None``."""
        return self.connection.subprotocol

    @property
    def handshake_headers(self) -> tuple[tuple[bytes, bytes], ...]:
        """The header fields of the server's handshake response, as
        ``(lower-case name, value)`` byte pairs."""
        response = self.connection.response
        if response is None:
            return ()
        return tuple(
            (name.lower().encode("latin-1"), value.encode("latin-1"))
            for name, value in response.headers.items()
        )

    @property
    def local(self) -> Endpoint:
        """The local end (``address`` ``""`` and ``port`` 0 when unknown)."""
        return _endpoint(self.connection.local_address, "", 0, self._is_ssl)

    @property
    def remote(self) -> Endpoint:
        """The server's end (the URL's host and port when the socket's
        address is not known, e.g. through a proxy)."""
        return _endpoint(self.connection.remote_address, self._host, self._port, self._is_ssl)

    # -- messages --------------------------------------------------------------

    async def send_message(self, message: str | bytes) -> None:
        """Send a message: ``str`` as a text message, ``bytes`` as binary
        (RFC 6455 section 5.6).

        Raises:
            ConnectionClosed: The connection is closed or closing
                (``.reason`` is the :class:`~webwire.websocket.CloseReason`).
            TypeError: ``message`` is neither ``str`` nor ``bytes``.
        """
        if not isinstance(message, (str, bytes, bytearray, memoryview)):
            raise TypeError(f"message must be str or bytes, not {type(message).__name__}")
        await self.connection.send(message)

    async def get_message(self) -> Data:
        """Receive the next message: ``str`` (text) or ``bytes`` (binary).
        Messages are buffered up to ``message_queue_size`` frames.

        Raises:
            ConnectionClosed: The connection closed (``.reason`` says how;
                messages received before are returned first).
        """
        return await self.connection.recv()

    async def ping(self, payload: bytes | None = None) -> None:
        """Send a ping (RFC 6455 section 5.5.2) and wait for its pong.

        Args:
            payload: At most 125 bytes; 4 random bytes when ``None``.

        Raises:
            ConnectionClosed: The connection closed first.
            ConcurrencyError: A ping with the same payload is waiting.
            LocalProtocolError: ``payload`` is over 125 bytes.
        """
        waiter = await self.connection.ping(payload)
        await waiter.wait()

    async def pong(self, payload: bytes | None = None) -> None:
        """Send an unsolicited pong (section 5.5.3), at most 125 bytes.

        Raises:
            ConnectionClosed: The connection is closed.
        """
        await self.connection.pong(payload or b"")

    async def aclose(self, code: int = 1000, reason: str | None = None) -> None:
        """Close the connection (closing handshake, section 7.1.2) and wait
        for the server to end it. Idempotent.

        Args:
            code: Close code (1000 normal; 3000-4999 for applications).
            reason: Close reason, at most 123 UTF-8 bytes.

        Raises:
            DisconnectionTimeout: The server did not answer the close frame
                within ``disconnect_timeout`` seconds (the connection was
                dropped).
            LocalProtocolError: ``code`` may not be sent or ``reason`` is
                too long.
        """
        ws = self.connection
        if ws.closed:
            await ws._finish()
            return
        backend = ws._backend
        started = backend.monotonic()
        await ws.close(code, reason or "")
        timeout = self._disconnect_timeout
        if (
            ws._protocol.close_rcvd is None
            and timeout is not None
            and backend.monotonic() - started >= timeout
        ):
            raise DisconnectionTimeout(
                f"the server did not complete the closing handshake within {timeout} s"
            )

    async def __aenter__(self) -> WebSocketConnection:
        return self

    async def __aexit__(self, *args: object) -> None:
        await self.aclose()

    def __repr__(self) -> str:
        state = "open" if self.closed is None else f"closed {self.closed.code}"
        return f"<WebSocketConnection {self.remote.url}{self.path} {state}>"


def _endpoint(address: Any, host: str, port: int, is_ssl: bool) -> Endpoint:
    if isinstance(address, tuple) and len(address) >= 2:
        return Endpoint(str(address[0]), int(address[1]), is_ssl)
    return Endpoint(host, port, is_ssl)


# -- opening -------------------------------------------------------------------


def _url(host: str, port: int, resource: str, use_ssl: bool | _ssl.SSLContext) -> yarl.URL:
    if not isinstance(host, str) or not host:
        raise InvalidURL(f"host must be a non-empty str, not {host!r}")
    if not resource.startswith("/"):
        raise InvalidURL(f"resource must start with '/', not {resource!r}")
    scheme = "wss" if use_ssl else "ws"
    literal = f"[{host}]" if ":" in host and not host.startswith("[") else host
    try:
        return yarl.URL(f"{scheme}://{literal}:{int(port)}{resource}")
    except ValueError as exc:
        raise InvalidURL(f"invalid WebSocket host, port or resource: {exc}") from exc


def _options(
    subprotocols: Sequence[str] | None,
    extra_headers: Sequence[tuple[str | bytes, str | bytes]] | None,
    message_queue_size: int,
    max_message_size: int | None,
    connect_timeout: float | None,
    disconnect_timeout: float | None,
    options: dict[str, Any],
) -> dict[str, Any]:
    headers = []
    for name, value in extra_headers or ():
        headers.append(
            (
                name.decode("latin-1") if isinstance(name, bytes) else name,
                value.decode("latin-1") if isinstance(value, bytes) else value,
            )
        )
    merged: dict[str, Any] = {
        "subprotocols": subprotocols,
        "additional_headers": headers,
        "max_queue": message_queue_size,
        "max_size": max_message_size,
        "open_timeout": connect_timeout,
        "close_timeout": disconnect_timeout,
        "ping_interval": None,
    }
    merged.update(options)
    return merged


async def _open(
    url: yarl.URL, options: dict[str, Any], disconnect_timeout: float | None
) -> WebSocketConnection:
    try:
        ws = await connect(url, **options)._open()
    except ConnectionTimeout:
        raise
    except TimeoutException as exc:
        timeout = options.get("open_timeout")
        raise ConnectionTimeout(
            f"the WebSocket connection to {url} was not open within {timeout} s: {exc}"
        ) from exc
    return WebSocketConnection(
        ws,
        host=url.host or "",
        port=url.port or (443 if url.scheme == "wss" else 80),
        is_ssl=url.scheme == "wss",
        path=url.raw_path_qs or "/",
        disconnect_timeout=disconnect_timeout,
    )


def _ssl_options(use_ssl: bool | _ssl.SSLContext, options: dict[str, Any]) -> None:
    if isinstance(use_ssl, _ssl.SSLContext):
        options["ssl"] = use_ssl
    elif not isinstance(use_ssl, bool):
        raise TypeError("use_ssl must be a bool or an ssl.SSLContext")


@asynccontextmanager
async def open_websocket(
    host: str,
    port: int,
    resource: str,
    *,
    use_ssl: bool | _ssl.SSLContext,
    subprotocols: Sequence[str] | None = None,
    extra_headers: Sequence[tuple[str | bytes, str | bytes]] | None = None,
    message_queue_size: int = DEFAULT_MESSAGE_QUEUE_SIZE,
    max_message_size: int | None = DEFAULT_MAX_SIZE,
    connect_timeout: float | None = DEFAULT_CONNECT_TIMEOUT,
    disconnect_timeout: float | None = DEFAULT_DISCONNECT_TIMEOUT,
    **options: Any,
) -> AsyncIterator[WebSocketConnection]:
    """Open a WebSocket connection to ``host:port`` for ``resource``
    (RFC 6455), closed when the block ends::

        async with open_websocket("example.com", 443, "/ws", use_ssl=True) as ws:
            await ws.send_message("hello")
            print(await ws.get_message())

    Args:
        host: Host name or IP address.
        port: TCP port.
        resource: Path and query, starting with ``/``.
        use_ssl: ``True`` for ``wss`` with the default TLS settings
            (verification on), an :class:`ssl.SSLContext` for ``wss`` with
            it, ``False`` for ``ws``.
        subprotocols: Subprotocols to offer, most preferred first.
        extra_headers: ``(name, value)`` pairs added to the handshake.
        message_queue_size: Received frames buffered before reading stops
            (back-pressure on the server).
        max_message_size: Largest message received, in bytes (1 MiB);
            a larger one fails the connection with 1009.
        connect_timeout: Seconds for the connection and the handshake.
        disconnect_timeout: Seconds to wait for the closing handshake.
        options: Further options of :func:`webwire.websocket.connect`
            (``compression``, ``proxy``, ``ping_interval``, ``client``...).

    Raises:
        ConnectionRejected: The server answered with another status than
            ``101`` (``status_code``, ``headers``, ``body``).
        HandshakeError: The answer is not a valid WebSocket acceptance.
        ConnectionTimeout: Not open within ``connect_timeout`` seconds.
        DisconnectionTimeout: (on exit) The closing handshake did not
            complete within ``disconnect_timeout`` seconds.
        ConnectError, ProxyError...: The connection failed.
    """
    _ssl_options(use_ssl, options)
    url = _url(host, port, resource, use_ssl)
    merged = _options(
        subprotocols,
        extra_headers,
        message_queue_size,
        max_message_size,
        connect_timeout,
        disconnect_timeout,
        options,
    )
    async with _session(url, merged, disconnect_timeout) as ws:
        yield ws


@asynccontextmanager
async def open_websocket_url(
    url: str,
    ssl_context: _ssl.SSLContext | None = None,
    *,
    subprotocols: Sequence[str] | None = None,
    extra_headers: Sequence[tuple[str | bytes, str | bytes]] | None = None,
    message_queue_size: int = DEFAULT_MESSAGE_QUEUE_SIZE,
    max_message_size: int | None = DEFAULT_MAX_SIZE,
    connect_timeout: float | None = DEFAULT_CONNECT_TIMEOUT,
    disconnect_timeout: float | None = DEFAULT_DISCONNECT_TIMEOUT,
    **options: Any,
) -> AsyncIterator[WebSocketConnection]:
    """:func:`open_websocket` for a ``ws://`` or ``wss://`` URL;
    ``ssl_context`` is used for ``wss`` (default: verification on with the
    system's CAs). Raises as :func:`open_websocket`, and
    :class:`~webwire.InvalidURL` for a URL that is not ws/wss."""
    parsed = _parse(url, ssl_context, options)
    merged = _options(
        subprotocols,
        extra_headers,
        message_queue_size,
        max_message_size,
        connect_timeout,
        disconnect_timeout,
        options,
    )
    async with _session(parsed, merged, disconnect_timeout) as ws:
        yield ws


@asynccontextmanager
async def _session(
    url: yarl.URL, options: dict[str, Any], disconnect_timeout: float | None
) -> AsyncIterator[WebSocketConnection]:
    """The connection of :func:`open_websocket` and
    :func:`open_websocket_url`, closed on exit."""
    ws = await _open(url, options, disconnect_timeout)
    try:
        yield ws
    finally:
        await ws.aclose()


def _parse(url: str, ssl_context: _ssl.SSLContext | None, options: dict[str, Any]) -> yarl.URL:
    from ._client import _parse_uri

    parsed = _parse_uri(url)
    if ssl_context is not None:
        if parsed.scheme != "wss":
            raise ValueError("ssl_context is only used with a wss:// URL")
        options["ssl"] = ssl_context
    return parsed


# -- a caller's nursery ----------------------------------------------------------


async def _watch(ws: WebSocketConnection, on_end: Any = None) -> None:
    """The task run in the caller's nursery: it ends when the connection
    closes, and drops the connection when the nursery is cancelled."""
    connection = ws.connection
    try:
        await connection.wait_closed()
    finally:
        connection._stream.abort()
        with shield_scope(connection._backend):
            await connection._finish()
            if on_end is not None:
                await on_end()


def _start_soon(nursery: Any, fn: Any, *args: Any) -> None:
    start = getattr(nursery, "start_soon", None)
    if start is None:
        raise TypeError(
            "nursery must be a trio nursery, an anyio task group or a webwire task group "
            f"(with start_soon), not {type(nursery).__name__}"
        )
    start(fn, *args)


async def connect_websocket(
    nursery: Any,
    host: str,
    port: int,
    resource: str,
    *,
    use_ssl: bool | _ssl.SSLContext,
    subprotocols: Sequence[str] | None = None,
    extra_headers: Sequence[tuple[str | bytes, str | bytes]] | None = None,
    message_queue_size: int = DEFAULT_MESSAGE_QUEUE_SIZE,
    max_message_size: int | None = DEFAULT_MAX_SIZE,
    connect_timeout: float | None = DEFAULT_CONNECT_TIMEOUT,
    disconnect_timeout: float | None = DEFAULT_DISCONNECT_TIMEOUT,
    **options: Any,
) -> WebSocketConnection:
    """Open a WebSocket connection tied to ``nursery`` (a trio nursery, an
    anyio task group or a webwire task group): a task of the nursery
    watches it, so the nursery does not exit while the connection is open,
    and cancelling the nursery drops the connection. Close it with
    :meth:`WebSocketConnection.aclose`. Arguments and errors as for
    :func:`open_websocket`."""
    _ssl_options(use_ssl, options)
    url = _url(host, port, resource, use_ssl)
    merged = _options(
        subprotocols,
        extra_headers,
        message_queue_size,
        max_message_size,
        connect_timeout,
        disconnect_timeout,
        options,
    )
    return await _open_in(nursery, url, merged, disconnect_timeout)


async def connect_websocket_url(
    nursery: Any,
    url: str,
    ssl_context: _ssl.SSLContext | None = None,
    *,
    subprotocols: Sequence[str] | None = None,
    extra_headers: Sequence[tuple[str | bytes, str | bytes]] | None = None,
    message_queue_size: int = DEFAULT_MESSAGE_QUEUE_SIZE,
    max_message_size: int | None = DEFAULT_MAX_SIZE,
    connect_timeout: float | None = DEFAULT_CONNECT_TIMEOUT,
    disconnect_timeout: float | None = DEFAULT_DISCONNECT_TIMEOUT,
    **options: Any,
) -> WebSocketConnection:
    """:func:`connect_websocket` for a ``ws://`` or ``wss://`` URL."""
    parsed = _parse(url, ssl_context, options)
    merged = _options(
        subprotocols,
        extra_headers,
        message_queue_size,
        max_message_size,
        connect_timeout,
        disconnect_timeout,
        options,
    )
    return await _open_in(nursery, parsed, merged, disconnect_timeout)


async def _open_in(
    nursery: Any, url: yarl.URL, options: dict[str, Any], disconnect_timeout: float | None
) -> WebSocketConnection:
    if getattr(nursery, "start_soon", None) is None:
        _start_soon(nursery, None)  # raises the TypeError
    ws = await _open(url, options, disconnect_timeout)
    try:
        _start_soon(nursery, _watch, ws)
    except BaseException:
        ws.connection._stream.abort()
        await ws.connection._finish()
        raise
    return ws


# -- a caller's stream -------------------------------------------------------------


async def wrap_client_stream(
    nursery: Any,
    stream: Any,
    host: str,
    resource: str,
    *,
    subprotocols: Sequence[str] | None = None,
    extra_headers: Sequence[tuple[str | bytes, str | bytes]] | None = None,
    message_queue_size: int = DEFAULT_MESSAGE_QUEUE_SIZE,
    max_message_size: int | None = DEFAULT_MAX_SIZE,
    connect_timeout: float | None = DEFAULT_CONNECT_TIMEOUT,
    disconnect_timeout: float | None = DEFAULT_DISCONNECT_TIMEOUT,
    **options: Any,
) -> WebSocketConnection:
    """Run the WebSocket handshake (HTTP/1.1 ``Upgrade``, RFC 6455 section
    4.1) over a stream the caller opened, and return the connection, tied
    to ``nursery`` as with :func:`connect_websocket`. The stream is closed
    with the connection (and when the handshake fails).

    Args:
        nursery: A trio nursery, anyio task group or webwire task group.
        stream: A trio ``Stream`` (``trio.SocketStream``,
            ``trio.SSLStream``...), an anyio byte stream, or a webwire
            :class:`~webwire._backends.base.NetworkStream`. Over TLS it is
            already a TLS stream (``Host`` is sent as given, the URL's
            scheme is ``wss`` for a ``trio.SSLStream`` or anyio
            ``TLSStream``).
        host: The ``Host`` field value (the server's name).
        resource: Path and query, starting with ``/``.
        subprotocols, extra_headers, message_queue_size, max_message_size,
        connect_timeout, disconnect_timeout, options: As for
            :func:`open_websocket` (``connect_timeout`` bounds the
            handshake).

    Raises:
        TypeError: ``stream`` is none of the above.
        ConnectionRejected, HandshakeError, ConnectionTimeout: As for
            :func:`open_websocket`.
    """
    from webwire.http._client import AsyncClient

    adapter, is_ssl = adapt_stream(stream)
    if getattr(nursery, "start_soon", None) is None:
        _start_soon(nursery, None)  # raises the TypeError
    url = _url(host, 443 if is_ssl else 80, resource, is_ssl)
    merged = _options(
        subprotocols,
        extra_headers,
        message_queue_size,
        max_message_size,
        connect_timeout,
        disconnect_timeout,
        options,
    )
    transport = _StreamTransport(adapter, url)
    client = AsyncClient(transport=transport, trust_env=False, follow_redirects=False)
    merged["client"] = client
    try:
        ws = await _open(url, merged, disconnect_timeout)
    except BaseException:
        adapter.abort()
        with shield_scope(client._backend or client._init_backend()):
            await client.aclose()
            await adapter.aclose()
        raise
    peer = adapter.get_extra_info("peername")
    port = peer[1] if isinstance(peer, tuple) and len(peer) >= 2 else url.port or 80
    ws._port = int(port)

    async def release() -> None:
        await client.aclose()
        await adapter.aclose()

    try:
        _start_soon(nursery, _watch, ws, release)
    except BaseException:
        adapter.abort()
        await ws.connection._finish()
        await release()
        raise
    return ws


class _StreamTransport(AsyncBaseTransport):
    """A transport that carries one request, the handshake, on the
    caller's stream (an HTTP/1.1 connection made over it)."""

    def __init__(self, stream: NetworkStream, url: yarl.URL) -> None:
        self._stream = stream
        self._url = url
        self._used = False
        self._backend: Backend | None = None

    def _bind_backend(self, backend: Backend) -> None:
        self._backend = backend

    async def handle_async_request(self, request: Request) -> Response:
        from multidict import CIMultiDict, CIMultiDictProxy

        from webwire._config import DEFAULT_TIMEOUT, Limits, Timeout
        from webwire._exceptions import LocalProtocolError
        from webwire._transport._types import TransportRequest
        from webwire._transport.connect import origin_of
        from webwire._transport.http1 import HTTP11Connection
        from webwire.http._models import Response

        if self._used:
            raise LocalProtocolError("a wrapped stream carries one handshake only")
        self._used = True
        backend = self._backend
        if backend is None:
            from webwire._backends import get_backend

            backend = get_backend(None)
        url = request.url
        conn = HTTP11Connection(
            origin_of(url.scheme, url.raw_host, url.explicit_port),
            self._stream,
            backend,
            limits=Limits(),
            on_release=lambda _conn: None,
        )
        conn.reserve()
        timeout = request.extensions.get("timeout", DEFAULT_TIMEOUT)
        if not isinstance(timeout, Timeout):
            timeout = Timeout(timeout)
        try:
            headers = [
                (name.encode("latin-1"), value.encode("latin-1"))
                for name, value in request.headers.items()
            ]
        except UnicodeEncodeError as exc:
            raise LocalProtocolError(
                "header fields must be latin-1 text (RFC 9110 section 5.5)", request=request
            ) from exc
        extensions = {
            k: v for k, v in request.extensions.items() if k not in ("protocol", "http_version")
        }
        raw = await conn.handle_request(
            TransportRequest(
                request.method.encode("ascii"),
                url,
                url.raw_path_qs.encode("ascii") or b"/",
                headers,
                None,
                timeout,
                request.extensions.get("deadline"),
                extensions,
            )
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
        """Nothing to release: the stream belongs to the connection."""
