"""Sending the request of the command line and writing out the response."""

from __future__ import annotations

import contextlib
import os
from typing import TYPE_CHECKING, Any

from multidict import CIMultiDict

from ._args import RequestSpec
from ._output import Printer, format_request_head, format_response_head

if TYPE_CHECKING:
    import webwire
    from webwire import Client, Request, Response

__all__ = [
    "EXIT_ERROR",
    "EXIT_OK",
    "EXIT_TOO_MANY_REDIRECTS",
    "EXIT_USAGE",
    "exit_status_for",
    "send",
]

EXIT_OK = 0
EXIT_ERROR = 1
EXIT_USAGE = 2
EXIT_TOO_MANY_REDIRECTS = 6


def exit_status_for(status_code: int, follow_redirects: bool) -> int:
    """The ``--check-status`` exit status of a final response (as HTTPie).

    Args:
        status_code: The final response's status code.
        follow_redirects: Whether redirects were being followed; a 3xx only
            counts as a failure when they were not.

    Returns:
        3 for an unfollowed 3xx, 4 for 4xx, 5 for 5xx, otherwise 0.
    """
    if 300 <= status_code < 400 and not follow_redirects:
        return 3
    if 400 <= status_code < 500:
        return 4
    if 500 <= status_code < 600:
        return 5
    return EXIT_OK


def _client(spec: RequestSpec) -> Client:
    import webwire

    options: dict[str, Any] = {
        "verify": spec.verify,
        "follow_redirects": spec.follow_redirects,
        "max_redirects": spec.max_redirects,
        "http1": spec.http1,
        "http2": spec.http2,
    }
    if spec.timeout is not None:
        options["timeout"] = webwire.Timeout(spec.timeout)
    return webwire.Client(**options)


def _target(request: Request) -> str:
    url = request.url
    return url.raw_path_qs or "/"


def _planned_version(spec: RequestSpec) -> str:
    """The HTTP version shown in the head of a request that got no response.

    HTTP/2 when it is the only version offered (``--http2``), otherwise
    HTTP/1.1. Over TLS with both offered the server's ALPN choice is not
    known without a response, so HTTP/1.1 is shown there too.
    """
    return "HTTP/2" if spec.http2 and not spec.http1 else "HTTP/1.1"


def _print_request(printer: Printer, request: Request, http_version: str, to_stderr: bool) -> None:
    """Print a request head with ``http_version`` on its request line, and
    its body (not while downloading)."""
    lines = format_request_head(
        request.method, _target(request), http_version, list(request.headers.items())
    )
    printer.head(lines, to_stderr=to_stderr)
    content: bytes | None
    try:
        content = request.content
    except Exception:
        content = None
    if content and not to_stderr:
        printer.body(content, request.headers.get("Content-Type", ""), None)
        printer.separator()


def _print_response(printer: Printer, response: Response, to_stderr: bool) -> None:
    lines = format_response_head(
        response.http_version,
        response.status_code,
        response.reason_phrase,
        list(response.headers.items()),
    )
    printer.head(lines, status_code=response.status_code, to_stderr=to_stderr)


def _print_exchange(printer: Printer, spec: RequestSpec, response: Response) -> None:
    """Print the heads of every hop of the exchange, as asked by -v/-I.

    With ``-v`` each request head is printed with the HTTP version of the
    response that answered it (``GET / HTTP/2``), which is only known once
    connected (ALPN), so request heads are printed when the response head
    has arrived.
    """
    to_stderr = spec.download is not None
    hops = [*response.history, response]
    if spec.verbose:
        for hop in hops:
            _print_request(printer, hop.request, hop.http_version, to_stderr)
            _print_response(printer, hop, to_stderr)
    elif spec.headers_only or (printer.pretty and spec.download is None):
        _print_response(printer, response, to_stderr)


def send(spec: RequestSpec, printer: Printer) -> int:
    """Send the request of ``spec`` with a blocking client and print or save
    the response.

    Args:
        spec: The parsed command line.
        printer: Where output goes.

    Returns:
        The exit status: 0, or 3/4/5 with ``--check-status`` (a download of
        a non-2xx response always fails with 4/5).

    Raises:
        webwire.WebwireError: The request failed (mapped to an exit status by
            the caller).
        OSError: The download file could not be written.
    """
    headers: CIMultiDict[str] = CIMultiDict(spec.headers)
    with _client(spec) as client:
        request = client.build_request(
            spec.method,
            spec.url,
            headers=headers,
            content=spec.content,
            data=spec.data,
            files=spec.files,
        )
        try:
            response = client.send(request, stream=True)
        except Exception:
            if spec.verbose:
                _print_request(printer, request, _planned_version(spec), spec.download is not None)
            raise
        try:
            _print_exchange(printer, spec, response)
            return _finish(printer, spec, response)
        finally:
            response.close()


def _finish(printer: Printer, spec: RequestSpec, response: Response) -> int:
    status = exit_status_for(response.status_code, spec.follow_redirects)
    if spec.download is not None:
        if not 200 <= response.status_code < 300:
            printer.note(
                f"webwire: not saving {spec.download}: HTTP {response.status_code} "
                f"{response.reason_phrase}".rstrip(),
                style="red",
            )
            return status or EXIT_ERROR
        _download(printer, response, spec.download)
    elif spec.headers_only:
        pass
    elif printer.pretty:
        response.read()
        printer.body(response.content, response.headers.get("Content-Type", ""), response.encoding)
    else:
        for chunk in response.iter_bytes():
            printer.raw(chunk)
    if spec.check_status and status and not printer.pretty:
        printer.note(f"webwire: warning: HTTP {response.status_code} {response.reason_phrase}")
    return status if spec.check_status else EXIT_OK


def _total_size(response: Response) -> int | None:
    if response.headers.get("Content-Encoding", "identity").lower() != "identity":
        return None
    try:
        total = int(response.headers.get("Content-Length", ""))
    except ValueError:
        return None
    return total if total >= 0 else None


def _download(printer: Printer, response: Response, path: str) -> None:
    from rich.progress import (
        BarColumn,
        DownloadColumn,
        Progress,
        TextColumn,
        TimeRemainingColumn,
        TransferSpeedColumn,
    )

    total = _total_size(response)
    progress = Progress(
        TextColumn("[bold]{task.description}"),
        BarColumn(),
        DownloadColumn(),
        TransferSpeedColumn(),
        TimeRemainingColumn(),
        console=printer.err_console,
        transient=False,
        disable=not printer.err_console.is_terminal,
    )
    received = 0
    file = open(path, "wb")  # noqa: SIM115 - removed again if the transfer fails
    try:
        with file, progress:
            task = progress.add_task(os.path.basename(path) or path, total=total)
            for chunk in response.iter_bytes():
                file.write(chunk)
                received += len(chunk)
                progress.update(task, completed=received)
    except BaseException:
        with contextlib.suppress(OSError):
            os.remove(path)
        raise
    printer.note(f"Saved {received} bytes to {path}", style="green")


def describe_error(exc: webwire.WebwireError) -> str:
    """The one-line message of a failed request: ``"ClassName: message"``.

    Args:
        exc: The webwire exception.

    Returns:
        The message without the ``webwire:`` prefix.
    """
    text = " ".join(str(exc).split())
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__
