"""Sessions of the ``webwire`` command: cookies and credentials kept in a
JSON file between runs (``--session``), as HTTPie does.

A session NAME is stored per host under the user's configuration directory,
``$XDG_CONFIG_HOME/webwire/sessions/<host>[_<port>]/<NAME>.json`` (or
``~/.config/webwire/...``); a value with a ``/`` is a file path. The file is
written with mode 0600 and its directory with 0700, since it holds cookies
and credentials.
"""

from __future__ import annotations

import json
import os
import tempfile
import time
from dataclasses import dataclass, field
from http.cookiejar import Cookie, CookieJar
from pathlib import Path
from typing import Any

import yarl

from ._args import UsageError, check_session_name

__all__ = ["Session", "config_dir", "load_session", "save_session", "session_path"]

_FORMAT = 1


@dataclass
class Session:
    """The stored state of one session.

    Attributes:
        path: Where the session file lives.
        cookies: The cookies (unexpired ones only after loading).
        auth: ``{"type": "basic"|"digest"|"bearer", "raw": "user:pass"}``
            or ``None``.
    """

    path: Path
    cookies: list[Cookie] = field(default_factory=list)
    auth: dict[str, str] | None = None


def config_dir() -> Path:
    """The configuration directory of the command:
    ``$XDG_CONFIG_HOME/webwire``, else ``~/.config/webwire``.

    Returns:
        The directory (it may not exist yet).
    """
    base = os.environ.get("XDG_CONFIG_HOME")
    root = Path(base) if base and os.path.isabs(base) else Path.home() / ".config"
    return root / "webwire"


def session_path(name: str, url: str) -> Path:
    """The file of session ``name`` for requests to ``url``.

    Args:
        name: A session name (letters, digits, ``_.-``), or a path when it
            contains a ``/`` (or the platform's separator).
        url: The request URL; its host and explicit port select the
            directory of a named session.

    Returns:
        The session file path.

    Raises:
        UsageError: The name is neither a valid name nor a path.
    """
    check_session_name(name)
    if "/" in name or os.sep in name:
        return Path(name).expanduser()
    parsed = yarl.URL(url)
    host = (parsed.host or "localhost").replace(":", "_")
    if parsed.explicit_port is not None:
        host = f"{host}_{parsed.explicit_port}"
    return config_dir() / "sessions" / host / f"{name}.json"


def _cookie_from(data: dict[str, Any]) -> Cookie:
    domain = str(data["domain"])
    path = str(data.get("path") or "/")
    expires = data.get("expires")
    return Cookie(
        version=int(data.get("version") or 0),
        name=str(data["name"]),
        value=str(data.get("value", "")),
        port=None,
        port_specified=False,
        domain=domain,
        domain_specified=bool(data.get("domain_specified", False)),
        domain_initial_dot=domain.startswith("."),
        path=path,
        path_specified=bool(data.get("path_specified", True)),
        secure=bool(data.get("secure", False)),
        expires=int(expires) if expires is not None else None,
        discard=expires is None,
        comment=None,
        comment_url=None,
        rest={"HttpOnly": ""} if data.get("http_only") else {},
        rfc2109=False,
    )


def _cookie_to(cookie: Cookie) -> dict[str, Any]:
    return {
        "name": cookie.name,
        "value": cookie.value,
        "domain": cookie.domain,
        "domain_specified": cookie.domain_specified,
        "path": cookie.path,
        "path_specified": cookie.path_specified,
        "secure": cookie.secure,
        "expires": cookie.expires,
        "http_only": cookie.has_nonstandard_attr("HttpOnly"),
        "version": cookie.version or 0,
    }


def load_session(path: Path) -> Session:
    """Read a session file; a missing file is an empty session.

    Args:
        path: The session file.

    Returns:
        The session, expired cookies left out.

    Raises:
        UsageError: The file cannot be read or is not a session file.
    """
    session = Session(path)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        return session
    except OSError as exc:
        raise UsageError(f"cannot read session {str(path)!r}: {exc.strerror or exc}") from exc
    try:
        data = json.loads(text)
        now = int(time.time())
        for item in data.get("cookies", []):
            cookie = _cookie_from(item)
            if not cookie.is_expired(now):
                session.cookies.append(cookie)
        auth = data.get("auth")
        if auth is not None:
            session.auth = {"type": str(auth["type"]), "raw": str(auth["raw"])}
    except (ValueError, TypeError, KeyError, AttributeError) as exc:
        raise UsageError(f"{str(path)!r} is not a webwire session file") from exc
    return session


def save_session(session: Session, jar: CookieJar) -> None:
    """Write a session file atomically with mode 0600 (its directory is
    created with mode 0700).

    Args:
        session: The session; its ``cookies`` are replaced by those of
            ``jar`` that have not expired.
        jar: The client's cookie jar after the exchange.

    Raises:
        OSError: The file cannot be written.
    """
    now = int(time.time())
    session.cookies = [cookie for cookie in jar if not cookie.is_expired(now)]
    document = {
        "webwire_session": _FORMAT,
        "cookies": [_cookie_to(cookie) for cookie in session.cookies],
        "auth": session.auth,
    }
    directory = session.path.parent
    directory.mkdir(mode=0o700, parents=True, exist_ok=True)
    fd, temporary = tempfile.mkstemp(prefix=".session-", suffix=".tmp", dir=directory)
    try:
        if hasattr(os, "fchmod"):  # mkstemp already creates the file with 0600
            os.fchmod(fd, 0o600)
        with os.fdopen(fd, "w", encoding="utf-8") as file:
            json.dump(document, file, indent=4)
            file.write("\n")
        os.replace(temporary, session.path)
    except BaseException:
        try:
            os.unlink(temporary)
        except OSError:
            pass
        raise
