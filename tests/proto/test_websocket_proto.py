"""The sans-I/O WebSocket layer (``webwire._proto.websocket``) against the
``websockets`` library's server-side Sans-I/O protocol, linked in memory:
handshake fields and validation, permessage-deflate negotiation (RFC 7692),
framing round trips, fragmentation, control frames, the closing handshake,
UTF-8 validation and the message size limit."""

from __future__ import annotations

import pytest
from websockets.datastructures import Headers
from websockets.extensions.permessage_deflate import ServerPerMessageDeflateFactory
from websockets.frames import Opcode
from websockets.http11 import Request
from websockets.protocol import State
from websockets.server import ServerProtocol

from webwire import (
    ConnectionClosedError,
    ConnectionClosedOK,
    InvalidHandshake,
    LocalProtocolError,
)
from webwire._proto.websocket import (
    CloseReceived,
    Fragment,
    Handshake,
    PingReceived,
    PongReceived,
    WebSocketProtocol,
)


def make_handshake(**options: object) -> Handshake:
    defaults: dict[str, object] = {
        "secure": False,
        "host": "example.test",
        "port": 80,
        "resource": "/chat?room=1",
    }
    defaults.update(options)
    return Handshake(**defaults)  # type: ignore[arg-type]


def serve(
    handshake: Handshake,
    *,
    compression: bool = True,
    subprotocols: list[str] | None = None,
    max_size: int | None = 2**20,
) -> tuple[WebSocketProtocol, ServerProtocol]:
    """Run the handshake against a websockets ServerProtocol; return both
    open ends."""
    headers = Headers()
    headers["Host"] = "example.test"
    for name, value in handshake.request_headers():
        headers[name] = value
    server = ServerProtocol(
        extensions=[ServerPerMessageDeflateFactory()] if compression else None,
        subprotocols=subprotocols,  # type: ignore[arg-type]
        max_size=max_size,
    )
    server.receive_data(Request("/chat?room=1", headers).serialize())
    [request] = server.events_received()
    response = server.accept(request)  # type: ignore[arg-type]
    assert response.status_code == 101, response.body
    server.send_response(response)
    server.data_to_send()
    handshake.process_response(
        response.status_code, response.reason_phrase, response.headers.raw_items()
    )
    return handshake.open(), server


def to_server(client: WebSocketProtocol, server: ServerProtocol) -> None:
    data, _ = client.data_to_send()
    if data:
        server.receive_data(data)


def to_client(server: ServerProtocol, client: WebSocketProtocol) -> None:
    for chunk in server.data_to_send():
        if chunk:
            client.receive_data(chunk)
        else:
            client.receive_eof()


def server_messages(server: ServerProtocol) -> list[tuple[Opcode, bytes, bool]]:
    return [(f.opcode, bytes(f.data), f.fin) for f in server.events_received()]


# -- handshake -----------------------------------------------------------------


def test_request_headers() -> None:
    handshake = make_handshake(origin="https://app.test", subprotocols=["chat", "v2.chat"])
    fields = dict(handshake.request_headers())
    assert fields["Upgrade"] == "websocket"
    assert fields["Connection"] == "Upgrade"
    assert fields["Sec-WebSocket-Version"] == "13"
    assert fields["Sec-WebSocket-Key"] == handshake.key
    assert fields["Origin"] == "https://app.test"
    assert fields["Sec-WebSocket-Protocol"] == "chat, v2.chat"
    assert fields["Sec-WebSocket-Extensions"] == (
        "permessage-deflate; client_max_window_bits"
    )
    assert "Host" not in fields


def test_no_compression_no_offer() -> None:
    fields = dict(make_handshake(compression=None).request_headers())
    assert "Sec-WebSocket-Extensions" not in fields


@pytest.mark.parametrize("bad", ["", "a b", "x,y", "é"])
def test_invalid_subprotocol(bad: str) -> None:
    with pytest.raises(ValueError, match="subprotocol"):
        make_handshake(subprotocols=[bad])


def test_unknown_compression() -> None:
    with pytest.raises(ValueError, match="compression"):
        make_handshake(compression="gzip")


def test_deflate_settings() -> None:
    # Level 1 by default; a mapping of zlib settings replaces it.
    default, _ = serve(make_handshake())
    assert default.extensions[0].compress_settings == {"level": 1, "memLevel": 5}  # type: ignore[attr-defined]
    chosen, server = serve(make_handshake(compression={"level": 9, "memLevel": 8}))
    assert chosen.extensions[0].compress_settings == {"level": 9, "memLevel": 8}  # type: ignore[attr-defined]
    chosen.send_text("compress me " * 1000)
    to_server(chosen, server)
    assert server_messages(server) == [(Opcode.TEXT, b"compress me " * 1000, True)]


@pytest.mark.parametrize(
    ("settings", "match"),
    [
        ({"wbits": 10}, "unknown zlib setting"),
        ({"level": 10}, "from -1 to 9"),
        ({"memLevel": 0}, "from 1 to 9"),
        ({"level": "1"}, "must be an int"),
        ({"level": True}, "must be an int"),
        (["level"], "compression must be"),
    ],
)
def test_bad_deflate_settings(settings: object, match: str) -> None:
    with pytest.raises(ValueError, match=match):
        make_handshake(compression=settings)


def test_deflate_negotiated_with_parameters() -> None:
    handshake = make_handshake()
    client, server = serve(handshake)
    assert [ext.name for ext in client.extensions] == ["permessage-deflate"]
    assert [ext.name for ext in server.extensions] == ["permessage-deflate"]
    deflate = client.extensions[0]
    assert deflate.remote_max_window_bits == 15  # type: ignore[attr-defined]


def test_server_declines_deflate() -> None:
    client, _ = serve(make_handshake(), compression=False)
    assert client.extensions == []


def test_subprotocol_negotiated() -> None:
    handshake = make_handshake(subprotocols=["v1", "v2"])
    serve(handshake, subprotocols=["v2"])
    assert handshake.subprotocol == "v2"


def _accept_fields(handshake: Handshake) -> list[tuple[str, str]]:
    from websockets.utils import accept_key

    return [
        ("Upgrade", "websocket"),
        ("Connection", "Upgrade"),
        ("Sec-WebSocket-Accept", accept_key(handshake.key)),
    ]


def test_wrong_accept_key_refused() -> None:
    handshake = make_handshake()
    fields = [
        ("Upgrade", "websocket"),
        ("Connection", "Upgrade"),
        ("Sec-WebSocket-Accept", "AAAAAAAAAAAAAAAAAAAAAAAAAAA="),
    ]
    with pytest.raises(InvalidHandshake, match="Sec-WebSocket-Accept"):
        handshake.process_response(101, "Switching Protocols", fields)


def test_missing_upgrade_refused() -> None:
    handshake = make_handshake()
    fields = _accept_fields(handshake)[1:]
    with pytest.raises(InvalidHandshake, match="Upgrade"):
        handshake.process_response(101, "Switching Protocols", fields)


def test_extension_not_offered_refused() -> None:
    handshake = make_handshake(compression=None)
    fields = [*_accept_fields(handshake), ("Sec-WebSocket-Extensions", "permessage-deflate")]
    with pytest.raises(InvalidHandshake, match="extension"):
        handshake.process_response(101, "Switching Protocols", fields)


def test_bad_deflate_parameters_refused() -> None:
    handshake = make_handshake()
    fields = [
        *_accept_fields(handshake),
        ("Sec-WebSocket-Extensions", "permessage-deflate; server_max_window_bits=99"),
    ]
    with pytest.raises(InvalidHandshake):
        handshake.process_response(101, "Switching Protocols", fields)


def test_subprotocol_not_offered_refused() -> None:
    handshake = make_handshake(subprotocols=["v1"])
    fields = [*_accept_fields(handshake), ("Sec-WebSocket-Protocol", "v9")]
    with pytest.raises(InvalidHandshake, match="subprotocol"):
        handshake.process_response(101, "Switching Protocols", fields)


def test_http2_answer_skips_accept_key() -> None:
    """Over HTTP/2 (RFC 8441 section 5) a 200 without Upgrade or
    Sec-WebSocket-Accept is an acceptance; extensions are still checked."""
    handshake = make_handshake(subprotocols=["v1"])
    handshake.process_response(
        200,
        "",
        [
            ("sec-websocket-extensions", "permessage-deflate"),
            ("sec-websocket-protocol", "v1"),
        ],
        http_version="HTTP/2",
    )
    assert handshake.subprotocol == "v1"
    assert [ext.name for ext in handshake.extensions] == ["permessage-deflate"]
    with pytest.raises(InvalidHandshake, match="403"):
        make_handshake().process_response(403, "", [], http_version="HTTP/2")


# -- framing -------------------------------------------------------------------


@pytest.mark.parametrize("compression", [True, False])
def test_text_and_binary_round_trip(compression: bool) -> None:
    client, server = serve(make_handshake(), compression=compression)
    client.send_text("héllo " * 100)
    client.send_binary(b"\x00\xff" * 100)
    to_server(client, server)
    frames = server_messages(server)
    assert frames == [
        (Opcode.TEXT, ("héllo " * 100).encode(), True),
        (Opcode.BINARY, b"\x00\xff" * 100, True),
    ]
    server.send_text("réponse".encode())
    server.send_binary(b"\x01" * 5000)
    to_client(server, client)
    assert client.events() == [Fragment("réponse", True), Fragment(b"\x01" * 5000, True)]


def test_deflate_shrinks_frames() -> None:
    client, server = serve(make_handshake())
    client.send_text("a" * 10_000)
    data, _ = client.data_to_send()
    assert len(data) < 200
    server.receive_data(data)
    assert server_messages(server) == [(Opcode.TEXT, b"a" * 10_000, True)]


def test_fragmented_both_ways() -> None:
    client, server = serve(make_handshake())
    client.send_binary(b"one ", fin=False)
    client.send_continuation(b"two ", fin=False)
    client.send_continuation(b"three", fin=True)
    to_server(client, server)
    assert server_messages(server) == [
        (Opcode.BINARY, b"one ", False),
        (Opcode.CONT, b"two ", False),
        (Opcode.CONT, b"three", True),
    ]
    # A text message split inside a multi-byte character is decoded as
    # whole characters.
    encoded = "€uro".encode()
    server.send_text(encoded[:2], fin=False)
    server.send_continuation(encoded[2:], fin=True)
    to_client(server, client)
    events = client.events()
    assert events == [Fragment("", False), Fragment("€uro", True)]


def test_message_in_progress_refuses_a_new_one() -> None:
    client, _ = serve(make_handshake())
    client.send_text("a", fin=False)
    with pytest.raises(LocalProtocolError):
        client.send_binary(b"b")
    with pytest.raises(LocalProtocolError):
        make_handshake().open().send_continuation(b"x", True)


def test_ping_answered_and_pong_reported() -> None:
    client, server = serve(make_handshake())
    server.send_ping(b"srv")
    to_client(server, client)
    assert client.events() == [PingReceived(b"srv")]
    to_server(client, server)  # the automatic pong
    assert server_messages(server) == [(Opcode.PONG, b"srv", True)]
    client.send_ping(b"cli")
    to_server(client, server)
    server.events_received()
    to_client(server, client)
    assert client.events() == [PongReceived(b"cli")]


def test_control_payload_limit() -> None:
    client, _ = serve(make_handshake())
    with pytest.raises(LocalProtocolError, match="125"):
        client.send_ping(b"x" * 126)


def test_close_started_by_client() -> None:
    client, server = serve(make_handshake())
    client.send_close(1000, "done")
    assert client.close_expected()
    to_server(client, server)
    to_client(server, client)  # the echo, then the server's end of stream
    assert client.events() == [CloseReceived(client.close_rcvd)]  # type: ignore[arg-type]
    client.receive_eof()
    assert client.state is State.CLOSED
    error = client.closed_error()
    assert isinstance(error, ConnectionClosedOK)
    assert error.sent is not None and error.sent.code == 1000
    assert error.rcvd is not None and error.rcvd.reason == "done"
    assert error.rcvd_then_sent is False


def test_close_started_by_server_with_error_code() -> None:
    client, server = serve(make_handshake())
    server.send_close(4001, "custom")
    to_client(server, client)
    [event] = client.events()
    assert isinstance(event, CloseReceived)
    assert (event.frame.code, event.frame.reason) == (4001, "custom")
    to_server(client, server)  # the echo
    to_client(server, client)
    client.receive_eof()
    error = client.closed_error()
    assert isinstance(error, ConnectionClosedError)
    assert error.code == 4001 and error.reason == "custom"
    assert error.rcvd_then_sent is True


def test_close_between_fragments_is_a_normal_close() -> None:
    """A Close frame may come between the fragments of a message (RFC 6455
    section 5.4): the closing handshake goes on normally (1000 echoed) and
    the incomplete message is dropped (Autobahn case 7.1.5)."""
    client, server = serve(make_handshake(), compression=False)
    server.send_text(b"frag", fin=False)
    server.send_close(1000, "")
    to_client(server, client)
    events = client.events()
    assert isinstance(events[-1], CloseReceived)
    assert events[-1].frame.code == 1000
    to_server(client, server)
    assert server.close_rcvd is not None and server.close_rcvd.code == 1000
    client.receive_eof()
    assert isinstance(client.closed_error(), ConnectionClosedOK)


def test_invalid_close_code_refused() -> None:
    client, _ = serve(make_handshake())
    with pytest.raises(LocalProtocolError, match="1005"):
        client.send_close(1005)
    with pytest.raises(LocalProtocolError, match="123"):
        client.send_close(1000, "x" * 124)


def test_invalid_utf8_fails_with_1007_at_once() -> None:
    client, server = serve(make_handshake(), compression=False)
    server.send_text(b"ok \xff", fin=False)
    to_client(server, client)
    assert client.events() == []
    assert client.state is State.CLOSING
    to_server(client, server)
    [close] = server.events_received()
    assert close.opcode is Opcode.CLOSE
    assert int.from_bytes(bytes(close.data)[:2], "big") == 1007
    client.receive_eof()
    error = client.closed_error()
    assert isinstance(error, ConnectionClosedError)
    assert error.sent is not None and error.sent.code == 1007
    assert isinstance(error.__cause__, UnicodeDecodeError)


def test_max_size_fails_with_1009() -> None:
    client, server = serve(make_handshake(max_size=1000), compression=False)
    server.send_binary(b"x" * 1001)
    to_client(server, client)
    assert client.events() == []
    to_server(client, server)
    [close] = server.events_received()
    assert int.from_bytes(bytes(close.data)[:2], "big") == 1009
    client.receive_eof()
    error = client.closed_error()
    assert error.sent is not None and error.sent.code == 1009


def test_max_size_counts_fragments_together() -> None:
    client, server = serve(make_handshake(max_size=1000), compression=False)
    server.send_binary(b"x" * 600, fin=False)
    server.send_continuation(b"x" * 600, fin=True)
    to_client(server, client)
    assert client.events() == [Fragment(b"x" * 600, False)]
    assert client.state is State.CLOSING


def test_dropped_connection_is_1006() -> None:
    client, _ = serve(make_handshake())
    client.receive_eof()
    error = client.closed_error()
    assert isinstance(error, ConnectionClosedError)
    assert error.code == 1006 and error.rcvd is None and error.sent is None


def test_send_after_close_refused() -> None:
    client, _ = serve(make_handshake())
    client.send_close()
    with pytest.raises(LocalProtocolError, match="closing"):
        client.send_text("late")
