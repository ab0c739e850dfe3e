"""Tunables of the sync engine, with production defaults.

Every field is a plain `str`, `int`, `float` or `bool`, or one of them `| None`: the daemon's
config loader maps the TOML `[sync]` table onto these fields by name and type. Ranges are checked in
`__post_init__`, which raises `SettingsError` (a `ValueError`) naming the field.
"""

from __future__ import annotations

from dataclasses import dataclass

from sync.errors import SettingsError
from sync.eventbridge.v2 import (
    API_V2,
    APIS,
    EVENT_BUS_ARN_EXAMPLE,
    V2_MAX_ENTRIES,
    valid_event_bus_arn,
)
from sync.fair_rate import PARAMETER_NAME_RULES, valid_parameter_name
from sync.pacing.ratelimit import (
    DEFAULT_DECREASE_FACTOR,
    DEFAULT_MIN_RATE,
    DEFAULT_RECOVERY_SECONDS,
)

# Hard limits of PutEvents (AWS docs): 10 entries per request; the request-size cap was
# 256 KiB until early 2026 and 1 MiB after. The default stays at the old, safe value.
# With api = "v2" up to 100 entries (sync/eventbridge/v2.py) and the same 1 MiB.
PUT_EVENTS_MAX_ENTRIES = 10

PUT_EVENTS_DEFAULT_MAX_BYTES = 256 * 1024
PUT_EVENTS_HARD_MAX_BYTES = 1024 * 1024

# Longest read timeout a slow endpoint may stretch the client to; with the default connect
# timeout it keeps the worst request within half the default lease.
DEFAULT_MAX_READ_TIMEOUT_SECONDS = 25.0

# A delivered record the cloud has not proven is kept as long as the cloud's dead-letter queue
# keeps messages (14 days): a record stuck there unnoticed still has its copy on the terminal.
DEFAULT_MAX_UNACKNOWLEDGED_SECONDS = 14 * 86400.0
# The consumer's watermarks table (cloud/tables.py; the demo's is `posd-watermarks` too).
DEFAULT_WATERMARK_TABLE = "posd-watermarks"
# DynamoDB table names: 3 to 255 of letters, digits, '_', '-' and '.'.
TABLE_NAME_CHARS = frozenset("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_-.")
TABLE_NAME_MIN, TABLE_NAME_MAX = 3, 255


@dataclass(frozen=True)
class SyncSettings:
    """How the engine delivers the journal to EventBridge. Times are seconds."""

    # Which PutEvents: "v1" (`events`, at least once) or "v2" (`eventbridgev2`: the bus
    # deduplicates on each record's event_id); v2 needs the bus ARN (`event_bus_arn`).
    api: str = "v1"
    event_bus_arn: str | None = None
    # Where events go and what they say they are.
    event_bus_name: str = "default"
    source: str = "posd.terminal"
    # Request shaping.
    max_entries_per_request: int = PUT_EVENTS_MAX_ENTRIES
    max_request_bytes: int = PUT_EVENTS_DEFAULT_MAX_BYTES
    # AIMD concurrency window (requests in flight).
    min_in_flight: int = 1
    initial_in_flight: int = 4
    max_in_flight: int = 8
    throttle_decrease_factor: float = 0.5
    # Client-side rate limiter (sync/pacing/ratelimit.py, the AWS SDKs' "adaptive" mode in
    # entries/s): a slow start (one request, doubling each round trip), dormant until the
    # first throttled answer, then a token bucket whose fill rate is cut to
    # `rate_decrease_factor` x the accepted rate and grows back along a CUBIC curve, level
    # again after `rate_recovery_seconds`, never below `rate_min_per_second` (a fleet of N
    # terminals offers at least N x that: keep it under the account's quota / N). It keeps a
    # reconnecting fleet near the quota instead of every terminal offering its backlog at once.
    rate_limit: bool = True
    rate_min_per_second: float = DEFAULT_MIN_RATE
    rate_decrease_factor: float = DEFAULT_DECREASE_FACTOR
    rate_recovery_seconds: float = DEFAULT_RECOVERY_SECONDS
    # Fleet-aware start (sync/pacing/lane.py): where a lane starts when it (re)connects. The
    # cloud's published fair rate comes first; without it, the account's PutEvents quota
    # shared by the fleet (`fleet_quota_per_second` / `fleet_size`, both or neither), or a
    # per-lane rate (`lane_rate_per_second`). The lane starts at that rate, its first
    # request at a random moment within the time the rate takes to earn it, and probes
    # upward from it. None of them: the slow start above.
    fleet_quota_per_second: float | None = None
    fleet_size: int | None = None
    lane_rate_per_second: float | None = None
    # A lane at its share throttled while probing above it backs off below it and probes again
    # only when the published share rises (sync/pacing/ratelimit.py `PROBE_BACKOFF_RECOVERIES`):
    # fewer throttles where the shares fill the quota, slower drains where lanes finish unseen.
    probe_once: bool = False
    # A leased record is hidden from other leases this long; must outlive one request.
    lease_seconds: float = 60.0
    # Per-record retry of retryable entry errors and of throttled requests: full jitter. The
    # cap is short: an outage is the link monitor's business (offline probing), and a long
    # per-record cap left a reconnecting fleet a tail of records waiting out old backoffs
    # (bench/fleet.py; the figures are in docs/performance.md).
    backoff_base_seconds: float = 0.5
    backoff_cap_seconds: float = 10.0
    # Offline detection: this many consecutive whole-request failures flip to offline, then
    # one probe request at a time, spaced by jittered exponential backoff within these bounds.
    offline_after_failures: int = 3
    probe_min_seconds: float = 1.0
    probe_max_seconds: float = 60.0
    # HTTP timeouts of the EventBridge client. Requests answered too late (read timeout: sent,
    # maybe applied) lengthen the read timeout, doubling up to `max_read_timeout_seconds`.
    connect_timeout_seconds: float = 3.0
    read_timeout_seconds: float = 10.0
    max_read_timeout_seconds: float = DEFAULT_MAX_READ_TIMEOUT_SECONDS
    # Delivered records (and their ciphertext) are purged after this long...
    retention_seconds: float = 86400.0
    purge_interval_seconds: float = 300.0
    # ...and, with `acknowledged_retention`, only once the cloud has proven them: their seq is
    # at or below the journal's proven watermark (read from DynamoDB `watermark_table` at most
    # every `watermark_poll_seconds`, sync/acknowledgement.py). A record delivered
    # `max_unacknowledged_seconds` ago is purged proven or not, with a warning.
    acknowledged_retention: bool = True
    max_unacknowledged_seconds: float = DEFAULT_MAX_UNACKNOWLEDGED_SECONDS
    watermark_table: str = DEFAULT_WATERMARK_TABLE
    watermark_poll_seconds: float = 300.0
    # How often an idle engine looks for new records.
    idle_poll_seconds: float = 0.25
    # The SSM parameter the chain publishes each lane's fair rate in (entries/s,
    # sync/fair_rate.py), read when the engine starts and when its link comes back; empty: off.
    fair_rate_parameter: str = ""
    # ...and re-read this often while the lane drains a backlog (never while idle): the cloud
    # republishes a higher rate as other lanes finish (sync/fair_rate_refresh.py). 10,000
    # draining lanes read Parameter Store 667 times a second at 15 s.
    fair_rate_reread_seconds: float = 15.0

    def __post_init__(self) -> None:
        _require(bool(self.event_bus_name), "event_bus_name", "must not be empty")
        _require(bool(self.source), "source", "must not be empty")
        _require(
            not self.source.startswith("aws."), "source", "must not start with 'aws.' (reserved)"
        )
        _require(self.api in APIS, "api", f"must be one of {', '.join(APIS)}, got {self.api!r}")
        if self.api == API_V2:
            _require(
                self.event_bus_arn is not None,
                "event_bus_arn",
                f"is required with api = 'v2' (a v2 bus ARN, {EVENT_BUS_ARN_EXAMPLE})",
            )
        if self.event_bus_arn is not None:
            _require(
                valid_event_bus_arn(self.event_bus_arn),
                "event_bus_arn",
                f"must be a v2 event bus ARN ({EVENT_BUS_ARN_EXAMPLE}), got {self.event_bus_arn!r}",
            )
        max_entries = V2_MAX_ENTRIES if self.api == API_V2 else PUT_EVENTS_MAX_ENTRIES
        _in_range("max_entries_per_request", self.max_entries_per_request, 1, max_entries)
        _in_range("max_request_bytes", self.max_request_bytes, 1024, PUT_EVENTS_HARD_MAX_BYTES)
        _in_range("min_in_flight", self.min_in_flight, 1, 256)
        _in_range("max_in_flight", self.max_in_flight, self.min_in_flight, 256)
        _in_range(
            "initial_in_flight", self.initial_in_flight, self.min_in_flight, self.max_in_flight
        )
        _in_range("throttle_decrease_factor", self.throttle_decrease_factor, 0.05, 0.95)
        _in_range("rate_decrease_factor", self.rate_decrease_factor, 0.05, 0.95)
        for name in (
            "backoff_base_seconds",
            "probe_min_seconds",
            "connect_timeout_seconds",
            "read_timeout_seconds",
            "idle_poll_seconds",
            "purge_interval_seconds",
            "rate_min_per_second",
            "rate_recovery_seconds",
            "watermark_poll_seconds",
            "fair_rate_reread_seconds",
        ):
            _require(getattr(self, name) > 0, name, "must be > 0")
        _require(
            self.backoff_cap_seconds >= self.backoff_base_seconds,
            "backoff_cap_seconds",
            "must be >= backoff_base_seconds",
        )
        _require(
            self.probe_max_seconds >= self.probe_min_seconds,
            "probe_max_seconds",
            "must be >= probe_min_seconds",
        )
        _require(
            self.max_read_timeout_seconds >= self.read_timeout_seconds,
            "max_read_timeout_seconds",
            "must be >= read_timeout_seconds",
        )
        self._check_fleet()
        _in_range("offline_after_failures", self.offline_after_failures, 1, 1000)
        _require(self.retention_seconds >= 0, "retention_seconds", "must be >= 0")
        _require(
            self.max_unacknowledged_seconds >= self.retention_seconds,
            "max_unacknowledged_seconds",
            f"must be >= retention_seconds ({self.retention_seconds:g}), "
            f"got {self.max_unacknowledged_seconds:g}",
        )
        _require(
            TABLE_NAME_MIN <= len(self.watermark_table) <= TABLE_NAME_MAX
            and set(self.watermark_table) <= TABLE_NAME_CHARS,
            "watermark_table",
            f"must be a DynamoDB table name ({TABLE_NAME_MIN} to {TABLE_NAME_MAX} letters, "
            f"digits, '_', '-' or '.'), got {self.watermark_table!r}",
        )
        _require(
            not self.fair_rate_parameter or valid_parameter_name(self.fair_rate_parameter),
            "fair_rate_parameter",
            f"must be empty (off) or {PARAMETER_NAME_RULES}, got {self.fair_rate_parameter!r}",
        )
        # A lease shorter than one request could expire mid-flight and let the record be sent
        # twice; twice the worst request time (with the read timeout at its longest) leaves
        # room for the response to be processed.
        request_budget = self.connect_timeout_seconds + self.max_read_timeout_seconds
        _require(
            self.lease_seconds >= 2 * request_budget,
            "lease_seconds",
            f"must be >= 2 x (connect + max read timeout) = {2 * request_budget:g}",
        )

    def _check_fleet(self) -> None:
        for name in ("fleet_quota_per_second", "lane_rate_per_second"):
            value = getattr(self, name)
            _require(value is None or value > 0, name, f"must be > 0, got {value}")
        _require(
            self.fleet_size is None or self.fleet_size >= 1,
            "fleet_size",
            f"must be >= 1 (lanes sharing the quota), got {self.fleet_size}",
        )
        _require(
            (self.fleet_quota_per_second is None) == (self.fleet_size is None),
            "fleet_size" if self.fleet_size is None else "fleet_quota_per_second",
            "is needed too: the share is fleet_quota_per_second / fleet_size (both or neither)",
        )
        _require(
            self.lane_rate_per_second is None or self.fleet_size is None,
            "lane_rate_per_second",
            "is set with fleet_quota_per_second and fleet_size: set one or the other",
        )


def _require(ok: bool, field: str, problem: str) -> None:
    if not ok:
        raise SettingsError(field, problem)


def _in_range(field: str, value: float, low: float, high: float) -> None:
    _require(low <= value <= high, field, f"must be between {low:g} and {high:g}, got {value:g}")
