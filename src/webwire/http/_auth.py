"""Authentication (RFC 9110 section 11): the generator-based :class:`Auth`
protocol, HTTP Basic (RFC 7617) and plain functions.

An :meth:`Auth.auth_flow` is a plain generator, so one implementation serves
:class:`~webwire.AsyncClient` and :class:`~webwire.Client` alike: it yields
requests to send and receives each response back through ``send()``::

    class TokenAuth(webwire.Auth):
        def auth_flow(self, request):
            response = yield request                  # first try
            if response.status_code == 401:           # challenged
                request.headers["Authorization"] = fetch_token(response)
                yield request                         # try again
"""

from __future__ import annotations

import base64
from collections.abc import Callable, Generator
from typing import TYPE_CHECKING, Union

from webwire._exceptions import LocalProtocolError

if TYPE_CHECKING:
    from ._models import Response
    from ._request import Request

__all__ = ["Auth", "AuthTypes", "BasicAuth", "FunctionAuth", "build_auth"]


class Auth:
    """Base class of authentication schemes.

    Attributes:
        requires_request_body: The client reads a streamed request body into
            memory before starting the flow (for schemes hashing the body).
        requires_response_body: The client reads each response body before
            sending it back into the flow (for schemes reading challenges
            from the body).
    """

    requires_request_body = False
    requires_response_body = False

    def auth_flow(self, request: Request) -> Generator[Request, Response, None]:
        """Authenticate ``request``.

        Args:
            request: The request to send; it may be modified in place.

        Yields:
            Each request to send; the client sends it and resumes the
            generator with the response (``response = yield request``). The
            response to the last request yielded is the one returned.
            Intermediate responses are read, released and put in
            ``history``.
        """
        yield request


class BasicAuth(Auth):
    """HTTP Basic authentication (RFC 7617): ``Authorization: Basic
    base64(user-id ":" password)`` on every request.

    Args:
        username: The user-id; it may not contain ``:`` (RFC 7617 section 2).
        password: The password.
        encoding: Encoding of ``str`` credentials: ``"utf-8"`` (the one RFC
            7617 section 2.1 lets a server ask for with ``charset="UTF-8"``)
            by default; ``"latin-1"`` for servers that expect it. ``bytes``
            credentials are sent as given.

    Raises:
        LocalProtocolError: ``username`` contains ``:``.
        UnicodeEncodeError: A credential cannot be encoded in ``encoding``.
    """

    def __init__(
        self, username: str | bytes, password: str | bytes, *, encoding: str = "utf-8"
    ) -> None:
        user = username.encode(encoding) if isinstance(username, str) else username
        secret = password.encode(encoding) if isinstance(password, str) else password
        if b":" in user:
            raise LocalProtocolError("a Basic auth user-id cannot contain ':' (RFC 7617 section 2)")
        token = base64.b64encode(user + b":" + secret).decode("ascii")
        self._header = f"Basic {token}"

    def auth_flow(self, request: Request) -> Generator[Request, Response, None]:
        """Set the ``Authorization`` header and send the request once."""
        request.headers["Authorization"] = self._header
        yield request

    def __repr__(self) -> str:
        return "<BasicAuth [credentials hidden]>"


class FunctionAuth(Auth):
    """Authentication by a function that edits or replaces the request.

    Args:
        func: Called with each request before it is sent; returns the
            request to send (often the same object, headers updated).
    """

    def __init__(self, func: Callable[[Request], Request]) -> None:
        self._func = func

    def auth_flow(self, request: Request) -> Generator[Request, Response, None]:
        """Send ``func(request)`` once."""
        yield self._func(request)


AuthTypes = Union[  # noqa: UP007
    Auth,
    tuple[Union[str, bytes], Union[str, bytes]],  # noqa: UP007
    Callable[["Request"], "Request"],
]


def build_auth(auth: AuthTypes | None) -> Auth | None:
    """Turn the ``auth=`` argument into an :class:`Auth`.

    Args:
        auth: An :class:`Auth`, a ``(username, password)`` tuple (Basic), a
            function of a request (:class:`FunctionAuth`), or ``None``.

    Returns:
        The :class:`Auth`, or ``None``.

    Raises:
        TypeError: ``auth`` is none of these.
    """
    if auth is None or isinstance(auth, Auth):
        return auth
    if isinstance(auth, tuple):
        if len(auth) != 2:
            raise TypeError("auth=(username, password) needs exactly two items")
        return BasicAuth(auth[0], auth[1])
    if callable(auth):
        return FunctionAuth(auth)
    raise TypeError(f"auth must be an Auth, a (user, password) tuple or a callable, not {auth!r}")
