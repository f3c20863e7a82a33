"""Retries (``retries=``, :class:`webwire.Retry`) timed on the memory
backend's fake clock: exact backoff waits, ``Retry-After``, the total
deadline, read timeouts and connection errors, and that retried responses
give their connection back.

A small HTTP/1.1 server registered with ``MemoryBackend.serve_tcp`` answers
from a script and notes the virtual time at which each request arrives.
"""

from __future__ import annotations

import math
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import pytest

import webwire
from webwire._backends.memory import MemoryBackend, MemoryStream, memory_test

HOST = "retry.test"
URL = f"http://{HOST}/"
REAL_TIME_LIMIT = 2.0
"""Real seconds a test of many virtual seconds may take at most."""


class ScriptedServer:
    """Answers the n-th request with ``script[n]`` (the last entry repeats):
    ``(status, extra header lines)``, or ``None`` to never answer.

    Attributes:
        arrivals: Virtual time of each request.
        accepted: Connections accepted.
    """

    def __init__(self, backend: MemoryBackend, script: list[tuple[int, bytes] | None]) -> None:
        self.backend = backend
        self.script = script
        self.arrivals: list[float] = []
        self.accepted = 0

    async def __call__(self, stream: MemoryStream) -> None:
        self.accepted += 1
        buffer = b""
        while True:
            while b"\r\n\r\n" not in buffer:
                data = await stream.read(65536, None)
                if not data:
                    return
                buffer += data
            _, _, buffer = buffer.partition(b"\r\n\r\n")
            self.arrivals.append(self.backend.monotonic())
            entry = self.script[min(len(self.arrivals), len(self.script)) - 1]
            if entry is None:
                await self.backend.sleep(math.inf)
                return
            code, extra = entry
            body = b"answer %d" % len(self.arrivals)
            await stream.write(
                b"HTTP/1.1 %d X\r\nContent-Length: %d\r\n%s\r\n%s"
                % (code, len(body), extra, body),
                None,
            )


@asynccontextmanager
async def open_client(backend: MemoryBackend, **options: Any) -> AsyncIterator[webwire.AsyncClient]:
    """An ``AsyncClient`` on ``backend``; on exit, asserts that it left no
    connection open."""
    async with webwire.AsyncClient(_backend=backend, **options) as client:
        yield client
    assert backend.open_connections() == []


def serve(backend: MemoryBackend, *script: tuple[int, bytes] | None) -> ScriptedServer:
    server = ScriptedServer(backend, list(script))
    backend.serve_tcp(HOST, 80, server)
    return server


@pytest.fixture
def backend() -> MemoryBackend:
    return MemoryBackend()


def relative(times: list[float]) -> list[float]:
    return [round(t - times[0], 9) for t in times]


@memory_test
async def test_backoff_waits_exactly(backend: MemoryBackend) -> None:
    server = serve(backend, (503, b""), (503, b""), (503, b""), (200, b""))
    retry = webwire.Retry(5, backoff_factor=0.5)
    real = time.perf_counter()
    async with open_client(backend, retries=retry) as client:
        response = await client.get(URL)
    assert response.status_code == 200
    assert response.text == "answer 4"
    # No wait before the first retry, then 0.5 * 2 ** (n - 1).
    assert relative(server.arrivals) == [0.0, 0.0, 1.0, 3.0]
    assert server.accepted == 1  # each retried 503 was drained: one connection
    assert time.perf_counter() - real < REAL_TIME_LIMIT


@memory_test
async def test_backoff_is_capped(backend: MemoryBackend) -> None:
    server = serve(backend, (429, b""))
    retry = webwire.Retry(4, backoff_factor=1.0, backoff_max=3.0)
    async with open_client(backend, retries=retry) as client:
        response = await client.get(URL)
    assert response.status_code == 429  # exhausted: the last response
    assert response.text == "answer 5"
    assert relative(server.arrivals) == [0.0, 0.0, 2.0, 5.0, 8.0]


@memory_test
async def test_retry_after_is_honoured(backend: MemoryBackend) -> None:
    server = serve(backend, (503, b"Retry-After: 7\r\n"), (503, b"Retry-After: 2\r\n"), (200, b""))
    async with open_client(backend, retries=webwire.Retry(3, backoff_factor=10.0)) as client:
        response = await client.get(URL)
    assert response.status_code == 200
    assert relative(server.arrivals) == [0.0, 7.0, 9.0]


@memory_test
async def test_retry_after_ignored_on_request(backend: MemoryBackend) -> None:
    server = serve(backend, (503, b"Retry-After: 7\r\n"), (503, b"Retry-After: 7\r\n"), (200, b""))
    retry = webwire.Retry(3, backoff_factor=2.0, respect_retry_after=False)
    async with open_client(backend) as client:
        response = await client.get(URL, retries=retry)
    assert response.status_code == 200
    assert relative(server.arrivals) == [0.0, 0.0, 4.0]


@memory_test
async def test_total_deadline_stops_retrying(backend: MemoryBackend) -> None:
    wait = (503, b"Retry-After: 7\r\n")
    server = serve(backend, wait, wait, wait, (200, b""))
    start = backend.monotonic()
    async with open_client(backend, retries=3, timeout=webwire.Timeout(5.0, total=5.0)) as client:
        response = await client.get(URL)
        # Waiting 7 s would pass the 5 s deadline: the 503 is returned at once.
        assert response.status_code == 503
        assert response.text == "answer 1"
        assert backend.monotonic() - start == 0.0
        # Without the deadline the waits happen.
        response = await client.get(URL, timeout=webwire.Timeout(5.0))
        assert response.status_code == 200
    assert relative(server.arrivals) == [0.0, 0.0, 7.0, 14.0]


@memory_test
async def test_total_deadline_bounds_error_backoff(backend: MemoryBackend) -> None:
    # Read timeouts of 1 s; backoff 0, 2, 4 s; the 6 s deadline stops the
    # third retry (1 + 1 + 2 + 1 = 5 s spent; 4 s more would end at 9 s).
    server = serve(backend, None)
    retry = webwire.Retry(10, backoff_factor=1.0)
    timeout = webwire.Timeout(5.0, read=1.0, total=6.0)
    start = backend.monotonic()
    async with open_client(backend, retries=retry, timeout=timeout) as client:
        with pytest.raises(webwire.ReadTimeout):
            await client.get(URL)
    assert relative(server.arrivals) == [0.0, 1.0, 4.0]
    assert backend.monotonic() - start == pytest.approx(5.0)


@memory_test
async def test_read_timeouts_retried_for_get_only(backend: MemoryBackend) -> None:
    server = serve(backend, None)
    timeout = webwire.Timeout(5.0, read=2.0)
    async with open_client(backend, retries=2, timeout=timeout) as client:
        with pytest.raises(webwire.ReadTimeout):
            await client.get(URL)
        assert relative(server.arrivals) == [0.0, 2.0, 4.0]
        with pytest.raises(webwire.ReadTimeout):
            await client.post(URL, content=b"x")
        assert len(server.arrivals) == 4  # POST: sent once


@memory_test
async def test_connect_errors_retried_with_backoff(backend: MemoryBackend) -> None:
    start = backend.monotonic()
    retry = webwire.Retry(3, backoff_factor=1.5)
    async with open_client(backend, retries=retry) as client:
        with pytest.raises(webwire.ConnectError):
            await client.post("http://nobody.test/", content=b"x")
        # Four attempts: waits 0, 3 and 6 s between them.
        assert backend.monotonic() - start == pytest.approx(9.0)


@memory_test
async def test_connect_timeouts_retried(backend: MemoryBackend) -> None:
    backend.serve_tcp("silent.test", 80, silent=True)
    start = backend.monotonic()
    timeout = webwire.Timeout(5.0, connect=1.0)
    async with open_client(backend, retries=webwire.Retry(2, connect=1), timeout=timeout) as c:
        with pytest.raises(webwire.ConnectTimeout):
            await c.get("http://silent.test/")
        # connect=1: two attempts of 1 s each.
        assert backend.monotonic() - start == pytest.approx(2.0)
