"""`posd sync status|flush|retry-quarantined`: the sync engine, run on the state dir directly.

There is no daemon API yet, so these commands open the journal themselves. `flush` runs the
same engine the daemon runs, in the foreground, until the backlog is delivered or `--timeout`
passes; do not run it while a daemon is draining the same journal (both would deliver, which
is safe, at least once, but wasteful).
"""

from __future__ import annotations

import argparse
import time
from typing import Any

from posd.aws import sync_engine
from posd.cli.args import add_config_argument, add_json_argument
from posd.cli.output import emit, key_values
from posd.cli.progress import Progress
from posd.config import Config, load_config
from posd.errors import UsageError
from posd.journal import JOURNAL_FILE, Journal
from sync.status import DrainProgress
from sync.timestamps import age_seconds

DEFAULT_FLUSH_TIMEOUT_SECONDS = 300.0
# Output redaction takes any 12-19 digit Luhn-valid run for a card number, and a float's
# fractional digits can be one: print durations with a few decimals only.
SECONDS_DECIMALS = 3


def _rounded(value: float | None) -> float | None:
    return None if value is None else round(value, SECONDS_DECIMALS)


def register(subparsers: Any) -> None:
    parser = subparsers.add_parser("sync", help="deliver the journal to EventBridge")
    commands = parser.add_subparsers(dest="sync_command", metavar="ACTION", required=True)
    status_parser = commands.add_parser("status", help="pending, quarantined and delivered counts")
    flush_parser = commands.add_parser("flush", help="deliver the backlog now")
    flush_parser.add_argument(
        "--timeout",
        type=float,
        default=DEFAULT_FLUSH_TIMEOUT_SECONDS,
        help=f"give up after this many seconds (default {DEFAULT_FLUSH_TIMEOUT_SECONDS:g})",
    )
    retry_parser = commands.add_parser(
        "retry-quarantined", help="return quarantined records to delivery"
    )
    for sub, handler in ((status_parser, status), (flush_parser, flush), (retry_parser, retry)):
        add_config_argument(sub)
        add_json_argument(sub)
        sub.set_defaults(handler=handler)


def _open(config: Config) -> Journal:
    if not (config.state_dir / JOURNAL_FILE).is_file():
        raise UsageError(f"no journal in {config.state_dir} (expected {JOURNAL_FILE})")
    return Journal.open(config.state_dir, config.journal)


def _seconds(value: float | None) -> str:
    return "-" if value is None else f"{value:.1f}"


def status(args: argparse.Namespace) -> int:
    config = load_config(args.config)
    with _open(config) as journal:
        summary = journal.summary()
    result = {
        "daemon": "not running (read from the journal)",
        "pending": summary.pending,
        "quarantined": summary.quarantined,
        "tampered": summary.tampered,
        "unreadable": summary.unreadable,
        "delivered": summary.delivered,
        "oldest_pending_age_seconds": _rounded(
            age_seconds(summary.oldest_pending_captured_at, time.time())
        ),
        "pending_amount_by_currency": dict(summary.pending_amount_by_currency),
        "event_bus_name": config.sync.event_bus_name,
    }

    def render(r: dict[str, Any]) -> str:
        amounts = ", ".join(f"{c} {a}" for c, a in r["pending_amount_by_currency"].items())
        return key_values(
            {
                **{k: v for k, v in r.items() if k != "pending_amount_by_currency"},
                "oldest_pending_age_seconds": _seconds(r["oldest_pending_age_seconds"]),
                "pending amounts": amounts or "-",
            }
        )

    emit(result, args.json, render)
    return 0


def flush(args: argparse.Namespace) -> int:
    if args.timeout <= 0:
        raise UsageError("--timeout must be > 0")
    config = load_config(args.config)
    with _open(config) as journal:
        total = journal.summary().pending
        bar = Progress("delivering")

        def show(progress: DrainProgress) -> None:
            done = progress.delivered + progress.quarantined
            bar(min(done, total), max(total, done))

        with sync_engine(journal, config) as engine:
            report = engine.drain(timeout=args.timeout, progress=show if total else None)
            last_error = engine.status().last_error
    result = {
        **report.as_dict(),
        "elapsed_seconds": _rounded(report.elapsed_seconds),
        "last_error": last_error,
    }

    def render(r: dict[str, Any]) -> str:
        return key_values({**r, "elapsed_seconds": _seconds(r["elapsed_seconds"])})

    emit(result, args.json, render)
    return 0 if report.completed else 1


def retry(args: argparse.Namespace) -> int:
    config = load_config(args.config)
    with _open(config) as journal:
        count = journal.retry_quarantined()
    emit({"returned_to_pending": count}, args.json, key_values)
    return 0
