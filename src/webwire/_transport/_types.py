"""Types passed between the transport layer and the HTTP API above it."""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import AsyncIterable, AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import yarl

    from webwire._backends.base import NetworkStream
    from webwire._config import Timeout
    from webwire._exceptions import TimeoutException

    from .connect import Origin

__all__ = [
    "Connection",
    "RawResponse",
    "ResponseStream",
    "StaleConnection",
    "TraceHook",
    "TransportRequest",
    "bound_timeout",
    "close_body_iterator",
    "may_resend",
    "total_timeout_error",
]

Headers = list[tuple[bytes, bytes]]

TraceHook = Callable[[str, dict[str, Any]], Awaitable[None]]
"""``extensions["trace"]`` of a request: ``await trace(signal, params)``
for each step of getting a connection (``connection_queued_start``/
``_end``, ``connection_create_start``/``_end``, ``connection_reuseconn``,
``dns_resolvehost_start``/``_end``, ``dns_cache_hit``/``_miss``; params
hold ``"host"`` for the DNS signals). An exception it raises propagates to
the request."""


@dataclass(slots=True)
class TransportRequest:
    """One request as the transport layer carries it.

    Attributes:
        method: Request method, e.g. ``b"GET"`` (a token, RFC 9110 section 9).
        url: Absolute ``http``/``https`` URL.
        target: The request target, ``b"/path?query"`` (origin form), or
            ``b"host:port"`` for ``CONNECT`` (authority form).
        headers: Header fields to send, in order, ``Host`` included. No
            framing fields are needed: each version driver frames the body
            itself (HTTP/1.1 adds ``Content-Length`` or chunked coding when
            absent; HTTP/2 and HTTP/3 drop connection-specific fields).
        body: The content, an async iterable of chunks, or ``None``.
        timeout: Connect, read, write and pool limits (seconds).
        deadline: Absolute ``backend.monotonic()`` time bounding every step,
            or ``None``.
        extensions: Per-request options (``"protocol"`` for an extended
            CONNECT, RFC 8441 section 4; with a WebSocket ``Upgrade`` GET,
            ``"protocol": "websocket"`` and ``"http_version"`` (``"auto"``,
            ``"HTTP/1.1"``, ``"HTTP/2"``) let the pool choose the version,
            see :meth:`~webwire._transport.pool.ConnectionPool.request`).
    """

    method: bytes
    url: yarl.URL
    target: bytes
    headers: Headers
    body: bytes | AsyncIterable[bytes] | None
    timeout: Timeout
    deadline: float | None
    extensions: dict[str, Any] = field(default_factory=dict)


class StaleConnection(Exception):
    """A reused connection turned out to be closed by the server before it
    processed the request (HTTP/1.1: no byte of a response arrived; HTTP/2:
    the stream was refused or above a GOAWAY's last stream id). The request
    may be retried on a new connection. Never reaches users: the pool turns
    it into a retry or into the ``__cause__`` error.

    Attributes:
        error: The failure to report if the request is not retried.
        unprocessed: ``True`` when the server guaranteed it did not process
            the request (HTTP/2 ``REFUSED_STREAM`` or GOAWAY, RFC 9113
            section 8.7), so any method may be retried; otherwise only
            idempotent ones (RFC 9110 section 9.2.2).
    """

    def __init__(self, error: BaseException, *, unprocessed: bool = False) -> None:
        super().__init__(str(error))
        self.error = error
        self.unprocessed = unprocessed


IDEMPOTENT_METHODS = frozenset({b"GET", b"HEAD", b"OPTIONS", b"TRACE", b"PUT", b"DELETE"})
"""Methods whose request may be sent twice (RFC 9110 section 9.2.2)."""


def may_resend(request: TransportRequest, stale: StaleConnection) -> bool:
    """Whether a request its connection did not get processed may go once
    more on another connection: its body can be sent again (bytes or none)
    and its method is idempotent, or the server guaranteed it did nothing
    (``stale.unprocessed``: REFUSED_STREAM, a GOAWAY above it)."""
    body = request.body
    if body is not None and not isinstance(body, bytes):
        return False
    return stale.unprocessed or request.method in IDEMPOTENT_METHODS


class Connection(ABC):
    """One connection of the pool, whatever its HTTP version.

    The pool calls every method but :meth:`handle_request` under its
    bookkeeping lock, so they must be synchronous and quick. A connection is
    built with an ``on_release(conn)`` callback that it calls
    (synchronously, without the pool lock held) each time one of its
    requests ends: the response body read to the end or closed, or the
    request failed. The pool then asks :meth:`has_expired` and
    :meth:`is_idle` to decide whether to keep, park or close it.

    Attributes:
        origin: The origin the connection was opened for (its pool key).
        http_version: ``"HTTP/1.1"``, ``"HTTP/2"`` or ``"HTTP/3"``.
        multiplexed: Whether it carries several requests at once (HTTP/2,
            HTTP/3); the pool parks idle single-request connections on a
            stack and asks multiplexed ones for a slot each time.
        idle_since: ``backend.monotonic()`` when the last request ended.
    """

    origin: Origin
    http_version: str
    multiplexed: bool = False
    idle_since: float

    @abstractmethod
    def can_handle(self, origin: Origin) -> bool:
        """Whether requests for ``origin`` may use this connection."""

    @abstractmethod
    def is_available(self) -> bool:
        """Whether one more request can start now: a free stream slot and
        the connection neither closing nor broken."""

    @abstractmethod
    def is_idle(self) -> bool:
        """Whether no request is in flight."""

    @abstractmethod
    def has_expired(self, now: float) -> bool:
        """Whether the connection must be closed rather than used again:
        closed or broken, closed by the peer (EOF, GOAWAY), out of stream
        ids, or idle since longer than its keep-alive expiry at ``now``
        (``backend.monotonic()`` seconds)."""

    @abstractmethod
    def reserve(self) -> None:
        """Take one stream slot for a request about to call
        :meth:`handle_request` (called right after :meth:`is_available`
        returned ``True``, under the pool lock)."""

    @abstractmethod
    async def handle_request(self, request: TransportRequest) -> RawResponse:
        """Send a request on a slot taken with :meth:`reserve` and return
        the response head with its body stream.

        The slot is given back (``on_release``) when the body is read to the
        end or closed, or at once when this raises.

        Raises:
            StaleConnection: The request was not processed and may be
                retried on another connection.
            TransportError: Any other failure.
        """

    @abstractmethod
    def close(self) -> None:
        """Close at once (synchronous, never raises, idempotent); requests
        in flight fail."""

    async def aclose(self) -> None:
        """Close gracefully where the protocol allows (HTTP/2 GOAWAY);
        never raises network errors."""
        self.close()


class ResponseStream(ABC):
    """The body of a response as it arrives: raw bytes, transfer coding
    removed, content coding (gzip, br, ...) kept.

    Reading it to the end returns the connection to the pool; ``aclose()``
    before the end closes the connection instead (it cannot be reused).
    Iterating again after the end yields nothing.
    """

    @abstractmethod
    def __aiter__(self) -> AsyncIterator[bytes]: ...

    @abstractmethod
    async def aclose(self) -> None:
        """Release the connection; idempotent, never raises network errors."""


@dataclass(slots=True)
class RawResponse:
    """A response head and its body stream, as the transport produced it.

    Attributes:
        status_code: Final status code (1xx interim responses are skipped).
        reason_phrase: Reason phrase bytes (empty for HTTP/2 and HTTP/3).
        http_version: ``"HTTP/1.0"``, ``"HTTP/1.1"``, ``"HTTP/2"``, ``"HTTP/3"``.
        headers: Header fields as received, in order.
        stream: The body.
        extensions: Extra details (``"peername"``, ``"tls_version"``, ...).
            For a ``101`` answer to an upgrade request, or a ``2xx`` answer
            to ``CONNECT``, ``"detach"`` is a function that takes no
            argument and returns the connection as a :class:`NetworkStream`
            (the bytes that arrived after the response head are read first)
            and takes it out of the pool; see :data:`Detach`. Over HTTP/2
            it returns the request's stream instead (DATA frames, RFC 8441
            section 4) and the connection stays in the pool.
    """

    status_code: int
    reason_phrase: bytes
    http_version: str
    headers: list[tuple[bytes, bytes]]
    stream: ResponseStream
    extensions: dict[str, Any] = field(default_factory=dict)


Detach = Callable[[], "NetworkStream"]
"""``RawResponse.extensions["detach"]``: hand the connection over as a byte
stream (WebSocket after ``101``, tunnels after ``CONNECT``)."""


async def close_body_iterator(iterator: AsyncIterator[bytes]) -> None:
    """Close a request body iterator that a driver abandoned (an early
    response ended the upload): an async generator's ``aclose``. Its errors
    are dropped."""
    aclose = getattr(iterator, "aclose", None)
    if aclose is not None:
        try:
            await aclose()
        except Exception:
            pass


def bound_timeout(timeout: float | None, deadline: float | None, now: float) -> float | None:
    """The time left for one operation: ``timeout`` seconds, cut to what is
    left before the absolute ``deadline`` (both in the backend's monotonic
    clock). Never negative."""
    if deadline is None:
        return timeout
    left = deadline - now
    if left < 0.0:
        left = 0.0
    if timeout is None or left < timeout:
        return left
    return timeout


def total_timeout_error(
    timeout: Timeout, kind: type[TimeoutException] | None = None
) -> TimeoutException:
    """The error of a request that outlived ``Timeout.total``: a
    :class:`~webwire.ReadTimeout` unless ``kind`` names another
    :class:`~webwire.TimeoutException` subclass; its message names the
    total timeout (seconds)."""
    from webwire._exceptions import ReadTimeout

    total = timeout.total
    shown = "?" if total is None else float(total)
    return (kind or ReadTimeout)(f"the request exceeded its total timeout of {shown} s")
