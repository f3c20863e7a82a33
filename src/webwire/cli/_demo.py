"""``webwire demo``: a tour of the client against loopback servers.

The tour starts hypercorn on two loopback ports (cleartext and TLS, see
``_demo_server``) and runs the same list of steps on each backend: asyncio
(``asyncio.run``), trio (``trio.run``) and blocking code (``webwire.Client``).
The async steps are written once and run on both event loops; the blocking
steps mirror them one to one. A step returns a short description of what it
saw and raises when the client misbehaved. Adding a protocol to the tour is
adding a :class:`Step` to :data:`ASYNC_STEPS` and :data:`SYNC_STEPS`.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Awaitable, Callable
from contextlib import AbstractContextManager
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import webwire

from ._demo_server import DemoServers, MissingExtra, require_demo_extra

if TYPE_CHECKING:
    from rich.console import Console
    from rich.progress import Progress, TaskID
    from rich.table import Table

__all__ = [
    "ASYNC_STEPS",
    "BACKENDS",
    "SYNC_STEPS",
    "DemoContext",
    "Step",
    "StepResult",
    "run_demo",
    "run_demo_command",
]

BACKENDS = ("asyncio", "trio", "sync")
DEFAULT_DOWNLOAD_SIZE = 50 * 1024 * 1024
_TIMEOUT = webwire.Timeout(10.0)


class StepFailed(Exception):
    """A demo step saw something other than what it expected."""


@dataclass
class DemoContext:
    """What every step gets: where the servers are and how to report.

    Attributes:
        http_url: Base URL of the cleartext server.
        https_url: Base URL of the TLS server.
        ca_path: PEM file of the demo CA (the client's ``verify=``).
        download_size: Bytes of the streamed download step.
        progress: Progress display for the download, or ``None``.
    """

    http_url: str
    https_url: str
    ca_path: str
    download_size: int = DEFAULT_DOWNLOAD_SIZE
    progress: Progress | None = None


AsyncStepFn = Callable[["webwire.AsyncClient", DemoContext], Awaitable[str]]
SyncStepFn = Callable[["webwire.Client", DemoContext], str]


@dataclass(frozen=True)
class Step:
    """One step of the tour.

    Attributes:
        name: Short label shown in the table.
        run: The step; returns a description of the outcome and raises on
            failure.
        expected: Exception type the step expects; seeing it is a success.
    """

    name: str
    run: Any
    expected: type[BaseException] | None = None


@dataclass
class StepResult:
    """The outcome of one step on one backend.

    Attributes:
        backend: ``"asyncio"``, ``"trio"`` or ``"sync"``.
        name: The step's label.
        ok: Whether the step succeeded.
        detail: What was seen (or the error).
        elapsed: Wall time of the step, in seconds.
    """

    backend: str
    name: str
    ok: bool
    detail: str
    elapsed: float


def _check(condition: bool, message: str) -> None:
    if not condition:
        raise StepFailed(message)


def _describe(response: webwire.Response) -> str:
    return f"{response.http_version} {response.status_code} {response.reason_phrase}".strip()


# Async steps: run unchanged on asyncio and trio.


async def a_get_http(client: webwire.AsyncClient, ctx: DemoContext) -> str:
    """GET /get over cleartext HTTP/1.1; the query must be echoed (RFC 9110 section 9.3.1)."""
    response = await client.get(ctx.http_url + "/get", params={"tour": "yes"})
    _check(response.status_code == 200, f"status {response.status_code}")
    _check(response.json()["args"] == {"tour": "yes"}, "query not echoed")
    return f"{_describe(response)}, {len(response.content)} bytes JSON"


async def a_get_https(client: webwire.AsyncClient, ctx: DemoContext) -> str:
    """GET /get over TLS, the certificate verified against the demo CA."""
    response = await client.get(ctx.https_url + "/get")
    _check(response.status_code == 200, f"status {response.status_code}")
    return f"{_describe(response)}, verified by the demo CA"


async def a_post_json(client: webwire.AsyncClient, ctx: DemoContext) -> str:
    """POST a JSON body and check the echo (RFC 8259)."""
    payload = {"name": "webwire", "numbers": [1, 2, 3]}
    response = await client.post(ctx.http_url + "/post", json=payload)
    _check(response.status_code == 200, f"status {response.status_code}")
    _check(response.json()["json"] == payload, "JSON not echoed")
    return f"{_describe(response)}, JSON echoed"


async def a_download(client: webwire.AsyncClient, ctx: DemoContext) -> str:
    """Stream ``ctx.download_size`` bytes and count them, with a progress bar."""
    tracker = _Tracker(ctx, "download")
    async with client.stream("GET", f"{ctx.http_url}/bytes/{ctx.download_size}") as response:
        _check(response.status_code == 200, f"status {response.status_code}")
        async for chunk in response.aiter_bytes():
            tracker.advance(len(chunk))
    return tracker.finish()


async def a_redirects(client: webwire.AsyncClient, ctx: DemoContext) -> str:
    """Follow three 302 redirects (RFC 9110 section 15.4.3); ``history`` has 3."""
    response = await client.get(ctx.http_url + "/redirect/3")
    _check(response.status_code == 200, f"status {response.status_code}")
    _check(len(response.history) == 3, f"history has {len(response.history)} responses")
    return f"3 redirects followed to {response.url.path}"


async def a_cookies(client: webwire.AsyncClient, ctx: DemoContext) -> str:
    """A cookie set by the server is sent back on the next request (RFC 6265)."""
    await client.get(ctx.http_url + "/cookies/set", params={"flavour": "oatmeal"})
    response = await client.get(ctx.http_url + "/cookies")
    cookies = response.json()["cookies"]
    _check(cookies.get("flavour") == "oatmeal", f"server saw cookies {cookies}")
    return "server cookie sent back"


async def a_timeout(client: webwire.AsyncClient, ctx: DemoContext) -> str:
    """A 2 s response with a 0.5 s read timeout must raise ``ReadTimeout``."""
    await client.get(ctx.http_url + "/delay/2", timeout=webwire.Timeout(0.5))
    raise StepFailed("no timeout after 0.5 s")


async def a_server_error(client: webwire.AsyncClient, ctx: DemoContext) -> str:
    """``raise_for_status()`` on a 500 must raise ``HTTPStatusError``."""
    response = await client.get(ctx.http_url + "/status/500")
    response.raise_for_status()
    raise StepFailed("raise_for_status() did not raise")


# Blocking steps: the same scenarios on webwire.Client.


def s_get_http(client: webwire.Client, ctx: DemoContext) -> str:
    """GET /get over cleartext HTTP/1.1; the query must be echoed (RFC 9110 section 9.3.1)."""
    response = client.get(ctx.http_url + "/get", params={"tour": "yes"})
    _check(response.status_code == 200, f"status {response.status_code}")
    _check(response.json()["args"] == {"tour": "yes"}, "query not echoed")
    return f"{_describe(response)}, {len(response.content)} bytes JSON"


def s_get_https(client: webwire.Client, ctx: DemoContext) -> str:
    """GET /get over TLS, the certificate verified against the demo CA."""
    response = client.get(ctx.https_url + "/get")
    _check(response.status_code == 200, f"status {response.status_code}")
    return f"{_describe(response)}, verified by the demo CA"


def s_post_json(client: webwire.Client, ctx: DemoContext) -> str:
    """POST a JSON body and check the echo (RFC 8259)."""
    payload = {"name": "webwire", "numbers": [1, 2, 3]}
    response = client.post(ctx.http_url + "/post", json=payload)
    _check(response.status_code == 200, f"status {response.status_code}")
    _check(response.json()["json"] == payload, "JSON not echoed")
    return f"{_describe(response)}, JSON echoed"


def s_download(client: webwire.Client, ctx: DemoContext) -> str:
    """Stream ``ctx.download_size`` bytes and count them, with a progress bar."""
    tracker = _Tracker(ctx, "download")
    with client.stream("GET", f"{ctx.http_url}/bytes/{ctx.download_size}") as response:
        _check(response.status_code == 200, f"status {response.status_code}")
        for chunk in response.iter_bytes():
            tracker.advance(len(chunk))
    return tracker.finish()


def s_redirects(client: webwire.Client, ctx: DemoContext) -> str:
    """Follow three 302 redirects (RFC 9110 section 15.4.3); ``history`` has 3."""
    response = client.get(ctx.http_url + "/redirect/3")
    _check(response.status_code == 200, f"status {response.status_code}")
    _check(len(response.history) == 3, f"history has {len(response.history)} responses")
    return f"3 redirects followed to {response.url.path}"


def s_cookies(client: webwire.Client, ctx: DemoContext) -> str:
    """A cookie set by the server is sent back on the next request (RFC 6265)."""
    client.get(ctx.http_url + "/cookies/set", params={"flavour": "oatmeal"})
    response = client.get(ctx.http_url + "/cookies")
    cookies = response.json()["cookies"]
    _check(cookies.get("flavour") == "oatmeal", f"server saw cookies {cookies}")
    return "server cookie sent back"


def s_timeout(client: webwire.Client, ctx: DemoContext) -> str:
    """A 2 s response with a 0.5 s read timeout must raise ``ReadTimeout``."""
    client.get(ctx.http_url + "/delay/2", timeout=webwire.Timeout(0.5))
    raise StepFailed("no timeout after 0.5 s")


def s_server_error(client: webwire.Client, ctx: DemoContext) -> str:
    """``raise_for_status()`` on a 500 must raise ``HTTPStatusError``."""
    response = client.get(ctx.http_url + "/status/500")
    response.raise_for_status()
    raise StepFailed("raise_for_status() did not raise")


#: The steps run on asyncio and on trio, in order.
ASYNC_STEPS: list[Step] = [
    Step("GET (http)", a_get_http),
    Step("GET (https)", a_get_https),
    Step("POST JSON echo", a_post_json),
    Step("streamed download", a_download),
    Step("redirects", a_redirects),
    Step("cookies", a_cookies),
    Step("timeout", a_timeout, expected=webwire.ReadTimeout),
    Step("server error", a_server_error, expected=webwire.HTTPStatusError),
]

#: The steps run on the blocking client, in order (the same scenarios).
SYNC_STEPS: list[Step] = [
    Step("GET (http)", s_get_http),
    Step("GET (https)", s_get_https),
    Step("POST JSON echo", s_post_json),
    Step("streamed download", s_download),
    Step("redirects", s_redirects),
    Step("cookies", s_cookies),
    Step("timeout", s_timeout, expected=webwire.ReadTimeout),
    Step("server error", s_server_error, expected=webwire.HTTPStatusError),
]


class _Tracker:
    """Counts the bytes of the download step and drives its progress bar."""

    def __init__(self, ctx: DemoContext, label: str) -> None:
        self.ctx = ctx
        self.received = 0
        self.started = time.perf_counter()
        self.task: TaskID | None = None
        if ctx.progress is not None:
            self.task = ctx.progress.add_task(label, total=ctx.download_size)

    def advance(self, size: int) -> None:
        self.received += size
        if self.ctx.progress is not None and self.task is not None:
            self.ctx.progress.update(self.task, completed=self.received)

    def finish(self) -> str:
        if self.ctx.progress is not None and self.task is not None:
            self.ctx.progress.remove_task(self.task)
        _check(
            self.received == self.ctx.download_size,
            f"received {self.received} of {self.ctx.download_size} bytes",
        )
        seconds = max(time.perf_counter() - self.started, 1e-9)
        mib = self.received / (1024 * 1024)
        return f"{mib:.0f} MiB streamed, {mib / seconds:.0f} MiB/s"


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
            report(StepResult(backend, step.name, ok, text, time.perf_counter() - started))


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
            report(StepResult("sync", step.name, ok, text, time.perf_counter() - started))


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
    table.add_column("result")
    table.add_column("time (ms)", justify="right")
    return table


def _add_row(table: Table, result: StepResult) -> None:
    from rich.text import Text

    mark = Text("\u2713 ", style="bold green") if result.ok else Text("\u2717 ", style="bold red")
    detail = Text(result.detail, style="green" if result.ok else "red")
    table.add_row(result.backend, result.name, mark + detail, f"{result.elapsed * 1000:.1f}")


def run_demo(
    backends: tuple[str, ...] = BACKENDS,
    download_size: int = DEFAULT_DOWNLOAD_SIZE,
    console: Console | None = None,
) -> list[StepResult]:
    """Start the demo servers, run the tour on each backend and print a table.

    Args:
        backends: Which of ``"asyncio"``, ``"trio"`` and ``"sync"`` to tour,
            in order.
        download_size: Size of the streamed download step, in bytes.
        console: Where the table goes (default: standard output).

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
            download_size,
            progress if live else None,
        )
        for backend in backends:
            _run_backend(backend, ctx, report)
    if not live:
        console.print(table)
    return results


def run_demo_command(argv: list[str]) -> int:
    """``webwire demo [--backend NAME ...] [--download-size BYTES]``.

    Args:
        argv: Arguments after ``demo``.

    Returns:
        0 when every step succeeded, 1 when one failed or the servers could
        not start (a one-line message on standard error), 2 on a usage error.
    """
    import sys

    from ._args import UsageError, _Parser

    parser = _Parser(
        prog="webwire demo",
        description=(
            "Start local HTTP and HTTPS servers and tour the client through them "
            "on asyncio, trio and blocking code."
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
        help="size of the streamed download (default 50 MiB)",
    )
    try:
        ns = parser.parse_args(argv)
        if ns.download_size < 0:
            raise UsageError("--download-size must be >= 0")
    except UsageError as exc:
        print(f"webwire demo: error: {exc}", file=sys.stderr)
        return 2
    from rich.console import Console

    console = Console()
    try:
        results = run_demo(tuple(ns.backend or BACKENDS), ns.download_size, console)
    except (MissingExtra, RuntimeError) as exc:
        print(f"webwire demo: {exc}", file=sys.stderr)
        return 1
    failed = [r for r in results if not r.ok]
    passed = len(results) - len(failed)
    style = "bold red" if failed or not results else "bold green"
    console.print(f"{passed}/{len(results)} steps passed", style=style, highlight=False)
    return 1 if failed or not results else 0
