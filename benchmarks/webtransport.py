"""WebTransport client benchmark: webwire against pywebtransport and raw qh3 on loopback.

Usage::

    .venv/bin/python benchmarks/webtransport.py [--quick] [--rounds N] [--sessions N]
        [--roundtrips N] [--stream-mib N] [--datagrams N] [--clients a,b]
        [--scenarios a,b] [--stat best|median] [--server qh3|aioquic] [--pin [CPU]]
        [--no-build]

The script starts one server process: the WebTransport echo server of
``tests/integration/wt_server_aioquic.py`` (TLS with a throwaway trustme
certificate, route ``/echo``), with ``--any-draft`` so that clients of
draft-02 (qh3, webwire) and of later drafts (pywebtransport 0.8.1: drafts
07+, 0.21: draft 13+) all find what they need. By default (``--server qh3``)
that code runs on qh3 (``_wtserver_qh3.py``: compiled QUIC, about half the
server CPU per echo of aioquic); ``--server aioquic`` runs it on aioquic
(pure Python). It runs on a free 127.0.0.1 UDP port and is stopped at the
end. One QUIC connection is served by one process: the table's ``server
CPU`` column (the server's CPU time per unit over each whole run) says how
much of each number the server costs; where client and server CPU add up to
about the wall time per unit, the server sets the pace as much as the client.

Scenarios (see ``_clients_wt.py``): ``setup`` (sessions per second),
``roundtrip`` (16-byte echoes on one stream per second), ``stream`` (64 MiB
through one bidirectional stream, MiB per second), ``datagram`` (16-byte
datagram echoes per second). Clients: ``qh3-raw`` (qh3 driven directly: the
engine's ceiling), pywebtransport 0.21.1 and 0.8.1 (each in a subprocess of
its own Python 3.12 environment, built on first use by
``tests/integration/wt_env.py`` unless ``--no-build``), and webwire on
asyncio, trio and blocking code (skipped, with a note, while
``webwire.webtransport`` does not exist).

Rounds are interleaved (every client once per round, in a rotating order);
the table reports the best and the median round, the ratios to qh3-raw and
to each pywebtransport, and the client's CPU cost (user + system CPU time
of the client's process per unit over the timed interval; for the
pywebtransport rows that is their subprocess). Nothing is asserted: the
exit status does not depend on the numbers.
"""

from __future__ import annotations

import argparse
import gc
import importlib.metadata
import json
import os
import platform
import signal
import statistics
import subprocess
import sys
import tempfile
from dataclasses import asdict
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _clients import ResponseMismatch, Timing
from _clients_wt import CLIENTS, SCENARIOS, WtClientSpec, WtWorkload
from _harness import (
    Measurement,
    MeasurementTimeout,
    _deadline,
    _run_async,
    cpu_cost,
    describe_error,
    exit_on_signal,
    pin_to_cpu,
    rate,
    ratio,
    render_table,
    split_names,
)

_HERE = Path(__file__).resolve().parent
_TESTS = _HERE.parent / "tests" / "integration"
UNITS = {"setup": "sess/s", "roundtrip": "rt/s", "stream": "MiB/s", "datagram": "rt/s"}
CPU_UNITS = {"setup": "µs/sess", "roundtrip": "µs/rt", "stream": "µs/MiB", "datagram": "µs/rt"}
BASELINES = ("qh3-raw", "pywebtransport-0.21", "pywebtransport-0.8.1")
STARTUP_TIMEOUT = 30.0


#: ``--server`` choices: the script run, and how the header describes it.
SERVERS = {
    "qh3": (_HERE / "_wtserver_qh3.py", "the aioquic echo server's code on qh3"),
    "aioquic": (_TESTS / "wt_server_aioquic.py", "aioquic WebTransport echo server"),
}


class EchoServer:
    """The echo server subprocess (``kind``: a key of :data:`SERVERS`), with its
    throwaway certificate."""

    def __init__(self, kind: str = "qh3") -> None:
        import trustme

        self._dir = tempfile.TemporaryDirectory(prefix="wt-bench-")
        directory = Path(self._dir.name)
        ca = trustme.CA()
        cert = ca.issue_cert("127.0.0.1", "localhost")
        self.ca_path = str(directory / "ca.pem")
        cert_path, key_path = directory / "server.pem", directory / "server.key"
        ca.cert_pem.write_to_path(self.ca_path)
        for blob in cert.cert_chain_pems:
            blob.write_to_path(str(cert_path), append=True)
        cert.private_key_pem.write_to_path(str(key_path))
        self.kind = kind
        self._process = subprocess.Popen(
            [
                sys.executable,
                str(SERVERS[kind][0]),
                "--cert",
                str(cert_path),
                "--key",
                str(key_path),
                "--any-draft",
            ],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        assert self._process.stdout is not None
        line = self._process.stdout.readline().strip()
        if not line.isdigit():
            err = self._process.stderr.read() if self._process.poll() is not None else ""
            self.stop()
            raise SystemExit(f"cannot start the echo server: {err.strip() or 'no answer'}")
        self.port = int(line)
        self.url = f"https://127.0.0.1:{self.port}/echo"

    def process_ids(self) -> list[int]:
        return [self._process.pid]

    def cpu_seconds(self) -> float:
        """User + system CPU time the server process has used so far (0.0 where
        ``/proc`` is missing)."""
        try:
            with open(f"/proc/{self._process.pid}/stat") as file:
                fields = file.read().rsplit(")", 1)[1].split()
        except OSError:
            return 0.0
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")

    def stop(self) -> None:
        proc = self._process
        if proc.poll() is None:
            assert proc.stdin is not None
            proc.stdin.close()
            try:
                proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                proc.send_signal(signal.SIGTERM)
                try:
                    proc.wait(timeout=10)
                except subprocess.TimeoutExpired:
                    proc.kill()
                    proc.wait(timeout=10)
        for stream in (proc.stdin, proc.stdout, proc.stderr):
            if stream is not None and not stream.closed:
                stream.close()
        self._dir.cleanup()


def _environments(
    specs: list[WtClientSpec], build: bool
) -> tuple[list[WtClientSpec], dict[str, str]]:
    """The clients that can run, and the python of each pywebtransport client's environment."""
    sys.path.insert(0, str(_TESTS))
    import wt_env

    usable: list[WtClientSpec] = []
    pythons: dict[str, str] = {}
    for spec in specs:
        if spec.runtime != "subprocess":
            reason = spec.unavailable_reason()
            if reason is None:
                usable.append(spec)
            else:
                print(f"skipping {spec.name}: {reason}", file=sys.stderr)
            continue
        old = spec.version == "0.8"
        try:
            if build:
                python = wt_env.ensure_python(pywebtransport_08=old)
            elif wt_env.is_ready(pywebtransport_08=old):
                python = (wt_env.ENV08_DIR if old else wt_env.ENV_DIR) / "bin" / "python"
            else:
                print(f"skipping {spec.name}: its environment is not built", file=sys.stderr)
                continue
        except wt_env.WTEnvError as exc:
            print(f"skipping {spec.name}: {exc}", file=sys.stderr)
            continue
        pythons[spec.name] = str(python)
        usable.append(spec)
    return usable, pythons


def measure(
    spec: WtClientSpec,
    scenario: str,
    work: WtWorkload,
    pythons: dict[str, str],
    max_seconds: float,
) -> Measurement:
    """Run one scenario once with one client.

    Raises:
        ResponseMismatch: An echo was wrong, or too many datagrams were lost.
        MeasurementTimeout: The run took longer than ``max_seconds``.
    """
    gc.collect()
    if spec.runtime == "subprocess":
        timing = _run_subprocess(spec, scenario, work, pythons[spec.name], max_seconds)
    elif spec.runtime == "sync":
        assert spec.scenarios is not None
        with _deadline(max_seconds):
            timing = spec.scenarios[scenario](work)
    else:
        assert spec.scenarios is not None
        fn: Any = spec.scenarios[scenario]
        with _deadline(max_seconds + 30.0):
            timing = _run_async(fn, work, spec.runtime, False, max_seconds)  # type: ignore[arg-type]
    units = work.units(scenario)
    return Measurement(
        rate=units / timing.elapsed,
        cpu_cost=timing.cpu * 1e6 / units,
        busy=timing.cpu / timing.elapsed,
    )


def _run_subprocess(
    spec: WtClientSpec, scenario: str, work: WtWorkload, python: str, max_seconds: float
) -> Timing:
    argv = [
        python,
        str(_HERE / "_clients_wt.py"),
        "--version",
        spec.version,
        "--scenario",
        scenario,
        "--workload",
        json.dumps(asdict(work)),
    ]
    try:
        out = subprocess.run(argv, capture_output=True, text=True, timeout=max_seconds)
    except subprocess.TimeoutExpired:
        raise MeasurementTimeout(f"no result after {max_seconds:.0f} s") from None
    if out.returncode != 0:
        lines = out.stderr.strip().splitlines() or [f"exit status {out.returncode}"]
        last = lines[-1]
        if "ResponseMismatch" in last:
            raise ResponseMismatch(last.split(":", 1)[-1].strip())
        raise RuntimeError(last)
    return Timing(**json.loads(out.stdout.strip().splitlines()[-1]))


def _parse_args(argv: list[str] | None) -> argparse.Namespace:
    names = [spec.name for spec in CLIENTS]
    parser = argparse.ArgumentParser(description="WebTransport client benchmark on loopback.")
    parser.add_argument("--quick", action="store_true", help="short run: 3 rounds, less work")
    parser.add_argument("--rounds", type=int, help="interleaved rounds (default 5, quick 3)")
    parser.add_argument("--sessions", type=int, help="sessions per setup run (default 50)")
    parser.add_argument("--roundtrips", type=int, help="16 B echoes per roundtrip run (5000)")
    parser.add_argument("--stream-mib", type=int, help="MiB per stream run (default 64)")
    parser.add_argument("--datagrams", type=int, help="datagram echoes per run (default 5000)")
    parser.add_argument("--clients", help=f"comma-separated subset of: {','.join(names)}")
    parser.add_argument("--scenarios", help=f"comma-separated subset of: {','.join(SCENARIOS)}")
    parser.add_argument("--stat", choices=("best", "median"), default="best")
    parser.add_argument(
        "--server", choices=tuple(SERVERS), default="qh3",
        help="echo server: the aioquic server's code on qh3 (default) or on aioquic",
    )
    parser.add_argument(
        "--pin", nargs="?", type=int, const=-1, metavar="CPU",
        help="run this process, its clients and the server on one CPU",
    )
    parser.add_argument("--max-seconds", type=float, default=300.0)
    parser.add_argument(
        "--no-build", action="store_true",
        help="do not build the pywebtransport environments (skip their clients if missing)",
    )
    args = parser.parse_args(argv)
    args.rounds = args.rounds or (3 if args.quick else 5)
    args.sessions = args.sessions or (10 if args.quick else 50)
    args.roundtrips = args.roundtrips or (1000 if args.quick else 5000)
    args.stream_mib = args.stream_mib or (8 if args.quick else 64)
    args.datagrams = args.datagrams or (1000 if args.quick else 5000)
    counts = (args.rounds, args.sessions, args.roundtrips, args.stream_mib, args.datagrams)
    if min(counts) < 1:
        parser.error("counts must be >= 1")
    chosen = split_names(args.clients, names, parser)
    args.client_specs = [spec for spec in CLIENTS if spec.name in chosen]
    args.scenario_names = [
        s for s in SCENARIOS if s in split_names(args.scenarios, SCENARIOS, parser)
    ]
    return args


def run_rounds(
    args: argparse.Namespace, specs: list[WtClientSpec], work: WtWorkload,
    pythons: dict[str, str], server: EchoServer,
) -> tuple[dict[tuple[str, str], list[Measurement]], dict[tuple[str, str], str]]:
    """Run every (scenario, client) pair once per round, interleaved and rotating.

    The server's CPU time per unit of each run (its whole run: connection,
    warm-up and close included) goes to ``args.server_cpu``."""
    results: dict[tuple[str, str], list[Measurement]] = {}
    args.server_cpu = {}
    failures: dict[tuple[str, str], str] = {}
    for round_no in range(args.rounds):
        shift = round_no % max(1, len(specs))
        order = specs[shift:] + specs[:shift]
        for scenario in args.scenario_names:
            for spec in order:
                key = (scenario, spec.name)
                if scenario not in spec.scenario_names() or key in failures:
                    continue
                before = server.cpu_seconds()
                try:
                    value = measure(spec, scenario, work, pythons, args.max_seconds)
                except Exception as exc:
                    failures[key] = describe_error(exc)
                    print(f"  {spec.name} {scenario} FAILED: {failures[key]}", file=sys.stderr)
                    continue
                results.setdefault(key, []).append(value)
                spent = (server.cpu_seconds() - before) * 1e6 / work.units(scenario)
                args.server_cpu.setdefault(key, []).append(spent)
        print(f"round {round_no + 1}/{args.rounds} done", file=sys.stderr, flush=True)
    return results, failures


def format_table(
    args: argparse.Namespace,
    specs: list[WtClientSpec],
    results: dict[tuple[str, str], list[Measurement]],
    failures: dict[tuple[str, str], str],
) -> str:
    """One row per (scenario, client); ratios are the client's rate over each baseline's
    (higher is better) and the baseline's CPU cost over the client's (higher is better)."""
    header = [
        "scenario",
        "client",
        "best",
        "median",
        "unit",
        *(f"vs {name}" for name in BASELINES),
        f"client CPU ({args.stat})",
        "busy",
        "server CPU (median)",
        *(f"cpu vs {name}" for name in BASELINES),
    ]
    rows: list[list[str]] = []
    for scenario in args.scenario_names:
        for spec in specs:
            key = (scenario, spec.name)
            if key in failures:
                rows.append(
                    [scenario, spec.name, "FAILED", "", UNITS[scenario]]
                    + [""] * (2 * len(BASELINES) + 3)
                )
                continue
            runs = results.get(key)
            if not runs:
                continue
            value, cost = rate(runs, args.stat), cpu_cost(runs, args.stat)
            vs, cpu_vs = [], []
            for name in BASELINES:
                base = results.get((scenario, name))
                if base is None or name == spec.name:
                    vs.append("-")
                    cpu_vs.append("-")
                    continue
                vs.append(ratio(value, rate(base, args.stat)))
                cpu_vs.append(ratio(cpu_cost(base, args.stat), cost))
            rows.append(
                [
                    scenario,
                    spec.name,
                    f"{rate(runs, 'best'):,.1f}",
                    f"{rate(runs, 'median'):,.1f}",
                    UNITS[scenario],
                    *vs,
                    f"{cost:,.1f} {CPU_UNITS[scenario]}",
                    f"{statistics.median(m.busy for m in runs):.0%}",
                    f"{statistics.median(args.server_cpu[key]):,.1f} {CPU_UNITS[scenario]}",
                    *cpu_vs,
                ]
            )
    return render_table(header, rows, left=(0, 1, 4))


def _versions() -> str:
    found = []
    for dist in ("qh3", "aioquic", "trio"):
        try:
            found.append(f"{dist} {importlib.metadata.version(dist)}")
        except importlib.metadata.PackageNotFoundError:
            pass
    return ", ".join(found)


def _describe(args: argparse.Namespace, work: WtWorkload, pythons: dict[str, str]) -> str:
    pin = f"pinned to CPU {args.pin}" if args.pin is not None else "not pinned"
    peers = "; ".join(f"{name}: {python}" for name, python in pythons.items()) or "none"
    try:
        load = "load average {:.2f} {:.2f} {:.2f}".format(*os.getloadavg())
    except OSError:
        load = "load average unknown"
    return (
        f"Python {platform.python_version()}, {os.cpu_count()} CPUs, {load}, "
        f"{platform.system()} {platform.release()}; {_versions()}\n"
        f"server: {SERVERS[args.server][1]} ({SERVERS[args.server][0].name} --any-draft) "
        f"at {work.url}; {pin}\n"
        f"pywebtransport environments: {peers}\n"
        f"setup: {work.sessions} sessions; roundtrip: {work.roundtrips} x 16 B; "
        f"stream: {work.stream_size >> 20} MiB; datagram: {work.datagrams} x 16 B\n"
        f"{args.rounds} interleaved rounds; ratios from the {args.stat} round"
    )


def main(argv: list[str] | None = None) -> int:
    args = _parse_args(argv)
    for sig in (signal.SIGTERM, signal.SIGHUP):
        signal.signal(sig, exit_on_signal)
    specs, pythons = _environments(args.client_specs, build=not args.no_build)
    if any(spec.name.startswith("webwire") and spec not in specs for spec in args.client_specs):
        print(
            "note: webwire's WebTransport client (webwire.webtransport) is not available here: "
            "its rows are skipped; the peers' numbers are the targets",
            file=sys.stderr,
        )
    if not specs:
        print("no client can run", file=sys.stderr)
        return 1
    if args.pin is not None:
        args.pin = pin_to_cpu(args.pin)
    server = EchoServer(args.server)
    try:
        work = WtWorkload(
            url=server.url,
            ca_path=server.ca_path,
            sessions=args.sessions,
            roundtrips=args.roundtrips,
            stream_size=args.stream_mib << 20,
            datagrams=args.datagrams,
        )
        print(_describe(args, work, pythons), flush=True)
        results, failures = run_rounds(args, specs, work, pythons, server)
    finally:
        server.stop()
    print()
    print(format_table(args, specs, results, failures))
    for (scenario, name), error in failures.items():
        print(f"{name} {scenario}: {error}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
