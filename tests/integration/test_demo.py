"""``webwire demo``: its servers and app, its step machinery, and a full run."""

from __future__ import annotations

import http.client
import json
import ssl
import time
from collections.abc import Iterator
from typing import Any

import pytest

import webwire
from webwire.cli import _demo, main
from webwire.cli._demo_app import demo_pattern
from webwire.cli._demo_server import DemoServers


@pytest.fixture(scope="module")
def demo_servers() -> Iterator[DemoServers]:
    with DemoServers() as servers:
        yield servers


def _fetch(
    servers: DemoServers, path: str, *, tls: bool = False, method: str = "GET", body: bytes = b""
) -> tuple[int, dict[str, str], bytes]:
    """One request with the standard library, independent of webwire."""
    base = servers.https_url if tls else servers.http_url
    port = int(base.rsplit(":", 1)[1])
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
    assert main(["demo", "--backend", "sync"]) == 1
    out = capsys.readouterr().out
    assert "\u2713 fine" in out
    assert "\u2713 ReadTimeout, as expected" in out
    assert "\u2717 RemoteProtocolError: garbage" in out
    assert "2/4 steps passed" in out


@pytest.mark.slow
def test_demo_runs_clean(capsys: pytest.CaptureFixture[str]) -> None:
    started = time.monotonic()
    code = main(["demo"])
    out = capsys.readouterr().out
    assert code == 0, out
    assert "24/24 steps passed" in out
    for backend in _demo.BACKENDS:
        assert backend in out
    assert "\u2717" not in out
    assert time.monotonic() - started < 45
