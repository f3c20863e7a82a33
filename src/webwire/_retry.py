"""Retry policy: how many times to try again, and how long to wait between
attempts (the counters and backoff of urllib3's ``Retry``).

A :class:`Retry` is immutable: :meth:`Retry.increment` returns a new one with
the attempt recorded.
"""

from __future__ import annotations

import random
from collections.abc import Collection
from dataclasses import dataclass
from typing import TYPE_CHECKING

from ._exceptions import ConnectError, ConnectTimeout, ReadError, ReadTimeout, RemoteProtocolError

if TYPE_CHECKING:
    from .http._models import Response

__all__ = ["Retry", "RetryAttempt"]

_DEFAULT_METHODS = frozenset({"GET", "HEAD", "PUT", "DELETE", "OPTIONS", "TRACE"})


@dataclass(frozen=True)
class RetryAttempt:
    """One failed attempt kept in :attr:`Retry.history`.

    Attributes:
        method: The request method, if known.
        error: The exception of the attempt, if any.
        status: The response status code, if a response was received.
    """

    method: str | None
    error: BaseException | None
    status: int | None


class Retry:
    """A retry policy with urllib3's semantics.

    Args:
        total: Most retries of any kind (``None``: no total limit; ``0``: no
            retry).
        connect: Most retries after a connection error.
        read: Most retries after an error while reading the response.
        status: Most retries after a status in ``status_forcelist``.
        status_forcelist: Status codes that are retried.
        allowed_methods: Methods retried (``None``: every method).
        backoff_factor: Seconds; the wait before retry ``n`` (``n >= 2``)
            is ``backoff_factor * 2 ** (n - 1)``; the first retry has none.
        backoff_max: Most seconds of one backoff wait.
        backoff_jitter: Up to this many random seconds added to each wait.
        respect_retry_after: Honour ``Retry-After`` (RFC 9110 section
            10.2.3) of retried responses.

    Attributes:
        history: The attempts recorded so far, oldest first.
    """

    def __init__(
        self,
        total: int | None = 3,
        *,
        connect: int | None = None,
        read: int | None = None,
        status: int | None = None,
        status_forcelist: Collection[int] = (413, 429, 503),
        allowed_methods: Collection[str] | None = _DEFAULT_METHODS,
        backoff_factor: float = 0.0,
        backoff_max: float = 120.0,
        backoff_jitter: float = 0.0,
        respect_retry_after: bool = True,
        history: tuple[RetryAttempt, ...] = (),
    ) -> None:
        self.total = total
        self.connect = connect
        self.read = read
        self.status = status
        self.status_forcelist = status_forcelist
        self.allowed_methods = allowed_methods
        self.backoff_factor = backoff_factor
        self.backoff_max = backoff_max
        self.backoff_jitter = backoff_jitter
        self.respect_retry_after = respect_retry_after
        self.history = history

    @classmethod
    def from_int(cls, retries: int | None) -> Retry:
        """``Retry(retries)``; ``0`` means no retry."""
        return cls(retries)

    def increment(
        self,
        *,
        method: str | None = None,
        error: BaseException | None = None,
        response: Response | None = None,
    ) -> Retry:
        """Record a failed attempt.

        Returns:
            A new :class:`Retry` with the matching counters decreased (it may
            be exhausted: check :meth:`is_exhausted`). Never raises.
        """
        total = None if self.total is None else self.total - 1
        connect, read, status = self.connect, self.read, self.status
        if isinstance(error, (ConnectError, ConnectTimeout)):
            connect = None if connect is None else connect - 1
        elif isinstance(error, (ReadError, ReadTimeout, RemoteProtocolError)):
            read = None if read is None else read - 1
        elif response is not None and status is not None:
            status -= 1
        attempt = RetryAttempt(
            method, error, response.status_code if response is not None else None
        )
        return Retry(
            total,
            connect=connect,
            read=read,
            status=status,
            status_forcelist=self.status_forcelist,
            allowed_methods=self.allowed_methods,
            backoff_factor=self.backoff_factor,
            backoff_max=self.backoff_max,
            backoff_jitter=self.backoff_jitter,
            respect_retry_after=self.respect_retry_after,
            history=(*self.history, attempt),
        )

    def is_exhausted(self) -> bool:
        """Whether some counter went below zero (no retry is left)."""
        counters = (self.total, self.connect, self.read, self.status)
        return any(value is not None and value < 0 for value in counters)

    def get_backoff_time(self) -> float:
        """Seconds to wait before the next attempt: ``0`` for the first
        retry, then ``backoff_factor * 2 ** (n - 1)`` for the ``n``-th,
        capped at ``backoff_max``, plus up to ``backoff_jitter`` random
        seconds."""
        consecutive = len(self.history)
        if consecutive <= 1:
            return 0.0
        wait = min(float(self.backoff_max), self.backoff_factor * 2.0 ** (consecutive - 1))
        if self.backoff_jitter:
            wait += random.uniform(0.0, self.backoff_jitter)
        return max(0.0, float(wait))

    def __repr__(self) -> str:
        return (
            f"Retry(total={self.total}, connect={self.connect}, read={self.read}, "
            f"status={self.status})"
        )
