"""The HTTP API: clients, messages, transports, authentication and cookies."""

from __future__ import annotations

from ._api import delete, get, head, options, patch, post, put, request
from ._asgi import ASGITransport
from ._auth import Auth, BasicAuth, FunctionAuth
from ._client import USE_CLIENT_DEFAULT, AsyncClient, RequestContext, UseClientDefault
from ._cookies import Cookies
from ._models import Response
from ._request import Request
from ._sse import EventSource, ServerSentEvent, SyncEventSource
from ._sync_client import Client, StreamContext
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
    "EventSource",
    "FunctionAuth",
    "HTTPTransport",
    "MockTransport",
    "Request",
    "RequestContext",
    "Response",
    "ServerSentEvent",
    "StreamContext",
    "SyncEventSource",
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
