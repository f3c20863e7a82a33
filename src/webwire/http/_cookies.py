"""Cookies (RFC 6265) kept in a :class:`http.cookiejar.CookieJar`.

The jar applies the domain, path, ``Secure`` and expiry rules; the adapters
here present webwire's :class:`~webwire.Request` and
:class:`~webwire.Response` to it the way :mod:`urllib.request` objects are.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, MutableMapping, Sequence
from contextlib import AbstractContextManager, nullcontext
from http.cookiejar import Cookie, CookieJar
from typing import TYPE_CHECKING, Any, Union

from yarl import URL

if TYPE_CHECKING:
    from ._models import Response
    from ._request import Request

__all__ = ["CookieTypes", "Cookies", "bind_cookies", "cookie_domain"]

CookieTypes = Union["Cookies", CookieJar, Mapping[str, str], Sequence[tuple[str, str]]]


class _RequestAdapter:
    """A :class:`Request` seen as a :class:`urllib.request.Request` by
    :class:`~http.cookiejar.CookieJar`."""

    unverifiable = False

    def __init__(self, request: Request) -> None:
        self._request = request
        url = request.url
        self.type = url.scheme
        self.host = request.headers.get("Host") or url.host_port_subcomponent or ""
        self.origin_req_host = url.raw_host or ""
        self.cookie_header: str | None = None

    def get_full_url(self) -> str:
        return str(self._request.url)

    def get_host(self) -> str:
        return self.host

    def has_header(self, name: str) -> bool:
        return name in self._request.headers

    def get_header(self, name: str, default: str | None = None) -> str | None:
        return self._request.headers.get(name, default)

    def add_unredirected_header(self, name: str, value: str) -> None:
        self.cookie_header = value


class _HeadersAdapter:
    """The ``info()`` of a response, as :class:`~http.cookiejar.CookieJar`
    reads it."""

    def __init__(self, response: Response) -> None:
        self._headers = response.headers

    def get_all(self, name: str, default: list[str]) -> list[str]:
        return self._headers.getall(name, default)


class _ResponseAdapter:
    def __init__(self, response: Response) -> None:
        self._info = _HeadersAdapter(response)

    def info(self) -> _HeadersAdapter:
        return self._info


def _make_cookie(name: str, value: str, domain: str, path: str) -> Cookie:
    return Cookie(
        version=0,
        name=name,
        value=value,
        port=None,
        port_specified=False,
        domain=domain,
        domain_specified=bool(domain),
        domain_initial_dot=domain.startswith("."),
        path=path,
        path_specified=bool(path),
        secure=False,
        expires=None,
        discard=True,
        comment=None,
        comment_url=None,
        rest={"HttpOnly": ""},
        rfc2109=False,
    )


class Cookies(MutableMapping[str, str]):
    """A cookie store with a mapping interface (name -> value).

    ``Cookies({"session": "abc"})`` holds cookies without a domain; given
    to a client, they are bound to one host (see
    :class:`~webwire.AsyncClient`), and given to one request, they are sent
    with that request only. ``Cookies().set(name, value, domain=host)``
    binds a cookie to ``host``. Cookies from ``Set-Cookie`` fields keep the
    domain, path, ``Secure`` flag and expiry of RFC 6265 and are only sent
    where they apply. A ``Set-Cookie`` field without ``=`` (``flag``) is
    kept with the value ``""`` and sent back as ``flag``.

    It is thread-safe: every access to the jar, iteration included, holds
    the lock of :class:`http.cookiejar.CookieJar`.

    Args:
        cookies: Initial cookies: a mapping or pairs of name and value,
            another :class:`Cookies` or a :class:`~http.cookiejar.CookieJar`
            (shared, not copied).
    """

    def __init__(self, cookies: CookieTypes | None = None) -> None:
        if isinstance(cookies, CookieJar):
            self.jar = cookies
            return
        self.jar = CookieJar()
        if isinstance(cookies, Cookies):
            for cookie in cookies._cookies():
                self.jar.set_cookie(cookie)
        elif cookies is not None:
            self.update(cookies)

    def _lock(self) -> AbstractContextManager[Any]:
        lock = getattr(self.jar, "_cookies_lock", None)
        return nullcontext() if lock is None else lock  # type: ignore[no-any-return]

    def _cookies(self) -> list[Cookie]:
        """The cookies, copied under the jar's lock (iterating a jar while
        another thread removes a cookie raises KeyError)."""
        with self._lock():
            return list(self.jar)

    @property
    def jar_is_empty(self) -> bool:
        """Whether the jar holds no cookie at all."""
        stored = getattr(self.jar, "_cookies", None)
        if stored is not None and not stored:
            return True
        with self._lock():
            return next(iter(self.jar), None) is None

    def set(self, name: str, value: str, domain: str = "", path: str = "/") -> None:
        """Store a cookie.

        Args:
            name: Cookie name.
            value: Cookie value.
            domain: Domain it is sent to (``""``: none; such cookies go with
                the one request they are given to, or are bound to a host
                when given to a client).
            path: Path prefix it is sent to.
        """
        self.jar.set_cookie(_make_cookie(name, value, domain, path))

    def get(  # type: ignore[override]
        self,
        name: str,
        default: str | None = None,
        domain: str | None = None,
        path: str | None = None,
    ) -> str | None:
        """The value of the first cookie named ``name`` (optionally of that
        domain and path), or ``default``."""
        for cookie in self._cookies():
            if (
                cookie.name == name
                and (domain is None or cookie.domain == domain)
                and (path is None or cookie.path == path)
            ):
                return cookie.value if cookie.value is not None else ""
        return default

    def delete(self, name: str, domain: str | None = None, path: str | None = None) -> None:
        """Remove every cookie named ``name`` (optionally only of that domain
        and path)."""
        doomed = [
            cookie
            for cookie in self._cookies()
            if cookie.name == name
            and (domain is None or cookie.domain == domain)
            and (path is None or cookie.path == path)
        ]
        # CookieJar.clear does not take the jar's lock itself.
        with self._lock():
            for cookie in doomed:
                try:
                    self.jar.clear(cookie.domain, cookie.path, cookie.name)
                except KeyError:  # removed meanwhile by another thread
                    pass

    def clear(self, domain: str | None = None, path: str | None = None) -> None:
        """Remove all cookies, or those of ``domain`` (and ``path``)."""
        with self._lock():  # CookieJar.clear does not take it itself
            try:
                if domain is None:
                    self.jar.clear()
                else:
                    self.jar.clear(domain, path)
            except KeyError:  # nothing stored for that domain or path
                pass

    def update(self, cookies: CookieTypes | None = None, /, **kwargs: str) -> None:  # type: ignore[override]
        """Add cookies (a mapping, pairs, :class:`Cookies` or a jar)."""
        if isinstance(cookies, (Cookies, CookieJar)):
            source = cookies if isinstance(cookies, Cookies) else Cookies(cookies)
            for cookie in source._cookies():
                self.jar.set_cookie(cookie)
        elif cookies is not None:
            pairs = cookies.items() if isinstance(cookies, Mapping) else cookies
            for name, value in pairs:
                self.set(name, value)
        for name, value in kwargs.items():
            self.set(name, value)

    def __getitem__(self, name: str) -> str:
        value = self.get(name)
        if value is None:
            raise KeyError(name)
        return value

    def __setitem__(self, name: str, value: str) -> None:
        self.set(name, value)

    def __delitem__(self, name: str) -> None:
        if self.get(name) is None:
            raise KeyError(name)
        self.delete(name)

    def __len__(self) -> int:
        with self._lock():
            return len(self.jar)

    def __iter__(self) -> Iterator[str]:
        return iter([cookie.name for cookie in self._cookies()])

    def __bool__(self) -> bool:
        return not self.jar_is_empty

    def __repr__(self) -> str:
        inner = ", ".join(
            f"<Cookie {cookie.name}={cookie.value or ''} for {cookie.domain or '*'}{cookie.path}>"
            for cookie in self._cookies()
        )
        return f"<Cookies[{inner}]>"

    def extract_cookies(self, response: Response) -> None:
        """Store the cookies of the ``Set-Cookie`` fields of ``response``
        (RFC 6265 section 5.2), judged against its request's URL.

        Args:
            response: A response with its request set.
        """
        if "Set-Cookie" not in response.headers and "Set-Cookie2" not in response.headers:
            return
        self.jar.extract_cookies(
            _ResponseAdapter(response),  # type: ignore[arg-type]
            _RequestAdapter(response.request),  # type: ignore[arg-type]
        )

    def cookie_header(self, request: Request, extra: Cookies | None = None) -> str | None:
        """The ``Cookie`` value for ``request`` (RFC 6265 section 5.4).

        Args:
            request: The request (its URL decides which cookies apply).
            extra: Cookies for this request only; they replace stored
                cookies of the same name.

        Returns:
            The header value, or ``None`` when no cookie applies.
        """
        jar = self.jar
        if extra is not None and not extra.jar_is_empty:
            added = extra._cookies()
            names = {cookie.name for cookie in added}
            jar = CookieJar(self.jar._policy)  # type: ignore[attr-defined]
            for cookie in self._cookies():
                if cookie.name not in names:
                    jar.set_cookie(cookie)
            for cookie in added:
                jar.set_cookie(cookie)
        elif self.jar_is_empty:
            return None
        adapter = _RequestAdapter(request)
        jar.add_cookie_header(adapter)  # type: ignore[arg-type]
        return adapter.cookie_header

    def set_cookie_header(self, request: Request, extra: Cookies | None = None) -> None:
        """Add a ``Cookie`` header to ``request`` from the stored cookies that
        apply to its URL, unless it already has one.

        Args:
            request: The request to update.
            extra: Cookies for this request only (see :meth:`cookie_header`).
        """
        if "Cookie" in request.headers:
            return
        value = self.cookie_header(request, extra)
        if value:
            request.headers["Cookie"] = value


def cookie_domain(url: URL) -> str:
    """The domain :class:`~http.cookiejar.CookieJar` files host-only
    cookies of ``url`` under (its effective host: ``.local`` is added to a
    name without a dot, RFC 2965 section 1)."""
    host = (url.raw_host or "").lower()
    if ":" in host:  # IPv6 literal, as the jar sees it in the URL
        host = f"[{host}]"
    return host if "." in host else host + ".local"


def bind_cookies(cookies: CookieTypes | None, url: URL | None) -> tuple[Cookies, Cookies | None]:
    """Bind the domain-less cookies of ``cookies`` to the host of ``url``.

    Args:
        cookies: Cookies given to a client.
        url: The URL whose host they belong to, or ``None`` when not yet
            known.

    Returns:
        The jar to use, and the domain-less cookies still to bind (``None``
        when there are none or ``url`` was given). A
        :class:`~http.cookiejar.CookieJar` is used as given (shared).
    """
    if isinstance(cookies, CookieJar):
        return Cookies(cookies), None
    given = cookies if isinstance(cookies, Cookies) else Cookies(cookies)
    bound = Cookies()
    unbound = Cookies()
    domain = None if url is None else cookie_domain(url)
    for cookie in given._cookies():
        if cookie.domain:
            bound.jar.set_cookie(cookie)
        elif domain is None:
            unbound.jar.set_cookie(cookie)
        else:
            bound.jar.set_cookie(
                Cookie(
                    version=cookie.version,
                    name=cookie.name,
                    value=cookie.value,
                    port=None,
                    port_specified=False,
                    domain=domain,
                    domain_specified=False,
                    domain_initial_dot=False,
                    path=cookie.path,
                    path_specified=cookie.path_specified,
                    secure=cookie.secure,
                    expires=cookie.expires,
                    discard=cookie.discard,
                    comment=None,
                    comment_url=None,
                    rest={"HttpOnly": ""},
                    rfc2109=False,
                )
            )
    return bound, (unbound if not unbound.jar_is_empty else None)
