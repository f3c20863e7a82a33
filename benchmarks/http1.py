"""HTTP/1.1 client benchmark: webwire against its peers on a loopback nginx.

Usage::

    .venv/bin/python benchmarks/http1.py [--quick] [--uvloop] [--rounds N]
        [--requests N] [--concurrency N] [--clients a,b] [--scenarios a,b]
        [--server auto|nginx|python] [--stat best|median] [--pin [CPU]]
        [--profile [CLIENT]]

The script starts nginx (1 worker, keep-alive, a 13-byte ``/hello`` and a
100 MiB ``/big.bin``) as a subprocess on a free 127.0.0.1 port and stops it
at the end; without nginx it falls back to a raw uvloop server and says so.
Rounds are interleaved (every client once per round, in a rotating order) and
the table reports the best and the median round, with ratios to aiohttp and,
for blocking clients, to urllib3. Next to the wall-clock throughput it
reports the client's CPU cost: user + system CPU time of this process over
the same timed interval, per request (or per MiB downloaded), which does not
include time spent waiting for the server or for the scheduler. ``--pin``
runs this process and the server on one CPU. See benchmarks/README.md.
"""

from __future__ import annotations

import argparse
import asyncio
import cProfile
import gc
import io
import os
import platform
import pstats
import signal
import statistics
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from types import FrameType
from typing import Any, cast

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _clients import (
    CLIENTS,
    SCENARIOS,
    AsyncScenario,
    ClientSpec,
    SyncScenario,
    Timing,
    Workload,
)
from _servers import NGINX_INSTALL_HINT, Server, ServerError, start_server

UNITS = {"sequential": "req/s", "concurrent": "req/s", "download": "MiB/s"}
CPU_UNITS = {"sequential": "µs/req", "concurrent": "µs/req", "download": "µs/MiB"}
ASYNC_BASELINE = "aiohttp"
SYNC_BASELINE = "urllib3"


class MeasurementTimeout(RuntimeError):
    """One measurement ran longer than ``--max-seconds``."""


@dataclass(frozen=True)
class Measurement:
    """The result of one scenario run by one client.

    Attributes:
        rate: Wall-clock throughput: requests per second, or MiB per second
            for ``download``.
        cpu_cost: User + system CPU time of this process over the same
            interval, in microseconds per request, or per MiB for
            ``download``.
        busy: CPU time divided by wall-clock time over that interval
            (1.0: one CPU busy all the time).
    """

    rate: float
    cpu_cost: float
    busy: float


@contextmanager
def _deadline(seconds: float) -> Iterator[None]:
    """Interrupt the main thread with :class:`MeasurementTimeout` after ``seconds``."""

    def on_alarm(signum: int, frame: FrameType | None) -> None:
        raise MeasurementTimeout(f"no result after {seconds:.0f} s")

    previous = signal.signal(signal.SIGALRM, on_alarm)
    signal.setitimer(signal.ITIMER_REAL, seconds)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)


def _run_async(
    fn: AsyncScenario, work: Workload, runtime: str, use_uvloop: bool, max_seconds: float
) -> Timing:
    """Run an async scenario on a new event loop, cancelling it after ``max_seconds``."""
    if runtime == "trio":
        import trio

        async def bounded_trio() -> Timing:
            with trio.fail_after(max_seconds):
                return await fn(work, runtime)

        try:
            return trio.run(bounded_trio)
        except trio.TooSlowError:
            raise MeasurementTimeout(f"no result after {max_seconds:.0f} s") from None

    async def bounded_asyncio() -> Timing:
        try:
            return await asyncio.wait_for(fn(work, runtime), max_seconds)
        except asyncio.TimeoutError:
            raise MeasurementTimeout(f"no result after {max_seconds:.0f} s") from None

    if use_uvloop:
        import uvloop

        return uvloop.run(bounded_asyncio())
    return asyncio.run(bounded_asyncio())


def measure(
    spec: ClientSpec,
    scenario: str,
    work: Workload,
    use_uvloop: bool,
    max_seconds: float,
    collect: bool = True,
) -> Measurement:
    """Run one scenario once with one client.

    Args:
        spec: The client.
        scenario: One of ``SCENARIOS``.
        work: Sizes and URLs.
        use_uvloop: Run asyncio clients on uvloop.
        max_seconds: Abort the measurement after this many seconds.
        collect: Run a full garbage collection first (outside the timing).

    Returns:
        The wall-clock throughput and the CPU cost of the timed part.

    Raises:
        ResponseMismatch: A response was wrong.
        MeasurementTimeout: The run took longer than ``max_seconds``.
    """
    fn = spec.scenarios[scenario]
    if collect:
        gc.collect()
    if spec.runtime == "sync":
        with _deadline(max_seconds):
            timing = cast(SyncScenario, fn)(work)
    else:
        # The loop cancels the run itself; the alarm only backs up a stuck cancellation.
        with _deadline(max_seconds + 30.0):
            timing = _run_async(
                cast(AsyncScenario, fn), work, spec.runtime, use_uvloop, max_seconds
            )
    units = work.big_size / (1 << 20) if scenario == "download" else work.requests
    return Measurement(
        rate=units / timing.elapsed,
        cpu_cost=timing.cpu * 1e6 / units,
        busy=timing.cpu / timing.elapsed,
    )


def _parse_args(argv: list[str] | None) -> argparse.Namespace:
    names = [spec.name for spec in CLIENTS]
    parser = argparse.ArgumentParser(
        description="HTTP/1.1 client benchmark against a loopback nginx."
    )
    parser.add_argument("--quick", action="store_true", help="short run: 3 rounds, 1000 requests")
    parser.add_argument("--uvloop", action="store_true", help="run asyncio clients on uvloop")
    parser.add_argument("--rounds", type=int, help="interleaved rounds (default 5, quick 3)")
    parser.add_argument(
        "--requests", type=int, help="GETs per sequential/concurrent run (default 5000, quick 1000)"
    )
    parser.add_argument("--concurrency", type=int, default=50, help="tasks in flight (default 50)")
    parser.add_argument(
        "--download-mib", type=int, default=100, help="size of the download in MiB (default 100)"
    )
    parser.add_argument("--clients", help=f"comma-separated subset of: {','.join(names)}")
    parser.add_argument("--scenarios", help=f"comma-separated subset of: {','.join(SCENARIOS)}")
    parser.add_argument(
        "--server",
        choices=("auto", "nginx", "python"),
        default="auto",
        help="nginx, the uvloop fallback, or auto (nginx when installed)",
    )
    parser.add_argument(
        "--stat",
        choices=("best", "median"),
        default="best",
        help="round statistic for the ratios and the client CPU column (default best)",
    )
    parser.add_argument(
        "--pin",
        nargs="?",
        type=int,
        const=-1,
        metavar="CPU",
        help="run this process and the server on one CPU (default: the last one allowed)",
    )
    parser.add_argument(
        "--max-seconds", type=float, default=120.0, help="abort one measurement after this"
    )
    parser.add_argument(
        "--profile",
        nargs="?",
        const="webwire-asyncio",
        metavar="CLIENT",
        help="profile CLIENT (default webwire-asyncio) with cProfile instead of benchmarking",
    )
    parser.add_argument("--top", type=int, default=20, help="functions listed by --profile")
    args = parser.parse_args(argv)
    args.rounds = args.rounds or (3 if args.quick else 5)
    requests = args.requests or (1000 if args.quick else 5000)
    if args.concurrency < 1 or requests < 1 or args.rounds < 1 or args.download_mib < 1:
        parser.error("--rounds, --requests, --concurrency and --download-mib must be >= 1")
    # Every concurrent task does the same number of requests.
    per_task = max(1, -(-requests // args.concurrency))
    args.requests = requests
    args.concurrent_requests = per_task * args.concurrency
    chosen_clients = _split(args.clients, names, parser)
    args.client_specs = [spec for spec in CLIENTS if spec.name in chosen_clients]
    args.scenario_names = [s for s in SCENARIOS if s in _split(args.scenarios, SCENARIOS, parser)]
    if args.profile is not None and args.profile not in names:
        parser.error(f"--profile: unknown client {args.profile!r}; choose from {names}")
    return args


def _split(value: str | None, allowed: Any, parser: argparse.ArgumentParser) -> list[str]:
    if not value:
        return list(allowed)
    items = [item.strip() for item in value.split(",") if item.strip()]
    unknown = [item for item in items if item not in allowed]
    if unknown:
        parser.error(f"unknown name(s) {unknown}; choose from {list(allowed)}")
    return items


def _available(specs: list[ClientSpec]) -> list[ClientSpec]:
    usable = []
    for spec in specs:
        reason = spec.unavailable_reason()
        if reason is None:
            usable.append(spec)
        else:
            print(f"skipping {spec.name}: {reason}", file=sys.stderr)
    return usable


def describe_error(exc: BaseException) -> str:
    """One line naming an error; exception groups are described by their first member."""
    while True:
        members = getattr(exc, "exceptions", None)
        if not isinstance(members, (list, tuple)) or not members:
            break
        exc = members[0]
    return f"{type(exc).__name__}: {exc}"


def run_rounds(
    args: argparse.Namespace, specs: list[ClientSpec], server: Server
) -> tuple[dict[tuple[str, str], list[Measurement]], dict[tuple[str, str], str]]:
    """Run every (scenario, client) pair once per round, interleaved.

    Returns:
        Measurements per ``(scenario, client)`` over the rounds, and the error
        text of every pair that failed (a failed pair is not retried).
    """
    results: dict[tuple[str, str], list[Measurement]] = {}
    failures: dict[tuple[str, str], str] = {}
    for round_no in range(args.rounds):
        shift = round_no % max(1, len(specs))
        order = specs[shift:] + specs[:shift]
        for scenario in args.scenario_names:
            requests = args.concurrent_requests if scenario == "concurrent" else args.requests
            work = Workload(
                server.hello_url, server.big_url, server.big_size, requests, args.concurrency
            )
            for spec in order:
                key = (scenario, spec.name)
                if scenario not in spec.scenarios or key in failures:
                    continue
                try:
                    value = measure(spec, scenario, work, args.uvloop, args.max_seconds)
                except Exception as exc:
                    failures[key] = describe_error(exc)
                    print(f"  {spec.name} {scenario} FAILED: {failures[key]}", file=sys.stderr)
                    continue
                results.setdefault(key, []).append(value)
        print(f"round {round_no + 1}/{args.rounds} done", file=sys.stderr, flush=True)
    return results, failures


def _rate(runs: list[Measurement], which: str) -> float:
    """The ``best`` (highest) or ``median`` wall-clock throughput over the rounds."""
    rates = [m.rate for m in runs]
    return max(rates) if which == "best" else statistics.median(rates)


def _cpu_cost(runs: list[Measurement], which: str) -> float:
    """The ``best`` (lowest) or ``median`` CPU cost over the rounds."""
    costs = [m.cpu_cost for m in runs]
    return min(costs) if which == "best" else statistics.median(costs)


def _ratio(numerator: float, denominator: float) -> str:
    return f"{numerator / denominator:.2f}x" if denominator > 0 else "-"


def format_table(
    args: argparse.Namespace,
    specs: list[ClientSpec],
    results: dict[tuple[str, str], list[Measurement]],
    failures: dict[tuple[str, str], str],
) -> str:
    """Render the results as an aligned text table, one row per (scenario, client).

    The throughput ratios divide the client's rate by the baseline's; the CPU
    ratios divide the baseline's CPU cost by the client's, so that in both
    higher is better and ``1.40x`` under ``cpu vs aiohttp`` reads "aiohttp
    spends 1.4 times the CPU this client spends for the same work".
    """
    header = (
        "scenario",
        "client",
        "best",
        "median",
        "unit",
        f"vs {ASYNC_BASELINE}",
        f"vs {SYNC_BASELINE}",
        f"client CPU ({args.stat})",
        "busy",
        f"cpu vs {ASYNC_BASELINE}",
        f"cpu vs {SYNC_BASELINE}",
    )
    left = (0, 1, 4)
    rows: list[tuple[str, ...]] = []
    for scenario in args.scenario_names:
        unit = UNITS[scenario]
        base_async = results.get((scenario, ASYNC_BASELINE))
        base_sync = results.get((scenario, SYNC_BASELINE))
        for spec in specs:
            key = (scenario, spec.name)
            if scenario not in spec.scenarios:
                continue
            if key in failures:
                rows.append((scenario, spec.name, "FAILED", "", unit) + ("",) * 6)
                continue
            runs = results.get(key)
            if not runs:
                continue
            rate = _rate(runs, args.stat)
            cost = _cpu_cost(runs, args.stat)
            vs_async = cpu_vs_async = vs_sync = cpu_vs_sync = "-"
            if base_async:
                vs_async = _ratio(rate, _rate(base_async, args.stat))
                cpu_vs_async = _ratio(_cpu_cost(base_async, args.stat), cost)
            if spec.runtime == "sync" and base_sync:
                vs_sync = _ratio(rate, _rate(base_sync, args.stat))
                cpu_vs_sync = _ratio(_cpu_cost(base_sync, args.stat), cost)
            best, median = _rate(runs, "best"), _rate(runs, "median")
            busy = statistics.median(m.busy for m in runs)
            rows.append(
                (
                    scenario,
                    spec.name,
                    f"{best:,.0f}",
                    f"{median:,.0f}",
                    unit,
                    vs_async,
                    vs_sync,
                    f"{cost:,.1f} {CPU_UNITS[scenario]}",
                    f"{busy:.0%}",
                    cpu_vs_async,
                    cpu_vs_sync,
                )
            )
    widths = [max(len(row[i]) for row in [header, *rows]) for i in range(len(header))]
    lines = []
    for n, row in enumerate([header, *rows]):
        cells = [
            cell.ljust(widths[i]) if i in left else cell.rjust(widths[i])
            for i, cell in enumerate(row)
        ]
        lines.append("  ".join(cells).rstrip())
        if n == 0:
            lines.append("  ".join("-" * w for w in widths))
    return "\n".join(lines)


def _describe(args: argparse.Namespace, server: Server) -> str:
    loop = "uvloop" if args.uvloop else "asyncio (default loop)"
    return (
        f"Python {platform.python_version()} ({platform.python_implementation()}), "
        f"{os.cpu_count()} CPUs, {platform.system()} {platform.release()}\n"
        f"server: {server.description} at {server.base_url}\n"
        f"asyncio clients on: {loop}\n"
        f"sequential: {args.requests} GETs of 13 bytes; concurrent: "
        f"{args.concurrent_requests} GETs, {args.concurrency} in flight; download: "
        f"{server.big_size >> 20} MiB streamed\n"
        f"{args.rounds} interleaved rounds; ratios from the {args.stat} round "
        f"({'highest rate, lowest CPU cost' if args.stat == 'best' else 'per column'})\n"
        f"client CPU: user+system CPU time of this process (getrusage) over the timed part; "
        f"busy: that CPU time / wall-clock time (median round)\n"
        f"{_describe_pin(args, server)}"
    )


def _describe_pin(args: argparse.Namespace, server: Server) -> str:
    """Name the CPU the benchmark is pinned to and check the server runs there too."""
    if args.pin is None:
        return "not pinned: this process and the server may run on any CPU"
    stray = []
    for pid in server.process_ids():
        try:
            cpus = os.sched_getaffinity(pid)
        except OSError:
            continue
        if cpus != {args.pin}:
            stray.append(f"{pid} on {sorted(cpus)}")
    if stray:
        return f"pinned to CPU {args.pin}, but server processes are not: {', '.join(stray)}"
    return f"pinned: this process and the server on CPU {args.pin}"


def pin_to_cpu(cpu: int) -> int:
    """Restrict every thread of this process to one CPU; processes started later inherit it.

    Args:
        cpu: The CPU number, or -1 for the highest-numbered CPU this process
            may run on.

    Returns:
        The CPU chosen.

    Raises:
        SystemExit: CPU affinity is not supported here, or ``cpu`` is not
            allowed for this process.
    """
    if not hasattr(os, "sched_setaffinity"):
        raise SystemExit("--pin needs os.sched_setaffinity (Linux)")
    allowed = sorted(os.sched_getaffinity(0))
    if cpu == -1:
        cpu = allowed[-1]
    elif cpu not in allowed:
        raise SystemExit(f"--pin: CPU {cpu} is not available; this process may use {allowed}")
    try:
        # On Linux the call applies to one thread: cover any thread already running.
        threads = [int(tid) for tid in os.listdir("/proc/self/task")]
    except OSError:
        threads = [0]
    for tid in threads:
        os.sched_setaffinity(tid, {cpu})
    return cpu


def profile(args: argparse.Namespace, server: Server) -> str:
    """Profile one client's scenario with cProfile, after one warm-up run.

    The scenario is the first of ``--scenarios`` the client has (by default
    ``sequential``).

    Returns:
        The ``pstats`` listing of the ``--top`` functions by own time.
    """
    spec = next(spec for spec in CLIENTS if spec.name == args.profile)
    reason = spec.unavailable_reason()
    if reason is not None:
        raise SystemExit(f"cannot profile {spec.name}: {reason}")
    scenario = next((s for s in args.scenario_names if s in spec.scenarios), None)
    if scenario is None:
        raise SystemExit(f"{spec.name} has none of the scenarios {args.scenario_names}")
    requests = args.concurrent_requests if scenario == "concurrent" else args.requests
    work = Workload(server.hello_url, server.big_url, server.big_size, requests, args.concurrency)
    measure(spec, scenario, work, args.uvloop, args.max_seconds)
    gc.collect()
    profiler = cProfile.Profile()
    profiler.enable()
    result = measure(spec, scenario, work, args.uvloop, args.max_seconds, collect=False)
    profiler.disable()
    out = io.StringIO()
    stats = pstats.Stats(profiler, stream=out)
    stats.sort_stats("tottime").print_stats(args.top)
    head = (
        f"{spec.name} {scenario} under cProfile: {result.rate:,.0f} {UNITS[scenario]}, "
        f"client CPU {result.cpu_cost:,.1f} {CPU_UNITS[scenario]}, busy {result.busy:.0%}\n"
    )
    return head + out.getvalue()


def _exit_on_signal(signum: int, frame: FrameType | None) -> None:
    raise SystemExit(128 + signum)


def main(argv: list[str] | None = None) -> int:
    """Run the benchmark (or the profile) and print the results.

    Returns:
        The process exit status: 0 on success, 1 when the server could not
        be started or no client could run.
    """
    args = _parse_args(argv)
    # SIGTERM and SIGHUP unwind like Ctrl-C, so the server is stopped and its files removed.
    for sig in (signal.SIGTERM, signal.SIGHUP):
        signal.signal(sig, _exit_on_signal)
    specs = _available(args.client_specs)
    if not specs:
        print("no client can run", file=sys.stderr)
        return 1
    if args.pin is not None:
        # Before the server starts, so that its processes inherit the affinity.
        args.pin = pin_to_cpu(args.pin)
    try:
        server = start_server(args.server, args.download_mib << 20)
    except ServerError as exc:
        print(f"cannot start the benchmark server: {exc}", file=sys.stderr)
        if "not installed" in str(exc):
            print(f"install nginx with: {NGINX_INSTALL_HINT}", file=sys.stderr)
        return 1
    with server:
        if args.profile is not None:
            if args.pin is not None:
                print(_describe_pin(args, server), flush=True)
            print(profile(args, server))
            return 0
        print(_describe(args, server), flush=True)
        results, failures = run_rounds(args, specs, server)
    print()
    print(format_table(args, specs, results, failures))
    for (scenario, name), error in failures.items():
        print(f"{name} {scenario}: {error}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
