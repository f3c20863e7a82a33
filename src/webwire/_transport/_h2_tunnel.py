"""An HTTP/2 stream handed over as a byte stream after a ``2xx`` answer to
``CONNECT`` (RFC 9113 section 8.5) or to an extended CONNECT (RFC 8441
section 4: a WebSocket): :class:`HTTP2TunnelStream`, a
:class:`~webwire._backends.base.NetworkStream` of DATA frames, full duplex,
while its connection stays in the pool and serves other streams.
"""

from __future__ import annotations

import ssl
from collections.abc import AsyncIterator
from typing import TYPE_CHECKING, Any

from webwire._backends.base import NetworkStream
from webwire._config import Timeout
from webwire._exceptions import (
    LocalProtocolError,
    ReadError,
    ReadTimeout,
    TransportError,
    WriteError,
    WriteTimeout,
)
from webwire._proto import events as ev

from ._types import (
    ResponseStream,
    StaleConnection,
)

if TYPE_CHECKING:
    from .http2 import HTTP2Connection, _Stream

__all__ = ["TUNNEL_CLOSE_WAIT", "HTTP2TunnelStream"]

TUNNEL_CLOSE_WAIT = 1.0
"""Longest wait (seconds) of :meth:`HTTP2TunnelStream.aclose` for the peer
to end its side after ours ended, before the stream is reset."""


class _TunnelResponseStream(ResponseStream, AsyncIterator[bytes]):
    """The (empty) body of a ``2xx`` answer to ``CONNECT``, and the
    ``"detach"`` extension that hands its stream over.

    Reading it to the end keeps the stream for ``detach``; closing it
    before ``detach`` resets the stream (RST_STREAM ``CANCEL``).
    """

    __slots__ = ("_conn", "_detached", "_state", "_timeout")

    def __init__(self, conn: HTTP2Connection, state: _Stream, timeout: Timeout) -> None:
        self._conn = conn
        self._state = state
        self._timeout = timeout
        self._detached = False

    def __aiter__(self) -> _TunnelResponseStream:
        return self

    async def __anext__(self) -> bytes:
        raise StopAsyncIteration

    def detach(self) -> HTTP2TunnelStream:
        """Hand the stream over as a :class:`HTTP2TunnelStream`; it keeps
        its slot of the connection until it is closed.

        Raises:
            RuntimeError: Already detached, or the response was closed (the
                stream with it).
        """
        if self._detached:
            raise RuntimeError("the HTTP/2 stream was already detached")
        if self._state.released:
            raise RuntimeError("the response was closed: its HTTP/2 stream is gone")
        self._detached = True
        return HTTP2TunnelStream(self._conn, self._state, self._timeout)

    async def aclose(self) -> None:
        """Reset the stream unless it was detached (idempotent)."""
        if not self._detached and not self._state.released:
            await self._conn._release_and_flush(self._state, self._timeout)


class HTTP2TunnelStream(NetworkStream):
    """One HTTP/2 stream opened by ``CONNECT`` (RFC 9113 section 8.5) or
    extended CONNECT (RFC 8441 section 4) as a byte stream: the payload of
    DATA frames each way.

    * :meth:`read` returns DATA payloads as they arrive; the bytes it
      returns are credited back to the server (WINDOW_UPDATE), so a tunnel
      nobody reads holds at most one stream window.
    * :meth:`write` sends DATA frames of at most the server's
      ``SETTINGS_MAX_FRAME_SIZE``, waiting for WINDOW_UPDATE when the
      stream or connection window is spent (section 5.2).
    * :meth:`send_eof` ends our side (END_STREAM); :meth:`aclose` does so
      too, waits up to :data:`TUNNEL_CLOSE_WAIT` seconds for the server's
      END_STREAM, then forgets the stream (RST_STREAM ``CANCEL`` if still
      open); :meth:`abort` resets it at once.

    The stream counts against the server's
    ``SETTINGS_MAX_CONCURRENT_STREAMS`` until it is closed; the connection
    goes on serving other requests meanwhile. One task (or thread) may read
    while another writes.

    Errors: :class:`~webwire.ReadError`/:class:`~webwire.WriteError` when
    the server reset the stream or the connection failed,
    :class:`~webwire.ReadTimeout`/:class:`~webwire.WriteTimeout` when an
    operation outlived its ``timeout``.
    """

    __slots__ = (
        "_buffer",
        "_closed",
        "_conn",
        "_eof",
        "_eof_sent",
        "_state",
        "_timeout",
        "_writer",
    )

    def __init__(self, conn: HTTP2Connection, state: _Stream, timeout: Timeout) -> None:
        self._conn = conn
        self._state = state
        self._timeout = timeout
        # The writer waits for flow-control credit as a waiter of its own,
        # so that a reader may wait on the stream at the same time.
        from .http2 import _Stream  # the connection's module imports this one

        self._writer = _Stream(state.stream_id, conn._backend.create_event())
        self._buffer = b""
        self._eof = False
        self._eof_sent = False
        self._closed = False
        with conn._lock:
            conn._extra_waiters.append(self._writer)

    # -- reading ---------------------------------------------------------

    def _take_locked(self) -> None:
        """Move the stream's received events into the buffer (lock held)."""
        state = self._state
        events = state.events
        if not events:
            return
        state.events = []
        chunks = [self._buffer] if self._buffer else []
        for event in events:
            kind = type(event)
            if kind is ev.Data:
                chunks.append(event.data)  # type: ignore[attr-defined]
            elif kind is ev.EndOfMessage:
                self._eof = True
        if chunks:
            self._buffer = chunks[0] if len(chunks) == 1 else b"".join(chunks)

    def _read_error_locked(self) -> BaseException | None:
        """The error a read must raise now, if any (lock held)."""
        if self._closed:
            return ReadError("the HTTP/2 tunnel stream is closed")
        error = self._state.error
        if error is None:
            return None
        if isinstance(error, StaleConnection):
            error = error.error
        if isinstance(error, ReadError):
            return error
        return ReadError(str(error))

    async def read(self, max_bytes: int, timeout: float | None) -> bytes:
        """Receive up to ``max_bytes`` bytes of DATA payload.

        Args:
            max_bytes: Most bytes to return (at least 1).
            timeout: Seconds to wait for data, ``None`` for no limit.

        Returns:
            1 to ``max_bytes`` bytes, or ``b""`` once the server ended its
            side (END_STREAM).

        Raises:
            ReadTimeout: Nothing arrived within ``timeout`` seconds.
            ReadError: The server reset the stream, the connection failed,
                or the tunnel was closed.
        """
        if max_bytes < 1:
            raise ValueError("max_bytes must be at least 1")
        conn = self._conn
        state = self._state
        backend = conn._backend
        limit = None if timeout is None else backend.monotonic() + timeout
        while True:
            with conn._lock:
                self._take_locked()
                buffer = self._buffer
                if buffer:
                    if len(buffer) <= max_bytes:
                        data, self._buffer = buffer, b""
                    else:
                        data, self._buffer = buffer[:max_bytes], buffer[max_bytes:]
                    if not self._closed:
                        conn._h2.acknowledge(state.stream_id, len(data))
                    queued = conn._h2.has_data_to_send()
                elif self._eof and not self._closed:
                    return b""
                else:
                    error = self._read_error_locked()
                    if error is not None:
                        raise error
                    data = b""
            if data:
                if queued:  # the WINDOW_UPDATE the acknowledgement queued
                    await conn._flush_quietly(Timeout(None, write=timeout), None)
                return data
            left = None if limit is None else max(0.0, limit - backend.monotonic())
            message = f"no data received on the HTTP/2 tunnel within {timeout} seconds"
            if left == 0.0:
                raise ReadTimeout(message)
            try:
                await conn._receive(state, Timeout(None, read=left), None)
            except ReadTimeout as exc:
                raise ReadTimeout(message) from exc

    def is_readable(self) -> bool:
        """Whether :meth:`read` would return (data, end, or an error)
        without waiting for the network."""
        state = self._state
        return bool(
            self._buffer
            or self._eof
            or state.events
            or state.error is not None
            or self._closed
            or self._conn._broken is not None
        )

    # -- writing ---------------------------------------------------------

    def _write_error_locked(self) -> BaseException | None:
        """The error a write must raise now, if any (lock held)."""
        conn = self._conn
        state = self._state
        if self._closed:
            return WriteError("the HTTP/2 tunnel stream is closed")
        if self._eof_sent:
            return WriteError("the HTTP/2 tunnel stream was ended (send_eof)")
        error = state.error
        if error is not None:
            if isinstance(error, StaleConnection):
                error = error.error
            return WriteError(str(error))
        if conn._broken is not None:
            return WriteError(f"the HTTP/2 connection failed: {conn._broken}")
        if conn._h2.stream_is_closed(state.stream_id):
            return WriteError(f"the server closed HTTP/2 stream {state.stream_id}")
        return None

    async def write(self, data: bytes, timeout: float | None) -> None:
        """Send all of ``data`` as DATA frames within the flow-control
        windows, waiting for credit (WINDOW_UPDATE) as needed.

        Args:
            data: The bytes to send.
            timeout: Seconds for the whole call, ``None`` for no limit.

        Raises:
            WriteTimeout: Not all sent within ``timeout`` seconds (part of
                it may have been).
            WriteError: The server reset the stream, the connection failed,
                or our side was ended or closed.
        """
        conn = self._conn
        state = self._state
        backend = conn._backend
        limit = None if timeout is None else backend.monotonic() + timeout
        view = memoryview(data)
        while True:
            with conn._lock:
                error = self._write_error_locked()
                if error is not None:
                    raise error
                try:
                    taken = conn._h2.send_data(state.stream_id, view) if view else 0
                except LocalProtocolError as exc:
                    raise WriteError(str(exc)) from exc
            left = None if limit is None else max(0.0, limit - backend.monotonic())
            if taken:
                await conn._flush(Timeout(None, write=left), None)
                view = view[taken:]
            if not view:
                return
            left = None if limit is None else max(0.0, limit - backend.monotonic())
            if left == 0.0:
                raise WriteTimeout(
                    f"the server gave no flow-control credit within {timeout} seconds"
                )
            try:
                await conn._receive(self._writer, Timeout(None, read=left), None, need_window=True)
            except ReadTimeout as exc:
                raise WriteTimeout(
                    f"the server gave no flow-control credit within {timeout} seconds"
                ) from exc

    async def send_eof(self) -> None:
        """End our side of the stream (END_STREAM); idempotent. Reading
        goes on until the server ends its side.

        Raises:
            WriteError: The stream was reset or closed, or the connection
                failed.
            WriteTimeout: Not sent within the request's write timeout.
        """
        conn = self._conn
        with conn._lock:
            if self._eof_sent:
                return
            error = self._write_error_locked()
            if error is not None:
                raise error
            self._eof_sent = True
            try:
                conn._h2.end_stream(self._state.stream_id)
            except LocalProtocolError as exc:
                raise WriteError(str(exc)) from exc
        await conn._flush(Timeout(None, write=self._timeout.write), None)

    # -- closing ---------------------------------------------------------

    async def aclose(self) -> None:
        """End our side if not done yet, wait up to
        :data:`TUNNEL_CLOSE_WAIT` seconds for the server's END_STREAM, then
        forget the stream (reset if still open). Never raises network
        errors; idempotent."""
        if self._closed:
            return
        conn = self._conn
        state = self._state
        try:
            with conn._lock:
                ending = not self._eof_sent and self._write_error_locked() is None
                if ending:
                    self._eof_sent = True
                    try:
                        conn._h2.end_stream(state.stream_id)
                    except LocalProtocolError:
                        ending = False
            if ending:
                await conn._flush_quietly(Timeout(None, write=TUNNEL_CLOSE_WAIT), None)
            await self._drain(TUNNEL_CLOSE_WAIT)
        except TransportError:
            pass
        finally:
            self._forget()
            await conn._flush_quietly(Timeout(None, write=TUNNEL_CLOSE_WAIT), None)

    async def _drain(self, seconds: float) -> None:
        """Discard what the server sends (crediting it) until its
        END_STREAM, an error, or ``seconds`` passed."""
        conn = self._conn
        backend = conn._backend
        limit = backend.monotonic() + seconds
        while True:
            with conn._lock:
                self._take_locked()
                if self._buffer:
                    conn._h2.acknowledge(self._state.stream_id, len(self._buffer))
                    self._buffer = b""
                if self._eof or self._state.error is not None or conn._broken is not None:
                    return
            left = limit - backend.monotonic()
            if left <= 0.0:
                return
            try:
                await conn._receive(self._state, Timeout(None, read=left), None)
            except ReadTimeout:
                return

    def _forget(self) -> None:
        """Give the stream's slot back (RST_STREAM ``CANCEL`` queued if it
        is still open) and credit unread bytes to the connection."""
        conn = self._conn
        state = self._state
        with conn._lock:
            if self._closed:
                return
            self._closed = True
            self._take_locked()
            unread = len(self._buffer)
            self._buffer = b""
            if unread:
                conn._h2.acknowledge(state.stream_id, unread)
            if self._writer in conn._extra_waiters:
                conn._extra_waiters.remove(self._writer)
            self._writer.wake.set()
            # A read waiting for the connection's reader (another stream's
            # task) returns at once: the stream leaves the connection's
            # table, so no event or connection failure would wake it.
            if state.error is None:
                state.error = ReadError("the HTTP/2 tunnel stream is closed")
            state.wake.set()
        conn._release(state)

    def abort(self) -> None:
        """Reset the stream (RST_STREAM ``CANCEL``, sent with the
        connection's next write) and give its slot back at once; a
        :meth:`read` or :meth:`write` waiting on the stream then raises
        ``ReadError``/``WriteError``. Never raises; idempotent."""
        self._forget()

    # -- details -----------------------------------------------------------

    async def start_tls(
        self,
        ssl_context: ssl.SSLContext,
        server_hostname: str | None,
        timeout: float | None,
    ) -> NetworkStream:
        """Not supported on an HTTP/2 stream.

        Raises:
            LocalProtocolError: Always.
        """
        raise LocalProtocolError("TLS inside an HTTP/2 tunnel stream is not supported")

    def get_extra_info(self, name: str) -> Any:
        """``"stream_id"`` (this stream's id), ``"http_version"``
        (``"HTTP/2"``), else the connection's details (``"peername"``,
        ``"sockname"``, ``"ssl_object"``, ``"alpn_protocol"``; ``None``
        when unknown)."""
        if name == "stream_id":
            return self._state.stream_id
        if name == "http_version":
            return "HTTP/2"
        return self._conn._stream.get_extra_info(name)
