"""WebSocket client benchmark: webwire against its peers on a loopback picows server.

Usage::

    .venv/bin/python benchmarks/websocket.py [--quick] [--uvloop] [--rounds N]
        [--roundtrips N] [--echo-count N] [--deflate-count N] [--clients a,b]
        [--scenarios a,b] [--stat best|median] [--pin [CPU]] [--profile [CLIENT]]

The script starts one server process (``_wsserver.py``) on two free
127.0.0.1 ports: picows' own echo server, and picows' websockets-compatible
server with permessage-deflate (picows' own server does not negotiate the
extension). Scenarios (see ``_clients_ws.py``): ``roundtrip``, sequential
16-byte messages, in messages per second; ``echo``, sequential 1 MiB random
binary messages, in MiB per second; ``deflate``, sequential 1 MiB
compressible messages with permessage-deflate, in MiB per second. Rounds are
interleaved (every client once per round, in a rotating order); the table
reports the best and the median round, the ratios to websockets (its trio
client for trio clients, its blocking client for blocking ones), aiohttp and
picows, and the client's
CPU cost (user + system CPU time of this process per message or per MiB,
over the same timed interval). webwire's clients are skipped, with a note,
while ``webwire.websocket`` does not exist. Nothing is asserted: the exit
status does not depend on the numbers.
"""

from __future__ import annotations

import argparse
import gc
import importlib.metadata
import os
import platform
import signal
import socket
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _clients import ClientSpec
from _clients_ws import CLIENTS, SCENARIOS, WsWorkload, compressible_payload, random_payload
from _harness import (
    Measurement,
    _deadline,
    _run_async,
    available,
    cpu_cost,
    describe_error,
    exit_on_signal,
    pin_to_cpu,
    rate,
    ratio,
    render_table,
    split_names,
)

UNITS = {"roundtrip": "msg/s", "echo": "MiB/s", "deflate": "MiB/s"}
CPU_UNITS = {"roundtrip": "µs/msg", "echo": "µs/MiB", "deflate": "µs/MiB"}
#: Ratio columns: peer -> the peer's row for (asyncio clients, trio clients, blocking clients).
BASELINES = {
    "websockets": ("websockets", "websockets-trio", "websockets-sync"),
    "aiohttp": ("aiohttp", "aiohttp", "aiohttp"),
    "picows": ("picows", "picows", "picows"),
}
#: picows' own client has no permessage-deflate: its compatible layer stands in for it there.
DEFLATE_STAND_IN = {"picows": "picows-websockets"}
_HERE = Path(__file__).resolve().parent
STARTUP_TIMEOUT = 20.0


class WsServer:
    """The echo server subprocess (``_wsserver.py``)."""

    def __init__(self) -> None:
        self.plain_port, self.deflate_port = _free_port(), _free_port()
        self.plain_url = f"ws://127.0.0.1:{self.plain_port}/"
        self.deflate_url = f"ws://127.0.0.1:{self.deflate_port}/"
        self._process = subprocess.Popen(
            [
                sys.executable,
                str(_HERE / "_wsserver.py"),
                str(self.plain_port),
                str(self.deflate_port),
            ],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        assert self._process.stdout is not None
        self.description = self._process.stdout.readline().strip()
        if not self.description or not self._wait_listening():
            err = self._process.stderr.read() if self._process.poll() is not None else ""
            self.stop()
            raise SystemExit(f"cannot start the echo server: {err.strip() or 'no answer'}")

    def _wait_listening(self) -> bool:
        deadline = time.monotonic() + STARTUP_TIMEOUT
        for port in (self.plain_port, self.deflate_port):
            while True:
                try:
                    with socket.create_connection(("127.0.0.1", port), timeout=1.0):
                        break
                except OSError:
                    if time.monotonic() > deadline or self._process.poll() is not None:
                        return False
                    time.sleep(0.05)
        return True

    def process_ids(self) -> list[int]:
        return [self._process.pid]

    def stop(self) -> None:
        proc = self._process
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(timeout=10)
        for stream in (proc.stdin, proc.stdout, proc.stderr):
            if stream is not None:
                stream.close()


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def measure(
    spec: ClientSpec,
    scenario: str,
    work: WsWorkload,
    use_uvloop: bool,
    max_seconds: float,
    collect: bool = True,
) -> Measurement:
    """Run one scenario once with one client, after a full garbage collection
    (outside the timing; skipped when ``collect`` is false).

    Raises:
        ResponseMismatch: An echo was wrong, or deflate was not negotiated.
        MeasurementTimeout: The run took longer than ``max_seconds``.
    """
    fn: Any = spec.scenarios[scenario]
    if collect:
        gc.collect()
    if spec.runtime == "sync":
        with _deadline(max_seconds):
            timing = fn(work)
    else:
        with _deadline(max_seconds + 30.0):
            timing = _run_async(fn, work, spec.runtime, use_uvloop, max_seconds)  # type: ignore[arg-type]
    units = work.units(scenario)
    return Measurement(
        rate=units / timing.elapsed,
        cpu_cost=timing.cpu * 1e6 / units,
        busy=timing.cpu / timing.elapsed,
    )


def _parse_args(argv: list[str] | None) -> argparse.Namespace:
    names = [spec.name for spec in CLIENTS]
    parser = argparse.ArgumentParser(description="WebSocket client benchmark on loopback.")
    parser.add_argument("--quick", action="store_true", help="short run: 3 rounds, fewer messages")
    parser.add_argument("--uvloop", action="store_true", help="run asyncio clients on uvloop")
    parser.add_argument("--rounds", type=int, help="interleaved rounds (default 5, quick 3)")
    parser.add_argument(
        "--roundtrips", type=int, help="16-byte messages per roundtrip run (default 5000)"
    )
    parser.add_argument("--echo-count", type=int, help="1 MiB messages per echo run (default 100)")
    parser.add_argument(
        "--deflate-count", type=int, help="1 MiB messages per deflate run (default 30)"
    )
    parser.add_argument("--clients", help=f"comma-separated subset of: {','.join(names)}")
    parser.add_argument("--scenarios", help=f"comma-separated subset of: {','.join(SCENARIOS)}")
    parser.add_argument("--stat", choices=("best", "median"), default="best")
    parser.add_argument(
        "--pin",
        nargs="?",
        type=int,
        const=-1,
        metavar="CPU",
        help="run this process and the server on one CPU",
    )
    parser.add_argument("--max-seconds", type=float, default=120.0)
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
    args.roundtrips = args.roundtrips or (1000 if args.quick else 5000)
    args.echo_count = args.echo_count or (20 if args.quick else 100)
    args.deflate_count = args.deflate_count or (10 if args.quick else 30)
    if min(args.rounds, args.roundtrips, args.echo_count, args.deflate_count) < 1:
        parser.error("counts must be >= 1")
    chosen = split_names(args.clients, names, parser)
    args.client_specs = [spec for spec in CLIENTS if spec.name in chosen]
    args.scenario_names = [
        s for s in SCENARIOS if s in split_names(args.scenarios, SCENARIOS, parser)
    ]
    if args.profile is not None and args.profile not in names:
        parser.error(f"--profile: unknown client {args.profile!r}; choose from {names}")
    return args


def run_rounds(
    args: argparse.Namespace, specs: list[ClientSpec], work: WsWorkload
) -> tuple[dict[tuple[str, str], list[Measurement]], dict[tuple[str, str], str]]:
    """Run every (scenario, client) pair once per round, interleaved and rotating."""
    results: dict[tuple[str, str], list[Measurement]] = {}
    failures: dict[tuple[str, str], str] = {}
    for round_no in range(args.rounds):
        shift = round_no % max(1, len(specs))
        order = specs[shift:] + specs[:shift]
        for scenario in args.scenario_names:
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


def _baseline(
    results: dict[tuple[str, str], list[Measurement]], scenario: str, peer: str, spec: ClientSpec
) -> list[Measurement] | None:
    asyncio_name, trio_name, sync_name = BASELINES[peer]
    name = {"sync": sync_name, "trio": trio_name}.get(spec.runtime, asyncio_name)
    if scenario == "deflate":
        name = DEFLATE_STAND_IN.get(name, name)
    return results.get((scenario, name))


def format_table(
    args: argparse.Namespace,
    specs: list[ClientSpec],
    results: dict[tuple[str, str], list[Measurement]],
    failures: dict[tuple[str, str], str],
) -> str:
    """One row per (scenario, client); ratios are the client's rate over each peer's
    (higher is better) and the peer's CPU cost over the client's (higher is better)."""
    header = [
        "scenario",
        "client",
        "best",
        "median",
        "unit",
        *(f"vs {peer}" for peer in BASELINES),
        f"client CPU ({args.stat})",
        "busy",
        *(f"cpu vs {peer}" for peer in BASELINES),
    ]
    rows: list[list[str]] = []
    for scenario in args.scenario_names:
        for spec in specs:
            key = (scenario, spec.name)
            if scenario not in spec.scenarios:
                continue
            if key in failures:
                rows.append(
                    [scenario, spec.name, "FAILED", "", UNITS[scenario]]
                    + [""] * (2 * len(BASELINES) + 2)
                )
                continue
            runs = results.get(key)
            if not runs:
                continue
            value, cost = rate(runs, args.stat), cpu_cost(runs, args.stat)
            vs, cpu_vs = [], []
            for peer in BASELINES:
                base = _baseline(results, scenario, peer, spec)
                vs.append(ratio(value, rate(base, args.stat)) if base else "-")
                cpu_vs.append(ratio(cpu_cost(base, args.stat), cost) if base else "-")
            rows.append(
                [
                    scenario,
                    spec.name,
                    f"{rate(runs, 'best'):,.0f}",
                    f"{rate(runs, 'median'):,.0f}",
                    UNITS[scenario],
                    *vs,
                    f"{cost:,.1f} {CPU_UNITS[scenario]}",
                    f"{statistics.median(m.busy for m in runs):.0%}",
                    *cpu_vs,
                ]
            )
    return render_table(header, rows, left=(0, 1, 4))


def _versions() -> str:
    found = []
    for dist in ("websockets", "aiohttp", "picows", "trio-websocket", "trio", "uvloop"):
        try:
            found.append(f"{dist} {importlib.metadata.version(dist)}")
        except importlib.metadata.PackageNotFoundError:
            pass
    return ", ".join(found)


def _describe(args: argparse.Namespace, server: WsServer, work: WsWorkload) -> str:
    loop = "uvloop" if args.uvloop else "asyncio (default loop)"
    pin = f"pinned to CPU {args.pin}" if args.pin is not None else "not pinned"
    return (
        f"Python {platform.python_version()}, {os.cpu_count()} CPUs, "
        f"{platform.system()} {platform.release()}; {_versions()}\n"
        f"server: {server.description}\n"
        f"asyncio clients on: {loop}; {pin}\n"
        f"roundtrip: {work.roundtrips} x 16 B; echo: {work.big_count} x 1 MiB random; "
        f"deflate: {work.deflate_count} x 1 MiB compressible (JSON records), "
        "permessage-deflate checked with the server, each client at its own zlib level "
        "(aiohttp 1, websockets 6)\n"
        f"{args.rounds} interleaved rounds; ratios from the {args.stat} round; "
        "vs websockets: its trio client for trio clients, its blocking client for blocking ones; "
        "vs picows in deflate: picows-websockets (picows' own client has no deflate)"
    )


def main(argv: list[str] | None = None) -> int:
    args = _parse_args(argv)
    for sig in (signal.SIGTERM, signal.SIGHUP):
        signal.signal(sig, exit_on_signal)
    specs = available(args.client_specs)
    if any(spec.name.startswith("webwire") and spec not in specs for spec in args.client_specs):
        print(
            "note: webwire's WebSocket client (webwire.websocket) is not available here: "
            "its rows are skipped; the peers' numbers are the targets",
            file=sys.stderr,
        )
    if not specs:
        print("no client can run", file=sys.stderr)
        return 1
    if args.pin is not None:
        args.pin = pin_to_cpu(args.pin)
    server = WsServer()
    try:
        work = WsWorkload(
            plain_url=server.plain_url,
            deflate_url=server.deflate_url,
            roundtrips=args.roundtrips,
            small=random_payload(16),
            big=random_payload(1 << 20),
            big_count=args.echo_count,
            compressible=compressible_payload(1 << 20),
            deflate_count=args.deflate_count,
        )
        if args.profile is not None:
            return _profile(args, work)
        print(_describe(args, server, work), flush=True)
        results, failures = run_rounds(args, specs, work)
    finally:
        server.stop()
    print()
    print(format_table(args, specs, results, failures))
    for (scenario, name), error in failures.items():
        print(f"{name} {scenario}: {error}")
    return 0


def _profile(args: argparse.Namespace, work: WsWorkload) -> int:
    import cProfile
    import io
    import pstats

    spec = next(spec for spec in CLIENTS if spec.name == args.profile)
    reason = spec.unavailable_reason()
    if reason is not None:
        raise SystemExit(f"cannot profile {spec.name}: {reason}")
    scenario = next((s for s in args.scenario_names if s in spec.scenarios), None)
    if scenario is None:
        raise SystemExit(f"{spec.name} has none of the scenarios {args.scenario_names}")
    measure(spec, scenario, work, args.uvloop, args.max_seconds)
    gc.collect()
    profiler = cProfile.Profile()
    profiler.enable()
    result = measure(spec, scenario, work, args.uvloop, args.max_seconds, collect=False)
    profiler.disable()
    out = io.StringIO()
    pstats.Stats(profiler, stream=out).sort_stats("tottime").print_stats(args.top)
    print(
        f"{spec.name} {scenario} under cProfile: {result.rate:,.0f} {UNITS[scenario]}, "
        f"client CPU {result.cpu_cost:,.1f} {CPU_UNITS[scenario]}, busy {result.busy:.0%}"
    )
    print(out.getvalue())
    return 0


if __name__ == "__main__":
    sys.exit(main())
