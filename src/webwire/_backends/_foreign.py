"""Streams and scopes of the async libraries the caller uses directly: a
trio ``Stream`` or an anyio byte stream adapted to :class:`NetworkStream`
(for a WebSocket over a stream the caller opened), and a shielded scope for
clean-up inside a caller's nursery."""

from __future__ import annotations

import contextlib
import ssl as _ssl
from abc import abstractmethod
from typing import Any

from webwire._exceptions import ReadError, ReadTimeout, WriteError, WriteTimeout

from .base import Backend, NetworkStream

__all__ = ["adapt_stream", "shield_scope"]


def shield_scope(backend: Backend) -> contextlib.AbstractContextManager[Any]:
    """A scope that a cancellation of the surrounding nursery does not
    reach, for the clean-up of a connection."""
    try:
        import anyio
    except ImportError:  # pragma: no cover - anyio comes with the test extras
        anyio = None  # type: ignore[assignment]
    if anyio is not None:
        return anyio.CancelScope(shield=True)
    if backend.name == "trio":  # pragma: no cover - see above
        import trio

        return trio.CancelScope(shield=True)
    return contextlib.nullcontext()  # pragma: no cover - asyncio: edge-triggered


def adapt_stream(stream: Any) -> tuple[NetworkStream, bool]:
    """``(NetworkStream, is_tls)`` for a trio stream, an anyio byte stream
    or a webwire stream.

    Raises:
        TypeError: ``stream`` is none of those.
    """
    if isinstance(stream, NetworkStream):
        return stream, stream.get_extra_info("ssl_object") is not None
    if hasattr(stream, "receive_some") and hasattr(stream, "send_all"):
        import trio

        return _TrioStream(stream), isinstance(stream, trio.SSLStream)
    if hasattr(stream, "receive") and hasattr(stream, "send") and hasattr(stream, "aclose"):
        from anyio.streams.tls import TLSStream

        return _AnyioStream(stream), isinstance(stream, TLSStream)
    raise TypeError(
        "stream must be a trio Stream, an anyio byte stream or a webwire NetworkStream, "
        f"not {type(stream).__name__}"
    )


class _ScopedStream(NetworkStream):
    """Common part of the adapters: every read and write runs in a cancel
    scope that :meth:`abort` cancels (a synchronous close)."""

    def __init__(self, stream: Any) -> None:
        self._inner = stream
        self._scopes: set[Any] = set()
        self._closed = False
        self._eof = False

    @abstractmethod
    def _scope(self, timeout: float | None) -> Any:
        """A new cancel scope of the stream's library, with ``timeout``
        seconds as its deadline (``None``: none)."""

    async def _guarded(self, call: Any, timeout: float | None, reading: bool) -> Any:
        if self._closed:
            raise (ReadError if reading else WriteError)("the stream is closed")
        scope = self._scope(timeout)
        self._scopes.add(scope)
        errors: tuple[type[BaseException], ...] = (OSError, *self._errors())
        try:
            with scope:
                return await call()
            # The scope swallowed its cancellation: timed out or aborted.
        except errors as exc:
            if reading and self._is_eof(exc):
                return b""
            raise (ReadError if reading else WriteError)(str(exc) or type(exc).__name__) from exc
        finally:
            self._scopes.discard(scope)
        if self._closed:
            raise (ReadError if reading else WriteError)("the stream was closed")
        raise (ReadTimeout if reading else WriteTimeout)(f"no progress within {timeout} s")

    def _errors(self) -> tuple[type[BaseException], ...]:
        return ()

    def _is_eof(self, exc: BaseException) -> bool:
        return False

    async def send_eof(self) -> None:
        raise WriteError("a wrapped stream has no half-close")

    async def aclose(self) -> None:
        self.abort()
        with contextlib.suppress(Exception):
            await self._inner.aclose()

    def abort(self) -> None:
        self._closed = True
        for scope in list(self._scopes):
            scope.cancel()

    def is_readable(self) -> bool:
        return False

    async def start_tls(
        self, ssl_context: _ssl.SSLContext, server_hostname: str | None, timeout: float | None
    ) -> NetworkStream:
        raise WriteError("start TLS on the stream before wrapping it")


class _TrioStream(_ScopedStream):
    """A trio ``Stream`` as a webwire :class:`NetworkStream`."""

    def _scope(self, timeout: float | None) -> Any:
        import trio

        scope = trio.CancelScope()
        if timeout is not None:
            scope.deadline = trio.current_time() + timeout
        return scope

    def _errors(self) -> tuple[type[BaseException], ...]:
        import trio

        return (trio.BrokenResourceError, trio.ClosedResourceError)

    async def read(self, max_bytes: int, timeout: float | None) -> bytes:
        data: bytes = await self._guarded(
            lambda: self._inner.receive_some(max_bytes), timeout, True
        )
        return data

    async def write(self, data: bytes, timeout: float | None) -> None:
        await self._guarded(lambda: self._inner.send_all(data), timeout, False)

    def get_extra_info(self, name: str) -> Any:
        inner = self._inner
        while hasattr(inner, "transport_stream"):
            inner = inner.transport_stream
        sock = getattr(inner, "socket", None)
        if name == "peername" and sock is not None:
            return sock.getpeername()
        if name == "sockname" and sock is not None:
            return sock.getsockname()
        return None


class _AnyioStream(_ScopedStream):
    """An anyio byte stream as a webwire :class:`NetworkStream`."""

    def _scope(self, timeout: float | None) -> Any:
        import anyio

        scope = anyio.CancelScope()
        if timeout is not None:
            scope.deadline = anyio.current_time() + timeout
        return scope

    def _errors(self) -> tuple[type[BaseException], ...]:
        import anyio

        return (anyio.BrokenResourceError, anyio.ClosedResourceError, anyio.EndOfStream)

    def _is_eof(self, exc: BaseException) -> bool:
        import anyio

        return isinstance(exc, anyio.EndOfStream)

    async def read(self, max_bytes: int, timeout: float | None) -> bytes:
        data: bytes = await self._guarded(lambda: self._inner.receive(max_bytes), timeout, True)
        return data

    async def write(self, data: bytes, timeout: float | None) -> None:
        await self._guarded(lambda: self._inner.send(data), timeout, False)

    def get_extra_info(self, name: str) -> Any:
        from anyio.abc import SocketAttribute

        attribute = {
            "peername": SocketAttribute.remote_address,
            "sockname": SocketAttribute.local_address,
        }.get(name)
        if attribute is None:
            return None
        return self._inner.extra(attribute, None)

