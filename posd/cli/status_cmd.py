"""`posd status`: one screen a technician reads in five seconds.

A thin client of the daemon's `GET /v1/status` when it answers; otherwise what the state dir
tells (the journal's backlog, the last delivery and error) with the daemon shown as not
running. `--json` prints the daemon's answer (or the journal's view) as it is.
"""

from __future__ import annotations

import argparse
import time
from typing import Any

from posd.cli.args import add_config_argument, add_json_argument
from posd.cli.humanize import NONE, amounts, duration, human
from posd.cli.output import emit, key_values
from posd.currency import format_amount

LIMIT_LABELS = {
    "max_payment_amount": "one payment",
    "max_pending_amount": "pending amount",
    "max_pending_count": "pending count",
    "max_pending_age_seconds": "oldest pending age",
}


def register(subparsers: Any) -> None:
    parser = subparsers.add_parser("status", help="the lane at a glance (from the daemon)")
    add_config_argument(parser)
    add_json_argument(parser)
    parser.set_defaults(handler=status)


def status(args: argparse.Namespace) -> int:
    from posd.cli.client import connect
    from posd.config import load_config

    config = load_config(args.config)
    client = connect(config.api.socket)
    if client is not None:
        result = {"daemon": "running", **client.get("/v1/status")}
        emit(result, args.json, _render_daemon)
        return 0
    result = from_journal(config)
    emit(result, args.json, _render_journal)
    return 0


def from_journal(config: Any) -> dict[str, Any]:
    from posd.cli.sync_cmd import status_from_journal

    sync = status_from_journal(config.state_dir, config)
    return {
        "daemon": f"not running (nothing answers on {config.api.socket})",
        "terminal": {"store_id": config.store_id, "terminal_id": config.terminal_id},
        **sync,
    }


def _limits(limits: dict[str, Any]) -> str:
    parts = []
    for name, label in LIMIT_LABELS.items():
        item = limits.get(name, {})
        limit = item.get("limit")
        if limit is None:
            continue
        if name == "max_pending_amount":
            left = ", ".join(
                f"{format_amount(int(v), c)} left" for c, v in item["headroom_by_currency"].items()
            )
            parts.append(f"{label} {left or 'all left'}")
        elif name == "max_pending_age_seconds":
            parts.append(f"{label} {duration(item['headroom'])} left")
        elif name == "max_pending_count":
            parts.append(f"{label} {item['headroom']} left of {limit}")
        else:
            parts.append(f"{label} up to {limit} minor units")
    return "; ".join(parts) or "none set"


def _checkpoints(checkpoints: dict[str, Any]) -> str:
    last = checkpoints["last_seq"]
    covered = NONE if last is None else f"through seq {last}"
    return f"{covered}, {checkpoints['pending']} to send"


def _render_daemon(r: dict[str, Any]) -> str:
    link, pending = r["link"], r["pending"]
    terminal = r["terminal"]
    return key_values(
        {
            "terminal": f"{terminal['terminal_id']} in store {terminal['store_id']} "
            f"({terminal['mode']})",
            "posd": f"{r['version']}, up {duration(r['uptime_seconds'])}, {r['state']}",
            "link": f"{link['state']} since {link['since']}",
            "last delivery": link["last_delivery"] or "never (since start)",
            "last error": human(link["last_error"]),
            "pending": f"{pending['count']} ({amounts(pending['amount_by_currency'])}), "
            f"oldest {duration(pending['oldest_age_seconds'])}",
            "quarantined": r["quarantined"],
            "checkpoints": _checkpoints(r["checkpoints"]),
            "key source": human(r["key_source"]),
            "devices": ", ".join(f"{n} {s}" for n, s in sorted(r["devices"].items())) or NONE,
            "offline headroom": _limits(r["limits"]),
        }
    )


def _render_journal(r: dict[str, Any]) -> str:
    terminal = r["terminal"]
    return key_values(
        {
            "terminal": f"{terminal['terminal_id']} in store {terminal['store_id']}",
            "posd": r["daemon"],
            "link": r["link"],
            "last delivery": r["last_delivery"] or "never",
            "last error": human(r["last_error"]),
            "pending": f"{r['pending']} ({amounts(r['pending_amount_by_currency'])}), "
            f"oldest {duration(r['oldest_pending_age_seconds'])}",
            "quarantined": r["quarantined"],
            "checkpoints": _checkpoints(r["checkpoints"]),
            "checked at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        }
    )
