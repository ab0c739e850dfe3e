"""Faults at random while the register pays: the catalogue and the scheduler that fires them.

Process faults (SIGKILL of both daemons or of capture alone, SIGTERM, the journal at its size
cap, a second `posd run` or `posd sync run` on the lane's state dir) run inline and end with
both daemons running. SIGKILL of the delivery daemon alone holds it down for a few seconds
while payments go on; the repair starts it again. A daemon found dead that no fault killed is
started again (as systemd would) and recorded in `ChaosLog.died`. The others hold for a few
seconds in a slot of their own (delivery, KMS, card reader, palm scanner, the API's socket:
idle, slowloris and flush clients held on it) and are repaired when their time is up; faults
of different slots overlap. Every fault is recorded with when it started and when it was
lifted: the lane must serve payments again after each, and the soak reports how long that
took. A second daemon and the slow clients must not take the lane's API away even while they
last (`ChaosLog.lane_taken`).
"""

from __future__ import annotations

import os
import random
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Callable
from contextlib import ExitStack
from dataclasses import dataclass, field
from pathlib import Path

from bench.hostile_clients import hostile_clients
from tests.chaos.register import NO_ANSWER, exchange
from tests.chaos.rig import FULL_MIN_FREE_BYTES, NORMAL_MIN_FREE_BYTES, Rig
from tests.posd.daemon.harness import REPO
from tests.sync.faultproxy import LOSE, PASS, Fault, delay, http_error

TICK_S = 0.1
GAP_S = (0.5, 2.5)  # between two faults
HOLD_S = (1.0, 6.0)  # how long a held fault lasts
LATE_ANSWER_S = 2.0  # delay fault: beyond the daemon's 1 s read timeout
ENTRY_FAULT_FRACTION = 0.5
START_ATTEMPTS = 2
SECOND_DAEMON_TIMEOUT_S = 30.0  # a hung second daemon is killed here (the check reports it)
SECOND_DAEMON_BOUND_S = 5.0  # it must be refused at once (2 s on an idle machine)
# slow_clients: what a careless register or a local attacker holds on the API's socket.
SLOW_IDLE, SLOW_LORIS, SLOW_FLUSHES = 100, 100, 10
API_PROBE_TIMEOUT_S = 2.0  # status while the slow clients are held
LAST_WORDS_CHARS = 500  # of a daemon's log, when it died by itself
# Fired once early in every run, whatever the seed (a short run must see them too).
EVERY_RUN = (
    "second_daemon",
    "second_delivery",
    "slow_clients",
    "sigkill_capture",
    "sigkill_delivery",
)

# kind -> relative weight. Kills dominate: the long run must reach 100 of them.
WEIGHTS: dict[str, float] = {
    "sigkill": 0.12,
    "sigkill_capture": 0.10,
    "sigkill_delivery": 0.10,
    "sigterm": 0.05,
    "journal_full": 0.03,
    "kms_unreachable": 0.05,
    "proxy_refused": 0.07,
    "proxy_delay": 0.07,
    "proxy_5xx": 0.07,
    "entry_throttled": 0.07,
    "entry_internal_failure": 0.06,
    "lost_response": 0.07,
    "reader_unplug": 0.08,
    "reader_noise": 0.08,
    "palm_unplug": 0.08,
    "second_daemon": 0.03,
    "second_delivery": 0.02,
    "slow_clients": 0.04,
}


@dataclass
class FaultRecord:
    kind: str
    started: float  # time.monotonic()
    lifted: float | None = None


@dataclass
class _Held:
    record: FaultRecord
    until: float
    repair: Callable[[], None]


@dataclass
class ChaosLog:
    faults: list[FaultRecord] = field(default_factory=list)
    kills: int = 0  # both daemons at once
    capture_kills: int = 0
    delivery_kills: int = 0
    died: list[str] = field(default_factory=list)  # a daemon dead that no fault killed
    sigterm_exit_codes: list[int] = field(default_factory=list)
    start_failures: list[str] = field(default_factory=list)
    lane_taken: list[str] = field(default_factory=list)  # the API lost to a second daemon, a burst
    second_daemon_seconds: list[float] = field(default_factory=list)

    def by_kind(self) -> dict[str, int]:
        return dict(sorted(Counter(f.kind for f in self.faults).items()))


class DaemonWouldNotStartError(RuntimeError):
    pass


class Chaos:
    def __init__(self, rig: Rig, seed: int) -> None:
        self.rig = rig
        self.log = ChaosLog()
        self._rng = random.Random(seed)
        self._held: dict[str, _Held] = {}
        self._every_run = list(EVERY_RUN)

    # -- the loop ----------------------------------------------------------------------------

    def run_for(self, seconds: float) -> None:
        deadline = time.monotonic() + seconds
        next_fault = time.monotonic() + self._rng.uniform(*GAP_S)
        while time.monotonic() < deadline:
            self._repair_due()
            self.revive()
            if time.monotonic() >= next_fault:
                self._fire(self._pick())
                next_fault = time.monotonic() + self._rng.uniform(*GAP_S)
            time.sleep(TICK_S)
        self.repair_all()

    def repair_all(self) -> None:
        for slot in list(self._held):
            self._repair(slot)

    def revive(self) -> None:
        """Start again a daemon that died by itself (none should), as systemd's Restart= would."""
        if not self.rig.capture_alive():
            self.log.died.append(f"capture: {self._last_words(self.rig.log_file)}")
            self._start(self.rig.start_capture)
        if not self.rig.delivery_alive() and "delivery_daemon" not in self._held:
            self.log.died.append(f"delivery: {self._last_words(self.rig.delivery_log_file)}")
            self._start(self.rig.start_delivery)

    @staticmethod
    def _last_words(log: Path) -> str:
        try:
            return log.read_text(errors="replace")[-LAST_WORDS_CHARS:]
        except FileNotFoundError:
            return ""

    def _pick(self) -> str:
        if self._every_run:
            return self._every_run.pop(0)
        return self._rng.choices(list(WEIGHTS), list(WEIGHTS.values()))[0]

    def _repair_due(self) -> None:
        now = time.monotonic()
        for slot, held in list(self._held.items()):
            if now >= held.until:
                self._repair(slot)

    def _repair(self, slot: str) -> None:
        held = self._held.pop(slot)
        held.repair()
        held.record.lifted = time.monotonic()

    def _hold(self, slot: str, kind: str, repair: Callable[[], None]) -> None:
        record = self._begin(kind)
        self._held[slot] = _Held(record, time.monotonic() + self._rng.uniform(*HOLD_S), repair)

    def _begin(self, kind: str) -> FaultRecord:
        record = FaultRecord(kind, time.monotonic())
        self.log.faults.append(record)
        return record

    # -- the faults --------------------------------------------------------------------------

    def _fire(self, kind: str) -> None:
        slot = SLOTS.get(kind)
        if slot is not None and slot in self._held:
            return  # that part is already broken; another fault another time
        getattr(self, f"_{kind}")()

    def _sigkill(self) -> None:
        record = self._begin("sigkill")
        self._kill_and_restart()
        record.lifted = record.started

    def _sigkill_capture(self) -> None:
        """SIGKILL `posd run` alone, at once started again; delivery runs on meanwhile."""
        record = self._begin("sigkill_capture")
        self.log.capture_kills += 1
        self.rig.kill_capture()
        record.lifted = record.started
        self._start(self.rig.start_capture)

    def _sigkill_delivery(self) -> None:
        """SIGKILL `posd sync run` alone, mid-drain, and leave it down a while: payments go on
        and the backlog grows until the repair starts it again."""
        self.log.delivery_kills += 1
        self.rig.kill_delivery()
        self._hold("delivery_daemon", "sigkill_delivery", self._restart_delivery)

    def _restart_delivery(self) -> None:
        if not self.rig.delivery_alive():  # a restart of both may have brought it back already
            self._start(self.rig.start_delivery)

    def _sigterm(self) -> None:
        record = self._begin("sigterm")
        self.log.sigterm_exit_codes.append(self.rig.terminate())
        record.lifted = record.started
        self.start()

    def _journal_full(self) -> None:
        """Restart with a free-space reserve no disk has: every append is `journal_full`."""
        record = self._begin("journal_full")
        self.rig.write_config(FULL_MIN_FREE_BYTES)
        self.log.sigterm_exit_codes.append(self.rig.terminate())
        self.start()
        time.sleep(self._rng.uniform(*HOLD_S))
        self.rig.write_config(NORMAL_MIN_FREE_BYTES)
        record.lifted = time.monotonic()
        self.log.sigterm_exit_codes.append(self.rig.terminate())
        self.start()

    def _kms_unreachable(self) -> None:
        """KMS down, and a restart meanwhile: no KMS key at all, the offline RSA path."""
        kms = self.rig.kms
        kms.down()
        self._hold("kms", "kms_unreachable", kms.up)
        self._kill_and_restart()

    def _proxy_refused(self) -> None:
        self.rig.events.down()
        self._hold("delivery", "proxy_refused", self.rig.events.up)

    def _proxy_delay(self) -> None:
        self._set_default(delay(LATE_ANSWER_S), "proxy_delay")

    def _proxy_5xx(self) -> None:
        self._set_default(http_error(500, "InternalException"), "proxy_5xx")

    def _lost_response(self) -> None:
        self._set_default(LOSE, "lost_response")

    def _entry_throttled(self) -> None:
        self._fail_entries("ThrottlingException", "entry_throttled")

    def _entry_internal_failure(self) -> None:
        self._fail_entries("InternalFailure", "entry_internal_failure")

    def _reader_unplug(self) -> None:
        self.rig.reader.unplug()
        self._hold("reader", "reader_unplug", self.rig.reader.replug)

    def _reader_noise(self) -> None:
        record = self._begin("reader_noise")
        reader = self.rig.reader
        reader.add_noise(frames=2)
        reader.corrupt_lrc(1)
        reader.nak_frames(2)
        record.lifted = record.started

    def _palm_unplug(self) -> None:
        self.rig.palm_unplug()
        self._hold("palm", "palm_unplug", self.rig.palm_replug)

    def _second_daemon(self) -> None:
        """A technician's `posd run` on the lane's state dir: refused at once, lane untouched."""
        self._second("second_daemon", "run")

    def _second_delivery(self) -> None:
        """A second `posd sync run` beside the running one: refused at once (sync.lock)."""
        self._second("second_delivery", "sync", "run")

    def _second(self, kind: str, *words: str) -> None:
        record = self._begin(kind)
        env = {**os.environ, "PYTHONPATH": str(REPO)}
        env.pop("NOTIFY_SOCKET", None)
        command = [sys.executable, "-m", "posd", *words, "--config", str(self.rig.config)]
        started = time.monotonic()
        try:
            done = subprocess.run(
                command, env=env, capture_output=True, text=True, timeout=SECOND_DAEMON_TIMEOUT_S
            )
        except subprocess.TimeoutExpired:
            self.log.lane_taken.append(f"{kind}: a second posd {' '.join(words)} kept running")
        else:
            seconds = time.monotonic() - started
            self.log.second_daemon_seconds.append(seconds)
            if done.returncode == 0 or "pid" not in done.stderr:
                self.log.lane_taken.append(
                    f"{kind}: exit {done.returncode}: {done.stderr[-300:]!r}"
                )
            elif seconds > SECOND_DAEMON_BOUND_S:
                self.log.lane_taken.append(f"{kind}: refused only after {seconds:.1f} s")
        self._check_api_while(f"{kind} (after it exited)")
        record.lifted = time.monotonic()

    def _slow_clients(self) -> None:
        """Idle, slowloris and flush clients held on the API: it must answer meanwhile and
        still when they are let go (the repair). A restart meanwhile drops them early."""
        held = ExitStack()
        held.enter_context(hostile_clients(self.rig.socket, SLOW_IDLE, SLOW_LORIS, SLOW_FLUSHES))
        self._check_api_while("slow_clients (held)")

        def repair() -> None:
            self._check_api_while("slow_clients (at the end)")
            held.close()

        self._hold("api", "slow_clients", repair)

    def _check_api_while(self, what: str) -> None:
        if not self._api_answers():
            self.log.lane_taken.append(f"{what}: no answer within {API_PROBE_TIMEOUT_S} s")

    def _api_answers(self) -> bool:
        try:
            status, _, _ = exchange(
                self.rig.socket, "GET", "/v1/status", None, timeout=API_PROBE_TIMEOUT_S
            )
        except NO_ANSWER:
            return False
        return status == 200

    # -- helpers -----------------------------------------------------------------------------

    def _set_default(self, fault: Fault, kind: str) -> None:
        events = self.rig.events
        events.default = fault

        def repair() -> None:
            events.default = PASS

        self._hold("delivery", kind, repair)

    def _fail_entries(self, code: str, kind: str) -> None:
        events = self.rig.events
        events.entry_fault_rate = (code, ENTRY_FAULT_FRACTION)

        def repair() -> None:
            events.entry_fault_rate = None

        self._hold("delivery", kind, repair)

    def _kill_and_restart(self) -> None:
        self.log.kills += 1
        self.rig.kill()
        self.start()

    def start(self) -> None:
        """Start both daemons; a start that fails is recorded (and tried once more)."""
        self._start(self.rig.start)

    def ensure_running(self) -> None:
        """Both daemons up (the end of the run: the backlog is flushed through them)."""
        if not self.rig.capture_alive():
            self._start(self.rig.start_capture)
        if not self.rig.delivery_alive():
            self._start(self.rig.start_delivery)

    def _start(self, start: Callable[[], None]) -> None:
        for _ in range(START_ATTEMPTS):
            try:
                start()
                return
            except AssertionError as error:
                self.log.start_failures.append(str(error)[-2000:])
        raise DaemonWouldNotStartError(self.log.start_failures[-1])


SLOTS = {
    "kms_unreachable": "kms",
    "proxy_refused": "delivery",
    "proxy_delay": "delivery",
    "proxy_5xx": "delivery",
    "lost_response": "delivery",
    "entry_throttled": "delivery",
    "entry_internal_failure": "delivery",
    "reader_unplug": "reader",
    "palm_unplug": "palm",
    "slow_clients": "api",
    "sigkill_delivery": "delivery_daemon",
    # Not held: skipped while delivery is held down (a second one would then be the first).
    "second_delivery": "delivery_daemon",
}
