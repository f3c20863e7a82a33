"""Real proxies for the integration tests, on 127.0.0.1 with ephemeral ports.

- ``proxy.py`` (HTTP forward proxy and ``CONNECT`` tunnels), started as a
  subprocess (``python -m proxy --port 0 --port-file ...``), without and
  with ``--basic-auth``.
- ``pproxy`` (SOCKS4/4a and SOCKS5 servers, with and without
  username/password), run in a thread on its own asyncio loop.

Import the fixtures into a test module to use them.
"""

from __future__ import annotations

import asyncio
import os
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

PROXY_USER = "proxyuser"
PROXY_PASSWORD = "proxy-secret"


@dataclass(frozen=True)
class ProxyInfo:
    """A running proxy.

    Attributes:
        url: ``scheme://127.0.0.1:PORT`` without credentials.
        port: The TCP port.
    """

    url: str
    port: int

    def with_auth(self, user: str = PROXY_USER, password: str = PROXY_PASSWORD) -> str:
        """The URL with ``user:password@``."""
        scheme, rest = self.url.split("://", 1)
        return f"{scheme}://{user}:{password}@{rest}"


def _wait_listening(port: int, process: subprocess.Popen[bytes] | None, log: Path) -> None:
    deadline = time.monotonic() + 20.0
    while True:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=1.0):
                return
        except OSError:
            if process is not None and process.poll() is not None:
                raise RuntimeError(f"proxy.py exited: {log.read_text()[-2000:]}") from None
            if time.monotonic() > deadline:
                raise
            time.sleep(0.05)


def _start_proxy_py(
    tmp: Path, basic_auth: str | None, tls: tuple[str, str] | None = None
) -> Iterator[ProxyInfo]:
    port_file = tmp / "port"
    log = tmp / "log"
    args = [
        sys.executable,
        "-m",
        "proxy",
        "--hostname",
        "127.0.0.1",
        "--port",
        "0",
        "--port-file",
        str(port_file),
        "--num-workers",
        "1",
        "--num-acceptors",
        "1",
        "--log-level",
        "WARNING",
    ]
    if basic_auth:
        args += ["--basic-auth", basic_auth]
    if tls is not None:
        args += ["--cert-file", tls[0], "--key-file", tls[1]]
    with open(log, "wb") as out:
        process = subprocess.Popen(args, stdout=out, stderr=subprocess.STDOUT, env=dict(os.environ))
    try:
        deadline = time.monotonic() + 20.0
        while not (port_file.exists() and port_file.read_text().strip()):
            if process.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"proxy.py did not start: {log.read_text()[-2000:]}")
            time.sleep(0.05)
        port = int(port_file.read_text().split()[0])
        _wait_listening(port, process, log)
        scheme = "https" if tls is not None else "http"
        yield ProxyInfo(f"{scheme}://127.0.0.1:{port}", port)
    finally:
        process.terminate()
        try:
            process.wait(10.0)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(5.0)


@pytest.fixture(scope="session")
def http_proxy(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ProxyInfo]:
    """proxy.py without authentication."""
    yield from _start_proxy_py(tmp_path_factory.mktemp("proxy-py"), None)


@pytest.fixture(scope="session")
def http_proxy_auth(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ProxyInfo]:
    """proxy.py that wants ``PROXY_USER:PROXY_PASSWORD`` (407 otherwise)."""
    yield from _start_proxy_py(
        tmp_path_factory.mktemp("proxy-py-auth"), f"{PROXY_USER}:{PROXY_PASSWORD}"
    )


@pytest.fixture(scope="session")
def https_proxy(tmp_path_factory: pytest.TempPathFactory, tls_files: Any) -> Iterator[ProxyInfo]:
    """proxy.py reached over TLS (the test CA's certificate for 127.0.0.1)."""
    yield from _start_proxy_py(
        tmp_path_factory.mktemp("proxy-py-tls"), None, (tls_files.cert_path, tls_files.key_path)
    )


class _PproxyThread:
    """pproxy servers on one asyncio loop in a daemon thread."""

    def __init__(self, uris: list[str]) -> None:
        self._uris = uris
        self.ports: list[int] = []
        self._ready = threading.Event()
        self._error: BaseException | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._stop: asyncio.Event | None = None
        self._thread = threading.Thread(target=self._run, name="pproxy", daemon=True)

    def start(self) -> None:
        self._thread.start()
        if not self._ready.wait(10.0) or self._error is not None:
            raise RuntimeError("pproxy did not start") from self._error

    def _run(self) -> None:
        try:
            asyncio.run(self._main())
        except BaseException as exc:
            self._error = exc
            self._ready.set()

    async def _main(self) -> None:
        import pproxy.server

        self._loop = asyncio.get_running_loop()
        self._stop = asyncio.Event()
        servers: list[Any] = []
        for uri in self._uris:
            option = pproxy.server.proxies_by_uri(uri)
            # authtime=-1: pproxy otherwise remembers an authenticated client
            # IP and lets later connections from it in without credentials.
            server = await option.start_server(
                {"rserver": [], "authtime": -1, "httpget": {}, "verbose": lambda *a: None}
            )
            servers.append(server)
            self.ports.append(server.sockets[0].getsockname()[1])
        self._ready.set()
        await self._stop.wait()
        for server in servers:
            server.close()
            await server.wait_closed()

    def stop(self) -> None:
        if self._loop is not None and self._stop is not None:
            self._loop.call_soon_threadsafe(self._stop.set)
        self._thread.join(10.0)


@dataclass(frozen=True)
class SocksProxies:
    """The pproxy SOCKS servers.

    Attributes:
        socks5: SOCKS5 without authentication.
        socks5_auth: SOCKS5 that wants ``PROXY_USER:PROXY_PASSWORD``.
        socks4: SOCKS4/SOCKS4a.
    """

    socks5: ProxyInfo
    socks5_auth: ProxyInfo
    socks4: ProxyInfo


@pytest.fixture(scope="session")
def socks_proxies() -> Iterator[SocksProxies]:
    """pproxy SOCKS servers (see :class:`SocksProxies`)."""
    thread = _PproxyThread(
        [
            "socks5://127.0.0.1:0",
            f"socks5://127.0.0.1:0#{PROXY_USER}:{PROXY_PASSWORD}",
            "socks4://127.0.0.1:0",
        ]
    )
    thread.start()
    try:
        p5, p5a, p4 = thread.ports
        yield SocksProxies(
            ProxyInfo(f"socks5://127.0.0.1:{p5}", p5),
            ProxyInfo(f"socks5://127.0.0.1:{p5a}", p5a),
            ProxyInfo(f"socks4://127.0.0.1:{p4}", p4),
        )
    finally:
        thread.stop()
