"""The WebSocket clients that ``run_autobahn.py`` can put through the fuzzing server.

Each :class:`Adapter` opens one client connection with the websockets-style
interface the runner drives: ``send(str | bytes)``, ``recv()`` and
iteration (``async for``/``for``) over incoming messages, ending quietly on
a normal close. ``runtime`` says how its ``connect`` is driven: ``"asyncio"``
or ``"trio"`` (an async context manager, run on that event loop) or
``"sync"`` (a plain context manager, run in a thread).

webwire's entries are written against ``webwire.websocket.connect`` (async,
asyncio and trio) and ``webwire.websocket.sync.connect`` (blocking), and are
available as soon as ``webwire.websocket`` can be imported. The ``websockets``
library's asyncio, trio and blocking clients (and ``trio-websocket`` when
installed) are stand-ins used to check this harness.
"""

from __future__ import annotations

import importlib
from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import AbstractAsyncContextManager, asynccontextmanager, contextmanager
from dataclasses import dataclass
from typing import Any

__all__ = ["ADAPTERS", "DEFAULT_CLIENT", "Adapter", "default_client"]

#: Largest message a client accepts (the fuzzing server sends up to 16 MiB in case 9.*).
MAX_SIZE = 64 * 1024 * 1024


@dataclass(frozen=True)
class Adapter:
    """One client the conformance run can use.

    Attributes:
        name: The ``--client`` value and the agent name in the report.
        runtime: ``"asyncio"``, ``"trio"`` or ``"sync"``.
        module: The module that must be importable for the client to run.
        connect: ``connect(uri, compression)`` opens a connection; ``compression``
            is ``"deflate"`` (offer permessage-deflate) or ``None``. An async
            context manager for the async runtimes, a context manager for
            ``"sync"``.
        errors: ``errors()`` returns the exception classes the client raises
            when the peer misbehaves or the connection fails; any other
            exception is a client bug and fails the case.
    """

    name: str
    runtime: str
    module: str
    connect: Callable[[str, str | None], Any]
    errors: Callable[[], tuple[type[BaseException], ...]]

    def unavailable_reason(self) -> str | None:
        """Why this client cannot run here, or ``None``."""
        try:
            importlib.import_module(self.module)
        except ImportError as exc:
            return f"{self.module} cannot be imported ({exc})"
        return None


# -- webwire -------------------------------------------------------------------------------


@asynccontextmanager
async def _webwire_async(uri: str, compression: str | None) -> AsyncIterator[Any]:
    from webwire import websocket

    opened = websocket.connect(uri, compression=compression, max_size=MAX_SIZE)
    if isinstance(opened, AbstractAsyncContextManager) or hasattr(opened, "__aenter__"):
        async with opened as ws:
            yield ws
    else:  # a coroutine returning the connection
        ws = await opened
        try:
            yield ws
        finally:
            await ws.close()


@contextmanager
def _webwire_sync(uri: str, compression: str | None) -> Iterator[Any]:
    from webwire.websocket import sync

    with sync.connect(uri, compression=compression, max_size=MAX_SIZE) as ws:
        yield ws


def _webwire_errors() -> tuple[type[BaseException], ...]:
    from webwire import WebwireError

    return (WebwireError,)


# -- websockets (stand-in) -------------------------------------------------------------------


@asynccontextmanager
async def _websockets_async(uri: str, compression: str | None) -> AsyncIterator[Any]:
    from websockets.asyncio.client import connect

    async with connect(uri, compression=compression, max_size=MAX_SIZE) as ws:
        yield ws


@asynccontextmanager
async def _websockets_trio(uri: str, compression: str | None) -> AsyncIterator[Any]:
    from websockets.trio.client import connect

    async with connect(uri, compression=compression, max_size=MAX_SIZE) as ws:
        yield ws


@contextmanager
def _websockets_sync(uri: str, compression: str | None) -> Iterator[Any]:
    from websockets.sync.client import connect

    with connect(uri, compression=compression, max_size=MAX_SIZE) as ws:
        yield ws


def _websockets_errors() -> tuple[type[BaseException], ...]:
    from websockets.exceptions import WebSocketException

    return (WebSocketException, OSError)


# -- trio-websocket (stand-in) ---------------------------------------------------------------


class _TrioWebsocketConnection:
    """trio-websocket's connection behind the websockets-style interface."""

    def __init__(self, ws: Any) -> None:
        self._ws = ws

    async def send(self, message: str | bytes) -> None:
        await self._ws.send_message(message)

    async def recv(self) -> str | bytes:
        message: str | bytes = await self._ws.get_message()
        return message

    def __aiter__(self) -> AsyncIterator[str | bytes]:
        return self._messages()

    async def _messages(self) -> AsyncIterator[str | bytes]:
        from trio_websocket import ConnectionClosed

        while True:
            try:
                message = await self._ws.get_message()
            except ConnectionClosed as exc:
                if exc.reason is not None and exc.reason.code in (1000, 1001, 1005):
                    return
                raise
            yield message


@asynccontextmanager
async def _trio_websocket(uri: str, compression: str | None) -> AsyncIterator[Any]:
    from trio_websocket import open_websocket_url

    # trio-websocket has no permessage-deflate: ``compression`` cannot be honoured.
    async with open_websocket_url(uri, max_message_size=MAX_SIZE) as ws:
        yield _TrioWebsocketConnection(ws)


def _trio_websocket_errors() -> tuple[type[BaseException], ...]:
    import trio_websocket

    return (trio_websocket.ConnectionClosed, trio_websocket.HandshakeError, OSError)


ADAPTERS: dict[str, Adapter] = {
    adapter.name: adapter
    for adapter in [
        Adapter("webwire-asyncio", "asyncio", "webwire.websocket", _webwire_async, _webwire_errors),
        Adapter("webwire-trio", "trio", "webwire.websocket", _webwire_async, _webwire_errors),
        Adapter("webwire-sync", "sync", "webwire.websocket.sync", _webwire_sync, _webwire_errors),
        Adapter("websockets", "asyncio", "websockets", _websockets_async, _websockets_errors),
        Adapter("websockets-trio", "trio", "websockets.trio", _websockets_trio, _websockets_errors),
        Adapter("websockets-sync", "sync", "websockets", _websockets_sync, _websockets_errors),
        Adapter(
            "trio-websocket", "trio", "trio_websocket", _trio_websocket, _trio_websocket_errors
        ),
    ]
}

#: The client of ``make conformance`` and of the quick test.
DEFAULT_CLIENT = "webwire-asyncio"
#: Used instead while ``webwire.websocket`` does not exist.
FALLBACK_CLIENT = "websockets"


def default_client() -> tuple[str, str | None]:
    """The client to test by default and, when it is a fallback, why.

    Returns:
        ``(name, None)`` for webwire, or ``(FALLBACK_CLIENT, reason)`` while
        webwire's client cannot be imported.
    """
    reason = ADAPTERS[DEFAULT_CLIENT].unavailable_reason()
    if reason is None:
        return DEFAULT_CLIENT, None
    return FALLBACK_CLIENT, reason
