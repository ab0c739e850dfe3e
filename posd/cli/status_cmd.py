"""`posd status`: one screen a technician reads in five seconds, and an exit code scripts use.

The first line says whether the lane can sell (and if not, the refusal every payment gets),
then whether it ships and what needs a person (`posd.cli.status_verdict`). One shape from
either source (`LaneStatus`): the daemon's `GET /v1/status` when it answers (within
`STATUS_ANSWER_TIMEOUT_S`: a hung daemon must not hang the technician); otherwise the part of
that answer the state dir and the config tell (the journal's backlog, deliveries, the last
delivery and error, the offline headroom), with the daemon shown as not running or not
answering and what only a running daemon knows left out. `--json` prints it as it is.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any, NotRequired, TypedDict, cast

from posd.api_answers import (
    AcknowledgedAnswer,
    CheckpointsAnswer,
    DeliveryAnswer,
    InFlightAnswer,
    LimitsAnswer,
    LinkAnswer,
    PendingAnswer,
    RefusalAnswer,
    TerminalAnswer,
)
from posd.cli.args import add_json_argument, add_location_arguments
from posd.cli.humanize import NONE, amounts, duration, human
from posd.cli.output import emit, key_values
from posd.cli.status_verdict import (
    DELIVERY_FIX,
    EXIT_HELP,
    JOURNALCTL,
    NOT_ANSWERING,
    NOT_ASKED,
    NOT_RUNNING,
    Verdict,
    needs_a_person,
    running_verdict,
)
from posd.currency import format_amount
from posd.paths import DEFAULT_CONFIG_PATH
from sync.clock import SYSTEM_NAME

if TYPE_CHECKING:
    from posd.config import Config

RUNNING = "running"
LOCK_FILE = "posd.lock"  # posd.daemon.lock's, named here so the CLI does not import the daemon
PID_READ_BYTES = 32


class JournalLink(TypedDict):
    """The link as the state dir tells it: no state or since without a daemon."""

    state: str
    last_delivery: str | None
    last_error: str | None


class LaneStatus(TypedDict):
    """The daemon's status answer and whether a daemon gave it; without one, the parts only a
    running daemon knows are absent. `verdict`, `headline`, `exit_code` and `attention` are
    the first line: can the lane sell, and what needs a person."""

    verdict: str
    headline: str
    exit_code: int
    attention: list[str]
    daemon: str
    terminal: TerminalAnswer | None
    link: LinkAnswer | JournalLink
    delivery: DeliveryAnswer
    pending: PendingAnswer
    quarantined: int
    tampered: int
    unreadable: int
    checkpoints: CheckpointsAnswer
    limits: LimitsAnswer | None
    delivered: NotRequired[int]
    pid: NotRequired[int | None]
    read_logs: NotRequired[str]
    version: NotRequired[str]
    uptime_seconds: NotRequired[float]
    state: NotRequired[str]
    not_ready_reason: NotRequired[str | None]
    refusing: NotRequired[RefusalAnswer | None]
    in_flight: NotRequired[InFlightAnswer | None]
    acknowledged: NotRequired[AcknowledgedAnswer]
    devices: NotRequired[dict[str, str]]
    key_source: NotRequired[str | None]
    key_error: NotRequired[str | None]
    clock: NotRequired[str]


def register(subparsers: Any) -> None:
    parser = subparsers.add_parser(
        "status",
        help="can the lane sell, is it shipping, what needs a person",
        description="The lane at a glance: from the daemon when it answers (within "
        "2 s), else from the state dir. " + EXIT_HELP + ".",
    )
    add_location_arguments(parser)
    add_json_argument(parser)
    parser.set_defaults(handler=status)


def status(args: argparse.Namespace) -> int:
    from posd.config import load_config

    if args.state_dir is not None:
        result = from_state_dir(Path(args.state_dir))
    else:
        result = lane_status(load_config(args.config or DEFAULT_CONFIG_PATH))
    emit(result, args.json, _render)
    return result["exit_code"]


def lane_status(config: Config) -> LaneStatus:
    """From the daemon if one answers on the config's socket, else from the state dir."""
    from posd.api_client import STATUS_ANSWER_TIMEOUT_S, NoAnswer, connect

    client = connect(config.api.socket)
    if client is None:
        return from_journal(config)
    try:
        answer = client.status(STATUS_ANSWER_TIMEOUT_S)
    except NoAnswer:
        return from_journal(config, answering=False)
    verdict = running_verdict(answer)
    # (mypy cannot see a TypedDict's optional keys through `**`: the answer holds them.)
    return cast("LaneStatus", {**_verdict(verdict), "daemon": RUNNING, **answer})


class VerdictFields(TypedDict):
    verdict: str
    headline: str
    exit_code: int
    attention: list[str]


def _verdict(verdict: Verdict) -> VerdictFields:
    return {
        "verdict": verdict.name,
        "headline": verdict.headline,
        "exit_code": verdict.exit_code,
        "attention": verdict.attention,
    }


def lock_holder(state_dir: Path) -> int | None:
    """The pid a live posd wrote into `STATE_DIR/posd.lock`, if readable and still a posd
    process (the file outlives a killed daemon; its pid may since be another process's)."""
    try:
        text = (state_dir / LOCK_FILE).read_bytes()[:PID_READ_BYTES].decode().strip()
        pid = int(text)
        command = Path(f"/proc/{pid}/cmdline").read_bytes()
    except (OSError, ValueError):
        return None
    return pid if b"posd" in command else None


def _not_running(
    state_dir: Path, where: str | None, answering: bool, attention: list[str]
) -> tuple[Verdict, str, int | None]:
    """The verdict, the daemon line and the lock holder's pid when no answer came (`where`:
    the socket, None when only the state dir is known)."""
    pid = lock_holder(state_dir)
    held = f"posd (pid {pid})" if pid else "posd"
    if where is None:  # --state-dir: no socket known
        if pid is not None:
            daemon = f"{held} runs on {state_dir}: ask it with --config FILE (not --state-dir)"
            return Verdict(NOT_ASKED, f"RUNNING, NOT ASKED: {daemon}", attention), daemon, pid
        why = f"no posd holds {state_dir}; to see why: {JOURNALCTL}"
        verdict = Verdict(NOT_RUNNING, f"NOT RUNNING: {why}", attention)
        return verdict, f"not running ({why})", pid
    if not answering:
        daemon = f"{held} did not answer on {where} in 2 s: figures below are from the state dir"
        return Verdict(NOT_ANSWERING, f"CANNOT SELL: {daemon}", attention), daemon, pid
    if pid is not None:
        daemon = f"{held} holds {state_dir} but nothing answers on {where}"
        return Verdict(NOT_ANSWERING, f"CANNOT SELL: {daemon}", attention), daemon, pid
    why = f"nothing answers on {where}; to see why: {JOURNALCTL}"
    return Verdict(NOT_RUNNING, f"NOT RUNNING: {why}", attention), f"not running ({why})", pid


def from_state_dir(state_dir: Path) -> LaneStatus:
    """`--state-dir`: the journal alone (no config: no socket to ask, no terminal, no limits)."""
    return _from_journal(state_dir, None, None, True)


def from_journal(config: Config, answering: bool = True) -> LaneStatus:
    return _from_journal(config.state_dir, config, str(config.api.socket), answering)


def _from_journal(
    state_dir: Path, config: Config | None, where: str | None, answering: bool
) -> LaneStatus:
    from posd.cli.sync_cmd import status_from_journal
    from posd.daemon.limits import Backlog, headroom
    from posd.syncd.status_file import presence_in

    sync = status_from_journal(state_dir, config)
    delivery = presence_in(state_dir)
    link: JournalLink = {
        "state": sync["link"]
        if answering or delivery.running
        else "unknown (daemon not answering)",
        "last_delivery": sync["last_delivery"],
        "last_error": sync["last_error"],
    }
    pending: PendingAnswer = {
        "count": sync["pending"],
        "amount_by_currency": sync["pending_amount_by_currency"],
        "oldest_age_seconds": sync["oldest_pending_age_seconds"],
    }
    backlog = Backlog(
        pending["count"], pending["amount_by_currency"], pending["oldest_age_seconds"]
    )
    verdict, daemon, pid = _not_running(state_dir, where, answering, needs_a_person(sync))
    return {
        "verdict": verdict.name,
        "headline": verdict.headline,
        "exit_code": verdict.exit_code,
        "attention": verdict.attention,
        "daemon": daemon,
        "pid": pid,
        "read_logs": JOURNALCTL,
        "terminal": None
        if config is None
        else {
            "store_id": config.store_id,
            "terminal_id": config.terminal_id,
            "mode": config.terminal.mode,
        },
        "link": link,
        "delivery": delivery.answer(),
        "pending": pending,
        "delivered": sync["delivered"],
        "quarantined": sync["quarantined"],
        "tampered": sync["tampered"],
        "unreadable": sync["unreadable"],
        "checkpoints": sync["checkpoints"],
        "limits": None if config is None else headroom(config.offline, backlog),
    }


def _limits(limits: LimitsAnswer) -> str:
    parts = []
    payment = limits["max_payment_amount"]
    if payment["limit"] is not None:
        parts.append(f"one payment up to {payment['limit']} minor units")
    amount = limits["max_pending_amount"]
    if amount["limit"] is not None:
        left = ", ".join(
            f"{format_amount(int(v), c)} left"
            for c, v in amount.get("headroom_by_currency", {}).items()
            if v is not None
        )
        parts.append(f"pending amount {left or 'all left'}")
    count = limits["max_pending_count"]
    if count["limit"] is not None:
        parts.append(f"pending count {count.get('headroom')} left of {count['limit']}")
    age = limits["max_pending_age_seconds"]
    if age["limit"] is not None:
        parts.append(f"oldest pending age {duration(age.get('headroom'))} left")
    return "; ".join(parts) or "none set"


def _checkpoints(checkpoints: CheckpointsAnswer) -> str:
    last = checkpoints["last_seq"]
    covered = NONE if last is None else f"through seq {last}"
    return f"{covered}, {checkpoints['pending']} to send"


def _acknowledged(acknowledged: AcknowledgedAnswer) -> str:
    """The cloud's proven watermark: what the lane may erase once delivered."""
    if acknowledged["checked_at"] is None:
        return "not read yet"
    seq = acknowledged["proven_seq"]
    proven = "nothing proven yet" if seq is None else f"proven through seq {seq}"
    text = f"{proven}, checked {acknowledged['checked_at']}"
    if acknowledged["error"]:
        text += f" (last read failed: {acknowledged['error']})"
    return text


def _delivery(delivery: DeliveryAnswer) -> str:
    """The delivery daemon's line: running since when, or not, and what to do."""
    if delivery["running"]:
        return f"posd sync run (pid {delivery['pid']}) since {delivery['started_at']}"
    seen = delivery["last_seen"]
    last = f", last seen {seen}" if seen else ""
    return f"NOT RUNNING{last}: {DELIVERY_FIX}"


def _last_delivery(r: LaneStatus, running: bool) -> str:
    last = r["link"]["last_delivery"]
    if last:
        return last
    if running:
        return "never (since start)"
    delivered = r.get("delivered", 0)
    # The time may be unreadable (a damaged page) while the journal still counts deliveries.
    return f"unknown ({delivered} delivered in all)" if delivered else "never"


def _shipping(r: LaneStatus) -> str:
    """Is the lane shipping: the link, the oldest pending record, the cloud's proof."""
    link, pending = r["link"], r["pending"]
    since = link.get("since")
    parts = [f"link {link['state']}" + (f" since {since}" if since else "")]
    if pending["count"]:
        parts.append(f"oldest pending {duration(pending['oldest_age_seconds'])}")
    else:
        parts.append("nothing pending")
    acknowledged = r.get("acknowledged")
    if acknowledged is not None and acknowledged["proven_seq"] is not None:
        parts.append(f"proven through seq {acknowledged['proven_seq']}")
    return ", ".join(parts)


def _render(r: LaneStatus) -> str:
    link, pending, terminal = r["link"], r["pending"], r["terminal"]
    running = r["daemon"] == RUNNING
    shown: dict[str, Any] = {"lane": r["headline"], "shipping": _shipping(r)}
    if r["attention"]:
        shown["needs a person"] = "; ".join(r["attention"])
    if terminal is not None:
        shown["terminal"] = (
            f"{terminal['terminal_id']} in store {terminal['store_id']} ({terminal['mode']})"
        )
    if running:  # else the first line says it
        shown["posd"] = (
            f"{r.get('version')}, up {duration(r.get('uptime_seconds'))}, {r.get('state')}"
        )
        if r.get("clock", SYSTEM_NAME) != SYSTEM_NAME:
            shown["clock"] = f"{r.get('clock')}: NOT REAL TIME (a rehearsal, never on a lane)"
    shown["delivery"] = _delivery(r["delivery"])
    shown["last delivery"] = _last_delivery(r, running)
    if not running:
        shown["delivered"] = r.get("delivered", 0)
    shown["last error"] = human(link["last_error"])
    shown["pending"] = (
        f"{pending['count']} ({amounts(pending['amount_by_currency'])}), "
        f"oldest {duration(pending['oldest_age_seconds'])}"
    )
    shown["quarantined"] = r["quarantined"]
    shown["unreadable"] = r["unreadable"]
    shown["checkpoints"] = _checkpoints(r["checkpoints"])
    if "acknowledged" in r:
        shown["acknowledged"] = _acknowledged(r["acknowledged"])
    if running:
        key = human(r.get("key_source"))
        if r.get("key_error"):
            key += f" (key service failing: {r['key_error']})"
        shown["key source"] = key
        devices = r.get("devices", {})
        shown["devices"] = ", ".join(f"{n} {s}" for n, s in sorted(devices.items())) or NONE
    if r["limits"] is not None:
        shown["offline headroom"] = _limits(r["limits"])
    if not running:
        shown["checked at"] = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
    return key_values(shown)
