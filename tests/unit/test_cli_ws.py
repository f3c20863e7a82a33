"""``webwire ws``: parsing of its command line, and the command in line mode
against hypercorn serving the demo app (``/ws`` echo) on 127.0.0.1, over
cleartext HTTP/1.1 and TLS (HTTP/2, RFC 8441)."""

from __future__ import annotations

import io
from collections.abc import Iterator

import pytest

from webwire import InvalidURL
from webwire.cli import main
from webwire.cli._demo_server import DemoServers
from webwire.cli._parser import UsageError
from webwire.cli._ws import parse_ws, run_ws_command, ws_url

# --- parsing ------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("ws://example.org/chat", "ws://example.org/chat"),
        ("wss://example.org:8443/x?y=1", "wss://example.org:8443/x?y=1"),
        ("example.org/chat", "ws://example.org/chat"),
        (":9000/ws", "ws://localhost:9000/ws"),
        ("http://example.org/a", "ws://example.org/a"),
        ("https://example.org/a", "wss://example.org/a"),
    ],
)
def test_ws_url(text: str, expected: str) -> None:
    assert ws_url(text) == expected


@pytest.mark.parametrize("text", ["ftp://example.org/", "ws:///path", "ws://host/#frag"])
def test_ws_url_rejects(text: str) -> None:
    with pytest.raises(InvalidURL):
        ws_url(text)


def test_parse_ws_defaults() -> None:
    spec = parse_ws(["wss://example.org/ws"])
    assert spec.url == "wss://example.org/ws"
    assert spec.headers == []
    assert spec.subprotocols == []
    assert spec.compression is True
    assert spec.verify is True
    assert spec.http_version == "auto"
    assert spec.ping_interval == 20.0
    assert spec.max_size == 1024 * 1024
    assert spec.timeout == 10.0
    assert spec.wait is None
    assert (spec.once, spec.binary, spec.binary_out, spec.verbose) == (False, False, "hex", False)


def test_parse_ws_options(tmp_path: object) -> None:
    spec = parse_ws(
        [
            "ws://h/x", "-H", "Authorization: Bearer t", "-H", "X-A:1",
            "--subprotocol", "chat", "--subprotocol", "superchat", "--origin", "https://o.example",
            "--no-compression", "-k", "--proxy", "socks5://127.0.0.1:1080", "--http1.1",
            "--ping-interval", "0", "--max-size", "0", "--timeout", "2.5", "--wait", "0",
            "-1", "-b", "--binary-out", "raw", "-v",
        ]
    )
    assert spec.headers == [("Authorization", "Bearer t"), ("X-A", "1")]
    assert spec.subprotocols == ["chat", "superchat"]
    assert spec.origin == "https://o.example"
    assert spec.compression is False
    assert spec.verify is False
    assert spec.proxy == "socks5://127.0.0.1:1080"
    assert spec.http_version == "HTTP/1.1"
    assert spec.ping_interval is None
    assert spec.max_size is None
    assert spec.timeout == 2.5
    assert spec.wait == 0
    assert (spec.once, spec.binary, spec.binary_out, spec.verbose) == (True, True, "raw", True)
    assert parse_ws(["ws://h/", "--http2"]).http_version == "HTTP/2"


@pytest.mark.parametrize(
    "argv",
    [
        [],
        ["ws://h/", "--http2", "--http1.1"],
        ["ws://h/", "-H", "no colon"],
        ["ws://h/", "-H", "Bad Name: x"],
        ["ws://h/", "-H", "Upgrade: h2c"],
        ["ws://h/", "-H", "Sec-WebSocket-Key: x"],
        ["ws://h/", "--subprotocol", "a b"],
        ["ws://h/", "--subprotocol", ""],
        ["ws://h/", "--timeout", "0"],
        ["ws://h/", "--timeout", "-1"],
        ["ws://h/", "--wait", "-1"],
        ["ws://h/", "--ping-interval", "nan"],
        ["ws://h/", "--max-size", "-1"],
        ["ws://h/", "-k", "--verify", "yes"],
        ["ws://h/", "--verify", "/no/such/ca.pem"],
        ["ws://h/", "--proxy", "ftp://p:21"],
        ["ws://h/", "--binary-out", "base64"],
        ["ws://h/", "--bogus"],
    ],
)
def test_parse_ws_usage_errors(argv: list[str]) -> None:
    with pytest.raises(UsageError):
        parse_ws(argv)


def test_usage_error_exit_status(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["ws", "ws://h/", "--timeout", "0"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("webwire ws: error: --timeout")
    assert err.count("\n") == 1
    assert main(["ws", "ftp://h/"]) == 2
    assert "scheme must be ws or wss" in capsys.readouterr().err


def test_help_mentions_ws(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["--help"]) == 0
    out = capsys.readouterr().out
    assert "webwire ws URL [OPTIONS]" in out
    assert main(["ws", "--help"]) == 0
    out = capsys.readouterr().out
    assert out.startswith("usage: webwire ws URL [OPTIONS]")
    for text in ("/ping [DATA]", "/close [CODE [REASON]]", "/binary HEX", "--binary-out",
                 "--wait SECONDS", "4/5 the handshake"):
        assert text in out


# --- the command against the demo app ------------------------------------------


@pytest.fixture(scope="module")
def servers() -> Iterator[DemoServers]:
    with DemoServers() as running:
        yield running


def _ws(base: str) -> str:
    return base.replace("https://", "wss://").replace("http://", "ws://") + "/ws"


def _run(argv: list[str], stdin: bytes) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    status = run_ws_command(
        argv, stdin=io.BytesIO(stdin), stdout=out, stderr=err, interactive=False
    )
    return status, out.getvalue(), err.getvalue()


def test_lines_are_echoed(servers: DemoServers) -> None:
    status, out, err = _run([_ws(servers.http_url)], b"hello\r\n\nw\xc3\xb6rld\nlast")
    assert (status, err) == (0, "")
    assert out == "hello\n\nwörld\nlast\n"  # CR LF and LF ends dropped, empty lines sent


def test_binary_messages(servers: DemoServers) -> None:
    status, out, _ = _run([_ws(servers.http_url), "-b"], b"hi\n\x00\xff\n")
    assert status == 0
    assert out == "6869\n00ff\n"
    raw_out = io.BytesIO()

    class Text(io.StringIO):
        buffer = raw_out

    status = run_ws_command(
        [_ws(servers.http_url), "-b", "--binary-out", "raw"],
        stdin=io.BytesIO(b"\x01\x02\n"),
        stdout=Text(),
        stderr=io.StringIO(),
        interactive=False,
    )
    assert status == 0
    assert raw_out.getvalue() == b"\x01\x02"


def test_text_line_not_utf8(servers: DemoServers) -> None:
    status, out, err = _run([_ws(servers.http_url)], b"ok\n\xff\n")
    assert status == 1
    assert out == "ok\n"
    assert err == "webwire: line 2 of standard input is not UTF-8 (see --binary)\n"


def test_once(servers: DemoServers) -> None:
    status, out, err = _run([_ws(servers.http_url), "--once"], b"first\nsecond\n")
    assert (status, err) == (0, "")
    assert out == "first\n"
    # Nothing arrives: --wait bounds the wait, exit status 2.
    status, out, err = _run([_ws(servers.http_url), "-1", "--wait", "0.2"], b"")
    assert (status, out) == (2, "")
    assert err == "webwire: no message arrived before closing\n"


def test_verbose_http2_over_tls(servers: DemoServers) -> None:
    status, out, err = _run([_ws(servers.https_url), "-v", "--verify", servers.ca_path], b"x\n")
    assert status == 0, err
    assert out == "x\n"
    assert err.startswith("CONNECT /ws HTTP/2\n:protocol: websocket\n:scheme: https\n")
    assert "Sec-WebSocket-Key" not in err  # not sent on HTTP/2 (RFC 8441 section 5)
    assert "\nHTTP/2 200" in err
    assert "\nHTTP version: HTTP/2\n" in err
    assert "\nExtensions: permessage-deflate" in err
    assert "\nSubprotocol: none\n" in err


def test_verbose_http1_without_compression(servers: DemoServers) -> None:
    argv = [_ws(servers.https_url), "-v", "--http1.1", "--no-compression", "--cacert",
            servers.ca_path]
    status, out, err = _run(argv, b"x\n")
    assert status == 0, err
    assert out == "x\n"
    assert err.startswith("GET /ws HTTP/1.1\n")
    assert "\nUpgrade: websocket\n" in err
    assert "Sec-WebSocket-Extensions" not in err.split("\n\n")[0]
    assert "\nHTTP/1.1 101 Switching Protocols\n" in err
    assert "\nExtensions: none\n" in err


def test_refused_handshake(servers: DemoServers) -> None:
    url = _ws(servers.http_url).replace("/ws", "/elsewhere")
    status, out, err = _run([url], b"x\n")
    assert (status, out) == (4, "")
    assert err == "webwire: the server rejected the WebSocket handshake: HTTP 403 Forbidden\n"
    status, _, err = _run([url, "-v"], b"x\n")
    assert status == 4
    assert err.startswith("HTTP 403\n")


def test_tls_and_connection_errors(servers: DemoServers) -> None:
    status, _, err = _run([_ws(servers.https_url)], b"x\n")  # the demo CA is not trusted
    assert status == 7
    assert err.startswith("webwire: TLS certificate verify failed for 127.0.0.1:")
    port = servers.http_url.rsplit(":", 1)[1]
    servers_gone = f"ws://127.0.0.1:{_free_port()}/ws"
    status, _, err = _run([servers_gone], b"x\n")
    assert status == 6
    assert err.startswith("webwire: connection refused by 127.0.0.1:")
    assert port not in err


def _free_port() -> int:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
    return port


def test_message_over_max_size(servers: DemoServers) -> None:
    status, out, err = _run([_ws(servers.http_url), "--max-size", "10"], b"short\n" + b"x" * 50)
    assert status == 1
    assert out == "short\n"
    assert err.startswith("webwire: closed the connection with code 1009")


def test_interactive_commands(servers: DemoServers, monkeypatch: pytest.MonkeyPatch) -> None:
    """The interactive session with ``input()`` replaced: each line is typed
    once the output shows what the previous one should have produced."""
    import time

    out, err = io.StringIO(), io.StringIO()
    script = [
        ("hello", ""),
        ("/binary 00 ff", "< hello"),
        ("/binary zz", "< [binary, 2 bytes] 00 ff"),
        ("/close 1005", "takes hexadecimal bytes"),
        ("/ping", "cannot close: "),
        ("/help", "pong in "),
        ("/what", "/quit "),
        ("//x", "unknown command /what"),
        ("/close 4002 later", "< /x"),
    ]

    def fake_input(prompt: str) -> str:
        assert prompt == "> "
        if not script:
            raise AssertionError("prompted after /close")
        line, wait_for = script.pop(0)
        deadline = time.monotonic() + 10
        while wait_for not in out.getvalue():
            assert time.monotonic() < deadline, (wait_for, out.getvalue())
            time.sleep(0.01)
        return line

    monkeypatch.setattr("builtins.input", fake_input)
    status = run_ws_command([_ws(servers.http_url)], stdout=out, stderr=err, interactive=True)
    text = out.getvalue()
    assert status == 0, (text, err.getvalue())
    assert not script
    assert "] > hello\n" in text
    assert "] < hello\n" in text
    assert "] > [binary, 2 bytes] 00 ff\n" in text
    assert "cannot close: LocalProtocolError" in text
    assert "connection closed: 4002 (later)" in text
    assert "\x1b[" not in text  # no terminal control on a non-terminal output
