"""WebTransport over HTTP/3 (draft-ietf-webtrans-http3) without I/O: the
codepoints, the capsules of a session's CONNECT stream, the error-code
mapping and the session states.

Two drafts are spoken:

* **draft-02** (what aioquic's ``H3Connection(enable_webtransport=True)``
  serves): ``SETTINGS_ENABLE_WEBTRANSPORT`` (0x2b603742), the upgrade token
  ``webtransport`` and the request field ``sec-webtransport-http3-draft02:
  1``; no session flow control.
* **the current draft** (draft-ietf-webtrans-http3-13 and later, what
  pywebtransport 0.21's server speaks): ``SETTINGS_WT_ENABLED``
  (0x2c7cf000), the upgrade token ``webtransport-h3``, and session-level
  flow control: ``SETTINGS_WT_INITIAL_MAX_DATA`` / ``..._MAX_STREAMS_UNI``
  / ``..._MAX_STREAMS_BIDI`` raised later by ``WT_MAX_DATA`` /
  ``WT_MAX_STREAMS`` capsules (section 5).

The client sends the SETTINGS of both, so one connection serves either kind
of server; which one the server speaks is read from its SETTINGS
(:func:`draft_of`). Datagrams are HTTP Datagrams (RFC 9297) whose payload
starts with the quarter stream id of the CONNECT stream (RFC 9297 section
2.1). Capsules (RFC 9297 section 3) travel in the CONNECT stream's DATA
frames: type and length as QUIC variable-length integers, then the payload.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass

from webwire._exceptions import RemoteProtocolError
from webwire._proto.events import Event

__all__ = [
    "APP_ERROR_FIRST",
    "APP_ERROR_LAST",
    "CAPSULE_CLOSE_SESSION",
    "CAPSULE_DRAIN_SESSION",
    "CAPSULE_WT_MAX_DATA",
    "CAPSULE_WT_MAX_STREAMS_BIDI",
    "CAPSULE_WT_MAX_STREAMS_UNI",
    "CLIENT_SETTINGS",
    "DRAFT02",
    "DRAFT_CURRENT",
    "MAX_CLOSE_REASON",
    "SETTINGS_ENABLE_WEBTRANSPORT",
    "SETTINGS_H3_DATAGRAM",
    "SETTINGS_WT_ENABLED",
    "SETTINGS_WT_INITIAL_MAX_DATA",
    "SETTINGS_WT_INITIAL_MAX_STREAMS_BIDI",
    "SETTINGS_WT_INITIAL_MAX_STREAMS_UNI",
    "SETTINGS_WT_MAX_SESSIONS",
    "STREAM_TYPE_BIDI_SIGNAL",
    "STREAM_TYPE_UNI",
    "WT_BUFFERED_STREAM_REJECTED",
    "WT_FLOW_CONTROL_ERROR",
    "WT_SESSION_GONE",
    "CapsuleParser",
    "Draft",
    "SessionState",
    "WebTransportDatagram",
    "WebTransportStopSending",
    "WebTransportStreamOpened",
    "WebTransportStreamReset",
    "client_settings",
    "decode_close",
    "draft_of",
    "encode_capsule",
    "encode_close",
    "encode_varint",
    "http_code_to_webtransport",
    "quarter_stream_id",
    "webtransport_code_to_http",
]

# -- codepoints -------------------------------------------------------------------

SETTINGS_H3_DATAGRAM = 0x33
"""RFC 9297 section 2.1.1: HTTP Datagrams are supported."""
SETTINGS_ENABLE_WEBTRANSPORT = 0x2B603742
"""draft-02 section 3.1: WebTransport is supported."""
SETTINGS_WT_MAX_SESSIONS = 0x14E9CD29
"""Current draft: sessions the endpoint accepts at once on a connection."""
SETTINGS_WT_ENABLED = 0x2C7CF000
"""Current draft: WebTransport is supported (a server of the current draft
closes a connection whose client omits it)."""
SETTINGS_WT_INITIAL_MAX_DATA = 0x2B61
"""Current draft section 5: session stream bytes the peer may send at first."""
SETTINGS_WT_INITIAL_MAX_STREAMS_UNI = 0x2B64
"""Current draft section 5: unidirectional streams the peer may open at first."""
SETTINGS_WT_INITIAL_MAX_STREAMS_BIDI = 0x2B65
"""Current draft section 5: bidirectional streams the peer may open at first."""

STREAM_TYPE_UNI = 0x54
"""Unidirectional stream type of a WebTransport stream (section 4.1)."""
STREAM_TYPE_BIDI_SIGNAL = 0x41
"""Signal value opening a bidirectional WebTransport stream (section 4.2)."""

CAPSULE_CLOSE_SESSION = 0x2843
"""CLOSE_WEBTRANSPORT_SESSION: 32-bit error code, then a UTF-8 reason."""
CAPSULE_DRAIN_SESSION = 0x78AE
"""DRAIN_WEBTRANSPORT_SESSION: the peer will close the session soon."""
CAPSULE_WT_MAX_DATA = 0x190B4D3D
"""WT_MAX_DATA (current draft section 5.6): new session data limit, bytes."""
CAPSULE_WT_MAX_STREAMS_BIDI = 0x190B4D3F
"""WT_MAX_STREAMS for bidirectional streams: cumulative stream limit."""
CAPSULE_WT_MAX_STREAMS_UNI = 0x190B4D40
"""WT_MAX_STREAMS for unidirectional streams: cumulative stream limit."""

WT_SESSION_GONE = 0x170D7B68
"""Stream error: the stream's session is gone (section 4.4)."""
WT_BUFFERED_STREAM_REJECTED = 0x3994BD84
"""Stream error: too many streams of unknown sessions were buffered."""
WT_FLOW_CONTROL_ERROR = 0x045D4487
"""Session error: the peer exceeded a session flow-control limit."""

APP_ERROR_FIRST = 0x52E4A40FA8DB
"""First HTTP/3 error code of the WebTransport application range (section 4.3)."""
APP_ERROR_LAST = 0x52E5AC983162
"""Last HTTP/3 error code of the WebTransport application range."""

MAX_CLOSE_REASON = 1024
"""Most bytes of a CLOSE_WEBTRANSPORT_SESSION reason (section 5)."""

MAX_CAPSULE_SIZE = 64 * 1024
"""Largest capsule payload accepted on the CONNECT stream, bytes."""

_BIG = 1 << 50

CLIENT_SETTINGS: dict[int, int] = {
    SETTINGS_WT_ENABLED: 1,
    SETTINGS_WT_INITIAL_MAX_DATA: _BIG,
    SETTINGS_WT_INITIAL_MAX_STREAMS_UNI: 1 << 16,
    SETTINGS_WT_INITIAL_MAX_STREAMS_BIDI: 1 << 16,
}
"""SETTINGS a WebTransport client sends besides qh3's own (which carry
``SETTINGS_ENABLE_WEBTRANSPORT`` and ``SETTINGS_H3_DATAGRAM``) when no
limits are given: the current draft's, with session receive limits large
enough never to need raising (QUIC flow control still bounds what the
server may send). Sessions opened by :func:`webwire.webtransport.open_session`
send :func:`client_settings` instead."""


def client_settings(max_data: int, max_streams_bidi: int, max_streams_uni: int) -> dict[int, int]:
    """The current draft's SETTINGS a client sends (section 5.5): the
    session receive window ``max_data`` (bytes, raised later by
    WT_MAX_DATA capsules as the application reads) and the streams the
    server may open at first (``max_streams_*``, raised by WT_MAX_STREAMS as
    they end).

    Raises:
        ValueError: A value is negative or not below 2**62.
    """
    for value in (max_data, max_streams_bidi, max_streams_uni):
        if not 0 <= value < 1 << 62:
            raise ValueError(f"a WebTransport limit must be 0 to 2**62-1, not {value}")
    return {
        SETTINGS_WT_ENABLED: 1,
        SETTINGS_WT_INITIAL_MAX_DATA: max_data,
        SETTINGS_WT_INITIAL_MAX_STREAMS_UNI: max_streams_uni,
        SETTINGS_WT_INITIAL_MAX_STREAMS_BIDI: max_streams_bidi,
    }


class Draft(enum.Enum):
    """The WebTransport draft a server speaks, and what a session request
    sends for it (upgrade token and extra header fields)."""

    DRAFT02 = ("webtransport", (("sec-webtransport-http3-draft02", "1"),), False)
    CURRENT = ("webtransport-h3", (), True)

    def __init__(
        self, protocol: str, fields: tuple[tuple[str, str], ...], flow_control: bool
    ) -> None:
        self.protocol = protocol
        """The ``:protocol`` pseudo-header of the extended CONNECT."""
        self.fields = fields
        """Header fields the session request adds."""
        self.flow_control = flow_control
        """Whether session-level flow control (section 5) applies."""


DRAFT02 = Draft.DRAFT02
DRAFT_CURRENT = Draft.CURRENT


def draft_of(settings: dict[int, int]) -> Draft | None:
    """The draft a server's SETTINGS (RFC 9114 section 7.2.4) announce:
    the current one when it sent ``SETTINGS_WT_ENABLED`` or
    ``SETTINGS_WT_MAX_SESSIONS``, draft-02 with
    ``SETTINGS_ENABLE_WEBTRANSPORT=1``, ``None`` when it supports neither."""
    if settings.get(SETTINGS_WT_ENABLED, 0) >= 1 or settings.get(SETTINGS_WT_MAX_SESSIONS, 0):
        return Draft.CURRENT
    if settings.get(SETTINGS_ENABLE_WEBTRANSPORT, 0) == 1:
        return Draft.DRAFT02
    return None


class SessionState(enum.Enum):
    """The life of a WebTransport session (draft-ietf-webtrans-http3
    sections 3 and 6).

    ``CONNECTING``: the extended CONNECT was sent, no answer yet.
    ``CONNECTED``: the server answered ``2xx``; streams and datagrams flow.
    ``DRAINING``: the server sent DRAIN_WEBTRANSPORT_SESSION: existing
    streams go on, the session will close soon.
    ``CLOSING``: a close was sent or received; nothing new may start.
    ``CLOSED``: the CONNECT stream is gone both ways.
    """

    CONNECTING = "connecting"
    CONNECTED = "connected"
    DRAINING = "draining"
    CLOSING = "closing"
    CLOSED = "closed"


_TRANSITIONS = {
    SessionState.CONNECTING: {SessionState.CONNECTED, SessionState.CLOSING, SessionState.CLOSED},
    SessionState.CONNECTED: {SessionState.DRAINING, SessionState.CLOSING, SessionState.CLOSED},
    SessionState.DRAINING: {SessionState.CLOSING, SessionState.CLOSED},
    SessionState.CLOSING: {SessionState.CLOSED},
    SessionState.CLOSED: set(),
}


def next_state(current: SessionState, wanted: SessionState) -> SessionState:
    """The state after asking for ``wanted`` in ``current``: ``wanted`` when
    the transition is allowed, else ``current`` (a late DRAIN after a
    close, a second close, ...)."""
    if wanted in _TRANSITIONS[current]:
        return wanted
    return current


# -- integers and capsules ---------------------------------------------------------


def encode_varint(value: int) -> bytes:
    """A QUIC variable-length integer (RFC 9000 section 16).

    Raises:
        ValueError: ``value`` is negative or above 2**62 - 1.
    """
    if value < 0:
        raise ValueError("a QUIC variable-length integer cannot be negative")
    if value < 0x40:
        return value.to_bytes(1, "big")
    if value < 0x4000:
        return (value | 0x4000).to_bytes(2, "big")
    if value < 0x40000000:
        return (value | 0x80000000).to_bytes(4, "big")
    if value < 0x4000000000000000:
        return (value | 0xC000000000000000).to_bytes(8, "big")
    raise ValueError(f"{value} does not fit a QUIC variable-length integer")


def _read_varint(data: bytes | bytearray, offset: int) -> tuple[int, int] | None:
    """``(value, next offset)``, or ``None`` when ``data`` ends first."""
    if offset >= len(data):
        return None
    first = data[offset]
    length = 1 << (first >> 6)
    if offset + length > len(data):
        return None
    value = first & 0x3F
    for index in range(offset + 1, offset + length):
        value = (value << 8) | data[index]
    return value, offset + length


def encode_capsule(capsule_type: int, payload: bytes = b"") -> bytes:
    """One capsule (RFC 9297 section 3.2): type, length, payload."""
    return encode_varint(capsule_type) + encode_varint(len(payload)) + payload


def encode_close(code: int = 0, reason: str = "") -> bytes:
    """A CLOSE_WEBTRANSPORT_SESSION capsule (section 5).

    Args:
        code: Application error code, 0 to 2**32 - 1.
        reason: Text of at most :data:`MAX_CLOSE_REASON` bytes in UTF-8.

    Raises:
        ValueError: ``code`` is out of range or ``reason`` too long.
    """
    if not 0 <= code <= 0xFFFFFFFF:
        raise ValueError(f"a WebTransport session error code is 0 to 2**32-1, not {code}")
    raw = reason.encode("utf-8")
    if len(raw) > MAX_CLOSE_REASON:
        raise ValueError(
            f"a WebTransport close reason is at most {MAX_CLOSE_REASON} bytes in UTF-8, "
            f"not {len(raw)}"
        )
    return encode_capsule(CAPSULE_CLOSE_SESSION, code.to_bytes(4, "big") + raw)


def decode_close(payload: bytes) -> tuple[int, str]:
    """``(code, reason)`` of a CLOSE_WEBTRANSPORT_SESSION payload.

    Raises:
        RemoteProtocolError: Shorter than the 4-byte code, a reason over
            :data:`MAX_CLOSE_REASON` bytes, or not UTF-8.
    """
    if len(payload) < 4:
        raise RemoteProtocolError("a CLOSE_WEBTRANSPORT_SESSION capsule shorter than 4 bytes")
    raw = payload[4:]
    if len(raw) > MAX_CLOSE_REASON:
        raise RemoteProtocolError(
            f"a CLOSE_WEBTRANSPORT_SESSION reason of {len(raw)} bytes "
            f"(at most {MAX_CLOSE_REASON})"
        )
    try:
        reason = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise RemoteProtocolError("a CLOSE_WEBTRANSPORT_SESSION reason that is not UTF-8") from exc
    return int.from_bytes(payload[:4], "big"), reason


def decode_varint_payload(payload: bytes) -> int:
    """The single variable-length integer of a WT_MAX_DATA or
    WT_MAX_STREAMS capsule.

    Raises:
        RemoteProtocolError: The payload is not exactly one integer.
    """
    parsed = _read_varint(payload, 0)
    if parsed is None or parsed[1] != len(payload):
        raise RemoteProtocolError("a malformed WebTransport flow-control capsule")
    return parsed[0]


class CapsuleParser:
    """Capsules (RFC 9297 section 3.2) out of a CONNECT stream's data,
    fed in pieces of any size.

    Args:
        max_size: Largest payload accepted, bytes.
    """

    __slots__ = ("_buffer", "_max_size")

    def __init__(self, max_size: int = MAX_CAPSULE_SIZE) -> None:
        self._buffer = bytearray()
        self._max_size = max_size

    def feed(self, data: bytes) -> list[tuple[int, bytes]]:
        """Add ``data``; return the capsules it completed, ``(type,
        payload)`` in order.

        Raises:
            RemoteProtocolError: A capsule is larger than ``max_size``.
        """
        buffer = self._buffer
        buffer += data
        capsules: list[tuple[int, bytes]] = []
        offset = 0
        while True:
            head = _read_varint(buffer, offset)
            if head is None:
                break
            length = _read_varint(buffer, head[1])
            if length is None:
                break
            size = length[0]
            if size > self._max_size:
                raise RemoteProtocolError(
                    f"a capsule of {size} bytes on the WebTransport CONNECT stream "
                    f"(at most {self._max_size})"
                )
            start = length[1]
            if start + size > len(buffer):
                break
            capsules.append((head[0], bytes(buffer[start : start + size])))
            offset = start + size
        if offset:
            del buffer[:offset]
        return capsules

    @property
    def pending(self) -> int:
        """Bytes of an incomplete capsule held."""
        return len(self._buffer)


# -- error codes --------------------------------------------------------------------


def webtransport_code_to_http(code: int) -> int:
    """The HTTP/3 error code carrying WebTransport application error
    ``code`` in RESET_STREAM / STOP_SENDING (section 4.3): ``first + code +
    code // 0x1e``, which skips the reserved ``0x1f * N + 0x21`` codes.

    Raises:
        ValueError: ``code`` is not 0 to 2**32 - 1.
    """
    if not 0 <= code <= 0xFFFFFFFF:
        raise ValueError(f"a WebTransport stream error code is 0 to 2**32-1, not {code}")
    return APP_ERROR_FIRST + code + code // 0x1E


def http_code_to_webtransport(h3_code: int) -> int | None:
    """The WebTransport application error code an HTTP/3 error code
    carries, or ``None`` when it is outside the application range or a
    reserved (greasing) code."""
    if not APP_ERROR_FIRST <= h3_code <= APP_ERROR_LAST or (h3_code - 0x21) % 0x1F == 0:
        return None
    shifted = h3_code - APP_ERROR_FIRST
    return shifted - shifted // 0x1F


def quarter_stream_id(session_id: int) -> int:
    """The quarter stream id prefixing a session's datagrams (RFC 9297
    section 2.1): the CONNECT stream id divided by four."""
    return session_id // 4


# -- protocol events ----------------------------------------------------------------
#
# These carry stream_id -1 so a connection's per-request dispatch passes them
# on to its WebTransport hook; the stream concerned is ``target``.


@dataclass(slots=True)
class WebTransportStreamOpened(Event):
    """The server opened a WebTransport stream of session ``session_id``
    (section 4.1 / 4.2); its data follows as ``Data`` / ``EndOfMessage``
    events of ``target``."""

    target: int
    session_id: int
    unidirectional: bool
    stream_id: int = -1


@dataclass(slots=True)
class WebTransportStreamReset(Event):
    """The server reset WebTransport stream ``target`` (RESET_STREAM) with
    the HTTP/3 error code ``error_code``."""

    target: int
    error_code: int
    stream_id: int = -1


@dataclass(slots=True)
class WebTransportStopSending(Event):
    """The server asked to stop sending on WebTransport stream ``target``
    (STOP_SENDING) with the HTTP/3 error code ``error_code``."""

    target: int
    error_code: int
    stream_id: int = -1


@dataclass(slots=True)
class WebTransportDatagram(Event):
    """An HTTP Datagram (RFC 9297) of session ``session_id``."""

    session_id: int
    data: bytes
    stream_id: int = -1
