"""UDP sockets of the three backends against a loopback echo server,
written once and run on asyncio (also on uvloop), trio and (through
``run_sync``) the blocking backend."""

from __future__ import annotations

import os
import socket
import sys
from collections.abc import Callable, Coroutine
from typing import Any

import pytest

from webwire._backends import Backend, get_backend
from webwire._backends.memory import datagram_pair, memory_test
from webwire._exceptions import ConnectError, ReadError, ReadTimeout, WriteError
from webwire._sync import run_sync

from .servers import UDPEchoServer, closed_port

Scenario = Callable[[Backend], Coroutine[Any, Any, None]]
SCENARIOS: dict[str, Scenario] = {}

pytestmark = pytest.mark.timeout(30)


def scenario(fn: Scenario) -> Scenario:
    SCENARIOS[fn.__name__] = fn
    return fn


def closed_udp_port(host: str = "127.0.0.1") -> int:
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    probe = socket.socket(family, socket.SOCK_DGRAM)
    probe.bind((host, 0))
    port: int = probe.getsockname()[1]
    probe.close()
    return port


@scenario
async def datagrams_round_trip(backend: Backend) -> None:
    with UDPEchoServer() as server:
        udp = await backend.connect_udp(("127.0.0.1", server.port))
        try:
            for size in (0, 1, 1200, 65000):
                payload = os.urandom(size)
                await udp.send(payload)
                assert await udp.receive(5) == payload
            assert udp.get_extra_info("peername") == ("127.0.0.1", server.port)
            assert udp.get_extra_info("sockname")[0] == "127.0.0.1"
            assert udp.get_extra_info("socket") is not None
            assert udp.get_extra_info("no-such-thing") is None
        finally:
            await udp.aclose()
            await udp.aclose()


@scenario
async def datagram_boundaries_are_kept(backend: Backend) -> None:
    with UDPEchoServer() as server:
        udp = await backend.connect_udp(("127.0.0.1", server.port))
        try:
            for index in range(5):
                await udp.send(b"%d" % index * (index + 1))
            received = [await udp.receive(5) for _ in range(5)]
            assert received == [b"%d" % index * (index + 1) for index in range(5)]
        finally:
            await udp.aclose()


@scenario
async def ipv6_and_local_address(backend: Backend) -> None:
    local_port = closed_udp_port("::1")
    with UDPEchoServer("::1") as server:
        udp = await backend.connect_udp(("::1", server.port), local_addr=("::1", local_port))
        try:
            assert udp.get_extra_info("sockname")[:2] == ("::1", local_port)
            await udp.send(b"six")
            assert await udp.receive(5) == b"six"
        finally:
            await udp.aclose()


@scenario
async def receive_times_out(backend: Backend) -> None:
    with UDPEchoServer() as server:
        udp = await backend.connect_udp(("127.0.0.1", server.port))
        try:
            await udp.send(b"quit")
            with pytest.raises(ReadTimeout):
                await udp.receive(0.1)
            # Still usable afterwards.
            await udp.send(b"again")
            assert await udp.receive(5) == b"again"
        finally:
            await udp.aclose()


@scenario
async def port_unreachable_raises_read_error(backend: Backend) -> None:
    udp = await backend.connect_udp(("127.0.0.1", closed_udp_port()))
    try:
        with pytest.raises((ReadError, WriteError)) as caught:
            for _ in range(20):
                await udp.send(b"anyone?")
                await udp.receive(1)
        assert isinstance(caught.value.__cause__, ConnectionRefusedError)
    finally:
        await udp.aclose()


@scenario
async def closed_socket_fails(backend: Backend) -> None:
    with UDPEchoServer() as server:
        udp = await backend.connect_udp(("127.0.0.1", server.port))
        await udp.aclose()
        with pytest.raises(WriteError):
            await udp.send(b"late")
        with pytest.raises(ReadError):
            await udp.receive(1)


@scenario
async def aclose_wakes_a_pending_receive(backend: Backend) -> None:
    with UDPEchoServer() as server:
        udp = await backend.connect_udp(("127.0.0.1", server.port))
        errors: list[BaseException] = []
        receiving = backend.create_event()

        async def receiver() -> None:
            receiving.set()
            try:
                await udp.receive()
            except ReadError as exc:
                errors.append(exc)

        async with backend.create_task_group() as group:
            group.start_soon(receiver)
            assert await receiving.wait(5)
            await backend.sleep(0.05)
            await udp.aclose()
        assert len(errors) == 1


@scenario
async def invalid_addresses_raise_connect_error(backend: Backend) -> None:
    with pytest.raises(ConnectError):
        await backend.connect_udp(("localhost", 443))
    with pytest.raises(ConnectError):
        await backend.connect_udp(("127.0.0.1", 0))
    with pytest.raises(ConnectError):
        await backend.connect_udp(("127.0.0.1", 443), local_addr=("::1", 0))
    busy = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    busy.bind(("127.0.0.1", 0))
    try:
        with pytest.raises(ConnectError) as caught:
            await backend.connect_udp(("127.0.0.1", 443), local_addr=busy.getsockname())
        assert isinstance(caught.value.__cause__, OSError)
    finally:
        busy.close()


@scenario
async def oversized_datagram_raises_write_error(backend: Backend) -> None:
    udp = await backend.connect_udp(("127.0.0.1", closed_port()))
    try:
        with pytest.raises(WriteError):
            await udp.send(b"x" * 70000)
    finally:
        await udp.aclose()


@scenario
async def receive_many_takes_a_queued_burst_in_order(backend: Backend) -> None:
    peer = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    peer.bind(("127.0.0.1", 0))
    udp = await backend.connect_udp(peer.getsockname())
    try:
        peer.connect(udp.get_extra_info("sockname")[:2])
        sent = [b"%d" % index * (index + 1) for index in range(20)]
        for payload in sent:
            peer.send(payload)  # queued in the kernel when send returns (loopback)
        batches = [await udp.receive_many(8, 5) for _ in range(3)]
        assert [len(batch) for batch in batches] == [8, 8, 4]
        assert [payload for batch in batches for payload in batch] == sent
        peer.send(b"late")
        assert await udp.receive_many(1, 5) == [b"late"]
        with pytest.raises(ReadTimeout):
            await udp.receive_many(8, 0.05)
        peer.send(b"")
        assert await udp.receive_many(8, 5) == [b""]
    finally:
        peer.close()
        await udp.aclose()


@scenario
async def receive_many_then_a_kernel_error(backend: Backend) -> None:
    peer = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    peer.bind(("127.0.0.1", 0))
    udp = await backend.connect_udp(peer.getsockname())
    try:
        peer.connect(udp.get_extra_info("sockname")[:2])
        peer.send(b"one")
        peer.send(b"two")
        peer.close()
        await udp.send(b"to a closed port")  # ICMP port unreachable comes back
        received: list[bytes] = []
        errors: list[ReadError] = []
        for _ in range(6):
            if len(received) == 2 and errors:
                break
            try:
                received.extend(await udp.receive_many(8, 5))
            except ReadError as exc:
                errors.append(exc)
        assert received == [b"one", b"two"]
        assert len(errors) == 1
        assert isinstance(errors[0].__cause__, ConnectionRefusedError)
    finally:
        peer.close()
        await udp.aclose()


@scenario
async def receive_many_refuses_a_bad_count_and_a_closed_socket(backend: Backend) -> None:
    with UDPEchoServer() as server:
        udp = await backend.connect_udp(("127.0.0.1", server.port))
        try:
            with pytest.raises(ValueError):
                await udp.receive_many(0)
            await udp.send(b"echo")
            assert await udp.receive_many(4, 5) == [b"echo"]
        finally:
            await udp.aclose()
        with pytest.raises(ReadError):
            await udp.receive_many(4, 1)


def _batch() -> list[bytes]:
    """Datagrams of many shapes: runs of one size, shorter ones ending a
    run, empty ones, a run longer than one segmented send allows, and a
    size change upwards."""
    batch = [os.urandom(1200) for _ in range(10)] + [os.urandom(500)]
    batch += [os.urandom(1200) for _ in range(3)] + [b""] + [b"%02d" % i for i in range(70)]
    batch += [os.urandom(1300), os.urandom(1200), os.urandom(9000), os.urandom(9000)]
    return [*batch, os.urandom(7)]


async def _receive_all(udp: Any, count: int) -> list[bytes]:
    received: list[bytes] = []
    while len(received) < count:
        received.extend(await udp.receive_many(count - len(received), 5))
    return received


def _kernel_has_udp_segment() -> bool:
    probe = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    try:
        probe.getsockopt(getattr(socket, "SOL_UDP", 17), getattr(socket, "UDP_SEGMENT", 103))
    except OSError:
        return False
    finally:
        probe.close()
    return True


@scenario
async def send_many_keeps_order_and_boundaries(backend: Backend) -> None:
    peer = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    peer.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4 * 1024 * 1024)
    peer.bind(("127.0.0.1", 0))
    peer.settimeout(5)
    udp = await backend.connect_udp(peer.getsockname())
    try:
        if sys.platform.startswith("linux"):
            # Segmented sends are used exactly where this kernel has UDP_SEGMENT.
            assert getattr(udp, "_gso") is _kernel_has_udp_segment()
        batch = _batch()
        await udp.send_many(batch)
        await udp.send_many([b"one"])
        await udp.send_many([])
        received = [peer.recv(65536) for _ in range(len(batch) + 1)]
        assert received == [*batch, b"one"]
    finally:
        peer.close()
        await udp.aclose()


@scenario
async def send_many_round_trip(backend: Backend) -> None:
    with UDPEchoServer() as server:
        udp = await backend.connect_udp(("127.0.0.1", server.port))
        try:
            batch = [b"%04d" % i * 300 for i in range(40)] + [b"end"]
            await udp.send_many(batch)
            assert await _receive_all(udp, len(batch)) == batch
        finally:
            await udp.aclose()
        with pytest.raises(WriteError):
            await udp.send_many([b"late", b"late"])


@scenario
async def send_many_falls_back_when_segmentation_is_refused(backend: Backend) -> None:
    # A malformed UDP_SEGMENT option: the kernel refuses it with EINVAL
    # (as it does for a segment larger than the path MTU); the socket then
    # sends one datagram per call and nothing is lost.
    from webwire._backends import _udp_batch, asyncio, sync, trio

    def refused(segment: int) -> list[tuple[int, int, bytes]]:
        return [(_udp_batch.SOL_UDP, _udp_batch.UDP_SEGMENT, b"\x01")]

    peer = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    peer.bind(("127.0.0.1", 0))
    peer.settimeout(5)
    udp = await backend.connect_udp(peer.getsockname())
    try:
        with pytest.MonkeyPatch.context() as patch:
            for module in (asyncio, sync, trio):
                patch.setattr(module, "gso_ancillary", refused)
            batch = [os.urandom(1200) for _ in range(8)] + [os.urandom(100)]
            await udp.send_many(batch)
            await udp.send_many(batch)
        received = [peer.recv(65536) for _ in range(2 * len(batch))]
        assert received == batch + batch
        assert getattr(udp, "_gso", False) is False
    finally:
        peer.close()
        await udp.aclose()


@scenario
async def send_many_reports_port_unreachable(backend: Backend) -> None:
    udp = await backend.connect_udp(("127.0.0.1", closed_udp_port()))
    try:
        with pytest.raises((ReadError, WriteError)) as caught:
            for _ in range(20):
                await udp.send_many([b"anyone?"] * 4)
                await udp.receive(1)
        assert isinstance(caught.value.__cause__, ConnectionRefusedError)
    finally:
        await udp.aclose()


def test_segmented_runs() -> None:
    from webwire._backends._udp_batch import MAX_SEGMENTS, gso_groups

    sizes = [1200] * 3 + [500, 1200, 1300, 0, 0, 7] + [10] * (MAX_SEGMENTS + 2)
    groups = gso_groups([b"x" * size for size in sizes])
    singles = [(4, 5), (5, 6), (6, 7), (7, 8), (8, 9)]
    long_run = [(9, 9 + MAX_SEGMENTS), (9 + MAX_SEGMENTS, 11 + MAX_SEGMENTS)]
    assert groups == [(0, 4), *singles, *long_run]
    assert gso_groups([b"y" * 9000] * 10) == [(0, 7), (7, 10)]
    assert gso_groups([]) == []


@memory_test
async def test_memory_send_many_keeps_order() -> None:
    first, second = datagram_pair(delay=0.01)
    batch = [b"a" * 1200, b"b" * 1200, b"c", b""]
    await first.send_many(batch)
    assert await second.receive_many(8, 1) == batch
    first.close()
    with pytest.raises(WriteError):
        await first.send_many(batch)


@pytest.mark.anyio
@pytest.mark.parametrize("name", sorted(SCENARIOS))
async def test_async_backends(name: str, anyio_backend: str) -> None:
    await SCENARIOS[name](get_backend(anyio_backend))


@pytest.mark.anyio
@pytest.mark.parametrize(
    "anyio_backend", [pytest.param(("asyncio", {"use_uvloop": True}), id="uvloop")]
)
@pytest.mark.parametrize("name", sorted(SCENARIOS))
async def test_asyncio_backend_on_uvloop(name: str, anyio_backend: object) -> None:
    pytest.importorskip("uvloop")
    await SCENARIOS[name](get_backend("asyncio"))


@pytest.mark.parametrize("name", sorted(SCENARIOS))
def test_sync_backend(name: str) -> None:
    run_sync(SCENARIOS[name](get_backend("sync")))
