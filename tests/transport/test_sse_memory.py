"""Server-sent event reconnection timing on the memory backend's fake clock:
the default 3 s wait, the server's ``retry`` time, the policy's backoff
when it is longer, attempts counted by the policy (and started afresh by a
connection that delivers events), 204 and errors.

The server is a MockTransport handler; every request records the virtual
time it arrived at, so waits are checked exactly."""

from __future__ import annotations

import math
from collections.abc import AsyncIterator, Callable
from typing import Any

import pytest
import trio

import webwire
from webwire._backends.memory import MemoryBackend, memory_test
from webwire._retry import Retry

URL = "http://sse.test/events"
SSE = {"Content-Type": "text/event-stream"}


class Server:
    """Answers request ``n`` (0-based) with ``script[n](request)`` (``204``
    after the script), and keeps the virtual arrival time (since the server
    was made) and ``Last-Event-ID`` of each request."""

    def __init__(self, script: list[Callable[[webwire.Request], webwire.Response]]) -> None:
        self.script = script
        self.start = trio.current_time()
        self.times: list[float] = []
        self.last_ids: list[str | None] = []
        self.requests: list[webwire.Request] = []

    async def __call__(self, request: webwire.Request) -> webwire.Response:
        self.times.append(trio.current_time() - self.start)
        self.last_ids.append(request.headers.get("Last-Event-ID"))
        self.requests.append(request)
        n = len(self.times) - 1
        if n >= len(self.script):
            return webwire.Response(204)
        return self.script[n](request)


def events(body: bytes) -> Callable[[webwire.Request], webwire.Response]:
    return lambda request: webwire.Response(200, headers=SSE, content=body)


def fail(error: type[Exception]) -> Callable[[webwire.Request], webwire.Response]:
    def answer(request: webwire.Request) -> webwire.Response:
        raise error("connection refused", request=request)  # type: ignore[call-arg]

    return answer


def dropped(body: bytes) -> Callable[[webwire.Request], webwire.Response]:
    """A stream that sends ``body`` then fails with a read error."""

    async def chunks() -> AsyncIterator[bytes]:
        yield body
        raise webwire.ReadError("connection reset")

    return lambda request: webwire.Response(200, headers=SSE, content=chunks())


def client(server: Server) -> webwire.AsyncClient:
    return webwire.AsyncClient(transport=webwire.MockTransport(server), _backend=MemoryBackend())


async def collect(source: Any) -> list[webwire.ServerSentEvent]:
    return [event async for event in source]


@memory_test
async def test_reconnect_after_default_wait_with_last_event_id() -> None:
    server = Server(
        [events(b"id: 1\ndata: a\n\n"), events(b"id: 2\ndata: b\n\ndata: c\n\n")]
    )
    async with client(server) as c:
        got = await collect(c.sse(URL))
    assert [(e.id, e.data) for e in got] == [("1", "a"), ("2", "b"), ("2", "c")]
    assert server.times == [0.0, 3.0, 6.0]
    assert server.last_ids == [None, "1", "2"]
    headers = server.requests[0].headers
    assert headers["Accept"] == "text/event-stream"
    assert headers["Cache-Control"] == "no-store"


@memory_test
async def test_server_retry_time() -> None:
    server = Server([events(b"retry: 500\ndata: a\n\n"), events(b"retry: 12000\ndata: b\n\n")])
    async with client(server) as c:
        got = await collect(c.sse(URL))
    assert [e.retry for e in got] == [500, 12000]
    assert server.times == [0.0, 0.5, 12.5]


@memory_test
async def test_backoff_longer_than_retry_wins() -> None:
    # Streams without events: consecutive failures, backoff 10 * 2**(n-1).
    server = Server([events(b"retry: 1000\n\n"), events(b""), events(b""), events(b"data: x\n\n")])
    async with client(server) as c:
        got = await collect(c.sse(URL, retry=Retry(5, backoff_factor=10.0)))
    assert [e.data for e in got] == ["x"]
    # waits: 1 s (first retry: no backoff), 20 s, 40 s, then 1 s (count reset).
    assert server.times == [0.0, 1.0, 21.0, 61.0, 62.0]


@memory_test
async def test_attempts_exhausted_end_the_stream() -> None:
    server = Server([events(b": nothing\n\n")] * 10)
    async with client(server) as c:
        got = await collect(c.sse(URL, retry=2))
    assert got == []
    assert server.times == [0.0, 3.0, 6.0]


@memory_test
async def test_events_restart_the_count() -> None:
    server = Server([events(b"data: %d\n\n" % i) for i in range(6)])
    async with client(server) as c:
        got = await collect(c.sse(URL, retry=1))
    assert [e.data for e in got] == [str(i) for i in range(6)]
    # Six streams and the 204: a Retry(1) was never exhausted.
    assert server.times == [0.0, 3.0, 6.0, 9.0, 12.0, 15.0, 18.0]


@memory_test
async def test_network_errors_retried_then_raised() -> None:
    server = Server([fail(webwire.ConnectError), events(b"data: ok\n\n")])
    async with client(server) as c:
        got = await collect(c.sse(URL))
    assert [e.data for e in got] == ["ok"]
    assert server.times == [0.0, 3.0, 6.0]

    server = Server([fail(webwire.ConnectError)] * 5)
    async with client(server) as c:
        with pytest.raises(webwire.ConnectError):
            await collect(c.sse(URL, retry=Retry(2, backoff_factor=1.0)))
    assert server.times == [0.0, 3.0, 6.0]


@memory_test
async def test_dropped_stream_resumes() -> None:
    server = Server([dropped(b"id: 7\ndata: first\n\ndata: partial"), events(b"data: more\n\n")])
    async with client(server) as c:
        got = await collect(c.sse(URL))
    assert [e.data for e in got] == ["first", "more"]
    assert server.last_ids == [None, "7", "7"]
    assert server.times == [0.0, 3.0, 6.0]


@memory_test
async def test_no_reconnection_with_retry_none() -> None:
    server = Server([events(b"data: a\n\n"), events(b"data: b\n\n")])
    async with client(server) as c:
        got = await collect(c.sse(URL, retry=None))
        assert [e.data for e in got] == ["a"]
        server2 = Server([dropped(b"data: a\n\n")])
        async with webwire.AsyncClient(
            transport=webwire.MockTransport(server2), _backend=MemoryBackend()
        ) as c2:
            with pytest.raises(webwire.ReadError):
                await collect(c2.sse(URL, retry=None))
    assert server.times == [0.0]


@memory_test
async def test_204_stops_without_reconnecting() -> None:
    server = Server([lambda request: webwire.Response(204)])
    async with client(server) as c:
        assert await collect(c.sse(URL)) == []
    assert server.times == [0.0]


@memory_test
async def test_wrong_answers_raise_sse_error() -> None:
    server = Server([lambda request: webwire.Response(200, text="not events")])
    async with client(server) as c:
        with pytest.raises(webwire.SSEError, match="text/event-stream") as info:
            async with c.sse(URL):
                pass
    assert info.value.response is not None
    assert info.value.response.status_code == 200

    server = Server([lambda request: webwire.Response(503, headers=SSE)])
    async with client(server) as c:
        with pytest.raises(webwire.SSEError, match="503"):
            await collect(c.sse(URL))
    assert server.times == [0.0]

    # On a reconnection too.
    server = Server([events(b"data: a\n\n"), lambda request: webwire.Response(404)])
    async with client(server) as c:
        got: list[str] = []
        with pytest.raises(webwire.SSEError, match="404"):
            async for event in c.sse(URL):
                got.append(event.data)
    assert got == ["a"]


@memory_test
async def test_last_event_id_argument_and_utf8() -> None:
    server = Server([events("id: é1\ndata: a\n\n".encode())])
    async with client(server) as c:
        async with c.sse(URL, last_event_id="start", retry=1) as source:
            got = await collect(source)
            assert source.last_event_id == "é1"
    assert [e.id for e in got] == ["é1"]
    assert server.last_ids[0] == "start"
    # Sent as UTF-8 bytes on the wire.
    assert server.last_ids[1] is not None
    assert server.last_ids[1].encode("latin-1").decode("utf-8") == "é1"


def test_bad_retry_type() -> None:
    c = webwire.AsyncClient()
    with pytest.raises(TypeError, match="retry"):
        c.sse(URL, retry="3")  # type: ignore[arg-type]


class SilentStreamServer:
    """An HTTP/1.1 server on the memory backend: each connection gets an
    event stream with one event (``id`` = connection number), then
    silence; the arrival time and ``Last-Event-ID`` of each request are
    kept."""

    def __init__(self, backend: MemoryBackend) -> None:
        self.backend = backend
        self.start = backend.monotonic()
        self.times: list[float] = []
        self.last_ids: list[str | None] = []

    async def __call__(self, stream: Any) -> None:
        buffer = b""
        while b"\r\n\r\n" not in buffer:
            data = await stream.read(65536, None)
            if not data:
                return
            buffer += data
        head = buffer.partition(b"\r\n\r\n")[0].decode("latin-1")
        fields = dict(
            line.split(": ", 1) for line in head.split("\r\n")[1:] if ": " in line
        )
        self.times.append(self.backend.monotonic() - self.start)
        self.last_ids.append(fields.get("Last-Event-ID"))
        event = b"id: %d\ndata: hello\n\n" % len(self.times)
        await stream.write(
            b"HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\n"
            b"Transfer-Encoding: chunked\r\n\r\n%x\r\n%s\r\n" % (len(event), event),
            None,
        )
        await self.backend.sleep(math.inf)


@memory_test
async def test_silent_stream_read_timeout_then_reconnect() -> None:
    backend = MemoryBackend()
    server = SilentStreamServer(backend)
    backend.serve_tcp("sse.test", 80, server)
    async with webwire.AsyncClient(_backend=backend) as c:
        got = []
        async with c.sse(URL) as source:
            async for event in source:
                got.append(event.id)
                if len(got) == 3:
                    break
        # The default SSE read timeout (60 s) ends each silent stream; the
        # reconnection waits the default 3 s.
        assert server.times == [0.0, 63.0, 126.0]
        assert server.last_ids == [None, "1", "2"]
        assert got == ["1", "2", "3"]

        server.times.clear()
        server.start = backend.monotonic()
        got = []
        async with c.sse(URL, timeout=webwire.Timeout(5.0, read=10.0)) as source:
            async for event in source:
                got.append(event.id)
                if len(got) == 2:
                    break
        assert server.times == [0.0, 13.0]
    assert backend.open_connections() == []
