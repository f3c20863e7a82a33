"""WebSocket client (RFC 6455, with permessage-deflate, RFC 7692) on asyncio
and trio; the blocking API is :mod:`webwire.websocket.sync`.

``connect(uri)`` opens a :class:`ClientConnection`: ``await`` it, use it
with ``async with``, or iterate ``async for ws in connect(uri)`` to
reconnect automatically (:func:`process_exception` decides which failures
are retried). ``unix_connect(path)`` does the same over a Unix domain
socket. The handshake goes through webwire's HTTP client, so TLS, proxies
and tracing apply to it; the framing engine is the ``websockets`` library's
Sans-I/O layer.

The trio-websocket style of API (:func:`open_websocket`,
:func:`open_websocket_url`, :func:`connect_websocket`,
:func:`connect_websocket_url`, :func:`wrap_client_stream`, returning a
:class:`WebSocketConnection` with ``send_message``/``get_message``) runs
over the same connection object, on trio and asyncio.
"""

from __future__ import annotations

from webwire._exceptions import (
    CloseFrame,
    CloseReason,
    ConcurrencyError,
    ConnectionClosed,
    ConnectionClosedError,
    ConnectionClosedOK,
    ConnectionRejected,
    ConnectionTimeout,
    DisconnectionTimeout,
    HandshakeError,
    InvalidHandshake,
    InvalidStatus,
)
from webwire._proto.websocket import State

from ._client import connect, process_exception, unix_connect
from ._connection import ClientConnection, PongWaiter
from ._trio_style import (
    Endpoint,
    WebSocketConnection,
    connect_websocket,
    connect_websocket_url,
    open_websocket,
    open_websocket_url,
    wrap_client_stream,
)

__all__ = [
    "ClientConnection",
    "CloseFrame",
    "CloseReason",
    "ConcurrencyError",
    "ConnectionClosed",
    "ConnectionClosedError",
    "ConnectionClosedOK",
    "ConnectionRejected",
    "ConnectionTimeout",
    "DisconnectionTimeout",
    "Endpoint",
    "HandshakeError",
    "InvalidHandshake",
    "InvalidStatus",
    "PongWaiter",
    "State",
    "WebSocketConnection",
    "connect",
    "connect_websocket",
    "connect_websocket_url",
    "open_websocket",
    "open_websocket_url",
    "process_exception",
    "unix_connect",
    "wrap_client_stream",
]
