"""WebTransport streams (draft-ietf-webtrans-http3 section 4):
:class:`WebTransportStream` (bidirectional), :class:`WebTransportSendStream`
and :class:`WebTransportReceiveStream` (unidirectional), written once for
asyncio, trio and the blocking API."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import TYPE_CHECKING

from webwire._exceptions import ReadError

if TYPE_CHECKING:
    from webwire._transport._wt_session import WTStreamCore

__all__ = [
    "DEFAULT_READ_LIMIT",
    "WebTransportReceiveStream",
    "WebTransportSendStream",
    "WebTransportStream",
]

DEFAULT_READ_LIMIT = 64 * 1024 * 1024
"""Most bytes :meth:`WebTransportReceiveStream.read_all` collects unless
told otherwise."""

_PIECE = 1024 * 1024


class _Base:
    __slots__ = ("_buffer", "_core", "_read_timeout", "_write_timeout")

    def __init__(
        self, core: WTStreamCore, read_timeout: float | None, write_timeout: float | None
    ) -> None:
        self._core = core
        self._buffer = b""
        self._read_timeout = read_timeout
        self._write_timeout = write_timeout

    @property
    def stream_id(self) -> int:
        """The QUIC stream id (RFC 9000 section 2.1)."""
        return self._core.stream_id

    @property
    def direction(self) -> str:
        """``"bidirectional"``, ``"send"`` or ``"receive"``."""
        core = self._core
        if core.readable and core.writable:
            return "bidirectional"
        return "send" if core.writable else "receive"

    @property
    def state(self) -> str:
        """``"open"``, ``"half_closed_local"`` (our side ended),
        ``"half_closed_remote"`` (the server's side ended), ``"reset"``
        or ``"closed"``."""
        core = self._core
        if core.local_error is not None or core.stop_error is not None or core.state.error:
            return "reset"
        if core.forgotten or (core.eof and core.eof_sent):
            return "closed"
        if core.eof_sent and core.writable:
            return "half_closed_local"
        if core.eof and core.readable:
            return "half_closed_remote"
        return "open"

    @property
    def bytes_sent(self) -> int:
        """Bytes written so far."""
        return self._core.bytes_sent

    @property
    def bytes_received(self) -> int:
        """Bytes received so far."""
        return self._core.bytes_received

    async def wait_closed(self, timeout: float | None = None) -> None:
        """Wait until the stream is over both ways (read to its end or
        reset, ended or aborted for sending, or the session ended).

        Raises:
            ReadTimeout: Not over within ``timeout`` seconds.
        """
        await self._core.wait_closed(timeout)

    def __repr__(self) -> str:
        return f"<{type(self).__name__} stream_id={self.stream_id} state={self.state}>"


class _Reading(_Base):
    __slots__ = ()

    async def read(self, size: int = -1) -> bytes:
        """The next bytes received, at most ``size`` (``-1``: whatever
        arrived, without waiting for more); ``b""`` once the server ended
        the stream.

        Raises:
            StreamReset: The server reset the stream (``code`` holds its
                WebTransport error code), or it was stopped here.
            SessionClosed: The session ended.
            ReadTimeout: Nothing within the session's read timeout.
            ReadError: The connection failed.
        """
        if size == 0:
            return b""
        buffer = self._buffer
        if buffer:
            if size < 0 or len(buffer) <= size:
                self._buffer = b""
                return buffer
            self._buffer = buffer[size:]
            return buffer[:size]
        return await self._core.read(size if size > 0 else _PIECE, self._read_timeout)

    async def read_all(self, max_size: int = DEFAULT_READ_LIMIT) -> bytes:
        """Everything up to the end of the stream.

        Raises:
            ReadError: More than ``max_size`` bytes.
            StreamReset, SessionClosed, ReadTimeout: As :meth:`read`.
        """
        chunks = [self._buffer] if self._buffer else []
        size = len(self._buffer)
        self._buffer = b""
        while True:
            data = await self._core.read(_PIECE, self._read_timeout)
            if not data:
                return b"".join(chunks)
            size += len(data)
            if size > max_size:
                raise ReadError(
                    f"WebTransport stream {self.stream_id} carried more than {max_size} bytes"
                )
            chunks.append(data)

    async def readexactly(self, n: int) -> bytes:
        """Exactly ``n`` bytes.

        Raises:
            ReadError: The stream ended before ``n`` bytes.
            StreamReset, SessionClosed, ReadTimeout: As :meth:`read`.
        """
        while len(self._buffer) < n:
            data = await self._core.read(max(n - len(self._buffer), 1), self._read_timeout)
            if not data:
                raise ReadError(
                    f"WebTransport stream {self.stream_id} ended after "
                    f"{len(self._buffer)} of {n} bytes"
                )
            self._buffer += data
        data, self._buffer = self._buffer[:n], self._buffer[n:]
        return data

    async def readuntil(self, separator: bytes = b"\n", max_size: int = 1024 * 1024) -> bytes:
        """Bytes up to and including ``separator``.

        Raises:
            ReadError: The stream ended first, or ``max_size`` bytes came
                without the separator.
            StreamReset, SessionClosed, ReadTimeout: As :meth:`read`.
        """
        if not separator:
            raise ValueError("the separator cannot be empty")
        start = 0
        while True:
            index = self._buffer.find(separator, start)
            if index >= 0:
                end = index + len(separator)
                data, self._buffer = self._buffer[:end], self._buffer[end:]
                return data
            if len(self._buffer) > max_size:
                raise ReadError(f"no {separator!r} within {max_size} bytes")
            start = max(0, len(self._buffer) - len(separator) + 1)
            data = await self._core.read(_PIECE, self._read_timeout)
            if not data:
                raise ReadError(
                    f"WebTransport stream {self.stream_id} ended before {separator!r}"
                )
            self._buffer += data

    async def readline(self) -> bytes:
        """The next line, ``\\n`` included; at the end of the stream, what
        is left (possibly ``b""``).

        Raises:
            StreamReset, SessionClosed, ReadTimeout: As :meth:`read`.
        """
        while b"\n" not in self._buffer:
            data = await self._core.read(_PIECE, self._read_timeout)
            if not data:
                line, self._buffer = self._buffer, b""
                return line
            self._buffer += data
        index = self._buffer.index(b"\n") + 1
        line, self._buffer = self._buffer[:index], self._buffer[index:]
        return line

    def stop_receiving(self, code: int = 0) -> None:
        """Ask the server to stop sending (STOP_SENDING with WebTransport
        error ``code``, section 4.3); unread data is dropped and reads then
        return ``b""``.

        Raises:
            ValueError: ``code`` is not 0 to 2**32 - 1.
        """
        self._buffer = b""
        self._core.stop(code)

    def __aiter__(self) -> AsyncIterator[bytes]:
        return self._chunks()

    async def _chunks(self) -> AsyncIterator[bytes]:
        while True:
            data = await self.read()
            if not data:
                return
            yield data


class _Writing(_Base):
    __slots__ = ()

    async def write(self, data: bytes, end_stream: bool = False) -> None:
        """Send ``data``, ending our side with ``end_stream``; waits for
        the server's flow-control credit (a large write is queued in
        pieces as it is sent, never buffered whole).

        Raises:
            StreamReset: The server stopped the stream (STOP_SENDING), or
                it was aborted here.
            SessionClosed: The session ended.
            WriteTimeout: No credit within the session's write timeout.
            WriteError: Our side already ended, or the connection failed.
            TypeError: ``data`` is not bytes-like.
        """
        if not isinstance(data, bytes | bytearray | memoryview):
            raise TypeError(f"WebTransport stream data must be bytes, not {type(data).__name__}")
        await self._core.write(bytes(data), self._write_timeout, end=end_stream)

    async def write_all(self, data: bytes) -> None:
        """Send ``data`` and end our side of the stream (FIN)."""
        await self.write(data, end_stream=True)

    async def close(self) -> None:
        """End our side of the stream (FIN); the server's side is read as
        before. Idempotent; never raises for a stream already over."""
        core = self._core
        if core.eof_sent:
            return
        try:
            await core.write(b"", self._write_timeout, end=True)
        except Exception:
            core.abort(0)

    def abort(self, code: int = 0) -> None:
        """Reset our side at once (RESET_STREAM with WebTransport error
        ``code``, section 4.3): unsent data is dropped.

        Raises:
            ValueError: ``code`` is not 0 to 2**32 - 1.
        """
        self._core.abort(code)


class WebTransportReceiveStream(_Reading):
    """A unidirectional stream the server opened: read only."""

    __slots__ = ()


class WebTransportSendStream(_Writing):
    """A unidirectional stream we opened: write only."""

    __slots__ = ()


class WebTransportStream(_Reading, _Writing):
    """A bidirectional stream: read and write."""

    __slots__ = ()
