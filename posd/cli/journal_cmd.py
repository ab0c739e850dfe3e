"""`posd journal stats|verify|list|reset`: the journal in a state dir, directly (no daemon
needed).

`stats`, `verify` and `list` only read. `reset --accept-loss` is the one way to make a damaged
journal usable again (see `posd.journal.identity`): stop the daemon first.
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import TYPE_CHECKING, Any

from posd.cli.args import add_json_argument, add_location_arguments, positive_int
from posd.cli.humanize import amounts, duration, human, size
from posd.cli.output import emit, key_values, table
from posd.errors import UsageError

if TYPE_CHECKING:
    from posd.journal import Journal

LIST_STATES = ("pending", "quarantined", "delivered")
DEFAULT_LIST_LIMIT = 50
MAX_LIST_LIMIT = 100_000


def register(subparsers: Any) -> None:
    parser = subparsers.add_parser("journal", help="inspect the local journal")
    commands = parser.add_subparsers(dest="journal_command", metavar="ACTION", required=True)
    for name, handler, summary in (
        ("stats", stats, "records by state, oldest pending age, size on disk"),
        (
            "verify",
            verify,
            "check structure, hash chain and ciphertext integrity (exit 1 on problems)",
        ),
        ("list", list_records, "records: seq, kind, state, attempts, last error, clear metadata"),
        (
            "reset",
            reset,
            "accept the loss of what a damaged journal no longer holds and go on (stop the "
            "daemon first); seq numbers are never reused",
        ),
    ):
        sub = commands.add_parser(name, help=summary)
        if name == "reset":
            sub.add_argument(
                "--accept-loss",
                action="store_true",
                help="required: say that records the journal lost are given up",
            )
        if name == "list":
            sub.add_argument("--state", choices=LIST_STATES, help="only records in this state")
            sub.add_argument(
                "--limit",
                type=positive_int(MAX_LIST_LIMIT),
                default=DEFAULT_LIST_LIMIT,
                help=f"at most this many (default {DEFAULT_LIST_LIMIT})",
            )
        add_location_arguments(sub)
        add_json_argument(sub)
        sub.set_defaults(handler=handler)


def _state_dir(args: argparse.Namespace) -> Path:
    from posd.config import load_config

    if args.state_dir is not None:
        return Path(args.state_dir)
    if args.config is not None:
        return load_config(args.config).state_dir
    raise UsageError("give --state-dir DIR or --config FILE")


def reset(args: argparse.Namespace) -> int:
    from posd.daemon.lock import without_daemons
    from posd.journal import Journal

    if not args.accept_loss:
        raise UsageError(
            "journal reset gives up records a damaged journal no longer holds: "
            "add --accept-loss to confirm"
        )
    state_dir = _state_dir(args)
    with without_daemons(state_dir):  # never under a running daemon, capture or delivery
        accepted = Journal.accept_loss(state_dir)
    result = {
        "action": accepted.action,
        "journal_id": accepted.journal_id,
        "lost_after": accepted.lost_after,
        "lost_through": accepted.lost_through,
        "set_aside": accepted.set_aside,
        "unreadable": accepted.unreadable,
        "quarantined": accepted.quarantined,
    }
    emit(
        result, args.json, lambda r: key_values({k: "-" if v is None else v for k, v in r.items()})
    )
    return 0


def open_existing_journal(args: argparse.Namespace) -> Journal:
    """The journal named by `--state-dir` (default settings) or by `--config` (its settings)."""
    from posd.config import load_config
    from posd.journal import Journal

    if args.state_dir is not None:
        return Journal.open_read_only(args.state_dir)
    if args.config is not None:
        config = load_config(args.config)
        return Journal.open_read_only(config.state_dir, config.journal)
    raise UsageError("give --state-dir DIR or --config FILE")


def stats(args: argparse.Namespace) -> int:
    with open_existing_journal(args) as journal:
        result = journal.stats()

    def render(r: dict[str, Any]) -> str:
        flat = {
            "journal": r["path"],
            **{f"records {state}": count for state, count in r["records"].items()},
            "seq range": f"{r['first_seq']}..{r['last_seq']}",
            "oldest pending age": duration(r["oldest_pending_age_seconds"]),
            "pending amounts": amounts(r["pending_amount_by_currency"]),
            "data keys": human(r["data_keys"]),
            "size on disk": f"{size(r['size_bytes'])} of {size(r['max_bytes'])}",
        }
        return key_values(flat)

    emit(result, args.json, render)
    return 0


def verify(args: argparse.Namespace) -> int:
    from posd.cli.progress import Progress

    with open_existing_journal(args) as journal, Progress("verifying") as bar:
        report = journal.verify(progress=bar)
    result = {
        "ok": report.ok,
        "records_checked": report.records_checked,
        "first_seq": report.first_seq,
        "last_seq": report.last_seq,
        "checkpoints_checked": report.checkpoints_checked,
        "problems": [{"seq": p.seq, "kind": p.kind, "detail": p.detail} for p in report.problems],
    }

    def render(r: dict[str, Any]) -> str:
        head = (
            f"checked {r['records_checked']} records, {r['checkpoints_checked']} checkpoints: "
            + ("ok" if r["ok"] else f"{len(r['problems'])} problem(s)")
        )
        if r["ok"]:
            return head
        rows = [
            (p["seq"] if p["seq"] is not None else "-", p["kind"], p["detail"])
            for p in r["problems"]
        ]
        return head + "\n" + table(rows, ("seq", "kind", "detail"))

    emit(result, args.json, render)
    return 0 if report.ok else 1


def list_records(args: argparse.Namespace) -> int:
    from posd.journal.listing import list_records as query

    state_dir = _state_dir(args) if (args.state_dir or args.config) else None
    if state_dir is None:
        raise UsageError("give --state-dir DIR or --config FILE")
    records = query(state_dir, args.state, args.limit)
    result = {"state": args.state, "limit": args.limit, "records": records}

    def render(r: dict[str, Any]) -> str:
        if not r["records"]:
            return f"no {r['state'] or ''} records".replace("  ", " ")
        rows = [
            (
                rec["seq"],
                rec["kind"],
                rec["captured_at"],
                f"{rec['state']} (damaged)" if rec["damaged"] else rec["state"],
                "-" if rec["attempts"] is None else rec["attempts"],
                rec["last_error"] or "-",
                f"damaged: {rec['damaged']}" if rec["damaged"] else _meta_text(rec["meta"]),
            )
            for rec in r["records"]
        ]
        headers = ("SEQ", "KIND", "CAPTURED", "STATE", "ATTEMPTS", "LAST ERROR", "METADATA")
        return table(rows, headers)

    emit(result, args.json, render)
    return 0


def _meta_text(meta: dict[str, Any]) -> str:
    """`amount 1250, currency EUR, ...` with the amount in the currency's decimals."""
    shown = dict(meta)
    amount, currency = shown.pop("amount", None), shown.get("currency")
    text = human(shown)
    if isinstance(amount, int) and isinstance(currency, str):
        text = f"{amounts({currency: amount})}, {text}"
    return text
