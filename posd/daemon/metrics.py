"""`GET /metrics`: Prometheus text exposition from the daemon's own registry.

Events (captures, refusals, latency) are counted as they happen; the state of the lane
(backlog, link, devices, journal size, delivery results) is read when Prometheus scrapes, from
a snapshot function the daemon provides, so a gauge can never be stale.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field

from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Histogram,
    generate_latest,
)
from prometheus_client.core import (
    CounterMetricFamily,
    GaugeMetricFamily,
    HistogramMetricFamily,
    Metric,
)
from prometheus_client.registry import Collector

from posd.journal.waits import WaitFigures

CAPTURE_SECONDS_BUCKETS = (0.25, 0.5, 1.0, 2.0, 5.0, 10.0, 20.0, 30.0, 60.0, 120.0)
CONTENT_TYPE = CONTENT_TYPE_LATEST
NO_BRAND = "none"  # palm payments have no card brand


@dataclass(frozen=True)
class LaneState:
    """What the collector reports at scrape time."""

    pending: int
    oldest_pending_age_seconds: float | None
    link_online: bool
    devices_connected: Mapping[str, bool]
    journal_bytes: int
    delivery_results: Mapping[str, int] = field(default_factory=dict)
    checkpoint_last_seq: int = 0  # 0: no checkpoint yet
    checkpoints_pending: int = 0
    append_waits: WaitFigures | None = None


class _StateCollector(Collector):
    def __init__(self, state: Callable[[], LaneState]) -> None:
        self._state = state

    def collect(self) -> Iterator[Metric]:
        state = self._state()
        yield GaugeMetricFamily(
            "posd_pending_records", "Records waiting for delivery", value=state.pending
        )
        yield GaugeMetricFamily(
            "posd_oldest_pending_age_seconds",
            "Age of the oldest undelivered record (0 when none)",
            value=state.oldest_pending_age_seconds or 0.0,
        )
        yield GaugeMetricFamily(
            "posd_link_online", "1 when delivery to EventBridge works", value=int(state.link_online)
        )
        devices = GaugeMetricFamily(
            "posd_device_connected", "1 when the device is connected", labels=["device"]
        )
        for name, connected in sorted(state.devices_connected.items()):
            devices.add_metric([name], int(connected))
        yield devices
        yield GaugeMetricFamily(
            "posd_journal_bytes", "Size of the journal on disk", value=state.journal_bytes
        )
        results = CounterMetricFamily(
            "posd_delivery_results",
            "Records settled by the sync engine since start, by result",
            labels=["code"],
        )
        for code, count in sorted(state.delivery_results.items()):
            results.add_metric([code], count)
        yield results
        yield GaugeMetricFamily(
            "posd_checkpoint_last_seq",
            "Last seq covered by a journaled checkpoint (0 when none yet)",
            value=state.checkpoint_last_seq,
        )
        yield GaugeMetricFamily(
            "posd_checkpoints_pending",
            "Checkpoints journaled and not yet accepted by EventBridge",
            value=state.checkpoints_pending,
        )
        if state.append_waits is not None:
            yield from _wait_metrics(state.append_waits)


def _wait_metrics(waits: WaitFigures) -> Iterator[Metric]:
    """posd.journal.waits: what payments' appends waited for the journal's write lock."""
    buckets = [(repr(bound), count) for bound, count in waits.buckets]
    yield HistogramMetricFamily(
        "posd_append_lock_wait_seconds",
        "Time a payment's append waited for the journal's write lock before its transaction",
        buckets=[*buckets, ("+Inf", waits.count)],
        sum_value=waits.total_s,
    )
    yield GaugeMetricFamily(
        "posd_append_lock_wait_max_seconds",
        "Longest wait of an append for the journal's write lock since start",
        value=waits.max_s,
    )


class Metrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        self._captures = Counter(
            "posd_captures",
            "Payments captured and journaled",
            ["method", "brand"],
            registry=self.registry,
        )
        self._voids = Counter("posd_voids", "Voids journaled", registry=self.registry)
        self._refusals = Counter(
            "posd_refusals", "Requests refused, by code", ["code"], registry=self.registry
        )
        self._latency = Histogram(
            "posd_capture_seconds",
            "From the request to the durable record, for captured payments",
            buckets=CAPTURE_SECONDS_BUCKETS,
            registry=self.registry,
        )

    def watch(self, state: Callable[[], LaneState]) -> None:
        self.registry.register(_StateCollector(state))

    def captured(self, method: str, brand: str | None, seconds: float) -> None:
        self._captures.labels(method, brand or NO_BRAND).inc()
        self._latency.observe(seconds)

    def voided(self) -> None:
        self._voids.inc()

    def refused(self, code: str) -> None:
        self._refusals.labels(code).inc()

    def exposition(self) -> bytes:
        return generate_latest(self.registry)
