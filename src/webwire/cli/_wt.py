"""``webwire wt URL``: talk to a WebTransport server from the shell
(draft-ietf-webtrans-http3).

Each line is sent on a new bidirectional stream, which is then ended
(FIN); everything the server sends back on that stream, up to its end, is
the reply. With ``--datagram`` each line is sent as one datagram (RFC 9297)
and the reply is the next datagram received. On a terminal the command is
interactive: a ``> `` prompt, replies printed as ``< reply`` with the time
they arrived; ``/datagram TEXT`` and ``/stream TEXT`` send one line the
other way, ``/help`` and ``/quit`` (or Ctrl-D) end it. When standard input
is not a terminal each of its lines is sent and each reply is written to
standard output, one per line (binary replies in hexadecimal), so ``echo
hi | webwire wt https://host/echo`` prints ``hi``.

The client is :class:`webwire.webtransport.sync.WebTransportClient`; the
exchanges run the session's coroutines on the blocking backend.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import IO, Any

from webwire._exceptions import InvalidURL, TimeoutException, WebwireError

from ._args import _parse_verify, parse_header
from ._parser import UsageError, _Parser
from ._run import EXIT_ERROR, EXIT_OK, EXIT_TIMEOUT, EXIT_USAGE, classify_error, describe_error

__all__ = ["WtSpec", "build_wt_parser", "parse_wt", "run_wt_command"]

EXIT_INTERRUPTED = 130
_PROMPT = "> "
_HEX_SHOWN = 256

_DESCRIPTION = """\
Open a WebTransport session (HTTP/3) and exchange messages. Each line is
sent on a new bidirectional stream, and what the server sends back on it is
printed; with --datagram each line is sent as a datagram and the next
datagram received is printed. On a terminal the command prompts for lines
(/help lists its commands); otherwise each line of standard input is sent
and each reply written to standard output, one per line.
"""

_EPILOG = """\
interactive commands:
  /datagram TEXT            send TEXT as a datagram
  /stream TEXT              send TEXT on a new bidirectional stream
  /quit                     close the session and exit (also Ctrl-D)
  //text                    send '/text'

examples:
  echo hello | webwire wt https://localhost:4433/echo --insecure
  webwire wt --datagram -H 'Authorization: Bearer T' https://host/wt

exit status:
  0 success, 1 error (the server refused or closed the session), 2 timeout
  (connecting, or a reply that did not come within --wait) or usage error,
  6 connection error, 7 TLS error, 130 interrupted.
"""


@dataclass
class WtSpec:
    """The parsed ``webwire wt`` command line.

    Attributes:
        url: ``https://`` WebTransport URL.
        headers: Extra CONNECT header fields, in order.
        verify: ``True``, ``False`` or a CA bundle path.
        datagram: Send lines as datagrams instead of on streams.
        timeout: Seconds allowed to establish the session.
        wait: Seconds to wait for each reply.
        max_size: Largest stream reply read, bytes.
        verbose: Print the session's details on standard error.
    """

    url: str
    headers: list[tuple[str, str]] = field(default_factory=list)
    verify: bool | str = True
    datagram: bool = False
    timeout: float = 10.0
    wait: float = 5.0
    max_size: int = 1024 * 1024
    verbose: bool = False


def build_wt_parser() -> argparse.ArgumentParser:
    """The argument parser of ``webwire wt URL [OPTIONS]``.

    Returns:
        A parser whose errors raise :class:`UsageError`.
    """
    parser = _Parser(
        prog="webwire wt",
        usage="webwire wt URL [OPTIONS]",
        description=_DESCRIPTION,
        epilog=_EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
        allow_abbrev=False,
    )
    add = parser.add_argument
    add("url", metavar="URL", help="https:// WebTransport URL (host/path gets https://)")
    add(
        "-H", "--header", action="append", default=[], metavar="'NAME: VALUE'",
        help="add a header field to the CONNECT request (repeatable)",
    )
    add("--datagram", action="store_true", help="send each line as a datagram (RFC 9297)")
    add("--verify", metavar="yes|no|PATH", help="verify TLS certificates (or with this CA bundle)")
    add("-k", "--insecure", action="store_true", help="do not verify TLS certificates")
    add("--cacert", metavar="PATH", help="CA bundle to verify certificates with")
    add(
        "--timeout", type=float, default=10.0, metavar="SECONDS",
        help="time allowed to establish the session (default 10)",
    )
    add(
        "--wait", type=float, default=5.0, metavar="SECONDS",
        help="time allowed for each reply (default 5)",
    )
    add(
        "--max-size", type=int, default=1024 * 1024, metavar="BYTES",
        help="largest stream reply read (default 1 MiB)",
    )
    add("-v", "--verbose", action="store_true", help="print the session's details on stderr")
    return parser


def wt_url(text: str) -> str:
    """The URL argument as an ``https`` WebTransport URL (``host/path``
    gets ``https://``; ``:4433/echo`` means ``https://localhost:4433/echo``).

    Raises:
        InvalidURL: Not a WebTransport URL.
    """
    from webwire.webtransport import parse_webtransport_url

    candidate = text.strip()
    if candidate.startswith(":"):
        candidate = "https://localhost" + candidate
    elif "://" not in candidate:
        candidate = "https://" + candidate
    parse_webtransport_url(candidate)
    return candidate


def parse_wt(argv: list[str]) -> WtSpec:
    """Parse ``URL [OPTIONS]`` (the arguments after ``wt``).

    Raises:
        UsageError: A bad option or header field.
        InvalidURL: The URL is not a WebTransport URL.
    """
    ns = build_wt_parser().parse_args(argv)
    spec = WtSpec(url=wt_url(ns.url))
    spec.headers = [parse_header(text) for text in ns.header]
    for name, _ in spec.headers:
        if name.startswith(":"):
            raise UsageError(f"-H {name}: pseudo-header fields are set by webwire")
    for name, value in (("--timeout", ns.timeout), ("--wait", ns.wait)):
        if not value > 0:
            raise UsageError(f"{name} must be a positive number of seconds")
    if ns.max_size < 1:
        raise UsageError("--max-size must be >= 1 byte")
    spec.verify = _parse_verify(ns)
    spec.datagram = ns.datagram
    spec.timeout = ns.timeout
    spec.wait = ns.wait
    spec.max_size = ns.max_size
    spec.verbose = ns.verbose
    return spec


# --- the exchange -----------------------------------------------------------------


class _Exchange:
    """Sends one message and reads its reply on the blocking backend."""

    def __init__(self, session: Any, spec: WtSpec) -> None:
        from webwire._backends import get_backend

        self.session = session
        self.spec = spec
        self.backend = get_backend("sync")

    def send(self, data: bytes, datagram: bool) -> bytes:
        """Send ``data``; return the reply.

        Raises:
            TimeoutException: No reply within ``spec.wait`` seconds.
            WebwireError: The session or stream failed.
        """
        from webwire._sync import run_sync
        from webwire.webtransport._utils import run_with_timeout

        if datagram:
            return run_sync(self._datagram(data))
        what = "the reply on the stream"
        return run_sync(
            run_with_timeout(self.backend, self.spec.wait, lambda: self._stream(data), what)
        )

    async def _datagram(self, data: bytes) -> bytes:
        datagrams = self.session.datagrams
        await datagrams.send(data)
        reply: bytes = await datagrams.receive(timeout=self.spec.wait)
        return reply

    async def _stream(self, data: bytes) -> bytes:
        stream = await self.session.create_bidirectional_stream()
        await stream.write(data, end_stream=True)
        reply: bytes = await stream.read_all(max_size=self.spec.max_size)
        return reply


def _show(data: bytes) -> str:
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        shown = data[:_HEX_SHOWN].hex(" ")
        more = " ..." if len(data) > _HEX_SHOWN else ""
        return f"[binary, {len(data)} bytes] {shown}{more}"


def _line_mode(exchange: _Exchange, stdin: Any, out: Any, err: IO[str]) -> int:
    """Send each line of ``stdin`` and write each reply on its own line."""
    from ._ws import _read_lines

    status = EXIT_OK
    for line in _read_lines(stdin):
        try:
            reply = exchange.send(line, exchange.spec.datagram)
        except TimeoutException:
            err.write(f"webwire: no reply within {exchange.spec.wait} s\n")
            status = EXIT_TIMEOUT
            continue
        try:
            text = reply.decode("utf-8")
        except UnicodeDecodeError:
            text = reply.hex()
        out.write(text if text.endswith("\n") else text + "\n")
        out.flush()
    return status


def _terminal(exchange: _Exchange, out: IO[str], err: IO[str]) -> int:
    """The interactive prompt."""

    def note(arrow: str, text: str) -> None:
        stamp = datetime.now().strftime("%H:%M:%S.%f")[:-3]
        out.write(f"[{stamp}] {arrow}{text}\n")
        out.flush()

    while True:
        try:
            line = input(_PROMPT)
        except EOFError:
            out.write("\n")
            return EXIT_OK
        except KeyboardInterrupt:
            out.write("\n")
            return EXIT_INTERRUPTED
        datagram = exchange.spec.datagram
        if line.startswith("/") and not line.startswith("//"):
            name, _, rest = line[1:].partition(" ")
            if name in ("quit", "exit", "q"):
                return EXIT_OK
            if name == "help":
                out.write(_EPILOG.split("\n\n")[0] + "\n")
                continue
            if name not in ("datagram", "stream"):
                note("* ", f"unknown command /{name} (/help lists them; //text sends /text)")
                continue
            datagram, line = name == "datagram", rest
        elif line.startswith("//"):
            line = line[1:]
        try:
            reply = exchange.send(line.encode("utf-8"), datagram)
        except TimeoutException:
            note("* ", f"no reply within {exchange.spec.wait} s")
            continue
        except WebwireError as exc:
            note("* ", describe_error(exc))
            if exchange.session.is_closed:
                return EXIT_ERROR
            continue
        note("< ", _show(reply))


def _isatty(stream: Any) -> bool:
    try:
        return bool(stream.isatty())
    except (AttributeError, ValueError, OSError):
        return False


# --- the command ------------------------------------------------------------------


def run_wt_command(
    argv: list[str],
    *,
    stdin: Any = None,
    stdout: IO[str] | None = None,
    stderr: IO[str] | None = None,
    interactive: bool | None = None,
    _opener: Callable[..., Any] | None = None,
) -> int:
    """``webwire wt URL [OPTIONS]``.

    Args:
        argv: The arguments after ``wt``.
        stdin: Binary standard input (default ``sys.stdin.buffer``).
        stdout: Text standard output.
        stderr: Text standard error.
        interactive: Force the mode; ``None`` is interactive when standard
            input is a terminal.

    Returns:
        The exit status (see ``webwire wt --help``).
    """
    import ssl

    from webwire.webtransport import ClientConfig
    from webwire.webtransport.sync import WebTransportClient

    out = stdout if stdout is not None else sys.stdout
    err = stderr if stderr is not None else sys.stderr
    if stdin is None:
        stdin = getattr(sys.stdin, "buffer", sys.stdin)
    try:
        spec = parse_wt(argv)
    except UsageError as exc:
        err.write(f"webwire wt: error: {exc} (see webwire wt --help)\n")
        return EXIT_USAGE
    except InvalidURL as exc:
        err.write(f"webwire: {describe_error(exc)}\n")
        return EXIT_USAGE
    if interactive is None:
        interactive = _isatty(stdin)
    config = ClientConfig(
        verify_mode=ssl.CERT_NONE if spec.verify is False else ssl.CERT_REQUIRED,
        ca_certs=spec.verify if isinstance(spec.verify, str) else None,
        connect_timeout=spec.timeout,
        read_timeout=spec.wait,
    )
    with WebTransportClient(config, _opener=_opener) as client:
        try:
            session = client.connect(url=spec.url, headers=dict(spec.headers))
        except WebwireError as exc:
            status, message = classify_error(exc)
            err.write(f"webwire: {message}\n")
            return status
        inner = getattr(session, "wrapped", session)
        if spec.verbose:
            err.write(f"* WebTransport session with {spec.url}\n")
            limit = getattr(getattr(inner, "datagrams", None), "max_datagram_size", None)
            if limit is not None:
                err.write(f"* largest datagram: {limit} bytes\n")
        exchange = _Exchange(inner, spec)
        try:
            if interactive:
                return _terminal(exchange, out, err)
            return _line_mode(exchange, stdin, out, err)
        except WebwireError as exc:
            status, message = classify_error(exc)
            err.write(f"webwire: {message}\n")
            return status if status != EXIT_OK else EXIT_ERROR
