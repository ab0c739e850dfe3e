"""Faults at random while the register pays: the catalogue and the scheduler that fires them.

Process faults (SIGKILL, SIGTERM, the journal at its size cap) run inline and end with the
daemon started again. The others hold for a few seconds in a slot of their own (delivery, KMS,
card reader, palm scanner, the API's socket: idle, slowloris and flush clients held on it)
and are repaired when their time is up; faults of different slots
overlap. Every fault is recorded with when it started and when it was lifted: the lane must
serve payments again after each, and the soak reports how long that took.
"""

from __future__ import annotations

import random
import time
from collections import Counter
from collections.abc import Callable
from contextlib import ExitStack
from dataclasses import dataclass, field

from bench.hostile_clients import hostile_clients
from tests.chaos.rig import FULL_MIN_FREE_BYTES, NORMAL_MIN_FREE_BYTES, Rig
from tests.sync.faultproxy import LOSE, PASS, Fault, delay, http_error

TICK_S = 0.1
GAP_S = (0.5, 2.5)  # between two faults
HOLD_S = (1.0, 6.0)  # how long a held fault lasts
LATE_ANSWER_S = 2.0  # delay fault: beyond the daemon's 1 s read timeout
ENTRY_FAULT_FRACTION = 0.5
START_ATTEMPTS = 2
# slow_clients: what a careless register or a local attacker holds on the API's socket.
SLOW_IDLE, SLOW_LORIS, SLOW_FLUSHES = 100, 100, 10

# kind -> relative weight. Kills dominate: the long run must reach 100 of them.
WEIGHTS: dict[str, float] = {
    "sigkill": 0.22,
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
    "slow_clients": 0.05,
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
    kills: int = 0
    sigterm_exit_codes: list[int] = field(default_factory=list)
    start_failures: list[str] = field(default_factory=list)

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

    # -- the loop ----------------------------------------------------------------------------

    def run_for(self, seconds: float) -> None:
        deadline = time.monotonic() + seconds
        next_fault = time.monotonic() + self._rng.uniform(*GAP_S)
        while time.monotonic() < deadline:
            self._repair_due()
            if time.monotonic() >= next_fault:
                self._fire(self._pick())
                next_fault = time.monotonic() + self._rng.uniform(*GAP_S)
            time.sleep(TICK_S)
        self.repair_all()

    def repair_all(self) -> None:
        for slot in list(self._held):
            self._repair(slot)

    def _pick(self) -> str:
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

    def _slow_clients(self) -> None:
        held = ExitStack()
        held.enter_context(hostile_clients(self.rig.socket, SLOW_IDLE, SLOW_LORIS, SLOW_FLUSHES))
        self._hold("api", "slow_clients", held.close)

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
        """Start the daemon; a start that fails is recorded (and tried once more)."""
        for _ in range(START_ATTEMPTS):
            try:
                self.rig.start()
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
}
