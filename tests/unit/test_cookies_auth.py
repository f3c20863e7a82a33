"""Cookies over http.cookiejar, and the auth classes."""

from __future__ import annotations

import base64
from http.cookiejar import CookieJar

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
