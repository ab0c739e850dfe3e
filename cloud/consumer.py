"""The reference consumer: one SQS batch of posd events in, DynamoDB and alarms out.

Per message: parse it (poison: a batch item failure, so the redrive policy takes it to the
DLQ), dedupe on `event_id` (a consistent batch read first; a conditional put of the event's
marker once its effects are written), open and check a record (a tampered one is recorded
and alarmed, never written as a payment), file a checkpoint or a terminal's alarm. After the
batch, open checkpoints are re-checked (`cloud.ranges`).
"""

from __future__ import annotations

import hashlib
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

import structlog
from botocore.exceptions import BotoCoreError, ClientError

from cloud.alarms import RECORD_REJECTED, Alarms
from cloud.continuity import Continuity, ContinuitySettings
from cloud.errors import ConsumerError
from cloud.filing import CheckpointFiling, Verdict
from cloud.payload import masked_payload
from cloud.ranges import RECEIVED, REPORTED_TAMPERED, Ranges
from cloud.store import Effects, Put, Store
from wire.errors import EnvelopeError, KeyUnavailable, MalformedMessage
from wire.events import (
    TAMPERED_RECORD_ALARM,
    AlarmEvent,
    CheckpointEvent,
    Message,
    RecordEvent,
    parse_message,
)
from wire.keys import KeyUnwrapper
from wire.opening import b64, decrypt_event
from wire.signing import Verifier

DEFAULT_GAP_GRACE_SECONDS = 900.0
DEFAULT_RECHECK_LIMIT = 25  # open checkpoints (and watched journals) re-checked per invocation
# A terminal sends a checkpoint every `journal.checkpoint_every_seconds` (default 300) of
# records: three of those without one, while records come, is `checkpoints_stopped`.
DEFAULT_CHECKPOINT_SILENCE_SECONDS = 3 * 300.0
DEFAULT_CONTINUITY_CHECK_SECONDS = 60.0  # watched journals checked at most this often

log = structlog.get_logger("cloud.consumer")

# What makes one message fail (and return to the queue) without failing the batch: a poison
# message, KMS or DynamoDB refusing or unreachable, an alarm the bus did not accept.
MESSAGE_FAILURES = (ConsumerError, KeyUnavailable, BotoCoreError, ClientError)


class Outcome(StrEnum):
    NEW = "new"
    DUPLICATE = "duplicate"
    REJECTED = "rejected"  # a tampered record: recorded and alarmed, not retried


@dataclass(frozen=True)
class Plan:
    """A new event's effects, and what to do once they are committed."""

    effects: Effects
    then: Callable[[], object] | None = None


@dataclass(frozen=True)
class ConsumerSettings:
    gap_grace_seconds: float = DEFAULT_GAP_GRACE_SECONDS
    recheck_limit: int = DEFAULT_RECHECK_LIMIT
    checkpoint_silence_seconds: float = DEFAULT_CHECKPOINT_SILENCE_SECONDS
    continuity_check_seconds: float = DEFAULT_CONTINUITY_CHECK_SECONDS


class Consumer:
    def __init__(
        self,
        store: Store,
        alarms: Alarms,
        unwrapper: KeyUnwrapper,
        trust: Verifier,
        settings: ConsumerSettings = ConsumerSettings(),
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._store = store
        self._alarms = alarms
        self._unwrapper = unwrapper
        self._trust = trust
        self._clock = clock
        self._recheck_limit = settings.recheck_limit
        self._continuity = Continuity(
            store,
            alarms,
            ContinuitySettings(
                settings.gap_grace_seconds,
                settings.checkpoint_silence_seconds,
                settings.continuity_check_seconds,
            ),
            clock,
        )
        self._filing = CheckpointFiling(store, alarms, trust, self._continuity, clock)
        self._ranges = Ranges(
            store,
            alarms,
            settings.gap_grace_seconds,
            settings.recheck_limit,
            clock,
            self._continuity,
        )

    # -- the Lambda's two entry points ------------------------------------------------------

    def handle_sqs(self, event: Mapping[str, Any]) -> dict[str, list[dict[str, str]]]:
        """An SQS event source batch; returns the partial batch response."""
        failures: list[dict[str, str]] = []
        parsed: list[tuple[str, Message]] = []
        for message in event.get("Records", []):
            message_id = str(message["messageId"])
            try:
                parsed.append((message_id, parse_message(str(message.get("body", "")))))
            except MalformedMessage as error:
                _log_failure(message_id, error)
                failures.append({"itemIdentifier": message_id})
        outcomes = self.process_many([m for _, m in parsed])
        for (message_id, _), outcome in zip(parsed, outcomes, strict=True):
            if isinstance(outcome, Exception):
                _log_failure(message_id, outcome)
                failures.append({"itemIdentifier": message_id})
        try:
            self.recheck_open()
        except (BotoCoreError, ClientError, ConsumerError) as error:
            # The batch itself is done; the next invocation (or the schedule) re-checks.
            log.warning("cloud.recheck_failed", error=type(error).__name__, reason=str(error))
        return {"batchItemFailures": failures}

    def recheck_open(self) -> int:
        """Re-assess open checkpoints (least recently checked first), then the watched
        journals' continuity (`cloud.continuity`: uncovered seqs, silent checkpoints, a
        replaced journal's tail); returns how many checkpoints were closed."""
        closed = self._ranges.recheck_open()
        self._continuity.check(self._recheck_limit)
        return closed

    # -- messages -------------------------------------------------------------------------------

    def process(self, message: Message) -> Outcome:
        """One message; raises what would make it a batch item failure."""
        (outcome,) = self.process_many([message])
        if isinstance(outcome, Exception):
            raise outcome
        return outcome

    def process_many(self, messages: Sequence[Message]) -> list[Outcome | Exception]:
        """Each message's outcome, or the error that makes it fail (alone).

        One batch read tells the duplicates; the new events are applied together, or one by
        one when that fails (a throttle, a forged record clashing with a genuine one), so that
        one message's trouble stays its own."""
        outcomes: list[Outcome | Exception] = [Outcome.DUPLICATE] * len(messages)
        try:
            seen = self._store.seen({m.origin.event_id for m in messages})
        except MESSAGE_FAILURES as error:
            return [error] * len(messages)
        firsts: dict[str, int] = {}
        planned: list[tuple[int, Plan]] = []
        for index, message in enumerate(messages):
            event_id = message.origin.event_id
            if event_id in seen or event_id in firsts:
                continue
            firsts[event_id] = index
            try:
                plan = self._plan(message)
            except MESSAGE_FAILURES as error:
                outcomes[index] = error
                continue
            if plan is None:
                outcomes[index] = Outcome.REJECTED
            else:
                planned.append((index, plan))
        self._commit(planned, outcomes)
        for index, message in enumerate(messages):
            # seen before, a second copy in this batch, or lost a race with another invocation
            if outcomes[index] is Outcome.DUPLICATE:
                try:
                    self._store.count_copy(message.origin.event_id)
                except MESSAGE_FAILURES as error:
                    outcomes[index] = error
        return outcomes

    def _commit(
        self, planned: Sequence[tuple[int, Plan]], outcomes: list[Outcome | Exception]
    ) -> None:
        try:
            applied = self._store.apply([plan.effects for _, plan in planned], self._clock())
        except MESSAGE_FAILURES:
            applied = set()
            for index, plan in planned:
                try:
                    applied |= self._store.apply([plan.effects], self._clock())
                except MESSAGE_FAILURES as error:
                    outcomes[index] = error
        for index, plan in planned:
            if plan.effects.event_id in applied:
                outcomes[index] = Outcome.NEW
                self._after(plan)

    def _after(self, plan: Plan) -> None:
        """A new checkpoint is assessed at once; failing that, it is open and re-checked."""
        if plan.then is None:
            return
        try:
            plan.then()
        except (BotoCoreError, ClientError, ConsumerError) as error:
            log.warning("cloud.settle_failed", error=type(error).__name__, reason=str(error))

    def _plan(self, message: Message) -> Plan | None:
        """What applying a new message writes; None for a rejected (tampered) record."""
        if isinstance(message, RecordEvent):
            return self._record(message)
        if isinstance(message, CheckpointEvent):
            return self._checkpoint(message)
        return self._terminal_alarm(message)

    def _record(self, message: RecordEvent) -> Plan | None:
        origin, event = message.origin, message.event
        detail = event["detail"]
        try:
            plaintext = decrypt_event(event, self._unwrapper)
            payload = masked_payload(plaintext)
            envelope = detail["envelope"]
            link = {
                "aad": b64(envelope["aad"], "aad"),
                "nonce": b64(envelope["nonce"], "nonce"),
                "ciphertext": b64(envelope["ciphertext"], "ciphertext"),
                "chain": str(detail.get("chain", "")),
            }
        except EnvelopeError as error:
            self._rejected(message, error)
            return None
        where = {
            "journal_id": origin.journal_id,
            "seq": message.seq,
            "store_id": origin.store_id,
            "terminal_id": origin.terminal_id,
        }
        payment = {
            "event_id": origin.event_id,
            **where,
            "kind": detail["kind"],
            "captured_at": detail["captured_at"],
            "client_ref": detail["client_ref"],
            "meta": detail["meta"],
            "key_provider": envelope["data_key"]["provider"],
            **payload,
        }
        record = {**where, "event_id": origin.event_id, "state": RECEIVED, **link}
        tables = self._store.tables
        puts = [Put(tables.payments, payment), Put(tables.records, record)]
        return Plan(Effects(origin.event_id, "record", puts))

    def _rejected(self, message: RecordEvent, error: EnvelopeError) -> None:
        """A record that fails its AEAD or AAD check: tampered on the way, or forged.

        It is not marked received: the genuine copy, if it arrives, is still accepted, and
        until then the seq counts as missing for its checkpoint."""
        origin = message.origin
        fingerprint = hashlib.sha256(repr(sorted(message.event["detail"].items())).encode())
        self._alarms.raise_once(
            f"{RECORD_REJECTED}:{origin.event_id}:{fingerprint.hexdigest()[:16]}",
            RECORD_REJECTED,
            {
                "event_id": origin.event_id,
                "journal_id": origin.journal_id,
                "store_id": origin.store_id,
                "terminal_id": origin.terminal_id,
                "seq": message.seq,
                "reason": str(error),
            },
        )

    def _checkpoint(self, message: CheckpointEvent) -> Plan | None:
        """Verify and file a checkpoint (`cloud.filing`) before its marker; None (rejected,
        not retried) if its signature proves nothing. A filed one is assessed at once."""
        filing = self._filing.file(message)
        if filing.verdict is Verdict.FORGED:
            return None
        effects = Effects(message.origin.event_id, "checkpoint", [])
        item = filing.item
        if item is None:  # the same statement again, or an equivocation (alarmed)
            return Plan(effects)
        return Plan(effects, lambda: self._ranges.settle(item))

    def _terminal_alarm(self, message: AlarmEvent) -> Plan:
        origin, tables = message.origin, self._store.tables
        where = {
            "journal_id": origin.journal_id,
            "store_id": origin.store_id,
            "terminal_id": origin.terminal_id,
        }
        alarm = {
            "alarm_id": origin.event_id,
            "alarm": message.alarm,
            "origin": "terminal",
            "detail": message.detail,
            "raised_at": message.raised_at,
            "seq": message.seq,
            **where,
        }
        puts = [Put(tables.alarms, alarm)]
        if message.alarm == TAMPERED_RECORD_ALARM and message.seq is not None:
            key = {"journal_id": origin.journal_id, "seq": message.seq}
            # A terminal never forwards a record it reports: if one is here, keep it.
            if self._store.get(tables.records, key) is None:
                marker = {**where, "seq": message.seq, "state": REPORTED_TAMPERED}
                puts.append(Put(tables.records, {**marker, "event_id": origin.event_id}))
        log.warning("cloud.terminal_alarm", alarm=message.alarm, seq=message.seq, **where)
        return Plan(Effects(origin.event_id, "alarm", puts))


def _log_failure(message_id: str, error: Exception) -> None:
    log.warning(
        "cloud.message_failed", message_id=message_id, error=type(error).__name__, reason=str(error)
    )
