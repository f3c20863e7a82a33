"""Requests through real proxies: proxy.py (HTTP forwarding and ``CONNECT``
tunnels, with and without Basic credentials) and pproxy (SOCKS4 and
SOCKS5, with and without username/password), to hypercorn and uvicorn over
HTTP/1.1 and HTTP/2.

Each scenario runs on asyncio, on trio and through the blocking client.
"""

from __future__ import annotations

import socket
from collections.abc import Callable, Coroutine
from dataclasses import dataclass
from typing import Any

import pytest
from app import pattern_bytes
from proxies import (  # noqa: F401  (fixtures)
    PROXY_PASSWORD,
    PROXY_USER,
    ProxyInfo,
    SocksProxies,
    http_proxy,
    http_proxy_auth,
    https_proxy,
    socks_proxies,
)

import webwire
from conftest import ServerInfo
from webwire._sync import run_sync

OpenApi = Callable[..., Any]


@dataclass(frozen=True)
class Setup:
    """Everything a scenario may use."""

    http: ServerInfo  # hypercorn, cleartext
    https: ServerInfo  # hypercorn, TLS
    other_http: ServerInfo  # uvicorn, cleartext
    proxy: ProxyInfo  # proxy.py
    proxy_auth: ProxyInfo  # proxy.py wanting credentials
    socks: SocksProxies
    ca_path: str
    tls_proxy: ProxyInfo  # proxy.py over TLS
    closed_port: int  # nothing listens there


Scenario = Callable[[OpenApi, Setup], Coroutine[Any, Any, None]]


def _closed_port() -> int:
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    port: int = sock.getsockname()[1]
    sock.close()
    return port


@pytest.fixture
def setup(
    hypercorn_http: ServerInfo,
    hypercorn_https: ServerInfo,
    uvicorn_http: ServerInfo,
    http_proxy: ProxyInfo,  # noqa: F811
    http_proxy_auth: ProxyInfo,  # noqa: F811
    socks_proxies: SocksProxies,  # noqa: F811
    https_proxy: ProxyInfo,  # noqa: F811
    ca_path: str,
    monkeypatch: pytest.MonkeyPatch,
) -> Setup:
    """The servers and proxies, with no proxy variable in the environment."""
    for name in ("http_proxy", "https_proxy", "all_proxy", "no_proxy"):
        monkeypatch.delenv(name, raising=False)
        monkeypatch.delenv(name.upper(), raising=False)
    return Setup(
        hypercorn_http,
        hypercorn_https,
        uvicorn_http,
        http_proxy,
        http_proxy_auth,
        socks_proxies,
        ca_path,
        https_proxy,
        _closed_port(),
    )


def header_values(echo: dict[str, Any], name: str) -> list[str]:
    """Values of header ``name`` in an ``/echo`` document."""
    return [value for key, value in echo["headers"] if key == name]


def pool_of(api: Any) -> Any:
    """The pool of the transport carrying the last requests."""
    client = getattr(api.client, "_client", api.client)
    return client._transport.pool


# -- HTTP proxies -------------------------------------------------------------


async def s_forward_http(open_api: OpenApi, s: Setup) -> None:
    """``http`` origins are forwarded in absolute form by proxy.py on
    connections to the proxy pooled per origin; the credentials go to the
    proxy, which removes them from the first request of a connection (later
    ones it relays untouched, so only first requests are checked)."""
    async with open_api(proxy=s.proxy_auth.with_auth(), http2=False) as api:
        clients = []
        for server in (s.http, s.other_http, s.http):
            response = await api.get(f"{server.url}/echo?x=1", headers={"X-Test": "yes"})
            assert response.status_code == 200
            echo = response.json()
            assert echo["path"] == "/echo"
            assert echo["query"] == "x=1"
            assert header_values(echo, "x-test") == ["yes"]
            clients.append(echo["client"])
            if len(clients) < 3:
                assert header_values(echo, "via") != []  # it went through proxy.py
                assert header_values(echo, "proxy-authorization") == []
        assert clients[0] == clients[2]  # the connection was reused
        assert len(pool_of(api).connections()) == 2


async def s_connect_tunnel_http1(open_api: OpenApi, s: Setup) -> None:
    """An ``https`` origin through a ``CONNECT`` tunnel, TLS with the origin
    inside, HTTP/1.1; the tunnel is pooled and reused."""
    proxy = webwire.Proxy(s.proxy_auth.url, auth=(PROXY_USER, PROXY_PASSWORD))
    async with open_api(proxy=proxy, verify=s.ca_path, http2=False) as api:
        first = await api.get(f"{s.https.url}/echo")
        second = await api.get(f"{s.https.url}/echo")
        assert first.status_code == second.status_code == 200
        assert first.http_version == "HTTP/1.1"
        assert header_values(first.json(), "proxy-authorization") == []
        # The same connection (the client port the origin saw) both times.
        assert first.json()["client"] == second.json()["client"]
        assert len(pool_of(api).connections()) == 1


async def s_connect_tunnel_http2(open_api: OpenApi, s: Setup) -> None:
    """HTTP/2 negotiated with ALPN inside the tunnel; concurrent requests
    share the one tunnelled connection."""
    async with open_api(proxy=s.proxy.url, verify=s.ca_path, http2=True) as api:

        async def one(i: int) -> Any:
            return await api.get(f"{s.https.url}/echo?i={i}")

        responses = await api.gather(4, one)
        for i, response in enumerate(responses):
            assert not isinstance(response, BaseException), response
            assert response.http_version == "HTTP/2"
            assert response.json()["query"] == f"i={i}"
        assert len(pool_of(api).connections()) == 1


async def s_https_and_http_through_one_proxy(open_api: OpenApi, s: Setup) -> None:
    """One client sends ``http`` (forwarded) and ``https`` (tunnelled)
    requests through the same proxy."""
    async with open_api(proxy=s.proxy.url, verify=s.ca_path) as api:
        assert (await api.get(f"{s.http.url}/json")).status_code == 200
        assert (await api.get(f"{s.https.url}/json")).status_code == 200
        assert len(pool_of(api).connections()) == 2


async def s_missing_credentials_407(open_api: OpenApi, s: Setup) -> None:
    """proxy.py answers 407 without credentials, to ``CONNECT`` and to a
    forwarded request alike: ProxyError with status 407."""
    async with open_api(proxy=s.proxy_auth.url, verify=s.ca_path) as api:
        for url in (f"{s.https.url}/echo", f"{s.http.url}/echo"):
            with pytest.raises(webwire.ProxyError) as info:
                await api.get(url)
            assert info.value.status_code == 407
            assert "407" in str(info.value)
        assert pool_of(api).connections_in_use() == 0


async def s_wrong_credentials_407(open_api: OpenApi, s: Setup) -> None:
    """Refused credentials: ProxyError 407."""
    url = s.proxy_auth.with_auth(PROXY_USER, "wrong")
    async with open_api(proxy=url, verify=s.ca_path) as api:
        with pytest.raises(webwire.ProxyError) as info:
            await api.get(f"{s.https.url}/echo")
        assert info.value.status_code == 407


async def s_connect_refused(open_api: OpenApi, s: Setup) -> None:
    """The proxy cannot reach the origin: its non-2xx answer to
    ``CONNECT`` is a ProxyError carrying the status (502 from proxy.py)."""
    async with open_api(proxy=s.proxy.url, verify=s.ca_path) as api:
        with pytest.raises(webwire.ProxyError) as info:
            await api.get(f"https://127.0.0.1:{s.closed_port}/")
        assert info.value.status_code is not None
        assert not 200 <= info.value.status_code < 300
        assert pool_of(api).connections() == []


async def s_unreachable_proxy(open_api: OpenApi, s: Setup) -> None:
    """Nothing listens at the proxy address: ConnectError."""
    for scheme in ("http", "socks5"):
        async with open_api(proxy=f"{scheme}://127.0.0.1:{s.closed_port}") as api:
            with pytest.raises(webwire.ConnectError):
                await api.get(f"{s.http.url}/echo")


async def s_redirect_keeps_proxy_credentials_away(open_api: OpenApi, s: Setup) -> None:
    """A redirect to another origin goes through the proxy again; the proxy
    credentials never reach either origin."""
    target = f"{s.other_http.url}/echo"
    async with open_api(proxy=s.proxy_auth.with_auth(), verify=s.ca_path) as api:
        response = await api.get(f"{s.http.url}/redirect-to", params={"url": target})
        assert response.status_code == 200
        assert str(response.url) == target
        assert header_values(response.json(), "proxy-authorization") == []
        assert len(response.history) == 1


async def s_https_proxy(open_api: OpenApi, s: Setup) -> None:
    """An ``https://`` proxy: TLS to the proxy, then forwarded ``http`` and,
    for ``https`` origins, TLS inside the TLS tunnel (HTTP/1.1 and HTTP/2)."""
    for http2 in (False, True):
        async with open_api(proxy=s.tls_proxy.url, verify=s.ca_path, http2=http2) as api:
            plain = await api.get(f"{s.http.url}/echo")
            assert plain.status_code == 200
            assert header_values(plain.json(), "via") != []
            for _ in range(2):
                tls = await api.get(f"{s.https.url}/bytes/200000")
                assert tls.content == pattern_bytes(200000)
                assert tls.http_version == ("HTTP/2" if http2 else "HTTP/1.1")
            assert len(pool_of(api).connections()) == 2
    async with open_api(proxy=s.tls_proxy.url) as api:  # the test CA is not trusted
        with pytest.raises(webwire.ConnectError):
            await api.get(f"{s.http.url}/echo")


# -- SOCKS proxies ------------------------------------------------------------


async def s_socks5(open_api: OpenApi, s: Setup) -> None:
    """SOCKS5 (names resolved here) and SOCKS5h (by the proxy) to cleartext
    and TLS origins, HTTP/1.1 and HTTP/2."""
    for scheme in ("socks5", "socks5h"):
        proxy = s.socks.socks5.url.replace("socks5", scheme, 1)
        async with open_api(proxy=proxy, verify=s.ca_path) as api:
            plain = await api.get(f"http://localhost:{s.http.url.port}/echo")
            assert plain.status_code == 200
            assert plain.json()["path"] == "/echo"
            tls = await api.get(f"https://localhost:{s.https.url.port}/echo")
            assert tls.status_code == 200
            assert tls.http_version == "HTTP/2"
            again = await api.get(f"https://localhost:{s.https.url.port}/echo")
            assert again.json()["client"] == tls.json()["client"]


async def s_socks5_credentials(open_api: OpenApi, s: Setup) -> None:
    """SOCKS5 username/password (RFC 1929) from the URL or ``auth=``."""
    for proxy in (
        s.socks.socks5_auth.with_auth(),
        webwire.Proxy(s.socks.socks5_auth.url, auth=(PROXY_USER, PROXY_PASSWORD)),
    ):
        async with open_api(proxy=proxy, verify=s.ca_path, http2=False) as api:
            response = await api.get(f"{s.https.url}/echo")
            assert response.status_code == 200
            assert response.http_version == "HTTP/1.1"


async def s_socks5_refused_credentials(open_api: OpenApi, s: Setup) -> None:
    """Wrong or missing SOCKS5 credentials: ProxyError, nothing leaked."""
    for proxy in (s.socks.socks5_auth.with_auth(PROXY_USER, "wrong"), s.socks.socks5_auth.url):
        async with open_api(proxy=proxy) as api:
            with pytest.raises(webwire.ProxyError) as info:
                await api.get(f"{s.http.url}/echo")
            assert info.value.status_code is None
            assert pool_of(api).connections() == []


async def s_socks4(open_api: OpenApi, s: Setup) -> None:
    """SOCKS4 (IPv4 addresses, names resolved here) to cleartext and TLS."""
    async with open_api(proxy=s.socks.socks4.url, verify=s.ca_path) as api:
        assert (await api.get(f"http://localhost:{s.http.url.port}/echo")).status_code == 200
        tls = await api.get(f"{s.https.url}/echo")
        assert tls.status_code == 200


# -- environment and mounts ---------------------------------------------------


async def s_mounts(open_api: OpenApi, s: Setup) -> None:
    """The most specific mount wins; ``None`` means the default transport."""
    dead = webwire.HTTPTransport(proxy=f"http://127.0.0.1:{s.closed_port}")
    via_proxy = webwire.HTTPTransport(proxy=s.proxy.url, verify=s.ca_path)
    mounts: dict[str, Any] = {
        "all://": dead,
        f"http://127.0.0.1:{s.http.url.port}": None,
        "https://": via_proxy,
    }
    async with open_api(mounts=mounts, verify=s.ca_path) as api:
        assert (await api.get(f"{s.http.url}/echo")).status_code == 200  # direct
        assert (await api.get(f"{s.https.url}/echo")).status_code == 200  # via proxy.py
        assert via_proxy.pool is not None and len(via_proxy.pool.connections()) == 1
        with pytest.raises(webwire.ConnectError):
            await api.get(f"{s.other_http.url}/echo")  # the dead proxy


async def s_environment_proxies(open_api: OpenApi, s: Setup) -> None:
    """``HTTPS_PROXY``/``http_proxy`` are used, read when the client is
    built; an explicit ``proxy=`` or ``trust_env=False`` ignores them."""
    import os

    os.environ["HTTPS_PROXY"] = s.proxy_auth.url  # no credentials: 407
    os.environ["http_proxy"] = s.proxy.url
    try:
        async with open_api(verify=s.ca_path) as api:
            with pytest.raises(webwire.ProxyError) as info:
                await api.get(f"{s.https.url}/echo")
            assert info.value.status_code == 407
            assert (await api.get(f"{s.http.url}/echo")).status_code == 200
        async with open_api(verify=s.ca_path, trust_env=False) as api:
            assert (await api.get(f"{s.https.url}/echo")).status_code == 200
        async with open_api(verify=s.ca_path, proxy=s.proxy.url) as api:
            assert (await api.get(f"{s.https.url}/echo")).status_code == 200
    finally:
        del os.environ["HTTPS_PROXY"], os.environ["http_proxy"]


async def s_environment_no_proxy(open_api: OpenApi, s: Setup) -> None:
    """``NO_PROXY`` sends matching hosts around a proxy that cannot work."""
    import os

    os.environ["ALL_PROXY"] = f"http://127.0.0.1:{s.closed_port}"
    try:
        for no_proxy in ("127.0.0.1", "127.0.0.0/8", f"127.0.0.1:{s.http.url.port}", "*"):
            os.environ["NO_PROXY"] = no_proxy
            async with open_api() as api:
                assert (await api.get(f"{s.http.url}/echo")).status_code == 200
        os.environ["NO_PROXY"] = "example.com, 10.0.0.0/8"
        async with open_api() as api:
            with pytest.raises(webwire.ConnectError):
                await api.get(f"{s.http.url}/echo")
    finally:
        os.environ.pop("ALL_PROXY", None)
        os.environ.pop("NO_PROXY", None)


SCENARIOS: list[Scenario] = [
    s_forward_http,
    s_connect_tunnel_http1,
    s_connect_tunnel_http2,
    s_https_and_http_through_one_proxy,
    s_missing_credentials_407,
    s_wrong_credentials_407,
    s_connect_refused,
    s_unreachable_proxy,
    s_redirect_keeps_proxy_credentials_away,
    s_https_proxy,
    s_socks5,
    s_socks5_credentials,
    s_socks5_refused_credentials,
    s_socks4,
    s_mounts,
    s_environment_proxies,
    s_environment_no_proxy,
]
IDS = [scenario.__name__[2:] for scenario in SCENARIOS]


@pytest.mark.anyio
@pytest.mark.parametrize("scenario", SCENARIOS, ids=IDS)
async def test_async(scenario: Scenario, async_api: OpenApi, setup: Setup) -> None:
    await scenario(async_api, setup)


@pytest.mark.parametrize("scenario", SCENARIOS, ids=IDS)
def test_sync(scenario: Scenario, sync_api: OpenApi, setup: Setup) -> None:
    run_sync(scenario(sync_api, setup))


@pytest.mark.parametrize("proxy_kind", ["connect", "socks5"])
def test_many_threads_share_pooled_tunnels(setup: Setup, proxy_kind: str) -> None:
    """Twelve threads share one blocking client through a proxy: every
    request succeeds and they share the HTTP/2 tunnel opened for them."""
    from concurrent.futures import ThreadPoolExecutor

    proxy = setup.proxy.url if proxy_kind == "connect" else setup.socks.socks5.url
    with webwire.Client(proxy=proxy, verify=setup.ca_path, timeout=20.0) as client:
        assert client.get(f"{setup.https.url}/json").status_code == 200

        def work(i: int) -> list[str]:
            versions = []
            for j in range(6):
                response = client.get(f"{setup.https.url}/echo?i={i}&j={j}")
                assert response.json()["query"] == f"i={i}&j={j}"
                versions.append(response.http_version)
            return versions

        with ThreadPoolExecutor(12) as pool:
            versions = [v for vs in pool.map(work, range(12)) for v in vs]
        assert versions == ["HTTP/2"] * 72
        assert len(client._client._transport.pool.connections()) == 1


def test_one_shot_helper_through_a_proxy(setup: Setup) -> None:
    """``webwire.get(url, proxy=...)`` tunnels through the proxy too."""
    response = webwire.get(
        f"{setup.https.url}/echo?one=shot", proxy=setup.socks.socks5.url, verify=setup.ca_path
    )
    assert response.json()["query"] == "one=shot"
    with pytest.raises(webwire.ProxyError) as info:
        webwire.get(f"{setup.http.url}/json", proxy=setup.proxy_auth.url)
    assert info.value.status_code == 407
