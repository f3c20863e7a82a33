"""The ``webwire`` command against hypercorn (``app.py``) on 127.0.0.1, over
HTTP and HTTPS: the command run as a subprocess (``python -m webwire``
importing this tree's sources) for the end-to-end scenarios and the exit
statuses, and its ``main()`` called in-process for the other options."""

from __future__ import annotations

import asyncio
import json
import os
import re
import socket
import stat
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import trustme
import yarl
from app import CLI_FILE_NAME, GERMAN_TEXT, LATIN1_TEXT, pattern_bytes
from digest_app import app as digest_app
from proxies import SocksProxies, http_proxy, socks_proxies  # noqa: F401  (fixtures)
from ws_app import FORBIDDEN_BODY, WebsocketsServer

from conftest import ServerInfo, ServerThread
from webwire.cli import main

SRC = Path(__file__).resolve().parents[2] / "src"
_PROXY_VARIABLES = ("http_proxy", "https_proxy", "all_proxy", "no_proxy")


def run_cli(
    *args: str,
    stdin: bytes | None = None,
    cwd: Path | None = None,
    env: dict[str, str] | None = None,
) -> subprocess.CompletedProcess[bytes]:
    """Run ``python -m webwire ARGS`` on this tree's sources; standard input
    is ``stdin`` through a pipe, else ``/dev/null``."""
    environment = {
        key: value
        for key, value in os.environ.items()
        if key.lower() not in _PROXY_VARIABLES
    }
    environment["PYTHONPATH"] = os.pathsep.join(
        [str(SRC), *filter(None, [os.environ.get("PYTHONPATH")])]
    )
    environment.update(env or {})
    return subprocess.run(
        [sys.executable, "-m", "webwire", *args],
        input=stdin,
        stdin=None if stdin is not None else subprocess.DEVNULL,
        capture_output=True,
        cwd=cwd,
        env=environment,
        timeout=60,
        check=False,
    )


def _closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
    return port


def _echo(out: bytes | str) -> dict[str, Any]:
    document: dict[str, Any] = json.loads(out)
    return document


def _header(echo: dict[str, Any], name: str) -> list[str]:
    return [value for key, value in echo["headers"] if key == name]


# --- the scenarios, as a subprocess -------------------------------------------------


def test_help() -> None:
    done = run_cli("--help")
    assert done.returncode == 0
    out = done.stdout.decode()
    assert out.startswith("usage: webwire [METHOD] URL [ITEM ...] [OPTIONS]")
    for option in ("--session", "--download", "--continue", "--check-status", "-w FORMAT"):
        assert option in out
    assert "-h  response headers only (HTTPie" in out
    assert done.stderr == b""


def test_version() -> None:
    done = run_cli("--version")
    assert done.returncode == 0
    names = [line.split()[0] for line in done.stdout.decode().splitlines()]
    assert names[0] == "webwire"
    assert {"h2", "httptools", "yarl", "multidict", "rich"} <= set(names)


def test_basic_auth_reaches_the_server(hypercorn_http: ServerInfo) -> None:
    url = f"{hypercorn_http.url}/basic-auth/ada/s3cret"
    done = run_cli("-a", "ada:s3cret", url)
    assert done.returncode == 0, done.stderr
    assert _echo(done.stdout) == {"authenticated": True, "user": "ada"}
    wrong = run_cli("-u", "ada:wrong", "--check-status", url)
    assert wrong.returncode == 4
    assert wrong.stderr.decode() == "webwire: warning: HTTP 401 Unauthorized\n"


def test_session_keeps_cookies(hypercorn_http: ServerInfo, tmp_path: Path) -> None:
    env = {"XDG_CONFIG_HOME": str(tmp_path / "config")}
    first = run_cli("--session=s", f"{hypercorn_http.url}/cookies/set?sid=abc", env=env)
    assert first.returncode == 0, first.stderr
    second = run_cli("--session=s", f"{hypercorn_http.url}/cookies", env=env)
    assert second.returncode == 0, second.stderr
    assert _echo(second.stdout) == {"cookies": {"sid": "abc"}}
    host = f"127.0.0.1_{hypercorn_http.url.port}"
    path = tmp_path / "config" / "webwire" / "sessions" / host / "s.json"
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert json.loads(path.read_text())["cookies"][0]["name"] == "sid"
    # Without the session the cookie is not sent.
    alone = run_cli(f"{hypercorn_http.url}/cookies", env=env)
    assert _echo(alone.stdout) == {"cookies": {}}


def test_download_then_resume(hypercorn_https: ServerInfo, ca_path: str, tmp_path: Path) -> None:
    size = 300_000
    url = f"{hypercorn_https.url}/cli/file/{size}"
    done = run_cli("--download", f"--verify={ca_path}", url, cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    assert done.stdout == b""
    assert (tmp_path / CLI_FILE_NAME).read_bytes() == pattern_bytes(size)
    assert f"Saved {size} bytes to {CLI_FILE_NAME}".encode() in done.stderr
    # A second download never overwrites the first.
    again = run_cli("-d", f"--verify={ca_path}", url, cwd=tmp_path)
    assert again.returncode == 0, again.stderr
    assert (tmp_path / "cli-file-1.bin").read_bytes() == pattern_bytes(size)
    # A partial file is completed with a Range request (206).
    partial = tmp_path / "partial.bin"
    partial.write_bytes(pattern_bytes(size)[:123_456])
    resumed = run_cli("-d", "-c", "-o", str(partial), f"--verify={ca_path}", url, cwd=tmp_path)
    assert resumed.returncode == 0, resumed.stderr
    assert partial.read_bytes() == pattern_bytes(size)
    assert f"Saved {size - 123_456} more bytes ({size})".encode() in resumed.stderr
    # Resuming a complete file: 416 with the same length, nothing changes.
    complete = run_cli("-d", "-c", "-o", str(partial), f"--verify={ca_path}", url)
    assert complete.returncode == 0, complete.stderr
    assert b"already complete" in complete.stderr
    assert partial.read_bytes() == pattern_bytes(size)


def test_any_method(hypercorn_http: ServerInfo) -> None:
    done = run_cli("-X", "PURGE", f"{hypercorn_http.url}/echo")
    assert done.returncode == 0, done.stderr
    assert _echo(done.stdout)["method"] == "PURGE"


def test_stdin_is_the_body(hypercorn_http: ServerInfo) -> None:
    done = run_cli("post", f"{hypercorn_http.url}/echo", stdin=b'{"a":1}\n')
    assert done.returncode == 0, done.stderr
    echo = _echo(done.stdout)
    assert echo["method"] == "POST"
    assert echo["body"] == '{"a":1}\n'
    assert _header(echo, "content-type") == ["application/json"]
    ignored = run_cli("--ignore-stdin", f"{hypercorn_http.url}/echo", stdin=b"x")
    assert _echo(ignored.stdout)["method"] == "GET"
    assert _echo(ignored.stdout)["body_length"] == 0


def _run_on_terminal(*args: str, cwd: Path) -> tuple[int, str]:
    """Run the command with standard output and error on a pseudo-terminal;
    returns the exit status and everything written to the terminal."""
    import pty
    import select

    main_fd, child_fd = pty.openpty()
    environment = {
        key: value
        for key, value in os.environ.items()
        if key.lower() not in _PROXY_VARIABLES and key not in ("NO_COLOR", "FORCE_COLOR")
    }
    environment["PYTHONPATH"] = str(SRC)
    environment["TERM"] = "xterm-256color"
    environment["COLUMNS"] = "100"
    process = subprocess.Popen(
        [sys.executable, "-m", "webwire", *args],
        stdin=subprocess.DEVNULL,
        stdout=child_fd,
        stderr=child_fd,
        cwd=cwd,
        env=environment,
    )
    os.close(child_fd)
    output = bytearray()
    try:
        while True:
            ready, _, _ = select.select([main_fd], [], [], 30)
            if not ready:
                break
            try:
                data = os.read(main_fd, 65536)
            except OSError:  # EIO: the child side is closed
                break
            if not data:
                break
            output += data
        status = process.wait(timeout=30)
    finally:
        os.close(main_fd)
        if process.poll() is None:
            process.kill()
            process.wait()
    return status, output.decode("utf-8", "replace")


@pytest.mark.skipif(sys.platform == "win32", reason="pseudo-terminals are POSIX")
def test_terminal_output(hypercorn_http: ServerInfo, tmp_path: Path) -> None:
    status, text = _run_on_terminal(f"{hypercorn_http.url}/json", cwd=tmp_path)
    assert status == 0
    assert "\x1b[" in text  # coloured
    plain = re.sub(r"\x1b\[[0-9;?]*[a-zA-Z]", "", text)
    assert "HTTP/1.1 200" in plain  # response head shown by default on a terminal
    assert '"numbers": [' in plain  # JSON formatted
    # Downloads draw a progress bar on the terminal's standard error.
    status, text = _run_on_terminal("-d", f"{hypercorn_http.url}/cli/file/200000", cwd=tmp_path)
    assert status == 0
    plain = re.sub(r"\x1b\[[0-9;?]*[a-zA-Z]", "", text)
    assert "cli-file.bin" in plain
    assert "200.0/200.0 kB" in plain
    assert (tmp_path / CLI_FILE_NAME).read_bytes() == pattern_bytes(200_000)


# --- exit statuses, as a subprocess ----------------------------------------------


def test_exit_timeout(hypercorn_http: ServerInfo) -> None:
    done = run_cli("--timeout", "0.5", f"{hypercorn_http.url}/stall?head=0")
    assert done.returncode == 2
    port = hypercorn_http.url.port
    expected = f"webwire: timed out waiting for the response of 127.0.0.1:{port}\n"
    assert done.stderr.decode() == expected


def test_exit_connection_refused() -> None:
    port = _closed_port()
    done = run_cli(f"http://127.0.0.1:{port}/")
    assert done.returncode == 6
    assert done.stderr.decode() == f"webwire: connection refused by 127.0.0.1:{port}\n"


def test_exit_dns_failure() -> None:
    done = run_cli("http://no-such-host.invalid/")
    assert done.returncode == 6
    err = done.stderr.decode()
    assert err.startswith("webwire: DNS ")
    assert "no-such-host.invalid" in err
    assert "Errno" not in err and "gaierror" not in err
    assert err.count("\n") == 1


def test_exit_tls_failure(hypercorn_https: ServerInfo, tmp_path: Path) -> None:
    other_ca = tmp_path / "other-ca.pem"
    trustme.CA().cert_pem.write_to_path(str(other_ca))
    done = run_cli(f"--verify={other_ca}", f"{hypercorn_https.url}/echo")
    assert done.returncode == 7
    err = done.stderr.decode()
    port = hypercorn_https.url.port
    assert err.startswith(f"webwire: TLS certificate verify failed for 127.0.0.1:{port}: ")
    assert "unable to get local issuer certificate" in err
    assert err.count("\n") == 1


def test_exit_tls_to_cleartext_port(
    hypercorn_http: ServerInfo, capsys: pytest.CaptureFixture[str]
) -> None:
    port = hypercorn_http.url.port
    assert main([f"https://127.0.0.1:{port}/echo"]) == 7
    err = capsys.readouterr().err
    assert err.startswith(f"webwire: TLS error with 127.0.0.1:{port}: ")
    assert err.count("\n") == 1 and "Errno" not in err


@pytest.mark.parametrize(("status", "code"), [(404, 4), (503, 5)])
def test_exit_http_errors(hypercorn_http: ServerInfo, status: int, code: int) -> None:
    url = f"{hypercorn_http.url}/status/{status}"
    assert run_cli("--check-status", url).returncode == code
    assert run_cli(url).returncode == 0


def test_exit_too_many_redirects(hypercorn_http: ServerInfo) -> None:
    done = run_cli("-L", "--max-redirects", "2", f"{hypercorn_http.url}/redirect/5")
    assert done.returncode == 3
    assert done.stderr.decode().startswith("webwire: too many redirects")


# --- other options, in-process --------------------------------------------------


def test_latin1_text_is_shown(
    hypercorn_http: ServerInfo, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["--pretty=format", f"{hypercorn_http.url}/html-latin1"]) == 0
    assert capsys.readouterr().out == f"<p>{LATIN1_TEXT}</p>\n"
    assert main(["--pretty=colors", f"{hypercorn_http.url}/no-charset"]) == 0
    out = capsys.readouterr().out
    assert "binary" not in out
    assert GERMAN_TEXT.split(":")[0] in out


def test_verbose_against_server(
    hypercorn_https: ServerInfo, ca_path: str, capsys: pytest.CaptureFixture[str]
) -> None:
    url = f"{hypercorn_https.url}/basic-auth/u/p"
    assert main(["-v", "--verify", ca_path, "-a", "u:p", url, "X-Trace:1"]) == 0
    out = capsys.readouterr().out
    assert out.startswith("GET /basic-auth/u/p HTTP/2\n")
    assert "\nAuthorization: Basic ****\n" in out
    assert "\nX-Trace: 1\n" in out
    assert "\nHTTP/2 200" in out
    assert '"authenticated": true, "user": "u"}\n\nElapsed time: ' in out
    assert '"authenticated": true' in out


def test_digest_auth(capsys: pytest.CaptureFixture[str]) -> None:
    async def serve(sock: socket.socket, stop: asyncio.Event) -> None:
        from hypercorn.asyncio import serve as hypercorn_serve
        from hypercorn.config import Config

        config = Config()
        config.bind = [f"fd://{sock.dup().detach()}"]
        config.graceful_timeout = 1.0
        config.accesslog = None
        await hypercorn_serve(digest_app, config, shutdown_trigger=stop.wait)  # type: ignore[arg-type]

    thread = ServerThread("hypercorn-cli-digest", serve)
    thread.start()
    try:
        url = f"http://127.0.0.1:{thread.port}/digest/SHA-256/auth"
        assert main(["-A", "digest", "-a", "Mufasa:Circle of Life", url]) == 0
        assert _echo(capsys.readouterr().out)["user"] == "Mufasa"
        assert main(["--check-status", "-A", "digest", "-a", "Mufasa:wrong", url]) == 4
    finally:
        thread.stop()


def test_forms_and_uploads(
    hypercorn_http: ServerInfo, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    upload = tmp_path / "notes.txt"
    upload.write_bytes(b"file body")
    url = f"{hypercorn_http.url}/echo"
    assert main(["-F", "a=1", "-F", f"doc=@{upload}", url]) == 0
    echo = _echo(capsys.readouterr().out)
    assert _header(echo, "content-type")[0].startswith("multipart/form-data; boundary=")
    assert 'name="doc"; filename="notes.txt"' in echo["body"]
    assert "file body" in echo["body"]
    assert main(["--form", "put", url, "a=1", "b=x y"]) == 0
    echo = _echo(capsys.readouterr().out)
    assert (echo["method"], echo["body"]) == ("PUT", "a=1&b=x+y")
    assert main(["--data-binary", f"@{upload}", url]) == 0
    assert _echo(capsys.readouterr().out)["body"] == "file body"
    assert main([url, "user[name]=Ada", "tags[]:=1"]) == 0
    assert json.loads(_echo(capsys.readouterr().out)["body"]) == {
        "user": {"name": "Ada"},
        "tags": [1],
    }


def test_stream_write_out_and_retry(
    hypercorn_http: ServerInfo, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["--stream", "--pretty=colors", f"{hypercorn_http.url}/stream/3"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert [json.loads(line)["id"] for line in lines] == [0, 1, 2]
    assert main(["-q", "-w", r"%{http_code} %{num_redirects}\n", "-L",
                 f"{hypercorn_http.url}/redirect/2"]) == 0
    assert capsys.readouterr().out == "200 2\n"
    flaky = f"{hypercorn_http.url}/flaky/cli-retry/2"
    assert main(["--retry", "2", flaky]) == 0
    assert _echo(capsys.readouterr().out)["attempts"] == 3


def test_head_and_offline(hypercorn_http: ServerInfo, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["-I", f"{hypercorn_http.url}/bytes/10"]) == 0
    out = capsys.readouterr().out
    assert out.startswith("HTTP/1.1 200 \n") or out.startswith("HTTP/1.1 200 OK\n")
    assert "content-length: 10" in out.lower()
    assert main(["--offline", f"{hypercorn_http.url}/echo", "a=1"]) == 0
    out = capsys.readouterr().out
    assert out.startswith("POST /echo HTTP/1.1\n")
    assert out.rstrip().endswith('{"a": "1"}')


def test_proxies(
    hypercorn_http: ServerInfo,
    socks_proxies: SocksProxies,  # noqa: F811
    capsys: pytest.CaptureFixture[str],
) -> None:
    url = f"{hypercorn_http.url}/echo"
    assert main(["--proxy", socks_proxies.socks5.url, url]) == 0
    assert _echo(capsys.readouterr().out)["path"] == "/echo"
    assert main(["--proxy", f"http:{socks_proxies.socks5.url}", url]) == 0
    assert _echo(capsys.readouterr().out)["path"] == "/echo"
    port = _closed_port()
    assert main(["--proxy", f"socks5://127.0.0.1:{port}", url]) == 6
    assert capsys.readouterr().err.startswith("webwire: ")


def test_netrc_credentials(
    hypercorn_http: ServerInfo,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    netrc = tmp_path / "netrc"
    netrc.write_text("machine 127.0.0.1 login nora password n3trc\n")
    netrc.chmod(0o600)
    monkeypatch.setenv("NETRC", str(netrc))
    url = f"{hypercorn_http.url}/basic-auth/nora/n3trc"
    assert main(["--check-status", url]) == 0
    assert _echo(capsys.readouterr().out)["user"] == "nora"
    # Credentials given on the command line win over .netrc.
    assert main(["--check-status", "-a", "other:pw", url]) == 4


@pytest.fixture
def home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "config"))
    yield tmp_path


def test_session_with_auth(
    hypercorn_http: ServerInfo, home: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    url = yarl.URL(f"{hypercorn_http.url}/basic-auth/kim/pw")
    assert main(["--session", "auth", "-a", "kim:pw", str(url)]) == 0
    capsys.readouterr()
    assert main(["--session", "auth", "--check-status", str(url)]) == 0
    assert _echo(capsys.readouterr().out)["authenticated"] is True


# --- webwire ws ---------------------------------------------------------------------


def _ws_url(info: ServerInfo, path: str) -> str:
    return str(info.url.with_scheme("wss" if info.url.scheme == "https" else "ws")) + path


@pytest.fixture(scope="module")
def websockets_server() -> Iterator[WebsocketsServer]:
    server = WebsocketsServer()
    server.start()
    yield server
    server.stop()


def test_ws_echo_from_stdin(hypercorn_http: ServerInfo) -> None:
    done = run_cli("ws", _ws_url(hypercorn_http, "/echo"), stdin=b"hello\n")
    assert done.returncode == 0, done.stderr
    assert done.stdout == b"hello\n"
    assert done.stderr == b""
    binary = run_cli("ws", "-b", _ws_url(hypercorn_http, "/echo"), stdin=b"hi\nthere\n")
    assert binary.returncode == 0, binary.stderr
    assert binary.stdout == b"6869\n7468657265\n"


def test_ws_over_tls_is_http2(hypercorn_https: ServerInfo, ca_path: str) -> None:
    url = _ws_url(hypercorn_https, "/echo")
    done = run_cli("ws", "-v", "--verify", ca_path, url, stdin=b"hello\nagain\n")
    assert done.returncode == 0, done.stderr
    assert done.stdout == b"hello\nagain\n"
    err = done.stderr.decode()
    assert err.startswith("CONNECT /echo HTTP/2\n:protocol: websocket\n")
    assert "\nHTTP/2 200" in err
    assert "\nHTTP version: HTTP/2\n" in err
    assert "\nExtensions: permessage-deflate" in err
    forced = run_cli("ws", "-v", "--http1.1", "--verify", ca_path, url, stdin=b"x\n")
    assert forced.returncode == 0, forced.stderr
    assert forced.stdout == b"x\n"
    assert "\nHTTP version: HTTP/1.1\n" in forced.stderr.decode()
    untrusted = run_cli("ws", url, stdin=b"x\n")
    assert untrusted.returncode == 7
    assert untrusted.stderr.decode().startswith("webwire: TLS certificate verify failed for ")


def test_ws_refused_handshake(websockets_server: WebsocketsServer) -> None:
    url = f"{websockets_server.url}/forbidden"
    done = run_cli("ws", url, stdin=b"x\n")
    assert done.returncode == 4
    assert done.stdout == b""
    expected = b"webwire: the server rejected the WebSocket handshake: HTTP 403 Forbidden\n"
    assert done.stderr == expected
    verbose = run_cli("ws", "-v", url, stdin=b"x\n")
    assert verbose.returncode == 4
    err = verbose.stderr.decode()
    assert err.startswith("HTTP 403\n")
    assert FORBIDDEN_BODY in err
    refused = run_cli("ws", f"ws://127.0.0.1:{_closed_port()}/", stdin=b"x\n")
    assert refused.returncode == 6
    assert refused.stderr.decode().startswith("webwire: connection refused by 127.0.0.1:")


def test_ws_server_closes(websockets_server: WebsocketsServer) -> None:
    normal = run_cli("ws", f"{websockets_server.url}/close/1000/done", stdin=b"")
    assert (normal.returncode, normal.stdout, normal.stderr) == (0, b"", b"")
    failed = run_cli("ws", f"{websockets_server.url}/close/4000/bye", stdin=b"")
    assert failed.returncode == 1
    assert failed.stderr == b"webwire: the server closed the connection with code 4000 (bye)\n"


def test_ws_options_reach_the_server(websockets_server: WebsocketsServer) -> None:
    done = run_cli(
        "ws", "-v", "--subprotocol", "chat", f"{websockets_server.url}/subprotocol",
        stdin=b"hello\n",
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout == b"chat\nhello\n"
    assert "\nSubprotocol: chat\n" in done.stderr.decode()
    headers = run_cli(
        "ws", "--once", "-H", "X-Token: abc", "--origin", "https://app.example",
        "--no-compression", f"{websockets_server.url}/headers", stdin=b"",
    )
    assert headers.returncode == 0, headers.stderr
    fields = [(name.lower(), value) for name, value in json.loads(headers.stdout)]
    assert ("x-token", "abc") in fields
    assert ("origin", "https://app.example") in fields
    assert "sec-websocket-extensions" not in dict(fields)


def _default_sigint() -> None:
    """In the child, before Python starts: SIGINT back to its default, so
    that the child's Python turns it into KeyboardInterrupt even when the
    test run itself ignores SIGINT (a shell starts background jobs so)."""
    import signal

    signal.signal(signal.SIGINT, signal.SIG_DFL)


def _ws_on_terminal(url: str, lines: list[tuple[bytes | int, str]]) -> tuple[int, str]:
    """Run ``webwire ws URL`` with standard input, output and error on a
    pseudo-terminal; for each ``(typed, expected)`` pair, type ``typed``
    (once the prompt is shown; an int is a signal sent to the command) and
    wait until ``expected`` appears.

    Returns:
        The exit status and the terminal's text, colours removed.
    """
    import pty
    import select
    import time

    main_fd, child_fd = pty.openpty()
    environment = {
        key: value
        for key, value in os.environ.items()
        if key.lower() not in _PROXY_VARIABLES and key not in ("NO_COLOR", "FORCE_COLOR")
    }
    environment["PYTHONPATH"] = str(SRC)
    environment["TERM"] = "xterm-256color"
    environment["COLUMNS"] = "100"
    process = subprocess.Popen(
        [sys.executable, "-m", "webwire", "ws", url],
        stdin=child_fd,
        stdout=child_fd,
        stderr=child_fd,
        env=environment,
        preexec_fn=_default_sigint,
    )
    os.close(child_fd)
    output = bytearray()

    def plain() -> str:
        return re.sub(r"\x1b\[[0-9;?]*[a-zA-Z]", "", output.decode("utf-8", "replace"))

    def read_until(expected: str) -> None:
        deadline = time.monotonic() + 30
        while expected not in plain():
            assert time.monotonic() < deadline, f"{expected!r} not shown in {plain()!r}"
            ready, _, _ = select.select([main_fd], [], [], 0.5)
            if ready:
                try:
                    output.extend(os.read(main_fd, 65536))
                except OSError:  # EIO: the child side is closed
                    break
        assert expected in plain(), plain()

    try:
        for typed, expected in lines:
            if isinstance(typed, int):
                read_until("> ")
                process.send_signal(typed)
            elif typed:
                read_until("> ")
                os.write(main_fd, typed)
            read_until(expected)
        status = process.wait(timeout=30)
        while True:  # what is left on the terminal
            ready, _, _ = select.select([main_fd], [], [], 0.2)
            if not ready:
                break
            try:
                data = os.read(main_fd, 65536)
            except OSError:
                break
            if not data:
                break
            output.extend(data)
    finally:
        os.close(main_fd)
        if process.poll() is None:
            process.kill()
            process.wait()
    return status, plain()


@pytest.mark.skipif(sys.platform == "win32", reason="pseudo-terminals are POSIX")
def test_ws_interactive(hypercorn_http: ServerInfo) -> None:
    status, text = _ws_on_terminal(
        _ws_url(hypercorn_http, "/echo"),
        [
            (b"hello there\n", "< hello there"),
            (b"/ping abc\n", " ms"),
            (b"/binary 68 69\n", "< [binary, 2 bytes] 68 69"),
            (b"//slash\n", "< /slash"),
            (b"/nonsense\n", "unknown command /nonsense"),
            (b"/quit\n", "connection closed: 1000"),
        ],
    )
    assert status == 0, text
    assert re.search(r"\[\d\d:\d\d:\d\d\.\d{3}\] > hello there", text), text
    assert re.search(r"\[\d\d:\d\d:\d\d\.\d{3}\] < hello there", text), text
    assert re.search(r"\* pong in \d+\.\d\d ms", text), text
    assert "> [binary, 2 bytes] 68 69" in text


@pytest.mark.skipif(sys.platform == "win32", reason="pseudo-terminals are POSIX")
def test_ws_interactive_closing(
    hypercorn_http: ServerInfo, websockets_server: WebsocketsServer
) -> None:
    # Ctrl-D closes normally.
    status, text = _ws_on_terminal(
        _ws_url(hypercorn_http, "/echo"), [(b"x\n", "< x"), (b"\x04", "connection closed: 1000")]
    )
    assert status == 0, text
    # /close with a code and reason.
    status, text = _ws_on_terminal(
        _ws_url(hypercorn_http, "/echo"), [(b"/close 4001 see you\n", "closed: 4001 (see you)")]
    )
    assert status == 0, text
    # Ctrl-C (SIGINT) at the prompt: closed with 1001 (going away), status 130.
    import signal

    status, text = _ws_on_terminal(
        _ws_url(hypercorn_http, "/echo"), [(b"y\n", "< y"), (signal.SIGINT, "")]
    )
    assert status == 130, text
    # The server closing ends the session while the prompt waits.
    status, text = _ws_on_terminal(
        f"{websockets_server.url}/close/4000/bye",
        [(b"", "connection closed by the server: 4000 (bye)")],
    )
    assert status == 1, text
    assert "the server closed the connection with code 4000 (bye)" in text


def test_ws_through_proxies(
    hypercorn_http: ServerInfo,
    hypercorn_https: ServerInfo,
    ca_path: str,
    socks_proxies: SocksProxies,  # noqa: F811
    http_proxy: Any,  # noqa: F811
) -> None:
    socks = run_cli(
        "ws", "--proxy", socks_proxies.socks5.url, _ws_url(hypercorn_http, "/echo"),
        stdin=b"via socks\n",
    )
    assert socks.returncode == 0, socks.stderr
    assert socks.stdout == b"via socks\n"
    tunnel = run_cli(
        "ws", "-v", "--proxy", http_proxy.url, "--verify", ca_path,
        _ws_url(hypercorn_https, "/echo"), stdin=b"via CONNECT\n",
    )
    assert tunnel.returncode == 0, tunnel.stderr
    assert tunnel.stdout == b"via CONNECT\n"
    # ws:// through an HTTP proxy goes through a CONNECT tunnel of its own.
    plain = run_cli(
        "ws", "--proxy", http_proxy.url, _ws_url(hypercorn_http, "/echo"), stdin=b"x\n"
    )
    assert plain.returncode == 0, plain.stderr
    assert plain.stdout == b"x\n"


@pytest.mark.skipif(sys.platform == "win32", reason="POSIX signals")
def test_ws_interrupted(hypercorn_http: ServerInfo) -> None:
    import signal

    environment = dict(os.environ, PYTHONPATH=str(SRC))
    process = subprocess.Popen(
        [sys.executable, "-m", "webwire", "ws", _ws_url(hypercorn_http, "/echo")],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env=environment,
        preexec_fn=_default_sigint,
    )
    assert process.stdin is not None and process.stdout is not None
    try:
        process.stdin.write(b"before\n")
        process.stdin.flush()
        assert process.stdout.readline() == b"before\n"  # connected, exchanging
        process.send_signal(signal.SIGINT)
        _, err = process.communicate(timeout=30)
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
    assert process.returncode == 130
    assert err == b"webwire: interrupted\n"


# -- HTTP/3 (--http3, --http3-only) ---------------------------------------------------------


def test_http3_verbose_end_to_end(h3_hypercorn: Any) -> None:
    """``--http3 -v``: the URL's origin is tried over HTTP/3 first (QUIC on
    its own port), the version and the QUIC handshake time are printed."""
    done = run_cli("--http3", "-v", "--verify", h3_hypercorn.ca_path, f"{h3_hypercorn.url}/json")
    out = done.stdout.decode()
    assert done.returncode == 0, done.stderr
    assert "GET /json HTTP/3" in out
    assert "HTTP/3 200" in out
    assert "HTTP version: HTTP/3" in out
    assert re.search(r"QUIC handshake time: \d+\.\d{6}s", out)


def test_http3_falls_back_to_tcp(
    hypercorn_https: ServerInfo, capsys: pytest.CaptureFixture[str]
) -> None:
    """No HTTP/3 on the server's UDP port: ``--http3`` goes over TCP."""
    url = f"{hypercorn_https.url}/json"
    assert main(["--http3", "-p", "m", "--verify", hypercorn_https.ca_path, url]) == 0
    out = capsys.readouterr().out
    assert "HTTP version: HTTP/2" in out
    assert "QUIC" not in out


def test_http3_only(
    aioquic_h3: Any, hypercorn_https: ServerInfo, capsys: pytest.CaptureFixture[str]
) -> None:
    url = f"{aioquic_h3.url}/json"
    assert main(["--http3-only", "-p", "hm", "--verify", aioquic_h3.ca_path, url]) == 0
    out = capsys.readouterr().out
    assert out.startswith("HTTP/3 200")
    assert "HTTP version: HTTP/3" in out
    # no HTTP/3 there, and no fallback: a connection error (exit status 6)
    url = f"{hypercorn_https.url}/json"
    status = main(
        ["--http3-only", "--timeout", "2", "--verify", hypercorn_https.ca_path, url]
    )
    assert status in (2, 6)  # ICMP unreachable: 6; datagrams dropped: timeout, 2
    assert "webwire:" in capsys.readouterr().err


def test_http3_options_are_checked(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["--http3", "http://127.0.0.1:1/"]) == 2
    assert "--http3 needs an https:// URL" in capsys.readouterr().err
    assert main(["--http3-only", "--http2", "https://127.0.0.1:1/"]) == 2
    assert "not allowed with" in capsys.readouterr().err


def test_ws_over_http3(aioquic_h3: Any) -> None:
    """``webwire ws --http3``: the handshake is an extended CONNECT over
    HTTP/3 (RFC 9220) to the aioquic server."""
    url = str(aioquic_h3.url.with_scheme("wss")) + "/ws"
    done = run_cli("ws", "-v", "--http3", "--verify", aioquic_h3.ca_path, url, stdin=b"hi\n")
    assert done.returncode == 0, done.stderr
    assert done.stdout == b"hi\n"
    err = done.stderr.decode()
    assert err.startswith("CONNECT /ws HTTP/3\n:protocol: websocket\n")
    assert "\nHTTP version: HTTP/3\n" in err
