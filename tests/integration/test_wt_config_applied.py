"""The :class:`~webwire.webtransport.ClientConfig` limits a WebTransport
session applies, against aioquic's draft-02 server and pywebtransport 0.21's
server (the current draft): ``max_datagram_size``, ``max_streams`` with
``stream_creation_timeout``, ``max_incoming_streams``,
``max_stream_buffer_size``, the receive windows
(``flow_control_window_size``, ``initial_max_data``) and the current
draft's stream limit (``initial_max_streams_uni``).

Every scenario is one coroutine run on asyncio and trio (``anyio``) and on
the blocking backend (``run_sync``). The window scenarios pull several
times the session's receive window through one stream: against
pywebtransport's server (which honours session flow control) they stall
without WT_MAX_DATA / WT_MAX_STREAMS capsules.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

import pytest
from wt_servers import WTServerInfo

from webwire import DatagramTooLarge, TimeoutException, WriteTimeout
from webwire._sync import run_sync
from webwire.webtransport import ClientConfig, WebTransportSession, open_session

pytestmark = pytest.mark.timeout(120)

Opener = Callable[..., Awaitable[WebTransportSession]]
Scenario = Callable[[Opener, WTServerInfo], Awaitable[None]]


def opener(info: WTServerInfo, backend: str | None) -> Opener:
    async def open_(path: str, **fields: Any) -> WebTransportSession:
        config = ClientConfig(ca_certs=info.ca_path, **fields)
        return await open_session(
            str(info.url) + path,
            config=config,
            verify=info.ca_path,
            timeout=10.0,
            _backend=backend,
        )

    return open_


async def datagram_size(open_: Opener, info: WTServerInfo) -> None:
    async with await open_("/echo", max_datagram_size=300) as session:
        assert session.datagrams.max_datagram_size == 300
        with pytest.raises(DatagramTooLarge) as caught:
            await session.datagrams.send(b"x" * 301)
        assert caught.value.limit == 300 and "300" in str(caught.value)
        got = None
        for attempt in range(20):  # datagrams may be lost
            await session.datagrams.send(b"d" * 297 + b"%03d" % attempt)
            try:
                got = await session.datagrams.receive(0.5)
            except TimeoutException:
                continue
            break
        assert got is not None and len(got) == 300
    async with await open_("/echo", max_datagram_size=65535) as session:
        # The path's limit applies when it is lower than the configured one.
        assert 1000 < session.datagrams.max_datagram_size < 1200


async def local_stream_limit(open_: Opener, info: WTServerInfo) -> None:
    async with await open_("/echo", max_streams=2, stream_creation_timeout=0.3) as session:
        first = await session.create_bidirectional_stream()
        second = await session.create_unidirectional_stream()
        with pytest.raises(WriteTimeout) as caught:
            await session.create_bidirectional_stream()
        message = str(caught.value)
        assert "stream_creation_timeout=0.3" in message and "max_streams" in message
        with pytest.raises(WriteTimeout):
            await session.create_unidirectional_stream()
        # Once a stream is over both ways another may open.
        await first.write_all(b"first")
        assert await first.read_all() == b"first"
        await first.wait_closed(5)
        third = await session.create_bidirectional_stream()
        await third.write_all(b"third")
        assert await third.read_all() == b"third"
        await second.write_all(b"second")
        assert session.get_session_stats()["streams_opened"] == 3


async def incoming_limit(open_: Opener, info: WTServerInfo) -> None:
    # The server opens three bidirectional and three unidirectional streams.
    async with await open_("/server-streams?count=3", max_incoming_streams=2) as session:
        backend = session._conn._backend
        for _ in range(250):
            if session.get_session_stats()["streams_refused"] >= 4:
                break
            await backend.sleep(0.02)
        assert session.get_session_stats()["streams_refused"] == 4
        accepted = [await session.accept_stream(5), await session.accept_stream(5)]
        assert all(stream is not None for stream in accepted)


async def echo_through(session: WebTransportSession, size: int) -> int:
    """Echo ``size`` bytes through one bidirectional stream; the bytes
    received back."""
    block = bytes(range(256)) * 1024  # 256 KiB
    stream = await session.create_bidirectional_stream()
    received = 0

    async def reader() -> None:
        nonlocal received
        while True:
            data = await stream.read(1 << 20)
            if not data:
                return
            offset = received % len(block)
            assert data == (block[offset:] + block * 5)[: len(data)]
            received += len(data)

    async with session._conn._backend.create_task_group() as tg:
        tg.start_soon(reader)
        for _ in range(size // len(block)):
            await stream.write(block)
        await stream.close()
    return received


async def session_window(open_: Opener, info: WTServerInfo) -> None:
    # A small window: the server may only send on once WT_MAX_DATA (current
    # draft) or QUIC MAX_DATA grant more.
    size = 8 * 1024 * 1024
    async with await open_("/echo", flow_control_window_size=128 * 1024) as session:
        assert await echo_through(session, size) == size
        core = session._core
        if info.draft == "current":
            assert core.recv_window == 128 * 1024
            assert core.credit_capsules_sent >= size // (128 * 1024) - 1
            assert core.consumed == size and core.recv_limit >= size
        else:
            assert core.recv_window is None and core.credit_capsules_sent == 0


async def default_window(open_: Opener, info: WTServerInfo) -> None:
    # 64 MiB through one session: eight times the default window.
    size = 64 * 1024 * 1024
    async with await open_("/echo") as session:
        assert await echo_through(session, size) == size
        if info.draft == "current":
            assert session._core.credit_capsules_sent >= 14


async def incoming_stream_credit(open_: Opener, info: WTServerInfo) -> None:
    # Each unidirectional stream is echoed on a new server stream: beyond
    # the first two the server needs WT_MAX_STREAMS (current draft).
    async with await open_("/echo", initial_max_streams_uni=2) as session:
        for i in range(7):
            uni = await session.create_unidirectional_stream()
            await uni.write_all(b"uni %d" % i)
            echo = await session.accept_stream(10)
            assert echo is not None and echo.direction == "receive"
            assert await echo.read_all() == b"uni %d" % i
        if info.draft == "current":
            assert session._core.incoming_limit[True] >= 2 + 6


async def stream_buffer_bound(open_: Opener, info: WTServerInfo) -> None:
    # 960 KiB echoed while nobody reads: beyond 256 KiB unread the session's
    # connection stops receiving until the stream is read down.
    total = 960 * 1024
    async with await open_("/echo", max_stream_buffer_size=256 * 1024) as session:
        backend = session._conn._backend
        stream = await session.create_bidirectional_stream()
        state = stream._core.state
        assert state.limit == 256 * 1024
        await stream.write(b"b" * total, end_stream=True)
        seen, steady = -1, 0
        for _ in range(250):
            await backend.sleep(0.02)
            steady = steady + 1 if state.buffered == seen else 0
            seen = state.buffered
            if steady >= 10:
                break
        assert state.over and 256 * 1024 < state.buffered < total
        assert await stream.read_all() == b"b" * total
        assert not state.over


SCENARIOS: dict[str, Scenario] = {
    "stream_buffer_bound": stream_buffer_bound,
    "session_window": session_window,
    "default_window": default_window,
    "incoming_stream_credit": incoming_stream_credit,
    "datagram_size": datagram_size,
    "local_stream_limit": local_stream_limit,
}



@pytest.mark.anyio
@pytest.mark.parametrize("name", list(SCENARIOS))
async def test_async(name: str, wt_server: WTServerInfo) -> None:
    await SCENARIOS[name](opener(wt_server, None), wt_server)


@pytest.mark.parametrize("name", list(SCENARIOS))
def test_sync(name: str, wt_server: WTServerInfo) -> None:
    run_sync(SCENARIOS[name](opener(wt_server, "sync"), wt_server))


# aioquic's server opens ``count`` streams of each kind on ``/server-streams``.


@pytest.mark.anyio
async def test_incoming_limit(wt_aioquic: WTServerInfo) -> None:
    await incoming_limit(opener(wt_aioquic, None), wt_aioquic)


def test_incoming_limit_sync(wt_aioquic: WTServerInfo) -> None:
    run_sync(incoming_limit(opener(wt_aioquic, "sync"), wt_aioquic))
