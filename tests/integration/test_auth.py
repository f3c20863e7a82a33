"""Digest (RFC 7616) and ``.netrc`` authentication against hypercorn (in
cleartext over HTTP/1.1, and over TLS with HTTP/2), on asyncio, trio and the
blocking client.

The server side (``digest_app.py``) checks the credentials with its own
code written from the RFC, independent of webwire's.
"""

from __future__ import annotations

import asyncio
import socket
from collections.abc import Callable, Coroutine, Iterator
from pathlib import Path
from typing import Any

import pytest
from digest_app import app as digest_app

import webwire
from conftest import ServerThread
from webwire._sync import run_sync

OpenApi = Callable[..., Any]
Server = dict[str, Any]
Scenario = Callable[[OpenApi, dict[str, Any]], Coroutine[Any, Any, None]]

ALGORITHMS = ["MD5", "MD5-sess", "SHA-256", "SHA-256-sess", "SHA-512-256", "SHA-512-256-sess"]


@pytest.fixture(scope="module", params=["http", "h2"])
def auth_server(request: pytest.FixtureRequest, tls_files: Any) -> Iterator[dict[str, Any]]:
    """hypercorn serving the digest app: in cleartext (HTTP/1.1), and over
    TLS spoken to with HTTP/2. Yields the client options to reach it."""
    tls = request.param == "h2"

    async def serve(sock: socket.socket, stop: asyncio.Event) -> None:
        from hypercorn.asyncio import serve as hypercorn_serve
        from hypercorn.config import Config

        config = Config()
        config.bind = [f"fd://{sock.dup().detach()}"]
        config.graceful_timeout = 1.0
        config.accesslog = None
        if tls:
            config.certfile = tls_files.cert_path
            config.keyfile = tls_files.key_path
        await hypercorn_serve(digest_app, config, shutdown_trigger=stop.wait)  # type: ignore[arg-type]

    thread = ServerThread(f"hypercorn-auth-{request.param}", serve)
    thread.start()
    scheme = "https" if tls else "http"
    try:
        yield {
            "base_url": f"{scheme}://127.0.0.1:{thread.port}",
            "verify": tls_files.ca_path if tls else True,
            "http1": not tls,
        }
    finally:
        thread.stop()


def both(scenario: Scenario) -> tuple[Any, Any]:
    """An async test (asyncio and trio) and a sync test of ``scenario``."""

    @pytest.mark.anyio
    async def async_test(async_api: OpenApi, auth_server: Server) -> None:
        await scenario(async_api, auth_server)

    def sync_test(sync_api: OpenApi, auth_server: Server) -> None:
        run_sync(scenario(sync_api, auth_server))

    return async_test, sync_test


def params(*names: str) -> Any:
    return pytest.mark.parametrize(names[0], names[1:])


# -- Digest --------------------------------------------------------------------


def digest_scenario(algorithm: str, qop: str) -> Scenario:
    async def scenario(open_api: OpenApi, server: Server) -> None:
        auth = webwire.DigestAuth("Mufasa", "Circle of Life")
        async with open_api(**server, auth=auth) as api:
            first = await api.get(f"/digest/{algorithm}/{qop}")
            assert first.status_code == 200, first.headers
            assert [r.status_code for r in first.history] == [401]
            body = first.json()
            assert body["user"] == "Mufasa"
            assert body["algorithm"] == algorithm
            # The challenge is remembered: the next request is answered at once,
            # with the next nonce count.
            second = await api.get(f"/digest/{algorithm}/{qop}?page=2")
            assert second.status_code == 200
            assert second.history == []
            if qop == "none":
                assert second.json()["nc"] is None
            else:
                assert (body["nc"], second.json()["nc"]) == (1, 2)
                assert body["cnonce"] != second.json()["cnonce"]

    return scenario


@pytest.mark.parametrize("algorithm", ALGORITHMS)
@pytest.mark.anyio
async def test_digest_algorithms_async(
    async_api: OpenApi, auth_server: Server, algorithm: str
) -> None:
    await digest_scenario(algorithm, "auth")(async_api, auth_server)


@pytest.mark.parametrize("algorithm", ALGORITHMS)
def test_digest_algorithms_sync(sync_api: OpenApi, auth_server: Server, algorithm: str) -> None:
    run_sync(digest_scenario(algorithm, "auth")(sync_api, auth_server))


@pytest.mark.parametrize("algorithm", ["MD5", "SHA-256"])
@pytest.mark.anyio
async def test_digest_rfc2069_async(
    async_api: OpenApi, auth_server: Server, algorithm: str
) -> None:
    await digest_scenario(algorithm, "none")(async_api, auth_server)


@pytest.mark.parametrize("algorithm", ["MD5", "SHA-256"])
def test_digest_rfc2069_sync(sync_api: OpenApi, auth_server: Server, algorithm: str) -> None:
    run_sync(digest_scenario(algorithm, "none")(sync_api, auth_server))


async def s_auth_int(open_api: OpenApi, server: Server) -> None:
    auth = webwire.DigestAuth("Mufasa", "Circle of Life")
    async with open_api(**server) as api:
        r = await api.post("/digest/SHA-256/auth-int", content=b"hashed body", auth=auth)
        assert r.status_code == 200
        assert r.json()["qop"] == "auth-int"
        # A streamed body cannot be hashed before it is sent.
        with pytest.raises(webwire.AuthError, match="auth-int"):
            await api.post("/digest/SHA-256/auth-int", content=api.body([b"x"]), auth=auth)


test_digest_auth_int_async, test_digest_auth_int_sync = both(s_auth_int)


async def s_userhash(open_api: OpenApi, server: Server) -> None:
    user = "J\u00e4s\u00f8n Doe"
    query = {"userhash": "1", "user": user, "password": "Secret"}
    async with open_api(**server, auth=webwire.DigestAuth(user, "Secret")) as api:
        r = await api.get("/digest/SHA-512-256/auth", params=query)
        assert r.status_code == 200
        assert r.json()["user"] == user
        # Without userhash the non-ASCII name goes as username* (RFC 7616 3.4.4).
        r = await api.get("/digest/SHA-256/auth", params={"user": user, "password": "Secret"})
        assert r.status_code == 200
        assert "username*=UTF-8''" in r.request.headers["Authorization"]


test_digest_userhash_async, test_digest_userhash_sync = both(s_userhash)


async def s_stale(open_api: OpenApi, server: Server) -> None:
    auth = webwire.DigestAuth("Mufasa", "Circle of Life")
    async with open_api(**server, auth=auth) as api:
        first = await api.get("/digest/SHA-256/auth?stale_after=1")
        assert first.status_code == 200
        # The remembered nonce is now stale: one 401 with stale=true, then the
        # request is answered with the new nonce, nonce count back at 1.
        second = await api.get("/digest/SHA-256/auth?stale_after=1")
        assert second.status_code == 200
        assert [r.status_code for r in second.history] == [401]
        assert "stale=true" in second.history[0].headers["WWW-Authenticate"]
        assert second.json()["nc"] == 1


test_digest_stale_async, test_digest_stale_sync = both(s_stale)


async def s_wrong_password(open_api: OpenApi, server: Server) -> None:
    auth = webwire.DigestAuth("Mufasa", "wrong")
    async with open_api(**server, auth=auth) as api:
        r = await api.get("/digest/MD5/auth")
        # Challenged once, answered once, refused: the 401 is returned.
        assert r.status_code == 401
        assert len(r.history) == 1
        assert "Authorization" in r.request.headers
        assert api.in_use() == 0


test_digest_wrong_password_async, test_digest_wrong_password_sync = both(s_wrong_password)


async def s_shared_by_many(open_api: OpenApi, server: Server) -> None:
    auth = webwire.DigestAuth("Mufasa", "Circle of Life")
    async with open_api(**server, auth=auth) as api:
        assert (await api.get("/digest/SHA-256/auth")).status_code == 200

        async def one(i: int) -> Any:
            return await api.get(f"/digest/SHA-256/auth?i={i}")

        results = await api.gather(16, one)
    assert all(isinstance(r, webwire.Response) for r in results), results
    assert [r.status_code for r in results] == [200] * 16
    # Every request used its own nonce count (the server refuses a replay).
    counts = [r.json()["nc"] for r in results]
    assert len(set(counts)) == 16


test_digest_shared_async, test_digest_shared_sync = both(s_shared_by_many)


# -- .netrc ---------------------------------------------------------------------


@pytest.fixture
def netrc_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    path = tmp_path / "netrc"
    path.write_text("machine 127.0.0.1\n  login alice\n  password wonderland\n")
    path.chmod(0o600)
    monkeypatch.setenv("NETRC", str(path))
    return path


async def s_netrc(open_api: OpenApi, server: Server) -> None:
    async with open_api(**server) as api:
        r = await api.get("/netrc-basic")
        assert r.status_code == 200
        assert r.json() == {"user": "alice"}
        # auth=None turns authentication off, .netrc included.
        assert (await api.get("/netrc-basic", auth=None)).status_code == 401
    async with open_api(**server, trust_env=False) as api:
        assert (await api.get("/netrc-basic")).status_code == 401


def test_netrc_sync(sync_api: OpenApi, auth_server: Server, netrc_file: Path) -> None:
    run_sync(s_netrc(sync_api, auth_server))


@pytest.mark.anyio
async def test_netrc_async(async_api: OpenApi, auth_server: Server, netrc_file: Path) -> None:
    await s_netrc(async_api, auth_server)


@pytest.mark.anyio
async def test_netrc_auth_explicit(
    async_api: OpenApi, auth_server: Server, tmp_path: Path
) -> None:
    path = tmp_path / "creds"
    path.write_text("default login alice password wonderland\n")
    path.chmod(0o600)
    async with async_api(**auth_server, trust_env=False) as api:
        r = await api.get("/netrc-basic", auth=webwire.NetRCAuth(path))
        assert r.status_code == 200


@pytest.mark.anyio
async def test_netrc_malformed(
    async_api: OpenApi, auth_server: Server, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "netrc"
    path.write_text("machine 127.0.0.1 login alice password wonderland bogus x\n")
    path.chmod(0o600)
    monkeypatch.setenv("NETRC", str(path))
    async with async_api(**auth_server) as api:
        with pytest.raises(webwire.AuthError, match="netrc"):
            await api.get("/netrc-basic")
