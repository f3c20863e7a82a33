"""WebTransport over HTTP/3 (draft-ietf-webtrans-http3): the client
package.

:class:`WebTransportClient` establishes sessions; on top of it
:class:`ReconnectingClient` keeps one session open, :class:`ClientPool`
spreads sessions over several clients, :class:`PooledClient` reuses
sessions, :class:`WebTransportProxy` opens tunnels through a proxy,
:class:`WebTransportBrowser` keeps a navigation history and
:class:`ClientMonitor` watches a client's statistics. The blocking API
with the same names is :mod:`webwire.webtransport.sync`.

Underneath, :func:`open_session` (or ``AsyncClient.webtransport`` /
``Client.webtransport``) establishes a :class:`WebTransportSession`:
bidirectional and unidirectional streams and datagrams. Errors are
:class:`WebTransportError` subclasses: :class:`SessionClosed`,
:class:`StreamReset`, :class:`DatagramTooLarge`.
"""

from __future__ import annotations

from webwire._exceptions import (
    ClientError,
    ConfigurationError,
    DatagramTooLarge,
    SessionClosed,
    StreamReset,
    WebTransportError,
)

from ._browser import WebTransportBrowser
from ._client import WebTransportClient
from ._config import ClientConfig
from ._connect import open_session
from ._monitor import ClientMonitor
from ._pool import ClientPool, PooledClient
from ._proxy import WebTransportProxy
from ._reconnecting import ReconnectingClient
from ._session import (
    SessionState,
    SyncWebTransportSession,
    WebTransportDatagrams,
    WebTransportSession,
)
from ._stats import ClientStats
from ._stream import WebTransportReceiveStream, WebTransportSendStream, WebTransportStream
from ._utils import (
    benchmark_client_performance,
    parse_webtransport_url,
    test_client_connectivity,
    validate_url,
)

__all__ = [
    "ClientConfig",
    "ClientError",
    "ClientMonitor",
    "ClientPool",
    "ClientStats",
    "ConfigurationError",
    "DatagramTooLarge",
    "PooledClient",
    "ReconnectingClient",
    "SessionClosed",
    "SessionState",
    "StreamReset",
    "SyncWebTransportSession",
    "WebTransportBrowser",
    "WebTransportClient",
    "WebTransportDatagrams",
    "WebTransportError",
    "WebTransportProxy",
    "WebTransportReceiveStream",
    "WebTransportSendStream",
    "WebTransportSession",
    "WebTransportStream",
    "benchmark_client_performance",
    "open_session",
    "parse_webtransport_url",
    "test_client_connectivity",
    "validate_url",
]
