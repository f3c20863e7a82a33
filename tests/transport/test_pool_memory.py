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


# -- DNS cache, trace signals, connections per host ---------------------------


class Recorder:
    """A trace hook that records ``(signal, params, virtual time)``."""

    def __init__(self, backend: MemoryBackend, fail_on: str | None = None) -> None:
        self.backend = backend
        self.fail_on = fail_on
        self.events: list[tuple[str, dict[str, Any]]] = []

    async def __call__(self, signal: str, params: dict[str, Any]) -> None:
        self.events.append((signal, params))
        if signal == self.fail_on:
            raise RuntimeError(f"trace hook failed on {signal}")

    def signals(self) -> list[str]:
        names = [name for name, _ in self.events]
        self.events.clear()
        return names


@memory_test
async def test_dns_cache_ttl_on_the_fake_clock(
    backend: MemoryBackend, responder: Responder
) -> None:
    """Entries live exactly ``dns_cache_ttl`` seconds from the end of their
    resolution; ``/close`` makes every request open a new connection."""
    backend.resolve_delay = 0.25
    trace = Recorder(backend)
    limits = webwire.Limits(dns_cache_ttl=10.0)
    async with open_client(backend, limits=limits) as client:
        start = backend.monotonic()

        async def get() -> None:
            response = await client.get(f"{URL}/close", extensions={"trace": trace})
            assert response.status_code == 200

        await get()  # resolved at 0.25: the entry lives until 10.25
        assert trace.signals() == [
            "connection_create_start",
            "dns_cache_miss",
            "dns_resolvehost_start",
            "dns_resolvehost_end",
            "connection_create_end",
        ]
        assert backend.monotonic() - start == pytest.approx(0.25)
        await backend.sleep(9.99)  # 10.24
        await get()
        assert trace.signals() == [
            "connection_create_start",
            "dns_cache_hit",
            "connection_create_end",
        ]
        await backend.sleep(0.01)  # 10.25: expired
        await get()
        assert trace.signals()[1:3] == ["dns_cache_miss", "dns_resolvehost_start"]
        assert backend.resolutions == [(HOST, 80), (HOST, 80)]
        # The cached addresses were handed to the backend every time.
        assert [host for host, _ in backend.connect_addresses] == [HOST] * 3
    assert responder.accepted == 3


@memory_test
async def test_dns_signals_carry_the_host(backend: MemoryBackend, responder: Responder) -> None:
    trace = Recorder(backend)
    async with open_client(backend) as client:
        await client.get(f"{URL}/conn", extensions={"trace": trace})
    dns = [params for name, params in trace.events if name.startswith("dns_")]
    assert dns == [{"host": HOST}] * 3


@memory_test
async def test_dns_cache_disabled(backend: MemoryBackend, responder: Responder) -> None:
    """``dns_cache_ttl=None``: every connection resolves; the trace still
    sees each resolution, no cache signal."""
    trace = Recorder(backend)
    limits = webwire.Limits(dns_cache_ttl=None)
    async with open_client(backend, limits=limits) as client:
        for _ in range(2):
            await client.get(f"{URL}/close", extensions={"trace": trace})
        assert trace.signals() == [
            "connection_create_start",
            "dns_resolvehost_start",
            "dns_resolvehost_end",
            "connection_create_end",
        ] * 2
        assert len(backend.resolutions) == 2
        # Without a trace hook the backend resolves by itself.
        await client.get(f"{URL}/close")
        assert len(backend.resolutions) == 2
        assert len(backend.connect_addresses) == 2


@memory_test
async def test_dns_entry_dropped_when_its_addresses_fail(backend: MemoryBackend) -> None:
    listener = backend.serve_tcp(HOST, 80, Responder(backend))
    async with open_client(backend) as client:
        assert await connection_number(client, "/close") == 1
        listener.close()
        backend._tcp.clear()
        with pytest.raises(webwire.ConnectError):
            await client.get(f"{URL}/conn")
        backend.serve_tcp(HOST, 80, Responder(backend))
        await client.get(f"{URL}/close")
    # Resolved again after the failure instead of reusing the entry.
    assert backend.resolutions == [(HOST, 80), (HOST, 80)]


@memory_test
async def test_dns_resolution_counts_against_the_connect_timeout(
    backend: MemoryBackend, responder: Responder
) -> None:
    backend.resolve_delay = 5.0
    timeout = webwire.Timeout(10.0, connect=2.0)
    async with open_client(backend, timeout=timeout) as client:
        elapsed = Elapsed(backend)
        with pytest.raises(webwire.ConnectTimeout):
            await client.get(f"{URL}/conn")
        assert elapsed.virtual == pytest.approx(2.0)


@memory_test
async def test_trace_reuse_and_queue_signals(backend: MemoryBackend, responder: Responder) -> None:
    trace = Recorder(backend)
    limits = webwire.Limits(max_connections=1)
    async with open_client(backend, limits=limits) as client:
        await client.get(f"{URL}/conn", extensions={"trace": trace})
        trace.signals()
        await client.get(f"{URL}/conn", extensions={"trace": trace})
        assert trace.signals() == ["connection_reuseconn"]
        async with client.stream("GET", f"{URL}/conn") as held:
            waiter_done: list[str] = []

            async def waiter() -> None:
                await client.get(f"{URL}/conn", extensions={"trace": trace})
                waiter_done.append("done")

            async with trio.open_nursery() as nursery:
                nursery.start_soon(waiter)
                await backend.sleep(1.0)
                assert trace.signals() == ["connection_queued_start"]
                await held.aread()
                await held.aclose()
        assert waiter_done == ["done"]
        assert trace.signals() == ["connection_queued_end", "connection_reuseconn"]


@pytest.mark.parametrize(
    "signal", ["connection_reuseconn", "connection_create_end", "dns_cache_miss"]
)
@memory_test
async def test_failing_trace_hook_leaks_no_slot(
    backend: MemoryBackend, responder: Responder, signal: str
) -> None:
    limits = webwire.Limits(max_connections=1)
    timeout = webwire.Timeout(5.0, pool=1.0)
    async with open_client(backend, limits=limits, timeout=timeout) as client:
        await client.get(f"{URL}/conn")
        if signal != "connection_reuseconn":
            await client.aclose()
            return await _failing_hook_on_new_connection(backend, signal)
        with pytest.raises(RuntimeError, match=signal):
            await client.get(f"{URL}/conn", extensions={"trace": Recorder(backend, signal)})
        pool = client.transport.pool  # type: ignore[attr-defined]
        assert pool.connections_in_use() == 0
        assert (await client.get(f"{URL}/conn")).status_code == 200


async def _failing_hook_on_new_connection(backend: MemoryBackend, signal: str) -> None:
    limits = webwire.Limits(max_connections=1)
    timeout = webwire.Timeout(5.0, pool=1.0)
    async with open_client(backend, limits=limits, timeout=timeout) as client:
        with pytest.raises(RuntimeError, match=signal):
            await client.get(f"{URL}/conn", extensions={"trace": Recorder(backend, signal)})
        pool = client.transport.pool  # type: ignore[attr-defined]
        assert pool.connections_in_use() == 0
        # The one allowed connection is free again (no PoolTimeout).
        assert (await client.get(f"{URL}/conn")).status_code == 200


@memory_test
async def test_max_connections_per_host(backend: MemoryBackend, responder: Responder) -> None:
    other = Responder(backend)
    backend.serve_tcp("other.test", 80, other)
    limits = webwire.Limits(max_connections=10, max_connections_per_host=2)
    timeout = webwire.Timeout(5.0, pool=1.5)
    async with open_client(backend, limits=limits, timeout=timeout) as client:
        async with (
            client.stream("GET", f"{URL}/conn") as a,
            client.stream("GET", f"{URL}/conn") as b,
        ):
            # A third request to the same host waits, then times out...
            elapsed = Elapsed(backend)
            with pytest.raises(webwire.PoolTimeout, match="max_connections_per_host=2"):
                await client.get(f"{URL}/conn")
            assert elapsed.virtual == pytest.approx(1.5)
            # ...while another host is served at once.
            assert (await client.get("http://other.test/conn")).text == "1"
            await a.aread()
            await b.aread()
        # Freed: the next request reuses one of the two.
        assert await connection_number(client) in (1, 2)
        # A closed connection frees its place for a new one.
        assert await connection_number(client, "/close") in (1, 2)
        async with (
            client.stream("GET", f"{URL}/conn") as c,
            client.stream("GET", f"{URL}/conn") as d,
        ):
            assert responder.accepted == 3
            await c.aread()
            await d.aread()
    assert responder.accepted == 3


@memory_test
async def test_max_connections_per_host_waiter_gets_the_slot(
    backend: MemoryBackend, responder: Responder
) -> None:
    limits = webwire.Limits(max_connections_per_host=1)
    timeout = webwire.Timeout(5.0, pool=3.0)
    numbers: list[int] = []
    async with open_client(backend, limits=limits, timeout=timeout) as client:
        async with client.stream("GET", f"{URL}/conn") as held:

            async def waiter() -> None:
                numbers.append(await connection_number(client))

            async with trio.open_nursery() as nursery:
                nursery.start_soon(waiter)
                await backend.sleep(2.0)
                assert numbers == []
                await held.aread()
                await held.aclose()
    assert numbers == [1]


def test_limits_validation() -> None:
    with pytest.raises(ValueError, match="dns_cache_ttl"):
        webwire.Limits(dns_cache_ttl=-1.0)
    with pytest.raises(ValueError, match="max_connections_per_host"):
        webwire.Limits(max_connections_per_host=0)
    assert webwire.Limits().dns_cache_ttl == 10.0
    assert webwire.Limits().max_connections_per_host is None
