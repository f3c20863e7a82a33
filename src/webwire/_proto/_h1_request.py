"""The states of an HTTP/1.1 client connection, and its request side
(RFC 9112 sections 3, 5, 6 and 7.1).

Used by :class:`webwire._proto.h1.H1Connection`. Each side has an explicit
state moved only through a transition table: our side (the request) is a
:class:`ClientState` moved by :data:`CLIENT_TRANSITIONS`, their side (the
response) a :class:`ServerState` moved by :data:`SERVER_TRANSITIONS`; any
pair missing from a table is illegal.

:class:`RequestWriter` holds the request of the current cycle: its state,
its body framing and its bytes. A request head is written in one pass and
checked as a whole afterwards, so well-formed requests pay almost nothing
for the validation. The rules themselves (tokens, values, targets) and the
cache of names and methods already checked live in
:mod:`webwire._proto._fields`, shared with the other HTTP versions.
"""

from __future__ import annotations

import enum
import re
from collections.abc import Mapping

from webwire._exceptions import LocalProtocolError

from ._fields import (
    _VALUE_CONTROLS,
    FIELD_CONNECTION,
    FIELD_CONTENT_LENGTH,
    FIELD_TRANSFER_ENCODING,
    FIELD_UPGRADE,
    _known_methods,
    _known_names,
    check_method,
    explain_invalid,
    field_kind,
    has_token,
    last_token,
)

__all__ = [
    "CLIENT_TRANSITIONS",
    "DIGITS",
    "SERVER_TRANSITIONS",
    "ClientEvent",
    "ClientState",
    "H1State",
    "RequestHead",
    "RequestWriter",
    "ServerEvent",
    "ServerState",
    "serialise_head",
]

Headers = list[tuple[bytes, bytes]]

# Controls a serialised head may not hold anywhere; CR and LF are counted
# instead (each must be a line end written here).
_HEAD_CONTROLS = _VALUE_CONTROLS.translate(None, b"\r\n")
DIGITS = re.compile(rb"[0-9]+").fullmatch
"""Whether a ``Content-Length`` value is 1*DIGIT (RFC 9110 section 8.6)."""

_CHUNKED_LINE = b"Transfer-Encoding: chunked\r\n"


class H1State(enum.Enum):
    """Where an :class:`~webwire._proto.h1.H1Connection` is in its
    request/response cycle: a summary of both sides' states.

    Attributes:
        IDLE: No request started in this cycle.
        SENDING: The request body is not finished (a response may arrive).
        RECEIVING: The request is complete; the response is not.
        DONE: Request and response are complete (see ``keep_alive``).
        SWITCHED: A 101 response or a 2xx to CONNECT left HTTP/1.1; see
            :attr:`H1Connection.trailing_data`.
        CLOSED: The server closed the connection (end of stream).
        ERROR: A protocol error happened; the connection cannot be used.
    """

    IDLE = "IDLE"
    SENDING = "SENDING"
    RECEIVING = "RECEIVING"
    DONE = "DONE"
    SWITCHED = "SWITCHED"
    CLOSED = "CLOSED"
    ERROR = "ERROR"


class ClientState(enum.IntEnum):
    """Our side of the connection: the request of the current cycle.

    Attributes:
        IDLE: No request sent in this cycle.
        SEND_BODY: The head is sent; the body is in progress.
        DONE: The request is complete.
    """

    IDLE = 0
    SEND_BODY = 1
    DONE = 2


class ClientEvent(enum.IntEnum):
    """What moves our side (the caller's calls).

    Attributes:
        REQUEST: A request head is sent.
        DATA: A piece of the body is sent.
        END_OF_MESSAGE: The request is ended.
        NEW_CYCLE: The connection is made ready for the next request.
    """

    REQUEST = 0
    DATA = 1
    END_OF_MESSAGE = 2
    NEW_CYCLE = 3


CLIENT_TRANSITIONS: Mapping[tuple[ClientState, ClientEvent], ClientState] = {
    (ClientState.IDLE, ClientEvent.REQUEST): ClientState.SEND_BODY,
    (ClientState.SEND_BODY, ClientEvent.DATA): ClientState.SEND_BODY,
    (ClientState.SEND_BODY, ClientEvent.END_OF_MESSAGE): ClientState.DONE,
    (ClientState.DONE, ClientEvent.NEW_CYCLE): ClientState.IDLE,
}
"""Every legal move of our side; any other pair is refused."""

# Module-level names for the hot paths (enum attribute access is slow).
C_IDLE, C_SEND_BODY, C_DONE = ClientState.IDLE, ClientState.SEND_BODY, ClientState.DONE
CE_REQUEST, CE_DATA = ClientEvent.REQUEST, ClientEvent.DATA
CE_END, CE_NEW_CYCLE = ClientEvent.END_OF_MESSAGE, ClientEvent.NEW_CYCLE
CLIENT_GET = CLIENT_TRANSITIONS.get


class ServerState(enum.IntEnum):
    """Their side of the connection: the response of the current cycle.

    Attributes:
        IDLE: No request is out; bytes that arrive are kept for the next
            response.
        SEND_RESPONSE: The request is out; waiting for the final response
            head (1xx interim responses may come first).
        SEND_BODY: The final head arrived; the content is parsed by llhttp.
        SEND_RAW_BODY: The rest of a long ``Content-Length`` body, passed
            on as it arrives without the parser.
        DONE: The response is complete; the connection may be reused.
        MUST_CLOSE: The response is complete; the connection must not be
            reused (``Connection: close``, HTTP/1.0, bytes after the
            response).
        SWITCHED: A 101 to an ``Upgrade`` request or a 2xx to ``CONNECT``:
            the bytes that follow belong to another protocol.
        CLOSED: The server closed the connection (end of stream).
        ERROR: The server broke the protocol.
    """

    IDLE = 0
    SEND_RESPONSE = 1
    SEND_BODY = 2
    SEND_RAW_BODY = 3
    DONE = 4
    MUST_CLOSE = 5
    SWITCHED = 6
    CLOSED = 7
    ERROR = 8


class ServerEvent(enum.IntEnum):
    """What moves their side (``REQUEST`` and ``NEW_CYCLE`` come from our
    calls, the others from the server's bytes).

    Attributes:
        REQUEST: Our request went out.
        INTERIM: A 1xx response other than 101 (RFC 9110 section 15.2).
        SWITCH: A 101 to a request with ``Upgrade`` (RFC 9110 section 7.8)
            or a 2xx to ``CONNECT`` (RFC 9110 section 9.3.6).
        RESPONSE: A final response head (status 200 to 599).
        RAW_BODY: The rest of the content is counted without the parser.
        END_OF_MESSAGE: The response content is complete.
        NOT_REUSABLE: The connection cannot carry another request.
        EOF: The server closed the connection where that is allowed:
            between responses, or ending a close-delimited body (RFC 9112
            section 6.3).
        NEW_CYCLE: :meth:`H1Connection.start_next_cycle`.
        PROTOCOL_ERROR: A malformed, oversized or truncated response.
    """

    REQUEST = 0
    INTERIM = 1
    SWITCH = 2
    RESPONSE = 3
    RAW_BODY = 4
    END_OF_MESSAGE = 5
    NOT_REUSABLE = 6
    EOF = 7
    NEW_CYCLE = 8
    PROTOCOL_ERROR = 9


_S = ServerState
_SE = ServerEvent

SERVER_TRANSITIONS: Mapping[tuple[ServerState, ServerEvent], ServerState] = {
    (_S.IDLE, _SE.REQUEST): _S.SEND_RESPONSE,
    (_S.IDLE, _SE.EOF): _S.CLOSED,
    (_S.IDLE, _SE.PROTOCOL_ERROR): _S.ERROR,
    (_S.SEND_RESPONSE, _SE.INTERIM): _S.SEND_RESPONSE,
    (_S.SEND_RESPONSE, _SE.SWITCH): _S.SWITCHED,
    (_S.SEND_RESPONSE, _SE.RESPONSE): _S.SEND_BODY,
    (_S.SEND_RESPONSE, _SE.PROTOCOL_ERROR): _S.ERROR,
    (_S.SEND_BODY, _SE.RAW_BODY): _S.SEND_RAW_BODY,
    (_S.SEND_BODY, _SE.END_OF_MESSAGE): _S.DONE,
    (_S.SEND_BODY, _SE.EOF): _S.CLOSED,
    (_S.SEND_BODY, _SE.PROTOCOL_ERROR): _S.ERROR,
    (_S.SEND_RAW_BODY, _SE.END_OF_MESSAGE): _S.DONE,
    (_S.SEND_RAW_BODY, _SE.PROTOCOL_ERROR): _S.ERROR,
    (_S.DONE, _SE.NOT_REUSABLE): _S.MUST_CLOSE,
    (_S.DONE, _SE.EOF): _S.CLOSED,
    (_S.DONE, _SE.NEW_CYCLE): _S.IDLE,
    (_S.MUST_CLOSE, _SE.NOT_REUSABLE): _S.MUST_CLOSE,
    (_S.MUST_CLOSE, _SE.EOF): _S.CLOSED,
}
"""Every legal move of their side; any other pair is refused (with
LocalProtocolError for ``REQUEST`` and ``NEW_CYCLE``, RemoteProtocolError
and the ``ERROR`` state for the others)."""

LOCAL_SERVER_EVENTS = frozenset({_SE.REQUEST, _SE.NEW_CYCLE})
"""Server events caused by our calls: refusing them is a LocalProtocolError."""

# Module-level names of the states and events for the hot paths (enum
# attribute access is slow).
S_IDLE, S_SEND_RESPONSE, S_SEND_BODY = _S.IDLE, _S.SEND_RESPONSE, _S.SEND_BODY
S_SEND_RAW_BODY, S_DONE, S_MUST_CLOSE = _S.SEND_RAW_BODY, _S.DONE, _S.MUST_CLOSE
S_SWITCHED, S_CLOSED, S_ERROR = _S.SWITCHED, _S.CLOSED, _S.ERROR
SE_REQUEST, SE_INTERIM, SE_SWITCH = _SE.REQUEST, _SE.INTERIM, _SE.SWITCH
SE_RESPONSE, SE_RAW_BODY, SE_END = _SE.RESPONSE, _SE.RAW_BODY, _SE.END_OF_MESSAGE
SE_NOT_REUSABLE, SE_EOF, SE_NEW_CYCLE = _SE.NOT_REUSABLE, _SE.EOF, _SE.NEW_CYCLE
SE_ERROR = _SE.PROTOCOL_ERROR
SERVER_GET = SERVER_TRANSITIONS.get

# Request body framing.
_SEND_NONE, _SEND_LENGTH, _SEND_CHUNKED = 0, 1, 2


RequestHead = tuple[bytes, "bytes | None", "bytes | None", bool, bool]
"""A serialised head (request line and header section, CRLF-terminated),
its ``Content-Length`` and ``Transfer-Encoding`` values (or ``None``),
whether ``Connection`` lists ``close`` and whether an ``Upgrade`` field is
present."""


def serialise_head(
    method: bytes,
    target: bytes,
    headers: Headers,
    body_length: int | None = None,
    chunked: bool = False,
) -> RequestHead:
    """Serialise and validate a request line and header section.

    Fields are written in the given order, exactly as given. When they
    carry neither ``Content-Length`` nor ``Transfer-Encoding``, a framing
    field is added at the end: ``Transfer-Encoding: chunked`` with
    ``chunked``, else ``Content-Length: body_length`` when ``body_length``
    is given (RFC 9112 section 6).

    Args:
        method: The method token.
        target: The request target.
        headers: ``(name, value)`` pairs of bytes, in a list.
        body_length: Length of the body to come, in bytes, or ``None``.
        chunked: A body of unknown length follows.

    Returns:
        The head and its connection-relevant fields.

    Raises:
        LocalProtocolError: Invalid method, target, name or value (see
            :func:`webwire._proto._fields.validate_request`), or two
            different ``Content-Length`` values.
    """
    if method not in _known_methods:
        check_method(method)
    parts = [method, b" ", target, b" HTTP/1.1\r\n"]
    content_length: bytes | None = None
    transfer_encoding: bytes | None = None
    close = upgrade = False
    known = _known_names.get
    try:
        for name, value in headers:
            kind = known(name)
            if kind is None:
                kind = field_kind(name)
            if kind:
                if kind == FIELD_CONTENT_LENGTH:
                    if content_length is not None and value != content_length:
                        raise LocalProtocolError("conflicting Content-Length header fields")
                    content_length = value
                elif kind == FIELD_TRANSFER_ENCODING:
                    transfer_encoding = value
                elif kind == FIELD_CONNECTION:
                    close = close or has_token(value, b"close")
                elif kind == FIELD_UPGRADE:
                    upgrade = True
            parts += (name, b": ", value, b"\r\n")
        lines = len(headers) + 2
        if content_length is None and transfer_encoding is None:
            if chunked:
                parts.append(_CHUNKED_LINE)
                transfer_encoding = b"chunked"
                lines += 1
            elif body_length is not None:
                content_length = b"%d" % body_length
                parts += (b"Content-Length: ", content_length, b"\r\n")
                lines += 1
        parts.append(b"\r\n")
        data = b"".join(parts)
    except (TypeError, ValueError, AttributeError):
        explain_invalid(method, target, headers)
    # Every CR and LF must be a line end written here, and no other control
    # may appear (RFC 9110 section 5.5, RFC 9112 sections 3 and 5).
    if (
        data.count(10) != lines  # LF
        or data.count(13) != lines  # CR
        or len(data.translate(None, _HEAD_CONTROLS)) != len(data)
        or not target
        or 32 in target  # SP
        or 9 in target  # HTAB
    ):
        explain_invalid(method, target, headers)
    return data, content_length, transfer_encoding, close, upgrade


def _framing(content_length: bytes | None, transfer_encoding: bytes | None) -> tuple[int, int]:
    """The request body framing (RFC 9112 section 6) and the bytes a
    ``Content-Length`` allows.

    Raises:
        LocalProtocolError: Both fields, a coding that does not end in
            ``chunked``, or a ``Content-Length`` that is not 1*DIGIT.
    """
    if transfer_encoding is not None:
        if content_length is not None:
            raise LocalProtocolError(
                "a request cannot carry both Transfer-Encoding and Content-Length "
                "(RFC 9112 section 6.2)"
            )
        if last_token(transfer_encoding) != b"chunked":
            raise LocalProtocolError(
                f"Transfer-Encoding {transfer_encoding!r} must end in 'chunked' "
                "(RFC 9112 section 6.1)"
            )
        return _SEND_CHUNKED, 0
    if content_length is not None:
        if DIGITS(content_length) is None:
            raise LocalProtocolError(f"invalid Content-Length {content_length!r}")
        return _SEND_LENGTH, int(content_length)
    return _SEND_NONE, 0


class RequestWriter:
    """The request of the current cycle: its :class:`ClientState`, its body
    framing and the bytes waiting to be written.

    Every move goes through :data:`CLIENT_TRANSITIONS`: a call the table
    does not allow returns ``False`` and changes nothing (the connection
    then raises LocalProtocolError naming its own state).

    Attributes:
        state: Where the request is.
        outgoing: Serialised pieces waiting to be written, oldest first.
    """

    __slots__ = ("_framing", "_left", "outgoing", "state")

    def __init__(self) -> None:
        self.state = C_IDLE
        self._framing = _SEND_NONE
        self._left = 0
        self.outgoing: list[bytes] = []

    def head(
        self,
        method: bytes,
        target: bytes,
        headers: Headers,
        body_length: int | None,
        chunked: bool,
    ) -> tuple[bool, bool] | None:
        """Serialise the request head (see :func:`serialise_head`) and
        choose the body framing (``IDLE`` -> ``SEND_BODY``).

        Returns:
            Whether ``Connection`` lists ``close`` and whether an
            ``Upgrade`` field is present; ``None`` when not ``IDLE``.

        Raises:
            LocalProtocolError: An invalid request, or framing fields that
                contradict each other (RFC 9112 section 6).
        """
        new = CLIENT_GET((self.state, CE_REQUEST))
        if new is None:
            return None
        data, content_length, transfer_encoding, close, upgrade = serialise_head(
            method, target, headers, body_length, chunked
        )
        if content_length is None and transfer_encoding is None:
            self._framing = _SEND_NONE
        else:
            self._framing, self._left = _framing(content_length, transfer_encoding)
        self.outgoing.append(data)
        self.state = new
        return close, upgrade

    def data(self, data: bytes) -> bool:
        """Frame a piece of the body (one chunk when chunked, RFC 9112
        section 7.1; nothing for an empty piece).

        Returns:
            ``False`` when not ``SEND_BODY``.

        Raises:
            LocalProtocolError: No body framing, or more bytes than
                ``Content-Length``.
        """
        new = CLIENT_GET((self.state, CE_DATA))
        if new is None:
            return False
        if not data:
            return True
        framing = self._framing
        if framing == _SEND_CHUNKED:
            self.outgoing += (b"%x\r\n" % len(data), data, b"\r\n")
        elif framing == _SEND_LENGTH:
            if len(data) > self._left:
                raise LocalProtocolError(
                    f"request body exceeds its Content-Length by {len(data) - self._left} bytes"
                )
            self._left -= len(data)
            self.outgoing.append(data)
        else:
            raise LocalProtocolError(
                "the request has no Content-Length or Transfer-Encoding header, so it "
                "cannot carry a body"
            )
        self.state = new
        return True

    def end(self) -> bool:
        """End the body (the last chunk when chunked; ``SEND_BODY`` ->
        ``DONE``).

        Returns:
            ``False`` when not ``SEND_BODY``.

        Raises:
            LocalProtocolError: Fewer bytes were sent than
                ``Content-Length``.
        """
        new = CLIENT_GET((self.state, CE_END))
        if new is None:
            return False
        framing = self._framing
        if framing == _SEND_LENGTH and self._left:
            raise LocalProtocolError(
                f"request body is {self._left} bytes short of its Content-Length"
            )
        if framing == _SEND_CHUNKED:
            self.outgoing.append(b"0\r\n\r\n")
        self.state = new
        return True

    def next_cycle(self) -> bool:
        """Be ready for the next request (``DONE`` -> ``IDLE``).

        Returns:
            ``False`` when not ``DONE``.
        """
        new = CLIENT_GET((self.state, CE_NEW_CYCLE))
        if new is None:
            return False
        self._framing = _SEND_NONE
        self._left = 0
        self.state = new
        return True
