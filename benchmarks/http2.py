"""HTTP/2 client benchmark: webwire against httpx and niquests on a loopback nginx.

Usage::

    .venv/bin/python benchmarks/http2.py [--quick] [--uvloop] [--rounds N]
        [--requests N] [--concurrency N] [--clients a,b] [--scenarios a,b]
        [--stat best|median] [--pin [CPU]] [--profile [CLIENT]]

The script starts nginx (1 worker, TLS with a throwaway trustme certificate,
HTTP/2 and HTTP/1.1 chosen by ALPN, a 13-byte ``/hello`` and a 100 MiB
``/big.bin``) as a subprocess on a free 127.0.0.1 port and stops it at the
end. Every client uses one connection, checked against nginx's count of
accepted connections, and every client checks on its first response that
it speaks the protocol it is measured for. Rounds are interleaved (every
client once per round, in a rotating order); the table reports the best and
the median round, the ratios to niquests and to httpx, and the client's CPU
cost (user + system CPU time of this process per request or per MiB, over
the same timed interval). A summary compares webwire with its targets:
multiplexed >= 3x niquests and >= 5x httpx, download >= 2x niquests, and
sequential HTTP/2 >= 1.0x webwire's own HTTP/1.1 over TLS. Nothing is
asserted: the exit status does not depend on the numbers. ``--pin`` runs
this process and nginx on one CPU. See benchmarks/README.md.
"""

from __future__ import annotations

import argparse
import importlib.metadata
import os
import platform
import signal
import socket
import ssl
import statistics
import sys
from dataclasses import dataclass
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _clients import ClientSpec, Workload
from _clients_h2 import CLIENTS, SCENARIOS
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
from _servers import NGINX_INSTALL_HINT, Server, ServerError, start_tls_nginx

UNITS = {"sequential": "req/s", "multiplexed": "req/s", "download": "MiB/s"}
CPU_UNITS = {"sequential": "µs/req", "multiplexed": "µs/req", "download": "µs/MiB"}
PEERS = ("niquests", "httpx")
WEBWIRE_H2 = ("webwire-asyncio", "webwire-trio", "webwire-sync")


@dataclass(frozen=True)
class Target:
    """A goal for webwire's HTTP/2 client, printed next to the measured ratio.

    Attributes:
        scenario: The scenario compared.
        against: ``"niquests"`` or ``"httpx"`` (the faster of the peer's
            rows), or ``"h1"`` (the same webwire client over HTTP/1.1 on
            TLS).
        minimum: The ratio webwire's rate should reach.
    """

    scenario: str
    against: str
    minimum: float


TARGETS = (
    Target("multiplexed", "niquests", 3.0),
    Target("multiplexed", "httpx", 5.0),
    Target("download", "niquests", 2.0),
    Target("sequential", "h1", 1.0),
)

Results = dict[tuple[str, str], list[Measurement]]


def _parse_args(argv: list[str] | None) -> argparse.Namespace:
    names = [spec.name for spec in CLIENTS]
    parser = argparse.ArgumentParser(
        description="HTTP/2 client benchmark against a loopback nginx over TLS."
    )
    parser.add_argument("--quick", action="store_true", help="short run: 3 rounds, 1000 requests")
    parser.add_argument("--uvloop", action="store_true", help="run asyncio clients on uvloop")
    parser.add_argument("--rounds", type=int, help="interleaved rounds (default 5, quick 3)")
    parser.add_argument(
        "--requests",
        type=int,
        help="GETs per sequential/multiplexed run (default 5000, quick 1000)",
    )
    parser.add_argument(
        "--concurrency", type=int, default=50, help="requests in flight in multiplexed (default 50)"
    )
    parser.add_argument(
        "--download-mib", type=int, default=100, help="size of the download in MiB (default 100)"
    )
    parser.add_argument("--clients", help=f"comma-separated subset of: {','.join(names)}")
    parser.add_argument("--scenarios", help=f"comma-separated subset of: {','.join(SCENARIOS)}")
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
        help="run this process and nginx on one CPU (default: the last one allowed)",
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
    args.requests = requests
    # Every task (or niquests batch) does the same number of requests.
    args.multiplexed_requests = max(1, -(-requests // args.concurrency)) * args.concurrency
    chosen = split_names(args.clients, names, parser)
    args.client_specs = [spec for spec in CLIENTS if spec.name in chosen]
    chosen_scenarios = split_names(args.scenarios, SCENARIOS, parser)
    args.scenario_names = [s for s in SCENARIOS if s in chosen_scenarios]
    if args.profile is not None and args.profile not in names:
        parser.error(f"--profile: unknown client {args.profile!r}; choose from {names}")
    return args


def _workload(args: argparse.Namespace, server: Server, scenario: str) -> Workload:
    requests = args.multiplexed_requests if scenario == "multiplexed" else args.requests
    return Workload(
        server.hello_url,
        server.big_url,
        server.big_size,
        requests,
        args.concurrency,
        str(server.ca_path),
    )


def run_rounds(
    args: argparse.Namespace, specs: list[ClientSpec], server: Server
) -> tuple[Results, dict[tuple[str, str], str], dict[tuple[str, str], list[int]]]:
    """Run every (scenario, client) pair once per round, interleaved.

    Returns:
        Measurements per ``(scenario, client)`` over the rounds, the error
        text of every pair that failed (a failed pair is not retried), and
        the number of connections each pair opened in each round.
    """
    results: Results = {}
    failures: dict[tuple[str, str], str] = {}
    connections: dict[tuple[str, str], list[int]] = {}
    for round_no in range(args.rounds):
        shift = round_no % max(1, len(specs))
        order = specs[shift:] + specs[:shift]
        for scenario in args.scenario_names:
            work = _workload(args, server, scenario)
            for spec in order:
                key = (scenario, spec.name)
                if scenario not in spec.scenarios or key in failures:
                    continue
                try:
                    before = server.accepted_connections()
                    value = measure(spec, scenario, work, args.uvloop, args.max_seconds)
                    # The second reading counts its own connection.
                    opened = server.accepted_connections() - before - 1
                except Exception as exc:
                    failures[key] = describe_error(exc)
                    print(f"  {spec.name} {scenario} FAILED: {failures[key]}", file=sys.stderr)
                    continue
                results.setdefault(key, []).append(value)
                connections.setdefault(key, []).append(opened)
        print(f"round {round_no + 1}/{args.rounds} done", file=sys.stderr, flush=True)
    return results, failures, connections


def baseline(results: Results, scenario: str, runtime: str, peer: str) -> str | None:
    """The peer row a client running on ``runtime`` is compared with in the table.

    The peer's row of the same kind (``niquests-async`` for an asyncio or
    trio client, ``niquests-sync`` for a blocking one), or its other row when
    that one has no result in this scenario.
    """
    kinds = ("sync", "async") if runtime == "sync" else ("async", "sync")
    for kind in kinds:
        if results.get((scenario, f"{peer}-{kind}")):
            return f"{peer}-{kind}"
    return None


def fastest(results: Results, scenario: str, peer: str, stat: str) -> str | None:
    """The peer's row with the highest rate in ``scenario`` (by ``stat``), if any."""
    rows = [f"{peer}-async", f"{peer}-sync"]
    measured = [name for name in rows if results.get((scenario, name))]
    if not measured:
        return None
    return max(measured, key=lambda name: rate(results[(scenario, name)], stat))


def format_table(
    args: argparse.Namespace,
    specs: list[ClientSpec],
    results: Results,
    failures: dict[tuple[str, str], str],
    connections: dict[tuple[str, str], list[int]],
) -> str:
    """Render the results as an aligned text table, one row per (scenario, client).

    The throughput ratios divide the client's rate by the peer's; the CPU
    ratios divide the peer's CPU cost by the client's, so that in both higher
    is better. The peer row is the one :func:`baseline` picks.
    """
    header = (
        "scenario",
        "client",
        "proto",
        "best",
        "median",
        "unit",
        "vs niquests",
        "vs httpx",
        f"client CPU ({args.stat})",
        "busy",
        "cpu vs niquests",
        "cpu vs httpx",
        "conns",
    )
    left = (0, 1, 2, 5)
    rows: list[tuple[str, ...]] = []
    for scenario in args.scenario_names:
        unit = UNITS[scenario]
        for spec in specs:
            key = (scenario, spec.name)
            if scenario not in spec.scenarios:
                continue
            proto = "h1.1" if spec.name.endswith("-h1") else "h2"
            if key in failures:
                rows.append((scenario, spec.name, proto, "FAILED", "", unit) + ("",) * 7)
                continue
            runs = results.get(key)
            if not runs:
                continue
            value = rate(runs, args.stat)
            cost = cpu_cost(runs, args.stat)
            versus: list[str] = []
            cpu_versus: list[str] = []
            for peer in PEERS:
                base = baseline(results, scenario, spec.runtime, peer)
                if base is None:
                    versus.append("-")
                    cpu_versus.append("-")
                    continue
                base_runs = results[(scenario, base)]
                versus.append(ratio(value, rate(base_runs, args.stat)))
                cpu_versus.append(ratio(cpu_cost(base_runs, args.stat), cost))
            best, median = rate(runs, "best"), rate(runs, "median")
            busy = statistics.median(m.busy for m in runs)
            rows.append(
                (
                    scenario,
                    spec.name,
                    proto,
                    f"{best:,.0f}",
                    f"{median:,.0f}",
                    unit,
                    *versus,
                    f"{cost:,.1f} {CPU_UNITS[scenario]}",
                    f"{busy:.0%}",
                    *cpu_versus,
                    str(max(connections.get(key, [0]))),
                )
            )
    return render_table(header, rows, left)


def format_targets(
    args: argparse.Namespace, results: Results, failures: dict[tuple[str, str], str]
) -> str:
    """Render webwire's HTTP/2 rows against the targets, one line per (client, target)."""
    header = ("scenario", "webwire", "compared with", "target", "wall", "", "cpu", "")
    selected = {spec.name: spec for spec in args.client_specs}
    rows: list[tuple[str, ...]] = []
    for target in TARGETS:
        if target.scenario not in args.scenario_names:
            continue
        for client in WEBWIRE_H2:
            key = (target.scenario, client)
            spec = selected.get(client)
            if spec is None or target.scenario not in spec.scenarios:
                continue
            if target.against == "h1":
                other: str | None = f"{client}-h1"
            else:
                other = fastest(results, target.scenario, target.against, args.stat)
            goal = f">= {target.minimum:.1f}x"
            runs = results.get(key)
            other_runs = results.get((target.scenario, other)) if other else None
            if not runs or other is None or not other_runs:
                missing = client if not runs else (other or target.against)
                why = "failed" if (target.scenario, missing) in failures else "not measured"
                rows.append(
                    (
                        target.scenario,
                        client,
                        other or target.against,
                        goal,
                        "-",
                        f"({missing} {why})",
                        "-",
                        "",
                    )
                )
                continue
            wall = rate(runs, args.stat) / rate(other_runs, args.stat)
            cpu = cpu_cost(other_runs, args.stat) / cpu_cost(runs, args.stat)
            rows.append(
                (
                    target.scenario,
                    client,
                    other,
                    goal,
                    f"{wall:.2f}x",
                    "met" if wall >= target.minimum else "NOT met",
                    f"{cpu:.2f}x",
                    "met" if cpu >= target.minimum else "NOT met",
                )
            )
    if not rows:
        return ""
    title = (
        f"targets ({args.stat} round; wall: throughput ratio, cpu: inverse ratio of client CPU "
        "per request/MiB; a peer is taken at its faster row)"
    )
    return title + "\n" + render_table(header, rows, (0, 1, 2, 3, 5, 7))


def _version(package: str) -> str:
    try:
        return importlib.metadata.version(package)
    except importlib.metadata.PackageNotFoundError:
        return "not installed"


def _tls_summary(server: Server) -> str:
    """Handshake once with ALPN h2 and http/1.1 and name what nginx chose."""
    context = ssl.create_default_context(cafile=str(server.ca_path))
    context.set_alpn_protocols(["h2", "http/1.1"])
    try:
        with socket.create_connection(("127.0.0.1", server.port), timeout=10) as raw:
            with context.wrap_socket(raw, server_hostname="127.0.0.1") as tls:
                cipher = tls.cipher()
                return (
                    f"{tls.version()}, {cipher[0] if cipher else '?'}, "
                    f"ALPN {tls.selected_alpn_protocol()}"
                )
    except OSError as exc:
        return f"handshake failed: {exc}"


def _describe(args: argparse.Namespace, server: Server) -> str:
    loop = "uvloop" if args.uvloop else "asyncio (default loop)"
    try:
        import webwire

        webwire_line = f"webwire {_version('webwire')} from {Path(webwire.__file__).parent}"
    except Exception as exc:
        webwire_line = f"webwire cannot be imported: {describe_error(exc)}"
    return (
        f"Python {platform.python_version()} ({platform.python_implementation()}), "
        f"{os.cpu_count()} CPUs, {platform.system()} {platform.release()}, {ssl.OPENSSL_VERSION}\n"
        f"server: {server.description} at {server.base_url}\n"
        f"TLS: {_tls_summary(server)}\n"
        f"{webwire_line}; httpx {_version('httpx')} (h2 {_version('h2')}); "
        f"niquests {_version('niquests')} (urllib3-future {_version('urllib3-future')})\n"
        f"asyncio clients on: {loop}\n"
        f"sequential: {args.requests} GETs of 13 bytes; multiplexed: "
        f"{args.multiplexed_requests} GETs, {args.concurrency} in flight; download: "
        f"{server.big_size >> 20} MiB streamed; one connection per client\n"
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
    work = _workload(args, server, scenario)
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
        server = start_tls_nginx(args.download_mib << 20)
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
        results, failures, connections = run_rounds(args, specs, server)
    print()
    print(format_table(args, specs, results, failures, connections))
    targets = format_targets(args, results, failures)
    if targets:
        print()
        print(targets)
    for (scenario, name), error in failures.items():
        print(f"{name} {scenario}: {error}")
    extra = [
        f"{name} {scenario}: {max(counts)} connections"
        for (scenario, name), counts in connections.items()
        if max(counts) != 1
    ]
    if extra:
        print("clients that did not keep to one connection: " + "; ".join(extra))
    return 0


if __name__ == "__main__":
    sys.exit(main())
