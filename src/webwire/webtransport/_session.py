"""A WebTransport session (draft-ietf-webtrans-http3): streams, datagrams
and closing, over its own HTTP/3 connection. Written once for asyncio and
trio; the blocking API runs the same coroutines through
:func:`webwire._sync.run_sync` (:class:`SyncWebTransportSession`)."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator, Mapping
from typing import TYPE_CHECKING, Any

from webwire._backends import ChannelClosed
from webwire._exceptions import (
    DatagramTooLarge,
    ReadTimeout,
    SessionClosed,
    TransportError,
    WebTransportError,
)
from webwire._proto import webtransport as wt
from webwire._proto.webtransport import SessionState

from ._stream import WebTransportReceiveStream, WebTransportSendStream, WebTransportStream

if TYPE_CHECKING:
    from webwire._transport._wt_session import WTSessionCore, WTStreamCore
    from webwire._transport.http3 import HTTP3Connection

__all__ = [
    "DEFAULT_CLOSE_TIMEOUT",
    "SessionState",
    "SyncWebTransportSession",
    "WebTransportDatagrams",
    "WebTransportSession",
]

DEFAULT_CLOSE_TIMEOUT = 2.0
"""Seconds :meth:`WebTransportSession.close` waits for the server to end
the session after our CLOSE_WEBTRANSPORT_SESSION, before the connection is
closed anyway."""


class WebTransportDatagrams:
    """A session's datagrams (HTTP Datagrams, RFC 9297, in QUIC DATAGRAM
    frames, RFC 9221): unreliable and unordered; each fits one packet.

    Attributes:
        datagrams_sent: Datagrams queued for sending so far.
    """

    __slots__ = ("_core",)

    def __init__(self, core: WTSessionCore) -> None:
        self._core = core

    @property
    def max_datagram_size(self) -> int:
        """The largest datagram :meth:`send` accepts, bytes (what fits one
        QUIC packet after the quarter stream id; 0 when the server takes
        none)."""
        return self._core.max_datagram_size()

    @property
    def datagrams_sent(self) -> int:
        """Datagrams sent so far."""
        return self._core.datagrams_sent

    @property
    def datagrams_received(self) -> int:
        """Datagrams received so far (taken or waiting)."""
        return self._core.datagrams_received

    @property
    def datagrams_dropped(self) -> int:
        """Datagrams received while the receive queue was full, dropped."""
        return self._core.datagrams_dropped

    async def send(self, data: bytes) -> None:
        """Send one datagram (it may be lost on the way).

        Raises:
            DatagramTooLarge: ``len(data)`` exceeds
                :attr:`max_datagram_size` (the limit is named).
            SessionClosed: The session is closed.
            TypeError: ``data`` is not bytes-like.
        """
        if not isinstance(data, bytes | bytearray | memoryview):
            raise TypeError(f"a datagram must be bytes, not {type(data).__name__}")
        limit = self.max_datagram_size
        if len(data) > limit:
            raise DatagramTooLarge(len(data), limit)
        self._core.send_datagram(bytes(data))
        await self._core.conn._transmit_quietly()

    async def receive(self, timeout: float | None = None) -> bytes:
        """The next datagram received, waiting at most ``timeout`` seconds
        (``None``: no limit).

        Raises:
            ReadTimeout: None within ``timeout``.
            SessionClosed: The session ended (and none is left).
        """
        try:
            data: bytes = await self._core.datagram_channel.receive(timeout)
        except ChannelClosed:
            raise self._core.closed_error or SessionClosed() from None
        except ReadTimeout as exc:
            raise ReadTimeout(f"no datagram received within {timeout} seconds") from exc
        return data


class WebTransportSession:
    """One WebTransport session; made by
    :func:`webwire.webtransport.open_session` (or
    ``AsyncClient.webtransport``), established when returned.

    Use it as an async context manager (closed on exit) or call
    :meth:`close`. Streams: :meth:`create_bidirectional_stream`,
    :meth:`create_unidirectional_stream`, and the server's through
    :meth:`incoming_streams`; datagrams through :attr:`datagrams`. When the
    server closes the session (CLOSE_WEBTRANSPORT_SESSION, section 5),
    :attr:`close_code` and :attr:`close_reason` hold its code and reason and
    pending operations raise :class:`~webwire.SessionClosed`.

    Attributes:
        path: The session's path and query (``"/echo?x=1"``).
        headers: The server's response header fields (lower-case names).
        status_code: The server's status (2xx).
        draft: ``"draft02"`` or ``"current"``: the draft the server speaks.
    """

    def __init__(
        self,
        conn: HTTP3Connection,
        core: WTSessionCore,
        *,
        path: str,
        headers: Mapping[str, str],
        status_code: int,
        read_timeout: float | None,
        write_timeout: float | None,
        close_timeout: float = DEFAULT_CLOSE_TIMEOUT,
        on_close: Any = None,
    ) -> None:
        self._conn = conn
        self._core = core
        self.path = path
        self.headers = dict(headers)
        self.status_code = status_code
        self.draft = "current" if core.draft is wt.Draft.CURRENT else "draft02"
        self._read_timeout = read_timeout
        self._write_timeout = write_timeout
        self._close_timeout = close_timeout
        self._closing = False
        self._closed = False
        self._on_close = on_close
        self.datagrams = WebTransportDatagrams(core)
        """The session's datagrams: :class:`WebTransportDatagrams`."""

    # -- state --------------------------------------------------------------------

    @property
    def session_id(self) -> int:
        """The id of the session's CONNECT stream (section 2)."""
        return self._core.session_id

    @property
    def state(self) -> SessionState:
        """The session's :class:`SessionState`."""
        core = self._core
        if core.closed_error is not None or self._closed:
            return SessionState.CLOSED
        if self._closing or core.fin_sent:
            return SessionState.CLOSING
        if core.draining:
            return SessionState.DRAINING
        return SessionState.CONNECTED

    @property
    def is_ready(self) -> bool:
        """Established and neither closing nor closed."""
        return self.state in (SessionState.CONNECTED, SessionState.DRAINING)

    @property
    def is_closed(self) -> bool:
        """Closed by either side, or its connection ended."""
        return self.state is SessionState.CLOSED

    @property
    def close_code(self) -> int | None:
        """The code of the CLOSE_WEBTRANSPORT_SESSION capsule received (or
        sent by :meth:`close`), ``None`` before."""
        return self._core.close_code

    @property
    def close_reason(self) -> str | None:
        """The reason of that capsule, ``None`` before."""
        return self._core.close_reason

    async def ready(self) -> None:
        """Return once the session is established (it is when
        :func:`open_session` returns).

        Raises:
            SessionClosed: The session is closed.
        """
        error = self._core.closed_error
        if error is not None:
            raise error

    async def wait_closed(self, timeout: float | None = None) -> None:
        """Wait until the session is closed (by either side).

        Raises:
            ReadTimeout: Still open after ``timeout`` seconds.
        """
        core = self._core
        conn = self._conn
        backend = conn._backend
        limit = None if timeout is None else backend.monotonic() + timeout
        while True:
            with conn._lock:
                if core.closed_error is not None or conn._broken is not None or self._closed:
                    return
                waiter = core.waiter_locked()
            left = None if limit is None else max(0.0, limit - backend.monotonic())
            if left == 0.0 or not await waiter.wait(left):
                raise ReadTimeout(f"the WebTransport session is open after {timeout} seconds")

    def get_session_stats(self) -> dict[str, Any]:
        """Counters of the session: ``{"session_id", "state", "path",
        "draft", "bytes_sent", "bytes_received" (stream payload bytes),
        "streams_opened", "streams_accepted", "streams_refused" (server
        streams refused while ``stream_buffer_size`` of them waited),
        "open_streams",
        "datagrams_sent", "datagrams_received", "datagrams_dropped",
        "close_code", "close_reason"}``."""
        core = self._core
        return {
            "session_id": core.session_id,
            "state": self.state.value,
            "path": self.path,
            "draft": self.draft,
            "bytes_sent": core.bytes_sent,
            "bytes_received": core.bytes_received,
            "streams_opened": core.streams_opened,
            "streams_accepted": core.streams_accepted,
            "streams_refused": core.streams_refused,
            "open_streams": len(core.streams),
            "datagrams_sent": core.datagrams_sent,
            "datagrams_received": core.datagrams_received,
            "datagrams_dropped": core.datagrams_dropped,
            "close_code": core.close_code,
            "close_reason": core.close_reason,
        }

    # -- streams ------------------------------------------------------------------

    async def create_bidirectional_stream(self) -> WebTransportStream:
        """Open a bidirectional stream (section 4.2), waiting for the
        server's stream credit.

        Raises:
            SessionClosed: The session is closed or closing.
            WriteTimeout: No stream credit within the write timeout.
        """
        core = await self._core.open_stream(False, self._write_timeout)
        return WebTransportStream(core, self._read_timeout, self._write_timeout)

    async def create_unidirectional_stream(self) -> WebTransportSendStream:
        """Open a unidirectional stream (section 4.1).

        Raises:
            SessionClosed, WriteTimeout: As :meth:`create_bidirectional_stream`.
        """
        core = await self._core.open_stream(True, self._write_timeout)
        return WebTransportSendStream(core, self._read_timeout, self._write_timeout)

    def _wrap(self, core: WTStreamCore) -> WebTransportStream | WebTransportReceiveStream:
        self._core.streams_accepted += 1
        if core.writable:
            return WebTransportStream(core, self._read_timeout, self._write_timeout)
        return WebTransportReceiveStream(core, self._read_timeout, self._write_timeout)

    async def accept_stream(
        self, timeout: float | None = None
    ) -> WebTransportStream | WebTransportReceiveStream | None:
        """The next stream the server opened, ``None`` once the session
        ended.

        Raises:
            ReadTimeout: None within ``timeout`` seconds.
        """
        try:
            core = await self._core.incoming.receive(timeout)
        except ChannelClosed:
            return None
        return self._wrap(core)

    async def incoming_streams(
        self,
    ) -> AsyncIterator[WebTransportStream | WebTransportReceiveStream]:
        """The streams the server opens, bidirectional
        (:class:`WebTransportStream`) and unidirectional
        (:class:`WebTransportReceiveStream`), as they come, until the
        session ends."""
        while True:
            stream = await self.accept_stream()
            if stream is None:
                return
            yield stream

    async def incoming_bidirectional_streams(self) -> AsyncIterator[WebTransportStream]:
        """The bidirectional streams the server opens (unidirectional ones
        met meanwhile are stopped: use :meth:`incoming_streams` for both)."""
        async for stream in self.incoming_streams():
            if isinstance(stream, WebTransportStream):
                yield stream
            else:
                stream.stop_receiving(0)

    async def incoming_unidirectional_streams(
        self,
    ) -> AsyncIterator[WebTransportReceiveStream]:
        """The unidirectional streams the server opens (bidirectional ones
        met meanwhile are aborted: use :meth:`incoming_streams` for both)."""
        async for stream in self.incoming_streams():
            if isinstance(stream, WebTransportReceiveStream):
                yield stream
            else:
                stream.abort(0)
                stream.stop_receiving(0)

    # -- closing ------------------------------------------------------------------

    async def close(self, code: int = 0, reason: str = "") -> None:
        """Close the session: send CLOSE_WEBTRANSPORT_SESSION with ``code``
        and ``reason`` and end the CONNECT stream (section 5), wait up to
        :data:`DEFAULT_CLOSE_TIMEOUT` seconds for the server to end its
        side, then close the connection. Idempotent; never raises network
        errors.

        Raises:
            ValueError: ``code`` is not 0 to 2**32 - 1, or ``reason`` is
                over 1024 bytes in UTF-8.
        """
        capsule = wt.encode_close(code, reason)
        if self._closed:
            return
        core = self._core
        if not self._closing and core.closed_error is None:
            self._closing = True
            with self._conn._lock:
                if core.close_code is None:
                    core.close_code, core.close_reason = code, reason
            try:
                await core.send_capsule(capsule, end=True)
                await core.wait_fin(self._close_timeout)
            except (TransportError, WebTransportError):
                pass
        await self._finish()

    async def _finish(self) -> None:
        if self._closed:
            return
        self._closed = True
        core = self._core
        with self._conn._lock:
            core.end_locked(
                SessionClosed(
                    "the WebTransport session was closed",
                    code=core.close_code,
                    reason=core.close_reason or "",
                )
            )
        try:
            await self._conn.aclose()
        finally:
            if self._on_close is not None:
                self._on_close(self)

    async def __aenter__(self) -> WebTransportSession:
        return self

    async def __aexit__(self, *args: object) -> None:
        await self.close()

    def __repr__(self) -> str:
        return (
            f"<WebTransportSession session_id={self.session_id} path={self.path!r} "
            f"state={self.state.value}>"
        )


class SyncWebTransportSession:
    """The blocking view of a :class:`WebTransportSession` (made on the
    blocking backend by ``Client.webtransport``): the same methods, each
    running the session's coroutine through :func:`webwire._sync.run_sync`
    and returning its result; streams and datagrams are blocking views
    too, async iterators become iterators, ``with`` closes the session.
    Shareable by threads (the session's state lives under its
    connection's bookkeeping lock)."""

    __slots__ = ("_wrapped",)

    def __init__(self, wrapped: Any) -> None:
        object.__setattr__(self, "_wrapped", wrapped)

    @property
    def wrapped(self) -> Any:
        """The async object this view runs."""
        return self._wrapped

    def __getattr__(self, name: str) -> Any:
        value = getattr(self._wrapped, name)
        if callable(value):

            def call(*args: Any, **kwargs: Any) -> Any:
                return _blocking(value(*args, **kwargs))

            call.__name__ = name
            call.__doc__ = getattr(value, "__doc__", None)
            return call
        return _blocking(value)

    def __enter__(self) -> SyncWebTransportSession:
        return self

    def __exit__(self, *args: object) -> None:
        close = getattr(self._wrapped, "close", None)
        if close is not None:
            _blocking(close())

    def __iter__(self) -> Iterator[Any]:
        return _iterate(self._wrapped.__aiter__())

    def __repr__(self) -> str:
        return f"<blocking {self._wrapped!r}>"


_VIEWED = (WebTransportSession, WebTransportDatagrams, WebTransportStream,
           WebTransportSendStream, WebTransportReceiveStream)


def _blocking(value: Any) -> Any:
    from webwire._sync import run_sync

    if isinstance(value, _VIEWED):
        return SyncWebTransportSession(value)
    if hasattr(value, "__anext__"):
        return _iterate(value)
    if hasattr(value, "__await__"):
        return _blocking(run_sync(_await(value)))
    return value


async def _await(awaitable: Any) -> Any:
    return await awaitable


async def _next(iterator: Any) -> Any:
    return await iterator.__anext__()


def _iterate(iterator: Any) -> Iterator[Any]:
    from webwire._sync import run_sync

    try:
        while True:
            try:
                item = run_sync(_next(iterator))
            except StopAsyncIteration:
                return
            yield _blocking(item)
    finally:
        close = getattr(iterator, "aclose", None)
        if close is not None:
            run_sync(close())
