"""The HTTP/2 driver and the pool on the in-memory backend with a fake
clock: read timeouts per stream, keep-alive expiry, flow-control stalls
during an upload, cancellation of one stream among many, and the server's
stream limit. The server is h2's own server side over a MemoryStream
(cleartext, prior knowledge); every wait is exact and takes no real time.
"""

from __future__ import annotations

import math
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import h2.config
import h2.connection
import h2.events
import h2.exceptions
import h2.settings
import pytest
import trio

import webwire
from webwire._backends.memory import MemoryBackend, MemoryStream, memory_test, settle

HOST = "h2.test"
URL = f"http://{HOST}"
H2C = {"http1": False, "http2": True}


class H2Responder:
    """h2's server side on each accepted in-memory connection. Paths:

    * ``/conn``: 200, body the connection's number (1 for the first).
    * ``/never``: never answers.
    * ``/slow/S``: answers after ``S`` virtual seconds.
    * ``/upload``: reads the whole body, crediting the window back only
      ``ack_delay`` seconds after each DATA frame; answers its length.

    Attributes:
        accepted: Connections accepted so far.
        open: Connections still being served.
        max_streams: ``SETTINGS_MAX_CONCURRENT_STREAMS`` announced.
        resets: Stream ids the client reset.
    """

    def __init__(self, backend: MemoryBackend, *, max_streams: int = 100) -> None:
        self.backend = backend
        self.accepted = 0
        self.open = 0
        self.max_streams = max_streams
        self.ack_delay = 0.0
        self.resets: list[int] = []

    async def __call__(self, stream: MemoryStream) -> None:
        self.accepted += 1
        number = self.accepted
        self.open += 1
        config = h2.config.H2Configuration(client_side=False, header_encoding=None)
        conn = h2.connection.H2Connection(config=config)
        conn.local_settings = h2.settings.Settings(
            client=False,
            initial_values={h2.settings.SettingCodes.MAX_CONCURRENT_STREAMS: self.max_streams},
        )
        conn.initiate_connection()
        bodies: dict[int, int] = {}
        try:
            async with trio.open_nursery() as nursery:
                try:
                    await stream.write(conn.data_to_send(), None)
                    while True:
                        data = await stream.read(65536, None)
                        if not data:
                            break
                        for event in conn.receive_data(data):
                            await self._event(conn, stream, event, number, bodies, nursery)
                        out = conn.data_to_send()
                        if out:
                            await stream.write(out, None)
                except webwire.TransportError:
                    pass  # the client closed or reset the connection
                nursery.cancel_scope.cancel()
        finally:
            self.open -= 1

    async def _event(
        self,
        conn: Any,
        stream: MemoryStream,
        event: Any,
        number: int,
        bodies: dict[int, int],
        nursery: trio.Nursery,
    ) -> None:
        if isinstance(event, h2.events.RequestReceived):
            path = dict(event.headers)[b":path"].decode()
            bodies[event.stream_id] = 0
            if path == "/conn":
                nursery.start_soon(self._respond, conn, stream, event.stream_id, 0.0, number)
            elif path.startswith("/slow/"):
                delay = float(path.rsplit("/", 1)[1])
                nursery.start_soon(self._respond, conn, stream, event.stream_id, delay, number)
        elif isinstance(event, h2.events.DataReceived):
            bodies[event.stream_id] += len(event.data)
            nursery.start_soon(self._ack, conn, stream, event)
        elif isinstance(event, h2.events.StreamEnded):
            if bodies.get(event.stream_id):
                nursery.start_soon(
                    self._respond, conn, stream, event.stream_id, 0.0, bodies[event.stream_id]
                )
        elif isinstance(event, h2.events.StreamReset):
            self.resets.append(event.stream_id)

    async def _ack(self, conn: Any, stream: MemoryStream, event: Any) -> None:
        await self.backend.sleep(self.ack_delay)
        conn.acknowledge_received_data(event.flow_controlled_length, event.stream_id)
        out = conn.data_to_send()
        if out:
            try:
                await stream.write(out, None)
            except webwire.TransportError:
                pass

    async def _respond(
        self, conn: Any, stream: MemoryStream, stream_id: int, delay: float, value: int
    ) -> None:
        await self.backend.sleep(delay)
        body = str(value).encode()
        try:
            conn.send_headers(
                stream_id, [(b":status", b"200"), (b"content-length", str(len(body)).encode())]
            )
            conn.send_data(stream_id, body, end_stream=True)
        except h2.exceptions.StreamClosedError:
            return
        try:
            await stream.write(conn.data_to_send(), None)
        except webwire.TransportError:
            pass


@pytest.fixture
def backend() -> MemoryBackend:
    return MemoryBackend()


@pytest.fixture
def responder(backend: MemoryBackend) -> H2Responder:
    responder = H2Responder(backend, max_streams=3)
    backend.serve_tcp(HOST, 80, responder)
    return responder


@asynccontextmanager
async def open_client(backend: MemoryBackend, **options: Any) -> AsyncIterator[webwire.AsyncClient]:
    async with webwire.AsyncClient(_backend=backend, **H2C, **options) as client:
        yield client
    await settle()
    assert backend.open_connections() == []


def elapsed_since(backend: MemoryBackend, start: float) -> float:
    return backend.monotonic() - start


@memory_test
async def test_read_timeout_on_one_stream_only(
    backend: MemoryBackend, responder: H2Responder
) -> None:
    real = time.perf_counter()
    async with open_client(backend, timeout=webwire.Timeout(5.0, read=2.0)) as client:
        results: dict[str, Any] = {}

        async def never() -> None:
            try:
                await client.get(f"{URL}/never")
            except webwire.ReadTimeout as exc:
                results["never"] = (exc, backend.monotonic() - start)

        async def slow() -> None:
            r = await client.get(f"{URL}/slow/1.5")
            results["slow"] = (r.http_version, backend.monotonic() - start)

        start = backend.monotonic()
        async with trio.open_nursery() as nursery:
            nursery.start_soon(never)
            nursery.start_soon(slow)
        assert results["slow"] == ("HTTP/2", pytest.approx(1.5))
        assert isinstance(results["never"][0], webwire.ReadTimeout)
        assert results["never"][1] == pytest.approx(2.0)
        assert responder.accepted == 1
        # The stream that timed out was reset; the connection lives on.
        await settle()
        assert len(responder.resets) == 1  # the stream of /never
        assert (await client.get(f"{URL}/conn")).text == "1"
    assert time.perf_counter() - real < 1.0


@memory_test
async def test_keepalive_expiry(backend: MemoryBackend, responder: H2Responder) -> None:
    limits = webwire.Limits(keepalive_expiry=5.0)
    async with open_client(backend, limits=limits) as client:
        assert (await client.get(f"{URL}/conn")).text == "1"
        await backend.sleep(4.9)
        assert (await client.get(f"{URL}/conn")).text == "1"
        await backend.sleep(5.1)
        assert (await client.get(f"{URL}/conn")).text == "2"
        await settle()
        assert responder.open == 1


@memory_test
async def test_upload_waits_for_window_updates(
    backend: MemoryBackend, responder: H2Responder
) -> None:
    responder.ack_delay = 3.0  # the server credits the window back late
    size = 200_000  # about three 64 KiB windows
    async with open_client(backend, timeout=webwire.Timeout(10.0)) as client:
        start = backend.monotonic()
        r = await client.post(f"{URL}/upload", content=b"x" * size)
        assert r.text == str(size)
        # Two waits of 3 s for credit: the first 64 KiB, then the next.
        assert elapsed_since(backend, start) == pytest.approx(9.0)


@memory_test
async def test_upload_write_timeout_when_no_credit(
    backend: MemoryBackend, responder: H2Responder
) -> None:
    responder.ack_delay = math.inf  # never credits the window back
    async with open_client(backend, timeout=webwire.Timeout(5.0, read=4.0)) as client:
        start = backend.monotonic()
        with pytest.raises(webwire.ReadTimeout):
            await client.post(f"{URL}/upload", content=b"x" * 100_000)
        assert elapsed_since(backend, start) == pytest.approx(4.0)
        assert (await client.get(f"{URL}/conn")).text == "1"


@memory_test
async def test_cancelling_one_stream_keeps_the_others(
    backend: MemoryBackend, responder: H2Responder
) -> None:
    async with open_client(backend) as client:
        texts: list[str] = []

        async def one(path: str) -> None:
            texts.append((await client.get(f"{URL}{path}")).text)

        async with trio.open_nursery() as nursery:
            nursery.start_soon(one, "/slow/1")
            with trio.move_on_after(0.5) as scope:
                await client.get(f"{URL}/never")
            assert scope.cancelled_caught
            nursery.start_soon(one, "/slow/1")
        assert texts == ["1", "1"]
        await settle()
        assert len(responder.resets) == 1
        assert responder.accepted == 1
        pool = client._transport.pool  # type: ignore[attr-defined]
        assert pool.connections_in_use() == 0


@memory_test
async def test_stream_limit_opens_another_connection(
    backend: MemoryBackend, responder: H2Responder
) -> None:
    async with open_client(backend) as client:
        await client.get(f"{URL}/conn")  # learn SETTINGS_MAX_CONCURRENT_STREAMS = 3
        texts: list[str] = []

        async def one() -> None:
            texts.append((await client.get(f"{URL}/slow/1")).text)

        start = backend.monotonic()
        async with trio.open_nursery() as nursery:
            for _ in range(5):
                nursery.start_soon(one)
        assert sorted(texts) == ["1", "1", "1", "2", "2"]
        assert responder.accepted == 2
        assert elapsed_since(backend, start) == pytest.approx(1.0)


@memory_test
async def test_stream_ids_exhausted_opens_another_connection(
    backend: MemoryBackend, responder: H2Responder
) -> None:
    async with open_client(backend) as client:
        assert (await client.get(f"{URL}/conn")).text == "1"
        pool = client._transport.pool  # type: ignore[attr-defined]
        (conn,) = pool.connections()
        # Jump to the end of the stream-id space (RFC 9113 section 5.1.1).
        conn._h2._conn.highest_outbound_stream_id = 2**31 - 3
        assert (await client.get(f"{URL}/conn")).text == "1"  # id 2**31 - 1, the last
        assert (await client.get(f"{URL}/conn")).text == "2"  # a new connection
        await settle()
        assert responder.accepted == 2
        assert responder.open == 1  # the exhausted one was closed once idle
        assert [c.requests_sent for c in pool.connections()] == [1]
