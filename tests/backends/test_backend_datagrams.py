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
