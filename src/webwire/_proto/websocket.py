"""WebSocket (RFC 6455) and permessage-deflate (RFC 7692), sans I/O.

A thin layer over the Sans-I/O engine of the ``websockets`` library, which
does the framing, masking, control frames, the closing handshake and
compression; nothing here parses or builds a frame.

* :class:`Handshake` wraps ``websockets.client.ClientProtocol`` for the
  opening handshake: it builds the ``Sec-WebSocket-*`` request fields
  (key, version, subprotocols, the permessage-deflate offer) and checks the
  server's answer (``Sec-WebSocket-Accept`` on HTTP/1.1, the negotiated
  extension parameters and subprotocol on every version). The request
  itself is carried by webwire's connection pool, so TLS, proxies, Unix
  sockets and tracing apply to it like to any request.
* :class:`WebSocketProtocol` wraps ``websockets.protocol.Protocol`` (client
  side, already open, with the negotiated extensions) over any byte stream:
  bytes in with :meth:`~WebSocketProtocol.receive_data`, events out with
  :meth:`~WebSocketProtocol.events`, bytes to write from
  :meth:`~WebSocketProtocol.data_to_send`. It adds what the engine leaves
  to its callers: text fragments are decoded as they arrive (invalid UTF-8
  fails the connection with 1007 at once, RFC 6455 section 8.1), and the
  engine's errors become webwire exceptions.

Both are independent of what carries the bytes: an HTTP/1.1 connection
after ``101``, or an HTTP/2 (RFC 8441) or HTTP/3 (RFC 9220) stream.
"""

from __future__ import annotations

import codecs
import logging
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal

from websockets.client import ClientProtocol
from websockets.datastructures import Headers
from websockets.exceptions import InvalidHandshake as _WSInvalidHandshake
from websockets.exceptions import InvalidState, ProtocolError
from websockets.extensions.base import ClientExtensionFactory, Extension
from websockets.extensions.permessage_deflate import ClientPerMessageDeflateFactory
from websockets.frames import OK_CLOSE_CODES, Close, Frame, Opcode
from websockets.http11 import Response as _WSResponse
from websockets.protocol import CLIENT, Protocol
from websockets.protocol import State as _WSState
from websockets.typing import Subprotocol
from websockets.uri import WebSocketURI

from webwire._exceptions import (
    CloseFrame,
    ConnectionClosed,
    ConnectionClosedError,
    ConnectionClosedOK,
    InvalidHandshake,
    LocalProtocolError,
)

__all__ = [
    "DEFAULT_MAX_SIZE",
    "DEFLATE_SETTINGS",
    "CloseReceived",
    "Compression",
    "Fragment",
    "Handshake",
    "PingReceived",
    "PongReceived",
    "State",
    "WebSocketEvent",
    "WebSocketProtocol",
    "check_close",
    "deflate_settings",
]

DEFAULT_MAX_SIZE = 2**20
"""Default limit of one received message, in bytes (1 MiB)."""

Compression = Literal["deflate"] | Mapping[str, int] | None
"""``"deflate"``: permessage-deflate (RFC 7692) with :data:`DEFLATE_SETTINGS`;
a mapping: permessage-deflate with these zlib settings (``level``,
``memLevel``) instead; ``None``: no compression."""

DEFLATE_SETTINGS: Mapping[str, int] = {"level": 1, "memLevel": 5}
"""zlib settings of the messages webwire compresses (RFC 7692): level 1,
the fastest, compresses text about 10% less than zlib's default level 6 at
about three times the speed; memLevel 5 keeps the compressor's state at
about 140 KiB per connection. The server's choice does not matter: any
level decompresses alike."""



def deflate_settings(compression: Compression) -> dict[str, int] | None:
    """The zlib settings for ``compression`` (``None``: no compression).

    Raises:
        ValueError: ``compression`` is not ``"deflate"``, ``None`` or a
            mapping of ``level`` (-1 to 9) and ``memLevel`` (1 to 9) to int.
    """
    if compression is None:
        return None
    if isinstance(compression, str):
        if compression != "deflate":
            raise ValueError(
                f"compression must be 'deflate', a mapping of zlib settings or None, "
                f"not {compression!r}"
            )
        return dict(DEFLATE_SETTINGS)
    if not isinstance(compression, Mapping):
        raise ValueError(
            f"compression must be 'deflate', a mapping of zlib settings or None, "
            f"not {compression!r}"
        )
    settings = dict(DEFLATE_SETTINGS)
    for name, value in compression.items():
        bounds = _DEFLATE_BOUNDS.get(name)
        if bounds is None:
            raise ValueError(
                f"unknown zlib setting {name!r} for permessage-deflate: "
                "'level' and 'memLevel' may be set"
            )
        if not isinstance(value, int) or isinstance(value, bool):
            raise ValueError(f"zlib setting {name!r} must be an int, not {value!r}")
        if not bounds[0] <= value <= bounds[1]:
            raise ValueError(
                f"zlib setting {name!r} must be from {bounds[0]} to {bounds[1]}, not {value}"
            )
        settings[name] = value
    return settings


_DEFLATE_BOUNDS = {"level": (-1, 9), "memLevel": (1, 9)}

State = _WSState
"""Connection states (RFC 6455 section 4.1, 7.1.3, 7.1.4): ``CONNECTING``,
``OPEN``, ``CLOSING`` (a close frame was sent or received), ``CLOSED``."""

_UTF8 = codecs.getincrementaldecoder("utf-8")
_FRAME_PARSE = Frame.parse.__func__.__code__  # type: ignore[attr-defined]
_logger = logging.getLogger("webwire.websocket")


@dataclass(frozen=True, slots=True)
class Fragment:
    """A piece of a received data message (one frame, decompressed).

    Attributes:
        data: ``str`` for a text message (decoded, valid UTF-8 so far),
            ``bytes`` for a binary message.
        fin: Whether this is the message's last piece.
    """

    data: str | bytes
    fin: bool


@dataclass(frozen=True, slots=True)
class PingReceived:
    """A ping frame arrived (the pong answer is already queued to send)."""

    data: bytes


@dataclass(frozen=True, slots=True)
class PongReceived:
    """A pong frame arrived (RFC 6455 section 5.5.3)."""

    data: bytes


@dataclass(frozen=True, slots=True)
class CloseReceived:
    """A close frame arrived (RFC 6455 section 5.5.1); the answer, when
    webwire had not sent one yet, is already queued to send."""

    frame: CloseFrame


WebSocketEvent = Fragment | PingReceived | PongReceived | CloseReceived


def _close_frame(close: Close | None) -> CloseFrame | None:
    return None if close is None else CloseFrame(int(close.code), close.reason)


def _check_subprotocols(subprotocols: Sequence[str] | None) -> list[Subprotocol] | None:
    if subprotocols is None:
        return None
    if isinstance(subprotocols, str):
        raise TypeError("subprotocols must be a sequence of str, not a str")
    checked: list[Subprotocol] = []
    for item in subprotocols:
        if not isinstance(item, str) or not item or any(
            ch in item for ch in ' \t\r\n,;"()<>@:\\/[]?={}'
        ) or not item.isascii():
            raise ValueError(f"invalid subprotocol {item!r}: a token (RFC 6455 section 4.1)")
        checked.append(Subprotocol(item))
    return checked


def check_close(code: int, reason: str) -> None:
    """Check a close code and reason before sending them (RFC 6455 section
    7.4: 1000-1003, 1007-1014 and 3000-4999 may be sent; section 5.5: the
    reason is at most 123 UTF-8 bytes).

    Raises:
        LocalProtocolError: Either may not be sent.
    """
    if not isinstance(code, int) or isinstance(code, bool):
        raise LocalProtocolError(f"a close code is an int, not {code!r}")
    if len(reason.encode()) > 123:
        raise LocalProtocolError("a close reason is at most 123 UTF-8 bytes")
    try:
        Close(code, reason).check()
    except ProtocolError as exc:
        raise LocalProtocolError(f"invalid close code {code}: {exc}") from exc


class Handshake:
    """The client side of the opening handshake (RFC 6455 section 4.1, with
    RFC 7692 negotiation; RFC 8441 section 5 over HTTP/2).

    Args:
        secure: ``wss`` (``True``) or ``ws``.
        host: Server host name or IP literal.
        port: Server port.
        resource: The request target, ``"/path?query"``.
        origin: ``Origin`` field value, or ``None``.
        subprotocols: Subprotocols offered in ``Sec-WebSocket-Protocol``,
            most preferred first, or ``None``.
        compression: ``"deflate"`` to offer permessage-deflate (RFC 7692,
            client_max_window_bits offered; messages compressed with
            :data:`DEFLATE_SETTINGS`), a mapping of zlib settings
            (``{"level": 6}``) to offer it compressing with those, ``None``
            for no compression.
        max_size: Largest message accepted, in bytes (``None``: no limit).
        logger: Logger of the connection (``webwire.websocket`` by default).

    Raises:
        ValueError: ``compression`` is unknown or a subprotocol is not a
            token.
    """

    def __init__(
        self,
        *,
        secure: bool,
        host: str,
        port: int,
        resource: str = "/",
        origin: str | None = None,
        subprotocols: Sequence[str] | None = None,
        compression: Compression = "deflate",
        max_size: int | None = DEFAULT_MAX_SIZE,
        logger: logging.Logger | logging.LoggerAdapter[Any] | None = None,
    ) -> None:
        extensions: list[ClientExtensionFactory] | None = None
        settings = deflate_settings(compression)
        if settings is not None:
            extensions = [ClientPerMessageDeflateFactory(compress_settings=settings)]
        path, _, query = resource.partition("?")
        uri = WebSocketURI(secure, host, port, path or "/", query)
        self._max_size = max_size
        self._logger = logger or _logger
        self._client = ClientProtocol(
            uri,
            origin=None if origin is None else origin,  # type: ignore[arg-type]
            extensions=extensions,
            subprotocols=_check_subprotocols(subprotocols),
            max_size=max_size,
            logger=self._logger,
        )
        self.extensions: list[Extension] = []
        self.subprotocol: str | None = None

    @property
    def key(self) -> str:
        """The ``Sec-WebSocket-Key`` value (16 random bytes, base64)."""
        return self._client.key

    def request_headers(self) -> list[tuple[str, str]]:
        """The handshake's header fields, in order, without ``Host`` (the
        HTTP layer sets it): ``Upgrade``, ``Connection``,
        ``Sec-WebSocket-Key``, ``Sec-WebSocket-Version``, and when set
        ``Origin``, ``Sec-WebSocket-Extensions``, ``Sec-WebSocket-Protocol``.
        """
        request = self._client.connect()
        return [
            (name, value)
            for name, value in request.headers.raw_items()
            if name.lower() not in ("host", "authorization")
        ]

    def process_response(
        self,
        status_code: int,
        reason_phrase: str,
        headers: Iterable[tuple[str, str]],
        *,
        http_version: str = "HTTP/1.1",
    ) -> None:
        """Check the server's answer and keep what it negotiated
        (:attr:`extensions`, :attr:`subprotocol`).

        On HTTP/1.1 the answer must be ``101`` with ``Upgrade: websocket``,
        ``Connection: Upgrade`` and the right ``Sec-WebSocket-Accept``
        (RFC 6455 section 4.2.2); on HTTP/2 and HTTP/3 a ``2xx`` (RFC 8441
        section 5, RFC 9220). The extensions must be ones offered, with
        acceptable parameters (RFC 7692 section 7.1), the subprotocol one
        offered.

        Raises:
            InvalidHandshake: The answer is not a valid acceptance (the
                message says which field is wrong; the engine's error is the
                ``__cause__``).
        """
        fields = Headers()
        for name, value in headers:
            fields[name] = value
        client = self._client
        try:
            if http_version in ("HTTP/1.1", "HTTP/1.0"):
                client.process_response(_WSResponse(status_code, reason_phrase, fields))
                self.extensions = list(client.extensions)
                self.subprotocol = client.subprotocol
            else:
                if not 200 <= status_code < 300:
                    raise InvalidHandshake(
                        f"the server answered the WebSocket handshake with {status_code}"
                    )
                self.extensions = client.process_extensions(fields)
                self.subprotocol = client.process_subprotocol(fields)
        except _WSInvalidHandshake as exc:
            raise InvalidHandshake(f"invalid WebSocket handshake response: {exc}") from exc

    def open(self) -> WebSocketProtocol:
        """The open connection's state machine, with the negotiated
        extensions (call after :meth:`process_response`)."""
        return WebSocketProtocol(
            extensions=self.extensions, max_size=self._max_size, logger=self._logger
        )


class _ClientEngine(Protocol):
    """The ``websockets`` framing engine, client side, with one change:
    control frames may come between the fragments of a message (RFC 6455
    section 5.4), and a Close frame there starts the closing handshake
    normally, the incomplete message discarded (section 7.1.1), instead of
    failing the connection with 1002."""

    holding = False
    """Whether a failure found while parsing is held (see
    :meth:`WebSocketProtocol.hold_failures`)."""

    held: tuple[int, str] | None = None
    """The close code and reason of a held failure."""

    def recv_frame(self, frame: Frame) -> None:
        if frame.opcode is Opcode.CLOSE and self.current_size is not None:
            self.current_size = None
        super().recv_frame(frame)

    def fail(self, code: int, reason: str = "") -> None:
        if self.holding and self.state is _WSState.OPEN and code != 1006:
            # Stop parsing now (section 7.1.7), but keep the state OPEN and
            # the close frame unsent until the caller releases the failure.
            if self.held is None:
                self.held = (int(code), reason)
            self.parser = self.discard()
            next(self.parser)
            return
        self.held = None
        super().fail(code, reason)

    def release(self) -> None:
        """Fail the connection with the held failure, if any."""
        held, self.held = self.held, None
        if held is not None and self.state is _WSState.OPEN:
            super().fail(*held)


class WebSocketProtocol:
    """An open WebSocket connection, client side (RFC 6455 sections 5-7,
    RFC 7692): bytes in, events and bytes out.

    Pings are answered and close frames echoed inside (their bytes show up
    in :meth:`data_to_send`). A received message over ``max_size`` bytes
    fails the connection with 1009, invalid UTF-8 in a text message with
    1007, a protocol violation with 1002 (the close frame is queued to send).

    Args:
        extensions: Extensions negotiated by the handshake (permessage-deflate).
        max_size: Largest message accepted, in bytes (``None``: no limit).
        logger: Logger of the engine.
    """

    def __init__(
        self,
        *,
        extensions: Sequence[Extension] = (),
        max_size: int | None = DEFAULT_MAX_SIZE,
        logger: logging.Logger | logging.LoggerAdapter[Any] | None = None,
    ) -> None:
        protocol = _ClientEngine(CLIENT, max_size=max_size, logger=logger or _logger)
        protocol.extensions = list(extensions)
        self._protocol = protocol
        self._decoder: Any = None
        self._failed = False
        self._partial_parser: Any = None  # the engine's parser of a partial frame
        self._partial_probe: Any = None  # a UTF-8 decoder checking its payload
        self._partial_checked = 0  # payload bytes checked so far

    # -- state -------------------------------------------------------------

    @property
    def state(self) -> State:
        """``OPEN``, ``CLOSING`` or ``CLOSED``."""
        return self._protocol.state

    @property
    def extensions(self) -> list[Extension]:
        """The negotiated extensions."""
        return self._protocol.extensions

    @property
    def close_rcvd(self) -> CloseFrame | None:
        """The close frame received, or ``None``."""
        return _close_frame(self._protocol.close_rcvd)

    @property
    def close_sent(self) -> CloseFrame | None:
        """The close frame sent, or ``None``."""
        return _close_frame(self._protocol.close_sent)

    @property
    def close_rcvd_then_sent(self) -> bool | None:
        """Whether the server started the closing handshake (``None``: it
        did not complete)."""
        return self._protocol.close_rcvd_then_sent

    def close_expected(self) -> bool:
        """Whether the transport should close soon (a close frame was sent:
        the server is to end the TCP connection, RFC 6455 section 7.1.1)."""
        return self._protocol.close_expected()

    def closed_error(self) -> ConnectionClosed:
        """The exception for using the connection once it is closed:
        :class:`~webwire.ConnectionClosedOK` after a normal closure (1000,
        1001 or 1005 both ways), else :class:`~webwire.ConnectionClosedError`
        (with the engine's parse error, if any, as ``__cause__``)."""
        protocol = self._protocol
        rcvd, sent = self.close_rcvd, self.close_sent
        ok = (
            rcvd is not None
            and sent is not None
            and rcvd.code in OK_CLOSE_CODES
            and sent.code in OK_CLOSE_CODES
        )
        if rcvd is None and sent is None:
            message = "the WebSocket connection dropped without a close frame (1006)"
        elif rcvd is None:
            message = f"sent close frame {sent}; no close frame received"
        elif sent is None:
            message = f"received close frame {rcvd}; no close frame sent"
        elif protocol.close_rcvd_then_sent:
            message = f"received close frame {rcvd}; then sent {sent}"
        else:
            message = f"sent close frame {sent}; then received {rcvd}"
        cls = ConnectionClosedOK if ok else ConnectionClosedError
        error = cls(
            message, rcvd=rcvd, sent=sent, rcvd_then_sent=protocol.close_rcvd_then_sent
        )
        error.__cause__ = protocol.parser_exc
        return error

    # -- receiving ---------------------------------------------------------

    def hold_failures(self) -> None:
        """From now on, when received data fails the connection (a protocol
        error: 1002, invalid UTF-8: 1007, a message over ``max_size``:
        1009), stop parsing at once but hold the close frame: the state
        stays ``OPEN`` (messages may still be sent, e.g. the answers to the
        messages received before the failure) until
        :meth:`release_failure` (or :meth:`fail`, :meth:`send_close`)
        queues it (RFC 6455 section 7.1.7 fails the connection; when its
        close frame goes out is the endpoint's choice)."""
        self._protocol.holding = True

    @property
    def failure_held(self) -> bool:
        """Whether a failure of the connection is held (see
        :meth:`hold_failures`)."""
        return self._protocol.held is not None

    def release_failure(self) -> None:
        """Fail the connection with the held failure (queue its close
        frame); nothing when no failure is held. Idempotent."""
        self._protocol.release()

    def receive_data(self, data: bytes) -> None:
        """Feed bytes read from the transport."""
        if self._protocol.reader.eof:
            return
        self._protocol.receive_data(data)

    def receive_eof(self) -> None:
        """The transport ended (the peer closed, or reading failed): the
        state becomes ``CLOSED``. Idempotent."""
        self._protocol.receive_eof()

    def events(self) -> list[WebSocketEvent]:
        """The events of the bytes fed so far, in order."""
        frames = self._protocol.events_received()
        events: list[WebSocketEvent] = []
        for frame in frames:
            if self._failed:
                break
            event = self._event(frame)  # type: ignore[arg-type]
            if event is not None:
                events.append(event)
        if not self._failed:
            frame_parser = getattr(self._protocol.parser, "gi_yieldfrom", None)
            if frame_parser is not None and getattr(frame_parser, "gi_code", None) is _FRAME_PARSE:
                self._check_partial_text(frame_parser)
        return events

    def _check_partial_text(self, frame_parser: Any) -> None:
        """Fail fast on invalid UTF-8 in the part of a text frame received so
        far (RFC 6455 section 8.1: "as soon as" the payload is known not to
        be UTF-8), without waiting for the rest of the frame.

        The engine parses a frame once it is complete; while it waits for the
        rest of one, its frame parser has read the header (opcode, RSV1,
        payload length) and its buffer holds the payload received so far.
        Both are read from the engine's state, nothing is parsed here; a
        compressed frame (RSV1) is checked once complete, as before.
        """
        if frame_parser is self._partial_parser and self._partial_probe is None:
            return  # a frame already found not to be text
        try:
            local = frame_parser.gi_frame.f_locals
            length = local.get("length")
            waiting = frame_parser.gi_yieldfrom
            if length is None or waiting is None or local.get("rsv1"):
                return
            if waiting.gi_frame.f_locals.get("n") != length:
                return  # still in the header
            opcode = local.get("opcode")
            buffer = self._protocol.reader.buffer
        except AttributeError:  # pragma: no cover - another engine layout
            return
        if frame_parser is not self._partial_parser:
            if opcode is Opcode.TEXT:
                probe = _UTF8()
            elif opcode is Opcode.CONT and self._decoder is not None:
                probe = _UTF8()
                probe.setstate(self._decoder.getstate())
            else:
                probe = None
            self._partial_parser = frame_parser
            self._partial_probe = probe
            self._partial_checked = 0
        probe = self._partial_probe
        if probe is None or len(buffer) <= self._partial_checked:
            return
        try:
            probe.decode(buffer[self._partial_checked :], False)
        except UnicodeDecodeError as exc:
            self._failed = True
            protocol = self._protocol
            protocol.fail(1007, f"invalid UTF-8: {exc.reason}")
            protocol.parser_exc = exc
            return
        self._partial_checked = len(buffer)

    def _event(self, frame: Frame) -> WebSocketEvent | None:
        opcode = frame.opcode
        if opcode is Opcode.TEXT:
            self._decoder = _UTF8()
            return self._text(frame)
        if opcode is Opcode.BINARY:
            self._decoder = None
            return Fragment(bytes(frame.data), frame.fin)
        if opcode is Opcode.CONT:
            if self._decoder is not None:
                return self._text(frame)
            return Fragment(bytes(frame.data), frame.fin)
        if opcode is Opcode.PING:
            return PingReceived(bytes(frame.data))
        if opcode is Opcode.PONG:
            return PongReceived(bytes(frame.data))
        if opcode is Opcode.CLOSE:
            rcvd = self.close_rcvd
            assert rcvd is not None
            return CloseReceived(rcvd)
        return None  # pragma: no cover - the engine validates opcodes

    def _text(self, frame: Frame) -> Fragment | None:
        try:
            text: str = self._decoder.decode(frame.data, frame.fin)
        except UnicodeDecodeError as exc:
            # Fail fast (RFC 6455 section 8.1): 1007, nothing more is read.
            self._failed = True
            protocol = self._protocol
            protocol.fail(1007, f"invalid UTF-8: {exc.reason} at position {exc.start}")
            protocol.parser_exc = exc
            return None
        if frame.fin:
            self._decoder = None
        return Fragment(text, frame.fin)

    # -- sending -----------------------------------------------------------

    def has_data_to_send(self) -> bool:
        """Whether :meth:`data_to_send` has something (a pong, a close
        frame)."""
        return bool(self._protocol.writes)

    def data_to_send(self) -> tuple[bytes, bool]:
        """The bytes to write, and whether to end the sending direction after
        them (a client half-closes only once the server closed, section
        7.1.1)."""
        writes = self._protocol.data_to_send()
        if not writes:
            return b"", False
        eof = writes[-1] == b""
        return b"".join(writes), eof

    def _check(self, action: str) -> None:
        state = self._protocol.state
        if state is not State.OPEN:
            raise LocalProtocolError(f"cannot {action}: the connection is {state.name.lower()}")

    def send_text(self, data: str | bytes, fin: bool = True) -> None:
        """Queue a text frame (``bytes`` must be UTF-8); ``fin=False`` starts
        a fragmented message.

        Raises:
            LocalProtocolError: The connection is not open, or a fragmented
                message is in progress.
        """
        self._send(Opcode.TEXT, data.encode() if isinstance(data, str) else data, fin)

    def send_binary(self, data: bytes, fin: bool = True) -> None:
        """Queue a binary frame; ``fin=False`` starts a fragmented message.

        Raises:
            LocalProtocolError: The connection is not open, or a fragmented
                message is in progress.
        """
        self._send(Opcode.BINARY, data, fin)

    def send_continuation(self, data: str | bytes, fin: bool) -> None:
        """Queue the next frame of a fragmented message.

        Raises:
            LocalProtocolError: The connection is not open, or no fragmented
                message is in progress.
        """
        self._send(Opcode.CONT, data.encode() if isinstance(data, str) else data, fin)

    def _send(self, opcode: Opcode, data: bytes, fin: bool) -> None:
        self._check("send a message")
        protocol = self._protocol
        try:
            if opcode is Opcode.TEXT:
                protocol.send_text(data, fin)
            elif opcode is Opcode.BINARY:
                protocol.send_binary(data, fin)
            else:
                protocol.send_continuation(data, fin)
        except (ProtocolError, InvalidState) as exc:
            raise LocalProtocolError(str(exc)) from exc

    def send_ping(self, data: bytes) -> None:
        """Queue a ping frame (at most 125 bytes of payload, section 5.5).

        Raises:
            LocalProtocolError: The connection is closed or the payload too
                long.
        """
        self._control(data)
        try:
            self._protocol.send_ping(data)
        except InvalidState as exc:
            raise LocalProtocolError(f"cannot send a ping: {exc}") from exc

    def send_pong(self, data: bytes) -> None:
        """Queue an unsolicited pong frame (at most 125 bytes of payload).

        Raises:
            LocalProtocolError: The connection is closed or the payload too
                long.
        """
        self._control(data)
        try:
            self._protocol.send_pong(data)
        except InvalidState as exc:
            raise LocalProtocolError(f"cannot send a pong: {exc}") from exc

    @staticmethod
    def _control(data: bytes) -> None:
        if len(data) > 125:
            raise LocalProtocolError(
                f"a control frame carries at most 125 bytes (RFC 6455 section 5.5), "
                f"not {len(data)}"
            )

    def send_close(self, code: int = 1000, reason: str = "") -> None:
        """Start the closing handshake (section 7.1.2): queue a close frame.
        Does nothing once a close frame was sent or received.

        Raises:
            LocalProtocolError: ``code`` may not be sent (section 7.4: 1000,
                1001, 1002, 1003, 1007 to 1014, 3000 to 4999) or ``reason``
                is over 123 UTF-8 bytes.
        """
        check_close(code, reason)
        protocol = self._protocol
        if protocol.held is not None:
            protocol.release()
        if protocol.state is not State.OPEN:
            return
        protocol.send_close(code, reason)

    def fail(self, code: int, reason: str = "") -> None:
        """Fail the connection (section 7.1.7): queue a close frame with
        ``code`` when none was sent (or a held failure's when one is held),
        and ignore what arrives after."""
        self._failed = True
        protocol = self._protocol
        if protocol.held is not None:
            protocol.release()
            return
        holding, protocol.holding = protocol.holding, False
        try:
            protocol.fail(code, reason)
        finally:
            protocol.holding = holding
