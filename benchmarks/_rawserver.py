"""Fallback benchmark server: a raw ``asyncio.Protocol`` HTTP/1.1 server on uvloop.

Used by ``benchmarks/http1.py`` only when nginx is not installed. It answers
exactly what the benchmark asks for and nothing more:

* ``GET /hello``   -> 200, ``Hello, world!`` (13 bytes), keep-alive.
* ``GET /big.bin`` -> 200, the file given with ``--file``, keep-alive.
* anything else    -> 404.

Run as ``python _rawserver.py --file PATH``; it binds 127.0.0.1 on a free
port, prints ``PORT <n>`` on one line of standard output once it listens, and
serves until it receives SIGTERM or SIGINT.
"""

from __future__ import annotations

import argparse
import asyncio
import signal
import sys
from typing import cast

HELLO_RESPONSE = (
    b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: 13\r\n\r\nHello, world!"
)
NOT_FOUND_RESPONSE = b"HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\n\r\n"
MAX_HEAD = 64 * 1024


class HTTPServerProtocol(asyncio.Protocol):
    """One connection: parse request heads, answer from memory."""

    def __init__(self, big_body: bytes) -> None:
        self._big_body = big_body
        self._big_head = (
            b"HTTP/1.1 200 OK\r\n"
            b"Content-Type: application/octet-stream\r\n"
            b"Content-Length: " + str(len(big_body)).encode() + b"\r\n\r\n"
        )
        self._buffer = bytearray()
        self._transport: asyncio.Transport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        """Keep the transport to answer on."""
        self._transport = cast(asyncio.Transport, transport)

    def data_received(self, data: bytes) -> None:
        """Answer every complete request head in the buffer, in order."""
        transport = self._transport
        assert transport is not None
        self._buffer += data
        while True:
            end = self._buffer.find(b"\r\n\r\n")
            if end < 0:
                if len(self._buffer) > MAX_HEAD:
                    transport.close()
                return
            head = bytes(self._buffer[:end])
            del self._buffer[: end + 4]
            if b"content-length:" in head.lower() or b"transfer-encoding:" in head.lower():
                # The benchmark only sends GETs without a body.
                transport.write(b"HTTP/1.1 400 Bad Request\r\nConnection: close\r\n\r\n")
                transport.close()
                return
            request_line = head.split(b"\r\n", 1)[0]
            parts = request_line.split(b" ")
            target = parts[1] if len(parts) == 3 else b""
            if target == b"/hello":
                transport.write(HELLO_RESPONSE)
            elif target == b"/big.bin":
                transport.write(self._big_head)
                transport.write(self._big_body)
            else:
                transport.write(NOT_FOUND_RESPONSE)


async def serve(path: str) -> None:
    """Listen on 127.0.0.1, print the port, serve until a signal arrives."""
    with open(path, "rb") as f:
        big_body = f.read()
    loop = asyncio.get_running_loop()
    server = await loop.create_server(
        lambda: HTTPServerProtocol(big_body), "127.0.0.1", 0, backlog=4096
    )
    port = server.sockets[0].getsockname()[1]
    sys.stdout.write(f"PORT {port}\n")
    sys.stdout.flush()
    stop = asyncio.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    async with server:
        await stop.wait()


def main() -> None:
    """Parse the command line and run the server (on uvloop when installed)."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--file", required=True, help="body served at /big.bin")
    args = parser.parse_args()
    try:
        import uvloop
    except ImportError:
        asyncio.run(serve(args.file))
    else:
        uvloop.run(serve(args.file))


if __name__ == "__main__":
    main()
