"""A connection handed over after HTTP/1.1: a 101 (Switching Protocols)
answer to an ``Upgrade`` request (RFC 9110 section 7.8; WebSocket, RFC 6455
section 4.1) or a 2xx answer to ``CONNECT`` (RFC 9110 section 9.3.6).

The bytes the server sent right after the response head were already read
from the socket; :class:`DetachedStream` gives them back first, then reads
the socket. Every other operation is the underlying stream's.
"""

from __future__ import annotations

import ssl
from typing import Any

from webwire._backends.base import NetworkStream
from webwire._exceptions import ConnectError

__all__ = ["DetachedStream"]


class DetachedStream(NetworkStream):
    """A :class:`NetworkStream` that first yields ``leftover`` bytes.

    Args:
        stream: The connection's stream, now owned by this object.
        leftover: Bytes that arrived after the response head (may be
            empty).
    """

    __slots__ = ("_leftover", "_stream")

    def __init__(self, stream: NetworkStream, leftover: bytes) -> None:
        self._stream = stream
        self._leftover = leftover

    async def read(self, max_bytes: int, timeout: float | None) -> bytes:
        """Receive up to ``max_bytes`` bytes: the leftover bytes first
        (without waiting), then from the socket.

        Returns:
            1 to ``max_bytes`` bytes, or ``b""`` when the peer closed.

        Raises:
            ReadTimeout: Nothing arrived within ``timeout`` seconds.
            ReadError: The connection failed.
        """
        leftover = self._leftover
        if leftover:
            if len(leftover) <= max_bytes:
                self._leftover = b""
                return leftover
            self._leftover = leftover[max_bytes:]
            return leftover[:max_bytes]
        return await self._stream.read(max_bytes, timeout)

    async def write(self, data: bytes, timeout: float | None) -> None:
        """Send all of ``data`` (see :meth:`NetworkStream.write`).

        Raises:
            WriteTimeout: Not sent within ``timeout`` seconds.
            WriteError: The connection failed.
        """
        await self._stream.write(data, timeout)

    async def send_eof(self) -> None:
        """Close the sending direction (see :meth:`NetworkStream.send_eof`).

        Raises:
            WriteError: The stream is closed, failed, or is TLS.
        """
        await self._stream.send_eof()

    async def aclose(self) -> None:
        """Close gracefully; never raises network errors; idempotent."""
        self._leftover = b""
        await self._stream.aclose()

    def abort(self) -> None:
        """Close at once (synchronous, never raises, idempotent)."""
        self._leftover = b""
        self._stream.abort()

    def is_readable(self) -> bool:
        """Whether a read would not block: leftover bytes, or data, end of
        stream or an error on the socket."""
        return bool(self._leftover) or self._stream.is_readable()

    async def start_tls(
        self,
        ssl_context: ssl.SSLContext,
        server_hostname: str | None,
        timeout: float | None,
    ) -> NetworkStream:
        """Start TLS inside the tunnel (see :meth:`NetworkStream.start_tls`).

        Returns:
            The TLS stream; this object must not be used afterwards.

        Raises:
            ConnectError: The server sent bytes before the TLS handshake
                (they cannot be handed to TLS), or the handshake failed.
            ConnectTimeout: The handshake did not finish within ``timeout``
                seconds.
        """
        if self._leftover:
            raise ConnectError(
                f"the server sent {len(self._leftover)} bytes through the tunnel "
                "before the TLS handshake"
            )
        return await self._stream.start_tls(ssl_context, server_hostname, timeout)

    def get_extra_info(self, name: str) -> Any:
        """The underlying stream's connection details (``"peername"``,
        ``"ssl_object"``, ...; ``None`` when unknown)."""
        return self._stream.get_extra_info(name)
