"""WebTransport sessions against real servers we did not write: aioquic's
draft-02 server (``wt_server_aioquic.py``) and pywebtransport 0.21's
server (the current draft, ``wt_server_pywebtransport.py``).

Every scenario is one coroutine run on asyncio and trio (``anyio``) and
through the blocking API (the same coroutines on the blocking backend,
driven by ``run_sync``).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

import pytest
from wt_servers import WTServerInfo

import webwire
from webwire import DatagramTooLarge, SessionClosed, StreamReset, WebTransportError
from webwire._sync import run_sync
from webwire.webtransport import SessionState, WebTransportSession, open_session

pytestmark = pytest.mark.timeout(120)

Opener = Callable[..., Awaitable[WebTransportSession]]
Scenario = Callable[[Opener, WTServerInfo], Awaitable[None]]



def opener(info: WTServerInfo, backend: str | None) -> Opener:
    async def open_(path: str, **options: Any) -> WebTransportSession:
        options.setdefault("timeout", 10.0)
        return await open_session(
            str(info.url) + path, verify=info.ca_path, _backend=backend, **options
        )

    return open_


def group(session: WebTransportSession) -> Any:
    return session._conn._backend.create_task_group()


# -- scenarios ------------------------------------------------------------------------


async def stream_echo(open_: Opener, info: WTServerInfo) -> None:
    async with await open_("/echo") as session:
        assert session.is_ready and session.state is SessionState.CONNECTED
        assert session.draft == ("current" if info.name == "pywebtransport" else "draft02")
        stream = await session.create_bidirectional_stream()
        assert stream.direction == "bidirectional"
        await stream.write(b"line one\nline ")
        assert await stream.readline() == b"line one\n"
        await stream.write(b"two\n", end_stream=True)
        assert await stream.readuntil(b"\n") == b"line two\n"
        assert await stream.read() == b""
        await stream.wait_closed(5)
        uni = await session.create_unidirectional_stream()
        await uni.write_all(b"one way")
        echo = await session.accept_stream(10)
        assert echo is not None and echo.direction == "receive"
        assert await echo.read_all() == b"one way"
        stats = session.get_session_stats()
        assert stats["streams_opened"] == 2 and stats["bytes_sent"] == 25
    assert session.is_closed


async def many_streams(open_: Opener, info: WTServerInfo) -> None:
    async with await open_("/echo") as session:
        results: dict[int, bytes] = {}

        async def one(i: int) -> None:
            stream = await session.create_bidirectional_stream()
            await stream.write_all(b"stream %d " % i * 10)
            results[i] = await stream.read_all()

        async with group(session) as tg:
            for i in range(100):
                tg.start_soon(one, i)
        assert results == {i: b"stream %d " % i * 10 for i in range(100)}


async def big_stream(open_: Opener, info: WTServerInfo) -> None:
    size = 64 * 1024 * 1024
    block = bytes(range(256)) * 4096  # 1 MiB
    async with await open_("/echo") as session:
        stream = await session.create_bidirectional_stream()
        received = 0
        mismatches = 0

        async def reader() -> None:
            nonlocal received, mismatches
            while True:
                data = await stream.read(1 << 20)
                if not data:
                    return
                offset = received % len(block)
                if len(data) <= len(block) and data != (block[offset:] + block)[: len(data)]:
                    mismatches += 1
                received += len(data)

        async with group(session) as tg:
            tg.start_soon(reader)
            for _ in range(size // len(block) // 32):
                await stream.write(block * 32)  # 32 MiB writes wait for credit
            await stream.close()
        assert received == size and mismatches == 0


async def server_streams(open_: Opener, info: WTServerInfo) -> None:
    async with await open_("/server-streams") as session:
        seen = {"bidirectional": 0, "receive": 0}
        while True:
            stream = await session.accept_stream(10)
            assert stream is not None
            seen[stream.direction] += 1
            if stream.direction == "receive":
                assert (await stream.read_all()).startswith(b"unidirectional stream")
            else:
                assert (await stream.readline()).startswith(b"bidirectional stream")
                await stream.write_all(b"answer")
                assert await stream.read_all() == b"answer"
            if seen["bidirectional"] and seen["receive"]:
                break


async def datagrams(open_: Opener, info: WTServerInfo) -> None:
    async with await open_("/echo") as session:
        limit = session.datagrams.max_datagram_size
        assert 1000 < limit < 1200
        with pytest.raises(DatagramTooLarge) as caught:
            await session.datagrams.send(b"x" * (limit + 1))
        assert caught.value.limit == limit and str(limit) in str(caught.value)
        got = None
        for attempt in range(20):  # datagrams may be lost
            await session.datagrams.send(b"d" * (limit - 10) + b"%03d" % attempt)
            try:
                got = await session.datagrams.receive(0.5)
                break
            except webwire.ReadTimeout:
                continue
        assert got is not None and got.startswith(b"d" * (limit - 10))
        assert session.datagrams.datagrams_sent >= 1


async def server_close(open_: Opener, info: WTServerInfo) -> None:
    session = await open_("/close?code=17&reason=going+away")
    await _server_closed(session)


async def _server_closed(session: WebTransportSession) -> None:
    try:
        await _check_server_closed(session)
    finally:
        await session.close()


async def _check_server_closed(session: WebTransportSession) -> None:
    await session.wait_closed(10)
    assert session.is_closed
    assert (session.close_code, session.close_reason) == (17, "going away")
    with pytest.raises(SessionClosed) as caught:
        await session.create_bidirectional_stream()
    assert caught.value.code == 17 and caught.value.reason == "going away"
    await session.close()


async def client_close(open_: Opener, info: WTServerInfo) -> None:
    session = await open_("/echo?tag=close-" + str(id(open_)))
    stream = await session.create_bidirectional_stream()
    await stream.write(b"a")
    assert await stream.read() == b"a"
    await session.close(3, "done here")
    assert session.state is SessionState.CLOSED
    assert (session.close_code, session.close_reason) == (3, "done here")
    with pytest.raises(SessionClosed):
        await stream.write(b"more")
    if info.server is not None:
        record = next(r for r in info.server.sessions if r.path == session.path)
        assert info.server.wait_for(lambda: record.closed)
        assert (record.close_code, record.close_reason) == (3, "done here")


async def resets(open_: Opener, info: WTServerInfo) -> None:
    async with await open_("/reset?code=5") as session:
        stream = await session.create_bidirectional_stream()
        await stream.write(b"anything")
        with pytest.raises(StreamReset) as caught:
            while await stream.read():
                pass
        assert caught.value.code == 5
    async with await open_("/echo") as session:
        stream = await session.create_bidirectional_stream()
        await stream.write(b"abc")
        assert await stream.readexactly(3) == b"abc"
        stream.abort(9)
        with pytest.raises(StreamReset):
            await stream.write(b"x")
        stream.stop_receiving(9)
        assert await stream.read() == b""
        # The session goes on after a stream reset.
        other = await session.create_bidirectional_stream()
        await other.write_all(b"still here")
        assert await other.read_all() == b"still here"


async def refused(open_: Opener, info: WTServerInfo) -> None:
    with pytest.raises(WebTransportError, match="404"):
        await open_("/no-such-route")


SCENARIOS = {
    "stream_echo": stream_echo,
    "many_streams": many_streams,
    "big_stream": big_stream,
    "server_streams": server_streams,
    "datagrams": datagrams,
    "server_close": server_close,
    "client_close": client_close,
    "resets": resets,
    "refused": refused,
}



@pytest.mark.anyio
@pytest.mark.parametrize("name", list(SCENARIOS))
async def test_async(name: str, wt_server: WTServerInfo) -> None:
    await SCENARIOS[name](opener(wt_server, None), wt_server)


@pytest.mark.parametrize("name", list(SCENARIOS))
def test_sync(name: str, wt_server: WTServerInfo) -> None:
    run_sync(SCENARIOS[name](opener(wt_server, "sync"), wt_server))


# -- through the clients --------------------------------------------------------------


@pytest.mark.anyio
async def test_async_client_webtransport(wt_aioquic: WTServerInfo) -> None:
    async with webwire.AsyncClient(verify=wt_aioquic.ca_path, base_url=wt_aioquic.url) as client:
        async with await client.webtransport("/echo") as session:
            stream = await session.create_bidirectional_stream()
            await stream.write_all(b"via the client")
            assert await stream.read_all() == b"via the client"


def test_sync_client_webtransport(wt_aioquic: WTServerInfo) -> None:
    with webwire.Client(verify=wt_aioquic.ca_path) as client:
        with client.webtransport(wt_aioquic.route("/echo")) as session:
            stream = session.create_bidirectional_stream()
            stream.write_all(b"blocking")
            assert stream.read_all() == b"blocking"
            assert session.is_ready
            session.datagrams.send(b"x")
        assert session.is_closed


def test_sync_session_shared_by_threads(wt_aioquic: WTServerInfo) -> None:
    import threading

    with webwire.Client(verify=wt_aioquic.ca_path) as client:
        with client.webtransport(wt_aioquic.route("/echo")) as session:
            results: dict[int, bytes] = {}

            def work(i: int) -> None:
                for _ in range(5):
                    stream = session.create_bidirectional_stream()
                    stream.write_all(b"thread %d" % i)
                    results[i] = stream.read_all()

            threads = [threading.Thread(target=work, args=(i,)) for i in range(8)]
            for thread in threads:
                thread.start()
            for thread in threads:
                thread.join(60)
            assert results == {i: b"thread %d" % i for i in range(8)}


async def server_gone(open_: Opener, relay: Any) -> None:
    session = await open_("/echo", config=_Config(max_idle_timeout=1.0))
    async with session:
        stream = await session.create_bidirectional_stream()
        await stream.write(b"ping")
        assert await stream.read() == b"ping"
        relay.set_rates(loss=1.0)  # the server goes silent
        with pytest.raises(SessionClosed, match="timed out"):
            await stream.read()
        await session.wait_closed(30)
        assert session.is_closed
        with pytest.raises(SessionClosed):
            await session.datagrams.send(b"x")


async def server_stopped(open_: Opener, info: WTServerInfo) -> None:
    async with await open_("/echo") as session:
        stream = await session.create_bidirectional_stream()
        info.server.stop()
        with pytest.raises(SessionClosed, match="connection"):
            await stream.read()
        assert session.is_closed


@pytest.mark.anyio
async def test_server_gone_idle_timeout(wt_aioquic: WTServerInfo) -> None:
    from udp_relay import LossyUDPRelay

    with LossyUDPRelay(("127.0.0.1", wt_aioquic.port), loss=0, reorder=0, duplicate=0) as relay:
        await server_gone(opener(_through_relay(wt_aioquic, relay), None), relay)


def test_server_gone_idle_timeout_sync(wt_aioquic: WTServerInfo) -> None:
    from udp_relay import LossyUDPRelay

    with LossyUDPRelay(("127.0.0.1", wt_aioquic.port), loss=0, reorder=0, duplicate=0) as relay:
        run_sync(server_gone(opener(_through_relay(wt_aioquic, relay), "sync"), relay))


@pytest.mark.anyio
async def test_server_stopped(wt_aioquic_restartable: WTServerInfo) -> None:
    await server_stopped(opener(wt_aioquic_restartable, None), wt_aioquic_restartable)


def test_server_stopped_sync(wt_aioquic_restartable: WTServerInfo) -> None:
    run_sync(server_stopped(opener(wt_aioquic_restartable, "sync"), wt_aioquic_restartable))


class _Config:
    def __init__(self, **values: Any) -> None:
        self.__dict__.update(values)

    def __getattr__(self, name: str) -> Any:
        return None


def test_bad_urls() -> None:
    with pytest.raises(webwire.InvalidURL):
        run_sync(open_session("http://example.com/x", _backend="sync"))
    with pytest.raises(webwire.InvalidURL):
        run_sync(open_session("https:///nohost", _backend="sync"))


# -- a lossy path ---------------------------------------------------------------------


async def lossy_echo(open_: Opener, info: WTServerInfo) -> None:
    payloads = {i: bytes([i]) * (256 * 1024) + b"end %d" % i for i in range(8)}
    async with await open_("/echo") as session:
        results: dict[int, bytes] = {}

        async def one(i: int) -> None:
            stream = await session.create_bidirectional_stream()
            await stream.write_all(payloads[i])
            results[i] = await stream.read_all()

        async with group(session) as tg:
            for i in payloads:
                tg.start_soon(one, i)
        assert results == payloads


def _through_relay(info: WTServerInfo, relay: Any) -> WTServerInfo:
    import dataclasses

    import yarl

    url = yarl.URL.build(scheme="https", host="127.0.0.1", port=relay.port)
    return dataclasses.replace(info, url=url, port=relay.port)


@pytest.mark.anyio
async def test_lossy_path_delivers_every_byte(wt_aioquic: WTServerInfo) -> None:
    from udp_relay import LossyUDPRelay

    with LossyUDPRelay(("127.0.0.1", wt_aioquic.port), loss=0.05, seed=7) as relay:
        info = _through_relay(wt_aioquic, relay)
        await lossy_echo(opener(info, None), info)
        assert relay.counters().dropped > 0


def test_lossy_path_delivers_every_byte_sync(wt_aioquic: WTServerInfo) -> None:
    from udp_relay import LossyUDPRelay

    with LossyUDPRelay(("127.0.0.1", wt_aioquic.port), loss=0.05, seed=11) as relay:
        info = _through_relay(wt_aioquic, relay)
        run_sync(lossy_echo(opener(info, "sync"), info))
        assert relay.counters().dropped > 0


# -- more server behaviour --------------------------------------------------------------


async def drain(open_: Opener, info: WTServerInfo) -> None:
    async with await open_("/drain") as session:
        stream = await session.create_bidirectional_stream()
        await stream.write_all(b"still served")
        assert await stream.read_all() == b"still served"
        assert session.state is SessionState.DRAINING
        assert session.is_ready


@pytest.mark.anyio
async def test_drain_async(wt_aioquic: WTServerInfo) -> None:
    await drain(opener(wt_aioquic, None), wt_aioquic)


def test_drain_sync(wt_aioquic: WTServerInfo) -> None:
    run_sync(drain(opener(wt_aioquic, "sync"), wt_aioquic))


@pytest.mark.anyio
async def test_server_without_webtransport(h3_hypercorn: Any) -> None:
    with pytest.raises(WebTransportError, match="does not support WebTransport"):
        await open_session(
            str(h3_hypercorn.url) + "/", verify=h3_hypercorn.ca_path, timeout=10
        )


# -- the client package over these sessions ---------------------------------------------


@pytest.mark.anyio
async def test_webtransport_client_package(wt_pywebtransport: WTServerInfo) -> None:
    from webwire.webtransport import ClientConfig, WebTransportClient

    config = ClientConfig(ca_certs=wt_pywebtransport.ca_path)
    async with WebTransportClient(config=config) as client:
        session = await client.connect(wt_pywebtransport.route("/echo"))
        stream = await session.create_bidirectional_stream()
        await stream.write_all(b"through WebTransportClient")
        assert await stream.read_all() == b"through WebTransportClient"
        await session.close()
        assert client.stats.connections_attempted == 1


def test_webtransport_client_package_sync(wt_aioquic: WTServerInfo) -> None:
    from webwire.webtransport import ClientConfig
    from webwire.webtransport.sync import WebTransportClient

    with WebTransportClient(config=ClientConfig(ca_certs=wt_aioquic.ca_path)) as client:
        session = client.connect(wt_aioquic.route("/echo"))
        stream = session.create_bidirectional_stream()
        stream.write_all(b"blocking client")
        assert stream.read_all() == b"blocking client"
        session.close()


async def incoming_bound(open_: Opener, info: WTServerInfo) -> None:
    session = await open_("/server-streams?count=3", config=_Config(stream_buffer_size=2))
    async with session:
        backend = session._conn._backend
        for _ in range(200):
            if session.get_session_stats()["streams_refused"] >= 4:
                break
            await backend.sleep(0.02)
        assert session.get_session_stats()["streams_refused"] == 4
        first = await session.accept_stream(5)
        second = await session.accept_stream(5)
        assert first is not None and second is not None
        for stream in (first, second):
            if stream.direction == "receive":
                assert (await stream.read_all()).startswith(b"unidirectional")
            else:
                assert (await stream.readline()).startswith(b"bidirectional")


@pytest.mark.anyio
async def test_incoming_streams_bounded(wt_aioquic: WTServerInfo) -> None:
    await incoming_bound(opener(wt_aioquic, None), wt_aioquic)


def test_incoming_streams_bounded_sync(wt_aioquic: WTServerInfo) -> None:
    run_sync(incoming_bound(opener(wt_aioquic, "sync"), wt_aioquic))


async def silent_server(backend: str | None) -> None:
    """A UDP port that never answers: the session attempt ends with a
    ConnectTimeout that names the whole budget, even when the host has
    two addresses and the second attempt had only what was left of it."""
    import socket

    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as silent:
        silent.bind(("127.0.0.1", 0))
        port = silent.getsockname()[1]
        for host in ("127.0.0.1", "localhost"):
            with pytest.raises(webwire.ConnectTimeout) as caught:
                await open_session(f"https://{host}:{port}/echo", timeout=0.3, _backend=backend)
            assert f"{host}:{port} within 0.3 seconds" in str(caught.value)


@pytest.mark.anyio
async def test_silent_server_times_out() -> None:
    await silent_server(None)


def test_silent_server_times_out_sync() -> None:
    run_sync(silent_server("sync"))
