"""The HTTP/2 client state machine against h2's own server side, in memory:
requests, responses, trailers, flow control both ways, resets, GOAWAY,
SETTINGS and stream-id exhaustion."""

from __future__ import annotations

import random

import h2.config
import h2.connection
import h2.events
import h2.settings
import pytest

from webwire._exceptions import LocalProtocolError, RemoteProtocolError
from webwire._proto import events as ev
from webwire._proto.h2 import ErrorCodes, H2Connection

REQUEST = [(b"Host", b"example.org"), (b"Accept", b"*/*")]


class Server:
    """h2's server side, linked to a client by moving bytes by hand."""

    def __init__(self, client: H2Connection, **settings: int) -> None:
        config = h2.config.H2Configuration(client_side=False, header_encoding=None)
        self.conn = h2.connection.H2Connection(config=config)
        self.conn.initiate_connection()
        if settings:
            self.conn.update_settings(
                {getattr(h2.settings.SettingCodes, k.upper()): v for k, v in settings.items()}
            )
        self.client = client
        self.events: list[h2.events.Event] = []

    def pump(self) -> list[ev.Event]:
        """Move bytes both ways until quiet; the client's events."""
        out: list[ev.Event] = []
        for _ in range(20):
            moved = False
            data = self.client.data_to_send()
            if data:
                self.events += self.conn.receive_data(data)
                moved = True
            data = self.conn.data_to_send()
            if data:
                self.client.receive_data(data)
                moved = True
            out += self.client.events()
            if not moved:
                break
        return out

    def requests(self) -> list[h2.events.RequestReceived]:
        return [e for e in self.events if isinstance(e, h2.events.RequestReceived)]

    def data(self, stream_id: int) -> bytes:
        return b"".join(
            e.data
            for e in self.events
            if isinstance(e, h2.events.DataReceived) and e.stream_id == stream_id
        )

    def respond(self, stream_id: int, status: int = 200, body: bytes = b"", **kw: bool) -> None:
        self.conn.send_headers(stream_id, [(b":status", str(status).encode())], end_stream=not body)
        if body:
            self.conn.send_data(stream_id, body, end_stream=kw.get("end", True))


def test_get_response_and_pseudo_headers() -> None:
    client = H2Connection()
    server = Server(client)
    stream_id = client.send_request(
        b"GET", b"https", b"/a?b=1", [*REQUEST, (b"Connection", b"keep-alive")], end_stream=True
    )
    assert stream_id == 1
    server.pump()
    (request,) = server.requests()
    fields = dict(request.headers)
    assert fields[b":method"] == b"GET"
    assert fields[b":authority"] == b"example.org"
    assert fields[b":path"] == b"/a?b=1"
    assert fields[b":scheme"] == b"https"
    assert b"connection" not in fields and b"host" not in fields
    server.respond(1, 200, b"hello")
    events = server.pump()
    assert events[0] == ev.ResponseHead(1, 200, b"", [], "HTTP/2")
    assert ev.Data(1, b"hello") in events
    assert events[-1] == ev.EndOfMessage(1, [])
    assert client.next_stream_id == 3


def test_trailers_and_informational() -> None:
    client = H2Connection()
    server = Server(client)
    client.send_request(b"GET", b"https", b"/", REQUEST, end_stream=True)
    server.pump()
    server.conn.send_headers(1, [(b":status", b"103"), (b"link", b"</a>")])
    server.conn.send_headers(1, [(b":status", b"200")])
    server.conn.send_data(1, b"x")
    server.conn.send_headers(1, [(b"grpc-status", b"0")], end_stream=True)
    events = server.pump()
    assert events[0] == ev.InformationalResponse(1, 103, b"", [(b"link", b"</a>")])
    assert events[-1] == ev.EndOfMessage(1, [(b"grpc-status", b"0")])


def test_upload_respects_flow_control_and_window_updates() -> None:
    client = H2Connection()
    server = Server(client)
    server.pump()
    stream_id = client.send_request(b"POST", b"https", b"/", REQUEST, end_stream=False)
    body = b"x" * 200_000
    sent = client.send_data(stream_id, body, end_stream=True)
    assert sent == 65535  # the default initial window (RFC 9113 section 6.9.2)
    assert client.send_window(stream_id) == 0
    server.pump()
    assert len(server.data(stream_id)) == 65535
    server.conn.acknowledge_received_data(65535, stream_id)
    server.pump()
    assert client.send_window(stream_id) > 0
    rest = body[sent:]
    while rest:
        taken = client.send_data(stream_id, rest, end_stream=True)
        server.pump()
        server.conn.acknowledge_received_data(taken, stream_id)
        server.pump()
        rest = rest[taken:]
    assert server.data(stream_id) == body
    assert any(isinstance(e, h2.events.StreamEnded) for e in server.events)


def test_download_window_reopens_only_when_consumed() -> None:
    client = H2Connection(initial_window_size=65535, connection_window_size=65535)
    server = Server(client)
    client.send_request(b"GET", b"https", b"/", REQUEST, end_stream=True)
    server.pump()
    server.conn.send_headers(1, [(b":status", b"200")])
    for _ in range(4):
        server.conn.send_data(1, b"a" * 16383)
    server.conn.send_data(1, b"a" * 3)
    server.pump()
    assert server.conn.local_flow_control_window(1) == 0
    client.acknowledge(1, 65535)
    server.pump()
    assert server.conn.local_flow_control_window(1) > 0


def test_settings_recorded() -> None:
    client = H2Connection()
    assert client.max_concurrent_streams == 100  # assumed before SETTINGS
    server = Server(client, max_concurrent_streams=7, enable_connect_protocol=1)
    server.pump()
    assert client.max_concurrent_streams == 7
    assert client.connect_protocol_enabled


def test_stream_limit_is_enforced_locally() -> None:
    client = H2Connection()
    server = Server(client, max_concurrent_streams=1)
    server.pump()
    client.send_request(b"GET", b"https", b"/", REQUEST, end_stream=True)
    with pytest.raises(LocalProtocolError):
        client.send_request(b"GET", b"https", b"/", REQUEST, end_stream=True)


def test_reset_by_server_is_a_stream_event() -> None:
    client = H2Connection()
    server = Server(client)
    client.send_request(b"GET", b"https", b"/", REQUEST, end_stream=True)
    client.send_request(b"GET", b"https", b"/", REQUEST, end_stream=True)
    server.pump()
    server.conn.reset_stream(1, ErrorCodes.INTERNAL_ERROR)
    server.respond(3, 200, b"ok")
    events = server.pump()
    assert ev.StreamReset(1, ErrorCodes.INTERNAL_ERROR) in events
    assert ev.EndOfMessage(3, []) in events


def test_goaway_lets_lower_streams_finish_and_refuses_higher() -> None:
    client = H2Connection()
    server = Server(client)
    for _ in range(3):
        client.send_request(b"GET", b"https", b"/", REQUEST, end_stream=True)
    server.pump()
    server.conn.close_connection(ErrorCodes.NO_ERROR, last_stream_id=3)
    # A real server goes on serving streams 1 and 3 (h2's own server side
    # would refuse every frame after its GOAWAY).
    server.conn.state_machine.state = h2.connection.ConnectionState.SERVER_OPEN
    events = server.pump()
    assert ev.StreamReset(5, ErrorCodes.REFUSED_STREAM) in events
    assert client.goaway is not None and client.goaway.last_stream_id == 3
    # Streams 1 and 3 still complete after the GOAWAY.
    server.respond(1, 200, b"one")
    server.respond(3, 204)
    events = server.pump()
    assert ev.EndOfMessage(1, []) in events and ev.EndOfMessage(3, []) in events
    with pytest.raises(LocalProtocolError):
        client.send_request(b"GET", b"https", b"/", REQUEST, end_stream=True)


def test_protocol_error_raises_and_sends_goaway() -> None:
    client = H2Connection()
    client.data_to_send()
    with pytest.raises(RemoteProtocolError):
        # A DATA frame on stream 0 (RFC 9113 section 6.1).
        client.receive_data(b"\x00\x00\x01\x00\x00\x00\x00\x00\x00x")
    assert client.data_to_send()  # GOAWAY PROTOCOL_ERROR


def test_end_of_stream_is_connection_terminated() -> None:
    client = H2Connection()
    client.receive_data(b"")
    (event,) = client.events()
    assert isinstance(event, ev.ConnectionTerminated) and event.last_stream_id is None


def test_stream_ids_exhausted() -> None:
    client = H2Connection()
    client._conn.highest_outbound_stream_id = 2**31 - 1
    assert client.stream_ids_exhausted()
    with pytest.raises(LocalProtocolError):
        client.send_request(b"GET", b"https", b"/", REQUEST, end_stream=True)


def test_extended_connect_headers() -> None:
    client = H2Connection()
    server = Server(client, enable_connect_protocol=1)
    server.pump()
    client.send_request(b"CONNECT", b"https", b"/chat", REQUEST, end_stream=False,
                        protocol=b"websocket")
    server.pump()
    (request,) = server.requests()
    fields = dict(request.headers)
    assert fields[b":protocol"] == b"websocket" and fields[b":path"] == b"/chat"


def test_missing_authority_is_refused() -> None:
    client = H2Connection()
    with pytest.raises(LocalProtocolError):
        client.send_request(b"GET", b"https", b"/", [(b"accept", b"*/*")], end_stream=True)


def _server_bytes(rnd: random.Random) -> tuple[H2Connection, bytearray]:
    client = H2Connection()
    server = Server(client)
    client.send_request(b"GET", b"https", b"/", REQUEST, end_stream=True)
    server.pump()
    server.conn.send_headers(1, [(b":status", b"200"), (b"a", b"b" * rnd.randint(0, 50))])
    end = rnd.random() < 0.5
    server.conn.send_data(1, b"x" * rnd.randint(0, 3000), end_stream=end)
    if not end:
        server.conn.send_headers(1, [(b"trailer", b"v")], end_stream=True)
    return client, bytearray(server.conn.data_to_send())


@pytest.mark.parametrize("block", range(4))
def test_mutated_responses_raise_only_remote_protocol_error(block: int) -> None:
    """Corrupted server bytes, fed in random pieces, end in events or in
    RemoteProtocolError: never in an h2, hpack or Python error."""
    refused = 0
    for seed in range(block * 500, (block + 1) * 500):
        rnd = random.Random(seed)
        client, data = _server_bytes(rnd)
        for _ in range(rnd.randint(1, 8)):
            op = rnd.random()
            if op < 0.5 and data:
                data[rnd.randrange(len(data))] = rnd.randrange(256)
            elif op < 0.7 and data:
                i = rnd.randrange(len(data))
                del data[i : i + rnd.randint(1, 10)]
            else:
                i = rnd.randrange(len(data) + 1)
                data[i:i] = bytes(rnd.randrange(256) for _ in range(rnd.randint(1, 10)))
        try:
            pos = 0
            while pos < len(data):
                size = rnd.randint(1, 64)
                client.receive_data(bytes(data[pos : pos + size]))
                pos += size
                client.events()
                client.data_to_send()
            client.receive_data(b"")
            client.events()
        except RemoteProtocolError:
            refused += 1
    assert refused > 20  # corruption in the frame layer is seen, not accepted


@pytest.mark.parametrize(
    ("method", "target", "headers"),
    [
        (b"GET", b"/", [*REQUEST, (b"x-a", b"1\r\nx-b: 2")]),
        (b"GET", b"/", [*REQUEST, (b"bad name", b"1")]),
        (b"G T", b"/", REQUEST),
        (b"GET", b"/a b", REQUEST),
    ],
)
def test_invalid_requests_are_refused_as_for_http1(
    method: bytes, target: bytes, headers: list[tuple[bytes, bytes]]
) -> None:
    client = H2Connection()
    with pytest.raises(LocalProtocolError):
        client.send_request(method, b"https", target, headers, end_stream=True)


def test_connection_specific_fields_are_dropped() -> None:
    client = H2Connection()
    server = Server(client)
    headers = [
        *REQUEST,
        (b"Transfer-Encoding", b"chunked"),
        (b"Upgrade", b"h2c"),
        (b"Keep-Alive", b"5"),
        (b"TE", b"gzip"),
        (b"Content-Length", b"0"),
    ]
    client.send_request(b"POST", b"https", b"/", headers, end_stream=True)
    server.pump()
    (request,) = server.requests()
    names = [name for name, _ in request.headers]
    assert names == [b":method", b":scheme", b":authority", b":path", b"accept", b"content-length"]


# -- extended CONNECT (RFC 8441) ----------------------------------------------

WEBSOCKET = [
    (b"Host", b"example.org"),
    (b"Upgrade", b"websocket"),
    (b"Connection", b"Upgrade"),
    (b"Sec-WebSocket-Version", b"13"),
    (b"Sec-WebSocket-Protocol", b"chat"),
    (b"Origin", b"https://example.org"),
]


def test_extended_connect_setting_recorded_only_from_settings() -> None:
    client = H2Connection()
    assert not client.settings_received
    assert not client.connect_protocol_enabled
    server = Server(client)
    server.pump()
    assert client.settings_received
    assert not client.connect_protocol_enabled  # default 0 (RFC 8441 section 3)
    server.conn.update_settings({h2.settings.SettingCodes.ENABLE_CONNECT_PROTOCOL: 1})
    server.pump()
    assert client.connect_protocol_enabled


def test_extended_connect_request_shape() -> None:
    client = H2Connection()
    server = Server(client, enable_connect_protocol=1)
    server.pump()
    stream_id = client.send_request(
        b"CONNECT", b"https", b"/chat?room=1", WEBSOCKET, end_stream=False, protocol=b"websocket"
    )
    server.pump()
    (request,) = server.requests()
    assert request.stream_ended is None  # the stream stays open for DATA
    names = [name for name, _ in request.headers]
    # Pseudo-header fields first (RFC 9113 section 8.3), then the rest.
    assert names[:5] == [b":method", b":protocol", b":scheme", b":authority", b":path"]
    fields = dict(request.headers)
    assert fields[b":method"] == b"CONNECT"
    assert fields[b":protocol"] == b"websocket"
    assert fields[b":scheme"] == b"https"
    assert fields[b":authority"] == b"example.org"
    assert fields[b":path"] == b"/chat?room=1"
    assert fields[b"sec-websocket-version"] == b"13"
    assert fields[b"sec-websocket-protocol"] == b"chat"
    assert fields[b"origin"] == b"https://example.org"
    for dropped in (b"upgrade", b"connection", b"host"):
        assert dropped not in fields
    # A 200 answer, then DATA both ways on the same stream.
    server.conn.send_headers(stream_id, [(b":status", b"200")])
    events = server.pump()
    assert [type(e) for e in events] == [ev.ResponseHead]
    assert client.send_data(stream_id, b"hello") == 5
    server.conn.send_data(stream_id, b"world")
    events = server.pump()
    assert server.data(stream_id) == b"hello"
    assert [e.data for e in events if isinstance(e, ev.Data)] == [b"world"]


def test_extended_connect_refused_until_the_server_enables_it() -> None:
    client = H2Connection()
    with pytest.raises(LocalProtocolError, match="SETTINGS_ENABLE_CONNECT_PROTOCOL"):
        client.send_request(
            b"CONNECT", b"https", b"/chat", WEBSOCKET, end_stream=False, protocol=b"websocket"
        )
    server = Server(client)
    server.pump()
    with pytest.raises(LocalProtocolError, match="did not enable extended CONNECT"):
        client.send_request(
            b"CONNECT", b"https", b"/chat", WEBSOCKET, end_stream=False, protocol=b"websocket"
        )
    assert client.next_stream_id == 1  # nothing was sent
    assert server.requests() == []


@pytest.mark.parametrize(
    ("method", "protocol", "message"),
    [
        (b"GET", b"websocket", "CONNECT only"),
        (b"CONNECT", b"", "token"),
        (b"CONNECT", b"web socket", "token"),
    ],
)
def test_extended_connect_bad_protocol_or_method(
    method: bytes, protocol: bytes, message: str
) -> None:
    client = H2Connection()
    Server(client, enable_connect_protocol=1).pump()
    with pytest.raises(LocalProtocolError, match=message):
        client.send_request(
            method, b"https", b"/chat", WEBSOCKET, end_stream=False, protocol=protocol
        )


def test_plain_connect_keeps_authority_form() -> None:
    client = H2Connection()
    server = Server(client)
    server.pump()
    client.send_request(b"CONNECT", b"https", b"example.org:443", [], end_stream=False)
    server.pump()
    (request,) = server.requests()
    assert dict(request.headers) == {b":method": b"CONNECT", b":authority": b"example.org:443"}
