"""UDP sockets of the three backends against a loopback echo server,
written once and run on asyncio (also on uvloop), trio and (through
``run_sync``) the blocking backend."""

from __future__ import annotations

import os
import socket
from collections.abc import Callable, Coroutine
from typing import Any

import pytest

from webwire._backends import Backend, get_backend
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
