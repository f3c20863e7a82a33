"""The WebTransport server of ``webwire demo``: aioquic's HTTP/3 connection
with WebTransport enabled (draft-ietf-webtrans-http3-02), on a UDP socket
of ``127.0.0.1``, in the demo servers' asyncio loop.

Routes (the ``:path`` of the extended CONNECT, RFC 9220 section 3):

``/echo``
    Each bidirectional stream the client opens is echoed on itself (the
    server ends its side when the client ends its side); each datagram is
    echoed on the session (RFC 9297). When the client ends the session
    (CLOSE_WEBTRANSPORT_SESSION and the end of the CONNECT stream), the
    server ends its side of the CONNECT stream.
``/close?code=N&reason=TEXT``
    The server closes the session at once with a
    CLOSE_WEBTRANSPORT_SESSION capsule carrying ``N`` and ``TEXT``
    (section 5) and ends the CONNECT stream.

Other paths are answered ``404``.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import parse_qs, urlsplit

__all__ = ["start_webtransport_server"]

_CLOSE_SESSION = 0x2843
"""CLOSE_WEBTRANSPORT_SESSION capsule type."""


def _varint(value: int) -> bytes:
    from aioquic.buffer import encode_uint_var

    data: bytes = encode_uint_var(value)
    return data


def _close_capsule(code: int, reason: str) -> bytes:
    payload = (code & 0xFFFFFFFF).to_bytes(4, "big") + reason.encode("utf-8")[:1024]
    return _varint(_CLOSE_SESSION) + _varint(len(payload)) + payload


def _protocol_class() -> type[Any]:
    from aioquic.asyncio.protocol import QuicConnectionProtocol
    from aioquic.h3.connection import H3Connection
    from aioquic.h3.events import (
        DatagramReceived,
        DataReceived,
        HeadersReceived,
        WebTransportStreamDataReceived,
    )
    from aioquic.quic.events import ProtocolNegotiated

    class DemoWebTransportProtocol(QuicConnectionProtocol):  # type: ignore[misc]
        """One QUIC connection of the demo WebTransport server."""

        def __init__(self, *args: Any, **kwargs: Any) -> None:
            super().__init__(*args, **kwargs)
            self._http: Any = None
            self._echo: set[int] = set()

        def quic_event_received(self, event: Any) -> None:
            if isinstance(event, ProtocolNegotiated):
                self._http = H3Connection(self._quic, enable_webtransport=True)
            if self._http is not None:
                for h3_event in self._http.handle_event(event):
                    self._h3_event(h3_event)
            self.transmit()

        def _h3_event(self, event: Any) -> None:
            http = self._http
            if isinstance(event, HeadersReceived):
                self._request(event)
            elif isinstance(event, WebTransportStreamDataReceived):
                if event.session_id in self._echo and not event.stream_id & 2:
                    self._quic.send_stream_data(
                        event.stream_id, event.data, end_stream=event.stream_ended
                    )
            elif isinstance(event, DatagramReceived) and event.stream_id in self._echo:
                http.send_datagram(event.stream_id, event.data)
            elif (
                isinstance(event, DataReceived)
                and event.stream_ended
                and event.stream_id in self._echo
            ):
                # The client closed the session (its capsule, then FIN):
                # end the CONNECT stream too.
                self._echo.discard(event.stream_id)
                http.send_data(event.stream_id, b"", end_stream=True)

        def _request(self, event: Any) -> None:
            http = self._http
            headers = {k.decode("latin-1"): v.decode("latin-1") for k, v in event.headers}
            split = urlsplit(headers.get(":path", "/"))
            webtransport = (
                headers.get(":method") == "CONNECT"
                and headers.get(":protocol") == "webtransport"
            )
            if not webtransport or split.path not in ("/echo", "/close"):
                http.send_headers(event.stream_id, [(b":status", b"404")], end_stream=True)
                return
            http.send_headers(
                event.stream_id,
                [(b":status", b"200"), (b"sec-webtransport-http3-draft", b"draft02")],
            )
            if split.path == "/echo":
                self._echo.add(event.stream_id)
                return
            query = {k: v[-1] for k, v in parse_qs(split.query).items()}
            code = int(query.get("code", "0"))
            capsule = _close_capsule(code, query.get("reason", ""))
            http.send_data(event.stream_id, capsule, end_stream=True)

    return DemoWebTransportProtocol


async def start_webtransport_server(certfile: str, keyfile: str) -> tuple[Any, int]:
    """Serve WebTransport on a UDP port of ``127.0.0.1`` in the running
    asyncio loop.

    Args:
        certfile: PEM certificate chain of the server.
        keyfile: PEM private key of ``certfile``.

    Returns:
        ``(server, port)``: aioquic's server (``server.close()`` stops it)
        and its UDP port.
    """
    from aioquic.asyncio.server import serve
    from aioquic.h3.connection import H3_ALPN
    from aioquic.quic.configuration import QuicConfiguration

    configuration = QuicConfiguration(
        is_client=False,
        alpn_protocols=H3_ALPN,
        max_datagram_frame_size=65536,
    )
    configuration.load_cert_chain(certfile, keyfile)
    server = await serve(
        "127.0.0.1", 0, configuration=configuration, create_protocol=_protocol_class()
    )
    transport = server._transport
    assert transport is not None
    port: int = transport.get_extra_info("sockname")[1]
    return server, port
