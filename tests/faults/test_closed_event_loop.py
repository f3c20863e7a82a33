"""An ``AsyncClient`` used again after the event loop it ran on is gone
(a second ``asyncio.run()`` or ``trio.run()``): a clear webwire error,
never ``RuntimeError("Event loop is closed")`` from deep inside.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

import pytest
import trio
from scripted_server import Connection, ScriptedServer, response

import webwire


def answer_all(conn: Connection) -> None:
    while conn.read_request():
        conn.send(response(b"hello"))


def answer_and_close(conn: Connection) -> None:
    # No connection stays in the pool: a socket of a loop that is gone
    # could only be left for the garbage collector.
    if conn.read_request():
        conn.send(response(b"hello", headers=(b"Connection: close",)))


RUNNERS: dict[str, Callable[[Callable[[], Any]], Any]] = {
    "asyncio": lambda fn: asyncio.run(fn()),
    "trio": trio.run,
}


@pytest.mark.timeout(30)
@pytest.mark.parametrize("library", list(RUNNERS))
def test_client_used_on_a_second_event_loop(library: str) -> None:
    run = RUNNERS[library]
    with ScriptedServer(answer_and_close) as server:
        client = webwire.AsyncClient()

        async def get() -> bytes:
            return (await client.get(server.url)).content

        async def close() -> None:
            await client.aclose()

        assert run(get) == b"hello"
        for attempt in (get, close):
            with pytest.raises(webwire.WebwireError, match=r"another \w+ event loop") as info:
                run(attempt)
            assert not isinstance(info.value, RuntimeError)


@pytest.mark.timeout(30)
def test_client_made_inside_each_loop_works() -> None:
    with ScriptedServer(answer_all) as server:

        async def get() -> bytes:
            async with webwire.AsyncClient() as client:
                return (await client.get(server.url)).content

        assert asyncio.run(get()) == b"hello"
        assert asyncio.run(get()) == b"hello"
