"""The WebTransport client package (``webwire.webtransport`` and
``webwire.webtransport.sync``) against real servers we did not write:
aioquic's draft-02 echo server (``wt_server_aioquic.py``) and pywebtransport
0.21's own server (``wt_server_pywebtransport.py``, the current draft).

Every scenario is one coroutine taking a :class:`Mode`; it runs on asyncio
and trio (``anyio``) with the async classes, and through the blocking
classes of ``webwire.webtransport.sync`` (the coroutine itself driven by
``run_sync`` on the blocking backend; the blocking calls return plain
values, which :func:`call` passes through). Background work (pool cleanup,
monitoring, reconnecting) is waited for by polling its outcome; durations
are never asserted (timing is covered on the fake clock by
``tests/transport/test_wt_client_api.py``).
"""

from __future__ import annotations

import inspect
import socket
import threading
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from typing import Any

import pytest
import yarl
from wt_proxy import ECHO_HOST, PROXY_AUTHORIZATION
from wt_servers import WTServerInfo

import webwire.webtransport as wt
import webwire.webtransport.sync as wt_sync
from webwire import InvalidURL, ProxyError, WebTransportError, WebwireError
from webwire._backends import get_backend
from webwire._sync import run_sync
from webwire.webtransport import ClientConfig, ClientError, ClientStats

pytestmark = pytest.mark.timeout(120)



class Mode:
    """Builds the async objects (``webwire.webtransport``) or the blocking
    ones (``webwire.webtransport.sync``) for one server; a scenario reads
    the same for both through :func:`call` and :meth:`open`."""

    def __init__(self, is_async: bool, info: WTServerInfo) -> None:
        self.is_async = is_async
        self.info = info
        self.api: Any = wt if is_async else wt_sync
        self.name = "async" if is_async else "sync"

    def config(self, **values: Any) -> ClientConfig:
        values.setdefault("ca_certs", self.info.ca_path)
        values.setdefault("connect_timeout", 10.0)
        return ClientConfig(**values)

    def url(self, path: str = "/echo") -> str:
        return str(self.info.route(path))

    def make(self, name: str, *args: Any, **kwargs: Any) -> Any:
        return getattr(self.api, name)(*args, **kwargs)

    async def sleep(self, seconds: float) -> None:
        await get_backend(None if self.is_async else "sync").sleep(seconds)

    async def until(self, predicate: Callable[[], bool], what: str, limit: float = 20.0) -> None:
        """Poll ``predicate`` every 20 ms; fail after ``limit`` seconds (a safety net, not
        a measurement)."""
        for _ in range(int(limit / 0.02)):
            if predicate():
                return
            await self.sleep(0.02)
        raise AssertionError(f"{what}: not seen within {limit} seconds")

    @asynccontextmanager
    async def open(self, obj: Any) -> AsyncIterator[Any]:
        if self.is_async:
            async with obj as entered:
                yield entered
        else:
            with obj as entered:
                yield entered


async def call(value: Any) -> Any:
    """Await ``value`` when the async API returned a coroutine; the blocking API's results
    pass through."""
    if inspect.isawaitable(value):
        return await value
    return value


def inner(session: Any) -> Any:
    """The core session object (the blocking API hands sessions out wrapped)."""
    return getattr(session, "wrapped", session)


async def echo(session: Any, data: bytes) -> bytes:
    """Send ``data`` on a new bidirectional stream and read the server's echo to its end."""
    stream = await call(session.create_bidirectional_stream())
    await call(stream.write(data, end_stream=True))
    result: bytes = await call(stream.read_all())
    return result


def closed_port_url(path: str = "/echo") -> str:
    """A URL of a UDP port on 127.0.0.1 where nothing listens."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    return f"https://127.0.0.1:{port}{path}"


def free_tcp_port() -> int:
    """A TCP port on 127.0.0.1 where nothing listens."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
    return port


def server_record(info: WTServerInfo, session: Any) -> Any:
    """The aioquic server's record of ``session`` (``None`` on pywebtransport's server)."""
    if info.server is None:
        return None
    path = inner(session).path
    records = [r for r in info.server.sessions if r.path == path]
    assert records, f"the server saw no session for {path}"
    return records[-1]


def server_saw_close(info: WTServerInfo, session: Any) -> None:
    """On the aioquic server, wait until it saw ``session`` end."""
    record = server_record(info, session)
    if record is not None:
        assert info.server.wait_for(lambda: record.closed), f"{record.path} still open"


def tag(m: Mode, what: str) -> str:
    """A query making a session's path unique to this test run."""
    return f"?t={what}-{m.name}-{threading.get_ident()}-{id(m)}"


# -- WebTransportClient and ClientStats ---------------------------------------------------


async def client_connect(m: Mode) -> None:
    config = m.config(headers={"x-app": "one"})
    client = m.make("WebTransportClient", config)
    async with m.open(client):
        client.set_default_headers({"X-Default": "two"})
        first = await call(client.connect(m.url("/echo" + tag(m, "c1")), headers={"x-call": "3"}))
        assert await echo(first, b"hello " * 100) == b"hello " * 100
        record = server_record(m.info, first)
        if record is not None:
            assert record.headers["x-app"] == "one"
            assert record.headers["x-default"] == "two"
            assert record.headers["x-call"] == "3"
            assert record.headers["user-agent"].startswith("webwire/")
        second = await call(client.connect(m.url("/echo" + tag(m, "c2")), timeout=5.0))
        assert inner(second) is not inner(first)
        assert await echo(second, b"second") == b"second"
        assert client.debug_state()["open_sessions"] == 2
        with pytest.raises(WebTransportError, match="404"):
            await call(client.connect(m.url("/no-such-route")))
        stats: ClientStats = client.stats
        assert isinstance(stats, ClientStats)
        assert (stats.connections_attempted, stats.connections_successful) == (3, 2)
        assert stats.connections_failed == 1
        assert stats.success_rate == pytest.approx(2 / 3)
        assert 0 < stats.min_connect_time <= stats.avg_connect_time <= stats.max_connect_time
        numbers = stats.to_dict()["connections"]
        assert (numbers["attempted"], numbers["successful"], numbers["failed"]) == (3, 2, 1)
        assert client.diagnose_issues() == []
        await call(first.close())
        assert client.debug_state()["open_sessions"] == 1
    # Closing the client closed the session it still had open.
    assert client.is_closed and inner(second).is_closed
    server_saw_close(m.info, second)
    with pytest.raises(ClientError):
        await call(client.connect(m.url()))


async def client_create(m: Mode) -> None:
    plain = m.api.WebTransportClient.create(url=m.url(), config=m.config())
    assert isinstance(plain, m.api.WebTransportClient)
    async with m.open(plain):
        session = await call(plain.connect(m.url()))
        assert await echo(session, b"plain") == b"plain"
    config = m.config(auto_reconnect=True, retry_delay=0.05)
    reconnecting = m.api.WebTransportClient.create(url=m.url("/echo" + tag(m, "r")), config=config)
    assert isinstance(reconnecting, m.api.ReconnectingClient)
    async with m.open(reconnecting):
        session = await call(reconnecting.get_session(10.0))
        assert session is not None
        assert await echo(session, b"auto") == b"auto"
    assert inner(session).is_closed
    with pytest.raises(InvalidURL):
        m.api.WebTransportClient.create(url="http://127.0.0.1/echo")


# -- ClientPool ---------------------------------------------------------------------------


async def client_pool(m: Mode) -> None:
    # The third client does not trust the test CA: its sessions fail.
    untrusting = ClientConfig(connect_timeout=10.0)
    pool = m.make("ClientPool", [m.config(), m.config(headers={"x-pool": "b"}), untrusting])
    async with m.open(pool):
        assert pool.get_client_count() == 3
        clients = [await call(pool.get_client()) for _ in range(6)]
        assert clients[:3] == clients[3:]
        assert len({id(client) for client in clients}) == 3
        sessions = await call(pool.connect_all(m.url("/echo" + tag(m, "pool"))))
        assert len(sessions) == 2
        assert inner(sessions[0]) is not inner(sessions[1])
        for index, session in enumerate(sessions):
            assert await echo(session, b"pool %d" % index) == b"pool %d" % index
        assert [c.stats.connections_successful for c in clients[:3]] == [1, 1, 0]
        assert clients[2].stats.connections_failed == 1
        # A client of the pool connects on its own too.
        session = await call(clients[1].connect(m.url()))
        assert await echo(session, b"own") == b"own"
        assert clients[1].stats.connections_successful == 2
    assert pool.get_client_count() == 0
    with pytest.raises(ClientError):
        await call(pool.connect_all(m.url()))
    for session in sessions:
        assert inner(session).is_closed
        server_saw_close(m.info, session)
    with pytest.raises(ClientError):
        await call(pool.get_client())


# -- PooledClient -------------------------------------------------------------------------


async def pooled_client(m: Mode) -> None:
    url = m.url("/echo" + tag(m, "pooled"))
    other = m.url("/echo" + tag(m, "pooled-other"))
    pooled = m.make("PooledClient", m.config(), pool_size=1, cleanup_interval=60.0)
    async with m.open(pooled):
        first = await call(pooled.get_session(url))
        assert await echo(first, b"one") == b"one"
        await call(pooled.return_session(first))
        assert pooled.idle_count(url) == 1
        again = await call(pooled.get_session(url))
        assert inner(again) is inner(first)  # reused, not a new session
        assert await echo(again, b"two") == b"two"
        # Another URL gets a session of its own; a second one for the same URL too.
        elsewhere = await call(pooled.get_session(other))
        assert inner(elsewhere) is not inner(first)
        extra = await call(pooled.get_session(url))
        assert inner(extra) is not inner(first)
        assert pooled.stats.connections_successful == 3
        await call(pooled.return_session(again))
        await call(pooled.return_session(extra))  # over pool_size: closed
        assert pooled.idle_count(url) == 1
        assert inner(extra).is_closed
        server_saw_close(m.info, extra)
        with pytest.raises(ClientError):
            await call(pooled.return_session(extra))
        # A session closed meanwhile is not handed out again.
        await call(again.close())
        fresh = await call(pooled.get_session(url))
        assert inner(fresh) is not inner(again)
        assert await echo(fresh, b"fresh") == b"fresh"
        await call(pooled.return_session(fresh))
        await call(pooled.return_session(elsewhere))
        assert pooled.idle_count() == 2
        # A session the server closes right away is not kept for reuse.
        closing_url = m.url("/close?code=9&" + tag(m, "pooled-close")[1:])
        closing = await call(pooled.get_session(closing_url))
        await call(closing.wait_closed(10))
        await call(pooled.return_session(closing))
        assert pooled.idle_count(closing_url) == 0
        assert inner(closing).close_code == 9
        # An idle session that ended meanwhile is swept by cleanup().
        await call(elsewhere.close())  # behind the pooled client's back
        assert await call(pooled.cleanup()) == 1
        assert pooled.idle_count() == 1
        held = await call(pooled.get_session(url))
    assert inner(fresh).is_closed and inner(elsewhere).is_closed
    server_saw_close(m.info, fresh)
    # A session still lent out is closed with the pooled client and may be given back.
    assert inner(held).is_closed
    await call(pooled.return_session(held))
    with pytest.raises(ClientError):
        await call(pooled.return_session(held))


async def pooled_concurrent(m: Mode) -> None:
    url = m.url("/echo" + tag(m, "concurrent"))
    lent: set[int] = set()
    seen: set[int] = set()
    # pool_size as large as the number of users: no session is closed for lack of room.
    pooled = m.make("PooledClient", m.config(), pool_size=5, cleanup_interval=60.0)
    async with m.open(pooled):

        async def user(index: int) -> None:
            for round_ in range(3):
                session = await call(pooled.get_session(url))
                key = id(inner(session))
                assert key not in lent, "one session handed to two users at once"
                lent.add(key)
                seen.add(key)
                payload = b"user %d round %d" % (index, round_)
                assert await echo(session, payload) == payload
                lent.discard(key)
                await call(pooled.return_session(session))

        backend = get_backend(None if m.is_async else "sync")
        async with backend.create_task_group() as group:
            for index in range(5):
                group.start_soon(user, index)
        # Never more sessions than users at once: the returned ones were reused.
        assert len(seen) == pooled.stats.connections_successful <= 5
        assert pooled.idle_count(url) == len(seen)


async def pooled_idle_cleanup(m: Mode) -> None:
    url = m.url("/echo" + tag(m, "idle"))
    pooled = m.make("PooledClient", m.config(), pool_size=2, cleanup_interval=0.1)
    async with m.open(pooled):
        session = await call(pooled.get_session(url))
        assert await echo(session, b"idle") == b"idle"
        await call(pooled.return_session(session))
        await m.until(lambda: pooled.idle_count(url) == 0, "the idle session swept")
        await m.until(lambda: inner(session).is_closed, "the idle session closed")
        server_saw_close(m.info, session)
        fresh = await call(pooled.get_session(url))
        assert inner(fresh) is not inner(session)
        assert await echo(fresh, b"after") == b"after"


# -- ReconnectingClient -------------------------------------------------------------------


async def reconnecting(m: Mode) -> None:
    config = m.config(retry_delay=0.05, max_retry_delay=0.2)
    client = m.make("ReconnectingClient", m.url("/echo" + tag(m, "rc")), config)
    async with m.open(client):
        first = await call(client.get_session(10.0))
        assert first is not None and client.is_connected
        assert await echo(first, b"first") == b"first"
        # The session ends (closed here); the client establishes a new one.
        await call(first.close())
        await m.until(lambda: client.is_connected, "a new session")
        second = await call(client.get_session(10.0))
        assert second is not None and inner(second) is not inner(first)
        assert await echo(second, b"second") == b"second"
        assert client.attempts == 2
        # The client underneath is the API's own kind: a monitor can watch it.
        assert isinstance(client.client, m.api.WebTransportClient)
        assert client.client.stats.connections_successful == 2
        monitor = m.make("ClientMonitor", client.client, 60.0)
        assert monitor.collect()["stats"]["connections"]["successful"] == 2
    assert not client.is_connected and inner(second).is_closed
    assert client.is_closed
    assert await call(client.get_session(0.5)) is None


async def reconnecting_server_closes(m: Mode) -> None:
    path = "/close?code=5&reason=bye&" + tag(m, "closing")[1:]
    config = m.config(retry_delay=0.05, retry_backoff=1.0, max_retry_delay=0.05, max_retries=0)
    client = m.make("ReconnectingClient", m.url(path), config)
    async with m.open(client):
        # Every session is closed by the server at once; the client keeps reconnecting
        # (with a delay: see the fake clock tests) and never gives up.
        await m.until(lambda: client.attempts >= 4, "reconnects after the server's closes")
        assert client.last_error is None
        assert client.stats.connections_failed == 0
        assert client.stats.connections_successful >= 3
    records = paths_seen(m.info, path)
    if m.info.server is not None:
        assert len(records) >= 3
        assert m.info.server.wait_for(lambda: all(r.closed for r in records))
        assert {r.close_code for r in records} == {5}


async def reconnecting_gives_up(m: Mode) -> None:
    config = m.config(max_retries=2, retry_delay=0.01, retry_backoff=2.0, connect_timeout=1.0)
    client = m.make("ReconnectingClient", closed_port_url(), config)
    async with m.open(client):
        assert await call(client.get_session(30.0)) is None
        assert client.attempts == 3  # the first attempt and two retries
        assert isinstance(client.last_error, WebwireError)
        assert not client.is_connected
        stats = client.stats
        assert (stats.connections_attempted, stats.connections_failed) == (3, 3)


async def server_restart(m: Mode) -> None:
    """aioquic only: the restartable server exists for the aioquic server alone."""
    config = m.config(retry_delay=0.05, max_retry_delay=0.5, max_retries=50, connect_timeout=2.0)
    client = m.make("ReconnectingClient", m.url("/echo"), config)
    async with m.open(client):
        first = await call(client.get_session(10.0))
        assert first is not None
        assert await echo(first, b"before") == b"before"
        m.info.server.restart()
        await m.until(lambda: inner(first).is_closed, "the session lost with the server")
        second = await call(client.get_session(30.0))
        assert second is not None and inner(second) is not inner(first)
        assert await echo(second, b"after restart") == b"after restart"
        assert client.attempts >= 2


# -- WebTransportProxy --------------------------------------------------------------------


async def proxy_tunnel(m: Mode) -> None:
    """The proxy: aioquic only (``wt_proxy.py``; pywebtransport has no proxy server)."""
    info = m.info
    host, port = info.server.echo_target
    proxy = m.make("WebTransportProxy", str(info.route("/proxy")), m.config())
    async with m.open(proxy):
        tunnel = await call(
            proxy.connect_through_proxy(f"https://{host}:{port}/", {"x-proxy": "p"}, 10.0)
        )
        await call(tunnel.write(b"through the tunnel\n"))
        assert await call(tunnel.readline()) == b"through the tunnel\n"
        await call(tunnel.write(b"end", end_stream=True))
        assert await call(tunnel.read_all()) == b"end"
        second = await call(proxy.connect_through_proxy(f"https://{host}:{port}/"))
        await call(second.write(b"again", end_stream=True))
        assert await call(second.read_all()) == b"again"
        records = [r for r in info.server.tunnels if r.port == port]
        assert len(records) >= 2 and records[-1].status == 200
        assert records[-2].headers["x-proxy"] == "p" and "x-proxy" not in records[-1].headers
        assert records[-1].target == f"{host}:{port}"
        # One session with the proxy carries both tunnels.
        assert proxy.stats.connections_successful == 1
        with pytest.raises(ProxyError, match="403"):
            await call(proxy.connect_through_proxy("https://192.0.2.1:443/"))
        with pytest.raises(ProxyError, match="502"):  # nothing listens there
            await call(proxy.connect_through_proxy(f"https://127.0.0.1:{free_tcp_port()}/"))
        with pytest.raises(InvalidURL):
            await call(proxy.connect_through_proxy("http://127.0.0.1:1/"))
        # The session with the proxy survived the refusals.
        tunnel = await call(proxy.connect_through_proxy(f"https://{host}:{port}/"))
        await call(tunnel.write(b"still", end_stream=True))
        assert await call(tunnel.read_all()) == b"still"
        assert proxy.stats.connections_successful == 1
    # The proxy's session is refused without the credentials in the session's header fields.
    refused = m.make("WebTransportProxy", str(info.route("/proxy-auth")), m.config())
    async with m.open(refused):
        with pytest.raises(WebTransportError, match="407"):
            await call(refused.connect_through_proxy(f"https://{host}:{port}/"))
    authorized = m.make(
        "WebTransportProxy",
        str(info.route("/proxy-auth")),
        m.config(headers={"proxy-authorization": PROXY_AUTHORIZATION}),
    )
    async with m.open(authorized):
        tunnel = await call(authorized.connect_through_proxy(f"https://{host}:{port}/"))
        await call(tunnel.write(b"authorized", end_stream=True))
        assert await call(tunnel.read_all()) == b"authorized"


async def proxy_restart(m: Mode) -> None:
    """The proxy (aioquic only) restarts: the next tunnel re-establishes the session."""
    info = m.info
    proxy = m.make("WebTransportProxy", str(info.route("/proxy")), m.config())
    async with m.open(proxy):
        tunnel = await call(proxy.connect_through_proxy(f"https://{ECHO_HOST}:443/"))
        await call(tunnel.write(b"before", end_stream=True))
        assert await call(tunnel.read_all()) == b"before"
        first = inner(proxy._async._session if not m.is_async else proxy._session)
        info.server.restart()
        await m.until(lambda: first.is_closed, "the session with the stopped proxy closed")
        tunnel = await call(proxy.connect_through_proxy(f"https://{ECHO_HOST}:443/"))
        await call(tunnel.write(b"after", end_stream=True))
        assert await call(tunnel.read_all()) == b"after"
        assert proxy.stats.connections_successful == 2


# -- WebTransportBrowser ------------------------------------------------------------------


async def browser(m: Mode) -> None:
    one = m.url("/echo" + tag(m, "page1"))
    two = m.url("/echo" + tag(m, "page2"))
    browser = m.make("WebTransportBrowser", m.config())
    async with m.open(browser):
        assert inner(browser.current_session) is None
        page1 = await call(browser.navigate(one))
        assert await echo(page1, b"page one") == b"page one"
        page2 = await call(browser.navigate(two))
        assert inner(page1).is_closed  # navigating closed the previous page's session
        server_saw_close(m.info, page1)
        assert inner(browser.current_session) is inner(page2)
        assert await call(browser.get_history()) == [one, two]
        # Navigating to the current URL keeps its open session.
        assert inner(await call(browser.navigate(two))) is inner(page2)
        assert await call(browser.get_history()) == [one, two]
        back = await call(browser.back())
        assert inner(back).path == inner(page1).path and inner(page2).is_closed
        assert await echo(back, b"back") == b"back"
        assert await call(browser.back()) is None  # the start of the history
        forward = await call(browser.forward())
        assert inner(forward).path == inner(page2).path and inner(back).is_closed
        refreshed = await call(browser.refresh())
        assert inner(refreshed) is not inner(forward) and inner(forward).is_closed
        assert await echo(refreshed, b"refreshed") == b"refreshed"
        # A failed navigation keeps the page and the history.
        with pytest.raises(WebTransportError, match="404"):
            await call(browser.navigate(m.url("/no-such-page")))
        assert inner(browser.current_session) is inner(refreshed)
        assert not inner(refreshed).is_closed
        assert await call(browser.get_history()) == [one, two]
    assert inner(refreshed).is_closed
    server_saw_close(m.info, refreshed)
    with pytest.raises(ClientError):
        await call(browser.navigate(one))


# -- ClientMonitor ------------------------------------------------------------------------


async def monitor(m: Mode) -> None:
    config = m.config(connect_timeout=1.0)
    client = m.make("WebTransportClient", config)
    async with m.open(client):
        monitor = m.make(
            "ClientMonitor",
            client,
            0.05,
            success_rate_threshold=0.9,
            connect_time_threshold=30.0,
            min_attempts=3,
        )
        async with m.open(monitor):
            assert monitor.is_monitoring
            session = await call(client.connect(m.url()))
            assert await echo(session, b"watched") == b"watched"
            for _ in range(2):  # nothing listens there: the attempts fail
                with pytest.raises(WebwireError):
                    await call(client.connect(closed_port_url()))
            await m.until(
                lambda: any(
                    a["type"] == "low_success_rate"
                    for a in monitor.get_metrics_summary()["recent_alerts"]
                ),
                "the low success rate alert",
            )
            summary = monitor.get_metrics_summary()
            assert summary["is_monitoring"] and summary["total_metrics_collected"] >= 1
            alert = next(
                a for a in summary["recent_alerts"] if a["type"] == "low_success_rate"
            )
            assert alert["value"] == pytest.approx(1 / 3) and alert["threshold"] == 0.9
            latest = summary["latest_metrics"]["stats"]["connections"]
            assert (latest["attempted"], latest["failed"]) == (3, 2)
            assert not any(a["type"] == "slow_connect" for a in summary["recent_alerts"])
        assert not monitor.is_monitoring
        # A connect-time threshold below any real connect time raises the other alert.
        strict = m.make("ClientMonitor", client, 0.05, connect_time_threshold=1e-9)
        async with m.open(strict):
            await m.until(
                lambda: strict.get_metrics_summary()["total_alerts"] >= 1, "the slow alert"
            )
        alerts = strict.get_metrics_summary()["recent_alerts"]
        assert alerts[0]["type"] == "slow_connect"


# -- benchmark_client_performance and test_client_connectivity ---------------------------


async def tools(m: Mode) -> None:
    url = m.url("/echo" + tag(m, "bench"))
    path = yarl.URL(url).raw_path_qs
    before = len(paths_seen(m.info, path))
    result = await call(m.api.benchmark_client_performance(url, m.config(), 4, 2))
    assert result["total_requests"] == 4
    assert (result["successful_requests"], result["failed_requests"]) == (4, 0), result
    assert result["success_rate"] == 1.0 and result["errors"] == []
    assert 0 < result["min_connect_time"] <= result["max_connect_time"]
    if m.info.server is not None:
        records = paths_seen(m.info, path)
        assert len(records) - before == 4
        assert m.info.server.wait_for(lambda: all(r.closed for r in records))
    failed = await call(
        m.api.benchmark_client_performance(closed_port_url(), m.config(connect_timeout=1.0), 2, 2)
    )
    assert (failed["successful_requests"], failed["failed_requests"]) == (0, 2)
    assert len(failed["errors"]) == 2
    ok = await call(m.api.test_client_connectivity(url, m.config(), 10.0))
    assert ok["success"] is True and ok["error"] is None and ok["connect_time"] > 0
    refused = await call(m.api.test_client_connectivity(m.url("/nowhere"), m.config(), 10.0))
    assert refused["success"] is False and "404" in refused["error"]
    assert refused["error_type"] == "WebTransportError"
    down = await call(m.api.test_client_connectivity(closed_port_url(), m.config(), 1.0))
    assert down["success"] is False and down["connect_time"] is None
    assert down["error_type"] in ("ConnectError", "ConnectTimeout")


def paths_seen(info: WTServerInfo, path: str) -> list[Any]:
    """The aioquic server's records of sessions with ``path`` (none on pywebtransport's)."""
    if info.server is None:
        return []
    return [r for r in info.server.sessions if r.path == path]


SCENARIOS: dict[str, Callable[[Mode], Awaitable[None]]] = {
    "client_connect": client_connect,
    "client_create": client_create,
    "client_pool": client_pool,
    "pooled_client": pooled_client,
    "pooled_idle_cleanup": pooled_idle_cleanup,
    "pooled_concurrent": pooled_concurrent,
    "reconnecting": reconnecting,
    "reconnecting_gives_up": reconnecting_gives_up,
    "reconnecting_server_closes": reconnecting_server_closes,
    "browser": browser,
    "monitor": monitor,
    "tools": tools,
}



@pytest.mark.anyio
@pytest.mark.parametrize("name", list(SCENARIOS))
async def test_async(name: str, wt_server: WTServerInfo) -> None:
    await SCENARIOS[name](Mode(True, wt_server))


@pytest.mark.parametrize("name", list(SCENARIOS))
def test_sync(name: str, wt_server: WTServerInfo) -> None:
    run_sync(SCENARIOS[name](Mode(False, wt_server)))


# -- only on the aioquic server: a restart, the proxy --------------------------------------


@pytest.mark.anyio
async def test_reconnect_after_server_restart(wt_aioquic_restartable: WTServerInfo) -> None:
    """The restartable server exists for the aioquic server only."""
    await server_restart(Mode(True, wt_aioquic_restartable))


def test_reconnect_after_server_restart_sync(wt_aioquic_restartable: WTServerInfo) -> None:
    """The restartable server exists for the aioquic server only."""
    run_sync(server_restart(Mode(False, wt_aioquic_restartable)))


@pytest.mark.anyio
async def test_proxy(wt_proxy: WTServerInfo) -> None:
    """The WebTransport proxy (``wt_proxy.py``) is an aioquic server only."""
    await proxy_tunnel(Mode(True, wt_proxy))


def test_proxy_sync(wt_proxy: WTServerInfo) -> None:
    """The WebTransport proxy (``wt_proxy.py``) is an aioquic server only."""
    run_sync(proxy_tunnel(Mode(False, wt_proxy)))


# -- the blocking objects shared by threads ------------------------------------------------


def run_threads(count: int, work: Callable[[int], None]) -> None:
    """Run ``work(index)`` on ``count`` threads started together; re-raise the first
    failure."""
    errors: list[BaseException] = []
    barrier = threading.Barrier(count)

    def target(index: int) -> None:
        try:
            barrier.wait(30)
            work(index)
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=target, args=(i,)) for i in range(count)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(90)
    assert not any(thread.is_alive() for thread in threads), "a thread is stuck"
    if errors:
        raise errors[0]


def test_sync_pooled_client_shared_by_threads(wt_server: WTServerInfo) -> None:
    m = Mode(False, wt_server)
    url = m.url("/echo" + tag(m, "threads"))
    lock = threading.Lock()
    lent: set[int] = set()
    seen: dict[int, Any] = {}
    with wt_sync.PooledClient(m.config(), pool_size=3, cleanup_interval=60.0) as pooled:

        def work(index: int) -> None:
            for round_ in range(4):
                session = pooled.get_session(url)
                key = id(inner(session))
                with lock:
                    assert key not in lent, "one session handed to two threads at once"
                    lent.add(key)
                    seen[key] = inner(session)
                payload = b"thread %d round %d" % (index, round_)
                assert run_sync(echo(session, payload)) == payload
                with lock:
                    lent.discard(key)
                pooled.return_session(session)

        run_threads(6, work)
        stats = pooled.stats
        assert len(seen) == stats.connections_successful
        assert stats.connections_attempted == stats.connections_successful
        assert stats.connections_failed == 0
        # pool_size sessions are kept; those returned when the pool was full were closed.
        idle = min(3, len(seen))
        assert pooled.idle_count(url) == idle
        assert sum(1 for session in seen.values() if session.is_closed) == len(seen) - idle
    assert pooled.idle_count() == 0


def test_sync_client_pool_shared_by_threads(wt_server: WTServerInfo) -> None:
    m = Mode(False, wt_server)
    url = m.url("/echo" + tag(m, "pool-threads"))
    pool = wt_sync.ClientPool([m.config(), m.config(), m.config()])
    handed: list[Any] = []
    lock = threading.Lock()
    with pool:

        def work(index: int) -> None:
            client = pool.get_client()
            with lock:
                handed.append(client)
            session = client.connect(url)
            payload = b"pooled client %d" % index
            assert run_sync(echo(session, payload)) == payload

        run_threads(9, work)
        # Round robin under contention: every client was handed out exactly three times.
        counts = sorted(handed.count(client) for client in {id(c): c for c in handed}.values())
        assert counts == [3, 3, 3]
        for client in {id(c): c for c in handed}.values():
            stats = client.stats
            assert (stats.connections_attempted, stats.connections_successful) == (3, 3)
        sessions = pool.connect_all(url)
        assert len(sessions) == 3
    assert pool.get_client_count() == 0
    assert all(inner(session).is_closed for session in sessions)


def test_sync_client_stats_shared_by_threads(wt_server: WTServerInfo) -> None:
    m = Mode(False, wt_server)
    with wt_sync.WebTransportClient(m.config()) as client:

        def work(index: int) -> None:
            for round_ in range(2):
                session = client.connect(m.url("/echo" + tag(m, f"s{index}-{round_}")))
                payload = b"stats %d" % index
                assert run_sync(echo(session, payload)) == payload
                session.close()
            with pytest.raises(WebTransportError, match="404"):
                client.connect(m.url("/not-here"))

        run_threads(8, work)
        stats = client.stats
        assert stats.connections_attempted == 24
        assert (stats.connections_successful, stats.connections_failed) == (16, 8)
        numbers = stats.to_dict()["connections"]
        assert numbers == {
            "attempted": 24,
            "successful": 16,
            "failed": 8,
            "success_rate": pytest.approx(16 / 24),
        }
        assert client.debug_state()["open_sessions"] == 0


@pytest.mark.parametrize("api", [wt, wt_sync], ids=["async", "sync"])
def test_bad_arguments(api: Any) -> None:
    from webwire.webtransport import ConfigurationError

    client = api.WebTransportClient()
    for kwargs in (
        {"monitoring_interval": 0},
        {"success_rate_threshold": "high"},
        {"success_rate_threshold": 1.5},
        {"connect_time_threshold": True},
        {"min_attempts": -1},
    ):
        with pytest.raises(ConfigurationError):
            api.ClientMonitor(client, **kwargs)
    with pytest.raises(TypeError):
        api.ClientMonitor(object())
    with pytest.raises(ConfigurationError):
        api.PooledClient(pool_size=0)
    with pytest.raises(ConfigurationError):
        api.ClientPool([])
    for bad in ((0, 1), (1, 0), (2.5, 1)):
        with pytest.raises(ConfigurationError):
            run_sync(call(api.benchmark_client_performance("https://127.0.0.1:1/", None, *bad)))
    for url in ("http://127.0.0.1/echo", "https://127.0.0.1/a b", "https://u:p@127.0.0.1/"):
        with pytest.raises(InvalidURL):
            api.ReconnectingClient(url)
        with pytest.raises(InvalidURL):
            api.WebTransportProxy(url)


@pytest.mark.anyio
async def test_proxy_restart(wt_proxy_restartable: WTServerInfo) -> None:
    """The WebTransport proxy (``wt_proxy.py``) is an aioquic server only."""
    await proxy_restart(Mode(True, wt_proxy_restartable))


def test_proxy_restart_sync(wt_proxy_restartable: WTServerInfo) -> None:
    """The WebTransport proxy (``wt_proxy.py``) is an aioquic server only."""
    run_sync(proxy_restart(Mode(False, wt_proxy_restartable)))
