"""The in-memory backend: streams, datagram paths, in-memory servers and the
fake clock. Every test runs under ``memory.run``: timeouts must end at
exactly the virtual time asked for, in (almost) no real time."""

from __future__ import annotations

import ssl
import time
from collections.abc import Awaitable
from typing import Any

import pytest
import trio

from webwire._backends._common import WRITE_CHUNK
from webwire._backends.memory import (
    LinkConditions,
    MemoryBackend,
    MemoryDatagramSocket,
    MemoryStream,
    datagram_pair,
    memory_test,
    run,
    settle,
    stream_pair,
)
from webwire._exceptions import (
    ConnectError,
    ConnectTimeout,
    ReadError,
    ReadTimeout,
    WriteError,
    WriteTimeout,
)

REAL_TIME_LIMIT = 0.5
"""Seconds of real time a test of many virtual seconds may take at most."""


@pytest.fixture
def backend() -> MemoryBackend:
    return MemoryBackend()


async def read_exactly(stream: MemoryStream, size: int) -> bytes:
    data = bytearray()
    while len(data) < size:
        chunk = await stream.read(size - len(data), None)
        assert chunk, f"EOF after {len(data)} of {size} bytes"
        data += chunk
    return bytes(data)


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


# -- the clock and run() ---------------------------------------------------------


@memory_test
async def test_clock_starts_at_zero_and_sleep_takes_no_real_time(backend: MemoryBackend) -> None:
    assert backend.name == "memory"
    assert backend.monotonic() == 0.0
    elapsed = Elapsed(backend)
    await backend.sleep(3600.0)
    assert elapsed.virtual == 3600.0
    assert elapsed.real < REAL_TIME_LIMIT


def test_run_returns_the_result_and_passes_arguments() -> None:
    async def add(a: int, b: int) -> int:
        await trio.sleep(1.0)
        return a + b

    assert run(add, 2, 3) == 5


def test_run_raises_what_the_function_raised() -> None:
    async def fail() -> None:
        raise KeyError("boom")

    with pytest.raises(KeyError, match="boom"):
        run(fail)


def test_failing_handler_fails_the_run() -> None:
    backend = MemoryBackend()

    async def handler(stream: MemoryStream) -> None:
        await stream.read(10, None)
        raise RuntimeError("handler broke")

    backend.serve_tcp("example.test", 80, handler)

    async def main() -> None:
        stream = await backend.connect_tcp("example.test", 80, timeout=1.0)
        await stream.write(b"x", None)
        await trio.sleep_forever()

    with pytest.raises(RuntimeError, match="handler broke"):
        run(main)


def test_handlers_need_run() -> None:
    backend = MemoryBackend()

    async def handler(stream: MemoryStream) -> None:
        pass

    backend.serve_tcp("example.test", 80, handler)

    async def main() -> None:
        await backend.connect_tcp("example.test", 80, timeout=1.0)

    with pytest.raises(RuntimeError, match=r"memory\.run"):
        trio.run(main)


@memory_test
async def test_inherited_primitives_use_the_fake_clock(backend: MemoryBackend) -> None:
    elapsed = Elapsed(backend)
    event = backend.create_event()
    assert await event.wait(7.0) is False
    event.set()
    event.clear()
    assert await event.wait(1.0) is False
    semaphore = backend.create_semaphore(1)
    assert await semaphore.acquire(1.0) is True
    assert await semaphore.acquire(2.0) is False
    lock = backend.create_lock()

    async def hold_lock() -> None:
        async with lock:
            await backend.sleep(1.0)

    async with trio.open_nursery() as nursery:
        nursery.start_soon(hold_lock)
        await settle()
        assert await lock.acquire(0.5) is False
    assert elapsed.virtual == pytest.approx(11.0)
    assert await lock.acquire(1.0) is True
    lock.release()
    channel = backend.create_channel(1)
    assert await channel.send("a", 1.0) is True
    assert await channel.send("b", 3.0) is False
    assert await channel.receive(1.0) == "a"
    with pytest.raises(ReadTimeout):
        await channel.receive(2.0)
    assert elapsed.virtual == pytest.approx(16.0)
    assert elapsed.real < REAL_TIME_LIMIT


@memory_test
async def test_task_groups_run_on_the_fake_clock(backend: MemoryBackend) -> None:
    finished: list[float] = []

    async def nap(seconds: float) -> None:
        await backend.sleep(seconds)
        finished.append(backend.monotonic())

    async with backend.create_task_group() as group:
        group.start_soon(nap, 2.0)
        group.start_soon(nap, 1.0)
    assert finished == [1.0, 2.0]


# -- streams -----------------------------------------------------------------------


@memory_test
async def test_stream_carries_data_both_ways() -> None:
    client, server = stream_pair()
    await client.write(b"hello", None)
    assert await server.read(100, None) == b"hello"
    await server.write(b"world" * 1000, 1.0)
    assert await read_exactly(client, 5000) == b"world" * 1000
    assert client.get_extra_info("sockname") == server.get_extra_info("peername")
    assert client.get_extra_info("peername") == server.get_extra_info("sockname")
    assert client.get_extra_info("socket") is None
    assert client.peer is server and server.peer is client


@memory_test
async def test_read_returns_at_most_max_bytes_without_waiting() -> None:
    client, server = stream_pair()
    await client.write(b"abcdef", None)
    assert await server.read(4, 0) == b"abcd"
    assert await server.read(4, 0) == b"ef"
    with pytest.raises(ValueError):
        await server.read(0, None)


@memory_test
async def test_read_waits_for_data(backend: MemoryBackend) -> None:
    client, server = stream_pair()

    async def later() -> None:
        await backend.sleep(1.25)
        await server.write(b"late", None)

    elapsed = Elapsed(backend)
    async with trio.open_nursery() as nursery:
        nursery.start_soon(later)
        assert await client.read(100, 5.0) == b"late"
    assert elapsed.virtual == 1.25


@memory_test
async def test_read_timeout_fires_at_the_exact_virtual_time(backend: MemoryBackend) -> None:
    client, _server = stream_pair()
    await backend.sleep(0.5)
    elapsed = Elapsed(backend)
    with pytest.raises(ReadTimeout, match=r"2\.5 seconds"):
        await client.read(100, 2.5)
    assert elapsed.virtual == pytest.approx(2.5, abs=1e-9)
    assert elapsed.real < REAL_TIME_LIMIT
    with pytest.raises(ReadTimeout):
        await client.read(100, 0)
    assert elapsed.virtual == pytest.approx(2.5, abs=1e-9)


@memory_test
async def test_graceful_close_reads_eof_after_the_data() -> None:
    client, server = stream_pair()
    await server.write(b"last words", None)
    await server.aclose()
    await server.aclose()  # idempotent
    assert server.closed
    assert client.is_readable()
    assert await client.read(100, 1.0) == b"last words"
    assert await client.read(100, 1.0) == b""
    assert await client.read(100, 1.0) == b""
    with pytest.raises(WriteError, match="broken pipe"):
        await client.write(b"anyone?", 1.0)
    with pytest.raises(ReadError):
        await server.read(100, 1.0)
    with pytest.raises(WriteError):
        await server.write(b"x", 1.0)


@memory_test
async def test_abort_resets_the_connection() -> None:
    client, server = stream_pair()
    await server.write(b"partial", None)
    server.abort()
    server.abort()  # idempotent
    assert client.is_readable()
    assert await client.read(100, 1.0) == b"partial"
    with pytest.raises(ReadError, match="reset"):
        await client.read(100, 1.0)
    with pytest.raises(WriteError, match="reset"):
        await client.write(b"x", 1.0)


@memory_test
async def test_abort_wakes_blocked_readers_and_writers(backend: MemoryBackend) -> None:
    client, server = stream_pair(buffer_size=4)
    idle_client, _idle_server = stream_pair()
    errors: list[str] = []

    async def expect(error: type[Exception], operation: Awaitable[Any]) -> None:
        with pytest.raises(error):
            await operation
        errors.append(error.__name__)

    elapsed = Elapsed(backend)
    async with trio.open_nursery() as nursery:
        nursery.start_soon(expect, WriteError, client.write(b"more than four bytes", None))
        nursery.start_soon(expect, WriteError, server.write(b"more than four bytes", None))
        nursery.start_soon(expect, ReadError, idle_client.read(10, None))
        await backend.sleep(1.0)
        client.abort()  # this end's writer and the peer's writer fail
        idle_client.abort()  # this end's reader fails
    assert sorted(errors) == ["ReadError", "WriteError", "WriteError"]
    assert elapsed.virtual == 1.0


@memory_test
async def test_write_back_pressure_and_write_timeout(backend: MemoryBackend) -> None:
    client, server = stream_pair(buffer_size=10)
    await client.write(b"0123456789", 1.0)  # fits: no wait
    assert client.buffered == 10
    elapsed = Elapsed(backend)
    with pytest.raises(WriteTimeout, match=r"1\.5 seconds"):
        await client.write(b"x", 1.5)
    assert elapsed.virtual == pytest.approx(1.5, abs=1e-9)
    assert elapsed.real < REAL_TIME_LIMIT

    received = bytearray()

    async def slow_reader() -> None:
        while len(received) < 35:
            await backend.sleep(1.0)
            received.extend(await server.read(10, None))

    elapsed = Elapsed(backend)
    async with trio.open_nursery() as nursery:
        nursery.start_soon(slow_reader)
        await client.write(b"a" * 25, 5.0)  # waits for three reads
        assert elapsed.virtual == pytest.approx(3.0)
    assert bytes(received) == b"0123456789" + b"a" * 25


@memory_test
async def test_large_write_gets_a_timeout_per_piece(backend: MemoryBackend) -> None:
    client, server = stream_pair(buffer_size=WRITE_CHUNK)
    payload = bytes(range(256)) * (3 * WRITE_CHUNK // 256)
    received = bytearray()

    async def reader() -> None:
        while len(received) < len(payload):
            await backend.sleep(0.75)
            received.extend(await server.read(WRITE_CHUNK, None))

    elapsed = Elapsed(backend)
    async with trio.open_nursery() as nursery:
        nursery.start_soon(reader)
        # 2.25 s in all, but each 256 KiB piece fits within 1 s.
        await client.write(payload, 1.0)
    assert elapsed.virtual > 1.0
    assert bytes(received) == payload


@memory_test
async def test_send_eof_half_closes() -> None:
    client, server = stream_pair()
    await client.write(b"request", None)
    await client.send_eof()
    await client.send_eof()  # idempotent
    assert await server.read(100, 1.0) == b"request"
    assert await server.read(100, 1.0) == b""
    await server.write(b"response", 1.0)  # the other direction stays open
    assert await client.read(100, 1.0) == b"response"
    with pytest.raises(WriteError, match="shut down"):
        await client.write(b"more", 1.0)
    await client.aclose()
    with pytest.raises(WriteError):
        await client.send_eof()


@memory_test
async def test_is_readable() -> None:
    client, server = stream_pair()
    assert not client.is_readable()
    await server.write(b"x", None)
    assert client.is_readable()
    await client.read(1, None)
    assert not client.is_readable()
    await server.send_eof()
    assert client.is_readable()


@memory_test
async def test_only_one_reader_and_one_writer_at_a_time(backend: MemoryBackend) -> None:
    client, _server = stream_pair(buffer_size=1)
    ended: list[str] = []

    async def ends_with(error: type[Exception], operation: Awaitable[Any]) -> None:
        with pytest.raises(error):
            await operation
        ended.append(error.__name__)

    async with trio.open_nursery() as nursery:
        nursery.start_soon(ends_with, ReadError, client.read(10, None))
        nursery.start_soon(ends_with, WriteError, client.write(b"xy", None))
        await settle()
        with pytest.raises(ReadError, match="already reading"):
            await client.read(10, None)
        with pytest.raises(WriteError, match="already writing"):
            await client.write(b"z", None)
        client.abort()
    assert sorted(ended) == ["ReadError", "WriteError"]


@memory_test
async def test_start_tls_reports_sni_and_alpn() -> None:
    client, server = stream_pair(alpn="h2")
    assert client.get_extra_info("alpn_protocol") is None
    assert client.get_extra_info("ssl_object") is None
    context = ssl.create_default_context()
    tls = await client.start_tls(context, "example.test", 5.0)
    assert tls is client
    assert client.tls and server.tls
    assert client.ssl_context is context
    assert client.get_extra_info("alpn_protocol") == "h2"
    client_tls = client.get_extra_info("ssl_object")
    assert client_tls.selected_alpn_protocol() == "h2"
    assert client_tls.version() == "TLSv1.3"
    assert client_tls.server_hostname == "example.test"
    assert not client_tls.server_side
    assert server.server_hostname == "example.test"
    assert server.get_extra_info("ssl_object").server_side
    with pytest.raises(WriteError, match="half-close"):
        await client.send_eof()
    await client.write(b"still works", None)
    assert await server.read(100, None) == b"still works"


@memory_test
async def test_start_tls_on_a_closed_connection_fails() -> None:
    client, server = stream_pair()
    await server.aclose()
    with pytest.raises(ConnectError, match="TLS"):
        await client.start_tls(ssl.create_default_context(), "example.test", 5.0)
    assert client.closed


def test_stream_pair_rejects_an_empty_buffer() -> None:
    with pytest.raises(ValueError):
        stream_pair(buffer_size=0)


# -- in-memory servers -------------------------------------------------------------


async def echo(stream: MemoryStream) -> None:
    while data := await stream.read(65536, None):
        await stream.write(data, None)


@memory_test
async def test_connect_tcp_reaches_the_registered_handler(backend: MemoryBackend) -> None:
    listener = backend.serve_tcp("Example.Test", 8080, echo)
    stream = await backend.connect_tcp("example.test", 8080, timeout=1.0)
    await stream.write(b"ping", None)
    assert await stream.read(100, 1.0) == b"ping"
    assert listener.accepted == 1
    assert stream.get_extra_info("peername") == ("example.test", 8080)
    assert stream.get_extra_info("alpn_protocol") is None
    assert listener.connections[0].get_extra_info("sockname") == ("example.test", 8080)
    await stream.aclose()
    await settle()
    assert listener.open_connections() == []  # the handler saw EOF and returned


@memory_test
async def test_connect_tcp_with_tls_uses_the_registered_alpn(backend: MemoryBackend) -> None:
    listener = backend.serve_tcp("example.test", 443, echo, alpn="h2")
    context = ssl.create_default_context()
    stream = await backend.connect_tcp(
        "example.test", 443, timeout=1.0, ssl_context=context, server_hostname="sni.test"
    )
    assert stream.get_extra_info("alpn_protocol") == "h2"
    server = listener.connections[0]
    assert server.tls and server.server_hostname == "sni.test"
    other = await backend.connect_tcp("example.test", 443, timeout=1.0, ssl_context=context)
    assert listener.connections[1].server_hostname == "example.test"
    stream.abort()
    other.abort()


@memory_test
async def test_connect_refused(backend: MemoryBackend) -> None:
    with pytest.raises(ConnectError, match="refused"):
        await backend.connect_tcp("example.test", 80, timeout=1.0)
    listener = backend.serve_tcp("example.test", 80, echo)
    with pytest.raises(ValueError, match="already"):
        backend.serve_tcp("example.test", 80, echo)
    (await backend.connect_tcp("example.test", 80, timeout=1.0)).abort()
    listener.close()
    with pytest.raises(ConnectError, match="refused"):
        await backend.connect_tcp("example.test", 80, timeout=1.0)
    with pytest.raises(ConnectError, match="port"):
        await backend.connect_tcp("example.test", 0, timeout=1.0)
    assert backend.monotonic() == 0.0


@memory_test
async def test_silent_server_times_connect_out(backend: MemoryBackend) -> None:
    backend.serve_tcp("example.test", 80, echo, silent=True)
    elapsed = Elapsed(backend)
    with pytest.raises(ConnectTimeout, match=r"example\.test:80"):
        await backend.connect_tcp("example.test", 80, timeout=3.0)
    assert elapsed.virtual == 3.0
    assert elapsed.real < REAL_TIME_LIMIT


@memory_test
async def test_connect_delay(backend: MemoryBackend) -> None:
    backend.serve_tcp("example.test", 80, echo, connect_delay=0.25)
    elapsed = Elapsed(backend)
    stream = await backend.connect_tcp("example.test", 80, timeout=1.0)
    assert elapsed.virtual == 0.25
    stream.abort()
    with pytest.raises(ConnectTimeout):
        await backend.connect_tcp("example.test", 80, timeout=0.1)
    assert elapsed.virtual == pytest.approx(0.35)


@memory_test
async def test_server_without_handler_never_reads(backend: MemoryBackend) -> None:
    listener = backend.serve_tcp("example.test", 80, buffer_size=100)
    stream = await backend.connect_tcp("example.test", 80, timeout=1.0)
    await stream.write(b"x" * 100, 1.0)
    elapsed = Elapsed(backend)
    with pytest.raises(WriteTimeout):
        await stream.write(b"y", 2.0)
    assert elapsed.virtual == 2.0
    assert listener.connections[0].is_readable()
    stream.abort()


@memory_test
async def test_connect_unix(backend: MemoryBackend) -> None:
    with pytest.raises(ConnectError, match="no such socket"):
        await backend.connect_unix("/run/app.sock", timeout=1.0)
    listener = backend.serve_unix("/run/app.sock", echo)
    stream = await backend.connect_unix("/run/app.sock", timeout=1.0)
    await stream.write(b"over unix", None)
    assert await stream.read(100, 1.0) == b"over unix"
    assert stream.get_extra_info("peername") == "/run/app.sock"
    assert listener.accepted == 1
    await stream.aclose()
    backend.serve_unix("/run/silent.sock", silent=True)
    elapsed = Elapsed(backend)
    with pytest.raises(ConnectTimeout, match=r"silent\.sock"):
        await backend.connect_unix("/run/silent.sock", timeout=0.5)
    assert elapsed.virtual == 0.5


@memory_test
async def test_open_connections_count_leaks(backend: MemoryBackend) -> None:
    backend.serve_tcp("example.test", 80, echo)
    backend.serve_udp("192.0.2.1", 443)
    first = await backend.connect_tcp("example.test", 80, timeout=1.0)
    second = await backend.connect_tcp("example.test", 80, timeout=1.0)
    udp = await backend.connect_udp(("192.0.2.1", 443))
    assert backend.open_connections() == [first, second, udp]
    assert (backend.connections_opened, backend.connections_closed) == (3, 0)
    await first.aclose()
    second.abort()
    await udp.aclose()
    await first.aclose()
    assert backend.open_connections() == []
    assert (backend.connections_opened, backend.connections_closed) == (3, 3)


@memory_test
async def test_client_reset_ends_the_handler_quietly(backend: MemoryBackend) -> None:
    done: list[str] = []

    async def handler(stream: MemoryStream) -> None:
        try:
            await stream.read(100, None)
        finally:
            done.append("handler ended")

    listener = backend.serve_tcp("example.test", 80, handler)
    stream = await backend.connect_tcp("example.test", 80, timeout=1.0)
    await settle()
    stream.abort()
    await settle()
    assert done == ["handler ended"]
    assert listener.connections[0].closed


# -- datagrams -----------------------------------------------------------------------


async def receive_all(sock: MemoryDatagramSocket, timeout: float = 1.0) -> list[bytes]:
    received: list[bytes] = []
    while True:
        try:
            received.append(await sock.receive(timeout))
        except ReadTimeout:
            return received


@memory_test
async def test_datagrams_both_ways() -> None:
    first, second = datagram_pair()
    await first.send(b"one")
    await first.send(b"")
    await second.send(b"two")
    assert await second.receive(0) == b"one"
    assert await second.receive(0) == b""
    assert await first.receive(0) == b"two"
    assert first.get_extra_info("peername") == second.get_extra_info("sockname")
    assert first.get_extra_info("socket") is None
    assert (first.sent, second.received) == (2, 2)


@memory_test
async def test_datagrams_dropped_by_index() -> None:
    first, second = datagram_pair(drop=[1, 3])
    for index in range(6):
        await first.send(b"%d" % index)
        await second.send(b"%d" % index)  # no drops on the way back
    assert await receive_all(second) == [b"0", b"2", b"4", b"5"]
    assert len(await receive_all(first)) == 6
    assert (first.sent, first.dropped, second.dropped) == (6, 2, 0)


def test_random_loss_is_reproducible_with_a_seed() -> None:
    async def pattern(seed: int) -> list[bytes]:
        first, second = datagram_pair(loss=0.3, seed=seed)
        for index in range(1000):
            await first.send(b"%d" % index)
        return await receive_all(second, 0)

    once = run(pattern, 7)
    assert 600 < len(once) < 800
    assert run(pattern, 7) == once
    assert run(pattern, 8) != once


@memory_test
async def test_one_way_delay_on_the_fake_clock(backend: MemoryBackend) -> None:
    first, second = datagram_pair(delay=0.25)
    elapsed = Elapsed(backend)
    await first.send(b"ping")
    with pytest.raises(ReadTimeout):
        await second.receive(0.1)  # still in flight
    assert elapsed.virtual == pytest.approx(0.1)
    assert await second.receive(1.0) == b"ping"
    assert elapsed.virtual == pytest.approx(0.25)
    await second.send(b"pong")
    assert await first.receive(None) == b"pong"
    assert elapsed.virtual == pytest.approx(0.5)
    assert elapsed.real < REAL_TIME_LIMIT


@memory_test
async def test_jitter_reorders() -> None:
    first, second = datagram_pair(delay=0.1, jitter=1.0, seed=3)
    sent = [b"%02d" % index for index in range(20)]
    for payload in sent:
        await first.send(payload)
    received = await receive_all(second, 2.0)
    assert sorted(received) == sent
    assert received != sent


@memory_test
async def test_reverse_conditions() -> None:
    first, second = datagram_pair(delay=1.0, reverse=LinkConditions(loss=1.0))
    await second.send(b"lost")
    await first.send(b"slow")
    assert await second.receive(2.0) == b"slow"
    with pytest.raises(ReadTimeout):
        await first.receive(5.0)
    assert second.dropped == 1


@memory_test
async def test_changing_conditions_mid_test() -> None:
    first, second = datagram_pair()
    await first.send(b"before")
    first.conditions = LinkConditions(loss=1.0)  # partition
    await first.send(b"during")
    first.conditions = LinkConditions()
    await first.send(b"after")
    assert await receive_all(second) == [b"before", b"after"]


@memory_test
async def test_datagram_receive_timeout_and_close(backend: MemoryBackend) -> None:
    first, second = datagram_pair()
    elapsed = Elapsed(backend)
    with pytest.raises(ReadTimeout, match=r"4\.0 seconds"):
        await first.receive(4.0)
    assert elapsed.virtual == 4.0
    errors: list[Exception] = []

    async def receiver() -> None:
        try:
            await first.receive(None)
        except ReadError as exc:
            errors.append(exc)

    async with trio.open_nursery() as nursery:
        nursery.start_soon(receiver)
        await backend.sleep(1.0)
        await first.aclose()
    assert len(errors) == 1
    with pytest.raises(WriteError):
        await first.send(b"x")
    await second.send(b"to a closed socket")  # dropped silently, as UDP does
    assert second.dropped == 1
    with pytest.raises(WriteError, match="too long"):
        await second.send(b"x" * 65_508)


def test_link_conditions_are_validated() -> None:
    with pytest.raises(ValueError):
        LinkConditions(loss=1.5)
    with pytest.raises(ValueError):
        LinkConditions(delay=-1.0)
    with pytest.raises(ValueError):
        LinkConditions(queue_size=0)
    assert LinkConditions(drop=[1, 1, 2]).drop == frozenset({1, 2})


@memory_test
async def test_udp_server(backend: MemoryBackend) -> None:
    async def udp_echo(sock: MemoryDatagramSocket) -> None:
        while True:
            await sock.send(await sock.receive())

    listener = backend.serve_udp("192.0.2.1", 443, udp_echo, drop=[0], delay=0.5)
    with pytest.raises(ConnectError, match="refused"):
        await backend.connect_udp(("192.0.2.2", 443))
    with pytest.raises(ConnectError, match="IP literal"):
        await backend.connect_udp(("udp.test", 443))
    sock = await backend.connect_udp(("192.0.2.1", 443), ("0.0.0.0", 0))
    assert sock.get_extra_info("peername") == ("192.0.2.1", 443)
    assert sock.get_extra_info("sockname")[1] > 0
    elapsed = Elapsed(backend)
    await sock.send(b"lost")
    await sock.send(b"echoed")
    assert await sock.receive(5.0) == b"echoed"
    assert elapsed.virtual == pytest.approx(1.0)  # there and back
    assert listener.accepted == 1
    await sock.aclose()


@memory_test
async def test_silent_udp_server(backend: MemoryBackend) -> None:
    backend.serve_udp("192.0.2.1", 443, silent=True)
    sock = await backend.connect_udp(("192.0.2.1", 443))
    await sock.send(b"into the void")
    with pytest.raises(ReadTimeout):
        await sock.receive(1.0)
    assert isinstance(sock, MemoryDatagramSocket)
    assert sock.dropped == 1


# -- the decorator -----------------------------------------------------------------


def test_memory_test_passes_arguments_through() -> None:
    seen: list[tuple[int, str, float]] = []

    async def body(value: int, *, other: str) -> int:
        await trio.sleep(2.0)
        seen.append((value, other, trio.current_time()))
        return value

    wrapped = memory_test(body)
    assert wrapped(1, other="x") == 1
    assert seen == [(1, "x", 2.0)]
    assert getattr(wrapped, "__wrapped__", None) is body
