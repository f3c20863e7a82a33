"""Choosing a transport per URL: mount patterns, and proxies from the
environment.

Mount patterns (``mounts=`` of the clients) map URLs to transports:
``"all://"``, ``"http://"``, ``"https://"``, ``"all://example.com"``,
``"http://*.example.com"`` (subdomains only), ``"all://*example.com"``
(the domain and its subdomains), ``"https://example.com:8443"``. The most
specific matching pattern wins: one with a port first, then the longer
host, then a named scheme over ``all``.

With ``trust_env`` the proxy variables are read once, when the client is
built: ``http_proxy``, ``https_proxy``, ``all_proxy`` and ``no_proxy``, in
lower or upper case (lower case wins, as with curl; ``HTTP_PROXY`` is
ignored when ``REQUEST_METHOD`` is set, i.e. inside a CGI script, where
clients control it). ``no_proxy`` is a comma or space separated list of
``*``, host names (``example.com`` matches the domain and its subdomains,
``.example.com`` and ``*.example.com`` the same), IP addresses, CIDR ranges
(``10.0.0.0/8``, ``fd00::/8``) and ``host:port`` entries.
"""

from __future__ import annotations

import ipaddress
import os
from collections.abc import Iterable, Mapping
from typing import Generic, TypeVar

from yarl import URL

from webwire._exceptions import InvalidURL

__all__ = ["EnvProxies", "NoProxy", "Router", "URLPattern", "environment_proxies"]

T = TypeVar("T")

_ROUTE_CACHE_SIZE = 512
_IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
_IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network


def _normalize_host(host: str) -> str:
    host = host.strip().lower()
    if host.startswith("[") and host.endswith("]"):
        host = host[1:-1]
    return host.rstrip(".")


def _ip(text: str) -> _IPAddress | None:
    try:
        return ipaddress.ip_address(text.split("%", 1)[0])
    except ValueError:
        return None


class URLPattern:
    """One mount pattern, ``scheme://[host][:port]``.

    Args:
        pattern: ``all://``, ``http://``, ``https://``, optionally with a
            host (``example.com``, ``*.example.com`` for subdomains only,
            ``*example.com`` for the domain and its subdomains, an IP
            literal, ``[::1]`` for IPv6) and a port.

    Raises:
        InvalidURL: The pattern has no ``scheme://`` or a bad port.
    """

    __slots__ = ("_exact", "_suffix", "host", "pattern", "port", "priority", "scheme")

    def __init__(self, pattern: str) -> None:
        if "://" not in pattern:
            raise InvalidURL(
                f"mount pattern {pattern!r} needs a scheme, such as 'all://' or 'https://'"
            )
        scheme, _, rest = pattern.partition("://")
        rest = rest.split("/", 1)[0]
        port: int | None = None
        host = rest
        if rest.startswith("["):
            end = rest.find("]")
            host, tail = rest[: end + 1], rest[end + 1 :]
            if tail.startswith(":"):
                port = self._port(pattern, tail[1:])
        elif rest.count(":") == 1:
            host, port_text = rest.split(":")
            port = self._port(pattern, port_text)
        self.pattern = pattern
        self.scheme = scheme.lower()
        self.host = _normalize_host(host)
        self.port = port
        self._suffix: str | None = None
        self._exact: str | None = None
        if self.host.startswith("*."):
            self._suffix = self.host[1:]
        elif self.host.startswith("*"):
            self._suffix = "." + self.host[1:]
            self._exact = self.host[1:]
        elif self.host:
            self._exact = self.host
        # Sorted ascending: a port first, then the longer host, then a scheme.
        self.priority = (port is None, -len(self.host), self.scheme == "all")

    @staticmethod
    def _port(pattern: str, text: str) -> int:
        if not text.isdigit() or not 0 < int(text) < 65536:
            raise InvalidURL(f"mount pattern {pattern!r} has an invalid port {text!r}")
        return int(text)

    def matches(self, scheme: str, host: str, port: int | None) -> bool:
        """Whether a URL with these parts (``host`` lower case, IPv6 without
        brackets; ``port`` the effective port) matches."""
        if self.scheme != "all" and self.scheme != scheme:
            return False
        if self.port is not None and self.port != port:
            return False
        if not self.host:
            return True
        if self._exact is not None and host == self._exact:
            return True
        return self._suffix is not None and host.endswith(self._suffix)

    def __repr__(self) -> str:
        return f"URLPattern({self.pattern!r})"


class NoProxy:
    """The hosts that bypass environment proxies (``no_proxy``).

    Args:
        value: The variable's value (see the module docstring).
    """

    __slots__ = ("_all", "_host_ports", "_hosts", "_ips", "_networks", "_suffixes")

    def __init__(self, value: str) -> None:
        self._all = False
        self._hosts: set[str] = set()
        self._suffixes: list[str] = []
        self._host_ports: set[tuple[str, int]] = set()
        self._ips: set[_IPAddress] = set()
        self._networks: list[_IPNetwork] = []
        for entry in value.replace(",", " ").split():
            self._add(entry.strip().lower())

    def _add(self, entry: str) -> None:
        if entry == "*":
            self._all = True
            return
        if "/" in entry:
            try:
                self._networks.append(ipaddress.ip_network(entry, strict=False))
            except ValueError:
                pass
            return
        ip = _ip(_normalize_host(entry))
        if ip is not None:
            self._ips.add(ip)
            return
        port: int | None = None
        host = entry
        if entry.startswith("["):
            end = entry.find("]")
            host, tail = entry[: end + 1], entry[end + 1 :]
            if tail[1:].isdigit():
                port = int(tail[1:])
        elif entry.count(":") == 1:
            host, port_text = entry.split(":")
            if port_text.isdigit():
                port = int(port_text)
        host = _normalize_host(host)
        if host.startswith("*."):
            host = host[2:]
        elif host.startswith("."):
            host = host[1:]
        if not host:
            return
        if port is not None:
            self._host_ports.add((host, port))
        else:
            self._hosts.add(host)
            self._suffixes.append("." + host)

    def __bool__(self) -> bool:
        return bool(
            self._all
            or self._hosts
            or self._host_ports
            or self._ips
            or self._networks
        )

    def matches(self, host: str, port: int | None) -> bool:
        """Whether ``host`` (lower case, IPv6 without brackets) at ``port``
        (the effective port) bypasses the proxy."""
        if self._all:
            return True
        host = _normalize_host(host)
        ip = _ip(host) if (self._ips or self._networks or ":" in host) else None
        if ip is not None:
            if ip in self._ips or any(ip in net for net in self._networks):
                return True
        elif host in self._hosts or any(host.endswith(s) for s in self._suffixes):
            return True
        if port is not None and self._host_ports:
            if (host, port) in self._host_ports:
                return True
            return any(
                host.endswith("." + name) and port == p for name, p in self._host_ports
            )
        return False


class EnvProxies:
    """The proxies the environment asks for.

    Attributes:
        http: Proxy URL for ``http`` requests, or ``None``.
        https: Proxy URL for ``https`` requests, or ``None``.
        no_proxy: Hosts that bypass both.
    """

    __slots__ = ("http", "https", "no_proxy")

    def __init__(self, http: str | None, https: str | None, no_proxy: NoProxy) -> None:
        self.http = http
        self.https = https
        self.no_proxy = no_proxy

    def __bool__(self) -> bool:
        return self.http is not None or self.https is not None

    def __repr__(self) -> str:
        return f"EnvProxies(http={self.http!r}, https={self.https!r})"


def _env_value(environ: Mapping[str, str], name: str) -> str | None:
    value = environ.get(name)
    if value is None and (name != "http_proxy" or "REQUEST_METHOD" not in environ):
        value = environ.get(name.upper())
    if value is None:
        return None
    value = value.strip()
    if not value:
        return None
    if "://" not in value:
        value = "http://" + value  # curl's default scheme for proxies
    return value


def environment_proxies(environ: Mapping[str, str] | None = None) -> EnvProxies:
    """Read the proxy variables (see the module docstring).

    Args:
        environ: The environment (default: :data:`os.environ`).

    Returns:
        The proxies for ``http`` and ``https`` requests (``all_proxy``
        fills in for a missing one) and the ``no_proxy`` hosts.
    """
    env = os.environ if environ is None else environ
    every = _env_value(env, "all_proxy")
    http = _env_value(env, "http_proxy") or every
    https = _env_value(env, "https_proxy") or every
    no_proxy = env.get("no_proxy")
    if no_proxy is None:
        no_proxy = env.get("NO_PROXY", "")
    return EnvProxies(http, https, NoProxy(no_proxy))


class Router(Generic[T]):
    """Picks the transport of a URL among mounted ones.

    Args:
        default: The transport of URLs no pattern matches.
        mounts: ``(pattern, transport or None)`` pairs; ``None`` means the
            default transport.
        no_proxy: Hosts sent to ``default`` whatever the patterns say
            (environment proxies).

    The choice is cached per ``(scheme, host, port)``; the cache holds
    immutable entries only, so threads may share a router.
    """

    __slots__ = ("_cache", "_default", "_mounts", "_no_proxy")

    def __init__(
        self,
        default: T,
        mounts: Iterable[tuple[URLPattern, T | None]],
        no_proxy: NoProxy | None = None,
    ) -> None:
        self._default = default
        self._mounts = sorted(mounts, key=lambda item: item[0].priority)
        self._no_proxy = no_proxy if no_proxy else None
        self._cache: dict[tuple[str, str | None, int | None], T] = {}

    def transports(self) -> list[T]:
        """Every mounted transport (not the default), without duplicates."""
        seen: list[T] = []
        for _, transport in self._mounts:
            if transport is not None and all(transport is not t for t in seen):
                seen.append(transport)
        return seen

    def select(self, url: URL) -> T:
        """The transport for ``url`` (absolute)."""
        key = (url.scheme, url.raw_host, url.explicit_port)
        cached = self._cache.get(key)
        if cached is not None:
            return cached
        chosen = self._select(url.scheme, _normalize_host(url.raw_host or ""), url.port)
        if len(self._cache) >= _ROUTE_CACHE_SIZE:
            self._cache = {}
        self._cache[key] = chosen
        return chosen

    def _select(self, scheme: str, host: str, port: int | None) -> T:
        if self._no_proxy is not None and self._no_proxy.matches(host, port):
            return self._default
        for pattern, transport in self._mounts:
            if pattern.matches(scheme, host, port):
                return self._default if transport is None else transport
        return self._default
