"""Events shared by the HTTP/1.1, HTTP/2 and HTTP/3 state machines.

A ``_proto`` connection turns received bytes into these events, so the
``_transport`` layer above never branches on the HTTP version. Header names
and values are ``bytes`` as received (names lower-cased for HTTP/2 and
HTTP/3; HTTP/1.1 keeps the server's case). ``stream_id`` is 0 for HTTP/1.1.
"""

from __future__ import annotations

from dataclasses import dataclass, field

__all__ = [
    "ConnectionTerminated",
    "Data",
    "EndOfMessage",
    "Event",
    "InformationalResponse",
    "ResponseHead",
    "StreamReset",
]

Headers = list[tuple[bytes, bytes]]


class Event:
    """Base class of protocol events."""

    __slots__ = ()


@dataclass(slots=True)
class InformationalResponse(Event):
    """A 1xx interim response (RFC 9110 section 15.2); 101 included."""

    stream_id: int
    status_code: int
    reason_phrase: bytes
    headers: Headers


@dataclass(slots=True)
class ResponseHead(Event):
    """The final response's status line and header section (RFC 9110
    section 6).

    ``http_version`` is ``"HTTP/1.0"``, ``"HTTP/1.1"``, ``"HTTP/2"`` or
    ``"HTTP/3"``.
    """

    stream_id: int
    status_code: int
    reason_phrase: bytes
    headers: Headers
    http_version: str


@dataclass(slots=True)
class Data(Event):
    """A piece of the response body (content, after transfer decoding)."""

    stream_id: int
    data: bytes


@dataclass(slots=True)
class EndOfMessage(Event):
    """The response is complete; ``trailers`` holds any trailer fields."""

    stream_id: int
    trailers: Headers = field(default_factory=list)


@dataclass(slots=True)
class StreamReset(Event):
    """The peer reset one stream (HTTP/2 RST_STREAM, HTTP/3 RESET_STREAM)."""

    stream_id: int
    error_code: int


@dataclass(slots=True)
class ConnectionTerminated(Event):
    """The connection ended (HTTP/2 GOAWAY, QUIC close, or HTTP/1.1 EOF
    where no response was in progress). ``last_stream_id`` is the highest
    stream the peer may have processed, when known."""

    error_code: int = 0
    reason: str = ""
    last_stream_id: int | None = None
