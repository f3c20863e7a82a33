"""The HTTP API: clients, messages, transports, authentication and cookies."""

from __future__ import annotations

from webwire._retry import Retry
from webwire._transport.proxy import Proxy

from ._api import delete, get, head, options, patch, post, put, request
from ._asgi import ASGITransport
from ._auth import Auth, BasicAuth, DigestAuth, FunctionAuth, NetRCAuth
from ._client import USE_CLIENT_DEFAULT, AsyncClient, RequestContext, UseClientDefault
from ._cookies import Cookies
from ._models import Response
from ._request import Request
from ._sse import EventSource, ServerSentEvent, SyncEventSource
from ._sync_client import Client, StreamContext
from ._tracing import (
    TraceConfig,
    TraceConnectionCreateEndParams,
    TraceConnectionCreateStartParams,
    TraceConnectionQueuedEndParams,
    TraceConnectionQueuedStartParams,
    TraceConnectionReuseconnParams,
    TraceDnsCacheHitParams,
    TraceDnsCacheMissParams,
    TraceDnsResolveHostEndParams,
    TraceDnsResolveHostStartParams,
    TraceRequestChunkSentParams,
    TraceRequestEndParams,
    TraceRequestExceptionParams,
    TraceRequestRedirectParams,
    TraceRequestStartParams,
    TraceResponseChunkReceivedParams,
    TraceWSClosedParams,
    TraceWSConnectParams,
    TraceWSMessageReceivedParams,
    TraceWSMessageSentParams,
    TraceWSPingParams,
    TraceWSPongParams,
)
from ._transports import AsyncBaseTransport, HTTPTransport, MockTransport
from ._wsgi import WSGITransport

__all__ = [
    "USE_CLIENT_DEFAULT",
    "ASGITransport",
    "AsyncBaseTransport",
    "AsyncClient",
    "Auth",
    "BasicAuth",
    "Client",
    "Cookies",
    "DigestAuth",
    "EventSource",
    "FunctionAuth",
    "HTTPTransport",
    "MockTransport",
    "NetRCAuth",
    "Proxy",
    "Request",
    "RequestContext",
    "Response",
    "Retry",
    "ServerSentEvent",
    "StreamContext",
    "SyncEventSource",
    "TraceConfig",
    "TraceConnectionCreateEndParams",
    "TraceConnectionCreateStartParams",
    "TraceConnectionQueuedEndParams",
    "TraceConnectionQueuedStartParams",
    "TraceConnectionReuseconnParams",
    "TraceDnsCacheHitParams",
    "TraceDnsCacheMissParams",
    "TraceDnsResolveHostEndParams",
    "TraceDnsResolveHostStartParams",
    "TraceRequestChunkSentParams",
    "TraceRequestEndParams",
    "TraceRequestExceptionParams",
    "TraceRequestRedirectParams",
    "TraceRequestStartParams",
    "TraceResponseChunkReceivedParams",
    "TraceWSClosedParams",
    "TraceWSConnectParams",
    "TraceWSMessageReceivedParams",
    "TraceWSMessageSentParams",
    "TraceWSPingParams",
    "TraceWSPongParams",
    "UseClientDefault",
    "WSGITransport",
    "delete",
    "get",
    "head",
    "options",
    "patch",
    "post",
    "put",
    "request",
]
