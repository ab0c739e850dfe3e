"""The fair rate the consumer publishes for the lanes (posd's `[sync] fair_rate_parameter`):
the share of the account's PutEvents quota the chain gives posd, divided among the lanes that
share it now, never below a floor, written to the stack's SSM parameter when it changes: on
the function's schedule, and from its SQS batches at most every `REPUBLISH_SECONDS` (during a
reconnect storm batches come all the time, so the lanes still draining, which re-read it
every `[sync] fair_rate_reread_seconds`, get the share of the lanes that finished within
half a minute). A new `PutEventsQuota` (a stack update: new environment, new function
instances) is published by the first invocation that follows.

Who shares it is `wire.fair_rate.sharing_lanes`, the rule the fleet simulator counts with too:
every lane heard within the day (`window_seconds`), except the lanes seen to have drained a
backlog. Why the day and not only the lanes heard in the last minutes: lanes read the rate
when their link comes back, after an outage in which they delivered nothing. Counted over
minutes, the lanes of a region that was cut off would be missing exactly when they all
reconnect, and each would read a share meant for far fewer lanes (a storm of first requests
at many times the quota). Why the drained lanes are left out: a lane whose latest checkpoint
came from a backlog (made long before it arrived) has caught up once its watermark reached
that checkpoint's last seq (or, failing that, once it went silent), and its share should go
to the lanes still draining. A lane caught up in steady state sends
its checkpoints as it makes them, so it is never taken for drained.

What the watermark items tell (`cloud.watermarks`, one per journal): `updated_at` (a range
proven), `proven_seq`, `last_checkpoint_at` (a checkpoint received), `last_checkpoint_made_at`
(when the terminal made it) and `last_checkpoint_seq` (the last seq it covers). A lane's last
word is its journals' latest of those; it is behind when that checkpoint came
`wire.fair_rate.BEHIND_SECONDS` or more after it was made (a terminal clock that far off shows
as behind, or as caught up), and caught up when `proven_seq` reached `last_checkpoint_seq`:
the terminal's side lane sends a backlog's checkpoints ahead of its records, so the watermark
meets the latest one when the records are all in. A lane whose checkpoints came after their
records (its side lane backed off longer than its records) looks caught up early, and a lane
lying about it only raises the others' rate a little: their throttles cut them back
(`sync.pacing.ratelimit`). Without that, a draining lane proves a range every 100 records (a
checkpoint's worth); one draining slower than that over `wire.fair_rate.DRAINED_AFTER_SECONDS`
is taken for drained between two ranges, and the others read a rate a little too high until
its next range comes. Counting scans the watermarks table (a few items per lane:
10,000 lanes are a few MB).
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, NamedTuple

import structlog
from botocore.exceptions import ClientError

from cloud.errors import ConsumerConfigError
from cloud.store import Store, from_item, to_item
from cloud.watermarks import LAST_CHECKPOINT_AT, LAST_CHECKPOINT_MADE_AT, LAST_CHECKPOINT_SEQ
from wire.fair_rate import BEHIND_SECONDS, MIN_FAIR_RATE, LaneHeard, sharing_lanes, value_of
from wire.watermark import LANE_ID, PROVEN_SEQ, UPDATED_AT

DEFAULT_SHARE = 0.5  # the rest of the quota is the chain's other producers'
DEFAULT_FLOOR = 0.1  # entries/s: a lane still delivers a payment every 10 s
DEFAULT_WINDOW_SECONDS = 86400.0
# From the SQS batches, at most this often per function instance. Each publish scans the
# watermarks: for 10,000 lanes about 2 MB, a few hundred read units, four times a minute per
# instance. The lanes re-read every 15 s by default. bench/fleet.py --simulated, 10,000 lanes
# of varied backlogs, three seeds: at 30 s, 2.9% throttled; at 15 s, 1.4-1.6% and the drain
# 0.01-0.04 nearer the ideal (joining over a minute through a quota cut: 5.1% -> 3.8-4.0%).
REPUBLISH_SECONDS = 15.0
NOT_FOUND = "ParameterNotFound"

log = structlog.get_logger("posd.cloud")


class FairRateEnv(NamedTuple):
    parameter: str = "FAIR_RATE_PARAMETER"
    quota: str = "PUT_EVENTS_QUOTA"  # entries/s, the account's in this region
    share: str = "FAIR_RATE_SHARE"
    floor: str = "FAIR_RATE_FLOOR"
    window: str = "FAIR_RATE_WINDOW_SECONDS"


FAIR_RATE_ENV = FairRateEnv()


@dataclass(frozen=True)
class FairRateSettings:
    parameter: str
    quota: float
    share: float = DEFAULT_SHARE
    floor: float = DEFAULT_FLOOR
    window_seconds: float = DEFAULT_WINDOW_SECONDS

    @classmethod
    def from_env(cls, env: Mapping[str, str]) -> FairRateSettings | None:
        """The settings the template's variables give; None without a parameter (off)."""
        parameter = env.get(FAIR_RATE_ENV.parameter)
        if not parameter:
            return None
        names = FAIR_RATE_ENV
        return cls(
            parameter,
            quota=_number(env, names.quota, None, low=MIN_FAIR_RATE),
            share=_number(env, names.share, DEFAULT_SHARE, low=MIN_FAIR_RATE, high=1.0),
            floor=_number(env, names.floor, DEFAULT_FLOOR, low=MIN_FAIR_RATE),
            window_seconds=_number(env, names.window, DEFAULT_WINDOW_SECONDS, low=1.0),
        )


def _number(
    env: Mapping[str, str], name: str, default: float | None, *, low: float, high: float = math.inf
) -> float:
    text = env.get(name)
    if text is None and default is not None:
        return default
    try:
        value = float(text or "nan")
    except ValueError:
        value = math.nan
    if not low <= value <= high:  # NaN too
        bound = f"between {low:g} and {high:g}" if math.isfinite(high) else f">= {low:g}"
        raise ConsumerConfigError(f"{name} must be a number {bound}, got {text!r}")
    return value


def fleet_rate(settings: FairRateSettings, lanes: int) -> float:
    """Each lane's share: quota x share / lanes (one lane, when none delivered yet), at least
    the floor."""
    return max(settings.floor, settings.quota * settings.share / max(lanes, 1))


def active_lanes(store: Store, now: float, window: float) -> int:
    """How many lanes share the quota at `now` (`wire.fair_rate.sharing_lanes`), from their
    watermark items heard within `window`."""
    pages = store.dynamodb.get_paginator("scan").paginate(
        TableName=store.tables.watermarks,
        ProjectionExpression="#l, #u, #t, #m, #q, #p",
        FilterExpression="#u >= :s OR #t >= :s",
        ExpressionAttributeNames={
            "#l": LANE_ID,
            "#u": UPDATED_AT,
            "#t": LAST_CHECKPOINT_AT,
            "#m": LAST_CHECKPOINT_MADE_AT,
            "#q": LAST_CHECKPOINT_SEQ,
            "#p": PROVEN_SEQ,
        },
        ExpressionAttributeValues=to_item({":s": int(now - window)}),
    )
    lanes: dict[str, LaneHeard] = {}
    for page in pages:
        for item in page.get("Items", []):
            heard = _heard(from_item(item))
            lane = str(item[LANE_ID]["S"])
            if lane not in lanes or heard.at > lanes[lane].at:
                lanes[lane] = heard
    return sharing_lanes(lanes.values(), now, window)


def _heard(mark: Mapping[str, Any]) -> LaneHeard:
    """One journal's last word: its latest advance or checkpoint, whether that checkpoint came
    from a backlog, and whether the watermark has reached its last seq since."""
    checkpoint = float(mark.get(LAST_CHECKPOINT_AT, -math.inf))
    made = mark.get(LAST_CHECKPOINT_MADE_AT)
    behind = made is not None and checkpoint - float(made) >= BEHIND_SECONDS
    last_seq = mark.get(LAST_CHECKPOINT_SEQ)
    caught_up = last_seq is not None and int(mark.get(PROVEN_SEQ, 0)) >= int(last_seq)
    heard_at = max(float(mark.get(UPDATED_AT, -math.inf)), checkpoint)
    return LaneHeard(heard_at, behind, caught_up)


class FairRatePublisher:
    """Writes the fleet's fair rate to its SSM parameter when it differs from what is there."""

    def __init__(
        self,
        ssm: Any,
        store: Store,
        settings: FairRateSettings,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._ssm = ssm
        self._store = store
        self._settings = settings
        self._clock = clock
        self._published_at = -math.inf

    def publish_if_due(self) -> str | None:
        """`publish` unless this instance published within `REPUBLISH_SECONDS` (None)."""
        if self._clock() - self._published_at < REPUBLISH_SECONDS:
            return None
        return self.publish()

    def publish(self) -> str:
        """The value now published (written only if it changed)."""
        settings = self._settings
        now = self._clock()
        self._published_at = now
        lanes = active_lanes(self._store, now, settings.window_seconds)
        value = value_of(fleet_rate(settings, lanes))
        if value != self._current():
            self._ssm.put_parameter(
                Name=settings.parameter, Value=value, Type="String", Overwrite=True
            )
            log.info(
                "cloud.fair_rate_published", parameter=settings.parameter, rate=value, lanes=lanes
            )
        return value

    def _current(self) -> str | None:
        try:
            answer = self._ssm.get_parameter(Name=self._settings.parameter)
        except ClientError as error:
            if error.response.get("Error", {}).get("Code") == NOT_FOUND:
                return None
            raise
        return str(answer["Parameter"]["Value"])


def publisher_from_env(
    env: Mapping[str, str], *, ssm: Any, store: Store
) -> FairRatePublisher | None:
    settings = FairRateSettings.from_env(env)
    return None if settings is None else FairRatePublisher(ssm, store, settings)
