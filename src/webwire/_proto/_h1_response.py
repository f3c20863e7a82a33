"""The response heads of HTTP/1.1 (RFC 9112 section 2 to 5): the parser
callbacks of :class:`~webwire._proto.h1.H1Connection`, in its base class
:class:`_H1ResponseHeads`.

llhttp (through ``httptools``) calls them as it parses; they apply the
header limits, decide which event a head is (interim, switch, final: in
one place, ``_head_event``) and queue the events.
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING, NoReturn

from webwire._exceptions import RemoteProtocolError
from webwire._proto._fields import has_token
from webwire._proto._h1_request import (
    S_SEND_BODY,
    S_SEND_RESPONSE,
    SE_END,
    SE_INTERIM,
    SE_NOT_REUSABLE,
    SE_RESPONSE,
    SE_SWITCH,
    SERVER_GET,
    ServerEvent,
    ServerState,
)
from webwire._proto.events import Data, EndOfMessage, Event, InformationalResponse, ResponseHead

if TYPE_CHECKING:
    from httptools import HttpResponseParser

__all__: list[str] = []

Headers = list[tuple[bytes, bytes]]

# What the request asks of the response (bits of H1Connection._kind): a
# response to HEAD has no content; a 2xx to CONNECT and a 101 to Upgrade
# switch protocols. Any of them makes the parser see one head at a time.
_KIND_HEAD, _KIND_CONNECT, _KIND_UPGRADE = 1, 2, 4

# Status-line bytes around the reason phrase: "HTTP/1.1 200 " and CRLF.
_STATUS_LINE_OVERHEAD = 15
# Bytes around a field line besides name and value: ": " and CRLF.
_FIELD_LINE_OVERHEAD = 4
# Bytes a reason phrase may not hold (RFC 9112 section 4: HTAB, SP, VCHAR,
# obs-text only).
_BAD_REASON = re.compile(rb"[\x00-\x08\x0a-\x1f\x7f]").search


class _UnsolicitedData(Exception):
    """The server started another message after the response was complete."""


class _H1ResponseHeads:
    """The parser callbacks of :class:`~webwire._proto.h1.H1Connection`
    (its base class), and the checks of the heads and trailers they get."""

    if TYPE_CHECKING:
        # Set by H1Connection.
        _max_header_size: int
        _max_header_count: int
        _parser: HttpResponseParser
        _parser_ok: bool
        _events: list[Event]
        _callback_error: Exception | None
        _their: ServerState
        _kind: int
        _request_close: bool
        _head_fed: int
        _interim_seen: bool
        _close_after: bool
        _body_seen: int
        _final_headers: Headers
        _reason: bytes
        _headers: Headers

        def _server_step(self, event: ServerEvent) -> None: ...

    def _too_large(self) -> str:
        return f"response header section exceeds {self._max_header_size} bytes"

    # -------------------------------------------------------- parser callbacks

    def _callback_fail(self, exc: Exception | str) -> NoReturn:
        """Raise ``exc`` (a message means a RemoteProtocolError) out of a
        parser callback, to be re-raised once the parser returns."""
        if isinstance(exc, str):
            exc = RemoteProtocolError(exc)
        self._callback_error = exc
        raise exc

    def _on_message_begin(self) -> None:
        if self._their is not S_SEND_RESPONSE:
            self._callback_fail(_UnsolicitedData())

    def _on_status(self, reason: bytes) -> None:
        self._reason += reason

    def _on_header(self, name: bytes, value: bytes) -> None:
        if value[-1:] <= b" ":
            # llhttp drops the whitespace before a value but keeps what
            # follows it (RFC 9110 section 5.5: neither is part of it).
            value = value.rstrip(b" \t")
        self._headers.append((name, value))

    def _on_headers_complete(self) -> None:
        if self._their is not S_SEND_RESPONSE:  # pragma: no cover - llhttp ends trailers without it
            return
        parser = self._parser
        version = parser.get_http_version()
        if version == "1.1":
            http_version = "HTTP/1.1"
        elif version == "1.0":
            http_version = "HTTP/1.0"
        else:
            self._callback_fail(f"unsupported HTTP version {version!r}")
        headers = self._headers
        self._headers = []
        self._head_fed = 0
        self._check_head_size(headers)
        status = parser.get_status_code()
        reason = self._reason
        self._reason = b""
        if reason and _BAD_REASON(reason) is not None:
            self._callback_fail(f"invalid character in the reason phrase {reason!r}")
        if status >= 200 and not self._kind:
            their = SERVER_GET((S_SEND_RESPONSE, SE_RESPONSE))
            assert their is not None
            self._their = their
            self._final_headers = headers
            self._events.append(ResponseHead(0, status, reason, headers, http_version))
            self._close_after = self._request_close or not parser.should_keep_alive()
            return
        self._special_head(status, reason, headers, http_version)

    def _special_head(
        self, status: int, reason: bytes, headers: Headers, http_version: str
    ) -> None:
        """A 1xx head, or a final head to HEAD, CONNECT or an upgrade
        request: the cases where llhttp cannot know what follows."""
        event = self._head_event(status)
        if status < 200:
            self._interim_head(event, status, reason, headers)
            return
        self._server_step(event)
        self._final_headers = headers
        self._events.append(ResponseHead(0, status, reason, headers, http_version))
        if event is SE_SWITCH:
            # A tunnel: no content follows the 2xx to CONNECT (RFC 9110
            # section 9.3.6); the parser is not fed again.
            self._parser_ok = False
            self._events.append(EndOfMessage(0, []))
        elif self._kind & _KIND_HEAD:
            # No content follows (RFC 9110 section 9.3.2): llhttp cannot
            # know, so the message ends here and it is not fed again.
            self._parser_ok = False
            self._server_step(SE_END)
            self._events.append(EndOfMessage(0, []))
            if not self._reusable(headers, http_version):
                self._server_step(SE_NOT_REUSABLE)
        else:
            self._close_after = self._request_close or not self._parser.should_keep_alive()

    def _head_event(self, status: int) -> ServerEvent:
        """What a response head with ``status`` is for the current request.

        Returns:
            ``INTERIM`` for 1xx but 101 (RFC 9110 section 15.2), ``SWITCH``
            for 101 to a request with ``Upgrade`` (section 7.8) and for 2xx
            to ``CONNECT`` (section 9.3.6), else ``RESPONSE``.
        """
        if status < 200:
            if status != 101:
                return SE_INTERIM
            if not self._kind & _KIND_UPGRADE:
                self._callback_fail("101 Switching Protocols to a request without Upgrade")
            return SE_SWITCH
        if self._kind & _KIND_CONNECT and status < 300:
            return SE_SWITCH
        return SE_RESPONSE

    def _check_head_size(self, headers: Headers) -> None:
        """Apply the field-count limit, and the size limit where the bytes
        fed to the parser do not bound the head exactly (after a 1xx)."""
        if len(headers) > self._max_header_count:
            self._callback_fail(f"response header section exceeds {self._max_header_count} fields")
        if self._interim_seen:
            size = _STATUS_LINE_OVERHEAD + len(self._reason)
            for name, value in headers:
                size += len(name) + len(value) + _FIELD_LINE_OVERHEAD
            if size > self._max_header_size:
                self._callback_fail(self._too_large())

    def _interim_head(
        self, event: ServerEvent, status: int, reason: bytes, headers: Headers
    ) -> None:
        """A 1xx response head was parsed (RFC 9110 section 15.2)."""
        self._interim_seen = True
        if event is SE_SWITCH:
            self._parser_ok = False
            self._server_step(event)
            self._events.append(InformationalResponse(0, 101, reason, headers))
            return
        for name, value in headers:
            lname = name.lower()
            if lname == b"transfer-encoding" or (lname == b"content-length" and value != b"0"):
                self._callback_fail(f"interim response {status} must not have content")
        self._server_step(event)
        self._events.append(InformationalResponse(0, status, reason, headers))

    def _reusable(self, headers: Headers, http_version: str) -> bool:
        """Keep-alive rules of RFC 9112 section 9.3 from the fields alone,
        for responses whose framing llhttp cannot know (to HEAD)."""
        close = self._request_close
        keep = http_version == "HTTP/1.1"
        for name, value in headers:
            if len(name) == 10 and name.lower() == b"connection":
                close = close or has_token(value, b"close")
                keep = keep or has_token(value, b"keep-alive")
        return keep and not close

    def _on_body(self, body: bytes) -> None:
        self._body_seen += len(body)
        self._events.append(Data(0, body))

    def _on_message_complete(self) -> None:
        if self._their is S_SEND_BODY:
            trailers = self._headers
            if trailers:
                self._check_trailers(trailers)
            their = SERVER_GET((S_SEND_BODY, SE_END))
            assert their is not None
            self._their = their
            self._events.append(EndOfMessage(0, trailers))
            if self._close_after:
                self._server_step(SE_NOT_REUSABLE)

    def _check_trailers(self, trailers: Headers) -> None:
        """Apply the header limits to a trailer section (RFC 9112 section
        7.1.2)."""
        if len(trailers) > self._max_header_count:
            self._callback_fail(f"response trailer section exceeds {self._max_header_count} fields")
        size = 0
        for name, value in trailers:
            size += len(name) + len(value) + _FIELD_LINE_OVERHEAD
        if size > self._max_header_size:
            self._callback_fail(
                f"response trailer section exceeds {self._max_header_size} bytes"
            )
