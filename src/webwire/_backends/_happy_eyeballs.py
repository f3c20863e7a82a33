"""Address racing for TCP connections (Happy Eyeballs, RFC 8305), written
once for every backend.

:func:`connect_tcp` resolves the host, orders the addresses with the
families interleaved, IPv6 first (RFC 8305 section 4), and starts one
connection attempt after another: the next one 250 ms after the previous
one started, or at once when an attempt fails (section 5). The first
attempt to succeed wins and every other attempt is cancelled, or closed if
it connected too. The attempts run in the backend's own task group and the
race waits on the backend's events, so the same code runs on asyncio, trio
and (one thread per attempt) the blocking backend.

A backend supplies two hooks, :data:`Resolver` and :data:`Connector`: name
resolution into ``(family, ip)`` pairs, and one connection attempt to one
address (TCP, TCP_NODELAY, optional local bind and TLS). Both raise webwire
exceptions, and a connector closes its socket whatever stops it
(cancellation included). An IP literal, or a name with one address, skips
the race and connects directly within the whole timeout.
"""

from __future__ import annotations

import socket
import ssl
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass

from webwire._exceptions import ConnectError, ConnectTimeout

from ._common import connect_error, connect_timeout, ip_family
from .base import Backend, NetworkStream, TaskGroup

__all__ = [
    "ATTEMPT_DELAY",
    "Connector",
    "Resolver",
    "TCPTarget",
    "connect_tcp",
    "fixed_resolver",
    "interleave",
]

ATTEMPT_DELAY = 0.25
"""Seconds between the starts of two connection attempts (RFC 8305
section 8 recommends 250 ms)."""


@dataclass(frozen=True)
class TCPTarget:
    """Where and how to connect: the arguments of
    :meth:`Backend.connect_tcp` but the timeout.

    Attributes:
        host: Host name or IP literal, as given (for messages).
        port: TCP port.
        ssl_context: TLS configuration, or ``None`` for cleartext.
        server_hostname: SNI and certificate host name.
        local_address: Local IP to bind before connecting, or ``None``.
    """

    host: str
    port: int
    ssl_context: ssl.SSLContext | None = None
    server_hostname: str | None = None
    local_address: str | None = None


Resolver = Callable[[str, int, "float | None"], Awaitable[list[tuple[int, str]]]]
"""``resolve(host, port, timeout)``: the ``(family, ip)`` pairs of ``host``
in the resolver's order, within ``timeout`` seconds. Raises
:class:`~webwire.ConnectError` or :class:`~webwire.ConnectTimeout`."""

Connector = Callable[[TCPTarget, int, str, "float | None"], Awaitable[NetworkStream]]
"""``connect(target, family, ip, timeout)``: one connection attempt to
``ip`` (``None``: no time limit of its own). Raises
:class:`~webwire.ConnectError` or :class:`~webwire.ConnectTimeout` and
leaves no socket open when it fails or is cancelled."""


def fixed_resolver(addresses: Sequence[tuple[int, str]]) -> Resolver:
    """A :data:`Resolver` that answers ``addresses`` (resolved earlier, e.g.
    from a DNS cache) whatever it is asked."""
    answer = list(addresses)

    async def resolve(host: str, port: int, timeout: float | None) -> list[tuple[int, str]]:
        return answer

    return resolve


def interleave(addresses: list[tuple[int, str]]) -> list[tuple[int, str]]:
    """``addresses`` without duplicates, alternating IPv6 and IPv4 and
    starting with IPv6 when there is any (RFC 8305 section 4, First
    Address Family Count of 1); each family keeps its resolver order."""
    seen: set[str] = set()
    v6: list[tuple[int, str]] = []
    v4: list[tuple[int, str]] = []
    for family, ip in addresses:
        if ip in seen:
            continue
        seen.add(ip)
        (v6 if family == socket.AF_INET6 else v4).append((family, ip))
    ordered: list[tuple[int, str]] = []
    for index in range(max(len(v6), len(v4))):
        ordered.extend(group[index] for group in (v6, v4) if index < len(group))
    return ordered


async def connect_tcp(
    backend: Backend,
    target: TCPTarget,
    timeout: float | None,
    *,
    resolve: Resolver,
    connect: Connector,
    delay: float = ATTEMPT_DELAY,
) -> NetworkStream:
    """Connect to ``target`` within ``timeout`` seconds, racing its
    addresses as described in the module docstring.

    Args:
        backend: Supplies the task group, events, lock and clock.
        target: Host, port and connection options.
        timeout: Seconds for resolution, connection and TLS together, or
            ``None``.
        resolve: The backend's resolver hook.
        connect: The backend's single-address connector hook.
        delay: Seconds between two attempt starts.

    Returns:
        The connected stream of the first attempt that succeeded.

    Raises:
        ConnectTimeout: No attempt succeeded within ``timeout`` seconds.
        ConnectError: Resolution failed, or every address failed (the
            message names the host and the last failure).
    """
    family = ip_family(target.host)
    if family is not None:
        return await connect(target, family, target.host, timeout)
    start = backend.monotonic()
    addresses = interleave(await resolve(target.host, target.port, timeout))
    if not addresses:
        raise connect_error(target.host, target.port, "the name has no address")
    deadline = None if timeout is None else start + timeout
    if len(addresses) == 1:
        left = None if deadline is None else max(0.0, deadline - backend.monotonic())
        family, ip = addresses[0]
        return await connect(target, family, ip, left)
    race = _Race(backend, target, connect, len(addresses))
    try:
        async with backend.create_task_group() as group:
            await race.run(group, addresses, delay, deadline)
            group.cancel()
        if race.winner is not None:
            # A caller cancelled while the race ended must not get (and
            # leak) the winner: on the blocking backend cancellation is only
            # seen at a wait, so look once more.
            await backend.checkpoint()
    except BaseException:
        race.close_winner()
        raise
    if race.winner is not None:
        return race.winner
    if race.failures < len(addresses):
        raise connect_timeout(target.host, target.port, timeout)
    ip, last = race.errors[-1]
    detail = f"all {len(addresses)} addresses failed, the last ({ip}) with: {last}"
    raise connect_error(target.host, target.port, detail) from (last.__cause__ or last)


class _Race:
    """The shared state of one race: the winner, the failures, and an event
    set whenever an attempt ends."""

    def __init__(self, backend: Backend, target: TCPTarget, connect: Connector, total: int) -> None:
        self.backend = backend
        self.target = target
        self.connect = connect
        self.total = total
        self.winner: NetworkStream | None = None
        self.failures = 0
        self.errors: list[tuple[str, ConnectError | ConnectTimeout]] = []
        self.progress = backend.create_event()
        self.lock = backend.create_bookkeeping_lock()

    def done(self) -> bool:
        """Whether an attempt won or every address failed."""
        return self.winner is not None or self.failures >= self.total

    async def run(
        self,
        group: TaskGroup,
        addresses: list[tuple[int, str]],
        delay: float,
        deadline: float | None,
    ) -> None:
        """Start the attempts in ``group`` one by one and return once the
        race is decided or ``deadline`` (monotonic seconds) has passed."""
        backend = self.backend
        pending = list(addresses)
        next_start = backend.monotonic()
        seen_failures = 0
        while True:
            self.progress.clear()
            if self.done():
                return
            now = backend.monotonic()
            if deadline is not None and now >= deadline:
                return
            if self.failures > seen_failures:
                # An attempt failed: the next one starts without waiting.
                seen_failures = self.failures
                next_start = now
            if pending and now >= next_start:
                family, ip = pending.pop(0)
                group.start_soon(self.attempt, family, ip)
                next_start = now + delay
                continue
            wake_at = min(
                (t for t in (next_start if pending else None, deadline) if t is not None),
                default=None,
            )
            await self.progress.wait(None if wake_at is None else max(0.0, wake_at - now))

    async def attempt(self, family: int, ip: str) -> None:
        """One connection attempt; a stream that connects after another
        attempt won is closed."""
        try:
            stream = await self.connect(self.target, family, ip, None)
        except (ConnectError, ConnectTimeout) as exc:
            with self.lock:
                self.errors.append((ip, exc))
                self.failures += 1
            self.progress.set()
            return
        with self.lock:
            won = self.winner is None
            if won:
                self.winner = stream
        if not won:
            stream.abort()
        self.progress.set()

    def close_winner(self) -> None:
        """Close the winning stream, if any (the race is being abandoned)."""
        with self.lock:
            winner, self.winner = self.winner, None
        if winner is not None:
            winner.abort()
