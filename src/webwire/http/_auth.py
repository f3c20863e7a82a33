"""Authentication (RFC 9110 section 11): the generator-based :class:`Auth`
protocol, HTTP Basic (RFC 7617), Digest (RFC 7616), ``.netrc`` credentials
and plain functions.

An :meth:`Auth.auth_flow` is a plain generator, so one implementation serves
:class:`~webwire.AsyncClient` and :class:`~webwire.Client` alike: it yields
requests to send and receives each response back through ``send()``::

    class TokenAuth(webwire.Auth):
        def auth_flow(self, request):
            response = yield request                  # first try
            if response.status_code == 401:           # challenged
                request.headers["Authorization"] = fetch_token(response)
                yield request                         # try again
"""

from __future__ import annotations

import base64
import hashlib
import itertools
import netrc
import os
import re
import secrets
from collections.abc import AsyncGenerator, Callable, Generator
from typing import TYPE_CHECKING, Any, Union
from urllib.parse import quote

from webwire._exceptions import AuthError, LocalProtocolError

if TYPE_CHECKING:
    from ._models import Response
    from ._request import Request

__all__ = [
    "Auth",
    "AuthTypes",
    "BasicAuth",
    "Challenge",
    "DigestAuth",
    "FlowDriver",
    "FunctionAuth",
    "NetRCAuth",
    "build_auth",
    "netrc_path",
    "parse_challenges",
]


class Auth:
    """Base class of authentication schemes.

    Three entry points, so that a scheme doing I/O of its own (fetching a
    token, asking a user) works on both clients:

    * :meth:`auth_flow`: a plain generator without I/O, used by both.
    * :meth:`sync_auth_flow`: what :class:`~webwire.Client` runs; override it
      to do blocking I/O between steps. Defaults to :meth:`auth_flow`.
    * :meth:`async_auth_flow`: what :class:`~webwire.AsyncClient` runs (an
      async generator); override it to ``await`` between steps. Defaults to
      :meth:`auth_flow`.

    Attributes:
        requires_request_body: The client reads a streamed request body into
            memory before starting the flow (for schemes hashing the body).
        requires_response_body: The client reads each response body before
            sending it back into the flow (for schemes reading challenges
            from the body).
    """

    requires_request_body = False
    requires_response_body = False

    def auth_flow(self, request: Request) -> Generator[Request, Response, None]:
        """Authenticate ``request``.

        Args:
            request: The request to send; it may be modified in place.

        Yields:
            Each request to send; the client sends it and resumes the
            generator with the response (``response = yield request``). The
            response to the last request yielded is the one returned.
            Intermediate responses are read, released and put in
            ``history``.
        """
        yield request

    def sync_auth_flow(self, request: Request) -> Generator[Request, Response, None]:
        """The flow :class:`~webwire.Client` runs: :meth:`auth_flow` unless
        overridden (a generator that may block between steps).

        Args:
            request: The request to send.

        Returns:
            A generator yielding each request to send, as :meth:`auth_flow`.
        """
        return self.auth_flow(request)

    async def async_auth_flow(self, request: Request) -> AsyncGenerator[Request, Response]:
        """The flow :class:`~webwire.AsyncClient` runs: :meth:`auth_flow`
        unless overridden (an async generator that may ``await`` between
        steps).

        Args:
            request: The request to send.

        Yields:
            Each request to send, as :meth:`auth_flow`.
        """
        flow = self.auth_flow(request)
        try:
            try:
                request = next(flow)
            except StopIteration:
                return
            while True:
                response = yield request
                try:
                    request = flow.send(response)
                except StopIteration:
                    return
        finally:
            flow.close()


class BasicAuth(Auth):
    """HTTP Basic authentication (RFC 7617): ``Authorization: Basic
    base64(user-id ":" password)`` on every request.

    Args:
        username: The user-id; it may not contain ``:`` (RFC 7617 section 2).
        password: The password.
        encoding: Encoding of ``str`` credentials: ``"utf-8"`` (the one RFC
            7617 section 2.1 lets a server ask for with ``charset="UTF-8"``)
            by default; ``"latin-1"`` for servers that expect it. ``bytes``
            credentials are sent as given.

    Raises:
        LocalProtocolError: ``username`` contains ``:``.
        UnicodeEncodeError: A credential cannot be encoded in ``encoding``.
    """

    def __init__(
        self, username: str | bytes, password: str | bytes, *, encoding: str = "utf-8"
    ) -> None:
        user = username.encode(encoding) if isinstance(username, str) else username
        secret = password.encode(encoding) if isinstance(password, str) else password
        if b":" in user:
            raise LocalProtocolError("a Basic auth user-id cannot contain ':' (RFC 7617 section 2)")
        token = base64.b64encode(user + b":" + secret).decode("ascii")
        self._header = f"Basic {token}"

    def auth_flow(self, request: Request) -> Generator[Request, Response, None]:
        """Set the ``Authorization`` header and send the request once."""
        request.headers["Authorization"] = self._header
        yield request

    def __repr__(self) -> str:
        return "<BasicAuth [credentials hidden]>"


class FunctionAuth(Auth):
    """Authentication by a function that edits or replaces the request.

    Args:
        func: Called with each request before it is sent; returns the
            request to send (often the same object, headers updated).
    """

    def __init__(self, func: Callable[[Request], Request]) -> None:
        self._func = func

    def auth_flow(self, request: Request) -> Generator[Request, Response, None]:
        """Send ``func(request)`` once."""
        yield self._func(request)


# -- challenges (RFC 9110 section 11.6.1) ------------------------------------

_TCHAR = r"[!#$%&'*+\-.^_`|~0-9A-Za-z]"
_TOKEN = re.compile(_TCHAR + "+")
_SKIP = re.compile(r"[ \t,]*")
_OWS = re.compile(r"[ \t]*")
_PARAM = re.compile(
    r"(" + _TCHAR + r"+)[ \t]*=[ \t]*(?:(" + _TCHAR + r"+)|\"((?:[^\"\\\x00-\x08\x0a-\x1f\x7f]"
    r"|\\[\t\x20-\x7e\x80-\xff])*)\")"
)
_TOKEN68 = re.compile(r"[A-Za-z0-9\-._~+/]+=*(?=[ \t]*(?:,|$))")
_QUOTED_PAIR = re.compile(r"\\(.)", re.S)


class Challenge:
    """One challenge of a ``WWW-Authenticate`` field (RFC 9110 section
    11.6.1).

    Attributes:
        scheme: The auth-scheme, lower-cased (``"digest"``).
        params: The auth-params, names lower-cased, quoted values unescaped.
        token68: The token68 form (``Negotiate abc==``), or ``None``.
    """

    __slots__ = ("params", "scheme", "token68")

    def __init__(self, scheme: str) -> None:
        self.scheme = scheme
        self.params: dict[str, str] = {}
        self.token68: str | None = None

    def __repr__(self) -> str:
        return f"<Challenge {self.scheme} {self.params!r}>"


def parse_challenges(value: str) -> list[Challenge]:
    """Parse a ``WWW-Authenticate`` or ``Proxy-Authenticate`` value into its
    challenges (RFC 9110 section 11.6.1): several challenges may share one
    field, separated by commas; auth-param values are tokens or quoted
    strings (section 5.6.4, backslash escapes undone); scheme and parameter
    names are case-insensitive.

    Args:
        value: The field value.

    Returns:
        The challenges, in order.

    Raises:
        AuthError: The value does not follow the grammar, or a parameter
            appears twice in one challenge.
    """
    challenges: list[Challenge] = []
    current: Challenge | None = None
    pos = 0
    end = len(value)
    while True:
        pos = _SKIP.match(value, pos).end()  # type: ignore[union-attr]
        if pos >= end:
            return challenges
        match = _PARAM.match(value, pos)
        if match is not None and current is not None and current.token68 is None:
            name = match[1].lower()
            raw = match[2]
            param = raw if raw is not None else _QUOTED_PAIR.sub(r"\1", match[3])
            if name in current.params:
                raise AuthError(
                    f"the {current.scheme} challenge repeats the parameter {name!r} "
                    "(RFC 9110 section 11.2)"
                )
            current.params[name] = param
            pos = _OWS.match(value, match.end()).end()  # type: ignore[union-attr]
        else:
            match = _TOKEN.match(value, pos)
            if match is None:
                raise AuthError(
                    f"malformed authentication challenge {value!r}: unexpected "
                    f"{value[pos]!r} at position {pos} (RFC 9110 section 11.6.1)"
                )
            current = Challenge(match[0].lower())
            challenges.append(current)
            pos = match.end()
            after = _OWS.match(value, pos).end()  # type: ignore[union-attr]
            if after > pos and _PARAM.match(value, after) is None:
                token68 = _TOKEN68.match(value, after)
                if token68 is not None:
                    current.token68 = token68[0]
                    after = _OWS.match(value, token68.end()).end()  # type: ignore[union-attr]
            pos = after
        if pos < end and value[pos] != ",":
            if current is not None and not current.params and current.token68 is None:
                continue  # "Scheme param=..." : the parameters follow
            raise AuthError(
                f"malformed authentication challenge {value!r}: expected ',' at "
                f"position {pos} (RFC 9110 section 11.6.1)"
            )


# -- Digest (RFC 7616) --------------------------------------------------------


def _sha512_256(data: bytes) -> Any:
    return hashlib.new("sha512_256", data)


def _md5(data: bytes) -> Any:
    return hashlib.md5(data, usedforsecurity=False)


_HASHES: dict[str, Callable[[bytes], Any]] = {
    "MD5": _md5,
    "SHA-256": hashlib.sha256,
}
try:
    _sha512_256(b"")
except ValueError:  # pragma: no cover - OpenSSL without SHA-512/256
    pass
else:
    _HASHES["SHA-512-256"] = _sha512_256


class _DigestState:
    """A challenge being answered, with its nonce count (one per nonce)."""

    __slots__ = (
        "algorithm",
        "counter",
        "hash",
        "name",
        "nonce",
        "opaque",
        "qop",
        "realm",
        "session",
        "userhash",
    )

    def __init__(self, challenge: Challenge) -> None:
        params = challenge.params
        realm = params.get("realm")
        nonce = params.get("nonce")
        if realm is None or nonce is None:
            missing = "realm" if realm is None else "nonce"
            raise AuthError(f"the Digest challenge has no {missing} (RFC 7616 section 3.3)")
        algorithm = params.get("algorithm", "MD5").upper()
        self.session = algorithm.endswith("-SESS")
        base = algorithm[:-5] if self.session else algorithm
        if base not in _HASHES:
            raise AuthError(
                f"unsupported Digest algorithm {params.get('algorithm')!r} (supported: "
                f"{', '.join(sorted(_HASHES))} and their -sess variants; RFC 7616 section 3.3)"
            )
        self.algorithm = algorithm
        self.name = params.get("algorithm", "MD5")  # echoed as the server wrote it
        self.hash = _HASHES[base]
        self.realm = realm
        self.nonce = nonce
        self.opaque = params.get("opaque")
        self.userhash = params.get("userhash", "").lower() == "true"
        qop = params.get("qop")
        if qop is None:
            self.qop: str | None = None  # RFC 2069 compatibility
        else:
            offered = {item.strip().lower() for item in qop.split(",")}
            if "auth" in offered:
                self.qop = "auth"
            elif "auth-int" in offered:
                self.qop = "auth-int"
            else:
                raise AuthError(f"unsupported Digest qop {qop!r} (RFC 7616 section 3.3)")
        # next() of itertools.count is atomic: threads sharing the auth never
        # send the same nonce count twice.
        self.counter = itertools.count(1)


def _supported(challenge: Challenge) -> bool:
    algorithm = challenge.params.get("algorithm", "MD5").upper()
    if algorithm.endswith("-SESS"):
        algorithm = algorithm[:-5]
    return algorithm in _HASHES


def _quote(value: str) -> str:
    return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'


class DigestAuth(Auth):
    """HTTP Digest access authentication (RFC 7616).

    The first request is sent without credentials; a ``401`` with a
    ``Digest`` challenge is answered and the request sent again. The
    challenge is then remembered for that origin: later requests to it carry
    credentials at once, with an increasing nonce count (``nc``), until the
    server sends a new challenge. Supported: algorithms ``MD5``, ``SHA-256`` and
    ``SHA-512-256`` and their ``-sess`` variants; ``qop=auth``, ``qop=
    auth-int`` (bodies in memory only) and the RFC 2069 form without
    ``qop``; ``opaque`` echoed; ``stale=true`` (a new nonce, retried once
    without failing); ``userhash``; ``charset=UTF-8`` (credentials are
    always hashed as UTF-8). When a response offers several challenges, the
    first supported ``Digest`` one is used (the server lists them by
    preference, RFC 7616 section 3.7). A non-ASCII username is sent as
    ``username*`` (RFC 7616 section 3.4.4) unless ``userhash`` is used.

    One instance may be shared by many requests and threads.

    Args:
        username: The user name.
        password: The password.

    Raises (from the request):
        AuthError: The challenge is malformed (missing ``realm`` or
            ``nonce``, bad syntax) or asks for an algorithm or ``qop``
            webwire does not support, or ``qop=auth-int`` is required for a
            streamed body.
    """

    def __init__(self, username: str | bytes, password: str | bytes) -> None:
        self._username = username.decode("utf-8") if isinstance(username, bytes) else username
        self._password = password.encode("utf-8") if isinstance(password, str) else password
        # The challenge answered last, per origin: credentials computed for
        # one server are never sent ahead to another.
        self._states: dict[tuple[str, str, int | None], _DigestState] = {}

    def _make_cnonce(self) -> str:
        return secrets.token_hex(16)

    def _challenge(self, response: Response) -> Challenge | None:
        """The first supported Digest challenge of a 401, or ``None``."""
        digest: list[Challenge] = []
        for value in response.headers.getall("WWW-Authenticate", []):
            digest.extend(c for c in parse_challenges(value) if c.scheme == "digest")
        if not digest:
            return None
        for challenge in digest:
            if _supported(challenge):
                return challenge
        return digest[0]  # _DigestState explains what is unsupported

    def auth_flow(self, request: Request) -> Generator[Request, Response, None]:
        """Send ``request`` with credentials for the remembered challenge
        (if any), answer a ``401`` Digest challenge, and retry once more
        when the server says the nonce was ``stale``."""
        url = request.url
        key = (url.scheme, url.host or "", url.port)
        state = self._states.get(key)
        if state is not None:
            request.headers["Authorization"] = self._authorization(request, state)
        response = yield request
        retries = 0
        while response.status_code == 401 and retries < 2:
            challenge = self._challenge(response)
            if challenge is None:
                return
            stale = challenge.params.get("stale", "").lower() == "true"
            if retries == 1 and not stale:
                return  # the credentials themselves were refused
            state = _DigestState(challenge)
            self._states[key] = state
            request.headers["Authorization"] = self._authorization(request, state)
            retries += 1
            response = yield request

    def _authorization(self, request: Request, state: _DigestState) -> str:
        """The ``Authorization`` value answering ``state`` (RFC 7616 section
        3.4)."""
        hash_fn = state.hash

        def digest(*parts: str | bytes) -> str:
            data = b":".join(p.encode("utf-8") if isinstance(p, str) else p for p in parts)
            return str(hash_fn(data).hexdigest())

        url = request.url
        uri = url.raw_path_qs or "/"
        nc = f"{next(state.counter):08x}"
        cnonce = self._make_cnonce()
        ha1 = digest(self._username, state.realm, self._password)
        if state.session:
            ha1 = digest(ha1, state.nonce, cnonce)
        if state.qop == "auth-int":
            content = request._content
            if content is None:
                raise AuthError(
                    "the server requires Digest qop=auth-int, which hashes the body: a "
                    "streamed body cannot be hashed before it is sent; pass bytes",
                    request=request,
                )
            ha2 = digest(request.method, uri, digest(content))
        else:
            ha2 = digest(request.method, uri)
        if state.qop is None:
            answer = digest(ha1, state.nonce, ha2)
        else:
            answer = digest(ha1, state.nonce, nc, cnonce, state.qop, ha2)
        if state.userhash:
            user = f"username={_quote(digest(self._username, state.realm))}"
        elif self._username.isascii():
            user = f"username={_quote(self._username)}"
        else:
            user = "username*=UTF-8''" + quote(self._username, safe="")
        parts = [
            user,
            f"realm={_quote(state.realm)}",
            f"uri={_quote(uri)}",
            f"algorithm={state.name}",
            f"nonce={_quote(state.nonce)}",
        ]
        if state.qop is not None:
            parts += [f"nc={nc}", f"cnonce={_quote(cnonce)}", f"qop={state.qop}"]
        parts.append(f"response={_quote(answer)}")
        if state.opaque is not None:
            parts.append(f"opaque={_quote(state.opaque)}")
        if state.userhash:
            parts.append("userhash=true")
        return "Digest " + ", ".join(parts)

    def __repr__(self) -> str:
        return f"<DigestAuth {self._username!r} [password hidden]>"


# -- .netrc ---------------------------------------------------------------------


class NetRCAuth(Auth):
    """HTTP Basic credentials (RFC 7617) for each host from a ``.netrc``
    file, read with the standard :mod:`netrc` module.

    The file is read once, when the object is made. A request to a host
    with a ``machine`` entry (or a ``default`` entry) gets that login and
    password; other hosts get no credentials.

    Args:
        file: Path of the file; ``None`` reads ``$NETRC`` or ``~/.netrc``.

    Raises:
        AuthError: The file cannot be read or parsed (the message names the
            file and line).
    """

    def __init__(self, file: str | os.PathLike[str] | None = None) -> None:
        self._file = file
        self._netrc = _load_netrc(file)

    def credentials(self, host: str) -> tuple[str, str] | None:
        """The ``(login, password)`` for ``host``, or ``None``."""
        entry = self._netrc.authenticators(host)
        if entry is None:
            return None
        login, account, password = entry
        return login or account or "", password or ""

    def auth_flow(self, request: Request) -> Generator[Request, Response, None]:
        """Add Basic credentials for the request's host, when the file has
        them; send the request once."""
        credentials = self.credentials(request.url.host or "")
        if credentials is not None:
            request.headers["Authorization"] = BasicAuth(*credentials)._header
        yield request

    def __repr__(self) -> str:
        return f"<NetRCAuth {self._file!r}>"


def netrc_path() -> str | None:
    """The ``.netrc`` file the environment names: ``$NETRC``, else
    ``~/.netrc``; ``None`` when that file does not exist."""
    path = os.environ.get("NETRC") or os.path.join(os.path.expanduser("~"), ".netrc")
    return path if os.path.isfile(path) else None


def _load_netrc(file: str | os.PathLike[str] | None) -> netrc.netrc:
    path = os.fspath(file) if file is not None else netrc_path()
    try:
        if path is None:
            raise FileNotFoundError("no .netrc file ($NETRC or ~/.netrc)")
        return netrc.netrc(path)
    except netrc.NetrcParseError as exc:
        raise AuthError(f"cannot parse the .netrc file: {exc}") from exc
    except (OSError, UnicodeDecodeError) as exc:
        raise AuthError(f"cannot read the .netrc file {path!r}: {exc}") from exc


class FlowDriver:
    """Runs one auth flow for the client: a plain generator (driven
    without suspending) or an async generator (:meth:`Auth.async_auth_flow`
    overridden).

    Args:
        flow: The generator or async generator.
    """

    __slots__ = ("_flow", "_plain")

    def __init__(
        self, flow: Generator[Request, Response, None] | AsyncGenerator[Request, Response]
    ) -> None:
        self._flow = flow
        self._plain = not isinstance(flow, AsyncGenerator)

    async def start(self) -> Request | None:
        """The first request, or ``None`` when the flow yields nothing."""
        flow = self._flow
        try:
            if self._plain:
                return next(flow)  # type: ignore[arg-type]
            return await flow.__anext__()  # type: ignore[union-attr]
        except (StopIteration, StopAsyncIteration):
            return None

    async def send(self, response: Response) -> Request | None:
        """The next request after ``response``, or ``None`` when done."""
        flow = self._flow
        try:
            if self._plain:
                return flow.send(response)  # type: ignore[union-attr,return-value]
            return await flow.asend(response)  # type: ignore[union-attr]
        except (StopIteration, StopAsyncIteration):
            return None

    async def aclose(self) -> None:
        """Close the flow."""
        flow = self._flow
        if self._plain:
            flow.close()  # type: ignore[union-attr]
        else:
            await flow.aclose()  # type: ignore[union-attr]


AuthTypes = Union[  # noqa: UP007
    Auth,
    tuple[Union[str, bytes], Union[str, bytes]],  # noqa: UP007
    Callable[["Request"], "Request"],
]


def build_auth(auth: AuthTypes | None) -> Auth | None:
    """Turn the ``auth=`` argument into an :class:`Auth`.

    Args:
        auth: An :class:`Auth`, a ``(username, password)`` tuple (Basic), a
            function of a request (:class:`FunctionAuth`), or ``None``.

    Returns:
        The :class:`Auth`, or ``None``.

    Raises:
        TypeError: ``auth`` is none of these.
    """
    if auth is None or isinstance(auth, Auth):
        return auth
    if isinstance(auth, tuple):
        if len(auth) != 2:
            raise TypeError("auth=(username, password) needs exactly two items")
        return BasicAuth(auth[0], auth[1])
    if callable(auth):
        return FunctionAuth(auth)
    raise TypeError(f"auth must be an Auth, a (user, password) tuple or a callable, not {auth!r}")
