"""The register's payments: capture, idempotent retries, cancel, void, and what became of one.

The journal is the memory: a payment is answered only once its record is durable, and a retry
with the same `client_ref`, also after a restart, gets the first answer rebuilt from that
record (its clear metadata holds everything the answer says). Refused attempts journal
nothing: a retry after a refusal is a new attempt. Recent refusals are remembered in memory
for `GET`, so a register recovering from its own crash can tell "refused" from "never seen".
"""

from __future__ import annotations

import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, date, datetime
from typing import Any

from drivers.card.reader import CardReader
from drivers.palm.scanner import PalmScanner
from posd.api_answers import (
    CancelOutcome,
    PaymentAnswer,
    PaymentLookup,
    VoidAnswer,
)
from posd.capture import CaptureParts, Payment
from posd.config import OfflineLimits
from posd.daemon.lane import JOIN_GRACE_S, Join, Lane, Replay
from posd.daemon.limits import NO_BACKLOG, Backlog, backlog_of, check_limits, needs_backlog
from posd.daemon.metrics import Metrics
from posd.daemon.reading import AcceptanceRules, read_card, read_either, read_palm
from posd.daemon.refusals import (
    CANCELLED,
    CURRENCY_NOT_ACCEPTED,
    DEVICE_UNAVAILABLE,
    DISK_BELOW_RESERVE,
    IN_PROGRESS,
    INTERNAL_ERROR,
    JOURNAL_FULL,
    NO_DATA_KEY,
    NOT_CANCELLABLE,
    NOT_FOUND,
    refuse,
)
from posd.daemon.requests import CARD, PALM, PaymentRequest
from posd.daemon.supervisor import DeviceSupervisor
from posd.errors import DiskBelowReserveError, JournalFullError, KeyProviderError, Refusal
from posd.journal import DuplicateClientRef, Journal
from posd.recorder import Recorder
from sync.outbox import OutboxRecord

VOID_KIND = "payment_void"
VOID_REF_PREFIX = "void:"  # a register's client_ref never holds ':' (see requests.py)
NO_SECRET = b"{}"  # a void carries no sensitive data, but every record is sealed
RECENT_REFUSALS = 256
CANCEL_WAIT_S = 5.0
CANCEL_RESEND_S = 0.5  # a cancel that raced the arming of the reader is sent again

Fingerprint = tuple[object, object, object]


@dataclass(frozen=True)
class RuntimeRules:
    """What SIGHUP may change while payments go on."""

    limits: OfflineLimits
    acceptance: AcceptanceRules
    currencies: tuple[str, ...]


def payment_answer(record: OutboxRecord, client_ref: str) -> PaymentAnswer:
    """The answer of the payment journaled under `client_ref` (its clear metadata, which
    `posd.capture` writes, holds everything the answer says)."""
    meta: Any = record.meta
    return {
        "event_id": record.event_id,
        "seq": record.seq,
        "client_ref": client_ref,
        "state": "captured",
        "method": meta.get("method"),
        "amount_minor": meta.get("amount"),
        "currency": meta.get("currency"),
        "brand": meta.get("brand"),
        "masked_pan": meta.get("masked_pan"),
        "entry_mode": meta.get("entry_mode"),
        "offline": bool(meta.get("offline", False)),
        "key_source": record.data_key.provider,
        "captured_at": record.captured_at,
    }


def void_answer(void: OutboxRecord, original: OutboxRecord, client_ref: str) -> VoidAnswer:
    return {
        "event_id": void.event_id,
        "seq": void.seq,
        "client_ref": client_ref,
        "state": "voided",
        "voids_event_id": original.event_id,
        "key_source": void.data_key.provider,
        "captured_at": void.captured_at,
    }


class PaymentService:
    def __init__(
        self,
        journal: Journal,
        recorder: Recorder,
        devices: DeviceSupervisor,
        lane: Lane,
        metrics: Metrics,
        rules: Callable[[], RuntimeRules],
        link_offline: Callable[[], bool],
        lane_id: str,
        today: Callable[[], date] = lambda: datetime.now(UTC).date(),
    ) -> None:
        self._journal = journal
        self._recorder = recorder
        self._devices = devices
        self._lane = lane
        self._metrics = metrics
        self._rules = rules
        self._link_offline = link_offline
        self._lane_id = lane_id
        self._today = today
        self._refused: OrderedDict[str, Refusal] = OrderedDict()
        self._refused_lock = threading.Lock()

    # -- queries --------------------------------------------------------------------------

    def backlog(self) -> Backlog:
        return backlog_of(self._journal.summary(), self._journal.now())

    def _check_limits(self, limits: OfflineLimits, amount: int, currency: str) -> None:
        """Against the journal's free upper bound of the backlog first: the exact summary (a
        scan of every record, long with a large backlog) only decides what the bound would
        refuse, so that a payment does not wait for a scan while the lane is within limits."""
        if not needs_backlog(limits):
            check_limits(limits, NO_BACKLOG, amount, currency)
            return
        bound = self._journal.backlog_bound()
        if bound is not None:
            try:
                check_limits(limits, backlog_of(bound, self._journal.now()), amount, currency)
                return
            except Refusal:
                pass  # maybe only the bound's slack: the exact figures decide
        check_limits(limits, self.backlog(), amount, currency)

    def _journaled(self, client_ref: str) -> tuple[PaymentAnswer, Fingerprint] | None:
        record = self._journal.find_by_client_ref(client_ref)
        if record is None:
            return None
        meta: Mapping[str, Any] = record.meta
        fingerprint = (meta.get("amount"), meta.get("currency"), meta.get("method"))
        return self._answer_now(record, client_ref), fingerprint

    def _answer_now(self, record: OutboxRecord, client_ref: str) -> PaymentAnswer:
        """The journaled payment as it stands now: `voided` once a void was journaled (a
        retry of the POST after a void must not say `captured`)."""
        answer = payment_answer(record, client_ref)
        void = self._journal.find_by_client_ref(VOID_REF_PREFIX + client_ref)
        if void is not None:
            answer["state"] = "voided"
            answer["void_event_id"] = void.event_id
        return answer

    # -- payments -------------------------------------------------------------------------

    def create(self, request: PaymentRequest) -> PaymentAnswer:
        entry = self._lane.enter(request, self._journaled)
        if isinstance(entry, Replay):
            return entry.answer
        if isinstance(entry, Join):
            try:
                return entry.attempt.result(entry.attempt.request.timeout_s + JOIN_GRACE_S)
            finally:
                self._lane.unjoin(entry.attempt)
        attempt = entry.attempt
        started = time.monotonic()
        try:
            with self._journal.capture_priority():
                answer = self._capture(request, lambda: attempt.cancel_requested)
        except Refusal as refusal:
            attempt.settle(None, refusal)
            self._remember_refusal(request.client_ref, refusal)
            raise
        except BaseException:
            attempt.settle(None, refuse(INTERNAL_ERROR, "the attempt failed; try again"))
            raise
        else:
            attempt.settle(answer, None)
            self._metrics.captured(request.method, answer["brand"], time.monotonic() - started)
            return answer
        finally:
            self._lane.leave(attempt)

    def _capture(self, request: PaymentRequest, cancelled: Callable[[], bool]) -> PaymentAnswer:
        rules = self._rules()
        if request.currency not in rules.currencies:
            raise refuse(
                CURRENCY_NOT_ACCEPTED,
                f"this lane takes {', '.join(rules.currencies)} (see [payments] currencies)",
            )
        self._check_limits(rules.limits, request.amount_minor, request.currency)
        payment = Payment(request.amount_minor, request.currency, self._lane_id)
        if cancelled():
            raise refuse(CANCELLED, "the payment was cancelled")
        parts = self._read(request, payment, rules.acceptance)
        meta = {**parts.meta, "method": request.method, "offline": self._link_offline()}
        record = self._record(parts.kind, meta, parts.secret, request.client_ref)
        return payment_answer(record, request.client_ref)

    def _read(
        self, request: PaymentRequest, payment: Payment, rules: AcceptanceRules
    ) -> CaptureParts:
        timeout, today = request.timeout_s, self._today()
        if request.method == CARD:
            return read_card(self._devices.card_reader(), payment, timeout, rules, today)
        if request.method == PALM:
            return read_palm(self._devices.palm_scanner(), payment, timeout)
        reader: CardReader | None = self._available(self._devices.card_reader)
        scanner: PalmScanner | None = self._available(self._devices.palm_scanner)
        if reader is not None and scanner is not None:
            return read_either(reader, scanner, payment, timeout, rules, today)
        if reader is not None:
            return read_card(reader, payment, timeout, rules, today)
        if scanner is not None:
            return read_palm(scanner, payment, timeout)
        raise refuse(DEVICE_UNAVAILABLE, "neither the card reader nor the palm scanner is usable")

    @staticmethod
    def _available(get: Callable[[], Any]) -> Any:
        try:
            return get()
        except Refusal:
            return None

    def _record(
        self, kind: str, meta: Mapping[str, Any], secret: bytes, client_ref: str
    ) -> OutboxRecord:
        try:
            return self._recorder.record(kind, meta, secret, client_ref=client_ref)
        except DuplicateClientRef:
            existing = self._journal.find_by_client_ref(client_ref)
            if existing is None:
                raise
            return existing
        except DiskBelowReserveError as error:
            raise refuse(DISK_BELOW_RESERVE, str(error)) from None
        except JournalFullError as error:
            raise refuse(JOURNAL_FULL, str(error)) from None
        except KeyProviderError as error:
            raise refuse(NO_DATA_KEY, str(error)) from None

    def _remember_refusal(self, client_ref: str, refusal: Refusal) -> None:
        with self._refused_lock:
            self._refused[client_ref] = refusal
            self._refused.move_to_end(client_ref)
            while len(self._refused) > RECENT_REFUSALS:
                self._refused.popitem(last=False)

    # -- cancel, void, look up ------------------------------------------------------------

    def cancel(self, client_ref: str) -> CancelOutcome:
        attempt = self._lane.current()
        if attempt is None or attempt.request.client_ref != client_ref:
            if self._journal.find_by_client_ref(client_ref) is not None:
                raise refuse(NOT_CANCELLABLE, "the payment was captured; void it instead")
            raise refuse(NOT_FOUND, "no payment with this client_ref is in progress")
        attempt.cancel_requested = True
        deadline = time.monotonic() + CANCEL_WAIT_S
        while not attempt.done.is_set() and time.monotonic() < deadline:
            self._devices.cancel_all()
            attempt.done.wait(CANCEL_RESEND_S)
        try:
            return attempt.result(0)
        except Refusal as refusal:
            return {
                "client_ref": client_ref,
                "state": "cancelled" if refusal.code == CANCELLED else "refused",
                "error": refusal.code,
            }

    def void(self, client_ref: str) -> tuple[VoidAnswer, bool]:
        """The void's answer, and whether this call created it."""
        current = self._lane.current()
        if current is not None and current.request.client_ref == client_ref:
            raise refuse(IN_PROGRESS, "the payment is still in progress; cancel it instead")
        original = self._journal.find_by_client_ref(client_ref)
        if original is None:
            raise refuse(NOT_FOUND, "no captured payment has this client_ref")
        void_ref = VOID_REF_PREFIX + client_ref
        existing = self._journal.find_by_client_ref(void_ref)
        if existing is not None:
            return void_answer(existing, original, client_ref), False
        meta = {"voids_event_id": original.event_id, "voids_seq": original.seq}
        record = self._record(VOID_KIND, {**meta, "lane": self._lane_id}, NO_SECRET, void_ref)
        self._metrics.voided()
        return void_answer(record, original, client_ref), True

    def get(self, client_ref: str) -> PaymentLookup:
        current = self._lane.current()
        if current is not None and current.request.client_ref == client_ref:
            request = current.request
            return {
                "client_ref": client_ref,
                "state": "in_progress",
                "method": request.method,
                "amount_minor": request.amount_minor,
                "currency": request.currency,
            }
        record = self._journal.find_by_client_ref(client_ref)
        if record is not None:
            return self._answer_now(record, client_ref)
        with self._refused_lock:
            refusal = self._refused.get(client_ref)
        if refusal is not None:
            return {
                "client_ref": client_ref,
                "state": "refused",
                "error": refusal.code,
                "message": refusal.message,
            }
        raise refuse(NOT_FOUND, "no payment with this client_ref is known")
