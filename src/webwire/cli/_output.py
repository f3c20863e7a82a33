"""Terminal and pipe output of the ``webwire`` command.

On a terminal (or with ``--pretty``) the heads are coloured and JSON, XML
and HTML bodies are formatted and highlighted with rich; through a pipe the
body is written as raw bytes, unchanged, and the heads as plain text.
"""

from __future__ import annotations

import codecs
import json
from collections.abc import Iterable
from typing import IO, TYPE_CHECKING, Any

if TYPE_CHECKING:
    from rich.console import Console

__all__ = [
    "Printer",
    "body_kind",
    "charset_of",
    "format_request_head",
    "format_response_head",
    "is_binary",
    "looks_like_json",
    "mask_secret",
    "status_style",
]

_BINARY_NOTE = "[binary data, {size} bytes, not shown on a terminal: use -o FILE or a pipe]"
_SECRET_HEADERS = frozenset({"authorization", "proxy-authorization"})
# Control characters that do not occur in text: all C0 controls but TAB, LF,
# FF, CR and ESC (terminal colour sequences), and DEL.
_CONTROL = frozenset(range(0x20)) - {0x08, 0x09, 0x0A, 0x0C, 0x0D, 0x1B} | {0x7F}
_BINARY_RATIO = 0.3


def status_style(status_code: int) -> str:
    """The rich style of a status code by its class (RFC 9110 section 15).

    Args:
        status_code: The response status code.

    Returns:
        Green for 2xx, cyan for 1xx/3xx, yellow for 4xx and red for 5xx.
    """
    if 200 <= status_code < 300:
        return "bold green"
    if status_code < 200 or status_code < 400:
        return "bold cyan"
    if status_code < 500:
        return "bold yellow"
    return "bold red"


def mask_secret(name: str, value: str) -> str:
    """The value of a credentials field as shown by ``-v``: the scheme kept,
    the credentials replaced by ``****`` (RFC 9110 section 11.6).

    Args:
        name: Field name.
        value: Field value.

    Returns:
        ``"Basic ****"`` for ``Authorization``/``Proxy-Authorization``;
        other fields unchanged.
    """
    if name.lower() not in _SECRET_HEADERS:
        return value
    scheme, _, credentials = value.partition(" ")
    return f"{scheme} ****" if credentials else "****"


def format_request_head(
    method: str,
    target: str,
    http_version: str,
    headers: Iterable[tuple[str, str]],
    *,
    show_secrets: bool = True,
) -> list[str]:
    """The request line and header lines (RFC 9112 sections 3 and 5).

    Args:
        method: Request method, for example ``"GET"``.
        target: Request target, origin form (``"/path?query"``).
        http_version: ``"HTTP/1.1"`` and so on.
        headers: Header fields in order.
        show_secrets: ``False`` masks credentials (:func:`mask_secret`).

    Returns:
        ``["GET /path HTTP/1.1", "Host: example.org", ...]``.
    """
    return [
        f"{method} {target} {http_version}",
        *(f"{k}: {v if show_secrets else mask_secret(k, v)}" for k, v in headers),
    ]


def format_response_head(
    http_version: str, status_code: int, reason_phrase: str, headers: Iterable[tuple[str, str]]
) -> list[str]:
    """The status line and header lines (RFC 9112 section 4).

    Args:
        http_version: ``"HTTP/1.1"`` and so on.
        status_code: Three-digit status code.
        reason_phrase: Reason phrase, may be empty (HTTP/2 has none).
        headers: Header fields in order.

    Returns:
        ``["HTTP/1.1 200 OK", "Content-Type: text/plain", ...]``.
    """
    status = f"{http_version} {status_code} {reason_phrase}".rstrip()
    return [status, *(f"{k}: {v}" for k, v in headers)]


def _media_type(content_type: str) -> str:
    return content_type.split(";", 1)[0].strip().lower()


def charset_of(content_type: str) -> str | None:
    """The ``charset`` parameter of a ``Content-Type`` value when Python
    knows that codec (RFC 9110 section 8.3.2).

    Args:
        content_type: The field value, or ``""``.

    Returns:
        The codec name as written, or ``None``.
    """
    for param in content_type.split(";")[1:]:
        key, _, value = param.partition("=")
        if key.strip().lower() == "charset":
            name = value.strip().strip('"')
            try:
                codecs.lookup(name)
            except LookupError:
                return None
            return name
    return None


def looks_like_json(content_type: str, body: bytes) -> bool:
    """Whether a body should be shown as JSON: a JSON media type
    (``application/json``, ``*/*+json``, RFC 8259 section 11) or a body that
    starts like a JSON object or array.

    Args:
        content_type: The ``Content-Type`` header value, or ``""``.
        body: The body bytes.

    Returns:
        ``True`` when the body parses as JSON and is labelled or shaped so.
    """
    media = _media_type(content_type)
    labelled = media == "application/json" or media.endswith("+json")
    shaped = body.lstrip()[:1] in (b"{", b"[")
    if not (labelled or shaped):
        return False
    try:
        json.loads(body)
    except ValueError:
        return False
    return True


def body_kind(content_type: str, body: bytes) -> str:
    """The syntax a body is highlighted as.

    Args:
        content_type: The ``Content-Type`` header value, or ``""``.
        body: The body bytes.

    Returns:
        ``"json"``, ``"xml"``, ``"html"`` or ``"text"``.
    """
    if looks_like_json(content_type, body):
        return "json"
    media = _media_type(content_type)
    if media in ("text/html", "application/xhtml+xml"):
        return "html"
    if media in ("text/xml", "application/xml") or media.endswith("+xml"):
        return "xml"
    return "text"


def is_binary(body: bytes) -> bool:
    """Whether a body is binary data, judged by its content: a NUL byte, or
    more than 30% of control characters that text does not contain. Bytes
    of any 8-bit charset (ISO-8859-1 and so on) count as text.

    Args:
        body: The body bytes (only the first 8 KiB are examined).

    Returns:
        ``True`` for binary data.
    """
    head = body[:8192]
    if not head:
        return False
    if b"\0" in head:
        return True
    controls = sum(1 for byte in head if byte in _CONTROL)
    return controls / len(head) > _BINARY_RATIO


def decode_text(body: bytes, content_type: str, fallback: str | None) -> str:
    """Decode a text body with its declared charset, else ``fallback``
    (the response's detected encoding), else UTF-8; undecodable bytes are
    replaced.

    Args:
        body: The body bytes.
        content_type: The ``Content-Type`` value, or ``""``.
        fallback: Codec name to use without a declared charset.

    Returns:
        The text.
    """
    charset = charset_of(content_type) or fallback or "utf-8"
    try:
        return body.decode(charset, "replace")
    except LookupError:
        return body.decode("utf-8", "replace")


def _format_json(text: str) -> str:
    try:
        return json.dumps(json.loads(text), indent=4, ensure_ascii=False)
    except ValueError:
        return text


def _format_xml(text: str) -> str:
    from xml.dom import minidom
    from xml.parsers.expat import ExpatError

    if "<!DOCTYPE" in text or "<!ENTITY" in text:
        return text  # never expand entity declarations
    try:
        pretty = minidom.parseString(text.encode("utf-8")).toprettyxml(indent="    ")
    except (ExpatError, ValueError):
        return text
    lines = [line for line in pretty.splitlines() if line.strip()]
    if not text.lstrip().startswith("<?xml"):
        lines = lines[1:]
    return "\n".join(lines)


class Printer:
    """Writes heads and bodies to standard output (and notes to standard
    error), coloured and formatted as asked.

    Args:
        stdout: Text stream of the output; its ``buffer`` (when it has one)
            receives raw body bytes.
        stderr: Text stream for warnings and the download progress.
        pretty: ``"all"``, ``"colors"``, ``"format"`` or ``"none"``; a bool
            means ``"all"``/``"none"``.
        style: Pygments style of highlighted bodies, or ``None``.
        quiet: Print nothing on standard output.
        silent: Print no notes (errors are printed).
    """

    def __init__(
        self,
        stdout: IO[str],
        stderr: IO[str],
        pretty: bool | str,
        *,
        style: str | None = None,
        quiet: bool = False,
        silent: bool = False,
    ) -> None:
        from rich.console import Console

        mode = ("all" if pretty else "none") if isinstance(pretty, bool) else pretty
        self.stdout = stdout
        self.stderr = stderr
        self.colors = mode in ("all", "colors")
        self.format = mode in ("all", "format")
        self.pretty = mode != "none"
        self.style = style
        self.quiet = quiet
        self.silent = silent
        self.console: Console = Console(
            file=stdout,
            force_terminal=True if self.colors else None,
            no_color=not self.colors,
            color_system="auto" if self.colors else None,
            highlight=False,
            soft_wrap=True,
        )
        self.err_console: Console = Console(file=stderr, highlight=False, soft_wrap=True)
        self._decoder: codecs.IncrementalDecoder | None = None
        self._stream_binary = False

    def head(
        self, lines: list[str], *, status_code: int | None = None, to_stderr: bool = False
    ) -> None:
        """Print a request or response head followed by a blank line.

        Args:
            lines: The first line then one line per header field.
            status_code: Set for a response head, to colour its status.
            to_stderr: Write to standard error (used while downloading).
        """
        if self.quiet and not to_stderr:
            return
        if not self.colors:
            stream = self.stderr if to_stderr else self.stdout
            stream.write("\n".join(lines) + "\n\n")
            stream.flush()
            return
        from rich.text import Text

        console = self.err_console if to_stderr else self.console
        first = Text(lines[0], style="bold")
        if status_code is not None:
            version, _, rest = lines[0].partition(" ")
            first = Text.assemble((version, "blue"), " ", (rest, status_style(status_code)))
        console.print(first)
        for line in lines[1:]:
            name, _, value = line.partition(":")
            console.print(Text.assemble((name, "cyan"), ":", value))
        console.print()

    def body(self, content: bytes, content_type: str, encoding: str | None) -> None:
        """Print a whole body: formatted when pretty, raw bytes otherwise.

        Args:
            content: The decoded body (content coding removed).
            content_type: The ``Content-Type`` value, or ``""``.
            encoding: Detected charset of the text when none is declared,
                or ``None`` for UTF-8.
        """
        if self.quiet:
            return
        if not self.pretty:
            self.raw(content)
            return
        if not content:
            return
        if is_binary(content):
            self.console.print(_BINARY_NOTE.format(size=len(content)), style="yellow", markup=False)
            return
        kind = body_kind(content_type, content)
        text = decode_text(content, content_type, encoding if kind != "json" else "utf-8")
        if self.format and kind == "json":
            text = _format_json(text)
        elif self.format and kind == "xml":
            text = _format_xml(text)
        self.text(text, kind)

    def text(self, text: str, kind: str = "text") -> None:
        """Print text, highlighted as ``kind`` when colours are on.

        Args:
            text: The text.
            kind: ``"json"``, ``"xml"``, ``"html"`` or ``"text"``.
        """
        if self.quiet:
            return
        end = "" if text.endswith("\n") else "\n"
        if self.colors and kind != "text":
            from rich.syntax import Syntax

            theme = self.style or "ansi_dark"
            syntax = Syntax(text.rstrip("\n"), kind, theme=theme, background_color="default")
            self.console.print(syntax)
        else:
            self.console.print(text, markup=False, end=end)

    def raw(self, chunk: bytes) -> None:
        """Write body bytes to standard output unchanged.

        Args:
            chunk: Bytes to write.
        """
        if not chunk or self.quiet:
            return
        self.stdout.flush()
        buffer: Any = getattr(self.stdout, "buffer", None)
        if buffer is not None:
            buffer.write(chunk)
            buffer.flush()
        else:
            self.stdout.write(chunk.decode("utf-8", "replace"))
            self.stdout.flush()

    def text_chunk(self, chunk: bytes, content_type: str, encoding: str | None) -> None:
        """Print one piece of a streamed body (``--stream``) as it arrives:
        text decoded incrementally, binary data noted once and dropped.

        Args:
            chunk: The next body bytes.
            content_type: The ``Content-Type`` value, or ``""``.
            encoding: Detected charset when none is declared.
        """
        if self.quiet or self._stream_binary:
            return
        if self._decoder is None:
            if is_binary(chunk):
                self._stream_binary = True
                self.console.print("[binary data not shown]", style="yellow", markup=False)
                return
            charset = charset_of(content_type) or encoding or "utf-8"
            try:
                self._decoder = codecs.getincrementaldecoder(charset)("replace")
            except LookupError:
                self._decoder = codecs.getincrementaldecoder("utf-8")("replace")
        text = self._decoder.decode(chunk)
        if text:
            self.console.print(text, markup=False, end="")
            self.console.file.flush()

    def write(self, text: str) -> None:
        """Write text to standard output even when quiet (``-w``).

        Args:
            text: The text, written as is.
        """
        self.stdout.write(text)
        self.stdout.flush()

    def separator(self) -> None:
        """End a printed body with a blank line."""
        if self.quiet:
            return
        if self.pretty:
            self.console.print()
        else:
            self.raw(b"\n\n")

    def meta(self, lines: list[str], *, to_stderr: bool = False) -> None:
        """Print metadata lines (elapsed time) followed by a blank line.

        Args:
            lines: ``"Name: value"`` lines.
            to_stderr: Write to standard error (used while downloading).
        """
        if self.quiet and not to_stderr:
            return
        if not self.colors:
            stream = self.stderr if to_stderr else self.stdout
            stream.write("".join(f"{line}\n" for line in lines) + "\n")
            stream.flush()
            return
        from rich.text import Text

        console = self.err_console if to_stderr else self.console
        for line in lines:
            name, _, value = line.partition(":")
            console.print(Text.assemble((name, "magenta"), ":", value))
        console.print()

    def note(self, message: str, style: str = "yellow") -> None:
        """Print a one-line note to standard error (not when silent).

        Args:
            message: The text (no markup is interpreted).
            style: Its rich style when standard error is a terminal.
        """
        if not self.silent:
            self.err_console.print(message, style=style, markup=False)

    def error(self, message: str) -> None:
        """Print a one-line error to standard error, even when silent.

        Args:
            message: The text (no markup is interpreted).
        """
        self.err_console.print(message, style="red", markup=False)
