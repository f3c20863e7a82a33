"""Cookies over http.cookiejar, and the auth classes."""

from __future__ import annotations

import base64
from http.cookiejar import CookieJar
from typing import Any

import pytest

import webwire
from webwire.http._auth import build_auth


def response_for(url: str, *set_cookies: str) -> webwire.Response:
    return webwire.Response(
        200,
        headers=[("Set-Cookie", value) for value in set_cookies],
        request=webwire.Request("GET", url),
    )


def cookie_for(cookies: webwire.Cookies, url: str) -> str | None:
    request = webwire.Request("GET", url)
    cookies.set_cookie_header(request)
    return request.headers.get("Cookie")


def test_mapping_interface() -> None:
    cookies = webwire.Cookies({"a": "1"})
    cookies["b"] = "2"
    cookies.set("c", "3", domain="example.com", path="/x")
    assert cookies["a"] == "1"
    assert cookies.get("c", domain="example.com") == "3"
    assert cookies.get("c", domain="other.com") is None
    assert cookies.get("zzz", "default") == "default"
    assert sorted(cookies) == ["a", "b", "c"]
    assert len(cookies) == 3
    assert bool(cookies)
    del cookies["a"]
    with pytest.raises(KeyError):
        _ = cookies["a"]
    with pytest.raises(KeyError):
        del cookies["a"]
    cookies.delete("c", domain="example.com")
    assert "c" not in cookies
    cookies.clear()
    assert not cookies and len(cookies) == 0
    assert "Cookies[" in repr(webwire.Cookies({"x": "y"}))


def test_copy_and_shared_jar() -> None:
    jar = CookieJar()
    shared = webwire.Cookies(jar)
    shared["a"] = "1"
    assert len(jar) == 1
    copy = webwire.Cookies(shared)
    copy["b"] = "2"
    assert len(jar) == 1
    merged = webwire.Cookies()
    merged.update(copy)
    merged.update([("c", "3")], d="4")
    assert sorted(merged) == ["a", "b", "c", "d"]


def test_domain_and_path_rules() -> None:
    cookies = webwire.Cookies()
    cookies.extract_cookies(
        response_for(
            "http://www.example.com/app/login",
            "root=1; Path=/",
            "app=2; Path=/app",
            "wide=3; Domain=example.com; Path=/",
        )
    )
    assert cookie_for(cookies, "http://www.example.com/app/page") == "app=2; root=1; wide=3"
    assert cookie_for(cookies, "http://www.example.com/other") == "root=1; wide=3"
    assert cookie_for(cookies, "http://api.example.com/") == "wide=3"
    assert cookie_for(cookies, "http://example.org/") is None


def test_secure_and_expired_cookies() -> None:
    cookies = webwire.Cookies()
    cookies.extract_cookies(
        response_for("https://example.com/", "s=1; Secure; Path=/", "p=2; Path=/")
    )
    assert cookie_for(cookies, "https://example.com/") == "s=1; p=2"
    assert cookie_for(cookies, "http://example.com/") == "p=2"
    cookies.extract_cookies(response_for("https://example.com/", "p=gone; Max-Age=0; Path=/"))
    assert cookie_for(cookies, "https://example.com/") == "s=1"


def test_cookie_from_other_domain_rejected() -> None:
    cookies = webwire.Cookies()
    cookies.extract_cookies(response_for("http://example.com/", "x=1; Domain=evil.org"))
    assert len(cookies) == 0


def test_explicit_cookie_header_wins() -> None:
    cookies = webwire.Cookies({"a": "1"})
    request = webwire.Request("GET", "http://e.com/", headers={"Cookie": "mine=1"})
    cookies.set_cookie_header(request)
    assert request.headers.getall("Cookie") == ["mine=1"]


def test_extra_cookies_override_same_name() -> None:
    cookies = webwire.Cookies({"a": "1", "b": "2"})
    request = webwire.Request("GET", "http://e.com/")
    header = cookies.cookie_header(request, webwire.Cookies({"a": "9"}))
    assert header is not None
    assert sorted(header.split("; ")) == ["a=9", "b=2"]
    assert cookies["a"] == "1"


# -- auth ----------------------------------------------------------------------


def basic(value: bytes) -> str:
    return "Basic " + base64.b64encode(value).decode("ascii")


def flow_request(auth: webwire.Auth, url: str = "http://e.com/") -> webwire.Request:
    request = webwire.Request("GET", url)
    flow = auth.auth_flow(request)
    sent = next(flow)
    with pytest.raises(StopIteration):
        flow.send(webwire.Response(200, request=sent))
    return sent


def test_basic_auth_encodings() -> None:
    assert flow_request(webwire.BasicAuth("user", "pass")).headers["Authorization"] == basic(
        b"user:pass"
    )
    utf8 = flow_request(webwire.BasicAuth("jürgen", "pässword"))
    assert utf8.headers["Authorization"] == basic("jürgen:pässword".encode())
    latin = flow_request(webwire.BasicAuth("jürgen", "x", encoding="latin-1"))
    assert latin.headers["Authorization"] == basic("jürgen:x".encode("latin-1"))
    raw = flow_request(webwire.BasicAuth(b"u", b"\xff"))
    assert raw.headers["Authorization"] == basic(b"u:\xff")
    assert "pass" not in repr(webwire.BasicAuth("user", "pass"))


def test_basic_auth_rejects_colon_in_user() -> None:
    with pytest.raises(webwire.LocalProtocolError):
        webwire.BasicAuth("a:b", "c")


def test_build_auth() -> None:
    assert build_auth(None) is None
    basic_auth = build_auth(("u", "p"))
    assert isinstance(basic_auth, webwire.BasicAuth)
    custom = webwire.BasicAuth("x", "y")
    assert build_auth(custom) is custom

    def add(request: webwire.Request) -> webwire.Request:
        request.headers["X-Key"] = "k"
        return request

    function_auth = build_auth(add)
    assert isinstance(function_auth, webwire.FunctionAuth)
    assert flow_request(function_auth).headers["X-Key"] == "k"
    with pytest.raises(TypeError):
        build_auth(("only-one",))  # type: ignore[arg-type]
    with pytest.raises(TypeError):
        build_auth(42)  # type: ignore[arg-type]


def test_base_auth_sends_unchanged() -> None:
    request = flow_request(webwire.Auth())
    assert "Authorization" not in request.headers


def test_client_auth_attribute() -> None:
    client = webwire.Client(
        auth=("a", "b"), transport=webwire.MockTransport(lambda r: webwire.Response(200))
    )
    assert isinstance(client.auth, webwire.BasicAuth)
    client.auth = None
    assert client.auth is None
    client.close()


# -- valueless cookies, cookies bound to their host, threads, .netrc ------------------


def test_valueless_set_cookie() -> None:
    response = response_for("http://example.com/", "flag", "a=b", "=only-value")
    cookies = response.cookies
    assert cookies["flag"] == ""
    assert dict(cookies) == {"flag": "", "a": "b"}  # a field with no name is dropped
    assert "flag" in repr(cookies)
    jar = webwire.Cookies()
    jar.extract_cookies(response)
    header = cookie_for(jar, "http://example.com/")
    assert header == "flag; a=b"


def _recording_transport(seen: list[webwire.Request]) -> webwire.MockTransport:
    def handler(request: webwire.Request) -> webwire.Response:
        seen.append(request)
        if request.url.path.endswith("/bounce"):
            return webwire.Response(302, headers={"Location": "http://evil.example.net/"})
        return webwire.Response(200)

    return webwire.MockTransport(handler)


def test_client_cookies_bound_to_base_url_host() -> None:
    seen: list[webwire.Request] = []
    with webwire.Client(
        transport=_recording_transport(seen),
        base_url="http://api.example.com/v1/",
        cookies={"session": "s3cret"},
    ) as client:
        client.get("ping")
        client.get("http://other.example.org/")
        client.get("bounce")
    assert seen[0].headers["Cookie"] == "session=s3cret"
    assert "Cookie" not in seen[1].headers
    assert "Cookie" in seen[2].headers and "Cookie" not in seen[3].headers


def test_client_cookies_bound_to_first_host_without_base_url() -> None:
    seen: list[webwire.Request] = []
    explicit = webwire.Cookies()
    explicit.set("pinned", "1", domain="other.example.org")
    with webwire.Client(transport=_recording_transport(seen), cookies={"s": "1"}) as client:
        client.get("http://first.example.com/")
        client.get("http://other.example.org/")
        client.get("http://first.example.com/again")
        client.cookies = explicit
        client.get("http://other.example.org/")
    assert seen[0].headers["Cookie"] == "s=1"
    assert "Cookie" not in seen[1].headers
    assert seen[2].headers["Cookie"] == "s=1"
    assert seen[3].headers["Cookie"] == "pinned=1"


@pytest.mark.anyio
async def test_async_client_cookies_bound(anyio_backend: str) -> None:
    seen: list[webwire.Request] = []
    async with webwire.AsyncClient(
        transport=_recording_transport(seen), base_url="http://localhost:8000", cookies={"a": "1"}
    ) as client:
        await client.get("/")
        await client.get("http://127.0.0.1:8000/")
    assert seen[0].headers["Cookie"] == "a=1"
    assert "Cookie" not in seen[1].headers


def test_cookie_jar_shared_by_16_threads() -> None:
    import threading

    def handler(request: webwire.Request) -> webwire.Response:
        name = request.url.query["n"]
        return webwire.Response(200, headers={"Set-Cookie": f"c{name}={name}; Path=/"})

    errors: list[BaseException] = []
    with webwire.Client(transport=webwire.MockTransport(handler)) as client:

        def work(t: int) -> None:
            try:
                for i in range(25):
                    client.get("http://example.com/", params={"n": f"{t}-{i}"})
                    assert client.cookies.get(f"c{t}-{i}") == f"{t}-{i}"
            except BaseException as exc:  # reported below
                errors.append(exc)

        threads = [threading.Thread(target=work, args=(t,)) for t in range(16)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(30)
        assert errors == []
        assert len(client.cookies) == 16 * 25
        seen: list[str] = []
        client._client._transport = webwire.MockTransport(  # type: ignore[assignment]
            lambda r: (seen.append(r.headers["Cookie"]), webwire.Response(200))[1]
        )
        client.get("http://example.com/")
        assert len(seen[0].split("; ")) == 16 * 25


def test_netrc_auth(tmp_path: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    path = tmp_path / "netrc"
    path.write_text("machine example.com login bob password b0b\ndefault login any password x\n")
    path.chmod(0o600)
    auth = webwire.NetRCAuth(path)
    assert auth.credentials("example.com") == ("bob", "b0b")
    assert auth.credentials("else.org") == ("any", "x")
    request = webwire.Request("GET", "http://example.com/")
    flow = auth.auth_flow(request)
    sent = next(flow)
    assert sent.headers["Authorization"] == "Basic " + base64.b64encode(b"bob:b0b").decode()
    with pytest.raises(webwire.AuthError, match="cannot read"):
        webwire.NetRCAuth(tmp_path / "missing")
    monkeypatch.setenv("NETRC", str(path))
    assert webwire.NetRCAuth().credentials("example.com") == ("bob", "b0b")
    bad = tmp_path / "bad"
    bad.write_text("machine h login a password p bogus x\n")
    bad.chmod(0o600)
    with pytest.raises(webwire.AuthError, match="parse"):
        webwire.NetRCAuth(bad)


def test_netrc_used_by_client_only_with_trust_env(
    tmp_path: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "netrc"
    path.write_text("machine example.com login bob password b0b\n")
    path.chmod(0o600)
    monkeypatch.setenv("NETRC", str(path))
    seen: list[webwire.Request] = []
    with webwire.Client(transport=_recording_transport(seen)) as client:
        client.get("http://example.com/")
        client.get("http://other.org/")
        client.get("http://example.com/", headers={"Authorization": "Bearer t"})
        client.get("http://example.com/", auth=("x", "y"))
    with webwire.Client(transport=_recording_transport(seen), trust_env=False) as client:
        client.get("http://example.com/")
    assert seen[0].headers["Authorization"].startswith("Basic ")
    assert "Authorization" not in seen[1].headers
    assert seen[2].headers["Authorization"] == "Bearer t"
    assert seen[3].headers["Authorization"] == "Basic " + base64.b64encode(b"x:y").decode()
    assert "Authorization" not in seen[4].headers
    monkeypatch.setenv("NETRC", str(tmp_path / "absent"))
    with webwire.Client(transport=_recording_transport(seen)) as client:
        client.get("http://example.com/")  # no file: no credentials, no error
    assert "Authorization" not in seen[5].headers


def test_cookies_iterated_while_16_threads_change_them() -> None:
    import sys
    import threading

    cookies = webwire.Cookies()
    for i in range(100):
        cookies.set(f"n{i}", "v", domain="a.example.com")
    errors: list[BaseException] = []
    done = threading.Event()

    def writer() -> None:
        try:
            for i in range(1000):
                cookies.delete(f"n{i % 100}")
                cookies.set(f"n{i % 100}", "v", domain="a.example.com")
        except BaseException as exc:  # reported below
            errors.append(exc)

    def reader() -> None:
        try:
            while not done.is_set():
                assert all(name.startswith("n") for name in cookies)
                cookies.get("n5")
                assert len(cookies) <= 100
                cookie_for(cookies, "http://a.example.com/")
        except BaseException as exc:  # reported below
            errors.append(exc)

    interval = sys.getswitchinterval()
    sys.setswitchinterval(1e-6)  # switch threads as often as possible
    try:
        writers = [threading.Thread(target=writer) for _ in range(8)]
        readers = [threading.Thread(target=reader) for _ in range(8)]
        for thread in writers + readers:
            thread.start()
        for thread in writers:
            thread.join(60)
        done.set()
        for thread in readers:
            thread.join(60)
    finally:
        sys.setswitchinterval(interval)
    assert errors == []
    assert len(cookies) == 100
