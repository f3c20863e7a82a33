"""``webwire ws URL``: talk to a WebSocket server from the shell (RFC 6455).

On a terminal the command is interactive: each line typed is sent as a text
message, incoming messages are printed with the time they arrived
(``[12:00:01.123] < text``) and sent ones are echoed (``> text``). Lines
starting with ``/`` are commands: ``/ping [DATA]``, ``/close [CODE
[REASON]]``, ``/binary HEX``, ``/help`` and ``/quit`` (``//text`` sends
``/text``). Ctrl-D closes the connection normally.

When standard input is not a terminal each of its lines is sent as a
message and every incoming message is written to standard output, one per
line (a binary one in hexadecimal, or as raw bytes with ``--binary-out
raw``). Once standard input ends, incoming messages are still printed for
``--wait`` seconds (1 by default), then the connection is closed with the
closing handshake (RFC 6455 section 7.1.2); the server closing it ends the
command sooner. So ``echo hello | webwire ws wss://host/echo`` prints
``hello``.

The client is :func:`webwire.websocket.sync.connect`: a reader thread
prints incoming messages while the main thread reads standard input.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import sys
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import datetime
from typing import IO, TYPE_CHECKING, Any, Protocol

import yarl

from webwire._exceptions import (
    ConnectionClosed,
    ConnectionClosedError,
    InvalidStatus,
    InvalidURL,
    WebwireError,
)

from ._args import _parse_verify, parse_header
from ._parser import UsageError, _Parser
from ._run import (
    EXIT_ERROR,
    EXIT_OK,
    EXIT_TIMEOUT,
    EXIT_USAGE,
    classify_error,
    describe_error,
    exit_status_for,
)

if TYPE_CHECKING:
    from rich.console import Console

    from webwire.websocket.sync import ClientConnection

__all__ = [
    "EXIT_INTERRUPTED",
    "WsSpec",
    "build_ws_parser",
    "parse_ws",
    "run_ws_command",
    "ws_url",
]

EXIT_INTERRUPTED = 130
_DEFAULT_WAIT = 1.0
_DEFAULT_TIMEOUT = 10.0
_PROMPT = "> "
_HEX_SHOWN = 256
"""Bytes of a binary message shown in hexadecimal on the terminal."""
_NORMAL_CLOSURES = (1000, 1001)

_DESCRIPTION = """\
Open a WebSocket connection (RFC 6455) and exchange messages. On a terminal
each line typed is sent as a text message and incoming messages are printed
with timestamps; lines starting with '/' are commands (/help lists them).
Otherwise each line of standard input is sent as a message and incoming
messages are written to standard output, one per line, until standard input
ends and --wait seconds passed. Over TLS the handshake runs over HTTP/2
(RFC 8441) when the server offers it, else HTTP/1.1.
"""

_EPILOG = """\
interactive commands:
  /ping [DATA]              send a ping, print the round-trip time in ms
  /close [CODE [REASON]]    close with this code (default 1000) and exit
  /binary HEX               send a binary message ('/binary 68 69')
  /quit                     close normally and exit (also Ctrl-D)
  //text                    send '/text'

examples:
  echo hello | webwire ws wss://echo.example/ws
  webwire ws -v --subprotocol chat -H 'Authorization: Bearer T' wss://host/chat

exit status:
  0 closed normally (by either side), 1 closed with an error code or dropped,
  or another error, 2 timeout (opening, or no message with --once) or usage
  error, 3/4/5 the handshake answered with a 3xx/4xx/5xx status, 6
  connection, DNS or proxy error, 7 TLS error, 130 interrupted.
"""


@dataclass
class WsSpec:
    """The parsed ``webwire ws`` command line.

    Attributes:
        url: ``ws://`` or ``wss://`` URI.
        headers: Extra handshake header fields, in order.
        subprotocols: Subprotocols offered, most preferred first.
        origin: ``Origin`` field value (RFC 6454), or ``None``.
        compression: Offer permessage-deflate (RFC 7692).
        verify: ``True``, ``False`` or a CA bundle path.
        proxy: Proxy URL, or ``None`` (the environment's proxy applies).
        http_version: ``"auto"``, ``"HTTP/1.1"``, ``"HTTP/2"`` or
            ``"HTTP/3"``.
        ping_interval: Seconds between keepalive pings, ``None`` for none.
        max_size: Largest incoming message in bytes, ``None`` for no limit.
        verbose: Print the handshake and what was negotiated (standard
            error).
        timeout: Seconds allowed for connecting and the opening handshake.
        wait: Seconds to keep printing messages after standard input ended;
            ``None`` for the default (1 s, no limit with ``once``).
        once: Close after the first incoming message.
        binary: Send standard input lines as binary messages.
        binary_out: ``"hex"`` or ``"raw"``: how binary messages are written
            to a standard output that is not a terminal.
    """

    url: str
    headers: list[tuple[str, str]] = field(default_factory=list)
    subprotocols: list[str] = field(default_factory=list)
    origin: str | None = None
    compression: bool = True
    verify: bool | str = True
    proxy: str | None = None
    http_version: str = "auto"
    ping_interval: float | None = 20.0
    max_size: int | None = 1024 * 1024
    verbose: bool = False
    timeout: float = _DEFAULT_TIMEOUT
    wait: float | None = None
    once: bool = False
    binary: bool = False
    binary_out: str = "hex"


def build_ws_parser() -> argparse.ArgumentParser:
    """The argument parser of ``webwire ws URL [OPTIONS]``.

    Returns:
        A parser whose errors raise :class:`UsageError`.
    """
    parser = _Parser(
        prog="webwire ws",
        usage="webwire ws URL [OPTIONS]",
        description=_DESCRIPTION,
        epilog=_EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
        allow_abbrev=False,
    )
    add = parser.add_argument
    add("url", metavar="URL", help="ws:// or wss:// URI (http/https are taken as ws/wss)")
    add(
        "-H", "--header", action="append", default=[], metavar="'NAME: VALUE'",
        help="add a handshake header field (repeatable)",
    )
    add(
        "--subprotocol", action="append", default=[], metavar="NAME",
        help="offer this subprotocol (repeatable, most preferred first)",
    )
    add("--origin", metavar="ORIGIN", help="Origin header field of the handshake")
    add(
        "--no-compression", action="store_true",
        help="do not offer permessage-deflate compression (RFC 7692)",
    )
    add("--verify", metavar="yes|no|PATH", help="verify TLS certificates (or with this CA bundle)")
    add("-k", "--insecure", action="store_true", help="do not verify TLS certificates")
    add("--cacert", metavar="PATH", help="CA bundle to verify certificates with")
    add("--proxy", metavar="URL", help="proxy: http(s):// (a CONNECT tunnel) or socks4/socks5 URL")
    versions = parser.add_mutually_exclusive_group()
    versions.add_argument(
        "--http2", dest="http_version", action="store_const", const="HTTP/2",
        help="handshake over HTTP/2 only (RFC 8441 extended CONNECT)",
    )
    versions.add_argument(
        "--http1.1", dest="http_version", action="store_const", const="HTTP/1.1",
        help="handshake over HTTP/1.1 only (Upgrade)",
    )
    versions.add_argument(
        "--http3", dest="http_version", action="store_const", const="HTTP/3",
        help="handshake over HTTP/3 only (QUIC, RFC 9220 extended CONNECT; wss:// URLs)",
    )
    add(
        "--ping-interval", type=float, default=20.0, metavar="SECONDS",
        help="seconds between keepalive pings (default 20; 0: none)",
    )
    add(
        "--max-size", type=int, default=1024 * 1024, metavar="BYTES",
        help="largest incoming message (default 1 MiB; 0: no limit)",
    )
    add(
        "--timeout", type=float, default=_DEFAULT_TIMEOUT, metavar="SECONDS",
        help="time allowed to connect and finish the opening handshake (default 10)",
    )
    add(
        "--wait", type=float, metavar="SECONDS",
        help="after standard input ends, keep printing messages this long before "
        "closing (default 1; with --once: until the message arrives)",
    )
    add(
        "-1", "--once", action="store_true",
        help="close and exit after the first incoming message (standard input not a terminal)",
    )
    add(
        "-b", "--binary", action="store_true",
        help="send standard input lines as binary messages instead of text",
    )
    add(
        "--binary-out", choices=("hex", "raw"), default="hex",
        help="write binary messages in hexadecimal (default) or as raw bytes",
    )
    add(
        "-v", "--verbose", action="store_true",
        help="print the handshake request and response, HTTP version, extensions and "
        "subprotocol on standard error",
    )
    return parser


def ws_url(text: str) -> str:
    """Turn the URL argument into a ``ws``/``wss`` URI.

    ``host/path`` gets ``ws://``; ``:8000/path`` means
    ``ws://localhost:8000/path``; ``http``/``https`` become ``ws``/``wss``
    (RFC 6455 section 3).

    Args:
        text: The URL as typed.

    Returns:
        The URI.

    Raises:
        InvalidURL: It cannot be parsed, has no host, a fragment, or another
            scheme.
    """
    candidate = text.strip()
    if candidate.startswith(":"):
        candidate = "ws://localhost" + candidate
    elif "://" not in candidate:
        candidate = "ws://" + candidate
    try:
        url = yarl.URL(candidate)
        host = url.host
    except (ValueError, TypeError) as exc:
        raise InvalidURL(f"invalid URL {text!r}: {exc}") from exc
    scheme = {"http": "ws", "https": "wss"}.get(url.scheme, url.scheme)
    if scheme not in ("ws", "wss"):
        raise InvalidURL(f"invalid URL {text!r}: scheme must be ws or wss")
    if not host:
        raise InvalidURL(f"invalid URL {text!r}: no host")
    if url.fragment:
        raise InvalidURL(f"invalid URL {text!r}: a WebSocket URI has no fragment")
    return str(url.with_scheme(scheme))


def parse_ws(argv: list[str]) -> WsSpec:
    """Parse ``URL [OPTIONS]`` (the arguments after ``ws``).

    Args:
        argv: The arguments.

    Returns:
        The :class:`WsSpec`.

    Raises:
        UsageError: A bad option or header.
        InvalidURL: The URL is not a WebSocket URI.
    """
    ns = build_ws_parser().parse_args(argv)
    spec = WsSpec(url=ws_url(ns.url))
    spec.headers = [parse_header(text) for text in ns.header]
    for name, _ in spec.headers:
        if name.lower() in ("sec-websocket-key", "sec-websocket-version", "upgrade", "connection"):
            raise UsageError(f"-H {name}: set by the WebSocket handshake itself")
    for name in ns.subprotocol:
        if not name or any(c in name for c in " ,\t\r\n\0"):
            raise UsageError(f"--subprotocol {name!r} is not a token (RFC 6455 section 4.1)")
    if ns.origin is not None and any(c in ns.origin for c in "\r\n\0"):
        raise UsageError("--origin has CR, LF or NUL in it")
    for name, value in (
        ("--timeout", ns.timeout),
        ("--wait", ns.wait),
        ("--ping-interval", ns.ping_interval),
    ):
        if value is not None and not value >= 0:
            raise UsageError(f"{name} must be >= 0 seconds")
    if ns.timeout == 0:
        raise UsageError("--timeout must be a positive number of seconds")
    if ns.max_size < 0:
        raise UsageError("--max-size must be >= 0 bytes")
    if ns.proxy is not None:
        proxy = yarl.URL(ns.proxy if "://" in ns.proxy else "http://" + ns.proxy)
        if proxy.scheme not in ("http", "https", "socks5", "socks5h", "socks4", "socks4a"):
            raise UsageError(f"--proxy {ns.proxy!r}: unsupported proxy scheme {proxy.scheme!r}")
        spec.proxy = str(proxy)
    spec.subprotocols = list(ns.subprotocol)
    spec.origin = ns.origin
    spec.compression = not ns.no_compression
    spec.verify = _parse_verify(ns)
    spec.http_version = ns.http_version or "auto"
    spec.ping_interval = ns.ping_interval or None
    spec.max_size = ns.max_size or None
    spec.verbose = ns.verbose
    spec.timeout = ns.timeout
    spec.wait = ns.wait
    spec.once = ns.once
    spec.binary = ns.binary
    spec.binary_out = ns.binary_out
    return spec


# --- connecting -------------------------------------------------------------------


def _connect(spec: WsSpec) -> ClientConnection:
    from webwire.websocket.sync import connect

    return connect(
        spec.url,
        additional_headers=spec.headers,
        subprotocols=spec.subprotocols or None,
        origin=spec.origin,
        compression="deflate" if spec.compression else None,
        verify=spec.verify,
        proxy=spec.proxy,
        http_version=spec.http_version,  # type: ignore[arg-type]
        ping_interval=spec.ping_interval,
        max_size=spec.max_size,
        open_timeout=spec.timeout,
    )


def _handshake_request_lines(ws: ClientConnection) -> list[str]:
    """The handshake request head as sent: the ``GET`` with ``Upgrade`` on
    HTTP/1.1 (RFC 6455 section 4.1), the extended ``CONNECT`` on HTTP/2
    (RFC 8441 section 4) and HTTP/3 (RFC 9220 section 3)."""
    request = ws.request
    url = request.url
    target = url.raw_path_qs or "/"
    headers = list(request.headers.items())
    if ws.http_version == "HTTP/1.1":
        return [f"GET {target} HTTP/1.1", *(f"{k}: {v}" for k, v in headers)]
    dropped = {"upgrade", "connection", "sec-websocket-key", "keep-alive", "host"}
    kept = [(k, v) for k, v in headers if k.lower() not in dropped]
    authority = url.host or ""
    if url.explicit_port is not None:
        authority = f"{authority}:{url.explicit_port}"
    pseudo = [":protocol: websocket", f":scheme: {url.scheme}", f":authority: {authority}"]
    return [f"CONNECT {target} {ws.http_version}", *pseudo, *(f"{k}: {v}" for k, v in kept)]


def _print_handshake(ws: ClientConnection, err: IO[str]) -> None:
    """``-v``: the handshake heads and what was negotiated, on ``err``."""
    from ._output import Printer, format_response_head

    printer = Printer(err, err, _isatty(err))
    printer.head(_handshake_request_lines(ws), to_stderr=True)
    response = ws.response
    lines = format_response_head(
        response.http_version,
        response.status_code,
        response.reason_phrase,
        list(response.headers.items()),
    )
    printer.head(lines, status_code=response.status_code, to_stderr=True)
    extensions = response.headers.get("Sec-WebSocket-Extensions") or "none"
    printer.meta(
        [
            f"HTTP version: {ws.http_version}",
            f"Extensions: {extensions}",
            f"Subprotocol: {ws.subprotocol or 'none'}",
        ],
        to_stderr=True,
    )


def _print_refusal(exc: InvalidStatus, err: IO[str]) -> None:
    """``-v``: the status, header fields and body of a refused handshake."""
    from ._output import Printer

    printer = Printer(err, err, _isatty(err))
    lines = [f"HTTP {exc.status_code}", *(f"{k}: {v}" for k, v in exc.headers.items())]
    printer.head(lines, status_code=exc.status_code, to_stderr=True)
    if exc.body:
        text = exc.body[:2000].decode("utf-8", "replace")
        err.write(text if text.endswith("\n") else text + "\n")
        err.flush()


def _isatty(stream: Any) -> bool:
    try:
        return bool(stream.isatty())
    except (AttributeError, ValueError, OSError):
        return False


class _BytesOut(Protocol):
    """Where line mode writes messages: a binary stream."""

    def write(self, data: bytes, /) -> int: ...

    def flush(self) -> None: ...


# --- the exchange -----------------------------------------------------------------


class _Closer:
    """Closes the connection once, from whichever thread asks first; later
    callers wait until that close has finished."""

    def __init__(self, ws: ClientConnection) -> None:
        self.ws = ws
        self.requested: tuple[int, str] | None = None
        self._lock = threading.Lock()

    def close(self, code: int = 1000, reason: str = "") -> None:
        """Close with ``code`` and ``reason`` (checked before anything is
        sent: a :class:`~webwire.LocalProtocolError` leaves it open)."""
        from webwire._exceptions import LocalProtocolError

        with self._lock:
            if self.requested is not None:
                return
            self.requested = (code, reason)  # set first: the reader sees who closed
            try:
                self.ws.close(code, reason)
            except LocalProtocolError:
                self.requested = None
                raise

    def abort(self) -> None:
        """Close after an interruption, ignoring errors."""
        with contextlib.suppress(Exception):
            self.close(1001, "")


def _closure_status(we_closed: bool, error: ConnectionClosed | None, err: IO[str]) -> int:
    """Exit status once the connection is closed, with a line on ``err``
    when the server closed it with an error code or it was dropped.

    Args:
        we_closed: The command started the closing handshake (it asked to
            close before the connection ended).
        error: What receiving raised at the end (``None``: a normal end).
        err: Standard error.
    """
    if error is None or we_closed or not isinstance(error, ConnectionClosedError):
        return EXIT_OK
    sent = error.sent
    if sent is not None and error.rcvd_then_sent is not True:
        # The client failed the connection (RFC 6455 section 7.1.7): a
        # message over --max-size (1009), a protocol error (1002)...
        reason = f" ({sent.reason})" if sent.reason else ""
        message = f"webwire: closed the connection with code {sent.code}{reason}"
    elif error.code in _NORMAL_CLOSURES:
        return EXIT_OK
    elif error.rcvd is None:
        message = "webwire: the connection was dropped (no close frame, 1006)"
    else:
        reason = f" ({error.reason})" if error.reason else ""
        message = f"webwire: the server closed the connection with code {error.code}{reason}"
    err.write(message + "\n")
    err.flush()
    return EXIT_ERROR


def _read_lines(stdin: Any) -> Iterator[bytes]:
    """Lines of standard input without their end (``\\n`` or ``\\r\\n``).

    A real file descriptor is read with ``os.read`` (never through the
    buffered object, whose lock a thread blocked in it would hold at exit).
    """
    fileno: int | None
    try:
        fileno = stdin.fileno()
    except (AttributeError, ValueError, OSError):
        fileno = None
    if fileno is None:
        for line in iter(stdin.readline, b""):
            yield _strip_eol(line)
        return
    pending = b""
    while True:
        chunk = os.read(fileno, 65536)
        if not chunk:
            break
        pending += chunk
        *lines, pending = pending.split(b"\n")
        for line in lines:
            yield _strip_eol(line)
    if pending:
        yield _strip_eol(pending)


def _strip_eol(line: bytes) -> bytes:
    if line.endswith(b"\n"):
        line = line[:-1]
    return line[:-1] if line.endswith(b"\r") else line


def _write_message(out: _BytesOut, message: str | bytes, binary_out: str) -> None:
    if isinstance(message, str):
        out.write(message.encode("utf-8") + b"\n")
    elif binary_out == "raw":
        out.write(message)
    else:
        out.write(message.hex().encode("ascii") + b"\n")
    out.flush()


def _line_mode(
    ws: ClientConnection, spec: WsSpec, stdin: Any, out: _BytesOut, err: IO[str]
) -> int:
    """Send standard input's lines, write incoming messages, close after
    standard input ended and ``wait`` passed (or after one message with
    ``--once``)."""
    closer = _Closer(ws)
    finished = threading.Event()
    problems: list[str] = []
    wait = spec.wait if spec.wait is not None else (None if spec.once else _DEFAULT_WAIT)

    def feed() -> None:
        try:
            for number, line in enumerate(_read_lines(stdin), 1):
                if spec.binary:
                    ws.send(line)
                    continue
                try:
                    text = line.decode("utf-8")
                except UnicodeDecodeError:
                    problems.append(f"line {number} of standard input is not UTF-8 (see --binary)")
                    break  # replies to the lines sent are still printed
                ws.send(text)
            finished.wait(wait)
        except ConnectionClosed:
            return
        except WebwireError as exc:
            problems.append(f"sending failed: {describe_error(exc)}")
        except OSError as exc:
            problems.append(f"cannot read standard input: {exc.strerror or exc}")
        try:
            closer.close()
        except WebwireError:
            pass

    feeder = threading.Thread(target=feed, name="webwire-ws-stdin", daemon=True)
    feeder.start()
    error: ConnectionClosed | None = None
    received = 0
    try:
        for message in ws:
            _write_message(out, message, spec.binary_out)
            received += 1
            if spec.once:
                break
    except ConnectionClosed as exc:
        error = exc
    finally:
        we_closed = closer.requested is not None
        finished.set()
    closer.close()
    for problem in problems:
        err.write(f"webwire: {problem}\n")
    if problems:
        return EXIT_ERROR
    if spec.once and received == 0 and error is None:
        err.write("webwire: no message arrived before closing\n")
        return EXIT_TIMEOUT
    return _closure_status(we_closed, error, err)


class _Terminal:
    """The interactive session: a prompt on the main thread, incoming
    messages printed by a reader thread above it."""

    def __init__(self, ws: ClientConnection, spec: WsSpec, out: IO[str], err: IO[str]) -> None:
        from rich.console import Console

        self.ws = ws
        self.spec = spec
        self.out = out
        self.err = err
        self.tty = _isatty(out)
        self.console: Console = Console(file=out, highlight=False, soft_wrap=True)
        self.closer = _Closer(ws)
        self.lock = threading.Lock()
        self.prompting = False
        self.ended = threading.Event()
        self.error: ConnectionClosed | None = None
        self.we_closed = False
        self.readline: Any = None
        with contextlib.suppress(ImportError):
            import readline

            self.readline = readline

    # -- output ------------------------------------------------------------------

    def show(self, arrow: str, style: str, *parts: tuple[str, str]) -> None:
        """Print one timestamped line above the prompt: ``[time] arrow``
        then ``(text, style)`` parts."""
        from rich.text import Text

        stamp = datetime.now().strftime("%H:%M:%S.%f")[:-3]
        line = Text.assemble((f"[{stamp}] ", "dim"), (arrow, style), *parts)
        with self.lock:
            redraw = self.prompting and self.tty
            if redraw:
                self.out.write("\r\x1b[K")
            self.console.print(line)
            if redraw:
                typed = self.readline.get_line_buffer() if self.readline is not None else ""
                self.out.write(_PROMPT + typed)
            self.out.flush()

    def show_message(self, arrow: str, style: str, message: str | bytes) -> None:
        """Print a message: text as is, binary as hexadecimal (the first
        256 bytes)."""
        if isinstance(message, str):
            self.show(arrow, style, (message, ""))
            return
        shown = message[:_HEX_SHOWN].hex(" ")
        more = " ..." if len(message) > _HEX_SHOWN else ""
        self.show(arrow, style, (f"[binary, {len(message)} bytes] ", "yellow"), (shown + more, ""))

    def note(self, text: str, style: str = "magenta") -> None:
        self.show("* ", style, (text, style))

    # -- the reader thread ---------------------------------------------------------

    def read(self) -> None:
        try:
            for message in self.ws:
                self.show_message("< ", "bold green", message)
        except ConnectionClosed as exc:
            self.error = exc
        except Exception as exc:  # pragma: no cover - reported, never raised in a thread
            self.note(f"receiving failed: {exc}", "red")
        self.we_closed = self.closer.requested is not None
        self.ended.set()
        if not self.we_closed:
            code = self.error.code if self.error is not None else 1000
            text = self.error.reason if self.error is not None else ""
            reason = f" ({text})" if text else ""
            self.note(f"connection closed by the server: {code}{reason}")
        self._wake_prompt()

    def _wake_prompt(self) -> None:
        """End a blocked ``input()`` of the main thread (POSIX: a SIGINT to
        that thread; elsewhere the next Enter ends the session)."""
        import signal

        with self.lock:
            if not self.prompting:
                return
            kill = getattr(signal, "pthread_kill", None)
            if kill is None:
                self.out.write("\r\x1b[K(press Enter)\n" if self.tty else "")
                return
            ident = threading.main_thread().ident
            if ident is not None and ident != threading.get_ident():
                kill(ident, signal.SIGINT)

    # -- the main thread -----------------------------------------------------------

    def prompt(self) -> str:
        with self.lock:
            if self.ended.is_set():
                raise EOFError
            self.prompting = True
        try:
            return input(_PROMPT)
        finally:
            with self.lock:
                self.prompting = False

    def run(self) -> int:
        reader = threading.Thread(target=self.read, name="webwire-ws-reader", daemon=True)
        reader.start()
        status = EXIT_OK
        try:
            while not self.ended.is_set():
                try:
                    line = self.prompt()
                except EOFError:
                    if self.tty and not self.ended.is_set():
                        self.out.write("\n")
                    break
                except KeyboardInterrupt:
                    if self.ended.is_set():
                        break
                    self.out.write("\n")
                    self.closer.abort()
                    status = EXIT_INTERRUPTED
                    break
                if self.tty and len(_PROMPT + line) < self.console.width:
                    with self.lock:
                        self.out.write("\x1b[1A\r\x1b[K")  # the typed line becomes the echo
                if self.command(line):
                    break
        finally:
            with contextlib.suppress(Exception):
                self.closer.close()
            reader.join(5.0)
        if self.we_closed and self.closer.requested is not None and status == EXIT_OK:
            code, reason = self.closer.requested
            self.note(f"connection closed: {code}" + (f" ({reason})" if reason else ""))
        if status != EXIT_OK:
            return status
        return _closure_status(self.we_closed, self.error, self.err)

    def command(self, line: str) -> bool:
        """Handle one typed line; ``True`` ends the session."""
        if line.startswith("//") or not line.startswith("/"):
            text = line[1:] if line.startswith("//") else line
            return self.send(text)
        name, _, rest = line[1:].partition(" ")
        rest = rest.strip()
        if name in ("quit", "exit", "q"):
            return True
        if name == "help":
            for help_line in _EPILOG.split("\n\n")[0].splitlines()[1:]:
                self.note(help_line.strip(), "cyan")
            return False
        if name == "ping":
            return self.ping(rest)
        if name == "binary":
            try:
                data = bytes.fromhex(rest)
            except ValueError:
                self.note("/binary takes hexadecimal bytes, like '/binary 68 69'", "red")
                return False
            return self.send(data)
        if name == "close":
            return self.close(rest)
        self.note(f"unknown command /{name} (/help lists them; //text sends /text)", "red")
        return False

    def send(self, message: str | bytes) -> bool:
        try:
            self.ws.send(message)
        except ConnectionClosed:
            return True
        self.show_message("> ", "bold cyan", message)
        return False

    def ping(self, data: str) -> bool:
        try:
            waiter = self.ws.ping(data.encode("utf-8") if data else None)
            seconds = waiter.wait(self.spec.timeout)
        except ConnectionClosed:
            return True
        except WebwireError as exc:
            self.note(f"/ping: {describe_error(exc)}", "red")
            return False
        self.note(f"pong in {seconds * 1000:.2f} ms")
        return False

    def close(self, arguments: str) -> bool:
        code_text, _, reason = arguments.partition(" ")
        code = 1000
        if code_text:
            try:
                code = int(code_text)
            except ValueError:
                self.note("usage: /close [CODE [REASON]]", "red")
                return False
        try:
            self.closer.close(code, reason.strip())
        except WebwireError as exc:
            self.note(f"cannot close: {describe_error(exc)}", "red")
            return False
        return True


# --- the command ------------------------------------------------------------------


def run_ws_command(
    argv: list[str],
    *,
    stdin: Any = None,
    stdout: IO[str] | None = None,
    stderr: IO[str] | None = None,
    interactive: bool | None = None,
) -> int:
    """``webwire ws URL [OPTIONS]``.

    Args:
        argv: The arguments after ``ws``.
        stdin: Binary standard input (default ``sys.stdin.buffer``).
        stdout: Text standard output (its ``buffer``, when it has one,
            receives the messages in line mode).
        stderr: Text standard error.
        interactive: Force the mode; ``None`` is interactive when standard
            input is a terminal.

    Returns:
        The exit status (see ``webwire ws --help``).
    """
    out = stdout if stdout is not None else sys.stdout
    err = stderr if stderr is not None else sys.stderr
    if stdin is None:
        stdin = getattr(sys.stdin, "buffer", sys.stdin)
    try:
        spec = parse_ws(argv)
    except UsageError as exc:
        err.write(f"webwire ws: error: {exc} (see webwire ws --help)\n")
        return EXIT_USAGE
    except InvalidURL as exc:
        err.write(f"webwire: {describe_error(exc)}\n")
        return EXIT_USAGE
    if interactive is None:
        interactive = _isatty(stdin) and not spec.once
    try:
        ws = _connect(spec)
    except InvalidStatus as exc:
        if spec.verbose:
            _print_refusal(exc, err)
        err.write(f"webwire: {exc}\n")
        return exit_status_for(exc.status_code, False) or EXIT_ERROR
    except InvalidURL as exc:
        err.write(f"webwire: {describe_error(exc)}\n")
        return EXIT_USAGE
    except WebwireError as exc:
        status, message = classify_error(exc)
        err.write(f"webwire: {message}\n")
        return status
    try:
        if spec.verbose:
            _print_handshake(ws, err)
        if interactive:
            return _Terminal(ws, spec, out, err).run()
        binary_out: _BytesOut = getattr(out, "buffer", None) or _TextBytes(out)
        return _line_mode(ws, spec, stdin, binary_out, err)
    finally:
        with contextlib.suppress(Exception):
            ws.close()


class _TextBytes:
    """A bytes writer over a text stream (for a ``StringIO`` standard
    output)."""

    def __init__(self, stream: IO[str]) -> None:
        self.stream = stream

    def write(self, data: bytes) -> int:
        self.stream.write(data.decode("utf-8", "replace"))
        return len(data)

    def flush(self) -> None:
        self.stream.flush()
