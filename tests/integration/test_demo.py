"""``webwire demo``: its servers and app, its step machinery, and a full run."""

from __future__ import annotations

import hashlib
import http.client
import io
import json
import re
import socket
import ssl
import time
from collections.abc import Iterator
from typing import Any

import h2.config
import h2.connection
import h2.events
import pytest
from rich.console import Console

import webwire
from webwire.cli import _demo, main
from webwire.cli._demo_app import demo_pattern
from webwire.cli._demo_server import DemoServers


@pytest.fixture(scope="module")
def demo_servers() -> Iterator[DemoServers]:
    with DemoServers() as servers:
        yield servers


def _port(url: str) -> int:
    return int(url.rsplit(":", 1)[1])


def _fetch(
    servers: DemoServers, path: str, *, tls: bool = False, method: str = "GET", body: bytes = b""
) -> tuple[int, dict[str, str], bytes]:
    """One request with the standard library, independent of webwire."""
    base = servers.https_url if tls else servers.http_url
    port = _port(base)
    conn: http.client.HTTPConnection
    if tls:
        context = ssl.create_default_context(cafile=servers.ca_path)
        conn = http.client.HTTPSConnection("127.0.0.1", port, timeout=10, context=context)
    else:
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    try:
        headers = {"Content-Type": "application/json"} if body else {}
        conn.request(method, path, body=body or None, headers=headers)
        response = conn.getresponse()
        data = response.read()
        return response.status, {k.lower(): v for k, v in response.getheaders()}, data
    finally:
        conn.close()


def test_demo_app_routes(demo_servers: DemoServers) -> None:
    status, _, data = _fetch(demo_servers, "/get?a=1", tls=True)
    assert status == 200
    assert json.loads(data)["args"] == {"a": "1"}

    status, _, data = _fetch(demo_servers, "/post", method="POST", body=b'{"x": [1]}')
    assert json.loads(data)["json"] == {"x": [1]}

    status, headers, data = _fetch(demo_servers, "/bytes/70000")
    assert headers["content-length"] == "70000"
    assert data == demo_pattern(70000)

    status, headers, _ = _fetch(demo_servers, "/redirect/2")
    assert (status, headers["location"]) == (302, "/redirect/1")
    status, headers, _ = _fetch(demo_servers, "/redirect/1")
    assert headers["location"] == "/get"

    status, headers, data = _fetch(demo_servers, "/cookies/set?k=v")
    assert headers["set-cookie"] == "k=v; Path=/"
    assert _fetch(demo_servers, "/status/503")[0] == 503
    assert _fetch(demo_servers, "/nowhere")[0] == 404
    assert _fetch(demo_servers, "/bytes/-1")[0] == 400


def test_demo_app_reports_version_and_connection(demo_servers: DemoServers) -> None:
    for tls in (False, True):
        status, _, data = _fetch(demo_servers, "/get", tls=tls)
        assert status == 200
        echo = json.loads(data)
        assert echo["http_version"] == "1.1"
        host, port = echo["connection"].rsplit(":", 1)
        assert host == "127.0.0.1"
        assert int(port) > 0


def test_demo_app_upload(demo_servers: DemoServers) -> None:
    body = demo_pattern(300_000)
    status, _, data = _fetch(demo_servers, "/upload", method="POST", body=body)
    assert status == 200
    answer = json.loads(data)
    assert answer["size"] == len(body)
    assert answer["sha256"] == hashlib.sha256(body).hexdigest()
    assert answer["http_version"] == "1.1"


def _alpn(servers: DemoServers, offered: list[str]) -> str | None:
    """The protocol the TLS listener selects from ``offered`` (RFC 7301)."""
    context = ssl.create_default_context(cafile=servers.ca_path)
    context.set_alpn_protocols(offered)
    with (
        socket.create_connection(("127.0.0.1", _port(servers.https_url)), timeout=10) as raw,
        context.wrap_socket(raw, server_hostname="127.0.0.1") as tls,
    ):
        return tls.selected_alpn_protocol()


def test_demo_server_advertises_http3(demo_servers: DemoServers) -> None:
    """The TLS listener's answers name the UDP port of HTTP/3 (RFC 7838)."""
    assert demo_servers.h3_port == _port(demo_servers.https_url)
    _, headers, _ = _fetch(demo_servers, "/get", tls=True)
    assert f'h3=":{demo_servers.h3_port}"' in headers["alt-svc"]


def test_demo_http3_steps(monkeypatch: pytest.MonkeyPatch) -> None:
    """The HTTP/3 steps of the tour (after Alt-Svc, and forced) on asyncio,
    trio and sync, against hypercorn's HTTP/3 (aioquic inside)."""
    steps = [step for step in _demo.ASYNC_STEPS if step.name.startswith("GET (h3")]
    sync_steps = [step for step in _demo.SYNC_STEPS if step.name.startswith("GET (h3")]
    assert [step.name for step in steps] == ["GET (h3 after Alt-Svc)", "GET (h3 forced)"]
    monkeypatch.setattr(_demo, "ASYNC_STEPS", steps)
    monkeypatch.setattr(_demo, "SYNC_STEPS", sync_steps)
    console = Console(file=io.StringIO(), width=200)
    results = _demo.run_demo(download_size=0, h2_download_size=0, console=console)
    assert [(r.backend, r.name, r.http_version) for r in results] == [
        (backend, step.name, _demo.H3) for backend in _demo.BACKENDS for step in steps
    ]
    failed = [f"{r.backend} {r.name}: {r.detail}" for r in results if not r.ok]
    assert not failed, "\n".join(failed)
    for result in results:
        if result.name == "GET (h3 after Alt-Svc)":
            pattern = r'HTTP/2 200 OK \+ Alt-Svc h3=":\d+".*, then HTTP/3 200'
            assert re.match(pattern, result.detail), result.detail
        else:
            assert result.detail.startswith("HTTP/3 200 OK, forced, no TCP")
        assert re.search(r"QUIC handshake \d+\.\d ms$", result.detail), result.detail


def test_demo_server_alpn(demo_servers: DemoServers) -> None:
    assert _alpn(demo_servers, ["h2", "http/1.1"]) == "h2"
    assert _alpn(demo_servers, ["http/1.1"]) == "http/1.1"


def _h2_get(sock: socket.socket, scheme: str, paths: list[str]) -> list[tuple[int, bytes]]:
    """GET ``paths`` on one HTTP/2 connection, all streams open at once, with
    the ``h2`` library (independent of webwire's driver).

    Returns:
        ``(status, body)`` for each path, in order.
    """
    conn = h2.connection.H2Connection(h2.config.H2Configuration(client_side=True))
    conn.initiate_connection()
    streams: dict[int, int] = {}
    for index, path in enumerate(paths):
        stream_id = conn.get_next_available_stream_id()
        streams[stream_id] = index
        headers = [(":method", "GET"), (":scheme", scheme), (":authority", "127.0.0.1")]
        conn.send_headers(stream_id, [*headers, (":path", path)], end_stream=True)
    sock.sendall(conn.data_to_send())
    statuses: dict[int, int] = {}
    bodies: dict[int, bytearray] = {stream_id: bytearray() for stream_id in streams}
    ended: set[int] = set()
    while len(ended) < len(streams):
        data = sock.recv(65536)
        assert data, "connection closed early"
        for event in conn.receive_data(data):
            if isinstance(event, h2.events.ResponseReceived):
                statuses[event.stream_id] = int(dict(event.headers)[b":status"])
            elif isinstance(event, h2.events.DataReceived):
                bodies[event.stream_id] += event.data
                conn.acknowledge_received_data(event.flow_controlled_length, event.stream_id)
            elif isinstance(event, h2.events.StreamEnded):
                ended.add(event.stream_id)
        sock.sendall(conn.data_to_send())
    order = sorted(streams, key=streams.__getitem__)
    return [(statuses[stream_id], bytes(bodies[stream_id])) for stream_id in order]


def _check_h2_echoes(answers: list[tuple[int, bytes]]) -> None:
    echoes = [json.loads(body) for _, body in answers]
    assert [status for status, _ in answers] == [200] * len(answers)
    assert [echo["http_version"] for echo in echoes] == ["2"] * len(echoes)
    assert [echo["args"] for echo in echoes] == [{"n": str(i)} for i in range(len(echoes))]
    assert len({echo["connection"] for echo in echoes}) == 1  # one connection, many streams


def test_demo_server_h2_over_tls(demo_servers: DemoServers) -> None:
    context = ssl.create_default_context(cafile=demo_servers.ca_path)
    context.set_alpn_protocols(["h2"])
    with (
        socket.create_connection(("127.0.0.1", _port(demo_servers.https_url)), timeout=10) as raw,
        context.wrap_socket(raw, server_hostname="127.0.0.1") as tls,
    ):
        assert tls.selected_alpn_protocol() == "h2"
        _check_h2_echoes(_h2_get(tls, "https", [f"/get?n={i}" for i in range(5)]))


def test_demo_server_h2c_prior_knowledge(demo_servers: DemoServers) -> None:
    port = _port(demo_servers.http_url)
    with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
        _check_h2_echoes(_h2_get(sock, "http", [f"/get?n={i}" for i in range(5)]))


def test_demo_app_websocket(demo_servers: DemoServers) -> None:
    """The ``/ws`` echo with the ``websockets`` library's client (not
    webwire's): text and binary echoed, permessage-deflate negotiated, and
    another path refused with 403."""
    from websockets.exceptions import InvalidStatus
    from websockets.sync.client import connect

    url = demo_servers.http_url.replace("http://", "ws://")
    with connect(url + "/ws", open_timeout=10) as ws:
        ws.send("hello")
        assert ws.recv(10) == "hello"
        ws.send(b"\x00\xff")
        assert ws.recv(10) == b"\x00\xff"
        extensions = ws.response.headers.get("Sec-WebSocket-Extensions", "")
        assert "permessage-deflate" in extensions
    with pytest.raises(InvalidStatus) as refused:
        connect(url + "/elsewhere", open_timeout=10)
    assert refused.value.response.status_code == 403


def test_demo_websocket_steps(monkeypatch: pytest.MonkeyPatch) -> None:
    """Every WebSocket step of the tour, on asyncio, trio and sync: both
    HTTP versions, the version shown per step, and what each step reports."""
    steps = [step for step in _demo.ASYNC_STEPS if step.name.startswith("WebSocket")]
    sync_steps = [step for step in _demo.SYNC_STEPS if step.name.startswith("WebSocket")]
    assert [s.http_version for s in steps] == [_demo.H1, _demo.H2, _demo.H1, _demo.H2]
    monkeypatch.setattr(_demo, "ASYNC_STEPS", steps)
    monkeypatch.setattr(_demo, "SYNC_STEPS", sync_steps)
    console = Console(file=io.StringIO(), width=200)
    results = _demo.run_demo(download_size=0, h2_download_size=0, console=console)
    assert [(r.backend, r.name, r.http_version) for r in results] == [
        (backend, step.name, step.http_version) for backend in _demo.BACKENDS for step in steps
    ]
    failed = [f"{r.backend} {r.name}: {r.detail}" for r in results if not r.ok]
    assert not failed, "\n".join(failed)
    details = {(r.backend, r.name): r.detail for r in results}
    for backend in _demo.BACKENDS:
        assert details[backend, "WebSocket echo"].startswith("HTTP/1.1 101 Switching Protocols")
        assert details[backend, "WebSocket echo (h2)"].startswith(
            "HTTP/2 200, extended CONNECT (RFC 8441)"
        )
        assert details[backend, "WebSocket deflate"].startswith("permessage-deflate negotiated")
        assert re.fullmatch(r"pong in \d+\.\d\d ms", details[backend, "WebSocket ping (h2)"])


def test_demo_webtransport_steps(monkeypatch: pytest.MonkeyPatch) -> None:
    """The WebTransport steps of the tour on asyncio, trio and sync, against
    the demo's aioquic WebTransport server: a stream and a datagram echoed,
    and a session the server closes with a code and a reason."""
    steps = [step for step in _demo.ASYNC_STEPS if step.name.startswith("WebTransport")]
    sync_steps = [step for step in _demo.SYNC_STEPS if step.name.startswith("WebTransport")]
    assert [step.name for step in steps] == [
        "WebTransport stream echo",
        "WebTransport datagram echo",
        "WebTransport close",
    ]
    monkeypatch.setattr(_demo, "ASYNC_STEPS", steps)
    monkeypatch.setattr(_demo, "SYNC_STEPS", sync_steps)
    console = Console(file=io.StringIO(), width=200)
    results = _demo.run_demo(download_size=0, h2_download_size=0, console=console)
    assert [(r.backend, r.name, r.http_version) for r in results] == [
        (backend, step.name, _demo.H3) for backend in _demo.BACKENDS for step in steps
    ]
    failed = [f"{r.backend} {r.name}: {r.detail}" for r in results if not r.ok]
    assert not failed, "\n".join(failed)
    details = {(r.backend, r.name): r.detail for r in results}
    for backend in _demo.BACKENDS:
        assert re.fullmatch(
            r"2240 bytes echoed on stream \d+", details[backend, "WebTransport stream echo"]
        )
        assert details[backend, "WebTransport datagram echo"].startswith("16-byte datagram echoed")
        assert details[backend, "WebTransport close"] == (
            "closed by the server: code 4000, reason 'demo over'"
        )


def test_demo_webtransport_server_refuses_other_paths(demo_servers: DemoServers) -> None:
    from webwire.webtransport import open_session

    async def refused() -> None:
        await open_session(
            demo_servers.wt_url + "/elsewhere",
            verify=demo_servers.ca_path,
            timeout=10,
            _backend="sync",
        )

    from webwire._sync import run_sync

    with pytest.raises(webwire.WebTransportError, match="404"):
        run_sync(refused())


def test_demo_app_delay(demo_servers: DemoServers) -> None:
    started = time.monotonic()
    assert _fetch(demo_servers, "/delay/0.3")[0] == 200
    assert time.monotonic() - started >= 0.3


def test_demo_servers_stop_cleanly() -> None:
    servers = DemoServers()
    servers.start()
    ca_path = servers.ca_path
    assert _fetch(servers, "/get")[0] == 200
    servers.stop()
    servers.stop()  # idempotent
    with pytest.raises(OSError):
        _fetch(servers, "/get")
    import os

    assert not os.path.exists(ca_path)


class _FakeClient:
    """Stands in for webwire.Client to exercise the tour machinery."""

    def __init__(self, **options: Any) -> None:
        self.options = options

    def __enter__(self) -> _FakeClient:
        return self

    def __exit__(self, *exc: object) -> None:
        pass


def test_tour_reports_failures_and_expected_errors(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    def ok(client: Any, ctx: _demo.DemoContext) -> str:
        assert client.options["verify"] == ctx.ca_path
        return "fine"

    def times_out(client: Any, ctx: _demo.DemoContext) -> str:
        raise webwire.ReadTimeout("slow")

    def broken(client: Any, ctx: _demo.DemoContext) -> str:
        raise webwire.RemoteProtocolError("garbage")

    steps = [
        _demo.Step("ok", ok),
        _demo.Step("timeout", times_out, expected=webwire.ReadTimeout),
        _demo.Step("broken", broken),
        _demo.Step("wrong error", broken, expected=webwire.ReadTimeout),
    ]
    monkeypatch.setattr(webwire, "Client", _FakeClient, raising=False)
    monkeypatch.setattr(_demo, "SYNC_STEPS", steps)
    monkeypatch.setenv("COLUMNS", "200")  # one table row per step
    assert main(["demo", "--backend", "sync"]) == 1
    out = capsys.readouterr().out
    assert "\u2713 fine" in out
    assert "\u2713 ReadTimeout, as expected" in out
    assert "\u2717 RemoteProtocolError: garbage" in out
    assert "2/4 steps passed" in out


def test_demo_step_lists_mirror_each_other() -> None:
    async_steps = [(s.name, s.expected, s.http_version) for s in _demo.ASYNC_STEPS]
    sync_steps = [(s.name, s.expected, s.http_version) for s in _demo.SYNC_STEPS]
    assert async_steps == sync_steps
    assert {s.http_version for s in _demo.ASYNC_STEPS} == {_demo.H1, _demo.H2, _demo.H3}


def test_demo_http2_steps(monkeypatch: pytest.MonkeyPatch) -> None:
    """Every HTTP/2 step of the tour, on asyncio, trio and sync."""
    h2_steps = [step for step in _demo.ASYNC_STEPS if step.http_version == _demo.H2]
    monkeypatch.setattr(_demo, "ASYNC_STEPS", h2_steps)
    monkeypatch.setattr(
        _demo, "SYNC_STEPS", [step for step in _demo.SYNC_STEPS if step.http_version == _demo.H2]
    )
    console = Console(file=io.StringIO(), width=200)
    results = _demo.run_demo(download_size=0, h2_download_size=3 * 1024 * 1024 + 1, console=console)
    assert [(r.backend, r.name) for r in results] == [
        (backend, step.name) for backend in _demo.BACKENDS for step in h2_steps
    ]
    failed = [f"{r.backend} {r.name}: {r.detail}" for r in results if not r.ok]
    assert not failed, "\n".join(failed)
    assert {r.http_version for r in results} == {"HTTP/2"}
    multiplexed = [r.detail for r in results if r.name == "20 concurrent GETs"]
    assert all("on one connection" in detail for detail in multiplexed)


@pytest.mark.slow
def test_demo_runs_clean(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("COLUMNS", "200")
    started = time.monotonic()
    code = main(["demo"])
    out = capsys.readouterr().out
    assert code == 0, out
    assert len(_demo.ASYNC_STEPS) == len(_demo.SYNC_STEPS) == 22
    total = 2 * len(_demo.ASYNC_STEPS) + len(_demo.SYNC_STEPS)
    assert f"{total}/{total} steps passed" in out
    for backend in _demo.BACKENDS:
        assert backend in out
    for step in _demo.ASYNC_STEPS:  # one passed row per backend, with its HTTP version
        row = (
            rf"\u2502 {re.escape(step.name)} +\u2502 {re.escape(step.http_version)} +\u2502 \u2713"
        )
        assert len(re.findall(row, out)) == len(_demo.BACKENDS), step.name
    assert "\u2717" not in out
    assert time.monotonic() - started < 45
