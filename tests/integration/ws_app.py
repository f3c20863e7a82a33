"""WebSocket servers for the integration tests, none written by us:

* :func:`ws_asgi_app`: an ASGI app served by hypercorn and by uvicorn
  (its ``websockets-sansio`` implementation), routes:

  - ``/echo``: echoes every message.
  - ``/close/CODE/REASON``: accepts, then closes with that code and reason.
  - ``/subprotocol``: accepts with ``chat`` when offered, sends the chosen
    subprotocol (``""`` for none), then echoes.
  - ``/forbidden``: refuses the handshake (close before accept: 403).

* :class:`WebsocketsServer`: the ``websockets`` library's asyncio server in
  a thread with its own event loop, on 127.0.0.1 (port 0, or a given port
  so that it can be restarted on the same one). Routes:

  - ``/echo``: echoes every message.
  - ``/close/CODE/REASON``: closes with that code and reason.
  - ``/abort``: after the first message, aborts the TCP connection.
  - ``/big/N``: sends one binary message of ``N`` bytes, then echoes.
  - ``/ext``: sends the names of the negotiated extensions (comma
    separated), then echoes.
  - ``/subprotocol``: sends the chosen subprotocol (``chat`` or
    ``superchat`` when offered; ``""`` for none), then echoes.
  - ``/headers``: sends the request's header fields as JSON, then echoes.
  - ``/fragments``: sends a text message in three frames and a binary one
    in two, then echoes.
  - ``/forbidden``: answers the handshake with ``403`` and a text body.
"""

from __future__ import annotations

import asyncio
import json
import socket
import ssl
import threading
from typing import Any
from urllib.parse import unquote

FORBIDDEN_BODY = "no WebSocket for you here\n"


# -- ASGI (hypercorn, uvicorn) ---------------------------------------------------


async def ws_asgi_app(scope: dict[str, Any], receive: Any, send: Any) -> None:
    """The ASGI 3 app (WebSocket and lifespan scopes)."""
    if scope["type"] == "lifespan":
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                await send({"type": "lifespan.startup.complete"})
            elif message["type"] == "lifespan.shutdown":
                await send({"type": "lifespan.shutdown.complete"})
                return
    if scope["type"] == "http":
        await send({"type": "http.response.start", "status": 404, "headers": []})
        await send({"type": "http.response.body", "body": b"not found"})
        return
    if scope["type"] != "websocket":
        return
    path: str = scope["path"]
    message = await receive()
    if message["type"] != "websocket.connect":
        return
    if path == "/forbidden":
        await send({"type": "websocket.close", "code": 1008})
        return
    if path == "/subprotocol":
        chosen = "chat" if "chat" in scope.get("subprotocols", []) else None
        await send({"type": "websocket.accept", "subprotocol": chosen})
        await send({"type": "websocket.send", "text": chosen or ""})
    else:
        await send({"type": "websocket.accept"})
    if path.startswith("/close/"):
        _, _, code, reason = path.split("/", 3)
        await send({"type": "websocket.close", "code": int(code), "reason": unquote(reason)})
        return
    while True:
        message = await receive()
        if message["type"] != "websocket.receive":
            return
        if message.get("text") is not None:
            await send({"type": "websocket.send", "text": message["text"]})
        else:
            await send({"type": "websocket.send", "bytes": message.get("bytes") or b""})


# -- the websockets server ------------------------------------------------------


async def _handler(ws: Any) -> None:
    path: str = ws.request.path
    if path.startswith("/close/"):
        _, _, code, reason = path.split("/", 3)
        await ws.close(int(code), unquote(reason))
        return
    if path == "/abort":
        await ws.recv()
        ws.transport.abort()
        return
    if path.startswith("/big/"):
        await ws.send(b"\x5a" * int(path[5:]))
    elif path == "/ext":
        await ws.send(",".join(ext.name for ext in ws.protocol.extensions))
    elif path == "/subprotocol":
        await ws.send(ws.subprotocol or "")
    elif path == "/fragments":
        await ws.send(["frag1 ", "frag2 ", "frag3"])
        await ws.send([b"a", b"b"])
    elif path == "/headers":
        await ws.send(json.dumps([list(item) for item in ws.request.headers.raw_items()]))
    async for message in ws:
        await ws.send(message)


def _process_request(connection: Any, request: Any) -> Any:
    if request.path == "/forbidden":
        return connection.respond(403, FORBIDDEN_BODY)
    return None


def _select_subprotocol(connection: Any, subprotocols: Any) -> Any:
    for name in ("chat", "superchat"):
        if name in subprotocols:
            return name
    return None


class WebsocketsServer:
    """``websockets.asyncio.server.serve`` in a daemon thread.

    Args:
        port: TCP port (0: any free one, kept for restarts).
        ssl_context: Serve ``wss`` with this context.
    """

    def __init__(
        self,
        port: int = 0,
        ssl_context: ssl.SSLContext | None = None,
        unix_path: str | None = None,
    ) -> None:
        self.port = port
        self.unix_path = unix_path
        self._ssl = ssl_context
        self._thread: threading.Thread | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._stop: asyncio.Event | None = None
        self._ready = threading.Event()
        self._error: BaseException | None = None

    @property
    def url(self) -> str:
        """``ws://127.0.0.1:PORT`` (``wss`` with TLS)."""
        return f"{'wss' if self._ssl else 'ws'}://127.0.0.1:{self.port}"

    def start(self) -> None:
        """Listen (on the same port as before, after :meth:`stop`)."""
        if self.unix_path is not None:
            sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            sock.bind(self.unix_path)
        else:
            sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            sock.bind(("127.0.0.1", self.port))
            self.port = sock.getsockname()[1]
        sock.listen(256)
        sock.setblocking(False)
        self._ready.clear()
        self._error = None
        self._thread = threading.Thread(target=self._run, args=(sock,), daemon=True)
        self._thread.start()
        if not self._ready.wait(10.0):
            raise RuntimeError("the websockets server did not start")
        if self._error is not None:
            raise RuntimeError("the websockets server failed") from self._error

    def _run(self, sock: socket.socket) -> None:
        try:
            asyncio.run(self._main(sock))
        except BaseException as exc:
            self._error = exc
            self._ready.set()

    async def _main(self, sock: socket.socket) -> None:
        from websockets.asyncio.server import serve

        self._loop = asyncio.get_running_loop()
        self._stop = asyncio.Event()
        async with serve(
            _handler,
            sock=sock,
            ssl=self._ssl,
            max_size=None,
            process_request=_process_request,
            select_subprotocol=_select_subprotocol,
            ping_interval=None,
        ):
            self._ready.set()
            await self._stop.wait()

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
                raise RuntimeError("the websockets server did not stop")
        self._thread = None
