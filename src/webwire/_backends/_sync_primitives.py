"""Synchronisation, task groups and cooperative cancellation for the
blocking backend.

Task groups run each task on its own thread. Cancelling a group cannot
interrupt a thread, so cancellation is cooperative: each thread keeps, in a
thread-local stack, the :class:`CancelToken` of every group it runs in (the
groups it entered and the group it is a task of, with theirs). Every wait of
the blocking backend (sleep, events, locks, semaphores, channels, datagram
receive, connect, checkpoint) registers a wake-up with those tokens and
raises :class:`Cancelled` as soon as one of them is cancelled; the group that
owns the token absorbs it on exit. Waits on a condition are woken by a
``notify_all`` from the canceller, so nothing polls. A thread blocked
reading a stream is not woken by cancellation: the owner of the stream
aborts it, and the read fails at once. A detached group (the background
tasks of an object that outlives the call that made it) is not pushed on
the entering thread's stack, and its tasks carry its own token only.
"""

from __future__ import annotations

import threading
import time
from collections import deque
from collections.abc import Awaitable, Callable, Iterator
from contextlib import contextmanager
from types import TracebackType
from typing import Any, TypeVar

from webwire._sync import run_sync

from ._common import read_timeout
from .base import Channel, ChannelClosed, Event, Lock, Semaphore, TaskGroup

__all__ = [
    "CancelToken",
    "Cancelled",
    "check_cancelled",
    "create_channel",
    "create_event",
    "create_lock",
    "create_semaphore",
    "create_task_group",
    "run_in_thread",
    "sleep",
    "wakeable",
]

T = TypeVar("T")


class Cancelled(BaseException):
    """Raised in a thread by a wait of the blocking backend once a task
    group the thread runs in is cancelled; absorbed by that group."""


class CancelToken:
    """The cancellation state of one task group, shared by its threads."""

    __slots__ = ("_lock", "_wakers", "cancelled")

    def __init__(self) -> None:
        self.cancelled = False
        self._lock = threading.Lock()
        self._wakers: set[Callable[[], None]] = set()

    def cancel(self) -> None:
        """Mark cancelled and wake every registered wait (idempotent)."""
        with self._lock:
            if self.cancelled:
                return
            self.cancelled = True
            wakers = list(self._wakers)
        for wake in wakers:
            wake()

    def add(self, wake: Callable[[], None]) -> None:
        with self._lock:
            self._wakers.add(wake)

    def discard(self, wake: Callable[[], None]) -> None:
        with self._lock:
            self._wakers.discard(wake)


_local = threading.local()


def current_tokens() -> tuple[CancelToken, ...]:
    """The tokens of the groups the calling thread runs in, outermost
    first."""
    tokens: tuple[CancelToken, ...] = getattr(_local, "tokens", ())
    return tokens


def _set_tokens(tokens: tuple[CancelToken, ...]) -> None:
    _local.tokens = tokens


def check_cancelled(tokens: tuple[CancelToken, ...] | None = None) -> None:
    """Raise :class:`Cancelled` if a group of the calling thread (or of
    ``tokens``) is cancelled."""
    for token in current_tokens() if tokens is None else tokens:
        if token.cancelled:
            raise Cancelled


@contextmanager
def wakeable(wake: Callable[[], None], *, check_after: bool = False) -> Iterator[None]:
    """Run a blocking call that ``wake()`` (called from another thread)
    interrupts, and raise :class:`Cancelled` instead of its outcome when the
    calling thread's group is cancelled before or while it runs.

    Args:
        wake: Ends the blocking call, for example by writing to a wake-up
            socket or by shutting down the socket the call waits on.
        check_after: Also raise :class:`Cancelled` when the call succeeded
            but the group was cancelled meanwhile (for a ``wake`` that
            breaks what it wakes, such as a shutdown).
    """
    tokens = current_tokens()
    if not tokens:
        yield
        return
    for token in tokens:
        token.add(wake)
    try:
        check_cancelled(tokens)
        yield
    except Exception:
        check_cancelled(tokens)
        raise
    finally:
        for token in tokens:
            token.discard(wake)
    if check_after:
        check_cancelled(tokens)


def wait_for(cond: threading.Condition, ready: Callable[[], bool], timeout: float | None) -> bool:
    """With ``cond`` held, wait until ``ready()`` or ``timeout`` seconds
    pass; ``True`` when ready.

    Raises:
        Cancelled: A group of the calling thread was cancelled.
    """
    if ready():
        return True
    tokens = current_tokens()
    if not tokens:
        return cond.wait_for(ready, None if timeout is None else max(timeout, 0.0))

    def wake() -> None:
        with cond:
            cond.notify_all()

    for token in tokens:
        token.add(wake)
    try:
        deadline = None if timeout is None else time.monotonic() + max(timeout, 0.0)
        while True:
            check_cancelled(tokens)
            if ready():
                return True
            if deadline is None:
                cond.wait()
                continue
            left = deadline - time.monotonic()
            if left <= 0:
                return False
            cond.wait(left)
    finally:
        for token in tokens:
            token.discard(wake)


def sleep(seconds: float) -> None:
    """Block for ``seconds`` seconds, or until the thread's group is
    cancelled (then raise :class:`Cancelled`)."""
    if not current_tokens():
        time.sleep(max(seconds, 0.0))
        return
    cond = threading.Condition(threading.Lock())
    with cond:
        wait_for(cond, lambda: False, seconds)


def run_in_thread(fn: Callable[[], T], timeout: float | None, name: str) -> T:
    """Run ``fn()`` on a daemon helper thread and wait for it at most
    ``timeout`` seconds; on timeout or cancellation the helper is left to
    finish on its own (for calls that cannot be interrupted, such as
    :func:`socket.getaddrinfo`).

    Raises:
        TimeoutError: ``fn`` did not finish within ``timeout`` seconds.
        Cancelled: The calling thread's group was cancelled.
    """
    cond = threading.Condition(threading.Lock())
    outcome: list[tuple[bool, Any]] = []

    def target() -> None:
        try:
            result: tuple[bool, Any] = (True, fn())
        except BaseException as exc:
            result = (False, exc)
        with cond:
            outcome.append(result)
            cond.notify_all()

    threading.Thread(target=target, name=name, daemon=True).start()
    with cond:
        if not wait_for(cond, lambda: bool(outcome), timeout):
            raise TimeoutError(f"{name} did not finish within {timeout} seconds")
    ok, value = outcome[0]
    if ok:
        return value  # type: ignore[no-any-return]
    raise value


class _SyncLock(Lock):
    __slots__ = ("_cond", "_locked")

    def __init__(self) -> None:
        self._cond = threading.Condition(threading.Lock())
        self._locked = False

    async def acquire(self, timeout: float | None = None) -> bool:
        """Take the lock within ``timeout`` seconds; ``False`` on timeout."""
        with self._cond:
            if not wait_for(self._cond, lambda: not self._locked, timeout):
                return False
            self._locked = True
            return True

    def release(self) -> None:
        """Release the lock (``RuntimeError`` if it is not held)."""
        with self._cond:
            if not self._locked:
                raise RuntimeError("release of an unlocked lock")
            self._locked = False
            self._cond.notify_all()

    def locked(self) -> bool:
        """Whether the lock is held."""
        return self._locked


class _SyncEvent(Event):
    """A flag with a generation count: a waiter woken by ``set`` returns
    ``True`` even when the flag was cleared again before it ran."""

    __slots__ = ("_cond", "_flag", "_generation")

    def __init__(self) -> None:
        self._cond = threading.Condition(threading.Lock())
        self._flag = False
        self._generation = 0

    def set(self) -> None:
        """Set the flag and wake every waiting thread."""
        with self._cond:
            if not self._flag:
                self._flag = True
                self._generation += 1
                self._cond.notify_all()

    def clear(self) -> None:
        """Reset the flag."""
        with self._cond:
            self._flag = False

    def is_set(self) -> bool:
        """Whether the flag is set."""
        return self._flag

    async def wait(self, timeout: float | None = None) -> bool:
        """Block until set or ``timeout`` seconds pass; ``True`` if set."""
        if self._flag:
            return True
        with self._cond:
            generation = self._generation
            return wait_for(
                self._cond, lambda: self._flag or self._generation != generation, timeout
            )


class _SyncSemaphore(Semaphore):
    __slots__ = ("_cond", "_value")

    def __init__(self, value: int) -> None:
        if value < 0:
            raise ValueError("semaphore initial value must be >= 0")
        self._cond = threading.Condition(threading.Lock())
        self._value = value

    async def acquire(self, timeout: float | None = None) -> bool:
        """Take one unit within ``timeout`` seconds; ``False`` on timeout."""
        with self._cond:
            if not wait_for(self._cond, lambda: self._value > 0, timeout):
                return False
            self._value -= 1
            return True

    def release(self) -> None:
        """Give one unit back."""
        with self._cond:
            self._value += 1
            self._cond.notify_all()


class _SyncChannel(Channel[T]):
    __slots__ = ("_closed", "_items", "_lock", "_max_size", "_not_empty", "_not_full")

    def __init__(self, max_size: int) -> None:
        if max_size < 1:
            raise ValueError("a channel holds at least one item")
        self._max_size = max_size
        self._items: deque[T] = deque()
        self._closed = False
        self._lock = threading.Lock()
        self._not_empty = threading.Condition(self._lock)
        self._not_full = threading.Condition(self._lock)

    async def send(self, item: T, timeout: float | None = None) -> bool:
        """Queue ``item``, blocking up to ``timeout`` seconds for room."""
        with self._lock:
            room = wait_for(
                self._not_full,
                lambda: self._closed or len(self._items) < self._max_size,
                timeout,
            )
            return room and self._put(item)

    def send_nowait(self, item: T) -> bool:
        """Queue ``item`` if there is room; ``False`` when full."""
        with self._lock:
            return self._put(item)

    def _put(self, item: T) -> bool:
        if self._closed:
            raise ChannelClosed("the channel is closed")
        if len(self._items) >= self._max_size:
            return False
        self._items.append(item)
        self._not_empty.notify_all()
        return True

    async def receive(self, timeout: float | None = None) -> T:
        """Take the oldest item, blocking up to ``timeout`` seconds."""
        with self._lock:
            if not wait_for(self._not_empty, lambda: self._closed or bool(self._items), timeout):
                raise read_timeout(timeout)
            return self._take()

    def receive_nowait(self) -> T:
        """Take the oldest item; ``IndexError`` when empty."""
        with self._lock:
            return self._take()

    def _take(self) -> T:
        if self._items:
            item = self._items.popleft()
            self._not_full.notify_all()
            return item
        if self._closed:
            raise ChannelClosed("the channel is closed")
        raise IndexError("the channel is empty")

    def close(self) -> None:
        """Close; blocked senders and (once empty) receivers get
        :class:`ChannelClosed`."""
        with self._lock:
            self._closed = True
            self._not_empty.notify_all()
            self._not_full.notify_all()

    def __len__(self) -> int:
        return len(self._items)


async def _call(fn: Callable[..., Awaitable[Any]], args: tuple[Any, ...]) -> None:
    await fn(*args)


class _SyncTaskGroup(TaskGroup):
    """Tasks on threads, cancelled cooperatively through one
    :class:`CancelToken`; see the module docstring. Enter and exit it in
    the same thread, unless ``detached``: then entering it leaves the
    calling thread's tokens alone, its tasks run under its own token only
    (a cancellation of the entering thread's groups does not reach them),
    and any thread may exit it."""

    def __init__(self, detached: bool = False) -> None:
        self._detached = detached
        self._token = CancelToken()
        self._outer: tuple[CancelToken, ...] = ()
        self._tokens: tuple[CancelToken, ...] = ()
        self._cond = threading.Condition(threading.Lock())
        self._threads: list[threading.Thread] = []
        self._running = 0
        self._state = "new"
        self._error: BaseException | None = None

    async def __aenter__(self) -> TaskGroup:
        if self._state != "new":
            raise RuntimeError("a task group can be entered only once")
        if self._detached:
            self._tokens = (self._token,)
        else:
            self._outer = current_tokens()
            self._tokens = (*self._outer, self._token)
            _set_tokens(self._tokens)
        self._state = "body"
        return self

    def start_soon(self, fn: Callable[..., Awaitable[Any]], *args: Any) -> None:
        """Start ``fn(*args)`` on a new daemon thread (driven by
        :func:`webwire._sync.run_sync`, so it may only await this
        backend)."""
        name = f"webwire task {getattr(fn, '__qualname__', fn)}"
        thread = threading.Thread(target=self._run, args=(fn, args), name=name, daemon=True)
        with self._cond:
            if self._state not in ("body", "exiting"):
                raise RuntimeError("the task group is not active")
            self._running += 1
            self._threads.append(thread)
        try:
            thread.start()
        except BaseException:
            with self._cond:
                self._threads.remove(thread)
                self._running -= 1
                self._cond.notify_all()
            raise

    def _run(self, fn: Callable[..., Awaitable[Any]], args: tuple[Any, ...]) -> None:
        _set_tokens(self._tokens)
        try:
            run_sync(_call(fn, args))
        except Cancelled:
            pass
        except BaseException as exc:
            with self._cond:
                if self._error is None:
                    self._error = exc
            self._token.cancel()
        finally:
            with self._cond:
                self._running -= 1
                self._cond.notify_all()

    def cancel(self) -> None:
        """Cancel every task and the body: their next wait raises the
        internal cancellation, which this group absorbs on exit."""
        self._token.cancel()

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> bool | None:
        with self._cond:
            self._state = "exiting"
            if exc is not None and not isinstance(exc, Cancelled) and self._error is None:
                self._error = exc
        if exc is not None:
            self._token.cancel()
        with self._cond:
            while self._running:
                self._cond.wait()
            threads, self._threads = self._threads, []
            self._state = "done"
        for thread in threads:
            thread.join()
        if not self._detached:
            _set_tokens(self._outer)
        if self._error is not None:
            if self._error is exc:
                return False
            raise self._error
        if isinstance(exc, Cancelled):
            # Absorbed here unless an enclosing group was cancelled too.
            return not any(token.cancelled for token in self._outer)
        return None


def create_lock() -> Lock:
    """A new cancellation-aware lock."""
    return _SyncLock()


def create_event() -> Event:
    """A new cancellation-aware event."""
    return _SyncEvent()


def create_semaphore(value: int) -> Semaphore:
    """A new cancellation-aware semaphore holding ``value`` units."""
    return _SyncSemaphore(value)


def create_channel(max_size: int) -> Channel[Any]:
    """A new cancellation-aware channel holding at most ``max_size`` items."""
    return _SyncChannel(max_size)


def create_task_group(*, detached: bool = False) -> TaskGroup:
    """A new task group running each task on its own thread (``detached``:
    see :class:`_SyncTaskGroup`)."""
    return _SyncTaskGroup(detached)
