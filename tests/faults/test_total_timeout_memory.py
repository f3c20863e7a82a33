"""``Timeout.total`` against servers whose data never stops, on the memory
backend's fake clock: the request ends at the deadline, to the virtual
microsecond, with an error naming the total timeout, while each piece of
data comes well within the read timeout.
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable

import pytest

import webwire
from webwire._backends.memory import MemoryBackend, MemoryStream, memory_test

HOST = "endless.test"
URL = f"http://{HOST}"
TIMEOUT = webwire.Timeout(5.0, read=1.0, total=2.0)
GAP = 0.001
"""Virtual seconds between two pieces of data."""


def endless(
    backend: MemoryBackend, head: bytes, piece: bytes
) -> Callable[[MemoryStream], Awaitable[None]]:
    """A server that reads a request head, sends ``head``, then ``piece``
    every ``GAP`` virtual seconds, forever."""

    async def handler(stream: MemoryStream) -> None:
        buffer = b""
        while b"\r\n\r\n" not in buffer:
            data = await stream.read(65536, None)
            if not data:
                return
            buffer += data
        await stream.write(head, None)
        while True:
            await stream.write(piece, None)
            await backend.sleep(GAP)

    return handler


CASES = {
    "interim": (b"", b"HTTP/1.1 100 Continue\r\n\r\n"),
    "body": (b"HTTP/1.1 200 OK\r\nContent-Length: 1000000000000\r\n\r\n", b"x" * 1024),
    "chunked": (
        b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n",
        b"400\r\n" + b"x" * 1024 + b"\r\n",
    ),
    "extension": (b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5;e=", b"a" * 1024),
    "trailer": (b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n0\r\nX-T: ", b"a" * 1024),
}


@pytest.fixture
def backend() -> MemoryBackend:
    return MemoryBackend()


@pytest.mark.parametrize("stream", [False, True], ids=["content", "streamed"])
@pytest.mark.parametrize("case", list(CASES))
@memory_test
async def test_total_timeout_ends_endless_data(
    backend: MemoryBackend, case: str, stream: bool
) -> None:
    head, piece = CASES[case]
    backend.serve_tcp(HOST, 80, endless(backend, head, piece))
    # Header limits high enough that only the total timeout can stop it.
    limits = webwire.Limits(max_header_size=2**40)
    real_start = time.perf_counter()
    async with webwire.AsyncClient(_backend=backend, timeout=TIMEOUT, limits=limits) as client:
        start = backend.monotonic()
        with pytest.raises(webwire.TimeoutException, match=r"total timeout of 2\.0 s") as info:
            if stream:
                async with client.stream("GET", URL) as response:
                    async for _ in response.aiter_bytes():
                        pass
            else:
                await client.get(URL)
        assert backend.monotonic() - start == pytest.approx(2.0, abs=GAP)
    assert isinstance(info.value, webwire.ReadTimeout)
    assert backend.open_connections() == []
    assert time.perf_counter() - real_start < 30.0


class EndlessH2:
    """h2's server side: answers each request with a 200 whose DATA never
    ends, 1 KiB every ``GAP`` virtual seconds (within flow control)."""

    def __init__(self, backend: MemoryBackend) -> None:
        self.backend = backend

    async def __call__(self, stream: MemoryStream) -> None:
        import h2.config
        import h2.connection
        import h2.events
        import h2.exceptions
        import trio

        conn = h2.connection.H2Connection(
            config=h2.config.H2Configuration(client_side=False, header_encoding=None)
        )
        conn.initiate_connection()
        await stream.write(conn.data_to_send(), None)

        async def send_forever(stream_id: int) -> None:
            conn.send_headers(stream_id, [(b":status", b"200")])
            try:
                while True:
                    if conn.local_flow_control_window(stream_id) >= 1024:
                        conn.send_data(stream_id, b"x" * 1024)
                    await stream.write(conn.data_to_send(), None)
                    await self.backend.sleep(GAP)
            except (webwire.TransportError, h2.exceptions.StreamClosedError):
                pass  # the client reset the stream or closed the connection

        async with trio.open_nursery() as nursery:
            try:
                while True:
                    data = await stream.read(65536, None)
                    if not data:
                        break
                    for event in conn.receive_data(data):
                        if isinstance(event, h2.events.RequestReceived):
                            nursery.start_soon(send_forever, event.stream_id)
                    out = conn.data_to_send()
                    if out:
                        await stream.write(out, None)
            except webwire.TransportError:
                pass
            nursery.cancel_scope.cancel()


@pytest.mark.parametrize("stream", [False, True], ids=["content", "streamed"])
@memory_test
async def test_total_timeout_ends_endless_http2_body(backend: MemoryBackend, stream: bool) -> None:
    backend.serve_tcp(HOST, 80, EndlessH2(backend))
    async with webwire.AsyncClient(
        _backend=backend, timeout=TIMEOUT, http1=False, http2=True
    ) as client:
        start = backend.monotonic()
        with pytest.raises(webwire.ReadTimeout, match=r"total timeout of 2\.0 s"):
            if stream:
                async with client.stream("GET", URL) as response:
                    assert response.http_version == "HTTP/2"
                    async for _ in response.aiter_bytes():
                        pass
            else:
                await client.get(URL)
        assert backend.monotonic() - start == pytest.approx(2.0, abs=GAP)
    assert backend.open_connections() == []
