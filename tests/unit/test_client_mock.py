"""AsyncClient and Client against MockTransport: request building, redirects,
cookies, auth, streaming, status handling. Each scenario is one coroutine
run on asyncio, on trio and on the blocking client."""

from __future__ import annotations

import base64
from collections.abc import Awaitable, Callable, Generator
from typing import Any

import pytest

import webwire
from webwire._sync import run_sync

Scenario = Callable[[Any], Awaitable[None]]


def both(scenario: Scenario) -> tuple[Any, Any]:
    """Two tests for one scenario: AsyncClient (asyncio and trio) and Client."""

    @pytest.mark.anyio
    async def test_async(async_api: Any) -> None:
        await scenario(async_api)

    def test_sync(sync_api: Any) -> None:
        run_sync(scenario(sync_api))

    return test_async, test_sync


class Recorder:
    """A MockTransport handler answering from a route table and keeping
    every request it saw."""

    def __init__(self, routes: dict[str, Callable[[webwire.Request], webwire.Response]]):
        self.routes = routes
        self.requests: list[webwire.Request] = []

    def __call__(self, request: webwire.Request) -> webwire.Response:
        self.requests.append(request)
        key = f"{request.url.host}{request.url.path}"
        handler = self.routes.get(key) or self.routes.get(request.url.path)
        if handler is None:
            return webwire.Response(404, text="no route")
        return handler(request)

    def transport(self) -> webwire.MockTransport:
        return webwire.MockTransport(self)


def echo(request: webwire.Request) -> webwire.Response:
    return webwire.Response(
        200,
        json={
            "method": request.method,
            "url": str(request.url),
            "headers": [list(item) for item in request.headers.items()],
            "body": request.content.decode("latin-1"),
        },
    )


def redirect(location: str, status: int = 302, **headers: str) -> Callable[..., webwire.Response]:
    def handler(request: webwire.Request) -> webwire.Response:
        return webwire.Response(status, headers={"Location": location, **headers}, text="moved")

    return handler


# -- request building ----------------------------------------------------------


async def scenario_default_headers(open_api: Any) -> None:
    rec = Recorder({"/": echo})
    async with open_api(transport=rec.transport()) as api:
        response = await api.get("http://example.com/")
    assert response.status_code == 200
    names = [name for name, _ in response.json()["headers"]]
    assert names == ["Host", "Accept", "Accept-Encoding", "User-Agent"]
    sent = rec.requests[0].headers
    assert sent["Host"] == "example.com"
    assert sent["Accept"] == "*/*"
    assert sent["User-Agent"] == f"webwire/{webwire.__version__}"
    assert "gzip" in sent["Accept-Encoding"]
    assert "Connection" not in sent


test_default_headers_async, test_default_headers_sync = both(scenario_default_headers)


async def scenario_headers_merge(open_api: Any) -> None:
    rec = Recorder({"/": echo})
    client_headers = {"Accept": "text/html", "X-Client": "c", "X-Both": "client"}
    async with open_api(transport=rec.transport(), headers=client_headers) as api:
        await api.get("http://example.com:8080/", headers={"X-Both": "request", "X-Req": "r"})
    sent = rec.requests[0].headers
    assert list(sent.keys())[:4] == ["Host", "Accept", "Accept-Encoding", "User-Agent"]
    assert sent["Host"] == "example.com:8080"
    assert sent["Accept"] == "text/html"
    assert sent["X-Client"] == "c"
    assert sent.getall("X-Both") == ["request"]
    assert sent["X-Req"] == "r"


test_headers_merge_async, test_headers_merge_sync = both(scenario_headers_merge)


async def scenario_header_injection_refused(open_api: Any) -> None:
    rec = Recorder({"/": echo})
    async with open_api(transport=rec.transport()) as api:
        for bad in ({"X-A": "a\r\nInjected: 1"}, {"X-A": "a\nb"}, {"X-A": "nul\x00"}):
            with pytest.raises(webwire.LocalProtocolError):
                await api.get("http://example.com/", headers=bad)
        with pytest.raises(webwire.LocalProtocolError):
            await api.get("http://example.com/", headers={"Bad Name": "x"})
        with pytest.raises(webwire.LocalProtocolError):
            await api.request("GE T", "http://example.com/")
    assert rec.requests == []
    with pytest.raises(webwire.LocalProtocolError):
        webwire.AsyncClient(headers={"X": "a\rb"})


test_header_injection_async, test_header_injection_sync = both(scenario_header_injection_refused)


async def scenario_params_and_base_url(open_api: Any) -> None:
    rec = Recorder({"/v1/users": echo, "/other": echo})
    async with open_api(
        transport=rec.transport(), base_url="http://api.example.com/v1", params={"key": "k"}
    ) as api:
        r1 = await api.get("users?x=1", params={"page": 2, "flag": True, "key": "override"})
        r2 = await api.get("/users", params=[("tag", "a"), ("tag", "b")])
        r3 = await api.get("http://elsewhere.example.org/other")
    assert r1.url.path == "/v1/users"
    assert r1.url.query.getall("key") == ["override"]
    assert r1.url.query["x"] == "1"
    assert r1.url.query["page"] == "2"
    assert r1.url.query["flag"] == "true"
    assert str(r2.url) == "http://api.example.com/v1/users?key=k&tag=a&tag=b"
    assert r3.url.host == "elsewhere.example.org"
    assert r3.url.query["key"] == "k"


test_params_async, test_params_sync = both(scenario_params_and_base_url)


async def scenario_invalid_urls(open_api: Any) -> None:
    rec = Recorder({"/": echo})
    async with open_api(transport=rec.transport()) as api:
        for bad in ("http://", "http://[::1", "example.com/path", "http://exa mple.com/"):
            with pytest.raises(webwire.InvalidURL):
                await api.get(bad)
        with pytest.raises(webwire.UnsupportedProtocol):
            await api.get("ftp://example.com/file")
        with pytest.raises(webwire.InvalidURL):
            await api.get("http://example.com:99999/")
    assert rec.requests == []


test_invalid_urls_async, test_invalid_urls_sync = both(scenario_invalid_urls)


async def scenario_post_bodies(open_api: Any) -> None:
    rec = Recorder({"/": echo})
    async with open_api(transport=rec.transport()) as api:
        r_json = await api.post("http://example.com/", json={"a": [1, 2]})
        r_data = await api.post("http://example.com/", data={"k": "v w"})
        r_files = await api.post(
            "http://example.com/", files={"f": ("name.txt", b"file-bytes", "text/plain")}
        )
        r_bytes = await api.post("http://example.com/", content=b"raw")
        r_empty = await api.post("http://example.com/")
        r_stream = await api.post("http://example.com/", content=api.body([b"ab", b"cd"]))
    assert r_json.json()["body"] == '{"a":[1,2]}'
    assert rec.requests[0].headers["Content-Type"] == "application/json"
    assert r_data.json()["body"] == "k=v+w"
    assert rec.requests[1].headers["Content-Type"] == "application/x-www-form-urlencoded"
    assert rec.requests[2].headers["Content-Type"].startswith("multipart/form-data; boundary=")
    assert 'filename="name.txt"' in r_files.json()["body"]
    assert "file-bytes" in r_files.json()["body"]
    assert r_bytes.json()["body"] == "raw"
    assert rec.requests[3].headers["Content-Length"] == "3"
    assert r_empty.json()["body"] == ""
    assert rec.requests[4].headers["Content-Length"] == "0"
    assert r_stream.json()["body"] == "abcd"


test_post_bodies_async, test_post_bodies_sync = both(scenario_post_bodies)


async def scenario_timeout_extensions(open_api: Any) -> None:
    rec = Recorder({"/": echo})
    async with open_api(transport=rec.transport(), timeout=webwire.Timeout(3.0)) as api:
        await api.get("http://example.com/")
        await api.get("http://example.com/", timeout=webwire.Timeout(1.0, total=10.0))
        await api.get("http://example.com/", timeout=None)
    first, second, third = rec.requests
    assert first.extensions["timeout"] == webwire.Timeout(3.0)
    assert first.extensions["deadline"] is None
    assert second.extensions["timeout"].total == 10.0
    assert isinstance(second.extensions["deadline"], float)
    assert third.extensions["timeout"].read is None


test_timeouts_async, test_timeouts_sync = both(scenario_timeout_extensions)


# -- redirects -----------------------------------------------------------------

REDIRECT_CASES = [
    # status, method, expected method, body kept
    (301, "POST", "GET", False),
    (302, "POST", "GET", False),
    (301, "PUT", "PUT", True),
    (303, "POST", "GET", False),
    (303, "PUT", "GET", False),
    (303, "HEAD", "HEAD", False),
    (307, "POST", "POST", True),
    (308, "POST", "POST", True),
    (308, "PUT", "PUT", True),
]


async def scenario_redirect_codes(open_api: Any) -> None:
    for status, method, expected, keeps_body in REDIRECT_CASES:
        rec = Recorder({"/a/start": redirect("../target?q=1", status), "/target": echo})
        async with open_api(transport=rec.transport()) as api:
            body = b"payload" if method != "HEAD" else None
            response = await api.request(method, "http://example.com/a/start", content=body)
        case = (status, method)
        assert response.status_code == 200, case
        assert str(response.url) == "http://example.com/target?q=1", case
        assert [r.status_code for r in response.history] == [status], case
        assert response.history[0].is_closed, case
        assert response.history[0].content == b"moved", case
        second = rec.requests[1]
        assert second.method == expected, case
        if keeps_body:
            assert second.content == b"payload", case
            assert second.headers["Content-Length"] == "7", case
        else:
            assert second.content == b"", case
            assert "Content-Length" not in second.headers, case
            assert "Content-Type" not in second.headers, case


test_redirect_codes_async, test_redirect_codes_sync = both(scenario_redirect_codes)


async def scenario_redirect_history_and_fragment(open_api: Any) -> None:
    rec = Recorder(
        {
            "/1": redirect("/2", 301),
            "/2": redirect("http://other.example.com/3", 302),
            "other.example.com/3": redirect("/4#inner", 307),
            "/4": echo,
        }
    )
    async with open_api(transport=rec.transport()) as api:
        response = await api.get("http://example.com/1#frag")
        assert [r.status_code for r in response.history] == [301, 302, 307]
        assert [str(r.url) for r in response.history][:2] == [
            "http://example.com/1#frag",
            "http://example.com/2#frag",
        ]
        assert response.url.fragment == "inner"
        assert response.history[2].url.fragment == "frag"
        assert rec.requests[2].headers["Host"] == "other.example.com"
        no_follow = await api.get("http://example.com/1", follow_redirects=False)
        assert no_follow.status_code == 301
        assert no_follow.history == []
        assert no_follow.has_redirect_location


test_redirect_history_async, test_redirect_history_sync = both(
    scenario_redirect_history_and_fragment
)


async def scenario_too_many_redirects(open_api: Any) -> None:
    rec = Recorder({"/1": redirect("/2"), "/2": redirect("/3"), "/3": redirect("/4"), "/4": echo})
    async with open_api(transport=rec.transport(), max_redirects=2) as api:
        with pytest.raises(webwire.TooManyRedirects):
            await api.get("http://example.com/1")
        ok = await api.get("http://example.com/2")
        assert ok.status_code == 200
        assert len(ok.history) == 2
    loop = Recorder({"/loop": redirect("/loop")})
    async with open_api(transport=loop.transport()) as api:
        with pytest.raises(webwire.TooManyRedirects):
            await api.get("http://example.com/loop")
    assert len(loop.requests) == 21


test_too_many_redirects_async, test_too_many_redirects_sync = both(scenario_too_many_redirects)


async def scenario_redirect_authorization(open_api: Any) -> None:
    rec = Recorder(
        {
            "example.com/same": redirect("/end"),
            "example.com/cross": redirect("http://evil.example.net/end"),
            "example.com/upgrade": redirect("https://example.com/end"),
            "/end": echo,
        }
    )
    async with open_api(transport=rec.transport()) as api:
        token = {"Authorization": "Bearer secret"}
        await api.get("http://example.com/same", headers=token)
        assert rec.requests[1].headers["Authorization"] == "Bearer secret"
        await api.get("http://example.com/cross", headers=token)
        assert "Authorization" not in rec.requests[3].headers
        await api.get("http://example.com/upgrade", headers=token)
        assert rec.requests[5].headers["Authorization"] == "Bearer secret"
        # Auth objects: re-applied on the same origin, not on another one.
        await api.get("http://example.com/same", auth=("u", "p"))
        assert rec.requests[7].headers["Authorization"].startswith("Basic ")
        await api.get("http://example.com/cross", auth=("u", "p"))
        assert "Authorization" not in rec.requests[9].headers


test_redirect_auth_async, test_redirect_auth_sync = both(scenario_redirect_authorization)


async def scenario_redirect_cookies(open_api: Any) -> None:
    def set_and_redirect(location: str) -> Callable[..., webwire.Response]:
        def handler(request: webwire.Request) -> webwire.Response:
            return webwire.Response(
                302, headers=[("Location", location), ("Set-Cookie", "sid=abc; Path=/")]
            )

        return handler

    rec = Recorder(
        {
            "a.example.com/login": set_and_redirect("/home"),
            "a.example.com/home": redirect("http://b.example.org/elsewhere"),
            "b.example.org/elsewhere": echo,
        }
    )
    async with open_api(transport=rec.transport()) as api:
        response = await api.get("http://a.example.com/login", cookies={"once": "1"})
        assert response.status_code == 200
    login, home, elsewhere = rec.requests
    assert "sid" not in login.headers.get("Cookie", "")
    assert "once=1" in login.headers["Cookie"]
    assert "sid=abc" in home.headers["Cookie"]
    assert "once=1" in home.headers["Cookie"]
    assert "Cookie" not in elsewhere.headers
    assert api.client.cookies.get("sid") == "abc"


test_redirect_cookies_async, test_redirect_cookies_sync = both(scenario_redirect_cookies)


async def scenario_insecure_and_unsupported_redirects(open_api: Any) -> None:
    rec = Recorder(
        {
            "secure.example.com/down": redirect("http://secure.example.com/plain"),
            "/plain": echo,
            "/ftp": redirect("ftp://example.com/file"),
            "/badloc": redirect("http://[::1"),
        }
    )
    async with open_api(transport=rec.transport()) as api:
        with pytest.raises(webwire.InvalidURL, match="https to http"):
            await api.get("https://secure.example.com/down")
        with pytest.raises(webwire.UnsupportedProtocol):
            await api.get("http://example.com/ftp")
        with pytest.raises(webwire.InvalidURL):
            await api.get("http://example.com/badloc")
    async with open_api(transport=rec.transport(), follow_insecure_redirects=True) as api:
        response = await api.get("https://secure.example.com/down")
        assert response.url.scheme == "http"


test_insecure_redirect_async, test_insecure_redirect_sync = both(
    scenario_insecure_and_unsupported_redirects
)


async def scenario_redirect_streamed_body(open_api: Any) -> None:
    rec = Recorder({"/up": redirect("/done", 307), "/done": echo})
    async with open_api(transport=rec.transport()) as api:
        with pytest.raises(webwire.StreamConsumed):
            await api.post("http://example.com/up", content=api.body([b"x", b"y"]))
        replayable = await api.post("http://example.com/up", content=[b"x", b"y"])
        assert replayable.json()["body"] == "xy"


test_redirect_stream_body_async, test_redirect_stream_body_sync = both(
    scenario_redirect_streamed_body
)


# -- auth ----------------------------------------------------------------------


async def scenario_basic_auth(open_api: Any) -> None:
    rec = Recorder({"/": echo})
    expected = "Basic " + base64.b64encode(b"user:pass").decode()
    async with open_api(transport=rec.transport(), auth=("user", "pass")) as api:
        await api.get("http://example.com/")
        await api.get("http://example.com/", auth=("other", "x"))
    assert rec.requests[0].headers["Authorization"] == expected
    assert rec.requests[1].headers["Authorization"] == "Basic " + base64.b64encode(
        b"other:x"
    ).decode("ascii")
    async with open_api(transport=rec.transport()) as api:
        response = await api.get("http://user:pass@example.com/")
    assert rec.requests[2].headers["Authorization"] == expected
    assert response.url.user is None
    assert str(response.url) == "http://example.com/"


test_basic_auth_async, test_basic_auth_sync = both(scenario_basic_auth)


class ChallengeAuth(webwire.Auth):
    requires_response_body = True

    def __init__(self) -> None:
        self.seen: list[int] = []

    def auth_flow(
        self, request: webwire.Request
    ) -> Generator[webwire.Request, webwire.Response, None]:
        response = yield request
        self.seen.append(response.status_code)
        if response.status_code == 401:
            nonce = response.json()["nonce"]
            request.headers["Authorization"] = f"Token {nonce}"
            response = yield request
            self.seen.append(response.status_code)


def challenge_handler(request: webwire.Request) -> webwire.Response:
    if request.headers.get("Authorization") == "Token n0nce":
        return webwire.Response(200, text="welcome")
    return webwire.Response(401, json={"nonce": "n0nce"}, headers={"WWW-Authenticate": "Token"})


async def scenario_challenge_auth(open_api: Any) -> None:
    auth = ChallengeAuth()
    rec = Recorder({"/": challenge_handler})
    async with open_api(transport=rec.transport()) as api:
        response = await api.get("http://example.com/", auth=auth)
    assert response.status_code == 200
    assert response.text == "welcome"
    assert auth.seen == [401, 200]
    assert [r.status_code for r in response.history] == [401]
    assert response.history[0].is_closed
    assert len(rec.requests) == 2


test_challenge_auth_async, test_challenge_auth_sync = both(scenario_challenge_auth)


async def scenario_function_auth(open_api: Any) -> None:
    def sign(request: webwire.Request) -> webwire.Request:
        request.headers["X-Signature"] = request.method + " " + request.url.path
        return request

    rec = Recorder({"/p": echo})
    async with open_api(transport=rec.transport(), auth=sign) as api:
        await api.post("http://example.com/p", content=b"x")
    assert rec.requests[0].headers["X-Signature"] == "POST /p"


test_function_auth_async, test_function_auth_sync = both(scenario_function_auth)


# -- cookies -----------------------------------------------------------------------


async def scenario_cookie_persistence(open_api: Any) -> None:
    def login(request: webwire.Request) -> webwire.Response:
        return webwire.Response(200, headers={"Set-Cookie": "token=t1; Path=/; HttpOnly"})

    rec = Recorder({"/login": login, "/me": echo})
    async with open_api(transport=rec.transport(), cookies={"pref": "dark"}) as api:
        first = await api.get("http://example.com/login")
        assert first.cookies["token"] == "t1"
        await api.get("http://example.com/me")
        await api.get("http://example.com/me", cookies={"extra": "1", "pref": "light"})
        await api.get("http://example.com/me")
    assert rec.requests[0].headers["Cookie"] == "pref=dark"
    me = rec.requests[1].headers["Cookie"]
    assert "token=t1" in me and "pref=dark" in me
    once = rec.requests[2].headers["Cookie"]
    assert "extra=1" in once and "pref=light" in once and "pref=dark" not in once
    again = rec.requests[3].headers["Cookie"]
    assert "extra" not in again and "pref=dark" in again


test_cookie_persistence_async, test_cookie_persistence_sync = both(scenario_cookie_persistence)


# -- status handling -------------------------------------------------------------


async def scenario_raise_for_status(open_api: Any) -> None:
    rec = Recorder(
        {
            "/missing": lambda r: webwire.Response(404, text="nope"),
            "/boom": lambda r: webwire.Response(503, text="down"),
            "/ok": echo,
        }
    )
    async with open_api(transport=rec.transport()) as api:
        missing = await api.get("http://example.com/missing")
        assert missing.is_client_error
        with pytest.raises(webwire.HTTPStatusError) as info:
            missing.raise_for_status()
        assert "404 Not Found" in str(info.value)
        assert "http://example.com/missing" in str(info.value)
        assert info.value.response is missing
        ok = await api.get("http://example.com/ok")
        assert ok.raise_for_status() is ok
    async with open_api(transport=rec.transport(), raise_for_status=True) as api:
        with pytest.raises(webwire.HTTPStatusError) as info:
            await api.get("http://example.com/boom")
        assert info.value.response.status_code == 503
        assert info.value.response.text == "down"
        assert (await api.get("http://example.com/ok")).status_code == 200


test_raise_for_status_async, test_raise_for_status_sync = both(scenario_raise_for_status)


# -- streaming ---------------------------------------------------------------------


class TrackedStream:
    """A response body in chunks that records whether it was closed."""

    def __init__(self, chunks: list[bytes]) -> None:
        self.chunks = chunks
        self.closed = False

    async def __aiter__(self) -> Any:
        for chunk in self.chunks:
            yield chunk

    async def aclose(self) -> None:
        self.closed = True


async def scenario_streaming(open_api: Any) -> None:
    streams: list[TrackedStream] = []

    def handler(request: webwire.Request) -> webwire.Response:
        stream = TrackedStream([b"line one\n", b"line ", b"two\nthree"])
        streams.append(stream)
        return webwire.Response(200, headers={"Content-Type": "text/plain"}, stream=stream)

    async with open_api(transport=webwire.MockTransport(handler)) as api:
        async with api.stream("GET", "http://example.com/") as response:
            with pytest.raises(webwire.ResponseNotRead):
                _ = response.content
            assert not streams[0].closed
            lines = [line async for line in response.aiter_lines()]
        assert lines == ["line one", "line two", "three"]
        assert streams[0].closed
        async with api.stream("GET", "http://example.com/") as response:
            assert not response.is_closed
        assert streams[1].closed
        assert response.is_closed
        whole = await api.get("http://example.com/")
        assert whole.content == b"line one\nline two\nthree"
        assert streams[2].closed


test_streaming_async, test_streaming_sync = both(scenario_streaming)


@pytest.mark.anyio
async def test_get_as_async_context_manager() -> None:
    stream = TrackedStream([b"a", b"b"])
    transport = webwire.MockTransport(lambda r: webwire.Response(200, stream=stream))
    async with webwire.AsyncClient(transport=transport) as client:
        async with client.get("http://example.com/") as response:
            assert not response.is_stream_consumed
            chunks = [chunk async for chunk in response.aiter_raw()]
            with pytest.raises(webwire.StreamConsumed):
                async for _ in response.aiter_raw():
                    pass
        assert chunks == [b"a", b"b"]
        assert stream.closed


@pytest.mark.anyio
async def test_leaving_iteration_early_releases_on_exit() -> None:
    stream = TrackedStream([b"one", b"two", b"three"])
    transport = webwire.MockTransport(lambda r: webwire.Response(200, stream=stream))
    async with webwire.AsyncClient(transport=transport) as client:
        async with client.stream("GET", "http://example.com/") as response:
            async for chunk in response.aiter_bytes():
                assert chunk == b"one"
                break
            assert not stream.closed
        assert stream.closed
        assert response.is_closed
        assert response.elapsed.total_seconds() >= 0


def test_leaving_sync_iteration_early_releases_on_exit() -> None:
    stream = TrackedStream([b"one", b"two", b"three"])
    transport = webwire.MockTransport(lambda r: webwire.Response(200, stream=stream))
    with webwire.Client(transport=transport) as client:
        with client.stream("GET", "http://example.com/") as response:
            chunks = response.iter_bytes(chunk_size=2)
            assert next(chunks) == b"on"
            assert next(chunks) == b"et"
        assert stream.closed
        with client.stream("GET", "http://example.com/") as response:
            assert list(response.iter_text(chunk_size=4)) == ["onet", "woth", "ree"]


@pytest.mark.anyio
async def test_async_handler_and_send() -> None:
    async def handler(request: webwire.Request) -> webwire.Response:
        return webwire.Response(201, content=request.content[::-1])

    async with webwire.AsyncClient(transport=webwire.MockTransport(handler)) as client:
        request = client.build_request("PUT", "http://example.com/x", content=b"abc")
        response = await client.send(request)
        assert response.status_code == 201
        assert response.content == b"cba"
        assert response.request is request
        streamed = await client.send(client.build_request("GET", "http://e.com/"), stream=True)
        await streamed.aclose()
        assert streamed.is_closed


@pytest.mark.anyio
async def test_async_response_used_synchronously() -> None:
    stream = TrackedStream([b"x"])
    transport = webwire.MockTransport(lambda r: webwire.Response(200, stream=stream))
    async with webwire.AsyncClient(transport=transport) as client:
        async with client.stream("GET", "http://example.com/") as response:
            with pytest.raises(RuntimeError, match="AsyncClient"):
                response.read()
            with pytest.raises(RuntimeError, match="AsyncClient"):
                response.iter_bytes()
            with pytest.raises(RuntimeError, match="AsyncClient"):
                response.close()
            assert await response.aread() == b"x"


def test_sync_response_used_asynchronously() -> None:
    stream = TrackedStream([b"x"])
    transport = webwire.MockTransport(lambda r: webwire.Response(200, stream=stream))
    with webwire.Client(transport=transport) as client:
        with client.stream("GET", "http://example.com/") as response:
            with pytest.raises(RuntimeError, match="synchronous Client"):
                run_sync(response.aread())
            with pytest.raises(RuntimeError, match="synchronous Client"):
                response.aiter_bytes()
            assert response.read() == b"x"
        assert stream.closed


def test_closed_client_refuses_requests() -> None:
    transport = webwire.MockTransport(echo)
    client = webwire.Client(transport=transport)
    client.close()
    with pytest.raises(RuntimeError, match="closed"):
        client.get("http://example.com/")


def test_module_level_helpers_reject_bad_urls() -> None:
    with pytest.raises(webwire.UnsupportedProtocol):
        webwire.get("ftp://example.com/")
    with pytest.raises(webwire.InvalidURL):
        webwire.post("not a url", content=b"x")


async def scenario_transport_error_carries_request(open_api: Any) -> None:
    def refuse(request: webwire.Request) -> webwire.Response:
        raise webwire.ConnectError("refused")

    async with open_api(transport=webwire.MockTransport(refuse)) as api:
        with pytest.raises(webwire.ConnectError) as info:
            await api.get("http://example.com/path")
        assert info.value.request is not None
        assert str(info.value.request.url) == "http://example.com/path"


test_error_request_async, test_error_request_sync = both(scenario_transport_error_carries_request)
