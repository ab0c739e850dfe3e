"""The consumer's own figures as CloudWatch metrics (embedded metric format, via Powertools).

Every alarm the consumer raises is counted as `AlarmsRaised` with the dimension `Alarm` (its
name: `forged_record`, `gap`, `equivocation`, ...), in the namespace `posd/Consumer` with the
service dimension `posd-consumer`: `cloud/template.yaml`'s CloudWatch alarms watch exactly
these. In the function, `cloud.emf.PowertoolsMetrics` writes them as EMF lines to its log; outside
Lambda (demo, tests) a `CountingMetrics` keeps them in memory instead.
"""

from __future__ import annotations

from collections import Counter
from typing import Protocol

METRICS_NAMESPACE = "posd/Consumer"
METRICS_SERVICE = "posd-consumer"
ALARMS_RAISED = "AlarmsRaised"
ALARM_DIMENSION = "Alarm"
RECORDS_FILED = "RecordsFiled"
RECORDS_HELD = "RecordsHeld"


class MetricSink(Protocol):
    def count(self, metric: str, alarm: str | None = None) -> None:
        """One more of `metric` (with the `Alarm` dimension when `alarm` is given)."""


class CountingMetrics:
    """In memory: what the demo reports and the tests assert."""

    def __init__(self) -> None:
        self.counts: Counter[tuple[str, str | None]] = Counter()

    def count(self, metric: str, alarm: str | None = None) -> None:
        self.counts[(metric, alarm)] += 1

    def alarms(self, alarm: str) -> int:
        return self.counts[(ALARMS_RAISED, alarm)]
