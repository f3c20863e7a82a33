"""The body of a :class:`~webwire.Response` as bytes, text and JSON: the
base class :class:`_ResponseBody`."""

from __future__ import annotations

import json as jsonlib
from typing import TYPE_CHECKING, Any

from webwire._exceptions import DecodingError, JSONDecodingError, ResponseNotRead

from ._decoders import TextDecoder, charset_from_content_type, check_text_encoding, guess_encoding

if TYPE_CHECKING:
    from ._models import DefaultEncoding, Headers
    from ._request import Request

__all__: list[str] = []


class _ResponseBody:
    """The properties of :class:`~webwire.Response` (its base class) that
    give the body read: :attr:`content`, :attr:`text`, :meth:`json` and the
    text :attr:`encoding`."""

    __slots__ = ("_encoding", "_text")

    _encoding: str | None
    _text: str | None

    if TYPE_CHECKING:
        # Slots of Response.
        headers: Headers
        default_encoding: DefaultEncoding
        _content: bytes | None
        _request: Request | None

    # -- body: content, text, json ----------------------------------------

    @property
    def content(self) -> bytes:
        """The body, content coding removed.

        Raises:
            ResponseNotRead: The response is streamed and was not read.
        """
        if self._content is None:
            raise ResponseNotRead(
                "the response body was not read: call aread()/read() or use the "
                "awaited (non-streamed) form"
            )
        return self._content

    @property
    def charset_encoding(self) -> str | None:
        """The ``charset`` of ``Content-Type`` when Python knows it."""
        return charset_from_content_type(self.headers.get("Content-Type"))

    @property
    def encoding(self) -> str | None:
        """The text encoding: set explicitly, else the ``charset`` of
        ``Content-Type``, else UTF-8 for JSON (RFC 8259 section 8.1), else a
        guess from the body once read (``None`` before)."""
        if self._encoding is None:
            encoding = self.charset_encoding
            if encoding is None:
                ctype = self.headers.get("Content-Type", "").split(";", 1)[0].strip().lower()
                if ctype == "application/json" or ctype.endswith("+json"):
                    encoding = "utf-8"
                elif self._content is not None:
                    encoding = self._default_encoding(self._content)
                    if encoding is None:
                        encoding = guess_encoding(self._content)
                        try:
                            check_text_encoding(encoding)
                        except DecodingError:
                            encoding = "utf-8"
                else:
                    return None
            self._encoding = encoding
        return self._encoding

    @encoding.setter
    def encoding(self, value: str) -> None:
        """Set the text encoding (a codec name).

        Raises:
            DecodingError: ``value`` is not a text codec webwire decodes.
        """
        check_text_encoding(value)
        self._encoding = value
        self._text = None

    def _default_encoding(self, sample: bytes | None) -> str | None:
        """The encoding :attr:`default_encoding` picks for ``sample``."""
        default = self.default_encoding
        if default is None or isinstance(default, str):
            return default
        if sample is None:
            return None
        chosen = default(sample)
        if chosen is None:
            return None
        try:
            check_text_encoding(chosen)
        except DecodingError:
            return None
        return chosen

    @property
    def text(self) -> str:
        """The body decoded with :attr:`encoding`; undecodable bytes become
        U+FFFD (a codec that fails anyway is replaced by UTF-8 with
        U+FFFD), so decoding never raises.

        Raises:
            ResponseNotRead: The response is streamed and was not read.
        """
        if self._text is None:
            content = self.content
            decoder = TextDecoder(self.encoding or "utf-8")
            self._text = decoder.decode(content) + decoder.flush()
        return self._text

    def json(self, **kwargs: Any) -> Any:
        """Parse the body as JSON (RFC 8259; UTF-8, UTF-16 and UTF-32 are
        detected from the bytes).

        Args:
            **kwargs: Passed to :func:`json.loads`.

        Returns:
            The parsed value.

        Raises:
            ResponseNotRead: The response is streamed and was not read.
            JSONDecodingError: The body is not valid JSON (bad syntax, bad
                UTF-8 or nesting too deep for the parser); it is also a
                :class:`json.JSONDecodeError` and a :class:`ValueError`.
        """
        content = self.content
        try:
            return jsonlib.loads(content, **kwargs)
        except jsonlib.JSONDecodeError as exc:
            raise JSONDecodingError(exc.msg, exc.doc, exc.pos, request=self._request) from exc
        except UnicodeDecodeError as exc:
            doc = content.decode("utf-8", "replace")
            message = f"the body is not valid UTF-8 JSON (RFC 8259 section 8.1): {exc.reason}"
            raise JSONDecodingError(message, doc, 0, request=self._request) from exc
        except RecursionError as exc:
            doc = content.decode("utf-8", "replace")
            message = "the JSON body nests too deeply to parse"
            raise JSONDecodingError(message, doc, 0, request=self._request) from exc
