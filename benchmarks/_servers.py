"""Loopback servers for the benchmarks: nginx, or a uvloop fallback.

:func:`start_server` prepares a temporary directory holding the served
files, starts the server as a subprocess on a free 127.0.0.1 port and
returns a :class:`Server`; ``Server.stop()`` (or leaving its ``with`` block)
stops the process and removes the directory.
"""

from __future__ import annotations

import importlib.metadata
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from types import TracebackType

__all__ = [
    "HELLO_BODY",
    "NGINX_INSTALL_HINT",
    "Server",
    "ServerError",
    "find_nginx",
    "start_server",
]

HELLO_BODY = b"Hello, world!"
NGINX_INSTALL_HINT = "apt-get update && apt-get install -y nginx-light"
_HERE = Path(__file__).resolve().parent
_STARTUP_TIMEOUT = 15.0


class ServerError(RuntimeError):
    """The benchmark server could not be started."""


class Server:
    """A running benchmark server.

    Attributes:
        kind: ``"nginx"`` or ``"python"`` (the uvloop fallback).
        base_url: ``http://127.0.0.1:<port>``.
        hello_url: URL of the 13-byte body.
        big_url: URL of the large file.
        big_size: Size of the large file in bytes.
        description: One line naming the server and its version.
    """

    def __init__(
        self,
        kind: str,
        process: subprocess.Popen[bytes],
        root: Path,
        port: int,
        big_size: int,
        description: str,
    ) -> None:
        self.kind = kind
        self.port = port
        self.base_url = f"http://127.0.0.1:{port}"
        self.hello_url = f"{self.base_url}/hello"
        self.big_url = f"{self.base_url}/big.bin"
        self.big_size = big_size
        self.description = description
        self._process = process
        self._root = root

    def process_ids(self) -> list[int]:
        """Return the server's process id and, on Linux, those of its descendants.

        For nginx these are the master and its worker.
        """
        found = [self._process.pid]
        for pid in found:  # grows while it is walked: breadth first
            try:
                children = Path(f"/proc/{pid}/task/{pid}/children").read_text().split()
            except OSError:
                continue
            found.extend(int(child) for child in children)
        return found

    def stop(self) -> None:
        """Stop the server process (SIGTERM, then SIGKILL) and delete its files."""
        proc = self._process
        if proc.poll() is None:
            # nginx: SIGTERM is a fast shutdown; the fallback server exits on it.
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(timeout=10)
        for stream in (proc.stdout, proc.stderr):
            if stream is not None:
                stream.close()
        shutil.rmtree(self._root, ignore_errors=True)

    def __enter__(self) -> Server:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()


def find_nginx() -> str | None:
    """Return the path of the nginx binary, or ``None`` when it is not installed."""
    found = shutil.which("nginx")
    if found:
        return found
    for candidate in ("/usr/sbin/nginx", "/usr/local/sbin/nginx", "/usr/local/nginx/sbin/nginx"):
        if os.access(candidate, os.X_OK):
            return candidate
    return None


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def _die_with_parent() -> None:
    """In the child before exec: ask Linux to SIGTERM it when the benchmark dies."""
    try:
        import ctypes

        libc = ctypes.CDLL(None, use_errno=True)
        pr_set_pdeathsig = 1
        libc.prctl(pr_set_pdeathsig, signal.SIGTERM, 0, 0, 0)
    except (OSError, AttributeError):
        pass


def _popen(argv: list[str], stdout: int) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        argv,
        stdin=subprocess.DEVNULL,
        stdout=stdout,
        stderr=subprocess.PIPE,
        preexec_fn=_die_with_parent if sys.platform == "linux" else None,
    )


def _write_big_file(path: Path, size: int) -> None:
    """Write ``size`` bytes of incompressible data (a repeated 1 MiB random block)."""
    block = os.urandom(1 << 20)
    with path.open("wb") as f:
        remaining = size
        while remaining > 0:
            piece = block if remaining >= len(block) else block[:remaining]
            f.write(piece)
            remaining -= len(piece)


def _wait_listening(proc: subprocess.Popen[bytes], port: int, log: Path | None) -> None:
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
                return
        except OSError:
            time.sleep(0.05)
    proc.kill()
    proc.wait()
    raise ServerError(f"server did not listen on 127.0.0.1:{port} within {_STARTUP_TIMEOUT} s")


def _start_nginx(nginx: str, root: Path, big_size: int) -> Server:
    for sub in ("tmp", "www"):
        (root / sub).mkdir(mode=0o755)
    port = _free_port()
    template = (_HERE / "nginx.conf.in").read_text()
    conf = template.replace("@@ROOT@@", str(root)).replace("@@PORT@@", str(port))
    conf_path = root / "nginx.conf"
    conf_path.write_text(conf)
    _write_big_file(root / "www" / "big.bin", big_size)
    # Worker processes drop root privileges: keep the tree world-readable.
    for path in (root, root / "www", root / "www" / "big.bin", conf_path):
        path.chmod(0o755 if path.is_dir() else 0o644)
    version = subprocess.run(
        [nginx, "-v"], capture_output=True, text=True, check=False
    ).stderr.strip()
    proc = _popen(
        [nginx, "-p", str(root), "-c", str(conf_path), "-e", str(root / "error.log")],
        subprocess.DEVNULL,
    )
    try:
        _wait_listening(proc, port, root / "error.log")
    except BaseException:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        raise
    return Server("nginx", proc, root, port, big_size, f"{version} (1 worker)")


def _start_python(root: Path, big_size: int) -> Server:
    big = root / "big.bin"
    _write_big_file(big, big_size)
    proc = _popen(
        [sys.executable, str(_HERE / "_rawserver.py"), "--file", str(big)], subprocess.PIPE
    )
    try:
        assert proc.stdout is not None
        line = proc.stdout.readline().decode().strip()
        if not line.startswith("PORT "):
            proc.wait(timeout=10)
            stderr = proc.stderr.read().decode(errors="replace") if proc.stderr else ""
            raise ServerError(f"fallback server failed to start: {line!r}\n{stderr}")
        port = int(line.split()[1])
        _wait_listening(proc, port, None)
    except BaseException:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        raise
    try:
        loop_name = f"uvloop {importlib.metadata.version('uvloop')}"
    except importlib.metadata.PackageNotFoundError:
        loop_name = "asyncio"
    return Server("python", proc, root, port, big_size, f"raw asyncio.Protocol on {loop_name}")


def start_server(kind: str, big_size: int) -> Server:
    """Start a benchmark server on 127.0.0.1.

    Args:
        kind: ``"nginx"``, ``"python"`` (uvloop raw-protocol fallback) or
            ``"auto"`` (nginx when installed, else the fallback, with a
            message on standard error).
        big_size: Size of the large file served at ``/big.bin``, in bytes.

    Returns:
        The running server; stop it with ``stop()`` or a ``with`` block.

    Raises:
        ServerError: nginx was asked for but is not installed, or the server
            did not start.
    """
    nginx = find_nginx() if kind in ("auto", "nginx") else None
    if kind == "nginx" and nginx is None:
        raise ServerError(f"nginx is not installed; install it with: {NGINX_INSTALL_HINT}")
    if kind == "auto" and nginx is None:
        print(
            "nginx is not installed (install it with: "
            f"{NGINX_INSTALL_HINT}); falling back to the Python uvloop server, "
            "whose numbers are not comparable with nginx runs.",
            file=sys.stderr,
        )
    root = Path(tempfile.mkdtemp(prefix="webwire-bench-"))
    try:
        if nginx is not None:
            return _start_nginx(nginx, root, big_size)
        return _start_python(root, big_size)
    except BaseException:
        shutil.rmtree(root, ignore_errors=True)
        raise
