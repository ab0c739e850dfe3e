"""`posd status`: one screen a technician reads in five seconds.

One shape from either source (`LaneStatus`): the daemon's `GET /v1/status` when it answers;
otherwise the part of that answer the state dir and the config tell (the journal's backlog,
the last delivery and error, the offline headroom) with the daemon shown as not running and
what only a running daemon knows left out. `--json` prints it as it is.
"""

from __future__ import annotations

import argparse
import time
from typing import TYPE_CHECKING, Any, NotRequired, TypedDict

from posd.api_answers import (
    AcknowledgedAnswer,
    CheckpointsAnswer,
    InFlightAnswer,
    LimitsAnswer,
    LinkAnswer,
    PendingAnswer,
    TerminalAnswer,
)
from posd.cli.args import add_config_argument, add_json_argument
from posd.cli.humanize import NONE, amounts, duration, human
from posd.cli.output import emit, key_values
from posd.currency import format_amount

if TYPE_CHECKING:
    from posd.config import Config

RUNNING = "running"


class JournalLink(TypedDict):
    """The link as the state dir tells it: no state or since without a daemon."""

    state: str
    last_delivery: str | None
    last_error: str | None


class LaneStatus(TypedDict):
    """The daemon's status answer and whether a daemon gave it; without one, the parts only a
    running daemon knows are absent."""

    daemon: str
    terminal: TerminalAnswer
    link: LinkAnswer | JournalLink
    pending: PendingAnswer
    quarantined: int
    tampered: int
    unreadable: int
    checkpoints: CheckpointsAnswer
    limits: LimitsAnswer
    version: NotRequired[str]
    uptime_seconds: NotRequired[float]
    state: NotRequired[str]
    not_ready_reason: NotRequired[str | None]
    in_flight: NotRequired[InFlightAnswer | None]
    acknowledged: NotRequired[AcknowledgedAnswer]
    devices: NotRequired[dict[str, str]]
    key_source: NotRequired[str | None]


def register(subparsers: Any) -> None:
    parser = subparsers.add_parser("status", help="the lane at a glance (from the daemon)")
    add_config_argument(parser)
    add_json_argument(parser)
    parser.set_defaults(handler=status)


def status(args: argparse.Namespace) -> int:
    from posd.config import load_config

    emit(lane_status(load_config(args.config)), args.json, _render)
    return 0


def lane_status(config: Config) -> LaneStatus:
    """From the daemon if one answers on the config's socket, else from the state dir."""
    from posd.api_client import connect

    client = connect(config.api.socket)
    if client is not None:
        return {"daemon": RUNNING, **client.status()}
    return from_journal(config)


def from_journal(config: Config) -> LaneStatus:
    from posd.cli.sync_cmd import status_from_journal
    from posd.daemon.limits import Backlog, headroom

    sync = status_from_journal(config.state_dir, config)
    pending: PendingAnswer = {
        "count": sync["pending"],
        "amount_by_currency": sync["pending_amount_by_currency"],
        "oldest_age_seconds": sync["oldest_pending_age_seconds"],
    }
    backlog = Backlog(
        pending["count"], pending["amount_by_currency"], pending["oldest_age_seconds"]
    )
    return {
        "daemon": f"not running (nothing answers on {config.api.socket})",
        "terminal": {
            "store_id": config.store_id,
            "terminal_id": config.terminal_id,
            "mode": config.terminal.mode,
        },
        "link": {
            "state": sync["link"],
            "last_delivery": sync["last_delivery"],
            "last_error": sync["last_error"],
        },
        "pending": pending,
        "quarantined": sync["quarantined"],
        "tampered": sync["tampered"],
        "unreadable": sync["unreadable"],
        "checkpoints": sync["checkpoints"],
        "limits": headroom(config.offline, backlog),
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


def _render(r: LaneStatus) -> str:
    link, pending, terminal = r["link"], r["pending"], r["terminal"]
    running = r["daemon"] == RUNNING
    since = link.get("since")
    shown: dict[str, Any] = {
        "terminal": f"{terminal['terminal_id']} in store {terminal['store_id']} "
        f"({terminal['mode']})",
        "posd": f"{r.get('version')}, up {duration(r.get('uptime_seconds'))}, {r.get('state')}"
        + (f" ({r['not_ready_reason']})" if r.get("not_ready_reason") else "")
        if running
        else r["daemon"],
        "link": link["state"] + (f" since {since}" if since else ""),
        "last delivery": link["last_delivery"] or ("never (since start)" if running else "never"),
        "last error": human(link["last_error"]),
        "pending": f"{pending['count']} ({amounts(pending['amount_by_currency'])}), "
        f"oldest {duration(pending['oldest_age_seconds'])}",
        "quarantined": r["quarantined"],
        "checkpoints": _checkpoints(r["checkpoints"]),
    }
    if "acknowledged" in r:
        shown["acknowledged"] = _acknowledged(r["acknowledged"])
    if running:
        shown["key source"] = human(r.get("key_source"))
        devices = r.get("devices", {})
        shown["devices"] = ", ".join(f"{n} {s}" for n, s in sorted(devices.items())) or NONE
    shown["offline headroom"] = _limits(r["limits"])
    if not running:
        shown["checked at"] = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
    return key_values(shown)
