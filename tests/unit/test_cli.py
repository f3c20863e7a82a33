"""The ``webwire`` command line: parsing, output, exit statuses, and end to
end runs against hypercorn serving the demo app on 127.0.0.1."""

from __future__ import annotations

import io
import json
import platform
import socket
import stat
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
from webwire.cli._download import (
    content_range,
    filename_from_disposition,
    filename_from_url,
    unique_path,
)
from webwire.cli._output import (
    Printer,
    body_kind,
    charset_of,
    format_request_head,
    format_response_head,
    is_binary,
    looks_like_json,
    mask_secret,
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
    assert spec.follow_redirects is False  # as HTTPie and curl: --follow / -L
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
    assert spec.files == [("doc", ("notes.txt", b"hello", "text/plain"))]
    assert spec.data == {"a": ["1", "2"]}
    assert spec.content is None


def test_parse_request_user_content_type_kept() -> None:
    spec = parse_request(["example.org", "a=1", "Content-Type:application/vnd.x+json"])
    assert [v for k, v in spec.headers if k.lower() == "content-type"] == ["application/vnd.x+json"]


def test_parse_request_data_file(tmp_path: Path) -> None:
    body = tmp_path / "body.bin"
    body.write_bytes(b"\x00\x01raw")
    assert parse_request(["example.org", "--data-binary", f"@{body}"]).content == b"\x00\x01raw"
    spec = parse_request(["example.org", "--data", "text"])
    assert spec.content == b"text"
    assert spec.method == "POST"
    assert ("Content-Type", "application/x-www-form-urlencoded") in spec.headers  # as curl
    lines = tmp_path / "lines.txt"
    lines.write_bytes(b"a=1\r\nb=2\n")
    spec = parse_request(["example.org", "--data", f"@{lines}", "--data", "c=3"])
    assert spec.content == b"a=1b=2&c=3"  # curl's --data drops newlines, joins with &
    assert parse_request(["example.org", "--data-raw", "@x"]).content == b"@x"


def test_parse_request_options(tmp_path: Path) -> None:
    ca = tmp_path / "ca.pem"
    ca.write_text("x")
    spec = parse_request(
        [
            "example.org",
            "--timeout",
            "2.5",
            "--follow",
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
    assert spec.follow_redirects is True
    assert spec.max_redirects == 3
    assert spec.verify == str(ca)
    assert spec.print_parts == "HBhbm" and spec.check_status
    assert (spec.http1, spec.http2) == (False, True)
    assert spec.download and spec.output == "out.bin"
    assert parse_request(["example.org", "--insecure"]).verify is False
    assert parse_request(["example.org", "-k"]).verify is False
    assert parse_request(["example.org", "--verify=no"]).verify is False
    assert parse_request(["example.org", "--verify", "yes"]).verify is True
    assert parse_request(["example.org", f"--verify={ca}"]).verify == str(ca)
    assert parse_request(["example.org", "-L"]).follow_redirects is True


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
        ["example.org", "--json", "{}", "--data", "x"],
        ["example.org", "--data", "x", "-F", "a=1"],
        ["example.org", "-F", "novalue"],
        ["example.org", "-F", "a=@/nonexistent/file"],
        ["example.org", "--verify", "/nonexistent/ca.pem"],
        ["example.org", "-k", "--verify", "yes"],
        ["example.org", "--print", "Hx"],
        ["example.org", "--pretty", "sometimes"],
        ["example.org", "--style", "no-such-style"],
        ["example.org", "-w", "%{no_such_variable}"],
        ["example.org", "--retry", "-1"],
        ["example.org", "--max-time", "0"],
        ["example.org", "--continue"],
        ["example.org", "--cert-key", "k.pem"],
        ["example.org", "--cert", "/nonexistent/cert.pem"],
        ["example.org", "--session", "a b"],
        ["example.org", "--session", "s", "--session-read-only", "s"],
        ["example.org", "--proxy", "ftp://proxy:21"],
        ["example.org", "--timeo", "1"],  # never abbreviated
        ["post", "example.org", "-I"],
        ["example.org", "--form", "a:=1"],
        ["example.org", "doc@/nonexistent/file.txt"],
        ["example.org", "--timeout", "0"],
        ["example.org", "--timeout", "soon"],
        ["example.org", "--cacert", "/nonexistent/ca.pem"],
        ["example.org", "--insecure", "--cacert", "x"],
        ["-X", "GE T", "example.org"],
        ["-X", "GET", "post", "example.org"],
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
    assert is_binary(bytes(range(32)) * 4)  # mostly control characters
    assert is_binary(b"PK\x03\x04\x14\x00\x06\x00")  # a zip header
    # Text in any charset is text, whether or not it is UTF-8.
    assert not is_binary("caf\u00e9".encode())
    assert not is_binary("Voil\u00e0 un caf\u00e9 cr\u00e8me".encode("latin-1"))
    assert not is_binary(bytes(range(128, 256)))
    assert not is_binary(b"\x1b[1mbold\x1b[0m\ttab\r\n")
    assert not is_binary(b"")
    assert body_kind("text/html; charset=utf-8", b"<p>x</p>") == "html"
    assert body_kind("application/atom+xml", b"<feed/>") == "xml"
    assert body_kind("text/plain", b'{"a": 1}') == "json"
    assert body_kind("text/plain", b"plain") == "text"
    assert charset_of("text/plain; charset=ISO-8859-1") == "ISO-8859-1"
    assert charset_of('text/plain; Charset="utf-8"') == "utf-8"
    assert charset_of("text/plain; charset=nonsense") is None
    assert charset_of("text/plain") is None


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
    assert describe_error(ConnectError("x: [Errno 111] refused")) == "ConnectError: x: refused"
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




def test_printer_latin1_text_shown_as_text() -> None:
    out = io.StringIO()
    body = "Voil\u00e0 un caf\u00e9".encode("latin-1")
    Printer(out, io.StringIO(), pretty="all").body(body, "text/plain; charset=ISO-8859-1", None)
    assert _strip_ansi(out.getvalue()) == "Voil\u00e0 un caf\u00e9\n"
    out = io.StringIO()
    # No declared charset: the response's detected encoding is used.
    Printer(out, io.StringIO(), pretty="all").body(body, "text/plain", "latin-1")
    assert "caf\u00e9" in out.getvalue()


@pytest.mark.parametrize(
    ("pretty", "coloured", "indented"),
    [("all", True, True), ("colors", True, False), ("format", False, True), ("none", False, False)],
)
def test_printer_pretty_modes(pretty: str, coloured: bool, indented: bool) -> None:
    out = io.StringIO()
    Printer(out, io.StringIO(), pretty=pretty).body(b'{"a":[1]}', "application/json", None)
    text = out.getvalue()
    assert ("\x1b[" in text) == coloured
    assert ('{\n    "a": [' in _strip_ansi(text)) == indented


def test_printer_formats_xml_and_highlights_html() -> None:
    out = io.StringIO()
    Printer(out, io.StringIO(), pretty="format").body(b"<a><b>x</b></a>", "application/xml", None)
    assert out.getvalue() == "<a>\n    <b>x</b>\n</a>\n"
    out = io.StringIO()
    xxe = b'<!DOCTYPE a [<!ENTITY e SYSTEM "file:///etc/passwd">]><a>&e;</a>'
    Printer(out, io.StringIO(), pretty="format").body(xxe, "application/xml", None)
    assert "/etc/passwd" in out.getvalue() and "root:" not in out.getvalue()  # shown as is
    out = io.StringIO()
    Printer(out, io.StringIO(), pretty="all", style="monokai").body(
        b"<p>hi</p>", "text/html", None
    )
    assert "\x1b[" in out.getvalue()
    assert "<p>hi</p>" in _strip_ansi(out.getvalue())


def test_mask_secret() -> None:
    assert mask_secret("Authorization", "Basic dTpw") == "Basic ****"
    assert mask_secret("proxy-authorization", "Bearer abc") == "Bearer ****"
    assert mask_secret("Authorization", "token") == "****"
    assert mask_secret("X-Other", "Basic dTpw") == "Basic dTpw"


def test_download_helpers(tmp_path: Path) -> None:
    assert filename_from_disposition('attachment; filename="report.pdf"') == "report.pdf"
    assert filename_from_disposition("attachment; filename*=UTF-8''na%C3%AFve.txt") == (
        "na\u00efve.txt"
    )
    assert filename_from_disposition('attachment; filename="../../etc/passwd"') == "passwd"
    assert filename_from_disposition('attachment; filename=".bashrc"') == "bashrc"
    assert filename_from_disposition("inline") is None
    assert filename_from_url("http://h/a/b/file%20name.tar.gz?x=1") == "file name.tar.gz"
    assert filename_from_url("http://h/dir/") is None
    target = tmp_path / "a.txt"
    assert unique_path(target) == target
    target.write_text("x")
    assert unique_path(target) == tmp_path / "a-1.txt"
    (tmp_path / "a-1.txt").write_text("x")
    assert unique_path(target) == tmp_path / "a-2.txt"
    assert content_range("bytes 10-19/100") == (10, 19, 100)
    assert content_range("bytes */100") == (None, None, 100)
    assert content_range("bytes 0-9/*") == (0, 9, None)
    assert content_range("nonsense") == (None, None, None)


def test_parse_request_any_method_and_curl_options() -> None:
    assert parse_request(["PURGE", "example.org"]).method == "PURGE"
    assert parse_request(["purge", "example.org"]).method == "PURGE"
    assert parse_request(["-X", "PURGE", "example.org"]).method == "PURGE"
    assert parse_request(["localhost", "a==1"]).method == "GET"  # a URL, then an item
    head = parse_request(["-I", "example.org"])
    assert head.method == "HEAD" and head.print_parts == "h"
    spec = parse_request(
        ["example.org", "-u", "u:p", "-w", "%{http_code}", "--retry", "3", "--max-time", "9",
         "-s", "-o", "f.bin", "--proxy", "http:http://p:3128", "--proxy", "socks5://s:1080"]
    )
    assert (spec.auth, spec.auth_type) == ("u:p", "basic")
    assert spec.write_out == "%{http_code}"
    assert (spec.retries, spec.max_time, spec.silent) == (3, 9.0, True)
    assert spec.download and spec.output == "f.bin"
    assert spec.proxies == [("http", "http://p:3128"), (None, "socks5://s:1080")]
    assert parse_request(["example.org", "-O"]).download
    assert parse_request(["example.org", "-d"]).download  # HTTPie's -d
    assert parse_request(["example.org", "-h"]).print_parts == "h"
    assert parse_request(["example.org", "-b"]).print_parts == "b"
    assert parse_request(["example.org", "--print=Hh"]).print_parts == "Hh"
    assert parse_request(["example.org", "--offline"]).print_parts == "HB"
    assert parse_request(["example.org", "-qq"]).quiet == 2


def test_parse_request_item_kinds(tmp_path: Path) -> None:
    text = tmp_path / "bio.txt"
    text.write_text("hello\n")
    data = tmp_path / "data.json"
    data.write_text('{"x": [1, 2]}')
    spec = parse_request(
        ["example.org", f"bio=@{text}", f"doc:=@{data}", "user[name]=Ada", "user[age]:=36",
         "tags[]=a", "tags[]=b", "pts[1][x]:=2", "dup=1", "dup=2"]
    )
    assert json.loads(spec.content or b"") == {
        "bio": "hello\n",
        "doc": {"x": [1, 2]},
        "user": {"name": "Ada", "age": 36},
        "tags": ["a", "b"],
        "pts": [None, {"x": 2}],
        "dup": ["1", "2"],
    }
    with pytest.raises(UsageError):
        parse_request(["example.org", "a=1", "a[b]=2"])


def test_parse_request_curl_form_fields(tmp_path: Path) -> None:
    upload = tmp_path / "photo.png"
    upload.write_bytes(b"\x89PNG")
    note = tmp_path / "note.txt"
    note.write_text("from a file")
    spec = parse_request(
        ["example.org", "-F", "a=1", "-F", f"img=@{upload};type=image/x-test;filename=p.png",
         "-F", f"n=<{note}"]
    )
    assert spec.method == "POST"
    assert spec.data == {"a": "1", "n": "from a file"}
    assert spec.files == [("img", ("p.png", b"\x89PNG", "image/x-test"))]
    multipart = parse_request(["example.org", "--multipart", "a=1"])
    assert multipart.data == {"a": "1"} and multipart.files == []


# --- main(): errors without a network ------------------------------------------


def test_main_bad_url_exits_2(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["get", "ftp://example.org/"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("webwire: InvalidURL")
    assert "Traceback" not in err


def test_main_usage_error_exits_2(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["example.org", "--timeout", "never"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("webwire: error:")
    assert err.endswith("(see webwire --help)\n")
    assert err.count("\n") == 1


def test_main_help_exits_0(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["--help"]) == 0
    out = capsys.readouterr().out
    assert "request items" in out
    assert "webwire demo" in out
    assert "-d  --download (HTTPie" in out
    assert "7 TLS error" in out
    assert main(["-h"]) == 0  # -h alone: the help
    assert "usage: webwire" in capsys.readouterr().out
    assert main([]) == 0  # no argument: the help
    assert "usage: webwire" in capsys.readouterr().out


def test_main_version(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["--version"]) == 0
    lines = capsys.readouterr().out.splitlines()
    names = [line.split()[0] for line in lines]
    assert names[0] == "webwire"
    for engine in ("h2", "httptools", "yarl", "multidict", "rich"):
        assert engine in names
    assert names[-1] in ("CPython", "PyPy")
    assert lines[-1].split()[1] == platform.python_version()


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
        kept = {k: v for k, v in options.items() if k not in ("proxy", "mounts")}
        return real_client(**kept, transport=webwire.MockTransport(handler))

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


def _json_body(out: str) -> Any:
    """The first JSON object printed after the heads."""
    start = out.index("\n{") + 1
    return json.JSONDecoder().raw_decode(out[start:])[0]


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


def test_network_options_reach_the_client(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    cert = tmp_path / "client.pem"
    key = tmp_path / "client.key"
    cert.write_text("x")
    key.write_text("y")
    opened = _mock_client(monkeypatch, _answer("HTTP/1.1"))
    argv = ["https://example.org/get", "--timeout", "4", "--max-time", "9", "--retry", "2",
            "--proxy", "socks5://127.0.0.1:1080", "--cert", str(cert), "--cert-key", str(key),
            "-L", "--max-redirects", "4", "--verify=no"]
    assert main(argv) == 0
    options = opened[0]
    assert options["timeout"] == webwire.Timeout(4, total=9)
    assert isinstance(options["retries"], webwire.Retry)
    assert options["retries"].total == 2
    assert 503 in options["retries"].status_forcelist
    assert options["proxy"] == "socks5://127.0.0.1:1080"
    assert options["cert"] == (str(cert), str(key))
    assert (options["follow_redirects"], options["max_redirects"]) == (True, 4)
    assert options["verify"] is False
    assert main(["http://example.org/get", "--proxy", "https:http://127.0.0.1:3128"]) == 0
    assert set(opened[1]["mounts"]) == {"https://"}
    assert "proxy" not in opened[1]


def test_verbose_shows_http2_on_every_head(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    _mock_client(monkeypatch, _answer("HTTP/2"))
    assert main(["-v", "-L", "https://example.org/redirect"]) == 0
    out = capsys.readouterr().out
    heads = [block.splitlines()[0] for block in out.split("\n\n") if block.strip()]
    assert heads[:4] == ["GET /redirect HTTP/2", "HTTP/2 302", "GET /end HTTP/2", "HTTP/2 200"]
    assert "Elapsed time: " in out
    assert "HTTP version: HTTP/2" in out
    assert "HTTP/1.1" not in out


def test_verbose_masks_credentials(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    _mock_client(monkeypatch, _answer("HTTP/1.1"))
    assert main(["-v", "-a", "user:secret", "https://example.org/get"]) == 0
    out = capsys.readouterr().out
    assert "Authorization: Basic ****" in out
    assert "dXNlcjpzZWNyZXQ=" not in out
    assert main(["-v", "--show-secrets", "-a", "user:secret", "https://example.org/get"]) == 0
    assert "Authorization: Basic dXNlcjpzZWNyZXQ=" in capsys.readouterr().out
    assert main(["-v", "-A", "bearer", "-a", "tok", "https://example.org/get"]) == 0
    assert "Authorization: Bearer ****" in capsys.readouterr().out


def test_print_headers_http2(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    _mock_client(monkeypatch, _answer("HTTP/2"))
    assert main(["-h", "https://example.org/get"]) == 0
    assert capsys.readouterr().out.startswith("HTTP/2 200\n")


def test_print_parts(monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    _mock_client(monkeypatch, _answer("HTTP/1.1"))
    assert main(["--print=HB", "example.org/a", "x=1"]) == 0
    out = capsys.readouterr().out
    assert out.startswith("POST /a HTTP/1.1\nHost: example.org\n")
    assert '{"x": "1"}' in out
    assert "200" not in out
    assert main(["--print=b", "example.org/b"]) == 0
    assert json.loads(capsys.readouterr().out) == {"path": "/b"}
    assert main(["-q", "example.org/b"]) == 0
    assert capsys.readouterr().out == ""


def test_offline_sends_nothing(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    sent: list[webwire.Request] = []

    def handler(request: webwire.Request) -> webwire.Response:
        sent.append(request)
        return webwire.Response(200)

    _mock_client(monkeypatch, handler)
    assert main(["--offline", "-a", "u:p", "PURGE", "example.org/c", "q==1", "a:=[1]"]) == 0
    out = capsys.readouterr().out
    assert out.startswith("PURGE /c?q=1 HTTP/1.1\nHost: example.org\n")
    assert "Authorization: Basic ****" in out
    assert '{"a": [1]}' in out
    assert sent == []


def test_write_out(monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    _mock_client(monkeypatch, _answer("HTTP/2"))
    template = (
        r"%{http_code} %{http_version} %{size_download} %{url_effective} %{num_redirects}"
        r" %{content_type} %{method} %{time_total} 100%%\n"
    )
    assert main(["-s", "-q", "-L", "-w", template, "https://example.org/redirect"]) == 0
    line = capsys.readouterr().out
    fields = line.split(" ")
    assert fields[:7] == [
        "200", "2", str(len(b'{"path":"/end"}')), "https://example.org/end", "1",
        "application/json", "GET",
    ]
    assert float(fields[7]) >= 0
    assert fields[8] == "100%\n"


def test_stream_prints_chunks(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    def handler(request: webwire.Request) -> webwire.Response:
        chunks = [b"line 1\n", "caf\u00e9".encode("latin-1")[:3], b"\xe9\n"]
        return webwire.Response(
            200, headers={"Content-Type": "text/plain; charset=latin-1"}, content=iter(chunks)
        )

    _mock_client(monkeypatch, handler)
    assert main(["--stream", "--pretty=colors", "example.org/s"]) == 0
    assert _strip_ansi(capsys.readouterr().out) == "line 1\ncaf\u00e9\n"


def test_verbose_request_head_of_a_failed_request(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    def refuse(request: webwire.Request) -> webwire.Response:
        raise webwire.ConnectError("refused")

    _mock_client(monkeypatch, refuse)
    for flags, version in (["--http2"], "HTTP/2"), ([], "HTTP/1.1"):
        assert main(["-v", *flags, "http://example.org/x"]) == 6
        captured = capsys.readouterr()
        assert captured.out.startswith(f"GET /x {version}\n")
        assert captured.err == "webwire: cannot connect to example.org: refused\n"


@pytest.mark.parametrize(
    ("error", "status", "message"),
    [
        (webwire.ConnectTimeout("t"), 2, "timed out connecting to example.org"),
        (webwire.ReadTimeout("t"), 2, "timed out waiting for the response of example.org"),
        (webwire.TooManyRedirects("more than 30"), 3, "too many redirects: more than 30"),
        (webwire.ProxyError("407 from proxy"), 6, "proxy error: 407 from proxy"),
        (webwire.RemoteProtocolError("bad"), 1, "RemoteProtocolError: bad"),
    ],
)
def test_error_exit_statuses(
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    error: Exception,
    status: int,
    message: str,
) -> None:
    def fail(request: webwire.Request) -> webwire.Response:
        raise error

    _mock_client(monkeypatch, fail)
    assert main(["http://example.org/x"]) == status
    assert capsys.readouterr().err == f"webwire: {message}\n"


def _file_server(data: bytes, disposition: str | None = None) -> tuple[Handler, list[str]]:
    """A handler serving ``data`` with Range support (RFC 9110 section 14);
    the returned list receives the Range field of every request."""
    ranges: list[str] = []

    def handler(request: webwire.Request) -> webwire.Response:
        wanted = request.headers.get("Range", "")
        ranges.append(wanted)
        headers = {"Content-Type": "application/octet-stream"}
        if disposition is not None:
            headers["Content-Disposition"] = disposition
        if not wanted:
            return webwire.Response(200, headers=headers, content=data)
        first = int(wanted.removeprefix("bytes=").rstrip("-"))
        if first >= len(data):
            headers["Content-Range"] = f"bytes */{len(data)}"
            return webwire.Response(416, headers=headers)
        headers["Content-Range"] = f"bytes {first}-{len(data) - 1}/{len(data)}"
        return webwire.Response(206, headers=headers, content=data[first:])

    return handler, ranges


def test_download_names_and_resume(
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    tmp_path: Path,
) -> None:
    monkeypatch.chdir(tmp_path)
    data = bytes(range(256)) * 10
    handler, ranges = _file_server(data, 'attachment; filename="report.bin"')
    _mock_client(monkeypatch, handler)
    assert main(["--download", "http://example.org/files/x"]) == 0
    assert main(["-d", "http://example.org/files/x"]) == 0  # never overwrites
    assert (tmp_path / "report.bin").read_bytes() == data
    assert (tmp_path / "report-1.bin").read_bytes() == data
    assert "Saved 2560 bytes to report-1.bin" in capsys.readouterr().err
    # Resume: the partial file gets the rest with a Range request.
    partial = tmp_path / "part.bin"
    partial.write_bytes(data[:1000])
    assert main(["-d", "-c", "-o", str(partial), "http://example.org/files/x"]) == 0
    assert ranges[-1] == "bytes=1000-"
    assert partial.read_bytes() == data
    assert "Saved 1560 more bytes (2560)" in capsys.readouterr().err
    # A complete file: 416 with the same complete length.
    assert main(["-d", "-c", "-o", str(partial), "http://example.org/files/x"]) == 0
    assert "already complete" in capsys.readouterr().err
    assert partial.read_bytes() == data


def test_download_resume_ignored_range(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    monkeypatch.chdir(tmp_path)
    data = b"0123456789" * 50

    def no_ranges(request: webwire.Request) -> webwire.Response:
        return webwire.Response(200, content=data)

    _mock_client(monkeypatch, no_ranges)
    (tmp_path / "data.txt").write_bytes(b"stale-")
    # --continue without -o: the name of the URL path.
    assert main(["-d", "--continue", "http://example.org/dir/data.txt"]) == 0
    assert (tmp_path / "data.txt").read_bytes() == data
    assert "from the start" in capsys.readouterr().err


def test_download_resume_wrong_part(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    def wrong(request: webwire.Request) -> webwire.Response:
        return webwire.Response(206, headers={"Content-Range": "bytes 0-9/10"}, content=b"x" * 10)

    _mock_client(monkeypatch, wrong)
    target = tmp_path / "t.bin"
    target.write_bytes(b"abc")
    assert main(["-c", "-o", str(target), "http://example.org/t.bin"]) == 1
    assert "not at byte 3" in capsys.readouterr().err
    assert target.read_bytes() == b"abc"


def test_download_name_from_url_and_type(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    monkeypatch.chdir(tmp_path)

    def handler(request: webwire.Request) -> webwire.Response:
        return webwire.Response(200, headers={"Content-Type": "application/json"}, content=b"{}")

    _mock_client(monkeypatch, handler)
    assert main(["-O", "http://example.org/a/b/data%20set.json?x=1"]) == 0
    assert (tmp_path / "data set.json").read_bytes() == b"{}"
    assert main(["-d", "http://example.org/"]) == 0
    assert (tmp_path / "index.json").read_bytes() == b"{}"


def test_session_keeps_cookies_and_auth(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "config"))
    seen: list[tuple[str | None, str | None]] = []

    def handler(request: webwire.Request) -> webwire.Response:
        seen.append((request.headers.get("Cookie"), request.headers.get("Authorization")))
        if request.url.path == "/login":
            return webwire.Response(200, headers={"Set-Cookie": "sid=abc; Path=/"})
        return webwire.Response(200, json={})

    _mock_client(monkeypatch, handler)
    assert main(["--session=work", "-a", "u:p", "http://example.org:8080/login"]) == 0
    path = tmp_path / "config" / "webwire" / "sessions" / "example.org_8080" / "work.json"
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert stat.S_IMODE(path.parent.stat().st_mode) == 0o700
    assert main(["--session=work", "http://example.org:8080/next"]) == 0
    assert seen[1] == ("sid=abc", "Basic dTpw")
    # Read-only: used but not updated; another host has its own sessions.
    assert main(["--session-read-only=work", "-a", "x:y", "http://example.org:8080/n"]) == 0
    assert json.loads(path.read_text())["auth"]["raw"] == "u:p"
    assert main(["--session=work", "http://other.example/"]) == 0
    assert seen[-1] == (None, None)
    # A value with a slash is a file path.
    own = tmp_path / "mine.json"
    assert main([f"--session={own}", "http://example.org/login"]) == 0
    assert stat.S_IMODE(own.stat().st_mode) == 0o600
    assert "sid" in own.read_text()


def test_session_file_errors(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    broken = tmp_path / "broken.json"
    broken.write_text("[1, 2")
    _mock_client(monkeypatch, _answer("HTTP/1.1"))
    assert main([f"--session={broken}", "http://example.org/"]) == 2
    assert "not a webwire session file" in capsys.readouterr().err


def test_password_missing_without_terminal(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    _mock_client(monkeypatch, _answer("HTTP/1.1"))
    assert main(["-a", "user", "http://example.org/"]) == 2
    assert "has no password" in capsys.readouterr().err


def test_stdin_body(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    bodies: list[tuple[str, bytes, str | None]] = []

    def handler(request: webwire.Request) -> webwire.Response:
        bodies.append((request.method, request.content, request.headers.get("Content-Type")))
        return webwire.Response(204)

    _mock_client(monkeypatch, handler)
    piped = tmp_path / "stdin.json"
    piped.write_bytes(b'{"a": 1}')
    with piped.open("rb") as raw:
        monkeypatch.setattr(sys, "stdin", io.TextIOWrapper(raw))
        assert main(["example.org/p"]) == 0
    assert bodies[-1] == ("POST", b'{"a": 1}', "application/json")
    with piped.open("rb") as raw:
        monkeypatch.setattr(sys, "stdin", io.TextIOWrapper(raw))
        assert main(["--ignore-stdin", "example.org/p"]) == 0
    assert bodies[-1] == ("GET", b"", None)


# --- main(): against real sockets ------------------------------------------------


def _closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
    return port


def test_connection_refused_exits_6(capsys: pytest.CaptureFixture[str]) -> None:
    port = _closed_port()
    assert main([f"http://127.0.0.1:{port}/", "--timeout", "5"]) == 6
    err = capsys.readouterr().err
    assert err == f"webwire: connection refused by 127.0.0.1:{port}\n"


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
    assert main(["-v", "--follow", url]) == 0
    out = capsys.readouterr().out
    assert out.startswith("GET /redirect/2 HTTP/1.1\n")
    assert "HTTP/1.1 302 Found" in out
    assert "GET /redirect/1 HTTP/1.1" in out
    assert "HTTP/1.1 200 OK" in out
    assert "content-type: application/json" in out.lower()
    assert _json_body(out)["url"].endswith("/get")


def test_curl_head(servers: DemoServers, capsys: pytest.CaptureFixture[str]) -> None:
    url = f"{servers.http_url}/bytes/10"
    assert main(["-I", url]) == 0
    out = capsys.readouterr().out
    assert out.startswith("HTTP/1.1 200 OK\n")
    assert "content-length: 10" in out.lower()
    assert out.endswith("\n\n")


def test_redirects_not_followed_by_default(
    servers: DemoServers, capsys: pytest.CaptureFixture[str]
) -> None:
    url = f"{servers.http_url}/redirect/1"
    assert main(["--check-status", url]) == 3
    assert main([url]) == 0
    assert main(["-L", "--check-status", url]) == 0


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
    assert main(["-L", "--max-redirects", "2", url]) == 3
    assert capsys.readouterr().err.startswith("webwire: too many redirects")


def test_read_timeout_exits_2(servers: DemoServers, capsys: pytest.CaptureFixture[str]) -> None:
    url = f"{servers.http_url}/delay/3"
    assert main(["--timeout", "0.3", url]) == 2
    assert capsys.readouterr().err.startswith("webwire: timed out waiting for the response")


def test_https_with_cacert(servers: DemoServers, capsys: pytest.CaptureFixture[str]) -> None:
    url = f"{servers.https_url}/get"
    assert main(["--cacert", servers.ca_path, url]) == 0
    assert json.loads(capsys.readouterr().out)["url"].startswith("https://")
    assert main([url]) == 7  # the demo CA is not trusted by default
    err = capsys.readouterr().err
    assert err.startswith("webwire: TLS certificate verify failed for 127.0.0.1:")
    assert err.endswith(": unable to get local issuer certificate\n")
    assert main(["--insecure", url]) == 0
    assert main([f"--verify={servers.ca_path}", url]) == 0


def test_download_writes_file(
    servers: DemoServers, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    size = 1024 * 1024 + 123
    target = tmp_path / "payload.bin"
    url = f"{servers.http_url}/bytes/{size}"
    assert main(["-o", str(target), url]) == 0
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
    assert _json_body(out)["http_version"] == "1.1"


def test_https_negotiates_http2_by_default(
    servers: DemoServers, capsys: pytest.CaptureFixture[str]
) -> None:
    url = f"{servers.https_url}/get"
    assert main(["-v", "--cacert", servers.ca_path, url]) == 0
    out = capsys.readouterr().out
    assert out.startswith("GET /get HTTP/2\n")
    assert "\nHTTP/2 200" in out
    assert _json_body(out)["http_version"] == "2"


def test_https_http2_only(servers: DemoServers, capsys: pytest.CaptureFixture[str]) -> None:
    url = f"{servers.https_url}/redirect/1"
    assert main(["--http2", "-v", "-L", "--cacert", servers.ca_path, url]) == 0
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
    assert main(["--http2", "-h", "--cacert", servers.ca_path, url]) == 0
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


def test_version_into_a_closed_pipe() -> None:
    """``webwire --version | head -1``: the reader going away is not an
    error and shows no traceback."""
    import subprocess
    import sys

    process = subprocess.Popen(
        [sys.executable, "-m", "webwire", "--version"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        bufsize=0,
    )
    assert process.stdout is not None
    process.stdout.close()  # the reader is gone before anything is written
    assert process.stderr is not None
    with process.stderr:
        stderr = process.stderr.read()
    assert process.wait(timeout=30) == 0
    assert b"Traceback" not in stderr
