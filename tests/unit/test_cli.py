"""The ``webwire`` command line: parsing, output, exit statuses, and end to
end runs against hypercorn serving the demo app on 127.0.0.1."""

from __future__ import annotations

import io
import json
import socket
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import yarl

import webwire
from webwire import InvalidURL
from webwire.cli import main
from webwire.cli._args import (
    Item,
    UsageError,
    normalize_url,
    parse_header,
    parse_item,
    parse_request,
)
from webwire.cli._demo_app import demo_pattern
from webwire.cli._demo_server import DemoServers
from webwire.cli._output import (
    Printer,
    format_request_head,
    format_response_head,
    is_binary,
    looks_like_json,
    status_style,
)
from webwire.cli._run import describe_error, exit_status_for

# --- request items ---------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("X-Api-Key:abc", Item("header", "X-Api-Key", "abc")),
        ("Accept:", Item("header", "Accept", "")),
        ("q==search term", Item("query", "q", "search term")),
        ("name=Ada", Item("field", "name", "Ada")),
        ("age:=36", Item("json", "age", "36")),
        ("doc@/tmp/a.txt", Item("file", "doc", "/tmp/a.txt")),
        # The first separator wins, whatever follows it.
        ("url=http://example.org", Item("field", "url", "http://example.org")),
        ("Authorization:Bearer a=b", Item("header", "Authorization", "Bearer a=b")),
        ("email=ada@example.org", Item("field", "email", "ada@example.org")),
        ("filter==a:b", Item("query", "filter", "a:b")),
        ("tags:=[1, 2]", Item("json", "tags", "[1, 2]")),
        # A backslash escapes a separator character.
        (r"a\=b=c", Item("field", "a=b", "c")),
        (r"key\:x:=1", Item("json", "key:x", "1")),
    ],
)
def test_parse_item(text: str, expected: Item) -> None:
    assert parse_item(text) == expected


@pytest.mark.parametrize("text", ["plain", "=value", ":value", "==x", ""])
def test_parse_item_rejects(text: str) -> None:
    with pytest.raises(UsageError):
        parse_item(text)


def test_parse_header() -> None:
    assert parse_header("X-Trace:  abc  ") == ("X-Trace", "abc")
    assert parse_header("Cookie: a=b; c=d") == ("Cookie", "a=b; c=d")
    assert parse_header("Empty:") == ("Empty", "")


@pytest.mark.parametrize("text", ["NoColon", "Bad Name: x", ": x", "X-A: a\rb", "X(y): 1"])
def test_parse_header_rejects(text: str) -> None:
    with pytest.raises(UsageError):
        parse_header(text)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("example.org/path", "http://example.org/path"),
        (":8000/x", "http://localhost:8000/x"),
        ("https://example.org", "https://example.org"),
        ("http://127.0.0.1:9/a?b=c", "http://127.0.0.1:9/a?b=c"),
    ],
)
def test_normalize_url(text: str, expected: str) -> None:
    assert normalize_url(text) == yarl.URL(expected)


@pytest.mark.parametrize("text", ["ftp://example.org/", "http://", "http://[::1/", "https:///x"])
def test_normalize_url_rejects(text: str) -> None:
    with pytest.raises(InvalidURL):
        normalize_url(text)


# --- whole command lines -----------------------------------------------------


def test_parse_request_defaults_to_get() -> None:
    spec = parse_request(["example.org"])
    assert spec.method == "GET"
    assert spec.url == "http://example.org"
    assert spec.content is None
    assert spec.follow_redirects is True
    assert spec.verify is True


def test_parse_request_json_items() -> None:
    spec = parse_request(
        ["put", "example.org/u", "name=Ada", "age:=36", "X-A:1", "q==x", "-H", "X-B: 2"]
    )
    assert spec.method == "PUT"
    assert spec.url == "http://example.org/u?q=x"
    assert json.loads(spec.content or b"") == {"name": "Ada", "age": 36}
    assert ("X-B", "2") in spec.headers
    assert ("X-A", "1") in spec.headers
    assert ("Content-Type", "application/json") in spec.headers


def test_parse_request_body_implies_post() -> None:
    assert parse_request(["example.org", "a=1"]).method == "POST"
    assert parse_request(["example.org", "--json", "[]"]).method == "POST"
    assert parse_request(["example.org", "X-A:1", "q==1"]).method == "GET"


def test_parse_request_form() -> None:
    spec = parse_request(["post", "example.org", "--form", "a=1", "b=x y", "a=2"])
    assert spec.content == b"a=1&b=x+y&a=2"
    assert ("Content-Type", "application/x-www-form-urlencoded") in spec.headers


def test_parse_request_multipart(tmp_path: Path) -> None:
    upload = tmp_path / "notes.txt"
    upload.write_bytes(b"hello")
    spec = parse_request(["post", "example.org", f"doc@{upload}", "a=1", "a=2"])
    assert spec.files == {"doc": ("notes.txt", b"hello", "text/plain")}
    assert spec.data == {"a": ["1", "2"]}
    assert spec.content is None


def test_parse_request_user_content_type_kept() -> None:
    spec = parse_request(["example.org", "a=1", "Content-Type:application/vnd.x+json"])
    assert [v for k, v in spec.headers if k.lower() == "content-type"] == ["application/vnd.x+json"]


def test_parse_request_data_file(tmp_path: Path) -> None:
    body = tmp_path / "body.bin"
    body.write_bytes(b"\x00\x01raw")
    assert parse_request(["example.org", "-d", f"@{body}"]).content == b"\x00\x01raw"
    assert parse_request(["example.org", "--data", "text"]).content == b"text"


def test_parse_request_options(tmp_path: Path) -> None:
    ca = tmp_path / "ca.pem"
    ca.write_text("x")
    spec = parse_request(
        [
            "example.org",
            "--timeout",
            "2.5",
            "--no-follow",
            "--max-redirects",
            "3",
            "--cacert",
            str(ca),
            "-v",
            "--check-status",
            "-o",
            "out.bin",
            "--http2",
        ]
    )
    assert spec.timeout == 2.5
    assert spec.follow_redirects is False
    assert spec.max_redirects == 3
    assert spec.verify == str(ca)
    assert spec.verbose and spec.check_status
    assert (spec.http1, spec.http2) == (False, True)
    assert spec.download == "out.bin"
    assert parse_request(["example.org", "--insecure"]).verify is False


@pytest.mark.parametrize(
    ("flags", "http1", "http2"),
    [
        ([], True, True),  # both offered, the server chooses by ALPN
        (["--http2"], False, True),  # HTTP/2 only (h2c with prior knowledge on http://)
        (["--http1.1"], True, False),  # HTTP/2 not offered
    ],
)
def test_parse_request_http_versions(flags: list[str], http1: bool, http2: bool) -> None:
    spec = parse_request(["https://example.org", *flags])
    assert (spec.http1, spec.http2) == (http1, http2)
    spec = parse_request([*flags, "get", "example.org", "a==1"])  # anywhere on the line
    assert (spec.http1, spec.http2) == (http1, http2)


@pytest.mark.parametrize(
    "argv",
    [
        ["example.org", "a:=not json"],
        ["example.org", "--json", "{bad"],
        ["example.org", "--json", "{}", "a=1"],
        ["example.org", "--json", "{}", "-d", "x"],
        ["example.org", "--form", "a:=1"],
        ["example.org", "doc@/nonexistent/file.txt"],
        ["example.org", "--timeout", "0"],
        ["example.org", "--timeout", "soon"],
        ["example.org", "--cacert", "/nonexistent/ca.pem"],
        ["example.org", "--insecure", "--cacert", "x"],
        ["FETCH", "example.org"],
        ["example.org", "nonsense"],
        ["example.org", "--no-such-option"],
        ["example.org", "--http2", "--http1.1"],
        ["example.org", "--http1.1", "--http2"],
    ],
)
def test_parse_request_usage_errors(argv: list[str]) -> None:
    with pytest.raises(UsageError):
        parse_request(argv)


# --- output --------------------------------------------------------------------


def test_heads() -> None:
    assert format_request_head("GET", "/a?b", "HTTP/1.1", [("Host", "x")]) == [
        "GET /a?b HTTP/1.1",
        "Host: x",
    ]
    assert format_response_head("HTTP/2", 204, "", [("A", "b")]) == ["HTTP/2 204", "A: b"]
    assert format_response_head("HTTP/2", 200, "OK", []) == ["HTTP/2 200 OK"]


def test_body_detection() -> None:
    assert looks_like_json("application/json; charset=utf-8", b'{"a": 1}')
    assert looks_like_json("application/problem+json", b"1")
    assert looks_like_json("text/plain", b" [1, 2]")
    assert not looks_like_json("text/plain", b"1")
    assert not looks_like_json("application/json", b"{broken")
    assert is_binary(b"\x00\x01")
    assert is_binary(bytes(range(128, 256)))
    assert not is_binary("caf\u00e9".encode())


def test_status_style_and_exit_status() -> None:
    assert "green" in status_style(200)
    assert "red" in status_style(503)
    assert status_style(404) != status_style(500)
    assert exit_status_for(200, True) == 0
    assert exit_status_for(302, True) == 0
    assert exit_status_for(302, False) == 3
    assert exit_status_for(404, True) == 4
    assert exit_status_for(503, True) == 5


def test_describe_error() -> None:
    from webwire import ConnectError, ReadTimeout

    assert describe_error(ConnectError("refused\n  by peer")) == "ConnectError: refused by peer"
    assert describe_error(ReadTimeout()) == "ReadTimeout"


def test_printer_pretty_json() -> None:
    out, err = io.StringIO(), io.StringIO()
    printer = Printer(out, err, pretty=True)
    printer.head(["HTTP/1.1 200 OK", "Content-Type: application/json"], status_code=200)
    printer.body(b'{"b":[1,2],"a":"x"}', "application/json", None)
    text = out.getvalue()
    assert "\x1b[" in text  # coloured
    assert '"b": [\n' in _strip_ansi(text)
    assert "Content-Type" in _strip_ansi(text)


def test_printer_pretty_http2_status_line() -> None:
    out = io.StringIO()
    Printer(out, io.StringIO(), pretty=True).head(["HTTP/2 200", "a: b"], status_code=200)
    assert _strip_ansi(out.getvalue()) == "HTTP/2 200\na: b\n\n"


def test_printer_pretty_binary_is_not_dumped() -> None:
    out = io.StringIO()
    Printer(out, io.StringIO(), pretty=True).body(b"\x00\x01\x02", "image/png", None)
    assert "binary data, 3 bytes" in out.getvalue()


def test_printer_plain_writes_bytes() -> None:
    raw = io.BytesIO()
    out = io.TextIOWrapper(raw, encoding="utf-8")
    printer = Printer(out, io.StringIO(), pretty=False)
    printer.head(["HTTP/1.1 200 OK", "A: b"], status_code=200)
    printer.body(b'{"a":1}\xff', "application/json", None)
    out.flush()
    assert raw.getvalue() == b'HTTP/1.1 200 OK\nA: b\n\n{"a":1}\xff'


def _strip_ansi(text: str) -> str:
    import re

    return re.sub(r"\x1b\[[0-9;]*m", "", text)


# --- main(): errors without a network ------------------------------------------


def test_main_bad_url_exits_2(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["get", "ftp://example.org/"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("webwire: InvalidURL: ")
    assert "Traceback" not in err


def test_main_usage_error_exits_2(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["example.org", "--timeout", "never"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("webwire: error: ")
    assert "Traceback" not in err


def test_main_help_exits_0(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["--help"]) == 0
    out = capsys.readouterr().out
    assert "Request items" in out
    assert "--http2" in out
    assert "--http1.1" in out
    assert "prior knowledge" in out


def test_main_http_version_flags_exclusive(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["example.org", "--http2", "--http1.1"]) == 2
    assert "not allowed with" in capsys.readouterr().err


# --- main(): options and output, with the client on a MockTransport ----------------

Handler = Callable[[webwire.Request], webwire.Response]


def _mock_client(monkeypatch: pytest.MonkeyPatch, handler: Handler) -> list[dict[str, Any]]:
    """Make the command's ``webwire.Client`` answer from ``handler``; the
    returned list receives the options of every client the command opens."""
    real_client = webwire.Client
    opened: list[dict[str, Any]] = []

    def client(**options: Any) -> webwire.Client:
        opened.append(options)
        return real_client(**options, transport=webwire.MockTransport(handler))

    monkeypatch.setattr(webwire, "Client", client)
    return opened


def _answer(http_version: str) -> Handler:
    """A handler answering ``/redirect`` with a 302 to ``/end`` and anything
    else with a JSON 200, in ``http_version``."""

    def handler(request: webwire.Request) -> webwire.Response:
        if request.url.path == "/redirect":
            return webwire.Response(
                302, headers={"Location": "/end"}, http_version=http_version, reason_phrase=""
            )
        return webwire.Response(
            200, json={"path": request.url.path}, http_version=http_version, reason_phrase=""
        )

    return handler


@pytest.mark.parametrize(
    ("flags", "http1", "http2"),
    [([], True, True), (["--http2"], False, True), (["--http1.1"], True, False)],
)
def test_http_version_options_reach_the_client(
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    flags: list[str],
    http1: bool,
    http2: bool,
) -> None:
    opened = _mock_client(monkeypatch, _answer("HTTP/1.1"))
    assert main([*flags, "https://example.org/get"]) == 0
    assert len(opened) == 1
    assert (opened[0]["http1"], opened[0]["http2"]) == (http1, http2)
    assert json.loads(capsys.readouterr().out) == {"path": "/get"}


def test_verbose_shows_http2_on_every_head(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    _mock_client(monkeypatch, _answer("HTTP/2"))
    assert main(["-v", "https://example.org/redirect"]) == 0
    out = capsys.readouterr().out
    heads = [block.splitlines()[0] for block in out.split("\n\n") if block.strip()]
    assert heads[:4] == ["GET /redirect HTTP/2", "HTTP/2 302", "GET /end HTTP/2", "HTTP/2 200"]
    assert "HTTP/1.1" not in out


def test_print_headers_http2(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    _mock_client(monkeypatch, _answer("HTTP/2"))
    assert main(["-I", "https://example.org/get"]) == 0
    assert capsys.readouterr().out.startswith("HTTP/2 200\n")


@pytest.mark.parametrize(("flags", "version"), [(["--http2"], "HTTP/2"), ([], "HTTP/1.1")])
def test_verbose_request_head_of_a_failed_request(
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    flags: list[str],
    version: str,
) -> None:
    def refuse(request: webwire.Request) -> webwire.Response:
        raise webwire.ConnectError("refused")

    _mock_client(monkeypatch, refuse)
    assert main(["-v", *flags, "http://example.org/x"]) == 1
    captured = capsys.readouterr()
    assert captured.out.startswith(f"GET /x {version}\n")
    assert captured.err.startswith("webwire: ConnectError")


def test_main_without_rich(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setitem(sys.modules, "rich", None)
    assert main(["example.org"]) == 1
    assert "webwire[cli]" in capsys.readouterr().err


def test_demo_without_extra(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setitem(sys.modules, "hypercorn", None)
    assert main(["demo"]) == 1
    assert "webwire[demo]" in capsys.readouterr().err


@pytest.mark.parametrize(
    "argv",
    [["--backend", "gevent"], ["--download-size", "-1"], ["--h2-download-size", "-1"]],
)
def test_demo_usage_error(capsys: pytest.CaptureFixture[str], argv: list[str]) -> None:
    assert main(["demo", *argv]) == 2
    assert "webwire demo: error" in capsys.readouterr().err


# --- main(): against real sockets ------------------------------------------------


def _closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
    return port


def test_connection_refused_exits_1(capsys: pytest.CaptureFixture[str]) -> None:
    assert main([f"http://127.0.0.1:{_closed_port()}/", "--timeout", "5"]) == 1
    err = capsys.readouterr().err
    assert err.startswith("webwire: ConnectError")
    assert err.count("\n") == 1
    assert "Traceback" not in err


@pytest.fixture(scope="module")
def servers() -> Iterator[DemoServers]:
    with DemoServers() as running:
        yield running


def test_get_prints_body(servers: DemoServers, capsys: pytest.CaptureFixture[str]) -> None:
    url = f"{servers.http_url}/get"
    assert main(["get", url, "q==1", "X-Demo:yes"]) == 0
    out = capsys.readouterr().out
    echo = json.loads(out)
    assert echo["args"] == {"q": "1"}
    assert echo["headers"]["X-Demo"] == "yes"
    assert echo["http_version"] == "1.1"  # cleartext without --http2
    assert "HTTP/1.1" not in out  # piped: body only


def test_post_json_items(servers: DemoServers, capsys: pytest.CaptureFixture[str]) -> None:
    url = f"{servers.http_url}/post"
    assert main([url, "name=Ada", "age:=36"]) == 0
    echo = json.loads(capsys.readouterr().out)
    assert echo["method"] == "POST"
    assert echo["json"] == {"name": "Ada", "age": 36}


def test_form_fields(servers: DemoServers, capsys: pytest.CaptureFixture[str]) -> None:
    url = f"{servers.http_url}/anything"
    assert main(["patch", url, "--form", "a=1", "b=two words"]) == 0
    echo = json.loads(capsys.readouterr().out)
    assert echo["method"] == "PATCH"
    assert echo["form"] == {"a": "1", "b": "two words"}


def test_verbose_prints_heads(servers: DemoServers, capsys: pytest.CaptureFixture[str]) -> None:
    url = f"{servers.http_url}/redirect/2"
    assert main(["-v", url]) == 0
    out = capsys.readouterr().out
    assert out.startswith("GET /redirect/2 HTTP/1.1\n")
    assert "HTTP/1.1 302 Found" in out
    assert "GET /redirect/1 HTTP/1.1" in out
    assert "HTTP/1.1 200 OK" in out
    assert "content-type: application/json" in out.lower()
    assert json.loads(out[out.index("\n{") :])["url"].endswith("/get")


def test_print_headers_only(servers: DemoServers, capsys: pytest.CaptureFixture[str]) -> None:
    url = f"{servers.http_url}/bytes/10"
    assert main(["-I", url]) == 0
    out = capsys.readouterr().out
    assert out.startswith("HTTP/1.1 200 OK\n")
    assert "content-length: 10" in out.lower()
    assert out.endswith("\n\n")


def test_no_follow(servers: DemoServers, capsys: pytest.CaptureFixture[str]) -> None:
    url = f"{servers.http_url}/redirect/1"
    assert main(["--no-follow", "--check-status", url]) == 3
    assert main(["--no-follow", url]) == 0


@pytest.mark.parametrize(("status", "code"), [(200, 0), (404, 4), (418, 4), (500, 5), (503, 5)])
def test_check_status(
    servers: DemoServers, capsys: pytest.CaptureFixture[str], status: int, code: int
) -> None:
    url = f"{servers.http_url}/status/{status}"
    assert main(["--check-status", url]) == code
    err = capsys.readouterr().err
    assert (f"warning: HTTP {status}" in err) == (code != 0)
    assert main([url]) == 0


def test_too_many_redirects(servers: DemoServers, capsys: pytest.CaptureFixture[str]) -> None:
    url = f"{servers.http_url}/redirect/5"
    assert main(["--max-redirects", "2", url]) == 6
    assert capsys.readouterr().err.startswith("webwire: TooManyRedirects")


def test_read_timeout_exits_1(servers: DemoServers, capsys: pytest.CaptureFixture[str]) -> None:
    url = f"{servers.http_url}/delay/3"
    assert main(["--timeout", "0.3", url]) == 1
    assert capsys.readouterr().err.startswith("webwire: ReadTimeout")


def test_https_with_cacert(servers: DemoServers, capsys: pytest.CaptureFixture[str]) -> None:
    url = f"{servers.https_url}/get"
    assert main(["--cacert", servers.ca_path, url]) == 0
    assert json.loads(capsys.readouterr().out)["url"].startswith("https://")
    assert main([url]) == 1  # the demo CA is not trusted by default
    assert capsys.readouterr().err.startswith("webwire: ConnectError")
    assert main(["--insecure", url]) == 0


def test_download_writes_file(
    servers: DemoServers, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    size = 1024 * 1024 + 123
    target = tmp_path / "payload.bin"
    url = f"{servers.http_url}/bytes/{size}"
    assert main(["--download", str(target), url]) == 0
    assert target.read_bytes() == demo_pattern(size)
    captured = capsys.readouterr()
    assert captured.out == ""
    assert f"Saved {size} bytes" in captured.err


def test_download_of_error_is_not_saved(
    servers: DemoServers, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    target = tmp_path / "missing.bin"
    url = f"{servers.http_url}/status/404"
    assert main(["-o", str(target), url]) == 4
    assert not target.exists()
    assert "not saving" in capsys.readouterr().err


def test_download_to_unwritable_path(
    servers: DemoServers, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    url = f"{servers.http_url}/bytes/10"
    assert main(["-o", str(tmp_path / "no" / "such" / "dir.bin"), url]) == 1
    err = capsys.readouterr().err
    assert err.startswith("webwire: error:")
    assert "Traceback" not in err


def test_raw_body_streamed(
    servers: DemoServers, capsysbinary: pytest.CaptureFixture[bytes]
) -> None:
    size = 200_000
    url = f"{servers.http_url}/bytes/{size}"
    assert main([url]) == 0
    assert capsysbinary.readouterr().out == demo_pattern(size)


# --- main(): HTTP versions against hypercorn ------------------------------------
# The TLS listener offers h2 and http/1.1 by ALPN; the cleartext listener
# also accepts h2c with prior knowledge. The server's echo names the version
# it saw ("http_version": "1.1" or "2").


def test_https_http1_only(servers: DemoServers, capsys: pytest.CaptureFixture[str]) -> None:
    url = f"{servers.https_url}/get"
    assert main(["--http1.1", "-v", "--cacert", servers.ca_path, url]) == 0
    out = capsys.readouterr().out
    assert out.startswith("GET /get HTTP/1.1\n")
    assert "\nHTTP/1.1 200 OK\n" in out
    assert json.loads(out[out.index("\n{") :])["http_version"] == "1.1"


def test_https_negotiates_http2_by_default(
    servers: DemoServers, capsys: pytest.CaptureFixture[str]
) -> None:
    url = f"{servers.https_url}/get"
    assert main(["-v", "--cacert", servers.ca_path, url]) == 0
    out = capsys.readouterr().out
    assert out.startswith("GET /get HTTP/2\n")
    assert "\nHTTP/2 200" in out
    assert json.loads(out[out.index("\n{") :])["http_version"] == "2"


def test_https_http2_only(servers: DemoServers, capsys: pytest.CaptureFixture[str]) -> None:
    url = f"{servers.https_url}/redirect/1"
    assert main(["--http2", "-v", "--cacert", servers.ca_path, url]) == 0
    out = capsys.readouterr().out
    heads = [block.splitlines()[0] for block in out.split("\n\n") if block.strip()]
    assert heads[0] == "GET /redirect/1 HTTP/2"
    assert heads[1].startswith("HTTP/2 302")
    assert heads[2] == "GET /get HTTP/2"
    assert heads[3].startswith("HTTP/2 200")
    assert "HTTP/1.1" not in out


def test_https_http2_print_headers(
    servers: DemoServers, capsys: pytest.CaptureFixture[str]
) -> None:
    url = f"{servers.https_url}/bytes/10"
    assert main(["--http2", "-I", "--cacert", servers.ca_path, url]) == 0
    out = capsys.readouterr().out
    assert out.startswith("HTTP/2 200")
    assert "content-length: 10" in out.lower()


def test_h2c_prior_knowledge(servers: DemoServers, capsys: pytest.CaptureFixture[str]) -> None:
    url = f"{servers.http_url}/get"
    assert main(["--http2", url, "q==h2c"]) == 0
    echo = json.loads(capsys.readouterr().out)
    assert echo["http_version"] == "2"
    assert echo["args"] == {"q": "h2c"}


def test_http2_download_writes_file(
    servers: DemoServers, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    size = 1024 * 1024 + 123
    target = tmp_path / "payload.bin"
    url = f"{servers.https_url}/bytes/{size}"
    assert main(["--http2", "-v", "--cacert", servers.ca_path, "-o", str(target), url]) == 0
    assert target.read_bytes() == demo_pattern(size)
    captured = capsys.readouterr()
    assert captured.out == ""
    assert captured.err.startswith(f"GET /bytes/{size} HTTP/2\n")  # heads go to stderr
    assert "\nHTTP/2 200" in captured.err
    assert f"Saved {size} bytes" in captured.err


def test_http2_post_json(servers: DemoServers, capsys: pytest.CaptureFixture[str]) -> None:
    url = f"{servers.https_url}/post"
    assert main(["--http2", "--cacert", servers.ca_path, url, "name=Ada", "age:=36"]) == 0
    echo = json.loads(capsys.readouterr().out)
    assert echo["http_version"] == "2"
    assert echo["json"] == {"name": "Ada", "age": 36}
