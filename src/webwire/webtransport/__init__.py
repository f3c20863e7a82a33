"""WebTransport over HTTP/3 (draft-ietf-webtrans-http3): the client
package.

:class:`WebTransportClient` establishes sessions; on top of it
:class:`ReconnectingClient` keeps one session open, :class:`ClientPool`
spreads sessions over several clients, :class:`PooledClient` reuses
sessions, :class:`WebTransportProxy` opens tunnels through a proxy,
:class:`WebTransportBrowser` keeps a navigation history and
:class:`ClientMonitor` watches a client's statistics. The blocking API
with the same names is :mod:`webwire.webtransport.sync`.
"""

from __future__ import annotations

from ._browser import WebTransportBrowser
from ._client import WebTransportClient
from ._config import ClientConfig
from ._errors import ClientError, ConfigurationError
from ._monitor import ClientMonitor
from ._pool import ClientPool, PooledClient
from ._proxy import WebTransportProxy
from ._reconnecting import ReconnectingClient
from ._stats import ClientStats
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
    "PooledClient",
    "ReconnectingClient",
    "WebTransportBrowser",
    "WebTransportClient",
    "WebTransportProxy",
    "benchmark_client_performance",
    "parse_webtransport_url",
    "test_client_connectivity",
    "validate_url",
]
