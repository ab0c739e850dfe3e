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
from collections.abc import Iterable
from typing import NamedTuple

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


# Who shares the quota: the counting rule of the consumer's publisher (`cloud.fair_rate`) and
# of the fleet simulator's (`bench/fleet_sim.py`), one function so both count alike.
#
# The rate serves two readers at once: a lane (re)connecting, which must not read a share
# meant for few lanes while its whole region comes back with it, and a lane draining, which
# should get the share the lanes that finished left. So every lane heard within the day
# counts (a lane quiet for hours may be cut off and come back with a backlog), except a lane
# seen to have drained: its latest checkpoint came from a backlog (made `BEHIND_SECONDS` or
# more before it arrived) and nothing came since for `DRAINED_AFTER_SECONDS`. A lane caught
# up sends its checkpoints as it makes them, so a quiet lane in steady state keeps counting:
# the rate a region reads when it reconnects is the day-long count's. A drained lane counts
# again once a checkpoint comes live or after `DRAINED_FOR_SECONDS`.
#
# A lane is seen to have drained at once, without the silence, when its watermark reaches the
# last seq of its latest checkpoint and that checkpoint came from a backlog (`caught_up`): the
# side lane sends a backlog's checkpoints ahead of its records (they are few, and go back to
# back), so the watermark meets the latest one only when the lane has delivered all it told of
# (a tail since then is what it sells while draining). bench/fleet.py --simulated, 10,000 lanes
# of varied backlogs: drain 1.17 -> 1.14 of the ideal, slowest over median 1.89 -> 1.49.
BEHIND_SECONDS = 60.0
# Silent this long after a backlog's checkpoint, a lane has drained. A lane draining slowly
# proves a range only every 100 records (200 s at 0.5 entries/s) and is taken for drained in
# between: the others read a little more than their share until it is heard again. Shorter
# follows the lanes that finish sooner (bench/fleet.py --simulated, 10,000 lanes of varied
# backlogs, drain / ideal and throttled: 20 s 1.18 and 2.0%, 45 s 1.15 and 1.8%, 90 s 1.22
# and 1.9%; joining over a minute through a quota cut, 3.9%, 2.5% and 2.1% throttled).
DRAINED_AFTER_SECONDS = 45.0
DRAINED_FOR_SECONDS = 3600.0


class LaneHeard(NamedTuple):
    """What the consumer knows of a lane: when it last heard from it (a watermark moved or a
    checkpoint came), whether its latest checkpoint came from a backlog, and whether its
    watermark has since reached that checkpoint's last seq (`caught_up`)."""

    at: float
    behind: bool
    caught_up: bool = False


def sharing_lanes(
    lanes: Iterable[LaneHeard],
    now: float,
    window: float,
    *,
    drained_after: float = DRAINED_AFTER_SECONDS,
    drained_for: float = DRAINED_FOR_SECONDS,
) -> int:
    """How many of `lanes` share the quota at `now`: heard within `window`, and not seen to
    have drained (behind, then caught up or silent for more than `drained_after`, for up to
    `drained_for`)."""
    count = 0
    for lane in lanes:
        silent = now - lane.at
        quiet = lane.caught_up or drained_after < silent
        drained = lane.behind and quiet and silent <= drained_for
        count += silent <= window and not drained
    return count
