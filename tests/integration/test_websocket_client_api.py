"""WebSockets opened from an HTTP client, ``client.websocket(url)``, on
``AsyncClient`` (asyncio and trio) and ``Client`` (blocking): the
handshake shares the client's cookies, base URL, default headers,
authentication, TLS settings and proxy. Also ``send_json`` /
``receive_json``.

The server is the ``websockets`` library's: each connection first gets a
JSON report of its handshake (path and header fields), then echoes; its
handshake response sets a cookie.
"""

from __future__ import annotations

import asyncio
import base64
import json
import ssl
from collections.abc import AsyncIterator, Callable, Coroutine, Iterator
from contextlib import asynccontextmanager
from typing import Any

import pytest
from proxies import ProxyInfo, http_proxy, http_proxy_auth  # noqa: F401  (fixtures)
from ws_app import WebsocketsServer

import webwire
from conftest import TLSFiles
from webwire import JSONDecodingError
from webwire.websocket import ConnectionRejected


async def _report(ws: Any) -> None:
    await ws.send(
        json.dumps(
            {
                "path": ws.request.path,
                "headers": [list(item) for item in ws.request.headers.raw_items()],
            }
        )
    )
    async for message in ws:
        await ws.send(message)


DIGEST_REALM = "ws-realm"
DIGEST_NONCE = "n0nce"


def _digest_check(connection: Any, request: Any) -> Any:
    """``/digest``: Digest access authentication (RFC 7616, MD5, qop=auth)
    checked by the server; a 401 challenge when missing or wrong."""
    import hashlib
    import re

    if not request.path.startswith("/digest"):
        return None
    header = request.headers.get("Authorization", "")
    params = dict(re.findall(r'(\w+)="?([^",]*)"?', header))
    if header.startswith("Digest ") and params.get("nonce") == DIGEST_NONCE:

        def md5(text: str) -> str:
            return hashlib.md5(text.encode()).hexdigest()

        ha1 = md5(f"{params.get('username')}:{DIGEST_REALM}:secret")
        ha2 = md5(f"GET:{params.get('uri')}")
        expected = md5(
            f"{ha1}:{DIGEST_NONCE}:{params.get('nc')}:{params.get('cnonce')}:auth:{ha2}"
        )
        if params.get("response") == expected and params.get("username") == "digestuser":
            return None
    response = connection.respond(401, "who are you?\n")
    response.headers["WWW-Authenticate"] = (
        f'Digest realm="{DIGEST_REALM}", nonce="{DIGEST_NONCE}", qop="auth", algorithm=MD5'
    )
    return response


def _set_cookie(connection: Any, request: Any, response: Any) -> Any:
    if response.status_code == 101:
        response.headers["Set-Cookie"] = "session=abc123; Path=/"
    return response


class ReportServer(WebsocketsServer):
    """The websockets server with the handler above."""

    async def _main(self, sock: Any) -> None:
        from websockets.asyncio.server import serve

        self._loop = asyncio.get_running_loop()
        self._stop = asyncio.Event()
        async with serve(
            _report,
            sock=sock,
            ssl=self._ssl,
            process_request=_digest_check,
            process_response=_set_cookie,
            ping_interval=None,
        ):
            self._ready.set()
            await self._stop.wait()


@pytest.fixture(scope="module")
def report_server() -> Iterator[ReportServer]:
    server = ReportServer()
    server.start()
    yield server
    server.stop()


@pytest.fixture(scope="module")
def report_tls_server(tls_files: TLSFiles) -> Iterator[ReportServer]:
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(tls_files.cert_path, tls_files.key_path)
    server = ReportServer(ssl_context=context)
    server.start()
    yield server
    server.stop()


@pytest.fixture(autouse=True)
def _no_proxy_env(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("http_proxy", "https_proxy", "all_proxy", "no_proxy"):
        monkeypatch.delenv(name, raising=False)
        monkeypatch.delenv(name.upper(), raising=False)


# -- one async face over AsyncClient and Client ---------------------------------------


class Ws:
    def __init__(self, ws: Any, is_async: bool) -> None:
        self.ws = ws
        self.is_async = is_async

    async def _call(self, name: str, *args: Any) -> Any:
        result = getattr(self.ws, name)(*args)
        return await result if self.is_async else result

    async def send(self, message: Any) -> None:
        await self._call("send", message)

    async def recv(self) -> Any:
        return await self._call("recv")

    async def send_json(self, obj: Any) -> None:
        await self._call("send_json", obj)

    async def receive_json(self) -> Any:
        return await self._call("receive_json")

    async def report(self) -> tuple[str, dict[str, str]]:
        report = await self.receive_json()
        return report["path"], {name.lower(): value for name, value in report["headers"]}


class WsClient:
    def __init__(self, is_async: bool, **kwargs: Any) -> None:
        self.is_async = is_async
        self.kwargs = kwargs
        self.client: Any = None

    @asynccontextmanager
    async def open(self) -> AsyncIterator[WsClient]:
        if self.is_async:
            async with webwire.AsyncClient(**self.kwargs) as client:
                self.client = client
                yield self
        else:
            with webwire.Client(**self.kwargs) as client:
                self.client = client
                yield self

    @asynccontextmanager
    async def websocket(self, url: str, **options: Any) -> AsyncIterator[Ws]:
        if self.is_async:
            async with self.client.websocket(url, **options) as ws:
                yield Ws(ws, True)
        else:
            with self.client.websocket(url, **options) as ws:
                yield Ws(ws, False)


Scenario = Callable[[Callable[..., WsClient], "Servers"], Coroutine[Any, Any, None]]


class Servers:
    def __init__(
        self, plain: ReportServer, tls: ReportServer, ca_path: str, proxy: str, proxy_auth: str
    ) -> None:
        self.plain = plain
        self.tls = tls
        self.ca_path = ca_path
        self.proxy = proxy
        self.proxy_auth = proxy_auth  # with credentials

    @property
    def http(self) -> str:
        return f"http://127.0.0.1:{self.plain.port}"


# -- scenarios ---------------------------------------------------------------------


async def s_cookies(make: Callable[..., WsClient], s: Servers) -> None:
    async with make(cookies={"pre": "one"}).open() as c:
        async with c.websocket(s.plain.url + "/a") as ws:
            _, headers = await ws.report()
            assert headers["cookie"] == "pre=one"
        # The handshake response's Set-Cookie went into the jar...
        assert c.client.cookies.get("session") == "abc123"
        # ... and the next handshake (and request) sends it.
        async with c.websocket(s.plain.url + "/b") as ws:
            _, headers = await ws.report()
            assert sorted(headers["cookie"].split("; ")) == ["pre=one", "session=abc123"]
    # A cookie of another host is not sent.
    jar = webwire.Cookies()
    jar.set("other", "x", domain="example.com")
    async with make(cookies=jar).open() as c:
        async with c.websocket(s.plain.url + "/") as ws:
            _, headers = await ws.report()
            assert "other=x" not in headers.get("cookie", "")


async def s_base_url(make: Callable[..., WsClient], s: Servers) -> None:
    async with make(base_url=s.http + "/api/v1").open() as c:
        async with c.websocket("/room?id=7") as ws:
            path, headers = await ws.report()
            assert path == "/api/v1/room?id=7"
            assert headers["host"] == f"127.0.0.1:{s.plain.port}"
            await ws.send("through base_url")
            assert await ws.recv() == "through base_url"
        async with c.websocket("chat") as ws:
            assert (await ws.report())[0] == "/api/v1/chat"
        # Absolute URLs are used as they are; http maps to ws.
        async with c.websocket(s.plain.url + "/abs") as ws:
            assert (await ws.report())[0] == "/abs"
        async with c.websocket(s.http + "/from-http") as ws:
            assert (await ws.report())[0] == "/from-http"
    async with make(base_url=f"https://127.0.0.1:{s.tls.port}/", verify=s.ca_path).open() as c:
        async with c.websocket("/secure") as ws:  # https -> wss
            path, _ = await ws.report()
            assert path == "/secure"
    async with make().open() as c:
        with pytest.raises(webwire.InvalidURL, match="base_url"):
            async with c.websocket("/no-base"):
                pass
        with pytest.raises(webwire.InvalidURL):
            async with c.websocket("ftp://127.0.0.1/"):
                pass


async def s_headers_and_auth(make: Callable[..., WsClient], s: Servers) -> None:
    async with make(
        headers={"User-Agent": "myagent/2", "X-Default": "d", "Keep-Alive": "timeout=5"},
        auth=("user", "pa:ss"),
    ).open() as c:
        async with c.websocket(s.plain.url + "/", additional_headers={"X-Extra": "e"}) as ws:
            _, headers = await ws.report()
    assert headers["user-agent"] == "myagent/2"
    assert headers["x-default"] == "d"
    assert headers["x-extra"] == "e"
    assert "keep-alive" not in headers
    assert "accept-encoding" not in headers
    assert headers["authorization"] == "Basic " + base64.b64encode(b"user:pa:ss").decode()
    assert headers["upgrade"] == "websocket"

    def sign(request: webwire.Request) -> webwire.Request:
        request.headers["X-Signature"] = "sig:" + request.url.path
        return request

    async with make(auth=webwire.DigestAuth("digestuser", "secret")).open() as c:
        # The handshake is answered 401; the Digest flow sends it again.
        async with c.websocket(s.plain.url + "/digest?x=1") as ws:
            path, headers = await ws.report()
            assert path == "/digest?x=1"
            assert headers["authorization"].startswith("Digest ")
    async with make(auth=webwire.DigestAuth("digestuser", "wrong")).open() as c:
        with pytest.raises(ConnectionRejected) as info:
            async with c.websocket(s.plain.url + "/digest"):
                pass
        assert info.value.status_code == 401
        assert info.value.body == b"who are you?\n"

    async with make(auth=sign).open() as c:
        async with c.websocket(s.plain.url + "/signed") as ws:
            _, headers = await ws.report()
    assert headers["x-signature"] == "sig:/signed"
    assert headers["user-agent"].startswith("webwire")


async def s_tls_and_proxy(make: Callable[..., WsClient], s: Servers) -> None:
    async with make(verify=s.ca_path).open() as c:
        async with c.websocket(s.tls.url + "/tls") as ws:
            assert (await ws.report())[0] == "/tls"
    async with make().open() as c:  # verification on: the test CA is unknown
        with pytest.raises(webwire.ConnectError):
            async with c.websocket(s.tls.url + "/tls"):
                pass
    async with make(verify=s.ca_path, proxy=s.proxy).open() as c:
        async with c.websocket(s.tls.url + "/via-proxy") as ws:
            path, _ = await ws.report()
            assert path == "/via-proxy"
            await ws.send("tunnelled")
            assert await ws.recv() == "tunnelled"
        async with c.websocket(s.plain.url + "/plain-via-proxy") as ws:
            path, _ = await ws.report()
            assert path == "/plain-via-proxy"
            await ws.send("tunnelled too")
            assert await ws.recv() == "tunnelled too"


async def s_json(make: Callable[..., WsClient], s: Servers) -> None:
    async with make().open() as c:
        async with c.websocket(s.plain.url + "/json") as ws:
            await ws.report()
            value = {"n": 1, "s": "é", "l": [1.5, None, True]}
            await ws.send_json(value)
            assert await ws.recv() == '{"n":1,"s":"é","l":[1.5,null,true]}'
            await ws.send_json(value)
            assert await ws.receive_json() == value
            await ws.send("{not json")
            with pytest.raises(JSONDecodingError):
                await ws.receive_json()
            with pytest.raises(TypeError):
                await ws.send_json({"x": object()})
            with pytest.raises(ValueError):
                await ws.send_json(float("nan"))
            await ws.send(b'{"binary": 1}')
            assert await ws.receive_json() == {"binary": 1}  # the connection stayed open


async def s_proxy_credentials(make: Callable[..., WsClient], s: Servers) -> None:
    """ws:// through a proxy that wants credentials: they go on the CONNECT
    only, never to the origin."""
    async with make(proxy=s.proxy_auth).open() as c:
        async with c.websocket(s.plain.url + "/auth-proxy") as ws:
            path, headers = await ws.report()
            assert path == "/auth-proxy"
            assert "proxy-authorization" not in headers
            await ws.send("ok")
            assert await ws.recv() == "ok"
    wrong = s.proxy_auth.replace("://", "://x", 1)
    async with make(proxy=wrong).open() as c:
        with pytest.raises(webwire.ProxyError):
            async with c.websocket(s.plain.url + "/auth-proxy"):
                pass


SCENARIOS = [
    s_cookies,
    s_base_url,
    s_headers_and_auth,
    s_tls_and_proxy,
    s_proxy_credentials,
    s_json,
]


@pytest.fixture
def servers(
    report_server: ReportServer,
    report_tls_server: ReportServer,
    ca_path: str,
    http_proxy: ProxyInfo,  # noqa: F811
    http_proxy_auth: ProxyInfo,  # noqa: F811
) -> Servers:
    return Servers(
        report_server, report_tls_server, ca_path, http_proxy.url, http_proxy_auth.with_auth()
    )


@pytest.mark.anyio
@pytest.mark.parametrize("scenario", SCENARIOS, ids=lambda f: f.__name__)
async def test_async_client(scenario: Scenario, servers: Servers) -> None:
    await scenario(lambda **kw: WsClient(True, **kw), servers)


@pytest.mark.parametrize("scenario", SCENARIOS, ids=lambda f: f.__name__)
def test_sync_client(scenario: Scenario, servers: Servers) -> None:
    from webwire._sync import run_sync

    run_sync(scenario(lambda **kw: WsClient(False, **kw), servers))


def test_client_websocket_bad_options(servers: Servers) -> None:
    with webwire.Client() as client:
        with pytest.raises(ValueError, match="client"):
            client.websocket(servers.plain.url, proxy=servers.proxy)
        with pytest.raises(TypeError, match="client="):
            client.websocket(servers.plain.url, client=client)


@pytest.mark.timeout(60)
@pytest.mark.parametrize("via_proxy", [False, True])
def test_threads_share_a_client(servers: Servers, via_proxy: bool) -> None:
    """Threads open WebSockets through one blocking Client at once (the
    handshakes share its pool; through the HTTP proxy each one gets a
    CONNECT tunnel of its own); the cookie stored by the handshakes is
    there once, and the pool holds no connection afterwards."""
    import threading

    kwargs: dict[str, Any] = {"proxy": servers.proxy} if via_proxy else {}
    errors: list[BaseException] = []
    results: list[str] = []
    with webwire.Client(limits=webwire.Limits(max_connections=4), **kwargs) as client:

        def run(i: int) -> None:
            try:
                for round_ in range(3):
                    with client.websocket(f"{servers.plain.url}/t{i}") as ws:
                        report = ws.receive_json()
                        assert report["path"] == f"/t{i}"
                        ws.send_json({"i": i, "round": round_})
                        assert ws.receive_json() == {"i": i, "round": round_}
                results.append(f"thread {i}")
            except BaseException as exc:  # reported below
                errors.append(exc)

        threads = [threading.Thread(target=run, args=(i,)) for i in range(8)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(50.0)
        assert errors == []
        assert sorted(results) == sorted(f"thread {i}" for i in range(8))
        assert [c.name for c in client.cookies.jar] == ["session"]
        assert client._client.transport.pool.connections() == []  # type: ignore[attr-defined]
