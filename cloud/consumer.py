"""The reference consumer: one SQS batch of posd events in, DynamoDB and alarms out.

Per message: parse it (poison: a batch item failure, so the redrive policy takes it to the
DLQ), dedupe on `event_id` and the digest of its content (a consistent batch read first; a
conditional put of the event's marker once its effects are written), open and check a record,
file a checkpoint or a terminal's alarm. After the batch, open checkpoints are re-checked
(`cloud.ranges`).

The consumer files only what it can attribute. A record is filed as a payment when its data
key binds the identity it claims (a KMS data key, unwrapped under the encryption context built
from that claim: `wire.opening.bound_to_claim`); an offline-wrapped one is held until a signed
checkpoint covers it (`cloud.records`). A record that fails its AEAD check is
`record_rejected`, one whose key binds another identity `forged_record`, a second record for
one seq `conflicting_record`; a checkpoint or alarm whose signature does not prove its lane is
`forged_signature`. None of them is filed, and none is retried.

A record read by a secure (P2PE) reader holds no clear card number: its encrypted tracks go
to AWS Payment Cryptography (`cloud.p2pe`), re-encrypted to the processor's key unless
decryption is configured. A block the service refuses is `p2pe_refused`: the record's seq is
received, its payment held and not filed; a throttle or an outage retries the message. A block
whose KSN another event used first (`cloud.ksns`: a replayed swipe) is held the same way, as
`p2pe_ksn_reused`, naming both events; the first payment stays filed.
"""

from __future__ import annotations

import dataclasses
import hashlib
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from enum import StrEnum
from typing import Any

import structlog
from botocore.exceptions import BotoCoreError, ClientError

from cloud.alarms import (
    CONFLICTING_RECORD,
    FORGED_RECORD,
    FORGED_SIGNATURE,
    P2PE_KSN_REUSED,
    P2PE_REFUSED,
    RECORD_REJECTED,
    Alarms,
)
from cloud.continuity import Continuity, ContinuitySettings
from cloud.errors import ConsumerError
from cloud.filing import CheckpointFiling
from cloud.ksns import KsnClaims
from cloud.metrics import RECORDS_FILED, RECORDS_HELD
from cloud.p2pe import (
    NOT_CONFIGURED,
    KsnReused,
    P2peRefused,
    PaymentCryptography,
    block_of,
    shown_pan,
)
from cloud.payload import masked_payload, secret_of
from cloud.ranges import Ranges
from cloud.records import HELD, P2PE_HELD, RECEIVED, REPORTED_TAMPERED, Claim, RecordRows
from cloud.store import Effects, Put, Store
from wire.errors import EnvelopeError, IdentityNotBound, KeyUnavailable, MalformedMessage
from wire.events import (
    TAMPERED_RECORD_ALARM,
    AlarmEvent,
    CheckpointEvent,
    Message,
    RecordEvent,
    parse_message,
)
from wire.keys import IDENTITY_BINDING_PROVIDERS, KeyUnwrapper
from wire.opening import b64, decrypt_event, wrapped_key_of
from wire.signing import SignatureError, SignerIdentity, Verifier, signed_bytes

DEFAULT_GAP_GRACE_SECONDS = 900.0
DEFAULT_RECHECK_LIMIT = 25  # open checkpoints (and watched journals) re-checked per invocation
# A terminal sends a checkpoint every `journal.checkpoint_every_seconds` (default 300) of
# records: three of those without one, while records come, is `checkpoints_stopped`.
DEFAULT_CHECKPOINT_SILENCE_SECONDS = 3 * 300.0
DEFAULT_CONTINUITY_CHECK_SECONDS = 60.0  # watched journals checked at most this often
FIFO_SUFFIX = ".fifo"

log = structlog.get_logger("cloud.consumer")

# What makes one message fail (and return to the queue) without failing the batch: a poison
# message, KMS or DynamoDB refusing or unreachable, an alarm the bus did not accept.
MESSAGE_FAILURES = (ConsumerError, KeyUnavailable, BotoCoreError, ClientError)


class Outcome(StrEnum):
    NEW = "new"
    DUPLICATE = "duplicate"
    REJECTED = "rejected"  # tampered, forged or conflicting: alarmed, not filed, not retried


class SameIdInBatch(ConsumerError):
    """Two messages of one batch carry the same event_id with different content: the second
    goes back to the queue and is judged after the first is applied."""

    code = "same_event_id_in_batch"


def content_digest(message: Message) -> str:
    """What a copy of an event must match to be a duplicate: the SHA-256 of its Detail without
    `signature` (a side event is signed again at each send, with a new ECDSA nonce)."""
    detail = message.event["detail"] if isinstance(message, RecordEvent) else message.signed
    return hashlib.sha256(signed_bytes(detail)).hexdigest()


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
        p2pe: PaymentCryptography | None = None,
    ) -> None:
        self._store = store
        self._p2pe = p2pe
        self._alarms = alarms
        self._unwrapper = unwrapper
        self._trust = trust
        self._rows = RecordRows(store)
        self._ksns = KsnClaims(store, clock)
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
        self._filing = CheckpointFiling(store, alarms, self._continuity, clock)
        self._ranges = Ranges(
            store,
            alarms,
            settings.gap_grace_seconds,
            settings.recheck_limit,
            clock,
            self._continuity,
            on_range_proven=self._release,
        )
        self._watched: set[str] = set()  # journals this process told continuity about

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
        failures = _with_fifo_successors(event.get("Records", []), failures)
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
        firsts: dict[str, str] = {}  # event_id -> digest, of this batch's first copies
        planned: list[tuple[int, Plan]] = []
        for index, message in enumerate(messages):
            event_id, digest = message.origin.event_id, content_digest(message)
            if seen.get(event_id) in (digest, "") or firsts.get(event_id) == digest:
                continue  # a copy of what was applied ("": a marker from before digests)
            if event_id in firsts:
                outcomes[index] = SameIdInBatch(f"event {event_id} twice with other content")
                continue
            firsts[event_id] = digest
            try:
                plan = self._plan(message)
            except MESSAGE_FAILURES as error:
                outcomes[index] = error
                continue
            if plan is None:
                outcomes[index] = Outcome.REJECTED
            else:
                effects = dataclasses.replace(plan.effects, digest=digest)
                planned.append((index, dataclasses.replace(plan, effects=effects)))
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
            secret = secret_of(decrypt_event(event, self._unwrapper))
            payload = masked_payload(secret)
            envelope = detail["envelope"]
            link = {
                "aad": b64(envelope["aad"], "aad"),
                "nonce": b64(envelope["nonce"], "nonce"),
                "ciphertext": b64(envelope["ciphertext"], "ciphertext"),
                "chain": str(detail.get("chain", "")),
            }
        except IdentityNotBound as error:
            self._refuse(message, FORGED_RECORD, str(error), sealed_by=self._sealer_of(detail))
            return None
        except EnvelopeError as error:
            self._refuse(message, RECORD_REJECTED, str(error))
            return None
        where = {
            "journal_id": origin.journal_id,
            "seq": message.seq,
            "store_id": origin.store_id,
            "terminal_id": origin.terminal_id,
        }
        provider = envelope["data_key"]["provider"]
        payment = {
            "event_id": origin.event_id,
            **where,
            "kind": detail["kind"],
            "captured_at": detail["captured_at"],
            "client_ref": detail["client_ref"],
            "meta": detail["meta"],
            "key_provider": provider,
            **payload,
        }
        refused = self._open_p2pe(secret, payment, origin.event_id)
        proven = provider in IDENTITY_BINDING_PROVIDERS
        row: dict[str, Any] = {**where, "event_id": origin.event_id, "state": RECEIVED, **link}
        if refused is not None:
            row[P2PE_HELD] = {**payment, "reason": refused.reason}  # alarmed, never filed
        elif not proven:
            row[HELD] = payment  # filed once a signed checkpoint covers it
        claim, other = self._rows.claim(row, proven)
        if claim is not Claim.TAKEN:
            self._refuse(
                message,
                CONFLICTING_RECORD,
                f"seq {message.seq} is held by another record",
                other_event_id=str((other or {}).get("event_id", "")),
                kept="this record" if claim is Claim.REPLACED else "the other record",
            )
            if claim is Claim.CONFLICT:
                return None
        if isinstance(refused, KsnReused):
            self._refuse(
                message,
                P2PE_KSN_REUSED,
                str(refused),
                refusal=refused.reason,
                first_event_id=refused.first_event_id,
                masked_pan=refused.masked_pan,
                key_ref=refused.key_ref,
                ksn=refused.ksn,
            )
        elif refused is not None:
            self._refuse(message, P2PE_REFUSED, str(refused), refusal=refused.reason)
        if proven and origin.journal_id not in self._watched:
            # only a record that proves its lane may start watching a journal of that lane
            self._continuity.watch_journal(
                origin.journal_id, origin.store_id, origin.terminal_id, message.seq
            )
            self._watched.add(origin.journal_id)
        effects = Effects(origin.event_id, "record", [])
        if refused is not None:
            return Plan(effects)
        metrics, figure = self._alarms.metrics, RECORDS_FILED if proven else RECORDS_HELD
        if proven:
            effects = Effects(
                origin.event_id, "record", [Put(self._store.tables.payments, payment)]
            )
        return Plan(effects, lambda: metrics.count(figure))

    def _open_p2pe(
        self, secret: Mapping[str, Any], payment: dict[str, Any], event_id: str
    ) -> P2peRefused | None:
        """Add a P2PE block's fields to the payment (`cloud.p2pe`: re-encrypted tracks, the
        masked PAN); the refusal, if the block cannot be opened and never will be, or its KSN
        was another event's (`cloud.ksns`: a replay; claimed before the service is asked, so
        a replay never reaches it). The record is then held and alarmed. A transient failure
        raises: the message is retried."""
        try:
            block = block_of(secret)
            if block is None:
                return None
            first = self._ksns.claim(block, event_id)
            if first is not None:
                masked = shown_pan(payment["meta"])
                if masked is not None:
                    payment["masked_pan"] = masked
                raise KsnReused(block, first, masked)
            if self._p2pe is None:
                raise P2peRefused(NOT_CONFIGURED, "the consumer has no payment cryptography")
            payment.update(self._p2pe.payment_fields(block, payment["meta"], event_id))
        except P2peRefused as refused:
            log.warning("cloud.p2pe_refused", event_id=event_id, reason=refused.reason)
            return refused
        return None

    def _release(self, journal_id: str, first_seq: int, last_seq: int) -> None:
        """A signed checkpoint's range is complete and its chain holds: the records held in it
        (offline-wrapped) are proven now, and filed."""
        for _ in self._rows.release(journal_id, first_seq, last_seq):
            self._alarms.metrics.count(RECORDS_FILED)

    def _refuse(self, message: Message, alarm: str, reason: str, **fields: Any) -> None:
        """Alarm about a message that is not filed (tampered, forged, conflicting, or a P2PE
        block the service refuses).

        A tampered, forged or conflicting record is not marked received: the genuine copy, if
        it arrives, is still accepted, and until then its seq counts as missing for its
        checkpoint. A refused P2PE record is authentic: its seq is received, its payment held
        (`cloud.records.P2PE_HELD`)."""
        origin = message.origin
        seq = message.seq if isinstance(message, RecordEvent | AlarmEvent) else None
        self._alarms.raise_once(
            f"{alarm}:{origin.event_id}:{content_digest(message)[:16]}",
            alarm,
            {
                "event_id": origin.event_id,
                "journal_id": origin.journal_id,
                "store_id": origin.store_id,
                "terminal_id": origin.terminal_id,
                "seq": seq,
                "reason": reason,
                **fields,
            },
        )

    def _sealer_of(self, detail: dict[str, Any]) -> dict[str, str] | None:
        """Which lane really sealed a record filed under another's identity: its data key's
        own encryption context, if KMS unwraps the key under it (then it is proven: only
        that lane could get such a key), else None."""
        try:
            wrapped = wrapped_key_of(detail)
            if wrapped.provider not in IDENTITY_BINDING_PROVIDERS:
                return None
            self._unwrapper.unwrap(wrapped)
        except (EnvelopeError, KeyUnavailable):
            return None
        return dict(wrapped.encryption_context)

    def _signer(self, message: CheckpointEvent | AlarmEvent) -> SignerIdentity | None:
        """Who signed a side event, if the signature proves the lane it claims; else None,
        and `forged_signature` is alarmed (`wire.signing`: issued by the trust anchor, valid
        at the consumer's time, not revoked, OU/CN the Detail's store and terminal)."""
        try:
            return self._trust.verify(message.signed, datetime.fromtimestamp(self._clock(), UTC))
        except SignatureError as error:
            self._refuse(message, FORGED_SIGNATURE, str(error), signature_error=error.code)
            log.warning(
                "cloud.signature_refused",
                event_id=message.origin.event_id,
                journal_id=message.origin.journal_id,
                reason=error.code,
            )
            return None

    def _checkpoint(self, message: CheckpointEvent) -> Plan | None:
        """File a checkpoint whose signature holds (`cloud.filing`) before its marker; None
        (rejected, not retried) if its signature proves nothing. A filed one is assessed at
        once."""
        signer = self._signer(message)
        if signer is None:
            return None
        filing = self._filing.file(message, signer)
        effects = Effects(message.origin.event_id, "checkpoint", [])
        item = filing.item
        if item is None:  # the same statement again, or an equivocation (alarmed)
            return Plan(effects)
        return Plan(effects, lambda: self._ranges.settle(item))

    def _terminal_alarm(self, message: AlarmEvent) -> Plan | None:
        if self._signer(message) is None:
            return None
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
        puts = [Put(tables.alarms, alarm, new_key="alarm_id")]
        if message.alarm == TAMPERED_RECORD_ALARM and message.seq is not None:
            # A terminal never forwards a record it reports: if one is here, it stays.
            marker = {**where, "seq": message.seq, "state": REPORTED_TAMPERED}
            self._rows.report_tampered({**marker, "event_id": origin.event_id})
        log.warning("cloud.terminal_alarm", alarm=message.alarm, seq=message.seq, **where)
        return Plan(Effects(origin.event_id, "alarm", puts))


def _with_fifo_successors(
    records: Sequence[Mapping[str, Any]], failures: list[dict[str, str]]
) -> list[dict[str, str]]:
    """From a FIFO queue (the v2 bus's subscriber), every message after a failed one in its
    message group fails too, as Lambda requires: the queue hands a group's messages over in
    order only while none of them is left behind. (They were applied already, if they could
    be: their redelivery is a duplicate, counted and not applied again.)"""
    failed = {failure["itemIdentifier"] for failure in failures}
    stopped: set[str] = set()
    for record in records:
        if not str(record.get("eventSourceARN", "")).endswith(FIFO_SUFFIX):
            continue
        group = str(record.get("attributes", {}).get("MessageGroupId", ""))
        message_id = str(record["messageId"])
        if group in stopped and message_id not in failed:
            failed.add(message_id)
            failures.append({"itemIdentifier": message_id})
        elif message_id in failed:
            stopped.add(group)
    return failures


def _log_failure(message_id: str, error: Exception) -> None:
    log.warning(
        "cloud.message_failed", message_id=message_id, error=type(error).__name__, reason=str(error)
    )
