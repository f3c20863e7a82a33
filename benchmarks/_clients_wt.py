"""The WebTransport clients compared by ``benchmarks/webtransport.py`` and their scenarios.

Every scenario opens what it needs outside the timing (except ``setup``,
which times exactly that), does one warm-up exchange, then times the work
and checks every echo byte for byte, so that a client that skips work
cannot look fast. Each returns the :class:`~_clients.Timing` of the timed
part (wall clock and this process's CPU time).

Scenarios (all against the ``/echo`` route of the aioquic echo server):

* ``setup``: ``WtWorkload.sessions`` sessions, one after the other: a new
  client (so a new QUIC connection and TLS handshake), the extended
  CONNECT, the ``200``, and one 16-byte echo on a bidirectional stream (so
  the session is known to work) are timed; the close that follows is not;
  counted in sessions per second.
* ``roundtrip``: ``WtWorkload.roundtrips`` sequential 16-byte writes on one
  bidirectional stream, each waiting for its echo; round trips per second.
* ``stream``: ``WtWorkload.stream_size`` bytes (64 MiB) written on one
  bidirectional stream while the echo is read back; counted in MiB per
  second (MiB sent, each also received back).
* ``datagram``: ``WtWorkload.datagrams`` sequential 16-byte datagrams, each
  waiting for its echo (a datagram not echoed within 0.5 s is sent again;
  more than 1% resent fails the run); round trips per second.

Clients:

* ``qh3-raw``: qh3's ``H3Connection`` driven directly on asyncio, no
  webwire code: the ceiling of the engine webwire is built on.
* ``pywebtransport-0.21`` and ``pywebtransport-0.8.1``: pywebtransport's
  clients, which need Python 3.12 (0.21) or >= 3.11: they run this file as
  a script in the environments of ``tests/integration/wt_env.py`` and
  print their :class:`Timing` as JSON (their CPU time is their own
  process's).
* ``webwire-asyncio``, ``webwire-trio``, ``webwire-sync``:
  ``webwire.webtransport.WebTransportClient`` (and its blocking twin in
  ``webwire.webtransport.sync``); skipped while it does not exist.
"""

from __future__ import annotations

import argparse
import asyncio
import importlib
import inspect
import json
import ssl
import sys
from collections import deque
from collections.abc import Callable, Coroutine
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _clients import ResponseMismatch, Stopwatch, Timing

__all__ = ["CLIENTS", "SCENARIOS", "WtClientSpec", "WtWorkload"]

SCENARIOS = ("setup", "roundtrip", "stream", "datagram")
MiB = 1 << 20
CHUNK = 1 << 20
#: Bytes in flight (written, not yet echoed) in ``stream`` for clients that do not
#: apply back-pressure themselves.
WINDOW = 8 << 20
DATAGRAM_TIMEOUT = 0.5
REPO = Path(__file__).resolve().parents[1]


@dataclass(frozen=True)
class WtWorkload:
    """What one measurement does.

    Attributes:
        url: The echo session URL, ``https://127.0.0.1:PORT/echo``.
        ca_path: PEM file of the CA that signed the server certificate.
        sessions: Sessions opened in ``setup``.
        roundtrips: Round trips timed in ``roundtrip``.
        stream_size: Bytes sent (and echoed) in ``stream``.
        datagrams: Datagram round trips timed in ``datagram``.
    """

    url: str
    ca_path: str
    sessions: int
    roundtrips: int
    stream_size: int
    datagrams: int

    def units(self, scenario: str) -> float:
        """Sessions, round trips or MiB one run of ``scenario`` counts."""
        if scenario == "setup":
            return self.sessions
        if scenario == "roundtrip":
            return self.roundtrips
        if scenario == "stream":
            return self.stream_size / MiB
        return self.datagrams

    @property
    def host(self) -> str:
        return self.url.split("//", 1)[1].split("/", 1)[0].rsplit(":", 1)[0]

    @property
    def port(self) -> int:
        return int(self.url.split("//", 1)[1].split("/", 1)[0].rsplit(":", 1)[1])

    @property
    def path(self) -> str:
        return "/" + self.url.split("//", 1)[1].split("/", 1)[1]


def _small(i: int) -> bytes:
    """The 16-byte message number ``i``."""
    return b"wt-%013d" % i


def _pattern(size: int) -> bytes:
    """``size`` bytes that are not all alike (so misordered echoes are caught)."""
    block = bytes(range(256)) * 4096  # 1 MiB
    return (block * (size // len(block) + 1))[:size]


class _Accumulated:
    """Sums the wall-clock and CPU time of several timed parts (``setup`` times each
    session's opening and first echo, not its close: how long a client lingers over the
    QUIC close differs between engines and says nothing about setup)."""

    def __init__(self) -> None:
        self.elapsed = 0.0
        self.cpu = 0.0
        self._watch: Stopwatch | None = None

    def start(self) -> None:
        self._watch = Stopwatch()

    def stop(self) -> None:
        assert self._watch is not None
        timing = self._watch.stop()
        self.elapsed += timing.elapsed
        self.cpu += timing.cpu
        self._watch = None

    def timing(self) -> Timing:
        return Timing(self.elapsed, self.cpu)


def _check(client: str, what: str, sent: bytes, received: bytes) -> None:
    if received != sent:
        raise ResponseMismatch(
            f"{client}: {what}: sent {len(sent)} bytes, got {len(received)} "
            f"({received[:24]!r}...)"
        )


# -- qh3, raw ------------------------------------------------------------------


class _Qh3Client:
    """One QUIC connection and one draft-02 WebTransport session over qh3's H3Connection."""

    def __init__(self, protocol: Any) -> None:
        from qh3.h3.connection import H3Connection

        self.protocol = protocol
        self.quic = protocol._quic
        self.h3 = H3Connection(self.quic, enable_webtransport=True)
        self.session_id = -1
        self.status: asyncio.Future[int] = asyncio.get_running_loop().create_future()
        self.buffers: dict[int, bytearray] = {}
        self.ended: set[int] = set()
        self.waiting: tuple[int, int, asyncio.Future[None]] | None = None
        self.datagrams: deque[bytes] = deque()
        self.datagram_waiter: asyncio.Future[None] | None = None

    def handle(self, event: Any) -> None:
        from qh3.h3 import events as h3e
        from qh3.quic.events import ConnectionTerminated

        if isinstance(event, ConnectionTerminated):
            if not self.status.done():
                self.status.set_exception(ConnectionError(event.reason_phrase))
            return
        try:
            h3_events = self.h3.handle_event(event)
        except Exception:
            return
        for e in h3_events:
            if isinstance(e, h3e.WebTransportStreamDataReceived):
                buf = self.buffers.setdefault(e.stream_id, bytearray())
                buf.extend(e.data)
                if e.stream_ended:
                    self.ended.add(e.stream_id)
                waiting = self.waiting
                if waiting is not None and waiting[0] == e.stream_id:
                    if len(buf) >= waiting[1] or e.stream_ended:
                        self.waiting = None
                        if not waiting[2].done():
                            waiting[2].set_result(None)
            elif isinstance(e, h3e.DatagramReceived):
                self.datagrams.append(e.data)
                waiter = self.datagram_waiter
                if waiter is not None and not waiter.done():
                    waiter.set_result(None)
            elif isinstance(e, h3e.HeadersReceived) and e.stream_id == self.session_id:
                status = dict(e.headers).get(b":status", b"0")
                if not self.status.done():
                    self.status.set_result(int(status))

    async def open(self, authority: str, path: str) -> None:
        self.session_id = self.quic.get_next_available_stream_id()
        self.h3.send_headers(
            self.session_id,
            [
                (b":method", b"CONNECT"),
                (b":protocol", b"webtransport"),
                (b":scheme", b"https"),
                (b":authority", authority.encode()),
                (b":path", path.encode()),
            ],
        )
        self.protocol.transmit()
        status = await asyncio.wait_for(self.status, 10.0)
        if status != 200:
            raise ResponseMismatch(f"qh3-raw: the server answered {status}")

    def create_stream(self) -> int:
        from qh3.h3.connection import FrameType

        stream_id: int = self.h3.create_webtransport_stream(self.session_id)
        # qh3 does not register the bidirectional stream it opened as a WebTransport
        # stream: without this the echo would be parsed as HTTP/3 frames.
        stream = self.h3._get_or_create_stream(stream_id)
        stream.frame_type = FrameType.WEBTRANSPORT_STREAM
        stream.session_id = self.session_id
        self.buffers[stream_id] = bytearray()
        return stream_id

    def send(self, stream_id: int, data: bytes, end: bool = False) -> None:
        self.quic.send_stream_data(stream_id, data, end)
        self.protocol.transmit()

    async def receive(self, stream_id: int, size: int) -> bytes:
        buf = self.buffers[stream_id]
        if len(buf) < size and stream_id not in self.ended:
            future = asyncio.get_running_loop().create_future()
            self.waiting = (stream_id, size, future)
            await asyncio.wait_for(future, 30.0)
        data = bytes(buf[:size])
        del buf[:size]
        return data

    def send_datagram(self, data: bytes) -> None:
        self.h3.send_datagram(self.session_id // 4, data)
        self.protocol.transmit()

    async def receive_datagram(self, timeout: float) -> bytes | None:
        if not self.datagrams:
            self.datagram_waiter = asyncio.get_running_loop().create_future()
            try:
                await asyncio.wait_for(self.datagram_waiter, timeout)
            except asyncio.TimeoutError:
                return None
        return self.datagrams.popleft()

    def close_session(self) -> None:
        # CLOSE_WEBTRANSPORT_SESSION (0x2843), code 0, no reason; then FIN.
        self.h3.send_data(self.session_id, b"\x80\x00\x28\x43\x04\x00\x00\x00\x00", True)
        self.protocol.transmit()


class _Qh3Session:
    """``async with _Qh3Session(work) as client``: connect, open the session, close both."""

    def __init__(self, work: WtWorkload) -> None:
        self.work = work
        self._cm: Any = None

    async def __aenter__(self) -> _Qh3Client:
        from qh3.asyncio import QuicConnectionProtocol, connect
        from qh3.quic.configuration import QuicConfiguration

        holder: list[_Qh3Client] = []

        class Protocol(QuicConnectionProtocol):  # type: ignore[misc]
            def quic_event_received(self, event: Any) -> None:
                if not holder:
                    holder.append(_Qh3Client(self))
                holder[0].handle(event)

        config = QuicConfiguration(
            is_client=True,
            alpn_protocols=["h3"],
            max_datagram_frame_size=65536,
            max_data=64 << 20,
            max_stream_data=32 << 20,
            server_name="localhost",
            cafile=self.work.ca_path,
        )
        self._cm = connect(
            self.work.host, self.work.port, configuration=config, create_protocol=Protocol
        )
        protocol = await self._cm.__aenter__()
        if not holder:
            holder.append(_Qh3Client(protocol))
        client = holder[0]
        await client.open(f"{self.work.host}:{self.work.port}", self.work.path)
        return client

    async def __aexit__(self, *exc: object) -> None:
        await self._cm.__aexit__(*exc)


async def _qh3_echo16(client: _Qh3Client, stream: int, i: int) -> None:
    msg = _small(i)
    client.send(stream, msg)
    _check("qh3-raw", "round trip", msg, await client.receive(stream, len(msg)))


async def qh3_setup(work: WtWorkload, runtime: str) -> Timing:
    async with _Qh3Session(work) as warm:
        await _qh3_echo16(warm, warm.create_stream(), 0)
    total = _Accumulated()
    for i in range(work.sessions):
        total.start()
        async with _Qh3Session(work) as client:
            await _qh3_echo16(client, client.create_stream(), i)
            total.stop()
            client.close_session()
    return total.timing()


async def qh3_roundtrip(work: WtWorkload, runtime: str) -> Timing:
    async with _Qh3Session(work) as client:
        stream = client.create_stream()
        await _qh3_echo16(client, stream, 0)
        watch = Stopwatch()
        for i in range(work.roundtrips):
            await _qh3_echo16(client, stream, i)
        timing = watch.stop()
        client.close_session()
    return timing


async def qh3_stream(work: WtWorkload, runtime: str) -> Timing:
    payload = _pattern(work.stream_size)
    async with _Qh3Session(work) as client:
        stream = client.create_stream()
        await _qh3_echo16(client, stream, 0)
        watch = Stopwatch()
        sent = received = 0
        while received < len(payload):
            while sent < len(payload) and sent - received < WINDOW:
                end = min(sent + CHUNK, len(payload))
                client.send(stream, payload[sent:end], end == len(payload))
                sent = end
            size = min(CHUNK, len(payload) - received)
            chunk = await client.receive(stream, size)
            _check("qh3-raw", "stream", payload[received : received + len(chunk)], chunk)
            if not chunk:
                raise ResponseMismatch(f"qh3-raw: the echo ended after {received} bytes")
            received += len(chunk)
        timing = watch.stop()
        client.close_session()
    return timing


async def qh3_datagram(work: WtWorkload, runtime: str) -> Timing:
    async with _Qh3Session(work) as client:

        async def exchange(msg: bytes) -> int:
            resent = 0
            client.send_datagram(msg)
            while True:
                echo = await client.receive_datagram(DATAGRAM_TIMEOUT)
                if echo == msg:
                    return resent
                if echo is None:
                    resent += 1
                    _check_resent("qh3-raw", resent, work)
                    client.send_datagram(msg)

        await exchange(_small(0))
        resent = 0
        watch = Stopwatch()
        for i in range(work.datagrams):
            resent += await exchange(_small(i))
            _check_resent("qh3-raw", resent, work)
        timing = watch.stop()
        client.close_session()
    return timing


def _check_resent(client: str, resent: int, work: WtWorkload) -> None:
    if resent > max(3, work.datagrams // 100):
        raise ResponseMismatch(f"{client}: {resent} datagrams were lost (> 1%)")


# -- webwire -------------------------------------------------------------------


async def _maybe_await(value: Any) -> Any:
    if inspect.isawaitable(value):
        return await value
    return value


def _webwire_config(work: WtWorkload) -> Any:
    from webwire.webtransport import ClientConfig

    return ClientConfig(ca_certs=work.ca_path, verify_mode=ssl.CERT_REQUIRED)


async def _ww_echo16(stream: Any, i: int) -> None:
    msg = _small(i)
    await stream.write(msg)
    _check("webwire", "round trip", msg, await stream.readexactly(len(msg)))


async def ww_setup(work: WtWorkload, runtime: str) -> Timing:
    from webwire.webtransport import WebTransportClient

    async with WebTransportClient(config=_webwire_config(work)) as client:
        async with await client.connect(work.url) as session:
            await _ww_echo16(await session.create_bidirectional_stream(), 0)
    total = _Accumulated()
    for i in range(work.sessions):
        total.start()
        async with WebTransportClient(config=_webwire_config(work)) as client:
            async with await client.connect(work.url) as session:
                await _ww_echo16(await session.create_bidirectional_stream(), i)
                total.stop()
    return total.timing()


async def ww_roundtrip(work: WtWorkload, runtime: str) -> Timing:
    from webwire.webtransport import WebTransportClient

    async with WebTransportClient(config=_webwire_config(work)) as client:
        async with await client.connect(work.url) as session:
            stream = await session.create_bidirectional_stream()
            await _ww_echo16(stream, 0)
            watch = Stopwatch()
            for i in range(work.roundtrips):
                await _ww_echo16(stream, i)
            return watch.stop()


async def ww_stream(work: WtWorkload, runtime: str) -> Timing:
    from webwire.webtransport import WebTransportClient

    payload = _pattern(work.stream_size)
    async with WebTransportClient(config=_webwire_config(work)) as client:
        async with await client.connect(work.url) as session:
            stream = await session.create_bidirectional_stream()
            await _ww_echo16(stream, 0)
            received = bytearray()

            async def reader() -> None:
                async for chunk in stream:
                    received.extend(chunk)

            async def writer() -> None:
                await stream.write_all(payload)
                await stream.close()

            watch = Stopwatch()
            await _run_both(runtime, writer, reader)
            timing = watch.stop()
    _check("webwire", "stream", payload, bytes(received))
    return timing


async def _run_both(
    runtime: str, first: Callable[[], Coroutine[Any, Any, None]],
    second: Callable[[], Coroutine[Any, Any, None]],
) -> None:
    if runtime == "trio":
        import trio

        async with trio.open_nursery() as nursery:
            nursery.start_soon(first)
            nursery.start_soon(second)
    else:
        await asyncio.gather(first(), second())


async def ww_datagram(work: WtWorkload, runtime: str) -> Timing:
    from webwire._exceptions import TimeoutException
    from webwire.webtransport import WebTransportClient

    async with WebTransportClient(config=_webwire_config(work)) as client:
        async with await client.connect(work.url) as session:

            async def exchange(msg: bytes) -> int:
                resent = 0
                await _maybe_await(session.datagrams.send(msg))
                while True:
                    try:
                        echo = await session.datagrams.receive(timeout=DATAGRAM_TIMEOUT)
                    except TimeoutException:
                        resent += 1
                        _check_resent("webwire", resent, work)
                        await _maybe_await(session.datagrams.send(msg))
                        continue
                    if echo == msg:
                        return resent

            await exchange(_small(0))
            resent = 0
            watch = Stopwatch()
            for i in range(work.datagrams):
                resent += await exchange(_small(i))
                _check_resent("webwire", resent, work)
            return watch.stop()


def _sync_echo16(stream: Any, i: int) -> None:
    msg = _small(i)
    stream.write(msg)
    _check("webwire-sync", "round trip", msg, stream.readexactly(len(msg)))


def ww_sync_setup(work: WtWorkload) -> Timing:
    from webwire.webtransport.sync import WebTransportClient

    with WebTransportClient(config=_webwire_config(work)) as client:
        with client.connect(work.url) as session:
            _sync_echo16(session.create_bidirectional_stream(), 0)
    total = _Accumulated()
    for i in range(work.sessions):
        total.start()
        with WebTransportClient(config=_webwire_config(work)) as client:
            with client.connect(work.url) as session:
                _sync_echo16(session.create_bidirectional_stream(), i)
                total.stop()
    return total.timing()


def ww_sync_roundtrip(work: WtWorkload) -> Timing:
    from webwire.webtransport.sync import WebTransportClient

    with WebTransportClient(config=_webwire_config(work)) as client:
        with client.connect(work.url) as session:
            stream = session.create_bidirectional_stream()
            _sync_echo16(stream, 0)
            watch = Stopwatch()
            for i in range(work.roundtrips):
                _sync_echo16(stream, i)
            return watch.stop()


def ww_sync_stream(work: WtWorkload) -> Timing:
    import threading

    from webwire.webtransport.sync import WebTransportClient

    payload = _pattern(work.stream_size)
    with WebTransportClient(config=_webwire_config(work)) as client:
        with client.connect(work.url) as session:
            stream = session.create_bidirectional_stream()
            _sync_echo16(stream, 0)
            errors: list[BaseException] = []

            def writer() -> None:
                try:
                    stream.write_all(payload)
                    stream.close()
                except BaseException as exc:
                    errors.append(exc)

            watch = Stopwatch()
            thread = threading.Thread(target=writer)
            thread.start()
            received = stream.read_all(max_size=len(payload))
            thread.join()
            timing = watch.stop()
            if errors:
                raise errors[0]
    _check("webwire-sync", "stream", payload, received)
    return timing


def ww_sync_datagram(work: WtWorkload) -> Timing:
    from webwire._exceptions import TimeoutException
    from webwire.webtransport.sync import WebTransportClient

    with WebTransportClient(config=_webwire_config(work)) as client:
        with client.connect(work.url) as session:

            def exchange(msg: bytes) -> int:
                resent = 0
                session.datagrams.send(msg)
                while True:
                    try:
                        echo = session.datagrams.receive(timeout=DATAGRAM_TIMEOUT)
                    except TimeoutException:
                        resent += 1
                        _check_resent("webwire-sync", resent, work)
                        session.datagrams.send(msg)
                        continue
                    if echo == msg:
                        return resent

            exchange(_small(0))
            resent = 0
            watch = Stopwatch()
            for i in range(work.datagrams):
                resent += exchange(_small(i))
                _check_resent("webwire-sync", resent, work)
            return watch.stop()


# -- pywebtransport (run as a script in its own environment) ------------------


async def _pwt_session(version: str, work: WtWorkload) -> tuple[Any, Any]:
    """A connected ``(client, session)`` of pywebtransport ``version`` (``"0.21"``, ``"0.8"``)."""
    from pywebtransport import ClientConfig, WebTransportClient

    if version == "0.21":
        config = ClientConfig(
            ca_certs=work.ca_path,
            verify_mode=ssl.CERT_REQUIRED,
            connection_receive_window=128 << 20,
            session_receive_window=128 << 20,
            stream_receive_window=64 << 20,
            max_idle_timeout=60.0,
        )
        client = WebTransportClient(config=config)
        await client.__aenter__()
        session = await client.connect(url=work.url)
    else:
        config = ClientConfig(ca_certs=work.ca_path, verify_mode=ssl.CERT_REQUIRED)
        client = WebTransportClient(config=config)
        await client.__aenter__()
        session = await client.connect(url=work.url)
    return client, session


async def _pwt_close(client: Any, session: Any) -> None:
    await session.close()
    await client.close()


async def _pwt_echo16(version: str, stream: Any, i: int) -> None:
    msg = _small(i)
    await stream.write(data=msg)
    if version == "0.21":
        echo = await stream.readexactly(size=len(msg))
    else:
        echo = await stream.readexactly(n=len(msg))
    _check(f"pywebtransport-{version}", "round trip", msg, echo)


async def pwt_run(version: str, scenario: str, work: WtWorkload) -> Timing:
    """Run one scenario with pywebtransport ``version``; return the timed part."""
    name = f"pywebtransport-{version}"
    if scenario == "setup":
        client, session = await _pwt_session(version, work)
        await _pwt_echo16(version, await session.create_bidirectional_stream(), 0)
        await _pwt_close(client, session)
        total = _Accumulated()
        for i in range(work.sessions):
            total.start()
            client, session = await _pwt_session(version, work)
            await _pwt_echo16(version, await session.create_bidirectional_stream(), i)
            total.stop()
            await _pwt_close(client, session)
        return total.timing()
    client, session = await _pwt_session(version, work)
    try:
        if scenario == "roundtrip":
            stream = await session.create_bidirectional_stream()
            await _pwt_echo16(version, stream, 0)
            watch = Stopwatch()
            for i in range(work.roundtrips):
                await _pwt_echo16(version, stream, i)
            return watch.stop()
        if scenario == "stream":
            payload = _pattern(work.stream_size)
            stream = await session.create_bidirectional_stream()
            await _pwt_echo16(version, stream, 0)
            received = bytearray()

            async def writer() -> None:
                view = memoryview(payload)
                for start in range(0, len(payload), CHUNK):
                    end = start + CHUNK >= len(payload)
                    await stream.write(data=bytes(view[start : start + CHUNK]), end_stream=end)

            async def reader() -> None:
                while len(received) < len(payload):
                    if version == "0.21":
                        chunk = await stream.read(max_size=CHUNK)
                    else:
                        chunk = await stream.read(size=CHUNK)
                    if not chunk:
                        break
                    received.extend(chunk)

            watch = Stopwatch()
            await asyncio.gather(writer(), reader())
            timing = watch.stop()
            _check(name, "stream", payload, bytes(received))
            return timing
        if scenario == "datagram":
            if version == "0.21":
                send = lambda data: session.send_datagram(data=data)  # noqa: E731
                receive = session.read_datagram
            else:
                transport = await session.create_datagram_transport()
                send = lambda data: transport.send(data=data)  # noqa: E731
                receive = transport.receive

            async def exchange(msg: bytes) -> int:
                resent = 0
                await send(msg)
                while True:
                    try:
                        echo = await asyncio.wait_for(receive(), DATAGRAM_TIMEOUT)
                    except asyncio.TimeoutError:
                        resent += 1
                        _check_resent(name, resent, work)
                        await send(msg)
                        continue
                    if echo == msg:
                        return resent

            await exchange(_small(0))
            resent = 0
            watch = Stopwatch()
            for i in range(work.datagrams):
                resent += await exchange(_small(i))
                _check_resent(name, resent, work)
            return watch.stop()
        raise ValueError(f"unknown scenario {scenario!r}")
    finally:
        await _pwt_close(client, session)


# -- the clients -----------------------------------------------------------------


@dataclass(frozen=True)
class WtClientSpec:
    """One client under test.

    Attributes:
        name: Label in the results table.
        runtime: ``"asyncio"``, ``"trio"``, ``"sync"``, or ``"subprocess"`` (a
            pywebtransport client run by ``python`` in its own environment).
        module: Module imported to decide whether the client is available
            (in-process clients).
        attribute: Attribute of ``module`` that must exist (``""``: none).
        scenarios: Scenario name -> function (in-process clients).
        version: pywebtransport's version (subprocess clients).
    """

    name: str
    runtime: str
    module: str = ""
    attribute: str = ""
    scenarios: dict[str, Any] | None = None
    version: str = ""

    def scenario_names(self) -> tuple[str, ...]:
        return tuple(self.scenarios) if self.scenarios is not None else SCENARIOS

    def unavailable_reason(self) -> str | None:
        """Why the client cannot run here, or ``None``; subprocess clients are checked
        when their environment is prepared."""
        if self.runtime == "subprocess":
            return None
        try:
            mod = importlib.import_module(self.module)
            if self.runtime == "trio":
                importlib.import_module("trio")
        except Exception as exc:
            return f"import failed: {type(exc).__name__}: {exc}"
        if self.attribute and not hasattr(mod, self.attribute):
            return f"{self.module}.{self.attribute} does not exist yet"
        return None


_QH3 = {
    "setup": qh3_setup,
    "roundtrip": qh3_roundtrip,
    "stream": qh3_stream,
    "datagram": qh3_datagram,
}
_WW = {"setup": ww_setup, "roundtrip": ww_roundtrip, "stream": ww_stream, "datagram": ww_datagram}
_WW_SYNC = {
    "setup": ww_sync_setup,
    "roundtrip": ww_sync_roundtrip,
    "stream": ww_sync_stream,
    "datagram": ww_sync_datagram,
}

CLIENTS = (
    WtClientSpec("qh3-raw", "asyncio", "qh3.h3.connection", "H3Connection", _QH3),
    WtClientSpec("pywebtransport-0.21", "subprocess", version="0.21"),
    WtClientSpec("pywebtransport-0.8.1", "subprocess", version="0.8"),
    WtClientSpec("webwire-asyncio", "asyncio", "webwire.webtransport", "WebTransportClient", _WW),
    WtClientSpec("webwire-trio", "trio", "webwire.webtransport", "WebTransportClient", _WW),
    WtClientSpec(
        "webwire-sync", "sync", "webwire.webtransport.sync", "WebTransportClient", _WW_SYNC
    ),
)


def main(argv: list[str] | None = None) -> int:
    """Script mode, in a pywebtransport environment: run one scenario and print its
    :class:`Timing` as JSON on standard output."""
    parser = argparse.ArgumentParser(description="Run one pywebtransport scenario.")
    parser.add_argument("--version", required=True, choices=("0.21", "0.8"))
    parser.add_argument("--scenario", required=True, choices=SCENARIOS)
    parser.add_argument("--workload", required=True, help="the WtWorkload as JSON")
    args = parser.parse_args(argv)
    import logging

    logging.disable(logging.CRITICAL)
    work = WtWorkload(**json.loads(args.workload))
    timing = asyncio.run(pwt_run(args.version, args.scenario, work))
    print(json.dumps(asdict(timing)), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
