"""WebSocket client (RFC 6455, with permessage-deflate, RFC 7692) on asyncio
and trio; the blocking API is :mod:`webwire.websocket.sync`.

``connect(uri)`` opens a :class:`ClientConnection`: ``await`` it, use it
with ``async with``, or iterate ``async for ws in connect(uri)`` to
reconnect automatically (:func:`process_exception` decides which failures
are retried). ``unix_connect(path)`` does the same over a Unix domain
socket. The handshake goes through webwire's HTTP client, so TLS, proxies
and tracing apply to it; the framing engine is the ``websockets`` library's
Sans-I/O layer.
"""

from __future__ import annotations

from webwire._exceptions import (
    CloseFrame,
    ConcurrencyError,
    ConnectionClosed,
    ConnectionClosedError,
    ConnectionClosedOK,
    InvalidHandshake,
    InvalidStatus,
)
from webwire._proto.websocket import State

from ._client import connect, process_exception, unix_connect
from ._connection import ClientConnection, PongWaiter

__all__ = [
    "ClientConnection",
    "CloseFrame",
    "ConcurrencyError",
    "ConnectionClosed",
    "ConnectionClosedError",
    "ConnectionClosedOK",
    "InvalidHandshake",
    "InvalidStatus",
    "PongWaiter",
    "State",
    "connect",
    "process_exception",
    "unix_connect",
]
