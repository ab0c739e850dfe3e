"""The fair rate a chain publishes for each lane: one SSM parameter, read when the engine
starts and when its link comes back, so a reconnecting fleet starts from its share of the
account's PutEvents quota instead of probing up to it from scratch.

The parameter's value is a plain decimal number of entries/s (`wire.fair_rate`, the contract
with whoever publishes it).

Reading never raises into the engine and never holds it long: the client makes one attempt
with short connect and read timeouts (a refused connection is answered at once, a stalled
endpoint after `FAIR_RATE_READ_TIMEOUT_SECONDS`); a value is kept for `refresh_seconds`
(a flapping link does not ask again at every reconnect, and 10,000 lanes reconnecting do not
each ask twice); a failed read (missing, refused, throttled, unreachable, malformed) gives the
last good value while it is younger than `max_age_seconds`, else None (the engine then starts
from its settings), with a warning when the failure changes, not per read.

Endpoint: an explicit `endpoint_url` (`[aws] ssm_endpoint_url`, else `[aws] endpoint_url`),
then boto3's own resolution (`AWS_ENDPOINT_URL_SSM`, `AWS_ENDPOINT_URL`, the shared config);
in a store, the SSM interface endpoint over the VPN (its private DNS answers the public name).
"""

from __future__ import annotations

import math
import string
import threading
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import structlog
from botocore.exceptions import BotoCoreError, ClientError

from sync.aws_reads import MALFORMED, failure_of, read_client_config, side_read_client
from sync.errors import FairRateError
from wire.fair_rate import DECIMAL_PATTERN, MAX_FAIR_RATE, rate_of

if TYPE_CHECKING:
    import boto3

__all__ = [
    "DECIMAL_PATTERN",
    "MALFORMED",
    "MAX_FAIR_RATE",
    "FairRateParameter",
    "PublishedFairRate",
    "make_fair_rate_client",
    "parse_fair_rate",
    "valid_parameter_name",
]

# Short: the read runs on the engine's driver when the link comes back. One attempt holds it
# at most connect + read timeout; a loopback or VPC endpoint answers in milliseconds.
FAIR_RATE_CONNECT_TIMEOUT_SECONDS = 1.0
FAIR_RATE_READ_TIMEOUT_SECONDS = 2.0
# A value read is kept this long; a failed read is tried again after as long.
DEFAULT_REFRESH_SECONDS = 300.0
# A fleet's size and the account's quota change over days: a rate read before an outage of
# hours is still a better start than none, one a day old is not trusted.
DEFAULT_MAX_AGE_SECONDS = 86400.0
# SSM's rules for a parameter's name (PutParameter's naming constraints): these characters, a
# leading '/' for a name in a hierarchy, at most 15 levels and 1011 characters, never starting
# with "aws" or "ssm" (any case). A name, not an ARN.
PARAMETER_NAME_CHARS = frozenset(string.ascii_letters + string.digits + "_.-/")
PARAMETER_NAME_MAX = 1011
PARAMETER_MAX_DEPTH = 15
RESERVED_PREFIXES = ("aws", "ssm")
PARAMETER_NAME_RULES = (
    f"an SSM parameter name: letters, digits, '_', '.', '-', and '/' between levels of a "
    f"name starting with '/' (at most {PARAMETER_MAX_DEPTH} levels, {PARAMETER_NAME_MAX} "
    "characters), not starting with 'aws' or 'ssm'"
)

log = structlog.get_logger("posd.sync")


def valid_parameter_name(name: str) -> bool:
    """Whether SSM would take `name` as a parameter's name (`PARAMETER_NAME_RULES`)."""
    levels = name.removeprefix("/").split("/")
    return (
        0 < len(name) <= PARAMETER_NAME_MAX
        and set(name) <= PARAMETER_NAME_CHARS
        and (len(levels) == 1 or name.startswith("/"))
        and len(levels) <= PARAMETER_MAX_DEPTH
        and all(levels)
        and not levels[0].lower().startswith(RESERVED_PREFIXES)
    )


def parse_fair_rate(text: str) -> float:
    """The rate `text` states; `FairRateError` (`malformed`) unless it is a plain decimal
    number above 0 and at most `MAX_FAIR_RATE` (`wire.fair_rate.rate_of`)."""
    rate = rate_of(text)
    if rate is None:
        raise FairRateError(
            MALFORMED,
            f"{MALFORMED}: {text[:40]!r} is not a rate (a plain decimal number of entries/s, "
            f"above 0 and at most {MAX_FAIR_RATE:g})",
        )
    return rate


def make_fair_rate_client(
    *,
    region: str | None = None,
    endpoint_url: str | None = None,
    session: boto3.Session | None = None,
) -> Any:
    """An SSM client for the fair rate's reads: short timeouts, no SDK retries."""
    config = read_client_config(FAIR_RATE_CONNECT_TIMEOUT_SECONDS, FAIR_RATE_READ_TIMEOUT_SECONDS)
    return side_read_client(
        "ssm", config, region=region, endpoint_url=endpoint_url, session=session
    )


class FairRateParameter:
    """The SSM parameter a chain publishes the per-lane fair rate in."""

    def __init__(self, client: Any, name: str) -> None:
        self._client = client
        self._name = name

    @property
    def name(self) -> str:
        return self._name

    def read(self) -> float:
        """One `GetParameter`; `FairRateError` naming why there is no rate."""
        try:
            answer = self._client.get_parameter(Name=self._name)
        except (ClientError, BotoCoreError) as error:
            raise FairRateError(*failure_of(error)) from None
        return parse_fair_rate(str(answer.get("Parameter", {}).get("Value", "")))


class PublishedFairRate:
    """The engine's `fair_rate`: the published rate, cached, or None when none is known.
    Never raises. Thread-safe: the driver reads it at a reconnect, a background thread while
    draining (`sync.fair_rate_refresh`)."""

    def __init__(
        self,
        parameter: FairRateParameter,
        *,
        refresh_seconds: float = DEFAULT_REFRESH_SECONDS,
        max_age_seconds: float = DEFAULT_MAX_AGE_SECONDS,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._parameter = parameter
        self._refresh_seconds = refresh_seconds
        self._max_age_seconds = max_age_seconds
        self._clock = clock
        self._rate: float | None = None
        self._read_at = -math.inf  # when the last good value was read
        self._next_read_at = -math.inf
        self._failure: str | None = None  # kind of the current failure, to log changes only
        self._lock = threading.Lock()

    def __call__(self) -> float | None:
        with self._lock:
            now = self._clock()
            if now >= self._next_read_at:
                self._next_read_at = now + self._refresh_seconds
                self._read(now)
            if now - self._read_at > self._max_age_seconds:
                return None
            return self._rate

    def _read(self, now: float) -> None:
        try:
            rate = self._parameter.read()
        except FairRateError as error:
            self._failed(error.kind, str(error))
        except Exception as error:  # noqa: BLE001 - a bug in the client stack must not reach
            # the engine: it is reported like any failed read.
            self._failed(type(error).__name__, f"{type(error).__name__}: {error}")
        else:
            if self._failure is not None or self._rate is None:
                log.info("sync.fair_rate_available", parameter=self._parameter.name, rate=rate)
            self._rate, self._read_at, self._failure = rate, now, None

    def _failed(self, kind: str, error: str) -> None:
        if kind != self._failure:
            log.warning(
                "sync.fair_rate_unavailable",
                parameter=self._parameter.name,
                kind=kind,
                error=error,
                kept=self._rate,
            )
        self._failure = kind
