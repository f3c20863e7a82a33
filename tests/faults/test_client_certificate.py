"""A TLS server that demands a client certificate: without one, the error
says so instead of an opaque read or handshake failure.

With TLS 1.3 the server's alert arrives after the client's handshake
ended, at the first read; with TLS 1.2 it ends the handshake. The server is
Python's ``ssl`` module in a thread (``CERT_REQUIRED``, trustme CA); every
scenario runs on asyncio, trio and the blocking client.
"""

from __future__ import annotations

import socket
import ssl
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import trustme

import webwire
from webwire._sync import run_sync

OpenApi = Callable[..., Any]


@dataclass
class Server:
    url: str
    ca_path: str
    client_cert: str


class CertRequiredServer:
    """Accepts TLS connections that must present a certificate signed by
    ``ca``; answers each request with ``200 ok`` and closes."""

    def __init__(self, ca: trustme.CA, maximum: ssl.TLSVersion) -> None:
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.maximum_version = maximum
        ca.issue_cert("127.0.0.1").configure_cert(context)
        ca.configure_trust(context)
        context.verify_mode = ssl.CERT_REQUIRED
        self.context = context
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.listener.settimeout(0.05)
        self.port = self.listener.getsockname()[1]
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self.serve, daemon=True)

    def serve(self) -> None:
        while not self.stop.is_set():
            try:
                sock, _ = self.listener.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            sock.settimeout(5.0)
            tls = self.context.wrap_socket(
                sock, server_side=True, do_handshake_on_connect=False
            )
            try:
                tls.do_handshake()
                data = b""
                while b"\r\n\r\n" not in data:
                    piece = tls.recv(65536)
                    if not piece:
                        break
                    data += piece
                tls.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok")
            except (OSError, ssl.SSLError):
                # Close gracefully (FIN after the alert, once the client's
                # bytes are read): an RST could destroy the alert before the
                # client reads it.
                try:
                    tls.shutdown(socket.SHUT_WR)
                    while socket.socket.recv(tls, 65536):
                        pass
                except OSError:
                    pass
            finally:
                tls.close()

    def __enter__(self) -> CertRequiredServer:
        self.thread.start()
        return self

    def __exit__(self, *args: object) -> None:
        self.stop.set()
        self.thread.join(5.0)
        self.listener.close()


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> tuple[trustme.CA, str, str]:
    directory: Path = tmp_path_factory.mktemp("client-cert")
    ca = trustme.CA()
    ca_path = directory / "ca.pem"
    ca.cert_pem.write_to_path(str(ca_path))
    client = ca.issue_cert("client@example.com")
    client_path = directory / "client.pem"
    client.private_key_and_cert_chain_pem.write_to_path(str(client_path))
    return ca, str(ca_path), str(client_path)


@pytest.fixture(params=[ssl.TLSVersion.TLSv1_3, ssl.TLSVersion.TLSv1_2], ids=["tls13", "tls12"])
def server(request: pytest.FixtureRequest, pki: tuple[trustme.CA, str, str]) -> Iterator[Server]:
    ca, ca_path, client_path = pki
    with CertRequiredServer(ca, request.param) as running:
        yield Server(f"https://127.0.0.1:{running.port}/", ca_path, client_path)


async def scenario(open_api: OpenApi, server: Server) -> None:
    async with open_api(verify=server.ca_path) as api:
        with pytest.raises(webwire.ConnectError, match="client certificate") as info:
            await api.get(server.url)
        assert not isinstance(info.value, OSError)
        assert api.in_use() == 0
    # The same server with a certificate: the request goes through.
    async with open_api(verify=server.ca_path, cert=server.client_cert) as api:
        response = await api.get(server.url)
        assert response.content == b"ok"


@pytest.mark.anyio
@pytest.mark.timeout(30)
async def test_async(async_api: OpenApi, server: Server) -> None:
    await scenario(async_api, server)


@pytest.mark.timeout(30)
def test_sync(sync_api: OpenApi, server: Server) -> None:
    run_sync(scenario(sync_api, server))
