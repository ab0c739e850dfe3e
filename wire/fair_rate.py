"""The fair rate's value: the contract between whoever publishes it in SSM Parameter Store
(the chain by hand or from its template, or the consumer, `cloud.fair_rate`) and the lanes
that read it (`sync.fair_rate`).

A plain decimal number, each lane's share of the account's PutEvents quota in entries/s
(`2.5`): what `aws ssm put-parameter` and a CloudFormation `AWS::SSM::Parameter` write as they
are, and what an operator reads at a glance. No timestamp in the value: SSM keeps the
parameter's last-modified date itself, and a rate set by hand months ago is as valid as one
published a minute ago (the publisher, not the reader, knows whether it is current).
"""

from __future__ import annotations

import math
import re

# Digits, optionally a point and more digits: no sign, exponent, '_', 'nan' or 'inf', all of
# which Python's float() would take. The template's parameter allows the same (SSM refuses a
# put that does not match).
DECIMAL_PATTERN = r"[0-9]+(\.[0-9]+)?"
_DECIMAL = re.compile(DECIMAL_PATTERN)
# The largest default PutEvents quota of any region (entries/s, per account): one lane's share
# above the whole account's is a mistake in the value (a per-minute figure, a lost point).
MAX_FAIR_RATE = 10_000.0
# What a publisher writes: a thousandth of an entry per second is finer than any lane paces.
PUBLISHED_DECIMALS = 3
MIN_FAIR_RATE = 10.0**-PUBLISHED_DECIMALS


def rate_of(text: str) -> float | None:
    """The rate `text` states (surrounding whitespace ignored), or None unless it is a plain
    decimal number above 0 and at most `MAX_FAIR_RATE`."""
    stripped = text.strip()
    rate = float(stripped) if _DECIMAL.fullmatch(stripped) else math.nan
    return rate if 0 < rate <= MAX_FAIR_RATE else None  # nan fails too


def value_of(rate: float) -> str:
    """`rate` as a publisher writes it, held within what a lane accepts (`MIN_FAIR_RATE` to
    `MAX_FAIR_RATE`); `ValueError` for a rate that is not a finite number."""
    if not math.isfinite(rate):
        raise ValueError(f"a fair rate must be a finite number, got {rate!r}")
    held = min(max(rate, MIN_FAIR_RATE), MAX_FAIR_RATE)
    return f"{held:.{PUBLISHED_DECIMALS}f}".rstrip("0").rstrip(".")
