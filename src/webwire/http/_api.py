"""One-shot blocking helpers: ``webwire.get(url)`` and friends.

Each call opens a :class:`~webwire.Client`, sends one request (following
redirects), reads the response and closes the client and its connection.
Use a :class:`~webwire.Client` to reuse connections across requests.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from webwire._config import DEFAULT_TIMEOUT, Timeout

from ._sync_client import Client

if TYPE_CHECKING:
    from yarl import URL

    from webwire._transport.connect import CertTypes, VerifyTypes
    from webwire._transport.proxy import ProxyTypes

    from ._auth import AuthTypes
    from ._cookies import CookieTypes
    from ._models import Response
    from ._request import HeaderTypes, RequestContent
    from ._urls import QueryParams

__all__ = ["delete", "get", "head", "options", "patch", "post", "put", "request"]


def request(
    method: str,
    url: str | URL,
    *,
    params: QueryParams | None = None,
    content: RequestContent | None = None,
    data: Any = None,
    files: Any = None,
    json: Any = None,
    headers: HeaderTypes | None = None,
    cookies: CookieTypes | None = None,
    auth: AuthTypes | None = None,
    timeout: float | Timeout | None = DEFAULT_TIMEOUT,
    follow_redirects: bool = True,
    verify: VerifyTypes = True,
    cert: CertTypes = None,
    trust_env: bool = True,
    proxy: ProxyTypes | None = None,
) -> Response:
    """Send one request with a throw-away :class:`~webwire.Client`.

    Args:
        method: The method (``"GET"``, ``"POST"``, ...).
        url: Absolute ``http``/``https`` URL.
        params: Query parameters merged into the URL.
        content: Raw body: bytes, text (UTF-8) or an iterable of bytes.
        data: Form fields (or raw body).
        files: Files for a ``multipart/form-data`` body.
        json: A value sent as JSON (RFC 8259).
        headers: Header fields.
        cookies: Cookies to send.
        auth: ``(user, password)``, an :class:`~webwire.Auth` or a function.
        timeout: Time limits in seconds or a :class:`~webwire.Timeout`.
        follow_redirects: Follow redirects (RFC 9110 section 15.4).
        verify: TLS verification: ``True``, ``False``, a CA bundle path or an
            :class:`ssl.SSLContext`.
        cert: Client certificate.
        trust_env: Honour ``SSL_CERT_FILE``/``SSL_CERT_DIR``, ``.netrc``
            credentials and the proxy variables (``HTTP_PROXY``,
            ``HTTPS_PROXY``, ``ALL_PROXY``, ``NO_PROXY``).
        proxy: Send the request through this proxy (a URL or a
            :class:`~webwire.Proxy`; see :class:`~webwire.AsyncClient`).

    Returns:
        The response, body read.

    Raises:
        InvalidURL, UnsupportedProtocol: The URL cannot be requested.
        TransportError: The request could not be carried (timeouts too).
        TooManyRedirects: Too many redirects.
        ProxyError: The proxy refused or failed the request.
    """
    with Client(
        cookies=cookies,
        verify=verify,
        cert=cert,
        timeout=timeout,
        trust_env=trust_env,
        proxy=proxy,
    ) as client:
        return client.request(
            method,
            url,
            params=params,
            content=content,
            data=data,
            files=files,
            json=json,
            headers=headers,
            auth=auth,
            follow_redirects=follow_redirects,
        )


def get(url: str | URL, **kwargs: Any) -> Response:
    """``GET`` with :func:`request`'s arguments (no body)."""
    return request("GET", url, **kwargs)


def head(url: str | URL, **kwargs: Any) -> Response:
    """``HEAD`` with :func:`request`'s arguments (no body)."""
    return request("HEAD", url, **kwargs)


def options(url: str | URL, **kwargs: Any) -> Response:
    """``OPTIONS`` with :func:`request`'s arguments."""
    return request("OPTIONS", url, **kwargs)


def delete(url: str | URL, **kwargs: Any) -> Response:
    """``DELETE`` with :func:`request`'s arguments."""
    return request("DELETE", url, **kwargs)


def post(url: str | URL, **kwargs: Any) -> Response:
    """``POST`` with :func:`request`'s arguments."""
    return request("POST", url, **kwargs)


def put(url: str | URL, **kwargs: Any) -> Response:
    """``PUT`` with :func:`request`'s arguments."""
    return request("PUT", url, **kwargs)


def patch(url: str | URL, **kwargs: Any) -> Response:
    """``PATCH`` with :func:`request`'s arguments."""
    return request("PATCH", url, **kwargs)
