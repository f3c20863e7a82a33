"""Connection pool timing on the in-memory backend: keep-alive expiry, the
idle-connection cap, pool, read, connect and total timeouts.

A small HTTP/1.1 responder, registered with ``MemoryBackend.serve_tcp``,
answers ``webwire.AsyncClient`` over in-memory streams; the fake clock of
``memory.run`` makes every wait exact and instantaneous. The responder
numbers the connections it accepts, so reuse is observed from the server's
side, through the public client API only.
"""

from __future__ import annotations

import math
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import pytest
import trio

import webwire
from webwire._backends.memory import MemoryBackend, MemoryStream, memory_test, settle

HOST = "pool.test"
URL = f"http://{HOST}"

REAL_TIME_LIMIT = 1.0
"""Real seconds a test of many virtual seconds may take at most."""

DRIP_INTERVAL = 0.4
"""Seconds between the bytes of ``/drip``."""


class Responder:
    """A minimal HTTP/1.1 server: reads request heads up to ``\\r\\n\\r\\n``
    (requests carry no body) and answers by path:

    * ``/conn``: 200, the connection's number (1 for the first accepted).
    * ``/close``: like ``/conn``, then closes the connection.
    * ``/never``: never answers.
    * ``/drip``: 200 with ``Content-Length: 100``, one byte every
      ``DRIP_INTERVAL`` seconds.

    Attributes:
        accepted: Connections accepted so far.
        open: Connections whose handler is still running.
        sent: Body bytes written by ``/drip``.
    """

    def __init__(self, backend: MemoryBackend) -> None:
        self.backend = backend
        self.accepted = 0
        self.open = 0
        self.sent = 0

    async def __call__(self, stream: MemoryStream) -> None:
        self.accepted += 1
        number = self.accepted
        self.open += 1
        try:
            buffer = b""
            while True:
                while b"\r\n\r\n" not in buffer:
                    data = await stream.read(65536, None)
                    if not data:
                        return
                    buffer += data
                head, _, buffer = buffer.partition(b"\r\n\r\n")
                target = head.split(b"\r\n", 1)[0].split(b" ")[1]
                if not await self.answer(stream, target, number):
                    return
        finally:
            self.open -= 1

    async def answer(self, stream: MemoryStream, target: bytes, number: int) -> bool:
        """Answer one request; ``False`` to close the connection."""
        if target == b"/never":
            await self.backend.sleep(math.inf)
        if target == b"/drip":
            await stream.write(b"HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\n", None)
            for _ in range(100):
                await self.backend.sleep(DRIP_INTERVAL)
                await stream.write(b"x", None)
                self.sent += 1
            return True
        body = str(number).encode()
        await stream.write(
            b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n%s" % (len(body), body), None
        )
        return target != b"/close"


class Elapsed:
    """Virtual and real seconds since creation."""

    def __init__(self, backend: MemoryBackend) -> None:
        self.backend = backend
        self.virtual_start = backend.monotonic()
        self.real_start = time.perf_counter()

    @property
    def virtual(self) -> float:
        return self.backend.monotonic() - self.virtual_start

    @property
    def real(self) -> float:
        return time.perf_counter() - self.real_start


@pytest.fixture
def backend() -> MemoryBackend:
    return MemoryBackend()


@pytest.fixture
def responder(backend: MemoryBackend) -> Responder:
    responder = Responder(backend)
    backend.serve_tcp(HOST, 80, responder)
    return responder


@asynccontextmanager
async def open_client(backend: MemoryBackend, **options: Any) -> AsyncIterator[webwire.AsyncClient]:
    """An ``AsyncClient`` on ``backend``; on exit, asserts that it left no
    connection open."""
    async with webwire.AsyncClient(_backend=backend, **options) as client:
        yield client
    assert backend.open_connections() == []


async def connection_number(client: webwire.AsyncClient, path: str = "/conn") -> int:
    """The responder's number of the connection that carried a GET."""
    response = await client.get(f"{URL}{path}")
    assert response.status_code == 200
    return int(response.text)


@memory_test
async def test_keepalive_expiry(backend: MemoryBackend, responder: Responder) -> None:
    limits = webwire.Limits(keepalive_expiry=5.0)
    elapsed = Elapsed(backend)
    async with open_client(backend, limits=limits) as client:
        assert await connection_number(client) == 1
        assert await connection_number(client) == 1  # reused while fresh
        await backend.sleep(4.9)
        assert await connection_number(client) == 1  # idle 4.9 s < 5 s
        await backend.sleep(5.1)
        assert await connection_number(client) == 2  # expired: a new one
        await settle()
        assert responder.open == 1  # the expired connection was closed
    assert responder.accepted == 2
    assert elapsed.virtual == pytest.approx(10.0)
    assert elapsed.real < REAL_TIME_LIMIT


@memory_test
async def test_max_keepalive_connections(backend: MemoryBackend, responder: Responder) -> None:
    limits = webwire.Limits(max_connections=4, max_keepalive_connections=1)
    async with open_client(backend, limits=limits) as client:
        async with (
            client.stream("GET", f"{URL}/conn") as a,
            client.stream("GET", f"{URL}/conn") as b,
        ):
            assert responder.accepted == 2
            numbers = {int(await a.aread()), int(await b.aread())}
        assert numbers == {1, 2}
        await settle()
        assert responder.open == 1  # the second idle connection was closed
        kept = await connection_number(client)
        assert kept in numbers
        assert await connection_number(client) == kept
        assert responder.accepted == 2


@memory_test
async def test_pool_timeout(backend: MemoryBackend, responder: Responder) -> None:
    limits = webwire.Limits(max_connections=1)
    timeout = webwire.Timeout(5.0, pool=0.5)
    async with open_client(backend, limits=limits, timeout=timeout) as client:
        async with client.stream("GET", f"{URL}/conn") as held:
            elapsed = Elapsed(backend)
            with pytest.raises(webwire.PoolTimeout):
                await client.get(f"{URL}/conn")
            assert elapsed.virtual == pytest.approx(0.5, abs=1e-9)
            assert elapsed.real < REAL_TIME_LIMIT
            await held.aread()
        assert await connection_number(client) == 1  # the freed connection
    assert responder.accepted == 1


@memory_test
async def test_waiting_request_gets_the_released_connection(
    backend: MemoryBackend, responder: Responder
) -> None:
    limits = webwire.Limits(max_connections=1)
    timeout = webwire.Timeout(5.0, pool=3.0)
    numbers: list[int] = []

    async def waiter() -> None:
        numbers.append(await connection_number(client))

    async with open_client(backend, limits=limits, timeout=timeout) as client:
        elapsed = Elapsed(backend)
        async with client.stream("GET", f"{URL}/conn") as held:
            async with trio.open_nursery() as nursery:
                nursery.start_soon(waiter)
                await backend.sleep(2.0)
                await held.aread()
                await held.aclose()
        assert numbers == [1]
        assert elapsed.virtual == pytest.approx(2.0)
    assert responder.accepted == 1


@memory_test
async def test_read_timeout(backend: MemoryBackend, responder: Responder) -> None:
    timeout = webwire.Timeout(5.0, read=2.0)
    async with open_client(backend, timeout=timeout) as client:
        elapsed = Elapsed(backend)
        with pytest.raises(webwire.ReadTimeout):
            await client.get(f"{URL}/never")
        assert elapsed.virtual == pytest.approx(2.0, abs=1e-9)
        assert elapsed.real < REAL_TIME_LIMIT
        # The timed-out connection is not reused.
        assert await connection_number(client) == 2


@memory_test
async def test_total_timeout_stops_a_slow_drip(
    backend: MemoryBackend, responder: Responder
) -> None:
    # Each byte comes within the 1 s read timeout; only the total bound
    # (3 s) stops the body.
    timeout = webwire.Timeout(5.0, read=1.0, total=3.0)
    async with open_client(backend, timeout=timeout) as client:
        elapsed = Elapsed(backend)
        with pytest.raises(webwire.ReadTimeout):
            await client.get(f"{URL}/drip")
        assert elapsed.virtual == pytest.approx(3.0, abs=1e-9)
        assert elapsed.real < REAL_TIME_LIMIT
    assert responder.sent == int(3.0 / DRIP_INTERVAL)


@memory_test
async def test_connect_timeout(backend: MemoryBackend) -> None:
    backend.serve_tcp(HOST, 80, silent=True)
    timeout = webwire.Timeout(5.0, connect=1.5)
    async with open_client(backend, timeout=timeout) as client:
        elapsed = Elapsed(backend)
        with pytest.raises(webwire.ConnectTimeout):
            await client.get(f"{URL}/conn")
        assert elapsed.virtual == pytest.approx(1.5, abs=1e-9)


@memory_test
async def test_connection_closed_by_the_server_is_replaced(
    backend: MemoryBackend, responder: Responder
) -> None:
    async with open_client(backend) as client:
        assert await connection_number(client, "/close") == 1
        await settle()
        assert responder.open == 0
        assert await connection_number(client) == 2
        assert await connection_number(client) == 2
