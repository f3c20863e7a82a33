"""A WebTransport CONNECT proxy for the ``WebTransportProxy`` tests (aioquic, draft-02).

The client opens a WebTransport session to the proxy (route ``/proxy``),
then, for each tunnel, a bidirectional stream on which it sends an
HTTP/1.1-style request head::

    CONNECT https://127.0.0.1:8443 HTTP/1.1\\r\\n
    Host: 127.0.0.1:8443\\r\\n
    \\r\\n

The request target is an absolute URL (the form pywebtransport's proxy
client sends) or an authority ``host:port`` (RFC 9110 section 9.3.6). The
proxy answers on the same stream with a status line and an empty header
section, ``HTTP/1.1 200 Connection established\\r\\n\\r\\n``, and from then on
relays the stream's bytes both ways to a TCP connection to the target (the
end of either direction is passed on). Failures are answered and the
stream ended:

- ``400 Bad Request``: not a CONNECT, a malformed head, a head over 8 KiB;
- ``403 Forbidden``: a target that is not on the loopback interface (the
  proxy never leaves the machine);
- ``502 Bad Gateway``: the TCP connection to the target failed.

The same server also answers a plain HTTP/3 ``CONNECT`` (RFC 9114 section
4.4: ``:method`` CONNECT and ``:authority`` only, no ``:protocol``), the
proxy step of pywebtransport 0.8.1's ``ClientConfig(proxy=...)``, with
``:status`` 200/400/403/502 by the same rules, and relays the stream's DATA
frames to the target.

The host ``echo.test`` is a built-in target that echoes the tunnel's bytes
(no TCP connection). The route ``/proxy-auth`` is the same proxy but refuses
sessions without ``proxy-authorization: Basic dXNlcjpwYXNz`` (``user:pass``)
with ``407``.

:class:`WebTransportProxyServer` also runs a TCP echo server on the same loop
(:attr:`WebTransportProxyServer.echo_target`, ``(host, port)``) and keeps
the tunnels it opened in :attr:`WebTransportProxyServer.tunnels`.
"""

from __future__ import annotations

import asyncio
import threading
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

from aioquic.h3.events import DataReceived, WebTransportStreamDataReceived
from wt_server_aioquic import (
    ROUTES,
    WebTransportServer,
    _Session,
    _WebTransportProtocol,
)

__all__ = [
    "ECHO_HOST",
    "PROXY_AUTHORIZATION",
    "TunnelRecord",
    "WebTransportProxyServer",
]

ECHO_HOST = "echo.test"
#: The ``proxy-authorization`` value ``/proxy-auth`` requires (``user:pass``).
PROXY_AUTHORIZATION = "Basic dXNlcjpwYXNz"
MAX_HEAD = 8192
_LOOPBACK = {"127.0.0.1", "localhost", "::1"}
_DEFAULT_PORTS = {"https": 443, "http": 80, "wss": 443, "ws": 80}


@dataclass
class TunnelRecord:
    """One CONNECT the proxy received.

    Attributes:
        stream_id: The tunnel's stream.
        target: The request target as sent.
        host: The target host (``""`` when unparseable).
        port: The target port (0 when unparseable).
        status: The status the proxy answered.
        headers: The request's header fields (lower-case names).
    """

    stream_id: int
    target: str
    host: str
    port: int
    status: int
    headers: dict[str, str]


@dataclass
class _Tunnel:
    session_id: int  # -1: an HTTP/3 CONNECT stream, not a WebTransport stream
    head: bytearray
    framed: bool = False  # HTTP/3 CONNECT: bytes travel in DATA frames
    established: bool = False
    echo: bool = False
    writer: asyncio.StreamWriter | None = None
    pending: bytearray | None = None
    pending_eof: bool = False
    task: asyncio.Task[None] | None = None


def _parse_target(target: str) -> tuple[str, int] | None:
    """``(host, port)`` of an absolute URL or an authority, or ``None``."""
    if "://" in target:
        split = urlsplit(target)
        if not split.hostname:
            return None
        try:
            port = split.port or _DEFAULT_PORTS.get(split.scheme)
        except ValueError:
            return None
        return (split.hostname, port) if port else None
    host, sep, port_text = target.rpartition(":")
    if not sep or not host or not port_text.isdigit():
        return None
    port = int(port_text)
    if not 0 < port < 65536:
        return None
    return host.strip("[]"), port


class _ProxyProtocol(_WebTransportProtocol):
    """The routes of :class:`_WebTransportProtocol` plus ``/proxy`` and ``/proxy-auth``."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._tunnels: dict[int, _Tunnel] = {}

    def _check_request(self, route: str, headers: dict[str, str]) -> int:
        if route == "/proxy-auth" and headers.get("proxy-authorization") != PROXY_AUTHORIZATION:
            return 407
        return super()._check_request(route, headers)

    def _route_stream_data(self, session: _Session, event: WebTransportStreamDataReceived) -> None:
        if session.route not in ("/proxy", "/proxy-auth"):
            super()._route_stream_data(session, event)
            return
        stream_id = event.stream_id
        if stream_id & 0x2:
            # Tunnels are bidirectional streams only.
            self._abort_stream(stream_id, 0x10C)  # H3_REQUEST_REJECTED
            return
        tunnel = self._tunnels.get(stream_id)
        if tunnel is None:
            tunnel = self._tunnels[stream_id] = _Tunnel(session.record.session_id, bytearray())
        if not tunnel.established:
            tunnel.head.extend(event.data)
            end = tunnel.head.find(b"\r\n\r\n")
            if end < 0:
                if len(tunnel.head) > MAX_HEAD or event.stream_ended:
                    self._answer(stream_id, 400, "Bad Request", "", {}, end=True)
                return
            head, rest = bytes(tunnel.head[:end]), bytes(tunnel.head[end + 4 :])
            tunnel.head.clear()
            self._open_tunnel(stream_id, tunnel, head, rest, event.stream_ended)
            return
        self._forward(stream_id, tunnel, event.data, event.stream_ended)

    def _answer(
        self,
        stream_id: int,
        status: int,
        phrase: str,
        target: str,
        headers: dict[str, str],
        *,
        end: bool,
        host: str = "",
        port: int = 0,
    ) -> None:
        self._server._tunnel_opened(
            TunnelRecord(stream_id, target, host, port, status, headers)
        )
        tunnel = self._tunnels.get(stream_id)
        if tunnel is not None and tunnel.framed:
            assert self._http is not None
            self._http.send_headers(
                stream_id, [(b":status", str(status).encode())], end_stream=end
            )
        else:
            self._send(stream_id, f"HTTP/1.1 {status} {phrase}\r\n\r\n".encode(), end)
        if end:
            self._tunnels.pop(stream_id, None)
        self.transmit()

    def _tunnel_send(self, stream_id: int, tunnel: _Tunnel, data: bytes, end: bool) -> None:
        if tunnel.framed:
            assert self._http is not None
            try:
                self._http.send_data(stream_id, data, end_stream=end)
            except Exception:  # the stream was reset or ended
                pass
        else:
            self._send(stream_id, data, end)

    # -- HTTP/3 CONNECT (RFC 9114 section 4.4) -------------------------------

    def _other_request(self, stream_id: int, headers: dict[str, str]) -> None:
        if headers.get(":method") != "CONNECT" or ":protocol" in headers:
            super()._other_request(stream_id, headers)
            return
        authority = headers.get(":authority", "")
        tunnel = self._tunnels[stream_id] = _Tunnel(-1, bytearray(), framed=True)
        plain = {k: v for k, v in headers.items() if not k.startswith(":")}
        parsed = _parse_target(authority)
        if parsed is None or ":path" in headers or ":scheme" in headers:
            self._answer(stream_id, 400, "", authority, plain, end=True)
            return
        self._route_target(stream_id, tunnel, authority, plain, parsed, b"", False)

    def _other_data(self, event: DataReceived) -> None:
        tunnel = self._tunnels.get(event.stream_id)
        if tunnel is not None and tunnel.framed:
            self._forward(event.stream_id, tunnel, event.data, event.stream_ended)

    def _open_tunnel(
        self, stream_id: int, tunnel: _Tunnel, head: bytes, rest: bytes, ended: bool
    ) -> None:
        lines = head.decode("latin-1").split("\r\n")
        parts = lines[0].split(" ")
        headers: dict[str, str] = {}
        for line in lines[1:]:
            name, sep, value = line.partition(":")
            if sep:
                headers[name.strip().lower()] = value.strip()
        if len(parts) != 3 or parts[0] != "CONNECT" or not parts[2].startswith("HTTP/1."):
            self._answer(stream_id, 400, "Bad Request", lines[0], headers, end=True)
            return
        target = parts[1]
        parsed = _parse_target(target)
        if parsed is None:
            self._answer(stream_id, 400, "Bad Request", target, headers, end=True)
            return
        self._route_target(stream_id, tunnel, target, headers, parsed, rest, ended)

    def _route_target(
        self,
        stream_id: int,
        tunnel: _Tunnel,
        target: str,
        headers: dict[str, str],
        parsed: tuple[str, int],
        rest: bytes,
        ended: bool,
    ) -> None:
        host, port = parsed
        if host == ECHO_HOST:
            tunnel.established = tunnel.echo = True
            self._answer(
                stream_id, 200, "Connection established", target, headers,
                end=False, host=host, port=port,
            )
            self._forward(stream_id, tunnel, rest, ended)
            return
        if host not in _LOOPBACK:
            self._answer(
                stream_id, 403, "Forbidden", target, headers, end=True, host=host, port=port
            )
            return
        tunnel.pending = bytearray(rest)
        tunnel.pending_eof = ended
        tunnel.task = self._loop.create_task(
            self._connect_target(stream_id, tunnel, target, headers, host, port)
        )

    async def _connect_target(
        self,
        stream_id: int,
        tunnel: _Tunnel,
        target: str,
        headers: dict[str, str],
        host: str,
        port: int,
    ) -> None:
        try:
            reader, writer = await asyncio.wait_for(asyncio.open_connection(host, port), 10.0)
        except (OSError, asyncio.TimeoutError):
            self._answer(
                stream_id, 502, "Bad Gateway", target, headers, end=True, host=host, port=port
            )
            return
        tunnel.writer = writer
        tunnel.established = True
        self._answer(
            stream_id, 200, "Connection established", target, headers,
            end=False, host=host, port=port,
        )
        if tunnel.pending:
            writer.write(bytes(tunnel.pending))
        tunnel.pending = None
        if tunnel.pending_eof and writer.can_write_eof():
            writer.write_eof()
        try:
            while True:
                data = await reader.read(65536)
                self._tunnel_send(stream_id, tunnel, data, not data)
                self.transmit()
                if not data:
                    break
        except OSError:
            self._abort_stream(stream_id, 0x10C)
            self.transmit()
        finally:
            writer.close()
            self._tunnels.pop(stream_id, None)

    def _forward(self, stream_id: int, tunnel: _Tunnel, data: bytes, ended: bool) -> None:
        if tunnel.echo:
            self._tunnel_send(stream_id, tunnel, data, ended)
            if ended:
                self._tunnels.pop(stream_id, None)
            return
        if tunnel.writer is None:
            if tunnel.pending is not None:
                tunnel.pending.extend(data)
                tunnel.pending_eof = tunnel.pending_eof or ended
            return
        if data:
            tunnel.writer.write(data)
        if ended and tunnel.writer.can_write_eof():
            tunnel.writer.write_eof()

    def _close_tunnel(self, stream_id: int) -> None:
        tunnel = self._tunnels.pop(stream_id, None)
        if tunnel is None:
            return
        if tunnel.task is not None:
            tunnel.task.cancel()
        if tunnel.writer is not None:
            tunnel.writer.close()

    def _on_stream_reset(self, stream_id: int) -> None:
        self._close_tunnel(stream_id)

    def _on_session_end(self, session: _Session) -> None:
        for stream_id, tunnel in list(self._tunnels.items()):
            if tunnel.session_id == session.record.session_id:
                self._close_tunnel(stream_id)


class WebTransportProxyServer(WebTransportServer):
    """The proxy, on its own thread and loop, with a TCP echo server to tunnel to.

    Attributes:
        echo_target: ``(host, port)`` of the TCP echo server (after :meth:`start`).
        tunnels: Every CONNECT received, oldest first.
    """

    routes = (*ROUTES, "/proxy", "/proxy-auth")
    protocol_class = _ProxyProtocol

    def __init__(self, cert_path: str, key_path: str, **kwargs: Any) -> None:
        super().__init__(cert_path, key_path, **kwargs)
        self.echo_target: tuple[str, int] = ("127.0.0.1", 0)
        self.tunnels: list[TunnelRecord] = []
        self._tunnel_lock = threading.Lock()

    def _tunnel_opened(self, record: TunnelRecord) -> None:
        with self._tunnel_lock:
            self.tunnels.append(record)

    async def _main(self) -> None:
        async def echo(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            try:
                while data := await reader.read(65536):
                    writer.write(data)
                    await writer.drain()
                if writer.can_write_eof():
                    writer.write_eof()
            except OSError:
                pass
            finally:
                writer.close()

        tcp = await asyncio.start_server(echo, "127.0.0.1", 0)
        self.echo_target = ("127.0.0.1", tcp.sockets[0].getsockname()[1])
        try:
            await super()._main()
        finally:
            tcp.close()
            await tcp.wait_closed()
