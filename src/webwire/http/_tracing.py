"""Request tracing in the model of aiohttp's ``TraceConfig``.

A :class:`TraceConfig` holds one list of callbacks per signal; callbacks
are called as ``callback(client, trace_config_ctx, params)`` with a frozen
params dataclass (:class:`TraceRequestStartParams`, ...). The client emits
the request-level signals; the connection pool emits the connection and
DNS signals through the ``extensions["trace"]`` hook of the request, which
:class:`Tracer` provides and maps onto the same callbacks.
"""

from __future__ import annotations

import inspect
from collections.abc import AsyncIterable, AsyncIterator, Awaitable, Callable, Sequence
from dataclasses import dataclass
from types import SimpleNamespace
from typing import TYPE_CHECKING, Any

from multidict import CIMultiDictProxy
from yarl import URL

from ._middleware import call_callback

if TYPE_CHECKING:
    from ._models import Response
    from ._request import Request

__all__ = [
    "TraceConfig",
    "TraceConnectionCreateEndParams",
    "TraceConnectionCreateStartParams",
    "TraceConnectionQueuedEndParams",
    "TraceConnectionQueuedStartParams",
    "TraceConnectionReuseconnParams",
    "TraceDnsCacheHitParams",
    "TraceDnsCacheMissParams",
    "TraceDnsResolveHostEndParams",
    "TraceDnsResolveHostStartParams",
    "TraceRequestChunkSentParams",
    "TraceRequestEndParams",
    "TraceRequestExceptionParams",
    "TraceRequestRedirectParams",
    "TraceRequestStartParams",
    "TraceResponseChunkReceivedParams",
    "TraceWSClosedParams",
    "TraceWSConnectParams",
    "TraceWSMessageReceivedParams",
    "TraceWSMessageSentParams",
    "TraceWSPingParams",
    "TraceWSPongParams",
    "Tracer",
    "WebSocketTracer",
]

TraceCallback = Callable[[Any, Any, Any], Any]
"""``callback(client, trace_config_ctx, params)``; on
:class:`~webwire.AsyncClient` it may return an awaitable (awaited)."""


# -- params ----------------------------------------------------------------


@dataclass(frozen=True)
class TraceRequestStartParams:
    """``on_request_start``: a request is about to be sent.

    Attributes:
        method: The method.
        url: The URL.
        headers: The request's header fields (read-only view).
    """

    method: str
    url: URL
    headers: CIMultiDictProxy[str]


@dataclass(frozen=True)
class TraceRequestEndParams:
    """``on_request_end``: the final response head arrived.

    Attributes:
        method: The method of the final request.
        url: Its URL.
        headers: Its header fields.
        response: The response (its body may still be unread).
    """

    method: str
    url: URL
    headers: CIMultiDictProxy[str]
    response: Response


@dataclass(frozen=True)
class TraceRequestExceptionParams:
    """``on_request_exception``: sending failed.

    Attributes:
        method: The method.
        url: The URL.
        headers: The header fields.
        exception: The exception (raised to the caller after the callbacks).
    """

    method: str
    url: URL
    headers: CIMultiDictProxy[str]
    exception: BaseException


@dataclass(frozen=True)
class TraceRequestRedirectParams:
    """``on_request_redirect``: a redirect response is being followed.

    Attributes:
        method: The method of the redirected request.
        url: Its URL.
        headers: Its header fields.
        response: The redirect response (3xx).
    """

    method: str
    url: URL
    headers: CIMultiDictProxy[str]
    response: Response


@dataclass(frozen=True)
class TraceRequestChunkSentParams:
    """``on_request_chunk_sent``: a piece of the request body was handed to
    the transport (a ``bytes`` body: once, whole, when it was sent).

    Attributes:
        method: The method.
        url: The URL.
        chunk: The bytes.
    """

    method: str
    url: URL
    chunk: bytes


@dataclass(frozen=True)
class TraceResponseChunkReceivedParams:
    """``on_response_chunk_received``: a piece of a response body was
    received (before content decoding).

    Attributes:
        method: The method of the request.
        url: Its URL.
        chunk: The bytes.
    """

    method: str
    url: URL
    chunk: bytes


@dataclass(frozen=True)
class TraceConnectionQueuedStartParams:
    """``on_connection_queued_start``: the request waits for a free
    connection slot."""


@dataclass(frozen=True)
class TraceConnectionQueuedEndParams:
    """``on_connection_queued_end``: the wait for a slot ended."""


@dataclass(frozen=True)
class TraceConnectionCreateStartParams:
    """``on_connection_create_start``: a new connection is being opened."""


@dataclass(frozen=True)
class TraceConnectionCreateEndParams:
    """``on_connection_create_end``: the new connection is open."""


@dataclass(frozen=True)
class TraceConnectionReuseconnParams:
    """``on_connection_reuseconn``: a pooled connection carries the
    request."""


@dataclass(frozen=True)
class TraceDnsResolveHostStartParams:
    """``on_dns_resolvehost_start``.

    Attributes:
        host: The host name being resolved.
    """

    host: str


@dataclass(frozen=True)
class TraceDnsResolveHostEndParams:
    """``on_dns_resolvehost_end``.

    Attributes:
        host: The host name resolved.
    """

    host: str


@dataclass(frozen=True)
class TraceDnsCacheHitParams:
    """``on_dns_cache_hit``.

    Attributes:
        host: The host name found in the DNS cache.
    """

    host: str


@dataclass(frozen=True)
class TraceDnsCacheMissParams:
    """``on_dns_cache_miss``.

    Attributes:
        host: The host name not found in the DNS cache.
    """

    host: str


@dataclass(frozen=True)
class TraceWSConnectParams:
    """``on_ws_connect``: a WebSocket connection opened (the handshake
    succeeded, RFC 6455 section 4.1; RFC 8441 over HTTP/2).

    Attributes:
        url: The ``ws://``/``wss://`` URL.
        http_version: ``"HTTP/1.1"`` or ``"HTTP/2"``.
        subprotocol: The subprotocol the server chose, or ``None``.
        extensions: Names of the negotiated extensions
            (``("permessage-deflate",)`` or ``()``).
    """

    url: URL
    http_version: str
    subprotocol: str | None
    extensions: tuple[str, ...]


@dataclass(frozen=True)
class TraceWSMessageSentParams:
    """``on_ws_message_sent``: a data message is being sent (RFC 6455
    section 5.6). Fired when the message is handed to the connection, just
    before its (last) frame is written; not fired when the connection is
    already closing.

    Attributes:
        url: The connection's URL.
        opcode: ``"text"`` or ``"binary"``.
        size: Payload size in bytes as the application gave it (UTF-8 for
            text), before permessage-deflate compression; a fragmented
            message is reported once, with its total size.
    """

    url: URL
    opcode: str
    size: int


@dataclass(frozen=True)
class TraceWSMessageReceivedParams:
    """``on_ws_message_received``: a whole data message arrived (fired by
    the connection's reader when the message's last frame arrived, before
    ``recv`` returns it).

    Attributes:
        url: The connection's URL.
        opcode: ``"text"`` or ``"binary"``.
        size: Payload size in bytes after permessage-deflate decompression
            (UTF-8 bytes for text), all fragments together.
    """

    url: URL
    opcode: str
    size: int


@dataclass(frozen=True)
class TraceWSPingParams:
    """``on_ws_ping``: a ping frame (RFC 6455 section 5.5.2) was sent
    (:meth:`~webwire.websocket.ClientConnection.ping` or keepalive: after
    the frame was written, so its pong may be reported first) or received
    (its pong answer is automatic).

    Attributes:
        url: The connection's URL.
        direction: ``"sent"`` or ``"received"``.
        data: The payload (at most 125 bytes).
    """

    url: URL
    direction: str
    data: bytes


@dataclass(frozen=True)
class TraceWSPongParams:
    """``on_ws_pong``: a pong frame (RFC 6455 section 5.5.3) was received,
    or sent by :meth:`~webwire.websocket.ClientConnection.pong` (automatic
    answers to pings are not reported).

    Attributes:
        url: The connection's URL.
        direction: ``"sent"`` or ``"received"``.
        data: The payload.
    """

    url: URL
    direction: str
    data: bytes


@dataclass(frozen=True)
class TraceWSClosedParams:
    """``on_ws_closed``: the WebSocket connection ended (closing handshake
    done, or the transport dropped).

    Attributes:
        url: The connection's URL.
        code: The close code received (RFC 6455 section 7.1.5; ``1006``
            when none was).
        reason: The close reason received (``""`` when none).
    """

    url: URL
    code: int
    reason: str


# Transport signal name -> (TraceConfig attribute, params class).
_TRANSPORT_SIGNALS: dict[str, tuple[str, type[Any]]] = {
    "connection_queued_start": ("on_connection_queued_start", TraceConnectionQueuedStartParams),
    "connection_queued_end": ("on_connection_queued_end", TraceConnectionQueuedEndParams),
    "connection_create_start": ("on_connection_create_start", TraceConnectionCreateStartParams),
    "connection_create_end": ("on_connection_create_end", TraceConnectionCreateEndParams),
    "connection_reuseconn": ("on_connection_reuseconn", TraceConnectionReuseconnParams),
    "dns_resolvehost_start": ("on_dns_resolvehost_start", TraceDnsResolveHostStartParams),
    "dns_resolvehost_end": ("on_dns_resolvehost_end", TraceDnsResolveHostEndParams),
    "dns_cache_hit": ("on_dns_cache_hit", TraceDnsCacheHitParams),
    "dns_cache_miss": ("on_dns_cache_miss", TraceDnsCacheMissParams),
}

SIGNALS = (
    "on_request_start",
    "on_request_chunk_sent",
    "on_response_chunk_received",
    "on_request_end",
    "on_request_exception",
    "on_request_redirect",
    "on_connection_queued_start",
    "on_connection_queued_end",
    "on_connection_create_start",
    "on_connection_create_end",
    "on_connection_reuseconn",
    "on_dns_resolvehost_start",
    "on_dns_resolvehost_end",
    "on_dns_cache_hit",
    "on_dns_cache_miss",
    "on_ws_connect",
    "on_ws_message_sent",
    "on_ws_message_received",
    "on_ws_ping",
    "on_ws_pong",
    "on_ws_closed",
)
"""Every signal attribute of :class:`TraceConfig`."""


class TraceConfig:
    """Callbacks following the life of each request, as in aiohttp.

    Append callbacks to the signal lists (``on_request_start``,
    ``on_request_chunk_sent``, ``on_response_chunk_received``,
    ``on_request_end``, ``on_request_exception``, ``on_request_redirect``,
    ``on_connection_queued_start``/``_end``,
    ``on_connection_create_start``/``_end``, ``on_connection_reuseconn``,
    ``on_dns_resolvehost_start``/``_end``, ``on_dns_cache_hit``/``_miss``,
    and for WebSocket connections ``on_ws_connect``, ``on_ws_message_sent``,
    ``on_ws_message_received``, ``on_ws_ping``, ``on_ws_pong``,
    ``on_ws_closed``). Each is called as ``callback(client, trace_config_ctx, params)``, in
    order, with the matching frozen params object
    (:class:`TraceRequestStartParams`, ...); on
    :class:`~webwire.AsyncClient` a callback may be ``async def`` (its result
    is awaited), on :class:`~webwire.Client` it must be a plain function. An
    exception raised by a callback propagates to the caller of the request.

    ``trace_config_ctx`` is made once per request and trace config by
    ``trace_config_ctx_factory(trace_request_ctx=...)``, with the request's
    ``trace_request_ctx`` argument, so callbacks of one request share state.
    The connection and DNS signals come from the connection pool.

    WebSocket connections (:func:`webwire.websocket.connect` with
    ``client=`` or ``trace=``) emit the request signals for their opening
    handshake and the ``on_ws_*`` signals for their life, with one
    ``trace_config_ctx`` per connection. ``on_ws_message_sent`` and
    ``on_ws_pong`` (sent) run in the sending task, and an exception they
    raise reaches the caller of ``send``; ``on_ws_message_received``,
    received pings and pongs, and ``on_ws_closed`` run in the connection's
    reader task (on the blocking :class:`~webwire.Client`: its reader
    thread), where an exception raised by a callback is logged and ignored;
    a slow callback there delays the reading of the next frames.

    Args:
        trace_config_ctx_factory: Builds the per-request context; called with
            the keyword argument ``trace_request_ctx`` (default:
            :class:`types.SimpleNamespace`).
    """

    def __init__(self, trace_config_ctx_factory: Callable[..., Any] = SimpleNamespace) -> None:
        self._factory = trace_config_ctx_factory
        self.on_request_start: list[TraceCallback] = []
        self.on_request_chunk_sent: list[TraceCallback] = []
        self.on_response_chunk_received: list[TraceCallback] = []
        self.on_request_end: list[TraceCallback] = []
        self.on_request_exception: list[TraceCallback] = []
        self.on_request_redirect: list[TraceCallback] = []
        self.on_connection_queued_start: list[TraceCallback] = []
        self.on_connection_queued_end: list[TraceCallback] = []
        self.on_connection_create_start: list[TraceCallback] = []
        self.on_connection_create_end: list[TraceCallback] = []
        self.on_connection_reuseconn: list[TraceCallback] = []
        self.on_dns_resolvehost_start: list[TraceCallback] = []
        self.on_dns_resolvehost_end: list[TraceCallback] = []
        self.on_dns_cache_hit: list[TraceCallback] = []
        self.on_dns_cache_miss: list[TraceCallback] = []
        self.on_ws_connect: list[TraceCallback] = []
        self.on_ws_message_sent: list[TraceCallback] = []
        self.on_ws_message_received: list[TraceCallback] = []
        self.on_ws_ping: list[TraceCallback] = []
        self.on_ws_pong: list[TraceCallback] = []
        self.on_ws_closed: list[TraceCallback] = []

    def trace_config_ctx(self, trace_request_ctx: Any = None) -> Any:
        """A new per-request context (``trace_config_ctx`` of the callbacks).

        Args:
            trace_request_ctx: The request's ``trace_request_ctx`` argument.
        """
        return self._factory(trace_request_ctx=trace_request_ctx)

    def callbacks(self) -> list[TraceCallback]:
        """Every callback of every signal (for checks)."""
        return [cb for name in SIGNALS for cb in getattr(self, name)]

    def __repr__(self) -> str:
        counts = ", ".join(
            f"{name}={len(getattr(self, name))}" for name in SIGNALS if getattr(self, name)
        )
        return f"<TraceConfig {counts}>"


def check_trace_configs(configs: Sequence[TraceConfig], sync: bool) -> tuple[TraceConfig, ...]:
    """``configs`` as a tuple, checked.

    Raises:
        TypeError: An item is not a :class:`TraceConfig`, or (``sync``) a
            callback is a coroutine function.
    """
    if isinstance(configs, TraceConfig):
        configs = (configs,)
    result = tuple(configs)
    for config in result:
        if not isinstance(config, TraceConfig):
            raise TypeError(f"trace must be a sequence of webwire.TraceConfig, not {config!r}")
        if sync:
            for callback in config.callbacks():
                if inspect.iscoroutinefunction(callback):
                    raise TypeError(
                        f"trace callback {callback!r} is a coroutine function: the blocking "
                        "Client calls plain functions only"
                    )
    return result


class Tracer:
    """The traces of one request: each :class:`TraceConfig` with its
    context, and the emitters the client and the pool call.

    Args:
        client: The client passed to the callbacks.
        configs: The trace configs.
        trace_request_ctx: Passed to each context factory.
        sync: The blocking client (awaitable results are refused).
    """

    __slots__ = ("_client", "_sync", "_traces")

    def __init__(
        self, client: Any, configs: Sequence[TraceConfig], trace_request_ctx: Any, sync: bool
    ) -> None:
        self._client = client
        self._sync = sync
        self._traces = [
            (config, config.trace_config_ctx(trace_request_ctx=trace_request_ctx))
            for config in configs
        ]

    async def emit(self, signal: str, params: Any) -> None:
        """Call every callback of ``signal`` (a :class:`TraceConfig`
        attribute name) with ``params``, in order."""
        client = self._client
        for config, ctx in self._traces:
            for callback in getattr(config, signal):
                await call_callback(self._sync, callback, client, ctx, params)

    async def transport_hook(self, signal: str, params: dict[str, Any]) -> None:
        """The ``extensions["trace"]`` callable given to the pool: maps a
        transport signal (``"connection_create_start"``, ...) onto the
        callbacks; unknown signals are ignored."""
        entry = _TRANSPORT_SIGNALS.get(signal)
        if entry is not None:
            name, params_class = entry
            await self.emit(name, params_class(**params))

    async def request_start(self, request: Request) -> None:
        await self.emit(
            "on_request_start",
            TraceRequestStartParams(request.method, request.url, CIMultiDictProxy(request.headers)),
        )

    async def request_end(self, request: Request, response: Response) -> None:
        headers = CIMultiDictProxy(request.headers)
        await self.emit(
            "on_request_end", TraceRequestEndParams(request.method, request.url, headers, response)
        )

    async def request_exception(self, request: Request, exc: BaseException) -> None:
        headers = CIMultiDictProxy(request.headers)
        await self.emit(
            "on_request_exception",
            TraceRequestExceptionParams(request.method, request.url, headers, exc),
        )

    async def request_redirect(self, request: Request, response: Response) -> None:
        headers = CIMultiDictProxy(request.headers)
        await self.emit(
            "on_request_redirect",
            TraceRequestRedirectParams(request.method, request.url, headers, response),
        )

    async def chunk_sent(self, request: Request, chunk: bytes) -> None:
        await self.emit(
            "on_request_chunk_sent", TraceRequestChunkSentParams(request.method, request.url, chunk)
        )

    async def chunk_received(self, request: Request, chunk: bytes) -> None:
        await self.emit(
            "on_response_chunk_received",
            TraceResponseChunkReceivedParams(request.method, request.url, chunk),
        )


class WebSocketTracer:
    """The ``on_ws_*`` signals of one WebSocket connection.

    Args:
        client: The client passed to the callbacks.
        configs: The trace configs (not empty).
        url: The connection's ``ws://``/``wss://`` URL.
        sync: The blocking client.
    """

    __slots__ = ("_tracer", "url")

    def __init__(self, client: Any, configs: Sequence[TraceConfig], url: URL, sync: bool) -> None:
        self._tracer = Tracer(client, configs, None, sync)
        self.url = url

    async def connect(
        self, http_version: str, subprotocol: str | None, extensions: Sequence[str]
    ) -> None:
        await self._tracer.emit(
            "on_ws_connect",
            TraceWSConnectParams(self.url, http_version, subprotocol, tuple(extensions)),
        )

    async def message_sent(self, opcode: str, size: int) -> None:
        await self._tracer.emit(
            "on_ws_message_sent", TraceWSMessageSentParams(self.url, opcode, size)
        )

    async def message_received(self, opcode: str, size: int) -> None:
        await self._tracer.emit(
            "on_ws_message_received", TraceWSMessageReceivedParams(self.url, opcode, size)
        )

    async def ping(self, direction: str, data: bytes) -> None:
        await self._tracer.emit("on_ws_ping", TraceWSPingParams(self.url, direction, data))

    async def pong(self, direction: str, data: bytes) -> None:
        await self._tracer.emit("on_ws_pong", TraceWSPongParams(self.url, direction, data))

    async def closed(self, code: int, reason: str) -> None:
        await self._tracer.emit("on_ws_closed", TraceWSClosedParams(self.url, code, reason))


class TracedRequestBody:
    """A streamed request body that reports each chunk as it is handed to
    the transport; replayable when the body it wraps is."""

    __slots__ = ("_body", "_request", "_tracer", "replayable")

    def __init__(self, body: AsyncIterable[bytes], request: Request, tracer: Tracer) -> None:
        self._body = body
        self._request = request
        self._tracer = tracer
        self.replayable = bool(getattr(body, "replayable", False))

    def __aiter__(self) -> AsyncIterator[bytes]:
        return _TracedIterator(self._body.__aiter__(), self._request, self._tracer, sent=True)


class TracedResponseStream:
    """A response body stream that reports each chunk received."""

    __slots__ = ("_request", "_stream", "_tracer")

    def __init__(self, stream: AsyncIterable[bytes], request: Request, tracer: Tracer) -> None:
        self._stream = stream
        self._request = request
        self._tracer = tracer

    def __aiter__(self) -> AsyncIterator[bytes]:
        return _TracedIterator(self._stream.__aiter__(), self._request, self._tracer, sent=False)

    async def aclose(self) -> None:
        aclose = getattr(self._stream, "aclose", None)
        if aclose is not None:
            await aclose()

    def __getattr__(self, name: str) -> Any:
        # Transport-specific attributes of the stream (trailers, ...).
        return getattr(self._stream, name)


class _TracedIterator:
    __slots__ = ("_emit", "_iterator", "_request")

    def __init__(
        self, iterator: AsyncIterator[bytes], request: Request, tracer: Tracer, *, sent: bool
    ) -> None:
        self._iterator = iterator
        self._request = request
        self._emit: Callable[[Request, bytes], Awaitable[None]] = (
            tracer.chunk_sent if sent else tracer.chunk_received
        )

    def __aiter__(self) -> _TracedIterator:
        return self

    async def __anext__(self) -> bytes:
        chunk = await self._iterator.__anext__()
        if chunk:
            await self._emit(self._request, bytes(chunk))
        return chunk

    async def aclose(self) -> None:
        aclose = getattr(self._iterator, "aclose", None)
        if aclose is not None:
            await aclose()
