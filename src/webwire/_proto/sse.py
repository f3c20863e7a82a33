"""A sans-I/O parser of ``text/event-stream`` (server-sent events).

It follows the HTML Living Standard, section 9.2.6 "Interpreting an event
stream" (and 9.2.5 for the syntax): the bytes are decoded as UTF-8
(invalid sequences become U+FFFD), one leading byte order mark is dropped,
lines end with CR LF, LF or CR (a CR LF split between two chunks counts
once), ``:`` starts a comment, a line without a colon is a field with an
empty value, one space after the colon is removed, and a blank line
dispatches the event being built. Fields: ``event`` (the type), ``data``
(appended, lines joined with LF), ``id`` (ignored when it contains NUL; the
last event ID persists across events and reconnections), ``retry``
(reconnection time in milliseconds, ASCII digits only); other names are
ignored. An event whose data buffer is empty is not dispatched, and an
event not ended by a blank line when the stream ends is discarded.

Bytes in with :meth:`SSEParser.receive_data`, events out with
:meth:`SSEParser.events`. No I/O, no clock.
"""

from __future__ import annotations

import codecs
import json as jsonlib
import re
from dataclasses import dataclass
from typing import Any

from webwire._exceptions import RemoteProtocolError

__all__ = ["DEFAULT_MAX_EVENT_SIZE", "SSEParser", "ServerSentEvent"]

DEFAULT_MAX_EVENT_SIZE = 16 * 1024 * 1024
"""Most characters of one line plus the event's data buffer (16 Mi)."""

_EOL = re.compile(r"\r\n|\r|\n")


@dataclass(frozen=True)
class ServerSentEvent:
    """One dispatched server-sent event (HTML Living Standard, 9.2.6).

    Attributes:
        event: The event type (``"message"`` when the stream named none).
        data: The data: the ``data`` field values joined with LF.
        id: The last event ID when the event was dispatched (``""`` when
            none was set); it is sent back as ``Last-Event-ID`` when
            reconnecting.
        retry: The reconnection time in milliseconds given by a ``retry``
            field in this event's block, or ``None``.
    """

    event: str = "message"
    data: str = ""
    id: str = ""
    retry: int | None = None

    def json(self, **kwargs: Any) -> Any:
        """The data parsed as JSON (RFC 8259).

        Args:
            **kwargs: Passed to :func:`json.loads`.

        Raises:
            json.JSONDecodeError: The data is not JSON.
        """
        return jsonlib.loads(self.data, **kwargs)


class SSEParser:
    """The event-stream interpretation algorithm, fed with bytes.

    Args:
        last_event_id: The last event ID to start from (for a stream
            resumed with ``Last-Event-ID``).
        max_event_size: Most characters of one line plus the data buffer of
            the event being built.

    Attributes:
        last_event_id: The last event ID string (persists across events and
            :meth:`reset`).
        retry: The reconnection time in milliseconds set by the last valid
            ``retry`` field, or ``None``.
    """

    def __init__(
        self, *, last_event_id: str = "", max_event_size: int = DEFAULT_MAX_EVENT_SIZE
    ) -> None:
        self.last_event_id = last_event_id
        self.retry: int | None = None
        self._max = max_event_size
        self._events: list[ServerSentEvent] = []
        self.reset()

    def reset(self) -> None:
        """Start a new stream (a reconnection): the decoder, the partial line
        and the event being built are dropped; :attr:`last_event_id` and
        :attr:`retry` are kept."""
        self._decoder = codecs.getincrementaldecoder("utf-8")(errors="replace")
        self._bom_checked = False
        self._after_cr = False
        self._parts: list[str] = []
        self._parts_size = 0
        self._data: list[str] = []
        self._data_size = 0
        self._event_type = ""
        self._id_buffer = self.last_event_id
        self._event_retry: int | None = None

    def receive_data(self, data: bytes) -> None:
        """Feed the next bytes of the stream.

        Raises:
            RemoteProtocolError: A line or an event's data grew over
                ``max_event_size`` characters.
        """
        text = self._decoder.decode(data)
        if not text:
            return
        if not self._bom_checked:
            self._bom_checked = True
            if text[0] == "\ufeff":
                text = text[1:]
                if not text:
                    return
        if self._after_cr:
            self._after_cr = False
            if text[0] == "\n":
                text = text[1:]
        start = 0
        end_match = None
        for end_match in _EOL.finditer(text):
            piece = text[start : end_match.start()]
            if self._parts:
                self._parts.append(piece)
                line = "".join(self._parts)
                self._parts.clear()
                self._parts_size = 0
            else:
                line = piece
            self._check(len(line))
            self._line(line)
            start = end_match.end()
        if end_match is not None and end_match.end() == len(text) and end_match.group() == "\r":
            # A CR at the end of a chunk: an LF starting the next one
            # belongs to the same line end.
            self._after_cr = True
        rest = text[start:]
        if rest:
            self._parts.append(rest)
            self._parts_size += len(rest)
            self._check(self._parts_size)

    def events(self) -> list[ServerSentEvent]:
        """The events dispatched since the last call, in order."""
        events, self._events = self._events, []
        return events

    def _check(self, line_size: int) -> None:
        if line_size + self._data_size > self._max:
            raise RemoteProtocolError(
                f"a server-sent event is over the limit of {self._max} characters"
            )

    def _line(self, line: str) -> None:
        if not line:
            self._dispatch()
            return
        if line[0] == ":":
            return
        name, colon, value = line.partition(":")
        if colon and value[:1] == " ":
            value = value[1:]
        if name == "data":
            self._data.append(value)
            self._data_size += len(value) + 1
        elif name == "event":
            self._event_type = value
        elif name == "id":
            if "\x00" not in value:
                self._id_buffer = value
        elif name == "retry" and value.isascii() and value.isdigit():
            self.retry = int(value)
            self._event_retry = self.retry

    def _dispatch(self) -> None:
        self.last_event_id = self._id_buffer
        retry, self._event_retry = self._event_retry, None
        event_type, self._event_type = self._event_type, ""
        if not self._data:
            return
        data = "\n".join(self._data)
        self._data = []
        self._data_size = 0
        event = ServerSentEvent(event_type or "message", data, self.last_event_id, retry)
        self._events.append(event)
