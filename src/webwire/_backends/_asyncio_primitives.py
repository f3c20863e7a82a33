"""Synchronisation and tasks on asyncio: locks, events, semaphores,
channels and task groups.

They are built on futures and tasks directly, so they behave the same on
Python 3.10 (no :class:`asyncio.TaskGroup`, no ``Task.uncancel``) and on
later versions. A waiter that is woken and cancelled at the same moment
hands its wake-up on, so no queued item or free slot is left unclaimed.
"""

from __future__ import annotations

import asyncio
import sys
from collections import deque
from collections.abc import Awaitable, Callable, Coroutine
from types import TracebackType
from typing import Any, TypeVar

from ._common import read_timeout
from .base import Channel, ChannelClosed, Event, Lock, Semaphore, TaskGroup

__all__ = [
    "create_channel",
    "create_event",
    "create_lock",
    "create_semaphore",
    "create_task_group",
    "expire",
    "with_timeout",
]

T = TypeVar("T")


def expire(future: asyncio.Future[bool]) -> None:
    """Timer callback: wake a waiter with ``True`` meaning "timed out"."""
    if not future.done():
        future.set_result(True)


async def with_timeout(aw: Coroutine[Any, Any, T], timeout: float | None) -> T:
    """Await ``aw`` for at most ``timeout`` seconds.

    Raises:
        TimeoutError: The time ran out (``aw`` was cancelled).
    """
    if timeout is None:
        return await aw
    if sys.version_info >= (3, 11):
        async with asyncio.timeout(max(timeout, 0.0)):
            return await aw
    try:
        return await asyncio.wait_for(aw, max(timeout, 0.0))
    except asyncio.TimeoutError as exc:
        raise TimeoutError from exc


class _AsyncioEvent(Event):
    __slots__ = ("_event",)

    def __init__(self) -> None:
        self._event = asyncio.Event()

    def set(self) -> None:
        """Set the flag and wake every waiter."""
        self._event.set()

    def clear(self) -> None:
        """Reset the flag."""
        self._event.clear()

    def is_set(self) -> bool:
        """Whether the flag is set."""
        return self._event.is_set()

    async def wait(self, timeout: float | None = None) -> bool:
        """Wait until set or ``timeout`` seconds pass; ``True`` if set."""
        if self._event.is_set():
            return True
        try:
            await with_timeout(self._event.wait(), timeout)
        except TimeoutError:
            return self._event.is_set()
        return True


def _wake_one(waiters: deque[asyncio.Future[bool]]) -> None:
    """Wake the oldest waiter still waiting."""
    while waiters:
        waiter = waiters.popleft()
        if not waiter.done():
            waiter.set_result(False)
            return


async def _park(waiters: deque[asyncio.Future[bool]], deadline: float | None) -> None:
    """Wait until :func:`_wake_one` picks this waiter or the loop time
    ``deadline`` passes. A waiter woken but then cancelled hands its
    wake-up on, so no item or free slot is left unclaimed."""
    loop = asyncio.get_running_loop()
    future: asyncio.Future[bool] = loop.create_future()
    waiters.append(future)
    timer = None if deadline is None else loop.call_at(deadline, expire, future)
    try:
        await future
    except BaseException:
        if future.done() and not future.cancelled() and future.result() is False:
            _wake_one(waiters)
        raise
    finally:
        if timer is not None:
            timer.cancel()
        if future in waiters:
            waiters.remove(future)


def _deadline(timeout: float | None) -> float | None:
    """The loop time ``timeout`` seconds from now (``None`` for none)."""
    if timeout is None:
        return None
    return asyncio.get_running_loop().time() + max(timeout, 0.0)


def _expired(deadline: float | None) -> bool:
    return deadline is not None and asyncio.get_running_loop().time() >= deadline


class _AsyncioLock(Lock):
    """A first-in first-out lock on :func:`_park` (any task may release
    it, as with :class:`asyncio.Lock`)."""

    __slots__ = ("_locked", "_waiters")

    def __init__(self) -> None:
        self._locked = False
        self._waiters: deque[asyncio.Future[bool]] = deque()

    async def acquire(self, timeout: float | None = None) -> bool:
        """Take the lock within ``timeout`` seconds; ``False`` on timeout."""
        if not self._locked and not self._waiters:
            self._locked = True
            return True
        deadline = _deadline(timeout)
        while not _expired(deadline):
            await _park(self._waiters, deadline)
            if not self._locked:
                self._locked = True
                return True
        return False

    def release(self) -> None:
        """Release the lock (``RuntimeError`` if it is not held)."""
        if not self._locked:
            raise RuntimeError("release of an unlocked lock")
        self._locked = False
        _wake_one(self._waiters)

    def locked(self) -> bool:
        """Whether the lock is held."""
        return self._locked


class _AsyncioSemaphore(Semaphore):
    """A first-in first-out counting semaphore on :func:`_park`."""

    __slots__ = ("_value", "_waiters")

    def __init__(self, value: int) -> None:
        if value < 0:
            raise ValueError("semaphore initial value must be >= 0")
        self._value = value
        self._waiters: deque[asyncio.Future[bool]] = deque()

    async def acquire(self, timeout: float | None = None) -> bool:
        """Take one unit within ``timeout`` seconds; ``False`` on timeout."""
        if self._value > 0 and not self._waiters:
            self._value -= 1
            return True
        deadline = _deadline(timeout)
        while not _expired(deadline):
            await _park(self._waiters, deadline)
            if self._value > 0:
                self._value -= 1
                if self._value > 0:
                    _wake_one(self._waiters)
                return True
        return False

    def release(self) -> None:
        """Give one unit back."""
        self._value += 1
        _wake_one(self._waiters)


class _AsyncioChannel(Channel[T]):
    __slots__ = ("_closed", "_items", "_max_size", "_receivers", "_senders")

    def __init__(self, max_size: int) -> None:
        if max_size < 1:
            raise ValueError("a channel holds at least one item")
        self._max_size = max_size
        self._items: deque[T] = deque()
        self._closed = False
        self._senders: deque[asyncio.Future[bool]] = deque()
        self._receivers: deque[asyncio.Future[bool]] = deque()

    async def send(self, item: T, timeout: float | None = None) -> bool:
        """Queue ``item``, waiting up to ``timeout`` seconds for room."""
        deadline: float | None = None
        while True:
            if self.send_nowait(item):
                return True
            if timeout is not None:
                now = asyncio.get_running_loop().time()
                if deadline is None:
                    deadline = now + timeout
                if now >= deadline:
                    return False
            await _park(self._senders, deadline)

    def send_nowait(self, item: T) -> bool:
        """Queue ``item`` if there is room; ``False`` when full."""
        if self._closed:
            raise ChannelClosed("the channel is closed")
        if len(self._items) >= self._max_size:
            return False
        self._items.append(item)
        _wake_one(self._receivers)
        return True

    async def receive(self, timeout: float | None = None) -> T:
        """Take the oldest item, waiting up to ``timeout`` seconds."""
        deadline: float | None = None
        while True:
            try:
                return self.receive_nowait()
            except IndexError:
                pass
            if timeout is not None:
                now = asyncio.get_running_loop().time()
                if deadline is None:
                    deadline = now + timeout
                if now >= deadline:
                    raise read_timeout(timeout) from None
            await _park(self._receivers, deadline)

    def receive_nowait(self) -> T:
        """Take the oldest item; ``IndexError`` when empty."""
        if self._items:
            item = self._items.popleft()
            _wake_one(self._senders)
            return item
        if self._closed:
            raise ChannelClosed("the channel is closed")
        raise IndexError("the channel is empty")

    def close(self) -> None:
        """Close; waiting senders and (once empty) receivers get
        :class:`ChannelClosed`."""
        self._closed = True
        for waiters in (self._senders, self._receivers):
            while waiters:
                _wake_one(waiters)

    def __len__(self) -> int:
        return len(self._items)


async def _call(fn: Callable[..., Awaitable[Any]], args: tuple[Any, ...]) -> None:
    await fn(*args)


class _AsyncioTaskGroup(TaskGroup):
    """A task group on plain tasks (the semantics of
    :class:`asyncio.TaskGroup`, but the first error re-raised as itself).

    Enter and exit it in the same task. While the block's body runs, a
    failing task or :meth:`cancel` cancels the body too (its next ``await``
    raises :class:`asyncio.CancelledError`, absorbed on exit), as a trio
    nursery does.
    """

    def __init__(self) -> None:
        self._parent: asyncio.Task[Any] | None = None
        self._tasks: set[asyncio.Task[None]] = set()
        self._state = "new"
        self._error: BaseException | None = None
        self._cancelled = False
        self._parent_cancelled = False
        self._cancelling = 0
        self._idle: asyncio.Future[None] | None = None

    async def __aenter__(self) -> TaskGroup:
        if self._state != "new":
            raise RuntimeError("a task group can be entered only once")
        self._parent = asyncio.current_task()
        if sys.version_info >= (3, 11) and self._parent is not None:
            self._cancelling = self._parent.cancelling()
        self._state = "body"
        return self

    def start_soon(self, fn: Callable[..., Awaitable[Any]], *args: Any) -> None:
        """Start ``fn(*args)`` as a task of the group."""
        if self._state not in ("body", "exiting"):
            raise RuntimeError("the task group is not active")
        task = asyncio.get_running_loop().create_task(_call(fn, args))
        self._tasks.add(task)
        task.add_done_callback(self._task_done)
        if self._cancelled:
            task.cancel()

    def cancel(self) -> None:
        """Cancel every task (and the body, while it runs)."""
        if self._state == "done":
            return
        self._cancelled = True
        for task in self._tasks:
            task.cancel()
        parent = self._parent
        if self._state == "body" and parent is not None and not self._parent_cancelled:
            self._parent_cancelled = True
            parent.cancel()

    def _task_done(self, task: asyncio.Task[None]) -> None:
        self._tasks.discard(task)
        idle = self._idle
        if idle is not None and not self._tasks and not idle.done():
            idle.set_result(None)
        if task.cancelled():
            return
        error = task.exception()
        if error is not None:
            if self._error is None:
                self._error = error
            self.cancel()

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> bool | None:
        self._state = "exiting"
        body_cancelled = isinstance(exc, asyncio.CancelledError)
        if exc is not None:
            if not body_cancelled and self._error is None:
                self._error = exc
            self.cancel()
        seen_cancel = body_cancelled
        outer: BaseException | None = None
        while self._tasks:
            self._idle = asyncio.get_running_loop().create_future()
            try:
                await self._idle
            except asyncio.CancelledError as cancelled:
                if self._parent_cancelled and not seen_cancel:
                    seen_cancel = True
                else:
                    outer = cancelled
                self.cancel()
            finally:
                self._idle = None
        external = await self._settle_parent_cancel(seen_cancel, body_cancelled, outer)
        self._state = "done"
        if self._error is not None:
            if self._error is exc:
                return False
            raise self._error
        if external:
            if body_cancelled:
                return False
            raise outer if outer is not None else asyncio.CancelledError()
        return True if body_cancelled else None

    async def _settle_parent_cancel(
        self, seen: bool, body_cancelled: bool, outer: BaseException | None
    ) -> bool:
        """Take back the cancellation this group requested of its parent
        task, if any, and tell whether a cancellation from outside the
        group is pending (it must propagate).

        Python 3.10 has no ``Task.uncancel``: there the first cancellation
        after the group's own request is taken as the group's own.
        """
        if not self._parent_cancelled:
            return body_cancelled or outer is not None
        if not seen:
            # Requested while the parent was running and never delivered.
            try:
                await asyncio.sleep(0)
            except asyncio.CancelledError:
                pass
        if sys.version_info >= (3, 11) and self._parent is not None:
            return self._parent.uncancel() > self._cancelling
        return outer is not None


def create_lock() -> Lock:
    """A new first-in first-out lock (acquire with a timeout)."""
    return _AsyncioLock()


def create_event() -> Event:
    """A new event over :class:`asyncio.Event`."""
    return _AsyncioEvent()


def create_semaphore(value: int) -> Semaphore:
    """A new semaphore holding ``value`` units."""
    return _AsyncioSemaphore(value)


def create_channel(max_size: int) -> Channel[Any]:
    """A new channel holding at most ``max_size`` (>= 1) items."""
    return _AsyncioChannel(max_size)


def create_task_group() -> TaskGroup:
    """A new task group. Enter and exit it in the same task. While the
    block's body runs, a failing task or ``cancel()`` cancels the body too
    (its next ``await`` raises :class:`asyncio.CancelledError`, absorbed on
    exit), as a trio nursery does."""
    return _AsyncioTaskGroup()
