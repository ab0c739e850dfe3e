"""Offline limits: how much may wait undelivered on this lane, and the headroom left.

They apply to the undelivered backlog (what is at risk if the lane burns down), always, not
only while the link is down: a link that looks up but delivers nothing is the same risk. 0 is
no limit. A void is never refused by them (it lowers the risk).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from posd.api_answers import LimitsAnswer
from posd.config import OfflineLimits
from posd.daemon.refusals import (
    AGE_KEY,
    COUNT_KEY,
    OFFLINE_AMOUNT_LIMIT,
    OFFLINE_PENDING_AGE_LIMIT,
    OFFLINE_PENDING_AMOUNT_LIMIT,
    OFFLINE_PENDING_COUNT_LIMIT,
    refuse,
)
from posd.errors import Refusal
from sync.outbox import OutboxSummary
from sync.timestamps import age_seconds


@dataclass(frozen=True)
class Backlog:
    """The undelivered records, as the journal counts them."""

    count: int
    amount_by_currency: Mapping[str, int]
    oldest_age_seconds: float | None


NO_BACKLOG = Backlog(0, {}, None)


def backlog_of(summary: OutboxSummary, now: float) -> Backlog:
    """The backlog of `summary`, its oldest record's age taken at wall time `now` (the
    journal's clock: `Journal.now`)."""
    return Backlog(
        summary.pending,
        dict(summary.pending_amount_by_currency),
        age_seconds(summary.oldest_pending_captured_at, now),
    )


def needs_backlog(offline: OfflineLimits) -> bool:
    """Whether any limit looks at the backlog (the per-payment amount does not)."""
    return bool(
        offline.max_pending_amount or offline.max_pending_count or offline.max_pending_age_seconds
    )


def check_limits(offline: OfflineLimits, backlog: Backlog, amount: int, currency: str) -> None:
    """Raise the first limit that taking this payment would exceed."""
    if offline.max_payment_amount and amount > offline.max_payment_amount:
        raise refuse(
            OFFLINE_AMOUNT_LIMIT,
            f"the amount is above this lane's limit per payment ({offline.max_payment_amount})",
        )
    pending = backlog.amount_by_currency.get(currency, 0)
    if offline.max_pending_amount and pending + amount > offline.max_pending_amount:
        raise refuse(
            OFFLINE_PENDING_AMOUNT_LIMIT,
            f"undelivered {currency} payments would exceed {offline.max_pending_amount}",
        )
    refusal = every_payment_refusal(offline, backlog)
    if refusal is not None:
        raise refusal


def every_payment_refusal(offline: OfflineLimits, backlog: Backlog) -> Refusal | None:
    """The refusal every payment gets from the backlog alone, whatever its amount: the count
    or the age limit used up (`posd status` shows it as the lane's first line)."""
    if offline.max_pending_count and backlog.count + 1 > offline.max_pending_count:
        return refuse(
            OFFLINE_PENDING_COUNT_LIMIT,
            f"{backlog.count} records wait for delivery"
            f" ({COUNT_KEY} = {offline.max_pending_count})",
        )
    age = backlog.oldest_age_seconds
    if (
        offline.max_pending_age_seconds
        and age is not None
        and age > offline.max_pending_age_seconds
    ):
        return refuse(
            OFFLINE_PENDING_AGE_LIMIT,
            f"the oldest undelivered record is {age:.0f} s old"
            f" ({AGE_KEY} = {offline.max_pending_age_seconds:g} s)",
        )
    return None


def headroom(offline: OfflineLimits, backlog: Backlog) -> LimitsAnswer:
    """Each limit and what is left before it refuses (None: no limit)."""

    def left(limit: float, used: float) -> float | None:
        return None if not limit else max(0, limit - used)

    amounts = dict(backlog.amount_by_currency)
    return {
        "max_payment_amount": {"limit": offline.max_payment_amount or None},
        "max_pending_amount": {
            "limit": offline.max_pending_amount or None,
            "headroom_by_currency": {
                currency: left(offline.max_pending_amount, used)
                for currency, used in sorted(amounts.items())
            },
        },
        "max_pending_count": {
            "limit": offline.max_pending_count or None,
            "headroom": left(offline.max_pending_count, backlog.count),
        },
        "max_pending_age_seconds": {
            "limit": offline.max_pending_age_seconds or None,
            "headroom": left(offline.max_pending_age_seconds, backlog.oldest_age_seconds or 0.0),
        },
    }
