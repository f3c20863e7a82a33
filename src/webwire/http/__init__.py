"""The HTTP API: clients, messages, transports, authentication and cookies."""

from __future__ import annotations

from webwire._transport.proxy import Proxy

from ._api import delete, get, head, options, patch, post, put, request
from ._auth import Auth, BasicAuth, FunctionAuth
from ._client import USE_CLIENT_DEFAULT, AsyncClient, RequestContext, UseClientDefault
from ._cookies import Cookies
from ._models import Response
from ._request import Request
from ._sync_client import Client, StreamContext
from ._transports import AsyncBaseTransport, HTTPTransport, MockTransport

__all__ = [
    "USE_CLIENT_DEFAULT",
    "AsyncBaseTransport",
    "AsyncClient",
    "Auth",
    "BasicAuth",
    "Client",
    "Cookies",
    "FunctionAuth",
    "HTTPTransport",
    "MockTransport",
    "Proxy",
    "Request",
    "RequestContext",
    "Response",
    "StreamContext",
    "UseClientDefault",
    "delete",
    "get",
    "head",
    "options",
    "patch",
    "post",
    "put",
    "request",
]
