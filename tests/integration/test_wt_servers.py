"""The WebTransport test servers, checked with a raw qh3 client (no webwire code).

These tests cover the servers the WebTransport client tests rely on: the
aioquic draft-02 echo server (every route), its restart on the same port,
pywebtransport 0.21's server and the CONNECT proxy. Each scenario runs on
asyncio, the only event loop qh3's client supports.
"""

from __future__ import annotations

import asyncio
import json
import socket
from collections.abc import Awaitable, Callable
from typing import Any

import pytest
from wt_proxy import ECHO_HOST, PROXY_AUTHORIZATION
from wt_server_aioquic import (
    CLOSE_CODE,
    CLOSE_REASON,
    DRAIN_WEBTRANSPORT_SESSION,
    SERVER_BIDI_PAYLOAD,
    SERVER_UNI_PAYLOAD,
    WEBTRANSPORT_SESSION_GONE,
    webtransport_code_to_http,
)
from wt_servers import (
    CURRENT_DRAFT_CLIENT_SETTINGS,
    SETTINGS_ENABLE_WEBTRANSPORT,
    SETTINGS_WT_ENABLED,
    SETTINGS_WT_INITIAL_MAX_DATA,
    SETTINGS_WT_INITIAL_MAX_STREAMS_BIDI,
    SETTINGS_WT_INITIAL_MAX_STREAMS_UNI,
    RawConnectionClosed,
    RawWebTransportClient,
    WTServerInfo,
    open_raw_session,
)

SETTINGS_H3_DATAGRAM = 0x33


def run(scenario: Callable[[], Awaitable[None]]) -> None:
    asyncio.run(asyncio.wait_for(scenario(), 30.0))  # type: ignore[arg-type]


def session(info: WTServerInfo, path: str, **kwargs: Any) -> Any:
    """A raw qh3 session speaking the server's draft."""
    kwargs.setdefault("protocol", info.connect_protocol)
    kwargs.setdefault("extra_settings", info.client_settings)
    return open_raw_session(info.port, path, info.ca_path, **kwargs)


# -- aioquic, draft-02 ---------------------------------------------------------


def test_aioquic_settings_and_accept(wt_aioquic: WTServerInfo) -> None:
    async def scenario() -> None:
        async with session(wt_aioquic, "/echo") as client:
            assert client.status == 200
            assert client.response_headers["sec-webtransport-http3-draft"] == "draft02"
            await asyncio.wait_for(client.settings_received.wait(), 5.0)
            settings = client.h3.received_settings
            assert settings[SETTINGS_ENABLE_WEBTRANSPORT] == 1
            assert settings[SETTINGS_H3_DATAGRAM] == 1

    run(scenario)


def test_aioquic_bidi_echo(wt_aioquic: WTServerInfo) -> None:
    async def scenario() -> None:
        async with session(wt_aioquic, "/echo") as client:
            first = await client.create_stream()
            second = await client.create_stream()
            client.send(first, b"ping ")
            assert await client.receive(first, 5) == b"ping "
            client.send(second, b"x" * 200_000, end_stream=True)
            client.send(first, b"pong", end_stream=True)
            assert await client.receive(first) == b"pong"
            assert await client.receive(second) == b"x" * 200_000

    run(scenario)


def test_aioquic_uni_echo(wt_aioquic: WTServerInfo) -> None:
    async def scenario() -> None:
        async with session(wt_aioquic, "/echo") as client:
            stream = await client.create_stream(unidirectional=True)
            assert stream & 0x3 == 0x2
            client.send(stream, b"one way ")
            client.send(stream, b"and back", end_stream=True)
            echo = await asyncio.wait_for(client.incoming.get(), 10.0)
            assert echo & 0x3 == 0x3  # a server-initiated unidirectional stream
            assert await client.receive(echo) == b"one way and back"

    run(scenario)


def test_aioquic_datagram_echo(wt_aioquic: WTServerInfo) -> None:
    async def scenario() -> None:
        async with session(wt_aioquic, "/echo") as client:
            received = set()
            for attempt in range(20):  # datagrams may be lost: retry
                client.send_datagram(b"datagram %d" % attempt)
                try:
                    received.add(await client.receive_datagram(timeout=0.5))
                except asyncio.TimeoutError:
                    continue
                break
            assert received and all(d.startswith(b"datagram ") for d in received)

    run(scenario)


def test_aioquic_server_close_capsule(wt_aioquic: WTServerInfo) -> None:
    async def scenario() -> None:
        async with session(wt_aioquic, "/close") as client:
            assert client.status == 200
            await asyncio.wait_for(client.session_ended.wait(), 10.0)
            assert client.close_info == (CLOSE_CODE, CLOSE_REASON)
        async with session(wt_aioquic, "/close?code=17&reason=going+away") as client:
            await asyncio.wait_for(client.session_ended.wait(), 10.0)
            assert client.close_info == (17, "going away")

    run(scenario)


def test_aioquic_client_close_is_recorded(wt_aioquic: WTServerInfo) -> None:
    server = wt_aioquic.server

    async def scenario() -> None:
        async with session(wt_aioquic, "/echo?tag=client-close") as client:
            stream = await client.create_stream()
            client.send(stream, b"a")
            assert await client.receive(stream, 1) == b"a"
            client.close_session(3, "done here")
            # The session's streams are reset once the session is gone.
            state = await client.wait_stream_event(stream)
            assert state.reset_code == WEBTRANSPORT_SESSION_GONE
            await asyncio.wait_for(client.session_ended.wait(), 10.0)

    run(scenario)
    record = next(r for r in server.sessions if r.path == "/echo?tag=client-close")
    assert server.wait_for(lambda: record.closed)
    assert (record.close_code, record.close_reason, record.closed_by) == (3, "done here", "client")


def test_aioquic_drain(wt_aioquic: WTServerInfo) -> None:
    async def scenario() -> None:
        async with session(wt_aioquic, "/drain") as client:
            stream = await client.create_stream()
            client.send(stream, b"still served", end_stream=True)
            assert await client.receive(stream) == b"still served"
            assert (DRAIN_WEBTRANSPORT_SESSION, b"") in client.capsules

    run(scenario)


def test_aioquic_server_streams(wt_aioquic: WTServerInfo) -> None:
    async def scenario() -> None:
        async with session(wt_aioquic, "/server-streams?count=2") as client:
            opened = [await asyncio.wait_for(client.incoming.get(), 10.0) for _ in range(4)]
            bidi = [s for s in opened if s & 0x3 == 0x1]
            uni = [s for s in opened if s & 0x3 == 0x3]
            assert len(bidi) == 2 and len(uni) == 2
            for stream in uni:
                assert await client.receive(stream) == SERVER_UNI_PAYLOAD
            for stream in bidi:
                assert await client.receive(stream, len(SERVER_BIDI_PAYLOAD)) == (
                    SERVER_BIDI_PAYLOAD
                )
                client.send(stream, b"answer", end_stream=True)
                assert await client.receive(stream) == b"answer"

    run(scenario)


def test_aioquic_reset(wt_aioquic: WTServerInfo) -> None:
    async def scenario() -> None:
        async with session(wt_aioquic, "/reset?code=5") as client:
            stream = await client.create_stream()
            client.send(stream, b"anything")
            state = await client.wait_stream_event(stream)
            while state.reset_code is None or state.stop_code is None:
                await client.wait_stream_event(stream)
                await asyncio.sleep(0.01)
            assert state.reset_code == webtransport_code_to_http(5)
            assert state.stop_code == webtransport_code_to_http(5)
            with pytest.raises(ConnectionError):
                await client.receive(stream)

    run(scenario)


def test_aioquic_unknown_path_refused(wt_aioquic: WTServerInfo) -> None:
    async def scenario() -> None:
        async with session(wt_aioquic, "/no-such-route") as client:
            assert client.status == 404

    run(scenario)


def test_aioquic_count(wt_aioquic: WTServerInfo) -> None:
    async def scenario() -> None:
        async with session(wt_aioquic, "/count") as client:
            stream = await asyncio.wait_for(client.incoming.get(), 10.0)
            counts = json.loads(await client.receive(stream))
            assert counts["sessions"] >= 1
            assert counts == {**counts, "sessions": counts["sessions"]}
            assert set(counts) == {"sessions", "active", "refused"}

    run(scenario)


def test_aioquic_any_draft(wt_aioquic_any_draft: WTServerInfo) -> None:
    """Clients of draft-02 and of the current draft both get an echo session."""

    async def scenario() -> None:
        async with session(wt_aioquic_any_draft, "/echo") as client:
            await asyncio.wait_for(client.settings_received.wait(), 5.0)
            settings = client.h3.received_settings
            assert settings[SETTINGS_ENABLE_WEBTRANSPORT] == 1
            assert settings[SETTINGS_WT_ENABLED] == 1
            assert settings[SETTINGS_WT_INITIAL_MAX_STREAMS_BIDI] > 0
            stream = await client.create_stream()
            client.send(stream, b"draft-02", end_stream=True)
            assert await client.receive(stream) == b"draft-02"
        current = {"protocol": "webtransport-h3", "extra_settings": CURRENT_DRAFT_CLIENT_SETTINGS}
        async with session(wt_aioquic_any_draft, "/echo", **current) as client:
            assert client.status == 200
            assert "sec-webtransport-http3-draft" not in client.response_headers
            stream = await client.create_stream()
            client.send(stream, b"current draft", end_stream=True)
            assert await client.receive(stream) == b"current draft"
        async with session(wt_aioquic_any_draft, "/echo", protocol="webtransport-h4") as client:
            assert client.status == 404

    run(scenario)


def test_aioquic_draft02_refuses_current_token(wt_aioquic: WTServerInfo) -> None:
    async def scenario() -> None:
        async with session(wt_aioquic, "/echo", protocol="webtransport-h3") as client:
            assert client.status == 404

    run(scenario)


def test_aioquic_restart_same_port(wt_aioquic_restartable: WTServerInfo) -> None:
    info = wt_aioquic_restartable
    server = info.server

    async def echo_once(client: RawWebTransportClient) -> None:
        stream = await client.create_stream()
        client.send(stream, b"again", end_stream=True)
        assert await client.receive(stream) == b"again"

    async def before() -> None:
        async with session(info, "/echo") as client:
            await echo_once(client)

    run(before)
    port = server.port
    server.stop()
    assert not server.is_running
    server.start()
    assert server.port == port == info.port
    run(before)
    server.restart()
    assert server.port == port
    run(before)
    assert server.counts()["sessions"] == 3


# -- pywebtransport 0.21, current draft ----------------------------------------


def test_pywebtransport_settings(wt_pywebtransport: WTServerInfo) -> None:
    async def scenario() -> None:
        async with session(wt_pywebtransport, "/echo") as client:
            assert client.status == 200
            await asyncio.wait_for(client.settings_received.wait(), 5.0)
            settings = client.h3.received_settings
            # The current draft: SETTINGS_WT_ENABLED and the session flow-control
            # limits, no draft-02 SETTINGS_ENABLE_WEBTRANSPORT.
            assert settings[SETTINGS_WT_ENABLED] == 1
            assert settings[SETTINGS_H3_DATAGRAM] == 1
            assert settings[0x8] == 1  # SETTINGS_ENABLE_CONNECT_PROTOCOL, RFC 9220
            assert SETTINGS_WT_INITIAL_MAX_DATA in settings
            assert SETTINGS_WT_INITIAL_MAX_STREAMS_UNI in settings
            assert SETTINGS_WT_INITIAL_MAX_STREAMS_BIDI in settings
            assert SETTINGS_ENABLE_WEBTRANSPORT not in settings

    run(scenario)


def test_pywebtransport_needs_wt_enabled(wt_pywebtransport: WTServerInfo) -> None:
    """Without SETTINGS_WT_ENABLED the server closes the connection with
    WT_REQUIREMENTS_NOT_MET (0x212c0d48), whether or not it answered the CONNECT first."""
    closed: list[tuple[int, str] | None] = []

    async def scenario() -> None:
        try:
            async with session(wt_pywebtransport, "/echo", extra_settings={}) as client:
                await asyncio.wait_for(client.connection_closed.wait(), 10.0)
                closed.append(client.termination)
        except RawConnectionClosed as exc:
            closed.append(exc.termination)

    run(scenario)
    assert closed and closed[0] is not None and closed[0][0] == 0x212C0D48


def test_pywebtransport_bidi_echo(wt_pywebtransport: WTServerInfo) -> None:
    async def scenario() -> None:
        async with session(wt_pywebtransport, "/echo") as client:
            stream = await client.create_stream()
            client.send(stream, b"hello ")
            assert await client.receive(stream, 6) == b"hello "
            client.send(stream, b"pywebtransport", end_stream=True)
            assert await client.receive(stream) == b"pywebtransport"

    run(scenario)


def test_pywebtransport_uni_and_datagram_echo(wt_pywebtransport: WTServerInfo) -> None:
    async def scenario() -> None:
        async with session(wt_pywebtransport, "/echo") as client:
            stream = await client.create_stream(unidirectional=True)
            client.send(stream, b"one way", end_stream=True)
            echo = await asyncio.wait_for(client.incoming.get(), 10.0)
            assert echo & 0x3 == 0x3
            assert await client.receive(echo) == b"one way"
            for attempt in range(20):
                client.send_datagram(b"dg %d" % attempt)
                try:
                    assert (await client.receive_datagram(timeout=0.5)).startswith(b"dg ")
                except asyncio.TimeoutError:
                    continue
                break
            else:
                pytest.fail("no datagram came back")

    run(scenario)


def test_pywebtransport_close_and_unknown_path(wt_pywebtransport: WTServerInfo) -> None:
    async def scenario() -> None:
        async with session(wt_pywebtransport, "/close?code=12&reason=bye") as client:
            assert client.status == 200
            await asyncio.wait_for(client.session_ended.wait(), 10.0)
            assert client.close_info == (12, "bye")
        async with session(wt_pywebtransport, "/nowhere") as client:
            assert client.status == 404

    run(scenario)


def test_pywebtransport_server_streams(wt_pywebtransport: WTServerInfo) -> None:
    async def scenario() -> None:
        async with session(wt_pywebtransport, "/server-streams") as client:
            opened = [await asyncio.wait_for(client.incoming.get(), 10.0) for _ in range(2)]
            (bidi,) = [s for s in opened if s & 0x3 == 0x1]
            (uni,) = [s for s in opened if s & 0x3 == 0x3]
            assert await client.receive(uni) == SERVER_UNI_PAYLOAD
            assert await client.receive(bidi, len(SERVER_BIDI_PAYLOAD)) == SERVER_BIDI_PAYLOAD
            client.send(bidi, b"answer", end_stream=True)
            assert await client.receive(bidi) == b"answer"

    run(scenario)


# -- the CONNECT proxy -----------------------------------------------------------


async def open_tunnel(client: RawWebTransportClient, target: str) -> tuple[int, bytes]:
    """Send the CONNECT head on a new stream; return the stream and the response head."""
    stream = await client.create_stream()
    host = target.split("//")[-1]
    client.send(stream, f"CONNECT {target} HTTP/1.1\r\nHost: {host}\r\n\r\n".encode())
    head = b""
    while b"\r\n\r\n" not in head:
        head += await client.receive(stream, 1)
    return stream, head


def test_proxy_echo_tunnel(wt_proxy: WTServerInfo) -> None:
    async def scenario() -> None:
        async with session(wt_proxy, "/proxy") as client:
            stream, head = await open_tunnel(client, f"https://{ECHO_HOST}")
            assert head == b"HTTP/1.1 200 Connection established\r\n\r\n"
            client.send(stream, b"through the tunnel", end_stream=True)
            assert await client.receive(stream) == b"through the tunnel"
    run(scenario)


def test_proxy_tcp_tunnel(wt_proxy: WTServerInfo) -> None:
    host, port = wt_proxy.server.echo_target

    async def scenario() -> None:
        async with session(wt_proxy, "/proxy") as client:
            first, head = await open_tunnel(client, f"https://{host}:{port}")
            assert head.startswith(b"HTTP/1.1 200 ")
            second, head = await open_tunnel(client, f"{host}:{port}")  # authority form
            assert head.startswith(b"HTTP/1.1 200 ")
            client.send(first, b"x" * 100_000)
            client.send(second, b"second tunnel", end_stream=True)
            assert await client.receive(first, 100_000) == b"x" * 100_000
            assert await client.receive(second) == b"second tunnel"
            client.send(first, b"end", end_stream=True)
            assert await client.receive(first) == b"end"

    run(scenario)
    record = wt_proxy.server.tunnels[-1]
    assert (record.host, record.port, record.status) == (host, port, 200)


def test_proxy_refusals(wt_proxy: WTServerInfo) -> None:
    with socket.socket() as sock:  # a port nobody listens on
        sock.bind(("127.0.0.1", 0))
        closed_port = sock.getsockname()[1]

    async def scenario() -> None:
        async with session(wt_proxy, "/proxy") as client:
            for target, status in [
                ("https://example.com:443", b"403"),
                (f"https://127.0.0.1:{closed_port}", b"502"),
                ("no-port-here", b"400"),
            ]:
                stream, head = await open_tunnel(client, target)
                assert head.split(b" ")[1] == status, target
                assert await client.receive(stream) == b""  # the proxy ended the stream
            stream = await client.create_stream()
            client.send(stream, b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
            assert (await client.receive(stream)).startswith(b"HTTP/1.1 400 ")

    run(scenario)


def test_proxy_authorization(wt_proxy: WTServerInfo) -> None:
    async def scenario() -> None:
        async with session(wt_proxy, "/proxy-auth") as client:
            assert client.status == 407
        headers = {"proxy-authorization": PROXY_AUTHORIZATION}
        async with session(wt_proxy, "/proxy-auth", headers=headers) as client:
            assert client.status == 200
            _, head = await open_tunnel(client, f"https://{ECHO_HOST}:443")
            assert head.startswith(b"HTTP/1.1 200 ")

    run(scenario)


def test_proxy_http3_connect(wt_proxy: WTServerInfo) -> None:
    """The plain HTTP/3 CONNECT of RFC 9114 section 4.4 (``:method`` and ``:authority``
    only), as pywebtransport 0.8.1's proxy step sends it."""
    host, port = wt_proxy.server.echo_target

    def connect(authority: str) -> list[tuple[bytes, bytes]]:
        return [(b":method", b"CONNECT"), (b":authority", authority.encode())]

    async def scenario() -> None:
        async with session(wt_proxy, "/echo") as client:
            tcp = client.send_request(connect(f"{host}:{port}"))
            echo = client.send_request(connect(f"{ECHO_HOST}:443"))
            refused = client.send_request(connect("example.com:443"))
            assert (await client.request_response(refused))[0] == 403
            assert (await client.request_response(echo, body_size=0))[0] == 200
            client.send_request_data(echo, b"echoed by the proxy", end_stream=True)
            assert await client.request_response(echo) == (200, b"echoed by the proxy", True)
            assert (await client.request_response(tcp, body_size=0))[0] == 200
            client.send_request_data(tcp, b"to the TCP echo server", end_stream=True)
            assert await client.request_response(tcp) == (200, b"to the TCP echo server", True)

    run(scenario)


def test_pywebtransport_reset_codes(wt_pywebtransport: WTServerInfo) -> None:
    """RESET_STREAM and STOP_SENDING carry the application code mapped into the
    HTTP/3 error space."""

    async def scenario() -> None:
        async with session(wt_pywebtransport, "/reset?code=5") as client:
            stream = await client.create_stream()
            client.send(stream, b"anything")
            state = await client.wait_stream_event(stream)
            while state.reset_code is None or state.stop_code is None:
                await client.wait_stream_event(stream)
                await asyncio.sleep(0.01)
            # The same mapping of application codes into the HTTP/3 space as draft-02.
            assert state.reset_code == webtransport_code_to_http(5)
            assert state.stop_code == webtransport_code_to_http(5)

    run(scenario)
