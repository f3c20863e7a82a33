"""The in-memory backend: stream and datagram pairs on a fake clock, for tests.

:class:`MemoryBackend` is the trio backend (locks, events, channels and task
groups are trio's) whose ``connect_tcp``, ``connect_unix`` and
``connect_udp`` reach servers registered on it (``serve_tcp``...), whose
handlers run as tasks of :func:`run`. :func:`run` uses trio's ``MockClock``
with ``autojump_threshold=0``: whenever every task is blocked, virtual time
jumps to the next deadline, so sleeps and timeouts take no real time and
end at exactly the virtual time a test asserts.

:class:`MemoryStream` models TCP: a bounded buffer each way (back-pressure),
half-close, graceful close, reset, and TLS that records the server name and
reports a configured ALPN protocol. :class:`MemoryDatagramSocket` models a
UDP path with random or scripted loss, delay and jitter.
"""

from __future__ import annotations

import functools
import math
import socket
from collections.abc import Awaitable, Callable, Collection, Sequence
from dataclasses import dataclass, field
from typing import Any, Generic, ParamSpec, TypeVar

import trio
import trio.testing

from webwire._exceptions import ConnectTimeout, ReadError, WriteError

from ._common import (
    check_port,
    connect_error,
    connect_timeout,
    ip_family,
    unix_connect_error,
    unix_connect_timeout,
)
from ._memory_links import (
    _EPHEMERAL,
    DEFAULT_BUFFER_SIZE,
    Address,
    FakeSSLObject,
    LinkConditions,
    MemoryDatagramSocket,
    MemoryStream,
    _datagram_pair,
    _deadline,
    datagram_pair,
    stream_pair,
)
from .base import DatagramSocket, NetworkStream
from .trio import TrioBackend

__all__ = [
    "DEFAULT_BUFFER_SIZE",
    "FakeSSLObject",
    "LinkConditions",
    "MemoryBackend",
    "MemoryDatagramSocket",
    "MemoryListener",
    "MemoryStream",
    "datagram_pair",
    "memory_test",
    "run",
    "settle",
    "stream_pair",
]

T = TypeVar("T")
P = ParamSpec("P")
E = TypeVar("E", "MemoryStream", "MemoryDatagramSocket")

@dataclass(eq=False)
class MemoryListener(Generic[E]):
    """An in-memory server registered on a :class:`MemoryBackend`.

    Attributes:
        address: ``(host, port)``, or a Unix socket path.
        handler: ``async def handler(end)`` run for each connection (each
            ``connect_udp`` for UDP) as a task of :func:`run`, or ``None``
            to accept connections and never read them.
        alpn: ALPN protocol reported on TLS connections.
        silent: Connection attempts never complete (``ConnectTimeout``);
            for UDP, datagrams sent to the server vanish.
        connect_delay: Seconds of the fake clock a connection takes.
        buffer_size: Bytes each direction of a connection buffers.
        accepted: Connections accepted so far.
        connections: The server ends of the accepted connections.
        closed: Whether :meth:`close` was called.
    """

    address: Any
    handler: Callable[[E], Awaitable[None]] | None
    alpn: str | None = None
    silent: bool = False
    connect_delay: float = 0.0
    buffer_size: int = DEFAULT_BUFFER_SIZE
    accepted: int = 0
    connections: list[E] = field(default_factory=list)
    closed: bool = False
    _registry: dict[Any, Any] = field(default_factory=dict, repr=False)
    _paths: tuple[LinkConditions, LinkConditions, int | None] | None = field(
        default=None, repr=False
    )

    def open_connections(self) -> list[E]:
        """The server ends not closed yet."""
        return [end for end in self.connections if not end.closed]

    def close(self) -> None:
        """Stop accepting: later attempts are refused; open connections
        stay open. Idempotent."""
        self.closed = True
        if self._registry.get(self.address) is self:
            del self._registry[self.address]

    def _accept(self, client: E, server: E) -> E:
        """Count a new connection and start its handler; returns
        ``client``."""
        self.accepted += 1
        self.connections.append(server)
        if self.handler is not None:
            _run_state().nursery.start_soon(_serve_connection, self.handler, server)
        return client


class _RunState:
    """What :func:`run` shares with the backends used inside it."""

    def __init__(self, nursery: trio.Nursery) -> None:
        self.nursery = nursery
        self.errors: list[BaseException] = []


_RUN_STATE: trio.lowlevel.RunVar[_RunState] = trio.lowlevel.RunVar("webwire_memory_run")


def _run_state() -> _RunState:
    try:
        return _RUN_STATE.get()
    except LookupError:
        raise RuntimeError(
            "in-memory servers need webwire._backends.memory.run() to run their handlers"
        ) from None


async def _serve_connection(handler: Callable[[E], Awaitable[None]], end: E) -> None:
    """Run a connection's handler, then close its end (gracefully when it
    returned, else with a reset). ``ReadError`` and ``WriteError`` (the
    client reset) end it quietly; any other error fails the :func:`run`."""
    state = _run_state()
    returned = False
    try:
        await handler(end)
        returned = True
    except (ReadError, WriteError):
        pass
    except Exception as exc:
        state.errors.append(exc)
        state.nursery.cancel_scope.cancel()
    finally:
        if isinstance(end, MemoryStream):
            end._close(reset=not returned)
        else:
            end.close()


class MemoryBackend(TrioBackend):
    """The trio backend with in-memory connections; use it inside
    :func:`run`.

    Args:
        buffer_size: Default bytes each direction of a connection buffers.

    Attributes:
        connections_opened: Streams and datagram sockets returned by
            ``connect_tcp``, ``connect_unix`` and ``connect_udp``.
        connections_closed: How many of those were closed since.
        resolutions: ``(host, port)`` of every :meth:`resolve` call.
        connect_addresses: ``(host, addresses)`` of every ``connect_tcp``
            given pre-resolved addresses.
        resolve_delay: Fake-clock seconds each resolution takes.
    """

    name = "memory"

    def __init__(self, *, buffer_size: int = DEFAULT_BUFFER_SIZE) -> None:
        super().__init__()
        self.buffer_size = buffer_size
        self._tcp: dict[Address, MemoryListener[MemoryStream]] = {}
        self._unix: dict[str, MemoryListener[MemoryStream]] = {}
        self._udp: dict[Address, MemoryListener[MemoryDatagramSocket]] = {}
        self._open: list[MemoryStream | MemoryDatagramSocket] = []
        self.connections_opened = self.connections_closed = 0
        self.resolutions: list[tuple[str, int]] = []
        self.connect_addresses: list[tuple[str, list[tuple[int, str]]]] = []
        self.resolve_delay = 0.0
        self._next_port = _EPHEMERAL

    def serve_tcp(
        self,
        host: str,
        port: int,
        handler: Callable[[MemoryStream], Awaitable[None]] | None = None,
        *,
        alpn: str | None = None,
        silent: bool = False,
        connect_delay: float = 0.0,
        buffer_size: int | None = None,
    ) -> MemoryListener[MemoryStream]:
        """Register a TCP server that ``connect_tcp(host, port)`` reaches.

        Args:
            host: Host name or IP literal, as clients pass it.
            port: TCP port.
            handler: ``async def handler(stream)`` run for each connection,
                which is closed when it returns (reset when it raises);
                ``None``: accept and never read.
            alpn: ALPN protocol reported when the client uses TLS.
            silent: Never answer: ``connect_tcp`` waits for its timeout.
            connect_delay: Seconds each connection takes to open.
            buffer_size: Bytes buffered each way (default: the backend's).

        Raises:
            ValueError: A server is already registered there.
        """
        size = buffer_size or self.buffer_size
        listener: MemoryListener[MemoryStream] = MemoryListener(
            (host.lower(), port), handler, alpn, silent, connect_delay, size
        )
        return self._register(self._tcp, listener)

    def serve_unix(
        self,
        path: str,
        handler: Callable[[MemoryStream], Awaitable[None]] | None = None,
        *,
        silent: bool = False,
        connect_delay: float = 0.0,
        buffer_size: int | None = None,
    ) -> MemoryListener[MemoryStream]:
        """Register a server that ``connect_unix(path)`` reaches; the other
        arguments are those of :meth:`serve_tcp`.

        Raises:
            ValueError: A server is already registered at ``path``.
        """
        size = buffer_size or self.buffer_size
        listener: MemoryListener[MemoryStream] = MemoryListener(
            path, handler, None, silent, connect_delay, size
        )
        return self._register(self._unix, listener)

    def serve_udp(
        self,
        host: str,
        port: int,
        handler: Callable[[MemoryDatagramSocket], Awaitable[None]] | None = None,
        *,
        loss: float = 0.0,
        drop: Collection[int] = (),
        delay: float = 0.0,
        jitter: float = 0.0,
        reverse: LinkConditions | None = None,
        seed: int | None = None,
        silent: bool = False,
    ) -> MemoryListener[MemoryDatagramSocket]:
        """Register a UDP server: each ``connect_udp((host, port))`` gets
        the first socket of a :func:`datagram_pair` (whose options, client to
        server first, are ``loss`` to ``seed``; each client's path gets its
        own seed) and ``handler(socket)`` the second (``None``: never read).
        With ``silent``, datagrams sent to the server vanish.

        Raises:
            ValueError: A server is already registered there.
        """
        forward = LinkConditions(loss, drop, delay, jitter)
        backward = reverse or LinkConditions(loss, (), delay, jitter)
        listener: MemoryListener[MemoryDatagramSocket] = MemoryListener(
            (host.lower(), port), handler, silent=silent, _paths=(forward, backward, seed)
        )
        return self._register(self._udp, listener)

    @staticmethod
    def _register(
        registry: dict[Any, MemoryListener[E]], listener: MemoryListener[E]
    ) -> MemoryListener[E]:
        if listener.address in registry:
            raise ValueError(f"an in-memory server is already registered at {listener.address!r}")
        registry[listener.address] = listener
        listener._registry = registry
        return listener

    def open_connections(self) -> list[MemoryStream | MemoryDatagramSocket]:
        """Client ends (streams, datagram sockets) not closed yet: empty
        when nothing leaked."""
        return list(self._open)

    def _track(self, end: E) -> E:
        self._open.append(end)
        self.connections_opened += 1
        end._on_close = self._untrack
        return end

    def _untrack(self, end: MemoryStream | MemoryDatagramSocket) -> None:
        self.connections_closed += 1
        self._open.remove(end)

    def _ephemeral(self, host: str | None) -> Address:
        port = self._next_port
        self._next_port = port + 1 if port < 65535 else _EPHEMERAL
        return (host or "127.0.0.1", port)

    async def connect_tcp(
        self,
        host: str,
        port: int,
        *,
        timeout: float | None,
        ssl_context: Any = None,
        server_hostname: str | None = None,
        local_address: str | None = None,
        addresses: Sequence[tuple[int, str]] | None = None,
    ) -> NetworkStream:
        """Connect to the :meth:`serve_tcp` server at ``(host, port)``;
        with an ``ssl_context`` TLS is on at once (SNI ``server_hostname or
        host``, ALPN from the registration). ``ConnectError`` (refused) when
        none is registered; ``ConnectTimeout`` on the fake clock.
        ``addresses`` (pre-resolved) are recorded in
        :attr:`connect_addresses`; the server is still found by host."""
        check_port(host, port)
        if addresses is not None:
            self.connect_addresses.append((host, list(addresses)))
        listener = self._tcp.get((host.lower(), port))
        if listener is not None:
            await _wait_accept(listener, timeout, connect_timeout(host, port, timeout))
        if listener is None or listener.closed:
            raise connect_error(host, port, "connection refused (no in-memory server)")
        stream = self._open_stream(listener, self._ephemeral(local_address), (host, port))
        if ssl_context is not None:
            stream._enable_tls(ssl_context, server_hostname or host)
        return stream

    async def _resolve_host(
        self, host: str, port: int, timeout: float | None
    ) -> list[tuple[int, str]]:
        """In-memory name resolution: every name resolves to itself (the
        servers are registered by name), after :attr:`resolve_delay`
        seconds of the fake clock; each call is recorded in
        :attr:`resolutions`."""
        self.resolutions.append((host, port))
        delay = self.resolve_delay
        if delay:
            if timeout is not None and timeout < delay:
                await self.sleep(timeout)
                raise connect_timeout(host, port, timeout)
            await self.sleep(delay)
        return [(ip_family(host) or socket.AF_INET, host)]

    async def connect_unix(self, path: str, *, timeout: float | None) -> NetworkStream:
        """Connect to the :meth:`serve_unix` server at ``path``."""
        listener = self._unix.get(path)
        if listener is not None:
            await _wait_accept(listener, timeout, unix_connect_timeout(path, timeout))
        if listener is None or listener.closed:
            raise unix_connect_error(path, "no such socket (no in-memory server)")
        return self._open_stream(listener, "", path)

    def _open_stream(
        self, listener: MemoryListener[MemoryStream], sockname: Any, peername: Any
    ) -> MemoryStream:
        client, server = stream_pair(
            buffer_size=listener.buffer_size, alpn=listener.alpn, addresses=(sockname, peername)
        )
        return listener._accept(self._track(client), server)

    async def connect_udp(
        self, remote_addr: tuple[str, int], local_addr: tuple[str, int] | None = None
    ) -> DatagramSocket:
        """A datagram path to the :meth:`serve_udp` server at
        ``remote_addr`` (an IP literal); ``ConnectError`` when none is
        registered."""
        host, port = remote_addr
        check_port(host, port)
        if ip_family(host) is None:
            raise connect_error(host, port, "a UDP remote address must be an IP literal")
        listener = self._udp.get((host.lower(), port))
        if listener is None or listener._paths is None:
            raise connect_error(host, port, "connection refused (no in-memory UDP server)")
        if local_addr is None or not local_addr[1]:
            local_addr = self._ephemeral(local_addr[0] if local_addr else None)
        forward, backward, seed = listener._paths
        seed = None if seed is None else seed + 2 * listener.accepted
        client, server = _datagram_pair(forward, backward, seed, (local_addr, (host, port)))
        if listener.silent:
            server.close()
        return listener._accept(self._track(client), server)


async def _wait_accept(
    listener: MemoryListener[MemoryStream], timeout: float | None, late: ConnectTimeout
) -> None:
    """Wait out the listener's connect delay (forever when silent).

    Raises:
        ConnectTimeout: ``late``, when ``timeout`` seconds pass first.
    """
    if not listener.silent and listener.connect_delay <= 0:
        return
    deadline = _deadline(timeout)
    ready = math.inf if listener.silent else trio.current_time() + listener.connect_delay
    if ready > deadline:
        await trio.sleep_until(deadline)
        raise late
    await trio.sleep_until(ready)


# -- running -------------------------------------------------------------------


def run(async_fn: Callable[..., Awaitable[T]], *args: Any) -> T:
    """Run ``async_fn(*args)`` under trio on a fake clock (starting at 0
    seconds) and return its result. Server handlers of the
    :class:`MemoryBackend` objects used inside are tasks of this call,
    cancelled when ``async_fn`` returns.

    Raises:
        BaseException: What ``async_fn`` raised; when it was cancelled
            because a server handler failed, the handler's exception.
    """
    clock = trio.testing.MockClock(autojump_threshold=0)
    return trio.run(_run_main, async_fn, args, clock=clock)


async def _run_main(async_fn: Callable[..., Awaitable[T]], args: tuple[Any, ...]) -> T:
    values: list[T] = []
    failure: BaseException | None = None
    async with trio.open_nursery() as nursery:
        state = _RunState(nursery)
        _RUN_STATE.set(state)
        try:
            values.append(await async_fn(*args))
        except BaseException as exc:
            failure = exc
        nursery.cancel_scope.cancel()
    if failure is not None and (not state.errors or not isinstance(failure, trio.Cancelled)):
        raise failure
    if state.errors:
        raise state.errors[0]
    return values[0]


def memory_test(fn: Callable[P, Awaitable[T]]) -> Callable[P, T]:
    """Make an ``async def`` test a plain one that pytest runs through
    :func:`run` (fixtures are passed through)."""

    @functools.wraps(fn)
    def wrapper(*args: P.args, **kwargs: P.kwargs) -> T:
        return run(functools.partial(fn, *args, **kwargs))

    return wrapper


async def settle() -> None:
    """Let every other task run until all are blocked, without moving the
    fake clock (so a server handler sees a close before a test checks)."""
    await trio.testing.wait_all_tasks_blocked()
