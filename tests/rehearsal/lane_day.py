"""A register paced like a real lane: a day's curve of payments, quiet mornings, lunch and
evening peaks, closed at night, as a seeded schedule of (simulated time, amount).

The curve is a supermarket lane's: open 07:00-22:00 (UTC in the rehearsal), `per_day`
payments a day spread over the hours by `HOURLY_WEIGHTS`, each hour a Poisson process;
amounts log-normal around `MEAN_AMOUNT_MINOR` (a basket of about 35 EUR, a few above
100 EUR).
"""

from __future__ import annotations

import math
import random
from dataclasses import dataclass

HOUR_S = 3600.0
DAY_S = 24 * HOUR_S
# Payments per hour of the day, relative: 0 while closed.
HOURLY_WEIGHTS = (
    0, 0, 0, 0, 0, 0, 0,  # 00-06 closed
    2, 4, 5, 6, 9, 12, 10, 6, 5, 6, 10, 12, 8, 5, 3,  # 07-21
    0, 0,  # 22-23 closed
)  # fmt: skip
OPEN_HOUR, CLOSE_HOUR = 7, 22
PAYMENTS_PER_DAY = 400  # a busy supermarket lane
MEAN_AMOUNT_MINOR = 3500
AMOUNT_SIGMA = 0.8
MIN_AMOUNT_MINOR = 50
MAX_AMOUNT_MINOR = 50_000


@dataclass(frozen=True)
class Payment:
    at: float  # simulated epoch seconds
    amount_minor: int


def hourly_rate(hour_of_day: int, per_day: float = PAYMENTS_PER_DAY) -> float:
    """Expected payments in that hour of the day."""
    return per_day * HOURLY_WEIGHTS[hour_of_day] / sum(HOURLY_WEIGHTS)


def amount(rng: random.Random) -> int:
    mu = math.log(MEAN_AMOUNT_MINOR) - AMOUNT_SIGMA**2 / 2  # the log-normal's mean is the mean
    return max(MIN_AMOUNT_MINOR, min(MAX_AMOUNT_MINOR, round(rng.lognormvariate(mu, AMOUNT_SIGMA))))


def schedule(
    start: float, end: float, seed: int, per_day: float = PAYMENTS_PER_DAY
) -> list[Payment]:
    """The payments between `start` and `end` (simulated epoch seconds), in time order."""
    rng = random.Random(seed)
    payments: list[Payment] = []
    hour = math.floor(start / HOUR_S) * HOUR_S
    while hour < end:
        rate = hourly_rate(int(hour % DAY_S // HOUR_S), per_day)
        at = hour + (rng.expovariate(rate / HOUR_S) if rate else HOUR_S)
        while at < hour + HOUR_S:
            if start <= at < end:
                payments.append(Payment(at, amount(rng)))
            at += rng.expovariate(rate / HOUR_S)
        hour += HOUR_S
    return payments
