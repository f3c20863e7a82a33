"""The timeouts of the trio-websocket style API on the memory backend's
fake clock: ``connect_timeout`` (:class:`ConnectionTimeout`) and
``disconnect_timeout`` (:class:`DisconnectionTimeout`), against the
``websockets`` Sans-I/O server over in-memory streams."""

from __future__ import annotations

import math

import pytest
import trio

import webwire
from transport.test_websocket_memory import HOST, dead_after_handshake, live, websocket_server
from webwire._backends.memory import MemoryBackend, MemoryStream, memory_test, settle
from webwire.websocket import (
    ConnectionTimeout,
    DisconnectionTimeout,
    HandshakeError,
    open_websocket,
    open_websocket_url,
)


@memory_test
async def test_connect_timeout() -> None:
    backend = MemoryBackend()

    async def never_answers(stream: MemoryStream) -> None:
        await trio.sleep(math.inf)

    backend.serve_tcp(HOST, 80, never_answers)
    start = trio.current_time()
    with pytest.raises(ConnectionTimeout) as info:
        async with open_websocket(
            HOST, 80, "/", use_ssl=False, connect_timeout=2.5, _backend=backend
        ):
            pytest.fail("not reached")
    assert trio.current_time() - start == pytest.approx(2.5)
    assert isinstance(info.value, HandshakeError)
    assert isinstance(info.value, webwire.TimeoutException)
    assert isinstance(info.value.__cause__, webwire.TimeoutException)
    await settle()
    assert backend.open_connections() == []


@memory_test
async def test_disconnect_timeout() -> None:
    """A server that stops answering: the close frame gets no answer, the
    connection is dropped after disconnect_timeout and the exit raises."""
    backend = MemoryBackend()
    websocket_server(backend, dead_after_handshake)
    start = trio.current_time()
    with pytest.raises(DisconnectionTimeout):
        async with open_websocket_url(
            f"ws://{HOST}/", disconnect_timeout=4.0, compression=None, _backend=backend
        ) as ws:
            await trio.sleep(1.0)
    assert trio.current_time() - start == pytest.approx(5.0)
    assert ws.closed is not None and ws.closed.code == 1006
    await settle()
    assert backend.open_connections() == []


@memory_test
async def test_clean_close_no_timeout() -> None:
    backend = MemoryBackend()
    websocket_server(backend, live)
    start = trio.current_time()
    async with open_websocket_url(
        f"ws://{HOST}/", disconnect_timeout=4.0, compression=None, _backend=backend
    ) as ws:
        await ws.send_message("echo")
        assert await ws.get_message() == "echo"
    assert trio.current_time() - start == pytest.approx(0.0)
    assert ws.closed is not None and ws.closed.name == "NORMAL_CLOSURE"
