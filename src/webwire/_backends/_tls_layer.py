"""TLS over another stream that is itself TLS (a ``CONNECT`` tunnel through
an ``https://`` proxy), for the blocking backend.

An ``ssl.SSLSocket`` cannot wrap another one, so the inner TLS runs on an
``ssl.SSLObject`` with memory buffers: ciphertext is read from and written
to the outer :class:`NetworkStream`. The outer stream's awaits never
suspend on the blocking backend, so the locks below are thread locks held
across them: one guards the ``SSLObject`` (OpenSSL objects are not
thread-safe), one keeps encrypted records in order on the wire.
"""

from __future__ import annotations

import ssl
import threading
import time
from typing import Any

from webwire._exceptions import ReadError, WriteError

from ._common import (
    describe,
    read_error,
    read_timeout,
    selected_alpn,
    tls_error,
    tls_timeout,
    write_error,
)
from .base import NetworkStream

__all__ = ["TLSLayerStream"]

_READ_SIZE = 65536


def _left(deadline: float | None) -> float | None:
    return None if deadline is None else max(0.0, deadline - time.monotonic())


class TLSLayerStream(NetworkStream):
    """A TLS client connection carried by ``inner`` (see the module
    docstring). Build it with :meth:`connect`."""

    __slots__ = ("_closed", "_incoming", "_inner", "_lock", "_outgoing", "_ssl", "_write_lock")

    def __init__(
        self,
        inner: NetworkStream,
        ssl_object: ssl.SSLObject,
        incoming: ssl.MemoryBIO,
        outgoing: ssl.MemoryBIO,
    ) -> None:
        self._inner = inner
        self._ssl = ssl_object
        self._incoming = incoming
        self._outgoing = outgoing
        self._lock = threading.Lock()
        self._write_lock = threading.Lock()
        self._closed = False

    @classmethod
    async def connect(
        cls,
        inner: NetworkStream,
        ssl_context: ssl.SSLContext,
        server_hostname: str | None,
        timeout: float | None,
    ) -> TLSLayerStream:
        """Run the TLS handshake over ``inner`` within ``timeout`` seconds;
        ``inner`` is closed when it fails.

        Raises:
            ConnectError: The handshake failed (certificate included).
            ConnectTimeout: It did not finish in time.
        """
        incoming, outgoing = ssl.MemoryBIO(), ssl.MemoryBIO()
        try:
            tls = ssl_context.wrap_bio(incoming, outgoing, server_hostname=server_hostname)
        except (ssl.SSLError, ValueError) as exc:
            inner.abort()
            raise tls_error(describe(exc)) from exc
        stream = cls(inner, tls, incoming, outgoing)
        deadline = None if timeout is None else time.monotonic() + timeout
        try:
            while True:
                try:
                    tls.do_handshake()
                    break
                except ssl.SSLWantReadError:
                    pass
                await stream._flush(_left(deadline))
                data = await inner.read(_READ_SIZE, _left(deadline))
                if not data:
                    raise tls_error("the peer closed the connection during the TLS handshake")
                incoming.write(data)
            await stream._flush(_left(deadline))
        except ssl.SSLError as exc:
            inner.abort()
            raise tls_error(describe(exc)) from exc
        except TimeoutError as exc:
            inner.abort()
            raise tls_timeout(timeout) from exc
        except (ReadError, WriteError) as exc:
            inner.abort()
            raise tls_error(str(exc)) from exc
        except BaseException:
            inner.abort()
            raise
        return stream

    async def _flush(self, timeout: float | None) -> None:
        """Send the ciphertext waiting in the outgoing buffer, in order."""
        with self._write_lock:
            with self._lock:
                data = self._outgoing.read()
            if data:
                await self._inner.write(data, timeout)

    async def read(self, max_bytes: int, timeout: float | None) -> bytes:
        """Receive up to ``max_bytes`` decrypted bytes (see
        :meth:`NetworkStream.read`).

        Raises:
            ReadTimeout: Nothing arrived within ``timeout`` seconds.
            ReadError: The connection or TLS failed, or it was closed here.
        """
        deadline = None if timeout is None else time.monotonic() + timeout
        while True:
            with self._lock:
                if self._closed:
                    raise read_error("connection was closed locally")
                try:
                    return self._ssl.read(max_bytes)
                except ssl.SSLWantReadError:
                    pending = bool(self._outgoing.pending)
                except (ssl.SSLZeroReturnError, ssl.SSLEOFError):
                    return b""
                except ssl.SSLError as exc:
                    raise read_error(describe(exc)) from exc
            if pending:
                await self._flush(_left(deadline))
            left = _left(deadline)
            if left == 0.0:
                raise read_timeout(timeout)
            data = await self._inner.read(_READ_SIZE, left)
            with self._lock:
                if data:
                    self._incoming.write(data)
                else:
                    self._incoming.write_eof()

    async def write(self, data: bytes, timeout: float | None) -> None:
        """Encrypt and send all of ``data`` (see :meth:`NetworkStream.write`).

        Raises:
            WriteTimeout: Not sent within ``timeout`` seconds.
            WriteError: The connection or TLS failed, or it was closed here.
        """
        with self._write_lock:
            with self._lock:
                if self._closed:
                    raise write_error("connection was closed locally")
                try:
                    self._ssl.write(data)
                except ssl.SSLError as exc:
                    raise write_error(describe(exc)) from exc
                out = self._outgoing.read()
            await self._inner.write(out, timeout)

    async def send_eof(self) -> None:
        """TLS has no half-close.

        Raises:
            WriteError: Always.
        """
        raise write_error("cannot half-close a TLS connection (TLS has no half-close)")

    async def aclose(self) -> None:
        """Send close_notify (without waiting for the reply) and close the
        outer stream; never raises network errors; idempotent."""
        with self._lock:
            if self._closed:
                return
            self._closed = True
            try:
                self._ssl.unwrap()
            except (ssl.SSLError, ValueError):
                pass
        try:
            await self._flush(0.0)
        except Exception:
            pass
        await self._inner.aclose()

    def abort(self) -> None:
        """Close at once (synchronous, never raises, idempotent)."""
        self._closed = True
        self._inner.abort()

    def is_readable(self) -> bool:
        """Decrypted or received bytes waiting, or the outer stream
        readable."""
        with self._lock:
            if self._closed or self._ssl.pending() or self._incoming.pending:
                return True
        return self._inner.is_readable()

    async def start_tls(
        self,
        ssl_context: ssl.SSLContext,
        server_hostname: str | None,
        timeout: float | None,
    ) -> NetworkStream:
        """One more TLS layer (see :meth:`NetworkStream.start_tls`)."""
        return await TLSLayerStream.connect(self, ssl_context, server_hostname, timeout)

    def get_extra_info(self, name: str) -> Any:
        """``"ssl_object"`` and ``"alpn_protocol"`` of this layer; the rest
        from the outer stream."""
        if name == "ssl_object":
            return self._ssl
        if name == "alpn_protocol":
            return selected_alpn(self._ssl)
        return self._inner.get_extra_info(name)
