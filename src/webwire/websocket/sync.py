"""The blocking WebSocket client: :func:`connect`, :func:`unix_connect` and
:func:`reconnect`.

It runs the very coroutines of :mod:`webwire.websocket` on the blocking
backend, driven by :func:`webwire._sync.run_sync` (no event loop); the
connection's reader and keepalive tasks are threads. A connection may be
shared by threads: one thread may receive (iterate) while others send,
ping or close.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable, Iterator
from typing import Any

from webwire._proto.websocket import State
from webwire._sync import run_sync

from ._client import connect as _async_connect
from ._connection import ClientConnection as _AsyncConnection
from ._connection import Data, PongWaiter

__all__ = ["ClientConnection", "SyncPongWaiter", "connect", "reconnect", "unix_connect"]


class SyncPongWaiter:
    """What :meth:`ClientConnection.ping` returns: :meth:`wait` blocks until
    the pong and returns the round-trip time in seconds."""

    __slots__ = ("_waiter",)

    def __init__(self, waiter: PongWaiter) -> None:
        self._waiter = waiter

    def wait(self, timeout: float | None = None) -> float:
        """Block until the pong arrives.

        Returns:
            Seconds between the ping and its pong.

        Raises:
            ReadTimeout: No pong within ``timeout`` seconds.
            ConnectionClosed: The connection closed first.
        """
        return run_sync(self._waiter.wait(timeout))


class ClientConnection:
    """A blocking WebSocket connection (RFC 6455), made by :func:`connect`:
    the methods, attributes and errors of
    :class:`webwire.websocket.ClientConnection`, blocking. ``with`` closes
    it on exit; iterating yields messages until a normal closure (and
    raises :class:`~webwire.ConnectionClosedError` after an abnormal one).
    """

    __slots__ = ("_connection",)

    def __init__(self, connection: _AsyncConnection) -> None:
        self._connection = connection

    # -- attributes ------------------------------------------------------------

    @property
    def id(self) -> uuid.UUID:
        """A unique identifier (for logs)."""
        return self._connection.id

    @property
    def request(self) -> Any:
        """The handshake request."""
        return self._connection.request

    @property
    def response(self) -> Any:
        """The handshake response (``101``)."""
        return self._connection.response

    @property
    def subprotocol(self) -> str | None:
        """The subprotocol the server chose, or ``None``."""
        return self._connection.subprotocol

    @property
    def http_version(self) -> str:
        """``"HTTP/1.1"`` (``"HTTP/2"`` over RFC 8441)."""
        return self._connection.http_version

    @property
    def state(self) -> State:
        """``State.OPEN``, ``State.CLOSING`` or ``State.CLOSED``."""
        return self._connection.state

    @property
    def closed(self) -> bool:
        """Whether the connection is closed."""
        return self._connection.closed

    @property
    def latency(self) -> float:
        """Round-trip time of the last ping, in seconds (0 before one)."""
        return self._connection.latency

    @property
    def close_code(self) -> int | None:
        """The close code received (1006 when none), ``None`` while open."""
        return self._connection.close_code

    @property
    def close_reason(self) -> str | None:
        """The close reason received, ``None`` while open."""
        return self._connection.close_reason

    @property
    def local_address(self) -> Any:
        """The local socket address, or ``None``."""
        return self._connection.local_address

    @property
    def remote_address(self) -> Any:
        """The peer's socket address, or ``None``."""
        return self._connection.remote_address

    @property
    def logger(self) -> Any:
        """The connection's logger."""
        return self._connection.logger

    # -- methods ---------------------------------------------------------------

    def send(self, message: Data | Iterable[Data], text: bool | None = None) -> None:
        """Send a message: ``str`` (text), ``bytes`` (binary) or an iterable
        of fragments. See :meth:`webwire.websocket.ClientConnection.send`."""
        run_sync(self._connection.send(message, text))

    def recv(self, timeout: float | None = None, decode: bool | None = None) -> Data:
        """Receive the next message. See
        :meth:`webwire.websocket.ClientConnection.recv`."""
        return run_sync(self._connection.recv(timeout, decode))

    def recv_streaming(self, decode: bool | None = None) -> Iterator[Data]:
        """The fragments of the next message as they arrive."""
        fragments = self._connection.recv_streaming(decode)
        try:
            while True:
                try:
                    yield run_sync(_next(fragments))
                except StopAsyncIteration:
                    return
        finally:
            run_sync(fragments.aclose())  # type: ignore[attr-defined]

    def __iter__(self) -> Iterator[Data]:
        messages = self._connection._iterate()
        try:
            while True:
                try:
                    yield run_sync(_next(messages))
                except StopAsyncIteration:
                    return
        finally:
            run_sync(messages.aclose())  # type: ignore[attr-defined]

    def send_json(self, obj: Any, *, binary: bool = False) -> None:
        """Send ``obj`` as one JSON text message. See
        :meth:`webwire.websocket.ClientConnection.send_json`."""
        run_sync(self._connection.send_json(obj, binary=binary))

    def receive_json(self, timeout: float | None = None) -> Any:
        """Receive the next message decoded as JSON. See
        :meth:`webwire.websocket.ClientConnection.receive_json`."""
        return run_sync(self._connection.receive_json(timeout))

    def ping(self, data: Data | None = None) -> SyncPongWaiter:
        """Send a ping; ``ws.ping().wait()`` returns the latency in seconds."""
        return SyncPongWaiter(run_sync(self._connection.ping(data)))

    def pong(self, data: Data = b"") -> None:
        """Send an unsolicited pong."""
        run_sync(self._connection.pong(data))

    def close(self, code: int = 1000, reason: str = "") -> None:
        """Close the connection (closing handshake) and release it."""
        run_sync(self._connection.close(code, reason))

    def wait_closed(self) -> None:
        """Block until the connection is closed."""
        run_sync(self._connection.wait_closed())

    def __enter__(self) -> ClientConnection:
        return self

    def __exit__(self, *args: object) -> None:
        self.close()


async def _next(iterator: Any) -> Data:
    item: Data = await iterator.__anext__()
    return item


def connect(uri: str, **options: Any) -> ClientConnection:
    """Open a WebSocket connection, blocking. Options as for
    :func:`webwire.websocket.connect` (``client=`` takes a
    :class:`~webwire.Client`).

    Returns:
        The open connection (use it with ``with`` to close it on exit).

    Raises:
        InvalidURL, InvalidStatus, InvalidHandshake, TransportError: As for
            :func:`webwire.websocket.connect`.
    """
    factory = _async_connect(uri, _backend="sync", **options)
    return ClientConnection(run_sync(factory._open()))


def unix_connect(path: str, uri: str | None = None, **options: Any) -> ClientConnection:
    """Open a WebSocket connection over the Unix domain socket at ``path``
    (``uri`` defaults to ``ws://localhost/``), blocking."""
    return connect(uri or "ws://localhost/", unix_socket_path=str(path), **options)


def reconnect(uri: str, **options: Any) -> Iterator[ClientConnection]:
    """Connections to ``uri``, one after the other: the blocking form of
    ``async for ws in connect(uri)`` (retries, backoff and
    ``process_exception`` the same). The current connection is closed when
    the loop asks for the next one, and when the loop ends.
    """
    iterator = _async_connect(uri, _backend="sync", **options).__aiter__()
    try:
        while True:
            yield ClientConnection(run_sync(iterator.__anext__()))
    finally:
        run_sync(iterator.aclose())
