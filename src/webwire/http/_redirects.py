"""Following redirects (RFC 9110 section 15.4): the next request of a hop.

Rules applied to build the request that follows a 3xx response:

* 301 and 302 turn ``POST`` into ``GET`` without body (as every browser
  does, RFC 9110 sections 15.4.2 and 15.4.3); other methods are kept.
* 303 turns every method but ``HEAD`` into ``GET``, and drops the body
  (section 15.4.4).
* 307 and 308 keep the method and the body (sections 15.4.8 and 15.4.9). A
  body produced by a one-shot iterator or file cannot be sent twice:
  :class:`~webwire.StreamConsumed` is raised instead of sending a truncated
  request.
* ``Location`` is resolved against the request URL (RFC 3986 section 5); the
  request's fragment is kept when ``Location`` has none (RFC 9110 section
  10.2.2).
* ``Authorization`` is dropped when the origin (scheme, host, port) changes,
  except for an upgrade from ``http`` to ``https`` on the same host and
  default ports. Cookies are computed again for the new URL from the jar;
  cookies given for one request only follow it while it stays on the
  origin it was sent to.
* A redirect from ``https`` to ``http`` is refused (it would expose the
  request on the network) unless the client allows insecure redirects.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from multidict import CIMultiDict
from yarl import URL

from webwire._exceptions import InvalidURL, StreamConsumed, UnsupportedProtocol

from ._request import Request
from ._urls import (
    _FORBIDDEN,
    _PARSER_ERRORS,
    DEFAULT_PORTS,
    host_header,
    is_https_upgrade,
    origin,
    parse_url,
    split_userinfo,
)

if TYPE_CHECKING:
    from ._cookies import Cookies
    from ._models import Response

__all__ = ["build_redirect_request", "redirect_method", "redirect_url"]

_BODY_HEADERS = ("Content-Length", "Content-Type", "Transfer-Encoding", "Content-Encoding")


def redirect_method(method: str, status_code: int) -> str:
    """The method of the request following a redirect of ``status_code``
    (RFC 9110 section 15.4)."""
    if status_code == 303 and method != "HEAD":
        return "GET"
    if status_code in (301, 302) and method == "POST":
        return "GET"
    return method


def redirect_url(request: Request, response: Response, *, allow_insecure: bool) -> URL:
    """The absolute URL a redirect response points to.

    Args:
        request: The request that got the redirect.
        response: The redirect, with a ``Location`` header.
        allow_insecure: Allow a redirect from ``https`` to ``http``.

    Returns:
        The URL, without userinfo.

    Raises:
        InvalidURL: ``Location`` cannot be parsed, holds a TAB, has no host
            or port 0, or it leads from ``https`` to ``http`` and that is not
            allowed.
        UnsupportedProtocol: ``Location`` has a scheme other than ``http``
            or ``https``.
    """
    location = response.headers["Location"]
    try:
        # Header values arrive as latin-1; servers often send raw UTF-8.
        location = location.encode("latin-1").decode("utf-8")
    except (UnicodeEncodeError, UnicodeDecodeError):
        pass
    location = location.strip()
    if _FORBIDDEN(location) is not None:
        raise InvalidURL(
            f"invalid redirect Location {location!r}: CR, LF or TAB in a URL", request=request
        )
    try:
        target = URL(location)
        url = request.url.join(target)
        scheme = target.scheme
    except _PARSER_ERRORS as exc:
        raise InvalidURL(f"invalid redirect Location {location!r}: {exc}", request=request) from exc
    if scheme and scheme not in DEFAULT_PORTS:
        raise UnsupportedProtocol(
            f"redirect to unsupported URL scheme {scheme!r}: {location!r}", request=request
        )
    try:
        url = parse_url(url)
        if not target.raw_fragment and request.url.raw_fragment:
            url = url.with_fragment(request.url.fragment)
        url, _ = split_userinfo(url)
        host_header(url)
    except InvalidURL as exc:
        exc.request = request
        raise
    except _PARSER_ERRORS as exc:
        raise InvalidURL(f"invalid redirect Location {location!r}: {exc}", request=request) from exc
    if request.url.scheme == "https" and url.scheme == "http" and not allow_insecure:
        raise InvalidURL(
            f"refusing to follow a redirect from https to http: {url}", request=request
        )
    return url


def build_redirect_request(
    request: Request,
    response: Response,
    *,
    cookies: Cookies,
    first: Request,
    allow_insecure: bool,
) -> Request:
    """Build the request that follows ``response``.

    Args:
        request: The request that got the redirect.
        response: The redirect response.
        cookies: The client's cookie jar (the ``Cookie`` header is computed
            again for the new URL).
        first: The first request of the chain; its per-request cookies are
            sent only to its own origin.
        allow_insecure: Allow a redirect from ``https`` to ``http``.

    Returns:
        The next request (same extensions: timeout and deadline).

    Raises:
        InvalidURL, UnsupportedProtocol: See :func:`redirect_url`.
        StreamConsumed: A 307/308 (or method-keeping 301/302) redirect would
            need a streamed body sent again, which is not possible.
    """
    url = redirect_url(request, response, allow_insecure=allow_insecure)
    status = response.status_code
    method = redirect_method(request.method, status)
    headers: CIMultiDict[str] = CIMultiDict(request.headers)
    if origin(url) != origin(request.url):
        if not is_https_upgrade(request.url, url):
            headers.popall("Authorization", None)
        headers["Host"] = host_header(url)
    body = request.stream
    if method != request.method or status == 303:
        body = None
        for name in _BODY_HEADERS:
            headers.popall(name, None)
    elif not request._replayable():
        raise StreamConsumed(
            f"cannot follow the {status} redirect to {url}: the request body came from a "
            f"one-shot stream and cannot be sent again (pass bytes or a re-iterable body)",
            request=request,
        )
    headers.popall("Cookie", None)
    new = Request._build(method, url, headers, body, [], dict(request.extensions))
    if body is request.stream:
        new._content = request._content
    extra = first._cookies if origin(url) == origin(first.url) else None
    new._cookies = extra
    cookies.set_cookie_header(new, extra)
    return new
