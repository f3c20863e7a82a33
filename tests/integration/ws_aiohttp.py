"""aiohttp's WebSocket server (``aiohttp.web.WebSocketResponse``) for the
integration tests, with the routes of the other test servers (``ws_app.py``):

- ``/echo``: echoes every message.
- ``/close/CODE/REASON``: closes at once with that code and reason.
- ``/subprotocol``: accepts with ``chat`` when offered (aiohttp offers no
  other), sends the chosen subprotocol (``""`` for none), then echoes.
- ``/forbidden``: answers the handshake with ``403`` and a text body
  (``FORBIDDEN_BODY``).
- ``/silent``: echoes the first message, then stops reading. aiohttp answers
  pings from inside ``receive()``, so from then on pings go unanswered while
  the TCP connection stays up: a peer that hangs.
- ``/big/N``: sends one binary message of ``N`` bytes, then echoes.
- ``/abort``: after the first message, aborts the TCP connection (no close
  frame, no FIN handshake of its own).
- ``/ext``: sends ``permessage-deflate`` when it was negotiated (``""``
  otherwise), then echoes.
- ``/headers``: sends the request's header fields as JSON, then echoes.

On shutdown every open WebSocket is closed with 1001 (going away), as the
aiohttp documentation recommends (``on_shutdown``), so a restart looks like
the ``websockets`` server's.
"""

from __future__ import annotations

import asyncio
import json
import socket
import ssl
import threading
from typing import Any
from urllib.parse import unquote

from ws_app import FORBIDDEN_BODY

__all__ = ["AiohttpServer"]


class AiohttpServer:
    """aiohttp's server in a daemon thread with its own event loop, on
    127.0.0.1.

    Args:
        port: TCP port (0: any free one, kept for restarts).
        ssl_context: Serve ``wss`` with this context.
    """

    def __init__(self, port: int = 0, ssl_context: ssl.SSLContext | None = None) -> None:
        self.port = port
        self._ssl = ssl_context
        self._loop: asyncio.AbstractEventLoop | None = None
        self._stop: asyncio.Event | None = None
        self._thread: threading.Thread | None = None
        self._ready = threading.Event()
        self._error: BaseException | None = None

    @property
    def url(self) -> str:
        """``ws://127.0.0.1:PORT`` (``wss`` with TLS)."""
        return f"{'wss' if self._ssl else 'ws'}://127.0.0.1:{self.port}"

    def start(self) -> None:
        """Listen (on the same port as before, after :meth:`stop`)."""
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(("127.0.0.1", self.port))
        sock.listen(256)
        sock.setblocking(False)
        self.port = sock.getsockname()[1]
        self._ready.clear()
        self._error = None
        self._thread = threading.Thread(
            target=self._run, args=(sock,), name="server-aiohttp", daemon=True
        )
        self._thread.start()
        if not self._ready.wait(10.0):
            raise RuntimeError("the aiohttp server did not start")
        if self._error is not None:
            raise RuntimeError("the aiohttp server failed") from self._error

    def _run(self, sock: socket.socket) -> None:
        try:
            asyncio.run(self._main(sock))
        except BaseException as exc:
            sock.close()
            self._error = exc
            self._ready.set()

    async def _main(self, sock: socket.socket) -> None:
        from aiohttp import WSCloseCode, web

        open_sockets: set[web.WebSocketResponse] = set()

        async def handler(request: web.Request) -> web.StreamResponse:
            path = request.path
            if path == "/forbidden":
                return web.Response(status=403, text=FORBIDDEN_BODY)
            protocols = ("chat",) if path == "/subprotocol" else ()
            ws = web.WebSocketResponse(max_msg_size=0, protocols=protocols)
            await ws.prepare(request)
            open_sockets.add(ws)
            try:
                await _serve(request, ws)
            finally:
                open_sockets.discard(ws)
            return ws

        async def going_away(app: web.Application) -> None:
            for ws in list(open_sockets):
                await ws.close(code=WSCloseCode.GOING_AWAY, message=b"server shutdown")

        self._loop = asyncio.get_running_loop()
        self._stop = asyncio.Event()
        app = web.Application()
        app.router.add_get("/{tail:.*}", handler)
        app.on_shutdown.append(going_away)
        runner = web.AppRunner(app, handle_signals=False, access_log=None, shutdown_timeout=1.0)
        await runner.setup()
        try:
            site = web.SockSite(runner, sock, ssl_context=self._ssl)
            await site.start()
            self._ready.set()
            await self._stop.wait()
        finally:
            await runner.cleanup()

    def stop(self) -> None:
        """Close the listener and every connection (1001 going away)."""
        loop, stop, thread = self._loop, self._stop, self._thread
        if loop is not None and stop is not None and thread is not None and thread.is_alive():
            try:
                loop.call_soon_threadsafe(stop.set)
            except RuntimeError:
                pass
            thread.join(15.0)
            if thread.is_alive():
                raise RuntimeError("the aiohttp server did not stop")
        self._thread = None


async def _serve(request: Any, ws: Any) -> None:
    """One route, after the handshake."""
    from aiohttp import WSMsgType

    path: str = request.path
    if path.startswith("/close/"):
        _, _, code, reason = path.split("/", 3)
        await ws.close(code=int(code), message=unquote(reason).encode())
        return
    if path == "/abort":
        await ws.receive()
        request.transport.abort()
        return
    if path == "/silent":
        message = await ws.receive()
        await ws.send_str(message.data)
        # Nothing calls receive() from here on: no pong, no close reply.
        while request.transport is not None and not request.transport.is_closing():
            await asyncio.sleep(0.05)
        return
    if path.startswith("/big/"):
        await ws.send_bytes(b"\x5a" * int(path[5:]))
    elif path == "/ext":
        await ws.send_str("permessage-deflate" if ws.compress else "")
    elif path == "/subprotocol":
        await ws.send_str(ws.ws_protocol or "")
    elif path == "/headers":
        await ws.send_str(json.dumps([[k.decode(), v.decode()] for k, v in request.raw_headers]))
    async for message in ws:
        if message.type == WSMsgType.TEXT:
            await ws.send_str(message.data)
        elif message.type == WSMsgType.BINARY:
            await ws.send_bytes(message.data)
