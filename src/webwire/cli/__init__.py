"""The ``webwire`` command: send an HTTP request from the shell, or run
``webwire demo`` for a tour of the client against local servers.

Usage::

    webwire [METHOD] URL [ITEM ...] [OPTIONS]
    webwire ws URL [OPTIONS]
    webwire wt URL [OPTIONS]
    webwire demo [--backend NAME] [--download-size BYTES] [--h2-download-size BYTES]

``webwire ws`` exchanges WebSocket messages (see ``webwire ws --help``),
``webwire wt`` WebTransport streams and datagrams (``webwire wt --help``).
The request syntax is HTTPie's; common curl options work too (see
``webwire --help``).

Exit status: 0 success; 1 other error; 2 timeout, usage error or invalid
URL; 3 too many redirects (or an unfollowed 3xx with ``--check-status``);
4/5 a 4xx/5xx response with ``--check-status`` (always when downloading);
6 connection, DNS or proxy error; 7 TLS error; 130 interrupted.
"""

from __future__ import annotations

import os
import platform
import sys

from webwire._exceptions import InvalidURL, WebwireError

from ._args import UsageError, parse_request
from ._run import EXIT_ERROR, EXIT_OK, EXIT_USAGE, classify_error, describe_error

__all__ = ["main", "versions"]

_EXIT_INTERRUPTED = 130
_ENGINES = ("h2", "httptools", "websockets", "yarl", "multidict", "python-socks", "rich")


def versions() -> list[tuple[str, str]]:
    """The versions of webwire, the packages it runs on and Python.

    Returns:
        ``(name, version)`` pairs; optional packages that are not installed
        (``python-socks``) are left out.
    """
    from importlib import metadata

    from webwire import __version__

    found = [("webwire", __version__)]
    for name in _ENGINES:
        try:
            found.append((name, metadata.version(name)))
        except metadata.PackageNotFoundError:
            continue
    found.append((platform.python_implementation(), platform.python_version()))
    return found


def _print_version() -> int:
    for name, version in versions():
        print(f"{name} {version}")
    return EXIT_OK


def _request(argv: list[str]) -> int:
    from ._output import Printer
    from ._run import send

    try:
        spec = parse_request(argv)
    except UsageError as exc:
        print(f"webwire: error: {exc} (see webwire --help)", file=sys.stderr)
        return EXIT_USAGE
    stdout_tty = sys.stdout.isatty()
    pretty = spec.pretty if spec.pretty is not None else ("all" if stdout_tty else "none")
    printer = Printer(
        sys.stdout,
        sys.stderr,
        pretty,
        style=spec.style,
        quiet=spec.quiet > 0,
        silent=spec.silent or spec.quiet > 1,
    )
    try:
        return send(spec, printer, stdout_tty=stdout_tty)
    except UsageError as exc:
        printer.error(f"webwire: error: {exc}")
        return EXIT_USAGE
    except InvalidURL as exc:
        printer.error(f"webwire: {describe_error(exc)}")
        return EXIT_USAGE
    except WebwireError as exc:
        status, message = classify_error(exc)
        printer.error(f"webwire: {message}")
        return status
    except OSError as exc:
        if isinstance(exc, BrokenPipeError):
            return _broken_pipe()
        where = f" {exc.filename}" if exc.filename else ""
        printer.error(f"webwire: error:{where}: {exc.strerror or exc}")
        return EXIT_ERROR


def _broken_pipe() -> int:
    """Standard output was closed by the reader (``webwire URL | head``)."""
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        os.close(devnull)
    except (OSError, ValueError):
        pass
    return EXIT_OK


def main(argv: list[str] | None = None) -> int:
    """Run the ``webwire`` command.

    Args:
        argv: Arguments after the program name; ``None`` reads
            ``sys.argv[1:]``.

    Returns:
        The exit status (see the module docstring). Usage errors, invalid
        URLs and failed requests print one line to standard error; no
        traceback is shown.
    """
    args = sys.argv[1:] if argv is None else list(argv)
    try:
        if args and args[0] == "ws":
            from ._ws import run_ws_command

            return run_ws_command(args[1:])
        if args and args[0] == "wt":
            from ._wt import run_wt_command

            return run_wt_command(args[1:])
        if args and args[0] == "demo":
            from ._demo import run_demo_command

            return run_demo_command(args[1:])
        if "--version" in args[: args.index("--")] if "--" in args else "--version" in args:
            return _print_version()
        if not args or args == ["-h"]:
            args = ["--help"]  # -h is --headers (HTTPie), but alone it can only mean help
        try:
            return _request(args)
        except InvalidURL as exc:
            print(f"webwire: {describe_error(exc)}", file=sys.stderr)
            return EXIT_USAGE
    except KeyboardInterrupt:
        print("webwire: interrupted", file=sys.stderr)
        return _EXIT_INTERRUPTED
    except BrokenPipeError:
        return _broken_pipe()
    except SystemExit as exc:
        return exc.code if isinstance(exc.code, int) else (EXIT_OK if exc.code is None else 1)
