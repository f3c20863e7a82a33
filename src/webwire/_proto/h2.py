"""The client side of HTTP/2 as a sans-I/O state machine (RFC 9113), over ``h2``.

:class:`H2Connection` wraps :class:`h2.connection.H2Connection` and speaks
the protocol events of :mod:`webwire._proto.events`, so the transport above
handles HTTP/2 like HTTP/1.1: bytes in with :meth:`H2Connection.receive_data`,
events out with :meth:`H2Connection.events`, bytes to send with
:meth:`H2Connection.data_to_send`. It does no I/O and keeps no clock.

What this layer keeps for its callers:

* Flow control (RFC 9113 section 5.2): received DATA is credited back to the
  server only when the caller says it consumed it (:meth:`acknowledge`), so
  a response nobody reads stops the server instead of filling memory;
  padding is credited at once. Sending respects the server's windows:
  :meth:`send_data` takes what the windows allow and says how much.
* SETTINGS and PING are answered inside ``h2``; the server's
  ``SETTINGS_MAX_CONCURRENT_STREAMS`` and ``SETTINGS_ENABLE_CONNECT_PROTOCOL``
  (RFC 8441 section 3) are exposed as properties.
* GOAWAY (section 6.8): recorded with its last stream id; streams at or
  below it go on receiving, streams above it end with a
  :class:`~webwire._proto.events.StreamReset` carrying
  ``REFUSED_STREAM`` so the caller can retry them elsewhere.
* Connection-specific header fields (section 8.2.2) are dropped from
  requests, names lower-cased, ``Host`` turned into ``:authority``.
"""

from __future__ import annotations

from typing import Any

import h2.config
import h2.connection
import h2.errors
import h2.events
import h2.exceptions
import h2.settings

from webwire._exceptions import LocalProtocolError, RemoteProtocolError
from webwire._proto._fields import (
    check_extended_connect,
    multiplexed_request_fields,
    validate_request,
)
from webwire._proto.events import (
    ConnectionTerminated,
    Data,
    EndOfMessage,
    Event,
    InformationalResponse,
    ResponseHead,
    StreamReset,
)

__all__ = ["ErrorCodes", "H2Connection"]

Headers = list[tuple[bytes, bytes]]

ErrorCodes = h2.errors.ErrorCodes
"""HTTP/2 error codes (RFC 9113 section 7): ``NO_ERROR``, ``CANCEL``,
``REFUSED_STREAM``, ``PROTOCOL_ERROR``, ..."""

MAX_STREAM_ID = 2**31 - 1
"""The largest stream identifier (RFC 9113 section 5.1.1)."""

DEFAULT_WINDOW = 4 * 1024 * 1024
"""Bytes the server may send on one stream before the client consumed
them (``SETTINGS_INITIAL_WINDOW_SIZE`` we announce)."""

DEFAULT_CONNECTION_WINDOW = 16 * 1024 * 1024
"""Bytes the server may send on the whole connection before the client
consumed them."""

_ASSUMED_MAX_STREAMS = 100
"""Concurrent streams assumed before the server's SETTINGS arrive (RFC
9113 section 6.5.2 recommends servers allow at least 100)."""


_State = h2.connection.ConnectionState
_Input = h2.connection.ConnectionInputs


class _StateMachine(h2.connection.H2ConnectionStateMachine):
    """h2's connection state machine, except that a received GOAWAY leaves
    the connection open for receiving: the server may still complete the
    streams up to its last stream id (RFC 9113 section 6.8), and h2 alone
    would reject their frames. New streams after a GOAWAY are refused by
    :meth:`H2Connection.send_request`."""

    _transitions = {
        **h2.connection.H2ConnectionStateMachine._transitions,
        (_State.CLIENT_OPEN, _Input.RECV_GOAWAY): (None, _State.CLIENT_OPEN),
    }


def _short_repr(frame: object) -> str:
    return f"<{type(frame).__name__} stream_id={getattr(frame, 'stream_id', None)}>"


_QUIET_FRAMES: dict[type, type] = {}


class _Engine(h2.connection.H2Connection):
    """h2's connection, except that received frames get a short ``repr``:
    h2 formats every received frame for its trace log, which no-op loggers
    discard, and a DATA frame's full ``repr`` (a hex dump of its payload)
    costs about a third of the receive path. The frames are given a
    subclass of their own type whose ``__repr__`` is cheap; dispatch is
    unchanged."""

    def __init__(self, config: h2.config.H2Configuration) -> None:
        super().__init__(config=config)
        table = self._frame_dispatch_table
        for frame_type, handler in list(table.items()):
            quiet = _QUIET_FRAMES.get(frame_type)
            if quiet is None:
                quiet = type(frame_type.__name__, (frame_type,), {"__repr__": _short_repr})
                _QUIET_FRAMES[frame_type] = quiet
            table[quiet] = handler

    def _receive_frame(self, frame: Any) -> Any:
        quiet = _QUIET_FRAMES.get(type(frame))
        if quiet is not None:
            frame.__class__ = quiet
        return super()._receive_frame(frame)


class H2Connection:
    """Client side of one HTTP/2 connection, without I/O (RFC 9113).

    Args:
        max_header_list_size: Most bytes of a decoded header section
            (``SETTINGS_MAX_HEADER_LIST_SIZE``, section 6.5.2).
        initial_window_size: Per-stream receive window, bytes.
        connection_window_size: Connection receive window, bytes.
    """

    __slots__ = (
        "_conn",
        "_events",
        "_goaway",
        "_settings_received",
    )

    def __init__(
        self,
        *,
        max_header_list_size: int = 64 * 1024,
        initial_window_size: int = DEFAULT_WINDOW,
        connection_window_size: int = DEFAULT_CONNECTION_WINDOW,
    ) -> None:
        config = h2.config.H2Configuration(
            client_side=True,
            header_encoding=None,
            validate_outbound_headers=False,
            normalize_outbound_headers=False,
            validate_inbound_headers=True,
            normalize_inbound_headers=True,
        )
        conn = _Engine(config)
        conn.local_settings = h2.settings.Settings(
            client=True,
            initial_values={
                h2.settings.SettingCodes.ENABLE_PUSH: 0,
                h2.settings.SettingCodes.INITIAL_WINDOW_SIZE: initial_window_size,
                h2.settings.SettingCodes.MAX_HEADER_LIST_SIZE: max_header_list_size,
            },
        )
        machine = _StateMachine()
        machine.state = conn.state_machine.state
        conn.state_machine = machine
        conn.initiate_connection()
        extra = connection_window_size - 65535
        if extra > 0:
            conn.increment_flow_control_window(extra)
        self._conn = conn
        self._events: list[Event] = []
        self._goaway: ConnectionTerminated | None = None
        self._settings_received = False

    # -- state -----------------------------------------------------------

    @property
    def max_concurrent_streams(self) -> int:
        """Streams the server lets the client open at once
        (``SETTINGS_MAX_CONCURRENT_STREAMS``; 100 until its SETTINGS
        arrive)."""
        if not self._settings_received:
            return _ASSUMED_MAX_STREAMS
        value: int = self._conn.remote_settings.max_concurrent_streams
        return value

    @property
    def settings_received(self) -> bool:
        """Whether the server's first SETTINGS frame arrived (RFC 9113
        section 3.4); until then its settings are the protocol defaults."""
        return self._settings_received

    @property
    def connect_protocol_enabled(self) -> bool:
        """Whether the server sent ``SETTINGS_ENABLE_CONNECT_PROTOCOL`` = 1,
        allowing extended CONNECT (RFC 8441 section 3). ``False`` until its
        SETTINGS arrive (see :attr:`settings_received`)."""
        value = self._conn.remote_settings.get(
            h2.settings.SettingCodes.ENABLE_CONNECT_PROTOCOL, 0
        )
        return bool(value)

    @property
    def goaway(self) -> ConnectionTerminated | None:
        """The server's GOAWAY, ``None`` before one arrived."""
        return self._goaway

    @property
    def next_stream_id(self) -> int:
        """The stream id the next request would get."""
        highest: int | None = self._conn.highest_outbound_stream_id
        return highest + 2 if highest else 1

    def stream_ids_exhausted(self) -> bool:
        """Whether no client stream id is left (section 5.1.1)."""
        return self.next_stream_id > MAX_STREAM_ID

    def next_deadline(self) -> float | None:
        """No timers: always ``None``."""
        return None

    def handle_deadline(self, now: float) -> None:
        """No timers: does nothing."""

    # -- sending ---------------------------------------------------------

    def send_request(
        self,
        method: bytes,
        scheme: bytes,
        target: bytes,
        headers: Headers,
        *,
        end_stream: bool,
        protocol: bytes | None = None,
    ) -> int:
        """Open a stream with a request's header section (section 8.3.1).

        ``Host`` becomes ``:authority``; connection-specific fields
        (``Connection``, ``Keep-Alive``, ``Transfer-Encoding``,
        ``Upgrade``, ...) are dropped, ``TE`` kept only as ``trailers``.
        ``CONNECT`` sends ``:authority`` from ``target`` and no ``:path``
        unless ``protocol`` is given: an extended CONNECT (RFC 8441 section
        4), sent with ``:protocol``, ``:scheme``, ``:authority`` (from
        ``Host``) and ``:path`` (``target``), allowed only once the server
        enabled it with ``SETTINGS_ENABLE_CONNECT_PROTOCOL``.

        Returns:
            The new stream's id.

        Raises:
            LocalProtocolError: The method, target or a field is invalid
                (checked by :func:`webwire._proto._fields.validate_request`,
                as for HTTP/1.1), no stream id is left, the server's stream
                limit is reached, the connection is closed, or the request
                has no authority; ``protocol`` is given with a method other
                than ``CONNECT``, is not a token, or the server did not
                enable extended CONNECT (RFC 8441 section 3).
        """
        validate_request(method, target, headers)
        if protocol is not None:
            check_extended_connect(method, protocol, self.connect_protocol_enabled, "HTTP/2")
        fields = multiplexed_request_fields(method, scheme, target, headers, protocol, "HTTP/2")
        if self._goaway is not None:
            raise LocalProtocolError("the server sent GOAWAY: no new streams")
        try:
            stream_id: int = self._conn.get_next_available_stream_id()
            self._conn.send_headers(stream_id, fields, end_stream=end_stream)
        except h2.exceptions.NoAvailableStreamIDError as exc:
            raise LocalProtocolError("no HTTP/2 stream id left on this connection") from exc
        except h2.exceptions.TooManyStreamsError as exc:
            raise LocalProtocolError("the server's concurrent stream limit is reached") from exc
        except h2.exceptions.ProtocolError as exc:
            raise LocalProtocolError(f"cannot send the request: {exc}") from exc
        return stream_id

    def send_window(self, stream_id: int) -> int:
        """Bytes :meth:`send_data` may send on ``stream_id`` now: the
        smaller of the stream and connection windows (section 5.2), 0 when
        the stream is closed."""
        try:
            window: int = self._conn.local_flow_control_window(stream_id)
        except (h2.exceptions.StreamClosedError, h2.exceptions.ProtocolError):
            return 0
        return max(window, 0)

    def send_data(
        self, stream_id: int, data: bytes | memoryview, *, end_stream: bool = False
    ) -> int:
        """Send as much of ``data`` as the flow-control windows allow, in
        frames of at most the server's ``SETTINGS_MAX_FRAME_SIZE``.

        Returns:
            How many bytes of ``data`` were taken (``len(data)`` when all;
            ``end_stream`` is applied only then).

        Raises:
            LocalProtocolError: The stream is closed (reset by the server).
        """
        conn = self._conn
        size = len(data)
        taken = min(size, self.send_window(stream_id))
        frame = conn.max_outbound_frame_size
        view = memoryview(data)
        try:
            offset = 0
            while offset < taken:
                piece = min(frame, taken - offset)
                last = offset + piece == size
                conn.send_data(
                    stream_id, bytes(view[offset : offset + piece]), end_stream=end_stream and last
                )
                offset += piece
            if end_stream and size == 0:
                conn.end_stream(stream_id)
        except (h2.exceptions.StreamClosedError, h2.exceptions.ProtocolError) as exc:
            raise LocalProtocolError(f"stream {stream_id} is closed: {exc}") from exc
        return taken

    def end_stream(self, stream_id: int, trailers: Headers | None = None) -> None:
        """End the request on ``stream_id``, with trailer fields if given.

        Raises:
            LocalProtocolError: The stream is closed.
        """
        try:
            if trailers:
                fields = [(name.lower(), value) for name, value in trailers]
                self._conn.send_headers(stream_id, fields, end_stream=True)
            else:
                self._conn.end_stream(stream_id)
        except (h2.exceptions.StreamClosedError, h2.exceptions.ProtocolError) as exc:
            raise LocalProtocolError(f"stream {stream_id} is closed: {exc}") from exc

    def reset_stream(self, stream_id: int, error_code: int = ErrorCodes.CANCEL) -> None:
        """Reset ``stream_id`` (RST_STREAM, section 6.4) unless it is already
        closed both ways. Never raises."""
        try:
            self._conn.reset_stream(stream_id, error_code)
        except (h2.exceptions.StreamClosedError, h2.exceptions.ProtocolError):
            pass

    def stream_is_closed(self, stream_id: int) -> bool:
        """Whether both sides of ``stream_id`` are closed (or it never
        existed)."""
        stream = self._conn.streams.get(stream_id)
        return stream is None or bool(stream.closed)

    def acknowledge(self, stream_id: int, size: int) -> None:
        """Credit ``size`` consumed body bytes of ``stream_id`` back to the
        server (WINDOW_UPDATE when worthwhile). Never raises."""
        if size <= 0:
            return
        try:
            self._conn.acknowledge_received_data(size, stream_id)
        except (h2.exceptions.StreamClosedError, h2.exceptions.ProtocolError, ValueError):
            pass

    def close(self, error_code: int = ErrorCodes.NO_ERROR) -> None:
        """Send GOAWAY (section 6.8). Never raises."""
        try:
            self._conn.close_connection(error_code)
        except h2.exceptions.ProtocolError:
            pass

    def has_data_to_send(self) -> bool:
        """Whether :meth:`data_to_send` would return bytes."""
        return bool(self._conn._data_to_send)

    def data_to_send(self) -> bytes:
        """Bytes to write to the connection now (possibly empty)."""
        data: bytes = self._conn.data_to_send()
        return data

    # -- receiving -------------------------------------------------------

    def events(self) -> list[Event]:
        """Events produced by the data received so far (taken)."""
        events = self._events
        self._events = []
        return events

    def receive_data(self, data: bytes) -> None:
        """Feed bytes from the connection (``b""`` at end of stream).

        Raises:
            RemoteProtocolError: The server broke the protocol (the
                connection is then closed with GOAWAY ``PROTOCOL_ERROR``,
                whose bytes are in :meth:`data_to_send`), or closed the
                connection (``b""``) with streams in progress.
        """
        if not data:
            self._events.append(
                ConnectionTerminated(reason="the server closed the connection")
            )
            return
        try:
            h2_events = self._conn.receive_data(data)
        except h2.exceptions.ProtocolError as exc:
            self.close(ErrorCodes.PROTOCOL_ERROR)
            raise RemoteProtocolError(f"HTTP/2 protocol error from the server: {exc}") from exc
        for event in h2_events:
            self._translate(event)

    def _translate(self, event: h2.events.Event) -> None:
        out = self._events
        kind = type(event)
        if kind is h2.events.DataReceived:
            data_event: h2.events.DataReceived = event  # type: ignore[assignment]
            stream_id = data_event.stream_id or 0
            data = data_event.data or b""
            padding = (data_event.flow_controlled_length or 0) - len(data)
            if padding > 0:
                self.acknowledge(stream_id, padding)
            if data:
                out.append(Data(stream_id, data))
            if data_event.stream_ended is not None:
                self._end(stream_id, [])
        elif kind is h2.events.ResponseReceived:
            response: h2.events.ResponseReceived = event  # type: ignore[assignment]
            self._head(response.stream_id or 0, response.headers or [])
            if response.stream_ended is not None:
                self._end(response.stream_id or 0, [])
        elif kind is h2.events.InformationalResponseReceived:
            info: h2.events.InformationalResponseReceived = event  # type: ignore[assignment]
            status, fields = _split_status(info.headers or [])
            out.append(InformationalResponse(info.stream_id or 0, status, b"", fields))
        elif kind is h2.events.TrailersReceived:
            trailers: h2.events.TrailersReceived = event  # type: ignore[assignment]
            fields = [(bytes(n), bytes(v)) for n, v in trailers.headers or []]
            self._end(trailers.stream_id or 0, fields)
        elif kind is h2.events.StreamEnded:
            pass  # reported with the DATA or HEADERS frame that ended it
        elif kind is h2.events.StreamReset:
            reset: h2.events.StreamReset = event  # type: ignore[assignment]
            if reset.remote_reset:
                out.append(StreamReset(reset.stream_id or 0, int(reset.error_code or 0)))
        elif kind is h2.events.RemoteSettingsChanged:
            self._settings_received = True
        elif kind is h2.events.ConnectionTerminated:
            self._terminated(event)  # type: ignore[arg-type]

    def _head(self, stream_id: int, headers: list[tuple[bytes, bytes]]) -> None:
        status, fields = _split_status(headers)
        self._events.append(ResponseHead(stream_id, status, b"", fields, "HTTP/2"))

    def _end(self, stream_id: int, trailers: Headers) -> None:
        self._events.append(EndOfMessage(stream_id, trailers))

    def _terminated(self, event: h2.events.ConnectionTerminated) -> None:
        last = event.last_stream_id if event.last_stream_id is not None else 0
        code = int(event.error_code or 0)
        reason = bytes(event.additional_data or b"").decode("utf-8", "replace")
        goaway = ConnectionTerminated(code, reason, last)
        self._goaway = goaway
        for stream_id in list(self._conn.streams):
            stream = self._conn.streams[stream_id]
            if stream_id > last and stream_id % 2 == 1 and not stream.closed:
                self.reset_stream(stream_id, ErrorCodes.CANCEL)
                self._events.append(StreamReset(stream_id, ErrorCodes.REFUSED_STREAM))
        self._events.append(goaway)


def _split_status(headers: list[tuple[bytes, bytes]]) -> tuple[int, Headers]:
    """The ``:status`` of a response header section and its other fields
    (pseudo-header fields dropped).

    Raises:
        RemoteProtocolError: ``:status`` is missing or not three digits.
    """
    status = -1
    fields: Headers = []
    for name, value in headers:
        name = bytes(name)
        if name[:1] == b":":
            if name == b":status":
                raw = bytes(value)
                if len(raw) == 3 and raw.isdigit():
                    status = int(raw)
            continue
        fields.append((name, bytes(value)))
    if status < 100:
        raise RemoteProtocolError("HTTP/2 response without a valid :status")
    return status, fields
