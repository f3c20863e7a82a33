"""Decoding of response bodies: content codings, charsets and lines.

Content codings (RFC 9110 section 8.4.1): ``gzip`` and ``deflate`` through
:mod:`zlib`, ``br`` through ``brotli`` (or ``brotlicffi``) and ``zstd``
through ``zstandard``, the last two imported only when a response uses them.
Every decoder works incrementally and stops a decompression bomb as soon as
its output passes the size limit: output is produced in pieces of at most
:data:`CHUNK_SIZE` bytes (``max_length`` for zlib, ``output_buffer_limit``
for brotli, a bounded writer for zstd), so a few kilobytes of hostile input
never grow into gigabytes of memory.
"""

from __future__ import annotations

import codecs
import functools
import importlib
import re
import zlib
from abc import ABC, abstractmethod
from collections.abc import Callable, Iterable, Iterator
from types import ModuleType
from typing import Any

from webwire._exceptions import DecodingError

__all__ = [
    "CHUNK_SIZE",
    "ContentDecoder",
    "LineDecoder",
    "TextDecoder",
    "accept_encoding",
    "charset_from_content_type",
    "check_text_encoding",
    "guess_encoding",
    "make_decoder",
]

CHUNK_SIZE = 64 * 1024
"""Largest piece of output (bytes) a decompressor produces in one step."""

_GZIP_MAGIC = b"\x1f\x8b"
# Characters of a charset name (RFC 2978 section 2.3, without the quote).
_CHARSET_NAME = re.compile(r"[a-z0-9!#$%&+\-^_`{}~.:]+")


def _try_import(*names: str) -> ModuleType | None:
    for name in names:
        try:
            return importlib.import_module(name)
        except ImportError:
            continue
    return None


@functools.cache
def accept_encoding() -> str:
    """Return the default ``Accept-Encoding`` value (RFC 9110 section 12.5.3).

    ``"gzip, deflate"`` always, followed by ``", br"`` when ``brotli`` or
    ``brotlicffi`` can be imported and ``", zstd"`` when ``zstandard`` can.
    The result is computed once and cached.

    Returns:
        The header value, for example ``"gzip, deflate, br, zstd"``.
    """
    codings = ["gzip", "deflate"]
    if _try_import("brotli", "brotlicffi") is not None:
        codings.append("br")
    if _try_import("zstandard") is not None:
        codings.append("zstd")
    return ", ".join(codings)


class ContentDecoder:
    """Incremental decoder of a response body's content codings.

    Feed the body as it arrives to :meth:`decode` and call :meth:`flush` once
    at the end. The base class is the identity decoding (data passes through
    unchanged); :func:`make_decoder` builds the right decoder for a
    ``Content-Encoding`` header.
    """

    def decode(self, data: bytes) -> bytes:
        """Decode the next piece of the body.

        Args:
            data: The next bytes of the encoded body, any length.

        Returns:
            The decoded bytes available so far (possibly empty).

        Raises:
            DecodingError: The data is corrupt or the decoded body exceeds
                the size limit.
        """
        return bytes(data)

    def flush(self) -> bytes:
        """Finish decoding and return any output still held back.

        Returns:
            The remaining decoded bytes (possibly empty).

        Raises:
            DecodingError: As for :meth:`decode`.
        """
        return b""


class _Stage(ABC):
    """One content coding of a pipeline, counting the bytes it produces."""

    name = ""

    def __init__(self, limit: int | None) -> None:
        self._limit = limit
        self._produced = 0

    def feed(self, data: bytes) -> Iterator[bytes]:
        return self._count(self._feed(data))

    def finish(self) -> Iterator[bytes]:
        return self._count(self._finish())

    def _count(self, pieces: Iterable[bytes]) -> Iterator[bytes]:
        try:
            for piece in pieces:
                if not piece:
                    continue
                self._add(len(piece))
                yield piece
        except DecodingError:
            raise
        except Exception as exc:  # the engines raise their own error types
            raise DecodingError(f"invalid {self.name} data: {exc}") from exc

    def _add(self, size: int) -> None:
        self._produced += size
        if self._limit is not None and self._produced > self._limit:
            raise DecodingError(f"decoded body exceeds {self._limit} bytes")

    @abstractmethod
    def _feed(self, data: bytes) -> Iterator[bytes]:
        """Decode one piece of input, yielding output pieces."""

    def _finish(self) -> Iterator[bytes]:
        return iter(())


def _drain_zlib(obj: Any, data: bytes) -> Iterator[bytes]:
    """Run ``data`` through a zlib decompressobj, CHUNK_SIZE bytes at a time."""
    while True:
        out: bytes = obj.decompress(data, CHUNK_SIZE)
        data = obj.unconsumed_tail
        yield out
        if obj.eof or (not data and len(out) < CHUNK_SIZE):
            return


class _GzipStage(_Stage):
    """``gzip`` (RFC 1952), including several concatenated members.

    Bytes after the last member that do not start a new member are ignored,
    as browsers do.
    """

    name = "gzip"

    def __init__(self, limit: int | None) -> None:
        super().__init__(limit)
        self._obj: Any = zlib.decompressobj(16 + zlib.MAX_WBITS)
        self._pending = b""  # bytes after a finished member
        self._trailing_garbage = False

    def _feed(self, data: bytes) -> Iterator[bytes]:
        while data and not self._trailing_garbage:
            if self._obj.eof:
                self._pending += data
                if len(self._pending) < len(_GZIP_MAGIC):
                    return
                data, self._pending = self._pending, b""
                if not data.startswith(_GZIP_MAGIC):
                    self._trailing_garbage = True
                    return
                self._obj = zlib.decompressobj(16 + zlib.MAX_WBITS)
            yield from _drain_zlib(self._obj, data)
            data = self._obj.unused_data if self._obj.eof else b""

    def _finish(self) -> Iterator[bytes]:
        if not self._obj.eof:
            yield self._obj.flush()


class _DeflateStage(_Stage):
    """``deflate``: the zlib format (RFC 1950) as RFC 9110 section 8.4.1.2
    specifies, or the raw deflate format (RFC 1951) that some servers send.

    The choice is made from the first two bytes (a valid zlib header) and
    revised once if the zlib decoder rejects the first data it is given.
    """

    name = "deflate"

    def __init__(self, limit: int | None) -> None:
        super().__init__(limit)
        self._obj: Any = None
        self._head = b""  # input held until the format is known

    def _feed(self, data: bytes) -> Iterator[bytes]:
        if self._obj is None:
            self._head += data
            if len(self._head) < 2:
                return
            data, self._head = self._head, b""
            cmf, flg = data[0], data[1]
            zlib_wrapped = (cmf & 0x0F) == 8 and ((cmf << 8) | flg) % 31 == 0
            self._obj = zlib.decompressobj(zlib.MAX_WBITS if zlib_wrapped else -zlib.MAX_WBITS)
            if zlib_wrapped:
                try:
                    first: bytes = self._obj.decompress(data, CHUNK_SIZE)
                except zlib.error:
                    self._obj = zlib.decompressobj(-zlib.MAX_WBITS)
                else:
                    yield first
                    data = self._obj.unconsumed_tail
        if self._obj.eof:
            return
        yield from _drain_zlib(self._obj, data)

    def _finish(self) -> Iterator[bytes]:
        if self._obj is None:
            if self._head:
                raise DecodingError("invalid deflate data: body too short")
            return
        if not self._obj.eof:
            yield self._obj.flush()


class _BrotliStage(_Stage):
    """``br`` (RFC 7932) with ``brotli`` or ``brotlicffi``."""

    name = "br"

    def __init__(self, limit: int | None) -> None:
        super().__init__(limit)
        module = _try_import("brotli", "brotlicffi")
        if module is None:
            raise DecodingError(
                "the response is brotli-compressed (Content-Encoding: br) but no brotli "
                "library is installed: install the extra with `pip install webwire[brotli]`"
            )
        self._obj: Any = module.Decompressor()
        # brotli >= 1.2 can cap the output of each call.
        self._bounded = hasattr(self._obj, "can_accept_more_data")

    def _feed(self, data: bytes) -> Iterator[bytes]:
        if not self._bounded:
            yield self._obj.process(data)
            return
        out: bytes = self._obj.process(data, output_buffer_limit=CHUNK_SIZE)
        yield out
        while out and not self._obj.is_finished():
            out = self._obj.process(b"", output_buffer_limit=CHUNK_SIZE)
            yield out


class _ZstdWriter:
    """Collects zstd output and enforces the stage's limit as it arrives."""

    def __init__(self, stage: _ZstdStage) -> None:
        self._stage = stage
        self.pieces: list[bytes] = []

    def write(self, data: bytes) -> int:
        self._stage._add(len(data))
        self.pieces.append(bytes(data))
        return len(data)


class _ZstdStage(_Stage):
    """``zstd`` (RFC 8878) with ``zstandard``, any number of frames."""

    name = "zstd"

    def __init__(self, limit: int | None) -> None:
        super().__init__(limit)
        module = _try_import("zstandard")
        if module is None:
            raise DecodingError(
                "the response is zstd-compressed (Content-Encoding: zstd) but zstandard "
                "is not installed: install the extra with `pip install webwire[zstd]`"
            )
        self._writer = _ZstdWriter(self)
        self._obj: Any = module.ZstdDecompressor().stream_writer(
            self._writer, write_size=CHUNK_SIZE, closefd=False
        )

    def feed(self, data: bytes) -> Iterator[bytes]:
        # The writer already counted the output against the limit.
        return self._feed(data)

    def _feed(self, data: bytes) -> Iterator[bytes]:
        try:
            self._obj.write(data)
        except DecodingError:
            raise
        except Exception as exc:
            raise DecodingError(f"invalid zstd data: {exc}") from exc
        pieces, self._writer.pieces = self._writer.pieces, []
        return iter(pieces)


class _Pipeline(ContentDecoder):
    """Several stages applied in order (the first undoes the last coding)."""

    def __init__(self, stages: list[_Stage]) -> None:
        self._stages = stages

    def _run(self, index: int, pieces: Iterable[bytes]) -> Iterator[bytes]:
        if index == len(self._stages):
            yield from pieces
            return
        stage = self._stages[index]
        for piece in pieces:
            yield from self._run(index + 1, stage.feed(piece))

    def decode(self, data: bytes) -> bytes:
        if not data:
            return b""
        return b"".join(self._run(0, [bytes(data)]))

    def flush(self) -> bytes:
        out: list[bytes] = []
        for index, stage in enumerate(self._stages):
            out.extend(self._run(index + 1, stage.finish()))
        return b"".join(out)


_STAGES: dict[str, Callable[[int | None], _Stage]] = {
    "gzip": _GzipStage,
    "x-gzip": _GzipStage,
    "deflate": _DeflateStage,
    "br": _BrotliStage,
    "zstd": _ZstdStage,
}


def make_decoder(content_encoding: str | None, *, max_size: int | None) -> ContentDecoder:
    """Build the decoder for a ``Content-Encoding`` header (RFC 9110 section 8.4).

    The codings listed are undone in reverse order (``"gzip, br"`` was
    gzip-compressed first, so brotli is decoded first). ``identity`` and
    empty entries are skipped. A coding webwire does not know cannot be
    undone, so it and every coding applied before it are left in place and
    the data passes through, as browsers do.

    Args:
        content_encoding: The raw header value, or ``None`` when absent.
        max_size: Largest decoded body allowed, in bytes, or ``None`` for no
            limit. It bounds memory as well: decoding stops as soon as the
            output passes it. Intermediate results of a chain of codings are
            bounded by ``max(2 * max_size, max_size + 1 MiB)``. Bodies
            without a content coding are not limited here.

    Returns:
        A fresh :class:`ContentDecoder`.

    Raises:
        DecodingError: ``br`` or ``zstd`` is used but its library is not
            installed (the message names the ``webwire[...]`` extra to
            install). Corrupt data and bodies over ``max_size`` raise
            :class:`DecodingError` later, from ``decode``/``flush``.
        ValueError: ``max_size`` is negative.
    """
    if max_size is not None and max_size < 0:
        raise ValueError(f"max_size must be >= 0 or None, not {max_size}")
    known: list[str] = []
    for name in reversed((content_encoding or "").split(",")):
        name = name.strip().lower()
        if name in ("", "identity"):
            continue
        if name not in _STAGES:
            # A coding applied after this one cannot be undone without it.
            break
        known.append(name)
    if not known:
        return ContentDecoder()
    inner_limit = None if max_size is None else max(2 * max_size, max_size + (1 << 20))
    stages = [
        _STAGES[name](max_size if i == len(known) - 1 else inner_limit)
        for i, name in enumerate(known)
    ]
    return _Pipeline(stages)


# Python codecs that are not character encodings of text a server could
# declare: their decoders ignore errors="replace" or read escape syntax.
_NOT_CHARSETS = frozenset(
    {"idna", "punycode", "undefined", "unicode-escape", "raw-unicode-escape", "unicode_escape",
     "raw_unicode_escape"}
)


def _is_text_codec(info: codecs.CodecInfo) -> bool:
    """Whether a codec decodes bytes to str (not ``base64``, ``rot13``...)
    and is a character encoding (not ``idna``, ``punycode``...)."""
    return (
        bool(getattr(info, "_is_text_encoding", True))
        and info.incrementaldecoder is not None
        and info.name not in _NOT_CHARSETS
    )


def check_text_encoding(encoding: str) -> None:
    """Check that ``encoding`` names a character encoding webwire decodes.

    Raises:
        DecodingError: It is unknown to :func:`codecs.lookup`, or not a
            character encoding (``base64``, ``idna``, ``punycode``...).
    """
    try:
        info = codecs.lookup(encoding)
    except (LookupError, TypeError, ValueError) as exc:
        raise DecodingError(f"unknown text encoding {encoding!r}") from exc
    if not _is_text_codec(info):
        raise DecodingError(f"{encoding!r} is not a text encoding (a character encoding)")


class TextDecoder:
    """Incremental decoding of bytes to text; invalid bytes become U+FFFD.

    A character split across two pieces is decoded once both have arrived.
    Should the codec fail anyway (some raise whatever the error handler),
    the rest of the text is decoded as UTF-8 with U+FFFD for bad bytes:
    decoding never raises.

    Args:
        encoding: The name of a text codec known to :func:`codecs.lookup`.

    Raises:
        DecodingError: ``encoding`` is not a known character encoding.
    """

    def __init__(self, encoding: str = "utf-8") -> None:
        check_text_encoding(encoding)
        self._decoder: codecs.IncrementalDecoder = codecs.getincrementaldecoder(encoding)(
            errors="replace"
        )

    def _fallback(self, data: bytes, final: bool) -> str:
        self._decoder = codecs.getincrementaldecoder("utf-8")(errors="replace")
        return str(self._decoder.decode(data, final))

    def decode(self, data: bytes) -> str:
        """Decode the next piece of bytes.

        Args:
            data: The next bytes, any length.

        Returns:
            The text complete so far; a trailing partial character is kept.
        """
        try:
            return str(self._decoder.decode(data, False))
        except Exception:  # a codec that raises despite errors="replace"
            return self._fallback(data, False)

    def flush(self) -> str:
        """Finish decoding; an incomplete trailing character becomes U+FFFD.

        Returns:
            The remaining text (possibly empty).
        """
        try:
            return str(self._decoder.decode(b"", True))
        except Exception:  # a codec that raises despite errors="replace"
            return self._fallback(b"", True)


class LineDecoder:
    """Split text arriving in pieces into lines.

    Lines end at ``"\\n"``, ``"\\r\\n"`` or ``"\\r"`` (the line endings of
    HTTP bodies and of server-sent events); a ``"\\r\\n"`` split across two
    pieces counts once. The line endings are not returned.
    """

    def __init__(self) -> None:
        self._buffer: list[str] = []
        self._after_cr = False

    def decode(self, text: str) -> list[str]:
        """Add the next piece of text.

        Args:
            text: The next piece of text, any length.

        Returns:
            The lines completed by this piece, without their line endings.
        """
        if self._after_cr and text.startswith("\n"):
            text = text[1:]
        self._after_cr = False
        if not text:
            return []
        lines: list[str] = []
        start = 0
        length = len(text)
        while True:
            cr = text.find("\r", start)
            lf = text.find("\n", start)
            if cr < 0 and lf < 0:
                break
            end = lf if cr < 0 or 0 <= lf < cr else cr
            self._buffer.append(text[start:end])
            lines.append("".join(self._buffer))
            self._buffer.clear()
            start = end + 1
            if end == cr:
                if start < length and text[start] == "\n":
                    start += 1
                elif start == length:
                    self._after_cr = True
        if start < length:
            self._buffer.append(text[start:])
        return lines

    def flush(self) -> list[str]:
        """Return the last line when the text did not end with a line ending.

        Returns:
            ``[last_line]`` or ``[]``.
        """
        self._after_cr = False
        if not self._buffer:
            return []
        line = "".join(self._buffer)
        self._buffer.clear()
        return [line] if line else []


def _split_params(value: str) -> list[str]:
    """Split a header value at ``;`` outside quoted strings."""
    parts: list[str] = []
    current: list[str] = []
    quoted = escaped = False
    for char in value:
        if escaped:
            escaped = False
        elif quoted and char == "\\":
            escaped = True
        elif char == '"':
            quoted = not quoted
        elif char == ";" and not quoted:
            parts.append("".join(current))
            current = []
            continue
        current.append(char)
    parts.append("".join(current))
    return parts


def charset_from_content_type(content_type: str | None) -> str | None:
    """Read the ``charset`` parameter of a ``Content-Type`` value.

    Implements the media type parameters of RFC 9110 section 8.3.1 (names
    are case-insensitive, values may be quoted strings).

    Args:
        content_type: The header value, for example
            ``"text/html; charset=ISO-8859-1"``, or ``None``.

    Returns:
        The charset in lower case (``"iso-8859-1"``), or ``None`` when there
        is none or Python has no text codec of that name.
    """
    if not content_type:
        return None
    for param in _split_params(content_type)[1:]:
        name, sep, value = param.partition("=")
        if not sep or name.strip().lower() != "charset":
            continue
        value = value.strip()
        if len(value) >= 2 and value[0] == value[-1] == '"':
            value = value[1:-1].replace('\\"', '"').replace("\\\\", "\\")
        value = value.strip().lower()
        if not _CHARSET_NAME.fullmatch(value):
            return None
        try:
            info = codecs.lookup(value)
        except LookupError:
            return None
        return value if _is_text_codec(info) else None
    return None


def guess_encoding(content: bytes) -> str:
    """Guess the character encoding of a body that declares none.

    Args:
        content: The whole (decoded) body.

    Returns:
        ``"utf-8"`` when the bytes are valid UTF-8, otherwise the best guess
        of ``charset_normalizer``, and ``"utf-8"`` when it has none.
    """
    try:
        content.decode("utf-8")
    except UnicodeDecodeError:
        pass
    else:
        return "utf-8"
    from charset_normalizer import from_bytes

    best = from_bytes(content).best()
    if best is None or not best.encoding:
        return "utf-8"
    return str(best.encoding)
