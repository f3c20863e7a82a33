"""An ASGI application checking HTTP Digest credentials (RFC 7616) and
serving a Basic-protected route, for the authentication tests.

The verification below is written from the RFC text with :mod:`hashlib`
and shares no code with webwire's client:

* ``/digest/{algorithm}/{qop}``: ``algorithm`` is ``MD5``, ``MD5-sess``,
  ``SHA-256``, ``SHA-256-sess``, ``SHA-512-256`` or ``SHA-512-256-sess``;
  ``qop`` is ``auth``, ``auth-int`` or ``none`` (the RFC 2069 form without
  ``qop``, ``nc`` or ``cnonce``). Query options: ``userhash=1`` (asks for
  a hashed username), ``stale_after=N`` (a nonce is good for N requests,
  then a 401 with ``stale=true`` and a new nonce), ``user`` and
  ``password`` (default ``Mufasa`` / ``Circle of Life``).
  The 401 field carries a Basic challenge first and the Digest challenge
  after it, in one field. A good answer gets 200 and JSON: ``user``,
  ``nc`` (int), ``algorithm``, ``qop``, ``cnonce``. The server refuses a
  nonce count already used with that nonce (replay), and requires the
  ``opaque`` value echoed, the
  ``uri`` equal to the request target and the ``realm`` its own.
* ``/netrc-basic``: 200 and ``{"user": ...}`` for Basic credentials
  ``alice``/``wonderland``, else 401.
"""

from __future__ import annotations

import base64
import hashlib
import json
import re
import secrets
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any
from urllib.parse import parse_qsl, unquote

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]

REALM = "testrealm@webwire.test"
OPAQUE = "5ccc069c403ebaf9f0171e9517f40e41"
DEFAULT_USER = "Mufasa"
DEFAULT_PASSWORD = "Circle of Life"

# RFC 7616 section 3.3: the algorithm names and their hash functions.
HASHES: dict[str, Callable[[bytes], Any]] = {
    "MD5": hashlib.md5,
    "SHA-256": hashlib.sha256,
    "SHA-512-256": lambda data: hashlib.new("sha512_256", data),
}

# nonce -> [nonce counts seen, requests left before it goes stale or None]
NONCES: dict[str, list[Any]] = {}

_PAIR = re.compile(r'\s*([A-Za-z0-9*_-]+)\s*=\s*(?:"((?:[^"\\]|\\.)*)"|([^\s,]*))\s*,?')


def parse_authorization(value: str) -> dict[str, str]:
    """The parameters of a ``Digest`` credentials field."""
    scheme, _, rest = value.partition(" ")
    assert scheme.lower() == "digest", value
    params: dict[str, str] = {}
    pos = 0
    while pos < len(rest):
        match = _PAIR.match(rest, pos)
        assert match is not None, f"bad credentials syntax at {rest[pos:]!r}"
        quoted = match[2]
        params[match[1].lower()] = (
            re.sub(r"\\(.)", r"\1", quoted) if quoted is not None else match[3]
        )
        pos = match.end()
    return params


def hexdigest(algorithm: str, text: str | bytes) -> str:
    """H(data) of RFC 7616 section 3.4.1, in lower-case hex."""
    base = algorithm[:-5] if algorithm.upper().endswith("-SESS") else algorithm
    data = text.encode("utf-8") if isinstance(text, str) else text
    return str(HASHES[base.upper()](data).hexdigest())


def expected_response(
    algorithm: str,
    qop: str | None,
    user: str,
    password: str,
    method: str,
    uri: str,
    nonce: str,
    nc: str | None,
    cnonce: str | None,
    body: bytes,
) -> str:
    """The ``response`` value of RFC 7616 section 3.4.1 (and RFC 2069 when
    ``qop`` is None)."""
    a1 = f"{user}:{REALM}:{password}"
    ha1 = hexdigest(algorithm, a1)
    if algorithm.upper().endswith("-SESS"):
        ha1 = hexdigest(algorithm, f"{ha1}:{nonce}:{cnonce}")
    if qop == "auth-int":
        ha2 = hexdigest(algorithm, f"{method}:{uri}:{hexdigest(algorithm, body)}")
    else:
        ha2 = hexdigest(algorithm, f"{method}:{uri}")
    if qop is None:
        return hexdigest(algorithm, f"{ha1}:{nonce}:{ha2}")
    return hexdigest(algorithm, f"{ha1}:{nonce}:{nc}:{cnonce}:{qop}:{ha2}")


def challenge(algorithm: str, qop: str, *, stale: bool, userhash: bool, uses: int | None) -> str:
    """A ``WWW-Authenticate`` value: a Basic challenge, then Digest."""
    nonce = secrets.token_urlsafe(24)
    NONCES[nonce] = [set(), uses]
    parts = [f'realm="{REALM}"', f'nonce="{nonce}"', f"algorithm={algorithm}"]
    if qop != "none":
        parts.append(f'qop="{qop}"')
    parts.append(f'opaque="{OPAQUE}"')
    if stale:
        parts.append("stale=true")
    if userhash:
        parts.append("userhash=true")
    return f'Basic realm="{REALM}", Digest ' + ", ".join(parts)


async def _read_body(receive: Receive) -> bytes:
    parts: list[bytes] = []
    while True:
        message = await receive()
        if message["type"] != "http.request":
            return b"".join(parts)
        parts.append(message.get("body", b""))
        if not message.get("more_body", False):
            return b"".join(parts)


async def _send(send: Send, status: int, body: Any, headers: list[tuple[bytes, bytes]]) -> None:
    data = json.dumps(body).encode()
    fields = [(b"content-type", b"application/json"), (b"content-length", b"%d" % len(data))]
    await send({"type": "http.response.start", "status": status, "headers": fields + headers})
    await send({"type": "http.response.body", "body": data})


def _check_digest(
    scope: Scope, body: bytes, algorithm: str, qop: str, query: dict[str, str]
) -> Any:
    """The JSON document of a good answer; ``None`` (needs a challenge) or
    ``"stale"``."""
    user = query.get("user", DEFAULT_USER)
    password = query.get("password", DEFAULT_PASSWORD)
    headers = {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope["headers"]}
    value = headers.get("authorization")
    if value is None:
        return None
    params = parse_authorization(value)
    nonce = params["nonce"]
    state = NONCES.get(nonce)
    if state is None:
        return None
    if params.get("realm") != REALM or params.get("opaque") != OPAQUE:
        return None
    if params.get("algorithm", "MD5").upper() != algorithm.upper():
        return None
    target = scope["raw_path"].decode("latin-1")
    if scope["query_string"]:
        target += "?" + scope["query_string"].decode("latin-1")
    if params["uri"] != target:
        return None
    if query.get("userhash"):
        if params.get("userhash") != "true":
            return None
        if params.get("username") != hexdigest(algorithm, f"{user}:{REALM}"):
            return None
    elif "username*" in params:
        charset, _, encoded = params["username*"].partition("''")
        if charset.upper() != "UTF-8" or unquote(encoded) != user:
            return None
    elif params.get("username") != user:
        return None
    if qop == "none":
        if "qop" in params or "nc" in params:
            return None
        nc_text: str | None = None
        cnonce = None
        sent_qop = None
    else:
        sent_qop = params.get("qop")
        if sent_qop != qop:
            return None
        nc_text = params["nc"]
        cnonce = params["cnonce"]
        if not re.fullmatch(r"[0-9a-f]{8}", nc_text):
            return None
        if int(nc_text, 16) in state[0]:
            return None  # a replayed nonce count
    want = expected_response(
        algorithm, sent_qop, user, password, scope["method"], target, nonce, nc_text, cnonce, body
    )
    if params.get("response") != want:
        return None
    if state[1] is not None:
        if state[1] == 0:
            return "stale"
        state[1] -= 1
    if nc_text is not None:
        state[0].add(int(nc_text, 16))
    return {
        "user": user,
        "nc": None if nc_text is None else int(nc_text, 16),
        "algorithm": params.get("algorithm"),
        "qop": sent_qop,
        "cnonce": cnonce,
    }


async def app(scope: Scope, receive: Receive, send: Send) -> None:
    """The ASGI entry point."""
    if scope["type"] == "lifespan":
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                await send({"type": "lifespan.startup.complete"})
            elif message["type"] == "lifespan.shutdown":
                await send({"type": "lifespan.shutdown.complete"})
                return
    body = await _read_body(receive)
    path: str = scope["path"]
    query = dict(parse_qsl(scope["query_string"].decode("latin-1")))
    if path == "/netrc-basic":
        headers = {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope["headers"]}
        value = headers.get("authorization", "")
        if value.startswith("Basic "):
            user, _, password = base64.b64decode(value[6:]).decode().partition(":")
            if (user, password) == ("alice", "wonderland"):
                await _send(send, 200, {"user": user}, [])
                return
        await _send(send, 401, {}, [(b"www-authenticate", b'Basic realm="netrc"')])
        return
    parts = path.strip("/").split("/")
    if len(parts) != 3 or parts[0] != "digest":
        await _send(send, 404, {}, [])
        return
    _, algorithm, qop = parts
    result = _check_digest(scope, body, algorithm, qop, query)
    if isinstance(result, dict):
        await _send(send, 200, result, [])
        return
    uses = int(query["stale_after"]) if "stale_after" in query else None
    value = challenge(
        algorithm, qop, stale=result == "stale", userhash=bool(query.get("userhash")), uses=uses
    )
    await _send(send, 401, {}, [(b"www-authenticate", value.encode("latin-1"))])
