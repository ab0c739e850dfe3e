"""What a simulated fleet brings (`bench/fleet.py --simulated`): backlog sizes, when each lane
joins, and changes of the account's quota.

- `uniform`: every lane has `--backlog` records (the real run's storm).
- `varied`: a heavy-tailed mix: most lanes a short outage's worth, some a few hours' and a
  few a whole day's payments (`VARIED_MIX`).

Lanes join at random moments over `--join-over` seconds (0: all at once: the VPN comes back
for the whole region), and `--quota-change AT:RATE` changes the account's quota at AT seconds
(another producer takes its share, or a raise is granted).
"""

from __future__ import annotations

import random

from bench.fleet_sim import Scenario

UNIFORM, VARIED = "uniform", "varied"
MIXES = (UNIFORM, VARIED)
# (share of lanes, fewest records, most records): most lanes small, a few with a day's
# payments (a busy lane takes about a thousand a day).
VARIED_MIX = ((0.80, 1, 40), (0.15, 40, 200), (0.05, 500, 1_500))


def backlogs(mix: str, terminals: int, backlog: int, rng: random.Random) -> list[int]:
    if mix == UNIFORM:
        return [backlog] * terminals
    sizes: list[int] = []
    for share, fewest, most in VARIED_MIX:
        sizes.extend(rng.randint(fewest, most) for _ in range(round(share * terminals)))
    sizes = sizes[:terminals] + [VARIED_MIX[0][1]] * (terminals - len(sizes))
    rng.shuffle(sizes)
    return sizes


def quota_change(text: str) -> tuple[float, float]:
    """`AT:RATE` (seconds, entries/s), as given on the command line."""
    at, _, rate = text.partition(":")
    moment, value = float(at), float(rate)
    if moment < 0 or value <= 0:
        raise ValueError(f"quota change {text!r}: AT must be >= 0 and RATE > 0")
    return moment, value


def scenario(
    mix: str,
    terminals: int,
    backlog: int,
    quota: float,
    join_over: float,
    quota_changes: list[tuple[float, float]],
    seed: int,
) -> Scenario:
    rng = random.Random(seed)
    joins = sorted(rng.uniform(0.0, join_over) for _ in range(terminals)) if join_over else []
    return Scenario(
        backlogs(mix, terminals, backlog, rng),
        joins or [0.0] * terminals,
        quota,
        tuple(sorted(quota_changes)),
    )
