"""pywebtransport 0.21's WebTransport server running the echo routes of the test suite.

Run by the Python 3.12 environment of ``wt_env.py`` (pywebtransport 0.21
needs Python >= 3.12), not by the test process::

    .venv-wt312/bin/python wt_server_pywebtransport.py --cert server.pem --key server.key

It prints its UDP port on standard output once it listens, serves until its
standard input closes, and logs errors on standard error. Routes (the
session's path, query string ignored unless named):

``/echo``
    Bidirectional streams echoed on themselves, unidirectional streams
    echoed on a new server unidirectional stream, datagrams echoed.
``/close?code=N&reason=TEXT``
    The server closes the session with code ``N`` (default 4242) and the
    reason (default ``closed by the server``).
``/server-streams``
    The server opens one bidirectional stream (sends a line, then echoes)
    and one unidirectional stream (sends a line and ends it).
``/reset?code=N``
    The server resets every stream the client opens with code ``N``
    (default 7) after its first bytes.
``/count``
    The server sends ``{"sessions": N}`` on a unidirectional stream.

Other paths are rejected with ``404``.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import socket
import sys
import traceback
from typing import Any
from urllib.parse import parse_qs, urlsplit

from pywebtransport import ServerConfig, WebTransportServer

CLOSE_CODE = 4242
CLOSE_REASON = "closed by the server"
RESET_CODE = 7
SERVER_BIDI_PAYLOAD = b"bidirectional stream opened by the server\n"
SERVER_UNI_PAYLOAD = b"unidirectional stream opened by the server\n"
ROUTES = ("/echo", "/close", "/server-streams", "/reset", "/count")

_sessions_accepted = 0
_background: set[asyncio.Task[None]] = set()


def _spawn(coro: Any, what: str) -> None:
    task = asyncio.create_task(_guard(coro, what))
    _background.add(task)
    task.add_done_callback(_background.discard)


def _log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


async def _guard(coro: Any, what: str) -> None:
    try:
        await coro
    except asyncio.CancelledError:
        raise
    except Exception as exc:  # a peer that went away; keep serving the others
        _log(f"{what}: {type(exc).__name__}: {exc}")


async def _echo_bidi(stream: Any) -> None:
    while True:
        data = await stream.read(max_size=65536)
        if not data:
            break
        await stream.write(data=data)
    await stream.write(data=b"", end_stream=True)


async def _echo_uni(session: Any, stream: Any) -> None:
    out = None
    while True:
        data = await stream.read(max_size=65536)
        if not data:
            break
        if out is None:
            out = await session.create_unidirectional_stream()
        await out.write(data=data)
    if out is None:
        out = await session.create_unidirectional_stream()
    await out.write(data=b"", end_stream=True)


async def _reset_stream(stream: Any, code: int) -> None:
    await stream.read(max_size=65536)
    if hasattr(stream, "reset"):
        await stream.reset(error_code=code)
    with contextlib.suppress(Exception):
        await stream.stop_receiving(error_code=code)


async def _incoming(session: Any, route: str, query: dict[str, str], tasks: set[Any]) -> None:
    async def bidi() -> None:
        async for stream in session.incoming_bidirectional_streams():
            if route == "/reset":
                job = _reset_stream(stream, int(query.get("code", RESET_CODE)))
            else:
                job = _echo_bidi(stream)
            task = asyncio.create_task(_guard(job, "bidirectional stream"))
            tasks.add(task)
            task.add_done_callback(tasks.discard)

    async def uni() -> None:
        async for stream in session.incoming_unidirectional_streams():
            if route == "/reset":
                job = _reset_stream(stream, int(query.get("code", RESET_CODE)))
            else:
                job = _echo_uni(session, stream)
            task = asyncio.create_task(_guard(job, "unidirectional stream"))
            tasks.add(task)
            task.add_done_callback(tasks.discard)

    async def datagrams() -> None:
        while not session.is_closed:
            data = await session.read_datagram()
            if route in ("/echo", "/server-streams"):
                await session.send_datagram(data=data)

    await asyncio.gather(
        _guard(bidi(), "bidirectional streams"),
        _guard(uni(), "unidirectional streams"),
        _guard(datagrams(), "datagrams"),
    )


async def _session(session: Any) -> None:
    global _sessions_accepted
    split = urlsplit(session.path)
    route = split.path
    query = {k: v[-1] for k, v in parse_qs(split.query).items()}
    if route not in ROUTES:
        await session.reject(status_code=404)
        return
    await session.accept()
    _sessions_accepted += 1
    tasks: set[Any] = set()
    if route == "/close":
        await session.close(
            error_code=int(query.get("code", CLOSE_CODE)), reason=query.get("reason", CLOSE_REASON)
        )
        return
    if route == "/server-streams":
        bidi = await session.create_bidirectional_stream()
        await bidi.write(data=SERVER_BIDI_PAYLOAD)
        task = asyncio.create_task(_guard(_echo_bidi(bidi), "server bidirectional stream"))
        tasks.add(task)
        uni = await session.create_unidirectional_stream()
        await uni.write(data=SERVER_UNI_PAYLOAD, end_stream=True)
    if route == "/count":
        uni = await session.create_unidirectional_stream()
        await uni.write(data=json.dumps({"sessions": _sessions_accepted}).encode(), end_stream=True)
    await _incoming(session, route, query, tasks)


async def _connection(connection: Any) -> None:
    async for session in connection.incoming_sessions():
        _spawn(_session(session), f"session {session.path}")


def _free_udp_port(host: str) -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.bind((host, 0))
        port: int = sock.getsockname()[1]
        return port


async def _stdin_closed() -> None:
    loop = asyncio.get_running_loop()
    await loop.run_in_executor(None, sys.stdin.read)


async def main_async(args: argparse.Namespace) -> None:
    port = args.port or _free_udp_port(args.host)
    config = ServerConfig(
        bind_host=args.host,
        bind_port=port,
        certfile=args.cert,
        keyfile=args.key,
        max_idle_timeout=60.0,
    )
    async with WebTransportServer(config=config) as server:
        await server.listen()
        print(port, flush=True)

        async def accept() -> None:
            async for connection in server.incoming_connections():
                _spawn(_connection(connection), "connection")

        acceptor = asyncio.create_task(accept())
        try:
            await _stdin_closed()
        finally:
            acceptor.cancel()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--cert", required=True)
    parser.add_argument("--key", required=True)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=0)
    args = parser.parse_args()
    try:
        asyncio.run(main_async(args))
    except KeyboardInterrupt:
        pass
    except Exception:
        traceback.print_exc()
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
