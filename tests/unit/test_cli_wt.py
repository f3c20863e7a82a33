"""``webwire wt``: parsing of its command line, and the command in line
mode and at the prompt against a fake session (stream and datagram echo)."""

from __future__ import annotations

import io
from typing import Any

import pytest

from webwire import InvalidURL
from webwire._backends import get_backend
from webwire._exceptions import ConnectError, SessionClosed
from webwire.cli import main
from webwire.cli._parser import UsageError
from webwire.cli._wt import parse_wt, run_wt_command, wt_url


class Stream:
    def __init__(self, reply: Any) -> None:
        self.reply = reply
        self.data = b""
        self.ended = False

    async def write(self, data: bytes, end_stream: bool = False) -> None:
        self.data += data
        self.ended = end_stream

    async def read_all(self, max_size: int = 1 << 20) -> bytes:
        if self.reply is None:
            await get_backend("sync").sleep(3600)  # never answers
        reply: bytes = self.reply(self.data)[:max_size]
        return reply


class Datagrams:
    max_datagram_size = 1200

    def __init__(self) -> None:
        self.queue: list[bytes] = []
        self.timeouts: list[float | None] = []

    async def send(self, data: bytes) -> None:
        self.queue.append(b"dg:" + data)

    async def receive(self, timeout: float | None = None) -> bytes:
        self.timeouts.append(timeout)
        if not self.queue:
            from webwire import ReadTimeout

            raise ReadTimeout("no datagram")
        return self.queue.pop(0)


class Session:
    def __init__(self, reply: Any) -> None:
        self.reply = reply
        self.datagrams = Datagrams()
        self.streams: list[Stream] = []
        self.closed = False

    @property
    def is_ready(self) -> bool:
        return not self.closed

    @property
    def is_closed(self) -> bool:
        return self.closed

    async def close(self, code: int = 0, reason: str = "") -> None:
        self.closed = True

    async def wait_closed(self) -> None:
        return None

    async def create_bidirectional_stream(self) -> Stream:
        if self.closed:
            raise SessionClosed("the session is closed")
        stream = Stream(self.reply)
        self.streams.append(stream)
        return stream


class Opener:
    def __init__(self, reply: Any = lambda data: data, fail: Exception | None = None) -> None:
        self.reply = reply
        self.fail = fail
        self.calls: list[dict[str, Any]] = []
        self.session: Session | None = None

    async def __call__(self, url: str, **options: Any) -> Session:
        self.calls.append({"url": url, **options})
        if self.fail is not None:
            raise self.fail
        self.session = Session(self.reply)
        return self.session


def run(argv: list[str], stdin: bytes, opener: Opener, **kw: Any) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    status = run_wt_command(
        argv, stdin=io.BytesIO(stdin), stdout=out, stderr=err, _opener=opener, **kw
    )
    return status, out.getvalue(), err.getvalue()


# --- parsing ------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("https://example.org/wt", "https://example.org/wt"),
        ("example.org:4433/echo", "https://example.org:4433/echo"),
        (":4433/echo", "https://localhost:4433/echo"),
    ],
)
def test_wt_url(text: str, expected: str) -> None:
    assert wt_url(text) == expected


@pytest.mark.parametrize("text", ["http://example.org/", "wss://h/", "https://h/#f"])
def test_wt_url_rejects(text: str) -> None:
    with pytest.raises(InvalidURL):
        wt_url(text)


def test_parse_defaults_and_options(tmp_path: Any) -> None:
    spec = parse_wt(["https://h/wt"])
    assert (spec.verify, spec.datagram, spec.timeout, spec.wait) == (True, False, 10.0, 5.0)
    assert spec.headers == []
    ca = tmp_path / "ca.pem"
    ca.write_text("x")
    spec = parse_wt(
        ["h/wt", "--datagram", "-H", "Authorization: Bearer t", "--cacert", str(ca),
         "--timeout", "3", "--wait", "0.5", "--max-size", "10", "-v"]
    )
    assert spec.datagram and spec.verbose
    assert spec.headers == [("Authorization", "Bearer t")]
    assert spec.verify == str(ca)
    assert (spec.timeout, spec.wait, spec.max_size) == (3.0, 0.5, 10)
    assert parse_wt(["h/", "-k"]).verify is False


@pytest.mark.parametrize(
    "argv",
    [
        ["h/", "-H", "no colon"],
        ["h/", "-H", ":path: /x"],
        ["h/", "--timeout", "0"],
        ["h/", "--wait", "-1"],
        ["h/", "--max-size", "0"],
        ["h/", "-k", "--cacert", "/x"],
        ["h/", "--bogus"],
    ],
)
def test_parse_errors(argv: list[str]) -> None:
    with pytest.raises(UsageError):
        parse_wt(argv)


def test_usage_errors_exit_2() -> None:
    status, _, err = run(["h/", "--timeout", "0"], b"", Opener())
    assert status == 2 and "webwire wt: error" in err
    status, _, err = run(["ftp://h/"], b"", Opener())
    assert status == 2 and "https" in err


# --- line mode ------------------------------------------------------------------------


def test_line_mode_streams() -> None:
    opener = Opener()
    status, out, err = run(
        ["https://h:4433/echo", "-k", "-H", "X-A: 1", "--timeout", "4"], b"hello\nworld\n", opener
    )
    assert (status, out, err) == (0, "hello\nworld\n", "")
    call = opener.calls[0]
    assert call["url"] == "https://h:4433/echo"
    assert call["verify"] is False
    assert call["timeout"] == 4.0
    assert call["headers"]["x-a"] == "1"
    session = opener.session
    assert session is not None and session.closed  # closed on exit
    assert [s.data for s in session.streams] == [b"hello", b"world"]
    assert all(s.ended for s in session.streams)


def test_verbose_and_ca_bundle(tmp_path: Any) -> None:
    ca = tmp_path / "ca.pem"
    ca.write_text("x")
    opener = Opener()
    status, out, err = run(["https://h/", "-v", "--cacert", str(ca)], b"x\n", opener)
    assert (status, out) == (0, "x\n")
    assert "* WebTransport session with https://h/" in err
    assert "* largest datagram: 1200 bytes" in err
    assert opener.calls[0]["verify"] == str(ca)


def test_line_mode_binary_reply_is_hex() -> None:
    status, out, _ = run(["https://h/"], b"x\n", Opener(reply=lambda data: b"\xff\x00"))
    assert (status, out) == (0, "ff00\n")


def test_line_mode_datagrams() -> None:
    opener = Opener()
    status, out, err = run(["https://h/", "--datagram", "--wait", "2"], b"a\nb\n", opener)
    assert (status, out, err) == (0, "dg:a\ndg:b\n", "")
    assert opener.session is not None
    assert opener.session.datagrams.timeouts == [2.0, 2.0]
    assert opener.session.streams == []


def test_line_mode_reply_timeout() -> None:
    status, _, err = run(["https://h/", "--wait", "0.01"], b"x\n", Opener(reply=None))
    assert status == 2
    assert "no reply within 0.01 s" in err


def test_connect_failure_is_classified() -> None:
    status, _, err = run(["https://h/"], b"x\n", Opener(fail=ConnectError("refused by h")))
    assert status == 6
    assert err.startswith("webwire: ")


def test_session_closed_mid_way() -> None:
    opener = Opener()

    def reply(data: bytes) -> bytes:
        assert opener.session is not None
        opener.session.closed = True
        return data

    opener.reply = reply
    status, out, err = run(["https://h/"], b"one\ntwo\n", opener)
    assert out == "one\n"
    assert status == 1
    assert "closed" in err


# --- the prompt -----------------------------------------------------------------------


def test_interactive(monkeypatch: pytest.MonkeyPatch) -> None:
    lines = iter(["hi", "/datagram dg", "//slash", "/bogus", "/help", "/quit"])
    monkeypatch.setattr("builtins.input", lambda prompt="": next(lines))
    opener = Opener()
    status, out, _ = run(["https://h/"], b"", opener, interactive=True)
    assert status == 0
    assert "< hi" in out
    assert "< dg:dg" in out
    assert "< /slash" in out
    assert "unknown command /bogus" in out
    assert "interactive commands" in out


def test_interactive_end_of_input(monkeypatch: pytest.MonkeyPatch) -> None:
    def eof(prompt: str = "") -> str:
        raise EOFError

    monkeypatch.setattr("builtins.input", eof)
    status, _, _ = run(["https://h/"], b"", Opener(), interactive=True)
    assert status == 0


def test_main_dispatches_wt(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["wt", "--timeout", "0", "https://h/"]) == 2
    assert "webwire wt: error" in capsys.readouterr().err
    assert main(["wt", "--help"]) == 0
    assert "WebTransport" in capsys.readouterr().out
