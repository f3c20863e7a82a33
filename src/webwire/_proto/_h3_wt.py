"""WebTransport (draft-ietf-webtrans-http3) on :class:`~webwire._proto.h3.
H3Protocol`: the part of qh3's WebTransport support a client needs, and the
gap it leaves.

qh3's ``H3Connection.create_webtransport_stream`` writes the stream header
of a new bidirectional stream (the 0x41 signal and the session id) but does
not mark the stream as a WebTransport stream in its own table, so the
server's bytes on it would be parsed as HTTP/3 frames and lost.
:meth:`WebTransportMethods.create_webtransport_stream` marks it (its
``H3Stream.frame_type`` and ``session_id``), after which qh3 reports the
replies as WebTransport stream data.

Events: data on WebTransport streams becomes the ordinary
:class:`~webwire._proto.events.Data` and
:class:`~webwire._proto.events.EndOfMessage` of the stream id; a stream the
server opened is announced first by
:class:`~webwire._proto.webtransport.WebTransportStreamOpened`; resets,
STOP_SENDING and datagrams become the WebTransport events of
:mod:`webwire._proto.webtransport`.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from qh3.h3 import events as h3e
from qh3.h3.connection import FrameType, H3Connection
from qh3.quic.connection import QuicConnectionError

from webwire._exceptions import LocalProtocolError
from webwire._proto.events import Data, EndOfMessage
from webwire._proto.webtransport import (
    CLIENT_SETTINGS,
    Draft,
    WebTransportDatagram,
    WebTransportStopSending,
    WebTransportStreamOpened,
    WebTransportStreamReset,
    draft_of,
    encode_varint,
    quarter_stream_id,
)

if TYPE_CHECKING:
    from qh3.quic.connection import QuicConnection

    from webwire._proto.events import Event

__all__ = ["WebTransportH3Connection", "WebTransportMethods", "translate"]

_PACKET_PAYLOAD = 1200 - 64
"""DATAGRAM frame payload that fits the smallest QUIC packet (1200 bytes,
RFC 9000 section 14) after its header, AEAD tag and frame header."""


class WebTransportH3Connection(H3Connection):  # type: ignore[misc]
    """qh3's HTTP/3 connection sending the WebTransport SETTINGS of both
    drafts: ``wt_settings`` (default
    :data:`~webwire._proto.webtransport.CLIENT_SETTINGS`) besides
    ``SETTINGS_ENABLE_WEBTRANSPORT`` and ``SETTINGS_H3_DATAGRAM``."""

    def __init__(self, quic: QuicConnection, wt_settings: dict[int, int] | None = None) -> None:
        # Set first: qh3 sends the SETTINGS from its constructor.
        self.wt_settings = dict(CLIENT_SETTINGS if wt_settings is None else wt_settings)
        super().__init__(quic, enable_webtransport=True)

    def _get_local_settings(self) -> dict[int, int]:
        settings: dict[int, int] = super()._get_local_settings()
        settings.update(self.wt_settings)
        return settings


class WebTransportMethods:
    """The WebTransport operations of :class:`~webwire._proto.h3.H3Protocol`
    (a connection made with ``webtransport=True``). Sending never raises
    qh3's errors: they become :class:`~webwire.LocalProtocolError`."""

    _quic: QuicConnection
    _h3: H3Connection | None
    _wt_streams: set[int]
    _events: list[Event]
    _terminated: Any
    _webtransport: bool
    _call_local: Callable[..., Any]

    @property
    def received_settings(self) -> dict[int, int]:
        """The server's SETTINGS (RFC 9114 section 7.2.4), empty before
        they arrive."""
        h3 = self._h3
        settings = None if h3 is None else h3.received_settings
        return dict(settings) if settings else {}

    @property
    def local_wt_settings(self) -> dict[int, int]:
        """The current draft's SETTINGS this client sent (its session
        receive limits, section 5), empty before the connection starts."""
        h3 = self._h3
        return dict(getattr(h3, "wt_settings", {}))

    @property
    def webtransport_draft(self) -> Draft | None:
        """The WebTransport draft the server's SETTINGS announce, ``None``
        before they arrive or when it supports none."""
        return draft_of(self.received_settings)

    @property
    def datagrams_supported(self) -> bool:
        """Whether the server accepts QUIC DATAGRAM frames (RFC 9221)."""
        return self._quic._remote_max_datagram_frame_size is not None

    def max_datagram_size(self, session_id: int) -> int:
        """Largest datagram payload of session ``session_id`` that fits one
        QUIC packet after the quarter stream id prefix (RFC 9297 section
        2.1), bytes; 0 when the server takes no datagrams."""
        remote = self._quic._remote_max_datagram_frame_size
        if remote is None:
            return 0
        limit = min(int(remote), _PACKET_PAYLOAD)
        return max(0, limit - len(encode_varint(quarter_stream_id(session_id))))

    def _check_wt(self) -> H3Connection:
        if not self._webtransport:
            raise LocalProtocolError("this HTTP/3 connection was not opened for WebTransport")
        h3 = self._h3
        if h3 is None or self._terminated is not None:
            raise LocalProtocolError("the HTTP/3 connection is closed")
        return h3

    def create_webtransport_stream(self, session_id: int, *, unidirectional: bool) -> int:
        """Open a WebTransport stream of session ``session_id`` (the CONNECT
        stream id) and write its header (section 4.1 / 4.2).

        Returns:
            The new stream's id.

        Raises:
            LocalProtocolError: The connection is closed or the server's
                stream limit is reached.
        """
        h3 = self._check_wt()
        stream_id: int = self._call_local(
            h3.create_webtransport_stream, session_id, unidirectional
        )
        if not unidirectional:
            # The gap: mark the stream so that the server's bytes on it
            # are WebTransport data, not HTTP/3 frames.
            stream = h3._get_or_create_stream(stream_id)
            stream.frame_type = FrameType.WEBTRANSPORT_STREAM
            stream.session_id = session_id
        self._wt_streams.add(stream_id)
        return stream_id

    def send_stream_data(
        self, stream_id: int, data: bytes | memoryview, *, end_stream: bool = False
    ) -> None:
        """Queue ``data`` on WebTransport stream ``stream_id`` as is (no
        HTTP/3 framing), ending it with ``end_stream``.

        Raises:
            LocalProtocolError: The stream is closed for sending, or the
                connection is closed.
        """
        h3 = self._check_wt()
        self._call_local(self._quic.send_stream_data, stream_id, data, end_stream)
        if end_stream:
            stream = h3._stream.get(stream_id)
            if stream is not None:
                stream.sending_ended = True
                h3._maybe_cleanup_stream(stream)

    def send_webtransport_datagram(self, session_id: int, data: bytes) -> None:
        """Queue an HTTP Datagram of session ``session_id`` (RFC 9297:
        quarter stream id, then ``data``). qh3 sends it with the next
        packet; it may be lost.

        Raises:
            LocalProtocolError: The server takes no datagrams, or the
                connection is closed.
        """
        h3 = self._check_wt()
        if self._quic._remote_max_datagram_frame_size is None:
            raise LocalProtocolError("the server does not accept QUIC datagrams (RFC 9221)")
        self._call_local(h3.send_datagram, quarter_stream_id(session_id), data)

    def abort_stream(self, stream_id: int, error_code: int) -> None:
        """RESET_STREAM on our side of ``stream_id`` (RFC 9000 section
        19.4). Never raises."""
        self._stream_operation("reset_stream", stream_id, error_code)

    def stop_stream(self, stream_id: int, error_code: int) -> None:
        """STOP_SENDING for the server's side of ``stream_id`` (RFC 9000
        section 19.5). Never raises."""
        self._stream_operation("stop_stream", stream_id, error_code)

    def _stream_operation(self, name: str, stream_id: int, error_code: int) -> None:
        if self._terminated is not None or self._quic._core is None:
            return
        try:
            getattr(self._quic, name)(stream_id, error_code)
        except (QuicConnectionError, ValueError, RuntimeError, AssertionError):
            pass

    def forget_webtransport_stream(self, stream_id: int) -> None:
        """Drop the bookkeeping of a WebTransport stream nobody uses any
        more."""
        self._wt_streams.discard(stream_id)
        h3 = self._h3
        if h3 is not None:
            h3._stream.pop(stream_id, None)


def translate(proto: Any, event: h3e.H3Event) -> bool:
    """Turn a qh3 WebTransport event into webwire events (appended to
    ``proto._events``); ``False`` when ``event`` is not about WebTransport
    (a reset of a request stream)."""
    kind = type(event)
    out: list[Event] = proto._events
    streams: set[int] = proto._wt_streams
    if kind is h3e.WebTransportStreamDataReceived:
        stream_id = event.stream_id  # type: ignore[attr-defined]
        if stream_id not in streams:
            streams.add(stream_id)
            out.append(
                WebTransportStreamOpened(
                    stream_id,
                    event.session_id,  # type: ignore[attr-defined]
                    bool(stream_id & 2),
                )
            )
        data = event.data  # type: ignore[attr-defined]
        if data:
            out.append(Data(stream_id, data))
        if event.stream_ended:  # type: ignore[attr-defined]
            out.append(EndOfMessage(stream_id, []))
        return True
    if kind is h3e.DatagramReceived:
        out.append(WebTransportDatagram(event.flow_id * 4, event.data))  # type: ignore[attr-defined]
        return True
    stream_id = event.stream_id  # type: ignore[attr-defined]
    if stream_id not in streams:
        return kind is h3e.StopSending
    code = int(event.error_code)  # type: ignore[attr-defined]
    if kind is h3e.StreamReset:
        out.append(WebTransportStreamReset(stream_id, code))
    else:
        out.append(WebTransportStopSending(stream_id, code))
    return True
