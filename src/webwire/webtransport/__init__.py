"""WebTransport over HTTP/3 (draft-ietf-webtrans-http3): sessions with
bidirectional and unidirectional streams and datagrams.

:func:`open_session` (or ``AsyncClient.webtransport`` /
``Client.webtransport``) establishes a :class:`WebTransportSession`.
Errors are :class:`WebTransportError` subclasses: :class:`SessionClosed`,
:class:`StreamReset`, :class:`DatagramTooLarge`.
"""

from __future__ import annotations

from webwire._exceptions import DatagramTooLarge, SessionClosed, StreamReset, WebTransportError

from ._connect import open_session
from ._session import (
    SessionState,
    SyncWebTransportSession,
    WebTransportDatagrams,
    WebTransportSession,
)
from ._stream import WebTransportReceiveStream, WebTransportSendStream, WebTransportStream

__all__ = [
    "DatagramTooLarge",
    "SessionClosed",
    "SessionState",
    "StreamReset",
    "SyncWebTransportSession",
    "WebTransportDatagrams",
    "WebTransportError",
    "WebTransportReceiveStream",
    "WebTransportSendStream",
    "WebTransportSession",
    "WebTransportStream",
    "open_session",
]
