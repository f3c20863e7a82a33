"""Proxy configuration without a network: proxy URLs, ``no_proxy``
matching, the proxy variables, mount patterns and the per-URL routing of
the clients."""

from __future__ import annotations

import base64
import threading

import pytest
from yarl import URL

import webwire
from webwire.http._proxies import NoProxy, Router, URLPattern, environment_proxies

# -- Proxy ---------------------------------------------------------------------


def test_proxy_url_credentials_and_default_ports() -> None:
    proxy = webwire.Proxy("http://us%40er:p%3Ass@proxy.example:3128")
    assert proxy.auth == ("us@er", "p:ss")
    assert str(proxy.url) == "http://proxy.example:3128"
    assert proxy.origin == ("http", "proxy.example", 3128)
    token = base64.b64encode(b"us@er:p:ss")
    assert (b"Proxy-Authorization", b"Basic " + token) in proxy.fields
    assert webwire.Proxy("https://p.example").origin.port == 443
    assert webwire.Proxy("socks5h://p.example").origin.port == 1080
    assert webwire.Proxy("http://[::1]:8080").origin == ("http", "::1", 8080)


def test_proxy_auth_argument_wins_and_is_hidden() -> None:
    proxy = webwire.Proxy("http://a:b@p.example:8080", auth=("user", "secret"))
    assert proxy.auth == ("user", "secret")
    assert "secret" not in repr(proxy)
    assert "user" in repr(proxy)


def test_proxy_headers() -> None:
    proxy = webwire.Proxy("http://p.example", headers={"X-Proxy": "1"})
    assert proxy.fields == [(b"X-Proxy", b"1")]
    with pytest.raises(ValueError, match="CR, LF"):
        webwire.Proxy("http://p.example", headers={"X-Proxy": "1\r\nEvil: yes"})


def test_socks_credentials_are_not_a_header() -> None:
    proxy = webwire.Proxy("socks5://u:p@p.example")
    assert proxy.fields == []
    assert proxy.is_socks
    with pytest.raises(ValueError, match="ASCII"):
        webwire.Proxy("socks5://p.example", auth=("\u00fc", "x"))


@pytest.mark.parametrize(
    ("url", "error"),
    [
        ("ftp://p.example:21", webwire.UnsupportedProtocol),
        ("p.example:8080", webwire.UnsupportedProtocol),
        ("http://", webwire.InvalidURL),
        ("http://p.example:0", webwire.InvalidURL),
        ("http://p.example:99999", webwire.InvalidURL),
    ],
)
def test_bad_proxy_urls(url: str, error: type[Exception]) -> None:
    with pytest.raises(error):
        webwire.Proxy(url)
    with pytest.raises(error):
        webwire.AsyncClient(proxy=url)
    with pytest.raises(error):
        webwire.HTTPTransport(proxy=url)


def test_proxy_with_transport_or_uds_is_refused() -> None:
    with pytest.raises(ValueError):
        webwire.AsyncClient(proxy="http://p.example", transport=webwire.HTTPTransport())
    with pytest.raises(ValueError):
        webwire.HTTPTransport(proxy="http://p.example", uds="/tmp/x.sock")


# -- no_proxy ------------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "host", "port", "expected"),
    [
        ("*", "anything.example", 80, True),
        ("example.com", "example.com", 80, True),
        ("example.com", "www.example.com", 443, True),
        ("example.com", "badexample.com", 80, False),
        (".example.com", "example.com", 80, True),
        (".example.com", "a.b.example.com", 80, True),
        ("*.example.com", "a.example.com", 80, True),
        ("Example.COM.", "example.com", 80, True),
        ("example.com", "example.org", 80, False),
        ("10.0.0.0/8", "10.1.2.3", 80, True),
        ("10.0.0.0/8", "11.1.2.3", 80, False),
        ("10.0.0.0/8", "example.com", 80, False),
        ("192.168.1.10", "192.168.1.10", 80, True),
        ("192.168.1.10", "192.168.1.11", 80, False),
        ("::1", "::1", 80, True),
        ("[::1]", "::1", 80, True),
        ("fd00::/8", "fd12::1", 80, True),
        ("example.com:8080", "example.com", 8080, True),
        ("example.com:8080", "example.com", 80, False),
        ("example.com:8080", "api.example.com", 8080, True),
        ("127.0.0.1:8080", "127.0.0.1", 8080, True),
        ("127.0.0.1:8080", "127.0.0.1", 8081, False),
        ("[::1]:8080", "::1", 8080, True),
        ("a.example, b.example  c.example", "c.example", 80, True),
        ("a.example,b.example", "b.example", 80, True),
        ("", "example.com", 80, False),
        ("10.0.0.0/33", "10.0.0.1", 80, False),  # an invalid range is ignored
    ],
)
def test_no_proxy(value: str, host: str, port: int, expected: bool) -> None:
    assert NoProxy(value).matches(host, port) is expected


# -- the proxy variables ------------------------------------------------------


def test_environment_lower_case_wins() -> None:
    env = {
        "http_proxy": "http://lower:1",
        "HTTP_PROXY": "http://upper:1",
        "HTTPS_PROXY": "http://secure:2",
    }
    proxies = environment_proxies(env)
    assert proxies.http == "http://lower:1"
    assert proxies.https == "http://secure:2"


def test_environment_all_proxy_fills_in() -> None:
    proxies = environment_proxies({"ALL_PROXY": "socks5://s:1080", "https_proxy": "http://h:1"})
    assert proxies.http == "socks5://s:1080"
    assert proxies.https == "http://h:1"


def test_environment_scheme_defaults_to_http_and_empty_means_none() -> None:
    proxies = environment_proxies({"http_proxy": "proxy.example:3128", "https_proxy": ""})
    assert proxies.http == "http://proxy.example:3128"
    assert proxies.https is None
    assert not environment_proxies({})


def test_environment_cgi_ignores_upper_case_http_proxy() -> None:
    env = {"REQUEST_METHOD": "GET", "HTTP_PROXY": "http://attacker:1"}
    assert environment_proxies(env).http is None


def test_environment_no_proxy() -> None:
    proxies = environment_proxies({"http_proxy": "http://p:1", "NO_PROXY": "internal.example"})
    assert proxies.no_proxy.matches("api.internal.example", 80)
    env = {"http_proxy": "http://p:1", "no_proxy": "a.example", "NO_PROXY": "b.example"}
    proxies = environment_proxies(env)
    assert proxies.no_proxy.matches("a.example", 80)
    assert not proxies.no_proxy.matches("b.example", 80)


# -- mount patterns -----------------------------------------------------------


@pytest.mark.parametrize(
    ("pattern", "url", "expected"),
    [
        ("all://", "http://example.com", True),
        ("all://", "https://example.com", True),
        ("http://", "http://example.com", True),
        ("http://", "https://example.com", False),
        ("all://example.com", "https://example.com/x", True),
        ("all://example.com", "https://www.example.com", False),
        ("http://*.example.com", "http://www.example.com", True),
        ("http://*.example.com", "http://example.com", False),
        ("all://*example.com", "http://example.com", True),
        ("all://*example.com", "http://a.example.com", True),
        ("all://*example.com", "http://badexample.com", False),
        ("https://example.com:8443", "https://example.com:8443/", True),
        ("https://example.com:8443", "https://example.com/", False),
        ("all://example.com:443", "https://example.com/", True),
        ("all://[::1]:8080", "http://[::1]:8080/", True),
        ("all://127.0.0.1", "http://127.0.0.1:5000/", True),
    ],
)
def test_url_pattern(pattern: str, url: str, expected: bool) -> None:
    parsed = URL(url)
    assert URLPattern(pattern).matches(parsed.scheme, parsed.host or "", parsed.port) is expected


def test_url_pattern_errors() -> None:
    with pytest.raises(webwire.InvalidURL):
        URLPattern("example.com")
    with pytest.raises(webwire.InvalidURL):
        URLPattern("all://example.com:http")
    with pytest.raises(webwire.InvalidURL):
        URLPattern("all://example.com:0")


def test_router_most_specific_wins() -> None:
    router: Router[str] = Router(
        "default",
        [
            (URLPattern("all://"), "all"),
            (URLPattern("https://"), "https"),
            (URLPattern("all://example.com"), "host"),
            (URLPattern("https://example.com"), "https-host"),
            (URLPattern("all://example.com:8443"), "port"),
            (URLPattern("all://direct.example"), None),
        ],
    )
    assert router.select(URL("http://other.example")) == "all"
    assert router.select(URL("https://other.example")) == "https"
    assert router.select(URL("http://example.com")) == "host"
    assert router.select(URL("https://example.com")) == "https-host"
    assert router.select(URL("http://example.com:8443")) == "port"
    assert router.select(URL("https://direct.example")) == "default"
    # Cached answers stay the same.
    assert router.select(URL("https://example.com")) == "https-host"
    assert sorted(router.transports()) == ["all", "host", "https", "https-host", "port"]


def test_router_no_proxy_goes_to_default() -> None:
    router: Router[str] = Router("direct", [(URLPattern("all://"), "proxy")], NoProxy("10.0.0.0/8"))
    assert router.select(URL("http://10.2.3.4/")) == "direct"
    assert router.select(URL("http://192.168.0.1/")) == "proxy"


def test_router_many_threads() -> None:
    """A router shared by threads: every thread gets the right answers while
    the cache fills and is reset."""
    router: Router[str] = Router(
        "default", [(URLPattern("https://"), "tls"), (URLPattern("http://"), "plain")]
    )
    errors: list[str] = []

    def work(n: int) -> None:
        for i in range(2000):
            scheme = "https" if (i + n) % 2 else "http"
            got = router.select(URL(f"{scheme}://h{i % 700}.example/"))
            if got != ("tls" if scheme == "https" else "plain"):
                errors.append(got)

    threads = [threading.Thread(target=work, args=(n,)) for n in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []


# -- clients -------------------------------------------------------------------


def _clear_env(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("http_proxy", "https_proxy", "all_proxy", "no_proxy"):
        monkeypatch.delenv(name, raising=False)
        monkeypatch.delenv(name.upper(), raising=False)


def test_client_reads_environment_once(monkeypatch: pytest.MonkeyPatch) -> None:
    _clear_env(monkeypatch)
    monkeypatch.setenv("HTTPS_PROXY", "http://proxy.example:3128")
    monkeypatch.setenv("NO_PROXY", "internal.example")
    client = webwire.AsyncClient()
    monkeypatch.delenv("HTTPS_PROXY")
    chosen = client._transport_for_url(URL("https://api.example/"))
    assert isinstance(chosen, webwire.HTTPTransport)
    assert chosen.proxy == webwire.Proxy("http://proxy.example:3128")
    assert client._transport_for_url(URL("https://api.internal.example/")) is client.transport
    assert client._transport_for_url(URL("http://api.example/")) is client.transport


def test_client_without_proxy_has_no_router(monkeypatch: pytest.MonkeyPatch) -> None:
    _clear_env(monkeypatch)
    client = webwire.AsyncClient()
    assert client._router is None
    assert client._transport_for_url(URL("https://a.example/")) is client.transport


@pytest.mark.parametrize(
    "options",
    [
        {"trust_env": False},
        {"proxy": "http://explicit.example:1"},
        {"mounts": {}},
        {"transport": webwire.HTTPTransport()},
    ],
)
def test_explicit_settings_ignore_environment(
    monkeypatch: pytest.MonkeyPatch, options: dict[str, object]
) -> None:
    _clear_env(monkeypatch)
    monkeypatch.setenv("ALL_PROXY", "http://env.example:1")
    client = webwire.Client(**options)  # type: ignore[arg-type]
    chosen = client._client._transport_for_url(URL("https://a.example/"))
    assert getattr(chosen, "proxy", None) != webwire.Proxy("http://env.example:1")


def test_client_bad_environment_proxy(monkeypatch: pytest.MonkeyPatch) -> None:
    _clear_env(monkeypatch)
    monkeypatch.setenv("https_proxy", "ftp://proxy.example")
    with pytest.raises(webwire.UnsupportedProtocol):
        webwire.AsyncClient()


def test_missing_python_socks_names_the_extra(monkeypatch: pytest.MonkeyPatch) -> None:
    import sys

    from webwire._transport import _socks

    for name in list(sys.modules):
        if name == "python_socks" or name.startswith("python_socks."):
            monkeypatch.delitem(sys.modules, name)
    monkeypatch.setitem(sys.modules, "python_socks", None)  # type: ignore[arg-type]
    with pytest.raises(ImportError, match=r"webwire\[socks\]"):
        _socks._protocols()


def test_mount_values_must_be_transports() -> None:
    with pytest.raises(TypeError, match="transport or None"):
        webwire.AsyncClient(mounts={"all://": "http://proxy.example"})  # type: ignore[dict-item]
    with pytest.raises(webwire.InvalidURL):
        webwire.Client(mounts={"example.com": None})
