"""HTTP Alternative Services (RFC 7838): where an origin says it can also be
reached over HTTP/3 (RFC 9114 section 3.1.1).

An ``https`` origin advertises an alternative with the ``Alt-Svc`` response
field, e.g. ``Alt-Svc: h3=":443"; ma=3600``. :class:`AltSvcCache` keeps the
``h3`` alternatives of each origin until their freshness lifetime (``ma``,
86,400 seconds by default) runs out, and remembers alternatives that failed
to connect (RFC 7838 section 2.4: a client that finds an alternative not
usable keeps using the origin itself), so the pool does not try them again
for a while.

Parsing is lenient in what it refuses: a field value that does not follow
the grammar of RFC 7838 section 3 is ignored as a whole (it never raises),
unknown parameters are skipped, and protocol ids other than ``h3`` (the
draft ``h3-29``, ``h2``, ...) are not kept.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Union

import yarl

from webwire._backends import init_lock

if TYPE_CHECKING:
    from .connect import Origin

__all__ = [
    "BROKEN_BASE_DELAY",
    "BROKEN_MAX_DELAY",
    "DEFAULT_MAX_AGE",
    "DEFAULT_MAX_ORIGINS",
    "AltService",
    "AltSvcCache",
    "parse_alt_svc",
]

DEFAULT_MAX_AGE = 86400.0
"""Seconds an alternative stays fresh without an ``ma`` parameter (RFC 7838
section 3.1)."""

DEFAULT_MAX_ORIGINS = 1000
"""Origins an :class:`AltSvcCache` keeps alternatives for by default."""

BROKEN_BASE_DELAY = 300.0
"""Seconds an alternative that failed to connect is not tried again."""

BROKEN_MAX_DELAY = 48 * 3600.0
"""Longest wait (seconds) after repeated failures: the delay doubles per
failure up to this."""

_MAX_FIELD_LENGTH = 4096
_PARSE_CACHE_SIZE = 64
_TOKEN_CHARS = frozenset(
    "!#$%&'*+-.^_`|~0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"
)
_WHITESPACE = " \t"

OriginLike = Union[str, yarl.URL, "Origin"]
"""An origin given as ``"https://host[:port]"``, a URL (its path is
ignored), or an :class:`~webwire._transport.connect.Origin`."""


@dataclass(frozen=True, slots=True)
class AltService:
    """One alternative service of an origin (RFC 7838 section 2).

    Attributes:
        protocol: ALPN protocol id, ``"h3"`` (RFC 9114 section 3.1).
        host: Host of the alternative, or ``None`` for the origin's own
            host (``h3=":443"``). A different host is still checked
            against the origin's certificate (RFC 7838 section 2.1).
        port: UDP port of the alternative (1-65535).
        expires: ``monotonic()`` time (seconds, the cache's clock) after
            which the alternative is no longer used.
        persist: ``persist=1`` was given (RFC 7838 section 3.1): the entry
            is meant to survive network changes.
    """

    protocol: str
    host: str | None
    port: int
    expires: float
    persist: bool = False


@dataclass(frozen=True, slots=True)
class _Parsed:
    """One alternative as parsed, before it is timed."""

    protocol: str
    host: str | None
    port: int
    max_age: float
    persist: bool


_CLEAR: tuple[_Parsed, ...] = ()


def _skip_ws(text: str, i: int) -> int:
    n = len(text)
    while i < n and text[i] in _WHITESPACE:
        i += 1
    return i


def _token(text: str, i: int) -> tuple[str, int]:
    start = i
    n = len(text)
    while i < n and text[i] in _TOKEN_CHARS:
        i += 1
    if i == start:
        raise ValueError("token expected")
    return text[start:i], i


def _quoted(text: str, i: int) -> tuple[str, int]:
    """A quoted-string (RFC 9110 section 5.6.4) starting at ``text[i]``."""
    if i >= len(text) or text[i] != '"':
        raise ValueError("quoted-string expected")
    i += 1
    out: list[str] = []
    n = len(text)
    while i < n:
        char = text[i]
        if char == '"':
            return "".join(out), i + 1
        if char == "\\":
            i += 1
            if i >= n:
                break
            char = text[i]
        if char in "\r\n\0":
            break
        out.append(char)
        i += 1
    raise ValueError("unterminated quoted-string")


def _authority(value: str) -> tuple[str | None, int]:
    """``[uri-host] ":" port`` of an alt-authority (RFC 7838 section 3)."""
    host, sep, port_text = value.rpartition(":")
    if not sep or not port_text.isdigit() or len(port_text) > 5:
        raise ValueError("alt-authority needs a port")
    port = int(port_text)
    if not 0 < port < 65536:
        raise ValueError("port out of range")
    if not host:
        return None, port
    if host.startswith("[") and host.endswith("]"):
        host = host[1:-1]
        if not host or any(c not in "0123456789abcdefABCDEF:." for c in host):
            raise ValueError("bad IPv6 literal")
        return host.lower(), port
    if any(c in host for c in "[]/@?# \t") or any(ord(c) < 0x21 or ord(c) > 0x7E for c in host):
        raise ValueError("bad host")
    return host.lower(), port


def _unpercent(protocol_id: str) -> str:
    """The ALPN id of a percent-encoded protocol-id (RFC 7838 section 3)."""
    if "%" not in protocol_id:
        return protocol_id
    out = bytearray()
    i = 0
    raw = protocol_id.encode("ascii")
    while i < len(raw):
        if raw[i] == 0x25:  # "%"
            hex_digits = raw[i + 1 : i + 3].decode("ascii")
            if len(hex_digits) != 2 or any(c not in "0123456789abcdefABCDEF" for c in hex_digits):
                raise ValueError("bad percent-encoding")
            out.append(int(hex_digits, 16))
            i += 3
        else:
            out.append(raw[i])
            i += 1
    return out.decode("latin-1")


def _parse(text: str) -> tuple[_Parsed, ...] | None:
    """Every alternative of a field value (``()`` for ``clear``), or
    ``None`` when it is malformed."""
    try:
        return _parse_strict(text)
    except (ValueError, UnicodeError):
        return None


def _parse_strict(text: str) -> tuple[_Parsed, ...]:
    if len(text) > _MAX_FIELD_LENGTH:
        raise ValueError("field value too long")
    stripped = text.strip(_WHITESPACE)
    if stripped == "clear":
        return _CLEAR
    found: list[_Parsed] = []
    i = 0
    n = len(text)
    members = 0
    while True:
        i = _skip_ws(text, i)
        if i < n and text[i] == ",":  # empty list member (RFC 9110 section 5.6.1)
            i += 1
            continue
        if i >= n:
            break
        protocol_id, i = _token(text, i)
        if i >= n or text[i] != "=":
            raise ValueError("'=' expected after the protocol-id")
        authority, i = _quoted(text, i + 1)
        host, port = _authority(authority)
        max_age = DEFAULT_MAX_AGE
        persist = False
        while True:
            i = _skip_ws(text, i)
            if i >= n or text[i] == ",":
                break
            if text[i] != ";":
                raise ValueError("';' or ',' expected")
            i = _skip_ws(text, i + 1)
            name, i = _token(text, i)
            if i >= n or text[i] != "=":
                raise ValueError("'=' expected after a parameter name")
            i += 1
            if i < n and text[i] == '"':
                value, i = _quoted(text, i)
            else:
                value, i = _token(text, i)
            name = name.lower()
            if name == "ma":
                if not value.isdigit() or not value.isascii():
                    raise ValueError("ma must be delta-seconds")
                max_age = float(min(int(value[:12]), 2**31))
            elif name == "persist":
                persist = value == "1"
            # other parameters are ignored (RFC 7838 section 3)
        members += 1
        if members > 64:
            raise ValueError("too many alternatives")
        protocol = _unpercent(protocol_id)
        if protocol == "h3":
            found.append(_Parsed(protocol, host, port, max_age, persist))
    if not members:
        raise ValueError("empty field value")
    return tuple(found)


def parse_alt_svc(value: str | bytes) -> list[AltService] | None:
    """Parse one ``Alt-Svc`` field value (RFC 7838 section 3).

    Args:
        value: The field value, e.g. ``'h3=":443"; ma=3600, h3-29=":443"'``
            (bytes are decoded as latin-1).

    Returns:
        The ``h3`` alternatives in the order given, their ``expires``
        holding the freshness lifetime in seconds (``ma``, default 86,400)
        rather than a time; ``[]`` for ``clear`` or when no ``h3``
        alternative is listed; ``None`` when the value is malformed (it is
        then to be ignored). Never raises.
    """
    if isinstance(value, bytes):
        value = value.decode("latin-1")
    parsed = _parse(value)
    if parsed is None:
        return None
    return [AltService(p.protocol, p.host, p.port, p.max_age, p.persist) for p in parsed]


def _origin_key(origin: OriginLike) -> tuple[str, str, int]:
    """``(scheme, host, port)`` of an origin given as a string, URL or
    :class:`Origin` (a host in lower case).

    Raises:
        ValueError: Not an absolute http(s) URL with a host.
    """
    if isinstance(origin, tuple):
        scheme, host, port = origin
        return scheme, host.lower(), port
    url = origin if isinstance(origin, yarl.URL) else yarl.URL(origin)
    scheme = url.scheme
    if scheme not in ("http", "https") or not url.raw_host:
        raise ValueError(f"an origin is an absolute http(s) URL, not {str(origin)!r}")
    url_port = url.port
    if url_port is None:  # pragma: no cover - http(s) URLs have a default port
        raise ValueError(f"no port in {str(origin)!r}")
    return scheme, url.raw_host.lower(), url_port


class AltSvcCache:
    """The HTTP/3 alternatives of origins (RFC 7838), shared by a client's
    requests and safe to use from many threads.

    Entries come from ``Alt-Svc`` fields of responses from ``https``
    origins (the pool calls :meth:`update`), or from :meth:`add`. A new
    field value from an origin replaces what was kept for it (RFC 7838
    section 3: ``clear`` removes everything); each alternative is used
    until its ``ma`` seconds have passed.

    A failed connection attempt to an alternative (:meth:`mark_broken`)
    keeps it from being tried for 5 minutes, doubling after each further
    failure up to 48 hours; a success (:meth:`mark_working`) resets it.

    Args:
        max_origins: Most origins kept (at least 1); when full, the entry
            that expires first is dropped.
        clock: Seconds of a monotonic clock; the pool switches it to its
            backend's clock (the fake clock in tests), shifting the entries
            kept so far.

    Raises:
        ValueError: ``max_origins`` is below 1.
    """

    def __init__(
        self,
        max_origins: int = DEFAULT_MAX_ORIGINS,
        *,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if isinstance(max_origins, bool) or not isinstance(max_origins, int) or max_origins < 1:
            raise ValueError(f"max_origins must be an int >= 1, not {max_origins!r}")
        self._max = max_origins
        self._clock = clock
        self._lock = init_lock()
        self._entries: dict[tuple[str, str, int], tuple[AltService, ...]] = {}
        # (origin, host, port) -> (not tried before this time, failures so far)
        self._broken: dict[tuple[tuple[str, str, int], str | None, int], tuple[float, int]] = {}
        self._parsed: dict[str, tuple[_Parsed, ...] | None] = {}

    # -- clock -----------------------------------------------------------------

    def _bind_clock(self, clock: Callable[[], float]) -> None:
        """Use ``clock`` from now on; times kept so far are moved onto it."""
        with self._lock:
            old = self._clock
            if old is clock:
                return
            shift = clock() - old()
            self._clock = clock
            if not shift:
                return
            self._entries = {
                key: tuple(
                    AltService(a.protocol, a.host, a.port, a.expires + shift, a.persist)
                    for a in alts
                )
                for key, alts in self._entries.items()
            }
            self._broken = {
                key: (until + shift, count) for key, (until, count) in self._broken.items()
            }

    def monotonic(self) -> float:
        """The cache's clock (seconds)."""
        return self._clock()

    # -- reading ---------------------------------------------------------------

    def get(self, origin: OriginLike) -> list[AltService]:
        """The fresh ``h3`` alternatives of ``origin``, most preferred
        first (the order of the field value), broken ones included.

        Args:
            origin: ``"https://host[:port]"``, a URL or an ``Origin``.

        Raises:
            ValueError: ``origin`` is not an absolute http(s) URL.
        """
        key = _origin_key(origin)
        now = self._clock()
        with self._lock:
            alts = self._entries.get(key)
            if not alts:
                return []
            fresh = tuple(a for a in alts if a.expires > now)
            if len(fresh) != len(alts):
                if fresh:
                    self._entries[key] = fresh
                else:
                    del self._entries[key]
            return list(fresh)

    def lookup(self, origin: Origin) -> AltService | None:
        """The first fresh alternative of ``origin`` that is not marked
        broken, or ``None`` (the pool's per-request question).

        Args:
            origin: The request's origin.
        """
        key: tuple[str, str, int] = (origin[0], origin[1].lower(), origin[2])
        if key not in self._entries:  # the common case, without the lock
            return None
        now = self._clock()
        with self._lock:
            alts = self._entries.get(key)
            if not alts:
                return None
            for alt in alts:
                if alt.expires <= now:
                    continue
                broken = self._broken.get((key, alt.host, alt.port))
                if broken is not None and broken[0] > now:
                    continue
                return alt
            if all(alt.expires <= now for alt in alts):
                del self._entries[key]
            return None

    def __len__(self) -> int:
        """Origins with alternatives kept (some may have expired)."""
        return len(self._entries)

    def __contains__(self, origin: object) -> bool:
        try:
            return bool(self.get(origin))  # type: ignore[arg-type]
        except (ValueError, TypeError):
            return False

    # -- writing ---------------------------------------------------------------

    def add(
        self,
        origin: OriginLike,
        *,
        host: str | None = None,
        port: int | None = None,
        max_age: float = DEFAULT_MAX_AGE,
        persist: bool = False,
        protocol: str = "h3",
    ) -> AltService:
        """Add an HTTP/3 alternative for ``origin``, as if it had sent
        ``Alt-Svc: h3="host:port"; ma=max_age`` (kept with the origin's
        other alternatives, replacing one with the same host and port).

        Args:
            origin: An ``https`` origin: ``"https://host[:port]"``, a URL or
                an ``Origin``.
            host: Host of the alternative; ``None``: the origin's host.
            port: UDP port; ``None``: the origin's port.
            max_age: Seconds the alternative is used (> 0).
            persist: Kept across network changes (informational).
            protocol: ALPN id; only ``"h3"`` is supported.

        Returns:
            The entry added.

        Raises:
            ValueError: ``origin`` is not an https origin, ``port`` is out
                of range, ``max_age`` is not positive, or ``protocol`` is
                not ``"h3"``.
        """
        key = _origin_key(origin)
        if key[0] != "https":
            raise ValueError("alternative services are only used for https origins")
        if protocol != "h3":
            raise ValueError(f"only the h3 protocol is supported, not {protocol!r}")
        if port is None:
            port = key[2]
        if isinstance(port, bool) or not isinstance(port, int) or not 0 < port < 65536:
            raise ValueError(f"port must be in 1-65535, not {port!r}")
        if not max_age > 0:
            raise ValueError(f"max_age must be > 0 seconds, not {max_age!r}")
        alt_host = None if host is None or host.lower() == key[1] else host.lower()
        with self._lock:
            alt = AltService(protocol, alt_host, port, self._clock() + max_age, persist)
            kept = tuple(
                a for a in self._entries.get(key, ()) if (a.host, a.port) != (alt_host, port)
            )
            self._store_locked(key, (alt, *kept))
            return alt

    def update(self, origin: OriginLike, value: str | bytes) -> bool:
        """Take an ``Alt-Svc`` field value received from ``origin``.

        A valid value replaces the origin's alternatives (``clear`` or a
        value without ``h3`` removes them); a malformed one, or one from an
        origin that is not ``https``, is ignored (RFC 7838 section 2.1:
        alternatives are only used for origins authenticated by TLS).

        Args:
            origin: The origin that sent the response.
            value: The field value (bytes are decoded as latin-1).

        Returns:
            Whether the value was used.
        """
        try:
            key = _origin_key(origin)
        except ValueError:
            return False
        if key[0] != "https":
            return False
        text = value.decode("latin-1") if isinstance(value, bytes) else value
        cache = self._parsed  # values repeat: parse each one once
        if text in cache:
            parsed = cache[text]
        else:
            parsed = _parse(text)
            if len(cache) >= _PARSE_CACHE_SIZE:
                self._parsed = cache = {}
            cache[text] = parsed
        if parsed is None:
            return False
        with self._lock:
            now = self._clock()
            alts = tuple(
                AltService(
                    p.protocol,
                    p.host if p.host != key[1] else None,
                    p.port,
                    now + p.max_age,
                    p.persist,
                )
                for p in parsed
                if p.max_age > 0
            )
            if alts:
                self._store_locked(key, alts)
            else:
                self._entries.pop(key, None)
        return True

    def _store_locked(self, key: tuple[str, str, int], alts: tuple[AltService, ...]) -> None:
        entries = self._entries
        if key not in entries and len(entries) >= self._max:
            self._evict_locked()
        entries[key] = alts

    def _evict_locked(self) -> None:
        """Drop expired entries, else the one that expires first."""
        now = self._clock()
        entries = self._entries
        expired = [k for k, alts in entries.items() if all(a.expires <= now for a in alts)]
        for k in expired:
            del entries[k]
        if len(entries) >= self._max:
            soonest = min(entries, key=lambda k: max(a.expires for a in entries[k]))
            del entries[soonest]

    def clear(self, origin: OriginLike | None = None) -> None:
        """Forget the alternatives (and the failure memory) of ``origin``,
        or of every origin.

        Raises:
            ValueError: ``origin`` is not an absolute http(s) URL.
        """
        if origin is None:
            with self._lock:
                self._entries.clear()
                self._broken.clear()
            return
        key = _origin_key(origin)
        with self._lock:
            self._entries.pop(key, None)
            for broken in [b for b in self._broken if b[0] == key]:
                del self._broken[broken]

    # -- failures --------------------------------------------------------------

    def mark_broken(self, origin: OriginLike, alt: AltService | None = None) -> float:
        """Record that connecting to ``alt`` (``None``: the origin's own
        host and port) failed: it is not tried again for 5 minutes,
        doubled per failure in a row, at most 48 hours (RFC 7838 section
        2.4: the client falls back to the origin).

        Returns:
            Seconds until it is tried again.
        """
        key = _origin_key(origin)
        host, port = (None, key[2]) if alt is None else (alt.host, alt.port)
        with self._lock:
            now = self._clock()
            _, count = self._broken.get((key, host, port), (0.0, 0))
            delay = min(BROKEN_BASE_DELAY * 2.0 ** min(count, 20), BROKEN_MAX_DELAY)
            if len(self._broken) >= self._max and (key, host, port) not in self._broken:
                self._broken = {k: v for k, v in self._broken.items() if v[0] > now}
                if len(self._broken) >= self._max:
                    self._broken.pop(next(iter(self._broken)))
            self._broken[(key, host, port)] = (now + delay, count + 1)
            return delay

    def mark_working(self, origin: OriginLike, alt: AltService | None = None) -> None:
        """Record a successful connection to ``alt`` (``None``: the
        origin's own host and port): its failure count starts again."""
        if not self._broken:
            return
        key = _origin_key(origin)
        host, port = (None, key[2]) if alt is None else (alt.host, alt.port)
        with self._lock:
            self._broken.pop((key, host, port), None)

    def broken_until(self, origin: OriginLike, alt: AltService | None = None) -> float | None:
        """The clock time before which ``alt`` (``None``: the origin's own
        host and port) is not tried, or ``None`` when it is usable."""
        key = _origin_key(origin)
        host, port = (None, key[2]) if alt is None else (alt.host, alt.port)
        with self._lock:
            entry = self._broken.get((key, host, port))
        if entry is None or entry[0] <= self._clock():
            return None
        return entry[0]

    def is_broken(self, origin: OriginLike, alt: AltService | None = None) -> bool:
        """Whether ``alt`` (``None``: the origin's own port) is in its
        wait after a failed connection."""
        return self.broken_until(origin, alt) is not None

    def __repr__(self) -> str:
        return f"<AltSvcCache origins={len(self._entries)} max_origins={self._max}>"
