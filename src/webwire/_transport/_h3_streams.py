"""Helpers of the HTTP/3 connection (:mod:`webwire._transport.http3`): the
per-stream state, the response body stream, and the session ticket store.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import TYPE_CHECKING, Any

from webwire._backends.base import Backend, DatagramSocket
from webwire._config import Timeout
from webwire._proto import events as ev
from webwire._proto.h3 import SessionTicket

from ._types import ResponseStream, StaleConnection

if TYPE_CHECKING:
    from .http3 import HTTP3Connection

__all__ = ["HTTP3ResponseStream", "SessionTicketStore"]

_TICKETS_PER_STORE = 256


class SessionTicketStore:
    """The latest TLS session ticket (RFC 8446 section 4.6.1) per server,
    for resuming HTTP/3 connections (shorter handshakes). Thread-safe; one
    per pool; at most 256 servers (the oldest entry is dropped).

    Args:
        backend: The backend whose bookkeeping lock guards the map.
    """

    def __init__(self, backend: Backend) -> None:
        self._lock = backend.create_bookkeeping_lock()
        self._tickets: dict[tuple[str, int], SessionTicket] = {}

    def get(self, server_name: str, port: int) -> SessionTicket | None:
        """The ticket to offer ``server_name`` on UDP ``port``, if one is
        still valid."""
        with self._lock:
            ticket = self._tickets.get((server_name, port))
        if ticket is not None and not ticket.is_valid:
            return None
        return ticket

    def add(self, server_name: str, port: int, ticket: SessionTicket) -> None:
        """Remember ``ticket`` as the latest for ``server_name``/``port``."""
        with self._lock:
            key = (server_name, port)
            self._tickets.pop(key, None)
            self._tickets[key] = ticket
            while len(self._tickets) > _TICKETS_PER_STORE:
                del self._tickets[next(iter(self._tickets))]

    def clear(self) -> None:
        """Forget every ticket."""
        with self._lock:
            self._tickets.clear()

    def __len__(self) -> int:
        return len(self._tickets)


STREAM_BUFFER_LIMIT = 4 * 1024 * 1024
"""Unread response bytes one stream may hold before the connection stops
receiving, unless a request waits for something else from it (it resumes
once the stream is read below half of it); a stream's ``limit``."""


class _Stream:
    """What one request's stream has received and who waits for it."""

    __slots__ = (
        "buffered",
        "done_receiving",
        "error",
        "events",
        "got_head",
        "limit",
        "over",
        "released",
        "stream_id",
        "waiting",
        "wake",
        "wants_send",
    )

    def __init__(self, stream_id: int, wake: Any) -> None:
        self.stream_id = stream_id
        self.events: list[ev.Event] = []
        self.buffered = 0
        self.limit = STREAM_BUFFER_LIMIT
        self.over = False
        self.error: BaseException | None = None
        self.wake = wake
        self.waiting = False
        self.wants_send = False
        self.done_receiving = False
        self.released = False
        self.got_head = False



def _close_socket(sock: DatagramSocket) -> None:
    """Close ``sock`` synchronously: every backend's ``aclose`` finishes
    without suspending."""
    coro = sock.aclose()
    try:
        coro.send(None)
    except StopIteration:
        return
    except Exception:
        return
    coro.close()


class HTTP3ResponseStream(ResponseStream, AsyncIterator[bytes]):
    """The body of one HTTP/3 response. Each step returns the DATA that has
    arrived (joined); closing it before the end resets the stream
    (``H3_REQUEST_CANCELLED``) and leaves the connection to other requests."""

    __slots__ = ("_conn", "_deadline", "_done", "_state", "_timeout", "trailers")

    def __init__(
        self, conn: HTTP3Connection, state: _Stream, timeout: Timeout, deadline: float | None
    ) -> None:
        self._conn = conn
        self._state = state
        self._timeout = timeout
        self._deadline = deadline
        self._done = False
        self.trailers: list[tuple[bytes, bytes]] = []

    def __aiter__(self) -> HTTP3ResponseStream:
        return self

    async def __anext__(self) -> bytes:
        if self._done:
            raise StopAsyncIteration
        conn = self._conn
        state = self._state
        try:
            while True:
                chunks: list[bytes] = []
                ended = False
                with conn._lock:
                    events = state.events
                    if not events:
                        if state.error is not None:
                            raise state.error
                        if conn._broken is not None and not state.done_receiving:
                            conn._check_stream(state)
                    state.events = []
                    for event in events:
                        kind = type(event)
                        if kind is ev.Data:
                            chunks.append(event.data)  # type: ignore[attr-defined]
                        elif kind is ev.EndOfMessage:
                            self.trailers = event.trailers  # type: ignore[attr-defined]
                            ended = True
                    if chunks:
                        data = chunks[0] if len(chunks) == 1 else b"".join(chunks)
                        conn._consumed_locked(state, len(data))
                if ended:
                    self._done = True
                    conn._release(state)
                    if not chunks:
                        raise StopAsyncIteration
                    return data
                if chunks:
                    return data
                await conn._wait(state, self._timeout, self._deadline)
        except StopAsyncIteration:
            raise
        except StaleConnection as exc:
            self._done = True
            conn._release(state)
            raise exc.error from exc
        except BaseException:
            self._done = True
            conn._release(state)
            raise

    async def aclose(self) -> None:
        """Stop reading; an unfinished stream is reset
        (``H3_REQUEST_CANCELLED``, RFC 9114 section 4.1.1); the connection
        stays open for other requests."""
        if not self._done:
            self._done = True
            self._conn._release(self._state)
