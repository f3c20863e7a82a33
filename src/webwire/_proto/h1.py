"""The client side of HTTP/1.1 as a sans-I/O state machine (RFC 9112).

:class:`H1Connection` serialises requests into bytes and turns the bytes a
server sends back into the protocol events of :mod:`webwire._proto.events`.
It does no I/O and keeps no clock: the caller moves bytes between it and a
socket. Response parsing is done by llhttp (through ``httptools``); this
module adds request serialisation, body framing on the sending side, and
the connection life cycle (interim responses, responses without content,
keep-alive, protocol switches and end of stream).

Each side of the connection has an explicit state, changed only through a
transition table (as h11 does):

* our side (:class:`ClientState`, the request): ``IDLE`` -> ``SEND_BODY``
  -> ``DONE`` -> ``IDLE`` (:data:`CLIENT_TRANSITIONS`);
* their side (:class:`ServerState`, the response): ``IDLE`` ->
  ``SEND_RESPONSE`` (1xx may come) -> ``SEND_BODY`` (or
  ``SEND_RAW_BODY``) -> ``DONE`` or ``MUST_CLOSE``, or ``SWITCHED`` after a
  101 or a 2xx to CONNECT, ``CLOSED`` at end of stream, ``ERROR``
  (:data:`SERVER_TRANSITIONS`).

Both tables are declared in :mod:`webwire._proto._h1_request` and
re-exported here. The parser callbacks and the checks of response heads
are in :mod:`webwire._proto._h1_response` (the base class of
:class:`H1Connection`); which event a response head is (interim, switch,
final) is decided in one place there, ``_head_event``.

A call that the table does not allow raises :class:`LocalProtocolError`
and changes nothing; bytes from the server that it does not allow raise
:class:`RemoteProtocolError` and put their side in ``ERROR``.

One connection carries one request at a time (no pipelining): send it,
feed what the socket returns (``b""`` at end of stream) until the events
end with ``EndOfMessage``, then ``start_next_cycle()`` if ``keep_alive``.
"""

from __future__ import annotations

import re
from types import SimpleNamespace
from typing import NoReturn

from httptools import HttpParserError, HttpParserUpgrade, HttpResponseParser

from webwire._exceptions import LocalProtocolError, RemoteProtocolError
from webwire._proto._fields import framing_fields, last_token
from webwire._proto._h1_request import (
    C_DONE,
    C_IDLE,
    C_SEND_BODY,
    CLIENT_TRANSITIONS,
    DIGITS,
    LOCAL_SERVER_EVENTS,
    S_CLOSED,
    S_DONE,
    S_ERROR,
    S_IDLE,
    S_MUST_CLOSE,
    S_SEND_BODY,
    S_SEND_RAW_BODY,
    S_SEND_RESPONSE,
    S_SWITCHED,
    SE_END,
    SE_EOF,
    SE_ERROR,
    SE_NEW_CYCLE,
    SE_NOT_REUSABLE,
    SE_RAW_BODY,
    SE_REQUEST,
    SERVER_GET,
    SERVER_TRANSITIONS,
    ClientEvent,
    ClientState,
    H1State,
    RequestWriter,
    ServerEvent,
    ServerState,
)
from webwire._proto._h1_response import (
    _KIND_CONNECT,
    _KIND_HEAD,
    _KIND_UPGRADE,
    _H1ResponseHeads,
    _UnsolicitedData,
)
from webwire._proto.events import (
    ConnectionTerminated,
    Data,
    EndOfMessage,
    Event,
)

__all__ = [
    "CLIENT_TRANSITIONS",
    "SERVER_TRANSITIONS",
    "ClientEvent",
    "ClientState",
    "H1Connection",
    "H1State",
    "ServerEvent",
    "ServerState",
]

Headers = list[tuple[bytes, bytes]]


# Content-Length bodies with at least this many bytes still to come after
# the first read bypass the parser.
_BYPASS_MIN = 64 * 1024

# A header section may take this many bytes besides its lines (the empty
# line that ends it).
_HEAD_END = 2
# An obs-fold: a line end followed by spaces or tabs (RFC 9112 section 5.2).
_FOLD = re.compile(rb"\r\n[ \t]+")


class H1Connection(_H1ResponseHeads):
    """Client side of one HTTP/1.1 connection, without I/O (RFC 9112).

    Requests go in through :meth:`send_request`, :meth:`send_data` and
    :meth:`end_request`, and out through :meth:`data_to_send`. Server bytes
    go in through :meth:`receive_data`; :meth:`events` then gives any
    ``InformationalResponse`` (1xx, RFC 9110 section 15.2), one
    ``ResponseHead``, ``Data`` (transfer coding removed) and one
    ``EndOfMessage`` (with the trailers of a chunked body). A 101 (Switching
    Protocols) response ends the exchange with an ``InformationalResponse``
    instead, and the connection is :attr:`H1State.SWITCHED`.

    Response framing follows RFC 9112 section 6.3: responses to HEAD and
    1xx, 204 and 304 responses have no content whatever their header
    fields say; otherwise ``Transfer-Encoding: chunked``, then
    ``Content-Length``, then the end of the connection delimits the content.

    Args:
        max_header_size: Largest response header section accepted, in
            bytes as received: status line and field lines (the empty line
            that ends the section is not counted).
        max_header_count: Most field lines accepted in one response header
            section (and in one trailer section).

    Attributes:
        received_any: Whether any byte of the current cycle's response has
            arrived. When :meth:`receive_data` raises because the server
            closed the connection while it is still ``False``, the server
            closed an idle (or reused) connection without answering, rather
            than breaking off in the middle of a response.

    Raises:
        ValueError: A limit is not positive.
    """

    def __init__(self, *, max_header_size: int = 65536, max_header_count: int = 128) -> None:
        if max_header_size < 1 or max_header_count < 1:
            raise ValueError("max_header_size and max_header_count must be positive")
        self._max_header_size = max_header_size
        self._max_header_count = max_header_count
        self._callbacks = SimpleNamespace(
            on_message_begin=self._on_message_begin,
            on_status=self._on_status,
            on_header=self._on_header,
            on_headers_complete=self._on_headers_complete,
            on_body=self._on_body,
            on_message_complete=self._on_message_complete,
        )
        self._parser = HttpResponseParser(self._callbacks)
        self._parser_ok = True
        self._writer = RequestWriter()
        self._outgoing = self._writer.outgoing
        self._events: list[Event] = []
        self._pending = bytearray()
        self._carry = b""
        self._trailing = bytearray()
        self._head_buf = bytearray()
        self._callback_error: Exception | None = None
        self._their = S_IDLE
        self.received_any = False
        self._reset_cycle()

    def _reset_cycle(self) -> None:
        """Clear what the previous request and response left (data, not
        state: the states move through the transition tables)."""
        # The request: what it asks of the response.
        self._kind = 0
        self._request_close = False
        # The response: head bytes fed to the parser and scanned, whether a
        # 1xx came first, and whether it ends the connection.
        self._head_fed = self._scan_from = 0
        self._interim_seen = False
        self._close_after = False
        # Long Content-Length bodies bypass the parser once their head is
        # parsed: the bytes are passed on as they are, without a copy.
        self._bypass_checked = False
        self._body_seen = self._body_left = 0
        # Bytes of a body that were not content (chunk-size lines with their
        # extensions, the trailer section) since content last arrived.
        self._overhead = 0
        self._final_headers: Headers = []
        self._reason = b""
        self._headers: Headers = []

    # ----------------------------------------------------------------- state

    @property
    def our_state(self) -> ClientState:
        """Our side: the request of the current cycle."""
        return self._writer.state

    @property
    def their_state(self) -> ServerState:
        """Their side: the response of the current cycle."""
        return self._their

    @property
    def state(self) -> H1State:
        """The connection's place in the request/response cycle."""
        their = self._their
        if their is S_ERROR:
            return H1State.ERROR
        if their is S_SWITCHED:
            return H1State.SWITCHED
        if their is S_CLOSED:
            return H1State.CLOSED
        our = self._writer.state
        if our is C_IDLE:
            return H1State.IDLE
        if our is C_SEND_BODY:
            return H1State.SENDING
        if their is S_DONE or their is S_MUST_CLOSE:
            return H1State.DONE
        return H1State.RECEIVING

    @property
    def keep_alive(self) -> bool:
        """Whether the connection can carry another request.

        ``True`` once request and response are complete, neither said
        ``Connection: close`` (an HTTP/1.0 response needs ``Connection:
        keep-alive``; RFC 9112 section 9.3), the response did not end with
        the connection, and nothing unexpected followed it.
        """
        return self._writer.state is C_DONE and self._their is S_DONE

    @property
    def trailing_data(self) -> bytes:
        """Bytes that followed the response head of a protocol switch.

        In state :attr:`H1State.SWITCHED` (101 or a 2xx to CONNECT): what
        the server sent after the head, and whatever :meth:`receive_data`
        got since. Empty otherwise.
        """
        return bytes(self._trailing)

    def next_deadline(self) -> float | None:
        """HTTP/1.1 keeps no timers: always ``None``."""
        return None

    def handle_deadline(self, now: float) -> None:
        """Does nothing: HTTP/1.1 keeps no timers (``now`` is in seconds)."""

    def _refuse(self, action: str) -> NoReturn:
        """Raise the LocalProtocolError of a call that our side's table
        (or a failed server side) does not allow; ``action`` names it."""
        raise LocalProtocolError(f"cannot {action}: the connection is {self.state.value}")

    def _server_step(self, event: ServerEvent) -> None:
        """Move their side by ``event`` (:data:`SERVER_TRANSITIONS`).

        Raises:
            LocalProtocolError: A local event (``REQUEST``, ``NEW_CYCLE``)
                the table does not allow; nothing changes.
            RemoteProtocolError: A server event the table does not allow;
                their side is then ``ERROR``.
        """
        new = SERVER_GET((self._their, event))
        if new is None:
            self._illegal(event)
        self._their = new

    def _illegal(self, event: ServerEvent) -> NoReturn:
        """Refuse a server-side move that :data:`SERVER_TRANSITIONS` does
        not allow (see :meth:`_server_step`)."""
        message = f"{event.name} is not allowed when the server side is {self._their.name}"
        if event in LOCAL_SERVER_EVENTS:
            raise LocalProtocolError(message)
        error = RemoteProtocolError(f"unexpected response: {message}")
        self._callback_error = error
        self._fail(error)

    # --------------------------------------------------------------- sending

    def send_request(
        self,
        method: bytes,
        target: bytes,
        headers: list[tuple[bytes, bytes]],
        *,
        end_stream: bool = False,
        body_length: int | None = None,
        chunked: bool = False,
    ) -> None:
        """Serialise a request line and header section (RFC 9112 sections 3
        and 5).

        Fields are written in the given order, exactly as given; the caller
        supplies ``Host``. The body framing is read from the fields (RFC
        9112 section 6): chunked ``Transfer-Encoding`` makes
        :meth:`send_data` chunk-encode, ``Content-Length: N`` allows exactly
        N body bytes, neither allows none. When the fields carry neither,
        ``chunked`` adds ``Transfer-Encoding: chunked`` and ``body_length``
        adds ``Content-Length``. HEAD, CONNECT and ``Upgrade`` are
        remembered: they decide how the response is read.

        Args:
            method: The method token, e.g. ``b"GET"``.
            target: The request target, e.g. ``b"/path?q=1"``,
                ``b"https://host/"`` (through a proxy) or ``b"host:443"``
                (CONNECT).
            headers: ``(name, value)`` pairs of bytes.
            end_stream: Also end the request (no body follows).
            body_length: Length in bytes of the body to come, announced
                when the fields do not frame it.
            chunked: A body of unknown length follows: chunked coding is
                used when the fields do not frame it.

        Raises:
            LocalProtocolError: The connection is not idle, or the request is
                invalid: a method or field name that is not a token (RFC 9110
                section 5.6.2), whitespace or controls in the target, CR, LF,
                NUL or other controls in a value (RFC 9110 section 5.5), a bad
                ``Content-Length``, or a ``Transfer-Encoding`` that is not
                chunked or comes with ``Content-Length`` (RFC 9112 6.1).
        """
        their = SERVER_GET((self._their, SE_REQUEST))
        if their is None:
            self._refuse("send a request")
        written = self._writer.head(method, target, headers, body_length, chunked)
        if written is None:
            self._refuse("send a request")
        close, upgrade = written
        self._their = their
        self._request_close = close
        kind = _KIND_UPGRADE if upgrade else 0
        if method == b"HEAD":
            kind |= _KIND_HEAD
        elif method == b"CONNECT":
            kind |= _KIND_CONNECT
        self._kind = kind
        if end_stream:
            self._writer.end()
        if self._pending:
            data = bytes(self._pending)
            self._pending.clear()
            self.receive_data(data)

    def send_data(self, data: bytes) -> None:
        """Send a piece of the request body.

        With ``Transfer-Encoding: chunked`` the piece becomes one chunk
        (RFC 9112 section 7.1); an empty piece sends nothing.

        Args:
            data: Body bytes.

        Raises:
            LocalProtocolError: No request body is in progress, the request
                has no body framing, or the data exceeds ``Content-Length``.
        """
        if self._their is S_ERROR or not self._writer.data(data):
            self._refuse("send body data")

    def end_request(self) -> None:
        """End the request body (``0\\r\\n\\r\\n`` when chunked, RFC 9112
        section 7.1).

        Raises:
            LocalProtocolError: No request body is in progress, or fewer
                bytes were sent than the declared ``Content-Length``.
        """
        if self._their is S_ERROR or not self._writer.end():
            self._refuse("end the request")

    def data_to_send(self) -> bytes:
        """Take the bytes waiting to be written to the connection.

        Returns:
            Everything serialised since the last call, or ``b""``.
        """
        out = self._outgoing
        if not out:
            return b""
        data = out[0] if len(out) == 1 else b"".join(out)
        out.clear()
        return data

    # ------------------------------------------------------------- receiving

    def events(self) -> list[Event]:
        """Take the events produced since the last call.

        Returns:
            The events, oldest first (empty when nothing happened).
        """
        events = self._events
        if not events:
            return []
        self._events = []
        return events

    def receive_data(self, data: bytes) -> None:
        """Feed bytes read from the server; ``b""`` means it closed the
        connection (end of stream).

        Events become available through :meth:`events`. Bytes arriving
        before a request are kept for its response; bytes arriving after a
        complete response make the connection not reusable. Obs-folds in a
        head become spaces (RFC 9112 section 5.2). An end of stream with
        no response in progress gives ``ConnectionTerminated``; one that ends
        a close-delimited body gives its ``EndOfMessage``.

        Args:
            data: Bytes from the connection, or ``b""`` at end of stream.

        Raises:
            RemoteProtocolError: The response is malformed (with the parser's
                message; its exception is the ``__cause__``), its reason
                phrase holds a control character, its header section, its
                trailer section or the chunk-size lines (with extensions)
                between two chunks are over ``max_header_size`` bytes or
                ``max_header_count`` fields, or the server closed the
                connection before the response was complete (see
                :attr:`received_any`).
            LocalProtocolError: The connection already failed.
        """
        their = self._their
        if their is S_SEND_RAW_BODY:
            self._receive_raw(data)
        elif their is S_SEND_BODY or their is S_SEND_RESPONSE:
            if not data:
                self._receive_eof()
            elif self._kind and their is S_SEND_RESPONSE:
                self.received_any = True
                self._receive_split(data)
            else:
                self.received_any = True
                self._feed(data)
        elif their is S_IDLE:
            if data:
                self._keep_between(data)
            else:
                self._terminated()
        elif their is S_DONE:
            if data:
                # Nothing was asked: bytes after a complete response
                # cannot be trusted to start the next one.
                self._server_step(SE_NOT_REUSABLE)
            else:
                self._terminated()
        elif their is S_MUST_CLOSE:
            if not data:
                self._terminated()
        elif their is S_SWITCHED:
            self._trailing += data
        elif their is S_ERROR:
            raise LocalProtocolError("the connection failed earlier and cannot be used")

    def _terminated(self) -> None:
        """End of stream with no response in progress."""
        self._pending.clear()
        self._server_step(SE_EOF)
        self._events.append(ConnectionTerminated(0, "server closed the connection"))

    def _keep_between(self, data: bytes) -> None:
        """Keep bytes that arrived outside a response for the next cycle."""
        pending = self._pending
        pending += data
        if len(pending) > self._max_header_size + _HEAD_END:
            pending.clear()
            self._fail(f"server sent more than {self._max_header_size} bytes before a request")

    def _receive_eof(self) -> None:
        """Handle the end of stream while a response is expected."""
        if self._their is S_SEND_RESPONSE:
            if not self.received_any:
                self._fail("server disconnected without sending a response")
            self._fail("server disconnected before the end of the response header section")
        content_length, transfer_encoding = framing_fields(self._final_headers)
        if transfer_encoding is not None and last_token(transfer_encoding) == b"chunked":
            self._fail("server disconnected in the middle of a chunked response body")
        if transfer_encoding is None and content_length is not None:
            self._fail(
                "server disconnected in the middle of the response body "
                f"(Content-Length: {content_length.decode('latin-1')})"
            )
        # Close-delimited content (RFC 9112 section 6.3, rules 7 and 8).
        self._server_step(SE_EOF)
        self._events.append(EndOfMessage(0, []))

    def _fail(self, exc: Exception | str, cause: BaseException | None = None) -> NoReturn:
        """Put their side in ``ERROR`` and raise ``exc`` (a message means a
        RemoteProtocolError)."""
        if isinstance(exc, str):
            exc = RemoteProtocolError(exc)
        self._their = SERVER_GET((self._their, SE_ERROR), S_ERROR)
        raise exc from cause

    def _receive_split(self, data: bytes) -> None:
        """Feed the parser one response head at a time.

        Used when what follows a head is unknown to llhttp: the response to
        HEAD has no content whatever its fields say, and after a 101 or a
        2xx to CONNECT the bytes belong to another protocol. A head ends at
        the first empty line (llhttp refuses bare LF line ends).
        """
        buf = self._head_buf
        buf += data
        limit = self._max_header_size + _HEAD_END
        while self._their is S_SEND_RESPONSE:
            end = buf.find(b"\r\n\r\n", self._scan_from)
            if end < 0:
                if len(buf) >= limit:
                    self._fail(self._too_large())
                self._scan_from = max(0, len(buf) - 3)
                return
            end += 4
            if end > limit:
                self._fail(self._too_large())
            head = bytes(buf[:end])
            del buf[:end]
            self._scan_from = 0
            self._head_fed = 0
            self._feed(head)
        if not buf:
            return
        rest = bytes(buf)
        buf.clear()
        their = self._their
        if their is S_SWITCHED:
            self._trailing += rest
        elif their is S_DONE or their is S_MUST_CLOSE:
            if their is S_DONE:
                # Bytes after a response that has no content (to HEAD):
                # they cannot be trusted to start the next response.
                self._server_step(SE_NOT_REUSABLE)
        else:
            self._feed(rest)

    def _feed(self, data: bytes) -> None:
        """Run the parser over ``data``, bounding the bytes a head may take."""
        body: bytes | memoryview = data
        try:
            if self._their is S_SEND_RESPONSE:
                if (
                    not self._carry
                    and (end := data.find(b"\r\n\r\n")) >= 0
                    and data.find(b"\r\n ", 0, end) < 0
                    and data.find(b"\r\n\t", 0, end) < 0
                    and self._head_fed + len(data) <= self._max_header_size + _HEAD_END
                ):
                    # The usual case: a whole head without folds, fed with
                    # what follows it in one call.
                    self._head_fed += len(data)
                    self._parser.feed_data(data)
                    if self._their is S_SEND_BODY and not self._bypass_checked:
                        self._check_bypass()
                    return
                rest = self._feed_heads(data)
                if rest is None:
                    return
                body = rest
            seen = self._body_seen
            self._parser.feed_data(body)
            if self._their is S_SEND_BODY:
                if self._body_seen > seen:
                    self._overhead = 0
                elif body:
                    self._count_overhead(len(body))
                if not self._bypass_checked:
                    self._check_bypass()
        except HttpParserUpgrade:
            self._parser_ok = False
            if self._their is not S_SWITCHED:
                self._fail("unexpected protocol switch in the response")
        except HttpParserError as exc:
            self._parser_error(exc)

    def _feed_heads(self, data: bytes) -> memoryview | None:
        """Feed the parser the head bytes of ``data``, one head at a time
        (1xx heads may come first).

        Each obs-fold of a head (a line end followed by spaces or tabs, RFC
        9112 section 5.2), which llhttp would refuse, becomes one space.
        While a head is incomplete, a line end at the end of ``data`` is
        held back until the next bytes show whether a fold follows it.

        Returns:
            The bytes after the last head, to be fed as content, or ``None``.
        """
        carry = self._carry
        if carry:
            data = carry + data
            self._carry = b""
        size = len(data)
        pos = 0
        while True:
            end = data.find(b"\r\n\r\n", pos)
            if end < 0:
                if data.endswith(b"\r\n\r"):
                    hold = 3
                elif data.endswith(b"\r\n"):
                    hold = 2
                else:
                    hold = 1 if data.endswith(b"\r") else 0
                stop = max(pos, size - hold)
                self._carry = data[stop:]
                if stop > pos:
                    self._feed_head(data[pos:stop], stop - pos)
                return None
            end += 4
            self._feed_head(data[pos:end], end - 2 - pos)
            pos = end
            if self._their is not S_SEND_RESPONSE:
                break
        if pos < size:
            return memoryview(data)[pos:]
        if self._their is S_SEND_BODY and not self._bypass_checked:
            self._check_bypass()
        return None

    def _feed_head(self, head: bytes, lines_end: int) -> None:
        """Feed (part of) one head; obs-folds before ``lines_end`` become a
        space. A line starting with whitespace right after the status line
        is not a fold of a field line: the parser refuses it."""
        if head.find(b"\r\n ", 0, lines_end) >= 0 or head.find(b"\r\n\t", 0, lines_end) >= 0:
            start = head.find(b"\r\n", 0, lines_end) + 2 if self._head_fed == 0 else 0
            head = head[:start] + _FOLD.sub(b" ", head[start:lines_end]) + head[lines_end:]
        if self._head_fed + len(head) > self._max_header_size + _HEAD_END:
            self._feed_bounded(head)
            return
        self._head_fed += len(head)
        self._parser.feed_data(head)

    def _count_overhead(self, size: int) -> None:
        """Bound what a body carries besides content: chunk-size lines with
        their extensions (RFC 9112 section 7.1.1) and the trailer section
        (section 7.1.2) take at most ``max_header_size`` bytes between two
        pieces of content, like a head. ``size``: bytes of the last feed,
        which brought no content."""
        self._overhead += size
        if self._overhead > self._max_header_size:
            self._fail(
                "chunk extensions or trailer section of the response exceed "
                f"{self._max_header_size} bytes"
            )

    def _check_bypass(self) -> None:
        """After the first feed that leaves a body unfinished: bypass the
        parser for the rest of a long Content-Length body."""
        self._bypass_checked = True
        content_length, transfer_encoding = framing_fields(self._final_headers)
        if transfer_encoding is not None or content_length is None:
            return
        if DIGITS(content_length) is None:
            return
        left = int(content_length) - self._body_seen
        if left >= _BYPASS_MIN:
            self._body_left = left
            self._server_step(SE_RAW_BODY)

    def _receive_raw(self, data: bytes) -> None:
        """Content bytes of a Content-Length body, without the parser."""
        if not data:
            self._receive_eof()
            return
        left = self._body_left
        if len(data) < left:
            self._body_left = left - len(data)
            self._events.append(Data(0, data))
            return
        if left:
            self._events.append(Data(0, data[:left] if len(data) > left else data))
        self._body_left = 0
        self._parser_ok = False
        self._server_step(SE_END)
        self._events.append(EndOfMessage(0, []))
        if self._close_after or len(data) > left:
            # Bytes right after the response in the same read are not
            # trusted to start the next one (as when the parser sees them).
            self._server_step(SE_NOT_REUSABLE)

    def _feed_bounded(self, data: bytes) -> None:
        """Feed ``data`` in pieces so that no header section grows past
        ``max_header_size`` bytes inside the parser."""
        view = memoryview(data)
        pos = 0
        size = len(data)
        parser = self._parser
        limit = self._max_header_size + _HEAD_END
        while pos < size:
            if self._their is not S_SEND_RESPONSE:
                parser.feed_data(view[pos:])
                return
            room = limit - self._head_fed
            if room <= 0:
                self._fail(self._too_large())
            piece = view[pos : pos + room]
            self._head_fed += len(piece)
            pos += len(piece)
            parser.feed_data(piece)

    def _parser_error(self, exc: HttpParserError) -> None:
        """Turn a parser failure into the right outcome."""
        self._parser_ok = False
        error = self._callback_error
        self._callback_error = None
        their = self._their
        if isinstance(error, _UnsolicitedData) or (
            error is None and (their is S_DONE or their is S_MUST_CLOSE or their is S_SWITCHED)
        ):
            # The response is complete; whatever came after it cannot be
            # trusted to start the next one, so the connection is not reused.
            if their is S_DONE or their is S_MUST_CLOSE:
                self._server_step(SE_NOT_REUSABLE)
            return
        if error is not None:
            if their is S_ERROR:
                raise error from exc
            self._fail(error, exc)
        self._fail(f"malformed HTTP response: {exc}", exc)

    # -------------------------------------------------------------- recycling

    def start_next_cycle(self) -> None:
        """Make the connection ready for its next request.

        Bytes the server sent before the request are parsed as the start
        of its response; bytes sent after a complete response make the
        connection not reusable (they cannot be trusted to start the next
        response: a response to HEAD, 204 or 304 has no content).

        Raises:
            LocalProtocolError: The request or the response is not complete,
                or the connection cannot be reused (see :attr:`keep_alive`).
        """
        their = SERVER_GET((self._their, SE_NEW_CYCLE))
        if their is None or not self._writer.next_cycle():
            raise LocalProtocolError(
                f"cannot start a new request: the connection is {self.state.value} and not reusable"
            )
        self._their = their
        if not self._parser_ok:
            self._parser = HttpResponseParser(self._callbacks)
            self._parser_ok = True
        self.received_any = False
        self._reset_cycle()
