"""Client(app=...) and WSGITransport against a plain PEP 3333 application,
wrapped in ``wsgiref.validate.validator`` (which checks the environ, the
start_response use and that the response iterable is closed)."""

from __future__ import annotations

import io
import json
import sys
import threading
from collections.abc import Iterable, Iterator
from typing import Any
from wsgiref.validate import validator

import pytest

import webwire

BASE = "http://testserver"


class Probe:
    """What the app saw."""

    def __init__(self) -> None:
        self.produced = 0
        self.closed = threading.Event()
        self.input_reads: list[int] = []


def make_app(probe: Probe) -> Any:
    def app(environ: dict[str, Any], start_response: Any) -> Iterable[bytes]:
        path = environ["PATH_INFO"]
        if path == "/echo":
            length = environ.get("CONTENT_LENGTH")
            body = environ["wsgi.input"].read(int(length)) if length else b""
            data = {
                "method": environ["REQUEST_METHOD"],
                "script_name": environ["SCRIPT_NAME"],
                "path_info": environ["PATH_INFO"],
                "query": environ["QUERY_STRING"],
                "content_type": environ.get("CONTENT_TYPE"),
                "content_length": environ.get("CONTENT_LENGTH"),
                "server": [environ["SERVER_NAME"], environ["SERVER_PORT"]],
                "protocol": environ["SERVER_PROTOCOL"],
                "scheme": environ["wsgi.url_scheme"],
                "remote_addr": environ["REMOTE_ADDR"],
                "http": {k: v for k, v in environ.items() if k.startswith("HTTP_")},
                "body": body.decode("latin-1"),
            }
            payload = json.dumps(data).encode()
            start_response(
                "200 OK",
                [("Content-Type", "application/json"), ("Content-Length", str(len(payload)))],
            )
            return [payload]
        if path == "/path":
            start_response("200 OK", [("Content-Type", "text/plain; charset=latin-1")])
            return [environ["PATH_INFO"].encode("latin-1")]
        if path == "/lines":
            # Reads the (streamed, length-less) body line by line.
            stream = environ["wsgi.input"]
            lines = []
            while True:
                line = stream.readline()
                if not line:
                    break
                lines.append(line.decode())
            start_response("200 OK", [("Content-Type", "application/json")])
            return [json.dumps(lines).encode()]
        if path == "/endless":
            start_response("200 OK", [("Content-Type", "text/plain")])
            return Endless(probe)
        if path == "/write":
            write = start_response("200 OK", [("Content-Type", "text/plain")])
            write(b"written-")
            return [b"", b"returned"]
        if path == "/boom":
            raise ValueError("boom from the app")
        if path == "/exc-info":
            start_response("200 OK", [("Content-Type", "text/plain")])
            try:
                raise LookupError("late failure")
            except LookupError:
                start_response(
                    "500 Internal Server Error",
                    [("Content-Type", "text/plain")],
                    sys.exc_info(),
                )
            return [b"handled"]
        start_response("404 Not Found", [("Content-Type", "text/plain")])
        return [b"not found"]

    return app


class Endless:
    """An endless WSGI response iterable with a ``close()``."""

    def __init__(self, probe: Probe) -> None:
        self.probe = probe

    def __iter__(self) -> Iterator[bytes]:
        return self

    def __next__(self) -> bytes:
        n = self.probe.produced
        self.probe.produced += 1
        return f"{n}\n".encode()

    def close(self) -> None:
        self.probe.closed.set()


@pytest.fixture
def probe() -> Probe:
    return Probe()


@pytest.fixture
def client(probe: Probe) -> Iterator[webwire.Client]:
    with webwire.Client(app=validator(make_app(probe)), base_url=BASE) as client:
        yield client


def test_environ(client: webwire.Client) -> None:
    response = client.post(
        f"{BASE}/echo?b=2&a=%20x",
        content=b"hello app",
        headers=[("X-Custom", "one"), ("X-Custom", "two"), ("Content-Type", "text/plain")],
    )
    assert response.status_code == 200
    assert response.reason_phrase == "OK"
    data = response.json()
    assert data["method"] == "POST"
    assert data["script_name"] == ""
    assert data["path_info"] == "/echo"
    assert data["query"] == "b=2&a=%20x"
    assert data["content_type"] == "text/plain"
    assert data["content_length"] == "9"
    assert data["server"] == ["testserver", "80"]
    assert data["protocol"] == "HTTP/1.1"
    assert data["scheme"] == "http"
    assert data["remote_addr"] == "127.0.0.1"
    assert data["http"]["HTTP_X_CUSTOM"] == "one, two"
    assert data["http"]["HTTP_HOST"] == "testserver"
    assert "HTTP_CONTENT_TYPE" not in data["http"]
    assert data["body"] == "hello app"


def test_https_and_options(probe: Probe) -> None:
    transport = webwire.WSGITransport(
        validator(make_app(probe)), script_name="/app", remote_addr="10.0.0.9"
    )
    with webwire.Client(transport=transport) as client:
        data = client.get("https://example.org:8443/app/echo").json()
    assert data["scheme"] == "https"
    assert data["server"] == ["example.org", "8443"]
    assert data["script_name"] == "/app"
    assert data["path_info"] == "/echo"
    assert data["remote_addr"] == "10.0.0.9"


def test_path_info_latin1(client: webwire.Client) -> None:
    # PEP 3333: the percent-decoded bytes, as latin-1 text.
    response = client.get("/%70ath")
    assert response.text == "/path"
    response = client.get("/%C3%A9t%C3%A9")
    assert response.status_code == 404


def test_path_info_bytes_latin1(probe: Probe) -> None:
    seen: list[str] = []

    def app(environ: dict[str, Any], start_response: Any) -> list[bytes]:
        seen.append(environ["PATH_INFO"])
        start_response("204 No Content", [])
        return []

    with webwire.Client(app=validator(app)) as client:
        client.get("http://h/a%20b/%C3%A9")
    assert seen == ["/a b/\xc3\xa9"]
    assert seen[0].encode("latin-1").decode("utf-8") == "/a b/é"


def test_streamed_request_body_read_lazily(client: webwire.Client) -> None:
    pulled: list[int] = []

    def body() -> Iterator[bytes]:
        for i, part in enumerate((b"first\nsec", b"ond\n", b"third")):
            pulled.append(i)
            yield part

    response = client.post("/lines", content=body())
    assert response.json() == ["first\n", "second\n", "third"]
    assert pulled == [0, 1, 2]


def test_write_callable(client: webwire.Client) -> None:
    assert client.get("/write").text == "written-returned"


def test_response_streamed_and_closed(client: webwire.Client, probe: Probe) -> None:
    with client.stream("GET", "/endless") as response:
        lines = []
        for line in response.iter_lines():
            lines.append(line)
            if len(lines) == 3:
                break
        # Consumed lazily: only a few parts were produced.
        assert probe.produced < 10
    assert lines == ["0", "1", "2"]
    assert probe.closed.is_set()


def test_app_exception_propagates(client: webwire.Client) -> None:
    with pytest.raises(ValueError, match="boom from the app"):
        client.get("/boom")


def test_app_exception_as_500(probe: Probe) -> None:
    with webwire.Client(app=make_app(probe), raise_app_exceptions=False) as client:
        response = client.get("http://h/boom")
    assert response.status_code == 500


def test_exc_info_replaces_head(client: webwire.Client) -> None:
    response = client.get("/exc-info")
    assert response.status_code == 500
    assert response.text == "handled"


def test_exc_info_after_head_sent_reraises() -> None:
    def app(environ: dict[str, Any], start_response: Any) -> Iterator[bytes]:
        start_response("200 OK", [])
        yield b"first part"
        try:
            raise LookupError("too late")
        except LookupError:
            start_response("500 Internal Server Error", [], sys.exc_info())
        yield b"never"

    with webwire.Client(app=app) as client:
        with pytest.raises(LookupError, match="too late"):
            client.get("http://h/")
    with webwire.Client(app=app, raise_app_exceptions=False) as client:
        with pytest.raises(webwire.RemoteProtocolError):
            client.get("http://h/")


def test_no_start_response() -> None:
    def app(environ: dict[str, Any], start_response: Any) -> list[bytes]:
        return []

    with webwire.Client(app=app) as client:
        with pytest.raises(webwire.RemoteProtocolError, match="start_response"):
            client.get("http://h/")


def test_wsgi_errors_stream() -> None:
    errors = io.StringIO()

    def app(environ: dict[str, Any], start_response: Any) -> list[bytes]:
        environ["wsgi.errors"].write("logged\n")
        start_response("200 OK", [("Content-Type", "text/plain")])
        return [b""]

    with webwire.Client(transport=webwire.WSGITransport(validator(app), wsgi_errors=errors)) as c:
        assert c.get("http://h/").content == b""
    assert errors.getvalue() == "logged\n"


def test_many_threads(client: webwire.Client) -> None:
    results: dict[int, Any] = {}

    def run(i: int) -> None:
        results[i] = client.get("/echo", params={"i": str(i)}).json()["query"]

    threads = [threading.Thread(target=run, args=(i,)) for i in range(16)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)
    assert results == {i: f"i={i}" for i in range(16)}


def test_bad_arguments(probe: Probe) -> None:
    app = make_app(probe)

    async def asgi_app(scope: Any, receive: Any, send: Any) -> None:
        pass

    with pytest.raises(ValueError, match="either app= or transport="):
        webwire.Client(app=app, transport=webwire.WSGITransport(app))
    with pytest.raises(TypeError, match="AsyncClient"):
        webwire.Client(app=asgi_app)
    with pytest.raises(TypeError, match="ASGI"):
        webwire.WSGITransport(asgi_app)
    with pytest.raises(TypeError, match="Client\\(app="):
        webwire.AsyncClient(app=app)


def test_head_has_no_body(client: webwire.Client) -> None:
    response = client.head("/echo")
    assert response.status_code == 200
    assert response.headers["Content-Type"] == "application/json"
    assert response.content == b""
