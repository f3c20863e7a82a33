"""Address racing (RFC 8305) on the three backends, with a fake resolver
and loopback servers only: a "blackholed" address is a listener on ``::1``
whose accept queue is full (the kernel drops the SYNs, so connecting hangs),
next to a working server on ``127.0.0.1`` at the same port.

Every scenario runs on asyncio (also on uvloop), trio and (through
``run_sync``, one thread per attempt) the blocking backend, and checks with
``/proc/self/fd`` and ``/proc/net`` that no socket outlives the race.
"""

from __future__ import annotations

import socket
import sys
import time
from collections.abc import Callable, Coroutine, Iterator
from contextlib import contextmanager
from typing import Any

import pytest

from webwire._backends import Backend, NetworkStream, get_backend
from webwire._backends._happy_eyeballs import ATTEMPT_DELAY, TCPTarget, connect_tcp, interleave
from webwire._exceptions import ConnectError, ConnectTimeout
from webwire._sync import run_sync

from .servers import Blackhole, ThreadServer, TLSMaterial, closed_port, echo, race_sockets

pytestmark = [
    pytest.mark.timeout(60),
    pytest.mark.skipif(not sys.platform.startswith("linux"), reason="needs /proc/self/fd"),
]

V6 = (socket.AF_INET6, "::1")
V4 = (socket.AF_INET, "127.0.0.1")

Scenario = Callable[[Backend, TLSMaterial], Coroutine[Any, Any, None]]
SCENARIOS: dict[str, Scenario] = {}


def scenario(fn: Scenario) -> Scenario:
    SCENARIOS[fn.__name__] = fn
    return fn


def with_addresses(backend: Backend, addresses: list[tuple[int, str]]) -> Backend:
    """A backend of the same kind whose resolver returns ``addresses``."""

    class FakeResolver(type(backend)):  # type: ignore[misc]
        resolved: list[str] = []

        async def _resolve_host(
            self, host: str, port: int, timeout: float | None
        ) -> list[tuple[int, str]]:
            self.resolved.append(host)
            return list(addresses)

    return FakeResolver()  # type: ignore[no-any-return]


@contextmanager
def blackhole_and_server(handler: Any = echo, **options: Any) -> Iterator[int]:
    """A blackhole on ``[::1]:port`` and a server on ``127.0.0.1:port``."""
    for _ in range(20):
        with ThreadServer(handler, **options) as server:
            try:
                hole = Blackhole("::1", server.port)
            except OSError:
                continue
            with hole:
                yield server.port
            return
    raise RuntimeError("no port free on both ::1 and 127.0.0.1")


@contextmanager
def two_blackholes() -> Iterator[int]:
    for _ in range(20):
        first = Blackhole("127.0.0.1")
        try:
            second = Blackhole("::1", first.port)
        except OSError:
            first.close()
            continue
        with first, second:
            yield first.port
        return
    raise RuntimeError("no port free on both ::1 and 127.0.0.1")


async def sockets_settle_at(
    backend: Backend, port: int, baseline: frozenset[str], within: float = 5.0
) -> frozenset[str]:
    """Wait until the sockets a race on ``port`` may leave are ``baseline``
    again (servers close their side in their own threads); return them."""
    deadline = time.monotonic() + within
    while time.monotonic() < deadline and race_sockets(port) != baseline:
        await backend.sleep(0.01)
    return race_sockets(port)


async def assert_echo(stream: NetworkStream) -> None:
    await stream.write(b"ping", 5)
    assert await stream.read(10, 5) == b"ping"


@scenario
async def second_address_wins_after_the_delay(backend: Backend, tls: TLSMaterial) -> None:
    racing = with_addresses(backend, [V4, V6])
    with blackhole_and_server() as port:
        baseline = race_sockets(port)
        start = time.monotonic()
        stream = await racing.connect_tcp("dual.test", port, timeout=10)
        elapsed = time.monotonic() - start
        try:
            # IPv6 is tried first (interleaving puts it first), hangs, and
            # the IPv4 attempt starts 250 ms later and wins.
            assert elapsed >= ATTEMPT_DELAY * 0.8
            assert stream.get_extra_info("peername")[0] == "127.0.0.1"
            await assert_echo(stream)
        finally:
            await stream.aclose()
        # The hanging IPv6 attempt was closed: nothing is left open.
        assert await sockets_settle_at(backend, port, baseline) == baseline
    assert racing.resolved == ["dual.test"]  # type: ignore[attr-defined]


@scenario
async def tls_over_the_race(backend: Backend, tls: TLSMaterial) -> None:
    racing = with_addresses(backend, [V6, V4])
    with blackhole_and_server(tls=tls.server_context) as port:
        baseline = race_sockets(port)
        stream = await racing.connect_tcp(
            "localhost", port, timeout=10, ssl_context=tls.client_context
        )
        try:
            assert stream.get_extra_info("alpn_protocol") == "h2"
            await assert_echo(stream)
        finally:
            await stream.aclose()
        assert await sockets_settle_at(backend, port, baseline) == baseline


@scenario
async def failed_attempt_starts_the_next_at_once(backend: Backend, tls: TLSMaterial) -> None:
    # Nothing listens on [::1]:port: that attempt is refused, and the next
    # starts without waiting for the (here very long) delay.
    with ThreadServer(echo) as server:
        port = server.port
        baseline = race_sockets(port)

        async def resolve(host: str, port: int, timeout: float | None) -> list[tuple[int, str]]:
            return [V6, V4]

        stream = await connect_tcp(
            backend,
            TCPTarget("dual.test", server.port),
            10,
            resolve=resolve,
            connect=backend._connect_address,  # type: ignore[attr-defined]
            delay=3600,
        )
        try:
            assert stream.get_extra_info("peername")[0] == "127.0.0.1"
        finally:
            await stream.aclose()
        assert await sockets_settle_at(backend, port, baseline) == baseline


@scenario
async def delay_holds_the_next_attempt_back(backend: Backend, tls: TLSMaterial) -> None:
    with blackhole_and_server() as port:
        baseline = race_sockets(port)

        async def resolve(host: str, port: int, timeout: float | None) -> list[tuple[int, str]]:
            return [V6, V4]

        with pytest.raises(ConnectTimeout) as caught:
            await connect_tcp(
                backend,
                TCPTarget("dual.test", port),
                0.5,
                resolve=resolve,
                connect=backend._connect_address,  # type: ignore[attr-defined]
                delay=3600,
            )
        assert f"dual.test:{port}" in str(caught.value)
        assert await sockets_settle_at(backend, port, baseline) == baseline


@scenario
async def every_address_refused(backend: Backend, tls: TLSMaterial) -> None:
    racing = with_addresses(backend, [V6, V4, V4, (socket.AF_INET6, "::1")])
    port = closed_port()
    baseline = race_sockets(port)
    with pytest.raises(ConnectError) as caught:
        await racing.connect_tcp("dual.test", port, timeout=10)
    message = str(caught.value)
    assert f"dual.test:{port}" in message
    assert "all 2 addresses failed" in message
    assert "127.0.0.1" in message or "::1" in message
    assert isinstance(caught.value.__cause__, OSError)
    assert await sockets_settle_at(backend, port, baseline) == baseline


@scenario
async def timeout_when_every_address_hangs(backend: Backend, tls: TLSMaterial) -> None:
    racing = with_addresses(backend, [V6, V4])
    with two_blackholes() as port:
        baseline = race_sockets(port)
        with pytest.raises(ConnectTimeout) as caught:
            await racing.connect_tcp("dual.test", port, timeout=0.6)
        assert f"dual.test:{port}" in str(caught.value)
        assert await sockets_settle_at(backend, port, baseline) == baseline


@scenario
async def cancellation_mid_race_leaks_no_socket(backend: Backend, tls: TLSMaterial) -> None:
    racing = with_addresses(backend, [V6, V4])
    with two_blackholes() as port:
        baseline = race_sockets(port)
        for cancel_after in (0.0, 0.1, 0.4):
            outcome: list[str] = []

            async def connect() -> None:
                try:
                    await racing.connect_tcp("dual.test", port, timeout=None)
                finally:
                    outcome.append("ended")

            async with backend.create_task_group() as group:
                group.start_soon(connect)
                await backend.sleep(cancel_after)
                group.cancel()
            assert outcome == ["ended"]
            assert await sockets_settle_at(backend, port, baseline) == baseline


@scenario
async def cancellation_around_the_win_leaks_no_socket(backend: Backend, tls: TLSMaterial) -> None:
    racing = with_addresses(backend, [V6, V4])
    with blackhole_and_server() as port:
        baseline = race_sockets(port)
        for cancel_after in (0.2, 0.25, 0.26, 0.3, 0.6):
            won: list[NetworkStream] = []

            async def connect() -> None:
                won.append(await racing.connect_tcp("dual.test", port, timeout=None))

            async with backend.create_task_group() as group:
                group.start_soon(connect)
                await backend.sleep(cancel_after)
                group.cancel()
            for stream in won:
                await stream.aclose()
            assert await sockets_settle_at(backend, port, baseline) == baseline


@scenario
async def cancellation_right_after_the_win_closes_the_winner(
    backend: Backend, tls: TLSMaterial
) -> None:
    with blackhole_and_server() as port:
        baseline = race_sockets(port)
        opened: list[NetworkStream] = []
        returned: list[NetworkStream] = []

        async def resolve(host: str, port: int, timeout: float | None) -> list[tuple[int, str]]:
            return [V6, V4]

        async with backend.create_task_group() as group:

            async def connect_then_cancel(
                target: TCPTarget, family: int, ip: str, timeout: float | None
            ) -> NetworkStream:
                stream: NetworkStream = await backend._connect_address(  # type: ignore[attr-defined]
                    target, family, ip, timeout
                )
                opened.append(stream)
                # The caller is cancelled the moment an attempt has won.
                group.cancel()
                return stream

            async def connect() -> None:
                returned.append(
                    await connect_tcp(
                        backend,
                        TCPTarget("dual.test", port),
                        10,
                        resolve=resolve,
                        connect=connect_then_cancel,
                    )
                )

            group.start_soon(connect)
        assert len(opened) == 1
        assert returned == []
        # The winner was closed by the abandoned race.
        assert opened[0].is_readable()
        assert await sockets_settle_at(backend, port, baseline) == baseline


@scenario
async def ip_literal_skips_resolution(backend: Backend, tls: TLSMaterial) -> None:
    racing = with_addresses(backend, [])
    with ThreadServer(echo) as server:
        stream = await racing.connect_tcp("127.0.0.1", server.port, timeout=5)
        try:
            await assert_echo(stream)
        finally:
            await stream.aclose()
    assert racing.resolved == []  # type: ignore[attr-defined]
    with pytest.raises(ConnectError) as caught:
        await racing.connect_tcp("no-address.test", 80, timeout=5)
    assert "no-address.test" in str(caught.value)


async def run_scenario(name: str, backend: Backend, tls: TLSMaterial) -> None:
    # A first connection lets a loop open what it opens once and keeps
    # (uvloop's resolver thread pool wake-up descriptor), so that the
    # descriptor counts of the scenario compare like with like.
    for host in ("127.0.0.1", "::1"):
        with pytest.raises(ConnectError):
            await backend.connect_tcp(host, closed_port(), timeout=5)
    await SCENARIOS[name](backend, tls)


@pytest.mark.anyio
@pytest.mark.parametrize("name", sorted(SCENARIOS))
async def test_async_backends(name: str, anyio_backend: str, tls: TLSMaterial) -> None:
    await run_scenario(name, get_backend(anyio_backend), tls)


@pytest.mark.anyio
@pytest.mark.parametrize(
    "anyio_backend", [pytest.param(("asyncio", {"use_uvloop": True}), id="uvloop")]
)
@pytest.mark.parametrize("name", sorted(SCENARIOS))
async def test_asyncio_backend_on_uvloop(
    name: str, anyio_backend: object, tls: TLSMaterial
) -> None:
    pytest.importorskip("uvloop")
    await run_scenario(name, get_backend("asyncio"), tls)


@pytest.mark.parametrize("name", sorted(SCENARIOS))
def test_sync_backend(name: str, tls: TLSMaterial) -> None:
    run_sync(run_scenario(name, get_backend("sync"), tls))


def test_interleave_alternates_families_ipv6_first() -> None:
    a4 = (socket.AF_INET, "192.0.2.1")
    b4 = (socket.AF_INET, "192.0.2.2")
    c4 = (socket.AF_INET, "192.0.2.3")
    a6 = (socket.AF_INET6, "2001:db8::1")
    b6 = (socket.AF_INET6, "2001:db8::2")
    assert interleave([a4, b4, c4, a6, b6]) == [a6, a4, b6, b4, c4]
    assert interleave([a6, a4, a6, a4]) == [a6, a4]
    assert interleave([a4, b4]) == [a4, b4]
    assert interleave([b6, a6]) == [b6, a6]
    assert interleave([]) == []
