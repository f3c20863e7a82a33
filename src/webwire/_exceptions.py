"""The one exception tree of webwire.

Every error webwire raises is a :class:`WebwireError`. Errors of the sockets,
TLS and protocol engines underneath are mapped to these classes where they
are caught (the ``_backends`` boundary for I/O, the ``_proto`` layer for
parsing) and keep the original as ``__cause__``::

    WebwireError
    ├── TransportError                  the request could not be carried
    │   ├── NetworkError                the network failed under us
    │   │   ├── ConnectError            DNS, TCP or TLS connection failed
    │   │   ├── ReadError               receiving failed (reset, TLS error)
    │   │   ├── WriteError              sending failed (reset, broken pipe)
    │   │   └── CloseError              closing failed
    │   ├── TimeoutException            a time limit ran out
    │   │   ├── ConnectTimeout
    │   │   ├── ReadTimeout
    │   │   ├── WriteTimeout
    │   │   └── PoolTimeout             no connection became free in time
    │   ├── ProtocolError               the peer or we broke the protocol
    │   │   ├── RemoteProtocolError     the server sent something invalid
    │   │   └── LocalProtocolError      the request cannot be sent as given
    │   ├── ProxyError
    │   └── UnsupportedProtocol         a URL scheme webwire cannot carry
    ├── DecodingError                   content decoding failed or exceeded
    │   │                               its size limit
    │   ├── ResponseTooLarge            the body exceeded max_body_size
    │   └── JSONDecodingError           invalid JSON (also json.JSONDecodeError)
    ├── TooManyRedirects
    ├── HTTPStatusError                 raise_for_status() on a 4xx/5xx
    ├── InvalidURL
    ├── StreamError                     misuse of a response body stream
    │   ├── StreamConsumed
    │   ├── StreamClosed
    │   └── ResponseNotRead
    ├── ConnectionClosed                WebSocket (RFC 6455 section 7)
    │   ├── ConnectionClosedOK
    │   └── ConnectionClosedError
    ├── InvalidHandshake                WebSocket opening handshake failed
    ├── WebTransportError               a WebTransport session or stream failed
    │   ├── SessionClosed               the session ended (code, reason)
    │   ├── StreamReset                 a stream was reset or stopped (code)
    │   ├── DatagramTooLarge            a datagram over max_datagram_size
    │   └── ClientError                 a WebTransport client object misused
    │       └── ConfigurationError      an invalid ClientConfig value
    ├── AuthError                       malformed challenge, unreadable .netrc
    ├── LifespanError                   an in-process ASGI app's lifespan
    │                                   startup or shutdown failed
    └── SSEError                        a server-sent event stream cannot be
                                        opened (wrong status or media type)

``ReadTimeout`` and friends are also subclasses of the built-in
:class:`TimeoutError`, so ``except TimeoutError`` keeps working.
"""

from __future__ import annotations

import json as _json
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from .http._models import Request, Response

__all__ = [
    "AuthError",
    "ClientError",
    "CloseError",
    "CloseFrame",
    "ConcurrencyError",
    "ConfigurationError",
    "ConnectError",
    "ConnectTimeout",
    "ConnectionClosed",
    "ConnectionClosedError",
    "ConnectionClosedOK",
    "DecodingError",
    "HTTPStatusError",
    "InvalidHandshake",
    "InvalidStatus",
    "InvalidURL",
    "JSONDecodingError",
    "LifespanError",
    "LocalProtocolError",
    "NetworkError",
    "PoolTimeout",
    "ProtocolError",
    "ProxyError",
    "ReadError",
    "ReadTimeout",
    "RemoteProtocolError",
    "ResponseNotRead",
    "ResponseTooLarge",
    "SSEError",
    "SessionClosed",
    "StreamClosed",
    "StreamConsumed",
    "StreamError",
    "StreamReset",
    "TimeoutException",
    "TooManyRedirects",
    "TransportError",
    "UnsupportedProtocol",
    "WebTransportError",
    "WebwireError",
    "WriteError",
    "WriteTimeout",
]


class WebwireError(Exception):
    """Base class of every exception webwire raises.

    Attributes:
        request: The :class:`~webwire.Request` being sent when the error
            happened, or ``None`` when the error is not tied to a request.
    """

    def __init__(self, message: str = "", *, request: Request | None = None) -> None:
        super().__init__(message)
        self._request = request

    @property
    def request(self) -> Request | None:
        """The request that was being sent, or ``None``."""
        return self._request

    @request.setter
    def request(self, request: Request | None) -> None:
        self._request = request


class TransportError(WebwireError):
    """The request could not be carried to the server and back."""


class NetworkError(TransportError):
    """The network failed while connecting, sending or receiving."""


class ConnectError(NetworkError):
    """Opening the connection failed: DNS, TCP refused or unreachable, or the
    TLS handshake failed (including certificate verification)."""


class ReadError(NetworkError):
    """Receiving from the connection failed (reset by the peer, TLS error)."""


class WriteError(NetworkError):
    """Sending on the connection failed (reset by the peer, broken pipe)."""


class CloseError(NetworkError):
    """Closing the connection failed."""


class TimeoutException(TransportError, TimeoutError):
    """A time limit of :class:`~webwire.Timeout` ran out."""


class ConnectTimeout(TimeoutException):
    """The connection (DNS, TCP and TLS) was not open within ``Timeout.connect``
    seconds."""


class ReadTimeout(TimeoutException):
    """No data arrived within ``Timeout.read`` seconds, or the whole request
    outlived ``Timeout.total``."""


class WriteTimeout(TimeoutException):
    """Data could not be sent within ``Timeout.write`` seconds."""


class PoolTimeout(TimeoutException):
    """No connection of the pool became free within ``Timeout.pool`` seconds."""


class ProtocolError(TransportError):
    """The protocol was broken, by the peer or by the request."""


class RemoteProtocolError(ProtocolError):
    """The server sent something the protocol does not allow: a malformed
    status line or header, a bad chunk, a body cut short, headers over the
    size limit, or the connection closed before a complete response."""


class LocalProtocolError(ProtocolError):
    """The request cannot be sent as given, for example a header name or
    value, method or target holding CR, LF or NUL (RFC 9110 section 5.5)."""


class ProxyError(TransportError):
    """The proxy refused or failed: a status other than 2xx to ``CONNECT``
    (RFC 9110 section 9.3.6; 407 when it wants credentials), a SOCKS
    failure reply or refused credentials, or the proxy closing the
    connection before it answered.

    Attributes:
        status_code: The proxy's HTTP status code, or ``None`` (SOCKS, or no
            response).
    """

    def __init__(
        self, message: str = "", *, request: Request | None = None, status_code: int | None = None
    ) -> None:
        super().__init__(message, request=request)
        self.status_code = status_code


class UnsupportedProtocol(TransportError):
    """The URL's scheme is not one webwire can carry (``http``/``https``)."""


class DecodingError(WebwireError):
    """The response body could not be decoded (bad gzip/deflate/br/zstd data,
    bad charset) or its decoded size exceeded the configured limit."""


class TooManyRedirects(WebwireError):
    """More redirects were followed than ``max_redirects`` allows."""


class HTTPStatusError(WebwireError):
    """The response had a 4xx or 5xx status code and
    :meth:`~webwire.Response.raise_for_status` (or ``raise_for_status=True``)
    was used.

    Attributes:
        response: The failing :class:`~webwire.Response`.
    """

    def __init__(self, message: str, *, request: Request, response: Response) -> None:
        super().__init__(message, request=request)
        self.response = response


class InvalidURL(WebwireError):
    """The URL could not be parsed or lacks a scheme or host."""

    def __init__(self, message: str = "", **kwargs: Any) -> None:
        super().__init__(message, **kwargs)


class StreamError(WebwireError, RuntimeError):
    """A response body stream was used in a way that cannot work."""


class StreamConsumed(StreamError):
    """The body stream was already read once and cannot be read again."""


class StreamClosed(StreamError):
    """The body stream was closed before it was read."""


class ResponseNotRead(StreamError):
    """``content``/``text``/``json()`` was used on a streamed response before
    it was read with ``read()``/``aread()``."""


class ConnectionClosed(WebwireError):
    """The WebSocket connection is closed (RFC 6455 section 7).

    Attributes:
        rcvd: The close frame received from the server, or ``None`` when
            none arrived (the connection dropped: ``code`` is then 1006).
        sent: The close frame sent to the server, or ``None``.
        rcvd_then_sent: ``True`` when the server started the closing
            handshake, ``False`` when webwire did, ``None`` when it did not
            complete.
    """

    def __init__(
        self,
        message: str = "",
        *,
        rcvd: CloseFrame | None = None,
        sent: CloseFrame | None = None,
        rcvd_then_sent: bool | None = None,
    ) -> None:
        super().__init__(message)
        self.rcvd = rcvd
        self.sent = sent
        self.rcvd_then_sent = rcvd_then_sent

    @property
    def code(self) -> int:
        """The close code received (RFC 6455 section 7.1.5): 1005 when the
        close frame had none, 1006 when no close frame arrived."""
        return 1006 if self.rcvd is None else self.rcvd.code

    @property
    def reason(self) -> CloseReason:
        """The close reason received (RFC 6455 section 7.1.6), ``""`` when
        none: a :class:`CloseReason`, a ``str`` that also carries ``code``
        and ``name`` (the trio-websocket shape)."""
        return CloseReason(self.code, "" if self.rcvd is None else self.rcvd.reason)


class ConnectionClosedOK(ConnectionClosed):
    """The WebSocket connection closed normally (close code 1000 or 1001)."""


class ConnectionClosedError(ConnectionClosed):
    """The WebSocket connection closed with an error."""


class InvalidHandshake(WebwireError):
    """The WebSocket opening handshake failed (RFC 6455 section 4)."""


class WebTransportError(WebwireError):
    """A WebTransport (draft-ietf-webtrans-http3) session or stream cannot
    do what was asked: the server refused the session, does not support
    WebTransport, or broke the protocol."""


class ClientError(WebTransportError):
    """A WebTransport client object (:mod:`webwire.webtransport`) cannot do
    what was asked: it is closed, a session does not belong to it, or
    connecting failed for a reason that is not a transport error (the
    original is ``__cause__``)."""


class ConfigurationError(ClientError, ValueError):
    """A :class:`~webwire.webtransport.ClientConfig` value is invalid.

    Attributes:
        key: The field name (``"connect_timeout"``...).
        value: The rejected value.
    """

    def __init__(self, key: str, value: Any, reason: str) -> None:
        super().__init__(f"invalid ClientConfig.{key} = {value!r}: {reason}")
        self.key = key
        self.value = value


class SessionClosed(WebTransportError):
    """The WebTransport session is closed (by either side, or its
    connection ended); raised by operations pending on it or started
    after.

    Attributes:
        code: The application error code of the CLOSE_WEBTRANSPORT_SESSION
            capsule (draft-ietf-webtrans-http3 section 5), ``None`` when the
            session ended without one (connection lost, CONNECT stream
            reset).
        reason: Its reason text (``""`` when none).
    """

    def __init__(
        self,
        message: str = "the WebTransport session is closed",
        *,
        code: int | None = None,
        reason: str = "",
    ) -> None:
        super().__init__(message)
        self.code = code
        self.reason = reason


class StreamReset(WebTransportError):
    """A WebTransport stream was reset (RESET_STREAM) or stopped
    (STOP_SENDING) by the peer, or aborted locally.

    Attributes:
        code: The WebTransport application error code (0 to 2**32 - 1)
            carried by the frame (draft-ietf-webtrans-http3 section 4.3),
            or ``None`` when the HTTP/3 code was outside the application
            range (then in :attr:`http_code`).
        http_code: The HTTP/3 error code as received, ``None`` for a local
            abort.
    """

    def __init__(
        self,
        message: str = "the WebTransport stream was reset",
        *,
        code: int | None = None,
        http_code: int | None = None,
    ) -> None:
        super().__init__(message)
        self.code = code
        self.http_code = http_code


class DatagramTooLarge(WebTransportError, ValueError):
    """A datagram is larger than the session's ``max_datagram_size``: it
    would not fit one QUIC packet (RFC 9221 section 5).

    Attributes:
        size: The datagram's size, bytes.
        limit: The largest size allowed, bytes.
    """

    def __init__(self, size: int, limit: int) -> None:
        super().__init__(
            f"a WebTransport datagram of {size} bytes is larger than the "
            f"session's max_datagram_size of {limit} bytes"
        )
        self.size = size
        self.limit = limit


class AuthError(WebwireError):
    """Authentication could not be carried out: a malformed or unsupported
    challenge (RFC 9110 section 11.6.1, RFC 7616), or an unreadable
    ``.netrc`` file."""


class ResponseTooLarge(DecodingError):
    """The response body exceeded ``Limits.max_body_size`` (or the
    ``max_body_size`` request extension), counted in decoded bytes.

    Attributes:
        limit: The limit that was exceeded, in bytes.
    """

    def __init__(self, message: str, *, limit: int, request: Request | None = None) -> None:
        super().__init__(message, request=request)
        self.limit = limit


class JSONDecodingError(DecodingError, _json.JSONDecodeError):
    """The response body is not valid JSON (RFC 8259), or nests too deeply.

    It is also a :class:`json.JSONDecodeError` (so a :class:`ValueError`):
    ``except json.JSONDecodeError`` and ``except ValueError`` keep working.

    Attributes:
        msg: What is wrong.
        doc: The text that was parsed.
        pos: Index in ``doc`` where parsing failed.
        lineno: Line of ``pos`` (from 1).
        colno: Column of ``pos`` (from 1).
    """

    def __init__(
        self, msg: str, doc: str, pos: int, *, request: Request | None = None
    ) -> None:
        _json.JSONDecodeError.__init__(self, msg, doc, pos)
        self._request = request

    def __reduce__(self) -> tuple[Any, ...]:
        return (self.__class__, (self.msg, self.doc, self.pos))
class LifespanError(WebwireError):
    """An ASGI app run in process (:class:`~webwire.ASGITransport` with
    ``lifespan=True``) reported ``lifespan.startup.failed`` or
    ``lifespan.shutdown.failed``, or raised after receiving the startup
    or shutdown event (ASGI lifespan protocol 2.0). The app's exception, if
    any, is the ``__cause__``."""


class SSEError(WebwireError):
    """A server-sent event stream could not be opened: the response is not
    ``200`` with ``Content-Type: text/event-stream`` (HTML Living Standard,
    section 9.2 "Server-sent events"), or the reconnection attempts are
    exhausted. ``response`` is the offending response, if any.

    Attributes:
        response: The response that was refused, or ``None``.
    """

    def __init__(
        self,
        message: str = "",
        *,
        request: Request | None = None,
        response: Response | None = None,
    ) -> None:
        super().__init__(message, request=request)
        self.response = response


@dataclass(frozen=True)
class CloseFrame:
    """The code and reason of a WebSocket close frame (RFC 6455 section
    5.5.1).

    Attributes:
        code: The close code (section 7.4), e.g. 1000 for a normal closure;
            1005 stands for a close frame without a code.
        reason: The close reason, UTF-8 text of at most 123 bytes.
    """

    code: int
    reason: str

    def __str__(self) -> str:
        return f"{self.code} ({self.reason})" if self.reason else str(self.code)


class InvalidStatus(InvalidHandshake):
    """The server answered the WebSocket opening handshake with a status
    other than ``101 Switching Protocols`` (RFC 6455 section 4.1; ``200``
    or an error status over HTTP/2, RFC 8441 section 5).

    Attributes:
        status_code: The response's status code.
        headers: The response's header fields (case-insensitive mapping).
        body: The first bytes of the response body (64 KiB at most).
    """

    def __init__(
        self,
        message: str,
        *,
        status_code: int,
        headers: Any,
        body: bytes,
        request: Request | None = None,
    ) -> None:
        super().__init__(message, request=request)
        self.status_code = status_code
        self.headers = headers
        self.body = body


class ConcurrencyError(WebwireError, RuntimeError):
    """Two tasks (or threads) used a WebSocket connection in a way that
    cannot be interleaved: two ``recv`` (or ``recv_streaming``) calls at
    once, or two pings with the same payload waiting."""


_CLOSE_NAMES = {
    1000: "NORMAL_CLOSURE",
    1001: "GOING_AWAY",
    1002: "PROTOCOL_ERROR",
    1003: "UNSUPPORTED_DATA",
    1005: "NO_STATUS_RCVD",
    1006: "ABNORMAL_CLOSURE",
    1007: "INVALID_FRAME_PAYLOAD_DATA",
    1008: "POLICY_VIOLATION",
    1009: "MESSAGE_TOO_BIG",
    1010: "MANDATORY_EXT",
    1011: "INTERNAL_ERROR",
    1012: "SERVICE_RESTART",
    1013: "TRY_AGAIN_LATER",
    1014: "BAD_GATEWAY",
    1015: "TLS_HANDSHAKE",
}


class CloseReason(str):
    """Why a WebSocket connection closed: the close reason text (a ``str``,
    ``""`` when none, RFC 6455 section 7.1.6) that also carries the close
    code (section 7.1.5).

    Attributes:
        code: The close code (section 7.4): 1000 normal closure, 1005 no
            code in the close frame, 1006 no close frame (dropped).
        name: The code's name in the IANA registry, e.g.
            ``"NORMAL_CLOSURE"``; ``"PRIVATE_CODE"`` for 4000-4999,
            ``"LIBRARY_CODE"`` for 3000-3999, ``"UNKNOWN"`` otherwise.
        reason: The reason text (the string itself).
    """

    code: int

    def __new__(cls, code: int, reason: str = "") -> CloseReason:
        self = super().__new__(cls, reason)
        self.code = code
        return self

    @property
    def name(self) -> str:
        """The close code's registered name (section 11.7)."""
        if self.code in _CLOSE_NAMES:
            return _CLOSE_NAMES[self.code]
        if 4000 <= self.code <= 4999:
            return "PRIVATE_CODE"
        if 3000 <= self.code <= 3999:
            return "LIBRARY_CODE"
        return "UNKNOWN"

    @property
    def reason(self) -> str:
        """The reason text as a plain ``str``."""
        return str.__str__(self)

    def __repr__(self) -> str:
        return f"<CloseReason code={self.code} name={self.name} reason={self.reason!r}>"

    def __reduce__(self) -> tuple[Any, ...]:
        return (CloseReason, (self.code, self.reason))


HandshakeError = InvalidHandshake
"""The trio-websocket name of :class:`InvalidHandshake`: the WebSocket
opening handshake failed (RFC 6455 section 4)."""


class ConnectionRejected(InvalidStatus):
    """The server refused the WebSocket opening handshake: it answered with
    a status other than ``101`` (RFC 6455 section 4.1; other than ``2xx``
    over HTTP/2, RFC 8441 section 5). A subclass of :class:`InvalidStatus`:
    ``status_code``, ``headers`` (case-insensitive mapping of ``str``) and
    ``body`` (the first 64 KiB, ``bytes``)."""


class ConnectionTimeout(InvalidHandshake, TimeoutException):
    """The WebSocket connection and its opening handshake did not complete
    within ``connect_timeout`` seconds. Its ``__cause__`` is the
    :class:`ConnectTimeout`, :class:`ReadTimeout`... that ran out."""


class DisconnectionTimeout(InvalidHandshake, TimeoutException):
    """The server did not complete the WebSocket closing handshake (RFC
    6455 section 7.1.2) within ``disconnect_timeout`` seconds; the
    connection was dropped."""


__all__ += [
    "CloseReason",
    "ConnectionRejected",
    "ConnectionTimeout",
    "DatagramTooLarge",
    "DisconnectionTimeout",
    "HandshakeError",
]
