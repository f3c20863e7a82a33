"""``multipart/form-data`` request bodies (RFC 7578).

Form fields come first, then the files, each part introduced by the
boundary and its header fields. When the size of every part is known
(``bytes``, ``str``, files whose length can be measured with ``os.fstat``
or ``seek``) the body gets a ``Content-Length`` and files are streamed from
disk in 64 KiB pieces, never read into memory at once; otherwise it is sent
with ``Transfer-Encoding: chunked``.
"""

from __future__ import annotations

import inspect
import io
import mimetypes
import os
import re
import stat
from collections.abc import AsyncIterable, AsyncIterator, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from webwire._exceptions import LocalProtocolError
from webwire.http._content import (
    FormData,
    RequestBody,
    StreamBody,
    form_items,
    iter_chunks,
    iter_file,
)

__all__ = ["encode_multipart"]

_CRLF = b"\r\n"
# Boundary characters (RFC 2046 section 5.1.1, "bchars").
_BOUNDARY = re.compile(rb"[0-9A-Za-z'()+_,\-./:=? ]{0,69}[0-9A-Za-z'()+_,\-./:=?]")
_TOKEN = re.compile(rb"[!#$%&'*+\-.^_`|~0-9A-Za-z]+")
_HEADER_NAME = re.compile(r"[!#$%&'*+\-.^_`|~0-9A-Za-z]+")
_DEFAULT_FILENAME = "upload"


def _quote(value: str) -> str:
    """Quote a name or filename parameter as RFC 7578 section 4.2 and the
    WHATWG form encoder do: ``"``, CR and LF are percent-encoded."""
    return value.replace('"', "%22").replace("\r", "%0D").replace("\n", "%0A")


@dataclass
class _Part:
    """One part: its head (boundary line and header fields) and content.

    ``content`` is ``bytes``, a file object (``start`` is the position it
    is read from, ``size`` the number of bytes, ``None`` when unknown) or
    an iterable / async iterable of chunks (size unknown).
    """

    head: bytes
    content: Any
    size: int | None
    start: int = 0

    @property
    def is_bytes(self) -> bool:
        return isinstance(self.content, bytes)


def _measure_file(file: Any) -> tuple[int, int] | None:
    """Return ``(position, remaining bytes)`` of a seekable binary file."""
    if inspect.iscoroutinefunction(getattr(file, "read", None)):
        return None
    if isinstance(file, io.TextIOBase):
        return None
    if not isinstance(file, (io.RawIOBase, io.BufferedIOBase)):
        try:
            probe = file.read(0)
        except Exception:
            return None
        if inspect.iscoroutine(probe):
            probe.close()
        if not isinstance(probe, bytes):
            return None
    try:
        if not file.seekable():
            return None
        position = int(file.tell())
    except Exception:
        return None
    try:
        info = os.fstat(file.fileno())
    except Exception:
        info = None
    if info is not None and stat.S_ISREG(info.st_mode):
        return position, max(info.st_size - position, 0)
    try:
        end = int(file.seek(0, io.SEEK_END))
        file.seek(position)
    except Exception:
        return None
    return position, max(end - position, 0)


def _content_part(head: bytes, content: object) -> _Part:
    if isinstance(content, (bytes, bytearray, memoryview)):
        return _Part(head, bytes(content), len(content))
    if isinstance(content, str):
        data = content.encode("utf-8")
        return _Part(head, data, len(data))
    if callable(getattr(content, "read", None)):
        measured = _measure_file(content)
        if measured is None:
            return _Part(head, content, None)
        start, size = measured
        return _Part(head, content, size, start)
    if isinstance(content, (Iterable, AsyncIterable)):
        return _Part(head, content, None)
    raise TypeError(
        "file content must be bytes, str, a file object or an (async) iterable of bytes, "
        f"not {type(content).__name__}"
    )


def _check_header(name: object, value: object) -> tuple[str, str]:
    if not isinstance(name, str) or not _HEADER_NAME.fullmatch(name):
        raise LocalProtocolError(f"invalid header name in a multipart file: {name!r}")
    if not isinstance(value, str) or any(c in value for c in "\r\n\0"):
        raise LocalProtocolError(f"invalid value for header {name!r} in a multipart file")
    return name, value


def _file_head(name: str, value: Any) -> tuple[str, list[tuple[str, str]], object]:
    """Return the Content-Disposition, other header fields and content of a
    file value."""
    filename: str | None
    content_type: str | None = None
    extra: Mapping[str, str] = {}
    if isinstance(value, tuple):
        if not 2 <= len(value) <= 4:
            raise TypeError(
                f"file tuple for {name!r} must be (filename, content[, content_type[, headers]])"
            )
        filename, content = value[0], value[1]
        if len(value) > 2:
            content_type = value[2]
        if len(value) > 3:
            extra = value[3] or {}
        if filename is not None and not isinstance(filename, str):
            raise TypeError(f"filename of {name!r} must be str or None")
        if content_type is not None and not isinstance(content_type, str):
            raise TypeError(f"content type of {name!r} must be str or None")
        if not isinstance(extra, Mapping):
            raise TypeError(f"headers of {name!r} must be a mapping")
    else:
        content = value
        raw_name = getattr(value, "name", None)
        filename = (
            os.path.basename(raw_name) or _DEFAULT_FILENAME
            if isinstance(raw_name, str)
            else _DEFAULT_FILENAME
        )
    disposition = f'form-data; name="{_quote(name)}"'
    if filename is not None:
        disposition += f'; filename="{_quote(filename)}"'
        if content_type is None:
            content_type = mimetypes.guess_type(filename)[0] or "application/octet-stream"
    headers: list[tuple[str, str]] = []
    for header_name, header_value in extra.items():
        checked = _check_header(header_name, header_value)
        lowered = checked[0].lower()
        if lowered == "content-disposition":
            raise ValueError(f"Content-Disposition of {name!r} is set from its name and filename")
        if lowered == "content-type":
            content_type = None
        headers.append(checked)
    if content_type is not None:
        headers.insert(0, _check_header("Content-Type", content_type))
    return disposition, headers, content


def _head(boundary: bytes, disposition: str, headers: list[tuple[str, str]]) -> bytes:
    lines = [f"Content-Disposition: {disposition}"]
    lines.extend(f"{k}: {v}" for k, v in headers)
    return b"--" + boundary + _CRLF + "\r\n".join(lines).encode("utf-8") + _CRLF + _CRLF


def _build_parts(
    data: FormData | None,
    files: Mapping[str, Any] | Sequence[tuple[str, Any]],
    boundary: bytes,
) -> list[_Part]:
    parts: list[_Part] = []
    for name, value in form_items(data or {}):
        head = _head(boundary, f'form-data; name="{_quote(name)}"', [])
        encoded = value if isinstance(value, bytes) else value.encode("utf-8")
        parts.append(_Part(head, encoded, len(encoded)))
    items = files.items() if isinstance(files, Mapping) else files
    for item in items:
        if not (isinstance(item, tuple) and len(item) == 2):
            raise TypeError("files must be a mapping or a sequence of (name, file) pairs")
        name, value = item
        if not isinstance(name, str):
            raise TypeError(f"file field names must be str, not {type(name).__name__}")
        disposition, headers, content = _file_head(name, value)
        parts.append(_content_part(_head(boundary, disposition, headers), content))
    return parts


def _check_boundary(boundary: bytes | None) -> bytes:
    if boundary is None:
        return os.urandom(16).hex().encode("ascii")
    if not isinstance(boundary, bytes):
        raise TypeError(f"boundary must be bytes, not {type(boundary).__name__}")
    if not _BOUNDARY.fullmatch(boundary):
        raise ValueError(
            f"invalid multipart boundary {boundary!r}: 1 to 70 characters of letters, "
            "digits and '()+_,-./:=? (RFC 2046 section 5.1.1), not ending with a space"
        )
    return boundary


async def _iter_parts(parts: list[_Part], end: bytes, *, rewind: bool) -> AsyncIterator[bytes]:
    for part in parts:
        yield part.head
        if part.is_bytes:
            if part.content:
                yield part.content
        elif part.size is not None:
            if rewind:
                part.content.seek(part.start)
            async for chunk in iter_file(part.content, part.size):
                yield chunk
        else:
            async for chunk in iter_chunks(part.content):
                yield chunk
        yield _CRLF
    yield end


def encode_multipart(
    data: FormData | None,
    files: Mapping[str, Any] | Sequence[tuple[str, Any]],
    boundary: bytes | None = None,
) -> tuple[list[tuple[str, str]], RequestBody]:
    """Encode form fields and files as ``multipart/form-data`` (RFC 7578).

    Args:
        data: Form fields sent first, as for
            :func:`~webwire.http._content.form_items`, or ``None``.
        files: Field name to file value, as a mapping or a sequence of
            ``(name, value)`` pairs (a name may repeat). A value is the
            content alone (``bytes``, ``str`` sent as UTF-8, a file object
            opened in binary or text mode, an iterable or async iterable of
            chunks) or a tuple ``(filename, content)``,
            ``(filename, content, content_type)`` or
            ``(filename, content, content_type, headers)``. Without a tuple
            the filename is the file object's ``name`` (base name) or
            ``"upload"``; a ``None`` filename sends the part as a plain
            field. A missing content type is guessed from the filename
            (``application/octet-stream`` when unknown); a ``Content-Type``
            in ``headers`` replaces it. Names and filenames are sent as
            UTF-8 with ``"``, CR and LF percent-encoded (RFC 7578
            section 4.2).
        boundary: The boundary (RFC 2046 section 5.1.1), or ``None`` for a
            random one of 32 hex digits.

    Returns:
        ``(headers, body)``: ``Content-Type`` and either ``Content-Length``
        or ``Transfer-Encoding: chunked``; the body is ``bytes`` when every
        part is in memory, otherwise a
        :class:`~webwire.http._content.StreamBody` that reads files from
        their current position in 64 KiB pieces. A body whose files are all
        seekable can be iterated again (files are rewound).

    Raises:
        TypeError: A name or value has a type that cannot be encoded.
        ValueError: ``boundary`` is invalid, or ``headers`` sets
            ``Content-Disposition``.
        LocalProtocolError: A header of a file holds CR, LF or NUL or an
            invalid name. While streaming: a file ended before the length
            measured for ``Content-Length``.
    """
    boundary = _check_boundary(boundary)
    parts = _build_parts(data, files, boundary)
    end = b"--" + boundary + b"--" + _CRLF
    value = boundary.decode("ascii")
    if not _TOKEN.fullmatch(boundary):
        value = f'"{value}"'
    headers = [("Content-Type", f"multipart/form-data; boundary={value}")]
    if all(part.is_bytes for part in parts):
        body = b"".join(part.head + part.content + _CRLF for part in parts) + end
        return [*headers, ("Content-Length", str(len(body)))], body
    sizes = [part.size for part in parts]
    if any(size is None for size in sizes):
        headers.append(("Transfer-Encoding", "chunked"))
        stream = StreamBody(lambda: _iter_parts(parts, end, rewind=False), replayable=False)
        return headers, stream
    length = sum(len(p.head) + len(_CRLF) for p in parts) + sum(s or 0 for s in sizes) + len(end)
    headers.append(("Content-Length", str(length)))
    return headers, StreamBody(lambda: _iter_parts(parts, end, rewind=True), replayable=True)
