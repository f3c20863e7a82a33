"""Loopback servers for the benchmarks: nginx, or a uvloop fallback.

:func:`start_server` (plain HTTP/1.1, for ``http1.py``) and
:func:`start_tls_nginx` (HTTPS with HTTP/2 and HTTP/1.1, for ``http2.py``)
prepare a temporary directory holding the served files, start the server as
a subprocess on a free 127.0.0.1 port and return a :class:`Server`;
``Server.stop()`` (or leaving its ``with`` block) stops the process and
removes the directory.
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
import urllib.request
from pathlib import Path
from types import TracebackType

__all__ = [
    "HELLO_BODY",
    "NGINX_INSTALL_HINT",
    "Server",
    "ServerError",
    "find_nginx",
    "start_server",
    "start_tls_nginx",
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
        base_url: ``http://127.0.0.1:<port>``, or ``https://`` for TLS.
        hello_url: URL of the 13-byte body.
        big_url: URL of the large file.
        big_size: Size of the large file in bytes.
        description: One line naming the server and its version.
        ca_path: For a TLS server, the PEM file of the CA that signed its
            certificate (valid for ``127.0.0.1`` and ``localhost``);
            ``None`` otherwise.
        status_url: For a server with an nginx ``stub_status`` page, its
            plain-HTTP URL; ``None`` otherwise.
    """

    def __init__(
        self,
        kind: str,
        process: subprocess.Popen[bytes],
        root: Path,
        port: int,
        big_size: int,
        description: str,
        *,
        ca_path: Path | None = None,
        status_url: str | None = None,
    ) -> None:
        self.kind = kind
        self.port = port
        scheme = "https" if ca_path is not None else "http"
        self.base_url = f"{scheme}://127.0.0.1:{port}"
        self.hello_url = f"{self.base_url}/hello"
        self.big_url = f"{self.base_url}/big.bin"
        self.big_size = big_size
        self.description = description
        self.ca_path = ca_path
        self.status_url = status_url
        self._process = process
        self._root = root

    def accepted_connections(self) -> int:
        """Connections nginx has accepted so far, from its ``stub_status`` page.

        The reading opens one connection of its own, which it counts: the
        difference between two readings is the number of connections opened
        in between, plus one.

        Raises:
            ServerError: The server has no status page, or it did not answer.
        """
        if self.status_url is None:
            raise ServerError("this server has no status page")
        try:
            with urllib.request.urlopen(self.status_url, timeout=10) as response:
                text = response.read().decode("ascii")
            # "Active connections: 1\nserver accepts handled requests\n 12 12 40\n..."
            return int(text.splitlines()[2].split()[0])
        except (OSError, ValueError, IndexError) as exc:
            raise ServerError(f"cannot read {self.status_url}: {exc}") from exc

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


def _nginx_version(nginx: str) -> tuple[str, tuple[int, ...]]:
    """Return ``nginx -v``'s line and the version as a tuple of numbers."""
    line = subprocess.run([nginx, "-v"], capture_output=True, text=True, check=False).stderr.strip()
    numbers = line.rpartition("/")[2].split(" ")[0]
    try:
        version = tuple(int(part) for part in numbers.split("."))
    except ValueError:
        version = ()
    return line, version


def _write_nginx_conf(root: Path, template: str, values: dict[str, str]) -> None:
    """Write the configuration from ``template`` and prepare the served tree under ``root``."""
    for sub in ("tmp", "www"):
        (root / sub).mkdir(mode=0o755)
    conf = (_HERE / template).read_text().replace("@@ROOT@@", str(root))
    for name, value in values.items():
        conf = conf.replace(f"@@{name}@@", value)
    (root / "nginx.conf").write_text(conf)


def _run_nginx(nginx: str, root: Path, big_size: int, port: int) -> subprocess.Popen[bytes]:
    """Write the large file, start nginx on the configuration in ``root`` and wait for it."""
    conf_path = root / "nginx.conf"
    _write_big_file(root / "www" / "big.bin", big_size)
    # Worker processes drop root privileges: keep the tree world-readable.
    for path in (root, root / "www", root / "www" / "big.bin", conf_path):
        path.chmod(0o755 if path.is_dir() else 0o644)
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
    return proc


def _start_nginx(nginx: str, root: Path, big_size: int) -> Server:
    port = _free_port()
    _write_nginx_conf(root, "nginx.conf.in", {"PORT": str(port)})
    version, _ = _nginx_version(nginx)
    proc = _run_nginx(nginx, root, big_size, port)
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


def _write_certificates(root: Path) -> Path:
    """Make a throwaway CA and a server certificate for 127.0.0.1 and localhost.

    Writes ``server.pem`` (certificate chain) and ``server.key`` for nginx,
    which reads them as root before its workers drop privileges, and
    ``ca.pem`` for the clients.

    Returns:
        The path of ``ca.pem``.
    """
    try:
        import trustme
    except ImportError as exc:
        raise ServerError(
            "trustme is not installed (pip install trustme, or the bench extra)"
        ) from exc
    ca = trustme.CA()
    cert = ca.issue_cert("127.0.0.1", "localhost")
    cert.private_key_pem.write_to_path(str(root / "server.key"))
    (root / "server.key").chmod(0o600)
    with (root / "server.pem").open("wb") as f:
        for blob in cert.cert_chain_pems:
            f.write(blob.bytes())
    ca_path = root / "ca.pem"
    ca.cert_pem.write_to_path(str(ca_path))
    return ca_path


def start_tls_nginx(big_size: int) -> Server:
    """Start nginx serving HTTPS on 127.0.0.1, offering HTTP/2 and HTTP/1.1 by ALPN.

    The server has a throwaway certificate (``Server.ca_path`` is its CA)
    and a ``stub_status`` page on a second, plain-HTTP port
    (``Server.status_url``, see :meth:`Server.accepted_connections`). It
    serves the same ``/hello`` and ``/big.bin`` as :func:`start_server`, from
    ``nginx-h2.conf.in``; there is no fallback server.

    Args:
        big_size: Size of the large file served at ``/big.bin``, in bytes.

    Raises:
        ServerError: nginx is not installed or lacks HTTP/2 or TLS, trustme
            is missing, or the server did not start.
    """
    nginx = find_nginx()
    if nginx is None:
        raise ServerError(f"nginx is not installed; install it with: {NGINX_INSTALL_HINT}")
    build = subprocess.run([nginx, "-V"], capture_output=True, text=True, check=False).stderr
    for module in ("http_v2_module", "http_ssl_module", "http_stub_status_module"):
        if f"--with-{module}" not in build:
            raise ServerError(f"{nginx} was built without {module}")
    version_line, version = _nginx_version(nginx)
    root = Path(tempfile.mkdtemp(prefix="webwire-bench-h2-"))
    try:
        port, status_port = _free_port(), _free_port()
        while status_port == port:
            status_port = _free_port()
        if version >= (1, 25, 1):
            listen = f"listen 127.0.0.1:{port} ssl backlog=4096;\n        http2 on;"
        else:
            listen = f"listen 127.0.0.1:{port} ssl http2 backlog=4096;"
        _write_nginx_conf(
            root,
            "nginx-h2.conf.in",
            {"TLS_LISTEN": listen, "STATUS_PORT": str(status_port)},
        )
        ca_path = _write_certificates(root)
        proc = _run_nginx(nginx, root, big_size, port)
        try:
            _wait_listening(proc, status_port, root / "error.log")
        except BaseException:
            if proc.poll() is None:
                proc.kill()
                proc.wait()
            raise
        return Server(
            "nginx",
            proc,
            root,
            port,
            big_size,
            f"{version_line} (1 worker, TLS, HTTP/2 and HTTP/1.1 by ALPN)",
            ca_path=ca_path,
            status_url=f"http://127.0.0.1:{status_port}/status",
        )
    except BaseException:
        shutil.rmtree(root, ignore_errors=True)
        raise
