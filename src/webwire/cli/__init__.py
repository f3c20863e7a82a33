"""The ``webwire`` command: send an HTTP request from the shell, or run
``webwire demo`` for a tour of the client against local servers.

Usage::

    webwire [METHOD] URL [ITEM ...] [OPTIONS]
    webwire demo [--backend NAME] [--download-size BYTES] [--h2-download-size BYTES]

Exit status: 0 success; 1 network, TLS or protocol error; 2 usage error or
invalid URL; 3/4/5 an unfollowed 3xx, a 4xx or a 5xx response with
``--check-status``; 6 too many redirects; 130 interrupted.
"""

from __future__ import annotations

import os
import sys

from webwire._exceptions import InvalidURL, TooManyRedirects, WebwireError

from ._args import UsageError, parse_request
from ._run import EXIT_ERROR, EXIT_OK, EXIT_TOO_MANY_REDIRECTS, EXIT_USAGE, describe_error

__all__ = ["main"]

_EXIT_INTERRUPTED = 130


def _rich_missing() -> bool:
    import importlib.util

    if importlib.util.find_spec("rich") is not None:
        return False
    print(
        "webwire: the command line needs rich: pip install 'webwire[cli]'",
        file=sys.stderr,
    )
    return True


def _request(argv: list[str]) -> int:
    from ._output import Printer
    from ._run import send

    try:
        spec = parse_request(argv)
    except UsageError as exc:
        print(f"webwire: error: {exc}", file=sys.stderr)
        print(
            "usage: webwire [METHOD] URL [ITEM ...] [OPTIONS] (see webwire --help)", file=sys.stderr
        )
        return EXIT_USAGE
    pretty = spec.pretty if spec.pretty is not None else sys.stdout.isatty()
    printer = Printer(sys.stdout, sys.stderr, pretty)
    try:
        return send(spec, printer)
    except TooManyRedirects as exc:
        printer.note(f"webwire: {describe_error(exc)}", style="red")
        return EXIT_TOO_MANY_REDIRECTS
    except InvalidURL as exc:
        printer.note(f"webwire: {describe_error(exc)}", style="red")
        return EXIT_USAGE
    except WebwireError as exc:
        printer.note(f"webwire: {describe_error(exc)}", style="red")
        return EXIT_ERROR
    except OSError as exc:
        if isinstance(exc, BrokenPipeError):
            return _broken_pipe()
        where = f" {exc.filename}" if exc.filename else ""
        printer.note(f"webwire: error:{where}: {exc.strerror or exc}", style="red")
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
    if _rich_missing():
        return EXIT_ERROR
    try:
        if args and args[0] == "demo":
            from ._demo import run_demo_command

            return run_demo_command(args[1:])
        try:
            return _request(args)
        except InvalidURL as exc:
            print(f"webwire: {describe_error(exc)}", file=sys.stderr)
            return EXIT_USAGE
    except KeyboardInterrupt:
        print("webwire: interrupted", file=sys.stderr)
        return _EXIT_INTERRUPTED
    except SystemExit as exc:
        return exc.code if isinstance(exc.code, int) else (EXIT_OK if exc.code is None else 1)
