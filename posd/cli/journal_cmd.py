"""`posd journal stats|verify|reset`: the journal in a state dir, directly (no daemon needed).

`stats` and `verify` only read. `reset --accept-loss` is the one way to make a damaged
journal usable again (see `posd.journal.identity`): stop the daemon first.
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from posd.cli.args import add_json_argument
from posd.cli.output import emit, key_values, table
from posd.cli.progress import Progress
from posd.config import load_config
from posd.errors import UsageError
from posd.journal import Journal


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
        where = sub.add_mutually_exclusive_group()
        where.add_argument("--state-dir", type=Path, help="the daemon's state directory")
        where.add_argument("--config", type=Path, help="take the state directory from this config")
        add_json_argument(sub)
        sub.set_defaults(handler=handler)


def _state_dir(args: argparse.Namespace) -> Path:
    if args.state_dir is not None:
        return Path(args.state_dir)
    if args.config is not None:
        return load_config(args.config).state_dir
    raise UsageError("give --state-dir DIR or --config FILE")


def reset(args: argparse.Namespace) -> int:
    if not args.accept_loss:
        raise UsageError(
            "journal reset gives up records a damaged journal no longer holds: "
            "add --accept-loss to confirm"
        )
    accepted = Journal.accept_loss(_state_dir(args))
    result = {
        "action": accepted.action,
        "journal_id": accepted.journal_id,
        "lost_after": accepted.lost_after,
        "lost_through": accepted.lost_through,
        "set_aside": accepted.set_aside,
    }
    emit(
        result, args.json, lambda r: key_values({k: "-" if v is None else v for k, v in r.items()})
    )
    return 0


def open_existing_journal(args: argparse.Namespace) -> Journal:
    """The journal named by `--state-dir` (default settings) or by `--config` (its settings)."""
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
            "oldest pending age (s)": "-"
            if r["oldest_pending_age_seconds"] is None
            else f"{r['oldest_pending_age_seconds']:.1f}",
            "pending amounts": ", ".join(
                f"{c} {a}" for c, a in r["pending_amount_by_currency"].items()
            )
            or "-",
            "size on disk": f"{r['size_bytes']} of {r['max_bytes']} bytes",
        }
        return key_values(flat)

    emit(result, args.json, render)
    return 0


def verify(args: argparse.Namespace) -> int:
    with open_existing_journal(args) as journal:
        report = journal.verify(progress=Progress("verifying"))
    result = {
        "ok": report.ok,
        "records_checked": report.records_checked,
        "first_seq": report.first_seq,
        "last_seq": report.last_seq,
        "problems": [{"seq": p.seq, "kind": p.kind, "detail": p.detail} for p in report.problems],
    }

    def render(r: dict[str, Any]) -> str:
        head = f"checked {r['records_checked']} records: " + (
            "ok" if r["ok"] else f"{len(r['problems'])} problem(s)"
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
