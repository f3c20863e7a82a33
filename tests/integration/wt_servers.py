"""WebTransport servers for the integration tests, and a raw qh3 WebTransport client.

Fixtures (registered by ``conftest.py``):

``wt_aioquic``
    The aioquic draft-02 echo server of ``wt_server_aioquic.py``, on a thread,
    once per test session. Yields :class:`WTServerInfo`.
``wt_aioquic_restartable``
    A server of its own for one test, with ``info.server.restart()`` (stop,
    start again on the same UDP port) for reconnection tests.
``wt_pywebtransport``
    pywebtransport 0.21's own server (``wt_server_pywebtransport.py``) in a
    subprocess running the Python 3.12 environment of ``wt_env.py``.
``wt_proxy``
    The WebTransport CONNECT proxy of ``wt_proxy.py``.
``wt_proxy_restartable``
    A proxy of its own for one test, with ``info.server.restart()``.

``wt_aioquic_any_draft``
    The same aioquic server, also advertising the later drafts' SETTINGS
    (SETTINGS_WT_MAX_SESSIONS, SETTINGS_WT_ENABLED, the session flow-control
    limits) and accepting the ``webtransport-h3`` upgrade token.

:class:`RawWebTransportClient` talks to these servers with qh3 directly (no
webwire code), to check the servers themselves.
"""

from __future__ import annotations

import asyncio
import subprocess
import threading
from collections import defaultdict
from collections.abc import AsyncIterator, Iterator, Mapping
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

import pytest
import yarl

HERE = Path(__file__).resolve().parent

__all__ = [
    "CURRENT_DRAFT_CLIENT_SETTINGS",
    "RawConnectionClosed",
    "RawWebTransportClient",
    "WTServerInfo",
    "open_raw_session",
    "wt_aioquic",
    "wt_aioquic_any_draft",
    "wt_aioquic_restartable",
    "wt_proxy",
    "wt_proxy_restartable",
    "wt_pywebtransport",
]


#: SETTINGS_ENABLE_WEBTRANSPORT of draft-02 (what aioquic's H3Connection speaks).
SETTINGS_ENABLE_WEBTRANSPORT = 0x2B603742
#: SETTINGS_WT_ENABLED of the current draft: pywebtransport 0.21 closes the
#: connection (WT_REQUIREMENTS_NOT_MET, 0x212c0d48) when a client omits it.
SETTINGS_WT_ENABLED = 0x2C7CF000
#: The current draft's initial session flow-control limits (bytes, streams).
SETTINGS_WT_INITIAL_MAX_DATA = 0x2B61
SETTINGS_WT_INITIAL_MAX_STREAMS_UNI = 0x2B64
SETTINGS_WT_INITIAL_MAX_STREAMS_BIDI = 0x2B65
#: What a client of pywebtransport 0.21's server sends besides qh3's own SETTINGS.
CURRENT_DRAFT_CLIENT_SETTINGS = {
    SETTINGS_WT_ENABLED: 1,
    SETTINGS_WT_INITIAL_MAX_DATA: 16 << 20,
    SETTINGS_WT_INITIAL_MAX_STREAMS_UNI: 100,
    SETTINGS_WT_INITIAL_MAX_STREAMS_BIDI: 100,
}


class _TLSFiles(Protocol):
    ca_path: str
    cert_path: str
    key_path: str


@dataclass(frozen=True)
class WTServerInfo:
    """Where a WebTransport test server listens.

    Attributes:
        name: ``"aioquic"``, ``"pywebtransport"``, ``"proxy"``.
        url: Base URL ``https://127.0.0.1:PORT`` (append a route such as ``/echo``).
        port: The UDP port.
        ca_path: PEM bundle of the CA that signed the server certificate.
        server: The in-process server object (aioquic servers), else ``None``.
        draft: ``"draft02"`` (aioquic), ``"any"`` (aioquic serving every draft) or
            ``"current"`` (pywebtransport 0.21).
        connect_protocol: The ``:protocol`` the server accepts on the
            extended CONNECT: ``"webtransport"`` (draft-02) or
            ``"webtransport-h3"`` (current draft).
        client_settings: HTTP/3 SETTINGS a client must send besides
            SETTINGS_H3_DATAGRAM for the server to accept sessions.
    """

    name: str
    url: yarl.URL
    port: int
    ca_path: str
    server: Any = None
    draft: str = "draft02"
    connect_protocol: str = "webtransport"
    client_settings: Mapping[int, int] = field(default_factory=dict)

    def route(self, path: str) -> yarl.URL:
        """The session URL of ``path`` (``"/echo"``, ``"/close?code=5"``...)."""
        return yarl.URL(str(self.url) + path)


# -- fixtures ------------------------------------------------------------------


def _start_aioquic(
    tls_files: _TLSFiles, name: str = "aioquic", any_draft: bool = False
) -> Iterator[WTServerInfo]:
    from wt_server_aioquic import WebTransportServer

    server = WebTransportServer(tls_files.cert_path, tls_files.key_path, any_draft=any_draft)
    server.start()
    try:
        yield WTServerInfo(
            name=name,
            url=yarl.URL.build(scheme="https", host="127.0.0.1", port=server.port),
            port=server.port,
            ca_path=tls_files.ca_path,
            server=server,
            draft="any" if any_draft else "draft02",
        )
    finally:
        server.stop()


@pytest.fixture(scope="session")
def wt_aioquic(tls_files: _TLSFiles) -> Iterator[WTServerInfo]:
    """aioquic's HTTP/3 with WebTransport draft-02: the echo server of
    ``wt_server_aioquic.py`` on 127.0.0.1 (UDP), shared by the whole session."""
    yield from _start_aioquic(tls_files)


@pytest.fixture(scope="session")
def wt_aioquic_any_draft(tls_files: _TLSFiles) -> Iterator[WTServerInfo]:
    """The aioquic echo server, serving draft-02 clients and clients of later drafts
    (``webtransport-h3``, SETTINGS_WT_ENABLED) alike."""
    yield from _start_aioquic(tls_files, name="aioquic-any-draft", any_draft=True)


WT_SERVERS = ["wt_aioquic", "wt_pywebtransport"]
"""The fixtures of the two WebTransport servers we did not write."""


@pytest.fixture(params=WT_SERVERS)
def wt_server(request: pytest.FixtureRequest) -> WTServerInfo:
    """Each of :data:`WT_SERVERS` in turn: aioquic's draft-02 server and
    pywebtransport 0.21's (the current draft)."""
    info: WTServerInfo = request.getfixturevalue(request.param)
    return info


@pytest.fixture
def wt_aioquic_restartable(tls_files: _TLSFiles) -> Iterator[WTServerInfo]:
    """A WebTransport server of this test's own: ``info.server.stop()``,
    ``.start()`` and ``.restart()`` keep the same UDP port."""
    yield from _start_aioquic(tls_files, name="aioquic-restartable")


class _Subprocess:
    """A server script run by another interpreter, which prints its port when ready."""

    def __init__(self, argv: list[str], name: str, env: Mapping[str, str] | None = None) -> None:
        self.name = name
        self.process = subprocess.Popen(
            argv,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env=dict(env) if env is not None else None,
        )
        self.stderr_lines: list[str] = []
        self._port: list[str] = []
        ready = threading.Event()

        def read_stdout() -> None:
            assert self.process.stdout is not None
            for line in self.process.stdout:
                if not self._port:
                    self._port.append(line.strip())
                    ready.set()
            ready.set()

        def read_stderr() -> None:
            assert self.process.stderr is not None
            for line in self.process.stderr:
                self.stderr_lines.append(line.rstrip())
                del self.stderr_lines[:-200]

        self._readers = [
            threading.Thread(target=read_stdout, daemon=True),
            threading.Thread(target=read_stderr, daemon=True),
        ]
        for reader in self._readers:
            reader.start()
        if not ready.wait(60.0) or not self._port or not self._port[0].isdigit():
            self.stop()
            tail = "\n".join(self.stderr_lines[-25:])
            raise RuntimeError(f"{name} did not start:\n{tail}")
        self.port = int(self._port[0])

    def stop(self) -> None:
        """Close its standard input (the script's signal to stop), then terminate it."""
        if self.process.poll() is None:
            try:
                assert self.process.stdin is not None
                self.process.stdin.close()
            except OSError:
                pass
            try:
                self.process.wait(5.0)
            except subprocess.TimeoutExpired:
                self.process.terminate()
                try:
                    self.process.wait(5.0)
                except subprocess.TimeoutExpired:
                    self.process.kill()
                    self.process.wait()
        for reader in self._readers:
            reader.join(5.0)
        for pipe in (self.process.stdin, self.process.stdout, self.process.stderr):
            if pipe is not None and not pipe.closed:
                try:
                    pipe.close()
                except OSError:
                    pass


@pytest.fixture(scope="session")
def wt_pywebtransport(tls_files: _TLSFiles) -> Iterator[WTServerInfo]:
    """pywebtransport 0.21.1's server (the current WebTransport draft) running the echo
    routes of ``wt_server_pywebtransport.py``, in a subprocess of the Python 3.12
    environment built by ``wt_env.py``. Skipped only when no Python 3.12 exists."""
    import wt_env

    try:
        python = wt_env.ensure_python()
    except wt_env.NoPython312 as exc:
        pytest.skip(str(exc))
    proc = _Subprocess(
        [
            str(python),
            str(HERE / "wt_server_pywebtransport.py"),
            "--cert",
            tls_files.cert_path,
            "--key",
            tls_files.key_path,
        ],
        "pywebtransport server",
    )
    try:
        yield WTServerInfo(
            name="pywebtransport",
            url=yarl.URL.build(scheme="https", host="127.0.0.1", port=proc.port),
            port=proc.port,
            ca_path=tls_files.ca_path,
            draft="current",
            connect_protocol="webtransport-h3",
            client_settings=CURRENT_DRAFT_CLIENT_SETTINGS,
        )
    finally:
        proc.stop()


@pytest.fixture(scope="session")
def wt_proxy(tls_files: _TLSFiles) -> Iterator[WTServerInfo]:
    """The WebTransport CONNECT proxy of ``wt_proxy.py`` (aioquic, draft-02) on a thread.
    Sessions go to ``info.route("/proxy")``; ``info.server.echo_target`` is a TCP echo
    server to name in ``CONNECT`` requests."""
    yield from _start_proxy(tls_files)


@pytest.fixture
def wt_proxy_restartable(tls_files: _TLSFiles) -> Iterator[WTServerInfo]:
    """A WebTransport proxy of this test's own: ``info.server.restart()`` keeps the UDP
    port (the TCP echo target moves; the ``echo.test`` target of ``wt_proxy.py`` does
    not need it)."""
    yield from _start_proxy(tls_files)


def _start_proxy(tls_files: _TLSFiles) -> Iterator[WTServerInfo]:
    from wt_proxy import WebTransportProxyServer

    server = WebTransportProxyServer(tls_files.cert_path, tls_files.key_path)
    server.start()
    try:
        yield WTServerInfo(
            name="proxy",
            url=yarl.URL.build(scheme="https", host="127.0.0.1", port=server.port),
            port=server.port,
            ca_path=tls_files.ca_path,
            server=server,
        )
    finally:
        server.stop()


# -- a raw qh3 client ----------------------------------------------------------


class RawConnectionClosed(ConnectionError):
    """The server closed the QUIC connection before answering the CONNECT.

    Attributes:
        termination: ``(error_code, reason)`` of its CONNECTION_CLOSE.
    """

    def __init__(self, termination: tuple[int, str] | None) -> None:
        super().__init__(f"the server closed the connection: {termination}")
        self.termination = termination


@dataclass
class _StreamState:
    data: bytearray = field(default_factory=bytearray)
    ended: bool = False
    reset_code: int | None = None
    stop_code: int | None = None
    changed: asyncio.Event = field(default_factory=asyncio.Event)


class RawWebTransportClient:
    """One QUIC connection and one WebTransport session, spoken with qh3 only.

    qh3's ``H3Connection.create_webtransport_stream`` sends the
    ``WEBTRANSPORT_STREAM`` signal (0x41) and the session id on a new
    bidirectional stream but does not register the stream as a WebTransport
    stream in its own table, so the server's bytes on it would be parsed as
    HTTP/3 frames. :meth:`create_stream` sets, on the stream's ``H3Stream``
    (``h3._get_or_create_stream(stream_id)``), ``frame_type =
    FrameType.WEBTRANSPORT_STREAM`` (0x41) and ``session_id`` (the CONNECT
    stream's id); qh3 then reports the replies as
    ``WebTransportStreamDataReceived``.

    Use :func:`open_raw_session`.
    """

    def __init__(self, protocol: Any, h3: Any) -> None:
        self._protocol = protocol
        self.h3 = h3
        self.session_id: int = -1
        self.status: int | None = None
        self.response_headers: dict[str, str] = {}
        self.streams: dict[int, _StreamState] = defaultdict(_StreamState)
        self.incoming: asyncio.Queue[int] = asyncio.Queue()
        self.datagrams: asyncio.Queue[bytes] = asyncio.Queue()
        self.capsules: list[tuple[int, bytes]] = []
        self.close_info: tuple[int, str] | None = None
        self.session_ended = asyncio.Event()
        self.settings_received = asyncio.Event()
        self.connection_closed = asyncio.Event()
        #: ``(error_code, reason)`` of the QUIC CONNECTION_CLOSE, once received.
        self.termination: tuple[int, str] | None = None
        self._capsule_buffer = bytearray()
        self._headers_received = asyncio.Event()
        #: HEADERS and DATA events of other requests on this connection, by stream.
        self.requests: dict[int, list[Any]] = {}
        self.requests_changed = asyncio.Event()

    # -- events from the protocol -------------------------------------------

    def _handle(self, event: Any) -> None:
        from qh3.quic import events as qe

        if isinstance(event, qe.ConnectionTerminated):
            self.termination = (event.error_code, event.reason_phrase)
            self.connection_closed.set()
            self.session_ended.set()
            self._headers_received.set()
            for state in self.streams.values():
                state.changed.set()
            return
        try:
            h3_events = self.h3.handle_event(event)
        except Exception:
            # qh3 raises once its QUIC core has closed the connection; the
            # ConnectionTerminated event with the peer's error code follows.
            return
        for h3_event in h3_events:
            self._h3_event(h3_event)
        if self.h3.received_settings is not None:
            self.settings_received.set()

    def _h3_event(self, event: Any) -> None:
        from qh3.h3 import events as h3e

        if isinstance(event, h3e.HeadersReceived) and event.stream_id == self.session_id:
            self.response_headers = {
                k.decode("latin-1"): v.decode("latin-1") for k, v in event.headers
            }
            self.status = int(self.response_headers.get(":status", "0"))
            self._headers_received.set()
            if event.stream_ended:
                self.session_ended.set()
        elif isinstance(event, h3e.DataReceived) and event.stream_id == self.session_id:
            self._capsule_buffer.extend(event.data)
            from wt_server_aioquic import CLOSE_WEBTRANSPORT_SESSION, parse_capsules

            for capsule in parse_capsules(self._capsule_buffer):
                self.capsules.append(capsule)
                if capsule[0] == CLOSE_WEBTRANSPORT_SESSION:
                    payload = capsule[1]
                    self.close_info = (
                        int.from_bytes(payload[:4], "big"),
                        payload[4:].decode("utf-8", "replace"),
                    )
            if event.stream_ended:
                self.session_ended.set()
        elif isinstance(event, (h3e.HeadersReceived, h3e.DataReceived)):
            # Another request on the same connection (``send_request``).
            self.requests.setdefault(event.stream_id, []).append(event)
            self.requests_changed.set()
        elif isinstance(event, h3e.WebTransportStreamDataReceived):
            new = event.stream_id not in self.streams
            state = self.streams[event.stream_id]
            state.data.extend(event.data)
            state.ended = state.ended or event.stream_ended
            state.changed.set()
            if new and (event.stream_id & 1) == 1:
                self.incoming.put_nowait(event.stream_id)
        elif isinstance(event, h3e.DatagramReceived):
            if event.flow_id * 4 == self.session_id:
                self.datagrams.put_nowait(event.data)
        elif isinstance(event, h3e.StreamReset):
            if event.stream_id == self.session_id:
                self.session_ended.set()
            state = self.streams[event.stream_id]
            state.reset_code = event.error_code
            state.changed.set()
        elif isinstance(event, h3e.StopSending):
            state = self.streams[event.stream_id]
            state.stop_code = event.error_code
            state.changed.set()

    # -- session ---------------------------------------------------------------

    async def _connect(
        self,
        authority: str,
        path: str,
        headers: Mapping[str, str],
        timeout: float,
        protocol: str,
    ) -> None:
        quic = self._protocol._quic
        self.session_id = quic.get_next_available_stream_id()
        request = [
            (b":method", b"CONNECT"),
            (b":protocol", protocol.encode()),
            (b":scheme", b"https"),
            (b":authority", authority.encode()),
            (b":path", path.encode()),
        ]
        request += [(k.lower().encode(), v.encode()) for k, v in headers.items()]
        try:
            self.h3.send_headers(self.session_id, request, end_stream=False)
            self._protocol.transmit()
        except Exception:  # qh3: the QUIC connection is closed already
            pass
        await asyncio.wait_for(self._headers_received.wait(), timeout)
        if self.status is None:
            raise RawConnectionClosed(self.termination)

    def transmit(self) -> None:
        """Send what qh3 has queued."""
        self._protocol.transmit()

    async def create_stream(self, *, unidirectional: bool = False) -> int:
        """Open a WebTransport stream of this session; return its id."""
        from qh3.h3.connection import FrameType

        stream_id: int = self.h3.create_webtransport_stream(
            self.session_id, is_unidirectional=unidirectional
        )
        if not unidirectional:
            stream = self.h3._get_or_create_stream(stream_id)
            stream.frame_type = FrameType.WEBTRANSPORT_STREAM
            stream.session_id = self.session_id
        self.streams.setdefault(stream_id, _StreamState())
        self._protocol.transmit()
        return stream_id

    def send(self, stream_id: int, data: bytes, end_stream: bool = False) -> None:
        """Queue ``data`` on a stream and transmit."""
        self._protocol._quic.send_stream_data(stream_id, data, end_stream)
        self._protocol.transmit()

    async def receive(
        self, stream_id: int, size: int | None = None, timeout: float = 10.0
    ) -> bytes:
        """Wait for ``size`` bytes on a stream (or its end when ``size`` is ``None``) and take
        them.

        Raises:
            ConnectionError: The stream was reset first (the error code is in the message).
            TimeoutError: Nothing complete within ``timeout`` seconds.
        """
        state = self.streams[stream_id]

        async def wait() -> bytes:
            while True:
                if size is not None and len(state.data) >= size:
                    chunk = bytes(state.data[:size])
                    del state.data[:size]
                    return chunk
                if state.ended:
                    chunk = bytes(state.data)
                    state.data.clear()
                    return chunk
                if state.reset_code is not None:
                    raise ConnectionError(f"stream {stream_id} reset with {state.reset_code:#x}")
                if self.connection_closed.is_set():
                    raise ConnectionError("the QUIC connection closed")
                state.changed.clear()
                await state.changed.wait()

        return await asyncio.wait_for(wait(), timeout)

    async def wait_stream_event(self, stream_id: int, timeout: float = 10.0) -> _StreamState:
        """Wait until the stream is reset, stopped or ended by the peer; return its state."""
        state = self.streams[stream_id]

        async def wait() -> _StreamState:
            while state.reset_code is None and state.stop_code is None and not state.ended:
                state.changed.clear()
                await state.changed.wait()
            return state

        return await asyncio.wait_for(wait(), timeout)

    def send_request(self, headers: list[tuple[bytes, bytes]], end_stream: bool = False) -> int:
        """Send another request's header section on a new stream of this connection; its
        response events are collected in :attr:`requests`."""
        stream_id: int = self._protocol._quic.get_next_available_stream_id()
        self.h3.send_headers(stream_id, headers, end_stream=end_stream)
        self._protocol.transmit()
        return stream_id

    def send_request_data(self, stream_id: int, data: bytes, end_stream: bool = False) -> None:
        """Send DATA on a request stream opened by :meth:`send_request`."""
        self.h3.send_data(stream_id, data, end_stream=end_stream)
        self._protocol.transmit()

    async def request_response(
        self, stream_id: int, *, body_size: int | None = None, timeout: float = 10.0
    ) -> tuple[int, bytes, bool]:
        """Wait for the status and ``body_size`` body bytes (or the end of the body) of a
        request opened by :meth:`send_request`; return ``(status, body, ended)``."""

        def state() -> tuple[int | None, bytes, bool]:
            status: int | None = None
            body = b""
            ended = False
            for event in self.requests.get(stream_id, []):
                if hasattr(event, "headers"):
                    status = int(dict(event.headers)[b":status"])
                else:
                    body += event.data
                ended = ended or event.stream_ended
            return status, body, ended

        async def wait() -> tuple[int, bytes, bool]:
            while True:
                status, body, ended = state()
                if status is not None and (
                    ended or (body_size is not None and len(body) >= body_size)
                ):
                    return status, body, ended
                if self.connection_closed.is_set():
                    raise ConnectionError("the QUIC connection closed")
                self.requests_changed.clear()
                await self.requests_changed.wait()

        return await asyncio.wait_for(wait(), timeout)

    def send_datagram(self, data: bytes) -> None:
        """Send a datagram on the session (quarter-stream-id prefix, RFC 9297 section 2.1)."""
        self.h3.send_datagram(self.session_id // 4, data)
        self._protocol.transmit()

    async def receive_datagram(self, timeout: float = 10.0) -> bytes:
        """The next datagram of the session."""
        return await asyncio.wait_for(self.datagrams.get(), timeout)

    def close_session(self, code: int = 0, reason: str = "") -> None:
        """Send CLOSE_WEBTRANSPORT_SESSION and end the CONNECT stream."""
        from wt_server_aioquic import CLOSE_WEBTRANSPORT_SESSION, encode_capsule

        payload = code.to_bytes(4, "big") + reason.encode()
        self.h3.send_data(
            self.session_id, encode_capsule(CLOSE_WEBTRANSPORT_SESSION, payload), end_stream=True
        )
        self._protocol.transmit()


@asynccontextmanager
async def open_raw_session(
    port: int,
    path: str,
    ca_path: str,
    *,
    host: str = "127.0.0.1",
    headers: Mapping[str, str] | None = None,
    extra_settings: Mapping[int, int] | None = None,
    protocol: str = "webtransport",
    timeout: float = 10.0,
    max_data: int = 32 << 20,
    max_stream_data: int = 16 << 20,
) -> AsyncIterator[RawWebTransportClient]:
    """Connect with qh3 (asyncio), send the extended CONNECT for ``path`` and yield the
    client once the response headers are in (``client.status`` tells whether it was
    accepted).

    Args:
        extra_settings: HTTP/3 SETTINGS sent besides qh3's own (which include
            SETTINGS_ENABLE_WEBTRANSPORT, 0x2b603742, and SETTINGS_H3_DATAGRAM).
    """
    from qh3.asyncio import QuicConnectionProtocol, connect
    from qh3.h3.connection import H3Connection
    from qh3.quic.configuration import QuicConfiguration

    extras = dict(extra_settings or {})

    class _H3(H3Connection):  # type: ignore[misc]
        def _get_local_settings(self) -> dict[int, int]:
            settings: dict[int, int] = super()._get_local_settings()
            settings.update(extras)
            return settings

    holder: list[RawWebTransportClient] = []

    class _Protocol(QuicConnectionProtocol):  # type: ignore[misc]
        def __init__(self, *args: Any, **kwargs: Any) -> None:
            super().__init__(*args, **kwargs)
            holder.append(RawWebTransportClient(self, _H3(self._quic, enable_webtransport=True)))

        def quic_event_received(self, event: Any) -> None:
            holder[0]._handle(event)

    configuration = QuicConfiguration(
        is_client=True,
        alpn_protocols=["h3"],
        max_datagram_frame_size=65536,
        max_data=max_data,
        max_stream_data=max_stream_data,
        server_name="localhost",
        cafile=ca_path,
    )
    async with connect(host, port, configuration=configuration, create_protocol=_Protocol):
        client = holder[0]
        await client._connect(f"{host}:{port}", path, headers or {}, timeout, protocol)
        yield client

