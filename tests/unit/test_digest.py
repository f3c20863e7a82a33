"""Digest authentication (RFC 7616): the worked examples of the RFC, the
challenge parser, and the flow (retries, nonce counts, stale nonces, bad
challenges) against a mock server, on asyncio, trio and the blocking
client."""

from __future__ import annotations

import hashlib
import re
import threading
from collections.abc import Callable, Coroutine
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import webwire
from webwire._sync import run_sync
from webwire.http._auth import DigestAuth, _DigestState, parse_challenges

OpenApi = Callable[..., Any]
Scenario = Callable[[OpenApi], Coroutine[Any, Any, None]]


def both(scenario: Scenario) -> tuple[Any, Any]:
    @pytest.mark.anyio
    async def async_test(async_api: OpenApi) -> None:
        await scenario(async_api)

    def sync_test(sync_api: OpenApi) -> None:
        run_sync(scenario(sync_api))

    return async_test, sync_test


# -- RFC 7616 section 3.9.1 ---------------------------------------------------------

RFC_NONCE = "7ypf/xlj9XXwfDPEoM4URrv/xwf94BcCAzFZH4GiTo0v"
RFC_OPAQUE = "FQhe/qaU925kfnzjCev0ciny7QMkPqMAFRtzCUYo5tdS"
RFC_CNONCE = "f2/wE4q74E6zIJEtWaHKaf5wv/H5QzzpXusqGemxURZJ"


@pytest.mark.parametrize(
    ("algorithm", "expected"),
    [
        ("MD5", "8ca523f5e9506fed4657c9700eebdbec"),
        ("SHA-256", "753927fa0e85d155564e2e272a28d1802ca10daf4496794697cf8db5856cb6c1"),
    ],
)
def test_rfc7616_example(algorithm: str, expected: str) -> None:
    challenge = parse_challenges(
        'Digest realm="http-auth@example.org", qop="auth, auth-int", '
        f'algorithm={algorithm}, nonce="{RFC_NONCE}", opaque="{RFC_OPAQUE}"'
    )[0]
    auth = DigestAuth("Mufasa", "Circle of Life")
    auth._make_cnonce = lambda: RFC_CNONCE  # type: ignore[method-assign]
    request = webwire.Request("GET", "http://www.example.org/dir/index.html")
    value = auth._authorization(request, _DigestState(challenge))
    assert value == (
        'Digest username="Mufasa", realm="http-auth@example.org", uri="/dir/index.html", '
        f'algorithm={algorithm}, nonce="{RFC_NONCE}", nc=00000001, cnonce="{RFC_CNONCE}", '
        f'qop=auth, response="{expected}", opaque="{RFC_OPAQUE}"'
    )


# -- challenge parsing ----------------------------------------------------------------


def test_parse_several_challenges_escapes_and_case() -> None:
    value = (
        'Newauth realm="apps", type=1, title="Login to \\"apps\\"", '
        'DIGEST REALM="x\\\\y", Nonce=abc, QOP="auth,auth-int", Negotiate a1b2c3==, Basic'
    )
    challenges = parse_challenges(value)
    assert [c.scheme for c in challenges] == ["newauth", "digest", "negotiate", "basic"]
    assert challenges[0].params == {"realm": "apps", "type": "1", "title": 'Login to "apps"'}
    assert challenges[1].params == {"realm": "x\\y", "nonce": "abc", "qop": "auth,auth-int"}
    assert challenges[2].token68 == "a1b2c3=="
    assert challenges[3].params == {}


@pytest.mark.parametrize(
    "value",
    [
        'Digest realm="x" nonce="y"',  # missing comma
        'Digest "x"',
        'Digest realm="unterminated',
        'Digest realm="x", realm="y"',  # repeated parameter
        "Digest realm=x, =y",
        "@Digest",
    ],
)
def test_malformed_challenges(value: str) -> None:
    with pytest.raises(webwire.AuthError):
        parse_challenges(value)


@settings(max_examples=300, deadline=None)
@given(st.text(alphabet=st.sampled_from(list('Digest realm=",\\ \tab=1;\x00é')), max_size=40))
def test_parse_never_raises_other_errors(value: str) -> None:
    try:
        parse_challenges(value)
    except webwire.AuthError:
        pass


# -- the flow, against a mock server -------------------------------------------------


class DigestServer:
    """A mock Digest server checking answers with hashlib (RFC 7616 3.4.1)."""

    def __init__(
        self,
        *,
        algorithm: str = "MD5",
        qop: str | None = "auth",
        password: str = "pw",
        www_authenticate: str | None = None,
        stale_after: int | None = None,
    ) -> None:
        self.algorithm = algorithm
        self.qop = qop
        self.password = password
        self.www_authenticate = www_authenticate
        self.stale_after = stale_after
        self.nonce_number = 0
        self.uses = 0
        self.seen: list[dict[str, str]] = []
        self.lock = threading.Lock()

    def nonce(self) -> str:
        return f"nonce{self.nonce_number}"

    def challenge(self, *, stale: bool = False) -> str:
        if self.www_authenticate is not None:
            return self.www_authenticate
        parts = [
            'realm="r"',
            f'nonce="{self.nonce()}"',
            f"algorithm={self.algorithm}",
            'opaque="op"',
        ]
        if self.qop:
            parts.append(f'qop="{self.qop}"')
        if stale:
            parts.append("stale=TRUE")
        return "Digest " + ", ".join(parts)

    def h(self, text: str) -> str:
        name = self.algorithm.upper().removesuffix("-SESS")
        data = text.encode()
        if name == "MD5":
            return hashlib.md5(data).hexdigest()
        if name == "SHA-256":
            return hashlib.sha256(data).hexdigest()
        return hashlib.new("sha512_256", data).hexdigest()

    def handler(self, request: webwire.Request) -> webwire.Response:
        value = request.headers.get("Authorization")
        if value is None:
            return webwire.Response(401, headers={"WWW-Authenticate": self.challenge()})
        params = {
            m[1]: m[2] if m[2] is not None else m[3]
            for m in re.finditer(r'(\w+)=(?:"([^"]*)"|([^,\s]+))', value)
        }
        with self.lock:
            self.seen.append(params)
            if params["nonce"] != self.nonce():
                return webwire.Response(401, headers={"WWW-Authenticate": self.challenge()})
            if self.stale_after is not None and self.uses >= self.stale_after:
                self.nonce_number += 1
                self.uses = 0
                return webwire.Response(
                    401, headers={"WWW-Authenticate": self.challenge(stale=True)}
                )
            self.uses += 1
        ha1 = self.h(f"user:r:{self.password}")
        if self.algorithm.upper().endswith("-SESS"):
            ha1 = self.h(f"{ha1}:{params['nonce']}:{params['cnonce']}")
        ha2 = self.h(f"{request.method}:{params['uri']}")
        if self.qop:
            want = self.h(
                f"{ha1}:{params['nonce']}:{params['nc']}:{params['cnonce']}:auth:{ha2}"
            )
        else:
            want = self.h(f"{ha1}:{params['nonce']}:{ha2}")
        ok = params["response"] == want and params["opaque"] == "op"
        if not ok:
            return webwire.Response(401, headers={"WWW-Authenticate": self.challenge()})
        return webwire.Response(200, json={"nc": params.get("nc")})


def client_options(server: DigestServer, **kwargs: Any) -> dict[str, Any]:
    options: dict[str, Any] = {"transport": webwire.MockTransport(server.handler)}
    options.update(kwargs)
    return options


async def s_flow(open_api: OpenApi) -> None:
    for algorithm in ["MD5", "md5-sess", "SHA-256", "SHA-256-sess", "SHA-512-256"]:
        server = DigestServer(algorithm=algorithm)
        auth = webwire.DigestAuth("user", "pw")
        async with open_api(**client_options(server, auth=auth)) as api:
            first = await api.get("http://example.com/a?x=1")
            assert first.status_code == 200, algorithm
            assert len(first.history) == 1
            second = await api.get("http://example.com/b")
            assert second.status_code == 200
            assert second.history == []
            assert [p["nc"] for p in server.seen] == ["00000001", "00000002"]
            assert server.seen[0]["uri"] == "/a?x=1"
            assert server.seen[0]["algorithm"] == algorithm
            assert server.seen[0]["cnonce"] != server.seen[1]["cnonce"]


test_flow_async, test_flow_sync = both(s_flow)


async def s_rfc2069(open_api: OpenApi) -> None:
    server = DigestServer(qop=None)
    async with open_api(**client_options(server, auth=webwire.DigestAuth("user", "pw"))) as api:
        r = await api.get("http://example.com/")
        assert r.status_code == 200
        assert "nc" not in server.seen[0] and "cnonce" not in server.seen[0]


test_rfc2069_async, test_rfc2069_sync = both(s_rfc2069)


async def s_stale(open_api: OpenApi) -> None:
    server = DigestServer(stale_after=1)
    async with open_api(**client_options(server, auth=webwire.DigestAuth("user", "pw"))) as api:
        assert (await api.get("http://example.com/")).status_code == 200
        r = await api.get("http://example.com/")
        assert r.status_code == 200
        assert len(r.history) == 1
        # A new nonce starts counting at 1 again.
        assert server.seen[-1]["nonce"] == "nonce1"
        assert server.seen[-1]["nc"] == "00000001"


test_stale_async, test_stale_sync = both(s_stale)


async def s_wrong_password(open_api: OpenApi) -> None:
    server = DigestServer(password="other")
    async with open_api(**client_options(server, auth=webwire.DigestAuth("user", "pw"))) as api:
        r = await api.get("http://example.com/")
        assert r.status_code == 401
        assert len(r.history) == 1
        assert len(server.seen) == 1


test_wrong_password_async, test_wrong_password_sync = both(s_wrong_password)


@pytest.mark.parametrize(
    ("challenge", "message"),
    [
        ('Digest nonce="n"', "no realm"),
        ('Digest realm="r"', "no nonce"),
        ('Digest realm="r", nonce="n", algorithm=SHA-1', "unsupported Digest algorithm"),
        ('Digest realm="r", nonce="n", qop="auth-conf"', "unsupported Digest qop"),
        ('Digest realm="r" nonce="n"', "malformed"),
    ],
)
def test_bad_challenges_raise_auth_error(challenge: str, message: str) -> None:
    server = DigestServer(www_authenticate=challenge)
    with webwire.Client(**client_options(server, auth=webwire.DigestAuth("user", "pw"))) as c:
        with pytest.raises(webwire.AuthError, match=message):
            c.get("http://example.com/")


def test_first_supported_challenge_is_used() -> None:
    server = DigestServer(algorithm="SHA-256")
    server.www_authenticate = (
        'Basic realm="r", Digest realm="r", nonce="nonce0", algorithm=SHA-1, opaque="op", '
        'Digest realm="r", nonce="nonce0", algorithm=SHA-256, qop="auth", opaque="op"'
    )
    with webwire.Client(**client_options(server, auth=webwire.DigestAuth("user", "pw"))) as c:
        assert c.get("http://example.com/").status_code == 200
    assert server.seen[0]["algorithm"] == "SHA-256"


def test_no_digest_challenge_returns_the_401() -> None:
    server = DigestServer(www_authenticate='Basic realm="r"')
    with webwire.Client(**client_options(server, auth=webwire.DigestAuth("user", "pw"))) as c:
        r = c.get("http://example.com/")
    assert r.status_code == 401 and r.history == []


def test_digest_shared_by_16_threads() -> None:
    server = DigestServer()
    auth = webwire.DigestAuth("user", "pw")
    errors: list[BaseException] = []
    with webwire.Client(**client_options(server, auth=auth)) as client:
        assert client.get("http://example.com/").status_code == 200

        def work() -> None:
            try:
                for _ in range(20):
                    assert client.get("http://example.com/").status_code == 200
            except BaseException as exc:  # reported below
                errors.append(exc)

        threads = [threading.Thread(target=work) for _ in range(16)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(30)
    assert errors == []
    counts = [p["nc"] for p in server.seen]
    # 1 + 16 * 20 answers with the one nonce, every nonce count used once.
    assert len(counts) == 321
    assert len(set(counts)) == len(counts)


def test_repr_hides_password() -> None:
    assert "secret" not in repr(webwire.DigestAuth("user", "secret"))


# -- sync and async flows ----------------------------------------------------------------


class IOAuth(webwire.Auth):
    """An auth doing its own I/O: sync_auth_flow and async_auth_flow differ."""

    def __init__(self) -> None:
        self.used: list[str] = []

    def auth_flow(self, request: webwire.Request) -> Any:
        raise AssertionError("the client must use the sync or async flow")

    def sync_auth_flow(self, request: webwire.Request) -> Any:
        self.used.append("sync")
        request.headers["Authorization"] = "Token sync"
        response = yield request
        if response.status_code == 401:
            request.headers["Authorization"] = "Token sync-2"
            yield request

    async def async_auth_flow(self, request: webwire.Request) -> Any:
        import anyio

        await anyio.sleep(0)  # real awaiting, on asyncio and trio
        self.used.append("async")
        request.headers["Authorization"] = "Token async"
        response = yield request
        if response.status_code == 401:
            request.headers["Authorization"] = "Token async-2"
            yield request


def token_handler(request: webwire.Request) -> webwire.Response:
    token = request.headers.get("Authorization", "")
    return webwire.Response(200 if token.endswith("-2") else 401, text=token)


@pytest.mark.anyio
async def test_async_auth_flow(anyio_backend: str) -> None:
    auth = IOAuth()
    async with webwire.AsyncClient(transport=webwire.MockTransport(token_handler)) as client:
        r = await client.get("http://example.com/", auth=auth)
    assert (r.status_code, r.text, auth.used) == (200, "Token async-2", ["async"])
    assert len(r.history) == 1


def test_sync_auth_flow() -> None:
    auth = IOAuth()
    with webwire.Client(transport=webwire.MockTransport(token_handler)) as client:
        r = client.get("http://example.com/", auth=auth)
    assert (r.status_code, r.text, auth.used) == (200, "Token sync-2", ["sync"])


async def s_auth_none_disables_client_auth(open_api: OpenApi) -> None:
    seen: list[str | None] = []

    def handler(request: webwire.Request) -> webwire.Response:
        seen.append(request.headers.get("Authorization"))
        return webwire.Response(200)

    async with open_api(transport=webwire.MockTransport(handler), auth=("u", "p")) as api:
        await api.get("http://example.com/")
        await api.get("http://example.com/", auth=None)
        await api.get("http://x:y@example.com/", auth=None)  # the URL's own credentials
    assert seen[0] is not None and seen[0].startswith("Basic ")
    assert seen[1] is None
    assert seen[2] == "Basic eDp5"


test_auth_none_async, test_auth_none_sync = both(s_auth_none_disables_client_auth)


def test_challenge_remembered_per_origin() -> None:
    server = DigestServer()
    seen: list[tuple[str | None, bool]] = []

    def handler(request: webwire.Request) -> webwire.Response:
        seen.append((request.url.host, "Authorization" in request.headers))
        return server.handler(request)

    auth = webwire.DigestAuth("user", "pw")
    with webwire.Client(transport=webwire.MockTransport(handler), auth=auth) as client:
        assert client.get("http://one.example.com/").status_code == 200
        assert client.get("http://one.example.com/").status_code == 200
        assert client.get("http://two.example.com/").status_code == 200
    # one: challenged, answered, then answered at once; two: challenged first.
    assert seen == [
        ("one.example.com", False),
        ("one.example.com", True),
        ("one.example.com", True),
        ("two.example.com", False),
        ("two.example.com", True),
    ]
