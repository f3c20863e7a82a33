"""Self-tests of the HTTP/3 test servers and the lossy UDP relay.

They use aioquic's and qh3's own HTTP/3 clients (``h3_servers.h3_request``),
not webwire's, so that the servers are known good before webwire's client
is tested against them.
"""

from __future__ import annotations

import asyncio
import contextlib
import http.client
import json
import ssl
import time
from collections.abc import AsyncIterator
from typing import Any

import pytest
from app import pattern_bytes
from h3_servers import H3ServerInfo, h3_request, run_in_thread
from udp_relay import LossyUDPRelay
from websockets.frames import Close, Frame, Opcode
from websockets.protocol import OPEN, Protocol, Side

ENGINES = ["aioquic", "qh3"]
SETTINGS_ENABLE_CONNECT_PROTOCOL = 0x8


def request(info: H3ServerInfo, path: str, **options: Any) -> Any:
    return run_in_thread(lambda: h3_request(info.address, path, ca_path=info.ca_path, **options))


@pytest.mark.parametrize("engine", ENGINES)
def test_hypercorn_answers_over_http3(h3_hypercorn: H3ServerInfo, engine: str) -> None:
    response = request(h3_hypercorn, "/echo?x=1", engine=engine)
    assert response.status == 200
    document = json.loads(response.body)
    assert document["http_version"] == "3"
    assert document["args"] == [["x", "1"]]
    assert response.header(b"alt-svc") == f'h3=":{h3_hypercorn.udp_port}"; ma=3600'.encode()


def test_hypercorn_advertises_http3_over_tcp(h3_hypercorn: H3ServerInfo) -> None:
    assert h3_hypercorn.url.port == h3_hypercorn.udp_port
    context = ssl.create_default_context(cafile=h3_hypercorn.ca_path)
    conn = http.client.HTTPSConnection("127.0.0.1", h3_hypercorn.udp_port, context=context)
    try:
        conn.request("GET", "/json")
        response = conn.getresponse()
        response.read()
    finally:
        conn.close()
    assert response.status == 200
    assert response.getheader("alt-svc") == f'h3=":{h3_hypercorn.udp_port}"; ma=3600'


@pytest.mark.parametrize("engine", ENGINES)
def test_aioquic_server_routes(aioquic_h3: H3ServerInfo, engine: str) -> None:
    port = aioquic_h3.udp_port
    response = request(aioquic_h3, "/json", engine=engine)
    assert response.status == 200
    assert json.loads(response.body)["name"] == "webwire"
    assert response.header(b"alt-svc") == f'h3=":{port}"; ma=3600'.encode()
    assert response.settings.get(SETTINGS_ENABLE_CONNECT_PROTOCOL) == 1

    echoed = request(aioquic_h3, "/echo", engine=engine, method="POST", body=b"hello h3")
    document = json.loads(echoed.body)
    assert (document["method"], document["body"]) == ("POST", "hello h3")
    assert ["host", f"127.0.0.1:{port}"] in document["headers"]

    size = 300_000
    data = request(aioquic_h3, f"/bytes/{size}", engine=engine)
    assert data.body == pattern_bytes(size)
    assert data.header(b"content-length") == str(size).encode()

    assert request(aioquic_h3, "/status/418", engine=engine).status == 418
    lines = request(aioquic_h3, "/stream/3", engine=engine).body.splitlines()
    assert [json.loads(line)["id"] for line in lines] == [0, 1, 2]


def _client_ws() -> Protocol:
    return Protocol(Side.CLIENT, state=OPEN)


def _frames(ws: Protocol, data: bytes) -> list[Frame]:
    ws.receive_data(data)
    return [event for event in ws.events_received() if isinstance(event, Frame)]


@pytest.mark.parametrize("engine", ENGINES)
def test_aioquic_server_websocket_over_http3(aioquic_h3: H3ServerInfo, engine: str) -> None:
    before = aioquic_h3.server.stats.snapshot()["websockets"]
    ws = _client_ws()
    ws.send_text(b"hello over RFC 9220")
    ws.send_close(1000, "done")
    outgoing = b"".join(ws.data_to_send())

    def after_head(send: Any) -> None:
        send(outgoing, False)

    response = request(
        aioquic_h3,
        "/ws",
        engine=engine,
        method="CONNECT",
        headers=[(b":protocol", b"websocket"), (b"sec-websocket-version", b"13")],
        end_stream=False,
        after_head=after_head,
    )
    assert response.status == 200
    frames = _frames(_client_ws(), response.body)
    assert [(f.opcode, f.data) for f in frames[:1]] == [(Opcode.TEXT, b"hello over RFC 9220")]
    assert frames[1].opcode is Opcode.CLOSE
    assert Close.parse(frames[1].data).code == 1000
    assert aioquic_h3.server.stats.snapshot()["websockets"] == before + 1


def test_aioquic_server_websocket_close_and_refusals(aioquic_h3: H3ServerInfo) -> None:
    ws_headers = [(b":protocol", b"websocket"), (b"sec-websocket-version", b"13")]
    closed = request(
        aioquic_h3,
        "/ws/close/4000/bye",
        method="CONNECT",
        headers=ws_headers,
        end_stream=False,
        until=lambda body: any(f.opcode is Opcode.CLOSE for f in _frames(_client_ws(), body)),
    )
    assert closed.status == 200
    frames = _frames(_client_ws(), closed.body)
    assert Close.parse(frames[0].data) == Close(4000, "bye")

    rejected = request(aioquic_h3, "/ws/reject", method="CONNECT", headers=ws_headers)
    assert rejected.status == 403
    no_version = request(
        aioquic_h3, "/ws", method="CONNECT", headers=[(b":protocol", b"websocket")]
    )
    assert no_version.status == 400


def test_aioquic_server_counts_resumed_sessions(aioquic_h3: H3ServerInfo) -> None:
    stats = aioquic_h3.server.stats
    before = stats.snapshot()
    first = request(aioquic_h3, "/json")
    assert first.ticket is not None and not first.session_resumed
    second = request(aioquic_h3, "/json", session_ticket=first.ticket)
    assert second.status == 200
    assert second.session_resumed
    after = stats.snapshot()
    assert after["connections"] - before["connections"] == 2
    assert after["resumed"] - before["resumed"] == 1
    assert after["early_data"] - before["early_data"] == int(second.early_data_accepted)


def test_aioquic_server_idle_timeout_closes_connection(aioquic_h3_factory: Any) -> None:
    info = aioquic_h3_factory(idle_timeout=0.3)
    assert info.server.idle_timeout == 0.3

    async def idle() -> str:
        import asyncio

        from aioquic.asyncio import QuicConnectionProtocol
        from aioquic.asyncio.client import connect
        from aioquic.h3.connection import H3_ALPN
        from aioquic.quic.configuration import QuicConfiguration

        class Silent(QuicConnectionProtocol):
            def quic_event_received(self, event: object) -> None:
                pass  # the server's control streams are not read

        configuration = QuicConfiguration(is_client=True, alpn_protocols=H3_ALPN, idle_timeout=60.0)
        configuration.load_verify_locations(cafile=info.ca_path)
        connection = connect(
            "127.0.0.1", info.udp_port, configuration=configuration, create_protocol=Silent
        )
        async with connection as client:
            # The effective idle timeout is the smaller of the two endpoints'
            # (RFC 9000 section 10.1): the server's ends the connection.
            await asyncio.wait_for(client.wait_closed(), 10.0)
            return "closed"

    assert run_in_thread(idle) == "closed"


@pytest.mark.parametrize("engine", ENGINES)
def test_transfer_through_lossy_relay(
    aioquic_h3: H3ServerInfo, lossy_relay: Any, engine: str
) -> None:
    relay: LossyUDPRelay = lossy_relay(aioquic_h3.address, seed=7)
    size = 400_000
    response = run_in_thread(
        lambda: h3_request(
            relay.address,
            f"/bytes/{size}",
            ca_path=aioquic_h3.ca_path,
            authority=f"127.0.0.1:{aioquic_h3.udp_port}",
            engine=engine,
            timeout=20.0,
        )
    )
    assert response.status == 200
    assert response.body == pattern_bytes(size)
    counters = relay.counters()
    assert counters.dropped > 0
    assert counters.reordered > 0
    assert counters.duplicated > 0
    assert counters.forwarded > 0


def test_lossy_relay_is_transparent_without_faults(
    h3_hypercorn: H3ServerInfo, lossy_relay: Any
) -> None:
    relay: LossyUDPRelay = lossy_relay(h3_hypercorn.address, loss=0, reorder=0, duplicate=0)
    response = run_in_thread(
        lambda: h3_request(relay.address, "/json", ca_path=h3_hypercorn.ca_path)
    )
    assert response.status == 200
    counters = relay.counters()
    assert counters.dropped == counters.reordered == counters.duplicated == 0
    assert counters.forwarded == counters.received > 0


def test_lossy_relay_refuses_bad_rates() -> None:
    with pytest.raises(ValueError, match="loss"):
        LossyUDPRelay(("127.0.0.1", 9), loss=1.5)


class _Qh3Session:
    """A qh3 HTTP/3 connection that hands out every HTTP/3 event (for tests
    that need more than one request on a connection)."""

    def __init__(self, info: H3ServerInfo) -> None:
        import asyncio

        self.info = info
        self.events: asyncio.Queue[Any] = asyncio.Queue()
        self.client: Any = None

    @contextlib.asynccontextmanager
    async def connect(self) -> AsyncIterator[_Qh3Session]:
        from qh3.asyncio import QuicConnectionProtocol
        from qh3.asyncio.client import connect
        from qh3.h3.connection import H3_ALPN, H3Connection
        from qh3.quic.configuration import QuicConfiguration

        events = self.events

        class Client(QuicConnectionProtocol):  # type: ignore[misc]
            def __init__(self, *args: Any, **kwargs: Any) -> None:
                super().__init__(*args, **kwargs)
                self.h3 = H3Connection(self._quic)

            def quic_event_received(self, event: Any) -> None:
                for h3_event in self.h3.handle_event(event):
                    events.put_nowait(h3_event)

        configuration = QuicConfiguration(is_client=True, alpn_protocols=H3_ALPN)
        configuration.load_verify_locations(cafile=self.info.ca_path)
        connection = connect(
            "127.0.0.1", self.info.udp_port, configuration=configuration, create_protocol=Client
        )
        async with connection as client:
            self.client = client
            yield self
            client.close()

    def get(self, path: str) -> int:
        quic, h3 = self.client._quic, self.client.h3
        stream_id: int = quic.get_next_available_stream_id()
        head = [
            (b":method", b"GET"),
            (b":scheme", b"https"),
            (b":authority", f"127.0.0.1:{self.info.udp_port}".encode()),
            (b":path", path.encode()),
        ]
        h3.send_headers(stream_id, head, end_stream=True)
        self.client.transmit()
        return stream_id

    async def next_event(self, kind: type[Any], stream_id: int | None = None) -> Any:
        import asyncio

        while True:
            event = await asyncio.wait_for(self.events.get(), 10.0)
            if isinstance(event, kind) and stream_id in (None, event.stream_id):
                return event

    async def body(self, stream_id: int) -> bytes:
        from qh3.h3.events import DataReceived

        data = bytearray()
        while True:
            event = await self.next_event(DataReceived, stream_id)
            data += event.data
            if event.stream_ended:
                return bytes(data)


def test_aioquic_server_goaway_and_stream_limit(aioquic_h3_factory: Any) -> None:
    info = aioquic_h3_factory(max_streams=2)

    async def scenario() -> tuple[int, list[int], int]:
        from qh3.h3.events import GoawayReceived, HeadersReceived, StreamReset

        async with _Qh3Session(info).connect() as session:
            tls = session.client._quic._tls
            limit = tls.remote_transport_parameters.initial_max_streams_bidi
            first = session.get("/json")
            await session.next_event(HeadersReceived, first)
            info.server.send_goaway()
            goaway = await session.next_event(GoawayReceived)
            # A request the server no longer takes is reset, not answered.
            late = session.get("/json")
            reset = await session.next_event(StreamReset, late)
        return limit, [first, goaway.stream_id, late], reset.error_code

    limit, (first, goaway_id, late), code = run_in_thread(scenario)
    assert limit == 2
    assert goaway_id == first + 4 == late
    assert code == 0x10B  # H3_REQUEST_REJECTED


def test_aioquic_server_survives_a_cancelled_download(aioquic_h3: H3ServerInfo) -> None:
    before = aioquic_h3.server.stats.snapshot()["cancelled"]

    async def scenario() -> bytes:
        from qh3.h3.events import DataReceived, HeadersReceived

        async with _Qh3Session(aioquic_h3).connect() as session:
            big = session.get("/bytes/50000000")
            await session.next_event(HeadersReceived, big)
            await session.next_event(DataReceived, big)
            # H3_REQUEST_CANCELLED in both directions (RFC 9114 section 4.1.1).
            session.client._quic.stop_stream(big, 0x10C)
            session.client._quic.reset_stream(big, 0x10C)
            session.client.transmit()
            small = session.get("/bytes/1000")
            await session.next_event(HeadersReceived, small)
            body = await session.body(small)
            # The cancellation may reach the server after the second request
            # (a lost datagram is sent again later, while the connection is
            # open): wait for it, within a bound, before closing.
            give_up = time.monotonic() + 10.0
            while aioquic_h3.server.stats.snapshot()["cancelled"] == before:
                assert time.monotonic() < give_up, "the server never saw the cancellation"
                await asyncio.sleep(0.01)
            return body

    assert run_in_thread(scenario) == pattern_bytes(1000)
    assert aioquic_h3.server.stats.snapshot()["cancelled"] == before + 1


def test_aioquic_server_answers_concurrent_streams(aioquic_h3: H3ServerInfo) -> None:
    async def scenario() -> dict[int, bytes]:
        from qh3.h3.events import DataReceived, HeadersReceived

        async with _Qh3Session(aioquic_h3).connect() as session:
            sizes = {session.get(f"/bytes/{1000 * n}"): 1000 * n for n in range(1, 21)}
            bodies: dict[int, bytearray] = {stream_id: bytearray() for stream_id in sizes}
            statuses: dict[int, int] = {}
            open_streams = set(sizes)
            while open_streams:
                event = await session.next_event(object)
                if isinstance(event, HeadersReceived):
                    statuses[event.stream_id] = int(dict(event.headers)[b":status"])
                elif isinstance(event, DataReceived):
                    bodies[event.stream_id] += event.data
                if getattr(event, "stream_ended", False):
                    open_streams.discard(event.stream_id)
            assert set(statuses.values()) == {200}
            return {sizes[stream_id]: bytes(body) for stream_id, body in bodies.items()}

    bodies = run_in_thread(scenario)
    assert len(bodies) == 20
    for size, body in bodies.items():
        assert body == pattern_bytes(size)
