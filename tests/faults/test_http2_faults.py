"""HTTP/2 clients against scripted servers built on h2's server side:
RST_STREAM on one stream, GOAWAY mid-load, a stream limit of 2, a server
that breaks the protocol or closes mid-response. Each scenario runs on
asyncio, trio and the blocking client, and checks the pool afterwards."""

from __future__ import annotations

from collections.abc import Callable, Coroutine
from typing import Any

import pytest
from h2_server import H2Server, Peer

import webwire
from webwire._sync import run_sync

OpenApi = Callable[..., Any]
Scenario = Callable[[OpenApi], Coroutine[Any, Any, None]]

H2C = {"http1": False, "http2": True}


def rst_second_stream(peer: Peer) -> None:
    while True:
        request = peer.next_request()
        if request is None:
            return
        stream_id, fields = request
        if fields[b":path"] == b"/reset":
            peer.conn.reset_stream(stream_id, 2)  # INTERNAL_ERROR
            peer.flush()
        else:
            peer.respond(stream_id, 200, fields[b":path"])


async def s_rst_stream_fails_one_request_only(open_api: OpenApi) -> None:
    with H2Server(rst_second_stream) as server:
        async with open_api(**H2C) as api:
            r = await api.get(f"{server.url}/a")
            assert r.http_version == "HTTP/2" and r.content == b"/a"
            with pytest.raises(webwire.RemoteProtocolError, match="INTERNAL_ERROR"):
                await api.get(f"{server.url}/reset")
            r = await api.get(f"{server.url}/b")
            assert r.content == b"/b"
            assert server.connections == 1  # the connection survived the reset
            assert api.in_use() == 0


def goaway_after_first(peer: Peer) -> None:
    """First connection: take three requests, GOAWAY with last_stream_id 1,
    answer stream 1 after the GOAWAY. Later connections serve normally."""
    if peer.index > 0:
        peer.serve_forever()
        return
    streams = []
    while len(streams) < 3:
        request = peer.next_request()
        if request is None:
            return
        streams.append(request)
    peer.conn.close_connection(0, last_stream_id=streams[0][0])
    peer.conn.state_machine.state = peer.conn.state_machine.state.SERVER_OPEN
    peer.flush()
    peer.respond(streams[0][0], 200, streams[0][1][b":path"])
    while peer.pump():
        pass


async def s_goaway_retries_unprocessed_streams(open_api: OpenApi) -> None:
    with H2Server(goaway_after_first) as server:
        async with open_api(**H2C) as api:
            paths = ["/1", "/2", "/3"]
            results = await api.gather(
                3, lambda i: api.post(f"{server.url}{paths[i]}", content=b"x")
            )
            for path, result in zip(paths, results):
                assert not isinstance(result, Exception), result
                assert result.content == path.encode()
            assert server.connections == 2
            assert api.in_use() == 0


def limit_two(peer: Peer) -> None:
    peer.serve_forever()


async def s_stream_limit_opens_second_connection(open_api: OpenApi) -> None:
    with H2Server(limit_two, max_concurrent_streams=2) as server:
        async with open_api(**H2C) as api:
            await api.get(f"{server.url}/warm")  # learn the limit
            streams = []
            for i in range(4):
                cm = api.stream("GET", f"{server.url}/{i}")
                streams.append((cm, await cm.__aenter__()))
            assert server.connections == 2
            assert api.in_use() == 2
            for i, (cm, r) in enumerate(streams):
                assert await r.aread() == f"/{i}".encode()
                await cm.__aexit__(None, None, None)
            assert api.in_use() == 0
            assert api.idle() >= 1


def protocol_violation(peer: Peer) -> None:
    request = peer.next_request()
    if request is None:
        return
    peer.sock.sendall(b"\x00\x00\x01\x00\x00\x00\x00\x00\x00x")  # DATA on stream 0
    peer.stop.wait(5)


async def s_protocol_error_is_remote_protocol_error(open_api: OpenApi) -> None:
    with H2Server(protocol_violation) as server:
        async with open_api(**H2C) as api:
            with pytest.raises(webwire.RemoteProtocolError):
                await api.get(server.url)
            assert api.in_use() == 0


def close_mid_body(peer: Peer) -> None:
    request = peer.next_request()
    if request is None:
        return
    stream_id = request[0]
    peer.conn.send_headers(stream_id, [(b":status", b"200"), (b"content-length", b"100")])
    peer.conn.send_data(stream_id, b"x" * 10)
    peer.flush()
    peer.sock.close()


async def s_close_mid_body_is_error(open_api: OpenApi) -> None:
    with H2Server(close_mid_body) as server:
        async with open_api(**H2C) as api:
            with pytest.raises(webwire.TransportError):
                await api.get(server.url)
            assert api.in_use() == 0


def silent(peer: Peer) -> None:
    while peer.next_request() is not None:
        pass


async def s_read_timeout_on_one_stream(open_api: OpenApi) -> None:
    with H2Server(silent) as server:
        async with open_api(timeout=webwire.Timeout(5.0, read=0.2), **H2C) as api:
            with pytest.raises(webwire.ReadTimeout):
                await api.get(server.url)
            assert api.in_use() == 0


def close_when_idle(peer: Peer) -> None:
    """Answer one request, then end the connection: with a GOAWAY on the
    first connection, silently (EOF) on the second; later ones serve."""
    if peer.index > 1:
        peer.serve_forever()
        return
    request = peer.next_request()
    if request is None:
        return
    peer.respond(request[0], 200, request[1][b":path"])
    if peer.index == 0:
        peer.conn.close_connection(0)
        peer.flush()
    peer.sock.shutdown(2)


async def closed(api: Any, server: H2Server, n: int) -> None:
    """Wait (up to 5 s) until ``n`` of the server's connections have ended,
    then a moment for their last bytes to reach the client."""
    for _ in range(500):
        if server.closed >= n:
            break
        await api.sleep(0.01)
    assert server.closed >= n
    await api.sleep(0.01)


async def s_idle_connection_closed_by_server_is_replaced(open_api: OpenApi) -> None:
    with H2Server(close_when_idle) as server:
        async with open_api(**H2C) as api:
            assert (await api.get(f"{server.url}/a")).content == b"/a"
            await closed(api, server, 1)  # the GOAWAY and the close were sent
            # Not idempotent, yet safe: nothing was sent on the dead connection.
            assert (await api.post(f"{server.url}/b", content=b"x")).content == b"/b"
            await closed(api, server, 2)
            assert (await api.post(f"{server.url}/c", content=b"x")).content == b"/c"
            assert server.connections == 3
            assert api.in_use() == 0


SCENARIOS: dict[str, Scenario] = {
    name[2:]: fn for name, fn in dict(globals()).items() if name.startswith("s_")
}


@pytest.mark.anyio
@pytest.mark.parametrize("name", sorted(SCENARIOS))
async def test_async(name: str, async_api: OpenApi) -> None:
    await SCENARIOS[name](async_api)


@pytest.mark.parametrize("name", sorted(SCENARIOS))
def test_sync(name: str, sync_api: OpenApi) -> None:
    run_sync(SCENARIOS[name](sync_api))
