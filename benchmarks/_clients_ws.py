"""The WebSocket clients compared by ``benchmarks/websocket.py`` and their scenarios.

Every scenario opens one connection (outside the timing), does one warm-up
exchange, then times a number of sequential exchanges: send one message,
receive its echo, check it is the very same bytes, and only then send the
next. Each returns the :class:`~_clients.Timing` of the timed part.

Scenarios:

* ``roundtrip``: ``WsWorkload.roundtrips`` binary messages of 16 bytes, to
  the plain echo server; counted in messages per second.
* ``echo``: ``WsWorkload.big_count`` binary messages of 1 MiB of random
  bytes, to the plain echo server; counted in MiB per second (MiB sent, each
  also received back).
* ``deflate``: ``WsWorkload.deflate_count`` binary messages of 1 MiB of
  compressible data (JSON-like records) with permessage-deflate (RFC 7692)
  negotiated, to the deflate echo server; counted like ``echo``. Before the
  timing the client asks the server (text ``?deflate``) whether the
  extension was negotiated, and fails with :class:`ResponseMismatch` if it
  was not. Only clients that implement permessage-deflate have it. Each
  client compresses with its own zlib settings (aiohttp: level 1,
  ``Z_BEST_SPEED``; websockets: zlib's default level 6 with ``memLevel=5``),
  which weighs more than anything else in this scenario's client CPU.

Clients with the websockets-style interface (``async with connect(uri) as
ws``, ``await ws.send(data)``, ``await ws.recv()``) share one set of
functions: websockets (asyncio and trio), picows' websockets-compatible
layer and webwire.
webwire's entries use ``webwire.websocket.connect`` (asyncio and trio) and
``webwire.websocket.sync.connect`` (blocking); they are listed as skipped
while ``webwire.websocket`` does not exist.
"""

from __future__ import annotations

import json
import os
from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import AbstractAsyncContextManager, asynccontextmanager, contextmanager
from dataclasses import dataclass
from typing import Any

from _clients import ClientSpec, ResponseMismatch, Stopwatch, Timing

__all__ = ["CLIENTS", "SCENARIOS", "WsWorkload", "compressible_payload", "random_payload"]

SCENARIOS = ("roundtrip", "echo", "deflate")
MAX_SIZE = 64 * 1024 * 1024
MiB = 1 << 20


@dataclass(frozen=True)
class WsWorkload:
    """What one measurement does.

    Attributes:
        plain_url: ``ws://`` URL of the echo server without permessage-deflate.
        deflate_url: ``ws://`` URL of the echo server that negotiates it.
        roundtrips: Messages timed in ``roundtrip``.
        small: The 16-byte message of ``roundtrip``.
        big: The 1 MiB random message of ``echo``.
        big_count: Messages timed in ``echo``.
        compressible: The 1 MiB compressible message of ``deflate``.
        deflate_count: Messages timed in ``deflate``.
    """

    plain_url: str
    deflate_url: str
    roundtrips: int
    small: bytes
    big: bytes
    big_count: int
    compressible: bytes
    deflate_count: int

    def units(self, scenario: str) -> float:
        """Messages (``roundtrip``) or MiB (``echo``, ``deflate``) one run moves."""
        if scenario == "roundtrip":
            return self.roundtrips
        if scenario == "echo":
            return self.big_count * len(self.big) / MiB
        return self.deflate_count * len(self.compressible) / MiB

    def plan(self, scenario: str) -> tuple[str, bytes, int]:
        """The URL, the message and the number of timed exchanges of ``scenario``."""
        if scenario == "roundtrip":
            return self.plain_url, self.small, self.roundtrips
        if scenario == "echo":
            return self.plain_url, self.big, self.big_count
        return self.deflate_url, self.compressible, self.deflate_count


def random_payload(size: int) -> bytes:
    """``size`` random bytes (incompressible)."""
    return os.urandom(size)


def compressible_payload(size: int) -> bytes:
    """``size`` bytes of JSON records with varying numbers (compresses about 10:1)."""
    records = []
    length = 0
    i = 0
    while length < size:
        record = json.dumps(
            {
                "id": i,
                "user": f"user-{i * 7919 % 100003}",
                "active": i % 3 == 0,
                "score": (i * 2654435761) % 1000003 / 1000.0,
                "tags": ["alpha", "beta", "gamma"][: i % 3 + 1],
            }
        )
        records.append(record)
        length += len(record) + 2
        i += 1
    return ("[" + ", ".join(records) + "]").encode()[:size]


def _check(client: str, sent: bytes, received: Any) -> None:
    if received != sent:
        got = len(received) if isinstance(received, (bytes, bytearray, str)) else received
        raise ResponseMismatch(f"{client}: echo of {len(sent)} bytes came back as {got!r:.60}")


def _check_deflate(client: str, answer: Any) -> None:
    if answer != "deflate=1":
        raise ResponseMismatch(f"{client}: permessage-deflate not negotiated ({answer!r})")


# -- websockets-style clients (websockets, picows.websockets, webwire) -----------------------

AsyncOpener = Callable[[str, str | None], AbstractAsyncContextManager[Any]]


def _ws_style_async(name: str, opener: AsyncOpener, scenarios: tuple[str, ...]) -> dict[str, Any]:
    def make(scenario: str) -> Any:
        async def run(work: WsWorkload, runtime: str) -> Timing:
            url, message, count = work.plan(scenario)
            compression = "deflate" if scenario == "deflate" else None
            async with opener(url, compression) as ws:
                if scenario == "deflate":
                    await ws.send("?deflate")
                    _check_deflate(name, await ws.recv())
                await ws.send(message)
                _check(name, message, await ws.recv())
                watch = Stopwatch()
                for _ in range(count):
                    await ws.send(message)
                    _check(name, message, await ws.recv())
                timing = watch.stop()
            return timing

        return run

    return {scenario: make(scenario) for scenario in scenarios}


SyncOpener = Callable[[str, str | None], Any]


def _ws_style_sync(name: str, opener: SyncOpener, scenarios: tuple[str, ...]) -> dict[str, Any]:
    def make(scenario: str) -> Any:
        def run(work: WsWorkload) -> Timing:
            url, message, count = work.plan(scenario)
            compression = "deflate" if scenario == "deflate" else None
            with opener(url, compression) as ws:
                if scenario == "deflate":
                    ws.send("?deflate")
                    _check_deflate(name, ws.recv())
                ws.send(message)
                _check(name, message, ws.recv())
                watch = Stopwatch()
                for _ in range(count):
                    ws.send(message)
                    _check(name, message, ws.recv())
                timing = watch.stop()
            return timing

        return run

    return {scenario: make(scenario) for scenario in scenarios}


def _websockets_open(uri: str, compression: str | None) -> Any:
    from websockets.asyncio.client import connect

    return connect(uri, compression=compression, max_size=MAX_SIZE)


def _websockets_trio_open(uri: str, compression: str | None) -> Any:
    from websockets.trio.client import connect

    return connect(uri, compression=compression, max_size=MAX_SIZE)


def _websockets_sync_open(uri: str, compression: str | None) -> Any:
    from websockets.sync.client import connect

    return connect(uri, compression=compression, max_size=MAX_SIZE)


def _picows_websockets_open(uri: str, compression: str | None) -> Any:
    from picows.websockets import connect

    return connect(uri, compression=compression, max_size=MAX_SIZE)


@asynccontextmanager
async def _webwire_open(uri: str, compression: str | None) -> AsyncIterator[Any]:
    from webwire import websocket

    opened = websocket.connect(uri, compression=compression, max_size=MAX_SIZE)
    if hasattr(opened, "__aenter__"):
        async with opened as ws:
            yield ws
    else:  # a coroutine returning the connection
        ws = await opened
        try:
            yield ws
        finally:
            await ws.close()


@contextmanager
def _webwire_sync_open(uri: str, compression: str | None) -> Iterator[Any]:
    from webwire.websocket import sync

    with sync.connect(uri, compression=compression, max_size=MAX_SIZE) as ws:
        yield ws


# -- aiohttp ---------------------------------------------------------------------------------


def _aiohttp_scenarios() -> dict[str, Any]:
    def make(scenario: str) -> Any:
        async def run(work: WsWorkload, runtime: str) -> Timing:
            import aiohttp

            url, message, count = work.plan(scenario)
            compress = 15 if scenario == "deflate" else 0
            async with (
                aiohttp.ClientSession() as session,
                session.ws_connect(url, compress=compress, max_msg_size=MAX_SIZE) as ws,
            ):
                if scenario == "deflate":
                    await ws.send_str("?deflate")
                    _check_deflate("aiohttp", await ws.receive_str())
                await ws.send_bytes(message)
                _check("aiohttp", message, await ws.receive_bytes())
                watch = Stopwatch()
                for _ in range(count):
                    await ws.send_bytes(message)
                    _check("aiohttp", message, await ws.receive_bytes())
                timing = watch.stop()
            return timing

        return run

    return {scenario: make(scenario) for scenario in SCENARIOS}


# -- picows (its own callback API) -----------------------------------------------------------


def _picows_scenarios() -> dict[str, Any]:
    def make(scenario: str) -> Any:
        async def run(work: WsWorkload, runtime: str) -> Timing:
            import asyncio

            from picows import WSCloseCode, WSListener, WSMsgType, ws_connect

            loop = asyncio.get_running_loop()

            class Listener(WSListener):  # type: ignore[misc]
                def __init__(self) -> None:
                    self.parts: list[bytes] = []
                    self.waiter: asyncio.Future[bytes] | None = None

                def on_ws_frame(self, transport: Any, frame: Any) -> None:
                    kind = frame.msg_type
                    if kind in (WSMsgType.BINARY, WSMsgType.CONTINUATION):
                        self.parts.append(frame.get_payload_as_bytes())
                        if frame.fin and self.waiter is not None:
                            data = self.parts[0] if len(self.parts) == 1 else b"".join(self.parts)
                            self.parts = []
                            self.waiter.set_result(data)
                    elif kind == WSMsgType.CLOSE:
                        transport.disconnect()

                def on_ws_disconnected(self, transport: Any) -> None:
                    if self.waiter is not None and not self.waiter.done():
                        self.waiter.set_exception(ConnectionError("disconnected"))

                async def exchange(self, transport: Any, message: bytes) -> bytes:
                    self.waiter = loop.create_future()
                    transport.send(WSMsgType.BINARY, message)
                    return await self.waiter

            url, message, count = work.plan(scenario)
            transport, listener = await ws_connect(Listener, url, max_frame_size=MAX_SIZE)
            try:
                _check("picows", message, await listener.exchange(transport, message))
                watch = Stopwatch()
                for _ in range(count):
                    _check("picows", message, await listener.exchange(transport, message))
                timing = watch.stop()
            finally:
                transport.send_close(WSCloseCode.OK)
                transport.disconnect()
                await transport.wait_disconnected()
            return timing

        return run

    return {scenario: make(scenario) for scenario in ("roundtrip", "echo")}


# -- trio-websocket --------------------------------------------------------------------------


def _trio_websocket_scenarios() -> dict[str, Any]:
    def make(scenario: str) -> Any:
        async def run(work: WsWorkload, runtime: str) -> Timing:
            from trio_websocket import open_websocket_url

            url, message, count = work.plan(scenario)
            async with open_websocket_url(url, max_message_size=MAX_SIZE) as ws:
                await ws.send_message(message)
                _check("trio-websocket", message, await ws.get_message())
                watch = Stopwatch()
                for _ in range(count):
                    await ws.send_message(message)
                    _check("trio-websocket", message, await ws.get_message())
                timing = watch.stop()
            return timing

        return run

    # trio-websocket has no permessage-deflate.
    return {scenario: make(scenario) for scenario in ("roundtrip", "echo")}


CLIENTS: tuple[ClientSpec, ...] = (
    ClientSpec(
        "webwire-asyncio",
        "asyncio",
        "webwire.websocket",
        "connect",
        _ws_style_async("webwire-asyncio", _webwire_open, SCENARIOS),
    ),
    ClientSpec(
        "webwire-trio",
        "trio",
        "webwire.websocket",
        "connect",
        _ws_style_async("webwire-trio", _webwire_open, SCENARIOS),
    ),
    ClientSpec(
        "webwire-sync",
        "sync",
        "webwire.websocket.sync",
        "connect",
        _ws_style_sync("webwire-sync", _webwire_sync_open, SCENARIOS),
    ),
    ClientSpec(
        "websockets",
        "asyncio",
        "websockets.asyncio.client",
        "connect",
        _ws_style_async("websockets", _websockets_open, SCENARIOS),
    ),
    ClientSpec(
        "websockets-trio",
        "trio",
        "websockets.trio.client",
        "connect",
        _ws_style_async("websockets-trio", _websockets_trio_open, SCENARIOS),
    ),
    ClientSpec(
        "websockets-sync",
        "sync",
        "websockets.sync.client",
        "connect",
        _ws_style_sync("websockets-sync", _websockets_sync_open, SCENARIOS),
    ),
    ClientSpec("aiohttp", "asyncio", "aiohttp", "ClientSession", _aiohttp_scenarios()),
    ClientSpec("picows", "asyncio", "picows", "ws_connect", _picows_scenarios()),
    ClientSpec(
        "picows-websockets",
        "asyncio",
        "picows.websockets",
        "connect",
        _ws_style_async("picows-websockets", _picows_websockets_open, SCENARIOS),
    ),
    ClientSpec("trio-websocket", "trio", "trio_websocket", "", _trio_websocket_scenarios()),
)
