"""An HTTP/3 request stream handed over as a byte stream after a ``2xx``
answer to ``CONNECT`` (RFC 9114 section 4.4) or to an extended CONNECT
(RFC 9220: a WebSocket): :class:`HTTP3TunnelStream`, a
:class:`~webwire._backends.base.NetworkStream` of DATA frame payloads, full
duplex, while its connection stays in the pool and serves other streams.
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

from ._h3_streams import _Stream
from ._types import ResponseStream, StaleConnection

if TYPE_CHECKING:
    from .http3 import HTTP3Connection

__all__ = ["TUNNEL_CLOSE_WAIT", "HTTP3TunnelStream", "TunnelResponseStream"]

TUNNEL_CLOSE_WAIT = 1.0
"""Longest wait (seconds) of :meth:`HTTP3TunnelStream.aclose` for the peer
to end its side after ours ended, before the stream is reset."""


class TunnelResponseStream(ResponseStream, AsyncIterator[bytes]):
    """The (empty) body of a ``2xx`` answer to ``CONNECT``, and the
    ``"detach"`` extension that hands its stream over. Closing it before
    ``detach`` resets the stream (``H3_REQUEST_CANCELLED``)."""

    __slots__ = ("_conn", "_detached", "_state", "_timeout")

    def __init__(self, conn: HTTP3Connection, state: _Stream, timeout: Timeout) -> None:
        self._conn = conn
        self._state = state
        self._timeout = timeout
        self._detached = False

    def __aiter__(self) -> TunnelResponseStream:
        return self

    async def __anext__(self) -> bytes:
        raise StopAsyncIteration

    def detach(self) -> HTTP3TunnelStream:
        """Hand the stream over as a :class:`HTTP3TunnelStream`; it keeps
        its slot of the connection until it is closed.

        Raises:
            RuntimeError: Already detached, or the response was closed.
        """
        if self._detached:
            raise RuntimeError("the HTTP/3 stream was already detached")
        if self._state.released:
            raise RuntimeError("the response was closed: its HTTP/3 stream is gone")
        self._detached = True
        return HTTP3TunnelStream(self._conn, self._state, self._timeout)

    async def aclose(self) -> None:
        """Reset the stream unless it was detached (idempotent)."""
        if not self._detached and not self._state.released:
            self._conn._release(self._state)


class HTTP3TunnelStream(NetworkStream):
    """One HTTP/3 stream opened by ``CONNECT`` or extended CONNECT (RFC
    9220) as a byte stream: the payload of DATA frames each way.

    * :meth:`read` returns DATA payloads as they arrive.
    * :meth:`write` queues DATA frames, waiting while more than
      :data:`~webwire._transport.http3.SEND_BUFFER_LIMIT` bytes wait for
      the server's flow-control credit.
    * :meth:`send_eof` ends our side (FIN); :meth:`aclose` does so too,
      waits up to :data:`TUNNEL_CLOSE_WAIT` seconds for the server's end,
      then forgets the stream (reset if still open); :meth:`abort` resets
      it at once.

    One task (or thread) may read while another writes. Errors:
    :class:`~webwire.ReadError`/:class:`~webwire.WriteError` when the
    server reset the stream or the connection failed,
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

    def __init__(self, conn: HTTP3Connection, state: _Stream, timeout: Timeout) -> None:
        self._conn = conn
        self._state = state
        self._timeout = timeout
        self._writer = _Stream(state.stream_id, conn._backend.create_event())
        self._buffer = b""
        self._eof = False
        self._eof_sent = False
        self._closed = False
        with conn._lock:
            conn._extra_waiters.append(self._writer)

    # -- reading ---------------------------------------------------------

    def _take_locked(self) -> None:
        state = self._state
        events = state.events
        if not events:
            return
        state.events = []
        chunks = [self._buffer] if self._buffer else []
        size = 0
        for event in events:
            kind = type(event)
            if kind is ev.Data:
                chunks.append(event.data)  # type: ignore[attr-defined]
                size += len(event.data)  # type: ignore[attr-defined]
            elif kind is ev.EndOfMessage:
                self._eof = True
        if size:
            self._conn._consumed_locked(state, size)
        if chunks:
            self._buffer = chunks[0] if len(chunks) == 1 else b"".join(chunks)

    def _read_error_locked(self) -> BaseException | None:
        if self._closed:
            return ReadError("the HTTP/3 tunnel stream is closed")
        error = self._state.error
        if error is None:
            broken = self._conn._broken
            if broken is None:
                return None
            error = broken
        if isinstance(error, StaleConnection):
            error = error.error
        return error if isinstance(error, ReadError) else ReadError(str(error))

    async def read(self, max_bytes: int, timeout: float | None) -> bytes:
        """Receive up to ``max_bytes`` bytes of DATA payload.

        Returns:
            1 to ``max_bytes`` bytes, or ``b""`` once the server ended its
            side.

        Raises:
            ReadTimeout: Nothing arrived within ``timeout`` seconds.
            ReadError: The server reset the stream, the connection failed,
                or the tunnel was closed.
        """
        if max_bytes < 1:
            raise ValueError("max_bytes must be at least 1")
        conn = self._conn
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
                    return data
                if self._eof and not self._closed:
                    return b""
                error = self._read_error_locked()
                if error is not None:
                    raise error
            left = None if limit is None else max(0.0, limit - backend.monotonic())
            message = f"no data received on the HTTP/3 tunnel within {timeout} seconds"
            if left == 0.0:
                raise ReadTimeout(message)
            try:
                await conn._wait(self._state, Timeout(None, read=left), None)
            except ReadTimeout as exc:
                raise ReadTimeout(message) from exc

    def is_readable(self) -> bool:
        """Whether :meth:`read` would return without waiting."""
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
        conn = self._conn
        state = self._state
        if self._closed:
            return WriteError("the HTTP/3 tunnel stream is closed")
        if self._eof_sent:
            return WriteError("the HTTP/3 tunnel stream was ended (send_eof)")
        error = state.error
        if error is not None:
            if isinstance(error, StaleConnection):
                error = error.error
            return WriteError(str(error))
        if conn._broken is not None:
            return WriteError(f"the HTTP/3 connection failed: {conn._broken}")
        if not conn._proto.can_send(state.stream_id):
            return WriteError(f"the server closed HTTP/3 stream {state.stream_id}")
        return None

    async def write(self, data: bytes, timeout: float | None) -> None:
        """Send all of ``data``, waiting for the server's flow-control
        credit as needed.

        Raises:
            WriteTimeout: Not all queued within ``timeout`` seconds.
            WriteError: The server reset the stream, the connection failed,
                or our side was ended or closed.
        """
        from ._h3_engine import _CHUNK, SEND_BUFFER_LIMIT

        conn = self._conn
        state = self._state
        backend = conn._backend
        limit = None if timeout is None else backend.monotonic() + timeout
        view = memoryview(data)
        while view:
            with conn._lock:
                error = self._write_error_locked()
                if error is not None:
                    raise error
                room = conn._proto.send_buffer_size(state.stream_id) < SEND_BUFFER_LIMIT
                if room:
                    piece = view[:_CHUNK]
                    view = view[len(piece) :]
                    try:
                        conn._proto.send_data(state.stream_id, piece)
                    except LocalProtocolError as exc:
                        raise WriteError(str(exc)) from exc
            if room:
                await conn._transmit()
                continue
            left = None if limit is None else max(0.0, limit - backend.monotonic())
            message = f"the server gave no flow-control credit within {timeout} seconds"
            if left == 0.0:
                raise WriteTimeout(message)
            try:
                await conn._wait(self._writer, Timeout(None, write=left), None, for_send=True)
            except WriteTimeout as exc:
                raise WriteTimeout(message) from exc

    async def send_eof(self) -> None:
        """End our side of the stream (FIN); idempotent.

        Raises:
            WriteError: The stream was reset or closed, or the connection
                failed.
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
                conn._proto.end_stream(self._state.stream_id)
            except LocalProtocolError as exc:
                raise WriteError(str(exc)) from exc
        await conn._transmit()

    # -- closing ---------------------------------------------------------

    async def aclose(self) -> None:
        """End our side if not done yet, wait up to
        :data:`TUNNEL_CLOSE_WAIT` seconds for the server's end, then forget
        the stream (reset if still open). Never raises network errors;
        idempotent."""
        if self._closed:
            return
        conn = self._conn
        try:
            with conn._lock:
                ending = not self._eof_sent and self._write_error_locked() is None
                if ending:
                    self._eof_sent = True
                    try:
                        conn._proto.end_stream(self._state.stream_id)
                    except LocalProtocolError:
                        ending = False
            if ending:
                await conn._transmit_quietly()
            await self._drain(TUNNEL_CLOSE_WAIT)
        except TransportError:
            pass
        finally:
            self._forget()

    async def _drain(self, seconds: float) -> None:
        conn = self._conn
        backend = conn._backend
        limit = backend.monotonic() + seconds
        while True:
            with conn._lock:
                self._take_locked()
                self._buffer = b""
                if self._eof or self._state.error is not None or conn._broken is not None:
                    return
            left = limit - backend.monotonic()
            if left <= 0.0:
                return
            try:
                await conn._wait(self._state, Timeout(None, read=left), None)
            except ReadTimeout:
                return

    def _forget(self) -> None:
        conn = self._conn
        with conn._lock:
            if self._closed:
                return
            self._closed = True
            self._buffer = b""
            if self._writer in conn._extra_waiters:
                conn._extra_waiters.remove(self._writer)
            self._writer.wake.set()
            # A read waiting on the stream returns at once: the stream
            # leaves the connection's table, so nothing else would wake it.
            self._state.wake.set()
        conn._release(self._state)

    def abort(self) -> None:
        """Reset the stream (sent by the connection's timer task) and give
        its slot back at once. Never raises; idempotent."""
        self._forget()

    # -- details -----------------------------------------------------------

    async def start_tls(
        self,
        ssl_context: ssl.SSLContext,
        server_hostname: str | None,
        timeout: float | None,
    ) -> NetworkStream:
        """Not supported on an HTTP/3 stream.

        Raises:
            LocalProtocolError: Always.
        """
        raise LocalProtocolError("TLS inside an HTTP/3 tunnel stream is not supported")

    def get_extra_info(self, name: str) -> Any:
        """``"stream_id"``, ``"http_version"`` (``"HTTP/3"``), ``"peername"``
        and ``"sockname"`` (the UDP socket's), else ``None``."""
        if name == "stream_id":
            return self._state.stream_id
        if name == "http_version":
            return "HTTP/3"
        if name in ("peername", "sockname"):
            return self._conn._sock.get_extra_info(name)
        return None
