"""Retry policy: :class:`Retry`, with the semantics of urllib3's ``Retry``.

A :class:`Retry` is immutable: :meth:`Retry.increment` returns a new one
with the matching counters decreased and the failed attempt appended to
:attr:`Retry.history`. The HTTP clients use it through their ``retries=``
option (see :class:`~webwire.AsyncClient`); other code (reconnecting
streams) uses :meth:`~Retry.increment`, :meth:`~Retry.is_exhausted` and
:meth:`~Retry.get_backoff_time` directly.
"""

from __future__ import annotations

import datetime
import email.utils
import random
import time
from collections.abc import Collection
from dataclasses import dataclass
from typing import TYPE_CHECKING

from ._exceptions import (
    ConnectError,
    ConnectTimeout,
    ReadError,
    ReadTimeout,
    RemoteProtocolError,
    WriteError,
    WriteTimeout,
)

if TYPE_CHECKING:
    from .http._models import Response

__all__ = ["DEFAULT_ALLOWED_METHODS", "RequestHistory", "Retry"]

DEFAULT_ALLOWED_METHODS = frozenset({"GET", "HEAD", "PUT", "DELETE", "OPTIONS", "TRACE"})
"""Idempotent methods (RFC 9110 section 9.2.2) retried by default."""

_CONNECT_ERRORS = (ConnectError, ConnectTimeout)
_READ_ERRORS = (ReadError, ReadTimeout, WriteError, WriteTimeout, RemoteProtocolError)


def _check_count(name: str, value: int | None) -> None:
    if value is not None and (not isinstance(value, int) or isinstance(value, bool)):
        raise TypeError(f"Retry {name} must be an int or None, not {value!r}")


@dataclass(frozen=True)
class RequestHistory:
    """One failed attempt recorded by :meth:`Retry.increment`.

    Attributes:
        method: The request method, or ``None`` when not given.
        error: The exception of the attempt, or ``None``.
        status: The status code of a retried response, or ``None``.
    """

    method: str | None
    error: BaseException | None
    status: int | None


class Retry:
    """How often and when to send a request again (urllib3 semantics).

    Three kinds of failure are counted: connection errors
    (:class:`~webwire.ConnectError`, :class:`~webwire.ConnectTimeout`: the
    request never reached the server), read errors (the connection failed
    after the request was sent: :class:`~webwire.ReadError`,
    :class:`~webwire.ReadTimeout`, :class:`~webwire.WriteError`,
    :class:`~webwire.WriteTimeout`, :class:`~webwire.RemoteProtocolError`)
    and responses whose status is in ``status_forcelist``. Every retry
    decreases ``total`` and the counter of its kind; the policy is
    exhausted when a counter goes below zero.

    Args:
        total: Most retries of any kind; ``None``: no overall limit (the
            other counters limit). ``0``: no retry.
        connect: Most retries after connection errors (``None``: only
            ``total`` limits them).
        read: Most retries after read errors.
        status: Most retries after a status of ``status_forcelist``.
        status_forcelist: Status codes retried (for ``allowed_methods``):
            by default 413, 429 and 503, the codes a ``Retry-After`` field
            comes with (RFC 9110 section 10.2.3).
        allowed_methods: Upper-case methods whose requests are retried after
            read errors and forced statuses; ``None``: every method. By
            default the idempotent methods (RFC 9110 section 9.2.2).
        backoff_factor: Seconds of the backoff: no wait before the first
            retry, then ``backoff_factor * 2 ** (n - 1)`` seconds before
            retry ``n``.
        backoff_max: Most seconds of one backoff wait.
        backoff_jitter: Up to this many random seconds added to a backoff.
        respect_retry_after: Wait the time a ``Retry-After`` field of a
            retried response asks for, instead of the backoff.

    Attributes:
        history: The failed attempts so far, oldest first
            (:class:`RequestHistory`).

    Raises:
        TypeError: A counter is not an int or None.
        ValueError: A counter, factor, maximum or jitter is negative.
    """

    __slots__ = (
        "allowed_methods",
        "backoff_factor",
        "backoff_jitter",
        "backoff_max",
        "connect",
        "history",
        "read",
        "respect_retry_after",
        "status",
        "status_forcelist",
        "total",
    )

    total: int | None
    connect: int | None
    read: int | None
    status: int | None
    status_forcelist: frozenset[int]
    allowed_methods: frozenset[str] | None
    backoff_factor: float
    backoff_max: float
    backoff_jitter: float
    respect_retry_after: bool
    history: tuple[RequestHistory, ...]

    def __init__(
        self,
        total: int | None = 3,
        *,
        connect: int | None = None,
        read: int | None = None,
        status: int | None = None,
        status_forcelist: Collection[int] = (413, 429, 503),
        allowed_methods: Collection[str] | None = DEFAULT_ALLOWED_METHODS,
        backoff_factor: float = 0.0,
        backoff_max: float = 120.0,
        backoff_jitter: float = 0.0,
        respect_retry_after: bool = True,
        history: tuple[RequestHistory, ...] = (),
    ) -> None:
        for name, value in (("total", total), ("connect", connect), ("read", read)):
            _check_count(name, value)
        _check_count("status", status)
        for name, number in (
            ("backoff_factor", backoff_factor),
            ("backoff_max", backoff_max),
            ("backoff_jitter", backoff_jitter),
        ):
            if number < 0:
                raise ValueError(f"Retry {name} must be >= 0 seconds, not {number!r}")
        if isinstance(allowed_methods, str):
            raise TypeError("Retry allowed_methods must be a collection of methods, not a str")
        self.total = total
        self.connect = connect
        self.read = read
        self.status = status
        self.status_forcelist = frozenset(status_forcelist)
        self.allowed_methods = (
            None if allowed_methods is None else frozenset(m.upper() for m in allowed_methods)
        )
        self.backoff_factor = float(backoff_factor)
        self.backoff_max = float(backoff_max)
        self.backoff_jitter = float(backoff_jitter)
        self.respect_retry_after = respect_retry_after
        self.history = tuple(history)

    @classmethod
    def from_int(cls, retries: int | Retry | None) -> Retry:
        """A policy from the ``retries=`` shorthand.

        Args:
            retries: A :class:`Retry` (returned as is), a number of retries
                (``Retry(n)``; ``0`` means none) or ``None`` (no retry).

        Returns:
            The policy.

        Raises:
            TypeError: ``retries`` is of another type.
            ValueError: ``retries`` is negative.
        """
        if isinstance(retries, Retry):
            return retries
        if retries is None:
            return cls(0)
        if not isinstance(retries, int) or isinstance(retries, bool):
            raise TypeError(f"retries must be an int or a webwire.Retry, not {retries!r}")
        if retries < 0:
            raise ValueError(f"retries must be >= 0, not {retries}")
        return cls(retries)

    def _replace(self, **changes: object) -> Retry:
        values: dict[str, object] = {name: getattr(self, name) for name in self.__slots__}
        values.update(changes)
        total = values.pop("total")
        return Retry(total, **values)  # type: ignore[arg-type]

    def new(self, **changes: object) -> Retry:
        """A copy with some arguments changed (``history`` kept unless
        given).

        Returns:
            The new policy.
        """
        return self._replace(**changes)

    # -- decisions ------------------------------------------------------

    def is_method_retryable(self, method: str) -> bool:
        """Whether requests with ``method`` may be retried after read errors
        and forced statuses."""
        return self.allowed_methods is None or method.upper() in self.allowed_methods

    def is_retry(self, method: str, status_code: int) -> bool:
        """Whether a response with ``status_code`` to a ``method`` request is
        retried (before counting: see :meth:`is_exhausted`)."""
        return status_code in self.status_forcelist and self.is_method_retryable(method)

    @staticmethod
    def is_connect_error(error: BaseException) -> bool:
        """Whether ``error`` is a connection error (the request was not sent)."""
        return isinstance(error, _CONNECT_ERRORS)

    @staticmethod
    def is_read_error(error: BaseException) -> bool:
        """Whether ``error`` is a read error (the request may have been
        processed)."""
        return isinstance(error, _READ_ERRORS)

    def increment(
        self,
        *,
        method: str | None = None,
        error: BaseException | None = None,
        response: Response | None = None,
    ) -> Retry:
        """Count one failed attempt.

        Args:
            method: The method of the attempt.
            error: Its exception: a connection error decreases ``connect``,
                a read error ``read``.
            response: Its response (a forced status), decreasing ``status``.

        Returns:
            A new policy with ``total`` and the matching counter decreased and
            the attempt appended to :attr:`history`; it may be exhausted
            (:meth:`is_exhausted`). Never raises.
        """
        changes: dict[str, object] = {}
        if self.total is not None:
            changes["total"] = self.total - 1
        status: int | None = None
        if error is not None and self.is_connect_error(error):
            if self.connect is not None:
                changes["connect"] = self.connect - 1
        elif error is not None and self.is_read_error(error):
            if self.read is not None:
                changes["read"] = self.read - 1
        elif response is not None:
            status = response.status_code
            if self.status is not None:
                changes["status"] = self.status - 1
        changes["history"] = (*self.history, RequestHistory(method, error, status))
        return self._replace(**changes)

    def is_exhausted(self) -> bool:
        """Whether a counter went below zero (no retry is left)."""
        return any(
            count is not None and count < 0
            for count in (self.total, self.connect, self.read, self.status)
        )

    def get_backoff_time(self) -> float:
        """Seconds to wait before the next attempt: 0 before the first
        retry, then ``backoff_factor * 2 ** (n - 1)`` for ``n`` failed
        attempts, plus up to ``backoff_jitter`` random seconds, at most
        ``backoff_max``."""
        failures = len(self.history)
        if failures <= 1:
            return 0.0
        value = self.backoff_factor * (2 ** (failures - 1))
        if self.backoff_jitter:
            value += random.random() * self.backoff_jitter
        return float(max(0.0, min(self.backoff_max, value)))

    def get_retry_after(self, response: Response) -> float | None:
        """Seconds a ``Retry-After`` field asks to wait (RFC 9110 section
        10.2.3): delta-seconds, or an HTTP-date (measured against the
        system's wall clock, 0 when already past).

        Returns:
            The seconds, or ``None`` when the field is absent or invalid.
        """
        value = response.headers.get("Retry-After")
        if value is None:
            return None
        value = value.strip()
        if value.isdigit():
            return float(int(value))
        try:
            when = email.utils.parsedate_to_datetime(value)
        except (TypeError, ValueError, IndexError):
            return None
        if when.tzinfo is None:
            when = when.replace(tzinfo=datetime.timezone.utc)
        return max(0.0, when.timestamp() - time.time())

    def __repr__(self) -> str:
        return (
            f"Retry(total={self.total}, connect={self.connect}, read={self.read}, "
            f"status={self.status})"
        )
