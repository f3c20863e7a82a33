"""Encoding of request bodies: raw content, forms, JSON and files.

:func:`encode_request` turns the ``content=``, ``data=``, ``files=`` and
``json=`` arguments of a request into the header fields that describe the
body (``Content-Type``, and ``Content-Length`` when the length is known) and
the body itself, either ``bytes`` or an async iterable of ``bytes`` chunks
that the transport sends as they come. A streamed body of unknown length
gets no framing field here: the HTTP version driver frames it (chunked
coding on HTTP/1.1, RFC 9112 section 7.1; DATA frames on HTTP/2 and
HTTP/3, which have no ``Transfer-Encoding``).
"""

from __future__ import annotations

import inspect
import json as jsonlib
from collections.abc import (
    AsyncIterable,
    AsyncIterator,
    Callable,
    Iterable,
    Iterator,
    Mapping,
    Sequence,
)
from typing import Any, TypeAlias
from urllib.parse import urlencode

from webwire._exceptions import LocalProtocolError, StreamConsumed
from webwire._transport._types import close_body_iterator

__all__ = [
    "READ_SIZE",
    "FormData",
    "LengthCheckedBody",
    "RequestBody",
    "StreamBody",
    "encode_json",
    "encode_request",
    "encode_urlencoded",
    "form_items",
    "iter_chunks",
    "iter_file",
]

RequestBody: TypeAlias = bytes | AsyncIterable[bytes]
"""A request body as the transport sends it."""

READ_SIZE = 64 * 1024
"""Bytes read from a file object at a time."""


def _to_bytes(chunk: object) -> bytes:
    if isinstance(chunk, bytes):
        return chunk
    if isinstance(chunk, (bytearray, memoryview)):
        return bytes(chunk)
    if isinstance(chunk, str):
        return chunk.encode("utf-8")
    raise TypeError(f"request body chunks must be bytes or str, not {type(chunk).__name__}")


def _is_file(value: object) -> bool:
    return callable(getattr(value, "read", None))


def _is_replayable(source: object) -> bool:
    """Whether iterating ``source`` again yields the same chunks."""
    if isinstance(source, AsyncIterable):
        return not isinstance(source, AsyncIterator)
    if _is_file(source):
        return False
    return isinstance(source, Iterable) and not isinstance(source, Iterator)


async def iter_file(file: Any, size: int | None = None) -> AsyncIterator[bytes]:
    """Read a file object in :data:`READ_SIZE` pieces.

    Args:
        file: An object with ``read(n)``, returning ``bytes`` or ``str``
            (``str`` is encoded as UTF-8) directly or as an awaitable.
        size: Exact number of bytes to send, or ``None`` to read to the end.

    Yields:
        Non-empty ``bytes`` chunks.

    Raises:
        LocalProtocolError: The file ended before ``size`` bytes (it changed
            after its length was sent in ``Content-Length``).
        TypeError: ``read`` returned something other than bytes or str.
    """
    remaining = size
    while remaining is None or remaining > 0:
        want = READ_SIZE if remaining is None else min(READ_SIZE, remaining)
        chunk = file.read(want)
        if inspect.isawaitable(chunk):
            chunk = await chunk
        data = _to_bytes(chunk)
        if not data:
            break
        if remaining is not None:
            data = data[:remaining]
            remaining -= len(data)
        yield data
    if remaining:
        raise LocalProtocolError(
            f"the file being uploaded ended {remaining} bytes before its announced length"
        )


async def iter_chunks(source: object) -> AsyncIterator[bytes]:
    """Iterate a streamed body source as ``bytes`` chunks.

    Args:
        source: A file object (read in :data:`READ_SIZE` pieces), an async
            iterable or an iterable of ``bytes``/``str`` chunks (``str`` is
            encoded as UTF-8).

    Yields:
        Non-empty ``bytes`` chunks.

    Raises:
        TypeError: A chunk is neither bytes nor str.
    """
    if _is_file(source):
        async for chunk in iter_file(source):
            yield chunk
    elif isinstance(source, AsyncIterable):
        iterator = source.__aiter__()
        finished = False
        try:
            async for item in iterator:
                data = _to_bytes(item)
                if data:
                    yield data
            finished = True
        finally:
            if not finished:  # left early (the transport stopped sending)
                await close_body_iterator(iterator)
    elif isinstance(source, Iterable):
        for item in source:
            data = _to_bytes(item)
            if data:
                yield data
    else:
        raise TypeError(f"cannot stream a request body from {type(source).__name__}")


class StreamBody(AsyncIterable[bytes]):
    """A streamed request body.

    Iterating it yields the body's ``bytes`` chunks. A body built from a
    one-shot source (an iterator, a generator, a file object) can be
    iterated once; a second attempt raises :class:`~webwire.StreamConsumed`
    instead of silently sending an empty body. A body built from a
    re-iterable source (a list, a multipart body of bytes and seekable
    files) can be sent again, for example after a redirect.

    Args:
        factory: Called for each iteration; returns a fresh iterator.
        replayable: Whether ``factory`` may be called more than once.
    """

    def __init__(self, factory: Callable[[], AsyncIterator[bytes]], *, replayable: bool) -> None:
        self._factory = factory
        self.replayable = replayable
        self._used = False

    def __aiter__(self) -> AsyncIterator[bytes]:
        if self._used and not self.replayable:
            raise StreamConsumed(
                "the request body was produced by a one-shot iterator or file and was "
                "already sent; pass bytes or a re-iterable object to send it again"
            )
        self._used = True
        return self._factory()


class LengthCheckedBody(AsyncIterable[bytes]):
    """A streamed request body that must produce exactly ``length`` bytes:
    the ``Content-Length`` its request declares (RFC 9110 section 8.6).

    Every HTTP version then sends it with that length (HTTP/1.1 without
    chunked coding), and a body that is longer or shorter fails before the
    wrong message is completed.

    Args:
        body: The streamed body.
        length: The declared length in bytes.

    Raises (when iterated):
        LocalProtocolError: The body produced more bytes than ``length``
            (raised before the extra bytes are handed out) or ended short.
    """

    def __init__(self, body: AsyncIterable[bytes], length: int) -> None:
        self._body = body
        self.length = length
        self.replayable = bool(getattr(body, "replayable", False))

    def __aiter__(self) -> AsyncIterator[bytes]:
        return self._iterate()

    async def _iterate(self) -> AsyncIterator[bytes]:
        left = self.length
        iterator = self._body.__aiter__()
        finished = False
        try:
            async for chunk in iterator:
                if len(chunk) > left:
                    raise LocalProtocolError(
                        f"the request body is longer than its Content-Length of {self.length} "
                        "bytes"
                    )
                left -= len(chunk)
                yield chunk
            finished = True
        finally:
            if not finished:
                await close_body_iterator(iterator)
        if left:
            raise LocalProtocolError(
                f"the request body ended {left} bytes short of its Content-Length of "
                f"{self.length} bytes"
            )


def _content_body(content: object) -> tuple[list[tuple[str, str]], RequestBody]:
    if isinstance(content, (bytes, bytearray, memoryview, str)):
        body = _to_bytes(content)
        return [("Content-Length", str(len(body)))], body
    if not (_is_file(content) or isinstance(content, (Iterable, AsyncIterable))):
        raise TypeError(
            "content must be bytes, str, a file object or an (async) iterable of bytes, "
            f"not {type(content).__name__}"
        )
    stream = StreamBody(lambda: iter_chunks(content), replayable=_is_replayable(content))
    return [], stream


def _form_value(value: object) -> str | bytes:
    if value is True:
        return "true"
    if value is False:
        return "false"
    if value is None:
        return ""
    if isinstance(value, (str, bytes, int, float)):
        return value if isinstance(value, (str, bytes)) else str(value)
    raise TypeError(f"form values must be str, bytes, int, float, bool or None, not {value!r}")


FormData: TypeAlias = Mapping[str, Any] | Sequence[tuple[str, Any]]
"""Form fields: a mapping, or a sequence of ``(name, value)`` pairs."""


def form_items(data: FormData) -> list[tuple[str, str | bytes]]:
    """Flatten form fields into ``(name, value)`` pairs.

    Args:
        data: Field names to values, as a mapping or a sequence of
            ``(name, value)`` pairs; a value is ``str``, ``bytes``, ``int``,
            ``float``, ``bool`` (``"true"``/``"false"``), ``None`` (empty) or
            a list or tuple of those (the field repeats, in order).

    Returns:
        The pairs in order, values as ``str`` or ``bytes``.

    Raises:
        TypeError: A name or value has another type.
    """
    items: list[tuple[str, str | bytes]] = []
    if isinstance(data, Mapping):
        pairs: Iterable[Any] = data.items()
    elif isinstance(data, (list, tuple)):
        pairs = data
    else:
        raise TypeError(f"form data must be a mapping or list of pairs, not {type(data).__name__}")
    for pair in pairs:
        if not (isinstance(pair, tuple) and len(pair) == 2):
            raise TypeError(f"form data pairs must be (name, value) tuples, not {pair!r}")
        key, value = pair
        if not isinstance(key, str):
            raise TypeError(f"form field names must be str, not {type(key).__name__}")
        if isinstance(value, (list, tuple)):
            items.extend((key, _form_value(v)) for v in value)
        else:
            items.append((key, _form_value(value)))
    return items


def encode_urlencoded(data: FormData) -> bytes:
    """Encode form fields as ``application/x-www-form-urlencoded``.

    Implements the WHATWG URL Standard's urlencoded serializer (spaces as
    ``+``, UTF-8).

    Args:
        data: Form fields, as for :func:`form_items`.

    Returns:
        The encoded body.

    Raises:
        TypeError: A name or value has another type.
    """
    return urlencode(form_items(data), doseq=False).encode("ascii")


def encode_json(value: Any) -> bytes:
    """Serialize ``value`` as compact UTF-8 JSON (RFC 8259).

    Args:
        value: Any value :func:`json.dumps` accepts.

    Returns:
        The encoded body.

    Raises:
        TypeError: ``value`` holds an object JSON cannot represent.
        ValueError: ``value`` holds NaN or an infinity (not valid JSON) or a
            circular reference.
    """
    text = jsonlib.dumps(value, separators=(",", ":"), ensure_ascii=False, allow_nan=False)
    return text.encode("utf-8")


def _is_content_like(value: object) -> bool:
    return isinstance(value, (bytes, bytearray, memoryview, str)) or (
        not isinstance(value, (Mapping, list, tuple))
        and (_is_file(value) or isinstance(value, (Iterable, AsyncIterable)))
    )


def encode_request(
    *,
    content: bytes | str | Iterable[bytes] | AsyncIterable[bytes] | None = None,
    data: FormData | None = None,
    files: Mapping[str, Any] | Sequence[tuple[str, Any]] | None = None,
    json: Any = None,
    boundary: bytes | None = None,
) -> tuple[list[tuple[str, str]], RequestBody | None]:
    """Build a request body and the header fields that describe it.

    At most one kind of body may be given (``data`` and ``files`` together
    make one multipart body):

    * ``content``: ``bytes`` or ``str`` (UTF-8) get ``Content-Length``; an
      iterable or async iterable of ``bytes``/``str`` chunks or a file
      object (read in 64 KiB pieces; its ``read`` may be a coroutine) is
      streamed without a framing field (the HTTP/1.1 driver sends it with
      chunked coding, RFC 9112 section 7.1).
    * ``data``: a mapping or a list of ``(name, value)`` pairs becomes
      ``application/x-www-form-urlencoded``; ``bytes``, ``str``, iterators,
      other iterables and file objects are taken as ``content``.
    * ``files`` (with optional ``data`` fields): ``multipart/form-data``
      (RFC 7578), see :func:`~webwire.http._multipart.encode_multipart`.
    * ``json``: ``application/json`` (RFC 8259), compact, UTF-8.

    Args:
        content: Raw body.
        data: Form fields (see :func:`form_items`), or raw body.
        files: Files of a multipart body, as a mapping or a sequence of
            ``(field name, file)`` pairs.
        json: Value to send as JSON; ``None`` means no JSON body.
        boundary: Multipart boundary to use instead of a random one.

    Returns:
        ``(headers, body)``: header fields to add to the request (name,
        value; never ``Transfer-Encoding``) and the body, ``bytes`` or a
        :class:`StreamBody`. With no body at all, ``([], None)``.

    Raises:
        TypeError: Several kinds of body were given, or a value has a type
            that cannot be encoded.
        ValueError: ``json`` holds NaN or infinity, or ``boundary`` is
            invalid.
    """
    if data is not None and _is_content_like(data):
        if content is not None:
            raise TypeError("pass the raw request body as content= or data=, not both")
        content, data = data, None  # type: ignore[assignment]
    given = [
        name
        for name, value in (("content", content), ("data", data), ("files", files), ("json", json))
        if value is not None
    ]
    if "content" in given and len(given) > 1:
        raise TypeError(f"content= cannot be combined with {' or '.join(given[1:])}=")
    if "json" in given and len(given) > 1:
        raise TypeError(f"json= cannot be combined with {' or '.join(given[:-1])}=")
    if content is not None:
        return _content_body(content)
    if files is not None:
        from webwire.http._multipart import encode_multipart

        return encode_multipart(data, files, boundary)
    if data is not None:
        body = encode_urlencoded(data)
        content_type = "application/x-www-form-urlencoded"
    elif json is not None:
        body = encode_json(json)
        content_type = "application/json"
    else:
        return [], None
    return [("Content-Type", content_type), ("Content-Length", str(len(body)))], body
