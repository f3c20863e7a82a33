"""H3Protocol (sans-I/O HTTP/3 over qh3) against aioquic's server side, in
memory: the test carries the datagrams both ways and moves a fake clock.
"""

from __future__ import annotations

import ssl
from pathlib import Path
from typing import Any

import pytest
import trustme
from aioquic.buffer import Buffer
from aioquic.h3 import events as ae
from aioquic.h3.connection import H3_ALPN, H3Connection
from aioquic.quic import events as aqe
from aioquic.quic.configuration import QuicConfiguration
from aioquic.quic.connection import QuicConnection
from aioquic.quic.packet import pull_quic_header

from webwire._exceptions import ConnectError, LocalProtocolError, RemoteProtocolError
from webwire._proto import events as ev
from webwire._proto.h3 import (
    ErrorCode,
    H3Protocol,
    SessionTicket,
    error_name,
    is_certificate_error,
    quic_tls_options,
)

SERVER = ("127.0.0.1", 4433)
CLIENT = ("127.0.0.1", 50123)


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    directory: Path = tmp_path_factory.mktemp("h3pki")
    ca = trustme.CA()
    cert = ca.issue_cert("localhost", "127.0.0.1")
    client_cert = ca.issue_cert("client@example")
    paths = {
        "ca": str(directory / "ca.pem"),
        "other_ca": str(directory / "other.pem"),
        "cert": str(directory / "cert.pem"),
        "key": str(directory / "key.pem"),
        "client": str(directory / "client.pem"),
    }
    ca.cert_pem.write_to_path(paths["ca"])
    trustme.CA().cert_pem.write_to_path(paths["other_ca"])
    cert.cert_chain_pems[0].write_to_path(paths["cert"])
    cert.private_key_pem.write_to_path(paths["key"])
    client_cert.private_key_and_cert_chain_pem.write_to_path(paths["client"])
    return paths


class _ServerH3(H3Connection):
    connect_protocol = True

    def _get_local_settings(self) -> dict[int, int]:
        settings: dict[int, int] = super()._get_local_settings()
        if not self.connect_protocol:
            settings.pop(0x8, None)
        return settings


class Pair:
    """An H3Protocol client and an aioquic server joined in memory."""

    def __init__(
        self,
        pki: dict[str, str],
        *,
        verify: Any = None,
        client_idle: float = 30.0,
        server_idle: float = 60.0,
        connect_protocol: bool = True,
        ticket: SessionTicket | None = None,
        tickets: dict[bytes, Any] | None = None,
    ) -> None:
        self.now = 1000.0
        self.config = QuicConfiguration(
            is_client=False, alpn_protocols=H3_ALPN, idle_timeout=server_idle
        )
        self.config.load_cert_chain(pki["cert"], pki["key"])
        self.connect_protocol = connect_protocol
        self.tickets = tickets
        self.issued: list[SessionTicket] = []
        self.client = H3Protocol(
            server_name="localhost",
            tls=quic_tls_options(pki["ca"] if verify is None else verify),
            idle_timeout=client_idle,
            session_ticket=ticket,
            ticket_handler=self.issued.append,
        )
        self.client.connect(SERVER, self.now)
        self.server: QuicConnection | None = None
        self.h3: _ServerH3 | None = None
        self.server_events: list[Any] = []
        self.client_events: list[ev.Event] = []
        self.client_error: BaseException | None = None

    def _server_receive(self, data: bytes) -> None:
        if self.server is None:
            header = pull_quic_header(Buffer(data=data), host_cid_length=8)
            kwargs: dict[str, Any] = {}
            if self.tickets is not None:
                kwargs = {
                    "session_ticket_fetcher": self.tickets.pop,
                    "session_ticket_handler": lambda t: self.tickets.__setitem__(t.ticket, t),
                }
            self.server = QuicConnection(
                configuration=self.config,
                original_destination_connection_id=header.destination_cid,
                **kwargs,
            )
            _ServerH3.connect_protocol = self.connect_protocol
            self.h3 = _ServerH3(self.server)
        self.server.receive_datagram(data, CLIENT, self.now)
        self._server_drain()

    def _server_drain(self) -> None:
        assert self.server is not None
        while (event := self.server.next_event()) is not None:
            self.server_events.append(event)
            assert self.h3 is not None
            self.server_events.extend(self.h3.handle_event(event))

    def pump(self, rounds: int = 30) -> None:
        """Carry datagrams both ways until nothing moves (1 ms per round)."""
        for _ in range(rounds):
            self.now += 0.001
            moved = False
            for data in self.client.datagrams_to_send(self.now):
                moved = True
                self._server_receive(data)
            if self.server is not None:
                for data, _ in self.server.datagrams_to_send(self.now):
                    moved = True
                    try:
                        self.client.receive_datagram(data, SERVER, self.now)
                    except RemoteProtocolError as exc:
                        self.client_error = exc
            self.client_events.extend(self.client.events())
            if not moved:
                return

    def advance(self, seconds: float) -> None:
        """Move the clock, firing every timer due on the way."""
        end = self.now + seconds
        while True:
            deadlines = [d for d in (self.client.next_deadline(),) if d is not None]
            if self.server is not None and self.server.get_timer() is not None:
                deadlines.append(self.server.get_timer())  # type: ignore[arg-type]
            due = min(deadlines, default=None)
            if due is None or due > end:
                break
            self.now = max(self.now, due)
            client_due = self.client.next_deadline()
            if client_due is not None and client_due <= self.now:
                self.client.handle_deadline(self.now)
            if self.server is not None:
                timer = self.server.get_timer()
                if timer is not None and timer <= self.now:
                    self.server.handle_timer(self.now)
                    self._server_drain()
            self.pump(3)
        self.now = end

    def take(self) -> list[ev.Event]:
        events, self.client_events = self.client_events, []
        return events

    def server_h3(self, kind: type) -> list[Any]:
        return [e for e in self.server_events if isinstance(e, kind)]

    def respond(self, stream_id: int, status: bytes = b"200", body: bytes = b"", **kw: Any) -> None:
        assert self.h3 is not None
        self.h3.send_headers(stream_id, [(b":status", status), *kw.get("headers", [])])
        self.h3.send_data(stream_id, body, end_stream=kw.get("end", True))


def connected(pki: dict[str, str], **kwargs: Any) -> Pair:
    pair = Pair(pki, **kwargs)
    pair.pump()
    assert pair.client.handshake_complete
    return pair


def get(pair: Pair, target: bytes = b"/", **kwargs: Any) -> int:
    headers = [(b"Host", b"localhost"), *kwargs.pop("headers", [])]
    return pair.client.send_request(
        kwargs.pop("method", b"GET"), b"https", target, headers, end_stream=kwargs.pop("end", True)
    )


# ------------------------------------------------------------------ requests


def test_handshake_and_settings(pki: dict[str, str]) -> None:
    pair = connected(pki)
    assert pair.client.alpn == "h3"
    assert pair.client.settings_received
    assert pair.client.supports_extended_connect
    assert pair.client.streams_left == 128  # aioquic's MAX_STREAMS
    assert not pair.client.session_resumed
    assert pair.client.idle_timeout == 30.0


def test_get(pki: dict[str, str]) -> None:
    pair = connected(pki)
    stream_id = get(
        pair,
        b"/path?q=1",
        headers=[
            (b"Connection", b"keep-alive"),
            (b"Keep-Alive", b"5"),
            (b"Transfer-Encoding", b"chunked"),
            (b"TE", b"trailers"),
            (b"X-Custom", b"Value"),
        ],
    )
    pair.pump()
    (request,) = pair.server_h3(ae.HeadersReceived)
    assert request.headers == [
        (b":method", b"GET"),
        (b":scheme", b"https"),
        (b":authority", b"localhost"),
        (b":path", b"/path?q=1"),
        (b"te", b"trailers"),
        (b"x-custom", b"Value"),
    ]
    assert request.stream_ended
    pair.respond(stream_id, body=b"hello", headers=[(b"content-type", b"text/plain")])
    pair.pump()
    assert pair.take() == [
        ev.ResponseHead(stream_id, 200, b"", [(b"content-type", b"text/plain")], "HTTP/3"),
        ev.Data(stream_id, b"hello"),
        ev.EndOfMessage(stream_id, []),
    ]


def test_post_body_and_send_buffer(pki: dict[str, str]) -> None:
    pair = connected(pki)
    stream_id = get(pair, b"/upload", method=b"POST", end=False)
    payload = bytes(range(256)) * 4096  # 1 MiB
    pair.client.send_data(stream_id, payload)
    assert pair.client.send_buffer_size(stream_id) > 0  # queued, not sent yet
    pair.client.end_stream(stream_id)
    for _ in range(200):
        pair.pump()
        if pair.client.send_buffer_size(stream_id) == 0:
            break
    assert pair.client.send_buffer_size(stream_id) == 0
    received = b"".join(e.data for e in pair.server_h3(ae.DataReceived))
    assert received == payload
    assert pair.server_h3(ae.DataReceived)[-1].stream_ended
    assert not pair.client.can_send(stream_id)
    with pytest.raises(LocalProtocolError):
        pair.client.send_data(stream_id, b"more")


def test_informational_and_trailers(pki: dict[str, str]) -> None:
    pair = connected(pki)
    stream_id = get(pair)
    pair.pump()
    assert pair.h3 is not None
    pair.h3.send_headers(stream_id, [(b":status", b"103"), (b"link", b"</a>")])
    pair.respond(stream_id, body=b"x", end=False)
    pair.h3.send_headers(stream_id, [(b"x-checksum", b"42")], end_stream=True)
    pair.pump()
    assert pair.take() == [
        ev.InformationalResponse(stream_id, 103, b"", [(b"link", b"</a>")]),
        ev.ResponseHead(stream_id, 200, b"", [], "HTTP/3"),
        ev.Data(stream_id, b"x"),
        ev.EndOfMessage(stream_id, [(b"x-checksum", b"42")]),
    ]


def test_server_resets_stream(pki: dict[str, str]) -> None:
    pair = connected(pki)
    stream_id = get(pair)
    pair.pump()
    pair.respond(stream_id, body=b"part", end=False)
    assert pair.server is not None
    pair.server.reset_stream(stream_id, ErrorCode.H3_INTERNAL_ERROR)
    pair.pump()
    events = pair.take()
    assert events[-1] == ev.StreamReset(stream_id, ErrorCode.H3_INTERNAL_ERROR)
    assert error_name(ErrorCode.H3_INTERNAL_ERROR) == "H3_INTERNAL_ERROR"
    # The connection goes on.
    other = get(pair)
    pair.pump()
    pair.respond(other, body=b"ok")
    pair.pump()
    assert pair.take()[-1] == ev.EndOfMessage(other, [])


def test_client_resets_stream(pki: dict[str, str]) -> None:
    pair = connected(pki)
    stream_id = get(pair, method=b"POST", end=False)
    pair.client.send_data(stream_id, b"abc")
    pair.pump()
    pair.client.reset_stream(stream_id)
    pair.pump()
    resets = [e for e in pair.server_events if isinstance(e, aqe.StreamReset)]
    stops = [e for e in pair.server_events if isinstance(e, aqe.StopSendingReceived)]
    assert resets and resets[0].error_code == ErrorCode.H3_REQUEST_CANCELLED
    assert stops and stops[0].error_code == ErrorCode.H3_REQUEST_CANCELLED
    # Late data of the reset stream produces no event.
    pair.take()
    assert pair.client.events() == []


def test_idle_timeout(pki: dict[str, str]) -> None:
    pair = connected(pki, client_idle=5.0)
    assert pair.client.idle_timeout == 5.0
    pair.take()
    pair.advance(4.0)
    assert pair.client.terminated is None
    pair.advance(30.0)  # the server sends nothing: 5 s after its last packet
    terminated = pair.client.terminated
    assert terminated is not None
    assert "idle" in terminated.reason.lower()
    assert terminated in pair.take()
    assert pair.client.next_deadline() is None
    with pytest.raises(LocalProtocolError, match="closed"):
        get(pair)


def test_ping_keeps_connection_alive(pki: dict[str, str]) -> None:
    pair = connected(pki, client_idle=5.0)
    for _ in range(5):
        pair.advance(2.0)
        pair.client.send_ping()
        pair.pump()
    assert pair.client.terminated is None
    assert pair.now > 1010.0


def test_goaway(pki: dict[str, str]) -> None:
    pair = connected(pki)
    first = get(pair)
    second = get(pair)
    pair.pump()
    assert pair.h3 is not None and pair.server is not None
    control = pair.h3._local_control_stream_id
    assert control is not None
    pair.server.send_stream_data(control, bytes([0x07, 0x01, second]))  # GOAWAY(second)
    pair.respond(first, body=b"done")
    pair.pump()
    events = pair.take()
    assert ev.StreamReset(second, ErrorCode.H3_REQUEST_REJECTED) in events
    assert ev.ConnectionTerminated(ErrorCode.H3_NO_ERROR, "GOAWAY", second) in events
    assert ev.EndOfMessage(first, []) in events
    assert pair.client.goaway == second
    assert pair.client.terminated is None
    with pytest.raises(LocalProtocolError, match="GOAWAY"):
        get(pair)


def test_extended_connect(pki: dict[str, str]) -> None:
    pair = connected(pki)
    stream_id = pair.client.send_request(
        b"CONNECT",
        b"https",
        b"/chat",
        [(b"Host", b"localhost"), (b"Sec-WebSocket-Version", b"13")],
        end_stream=False,
        protocol=b"websocket",
    )
    pair.pump()
    (request,) = pair.server_h3(ae.HeadersReceived)
    assert request.headers[:5] == [
        (b":method", b"CONNECT"),
        (b":protocol", b"websocket"),
        (b":scheme", b"https"),
        (b":authority", b"localhost"),
        (b":path", b"/chat"),
    ]
    with pytest.raises(LocalProtocolError, match="CONNECT only"):
        pair.client.send_request(
            b"GET", b"https", b"/", [(b"Host", b"h")], end_stream=True, protocol=b"websocket"
        )
    assert stream_id == 0


def test_extended_connect_not_enabled(pki: dict[str, str]) -> None:
    pair = connected(pki, connect_protocol=False)
    assert pair.client.settings_received
    assert not pair.client.supports_extended_connect
    with pytest.raises(LocalProtocolError, match="SETTINGS_ENABLE_CONNECT_PROTOCOL"):
        pair.client.send_request(
            b"CONNECT", b"https", b"/", [(b"Host", b"h")], end_stream=False, protocol=b"websocket"
        )
    # Plain CONNECT: :authority from the target, no :path.
    stream_id = pair.client.send_request(
        b"CONNECT", b"https", b"example.com:443", [(b"Host", b"h")], end_stream=False
    )
    pair.pump()
    (request,) = pair.server_h3(ae.HeadersReceived)
    assert request.stream_id == stream_id
    assert request.headers == [(b":method", b"CONNECT"), (b":authority", b"example.com:443")]


def test_invalid_requests(pki: dict[str, str]) -> None:
    pair = connected(pki)
    with pytest.raises(LocalProtocolError):
        get(pair, headers=[(b"X-Bad", b"a\r\nb")])
    with pytest.raises(LocalProtocolError):
        get(pair, b"/a b")
    with pytest.raises(LocalProtocolError, match="Host"):
        pair.client.send_request(b"GET", b"https", b"/", [], end_stream=True)
    # Nothing was sent for them: the next request gets stream 0.
    assert get(pair) == 0


def test_server_protocol_error(pki: dict[str, str]) -> None:
    pair = connected(pki)
    stream_id = get(pair)
    pair.pump()
    assert pair.server is not None
    # A DATA frame before any HEADERS is a connection error (RFC 9114 4.1).
    pair.server.send_stream_data(stream_id, b"\x00\x02hi", end_stream=False)
    pair.pump()
    assert isinstance(pair.client_error, RemoteProtocolError)
    assert "H3_FRAME_UNEXPECTED" in str(pair.client_error)
    terminated = pair.client.terminated
    assert terminated is not None and terminated.error_code == ErrorCode.H3_FRAME_UNEXPECTED


def test_oversized_response_head(pki: dict[str, str]) -> None:
    pair = Pair(pki)
    pair.client._max_header_size = 100
    pair.pump()
    stream_id = get(pair)
    pair.pump()
    pair.respond(stream_id, headers=[(b"x-big", b"v" * 200)])
    pair.pump()
    assert pair.take() == [ev.StreamReset(stream_id, ErrorCode.H3_EXCESSIVE_LOAD)]


# ------------------------------------------------------------------ TLS


def test_certificate_failure(pki: dict[str, str]) -> None:
    pair = Pair(pki, verify=pki["other_ca"])
    pair.pump()
    assert not pair.client.handshake_complete
    terminated = pair.client.terminated
    assert terminated is not None
    assert is_certificate_error(terminated.error_code, terminated.reason)
    assert "CRYPTO_ERROR" in error_name(terminated.error_code)
    assert isinstance(pair.client_error, RemoteProtocolError)


def test_wrong_host_name(pki: dict[str, str]) -> None:
    pair = Pair(pki)
    pair.client = H3Protocol(server_name="other.example", tls=quic_tls_options(pki["ca"]))
    pair.client.connect(SERVER, pair.now)
    pair.pump()
    assert not pair.client.handshake_complete
    terminated = pair.client.terminated
    assert terminated is not None and is_certificate_error(terminated.error_code, terminated.reason)


def test_verify_false_and_ssl_context(pki: dict[str, str]) -> None:
    assert connected(pki, verify=False).client.handshake_complete
    context = ssl.create_default_context(cafile=pki["ca"])
    assert connected(pki, verify=context).client.handshake_complete
    unverified = ssl.create_default_context()
    unverified.check_hostname = False
    unverified.verify_mode = ssl.CERT_NONE
    assert not quic_tls_options(unverified).verify


def test_tls_options_errors(pki: dict[str, str], tmp_path: Path) -> None:
    with pytest.raises(ConnectError, match="CA certificates"):
        quic_tls_options(str(tmp_path / "missing.pem"))
    junk = tmp_path / "junk.pem"
    junk.write_bytes(b"not a certificate")
    with pytest.raises(ConnectError, match="no PEM certificate"):
        quic_tls_options(str(junk))
    with pytest.raises(ConnectError, match="client certificate"):
        quic_tls_options(pki["ca"], cert=str(junk))
    options = quic_tls_options(pki["ca"], cert=pki["client"])
    assert options.certificate is not None and options.private_key is not None
    options = quic_tls_options(pki["ca"], cert=(pki["cert"], pki["key"]))
    assert options.certificate is not None
    # One QuicTLS serves any number of connections.
    assert connected(pki).client.handshake_complete


def test_session_resumption(pki: dict[str, str]) -> None:
    tickets: dict[bytes, Any] = {}
    first = connected(pki, tickets=tickets)
    first.pump()
    assert first.issued, "the server sent no session ticket"
    second = connected(pki, tickets=tickets, ticket=first.issued[-1])
    assert second.client.session_resumed
    stream_id = get(second)
    second.pump()
    second.respond(stream_id, body=b"again")
    second.pump()
    assert second.take()[-1] == ev.EndOfMessage(stream_id, [])


def test_close(pki: dict[str, str]) -> None:
    pair = connected(pki)
    pair.client.close()
    pair.pump()
    pair.advance(1.0)
    closed = [e for e in pair.server_events if isinstance(e, aqe.ConnectionTerminated)]
    assert closed and closed[0].error_code == ErrorCode.H3_NO_ERROR
    assert pair.client.terminated is not None
    with pytest.raises(LocalProtocolError):
        get(pair)
