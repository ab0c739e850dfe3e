"""Benchmark: a fleet reconnect storm (a regional outage ends and every lane comes back at once).

Prints one JSON object and writes a picture of the entries accepted and throttled per second,
one panel per policy. Many terminals, each a real `SyncEngine` with its own journal and
backlog, are hosted in a few worker processes and all start draining at the same instant
against one local PutEvents endpoint (its own process) that enforces an account-wide quota
with a token bucket: entries beyond the quota come back as per-entry `ThrottlingException`,
as EventBridge answers when an account's PutEvents quota is exceeded. Policies, side by side
in one invocation:

- `posd`: the defaults with the fleet configured (`[sync] fleet_quota_per_second` = the
  quota, `fleet_size` = the terminals): each lane starts at its share and probes upward
  (`sync/pacing/lane.py`), with full-jitter backoff, AIMD concurrency and the adaptive
  client-side rate limiter of `sync/pacing/ratelimit.py`;
- `naive`: fixed concurrency (8 in flight, no decrease on throttling), a short, flat retry
  delay (at most 50 ms) and no rate limiter, the way a simple client retries;
- on request (`--policies`): `posd-unconfigured`, the defaults with nothing configured (the
  slow start), and `posd-unlimited`, the defaults without the rate limiter.

`--simulated` runs the storm on a simulated clock instead (`bench/fleet_sim.py`: each lane
drives the real pacing objects; 10,000 lanes in seconds), with the scenarios of
`bench/fleet_scenarios.py`; `--validate` runs the real storm, then the simulator on it, and
reports how far apart they are (they must agree within 10% on drain time and throttled
share; `--repeat N` runs the real storm N times, replays each, and judges their means).
Simulated, the consumer republishes the fair rate as it ships (`cloud/fair_rate.py`: every
`--republish` 15 s and when the quota changes, the quota over the lanes sharing it, by its
own counting rule), and the lanes re-read it every `--reread` seconds while draining, as the
engine does with `[sync] fair_rate_reread_seconds`; `--republish 0`: the configured share
only.

Reported per policy: seconds until every terminal has drained against the ideal (total events
/ quota), the share of entries (and of requests) throttled, and fairness (the slowest lane's
drain time over the median lane's, each against its fair drain time when backlogs differ:
`bench/fleet_sim.py`); then issue 25's targets for `posd`: within 1.15x of the ideal, under 5%
of entries throttled, slowest over median at most 1.5.

Usage: .venv/bin/python bench/fleet.py [--terminals 1000] [--backlog 20] [--quota 500]
                                        [--workers 4] [--plot bench/results/fleet.png]
                                        [--policies posd naive posd-unconfigured]
                                        [--simulated | --validate [--repeat 3]]
                                        [--backlog-mix varied]
                                        [--join-over 60] [--quota-change 90:3750]
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import multiprocessing
import os
import shutil
import statistics
import sys
import tempfile
import threading
import time
import urllib.request
import uuid
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.backlog import fill_backlog  # noqa: E402
from bench.fleet_plot import plot as _plot  # noqa: E402
from bench.fleet_scenarios import MIXES, UNIFORM, quota_change, scenario  # noqa: E402
from bench.fleet_sim import (  # noqa: E402
    DEFAULT_ENDPOINT_CAPACITY,
    DEFAULT_RTT_SECONDS,
    Republisher,
    Scenario,
    StalledLanes,
    simulate,
)
from cloud.fair_rate import REPUBLISH_SECONDS  # noqa: E402
from demo.localaws.serving import NoDelayQuietMixin  # noqa: E402
from posd.journal import Journal  # noqa: E402
from sync.settings import SyncSettings  # noqa: E402

DEFAULT_TERMINALS = 1_000
DEFAULT_BACKLOG = 20
# Entries per second for the whole "account" (default: 500 for 1,000 lanes): low enough that
# the quota, not this machine's CPU, is what limits the storm (AWS quotes as low as 400/s in
# some regions).
DEFAULT_SHARE = 0.5  # entries/s per lane: the default quota is the fleet's size x this
DEFAULT_WORKERS = 4
# --republish: how often draining lanes re-read the fair rate ([sync] fair_rate_reread_seconds).
DEFAULT_REREAD_SECONDS = 15.0
# Simulated runs: the consumer republishes as it ships (cloud/fair_rate.py: from its SQS
# batches at most every 15 s); the whole --quota is posd's (its FairRateShare: 1).
DEFAULT_REPUBLISH_SECONDS = REPUBLISH_SECONDS
BENCH_QUOTA_SHARE = 1.0
DEFAULT_PLOT = ROOT / "bench" / "results" / "fleet.png"
LOOPBACK = "127.0.0.1"
BENCH_KEY = "bench"  # the local endpoint checks no signature
STORE_ID = "store-bench"
SAMPLE_SECONDS = 0.5
DRAIN_TIMEOUT_SECONDS = 600.0
STATS_PATH = "/stats"
LISTEN_BACKLOG = 4_096
NAIVE_IN_FLIGHT = 8
WORKER_NICENESS = 10
NAIVE_RETRY_SECONDS = 0.05
# Issue 25's bars: within 1.15x of the ideal, under 5% of entries throttled, the slowest lane
# within 1.5x the median one (each against its fair drain time: bench/fleet_sim.py).
TARGET_IDEAL_RATIO = 1.15
TARGET_THROTTLED_SHARE = 0.05
TARGET_FAIRNESS = 1.5
# `--validate`: the simulator must be within 10% of the real run on these figures.
AGREEMENT_FIGURES = ("drain_seconds", "throttled_share")
AGREEMENT_TOLERANCE = 0.10
# ... or, for the throttled share, within half a point of it (a tenth of the 5% target, as 10%
# is a tenth): posd's real runs throttle 0-1% of entries, a few requests of 2,000, where a
# relative figure says nothing (0.03% against 0.1% is +233%, and both meet the target alike).
THROTTLED_SHARE_ABSOLUTE_TOLERANCE = 0.005
# A run's series, left out of the printed figures.
SERIES_SUFFIXES = ("_over_time", "_by_lane")
# The real run's stalls, as each worker process measures them (`StallRecorder`): a thread
# due every tick that wakes later than STALL_LATE_SECONDS saw its process stalled, from when
# it was due to when it ran. Stalls under STALL_MERGE_SECONDS apart are one: in between, the
# process ran too briefly for its lanes to catch up (each request is milliseconds of CPU,
# with three other workers and the endpoint catching up on two cores). Merging within 0.1 s
# left the simulator at a quarter to a half of the real runs' throttling; within 0.3 s it came
# nearest: within 10% of three runs' mean in one set, 16% over in a busier one
# (docs/performance.md).
STALL_TICK_SECONDS = 0.01
STALL_LATE_SECONDS = 0.05
STALL_MERGE_SECONDS = 0.3

POLICIES: dict[str, SyncSettings] = {
    # The fleet-aware policy: the chain configured its quota and fleet size (set per run from
    # --quota and --terminals: `policy_settings`).
    "posd": SyncSettings(source="posd.bench"),
    # The same with nothing configured: the slow start of today.
    "posd-unconfigured": SyncSettings(source="posd.bench"),
    "naive": SyncSettings(
        source="posd.bench",
        min_in_flight=NAIVE_IN_FLIGHT,
        initial_in_flight=NAIVE_IN_FLIGHT,
        max_in_flight=NAIVE_IN_FLIGHT,
        backoff_base_seconds=NAIVE_RETRY_SECONDS,
        backoff_cap_seconds=NAIVE_RETRY_SECONDS,
        rate_limit=False,
    ),
    "posd-unlimited": SyncSettings(source="posd.bench", rate_limit=False),
}
DEFAULT_POLICIES = ("posd", "naive")
# "Clearly better" than the naive policy: under this fraction of its throttled share.
TARGET_SHARE_OF_NAIVE_THROTTLING = 0.5


# --- the account-wide quota: a PutEvents endpoint with a token bucket ---------------------


@dataclass
class TokenBucket:
    rate: float
    capacity: float
    tokens: float = 0.0
    stamp: float = field(default_factory=time.monotonic)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def take(self) -> bool:
        with self.lock:
            now = time.monotonic()
            self.tokens = min(self.capacity, self.tokens + (now - self.stamp) * self.rate)
            self.stamp = now
            if self.tokens >= 1:
                self.tokens -= 1
                return True
            return False


def _serve(port_queue: Any, quota: float) -> None:
    # Full at the start, at most one second's worth at once: the quota in steady state.
    bucket = TokenBucket(rate=quota, capacity=quota, tokens=quota)
    counts = {"accepted": 0, "throttled": 0, "requests": 0, "throttled_requests": 0}
    accepted_at: dict[float, int] = {}  # wall-clock bucket -> entries accepted in it
    throttled_at: dict[float, int] = {}  # wall-clock bucket -> entries throttled in it
    first_request_at: dict[str, float] = {}  # terminal -> when its first request came in
    counts_lock = threading.Lock()

    class Handler(NoDelayQuietMixin, BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def _reply(self, body: dict[str, Any]) -> None:
            data = json.dumps(body).encode()
            self.send_response(200)
            self.send_header("Content-Type", "application/x-amz-json-1.1")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def do_GET(self) -> None:
            with counts_lock:
                self._reply(
                    {
                        **counts,
                        "accepted_at": sorted(accepted_at.items()),
                        "throttled_at": sorted(throttled_at.items()),
                        "first_request_at": sorted(first_request_at.values()),
                    }
                )

        def do_POST(self) -> None:
            body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
            entries: list[dict[str, str]] = []
            for _ in body["Entries"]:
                if bucket.take():
                    entries.append({"EventId": str(uuid.uuid4())})
                else:
                    entries.append(
                        {"ErrorCode": "ThrottlingException", "ErrorMessage": "Rate exceeded"}
                    )
            failed = sum(1 for entry in entries if "ErrorCode" in entry)
            arrived = time.time()
            moment = round(arrived / SAMPLE_SECONDS) * SAMPLE_SECONDS
            terminal = json.loads(body["Entries"][0]["Detail"])["terminal_id"]
            with counts_lock:
                first_request_at.setdefault(terminal, arrived)
                counts["accepted"] += len(entries) - failed
                counts["throttled"] += failed
                counts["requests"] += 1
                counts["throttled_requests"] += 1 if failed else 0
                accepted_at[moment] = accepted_at.get(moment, 0) + len(entries) - failed
                throttled_at[moment] = throttled_at.get(moment, 0) + failed
            self._reply({"FailedEntryCount": failed, "Entries": entries})

    class Server(ThreadingHTTPServer):
        # A thousand terminals connect at once: the default listen backlog (5) would reset
        # connections, a fault the real service does not inject.
        request_queue_size = LISTEN_BACKLOG
        daemon_threads = True

    server = Server((LOOPBACK, 0), Handler)
    port_queue.put(server.server_address[1])
    server.serve_forever()


# --- the terminals ------------------------------------------------------------------------


class StallRecorder(threading.Thread):
    """The stalls of the process it runs in, in seconds after `start` (see `STALL_*`): its
    lanes share the process and its GIL, so while this thread is not run, neither are they."""

    def __init__(self, start: float) -> None:
        super().__init__(name="stall-recorder", daemon=True)
        self._start = start
        self._stopping = threading.Event()
        self.stalls: list[tuple[float, float]] = []

    def run(self) -> None:
        due = time.time() + STALL_TICK_SECONDS
        while not self._stopping.wait(max(0.0, due - time.time())):
            woke = time.time()
            if woke - due > STALL_LATE_SECONDS:
                self.stalled(due - self._start, woke - self._start)
            due = woke + STALL_TICK_SECONDS

    def stalled(self, since: float, until: float) -> None:
        """The process ran nothing from `since` to `until`: one more stall, or the last one
        longer when it ended under `STALL_MERGE_SECONDS` before."""
        if self.stalls and since - self.stalls[-1][1] < STALL_MERGE_SECONDS:
            self.stalls[-1] = (self.stalls[-1][0], round(until, 3))
        else:
            self.stalls.append((round(since, 3), round(until, 3)))

    def stop(self) -> list[tuple[float, float]]:
        self._stopping.set()
        self.join()
        return self.stalls


def _worker(
    first: int,
    count: int,
    template: str,
    work: str,
    endpoint: str,
    policy: str,
    settings: SyncSettings,
    ready: Any,
    go: Any,
    results: Any,
) -> None:
    """Host `count` terminals; drain them all from the `go` signal; report when each finished
    and the worker's backlog over time."""
    import boto3

    from posd.assembly import engine_for
    from posd.logs import configure_logging
    from sync.engine import SyncEngine

    configure_logging("error")  # stderr: stdout is the driver's JSON; a storm logs a lot
    # The endpoint stands for AWS: the terminals' processes must not starve it. Starved, it
    # answered in bursts after stalls longer than its bucket's second, and throttled lanes
    # that sent well within the quota (bench/fleet.py --validate: the simulator, whose
    # endpoint never stalls, saw none of those throttles).
    os.nice(WORKER_NICENESS)

    session = boto3.Session(
        aws_access_key_id=BENCH_KEY, aws_secret_access_key=BENCH_KEY, region_name="us-east-1"
    )
    engines: list[SyncEngine] = []
    journals: list[Journal] = []
    for index in range(first, first + count):
        state_dir = Path(work) / f"{policy}-{index}"
        shutil.copytree(template, state_dir)
        journal = Journal.open(state_dir)
        journals.append(journal)
        engines.append(
            engine_for(
                journal,
                settings,
                store_id=STORE_ID,
                terminal_id=f"lane-{index}",
                endpoint_url=endpoint,
                session=session,
            )
        )
    ready.put(count)
    start = go.get()
    stalls = StallRecorder(start)
    stalls.start()
    finished: list[float | None] = [None] * count
    up: list[float] = [0.0] * count  # when each lane's drain began (its pacer started)

    def drain(slot: int) -> None:
        up[slot] = time.time() - start
        report = engines[slot].drain(timeout=DRAIN_TIMEOUT_SECONDS)
        finished[slot] = time.time() - start if report.completed else None

    threads = [threading.Thread(target=drain, args=(slot,)) for slot in range(count)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    stalled = stalls.stop()
    for engine, journal in zip(engines, journals, strict=True):
        engine.close()
        journal.close()
    results.put({"first": first, "finished": finished, "up": up, "stalls": stalled})


def _storm(
    policy: str,
    settings: SyncSettings,
    template: Path,
    terminals: int,
    quota: float,
    workers: int,
) -> dict[str, Any]:
    context = multiprocessing.get_context("spawn")
    ports: Any = context.Queue()
    server = context.Process(target=_serve, args=(ports, quota), daemon=True)
    server.start()
    endpoint = f"http://{LOOPBACK}:{ports.get(timeout=30)}"
    ready, go, results = context.Queue(), context.Queue(), context.Queue()
    share = -(-terminals // workers)
    slices = [(first, min(share, terminals - first)) for first in range(0, terminals, share)]
    with tempfile.TemporaryDirectory(prefix=f"posd-fleet-{policy}-") as work:
        processes = [
            context.Process(
                target=_worker,
                args=(
                    first,
                    count,
                    str(template),
                    work,
                    endpoint,
                    policy,
                    settings,
                    ready,
                    go,
                    results,
                ),
            )
            for first, count in slices
        ]
        for process in processes:
            process.start()
        for _ in processes:
            ready.get(timeout=DRAIN_TIMEOUT_SECONDS)
        start = time.time()
        for _ in processes:
            go.put(start)
        reports = [results.get(timeout=DRAIN_TIMEOUT_SECONDS) for _ in processes]
        for process in processes:
            process.join(timeout=60)
    with urllib.request.urlopen(f"{endpoint}{STATS_PATH}", timeout=10) as answer:
        counts = json.loads(answer.read())
    server.terminate()
    return _summarise(reports, counts, quota, start)


def _summarise(
    reports: list[dict[str, Any]], counts: dict[str, Any], quota: float, start: float
) -> dict[str, Any]:
    reports = sorted(reports, key=lambda report: int(report["first"]))  # in lane order
    finished = [t for report in reports for t in report["finished"]]
    done = [t for t in finished if t is not None]
    total = counts["accepted"]
    ideal = total / quota
    slowest = max(done) if done else float("inf")
    sent = counts["accepted"] + counts["throttled"]
    # The fleet's backlog as the endpoint saw it: what it had not accepted yet. Measured there
    # (its own process), not by samplers in the busy workers, which the storm starves.
    timeline: list[tuple[float, int]] = [(0.0, total)]
    remaining = total
    for moment, accepted in counts["accepted_at"]:
        remaining -= accepted
        timeline.append((round(moment - start, 3), remaining))
    throttling = [
        (round(moment - start, 3), throttled / SAMPLE_SECONDS)
        for moment, throttled in counts["throttled_at"]
    ]
    accepting = [
        (round(moment - start, 3), accepted / SAMPLE_SECONDS)
        for moment, accepted in counts["accepted_at"]
    ]
    firsts = [moment - start for moment in counts["first_request_at"]]
    up = sorted(t for report in reports for t in report["up"])
    return {
        "terminals": len(finished),
        "terminals_not_drained": len(finished) - len(done),
        "events_accepted": total,
        "entries_throttled": counts["throttled"],
        "throttled_share": round(counts["throttled"] / sent, 4) if sent else 0.0,
        "requests": counts["requests"],
        "throttled_request_share": round(counts["throttled_requests"] / counts["requests"], 4)
        if counts["requests"]
        else 0.0,
        "drain_seconds": round(slowest, 3),
        "ideal_seconds": round(ideal, 3),
        "ratio_to_ideal": round(slowest / ideal, 3) if ideal else None,
        "fairness_slowest_over_median": round(slowest / statistics.median(done), 3)
        if done
        else None,
        "backlog_over_time": timeline,
        "throttled_per_second_over_time": throttling,
        "accepted_per_second_over_time": accepting,
        "first_requests_over_time": firsts,
        "lanes_up_over_time": up,
        # Each lane's, in lane order, and each worker's lanes and stalls: `--validate` replays
        # them lane by lane.
        "lanes_up_by_lane": [t for report in reports for t in report["up"]],
        "worker_stalls_over_time": [
            (report["first"], len(report["up"]), report["stalls"]) for report in reports
        ],
        # When the lanes' drains began: a thousand engines on two cores take seconds to start,
        # and longer while a storm loads the machine (the naive one more than posd's).
        "lanes_up_seconds_p10_p50_p90": _deciles(up),
        # When the lanes' first requests came in: how much "at once" the storm started.
        "first_request_seconds_p10_p50_p90": _deciles(firsts),
    }


def policy_settings(policy: str, quota: float, terminals: int) -> SyncSettings:
    """A policy's settings for a fleet of `terminals` sharing `quota` entries/s."""
    settings = POLICIES[policy]
    if policy == "posd":
        return dataclasses.replace(settings, fleet_quota_per_second=quota, fleet_size=terminals)
    return settings


def _override(settings: SyncSettings, assignments: list[str]) -> SyncSettings:
    """`settings` with `KEY=VALUE` assignments applied, each value of its field's type."""
    changes: dict[str, Any] = {}
    for assignment in assignments:
        key, _, text = assignment.partition("=")
        if not hasattr(settings, key):
            raise KeyError(key)
        kind = type(getattr(settings, key))
        if kind is type(None):
            kind = float
        changes[key] = text.lower() in ("1", "true", "yes") if kind is bool else kind(text)
    return dataclasses.replace(settings, **changes)


def _verdict(results: dict[str, dict[str, Any]]) -> dict[str, bool | None]:
    """The issue's targets for the `posd` policy (None: not measured in this run)."""
    posd, naive = results.get("posd"), results.get("naive")
    if posd is None:
        return {"ratio_to_ideal": None, "throttled_share": None, "fairness": None}
    fairness = posd["fairness_slowest_over_median"]
    verdict: dict[str, bool | None] = {
        "ratio_to_ideal": posd["terminals_not_drained"] == 0
        and posd["ratio_to_ideal"] <= TARGET_IDEAL_RATIO,
        "throttled_share": posd["throttled_share"] < TARGET_THROTTLED_SHARE,
        "fairness": fairness is not None and fairness <= TARGET_FAIRNESS,
    }
    if naive is not None:
        verdict["throttled_share_below_half_naive"] = (
            posd["throttled_share"] < naive["throttled_share"] * TARGET_SHARE_OF_NAIVE_THROTTLING
        )
    return verdict


def _real(args: argparse.Namespace, policies: dict[str, SyncSettings]) -> dict[str, Any]:
    with tempfile.TemporaryDirectory(prefix="posd-fleet-template-") as scratch:
        template = Path(scratch) / "state"
        fill_backlog(template, args.backlog, STORE_ID, "template")
        return {
            policy: _storm(
                policy, policies[policy], template, args.terminals, args.quota, args.workers
            )
            for policy in args.policies
        }


def _scenario(args: argparse.Namespace) -> Scenario:
    return scenario(
        args.backlog_mix,
        args.terminals,
        args.backlog,
        args.quota,
        args.join_over,
        args.quota_change,
        args.seed,
    )


def _simulated(
    args: argparse.Namespace, policies: dict[str, SyncSettings], fleet: Scenario
) -> dict[str, Any]:
    published: float | None = args.published_rate

    def share(now: float) -> float | None:  # what the cloud publishes (None: nothing)
        return published

    def republisher() -> Republisher | None:  # the consumer as lanes finish (None: off)
        if not args.republish:
            return None
        return Republisher(fleet, BENCH_QUOTA_SHARE, args.republish, args.reread)

    return {
        policy: simulate(
            fleet,
            policies[policy],
            share,
            rtt=args.rtt,
            service_seconds=1.0 / args.endpoint_capacity,
            seed=args.seed,
            republisher=republisher(),
        )
        for policy in args.policies
    }


def _agreement(
    real: dict[str, dict[str, Any]], simulated: dict[str, dict[str, Any]]
) -> dict[str, Any]:
    """How far the simulator is from the real run, per policy and figure (relative; the
    throttled share also as a difference, judged on it when the two are close in absolute
    terms: `THROTTLED_SHARE_ABSOLUTE_TOLERANCE`)."""
    agreement: dict[str, Any] = {}
    for policy, measured in real.items():
        figures: dict[str, Any] = {}
        for key in AGREEMENT_FIGURES:
            if measured[key]:
                figures[key] = round(simulated[policy][key] / measured[key] - 1, 3)
            else:
                figures[key] = None if simulated[policy][key] else 0.0
        close = {
            key: value is not None and abs(value) <= AGREEMENT_TOLERANCE
            for key, value in figures.items()
        }
        difference = simulated[policy]["throttled_share"] - measured["throttled_share"]
        figures["throttled_share_difference"] = round(difference, 4)
        close["throttled_share"] = (
            close["throttled_share"] or abs(difference) <= THROTTLED_SHARE_ABSOLUTE_TOLERANCE
        )
        figures["within"] = all(close.values())
        agreement[policy] = figures
    return agreement


def _validation(
    args: argparse.Namespace, fleet: Scenario, runs: list[dict[str, dict[str, Any]]]
) -> tuple[dict[str, dict[str, Any]], dict[str, Any]]:
    """Each real run replayed on the simulator; (the first replay's figures, the agreement).
    The verdict compares the runs' means: a throttled share of 1-3% is a few dozen requests
    in one run of 1,000 lanes, and moves by more than the tolerance between two runs of the
    same code (docs/performance.md), so one run alone cannot show a simulator within 10%."""
    replays: list[dict[str, dict[str, Any]]] = []
    calibrated: list[dict[str, Any]] = []
    for run in runs:
        replay, calibrations = _calibrated(args, fleet, run)
        replays.append(_replayed(replay, args.policy_settings, calibrations))
        calibrated.append(
            {
                "endpoint_requests_per_second": round(replay.endpoint_capacity, 1),
                "lanes_up_seconds_p10_p50_p90": {
                    policy: _deciles(list(calibration.joins))
                    for policy, calibration in calibrations.items()
                },
                "worker_stalls": {
                    policy: [_stall_summary(stalled) for stalled in calibration.stalls]
                    for policy, calibration in calibrations.items()
                },
            }
        )
    each_run = [
        {
            policy: {
                "real": {key: run[policy][key] for key in AGREEMENT_FIGURES},
                "simulated": {key: replay[policy][key] for key in AGREEMENT_FIGURES},
                "simulated_over_real_minus_one": _agreement(run, replay)[policy],
            }
            for policy in run
        }
        for run, replay in zip(runs, replays, strict=True)
    ]
    agreement = {
        "tolerance": AGREEMENT_TOLERANCE,
        "runs": len(runs),
        "calibrated_from_the_real_runs": calibrated,
        "each_run": each_run,
        "simulated_over_real_minus_one": _agreement(_means(runs), _means(replays)),
    }
    return _figures(replays[0]), agreement


def _means(runs: list[dict[str, dict[str, Any]]]) -> dict[str, dict[str, float]]:
    """Per policy, each agreement figure's mean over the runs."""
    return {
        policy: {
            key: statistics.fmean(run[policy][key] for run in runs) for key in AGREEMENT_FIGURES
        }
        for policy in runs[0]
    }


def _calibrated(
    args: argparse.Namespace, fleet: Scenario, real: dict[str, dict[str, Any]]
) -> tuple[argparse.Namespace, dict[str, Scenario]]:
    """The simulator set to this machine as the real run found it: the requests/s its
    endpoint answered with the naive policy saturating it, and for each policy when each of
    its lanes came up in its own run (a thousand engines on two cores take seconds to start,
    longer under the naive storm than under posd's: posd's lanes replayed with the naive
    run's start times came up late and drained 16% slower than the real ones). The pacing
    is the simulator's own."""
    reference = real.get("naive") or next(iter(real.values()))
    capacity = args.endpoint_capacity
    if "naive" in real and reference["drain_seconds"] > 0:
        capacity = reference["requests"] / reference["drain_seconds"]
    # The real engines are configured with the fleet's quota and read no published rate.
    replay = argparse.Namespace(**{**vars(args), "endpoint_capacity": capacity, "republish": 0})
    return replay, {policy: _replay_fleet(fleet, run) for policy, run in real.items()}


def _replay_fleet(fleet: Scenario, run: dict[str, Any]) -> Scenario:
    """`fleet` with each lane joining when the real run's lane of the same number came up,
    and each worker's lanes stalling when that worker process did (`StallRecorder`)."""
    by_lane = run["lanes_up_by_lane"]
    if len(by_lane) != len(fleet.joins):
        raise ValueError(f"a replay of {len(by_lane)} real lanes on {len(fleet.joins)} lanes")
    start = min(by_lane, default=0.0)
    stalls = tuple(
        StalledLanes(first, count, tuple((since - start, until - start) for since, until in spans))
        for first, count, spans in run["worker_stalls_over_time"]
    )
    return dataclasses.replace(fleet, joins=[up - start for up in by_lane], stalls=stalls)


def _stall_summary(stalled: StalledLanes) -> dict[str, Any]:
    """One worker's stalls in the summary: its lanes, how many stalls, how long in all."""
    return {
        "lanes": [stalled.first, stalled.first + stalled.count - 1],
        "stalls": len(stalled.spans),
        "stalled_seconds": round(sum(until - since for since, until in stalled.spans), 1),
    }


def _replayed(
    replay: argparse.Namespace, policies: dict[str, SyncSettings], fleets: dict[str, Scenario]
) -> dict[str, Any]:
    """Each policy simulated on its own calibrated fleet."""
    return {
        policy: _simulated(
            argparse.Namespace(**{**vars(replay), "policies": [policy]}), policies, fleet
        )[policy]
        for policy, fleet in fleets.items()
    }


def _deciles(values: list[float]) -> list[float] | None:
    """The 10th, 50th and 90th percentiles."""
    if len(values) < 2:
        return None
    return [round(q, 2) for q in statistics.quantiles(values, n=10)[::4]]


def _figures(results: dict[str, dict[str, Any]]) -> dict[str, dict[str, Any]]:
    """The figures to print: without the series (over time, or one value per lane)."""
    return {
        policy: {k: v for k, v in result.items() if not k.endswith(SERIES_SUFFIXES)}
        for policy, result in results.items()
    }


def _arguments() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--terminals", type=int, default=DEFAULT_TERMINALS)
    parser.add_argument("--backlog", type=int, default=DEFAULT_BACKLOG, help="records each")
    parser.add_argument(
        "--quota", type=float, help=f"entries/s (default: {DEFAULT_SHARE} x terminals)"
    )
    parser.add_argument("--workers", type=int, default=DEFAULT_WORKERS, help="processes")
    parser.add_argument("--plot", type=Path, default=DEFAULT_PLOT)
    parser.add_argument(
        "--policies", nargs="+", default=list(DEFAULT_POLICIES), choices=list(POLICIES)
    )
    parser.add_argument(
        "--posd-setting",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="override a [sync] setting of the posd policy (tuning), e.g. rate_recovery_seconds=5",
    )
    mode = parser.add_mutually_exclusive_group()
    mode.add_argument(
        "--simulated", action="store_true", help="simulated clock and lanes (bench/fleet_sim.py)"
    )
    mode.add_argument(
        "--validate",
        action="store_true",
        help="the real run, then the simulator on the same storm, and how far apart they are",
    )
    parser.add_argument(
        "--repeat",
        type=int,
        default=1,
        help="with --validate: real runs, each replayed; the verdict is on their means (default 1)",
    )
    simulated = parser.add_argument_group("simulated storms (bench/fleet_scenarios.py)")
    simulated.add_argument("--backlog-mix", choices=MIXES, default=UNIFORM)
    simulated.add_argument(
        "--join-over", type=float, default=0.0, help="lanes join over this many seconds"
    )
    simulated.add_argument(
        "--quota-change",
        type=quota_change,
        action="append",
        default=[],
        metavar="AT:RATE",
        help="the account's quota becomes RATE entries/s at AT seconds (repeatable)",
    )
    simulated.add_argument(
        "--published-rate",
        type=float,
        default=None,
        help="the fair rate the cloud publishes (entries/s per lane; default: none)",
    )
    simulated.add_argument(
        "--republish",
        type=float,
        default=None,
        metavar="SECONDS",
        help="the consumer republishes the fair rate (the quota over the lanes sharing it: "
        "cloud/fair_rate.py) every SECONDS and when the quota changes (default: "
        f"{DEFAULT_REPUBLISH_SECONDS:g}, as the consumer does; 0: off, the configured share only)",
    )
    simulated.add_argument(
        "--reread",
        type=float,
        default=DEFAULT_REREAD_SECONDS,
        metavar="SECONDS",
        help="with --republish, draining lanes re-read the fair rate every SECONDS "
        f"(default: {DEFAULT_REREAD_SECONDS:g})",
    )
    simulated.add_argument(
        "--endpoint-capacity",
        type=float,
        help="requests/s the simulated endpoint answers (default: this VM's local endpoint "
        "per 1,000 lanes)",
    )
    simulated.add_argument(
        "--rtt", type=float, default=DEFAULT_RTT_SECONDS, help="simulated round trip, seconds"
    )
    simulated.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    if args.quota is None:
        args.quota = DEFAULT_SHARE * args.terminals
    if args.endpoint_capacity is None:
        args.endpoint_capacity = DEFAULT_ENDPOINT_CAPACITY * args.terminals / DEFAULT_TERMINALS
    if (
        min(args.terminals, args.backlog, args.workers) < 1
        or min(args.quota, args.endpoint_capacity) <= 0
    ):
        parser.error("terminals, backlog, workers, quota and endpoint capacity must be positive")
    scenario_flags = args.backlog_mix != UNIFORM or args.join_over or args.quota_change
    if not args.simulated and (scenario_flags or args.published_rate is not None or args.republish):
        parser.error(
            "--backlog-mix, --join-over, --quota-change, --published-rate, --republish: --simulated"
        )
    if args.republish is None:
        args.republish = DEFAULT_REPUBLISH_SECONDS if args.simulated else 0.0
    if args.republish < 0 or args.reread <= 0:
        parser.error("--republish must be >= 0 and --reread > 0")
    if args.repeat < 1 or (args.repeat > 1 and not args.validate):
        parser.error("--repeat must be 1 or more, and more than 1 only with --validate")
    try:
        policies = {name: policy_settings(name, args.quota, args.terminals) for name in POLICIES}
        args.policy_settings = {**policies, "posd": _override(policies["posd"], args.posd_setting)}
    except (KeyError, ValueError) as error:
        parser.error(f"--posd-setting: {error}")
    return args


def main() -> None:
    args = _arguments()
    policies: dict[str, SyncSettings] = args.policy_settings
    fleet = _scenario(args)
    started = time.monotonic()
    results = _simulated(args, policies, fleet) if args.simulated else _real(args, policies)
    seconds = round(time.monotonic() - started, 1)
    kind = "simulated" if args.simulated else "real engines"
    plot = _plot(results, args.plot, f"Fleet reconnect storm, {args.terminals:,} lanes ({kind})")
    summary: dict[str, Any] = {
        "benchmark": "fleet_reconnect_storm",
        "simulated": args.simulated,
        "terminals": args.terminals,
        "backlog_per_terminal": args.backlog,
        "backlog_mix": args.backlog_mix,
        "join_over_seconds": args.join_over,
        "quota_entries_per_second": args.quota,
        "quota_changes": args.quota_change,
        "published_rate": args.published_rate,
        "republish_seconds": args.republish if args.simulated else None,
        "worker_processes": None if args.simulated else args.workers,
        "simulated_endpoint_requests_per_second": args.endpoint_capacity
        if args.simulated
        else None,
        "posd_settings_overridden": args.posd_setting,
        "run_seconds": seconds,
        "targets": {
            "ratio_to_ideal_at_most": TARGET_IDEAL_RATIO,
            "throttled_share_below": TARGET_THROTTLED_SHARE,
            "fairness_slowest_over_median_at_most": TARGET_FAIRNESS,
        },
        "posd_meets": _verdict(results),
        "plot": plot,
        "results": _figures(results),
    }
    if args.validate:
        runs = [results, *(_real(args, policies) for _ in range(args.repeat - 1))]
        summary["simulated_results"], summary["agreement"] = _validation(args, fleet, runs)
    print(json.dumps(summary, indent=2))


if __name__ == "__main__":
    main()
