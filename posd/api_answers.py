"""The register API's answers as types: the JSON bodies `docs/openapi.yaml` describes.

The daemon builds them, the CLI and the API client read them, mypy checks both sides, and
one test (`tests/posd/daemon/test_answers.py`) checks each type's keys and required keys against
the document, so the code, the types and the document cannot drift apart. Standard library
only: the CLI imports this to read an answer without loading the daemon. (No postponed
annotations here: Python 3.11 sees `NotRequired` only in evaluated ones.)
"""

from typing import Literal, NotRequired, TypedDict


class PaymentAnswer(TypedDict):
    """A captured payment (also what a retry, a replay after a restart and `GET` answer)."""

    event_id: str
    seq: int
    client_ref: str
    state: Literal["captured", "voided"]
    method: str
    amount_minor: int
    currency: str
    brand: str | None
    masked_pan: str | None
    entry_mode: str
    offline: bool
    key_source: str
    captured_at: str
    void_event_id: NotRequired[str]


class PaymentInProgressAnswer(TypedDict):
    client_ref: str
    state: Literal["in_progress"]
    method: str
    amount_minor: int
    currency: str


class PaymentRefusedAnswer(TypedDict):
    client_ref: str
    state: Literal["refused"]
    error: str
    message: str


class CancelAnswer(TypedDict):
    """How an attempt ended when it did not capture."""

    client_ref: str
    state: Literal["cancelled", "refused"]
    error: str


class VoidAnswer(TypedDict):
    event_id: str
    seq: int
    client_ref: str
    state: Literal["voided"]
    voids_event_id: str
    key_source: str
    captured_at: str


class ErrorAnswer(TypedDict):
    """Every refusal: a stable code (`posd.daemon.refusals`) and a message for people."""

    error: str
    message: str
    fields: NotRequired[dict[str, str]]


class P2peAnswer(TypedDict):
    """Whether a card reader encrypts in its head, and how far its DUKPT counters are used."""

    encrypting: bool
    scheme: str | None
    format: str | None
    last_ksn: str | None
    counter_used: float | None
    nearly_exhausted: bool


class DeviceAnswer(TypedDict):
    name: str
    driver: str
    state: str
    connected: bool
    last_error: str | None
    model: str | None
    firmware: str | None
    serial_number: str | None
    reconnects: int
    disconnects: int
    disconnected_since: float | None
    p2pe: P2peAnswer | None  # card readers only


class DevicesAnswer(TypedDict):
    devices: list[DeviceAnswer]
    pid: int


class FlushAnswer(TypedDict):
    completed: bool
    pending: int
    waited_seconds: float
    link_state: str
    last_error: str | None


class TerminalAnswer(TypedDict):
    store_id: str
    terminal_id: str
    mode: str


class LinkAnswer(TypedDict):
    state: str
    since: str
    last_delivery: str | None
    last_error: str | None


class DeliveryAnswer(TypedDict):
    """The delivery daemon (`posd sync run`) as its status file tells it: `running` while
    it writes that file (every second at least); `last_seen` when it last did (RFC 3339)."""

    running: bool
    pid: int | None
    started_at: str | None
    last_seen: str | None


class PendingAnswer(TypedDict):
    count: int
    amount_by_currency: dict[str, int]
    oldest_age_seconds: float | None


class CheckpointsAnswer(TypedDict):
    last_seq: int | None
    pending: int


class AcknowledgedAnswer(TypedDict):
    """The cloud's proven watermark of this journal as last read (all None before the first
    read; `error` None when the last read succeeded)."""

    journal_id: str | None
    proven_seq: int | None
    checked_at: str | None
    error: str | None


class LimitAnswer(TypedDict):
    """One offline limit (None: no limit) and what is left before it refuses."""

    limit: float | None
    headroom: NotRequired[float | None]
    headroom_by_currency: NotRequired[dict[str, float | None]]


class LimitsAnswer(TypedDict):
    max_payment_amount: LimitAnswer
    max_pending_amount: LimitAnswer
    max_pending_count: LimitAnswer
    max_pending_age_seconds: LimitAnswer


LaneStateName = Literal["ready", "degraded", "not_ready", "shutting_down"]


class InFlightAnswer(TypedDict):
    """The payment the lane is taking now (a register that lost its client_ref cancels it)."""

    client_ref: str
    method: str
    amount_minor: int
    currency: str


class RefusalAnswer(TypedDict):
    """The refusal every payment gets now: its code and its cause."""

    error: str
    message: str


class StatusAnswer(TypedDict):
    """`state`: `not_ready` while every payment is refused (`refusing` names the code they
    all get and its cause, `not_ready_reason` the cause alone), `degraded` while a device is
    down. `key_error`: the key service's last error (None once it answers again)."""

    terminal: TerminalAnswer
    version: str
    uptime_seconds: float
    state: LaneStateName
    not_ready_reason: str | None
    refusing: RefusalAnswer | None
    in_flight: InFlightAnswer | None
    link: LinkAnswer
    delivery: DeliveryAnswer
    pending: PendingAnswer
    quarantined: int
    tampered: int
    unreadable: int
    checkpoints: CheckpointsAnswer
    acknowledged: AcknowledgedAnswer
    devices: dict[str, str]
    key_source: str | None
    key_error: str | None
    limits: LimitsAnswer
    clock: str  # "system", or "rehearsal xN" (sync/clock.py): never on a production lane


PaymentLookup = PaymentAnswer | PaymentInProgressAnswer | PaymentRefusedAnswer
CancelOutcome = PaymentAnswer | CancelAnswer
