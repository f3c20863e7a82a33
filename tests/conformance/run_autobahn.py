"""Run a WebSocket client through the Autobahn|Testsuite fuzzing server.

Usage::

    python tests/conformance/run_autobahn.py [--client NAME] [--cases 1.1.*,2.*]
        [--compression deflate|none] [--report-dir DIR] [--case-timeout S] [-v]

Steps:

1. prepare ``.venv-autobahn`` (Python 2.7 with ``autobahntestsuite==0.8.2``;
   see ``autobahn_env.py``) unless ``--wstest`` names a ``wstest`` to use;
2. write a spec selecting the cases (default: 1.* to 7.*, 9.*, 12.* and
   13.*, nothing excluded) and start ``wstest -m fuzzingserver`` on a free
   127.0.0.1 port;
3. with the chosen client, ask ``/getCaseCount``, then for every case open
   ``/runCase?case=N&agent=NAME`` and echo every message back (text as
   text, binary as binary) until the connection closes, then open
   ``/updateReports?agent=NAME``;
4. read ``<report-dir>/clients/index.json`` and print the number of cases
   per outcome and every case that is not OK or INFORMATIONAL.

A case passes when the server judged its ``behavior`` OK or INFORMATIONAL
and no client-side error happened (an exception other than the client's
own connection errors, or no end within ``--case-timeout``). NON-STRICT,
UNIMPLEMENTED, FAILED and the rest fail. The closing-handshake verdict
(``behaviorClose``) is listed for every case where it is not OK or
INFORMATIONAL; it fails the run only when it is FAILED or UNCLEAN, or
WRONG CODE (``FAILED BY CLIENT``, where the client rather than the server
closed the TCP connection, is a preference of the test suite and only
listed). Exit status 0 when every case passes, 1 otherwise.

Without ``--client`` the webwire asyncio client is tested; while
``webwire.websocket`` does not exist, the ``websockets`` library's client is
tested instead and a warning says so.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import traceback
import urllib.parse
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from autobahn_clients import ADAPTERS, Adapter, default_client
from autobahn_env import AutobahnEnvError, ensure_wstest

__all__ = [
    "ALL_CASES",
    "QUICK_CASES",
    "ConformanceError",
    "Outcome",
    "RunResult",
    "run",
]

#: Every section the full run covers (10.* and the 2000-byte-frame variants are not included).
ALL_CASES = ["1.*", "2.*", "3.*", "4.*", "5.*", "6.*", "7.*", "9.*", "12.*", "13.*"]
#: A subset run by ``make test``: framing, pings, fragmentation, closing, one deflate case,
#: and the cases where a bad frame follows good messages in the same read (3.2, 3.3, 4.1.3,
#: 4.1.4, 4.2.3, 4.2.4, 5.15) or invalid UTF-8 arrives in a frame not yet complete (6.4.3,
#: 6.4.4): the good messages must be echoed before the close frame.
QUICK_CASES = [
    "1.1.*",
    "2.*",
    "3.2",
    "3.3",
    "4.1.3",
    "4.1.4",
    "4.2.3",
    "4.2.4",
    "5.1",
    "5.2",
    "5.3",
    "5.4",
    "5.5",
    "5.15",
    "6.4.3",
    "6.4.4",
    "7.1.*",
    "12.1.1",
]
PASSING = ("OK", "INFORMATIONAL")
CLOSE_FAILING = ("FAILED", "UNCLEAN", "WRONG CODE")
DEFAULT_REPORT_DIR = Path(__file__).resolve().parent / "reports"
_LAUNCHER = Path(__file__).resolve().parent / "fuzzingserver_loopback.py"
STARTUP_TIMEOUT = 60.0


class ConformanceError(RuntimeError):
    """The fuzzing server could not be started or the run could not be completed."""


@dataclass
class Outcome:
    """The verdict on one case.

    Attributes:
        case_id: The test suite's id, such as ``"5.3"``.
        behavior: The server's verdict on the messages exchanged.
        behavior_close: The server's verdict on the closing handshake.
        duration_ms: How long the case took, as the server measured it.
        client_error: A client-side failure (unexpected exception or timeout).
    """

    case_id: str
    behavior: str
    behavior_close: str
    duration_ms: float
    client_error: str | None = None

    @property
    def passed(self) -> bool:
        """Whether the case counts as passed (see the module docstring)."""
        return (
            self.client_error is None
            and self.behavior in PASSING
            and self.behavior_close not in CLOSE_FAILING
        )


@dataclass
class RunResult:
    """Everything one run found.

    Attributes:
        client: The client's name (the agent in the report).
        outcomes: One per case, in the test suite's order.
        client_errors: Client-side failures by case number (1-based), also
            for cases missing from the report.
        elapsed: Wall-clock seconds of the whole run, server start included.
        report_dir: Where the HTML and JSON reports are.
    """

    client: str
    outcomes: list[Outcome]
    client_errors: dict[int, str] = field(default_factory=dict)
    elapsed: float = 0.0
    report_dir: Path = DEFAULT_REPORT_DIR

    @property
    def failing(self) -> list[Outcome]:
        """The cases that did not pass."""
        return [o for o in self.outcomes if not o.passed]

    @property
    def ok(self) -> bool:
        """Whether every case passed and no client error was left unattributed."""
        attributed = sum(1 for o in self.outcomes if o.client_error is not None)
        return not self.failing and attributed == len(self.client_errors)

    def summary(self) -> str:
        """Counts per outcome, the failing cases and the slowest ones, as text."""
        lines = [f"client {self.client}: {len(self.outcomes)} cases in {self.elapsed:.1f} s"]
        counts = Counter(o.behavior for o in self.outcomes)
        lines.append("behavior:       " + ", ".join(f"{k} {v}" for k, v in sorted(counts.items())))
        close_counts = Counter(o.behavior_close for o in self.outcomes)
        lines.append(
            "behaviorClose:  " + ", ".join(f"{k} {v}" for k, v in sorted(close_counts.items()))
        )
        non_strict = [o.case_id for o in self.outcomes if o.behavior == "NON-STRICT"]
        if non_strict:
            lines.append(f"NON-STRICT (counted as failing): {', '.join(non_strict)}")
        close_notes = [
            f"{o.case_id} ({o.behavior_close})"
            for o in self.outcomes
            if o.behavior_close not in PASSING
        ]
        if close_notes:
            lines.append(f"closing handshake not OK: {', '.join(close_notes)}")
        if self.client_errors:
            lines.append("client errors:")
            by_number = {n: o for n, o in enumerate(self.outcomes, 1)}
            for number, error in sorted(self.client_errors.items()):
                case = by_number.get(number)
                label = case.case_id if case is not None else f"#{number}"
                lines.append(f"  case {label}: {error}")
        failing = self.failing
        if failing:
            lines.append(f"FAILING ({len(failing)}): " + ", ".join(o.case_id for o in failing))
            for o in failing:
                extra = f"; client: {o.client_error}" if o.client_error else ""
                lines.append(f"  {o.case_id}: {o.behavior} / close {o.behavior_close}{extra}")
        slow = sorted(self.outcomes, key=lambda o: o.duration_ms, reverse=True)[:5]
        if slow:
            lines.append(
                "slowest: " + ", ".join(f"{o.case_id} {o.duration_ms / 1000:.1f} s" for o in slow)
            )
        lines.append(f"report: {self.report_dir / 'clients' / 'index.html'}")
        lines.append("PASSED: every case OK or INFORMATIONAL" if self.ok else "FAILED")
        return "\n".join(lines)


# -- the fuzzing server -----------------------------------------------------------------------


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


class FuzzingServer:
    """``wstest -m fuzzingserver`` running in a subprocess on 127.0.0.1."""

    def __init__(self, wstest: Path, cases: list[str], outdir: Path, workdir: Path) -> None:
        self.port = _free_port()
        self.url = f"ws://127.0.0.1:{self.port}"
        spec = {
            "url": self.url,
            "outdir": str(outdir),
            "cases": cases,
            "exclude-cases": [],
            "exclude-agent-cases": {},
        }
        spec_path = workdir / "fuzzingserver.json"
        spec_path.write_text(json.dumps(spec, indent=2))
        self.log_path = workdir / "fuzzingserver.log"
        self._log = self.log_path.open("wb")
        # The launcher binds 127.0.0.1 only; --webport 0: no embedded web server.
        python2 = wstest.parent / "python"
        argv = [str(python2), str(_LAUNCHER), "-m", "fuzzingserver", "-s", str(spec_path)]
        self._process = subprocess.Popen(
            [*argv, "--webport", "0"],
            cwd=workdir,
            stdin=subprocess.DEVNULL,
            stdout=self._log,
            stderr=subprocess.STDOUT,
            env=dict(os.environ, PYTHONWARNINGS="ignore", PYTHONUNBUFFERED="1"),
            start_new_session=True,
        )
        try:
            self._wait_ready()
        except BaseException:
            self.stop()
            raise

    def log_tail(self, lines: int = 30) -> str:
        """The end of the server's output."""
        try:
            text = self.log_path.read_text(errors="replace")
        except OSError:
            return ""
        return "\n".join(text.splitlines()[-lines:])

    def _wait_ready(self) -> None:
        deadline = time.monotonic() + STARTUP_TIMEOUT
        while time.monotonic() < deadline:
            if self._process.poll() is not None:
                raise ConformanceError(
                    f"the fuzzing server exited with status {self._process.returncode}:\n"
                    + self.log_tail()
                )
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=1.0):
                    return
            except OSError:
                time.sleep(0.1)
        raise ConformanceError(
            f"the fuzzing server did not listen within {STARTUP_TIMEOUT:.0f} s:\n" + self.log_tail()
        )

    def stop(self) -> None:
        """Stop the server and its process group."""
        if self._process.poll() is None:
            try:
                os.killpg(self._process.pid, signal.SIGTERM)
            except ProcessLookupError:
                pass
            try:
                self._process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                os.killpg(self._process.pid, signal.SIGKILL)
                self._process.wait(timeout=10)
        self._log.close()


# -- driving the client -----------------------------------------------------------------------


def _describe(exc: BaseException) -> str:
    frames = traceback.extract_tb(exc.__traceback__)
    where = f" at {Path(frames[-1].filename).name}:{frames[-1].lineno}" if frames else ""
    return f"{type(exc).__name__}: {exc}{where}"


class _Driver:
    """Runs the cases with one adapter and collects client-side errors."""

    def __init__(
        self,
        adapter: Adapter,
        base_url: str,
        compression: str | None,
        case_timeout: float,
        verbose: bool,
    ) -> None:
        self.adapter = adapter
        self.base_url = base_url
        self.compression = compression
        self.case_timeout = case_timeout
        self.verbose = verbose
        self.expected = adapter.errors()
        self.agent = urllib.parse.quote(adapter.name)
        self.client_errors: dict[int, str] = {}

    def url(self, path: str) -> str:
        return f"{self.base_url}{path}"

    def progress(self, number: int, count: int) -> None:
        if self.verbose:
            print(f"case {number}/{count}", file=sys.stderr, flush=True)

    # async (asyncio and trio share the connection code; only the timeout differs)

    async def _echo_async(self, path: str) -> None:
        async with self.adapter.connect(self.url(path), self.compression) as ws:
            messages = ws.__aiter__()
            try:
                async for message in messages:
                    await ws.send(message)
            finally:
                # Finalize an async generator here, not later outside the event loop.
                aclose = getattr(messages, "aclose", None)
                if aclose is not None:
                    await aclose()

    async def _first_message_async(self, path: str) -> str | bytes:
        async with self.adapter.connect(self.url(path), self.compression) as ws:
            message: str | bytes = await ws.recv()
            return message

    async def run_async(self, with_timeout: Callable[[Any, float], Any]) -> None:
        count = int(await with_timeout(self._first_message_async("/getCaseCount"), 30.0))
        for number in range(1, count + 1):
            self.progress(number, count)
            try:
                await with_timeout(
                    self._echo_async(f"/runCase?case={number}&agent={self.agent}"),
                    self.case_timeout,
                )
            except TimeoutError:
                self.client_errors[number] = f"no end within {self.case_timeout:.0f} s"
            except self.expected as exc:
                if self.verbose:
                    print(f"  {_describe(exc)}", file=sys.stderr)
            except Exception as exc:
                self.client_errors[number] = _describe(exc)
        # The server writes the reports, then closes without a status code (1005).
        try:
            await with_timeout(self._echo_async(f"/updateReports?agent={self.agent}"), 120.0)
        except self.expected:
            pass

    def run_asyncio(self) -> None:
        async def with_timeout(coro: Any, seconds: float) -> Any:
            try:
                return await asyncio.wait_for(coro, seconds)
            except asyncio.TimeoutError:
                raise TimeoutError from None

        asyncio.run(self.run_async(with_timeout))

    def run_trio(self) -> None:
        import trio

        async def with_timeout(coro: Any, seconds: float) -> Any:
            try:
                with trio.fail_after(seconds):
                    return await coro
            except trio.TooSlowError:
                raise TimeoutError from None

        trio.run(self.run_async, with_timeout)

    # sync: every connection in a worker thread, joined with a timeout

    def _echo_sync(self, path: str) -> None:
        with self.adapter.connect(self.url(path), self.compression) as ws:
            for message in ws:
                ws.send(message)

    def _first_message_sync(self, path: str) -> str | bytes:
        with self.adapter.connect(self.url(path), self.compression) as ws:
            message: str | bytes = ws.recv()
            return message

    def _in_thread(self, fn: Callable[[], Any], seconds: float) -> Any:
        result: list[Any] = []
        error: list[BaseException] = []

        def target() -> None:
            try:
                result.append(fn())
            except BaseException as exc:
                error.append(exc)

        thread = threading.Thread(target=target, name="autobahn-case", daemon=True)
        thread.start()
        thread.join(seconds)
        if thread.is_alive():
            raise TimeoutError
        if error:
            raise error[0]
        return result[0]

    def run_sync(self) -> None:
        count = int(self._in_thread(lambda: self._first_message_sync("/getCaseCount"), 30.0))
        for number in range(1, count + 1):
            self.progress(number, count)
            path = f"/runCase?case={number}&agent={self.agent}"
            try:
                self._in_thread(lambda path=path: self._echo_sync(path), self.case_timeout)
            except TimeoutError:
                self.client_errors[number] = f"no end within {self.case_timeout:.0f} s"
            except self.expected as exc:
                if self.verbose:
                    print(f"  {_describe(exc)}", file=sys.stderr)
            except Exception as exc:
                self.client_errors[number] = _describe(exc)
        try:
            self._in_thread(lambda: self._echo_sync(f"/updateReports?agent={self.agent}"), 120.0)
        except self.expected:
            pass


def _case_key(case_id: str) -> tuple[int, ...]:
    return tuple(int(part) for part in case_id.split("."))


def _read_report(outdir: Path, agent: str) -> list[Outcome]:
    index = outdir / "index.json"
    try:
        data = json.loads(index.read_text())
    except (OSError, ValueError) as exc:
        raise ConformanceError(f"cannot read the report {index}: {exc}") from exc
    cases = data.get(agent, {})
    return [
        Outcome(
            case_id=case_id,
            behavior=str(entry.get("behavior")),
            behavior_close=str(entry.get("behaviorClose")),
            duration_ms=float(entry.get("duration") or 0),
        )
        for case_id, entry in sorted(cases.items(), key=lambda item: _case_key(item[0]))
    ]


def run(
    client: str,
    cases: list[str],
    *,
    report_dir: Path = DEFAULT_REPORT_DIR,
    wstest: Path | None = None,
    compression: str | None = "deflate",
    case_timeout: float = 60.0,
    verbose: bool = False,
) -> RunResult:
    """Run ``client`` through the fuzzing server's ``cases`` and read the verdicts.

    Args:
        client: A key of ``autobahn_clients.ADAPTERS``.
        cases: Case patterns of the test suite's spec (``"5.*"``, ``"12.1.1"``).
        report_dir: The reports go to ``report_dir / "clients"`` (replaced).
        wstest: The ``wstest`` program; ``None`` prepares ``.venv-autobahn``.
        compression: ``"deflate"`` to offer permessage-deflate, or ``None``.
        case_timeout: Seconds one case may take on the client's side.
        verbose: Print each case number and the client's expected errors.

    Returns:
        The verdicts, in the test suite's case order.

    Raises:
        ConformanceError: The server did not start, the client could not
            even ask for the case count, or no report was written.
        AutobahnEnvError: The Python 2.7 environment cannot be prepared.
    """
    adapter = ADAPTERS[client]
    reason = adapter.unavailable_reason()
    if reason is not None:
        raise ConformanceError(f"client {client} is not available: {reason}")
    if wstest is None:
        wstest = ensure_wstest()
    outdir = report_dir.resolve() / "clients"
    if outdir.exists():
        for entry in outdir.iterdir():
            if entry.is_file():
                entry.unlink()
    outdir.mkdir(parents=True, exist_ok=True)
    started = time.monotonic()
    with tempfile.TemporaryDirectory(prefix="autobahn-") as workdir:
        server = FuzzingServer(wstest, cases, outdir, Path(workdir))
        driver = _Driver(adapter, server.url, compression, case_timeout, verbose)
        try:
            runner = {
                "asyncio": driver.run_asyncio,
                "trio": driver.run_trio,
                "sync": driver.run_sync,
            }[adapter.runtime]
            try:
                runner()
            except Exception as exc:
                raise ConformanceError(
                    f"the run with {client} broke off: {_describe(exc)}\n"
                    f"fuzzing server output:\n{server.log_tail()}"
                ) from exc
        finally:
            server.stop()
    outcomes = _read_report(outdir, adapter.name)
    for number, error in driver.client_errors.items():
        if number <= len(outcomes):
            outcomes[number - 1].client_error = error
    return RunResult(
        client=client,
        outcomes=outcomes,
        client_errors=driver.client_errors,
        elapsed=time.monotonic() - started,
        report_dir=report_dir,
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--client",
        choices=sorted(ADAPTERS),
        help="client to test (default: webwire-asyncio, or websockets while webwire's "
        "WebSocket client is absent)",
    )
    parser.add_argument(
        "--cases",
        help="comma-separated case patterns (default: all of "
        f"{','.join(ALL_CASES)}; 'quick' = {','.join(QUICK_CASES)})",
    )
    parser.add_argument("--compression", choices=("deflate", "none"), default="deflate")
    parser.add_argument("--report-dir", type=Path, default=DEFAULT_REPORT_DIR)
    parser.add_argument(
        "--wstest",
        type=Path,
        help="wstest of a ready Python 2.7 environment (its python runs the server) "
        "instead of .venv-autobahn",
    )
    parser.add_argument("--case-timeout", type=float, default=60.0, help="seconds per case")
    parser.add_argument("-v", "--verbose", action="store_true")
    args = parser.parse_args(argv)

    client = args.client
    if client is None:
        client, reason = default_client()
        if reason is not None:
            banner = "!" * 78
            print(
                f"{banner}\n!! webwire's WebSocket client is not available: {reason}\n"
                f"!! testing the stand-in client '{client}' instead: this run says NOTHING "
                f"about webwire\n{banner}",
                file=sys.stderr,
            )
    if args.cases is None:
        cases = ALL_CASES
    elif args.cases == "quick":
        cases = QUICK_CASES
    else:
        cases = [c.strip() for c in args.cases.split(",") if c.strip()]
    try:
        result = run(
            client,
            cases,
            report_dir=args.report_dir,
            wstest=args.wstest,
            compression=None if args.compression == "none" else "deflate",
            case_timeout=args.case_timeout,
            verbose=args.verbose,
        )
    except (ConformanceError, AutobahnEnvError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    print(result.summary())
    return 0 if result.ok else 1


if __name__ == "__main__":
    sys.exit(main())
