"""HTTP responses (RFC 9110 section 15): :class:`Response` (and
:class:`Request`, re-exported from ``_request``).

A :class:`Response` made by :class:`~webwire.AsyncClient` is read with the
``a``-prefixed coroutines (``aread``, ``aiter_bytes``, ``aclose``); one made
by the blocking :class:`~webwire.Client` with the plain methods (``read``,
``iter_bytes``, ``close``), which drive the very same coroutines with
:func:`webwire._sync.run_sync`. Using the other family on a body that still
has to be read raises :class:`RuntimeError`.
"""

from __future__ import annotations

import datetime
import json as jsonlib
from collections.abc import (
    AsyncIterable,
    AsyncIterator,
    Callable,
    Iterable,
    Iterator,
    Mapping,
)
from http import HTTPStatus
from typing import TYPE_CHECKING, Any, TypeVar, Union

from multidict import CIMultiDict, CIMultiDictProxy
from yarl import URL

from webwire._exceptions import (
    DecodingError,
    HTTPStatusError,
    ResponseTooLarge,
    StreamClosed,
    StreamConsumed,
    WebwireError,
)
from webwire._sync import run_sync

from ._decoders import make_decoder
from ._links import parse_links
from ._request import HeaderTypes, Request, RequestContent, header_str
from ._response_body import _ResponseBody
from ._streams import (
    BodyIterator,
    BytesStream,
    IterStream,
    SyncBodyIterator,
    chunker,
    line_splitter,
    text_decoder,
)

if TYPE_CHECKING:
    from ._client import AsyncClient
    from ._cookies import Cookies

__all__ = ["DefaultEncoding", "HeaderTypes", "Headers", "Request", "RequestContent", "Response"]

DefaultEncoding = Union[str, Callable[[bytes], Union[str, None]], None]  # noqa: UP007
"""A codec name, or a function choosing one from body bytes (``None``: no
choice), or ``None`` for the built-in choice (UTF-8, or a guess)."""


class Headers(CIMultiDictProxy[str]):
    """The header fields of a response: a read-only, case-insensitive
    multidict (:class:`multidict.CIMultiDictProxy`), names in the case they
    were received."""

    __slots__ = ()

    @property
    def raw(self) -> list[tuple[bytes, bytes]]:
        """The fields as received: ``(name, value)`` byte pairs in order
        (latin-1, RFC 9110 section 5.5), names in their original case."""
        return [(name.encode("latin-1"), value.encode("latin-1")) for name, value in self.items()]


T = TypeVar("T")

_DEFAULT_MAX_DECODED = 1024 * 1024 * 1024


def _encode_response_body(
    content: RequestContent | None, text: str | None, html: str | None, json: Any
) -> tuple[list[tuple[str, str]], bytes | None, AsyncIterable[bytes] | None]:
    if content is not None:
        if isinstance(content, str):
            content = content.encode("utf-8")
        if isinstance(content, (bytes, bytearray, memoryview)):
            data = bytes(content)
            return [("Content-Length", str(len(data)))], data, None
        if isinstance(content, AsyncIterable):
            return [("Transfer-Encoding", "chunked")], None, content
        return [("Transfer-Encoding", "chunked")], None, IterStream(content)
    if text is not None:
        data, ctype = text.encode("utf-8"), "text/plain; charset=utf-8"
    elif html is not None:
        data, ctype = html.encode("utf-8"), "text/html; charset=utf-8"
    elif json is not None:
        data = jsonlib.dumps(json, ensure_ascii=False, separators=(",", ":")).encode("utf-8")
        ctype = "application/json"
    else:
        return [], None, None
    return [("Content-Length", str(len(data))), ("Content-Type", ctype)], data, None


def _no_check() -> None:
    return None


class Response(_ResponseBody):
    """An HTTP response (RFC 9110 section 15), with its body read or
    streamed.

    Made by the client, or by hand in a :class:`~webwire.MockTransport`
    handler: ``Response(200, json={"ok": True})``.

    Args:
        status_code: The status code (100-999).
        headers: Header fields (str or latin-1 bytes).
        content: Body bytes, text (UTF-8) or an (async) iterable of bytes.
        text: Body text, sent as ``text/plain; charset=utf-8``.
        html: Body HTML, sent as ``text/html; charset=utf-8``.
        json: A value sent as ``application/json``.
        stream: The raw body (content coding not removed) as an async
            iterable of bytes with an optional ``aclose()``.
        request: The request this answers.
        http_version: ``"HTTP/1.1"``, ``"HTTP/2"``, ...
        reason_phrase: The reason phrase; the standard phrase when omitted.
        extensions: Transport details (``"peername"``, ...).
        history: Responses of the redirects and authentication steps that
            led here, oldest first.

    Attributes:
        status_code: The status code.
        http_version: The protocol version.
        headers: Header fields (:class:`multidict.CIMultiDictProxy`).
        history: Earlier responses of the same ``send`` (redirects, auth).
        extensions: Transport details.
        default_encoding: Text encoding used when the response declares no
            ``charset``: a codec name, a function ``(body: bytes) -> str |
            None`` (called with the whole body once read, or with the first
            chunk when streaming), or ``None`` (the default: UTF-8 when the
            body is valid UTF-8, else a guess; UTF-8 when streaming). Set
            from the client's ``default_encoding``.

    A body given as ``content=`` bytes with a ``Content-Encoding`` header is
    the encoded body, as a server sends it: :attr:`content` is decoded (at
    once, raising :class:`~webwire.DecodingError` on bad data) and
    :meth:`iter_raw` yields the encoded bytes.
    """

    __slots__ = (
        "_client",
        "_clock",
        "_closed",
        "_content",
        "_cookies",
        "_elapsed",
        "_max_body_size",
        "_max_decoded_size",
        "_num_bytes_downloaded",
        "_reason_phrase",
        "_request",
        "_start",
        "_stream",
        "_stream_consumed",
        "_stream_iter",
        "_sync",
        "default_encoding",
        "extensions",
        "headers",
        "history",
        "http_version",
        "status_code",
    )

    headers: Headers
    _content: bytes | None
    _stream: AsyncIterable[bytes]

    def __init__(
        self,
        status_code: int,
        *,
        headers: HeaderTypes | None = None,
        content: RequestContent | None = None,
        text: str | None = None,
        html: str | None = None,
        json: Any = None,
        stream: AsyncIterable[bytes] | None = None,
        request: Request | None = None,
        http_version: str = "HTTP/1.1",
        reason_phrase: str | None = None,
        extensions: dict[str, Any] | None = None,
        history: list[Response] | None = None,
    ) -> None:
        if not isinstance(status_code, int) or not 100 <= status_code <= 999:
            raise ValueError(f"invalid status code {status_code!r}")
        fields: CIMultiDict[str] = CIMultiDict()
        if headers is not None:
            pairs: Iterable[tuple[Any, Any]]
            pairs = headers.items() if isinstance(headers, Mapping) else headers
            for name, value in pairs:
                fields.add(header_str(name, "name"), header_str(value, "value"))
        body_headers, data, body_stream = _encode_response_body(content, text, html, json)
        if stream is None:
            for name, value in body_headers:
                if name not in fields:
                    fields[name] = value
        self._setup(status_code, reason_phrase, http_version, Headers(fields))
        self.extensions = extensions if extensions is not None else {}
        self.history = history if history is not None else []
        self._request = request
        if stream is not None:
            self._stream = stream
        elif body_stream is not None:
            self._stream = body_stream
        else:
            raw = data if data is not None else b""
            self._stream = BytesStream(raw)
            coding = self.headers.get("Content-Encoding")
            if coding is None or not raw:
                self._content = raw
            else:
                # content= is the body as sent, content coding included.
                decoder = make_decoder(coding, max_size=_DEFAULT_MAX_DECODED)
                self._content = decoder.decode(raw) + decoder.flush()

    def _setup(
        self,
        status_code: int,
        reason_phrase: str | None,
        http_version: str,
        headers: CIMultiDictProxy[str],
    ) -> None:
        self.status_code = status_code
        self._reason_phrase = reason_phrase
        self.http_version = http_version
        self.headers = headers if type(headers) is Headers else Headers(headers)
        self._content = None
        self._text: str | None = None
        self._encoding: str | None = None
        self._cookies: Cookies | None = None
        self._stream_consumed = False
        self._stream_iter: AsyncIterator[bytes] | None = None
        self._closed = False
        self._sync: bool | None = None
        self._clock: Callable[[], float] | None = None
        self._start = 0.0
        self._elapsed: datetime.timedelta | None = None
        self._max_decoded_size: int | None = _DEFAULT_MAX_DECODED
        self._max_body_size: int | None = None
        self._client: AsyncClient | None = None
        self._num_bytes_downloaded = 0
        self.default_encoding: DefaultEncoding = None

    @classmethod
    def _from_transport(
        cls,
        status_code: int,
        reason_phrase: str,
        http_version: str,
        headers: CIMultiDictProxy[str],
        stream: AsyncIterable[bytes],
        extensions: dict[str, Any],
        request: Request,
    ) -> Response:
        """Make a streamed response from parts already decoded (transport path)."""
        response = cls.__new__(cls)
        response._setup(status_code, reason_phrase or None, http_version, headers)
        response.extensions = extensions
        response.history = []
        response._request = request
        response._stream = stream
        return response

    # -- metadata ---------------------------------------------------------

    @property
    def reason_phrase(self) -> str:
        """The reason phrase; the standard one (RFC 9110 section 15) when the
        server sent none (always the case for HTTP/2 and HTTP/3)."""
        if self._reason_phrase is None:
            try:
                self._reason_phrase = HTTPStatus(self.status_code).phrase
            except ValueError:
                self._reason_phrase = ""
        return self._reason_phrase

    @property
    def request(self) -> Request:
        """The request this response answers.

        Raises:
            RuntimeError: The response was made by hand without a request.
        """
        if self._request is None:
            raise RuntimeError("this response has no request set")
        return self._request

    @request.setter
    def request(self, request: Request) -> None:
        self._request = request

    @property
    def url(self) -> URL:
        """The URL of the request this response answers."""
        return self.request.url

    @property
    def elapsed(self) -> datetime.timedelta:
        """Time from sending the request to the end of the body (or to
        closing it early).

        Raises:
            RuntimeError: The body is still being streamed.
        """
        if self._elapsed is None:
            raise RuntimeError("elapsed is known once the response is read or closed")
        return self._elapsed

    @property
    def is_closed(self) -> bool:
        """Whether the body stream is closed (connection released)."""
        return self._closed

    @property
    def is_stream_consumed(self) -> bool:
        """Whether the body stream was iterated."""
        return self._stream_consumed

    @property
    def num_bytes_downloaded(self) -> int:
        """Body bytes received so far, before content decoding."""
        return self._num_bytes_downloaded

    @property
    def is_informational(self) -> bool:
        """1xx (RFC 9110 section 15.2)."""
        return 100 <= self.status_code < 200

    @property
    def is_success(self) -> bool:
        """2xx (RFC 9110 section 15.3)."""
        return 200 <= self.status_code < 300

    @property
    def is_redirect(self) -> bool:
        """301, 302, 303, 307 or 308: a redirect a client may follow (RFC
        9110 section 15.4)."""
        return self.status_code in (301, 302, 303, 307, 308)

    @property
    def has_redirect_location(self) -> bool:
        """A redirect status with a ``Location`` header."""
        return self.status_code in (301, 302, 303, 307, 308) and "Location" in self.headers

    @property
    def is_client_error(self) -> bool:
        """4xx (RFC 9110 section 15.5)."""
        return 400 <= self.status_code < 500

    @property
    def is_server_error(self) -> bool:
        """5xx (RFC 9110 section 15.6)."""
        return 500 <= self.status_code < 600

    @property
    def is_error(self) -> bool:
        """4xx or 5xx."""
        return 400 <= self.status_code < 600

    @property
    def ok(self) -> bool:
        """Whether the status is below 400 (not a client or server error)."""
        return self.status_code < 400

    @property
    def links(self) -> dict[str, dict[str, str]]:
        """The ``Link`` fields (RFC 8288), keyed by ``rel`` (or by URL when a
        link has no ``rel``): ``{"next": {"url": "/page/2", "rel":
        "next"}}``. URLs are as written (possibly relative); malformed links
        are skipped."""
        values = self.headers.getall("Link", [])
        if not values:
            return {}
        return {
            link.get("rel") or link["url"]: link for link in parse_links(", ".join(values))
        }

    @property
    def next_request(self) -> Request | None:
        """The request a client would send to follow this redirect, when
        redirects were not followed (``follow_redirects=False``); ``None``
        when this is not a redirect with a ``Location``, or the response was
        not made by a client. Send it with ``client.send()``.

        Raises:
            InvalidURL, UnsupportedProtocol: The ``Location`` is invalid,
                or leads from https to http and the client refuses that.
            StreamConsumed: The redirect keeps the method and the request
                body was a one-shot stream.
        """
        client = self._client
        if client is None or self._request is None or not self.has_redirect_location:
            return None
        from ._redirects import build_redirect_request

        return build_redirect_request(
            self._request,
            self,
            cookies=client._cookies,
            first=self._request,
            allow_insecure=client.follow_insecure_redirects,
        )

    def raise_for_status(self) -> Response:
        """Raise on a client (4xx) or server (5xx) error status.

        Returns:
            This response, for chaining (``r = (await c.get(u)).raise_for_status()``).

        Raises:
            HTTPStatusError: The status is 4xx or 5xx; the message holds the
                code, reason phrase and URL, ``.response`` this response.
            RuntimeError: The response has no request set.
        """
        code = self.status_code
        if code < 400 or code >= 600:
            return self
        request = self.request
        kind = "Client error" if code < 500 else "Server error"
        message = f"{kind} '{code} {self.reason_phrase}' for url '{request.url}'"
        raise HTTPStatusError(message, request=request, response=self)

    @property
    def cookies(self) -> Cookies:
        """The cookies this response sets (its ``Set-Cookie`` fields)."""
        if self._cookies is None:
            from ._cookies import Cookies

            self._cookies = Cookies()
            self._cookies.extract_cookies(self)
        return self._cookies

    # -- async reading ------------------------------------------------------

    def _check_async(self) -> None:
        if self._sync is True:
            raise RuntimeError(
                "this response was made by the synchronous Client: use read(), "
                "iter_bytes(), iter_text(), iter_lines(), iter_raw() and close()"
            )

    def _check_sync(self) -> None:
        if self._sync is False:
            raise RuntimeError(
                "this response was made by AsyncClient: use await aread(), "
                "aiter_bytes(), aiter_text(), aiter_lines(), aiter_raw() and await aclose()"
            )

    def _decoder_or_none(self) -> Any:
        encoding = self.headers.get("Content-Encoding")
        if encoding is None:
            return None
        return make_decoder(encoding, max_size=self._max_decoded_size)

    def _start_consuming(self) -> None:
        if self._stream_consumed:
            raise StreamConsumed("the response body was already read")
        if self._closed:
            raise StreamClosed("the response was closed before its body was read")
        self._stream_consumed = True

    async def _aread(self) -> bytes:
        if self._content is not None:
            return self._content
        self._start_consuming()
        decoder = self._decoder_or_none()
        parts: list[bytes] = []
        source = self._stream.__aiter__()
        self._stream_iter = source
        limit = self._max_body_size
        size = 0
        try:
            while True:
                try:
                    chunk = await source.__anext__()
                except StopAsyncIteration:
                    break
                self._num_bytes_downloaded += len(chunk)
                if decoder is not None:
                    chunk = decoder.decode(chunk)
                if limit is not None:
                    size += len(chunk)
                    if size > limit:
                        self._too_large(limit)
                parts.append(chunk)
            if decoder is not None:
                chunk = decoder.flush()
                if limit is not None and size + len(chunk) > limit:
                    self._too_large(limit)
                parts.append(chunk)
        except BaseException as exc:
            if isinstance(exc, WebwireError) and exc.request is None:
                exc.request = self._request
            await self._aclose()
            raise
        self._content = b"".join(parts)
        await self._aclose()
        return self._content

    def _too_large(self, limit: int) -> None:
        raise ResponseTooLarge(
            f"the response body exceeds max_body_size ({limit} bytes); raise "
            "Limits.max_body_size or the max_body_size request extension, or stream it",
            limit=limit,
            request=self._request,
        )

    def _iterator(
        self, kind: str, chunk_size: int | None = None, *, check: Callable[[], None]
    ) -> BodyIterator[Any]:
        if kind == "raw":
            check()
            step, flush = chunker(chunk_size)
            return BodyIterator(self, decode=False, step=step, flush=flush, use_content=False)
        if self._content is None:
            check()
        if kind == "bytes":
            step, flush = chunker(chunk_size)
            return BodyIterator(self, decode=True, step=step, flush=flush, use_content=True)
        known = self.encoding if self._content is not None else self.charset_encoding
        encoding: str | Callable[[bytes], str] = known or self._stream_encoding
        if kind == "text":
            tstep, tflush = text_decoder(encoding)
        else:
            tstep, tflush = line_splitter(encoding)
        if chunk_size is None:
            return BodyIterator(self, decode=True, step=tstep, flush=tflush, use_content=True)
        cstep, cflush = chunker(chunk_size)

        def text_step(chunk: bytes) -> list[str]:
            return [text for piece in cstep(chunk) for text in tstep(piece)]

        def text_flush() -> list[str]:
            out = [text for piece in cflush() for text in tstep(piece)]
            return out + list(tflush())

        return BodyIterator(self, decode=True, step=text_step, flush=text_flush, use_content=True)

    def _stream_encoding(self, first_chunk: bytes) -> str:
        """The encoding of a streamed body without ``charset``, chosen when
        its first chunk arrives."""
        return self._default_encoding(first_chunk) or "utf-8"

    async def _aclose(self) -> None:
        if self._closed:
            return
        self._closed = True
        if self._clock is not None:
            self._elapsed = datetime.timedelta(seconds=self._clock() - self._start)
        elif self._elapsed is None:
            self._elapsed = datetime.timedelta(0)
        source, self._stream_iter = self._stream_iter, None
        if source is not self._stream:
            close_source = getattr(source, "aclose", None)
            if close_source is not None:
                await close_source()
        aclose = getattr(self._stream, "aclose", None)
        if aclose is not None:
            await aclose()

    async def _adrain(self, max_bytes: int) -> None:
        """Read a small body (keeping it as ``content``) so the connection can
        be reused; a body over ``max_bytes`` raw bytes is closed instead."""
        if self._content is None and not self._stream_consumed and not self._closed:
            parts: list[bytes] = []
            size = 0
            source = self._iterator("raw", check=_no_check)
            async for chunk in source:
                size += len(chunk)
                if size > max_bytes:
                    await source.aclose()
                    break
                parts.append(chunk)
            else:
                try:
                    decoder = self._decoder_or_none()
                    data = b"".join(parts)
                    self._content = (
                        data if decoder is None else decoder.decode(data) + decoder.flush()
                    )
                except DecodingError:
                    pass
        await self._aclose()

    async def aread(self) -> bytes:
        """Read the whole body, content coding removed, and release the
        connection.

        Returns:
            The body bytes (also kept as :attr:`content`).

        Raises:
            DecodingError: Bad compressed data, or more than
                ``Limits.max_decompressed_size`` bytes after decoding.
            StreamConsumed: The body was already iterated.
            StreamClosed: The response was closed before being read.
            TransportError: The connection failed (``ReadTimeout`` included,
                also when ``Timeout.total`` runs out).
            RuntimeError: The response belongs to the synchronous Client.
        """
        if self._content is not None:
            return self._content
        self._check_async()
        return await self._aread()

    def aiter_bytes(self, chunk_size: int | None = None) -> AsyncIterator[bytes]:
        """Iterate the body, content coding removed.

        Args:
            chunk_size: Size of each chunk in bytes (the last may be
                shorter), or ``None`` for chunks as they arrive.

        Returns:
            An async iterator of bytes; the connection is released at its end.

        Raises:
            RuntimeError: The response belongs to the synchronous Client.
        """
        return self._iterator("bytes", chunk_size, check=self._check_async)

    def aiter_text(self, chunk_size: int | None = None) -> AsyncIterator[str]:
        """Iterate the body as text, decoded with the ``charset`` of
        ``Content-Type`` (else :attr:`default_encoding`, else UTF-8); bytes
        that do not decode become U+FFFD, never an exception.

        Args:
            chunk_size: Size in bytes of the chunks decoded at a time.

        Returns:
            An async iterator of text pieces.
        """
        return self._iterator("text", chunk_size, check=self._check_async)

    def aiter_lines(self) -> AsyncIterator[str]:
        """Iterate the body as lines of text, without their line endings
        (``\\n``, ``\\r\\n`` or ``\\r``).

        Returns:
            An async iterator of lines.
        """
        return self._iterator("lines", check=self._check_async)

    def aiter_raw(self) -> AsyncIterator[bytes]:
        """Iterate the body as received, content coding kept.

        Returns:
            An async iterator of bytes.

        Raises:
            StreamConsumed: The body was already read (iterating the
                generator raises it).
            RuntimeError: The response belongs to the synchronous Client.
        """
        return self._iterator("raw", check=self._check_async)

    async def aclose(self) -> None:
        """Close the body and release the connection (closing it when the
        body was not read to its end). Idempotent."""
        if not self._closed:
            self._check_async()
            await self._aclose()

    async def __aenter__(self) -> Response:
        return self

    async def __aexit__(self, *args: object) -> None:
        await self.aclose()

    # -- blocking reading -------------------------------------------------------

    def read(self) -> bytes:
        """Blocking :meth:`aread`.

        Returns:
            The body bytes.

        Raises:
            RuntimeError: The response belongs to AsyncClient.
            DecodingError, StreamConsumed, StreamClosed, TransportError: As
                for :meth:`aread`.
        """
        if self._content is not None:
            return self._content
        self._check_sync()
        return run_sync(self._aread())

    def iter_bytes(self, chunk_size: int | None = None) -> Iterator[bytes]:
        """Blocking :meth:`aiter_bytes`."""
        return SyncBodyIterator(self._iterator("bytes", chunk_size, check=self._check_sync))

    def iter_text(self, chunk_size: int | None = None) -> Iterator[str]:
        """Blocking :meth:`aiter_text`."""
        return SyncBodyIterator(self._iterator("text", chunk_size, check=self._check_sync))

    def iter_lines(self) -> Iterator[str]:
        """Blocking :meth:`aiter_lines`."""
        return SyncBodyIterator(self._iterator("lines", check=self._check_sync))

    def iter_raw(self) -> Iterator[bytes]:
        """Blocking :meth:`aiter_raw`."""
        return SyncBodyIterator(self._iterator("raw", check=self._check_sync))

    def close(self) -> None:
        """Blocking :meth:`aclose`."""
        if not self._closed:
            self._check_sync()
            run_sync(self._aclose())

    def __enter__(self) -> Response:
        return self

    def __exit__(self, *args: object) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"<Response [{self.status_code} {self.reason_phrase}]>"
