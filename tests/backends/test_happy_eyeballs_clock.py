"""RFC 8305 address racing on the memory backend's fake clock: when each
attempt starts, which one wins, and that the losers are cancelled, at exact
virtual times. The real-socket tests in test_happy_eyeballs.py check the
same race against the kernel (and file-descriptor leaks)."""

from __future__ import annotations

import math
import socket

import pytest

from webwire._backends._happy_eyeballs import ATTEMPT_DELAY, TCPTarget, connect_tcp
from webwire._backends.base import NetworkStream
from webwire._backends.memory import MemoryBackend, memory_test, stream_pair
from webwire._exceptions import ConnectError, ConnectTimeout

V6 = (socket.AF_INET6, "::1")
V4 = (socket.AF_INET, "127.0.0.1")


class Attempts:
    """A connector whose behaviour is scripted per address: ``"hang"``,
    ``"refuse"`` (after 0.05 s) or ``"ok"`` (after 0.01 s). Records when
    each attempt started and whether it was cancelled."""

    def __init__(self, backend: MemoryBackend, plan: dict[str, str]) -> None:
        self.backend = backend
        self.plan = plan
        self.started: dict[str, float] = {}
        self.cancelled: list[str] = []

    async def resolve(self, host: str, port: int, timeout: float | None) -> list[tuple[int, str]]:
        return [V6, V4]

    async def connect(
        self, target: TCPTarget, family: int, ip: str, timeout: float | None
    ) -> NetworkStream:
        self.started[ip] = self.backend.monotonic()
        finished = False
        try:
            what = self.plan[ip]
            if what == "hang":
                await self.backend.sleep(math.inf)
            if what == "refuse":
                await self.backend.sleep(0.05)
                finished = True
                raise ConnectError(f"could not connect to {ip}: refused")
            await self.backend.sleep(0.01)
            finished = True
            return stream_pair()[0]
        finally:
            if not finished:
                self.cancelled.append(ip)


async def race(backend: MemoryBackend, attempts: Attempts, timeout: float) -> NetworkStream:
    return await connect_tcp(
        backend,
        TCPTarget("dual.test", 443),
        timeout,
        resolve=attempts.resolve,
        connect=attempts.connect,
    )


@pytest.fixture
def backend() -> MemoryBackend:
    return MemoryBackend()


@memory_test
async def test_second_address_starts_after_the_delay_and_wins(backend: MemoryBackend) -> None:
    attempts = Attempts(backend, {"::1": "hang", "127.0.0.1": "ok"})
    start = backend.monotonic()
    stream = await race(backend, attempts, 10)
    assert stream is not None
    assert attempts.started == {"::1": start, "127.0.0.1": start + ATTEMPT_DELAY}
    assert backend.monotonic() - start == pytest.approx(ATTEMPT_DELAY + 0.01)
    assert attempts.cancelled == ["::1"]  # the loser was stopped


@memory_test
async def test_failed_attempt_starts_the_next_at_once(backend: MemoryBackend) -> None:
    attempts = Attempts(backend, {"::1": "refuse", "127.0.0.1": "ok"})
    start = backend.monotonic()
    await race(backend, attempts, 10)
    assert attempts.started["127.0.0.1"] - start == pytest.approx(0.05)
    assert attempts.cancelled == []


@memory_test
async def test_timeout_cancels_every_attempt(backend: MemoryBackend) -> None:
    attempts = Attempts(backend, {"::1": "hang", "127.0.0.1": "hang"})
    start = backend.monotonic()
    with pytest.raises(ConnectTimeout):
        await race(backend, attempts, 2.0)
    assert backend.monotonic() - start == pytest.approx(2.0)
    assert sorted(attempts.cancelled) == ["127.0.0.1", "::1"]


@memory_test
async def test_all_refused_is_connect_error_naming_the_host(backend: MemoryBackend) -> None:
    attempts = Attempts(backend, {"::1": "refuse", "127.0.0.1": "refuse"})
    with pytest.raises(ConnectError, match=r"dual\.test"):
        await race(backend, attempts, 10)
