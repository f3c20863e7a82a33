"""Periodic health checks of a client (:class:`ClientMonitor`)."""

from __future__ import annotations

from collections import deque
from types import TracebackType
from typing import Any

from webwire._backends import Backend, TaskGroup, init_lock
from webwire._exceptions import ConfigurationError

from ._client import WebTransportClient

__all__ = ["ClientMonitor"]

_KEPT = 100
"""Metric snapshots and alerts kept (the oldest are dropped)."""


class ClientMonitor:
    """Every ``monitoring_interval`` seconds, takes a snapshot of a
    client's statistics and raises an alert when its success rate is
    below ``success_rate_threshold`` (once ``min_attempts`` attempts were
    made) or its average connect time is above
    ``connect_time_threshold`` seconds. The last 100 snapshots and alerts
    are kept. Use it as ``async with`` (it monitors inside the block).

    Args:
        client: The client to watch.
        monitoring_interval: Seconds between snapshots (> 0).
        success_rate_threshold: Lowest healthy success rate (0 to 1).
        connect_time_threshold: Highest healthy average connect time,
            seconds.
        min_attempts: Attempts before the success rate is judged.

    Raises:
        TypeError: ``client`` is not a :class:`WebTransportClient`.
        ConfigurationError: A threshold, ``min_attempts`` or the interval
            is not a number in range.
    """

    def __init__(
        self,
        client: WebTransportClient,
        monitoring_interval: float = 30.0,
        *,
        success_rate_threshold: float = 0.9,
        connect_time_threshold: float = 5.0,
        min_attempts: int = 10,
    ) -> None:
        if not isinstance(client, WebTransportClient):
            raise TypeError(f"ClientMonitor watches a WebTransportClient, not {type(client)!r}")
        if not _is_number(monitoring_interval) or not monitoring_interval > 0:
            raise ConfigurationError(
                "monitoring_interval", monitoring_interval, "must be > 0 seconds"
            )
        if not _is_number(success_rate_threshold) or not 0.0 <= success_rate_threshold <= 1.0:
            raise ConfigurationError(
                "success_rate_threshold", success_rate_threshold, "must be from 0 to 1"
            )
        if not _is_number(connect_time_threshold) or not connect_time_threshold > 0:
            raise ConfigurationError(
                "connect_time_threshold", connect_time_threshold, "must be > 0 seconds"
            )
        if not isinstance(min_attempts, int) or isinstance(min_attempts, bool) or min_attempts < 0:
            raise ConfigurationError("min_attempts", min_attempts, "must be an integer >= 0")
        self._client = client
        self._interval = float(monitoring_interval)
        self._rate_threshold = success_rate_threshold
        self._time_threshold = connect_time_threshold
        self._min_attempts = min_attempts
        self._lock = init_lock()
        self._metrics: deque[dict[str, Any]] = deque(maxlen=_KEPT)
        self._alerts: deque[dict[str, Any]] = deque(maxlen=_KEPT)
        self._collected = 0
        self._alerted = 0
        self._group: TaskGroup | None = None

    @property
    def is_monitoring(self) -> bool:
        """Whether the periodic task runs."""
        return self._group is not None

    async def __aenter__(self) -> ClientMonitor:
        """Start the periodic task (the first snapshot is taken after one
        interval)."""
        if self._group is None:
            backend = self._client._get_backend()
            group = backend.create_detached_task_group()
            await group.__aenter__()
            self._group = group
            group.start_soon(self._loop, backend)
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.stop()

    async def stop(self) -> None:
        """Stop the periodic task (the client stays open). Idempotent."""
        group, self._group = self._group, None
        if group is not None:
            group.cancel()
            await group.__aexit__(None, None, None)

    async def _loop(self, backend: Backend) -> None:
        while True:
            await backend.sleep(self._interval)
            self.collect(backend.monotonic())

    def collect(self, timestamp: float | None = None) -> dict[str, Any]:
        """Take a snapshot now and check it (the periodic task calls this).

        Args:
            timestamp: When, in seconds of the backend's monotonic clock
                (now when ``None``).

        Returns:
            The snapshot: ``{"timestamp", "stats" (ClientStats.to_dict()),
            "issues" (diagnose_issues())}``.
        """
        if timestamp is None:
            timestamp = self._client._get_backend().monotonic()
        stats = self._client._stats_snapshot()
        snapshot = {
            "timestamp": timestamp,
            "stats": stats.to_dict(),
            "issues": self._client.diagnose_issues(),
        }
        alerts: list[dict[str, Any]] = []
        rate = stats.success_rate
        if stats.connections_attempted >= self._min_attempts and rate < self._rate_threshold:
            alerts.append(
                _alert("low_success_rate", timestamp, rate, self._rate_threshold,
                       f"connection success rate {rate:.1%} is below "
                       f"{self._rate_threshold:.1%}")
            )
        avg = stats.avg_connect_time
        if avg > self._time_threshold:
            alerts.append(
                _alert("slow_connect", timestamp, avg, self._time_threshold,
                       f"average connect time {avg:.2f} s is above {self._time_threshold} s")
            )
        with self._lock:
            self._metrics.append(snapshot)
            self._collected += 1
            self._alerts.extend(alerts)
            self._alerted += len(alerts)
        return snapshot

    def get_metrics_summary(self) -> dict[str, Any]:
        """What was collected.

        Returns:
            ``{"is_monitoring", "monitoring_interval" (seconds),
            "total_metrics_collected", "total_alerts", "latest_metrics"
            (the last snapshot or ``{}``), "recent_alerts" (the last 10,
            each ``{"type", "message", "value", "threshold",
            "timestamp"}``)}``.
        """
        with self._lock:
            latest = self._metrics[-1] if self._metrics else {}
            recent = list(self._alerts)[-10:]
            return {
                "is_monitoring": self.is_monitoring,
                "monitoring_interval": self._interval,
                "total_metrics_collected": self._collected,
                "total_alerts": self._alerted,
                "latest_metrics": latest,
                "recent_alerts": recent,
            }


def _is_number(value: object) -> bool:
    """An int or float that is not a bool."""
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _alert(
    kind: str, timestamp: float, value: float, threshold: float, message: str
) -> dict[str, Any]:
    return {
        "type": kind,
        "message": message,
        "value": value,
        "threshold": threshold,
        "timestamp": timestamp,
    }
