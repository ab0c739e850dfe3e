"""The fair rate the consumer publishes for the lanes (posd's `[sync] fair_rate_parameter`):
the share of the account's PutEvents quota the chain gives posd, divided among the lanes that
delivered within the window, never below a floor, written to the stack's SSM parameter when it
changes (on the function's 5-minute schedule).

Why a day and not the last few minutes: lanes read the rate when their link comes back, after
an outage in which they delivered nothing. Counted over minutes, the lanes of a region that
was cut off would be missing from the count exactly when they all reconnect, and each would
read a share meant for far fewer lanes. Over a day, a lane offline for hours still counts.
A lane counts when one of its journals' watermark items (`cloud.watermarks`) moved
(`updated_at`: a range proven) or got a checkpoint (`last_checkpoint_at`) within the window:
both follow its deliveries. Counting scans the watermarks table (a few items per lane: 10,000
lanes are a few MB, read every 5 minutes).
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
from cloud.store import Store, to_item
from cloud.watermarks import LAST_CHECKPOINT_AT
from wire.fair_rate import MIN_FAIR_RATE, value_of
from wire.watermark import LANE_ID, UPDATED_AT

DEFAULT_SHARE = 0.5  # the rest of the quota is the chain's other producers'
DEFAULT_FLOOR = 0.1  # entries/s: a lane still delivers a payment every 10 s
DEFAULT_WINDOW_SECONDS = 86400.0
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


def active_lanes(store: Store, since: float) -> int:
    """How many lanes delivered since `since` (a watermark moved or a checkpoint came)."""
    pages = store.dynamodb.get_paginator("scan").paginate(
        TableName=store.tables.watermarks,
        ProjectionExpression="#l",
        FilterExpression="#u >= :s OR #t >= :s",
        ExpressionAttributeNames={"#l": LANE_ID, "#u": UPDATED_AT, "#t": LAST_CHECKPOINT_AT},
        ExpressionAttributeValues=to_item({":s": int(since)}),
    )
    return len({item[LANE_ID]["S"] for page in pages for item in page.get("Items", [])})


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

    def publish(self) -> str:
        """The value now published (written only if it changed)."""
        settings = self._settings
        lanes = active_lanes(self._store, self._clock() - settings.window_seconds)
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
