"""HTTP/3 test servers and a minimal HTTP/3 client to check them.

* :func:`start_hypercorn_h3`: hypercorn serving the ASGI app of ``app.py``
  over HTTP/3 (``quic_bind``, UDP) and over TLS on TCP (HTTP/2 and HTTP/1.1
  by ALPN) on the SAME port number, so that the ``Alt-Svc: h3=":PORT"``
  hypercorn adds to every response (it does when ``quic_bind`` is set)
  points at the port of the URL. Both sockets are bound here (UDP on port 0,
  then TCP on that number, again until both are free) and handed over with
  ``fd://``, so the port is known before the server starts.
* :func:`start_aioquic_h3`: the aioquic server of ``aioquic_server.py``
  (RFC 9220 WebSocket, counters, idle timeout).
* :func:`h3_request`: one HTTP/3 exchange with aioquic's or qh3's own client
  (not webwire's), used to probe the servers and in their self-tests.

Every server listens on 127.0.0.1 with the trustme certificate of the
integration tests.
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import http.client
import importlib
import socket
import ssl
import threading
import time
from collections.abc import Callable, Coroutine, Iterator
from dataclasses import dataclass, field
from typing import Any, TypeVar

import yarl

__all__ = [
    "H3Response",
    "H3ServerInfo",
    "h3_request",
    "run_in_thread",
    "start_aioquic_h3",
    "start_hypercorn_h3",
]

T = TypeVar("T")


@dataclass(frozen=True)
class H3ServerInfo:
    """Where an HTTP/3 test server listens.

    Attributes:
        name: ``"hypercorn-h3"`` or ``"aioquic-h3"``.
        url: ``https://127.0.0.1:PORT`` (yarl URL).
        udp_port: The UDP port of HTTP/3 (the port of ``url``).
        ca_path: PEM bundle of the CA that signed the server certificate.
        verify: The same path, for ``verify=``.
        tcp: Whether TCP (TLS, HTTP/2 and HTTP/1.1) is served on the same
            port number too.
        server: The :class:`aioquic_server.AioquicH3Server` (its ``stats``
            counters, ``close_connections()``), ``None`` for hypercorn.
    """

    name: str
    url: yarl.URL
    udp_port: int
    ca_path: str
    verify: str
    tcp: bool = False
    server: Any = field(default=None, compare=False, repr=False)

    @property
    def address(self) -> tuple[str, int]:
        """``("127.0.0.1", udp_port)``."""
        return ("127.0.0.1", self.udp_port)


# -- running an asyncio server in a thread --------------------------------------------


class LoopThread:
    """Runs ``serve(stop)`` on its own asyncio loop in a daemon thread.

    Args:
        name: Label used in errors.
        serve: The server coroutine; it returns once ``stop`` is set.
    """

    def __init__(
        self, name: str, serve: Callable[[asyncio.Event], Coroutine[Any, Any, None]]
    ) -> None:
        self.name = name
        self._serve = serve
        self._loop: asyncio.AbstractEventLoop | None = None
        self._stop: asyncio.Event | None = None
        self._ready = threading.Event()
        self._error: BaseException | None = None
        self._thread = threading.Thread(target=self._run, name=f"server-{name}", daemon=True)

    def start(self) -> None:
        """Start the thread and wait until its loop runs."""
        self._thread.start()
        if not self._ready.wait(10.0):
            raise RuntimeError(f"{self.name} did not start")
        if self._error is not None:
            raise RuntimeError(f"{self.name} failed to start") from self._error

    def _run(self) -> None:
        try:
            asyncio.run(self._main())
        except BaseException as exc:  # reported by stop()
            self._error = exc
            self._ready.set()

    async def _main(self) -> None:
        self._loop = asyncio.get_running_loop()
        self._stop = asyncio.Event()
        self._ready.set()
        await self._serve(self._stop)

    def stop(self) -> None:
        """Ask the server to shut down and wait for the thread."""
        loop, stop = self._loop, self._stop
        if loop is not None and stop is not None and self._thread.is_alive():
            with contextlib.suppress(RuntimeError):
                loop.call_soon_threadsafe(stop.set)
        self._thread.join(15.0)
        if self._thread.is_alive():
            raise RuntimeError(f"{self.name} did not shut down")
        if self._error is not None:
            raise RuntimeError(f"{self.name} crashed") from self._error


def run_in_thread(function: Callable[[], Coroutine[Any, Any, T]], timeout: float = 30.0) -> T:
    """Run a coroutine with ``asyncio.run`` in a fresh thread and return its result.

    Works whatever loop the calling thread runs (asyncio, trio or none).
    """
    result: list[T] = []
    error: list[BaseException] = []

    def target() -> None:
        try:
            result.append(asyncio.run(function()))
        except BaseException as exc:
            error.append(exc)

    thread = threading.Thread(target=target, name="h3-client", daemon=True)
    thread.start()
    thread.join(timeout)
    if thread.is_alive():
        raise TimeoutError(f"no answer within {timeout} s")
    if error:
        raise error[0]
    return result[0]


# -- a minimal HTTP/3 client on aioquic or qh3 -------------------------------------------


@dataclass
class H3Response:
    """What :func:`h3_request` got back.

    Attributes:
        status: The ``:status``.
        headers: The other fields, names lowercased, in order.
        body: The DATA of the response (for a WebSocket: the frame bytes).
        settings: The SETTINGS the server sent (id -> value).
        session_resumed: Whether the handshake resumed a session.
        early_data_accepted: Whether the server accepted 0-RTT data.
        ticket: The last session ticket the server issued (engine object).
    """

    status: int
    headers: list[tuple[bytes, bytes]]
    body: bytes
    settings: dict[int, int]
    session_resumed: bool = False
    early_data_accepted: bool = False
    ticket: Any = None

    def header(self, name: bytes) -> bytes | None:
        """The first value of the field ``name`` (lowercase), or ``None``."""
        for key, value in self.headers:
            if key == name:
                return value
        return None


def _engine(name: str) -> dict[str, Any]:
    """The classes of ``aioquic`` or ``qh3`` (which share aioquic's API)."""
    if name not in ("aioquic", "qh3"):
        raise ValueError(f"unknown QUIC engine {name!r}")
    asyncio_mod = importlib.import_module(f"{name}.asyncio")
    client_mod = importlib.import_module(f"{name}.asyncio.client")
    h3 = importlib.import_module(f"{name}.h3.connection")
    h3_events = importlib.import_module(f"{name}.h3.events")
    configuration = importlib.import_module(f"{name}.quic.configuration")
    quic_events = importlib.import_module(f"{name}.quic.events")
    return {
        "protocol": asyncio_mod.QuicConnectionProtocol,
        "connect": client_mod.connect,
        "H3Connection": h3.H3Connection,
        "H3_ALPN": h3.H3_ALPN,
        "HeadersReceived": h3_events.HeadersReceived,
        "DataReceived": h3_events.DataReceived,
        "QuicConfiguration": configuration.QuicConfiguration,
        "HandshakeCompleted": quic_events.HandshakeCompleted,
    }


async def h3_request(
    address: tuple[str, int],
    path: str = "/",
    *,
    ca_path: str,
    method: str = "GET",
    body: bytes = b"",
    headers: list[tuple[bytes, bytes]] | None = None,
    authority: str | None = None,
    engine: str = "aioquic",
    session_ticket: Any = None,
    end_stream: bool = True,
    after_head: Callable[[Callable[[bytes, bool], None]], None] | None = None,
    until: Callable[[bytes], bool] | None = None,
    timeout: float = 10.0,
) -> H3Response:
    """One HTTP/3 request with aioquic's or qh3's client, on a new connection.

    Args:
        address: ``(host, udp_port)``.
        path: ``:path``.
        ca_path: CA bundle to verify the server certificate with.
        method: ``:method``; ``"CONNECT"`` with a ``(b":protocol", ...)``
            pair in ``headers`` makes an extended CONNECT (RFC 9220).
        body: Request content (sent with the head unless ``end_stream`` is
            false).
        headers: More fields; pseudo-fields among them go before the others.
        authority: ``:authority`` (default ``host:port``).
        engine: ``"aioquic"`` or ``"qh3"``.
        session_ticket: A ticket from an earlier :class:`H3Response` to
            resume with (and send the request as 0-RTT data).
        end_stream: Whether the request ends with its head/body.
        after_head: Called with a ``send(data, end_stream)`` function once
            the response head arrived (to talk on a CONNECT stream).
        until: Stop reading once ``until(body so far)`` is true.
        timeout: Seconds for the whole exchange.

    Raises:
        TimeoutError: No complete answer within ``timeout``.
        ConnectionError: The connection failed.
    """
    e = _engine(engine)
    loop = asyncio.get_running_loop()
    done: asyncio.Future[None] = loop.create_future()
    handshake = asyncio.Event()
    state: dict[str, Any] = {"status": None, "headers": [], "body": bytearray()}
    info: dict[str, Any] = {"resumed": False, "early": False, "ticket": None}

    base: Any = e["protocol"]

    class Client(base):  # type: ignore[misc]
        def __init__(self, *args: Any, **kwargs: Any) -> None:
            super().__init__(*args, **kwargs)
            self.h3 = e["H3Connection"](self._quic)
            self.stream_id: int | None = None

        def quic_event_received(self, event: Any) -> None:
            if isinstance(event, e["HandshakeCompleted"]):
                info["resumed"] = event.session_resumed
                info["early"] = event.early_data_accepted
                handshake.set()
            for h3_event in self.h3.handle_event(event):
                self._h3_event(h3_event)
            if type(event).__name__ == "ConnectionTerminated" and not done.done():
                done.set_exception(ConnectionError(f"connection closed: {event!r}"))

        def _h3_event(self, event: Any) -> None:
            if getattr(event, "stream_id", None) != self.stream_id:
                return
            if isinstance(event, e["HeadersReceived"]):
                if state["status"] is None:
                    fields = list(event.headers)
                    state["status"] = int(dict(fields)[b":status"])
                    state["headers"] = [(k, v) for k, v in fields if not k.startswith(b":")]
                    if after_head is not None:
                        after_head(self.send)
            elif isinstance(event, e["DataReceived"]):
                state["body"] += event.data
            ended = getattr(event, "stream_ended", False)
            complete = (
                until is not None and state["status"] is not None and until(bytes(state["body"]))
            )
            if ended or complete:
                if not done.done():
                    done.set_result(None)

        def send(self, data: bytes, end: bool) -> None:
            assert self.stream_id is not None
            self.h3.send_data(self.stream_id, data, end)
            self.transmit()

        def request(self) -> None:
            host, port = address
            head = [
                (b":method", method.encode()),
                (b":scheme", b"https"),
                (b":authority", (authority or f"{host}:{port}").encode()),
                (b":path", path.encode()),
            ]
            extra = headers or []
            head += [pair for pair in extra if pair[0].startswith(b":")]
            head += [pair for pair in extra if not pair[0].startswith(b":")]
            self.stream_id = self._quic.get_next_available_stream_id()
            last = end_stream and not body
            self.h3.send_headers(self.stream_id, head, end_stream=last)
            if body:
                self.h3.send_data(self.stream_id, body, end_stream)
            self.transmit()

    configuration = e["QuicConfiguration"](
        is_client=True, alpn_protocols=e["H3_ALPN"], server_name=address[0]
    )
    configuration.load_verify_locations(cafile=ca_path)
    if session_ticket is not None:
        configuration.session_ticket = session_ticket

    def keep_ticket(ticket: Any) -> None:
        info["ticket"] = ticket

    connect = e["connect"](
        address[0],
        address[1],
        configuration=configuration,
        create_protocol=Client,
        session_ticket_handler=keep_ticket,
        wait_connected=session_ticket is None,
    )
    async with asyncio.timeout(timeout) if hasattr(asyncio, "timeout") else _timeout(timeout):
        async with connect as client:
            client.request()
            await done
            settings = dict(client.h3.received_settings or {})
            # (aioquic's wait_connected() never returns when the handshake
            # completed before it was called.)
            await handshake.wait()
            # Give the server's NewSessionTicket a moment to arrive.
            if info["ticket"] is None:
                await client.ping()
            client.close()
    return H3Response(
        status=state["status"],
        headers=state["headers"],
        body=bytes(state["body"]),
        settings=settings,
        session_resumed=info["resumed"],
        early_data_accepted=info["early"],
        ticket=info["ticket"],
    )


@contextlib.asynccontextmanager
async def _timeout(seconds: float) -> Any:
    """``asyncio.timeout`` for Python 3.10."""
    task = asyncio.current_task()
    assert task is not None
    handle = asyncio.get_running_loop().call_later(seconds, task.cancel)
    try:
        yield
    except asyncio.CancelledError as exc:
        raise TimeoutError(f"no answer within {seconds} s") from exc
    finally:
        handle.cancel()


def _probe_h3(info: H3ServerInfo) -> None:
    """One GET over HTTP/3 (aioquic's client), to fail fast when the server
    or the certificates are broken."""
    deadline = time.monotonic() + 10.0
    while True:
        try:
            response = run_in_thread(
                lambda: h3_request(info.address, "/json", ca_path=info.ca_path, timeout=5.0)
            )
        except (OSError, TimeoutError):
            if time.monotonic() > deadline:
                raise
            time.sleep(0.05)
            continue
        if response.status != 200:
            raise RuntimeError(f"{info.name} answered {response.status} to the HTTP/3 probe")
        return


def _probe_tcp(info: H3ServerInfo) -> None:
    deadline = time.monotonic() + 10.0
    while True:
        context = ssl.create_default_context(cafile=info.ca_path)
        conn = http.client.HTTPSConnection("127.0.0.1", info.udp_port, timeout=5.0, context=context)
        try:
            conn.request("GET", "/json")
            response = conn.getresponse()
            response.read()
            if response.status == 200:
                return
            raise RuntimeError(f"{info.name} answered {response.status} to the TCP probe")
        except OSError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.05)
        finally:
            conn.close()


# -- hypercorn ----------------------------------------------------------------------


def bind_port_pair(attempts: int = 50) -> tuple[socket.socket, socket.socket]:
    """A UDP and a listening TCP socket on 127.0.0.1 with the same port number.

    The UDP socket is bound to port 0 first, then TCP to the port it got;
    when that port is taken for TCP, both are closed and the pair is tried
    again.

    Raises:
        OSError: No free pair within ``attempts`` tries.
    """
    last: OSError | None = None
    for _ in range(attempts):
        udp = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        udp.bind(("127.0.0.1", 0))
        port = udp.getsockname()[1]
        tcp = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        try:
            tcp.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            tcp.bind(("127.0.0.1", port))
            tcp.listen(128)
        except OSError as exc:
            udp.close()
            tcp.close()
            if exc.errno != errno.EADDRINUSE:
                raise
            last = exc
            continue
        udp.setblocking(False)
        tcp.setblocking(False)
        return udp, tcp
    raise OSError(errno.EADDRINUSE, "no free UDP+TCP port pair") from last


def _hypercorn_h3_serve(
    app: Any,
    udp: socket.socket,
    tcp: socket.socket,
    cert_path: str,
    key_path: str,
) -> Callable[[asyncio.Event], Coroutine[Any, Any, None]]:
    async def serve(stop: asyncio.Event) -> None:
        from hypercorn.asyncio import serve as hypercorn_serve
        from hypercorn.config import Config

        config = Config()
        # hypercorn takes ownership of duplicates; ours are closed after stop.
        config.bind = [f"fd://{tcp.dup().detach()}"]
        config.quic_bind = [f"fd://{udp.dup().detach()}"]
        config.certfile = cert_path
        config.keyfile = key_path
        config.graceful_timeout = 1.0
        config.keep_alive_timeout = 30.0
        config.keep_alive_max_requests = 1_000_000
        config.accesslog = None
        # hypercorn does not close the transport of its QUIC socket when it
        # stops: keep hold of it and close it here.
        loop = asyncio.get_running_loop()
        transports: list[asyncio.BaseTransport] = []
        create_endpoint = loop.create_datagram_endpoint

        async def create_and_keep(*args: Any, **kwargs: Any) -> Any:
            transport, protocol = await create_endpoint(*args, **kwargs)
            transports.append(transport)
            return transport, protocol

        loop.create_datagram_endpoint = create_and_keep  # type: ignore[method-assign]
        try:
            await hypercorn_serve(app, config, shutdown_trigger=stop.wait)
        finally:
            for transport in transports:
                transport.close()
            await asyncio.sleep(0)

    return serve


@contextlib.contextmanager
def start_hypercorn_h3(
    cert_path: str, key_path: str, ca_path: str, app: Any = None
) -> Iterator[H3ServerInfo]:
    """Run hypercorn with HTTP/3 and TLS over TCP on one port number.

    Args:
        cert_path: Server certificate chain (PEM).
        key_path: Its private key (PEM).
        ca_path: The CA bundle clients verify with.
        app: ASGI app (default: ``app.app``).

    Yields:
        :class:`H3ServerInfo` (``tcp`` true), after a probe over HTTP/3 and
        over TCP answered.
    """
    if app is None:
        from app import app as default_app

        app = default_app
    udp, tcp = bind_port_pair()
    port = udp.getsockname()[1]
    thread = LoopThread("hypercorn-h3", _hypercorn_h3_serve(app, udp, tcp, cert_path, key_path))
    info = H3ServerInfo(
        name="hypercorn-h3",
        url=yarl.URL.build(scheme="https", host="127.0.0.1", port=port),
        udp_port=port,
        ca_path=ca_path,
        verify=ca_path,
        tcp=True,
    )
    try:
        thread.start()
        _probe_tcp(info)
        _probe_h3(info)
        yield info
    finally:
        try:
            thread.stop()
        finally:
            udp.close()
            tcp.close()


@contextlib.contextmanager
def start_aioquic_h3(
    cert_path: str,
    key_path: str,
    ca_path: str,
    *,
    idle_timeout: float = 60.0,
    retry: bool = False,
    max_streams: int = 128,
) -> Iterator[H3ServerInfo]:
    """Run the aioquic HTTP/3 server of ``aioquic_server.py``.

    Args:
        cert_path: Server certificate chain (PEM).
        key_path: Its private key (PEM).
        ca_path: The CA bundle clients verify with.
        idle_timeout: QUIC idle timeout in seconds.
        retry: Validate addresses with a Retry packet first.
        max_streams: Concurrent bidirectional streams allowed per connection.

    Yields:
        :class:`H3ServerInfo` with ``server`` set, after a probe answered.
        The probe's connection counts in ``server.stats``.
    """
    from aioquic_server import AioquicH3Server

    server = AioquicH3Server(
        cert_path, key_path, idle_timeout=idle_timeout, retry=retry, max_streams=max_streams
    )
    server.start()
    try:
        info = H3ServerInfo(
            name="aioquic-h3",
            url=yarl.URL.build(scheme="https", host="127.0.0.1", port=server.port),
            udp_port=server.port,
            ca_path=ca_path,
            verify=ca_path,
            server=server,
        )
        _probe_h3(info)
        yield info
    finally:
        server.stop()
