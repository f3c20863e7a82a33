"""HTTP/3 client benchmark: webwire against niquests on loopback caddy and hypercorn.

Usage::

    .venv/bin/python benchmarks/http3.py [--quick] [--uvloop] [--rounds N]
        [--requests N] [--concurrency N] [--servers caddy,hypercorn]
        [--clients a,b] [--scenarios a,b] [--stat best|median] [--pin [CPU]]
        [--profile [CLIENT]]

Two servers are started as subprocesses on a free 127.0.0.1 port number
(UDP for HTTP/3, TCP on the same number for HTTP/2 and HTTP/1.1), each with
a throwaway trustme certificate, a 13-byte ``/hello`` and a 100 MiB
``/big.bin``:

* caddy (``caddy run`` on a generated JSON configuration: ``h1``, ``h2``
  and ``h3`` enabled, a ``static_response`` and a ``file_server``), the
  fast native HTTP/3 server (quic-go);
* hypercorn with ``quic_bind`` (HTTP/3 on aioquic, in Python) serving a
  small ASGI app, the server the integration tests use.

Every client is forced onto HTTP/3 from its first request and checks it on
its first response; each uses one connection (QUIC connections are not
counted on the server side). Rounds are interleaved (every client once per
round, in a rotating order), one server after the other; the tables report
the best and the median round, the ratios to niquests (its row of the same
kind: async for asyncio and trio clients, sync for the blocking one) and
the client's CPU cost (user + system CPU time of this process per request or
per MiB, over the same timed interval). Nothing is asserted: the exit status
does not depend on the numbers. When webwire cannot speak HTTP/3 yet its
rows are skipped with a note. ``--pin`` runs this process and the servers
on one CPU. See benchmarks/README.md.
"""

from __future__ import annotations

import argparse
import asyncio
import errno
import importlib.metadata
import json
import os
import platform
import shutil
import signal
import socket
import ssl
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _clients import ClientSpec, Workload
from _clients_h3 import CLIENTS, SCENARIOS, webwire_http3_missing
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
from _servers import (
    HELLO_BODY,
    Server,
    ServerError,
    _die_with_parent,
    _popen,
    _write_big_file,
    _write_certificates,
)

UNITS = {"sequential": "req/s", "multiplexed": "req/s", "download": "MiB/s"}
CPU_UNITS = {"sequential": "µs/req", "multiplexed": "µs/req", "download": "µs/MiB"}
SERVERS = ("caddy", "hypercorn")
CADDY_INSTALL_HINT = "apt-get update && apt-get install -y caddy"
_STARTUP_TIMEOUT = 15.0
_SERVE_HYPERCORN = "--serve-hypercorn"

Results = dict[tuple[str, str], list[Measurement]]


def _parse_args(argv: list[str] | None) -> argparse.Namespace:
    names = [spec.name for spec in CLIENTS]
    parser = argparse.ArgumentParser(
        description="HTTP/3 client benchmark against loopback caddy and hypercorn."
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
    parser.add_argument("--servers", help=f"comma-separated subset of: {','.join(SERVERS)}")
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
        help="run this process and the servers on one CPU (default: the last one allowed)",
    )
    parser.add_argument(
        "--max-seconds", type=float, default=120.0, help="abort one measurement after this"
    )
    parser.add_argument(
        "--profile",
        nargs="?",
        const="webwire-asyncio",
        metavar="CLIENT",
        help="profile CLIENT (default webwire-asyncio) with cProfile instead of benchmarking "
        "(against the first of --servers)",
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
    chosen_servers = split_names(args.servers, SERVERS, parser)
    args.server_names = [s for s in SERVERS if s in chosen_servers]
    if args.profile is not None and args.profile not in names:
        parser.error(f"--profile: unknown client {args.profile!r}; choose from {names}")
    return args


# -- servers ----------------------------------------------------------------


def _free_port_pair(attempts: int = 50) -> int:
    """A port number free on 127.0.0.1 for both UDP and TCP (checked, then released)."""
    for _ in range(attempts):
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as udp:
            udp.bind(("127.0.0.1", 0))
            port: int = udp.getsockname()[1]
            with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as tcp:
                try:
                    tcp.bind(("127.0.0.1", port))
                except OSError as exc:
                    if exc.errno != errno.EADDRINUSE:
                        raise
                    continue
        return port
    raise ServerError("no free UDP+TCP port pair on 127.0.0.1")


def _udp_bound(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as probe:
        try:
            probe.bind(("127.0.0.1", port))
        except OSError:
            return True
    return False


def _wait_ready(proc: subprocess.Popen[bytes], port: int, log: Path | None) -> None:
    """Wait until the server listens on TCP ``port`` and holds UDP ``port``."""
    deadline = time.monotonic() + _STARTUP_TIMEOUT
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            detail = log.read_text(errors="replace") if log and log.exists() else ""
            stderr = proc.stderr.read().decode(errors="replace") if proc.stderr else ""
            raise ServerError(
                f"server exited with status {proc.returncode} while starting:\n{stderr}{detail}"
            )
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                pass
        except OSError:
            time.sleep(0.05)
            continue
        if _udp_bound(port):
            return
        time.sleep(0.05)
    proc.kill()
    proc.wait()
    raise ServerError(f"server did not listen on 127.0.0.1:{port} within {_STARTUP_TIMEOUT} s")


def find_caddy() -> str | None:
    """Return the path of the caddy binary, or ``None`` when it is not installed."""
    found = shutil.which("caddy")
    if found:
        return found
    for candidate in ("/usr/bin/caddy", "/usr/local/bin/caddy"):
        if os.access(candidate, os.X_OK):
            return candidate
    return None


def _caddy_config(root: Path, port: int) -> dict[str, object]:
    return {
        "admin": {"disabled": True},
        "logging": {"logs": {"default": {"level": "ERROR"}}},
        "storage": {"module": "file_system", "root": str(root / "data")},
        "apps": {
            "http": {
                "servers": {
                    "bench": {
                        "listen": [f"127.0.0.1:{port}"],
                        "protocols": ["h1", "h2", "h3"],
                        "automatic_https": {"disable": True},
                        "tls_connection_policies": [
                            {"certificate_selection": {"any_tag": ["bench"]}}
                        ],
                        "routes": [
                            {
                                "match": [{"path": ["/hello"]}],
                                "handle": [
                                    {
                                        "handler": "static_response",
                                        "status_code": 200,
                                        "body": HELLO_BODY.decode(),
                                        "headers": {"Content-Type": ["text/plain"]},
                                    }
                                ],
                            },
                            {
                                "match": [{"path": ["/big.bin"]}],
                                "handle": [{"handler": "file_server", "root": str(root / "www")}],
                            },
                        ],
                    }
                }
            },
            "tls": {
                "certificates": {
                    "load_files": [
                        {
                            "certificate": str(root / "server.pem"),
                            "key": str(root / "server.key"),
                            "tags": ["bench"],
                        }
                    ]
                }
            },
        },
    }


def start_caddy(big_size: int) -> Server:
    """Start caddy serving HTTPS over HTTP/3, HTTP/2 and HTTP/1.1 on one port number.

    Raises:
        ServerError: caddy is not installed, trustme is missing, or caddy
            did not start.
    """
    caddy = find_caddy()
    if caddy is None:
        raise ServerError(f"caddy is not installed; install it with: {CADDY_INSTALL_HINT}")
    version = subprocess.run(
        [caddy, "version"], capture_output=True, text=True, check=False
    ).stdout.split()
    root = Path(tempfile.mkdtemp(prefix="webwire-bench-h3-caddy-"))
    try:
        for sub in ("www", "data", "config"):
            (root / sub).mkdir()
        ca_path = _write_certificates(root)
        _write_big_file(root / "www" / "big.bin", big_size)
        port = _free_port_pair()
        conf = root / "caddy.json"
        conf.write_text(json.dumps(_caddy_config(root, port), indent=1))
        log = root / "caddy.log"
        env = dict(
            os.environ,
            HOME=str(root),
            XDG_DATA_HOME=str(root / "data"),
            XDG_CONFIG_HOME=str(root / "config"),
        )
        with log.open("wb") as out:
            proc = subprocess.Popen(
                [caddy, "run", "--config", str(conf)],
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=subprocess.STDOUT,
                env=env,
                preexec_fn=_die_with_parent if sys.platform == "linux" else None,
            )
        try:
            _wait_ready(proc, port, log)
        except BaseException:
            if proc.poll() is None:
                proc.kill()
                proc.wait()
            raise
        return Server(
            "caddy",
            proc,
            root,
            port,
            big_size,
            f"caddy {version[0] if version else '?'} (HTTP/3 on UDP, HTTP/2 and HTTP/1.1 on TCP)",
            ca_path=ca_path,
        )
    except BaseException:
        shutil.rmtree(root, ignore_errors=True)
        raise


def start_hypercorn(big_size: int) -> Server:
    """Start hypercorn (``quic_bind`` and TLS on TCP, one port number) in a subprocess.

    Raises:
        ServerError: hypercorn, aioquic or trustme is missing, or the server
            did not start.
    """
    for module in ("hypercorn", "aioquic"):
        try:
            importlib.metadata.version(module)
        except importlib.metadata.PackageNotFoundError:
            raise ServerError(f"{module} is not installed (pip install hypercorn aioquic)")
    root = Path(tempfile.mkdtemp(prefix="webwire-bench-h3-hypercorn-"))
    try:
        ca_path = _write_certificates(root)
        port = _free_port_pair()
        proc = _popen(
            [
                sys.executable,
                str(Path(__file__).resolve()),
                _SERVE_HYPERCORN,
                str(port),
                str(root / "server.pem"),
                str(root / "server.key"),
                str(big_size),
            ],
            subprocess.DEVNULL,
        )
        try:
            _wait_ready(proc, port, None)
        except BaseException:
            if proc.poll() is None:
                proc.kill()
                proc.wait()
            raise
        description = (
            f"hypercorn {importlib.metadata.version('hypercorn')} "
            f"(aioquic {importlib.metadata.version('aioquic')}, asyncio, 1 worker; "
            "HTTP/3 on UDP, HTTP/2 and HTTP/1.1 on TCP)"
        )
        return Server("hypercorn", proc, root, port, big_size, description, ca_path=ca_path)
    except BaseException:
        shutil.rmtree(root, ignore_errors=True)
        raise


def serve_hypercorn(port: int, cert_path: str, key_path: str, big_size: int) -> None:
    """Run hypercorn in this process until SIGTERM (the body of the server subprocess)."""
    from hypercorn.asyncio import serve
    from hypercorn.config import Config

    block = os.urandom(1 << 20)
    chunk = 256 * 1024

    async def app(scope: dict, receive: Callable, send: Callable) -> None:  # type: ignore[type-arg]
        if scope["type"] == "lifespan":
            while True:
                message = await receive()
                if message["type"] == "lifespan.startup":
                    await send({"type": "lifespan.startup.complete"})
                elif message["type"] == "lifespan.shutdown":
                    await send({"type": "lifespan.shutdown.complete"})
                    return
        if scope["type"] != "http":
            return
        if scope["path"] == "/hello":
            headers = [(b"content-type", b"text/plain"), (b"content-length", b"13")]
            await send({"type": "http.response.start", "status": 200, "headers": headers})
            await send({"type": "http.response.body", "body": HELLO_BODY})
        elif scope["path"] == "/big.bin":
            headers = [
                (b"content-type", b"application/octet-stream"),
                (b"content-length", str(big_size).encode()),
            ]
            await send({"type": "http.response.start", "status": 200, "headers": headers})
            sent = 0
            while sent < big_size:
                size = min(chunk, big_size - sent)
                offset = sent % len(block)
                piece = block[offset : offset + size]
                if len(piece) < size:
                    piece += block[: size - len(piece)]
                await send({"type": "http.response.body", "body": piece, "more_body": True})
                sent += size
            await send({"type": "http.response.body", "body": b""})
        else:
            headers = [(b"content-length", b"0")]
            await send({"type": "http.response.start", "status": 404, "headers": headers})
            await send({"type": "http.response.body", "body": b""})

    async def main() -> None:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, stop.set)
        config = Config()
        config.bind = [f"127.0.0.1:{port}"]
        config.quic_bind = [f"127.0.0.1:{port}"]
        config.certfile = cert_path
        config.keyfile = key_path
        config.accesslog = None
        config.loglevel = "WARNING"
        config.graceful_timeout = 1.0
        config.keep_alive_timeout = 300.0
        config.keep_alive_max_requests = 10_000_000
        await serve(app, config, shutdown_trigger=stop.wait)  # type: ignore[arg-type]

    asyncio.run(main())


START = {"caddy": start_caddy, "hypercorn": start_hypercorn}


# -- rounds and tables ------------------------------------------------------------


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
) -> tuple[Results, dict[tuple[str, str], str]]:
    """Run every (scenario, client) pair once per round, interleaved.

    Returns:
        Measurements per ``(scenario, client)`` over the rounds, and the
        error text of every pair that failed (a failed pair is not retried).
    """
    results: Results = {}
    failures: dict[tuple[str, str], str] = {}
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
                    value = measure(spec, scenario, work, args.uvloop, args.max_seconds)
                except Exception as exc:
                    failures[key] = describe_error(exc)
                    print(
                        f"  {server.kind}: {spec.name} {scenario} FAILED: {failures[key]}",
                        file=sys.stderr,
                    )
                    continue
                results.setdefault(key, []).append(value)
        print(
            f"{server.kind}: round {round_no + 1}/{args.rounds} done", file=sys.stderr, flush=True
        )
    return results, failures


def baseline(results: Results, scenario: str, runtime: str) -> str | None:
    """The niquests row a client running on ``runtime`` is compared with.

    ``niquests-async`` for an asyncio or trio client, ``niquests-sync`` for a
    blocking one, or the other row when that one has no result.
    """
    kinds = ("sync", "async") if runtime == "sync" else ("async", "sync")
    for kind in kinds:
        if results.get((scenario, f"niquests-{kind}")):
            return f"niquests-{kind}"
    return None


def format_table(
    args: argparse.Namespace,
    specs: list[ClientSpec],
    results: Results,
    failures: dict[tuple[str, str], str],
) -> str:
    """Render one server's results, one row per (scenario, client).

    The throughput ratio divides the client's rate by niquests'; the CPU
    ratio divides niquests' CPU cost by the client's, so that in both higher
    is better.
    """
    header = (
        "scenario",
        "client",
        "best",
        "median",
        "unit",
        "vs niquests",
        f"client CPU ({args.stat})",
        "busy",
        "cpu vs niquests",
    )
    rows: list[tuple[str, ...]] = []
    for scenario in args.scenario_names:
        unit = UNITS[scenario]
        for spec in specs:
            key = (scenario, spec.name)
            if scenario not in spec.scenarios:
                continue
            if key in failures:
                rows.append((scenario, spec.name, "FAILED", "", unit, "", "", "", ""))
                continue
            runs = results.get(key)
            if not runs:
                continue
            value = rate(runs, args.stat)
            cost = cpu_cost(runs, args.stat)
            base = baseline(results, scenario, spec.runtime)
            if base is None:
                versus = cpu_versus = "-"
            else:
                base_runs = results[(scenario, base)]
                versus = ratio(value, rate(base_runs, args.stat))
                cpu_versus = ratio(cpu_cost(base_runs, args.stat), cost)
            rows.append(
                (
                    scenario,
                    spec.name,
                    f"{rate(runs, 'best'):,.0f}",
                    f"{rate(runs, 'median'):,.0f}",
                    unit,
                    versus,
                    f"{cost:,.1f} {CPU_UNITS[scenario]}",
                    f"{statistics.median(m.busy for m in runs):.0%}",
                    cpu_versus,
                )
            )
    return render_table(header, rows, (0, 1, 4))


def _version(package: str) -> str:
    try:
        return importlib.metadata.version(package)
    except importlib.metadata.PackageNotFoundError:
        return "not installed"


def _describe(args: argparse.Namespace) -> str:
    loop = "uvloop" if args.uvloop else "asyncio (default loop)"
    try:
        import webwire

        webwire_line = f"webwire {_version('webwire')} from {Path(webwire.__file__).parent}"
    except Exception as exc:
        webwire_line = f"webwire cannot be imported: {describe_error(exc)}"
    return (
        f"Python {platform.python_version()} ({platform.python_implementation()}), "
        f"{os.cpu_count()} CPUs, {platform.system()} {platform.release()}, {ssl.OPENSSL_VERSION}\n"
        f"{webwire_line} (qh3 {_version('qh3')}); niquests {_version('niquests')} "
        f"(urllib3-future {_version('urllib3-future')}, qh3 {_version('qh3')})\n"
        f"asyncio clients on: {loop}\n"
        f"sequential: {args.requests} GETs of 13 bytes; multiplexed: "
        f"{args.multiplexed_requests} GETs, {args.concurrency} in flight; download: "
        f"{args.download_mib} MiB streamed; one HTTP/3 connection per client, "
        "forced from the first request\n"
        f"{args.rounds} interleaved rounds per server; ratios from the {args.stat} round "
        f"({'highest rate, lowest CPU cost' if args.stat == 'best' else 'per column'})\n"
        f"client CPU: user+system CPU time of this process (getrusage) over the timed part; "
        f"busy: that CPU time / wall-clock time (median round)"
    )


def profile(args: argparse.Namespace, server: Server) -> str:
    """Profile one client's first scenario with cProfile, after one warm-up run."""
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
        The process exit status: 0 on success, 1 when no server could be
        started or no client could run.
    """
    argv = sys.argv[1:] if argv is None else argv
    if argv[:1] == [_SERVE_HYPERCORN]:
        port, cert, key, size = argv[1:5]
        serve_hypercorn(int(port), cert, key, int(size))
        return 0
    args = _parse_args(argv)
    # SIGTERM and SIGHUP unwind like Ctrl-C, so the servers are stopped and their files removed.
    for sig in (signal.SIGTERM, signal.SIGHUP):
        signal.signal(sig, exit_on_signal)
    specs = available(args.client_specs)
    missing = webwire_http3_missing()
    if missing is not None and any(s.name.startswith("webwire") for s in args.client_specs):
        print(
            f"note: {missing}: webwire's rows are skipped; niquests' numbers are the targets",
            file=sys.stderr,
        )
    if not specs:
        print("no client can run", file=sys.stderr)
        return 1
    if args.pin is not None:
        # Before the servers start, so that their processes inherit the affinity.
        args.pin = pin_to_cpu(args.pin)
    if args.profile is None:
        print(_describe(args), flush=True)
    started = 0
    for name in args.server_names:
        try:
            server = START[name](args.download_mib << 20)
        except ServerError as exc:
            print(f"cannot start {name}: {exc}", file=sys.stderr)
            continue
        started += 1
        with server:
            if args.profile is not None:
                print(f"server: {server.description} at {server.base_url}")
                if args.pin is not None:
                    print(describe_pin(args.pin, server), flush=True)
                print(profile(args, server))
                return 0
            print()
            print(f"server: {server.description} at {server.base_url}")
            print(describe_pin(args.pin, server), flush=True)
            results, failures = run_rounds(args, specs, server)
        print(format_table(args, specs, results, failures))
        for (scenario, client), error in failures.items():
            print(f"{client} {scenario}: {error}")
    if not started:
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
