"""The chaos soak: `python -m tests.chaos.soak [--seconds S] [--seed N] [--keep DIR] [--api V]`.

The lane's two daemons as subprocesses (capture and delivery, each also killed alone), moto
behind the fault proxies, the simulated devices, and a register paying at a steady rate, while
`faults.Chaos` breaks things at random for S seconds (`POSD_CHAOS_SECONDS`, default 120). Then
every fault is lifted, the backlog is flushed, the daemons are stopped with SIGTERM, the queue
is read and decrypted as the backend would, and the invariants of `checks` are checked. Prints
one JSON summary; exit 1 on any broken invariant.

`--api v2` (`POSD_CHAOS_API=v2`) delivers through EventBridge v2 (rig.py): then the queue must
hold every record exactly once before any consumer-side dedupe (`resends_before_dedupe` 0),
while the endpoint's `v2_deduplicated` shows the resends the bus absorbed.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from cloud.kms import KmsUnwrapper
from tests.chaos import checks
from tests.chaos.consumer import QueueConsumer
from tests.chaos.faults import Chaos, DaemonWouldNotStartError
from tests.chaos.register import HTTP_TIMEOUT_S, NO_ANSWER, Register, exchange
from tests.chaos.rig import API_ENV, APIS, Rig
from tests.chaos.scan import leaks_in, leaks_in_files
from tests.posd.daemon.harness import REPO
from wire.keys import CachingUnwrapper

SECONDS_ENV = "POSD_CHAOS_SECONDS"
DEFAULT_SECONDS = 120.0
OFFLINE_KEY_CACHED_S = 30.0  # the first start must cache the offline public key
FLUSH_TIMEOUT_S = 120.0  # the API allows at most 120 s a call
FLUSH_ATTEMPTS = 3
RECEIVE_TIMEOUT_S = 180.0
CLI_TIMEOUT_S = 60.0
PROGRESS_FILE = "progress.json"
PROGRESS_EVERY_S = 60.0
CLI_COMMANDS = (
    ("journal", "verify"),
    ("journal", "stats"),
    ("sync", "status"),
)


def run_cli(rig: Rig, *words: str) -> tuple[int, str]:
    target = ["--config", str(rig.config)]
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    done = subprocess.run(
        [sys.executable, "-m", "posd", *words, *target, "--json"],
        env=env,
        capture_output=True,
        timeout=CLI_TIMEOUT_S,
        check=False,
    )
    return done.returncode, (done.stdout + done.stderr).decode(errors="replace")


def flush(rig: Rig) -> dict[str, Any]:
    """Ask the daemon to deliver its backlog, a few times if need be (a generous bound)."""
    answer: dict[str, Any] = {}
    for _ in range(FLUSH_ATTEMPTS):
        try:
            _, answer, _ = exchange(
                rig.socket,
                "POST",
                "/v1/sync/flush",
                {"timeout_s": FLUSH_TIMEOUT_S},
                timeout=FLUSH_TIMEOUT_S + HTTP_TIMEOUT_S,
            )
        except NO_ANSWER as error:
            answer = {"error": f"no answer: {error!r}"}
        if answer.get("completed"):
            break
    return answer


def wait_for_file(path: Path, timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if path.exists():
            return True
        time.sleep(0.05)
    return False


def wait_for_recovery(register: Register, since: float, timeout: float) -> None:
    """Let the register pay until one payment is answered 201 after `since` (bounded)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if any(e.status == 201 and e.answered_at >= since for e in list(register.log.exchanges)):
            return
        time.sleep(0.1)


class Progress(threading.Thread):
    """Figures so far, written every PROGRESS_EVERY_S (a long run cut short still tells)."""

    def __init__(
        self, path: Path, chaos: Chaos, register: Register, consumer: QueueConsumer
    ) -> None:
        super().__init__(name="progress", daemon=True)
        self.path, self.chaos, self.register, self.consumer = path, chaos, register, consumer
        self.halt = threading.Event()
        self.started = time.monotonic()

    def run(self) -> None:
        while not self.halt.wait(PROGRESS_EVERY_S):
            figures = {
                "seconds": round(time.monotonic() - self.started),
                "payments": self.register.log.payments,
                "acknowledged": len(self.register.log.acknowledged),
                "faults_by_kind": self.chaos.log.by_kind(),
                "kills": self.chaos.log.kills,
                "capture_kills": self.chaos.log.capture_kills,
                "delivery_kills": self.chaos.log.delivery_kills,
                "received_event_ids": self.consumer.received(),
            }
            self.path.write_text(json.dumps(figures, indent=2))


def soak(seconds: float, seed: int, work: Path, api: str = "v1") -> dict[str, Any]:
    violations: list[str] = []
    started = time.monotonic()
    with Rig(work, api) as rig:
        chaos = Chaos(rig, seed)
        chaos.start()
        if not wait_for_file(rig.state_dir / "kms-offline-public-key.json", OFFLINE_KEY_CACHED_S):
            violations.append("the offline public key was never cached")
        assert rig.route is not None
        consumer = QueueConsumer(rig.client("sqs"), rig.route.queue_url)
        consumer.start()
        register = Register(rig.socket, seed)
        register.start()
        progress = Progress(work / PROGRESS_FILE, chaos, register, consumer)
        progress.start()
        try:
            chaos.run_for(seconds)
            last_lifted = max((f.lifted or f.started for f in chaos.log.faults), default=0.0)
            wait_for_recovery(register, last_lifted, checks.RECOVERY_BOUND_S)
        except DaemonWouldNotStartError as error:
            violations.append(f"the daemon would not start again: {error}")
        progress.halt.set()
        register.stop()
        register.join(HTTP_TIMEOUT_S * 2)
        try:
            chaos.ensure_running()
        except DaemonWouldNotStartError as error:
            violations.append(f"a daemon would not start for the drain: {error}")
        flushed = flush(rig)
        if not flushed.get("completed"):
            violations.append(f"the backlog was not flushed: {flushed}")
        _, daemon_status, status_raw = exchange(rig.socket, "GET", "/v1/status", None)
        _, _, metrics_raw = exchange(rig.socket, "GET", "/metrics", None)
        final_exit = rig.terminate()
        exit_codes = [*chaos.log.sigterm_exit_codes, final_exit]
        if any(exit_codes):
            violations.append(f"SIGTERM exit codes other than 0: {sorted(set(exit_codes))}")
        if any(rig.delivery_exit_codes):
            violations.append(
                f"delivery SIGTERM exit codes other than 0: {sorted(set(rig.delivery_exit_codes))}"
            )
        violations += [f"a daemon died by itself: {words}" for words in chaos.log.died]

        cli_output = []
        for words in CLI_COMMANDS:
            code, output = run_cli(rig, *words)
            cli_output.append(output)
            if code != 0:
                violations.append(f"posd {' '.join(words)} exited {code}: {output[-500:]}")

        rows = checks.journal_rows(rig.state_dir / "journal.db")
        kms = rig.client("kms")
        unwrapper = CachingUnwrapper(
            KmsUnwrapper(kms, {rig.offline_key: rig.aws.rsa_private_key(rig.offline_key)})
        )
        events = consumer.finish({row.event_id for row in rows}, RECEIVE_TIMEOUT_S)
        delivery = checks.decrypt_all(events, unwrapper)

        journal_ids = {row.event_id for row in rows}
        lost = journal_ids - set(delivery.records)
        extra = set(delivery.records) - journal_ids
        quarantined = [row.seq for row in rows if row.state == "quarantined"]
        violations += [f"lost: seq {r.seq}" for r in rows if r.event_id in lost][:20]
        violations += [f"extra: event {event_id}" for event_id in sorted(extra)][:20]
        if quarantined:
            violations.append(f"quarantined: seqs {quarantined[:20]}")
        resends = delivery.copies - len(delivery.records)
        if api == "v2" and resends:
            violations.append(f"v2: {resends} duplicate copies in the queue (exactly once broken)")
        v2_stats = rig.v2.stats if rig.v2 is not None else None
        violations += checks.check_idempotency(rows, register.log)
        violations += checks.check_delivery(rows, delivery, register.log)
        violations += checks.check_seq(rows, delivery)
        violations += checks.check_checkpoints(delivery)

        texts = [e.raw for e in register.log.exchanges] + [status_raw, metrics_raw, *cli_output]
        violations += leaks_in("api answers and cli output", "\n".join(texts).encode())
        violations += leaks_in_files(
            [rig.log_file, rig.delivery_log_file, *rig.state_dir.iterdir()]
        )

        violations += chaos.log.lane_taken
        times = checks.recoveries(chaos.log.faults, register.log.exchanges)
        violations += checks.check_recovery(chaos.log.faults, times)
        measured = [t for t in times if t is not None]
        key_sources: dict[str, int] = {}
        for detail in delivery.records.values():
            provider = detail["envelope"]["data_key"]["provider"]
            key_sources[provider] = key_sources.get(provider, 0) + 1
        return {
            "seconds": round(time.monotonic() - started, 1),
            "chaos_seconds": seconds,
            "sync_api": api,
            "seed": seed,
            "payments": register.log.payments,
            "acknowledged": len(register.log.acknowledged),
            "voids": len(register.log.voids),
            "refusals": dict(sorted(register.log.refusals.items())),
            "register_resends": register.log.resends,
            "journal_records": len(rows),
            "faults": len(chaos.log.faults),
            "faults_by_kind": chaos.log.by_kind(),
            "kills": chaos.log.kills,
            "capture_kills": chaos.log.capture_kills,
            "delivery_kills": chaos.log.delivery_kills,
            "died": len(chaos.log.died),
            "start_failures": len(chaos.log.start_failures),
            "second_daemon_exit_max_seconds": _rounded(
                max(chaos.log.second_daemon_seconds, default=None)
            ),
            "lane_taken": chaos.log.lane_taken,
            "delivered_copies": delivery.copies,
            "resends_before_dedupe": resends,
            "v2_deduplicated": v2_stats.deduplicated if v2_stats else None,
            "v2_published": v2_stats.published if v2_stats else None,
            "lost": len(lost),
            "extra": len(extra),
            "quarantined": len(quarantined),
            "alarms": delivery.alarms,
            "checkpoints": len(delivery.checkpoints),
            "backend_read_errors": consumer.errors,
            "key_sources": key_sources,
            "final_status": {k: daemon_status.get(k) for k in ("state", "key_source", "link")},
            "recovery_max_seconds": round(max(measured), 3) if measured else None,
            "recovery_p99_seconds": _rounded(checks.percentile(measured, 0.99)),
            "recovery_p50_seconds": _rounded(checks.percentile(measured, 0.5)),
            "violations": violations,
            "ok": not violations,
        }


def _rounded(value: float | None) -> float | None:
    return None if value is None else round(value, 3)


TEST_CREDENTIALS = {
    "AWS_ACCESS_KEY_ID": "testing",
    "AWS_SECRET_ACCESS_KEY": "testing",
    "AWS_DEFAULT_REGION": "us-east-1",
}


def run_in(keep: Path | None, prefix: str, run: Callable[[Path], dict[str, Any]]) -> dict[str, Any]:
    """Run a rig's whole flow (the soak, the rehearsal) with the local AWS stand-ins' test
    credentials, in `keep` (made if need be, kept) or in a scratch directory removed after."""
    for name, value in TEST_CREDENTIALS.items():
        os.environ.setdefault(name, value)
    if keep is not None:
        keep.mkdir(parents=True, exist_ok=True)
        return run(keep)
    with tempfile.TemporaryDirectory(prefix=prefix) as scratch:
        return run(Path(scratch))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tests.chaos.soak", description=__doc__)
    parser.add_argument(
        "--seconds", type=float, default=float(os.environ.get(SECONDS_ENV, DEFAULT_SECONDS))
    )
    parser.add_argument("--seed", type=int, default=random.SystemRandom().randrange(2**31))
    parser.add_argument("--keep", type=Path, help="work in this directory and keep it")
    parser.add_argument(
        "--api", choices=APIS, default=os.environ.get(API_ENV, "v1"), help="EventBridge v1 or v2"
    )
    args = parser.parse_args(argv)
    summary = run_in(
        args.keep, "posd-chaos-", lambda where: soak(args.seconds, args.seed, where, args.api)
    )
    print(json.dumps(summary, indent=2))
    return 0 if summary["ok"] else 1


if __name__ == "__main__":
    sys.exit(main())
