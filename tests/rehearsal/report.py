"""A rehearsal's report: one row per simulated hour of the outage, the hour each limit first
refused, a table a store chain can read and a plot (bench/results/)."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from tests.rehearsal.lane_day import HOUR_S

CENTS = 100


@dataclass(frozen=True)
class Attempt:
    """One payment the register asked for, and how it ended (times simulated)."""

    scheduled: float
    answered: float
    amount_minor: int
    status: int
    code: str | None  # the refusal's code; None when taken


@dataclass(frozen=True)
class Sample:
    """The lane as `GET /v1/status` showed it at a simulated time (None: no answer)."""

    at: float
    pending_count: int | None
    pending_amount_minor: int | None
    oldest_age_seconds: float | None
    journal_bytes: int
    key_source: str | None


def _hour_of(at: float, start: float) -> int:
    return int((at - start) // HOUR_S)


def hourly(
    start: float,
    hours: int,
    attempts: list[Attempt],
    samples: list[Sample],
    keys_by_hour: dict[int, set[str]],
) -> list[dict[str, Any]]:
    """Per hour since `start`: payments taken and refused (by code) in it, and the lane at
    its end (the last sample taken in it)."""
    rows = []
    for hour in range(hours):
        within = [a for a in attempts if _hour_of(a.answered, start) == hour]
        refused = Counter(a.code for a in within if a.code is not None)
        seen = [s for s in samples if _hour_of(s.at, start) == hour]
        last = seen[-1] if seen else None
        at = datetime.fromtimestamp(start + hour * HOUR_S, tz=UTC)
        rows.append(
            {
                "hour": hour,
                "clock": at.strftime("%a %H:%M"),
                "taken": sum(1 for a in within if a.status == 201),
                "taken_amount_minor": sum(a.amount_minor for a in within if a.status == 201),
                "refused": dict(sorted(refused.items())),
                "backlog_count": None if last is None else last.pending_count,
                "backlog_amount_minor": None if last is None else last.pending_amount_minor,
                "oldest_pending_age_seconds": None if last is None else last.oldest_age_seconds,
                "journal_bytes": None if last is None else last.journal_bytes,
                "data_keys": len(keys_by_hour.get(hour, ())),
                "key_source": None if last is None else last.key_source,
            }
        )
    return rows


def first_refusals(start: float, attempts: list[Attempt]) -> dict[str, float]:
    """Each refusal code and when (hours since `start`, simulated) it first refused."""
    first: dict[str, float] = {}
    for attempt in sorted(attempts, key=lambda a: a.answered):
        if attempt.code is not None and attempt.code not in first:
            first[attempt.code] = round((attempt.answered - start) / HOUR_S, 4)
    return first


def _cell(value: Any) -> str:
    return "-" if value is None else str(value)


def table(rows: list[dict[str, Any]]) -> str:
    """The hourly rows as a fixed-width text table (amounts in major units)."""
    head = (
        f"{'hour':>4} {'clock':>9} {'taken':>5} {'refused':>7} {'backlog':>7} "
        f"{'EUR':>9} {'oldest h':>8} {'journal KiB':>11} {'keys':>4}"
    )
    lines = [head]
    for row in rows:
        amount = row["backlog_amount_minor"]
        age = row["oldest_pending_age_seconds"]
        size = row["journal_bytes"]
        lines.append(
            f"{row['hour']:>4} {row['clock']:>9} {row['taken']:>5} "
            f"{sum(row['refused'].values()):>7} {_cell(row['backlog_count']):>7} "
            f"{_cell(None if amount is None else amount // CENTS):>9} "
            f"{_cell(None if age is None else round(age / HOUR_S, 1)):>8} "
            f"{_cell(None if size is None else size // 1024):>11} {row['data_keys']:>4}"
        )
    return "\n".join(lines)


def plot(rows: list[dict[str, Any]], limits: dict[str, Any], path: Path, title: str) -> str:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    path.parent.mkdir(parents=True, exist_ok=True)
    hours = [row["hour"] for row in rows]
    figure, (sales, backlog, age) = plt.subplots(3, 1, figsize=(11, 9), sharex=True)
    refused = [sum(row["refused"].values()) for row in rows]
    sales.bar(hours, [row["taken"] for row in rows], color="tab:green", label="taken")
    sales.bar(
        hours, refused, bottom=[row["taken"] for row in rows], color="tab:red", label="refused"
    )
    sales.set_ylabel("payments / hour")
    sales.legend(loc="upper left")
    amounts = [_major(row["backlog_amount_minor"]) for row in rows]
    backlog.plot(hours, amounts, color="tab:blue", label="backlog (EUR)")
    if limits.get("max_pending_amount"):
        backlog.axhline(
            limits["max_pending_amount"] / CENTS, linestyle=":", color="tab:blue", label="limit"
        )
    backlog.set_ylabel("undelivered EUR")
    backlog.legend(loc="upper left")
    ages = [_hours(row["oldest_pending_age_seconds"]) for row in rows]
    age.plot(hours, ages, color="tab:orange", label="oldest pending (h)")
    if limits.get("max_pending_age_seconds"):
        age.axhline(limits["max_pending_age_seconds"] / HOUR_S, linestyle=":", color="tab:orange")
    age.set_ylabel("hours")
    age.set_xlabel("hours since the WAN went down (simulated)")
    age.legend(loc="upper left")
    figure.suptitle(title)
    figure.tight_layout()
    figure.savefig(path)
    plt.close(figure)
    return str(path)


def _major(minor: int | None) -> float | None:
    return None if minor is None else minor / CENTS


def _hours(seconds: float | None) -> float | None:
    return None if seconds is None else seconds / HOUR_S
