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
import os
import platform
import signal
import statistics
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _clients import CLIENTS, SCENARIOS, ClientSpec, Workload
from _harness import (
    Measurement,
    available,
    cpu_cost,
    describe_error,
    describe_pin,
    exit_on_signal,
    measure,
    pin_to_cpu,
    rate,
    ratio,
    render_table,
    split_names,
)
from _harness import profile as profile_run
from _servers import NGINX_INSTALL_HINT, Server, ServerError, start_server

UNITS = {"sequential": "req/s", "concurrent": "req/s", "download": "MiB/s"}
CPU_UNITS = {"sequential": "µs/req", "concurrent": "µs/req", "download": "µs/MiB"}
ASYNC_BASELINE = "aiohttp"
SYNC_BASELINE = "urllib3"


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
    chosen_clients = split_names(args.clients, names, parser)
    args.client_specs = [spec for spec in CLIENTS if spec.name in chosen_clients]
    args.scenario_names = [
        s for s in SCENARIOS if s in split_names(args.scenarios, SCENARIOS, parser)
    ]
    if args.profile is not None and args.profile not in names:
        parser.error(f"--profile: unknown client {args.profile!r}; choose from {names}")
    return args


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
            value = rate(runs, args.stat)
            cost = cpu_cost(runs, args.stat)
            vs_async = cpu_vs_async = vs_sync = cpu_vs_sync = "-"
            if base_async:
                vs_async = ratio(value, rate(base_async, args.stat))
                cpu_vs_async = ratio(cpu_cost(base_async, args.stat), cost)
            if spec.runtime == "sync" and base_sync:
                vs_sync = ratio(value, rate(base_sync, args.stat))
                cpu_vs_sync = ratio(cpu_cost(base_sync, args.stat), cost)
            best, median = rate(runs, "best"), rate(runs, "median")
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
    return render_table(header, rows, left)


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
        f"{describe_pin(args.pin, server)}"
    )


def profile(args: argparse.Namespace, server: Server) -> str:
    """Profile one client's scenario with cProfile, after one warm-up run.

    The scenario is the first of ``--scenarios`` the client has (by default
    ``sequential``).

    Returns:
        A line with the rate and client CPU under the profiler, then the
        ``pstats`` listing of the ``--top`` functions by own time.
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
    return profile_run(
        spec, scenario, work, args.uvloop, args.max_seconds, args.top, UNITS, CPU_UNITS
    )


def main(argv: list[str] | None = None) -> int:
    """Run the benchmark (or the profile) and print the results.

    Returns:
        The process exit status: 0 on success, 1 when the server could not
        be started or no client could run.
    """
    args = _parse_args(argv)
    # SIGTERM and SIGHUP unwind like Ctrl-C, so the server is stopped and its files removed.
    for sig in (signal.SIGTERM, signal.SIGHUP):
        signal.signal(sig, exit_on_signal)
    specs = available(args.client_specs)
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
                print(describe_pin(args.pin, server), flush=True)
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
