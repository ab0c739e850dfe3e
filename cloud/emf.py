"""The consumer's metrics in CloudWatch's embedded metric format, through Powertools for AWS
Lambda (the `cloud` extra; only the function's handler imports this module)."""

from __future__ import annotations

from aws_lambda_powertools import Metrics
from aws_lambda_powertools.metrics import MetricUnit, single_metric

from cloud.metrics import ALARM_DIMENSION, METRICS_NAMESPACE, METRICS_SERVICE


class PowertoolsMetrics:
    """CloudWatch metrics in the embedded metric format, written to the function's log.

    Records filed and held are summed per invocation and flushed when the handler returns
    (`flush`); an alarm is written at once with its own `Alarm` dimension (Powertools'
    `single_metric`: one EMF line per dimension set), so a crash later in the batch cannot
    lose it."""

    def __init__(self) -> None:
        self._metrics = Metrics(service=METRICS_SERVICE, namespace=METRICS_NAMESPACE)

    def count(self, metric: str, alarm: str | None = None) -> None:
        if alarm is None:
            self._metrics.add_metric(name=metric, unit=MetricUnit.Count, value=1)
            return
        with single_metric(
            name=metric,
            unit=MetricUnit.Count,
            value=1,
            namespace=METRICS_NAMESPACE,
            default_dimensions={"service": METRICS_SERVICE},
        ) as single:
            single.add_dimension(name=ALARM_DIMENSION, value=alarm)

    def flush(self) -> None:
        """Write the invocation's sums (nothing when there are none: a scheduled re-check)."""
        if self._metrics.metric_set:
            self._metrics.flush_metrics()
