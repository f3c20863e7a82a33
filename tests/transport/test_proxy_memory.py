"""Proxy failure paths on the in-memory backend, with scripted proxies: the
SOCKS replies and early closes that the real test proxies never produce
(pproxy confirms a SOCKS5 connection before it tries the origin and does
not speak SOCKS4a), a proxy that closes before answering ``CONNECT``, and
handshake time limits at exact virtual times."""

from __future__ import annotations

import math

import pytest

import webwire
from webwire._backends.memory import MemoryBackend, MemoryStream, memory_test

PROXY = "proxy.test"
ORIGIN = "origin.test"


async def read_exact(stream: MemoryStream, size: int) -> bytes:
    data = b""
    while len(data) < size:
        chunk = await stream.read(size - len(data), None)
        assert chunk, "the client closed early"
        data += chunk
    return data


async def answer_http(stream: MemoryStream, body: bytes = b"ok") -> None:
    """Read one request head and answer 200 with ``body``."""
    buffer = b""
    while b"\r\n\r\n" not in buffer:
        chunk = await stream.read(65536, None)
        if not chunk:
            return
        buffer += chunk
    await stream.write(b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n%s" % (len(body), body), None)


@pytest.fixture
def backend() -> MemoryBackend:
    return MemoryBackend()


@memory_test
async def test_socks5_host_unreachable_reply(backend: MemoryBackend) -> None:
    requests: list[bytes] = []

    async def socks(stream: MemoryStream) -> None:
        assert await read_exact(stream, 3) == b"\x05\x01\x00"  # no auth offered
        await stream.write(b"\x05\x00", None)
        head = await read_exact(stream, 5)
        requests.append(head + await read_exact(stream, head[4] + 2))
        await stream.write(b"\x05\x04\x00\x01\x00\x00\x00\x00\x00\x00", None)

    backend.serve_tcp(PROXY, 1080, socks)
    async with webwire.AsyncClient(_backend=backend, proxy=f"socks5h://{PROXY}") as client:
        with pytest.raises(webwire.ProxyError, match="Host unreachable") as info:
            await client.get(f"http://{ORIGIN}:8080/")
    assert info.value.status_code is None
    # socks5h: the host name goes to the proxy (address type 3).
    assert requests == [b"\x05\x01\x00\x03" + bytes([len(ORIGIN)]) + ORIGIN.encode() + b"\x1f\x90"]
    assert backend.open_connections() == []


@memory_test
async def test_socks5_domain_bound_address_and_tunnel(backend: MemoryBackend) -> None:
    """A success reply with a domain bound address is read to its end; the
    stream then carries HTTP."""

    async def socks(stream: MemoryStream) -> None:
        await read_exact(stream, 3)
        await stream.write(b"\x05\x00", None)
        head = await read_exact(stream, 5)
        await read_exact(stream, head[4] + 2)
        bound = b"bound.test"
        await stream.write(b"\x05\x00\x00\x03" + bytes([len(bound)]) + bound + b"\x00\x50", None)
        await answer_http(stream, b"through")

    backend.serve_tcp(PROXY, 1080, socks)
    async with webwire.AsyncClient(_backend=backend, proxy=f"socks5h://{PROXY}") as client:
        response = await client.get(f"http://{ORIGIN}/")
        assert response.text == "through"


@memory_test
async def test_socks5_proxy_closes_during_handshake(backend: MemoryBackend) -> None:
    async def socks(stream: MemoryStream) -> None:
        await read_exact(stream, 3)

    backend.serve_tcp(PROXY, 1080, socks)
    async with webwire.AsyncClient(_backend=backend, proxy=f"socks5h://{PROXY}") as client:
        with pytest.raises(webwire.ProxyError, match="closed the connection"):
            await client.get(f"http://{ORIGIN}/")
    assert backend.open_connections() == []


@memory_test
async def test_socks5_wants_credentials_we_do_not_have(backend: MemoryBackend) -> None:
    async def socks(stream: MemoryStream) -> None:
        await read_exact(stream, 3)
        await stream.write(b"\x05\xff", None)  # no acceptable method

    backend.serve_tcp(PROXY, 1080, socks)
    async with webwire.AsyncClient(_backend=backend, proxy=f"socks5h://{PROXY}") as client:
        with pytest.raises(webwire.ProxyError, match="authentication"):
            await client.get(f"http://{ORIGIN}/")


@memory_test
async def test_socks4a_sends_the_host_name_and_user(backend: MemoryBackend) -> None:
    received: list[bytes] = []

    async def socks(stream: MemoryStream) -> None:
        data = b""
        while data.count(b"\x00") < 4 + 2:  # port/ip zeros, user, host
            data += await stream.read(1, None)
            if data.endswith(ORIGIN.encode() + b"\x00"):
                break
        received.append(data)
        await stream.write(b"\x00\x5a\x00\x00\x00\x00\x00\x00", None)
        await answer_http(stream)

    backend.serve_tcp(PROXY, 1080, socks)
    proxy = webwire.Proxy(f"socks4a://{PROXY}", auth=("alice", ""))
    async with webwire.AsyncClient(_backend=backend, proxy=proxy) as client:
        assert (await client.get(f"http://{ORIGIN}/")).text == "ok"
    assert received == [
        b"\x04\x01\x00\x50\x00\x00\x00\x01" + b"alice\x00" + ORIGIN.encode() + b"\x00"
    ]


@memory_test
async def test_socks4_rejected(backend: MemoryBackend) -> None:
    async def socks(stream: MemoryStream) -> None:
        await read_exact(stream, 9)
        await stream.write(b"\x00\x5b\x00\x00\x00\x00\x00\x00", None)

    backend.serve_tcp(PROXY, 1080, socks)
    async with webwire.AsyncClient(_backend=backend, proxy=f"socks4://{PROXY}") as client:
        with pytest.raises(webwire.ProxyError, match="rejected"):
            await client.get("http://10.1.2.3/")


@memory_test
async def test_socks_handshake_timeout_is_a_connect_timeout(backend: MemoryBackend) -> None:
    async def socks(stream: MemoryStream) -> None:
        await backend.sleep(math.inf)

    backend.serve_tcp(PROXY, 1080, socks)
    timeout = webwire.Timeout(10.0, connect=2.0)
    async with webwire.AsyncClient(
        _backend=backend, proxy=f"socks5h://{PROXY}", timeout=timeout
    ) as client:
        start = backend.monotonic()
        with pytest.raises(webwire.ConnectTimeout):
            await client.get(f"http://{ORIGIN}/")
        assert backend.monotonic() - start == pytest.approx(2.0)
    assert backend.open_connections() == []


@memory_test
async def test_connect_proxy_closes_before_answering(backend: MemoryBackend) -> None:
    heads: list[bytes] = []

    async def proxy(stream: MemoryStream) -> None:
        buffer = b""
        while b"\r\n\r\n" not in buffer:
            buffer += await stream.read(65536, None)
        heads.append(buffer)

    backend.serve_tcp(PROXY, 8080, proxy)
    client = webwire.AsyncClient(
        _backend=backend, proxy=webwire.Proxy(f"http://u:p@{PROXY}:8080", headers={"X-Hop": "1"})
    )
    async with client:
        with pytest.raises(webwire.ProxyError) as info:
            await client.get(f"https://{ORIGIN}/")
    assert info.value.status_code is None
    lines = heads[0].split(b"\r\n")
    assert lines[0] == b"CONNECT origin.test:443 HTTP/1.1"
    assert b"Host: origin.test:443" in lines
    assert b"X-Hop: 1" in lines
    assert b"Proxy-Authorization: Basic dTpw" in lines
    assert backend.open_connections() == []


@memory_test
async def test_forwarded_request_head(backend: MemoryBackend) -> None:
    heads: list[bytes] = []

    async def proxy(stream: MemoryStream) -> None:
        buffer = b""
        while b"\r\n\r\n" not in buffer:
            buffer += await stream.read(65536, None)
        heads.append(buffer)
        await stream.write(b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n", None)

    backend.serve_tcp(PROXY, 3128, proxy)
    async with webwire.AsyncClient(_backend=backend, proxy=f"http://u:p@{PROXY}:3128") as client:
        await client.get(f"http://{ORIGIN}:8000/a/b?c=d")
        await client.get("http://[::1]/x")
    first = heads[0].split(b"\r\n")
    assert first[0] == b"GET http://origin.test:8000/a/b?c=d HTTP/1.1"
    assert b"Host: origin.test:8000" in first
    assert b"Proxy-Authorization: Basic dTpw" in first
    assert heads[1].split(b"\r\n")[0] == b"GET http://[::1]/x HTTP/1.1"


@memory_test
async def test_forwarded_407(backend: MemoryBackend) -> None:
    async def proxy(stream: MemoryStream) -> None:
        buffer = b""
        while b"\r\n\r\n" not in buffer:
            buffer += await stream.read(65536, None)
        await stream.write(
            b"HTTP/1.1 407 Proxy Authentication Required\r\n"
            b"Proxy-Authenticate: Basic\r\nContent-Length: 4\r\n\r\ndeny",
            None,
        )

    backend.serve_tcp(PROXY, 3128, proxy)
    async with webwire.AsyncClient(_backend=backend, proxy=f"http://{PROXY}:3128") as client:
        with pytest.raises(webwire.ProxyError) as info:
            await client.get(f"http://{ORIGIN}/")
        assert info.value.status_code == 407
        assert info.value.request is not None
    assert backend.open_connections() == []


@memory_test
async def test_socks_handshake_bounded_as_a_whole(backend: MemoryBackend) -> None:
    """A proxy answering each step just within the limit still cannot
    stretch the handshake past ``Timeout.connect``."""

    async def socks(stream: MemoryStream) -> None:
        await read_exact(stream, 3)
        await backend.sleep(1.5)
        await stream.write(b"\x05\x00", None)
        head = await read_exact(stream, 5)
        await read_exact(stream, head[4] + 2)
        await backend.sleep(1.5)
        await stream.write(b"\x05\x00\x00\x01\x00\x00\x00\x00\x00\x00", None)
        await backend.sleep(math.inf)

    backend.serve_tcp(PROXY, 1080, socks)
    timeout = webwire.Timeout(10.0, connect=2.0)
    async with webwire.AsyncClient(
        _backend=backend, proxy=f"socks5h://{PROXY}", timeout=timeout
    ) as client:
        start = backend.monotonic()
        with pytest.raises(webwire.ConnectTimeout):
            await client.get(f"http://{ORIGIN}/")
        assert backend.monotonic() - start == pytest.approx(2.0)


@memory_test
async def test_socks5_local_resolution_uses_the_dns_cache(backend: MemoryBackend) -> None:
    """``socks5://`` resolves the origin here, once per TTL, and sends the
    address to the proxy."""
    kinds: list[int] = []

    async def socks(stream: MemoryStream) -> None:
        await read_exact(stream, 3)
        await stream.write(b"\x05\x00", None)
        head = await read_exact(stream, 4)
        kinds.append(head[3])
        if head[3] == 3:  # a domain: length byte, name, port
            size = (await read_exact(stream, 1))[0]
            await read_exact(stream, size + 2)
        else:  # an IPv4 address and port
            await read_exact(stream, 6)
        await stream.write(b"\x05\x00\x00\x01\x00\x00\x00\x00\x00\x00", None)
        await answer_http(stream)

    backend.serve_tcp(PROXY, 1080, socks)
    backend.serve_tcp(ORIGIN, 80)
    async with webwire.AsyncClient(_backend=backend, proxy=f"socks5://{PROXY}") as client:
        response = await client.get(f"http://{ORIGIN}/", headers={"Connection": "close"})
        assert response.text == "ok"
        response = await client.get(f"http://{ORIGIN}/", headers={"Connection": "close"})
        assert response.text == "ok"
    # The memory resolver maps a name to itself: sent as a domain (type 3)
    # because it is not an IP, but resolved here only once.
    assert backend.resolutions.count((ORIGIN, 80)) == 1
    assert kinds == [3, 3]
