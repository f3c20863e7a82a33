"""The WebTransport echo server of ``tests/integration/wt_server_aioquic.py`` run on qh3.

qh3 keeps aioquic's module layout and API (``asyncio.serve``,
``h3.connection.H3Connection(enable_webtransport=True)``, the QUIC and HTTP/3
events) with its QUIC state machine and packet protection in compiled code:
the same echo routes (``/echo``: bidirectional stream echo, unidirectional
echo on a new server stream, datagram echo; for draft-02 clients and, with
``--any-draft``, later drafts) cost the server several times less CPU per
packet than on aioquic, which is pure Python. The server module's ``aioquic``
imports are pointed at qh3's modules before it is loaded; nothing else
changes.

Usage (same options as the aioquic server; prints the UDP port, serves until
standard input closes)::

    python benchmarks/_wtserver_qh3.py --cert server.pem --key server.key --any-draft
"""

from __future__ import annotations

import contextlib
import importlib
import sys
from pathlib import Path
from typing import Any

_TESTS = Path(__file__).resolve().parents[1] / "tests" / "integration"

#: aioquic module -> the qh3 module that provides the same names.
ALIASES = {
    "aioquic": "qh3",
    "aioquic.asyncio": "qh3.asyncio",
    "aioquic.asyncio.server": "qh3.asyncio.server",
    "aioquic.buffer": "qh3._hazmat",
    "aioquic.h3": "qh3.h3",
    "aioquic.h3.connection": "qh3.h3.connection",
    "aioquic.h3.events": "qh3.h3.events",
    "aioquic.quic": "qh3.quic",
    "aioquic.quic.configuration": "qh3.quic.configuration",
    "aioquic.quic.connection": "qh3.quic.connection",
    "aioquic.quic.events": "qh3.quic.events",
}


def _enable_extended_connect() -> None:
    """qh3's ``H3Connection(enable_webtransport=True)`` does not announce
    SETTINGS_ENABLE_CONNECT_PROTOCOL (RFC 9220 section 3), which aioquic's
    does and which a WebTransport client needs before its extended CONNECT:
    add it to the settings of connections with WebTransport on."""
    from qh3.h3.connection import H3Connection, Setting

    local_settings = H3Connection._get_local_settings

    def with_connect_protocol(self: H3Connection) -> dict[int, int]:
        settings = local_settings(self)
        if self._enable_webtransport:
            settings[Setting.ENABLE_CONNECT_PROTOCOL] = 1
        return settings

    H3Connection._get_local_settings = with_connect_protocol  # type: ignore[method-assign]


def _adapt(module: Any) -> None:
    """Where qh3's API differs from aioquic's: ``DatagramReceived`` carries the
    quarter stream id as ``flow_id`` (RFC 9297 section 2.1) where aioquic gives
    the stream id, and the QUIC connection has no ``_streams`` table (reset,
    STOP_SENDING and FIN are asked for directly; qh3 refuses those that no
    longer apply)."""
    from qh3.h3.events import DatagramReceived
    from qh3.quic.connection import stream_is_unidirectional

    base = module.WebTransportServer.protocol_class

    class Qh3Protocol(base):  # type: ignore[misc, valid-type]
        def _h3_event(self, event: Any) -> None:
            if isinstance(event, DatagramReceived):
                session = self._sessions.get(event.flow_id * 4)
                if session is not None and not session.record.closed:
                    session.record.datagrams += 1
                    if session.route in ("/echo", "/drain", "/server-streams"):
                        self._http.send_datagram(event.flow_id, event.data)
                return
            super()._h3_event(event)

        def _abort_stream(self, stream_id: int, code: int) -> None:
            uni = stream_is_unidirectional(stream_id)
            if not uni or stream_id & 1:
                with contextlib.suppress(Exception):
                    self._quic.reset_stream(stream_id, code)
            if not uni or not stream_id & 1:
                with contextlib.suppress(Exception):
                    self._quic.stop_stream(stream_id, code)

        def _end_session(self, session: Any, *, by: str, fin: bool = True) -> None:
            if fin and not session.record.closed:
                with contextlib.suppress(Exception):
                    self._http.send_data(session.record.session_id, b"", end_stream=True)
            super()._end_session(session, by=by, fin=False)

    module.WebTransportServer.protocol_class = Qh3Protocol


def load_server_module() -> Any:
    """Import ``wt_server_aioquic`` with its ``aioquic`` imports served by qh3."""
    for alias, target in ALIASES.items():
        sys.modules[alias] = importlib.import_module(target)
    _enable_extended_connect()
    sys.path.insert(0, str(_TESTS))
    module = importlib.import_module("wt_server_aioquic")
    _adapt(module)
    return module


def main(argv: list[str] | None = None) -> int:
    module = load_server_module()
    result: int = module.main(argv)
    return result


if __name__ == "__main__":
    sys.exit(main())
