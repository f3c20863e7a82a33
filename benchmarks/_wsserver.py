"""The echo servers of ``benchmarks/websocket.py``, run as a subprocess.

Usage: ``python _wsserver.py PLAIN_PORT DEFLATE_PORT`` listens on 127.0.0.1:

* ``PLAIN_PORT``: picows' own server (``picows.ws_create_server``), which
  echoes every data frame as it arrives (same opcode, same FIN bit, so a
  fragmented message comes back fragmented the same way), answers pings
  (picows' auto-pong) and closes when the client closes. It does not
  negotiate permessage-deflate.
* ``DEFLATE_PORT``: picows' websockets-compatible server
  (``picows.websockets.serve``, ``compression="deflate"``), which echoes
  every message; the text message ``?deflate`` is answered with
  ``deflate=1`` or ``deflate=0``, saying whether permessage-deflate was
  negotiated on that connection. Where ``picows.websockets`` does not exist
  (picows before 2.x) the ``websockets`` library's server takes its place.

Both run on one uvloop event loop (the default asyncio loop without
uvloop). The process prints one line naming the servers when both listen,
and exits on SIGTERM or when standard input closes.
"""

from __future__ import annotations

import asyncio
import importlib.metadata
import signal
import sys
from typing import Any

import picows
from picows import WSFrame, WSListener, WSMsgType, WSTransport

MAX_SIZE = 64 * 1024 * 1024


class _Echo(WSListener):  # type: ignore[misc]
    def on_ws_frame(self, transport: WSTransport, frame: WSFrame) -> None:
        kind = frame.msg_type
        if kind == WSMsgType.CLOSE:
            transport.send_close(frame.get_close_code(), frame.get_close_message())
            transport.disconnect()
        elif kind in (WSMsgType.BINARY, WSMsgType.TEXT, WSMsgType.CONTINUATION):
            transport.send(kind, frame.get_payload_as_memoryview(), frame.fin)


async def _deflate_handler(ws: Any) -> None:
    extensions = ws.response.headers.get("Sec-WebSocket-Extensions") or ""
    negotiated = "permessage-deflate" in extensions
    async for message in ws:
        if message == "?deflate":
            await ws.send(f"deflate={int(negotiated)}")
        else:
            await ws.send(message)


async def _serve(plain_port: int, deflate_port: int) -> None:
    plain = await picows.ws_create_server(
        lambda request: _Echo(), "127.0.0.1", plain_port, max_frame_size=MAX_SIZE
    )
    try:
        from picows.websockets import serve

        deflate_server = f"picows.websockets.serve {importlib.metadata.version('picows')}"
    except ImportError:
        from websockets.asyncio.server import serve

        deflate_server = (
            f"websockets.asyncio.server.serve {importlib.metadata.version('websockets')}"
        )
    deflate = await serve(
        _deflate_handler, "127.0.0.1", deflate_port, compression="deflate", max_size=MAX_SIZE
    )
    loop_name = type(asyncio.get_running_loop()).__module__.split(".")[0]
    print(
        f"plain: picows {importlib.metadata.version('picows')} ws_create_server, echo per frame; "
        f"deflate: {deflate_server} (compression='deflate'); event loop: {loop_name}",
        flush=True,
    )
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    loop.add_signal_handler(signal.SIGTERM, stop.set)
    loop.add_reader(sys.stdin.fileno(), stop.set)  # the parent went away
    try:
        await stop.wait()
    finally:
        plain.close()
        deflate.close()


def main() -> None:
    plain_port, deflate_port = int(sys.argv[1]), int(sys.argv[2])
    try:
        import uvloop
    except ImportError:
        asyncio.run(_serve(plain_port, deflate_port))
    else:
        uvloop.run(_serve(plain_port, deflate_port))


if __name__ == "__main__":
    main()
