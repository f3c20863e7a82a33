"""HTTP requests (RFC 9110 section 9): :class:`Request`, and the part of
method and header-field validation that needs the user's ``str`` types.

The rules themselves (tokens, forbidden characters) live in one place,
:mod:`webwire._proto._fields`, shared with every HTTP version driver; this
module turns ``str`` and ``bytes`` input into ``str`` fields that are sent
as latin-1 (RFC 9110 section 5.5) and checks those bytes with it, so a bad
field is refused when the request is built. Body framing (``Content-Length``
or chunked coding) is the version driver's job: no ``Transfer-Encoding`` is
added here."""

from __future__ import annotations

from collections.abc import AsyncIterable, Iterable, Mapping, Sequence
from typing import TYPE_CHECKING, Any, Union

from multidict import CIMultiDict, CIMultiDictProxy
from yarl import URL

from webwire._exceptions import LocalProtocolError, StreamError
from webwire._proto import _fields
from webwire._sync import run_sync

from ._urls import (
    QueryParams,
    host_header,
    merge_params,
    normalize_params,
    parse_url,
    split_userinfo,
)

if TYPE_CHECKING:
    from ._cookies import Cookies, CookieTypes

__all__ = [
    "Body",
    "HeaderTypes",
    "Request",
    "RequestContent",
    "check_method",
    "header_str",
    "split_removals",
    "validate_headers",
]

HeaderTypes = Union[
    Mapping[str, str],
    Mapping[bytes, bytes],
    Sequence[tuple[str, str]],
    Sequence[tuple[bytes, bytes]],
    "CIMultiDict[str]",
    "CIMultiDictProxy[str]",
]
RequestContent = Union[str, bytes, Iterable[bytes], AsyncIterable[bytes]]  # noqa: UP007
Body = Union[bytes, AsyncIterable[bytes], None]  # noqa: UP007

_BODY_METHODS = frozenset({"POST", "PUT", "PATCH"})


def header_str(item: str | bytes, what: str) -> str:
    """A header name or value as ``str`` (bytes are read as latin-1)."""
    if isinstance(item, str):
        return item
    if isinstance(item, (bytes, bytearray)):
        return bytes(item).decode("latin-1")
    raise TypeError(f"header {what}s must be str or bytes, not {type(item).__name__}")


def _latin1(text: str, what: str) -> bytes:
    """``text`` as the latin-1 bytes it is sent as (RFC 9110 section 5.5).

    Raises:
        LocalProtocolError: ``text`` holds a character outside latin-1.
    """
    try:
        return text.encode("latin-1")
    except UnicodeEncodeError as exc:
        raise LocalProtocolError(
            f"invalid {what} {text!r}: it holds a character outside latin-1 "
            "(RFC 9110 section 5.5); encode it first"
        ) from exc


def validate_headers(headers: HeaderTypes) -> list[tuple[str, str]]:
    """Check header fields and return them as ``(name, value)`` strings.

    The latin-1 bytes the fields are sent as are checked by
    :func:`webwire._proto._fields.check_fields`.

    Args:
        headers: A mapping or a sequence of pairs; names and values are
            ``str`` or ``bytes`` (bytes are read as latin-1).

    Returns:
        The fields, in order.

    Raises:
        LocalProtocolError: A name is not an RFC 9110 token (section 5.6.2),
            or a value holds CR, LF, NUL or another control character but
            HTAB (section 5.5), or a character outside latin-1; such fields
            could split or smuggle requests.
        TypeError: A name or value is neither ``str`` nor ``bytes``.
    """
    pairs: Iterable[tuple[Any, Any]]
    pairs = headers.items() if isinstance(headers, Mapping) else headers
    result = [
        (
            name if type(name) is str else header_str(name, "name"),
            value if type(value) is str else header_str(value, "value"),
        )
        for name, value in pairs
    ]
    try:
        encoded = [(name.encode("latin-1"), value.encode("latin-1")) for name, value in result]
    except UnicodeEncodeError:
        for name, value in result:
            _latin1(name, "header name")
            _latin1(value, f"value for header {name!r}")
        raise
    _fields.check_fields(encoded)
    return result


def split_removals(headers: Any) -> tuple[Any, tuple[str, ...]]:
    """Separate header fields whose value is ``None`` (meaning "remove this
    field", such as a default ``User-Agent``) from the others.

    Args:
        headers: A mapping or a sequence of ``(name, value)`` pairs.

    Returns:
        The fields to send (``headers`` itself when none is ``None``) and
        the names of the fields to remove.
    """
    if isinstance(headers, Mapping):
        if None not in headers.values():
            return headers, ()
        pairs: list[tuple[Any, Any]] = list(headers.items())
    else:
        pairs = list(headers)
        if all(value is not None for _, value in pairs):
            return pairs, ()
    removed = tuple(header_str(name, "name") for name, value in pairs if value is None)
    return [(name, value) for name, value in pairs if value is not None], removed


def _length_checked(body: AsyncIterable[bytes], declared: str) -> AsyncIterable[bytes]:
    """A streamed body held to its declared ``Content-Length``.

    Raises:
        LocalProtocolError: ``declared`` is not 1*DIGIT (RFC 9110 section
            8.6).
    """
    from ._content import LengthCheckedBody

    if isinstance(body, LengthCheckedBody):
        body = body._body
    value = declared.strip()
    if not (value.isascii() and value.isdigit()):
        raise LocalProtocolError(f"invalid Content-Length {declared!r} (RFC 9110 section 8.6)")
    return LengthCheckedBody(body, int(value))


def check_method(method: str | bytes) -> str:
    """Upper-case a request method and check it is an RFC 9110 token
    (section 9.1) with :func:`webwire._proto._fields.check_method`.

    Raises:
        LocalProtocolError: The method holds characters a token cannot.
    """
    name = header_str(method, "method").upper()
    _fields.check_method(_latin1(name, "request method"))
    return name


def encode_body(
    content: RequestContent | None,
    data: Any,
    files: Any,
    json: Any,
) -> tuple[list[tuple[str, str]], Body]:
    """Encode a request body with :func:`webwire.http._content.encode_request`.

    Returns:
        The headers it needs (``Content-Type``, ``Content-Length``, ...) and
        the body: bytes, an async iterable of bytes, or ``None``; ``([],
        None)`` when no body is given.
    """
    if content is None and data is None and files is None and json is None:
        return [], None
    from ._content import encode_request

    return encode_request(content=content, data=data, files=files, json=json)


class Request:
    """An HTTP request (RFC 9110 section 9).

    Args:
        method: The method, such as ``"GET"`` (upper-cased).
        url: An absolute ``http``/``https`` URL; ``user:password@`` in it is
            removed and used as Basic credentials by the client.
        params: Query parameters merged into the URL's query (a name already
            present is replaced).
        headers: Header fields; ``Host`` is added from the URL when absent.
        cookies: Cookies to send, as a ``Cookie`` header for this URL.
        content: Body as bytes, text (UTF-8) or an (async) iterable of bytes.
        data: Form fields (``application/x-www-form-urlencoded``, or
            multipart with ``files``).
        files: Files to upload as ``multipart/form-data``.
        json: A value sent as JSON (RFC 8259).
        extensions: Extra per-request details for the transport (the client
            puts ``"timeout"`` and ``"deadline"`` there).

    Attributes:
        method: The method (``str``).
        url: The URL (:class:`yarl.URL`), without userinfo.
        headers: The header fields (:class:`multidict.CIMultiDict`).
        extensions: The extensions dictionary.

    Raises:
        InvalidURL: The URL is invalid.
        UnsupportedProtocol: The URL scheme is not ``http``/``https``.
        LocalProtocolError: The method or a header holds forbidden characters.
    """

    __slots__ = (
        "_body",
        "_content",
        "_cookies",
        "_url_auth",
        "extensions",
        "headers",
        "method",
        "url",
    )

    method: str
    url: URL
    headers: CIMultiDict[str]
    extensions: dict[str, Any]
    _body: Body
    _content: bytes | None
    _cookies: Cookies | None
    _url_auth: tuple[str, str] | None

    def __init__(
        self,
        method: str | bytes,
        url: str | URL,
        *,
        params: QueryParams | None = None,
        headers: HeaderTypes | None = None,
        cookies: CookieTypes | None = None,
        content: RequestContent | None = None,
        data: Any = None,
        files: Any = None,
        json: Any = None,
        extensions: dict[str, Any] | None = None,
    ) -> None:
        parsed = parse_url(url)
        if params is not None:
            parsed = merge_params(parsed, normalize_params(params))
        parsed, url_auth = split_userinfo(parsed)
        fields = validate_headers(split_removals(headers)[0]) if headers is not None else []
        merged: CIMultiDict[str] = CIMultiDict(fields)
        if "Host" not in merged:
            merged = CIMultiDict([("Host", host_header(parsed))])
            merged.extend(fields)
        body_headers, body = encode_body(content, data, files, json)
        self._init(
            check_method(method), parsed, merged, body, body_headers, extensions or {}, url_auth
        )
        if cookies is not None:
            from ._cookies import Cookies

            self._cookies = cookies if isinstance(cookies, Cookies) else Cookies(cookies)
            self._cookies.set_cookie_header(self)

    def _init(
        self,
        method: str,
        url: URL,
        headers: CIMultiDict[str],
        body: Body,
        body_headers: list[tuple[str, str]],
        extensions: dict[str, Any],
        url_auth: tuple[str, str] | None = None,
    ) -> None:
        self.method = method
        self.url = url
        self.headers = headers
        self.extensions = extensions
        self._body = body
        self._content = body if isinstance(body, bytes) else (b"" if body is None else None)
        self._cookies = None
        self._url_auth = url_auth
        for name, value in body_headers:
            if name not in headers:
                # Framing by chunked coding is left to the HTTP/1.1 driver.
                if name.lower() != "transfer-encoding":
                    headers[name] = value
            elif name == "Content-Length" and headers[name].strip() != value:
                raise LocalProtocolError(
                    f"the Content-Length header says {headers[name]!r} but the body is "
                    f"{value} bytes (RFC 9110 section 8.6)"
                )
        if body is not None and not isinstance(body, bytes) and "Content-Length" in headers:
            self._body = _length_checked(body, headers["Content-Length"])
        if (
            body is None
            and method in _BODY_METHODS
            and "Content-Length" not in headers
            and "Transfer-Encoding" not in headers
        ):
            # RFC 9110 section 8.6: announce the empty body of POST/PUT/PATCH.
            headers["Content-Length"] = "0"

    @classmethod
    def _build(
        cls,
        method: str,
        url: URL,
        headers: CIMultiDict[str],
        body: Body,
        body_headers: list[tuple[str, str]],
        extensions: dict[str, Any],
        url_auth: tuple[str, str] | None = None,
    ) -> Request:
        """Make a request from parts already validated (client and redirects)."""
        request = cls.__new__(cls)
        request._init(method, url, headers, body, body_headers, extensions, url_auth)
        return request

    @property
    def stream(self) -> Body:
        """The body as a transport sends it: bytes, an async iterable of
        bytes (sent as it is produced), or ``None`` for no body."""
        return self._body

    def _replayable(self) -> bool:
        """Whether the body can be sent again (after a 307/308 redirect)."""
        body = self._body
        return body is None or isinstance(body, bytes) or bool(getattr(body, "replayable", False))

    async def _aread_keep_body(self) -> bytes:
        """Read the body into ``content`` without replacing the body object
        (a transport that consumes it, like a network one)."""
        if self._content is None:
            body = self._body
            assert body is not None and not isinstance(body, bytes)
            self._content = b"".join([chunk async for chunk in body])
        return self._content

    @property
    def content(self) -> bytes:
        """The body bytes.

        Raises:
            StreamError: The body is a stream that was not read with
                :meth:`aread`/:meth:`read`.
        """
        if self._content is None:
            raise StreamError("the request body is a stream: call aread() or read() first")
        return self._content

    async def aread(self) -> bytes:
        """Read a streamed body into memory (the body then is those bytes).

        Returns:
            The body bytes.
        """
        if self._content is not None:
            return self._content
        content = await self._aread_keep_body()
        self._body = content
        return content

    def read(self) -> bytes:
        """Blocking :meth:`aread` (for bodies whose iteration never waits).

        Returns:
            The body bytes.
        """
        if self._content is not None:
            return self._content
        return run_sync(self.aread())

    def __repr__(self) -> str:
        return f"<Request({self.method!r}, {str(self.url)!r})>"
