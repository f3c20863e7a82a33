"""HTTP/2 against hypercorn: over TLS with ALPN, and cleartext with prior
knowledge (h2c). Each scenario runs on asyncio, trio and the blocking
client; concurrent parts use tasks on the async side and threads on the
blocking one."""

from __future__ import annotations

import hashlib
import threading
from collections.abc import Callable, Coroutine
from typing import Any

import pytest
from app import pattern_bytes

import webwire
from webwire._sync import run_sync

OpenApi = Callable[..., Any]
Scenario = Callable[[OpenApi, Any], Coroutine[Any, Any, None]]

MIB = 1024 * 1024


def options(target: tuple[Any, dict[str, Any]], **kwargs: Any) -> dict[str, Any]:
    server, extra = target
    result: dict[str, Any] = {"base_url": str(server.url), "verify": server.verify, **extra}
    result.update(kwargs)
    return result


def single_connection(api: Any) -> None:
    pool = api.pool
    conns = pool.connections()
    assert len(conns) == 1, conns
    assert conns[0].http_version == "HTTP/2"


async def s_get_is_http2(open_api: OpenApi, target: Any) -> None:
    async with open_api(**options(target)) as api:
        r = await api.get("/echo?a=1")
        assert r.status_code == 200
        assert r.http_version == "HTTP/2"
        doc = r.json()
        assert doc["http_version"] == "2"
        assert doc["args"] == [["a", "1"]]
        # Host travels as :authority (hypercorn shows it as one host field).
        assert [v for n, v in doc["headers"] if n == "host"] == [f"127.0.0.1:{target[0].url.port}"]
        r = await api.get("/json")
        single_connection(api)
        assert api.in_use() == 0 and api.idle() == 1


async def s_hundred_concurrent_on_one_connection(open_api: OpenApi, target: Any) -> None:
    async with open_api(**options(target)) as api:
        await api.get("/json")  # settle the connection and its SETTINGS

        async def one(i: int) -> Any:
            r = await api.get(f"/echo?i={i}")
            assert r.json()["args"] == [["i", str(i)]]
            return r

        results = await api.gather(100, one)
        errors = [r for r in results if isinstance(r, BaseException)]
        assert not errors, errors[:3]
        assert all(r.http_version == "HTTP/2" for r in results)
        single_connection(api)
        assert api.in_use() == 0


async def s_large_download(open_api: OpenApi, target: Any) -> None:
    size = 20 * MIB  # beyond the 16 MiB connection window
    async with open_api(**options(target)) as api:
        digest = hashlib.sha256()
        received = 0
        async with api.stream("GET", f"/bytes/{size}") as r:
            assert r.http_version == "HTTP/2"
            async for chunk in r.aiter_bytes():
                digest.update(chunk)
                received += len(chunk)
        assert received == size
        assert digest.hexdigest() == hashlib.sha256(pattern_bytes(size)).hexdigest()
        assert api.in_use() == 0


async def s_large_upload(open_api: OpenApi, target: Any) -> None:
    body = pattern_bytes(17 * MIB)  # far beyond the 64 KiB default window
    async with open_api(**options(target)) as api:
        r = await api.post("/echo", content=body)
        assert r.http_version == "HTTP/2"
        doc = r.json()
        assert doc["body_length"] == len(body)
        assert doc["body_sha256"] == hashlib.sha256(body).hexdigest()
        chunks = [body[i : i + MIB] for i in range(0, 3 * MIB, MIB)]
        r = await api.post("/echo", content=api.body(chunks))
        assert r.json()["body_length"] == 3 * MIB


async def s_closing_one_stream_leaves_others(open_api: OpenApi, target: Any) -> None:
    async with open_api(**options(target)) as api:
        async with api.stream("GET", f"/bytes/{8 * MIB}") as big:
            async with api.stream("GET", "/stall") as stalled:
                assert stalled.status_code == 200
                # Give up on the stalled stream: RST_STREAM, connection kept.
                await stalled.aclose()
            r = await api.get("/json")
            assert r.status_code == 200
            data = await big.aread()
            assert len(data) == 8 * MIB
        single_connection(api)
        assert api.in_use() == 0 and api.idle() == 1


async def s_head_and_no_content(open_api: OpenApi, target: Any) -> None:
    async with open_api(**options(target)) as api:
        r = await api.head("/bytes/1000")
        assert r.status_code == 200 and r.content == b""
        r = await api.get("/status/204")
        assert r.status_code == 204 and r.content == b""
        r = await api.get("/redirect/2")
        assert r.status_code == 200 and [h.status_code for h in r.history] == [302, 302]
        single_connection(api)


async def s_read_timeout_on_stalled_stream(open_api: OpenApi, target: Any) -> None:
    async with open_api(**options(target, timeout=webwire.Timeout(5.0, read=0.3))) as api:
        with pytest.raises(webwire.ReadTimeout):
            await api.get("/stall?head=0")
        r = await api.get("/json")  # the connection is still good
        assert r.status_code == 200
        single_connection(api)
        assert api.in_use() == 0


async def s_early_413_ends_a_large_upload(open_api: OpenApi, target: Any) -> None:
    taken = [0]
    piece = b"u" * (64 * 1024)

    def pieces() -> Any:
        for _ in range(50 * MIB // len(piece)):
            taken[0] += len(piece)
            yield piece

    async def apieces() -> Any:
        for item in pieces():
            yield item

    async with open_api(**options(target)) as api:
        body = apieces() if api.is_async else pieces()
        # linger: hypercorn drops a finished stream's state and then fails the
        # whole connection on DATA frames still in flight for it; the app
        # keeps the stream open a moment after its 413, as servers do.
        r = await api.post("/reject-upload?linger=0.5", content=body)
        assert r.status_code == 413
        assert r.http_version == "HTTP/2"
        assert r.content == b"upload rejected"
        assert taken[0] < 50 * MIB  # the rest of the upload was abandoned
        # Only the stream ended: the connection carries the next request.
        assert (await api.get("/json")).status_code == 200
        single_connection(api)
        assert api.in_use() == 0


SCENARIOS: dict[str, Scenario] = {
    name[2:]: fn for name, fn in dict(globals()).items() if name.startswith("s_")
}

TARGETS = ["tls-alpn", "h2c"]


@pytest.fixture(params=TARGETS)
def target(request: pytest.FixtureRequest) -> tuple[Any, dict[str, Any]]:
    """(server, client options): hypercorn over TLS negotiating h2, or
    cleartext hypercorn with HTTP/2 prior knowledge."""
    if request.param == "tls-alpn":
        return request.getfixturevalue("hypercorn_https"), {}
    return request.getfixturevalue("hypercorn_http"), {"http1": False, "http2": True}


@pytest.mark.anyio
@pytest.mark.parametrize("name", sorted(SCENARIOS))
async def test_async(name: str, async_api: OpenApi, target: Any) -> None:
    await SCENARIOS[name](async_api, target)


@pytest.mark.parametrize("name", sorted(SCENARIOS))
def test_sync(name: str, sync_api: OpenApi, target: Any) -> None:
    run_sync(SCENARIOS[name](sync_api, target))


# -- version choice --------------------------------------------------------


async def s_version_choice(open_api: OpenApi, servers: dict[str, Any]) -> None:
    h1_tls = servers["uvicorn_https"]  # uvicorn has no HTTP/2: ALPN picks http/1.1
    async with open_api(verify=h1_tls.verify) as api:
        r = await api.get(f"{h1_tls.url}/json")
        assert r.http_version == "HTTP/1.1"
    async with open_api(verify=h1_tls.verify, http1=False, http2=True) as api:
        with pytest.raises(webwire.ConnectError, match="HTTP/2"):
            await api.get(f"{h1_tls.url}/json")
        assert api.in_use() == 0
    h2_tls = servers["hypercorn_https"]
    async with open_api(verify=h2_tls.verify, http2=False) as api:
        r = await api.get(f"{h2_tls.url}/json")
        assert r.http_version == "HTTP/1.1"
    cleartext = servers["hypercorn_http"]
    async with open_api() as api:  # cleartext without prior knowledge: HTTP/1.1
        r = await api.get(f"{cleartext.url}/json")
        assert r.http_version == "HTTP/1.1"
    async with open_api(http1=False, http2=True) as api:
        r = await api.get(f"{cleartext.url}/json")
        assert r.http_version == "HTTP/2"


@pytest.fixture
def servers(request: pytest.FixtureRequest) -> dict[str, Any]:
    return {
        name: request.getfixturevalue(name)
        for name in ("uvicorn_https", "hypercorn_https", "hypercorn_http")
    }


@pytest.mark.anyio
async def test_version_choice_async(async_api: OpenApi, servers: dict[str, Any]) -> None:
    await s_version_choice(async_api, servers)


def test_version_choice_sync(sync_api: OpenApi, servers: dict[str, Any]) -> None:
    run_sync(s_version_choice(sync_api, servers))


def test_no_version_is_an_error() -> None:
    with pytest.raises(ValueError):
        webwire.Client(http1=False, http2=False)


# -- the blocking client shared by many threads ------------------------------


@pytest.mark.slow
@pytest.mark.timeout(300)
def test_32_threads_share_one_http2_connection(hypercorn_https: Any) -> None:
    threads, per_thread = 32, 10_000 // 32 + 1
    failures: list[BaseException] = []
    count = [0]
    lock = threading.Lock()
    with webwire.Client(
        base_url=str(hypercorn_https.url), verify=hypercorn_https.verify, http1=False
    ) as client:
        client.get("/json")

        def work(t: int) -> None:
            try:
                for i in range(per_thread):
                    r = client.get(f"/echo?t={t}&i={i}")
                    assert r.http_version == "HTTP/2"
                    assert r.json()["args"] == [["t", str(t)], ["i", str(i)]]
                    with lock:
                        count[0] += 1
            except BaseException as exc:
                failures.append(exc)

        workers = [threading.Thread(target=work, args=(t,)) for t in range(threads)]
        for worker in workers:
            worker.start()
        for worker in workers:
            worker.join(300)
        assert not failures, failures[:3]
        assert count[0] == threads * per_thread >= 10_000
        pool = client._client._transport.pool
        conns = pool.connections()
        assert len(conns) == 1 and conns[0].requests_sent == count[0] + 1
        assert pool.connections_in_use() == 0
