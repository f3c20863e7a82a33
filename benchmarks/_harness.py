"""Measurement machinery shared by ``benchmarks/http1.py`` and ``benchmarks/http2.py``.

One measurement runs one client's scenario function once, on a fresh event
loop for async clients, under a deadline, after a full garbage collection,
and turns its :class:`~_clients.Timing` into a :class:`Measurement`: the
wall-clock rate and the client CPU cost per request (or per MiB for
``download``). Also here: CPU pinning (``--pin``), the round statistics, the
text table layout and the cProfile run.
"""

from __future__ import annotations

import argparse
import asyncio
import cProfile
import gc
import io
import os
import pstats
import signal
import statistics
import sys
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from types import FrameType
from typing import Protocol, cast

from _clients import AsyncScenario, ClientSpec, SyncScenario, Timing, Workload

__all__ = [
    "Measurement",
    "MeasurementTimeout",
    "available",
    "cpu_cost",
    "describe_error",
    "describe_pin",
    "exit_on_signal",
    "measure",
    "pin_to_cpu",
    "profile",
    "rate",
    "ratio",
    "render_table",
    "split_names",
]


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
        scenario: A key of ``spec.scenarios``; ``"download"`` is counted in
            MiB, every other scenario in requests.
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


def split_names(
    value: str | None, allowed: Sequence[str], parser: argparse.ArgumentParser
) -> list[str]:
    """Parse a comma-separated ``--clients``/``--scenarios`` value; ``None`` means all."""
    if not value:
        return list(allowed)
    items = [item.strip() for item in value.split(",") if item.strip()]
    unknown = [item for item in items if item not in allowed]
    if unknown:
        parser.error(f"unknown name(s) {unknown}; choose from {list(allowed)}")
    return items


def available(specs: Iterable[ClientSpec]) -> list[ClientSpec]:
    """The clients that can run here; the others are named on standard error with the reason."""
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


def rate(runs: list[Measurement], which: str) -> float:
    """The ``best`` (highest) or ``median`` wall-clock throughput over the rounds."""
    rates = [m.rate for m in runs]
    return max(rates) if which == "best" else statistics.median(rates)


def cpu_cost(runs: list[Measurement], which: str) -> float:
    """The ``best`` (lowest) or ``median`` CPU cost over the rounds."""
    costs = [m.cpu_cost for m in runs]
    return min(costs) if which == "best" else statistics.median(costs)


def ratio(numerator: float, denominator: float) -> str:
    """``numerator / denominator`` as ``1.23x``, or ``-`` when it is undefined."""
    return f"{numerator / denominator:.2f}x" if denominator > 0 else "-"


def render_table(header: Sequence[str], rows: Sequence[Sequence[str]], left: Iterable[int]) -> str:
    """Align ``rows`` under ``header``; the columns in ``left`` are left-aligned, others right."""
    left = set(left)
    widths = [max(len(row[i]) for row in [header, *rows]) for i in range(len(header))]
    lines = []
    for n, row in enumerate([header, *rows]):
        cells = [
            cell.ljust(widths[i]) if i in left else cell.rjust(widths[i])
            for i, cell in enumerate(row)
        ]
        lines.append("  ".join(cells).rstrip())
        if n == 0:
            lines.append("  ".join("-" * w for w in widths).rstrip())
    return "\n".join(lines)


class _HasProcessIds(Protocol):
    def process_ids(self) -> list[int]: ...


def describe_pin(pin: int | None, server: _HasProcessIds) -> str:
    """Name the CPU the benchmark is pinned to and check the server runs there too."""
    if pin is None:
        return "not pinned: this process and the server may run on any CPU"
    stray = []
    for pid in server.process_ids():
        try:
            cpus = os.sched_getaffinity(pid)
        except OSError:
            continue
        if cpus != {pin}:
            stray.append(f"{pid} on {sorted(cpus)}")
    if stray:
        return f"pinned to CPU {pin}, but server processes are not: {', '.join(stray)}"
    return f"pinned: this process and the server on CPU {pin}"


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


def profile(
    spec: ClientSpec,
    scenario: str,
    work: Workload,
    use_uvloop: bool,
    max_seconds: float,
    top: int,
    units: dict[str, str],
    cpu_units: dict[str, str],
) -> str:
    """Profile one client's scenario with cProfile, after one warm-up run.

    Returns:
        A line with the rate and client CPU under the profiler, then the
        ``pstats`` listing of the ``top`` functions by own time.
    """
    measure(spec, scenario, work, use_uvloop, max_seconds)
    gc.collect()
    profiler = cProfile.Profile()
    profiler.enable()
    result = measure(spec, scenario, work, use_uvloop, max_seconds, collect=False)
    profiler.disable()
    out = io.StringIO()
    stats = pstats.Stats(profiler, stream=out)
    stats.sort_stats("tottime").print_stats(top)
    head = (
        f"{spec.name} {scenario} under cProfile: {result.rate:,.0f} {units[scenario]}, "
        f"client CPU {result.cpu_cost:,.1f} {cpu_units[scenario]}, busy {result.busy:.0%}\n"
    )
    return head + out.getvalue()


def exit_on_signal(signum: int, frame: FrameType | None) -> None:
    """Signal handler: unwind like Ctrl-C, so servers are stopped and their files removed."""
    raise SystemExit(128 + signum)
