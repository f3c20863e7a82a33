"""HTTP/2 and HTTP/1.1 against nginx over TLS (ALPN), on asyncio, trio and
the blocking client: a small GET, 100 requests multiplexed on one
connection, a 20 MiB download checked byte for byte, a 5 MiB upload (a
WebDAV PUT, read back), and
HTTP/1.1 when HTTP/2 is switched off.

nginx runs from a throwaway prefix with one worker, a trustme certificate
and a port picked here; ``make test`` installs nginx (``nginx-light``) when
the machine has none.
"""

from __future__ import annotations

import hashlib
import shutil
import socket
import subprocess
import tempfile
import time
from collections.abc import Callable, Coroutine, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import trustme

from webwire._sync import run_sync

OpenApi = Callable[..., Any]
Scenario = Callable[[OpenApi, "Nginx"], Coroutine[Any, Any, None]]

MIB = 1024 * 1024
BIG = 20 * MIB

CONF = """
worker_processes 1;
daemon off;
pid {root}/nginx.pid;
error_log {root}/error.log warn;
events {{ worker_connections 1024; }}
http {{
    access_log off;
    client_body_temp_path {root}/tmp;
    proxy_temp_path {root}/tmp;
    fastcgi_temp_path {root}/tmp;
    uwsgi_temp_path {root}/tmp;
    scgi_temp_path {root}/tmp;
    keepalive_requests 100000;
    client_max_body_size 64m;
    server {{
        {listen}
        root {root}/www;
        ssl_certificate {root}/server.pem;
        ssl_certificate_key {root}/server.key;
        location = /hello {{ default_type text/plain; return 200 "hello $server_protocol"; }}
        location /put/ {{ dav_methods PUT; create_full_put_path on; }}
        location = /big.bin {{ }}
    }}
}}
"""


@dataclass
class Nginx:
    url: str
    ca_path: str
    big_sha256: str


def _nginx_version(binary: str) -> tuple[int, ...]:
    out = subprocess.run([binary, "-v"], capture_output=True, text=True, check=False).stderr
    text = out.strip().rsplit("/", 1)[-1].split()[0]
    return tuple(int(part) for part in text.split("."))


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


@pytest.fixture(scope="module")
def nginx() -> Iterator[Nginx]:
    binary = shutil.which("nginx") or "/usr/sbin/nginx"
    if not Path(binary).exists():
        raise RuntimeError("nginx is not installed: `make test` installs nginx-light")
    root = Path(tempfile.mkdtemp(prefix="webwire-nginx-"))
    root.chmod(0o755)  # nginx's worker may run as another user
    for name in ("tmp", "www"):  # writable by the worker (WebDAV PUT)
        (root / name).mkdir()
        (root / name).chmod(0o777)
    big = bytes(range(256)) * (BIG // 256)
    (root / "www" / "big.bin").write_bytes(big)
    ca = trustme.CA()
    cert = ca.issue_cert("127.0.0.1")
    ca.cert_pem.write_to_path(str(root / "ca.pem"))
    cert.private_key_pem.write_to_path(str(root / "server.key"))
    for blob in cert.cert_chain_pems:
        blob.write_to_path(str(root / "server.pem"), append=True)
    port = _free_port()
    if _nginx_version(binary) >= (1, 25, 1):
        listen = f"listen 127.0.0.1:{port} ssl; http2 on;"
    else:
        listen = f"listen 127.0.0.1:{port} ssl http2;"
    (root / "nginx.conf").write_text(CONF.format(root=root, listen=listen))
    proc = subprocess.Popen(
        [binary, "-p", str(root), "-c", str(root / "nginx.conf")],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        deadline = time.monotonic() + 10
        while True:
            try:
                socket.create_connection(("127.0.0.1", port), 0.2).close()
                break
            except OSError:
                if proc.poll() is not None or time.monotonic() > deadline:
                    log = (root / "error.log").read_text() if (root / "error.log").exists() else ""
                    raise RuntimeError(f"nginx did not start: {log}") from None
                time.sleep(0.05)
        digest = hashlib.sha256(big).hexdigest()
        yield Nginx(f"https://127.0.0.1:{port}", str(root / "ca.pem"), digest)
    finally:
        proc.terminate()
        proc.wait(10)
        shutil.rmtree(root, ignore_errors=True)


async def s_http2_by_alpn(open_api: OpenApi, server: Nginx) -> None:
    async with open_api(base_url=server.url, verify=server.ca_path) as api:
        r = await api.get("/hello")
        assert r.http_version == "HTTP/2"
        assert r.text == "hello HTTP/2.0"

        async def one(i: int) -> Any:
            return await api.get("/hello", params={"i": str(i)})

        results = await api.gather(100, one)
        errors = [r for r in results if isinstance(r, BaseException)]
        assert not errors, errors[:3]
        assert {r.text for r in results} == {"hello HTTP/2.0"}
        conns = api.pool.connections()
        assert len(conns) == 1 and conns[0].http_version == "HTTP/2"
        assert api.in_use() == 0


async def s_download_and_upload(open_api: OpenApi, server: Nginx) -> None:
    async with open_api(base_url=server.url, verify=server.ca_path, http1=False) as api:
        digest = hashlib.sha256()
        async with api.stream("GET", "/big.bin") as r:
            assert r.status_code == 200
            assert r.http_version == "HTTP/2"
            async for chunk in r.aiter_bytes():
                digest.update(chunk)
        assert digest.hexdigest() == server.big_sha256
        body = bytes(range(251)) * (5 * MIB // 251)
        name = f"/put/{api.is_async}-{id(api)}.bin"
        r = await api.request("PUT", name, content=body)
        assert r.status_code in (201, 204)
        assert (await api.get(name)).content == body  # what nginx stored
        assert api.in_use() == 0


async def s_http1_when_http2_is_off(open_api: OpenApi, server: Nginx) -> None:
    async with open_api(base_url=server.url, verify=server.ca_path, http2=False) as api:
        r = await api.get("/hello")
        assert r.http_version == "HTTP/1.1"
        assert r.text == "hello HTTP/1.1"


SCENARIOS: dict[str, Scenario] = {
    name[2:]: fn for name, fn in dict(globals()).items() if name.startswith("s_")
}


@pytest.mark.anyio
@pytest.mark.parametrize("name", sorted(SCENARIOS))
async def test_async(name: str, async_api: OpenApi, nginx: Nginx) -> None:
    await SCENARIOS[name](async_api, nginx)


@pytest.mark.parametrize("name", sorted(SCENARIOS))
def test_sync(name: str, sync_api: OpenApi, nginx: Nginx) -> None:
    run_sync(SCENARIOS[name](sync_api, nginx))
