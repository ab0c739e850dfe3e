"""The long-outage rehearsal: `python -m tests.rehearsal.rehearse [--hours 72]` (`make
rehearse`).

The lane's real daemons (`posd run`, `posd sync run`) on a rehearsal clock (sync/clock.py)
`--speed` times faster than real: a warm-up online (the offline public key gets cached), then
the AWS side refused for `--hours` simulated hours while a register pays on a lane's day
(lane_day.py), the daemons restarted every night at 03:00 and SIGKILLed a few times (each
started again at once, as systemd would). The outage ends at 12:30, in a lunch rush: the link
comes back, the clock goes on at the real pace, and the register pays every `RUSH_INTERVAL_S`
while the backlog drains. Then everything is checked as the chaos soak checks it (the queue
read and decrypted as the backend would): lost 0, duplicates in effect 0.

Prints the hourly table, then one JSON summary; writes the plot to bench/results/. Exit 1 on
any broken invariant. Timing is a rehearsal's: a payment or a restart costs real
milliseconds, that is `--speed` times as many simulated ones (a restart is about half an
hour of a closed lane), and timers resolve to `MIN_REAL_WAIT_S * speed` simulated seconds.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import subprocess
import sys
import threading
import time
import tomllib
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from cloud.kms import KmsUnwrapper
from posd.journal.files import JOURNAL_FILE, size_on_disk
from sync.clock import RehearsalClock
from sync.timestamps import parse_rfc3339
from tests.chaos import checks
from tests.chaos.consumer import QueueConsumer
from tests.chaos.register import METHOD_WEIGHTS, METHODS, NO_ANSWER, Register, exchange
from tests.chaos.soak import CLI_TIMEOUT_S, RECEIVE_TIMEOUT_S, flush, run_in, wait_for_file
from tests.posd.daemon.harness import REPO
from tests.rehearsal.lane_day import DAY_S, HOUR_S, schedule
from tests.rehearsal.report import Attempt, Sample, first_refusals, hourly, plot, table
from tests.rehearsal.rig import CURRENCY, RehearsalRig
from wire.keys import CachingUnwrapper

DEFAULT_HOURS = 72
DEFAULT_SPEED = 1000.0
LINK_BACK_HOUR = 12.5  # 12:30 UTC, in the lunch rush
WARMUP_S = 2 * HOUR_S  # simulated, online, before the outage
RESTART_HOUR = 3  # the nightly restart (SIGTERM both, start both)
KILLS = (("capture", 0.35), ("delivery", 0.55), ("capture", 0.8))  # when, in the outage
RUSH_INTERVAL_S = 2.0  # real seconds between payments while the backlog drains
RUSH_AMOUNT_MINOR = 3500
TAKEN = "taken"
DRAIN_TIMEOUT_S = 600.0
DRAIN_POLL_S = 0.5
STATUS_TIMEOUT_S = 5.0
SAMPLE_EARLY_S = 60.0  # each hour's figures a simulated minute before it ends
PROBE_MAX_SECONDS = 60.0  # the production default: a lane notices the link within a minute
RESULTS = REPO / "bench" / "results"
CONFIG = REPO / "config" / "posd.toml"
LIMIT_KEYS = (
    "max_payment_amount",
    "max_pending_amount",
    "max_pending_count",
    "max_pending_age_seconds",
)


def default_limits() -> dict[str, Any]:
    """`config/posd.toml`'s `[offline]` limits: the defaults under rehearsal."""
    with CONFIG.open("rb") as handle:
        return dict(tomllib.load(handle)["offline"])


def link_back_at(now: float) -> float:
    """The latest 12:30 UTC before `now` (simulated times stay in the past)."""
    midnight = now - now % DAY_S
    at = midnight + LINK_BACK_HOUR * HOUR_S
    return at if at <= now else at - DAY_S


class Till(Register):
    """The chaos register's retries (the same client_ref until answered), one payment at a
    time, of the amount the lane's day says."""

    def __init__(self, sock: Path, seed: int) -> None:
        super().__init__(sock, seed)
        self.index = 0

    def pay(self, amount_minor: int) -> tuple[int, str | None]:
        self.index += 1
        ref = f"rehearse-{self.index:06d}"
        body = {
            "client_ref": ref,
            "amount_minor": amount_minor,
            "currency": CURRENCY,
            "method": self._rng.choices(METHODS, METHOD_WEIGHTS)[0],
            "timeout_s": 5,
        }
        self.log.payments += 1
        status, answer = self._until_answered(ref, "POST", "/v1/payments", body)
        if status == 201:
            self._acknowledge(ref, answer)
            return status, None
        code = str(answer.get("error")) if isinstance(answer, dict) else str(status)
        self.log.refusals[code] = self.log.refusals.get(code, 0) + 1
        return status, code


@dataclass
class Run:
    clock: RehearsalClock
    outage_start: float
    outage_end: float
    rig: RehearsalRig
    till: Till
    attempts: list[Attempt] = field(default_factory=list)
    samples: list[Sample] = field(default_factory=list)
    kills: list[str] = field(default_factory=list)
    restarts: int = 0
    late_payments: int = 0

    def wait_until(self, at: float) -> None:
        left = at - self.clock.time()
        if left > 0:
            time.sleep(self.clock.real_seconds(left))

    def pay(self, scheduled: float, amount_minor: int) -> None:
        if self.clock.time() - scheduled > HOUR_S / 4:
            self.late_payments += 1
        status, code = self.till.pay(amount_minor)
        self.attempts.append(Attempt(scheduled, self.clock.time(), amount_minor, status, code))

    def sample(self, at: float) -> None:
        """The lane's figures, filed under `at` (the scheduled time: a payment in hand may
        delay the question a simulated minute or two)."""
        try:
            status, body, _ = exchange(
                self.rig.socket, "GET", "/v1/status", None, timeout=STATUS_TIMEOUT_S
            )
        except NO_ANSWER:
            status, body = 0, {}
        pending = body.get("pending", {}) if status == 200 else {}
        self.samples.append(
            Sample(
                at,
                pending.get("count"),
                pending.get("amount_by_currency", {}).get(CURRENCY, 0) if pending else None,
                pending.get("oldest_age_seconds"),
                size_on_disk(self.rig.state_dir / JOURNAL_FILE),
                body.get("key_source"),
            )
        )

    def act(self, what: str) -> None:
        if what == "restart":
            self.rig.terminate()
            self.rig.start()
            self.restarts += 1
        elif what == "kill capture":
            self.rig.kill_capture()
            self.rig.start_capture()
            self.kills.append("capture")
        elif what == "kill delivery":
            self.rig.kill_delivery()
            self.rig.start_delivery()
            self.kills.append("delivery")


def timeline(start: float, end: float, seed: int, per_day: float) -> list[tuple[float, str, int]]:
    """Everything the outage holds, in time order: (simulated time, action, amount)."""
    events = [(p.at, "pay", p.amount_minor) for p in schedule(start, end, seed, per_day)]
    ends = [start + h * HOUR_S for h in range(1, math.ceil((end - start) / HOUR_S) + 1)]
    events += [(at - SAMPLE_EARLY_S, "sample", 0) for at in ends]
    night = start - start % DAY_S + RESTART_HOUR * HOUR_S
    while night < end:
        if night > start:
            events.append((night, "restart", 0))
        night += DAY_S
    events += [(start + share * (end - start), f"kill {which}", 0) for which, share in KILLS]
    return sorted(events, key=lambda e: (e[0], e[1] != "sample"))


def technician_status(rig: RehearsalRig) -> str:
    """What `posd status` tells a technician at the end of the outage (its text)."""
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    command = [sys.executable, "-m", "posd", "status", "--config", str(rig.config)]
    try:
        done = subprocess.run(
            command, env=env, capture_output=True, timeout=CLI_TIMEOUT_S, check=False
        )
    except subprocess.TimeoutExpired:
        return "(posd status did not answer)"
    return done.stdout.decode(errors="replace")


def drain(run: Run) -> tuple[float | None, dict[str, int]]:
    """Link back, a lunch rush paying while the backlog drains: seconds until everything
    captured before the link came back is delivered (None: not within DRAIN_TIMEOUT_S), and
    how the payments asked meanwhile ended (taken, or the refusal's code)."""
    rig = run.rig
    rig.events.up()
    rig.kms.up()
    back = time.monotonic()
    halt = threading.Event()
    ended: dict[str, int] = defaultdict(int)

    def rush() -> None:
        while not halt.wait(RUSH_INTERVAL_S):
            _, code = run.till.pay(RUSH_AMOUNT_MINOR)
            ended[code or TAKEN] += 1

    rusher = threading.Thread(target=rush, name="rush", daemon=True)
    rusher.start()
    drained = None
    while time.monotonic() - back < DRAIN_TIMEOUT_S:
        try:
            _, body, _ = exchange(rig.socket, "GET", "/v1/status", None, timeout=STATUS_TIMEOUT_S)
        except NO_ANSWER:
            body = {}
        age = body.get("pending", {}).get("oldest_age_seconds", -1.0)
        if age is None or (age >= 0 and age <= time.monotonic() - back):
            drained = round(time.monotonic() - back, 1)
            break
        time.sleep(DRAIN_POLL_S)
    halt.set()
    rusher.join()
    return drained, dict(sorted(ended.items()))


def rehearse(
    hours: float, speed: float, seed: int, work: Path, limits: dict[str, Any], per_day: float
) -> dict[str, Any]:
    started = time.monotonic()
    violations: list[str] = []
    outage_end = link_back_at(time.time())
    outage_start = outage_end - hours * HOUR_S
    clock = RehearsalClock(outage_start - WARMUP_S, time.monotonic(), speed, outage_end)
    probe_max = min(PROBE_MAX_SECONDS, max(1.0, hours))  # a short rehearsal probes sooner
    with RehearsalRig(work, clock, limits, probe_max) as rig:
        rig.start()
        if not wait_for_file(
            rig.state_dir / "kms-offline-public-key.json", clock.real_seconds(WARMUP_S)
        ):
            violations.append("the offline public key was not cached during the warm-up")
        assert rig.route is not None
        consumer = QueueConsumer(rig.client("sqs"), rig.route.queue_url)
        consumer.start()
        run = Run(clock, outage_start, outage_end, rig, Till(rig.socket, seed))
        run.wait_until(outage_start)
        rig.events.cut()
        rig.kms.cut()
        run.sample(outage_start)
        for at, what, amount in timeline(outage_start, outage_end, seed, per_day):
            run.wait_until(at)
            if what == "pay":
                run.pay(at, amount)
            elif what == "sample":
                run.sample(at)
            else:
                run.act(what)
        outage_real_s = round(time.monotonic() - started, 1)
        technician = technician_status(rig)
        drain_s, rush = drain(run)
        if drain_s is None:
            violations.append(f"the backlog did not drain within {DRAIN_TIMEOUT_S} s")
        flushed = flush(rig)
        if not flushed.get("completed"):
            violations.append(f"the backlog was not flushed: {flushed}")
        if rig.terminate():
            violations.append("capture did not exit 0 on SIGTERM")
        verdict = verify(rig, consumer, run.till, outage_start)
        violations += verdict.pop("violations")
    first = first_refusals(outage_start, run.attempts)
    rows = hourly(
        outage_start, math.ceil(hours), run.attempts, run.samples, verdict.pop("keys_by_hour")
    )
    return {
        "hours": hours,
        "speed": speed,
        "seed": seed,
        "payments_per_day": per_day,
        "limits": limits,
        "outage": {"from": outage_start, "to": outage_end},
        "real_seconds": round(time.monotonic() - started, 1),
        "outage_real_seconds": outage_real_s,
        "payments": len(run.attempts),
        "taken": sum(1 for a in run.attempts if a.status == 201),
        "taken_amount_minor": sum(a.amount_minor for a in run.attempts if a.status == 201),
        "refused": dict(sorted(Counter(a.code for a in run.attempts if a.code).items())),
        "first_refused_hour": first,
        "first_taken_hour": first_taken_hour(outage_start, run.attempts),
        "late_payments": run.late_payments,
        "restarts": run.restarts,
        "kills": run.kills,
        "drain_seconds": drain_s,
        "status_before_link_back": technician,
        "drain_rush": rush,
        "peak_backlog_count": max((s.pending_count or 0 for s in run.samples), default=0),
        "peak_backlog_amount_minor": max(
            (s.pending_amount_minor or 0 for s in run.samples), default=0
        ),
        "peak_journal_bytes": max((s.journal_bytes for s in run.samples), default=0),
        **verdict,
        "hourly": rows,
        "violations": violations,
        "ok": not violations,
    }


def first_taken_hour(start: float, attempts: list[Attempt]) -> float | None:
    """When the first payment taken in the outage was asked for (hours since `start`): the
    oldest pending record, whose age the age limit watches, was stamped after it."""
    taken = [a.scheduled for a in attempts if a.status == 201]
    return round((min(taken) - start) / HOUR_S, 4) if taken else None


def verify(
    rig: RehearsalRig, consumer: QueueConsumer, till: Till, outage_start: float
) -> dict[str, Any]:
    """The chaos soak's invariants on what the journal holds and the queue received; the
    data keys each hour's records were sealed with."""
    rows = checks.journal_rows(rig.state_dir / JOURNAL_FILE)
    unwrapper = CachingUnwrapper(
        KmsUnwrapper(rig.client("kms"), {rig.offline_key: rig.aws.rsa_private_key(rig.offline_key)})
    )
    journal_ids = {row.event_id for row in rows}
    delivery = checks.decrypt_all(consumer.finish(journal_ids, RECEIVE_TIMEOUT_S), unwrapper)
    lost = journal_ids - set(delivery.records)
    extra = set(delivery.records) - journal_ids
    twice = checks.check_idempotency(rows, till.log)
    violations = [f"lost: {len(lost)} records"] if lost else []
    violations += [f"extra: {len(extra)} events"] if extra else []
    violations += twice
    violations += checks.check_delivery(rows, delivery, till.log)
    violations += checks.check_seq(rows, delivery)
    violations += checks.check_checkpoints(delivery)
    keys_by_hour: dict[int, set[str]] = defaultdict(set)
    sources: dict[str, int] = defaultdict(int)
    for detail in delivery.records.values():
        key = detail["envelope"]["data_key"]
        sources[key["provider"]] += 1
        captured = parse_rfc3339(detail["captured_at"]).timestamp()
        hour = int((captured - outage_start) // HOUR_S)
        keys_by_hour[hour].add(json.dumps(key, sort_keys=True))
    return {
        "journal_records": len(rows),
        "lost": len(lost),
        "duplicates_in_effect": len(extra) + len(twice),
        "resends_before_dedupe": delivery.copies - len(delivery.records),
        "checkpoints": len(delivery.checkpoints),
        "key_sources": dict(sources),
        "keys_by_hour": keys_by_hour,
        "violations": violations,
    }


def parse_limits(words: list[str]) -> dict[str, Any]:
    """`key=value` overrides of the `[offline]` limits."""
    limits = default_limits()
    for word in words:
        key, _, value = word.partition("=")
        if key not in LIMIT_KEYS:
            raise SystemExit(f"unknown limit {key!r} (one of {', '.join(LIMIT_KEYS)})")
        try:
            limits[key] = float(value) if "." in value else int(value)
        except ValueError:
            raise SystemExit(f"limit {key!r} needs a number, got {value!r}") from None
    return limits


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tests.rehearsal.rehearse", description=__doc__)
    parser.add_argument("--hours", type=float, default=DEFAULT_HOURS)
    parser.add_argument("--speed", type=float, default=DEFAULT_SPEED)
    parser.add_argument("--seed", type=int, default=26)
    parser.add_argument("--per-day", type=float, default=400.0, help="payments a day")
    parser.add_argument(
        "--limit", action="append", default=[], help="an [offline] limit, key=value"
    )
    parser.add_argument("--label", default="default", help="names the plot")
    parser.add_argument("--plot", action=argparse.BooleanOptionalAction, default=True)
    parser.add_argument("--keep", type=Path, help="work in this directory and keep it")
    args = parser.parse_args(argv)
    limits = parse_limits(args.limit)
    summary = run_in(
        args.keep,
        "posd-rehearse-",
        lambda where: rehearse(args.hours, args.speed, args.seed, where, limits, args.per_day),
    )
    if args.plot:
        summary["plot"] = plot(
            summary["hourly"],
            limits,
            RESULTS / f"rehearsal-{args.label}.png",
            f"{args.hours:g} h without the WAN ({args.label}): {summary['taken']} taken, "
            f"{sum(summary['refused'].values())} refused, drain {summary['drain_seconds']} s",
        )
    print(table(summary["hourly"]), file=sys.stderr)
    print(summary["status_before_link_back"], file=sys.stderr)
    print(json.dumps(summary, indent=2))
    return 0 if summary["ok"] else 1


if __name__ == "__main__":
    sys.exit(main())
