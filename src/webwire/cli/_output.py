"""Terminal and pipe output of the ``webwire`` command.

On a terminal the heads are coloured and a JSON body is pretty-printed with
rich; through a pipe the body is written as raw bytes, unchanged, and the
heads (only with ``-v``/``-I``) as plain text.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from typing import IO, TYPE_CHECKING, Any

if TYPE_CHECKING:
    from rich.console import Console

__all__ = [
    "Printer",
    "format_request_head",
    "format_response_head",
    "is_binary",
    "looks_like_json",
    "status_style",
]

_BINARY_NOTE = "[binary data, {size} bytes, not shown on a terminal: use -o FILE or a pipe]"


def status_style(status_code: int) -> str:
    """The rich style of a status code by its class (RFC 9110 section 15).

    Args:
        status_code: The response status code.

    Returns:
        ``"green"`` for 2xx, ``"cyan"`` for 1xx/3xx, ``"yellow"`` for 4xx and
        ``"red"`` for 5xx.
    """
    if 200 <= status_code < 300:
        return "bold green"
    if status_code < 200 or status_code < 400:
        return "bold cyan"
    if status_code < 500:
        return "bold yellow"
    return "bold red"


def format_request_head(
    method: str, target: str, http_version: str, headers: Iterable[tuple[str, str]]
) -> list[str]:
    """The request line and header lines (RFC 9112 sections 3 and 5).

    Args:
        method: Request method, for example ``"GET"``.
        target: Request target, origin form (``"/path?query"``).
        http_version: ``"HTTP/1.1"`` and so on.
        headers: Header fields in order.

    Returns:
        ``["GET /path HTTP/1.1", "Host: example.org", ...]``.
    """
    return [f"{method} {target} {http_version}", *(f"{k}: {v}" for k, v in headers)]


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
    media = content_type.split(";", 1)[0].strip().lower()
    labelled = media == "application/json" or media.endswith("+json")
    shaped = body.lstrip()[:1] in (b"{", b"[")
    if not (labelled or shaped):
        return False
    try:
        json.loads(body)
    except ValueError:
        return False
    return True


def is_binary(body: bytes) -> bool:
    """Whether a body is binary: it has a NUL byte or is not UTF-8 text.

    Args:
        body: The body bytes (only the first 8 KiB are examined).

    Returns:
        ``True`` for binary data.
    """
    head = body[:8192]
    if b"\0" in head:
        return True
    try:
        head.decode("utf-8")
    except UnicodeDecodeError as exc:
        return exc.start < len(head) - 3
    return False


class Printer:
    """Writes heads and bodies to standard output (and notes to standard
    error), coloured when ``pretty``.

    Args:
        stdout: Text stream of the output; its ``buffer`` (when it has one)
            receives raw body bytes.
        stderr: Text stream for warnings and the download progress.
        pretty: Colour and format the output.
    """

    def __init__(self, stdout: IO[str], stderr: IO[str], pretty: bool) -> None:
        from rich.console import Console

        self.stdout = stdout
        self.stderr = stderr
        self.pretty = pretty
        self.console: Console = Console(
            file=stdout,
            force_terminal=True if pretty else None,
            no_color=not pretty,
            highlight=False,
            soft_wrap=True,
        )
        self.err_console: Console = Console(file=stderr, highlight=False, soft_wrap=True)

    def head(
        self, lines: list[str], *, status_code: int | None = None, to_stderr: bool = False
    ) -> None:
        """Print a request or response head followed by a blank line.

        Args:
            lines: The first line then one line per header field.
            status_code: Set for a response head, to colour its status.
            to_stderr: Write to standard error (used while downloading).
        """
        if not self.pretty:
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
            encoding: Charset of the text, or ``None`` for UTF-8.
        """
        if not self.pretty:
            self.raw(content)
            return
        if not content:
            return
        if looks_like_json(content_type, content):
            from rich.json import JSON

            self.console.print(JSON(content.decode("utf-8", "replace"), indent=2))
        elif is_binary(content):
            self.console.print(_BINARY_NOTE.format(size=len(content)), style="yellow", markup=False)
        else:
            text = content.decode(encoding or "utf-8", "replace")
            self.console.print(text, markup=False, end="" if text.endswith("\n") else "\n")

    def raw(self, chunk: bytes) -> None:
        """Write body bytes to standard output unchanged.

        Args:
            chunk: Bytes to write.
        """
        if not chunk:
            return
        self.stdout.flush()
        buffer: Any = getattr(self.stdout, "buffer", None)
        if buffer is not None:
            buffer.write(chunk)
            buffer.flush()
        else:
            self.stdout.write(chunk.decode("utf-8", "replace"))
            self.stdout.flush()

    def separator(self) -> None:
        """End a printed request body with a blank line."""
        if self.pretty:
            self.console.print()
        else:
            self.raw(b"\n\n")

    def note(self, message: str, style: str = "yellow") -> None:
        """Print a one-line note to standard error.

        Args:
            message: The text (no markup is interpreted).
            style: Its rich style when standard error is a terminal.
        """
        self.err_console.print(message, style=style, markup=False)
