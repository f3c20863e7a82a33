"""The WebTransport client package over fake sessions.

Each scenario is written once and runs on asyncio, on trio and through the
blocking API (``webwire.webtransport.sync``, driven by ``run_sync``);
timing (reconnect backoff, monitor interval, pool idle cleanup) runs on the
memory backend's fake clock.
"""

from __future__ import annotations

import inspect
import threading
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from typing import Any

import pytest

import webwire.webtransport as wt
import webwire.webtransport.sync as wt_sync
from webwire import ConnectError, InvalidURL, LocalProtocolError, ProxyError, WebwireError
from webwire._backends import get_backend
from webwire._backends.memory import memory_test, settle
from webwire._exceptions import TimeoutException
from webwire._sync import run_sync
from webwire.webtransport import ClientConfig, ClientError, ConfigurationError

from ._wt_fakes import FakeServer, FakeSession, proxy

URL = "https://example.com:4433/echo"


class Mode:
    """Builds the async or the blocking objects; ``call`` awaits what needs
    awaiting, so a scenario reads the same for both."""

    def __init__(self, is_async: bool) -> None:
        self.is_async = is_async
        self.api: Any = wt if is_async else wt_sync

    def backend(self) -> Any:
        return get_backend(None if self.is_async else "sync")

    def server(self, **kw: Any) -> FakeServer:
        return FakeServer(self.backend(), **kw)

    def make(self, name: str, *args: Any, **kwargs: Any) -> Any:
        return getattr(self.api, name)(*args, **kwargs)

    @asynccontextmanager
    async def open(self, obj: Any) -> AsyncIterator[Any]:
        if self.is_async:
            async with obj as entered:
                yield entered
        else:
            with obj as entered:
                yield entered


async def call(value: Any) -> Any:
    if inspect.isawaitable(value):
        return await value
    return value


def scenario(fn: Callable[[Mode], Awaitable[None]]) -> tuple[Any, Any]:
    """The asyncio/trio test and the blocking test of ``fn``."""

    @pytest.mark.anyio
    async def on_async() -> None:
        await fn(Mode(True))

    def on_sync() -> None:
        run_sync(fn(Mode(False)))  # type: ignore[arg-type]

    return on_async, on_sync


def fake(session: Any) -> FakeSession:
    inner = getattr(session, "wrapped", session)
    assert isinstance(inner, FakeSession)
    return inner


# -- WebTransportClient -----------------------------------------------------------------


async def _connect_and_echo(m: Mode) -> None:
    server = m.server()
    config = ClientConfig(headers={"X-App": "1"}, connect_timeout=7.0)
    client = m.make("WebTransportClient", config, _opener=server.open)
    async with m.open(client):
        client.set_default_headers({"Authorization": "Bearer t"})
        session = await call(client.connect(URL, headers={"x-call": "2"}))
        assert session.is_ready
        stream = await call(session.create_bidirectional_stream())
        await call(stream.write(b"hello", end_stream=True))
        assert await call(stream.read_all()) == b"hello"
        await call(session.datagrams.send(b"ping"))
        assert await call(session.datagrams.receive(1.0)) == b"ping"
        call_options = server.calls[0]
        assert call_options["url"] == URL
        assert call_options["timeout"] == 7.0
        assert call_options["verify"] is True
        assert call_options["config"] is config
        assert call_options["client"] is not None
        headers = call_options["headers"]
        assert headers["x-app"] == "1"
        assert headers["authorization"] == "Bearer t"
        assert headers["x-call"] == "2"
        assert headers["user-agent"].startswith("webwire/")
        await call(client.connect(URL, timeout=2.5))
        assert server.calls[1]["timeout"] == 2.5
        stats = client.stats
        assert (stats.connections_attempted, stats.connections_successful) == (2, 2)
        assert client.debug_state()["open_sessions"] == 2
        assert client.diagnose_issues() == []
    assert client.is_closed
    assert server.open_sessions() == []
    assert "the client is closed" in client.diagnose_issues()
    with pytest.raises(ClientError, match="closed"):
        await call(client.connect(URL))


test_connect_and_echo, test_connect_and_echo_sync = scenario(_connect_and_echo)


async def _connect_errors(m: Mode) -> None:
    server = m.server()
    async with m.open(m.make("WebTransportClient", _opener=server.open)) as client:
        with pytest.raises(InvalidURL):
            await call(client.connect("http://example.com/"))
        with pytest.raises(LocalProtocolError):
            await call(client.connect(URL, headers={"x": "a\r\nInjected: 1"}))
        with pytest.raises(LocalProtocolError):
            client.set_default_headers({"bad name": "x"})
        server.fail_next = 1
        with pytest.raises(ConnectError):
            await call(client.connect(URL))
        assert server.calls[-1]["url"] == URL
        assert client.stats.connections_failed == 1
        assert client.stats.connections_attempted == 1
        assert client.stats.success_rate == 0.0
    assert server.calls and len(server.calls) == 1


test_connect_errors, test_connect_errors_sync = scenario(_connect_errors)


async def _unexpected_opener_error_is_wrapped(m: Mode) -> None:
    async def broken(url: str, **options: Any) -> Any:
        raise KeyError("engine bug")

    async with m.open(m.make("WebTransportClient", _opener=broken)) as client:
        with pytest.raises(ClientError, match="connecting to") as info:
            await call(client.connect(URL))
        assert isinstance(info.value.__cause__, KeyError)
        assert client.stats.connections_failed == 1


(
    test_unexpected_opener_error_is_wrapped,
    test_unexpected_opener_error_is_wrapped_sync,
) = scenario(_unexpected_opener_error_is_wrapped)


def test_create_picks_reconnecting_client() -> None:
    plain = wt.WebTransportClient.create(url=URL, config=ClientConfig())
    assert isinstance(plain, wt.WebTransportClient)
    again = wt.WebTransportClient.create(url=URL, config=ClientConfig(auto_reconnect=True))
    assert isinstance(again, wt.ReconnectingClient)
    assert again.url == URL
    blocking = wt_sync.WebTransportClient.create(url=URL, config=ClientConfig(auto_reconnect=True))
    assert isinstance(blocking, wt_sync.ReconnectingClient)
    with pytest.raises(InvalidURL):
        wt.WebTransportClient.create(url="ftp://x/")
    with pytest.raises(TypeError):
        wt.WebTransportClient(config={"connect_timeout": 1})  # type: ignore[arg-type]


@memory_test
async def test_connect_time_is_measured_on_the_backend_clock() -> None:
    server = FakeServer(get_backend("trio"))
    server.connect_delay = 2.0
    async with wt.WebTransportClient(_opener=server.open) as client:
        await client.connect(URL)
        server.connect_delay = 4.0
        await client.connect(URL)
        stats = client.stats
        assert stats.min_connect_time == 2.0
        assert stats.max_connect_time == 4.0
        assert stats.avg_connect_time == 3.0


@memory_test
async def test_diagnose_issues_reports_low_success_rate_and_slow_connects() -> None:
    server = FakeServer(get_backend("trio"))
    server.connect_delay = 6.0
    async with wt.WebTransportClient(_opener=server.open) as client:
        await client.connect(URL)
        assert client.diagnose_issues() == ["slow average connect time: 6.00 s"]
        server.connect_delay = 0.0
        server.fail_next = 11
        for _ in range(11):
            with pytest.raises(ConnectError):
                await client.connect(URL)
        issues = client.diagnose_issues()
        assert any("low connection success rate" in issue for issue in issues)


@memory_test
async def test_close_during_connect_closes_the_new_session() -> None:
    backend = get_backend("trio")
    server = FakeServer(backend)
    server.connect_delay = 5.0
    client = wt.WebTransportClient(_opener=server.open)
    errors: list[BaseException] = []

    async def connect() -> None:
        try:
            await client.connect(URL)
        except ClientError as exc:
            errors.append(exc)

    async with backend.create_task_group() as group:
        group.start_soon(connect)
        await backend.sleep(1.0)
        await client.close()
    assert len(errors) == 1
    assert "closed while connecting" in str(errors[0])
    assert server.open_sessions() == []


# -- ReconnectingClient ------------------------------------------------------------------


@memory_test
async def test_reconnect_backoff_on_the_fake_clock() -> None:
    backend = get_backend("trio")
    server = FakeServer(backend)
    server.fail_next = 4
    config = ClientConfig(retry_delay=1.0, retry_backoff=2.0, max_retry_delay=5.0, max_retries=5)
    async with wt.ReconnectingClient(URL, config, _opener=server.open) as client:
        session = await client.get_session(wait_timeout=60.0)
        assert session is not None
        assert client.is_connected
        # delays 1, 2, 4, then capped at 5
        assert server.attempt_times == [0.0, 1.0, 3.0, 7.0, 12.0]
        assert client.attempts == 5
        assert isinstance(client.last_error, ConnectError)
        # the server ends the session: the client connects again at once
        fake(session).server_close()
        await settle()
        again = await client.get_session(wait_timeout=1.0)
        assert again is not None and again is not session
        assert server.attempt_times[-1] == 12.0
    assert again.is_closed
    assert client.client.is_closed


@memory_test
async def test_sessions_ending_at_once_are_reconnected_with_backoff() -> None:
    backend = get_backend("trio")
    server = FakeServer(backend)
    lifetime = [0.0]

    async def open_and_close(url: str, **options: Any) -> FakeSession:
        session = await server.open(url, **options)

        async def end() -> None:
            await backend.sleep(lifetime[0])
            session.server_close(5, "go away")

        group.start_soon(end)
        return session

    config = ClientConfig(retry_delay=1.0, retry_backoff=2.0, max_retry_delay=3.0, max_retries=1)
    async with backend.create_task_group() as group:
        async with wt.ReconnectingClient(URL, config, _opener=open_and_close) as client:
            await backend.sleep(10.5)
            # Once at once, then 1, 2, 3 (capped), 3 seconds: never giving up.
            assert server.attempt_times == [0.0, 0.0, 1.0, 3.0, 6.0, 9.0]
            assert client.last_error is None
            # A session that lasted retry_delay seconds or more is followed at once.
            lifetime[0] = 2.0
            await backend.sleep(4.0)
            assert server.attempt_times[6:] == [12.0, 14.0]


@memory_test
async def test_reconnecting_client_gives_up_after_max_retries() -> None:
    backend = get_backend("trio")
    server = FakeServer(backend)
    server.down = True
    config = ClientConfig(retry_delay=1.0, retry_backoff=3.0, max_retries=2)
    async with wt.ReconnectingClient(URL, config, _opener=server.open) as client:
        assert await client.get_session(wait_timeout=100.0) is None
        assert backend.monotonic() == 4.0  # gave up after 1 + 3 seconds
        assert server.attempt_times == [0.0, 1.0, 4.0]
        assert not client.is_connected
        assert isinstance(client.last_error, ConnectError)


@memory_test
async def test_get_session_times_out() -> None:
    backend = get_backend("trio")
    server = FakeServer(backend)
    server.connect_delay = 50.0
    async with wt.ReconnectingClient(URL, _opener=server.open) as client:
        assert await client.get_session(wait_timeout=5.0) is None
        assert backend.monotonic() == 5.0
    with pytest.raises(ClientError, match="async with"):
        await wt.ReconnectingClient(URL).get_session()


async def _reconnecting_client(m: Mode) -> None:
    server = m.server()
    client = m.make("ReconnectingClient", URL, _opener=server.open)
    async with m.open(client):
        first = await call(client.get_session(5.0))
        assert first is not None and client.is_connected
        fake(first).server_close()
        second = None
        for _ in range(1000):
            second = await call(client.get_session(5.0))
            if second is not None and fake(second) is not fake(first):
                break
            await call(m.backend().checkpoint())
        assert second is not None and fake(second) is not fake(first)
        assert len(server.sessions) == 2
    assert client.is_closed
    assert server.open_sessions() == []
    assert await call(client.get_session(1.0)) is None


test_reconnecting_client, test_reconnecting_client_sync = scenario(_reconnecting_client)


# -- ClientPool and PooledClient ---------------------------------------------------------


async def _client_pool(m: Mode) -> None:
    server = m.server()
    configs = [ClientConfig(headers={"n": str(i)}) for i in range(3)]
    pool = m.make("ClientPool", configs, _opener=server.open)
    async with m.open(pool):
        assert pool.get_client_count() == 3
        order = [(await call(pool.get_client())).config.headers["n"] for _ in range(6)]
        assert order == ["0", "1", "2", "0", "1", "2"]
        server.fail_next = 1
        sessions = await call(pool.connect_all(URL))
        assert len(sessions) == 2
        assert len(server.open_sessions()) == 2
    assert server.open_sessions() == []
    assert pool.get_client_count() == 0
    with pytest.raises(ClientError):
        await call(pool.get_client())
    with pytest.raises(ConfigurationError):
        m.make("ClientPool", [])


test_client_pool, test_client_pool_sync = scenario(_client_pool)


async def _pooled_client_reuses_sessions(m: Mode) -> None:
    server = m.server()
    pooled = m.make("PooledClient", pool_size=1, _opener=server.open)
    async with m.open(pooled):
        a = await call(pooled.get_session(URL))
        await call(pooled.return_session(a))
        assert pooled.idle_count(URL) == 1
        b = await call(pooled.get_session(URL))
        assert fake(b) is fake(a)
        c = await call(pooled.get_session(URL))
        assert fake(c) is not fake(a)
        other = await call(pooled.get_session("https://example.com:4433/other"))
        assert fake(other) is not fake(a)
        await call(pooled.return_session(b))
        await call(pooled.return_session(c))  # over pool_size: closed
        assert fake(c).is_closed and not fake(b).is_closed
        with pytest.raises(ClientError, match="not handed out"):
            await call(pooled.return_session(c))
        fake(b).server_close()
        d = await call(pooled.get_session(URL))  # the closed idle one is skipped
        assert fake(d) is not fake(b)
        assert len(server.sessions) == 4
    assert server.open_sessions() == []
    with pytest.raises(ClientError):
        await call(pooled.get_session(URL))
    with pytest.raises(ConfigurationError):
        m.make("PooledClient", pool_size=0)
    with pytest.raises(ConfigurationError):
        m.make("PooledClient", cleanup_interval=0)


(
    test_pooled_client_reuses_sessions,
    test_pooled_client_reuses_sessions_sync,
) = scenario(_pooled_client_reuses_sessions)


@memory_test
async def test_pooled_client_idle_cleanup_on_the_fake_clock() -> None:
    backend = get_backend("trio")
    server = FakeServer(backend)
    async with wt.PooledClient(cleanup_interval=10.0, _opener=server.open) as pooled:
        first = await pooled.get_session(URL)
        await backend.sleep(5.0)
        await pooled.return_session(first)  # idle since t=5
        await backend.sleep(6.0)  # sweep at t=10: idle 5 s, kept
        assert pooled.idle_count() == 1 and not first.is_closed
        await backend.sleep(10.0)  # sweep at t=20: idle 15 s, closed
        assert pooled.idle_count() == 0
        assert first.is_closed


# -- WebTransportProxy -------------------------------------------------------------------


async def _proxy_tunnel(m: Mode) -> None:
    server = m.server(responder=proxy())
    tunnel_proxy = m.make("WebTransportProxy", "https://proxy.example:443/", _opener=server.open)
    async with m.open(tunnel_proxy):
        stream = await call(
            tunnel_proxy.connect_through_proxy(
                "https://target.example:8443/x", proxy_headers={"Proxy-Authorization": "Basic a"}
            )
        )
        sent = fake_stream(server, 0).written
        assert sent.startswith(b"CONNECT target.example:8443 HTTP/1.1\r\n")
        assert b"Host: target.example:8443\r\n" in sent
        assert b"Proxy-Authorization: Basic a\r\n" in sent
        assert sent.endswith(b"\r\n\r\n")
        await call(stream.write(b"tunnelled", end_stream=True))
        assert await call(stream.read_all()) == b"tunnelled"
        await call(tunnel_proxy.connect_through_proxy("https://[::1]/"))
        assert fake_stream(server, 1).written.startswith(b"CONNECT [::1]:443 HTTP/1.1")
        assert len(server.sessions) == 1  # one session with the proxy serves both
        with pytest.raises(LocalProtocolError):
            await call(tunnel_proxy.connect_through_proxy(URL, proxy_headers={"x": "\n"}))
        with pytest.raises(InvalidURL):
            await call(tunnel_proxy.connect_through_proxy("http://target/"))
    assert server.open_sessions() == []


@pytest.mark.anyio
async def test_concurrent_tunnels_share_one_proxy_session() -> None:
    backend = get_backend()
    server = FakeServer(backend, responder=proxy())
    streams: list[Any] = []
    async with wt.WebTransportProxy("https://p.example/", _opener=server.open) as tunnel_proxy:

        async def tunnel() -> None:
            streams.append(await tunnel_proxy.connect_through_proxy(URL))

        async with backend.create_task_group() as group:
            for _ in range(5):
                group.start_soon(tunnel)
        assert len(streams) == 5
        assert len(server.sessions) == 1
        assert len(server.sessions[0].streams) == 5
    assert server.open_sessions() == []


def fake_stream(server: FakeServer, index: int) -> Any:
    return server.sessions[0].streams[index]


test_proxy_tunnel, test_proxy_tunnel_sync = scenario(_proxy_tunnel)


async def _proxy_refusal(m: Mode) -> None:
    server = m.server(responder=proxy(b"407 Proxy Authentication Required"))
    tunnel_proxy = m.make("WebTransportProxy", "https://proxy.example/", _opener=server.open)
    async with m.open(tunnel_proxy):
        with pytest.raises(ProxyError, match="407 Proxy Authentication Required"):
            await call(tunnel_proxy.connect_through_proxy(URL))
        assert fake_stream(server, 0).aborted


test_proxy_refusal, test_proxy_refusal_sync = scenario(_proxy_refusal)


BAD_ANSWERS = [
    b"SSH-2.0-x\r\n\r\n",
    b"HTTP/1.1 200 OK\r\n",
    b"HTTP/1.1 200 OK\r\n" + b"a: b\r\n" * 5000,
    b"HTTP/1.1 2xx OK\r\n\r\n",
]


async def _proxy_bad_answers(m: Mode) -> None:
    for answer in BAD_ANSWERS:

        def respond(stream: Any, data: bytes, end: bool, answer: bytes = answer) -> list[Any]:
            return [answer, None]

        server = m.server(responder=respond)
        tunnel_proxy = m.make("WebTransportProxy", "https://p.example/", _opener=server.open)
        async with m.open(tunnel_proxy):
            with pytest.raises(ProxyError):
                await call(tunnel_proxy.connect_through_proxy(URL))
            assert fake_stream(server, 0).aborted
        assert server.open_sessions() == []


test_proxy_bad_answers, test_proxy_bad_answers_sync = scenario(_proxy_bad_answers)


@memory_test
async def test_proxy_timeout_on_the_fake_clock() -> None:
    backend = get_backend("trio")
    server = FakeServer(backend, responder=lambda stream, data, end: [])
    async with wt.WebTransportProxy("https://p.example/", _opener=server.open) as tunnel_proxy:
        with pytest.raises(TimeoutException, match=r"within 3\.0 seconds"):
            await tunnel_proxy.connect_through_proxy(URL, timeout=3.0)
        assert backend.monotonic() == 3.0
        assert server.sessions[0].streams[0].aborted


# -- WebTransportBrowser -----------------------------------------------------------------


async def _browser(m: Mode) -> None:
    server = m.server()
    browser = m.make("WebTransportBrowser", _opener=server.open)
    a, b, c = (f"https://example.com/{name}" for name in "abc")
    async with m.open(browser):
        assert await call(browser.back()) is None
        assert await call(browser.refresh()) is None
        first = await call(browser.navigate(a))
        assert fake(browser.current_session) is fake(first)
        assert fake(await call(browser.navigate(a))) is fake(first)  # same page
        second = await call(browser.navigate(b))
        assert fake(first).is_closed and not fake(second).is_closed
        await call(browser.navigate(c))
        assert await call(browser.get_history()) == [a, b, c]
        back = await call(browser.back())
        assert fake(back).url == b
        assert fake(await call(browser.back())).url == a
        assert await call(browser.back()) is None
        assert fake(await call(browser.forward())).url == b
        refreshed = await call(browser.refresh())
        assert fake(refreshed).url == b
        await call(browser.navigate(a))  # drops the forward entry c
        assert await call(browser.get_history()) == [a, b, a]
        current = browser.current_session
        server.fail_next = 1
        with pytest.raises(ConnectError):
            await call(browser.navigate(c))
        assert fake(browser.current_session) is fake(current)  # a failed navigation keeps it
        assert await call(browser.get_history()) == [a, b, a]
        assert len(server.open_sessions()) == 1
    assert server.open_sessions() == []
    assert browser.current_session is None
    with pytest.raises(ClientError):
        await call(browser.navigate(a))


test_browser, test_browser_sync = scenario(_browser)


# -- ClientMonitor -----------------------------------------------------------------------


@memory_test
async def test_monitor_interval_and_alerts_on_the_fake_clock() -> None:
    backend = get_backend("trio")
    server = FakeServer(backend)
    client = wt.WebTransportClient(_opener=server.open)
    monitor = wt.ClientMonitor(client, monitoring_interval=10.0, min_attempts=2)
    async with client, monitor:
        assert monitor.is_monitoring
        await client.connect(URL)
        await backend.sleep(25.0)
        summary = monitor.get_metrics_summary()
        assert summary["total_metrics_collected"] == 2
        assert summary["latest_metrics"]["timestamp"] == 20.0
        assert summary["total_alerts"] == 0
        server.fail_next = 3
        for _ in range(3):
            with pytest.raises(ConnectError):
                await client.connect(URL)
        server.connect_delay = 30.0
        await client.connect(URL)  # t=25 to 55; average (0 + 30) / 2 = 15 s
        summary = monitor.get_metrics_summary()
        assert summary["total_metrics_collected"] == 5  # t=30, 40, 50
        kinds = {alert["type"] for alert in summary["recent_alerts"]}
        assert kinds == {"low_success_rate"}
        await backend.sleep(10.0)
        summary = monitor.get_metrics_summary()
        assert summary["total_metrics_collected"] == 6
        kinds = {alert["type"] for alert in summary["recent_alerts"]}
        assert kinds == {"low_success_rate", "slow_connect"}
        alert = summary["recent_alerts"][-1]
        assert alert["timestamp"] == 60.0
        assert alert["threshold"] == 5.0 and alert["value"] == 15.0
    assert not monitor.is_monitoring
    assert monitor.get_metrics_summary()["is_monitoring"] is False


def test_monitor_bad_arguments() -> None:
    client = wt.WebTransportClient()
    with pytest.raises(TypeError):
        wt.ClientMonitor(object())  # type: ignore[arg-type]
    with pytest.raises(ConfigurationError):
        wt.ClientMonitor(client, monitoring_interval=0)
    with pytest.raises(ConfigurationError):
        wt.ClientMonitor(client, success_rate_threshold=2.0)
    with pytest.raises(TypeError):
        wt_sync.ClientMonitor(client)  # type: ignore[arg-type]


async def _monitor_collects(m: Mode) -> None:
    server = m.server()
    client = m.make("WebTransportClient", _opener=server.open)
    monitor = m.make("ClientMonitor", client, 3600.0, min_attempts=1)
    async with m.open(client), m.open(monitor):
        assert monitor.is_monitoring
        server.fail_next = 1
        with pytest.raises(ConnectError):
            await call(client.connect(URL))
        snapshot = monitor.collect()
        assert snapshot["stats"]["connections"]["failed"] == 1
        summary = monitor.get_metrics_summary()
        assert summary["recent_alerts"][0]["type"] == "low_success_rate"
    assert not monitor.is_monitoring


test_monitor_collects, test_monitor_collects_sync = scenario(_monitor_collects)


# -- benchmark and connectivity ------------------------------------------------------------


@memory_test
async def test_benchmark_on_the_fake_clock() -> None:
    backend = get_backend("trio")
    server = FakeServer(backend)
    server.connect_delay = 1.0
    server.fail_next = 2
    result = await wt.benchmark_client_performance(
        URL, num_requests=10, concurrent_requests=5, _opener=server.open
    )
    assert result["total_requests"] == 10
    assert result["successful_requests"] == 8
    assert result["failed_requests"] == 2
    assert result["success_rate"] == 0.8
    assert result["total_time"] == 2.0  # two waves of five
    assert result["requests_per_second"] == 5.0
    assert result["avg_connect_time"] == 1.0
    assert len(result["errors"]) == 2 and "ConnectError" in result["errors"][0]
    assert server.open_sessions() == []


async def _connectivity(m: Mode) -> None:
    server = m.server()
    ok = await call(m.api.test_client_connectivity(URL, timeout=3.0, _opener=server.open))
    assert ok["success"] is True and ok["error"] is None
    assert ok["connect_time"] is not None and ok["timeout"] == 3.0
    assert server.calls[0]["timeout"] == 3.0
    server.down = True
    failed = await call(m.api.test_client_connectivity(URL, _opener=server.open))
    assert failed["success"] is False
    assert failed["error_type"] == "ConnectError"
    assert failed["connect_time"] is None
    result = await call(
        m.api.benchmark_client_performance(URL, None, 4, 2, _opener=server.open)
    )
    assert result["failed_requests"] == 4
    with pytest.raises(InvalidURL):
        await call(m.api.test_client_connectivity("ws://x/"))
    with pytest.raises(ValueError):
        await call(m.api.benchmark_client_performance(URL, None, 0, 1))
    assert server.open_sessions() == []


test_connectivity, test_connectivity_sync = scenario(_connectivity)


# -- many threads on the blocking API ----------------------------------------------------


def run_threads(n: int, fn: Callable[[int], None]) -> list[BaseException]:
    errors: list[BaseException] = []

    def target(i: int) -> None:
        try:
            fn(i)
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=target, args=(i,)) for i in range(n)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)
    return errors


def test_blocking_client_shared_by_threads() -> None:
    server = FakeServer(get_backend("sync"))
    server.fail_next = 10
    with wt_sync.WebTransportClient(_opener=server.open) as client:

        def work(i: int) -> None:
            for _ in range(25):
                try:
                    session = client.connect(URL)
                except WebwireError:
                    continue
                stream = session.create_bidirectional_stream()
                stream.write(f"{i}".encode(), end_stream=True)
                assert stream.read_all() == f"{i}".encode()
                session.close()

        assert run_threads(8, work) == []
        stats = client.stats
        assert stats.connections_attempted == 200
        assert stats.connections_failed == 10
        assert stats.connections_successful == 190
    assert server.open_sessions() == []


def test_blocking_pools_shared_by_threads() -> None:
    server = FakeServer(get_backend("sync"))
    with wt_sync.ClientPool([None] * 4, _opener=server.open) as pool:
        counts: dict[int, int] = {}
        lock = threading.Lock()

        def pick(i: int) -> None:
            for _ in range(100):
                client = pool.get_client()
                with lock:
                    counts[id(client)] = counts.get(id(client), 0) + 1

        assert run_threads(8, pick) == []
        assert sorted(counts.values()) == [200, 200, 200, 200]
    with wt_sync.PooledClient(pool_size=4, _opener=server.open) as pooled:

        def borrow(i: int) -> None:
            for _ in range(50):
                session = pooled.get_session(URL)
                assert session.is_ready
                pooled.return_session(session)

        assert run_threads(8, borrow) == []
        assert 1 <= pooled.idle_count(URL) <= 4
        # every session given back was kept idle or closed
        assert len(server.open_sessions()) == pooled.idle_count(URL)
        assert pooled.stats.connections_successful == len(server.sessions)
    assert server.open_sessions() == []


def test_blocking_browser_and_reconnecting_client_shared_by_threads() -> None:
    server = FakeServer(get_backend("sync"))
    urls = [f"https://example.com/{i}" for i in range(4)]
    with wt_sync.WebTransportBrowser(_opener=server.open) as browser:

        def navigate(i: int) -> None:
            for _ in range(10):
                session = browser.navigate(urls[i])
                assert fake(session).url == urls[i]

        assert run_threads(4, navigate) == []
        history = browser.get_history()
        assert len(history) >= 4 and set(history) == set(urls)
        assert server.open_sessions() == [fake(browser.current_session)]
    assert server.open_sessions() == []
    with wt_sync.ReconnectingClient(URL, _opener=server.open) as client:

        def get(i: int) -> None:
            for _ in range(20):
                session = client.get_session(5.0)
                assert session is not None and session.is_ready

        assert run_threads(8, get) == []
        assert client.attempts == 1
    assert server.open_sessions() == []


def test_blocking_wrapper_passes_attributes_and_context() -> None:
    server = FakeServer(get_backend("sync"))
    with wt_sync.WebTransportClient(_opener=server.open) as client:
        session = client.connect(URL)
        assert isinstance(session, wt_sync.Blocking)
        assert session.url == URL
        assert session.datagrams.max_datagram_size == 1200
        server.pushed = 3
        pushed = [stream.read_all() for stream in session.incoming_streams()]
        assert pushed == [b"push 0", b"push 1", b"push 2"]
        with session as entered:
            assert entered is session
        assert session.is_closed
        assert "FakeSession" in repr(session)


# -- the default session opener ----------------------------------------------------------


async def _default_opener_is_the_core_open_session(m: Mode, monkeypatch: Any) -> None:
    import sys
    import types

    from webwire.http._client import AsyncClient

    server = m.server()
    module = types.ModuleType("webwire.webtransport._connect")
    module.open_session = server.open  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, "webwire.webtransport._connect", module)
    async with m.open(m.make("WebTransportClient")) as client:
        session = await call(client.connect(URL))
        await call(client.connect(URL))
        assert fake(session).url == URL
        http = server.calls[0]["client"]
        assert isinstance(http, AsyncClient)
        assert server.calls[1]["client"] is http  # one HTTP client carries every session
        assert http._sync is (not m.is_async)
    assert http._closed
    assert server.open_sessions() == []


@pytest.mark.anyio
async def test_default_opener_is_the_core_open_session(monkeypatch: pytest.MonkeyPatch) -> None:
    await _default_opener_is_the_core_open_session(Mode(True), monkeypatch)


def test_default_opener_is_the_core_open_session_sync(monkeypatch: pytest.MonkeyPatch) -> None:
    run_sync(_default_opener_is_the_core_open_session(Mode(False), monkeypatch))
