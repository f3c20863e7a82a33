"""``webwire demo``: a tour of the client against loopback servers.

The tour starts hypercorn on two loopback ports (cleartext and TLS, see
``_demo_server``) and runs the same list of steps on each backend: asyncio
(``asyncio.run``), trio (``trio.run``) and blocking code (``webwire.Client``).
The async steps are written once and run on both event loops; the blocking
steps mirror them one to one. A step returns a short description of what it
saw and raises when the client misbehaved. Adding a protocol to the tour is
adding a :class:`Step` to :data:`ASYNC_STEPS` and :data:`SYNC_STEPS` (in
``_demo_steps``; this module runs them and shows the results).

Each step names the HTTP version it runs on (the ``HTTP`` column) and checks
it on every response, on the client side (``Response.http_version``) and,
where the demo app echoes it, on the server side too. The HTTP/1.1 steps
use cleartext, or TLS with only HTTP/1.1 offered; the HTTP/2 steps use TLS
with both versions offered (the server picks h2 by ALPN, RFC 7301), except
the h2c step, which speaks HTTP/2 with prior knowledge on the cleartext port
(RFC 9113 section 3.3). The HTTP/3 steps (RFC 9114) use the UDP port of the
TLS listener: once after the server advertised it with ``Alt-Svc`` (RFC
7838, a client made with ``http3=True``), once forced
(``http_versions={"HTTP/3"}``). The WebTransport steps
(draft-ietf-webtrans-http3 over HTTP/3) use aioquic's WebTransport server on
a UDP port of its own (``_demo_wt_server``): a bidirectional stream echoed,
a datagram echoed, and a session the server closes with a code and a reason.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Callable
from contextlib import AbstractContextManager
from typing import TYPE_CHECKING

import webwire

from ._demo_server import DemoServers, MissingExtra, require_demo_extra
from ._demo_steps import (
    _TIMEOUT,
    ASYNC_STEPS,
    DEFAULT_DOWNLOAD_SIZE,
    DEFAULT_H2_DOWNLOAD_SIZE,
    H1,
    H2,
    H3,
    SYNC_STEPS,
    DemoContext,
    Step,
    StepResult,
)

if TYPE_CHECKING:
    from rich.console import Console
    from rich.table import Table

__all__ = [
    "ASYNC_STEPS",
    "BACKENDS",
    "H1",
    "H2",
    "H3",
    "SYNC_STEPS",
    "DemoContext",
    "Step",
    "StepResult",
    "run_demo",
    "run_demo_command",
]

BACKENDS = ("asyncio", "trio", "sync")


def _outcome(step: Step, detail: str, error: BaseException | None) -> tuple[bool, str]:
    if error is None:
        return True, detail
    if step.expected is not None and isinstance(error, step.expected):
        return True, f"{type(error).__name__}, as expected"
    text = " ".join(str(error).split())
    return False, f"{type(error).__name__}: {text}" if text else type(error).__name__


Report = Callable[[StepResult], None]


async def _tour_async(backend: str, ctx: DemoContext, report: Report) -> None:
    """Run :data:`ASYNC_STEPS` with one ``AsyncClient`` on the running loop."""
    started = time.perf_counter()
    try:
        client = webwire.AsyncClient(verify=ctx.ca_path, timeout=_TIMEOUT)
    except Exception as exc:
        report(
            StepResult(
                backend,
                "open client",
                False,
                _outcome(Step("", None), "", exc)[1],
                time.perf_counter() - started,
            )
        )
        return
    async with client:
        for step in ASYNC_STEPS:
            started = time.perf_counter()
            detail, error = "", None
            try:
                detail = await step.run(client, ctx)
            except Exception as exc:
                error = exc
            ok, text = _outcome(step, detail, error)
            elapsed = time.perf_counter() - started
            report(StepResult(backend, step.name, ok, text, elapsed, step.http_version))


def _tour_sync(ctx: DemoContext, report: Report) -> None:
    """Run :data:`SYNC_STEPS` with one blocking ``Client``."""
    started = time.perf_counter()
    try:
        client = webwire.Client(verify=ctx.ca_path, timeout=_TIMEOUT)
    except Exception as exc:
        report(
            StepResult(
                "sync",
                "open client",
                False,
                _outcome(Step("", None), "", exc)[1],
                time.perf_counter() - started,
            )
        )
        return
    with client:
        for step in SYNC_STEPS:
            started = time.perf_counter()
            detail, error = "", None
            try:
                detail = step.run(client, ctx)
            except Exception as exc:
                error = exc
            ok, text = _outcome(step, detail, error)
            elapsed = time.perf_counter() - started
            report(StepResult("sync", step.name, ok, text, elapsed, step.http_version))


def _run_backend(backend: str, ctx: DemoContext, report: Report) -> None:
    """Run the tour on one backend, reporting a crash of the loop as a step."""
    started = time.perf_counter()
    try:
        if backend == "asyncio":
            asyncio.run(_tour_async("asyncio", ctx, report))
        elif backend == "trio":
            import trio

            trio.run(_tour_async, "trio", ctx, report)
        else:
            _tour_sync(ctx, report)
    except Exception as exc:
        text = _outcome(Step("", None), "", exc)[1]
        report(StepResult(backend, "run", False, text, time.perf_counter() - started))


def _table() -> Table:
    from rich.table import Table

    table = Table(title="webwire demo", title_style="bold")
    table.add_column("backend", style="bold")
    table.add_column("step")
    table.add_column("HTTP")
    table.add_column("result")
    table.add_column("time (ms)", justify="right")
    return table


def _add_row(table: Table, result: StepResult) -> None:
    from rich.text import Text

    mark = Text("\u2713 ", style="bold green") if result.ok else Text("\u2717 ", style="bold red")
    detail = Text(result.detail, style="green" if result.ok else "red")
    table.add_row(
        result.backend,
        result.name,
        result.http_version,
        mark + detail,
        f"{result.elapsed * 1000:.1f}",
    )


def run_demo(
    backends: tuple[str, ...] = BACKENDS,
    download_size: int = DEFAULT_DOWNLOAD_SIZE,
    console: Console | None = None,
    *,
    h2_download_size: int = DEFAULT_H2_DOWNLOAD_SIZE,
) -> list[StepResult]:
    """Start the demo servers, run the tour on each backend and print a table.

    Args:
        backends: Which of ``"asyncio"``, ``"trio"`` and ``"sync"`` to tour,
            in order.
        download_size: Size of the HTTP/1.1 streamed download, in bytes.
        console: Where the table goes (default: standard output).
        h2_download_size: Size of the HTTP/2 streamed download, in bytes.

    Returns:
        One :class:`StepResult` per step and backend, in the order run.

    Raises:
        MissingExtra: A package of ``webwire[demo]`` is not installed.
        RuntimeError: The demo servers did not start.
    """
    require_demo_extra()
    from rich.console import Console, Group
    from rich.live import Live
    from rich.progress import (
        BarColumn,
        DownloadColumn,
        Progress,
        TextColumn,
        TimeRemainingColumn,
        TransferSpeedColumn,
    )

    console = console or Console()
    table = _table()
    progress = Progress(
        TextColumn("  {task.description}"),
        BarColumn(),
        DownloadColumn(),
        TransferSpeedColumn(),
        TimeRemainingColumn(),
        console=console,
    )
    results: list[StepResult] = []

    def report(result: StepResult) -> None:
        results.append(result)
        _add_row(table, result)

    live = console.is_terminal
    display: AbstractContextManager[object] = (
        Live(Group(table, progress), console=console, refresh_per_second=8)
        if live
        else contextlib.nullcontext()
    )
    with DemoServers() as servers, display:
        ctx = DemoContext(
            servers.http_url,
            servers.https_url,
            servers.ca_path,
            wt_url=servers.wt_url,
            download_size=download_size,
            h2_download_size=h2_download_size,
            progress=progress if live else None,
        )
        for backend in backends:
            _run_backend(backend, ctx, report)
    if not live:
        console.print(table)
    return results


def run_demo_command(argv: list[str]) -> int:
    """``webwire demo [--backend NAME ...] [--download-size BYTES]
    [--h2-download-size BYTES]``.

    Args:
        argv: Arguments after ``demo``.

    Returns:
        0 when every step succeeded, 1 when one failed or the servers could
        not start (a one-line message on standard error), 2 on a usage error.
    """
    import sys

    from ._parser import UsageError, _Parser

    parser = _Parser(
        prog="webwire demo",
        description=(
            "Start local HTTP and HTTPS servers and tour the client through them "
            "on asyncio, trio and blocking code: HTTP/1.1 over cleartext and TLS, "
            "HTTP/2 negotiated by TLS ALPN (concurrent requests multiplexed on one "
            "connection, a streamed download, an upload), h2c with prior knowledge, "
            "HTTP/3 over QUIC (after Alt-Svc, and forced), "
            "and WebSocket over HTTP/1.1 and HTTP/2 (RFC 8441) with compression and pings."
        ),
    )
    parser.add_argument(
        "--backend",
        action="append",
        choices=BACKENDS,
        help="tour only this backend (repeatable; default: all)",
    )
    parser.add_argument(
        "--download-size",
        type=int,
        default=DEFAULT_DOWNLOAD_SIZE,
        metavar="BYTES",
        help="size of the HTTP/1.1 streamed download (default 50 MiB)",
    )
    parser.add_argument(
        "--h2-download-size",
        type=int,
        default=DEFAULT_H2_DOWNLOAD_SIZE,
        metavar="BYTES",
        help="size of the HTTP/2 streamed download (default 16 MiB)",
    )
    try:
        ns = parser.parse_args(argv)
        if ns.download_size < 0:
            raise UsageError("--download-size must be >= 0")
        if ns.h2_download_size < 0:
            raise UsageError("--h2-download-size must be >= 0")
    except UsageError as exc:
        print(f"webwire demo: error: {exc}", file=sys.stderr)
        return 2
    from rich.console import Console

    console = Console()
    try:
        results = run_demo(
            tuple(ns.backend or BACKENDS),
            ns.download_size,
            console,
            h2_download_size=ns.h2_download_size,
        )
    except (MissingExtra, RuntimeError) as exc:
        print(f"webwire demo: {exc}", file=sys.stderr)
        return 1
    failed = [r for r in results if not r.ok]
    passed = len(results) - len(failed)
    style = "bold red" if failed or not results else "bold green"
    console.print(f"{passed}/{len(results)} steps passed", style=style, highlight=False)
    return 1 if failed or not results else 0
