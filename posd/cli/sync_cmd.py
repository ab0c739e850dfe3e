"""`posd sync status|flush|retry-quarantined`.

With the capture daemon answering on its socket, `status` and `flush` are thin clients of its
API (the delivery daemon delivers; a second engine beside it would only send copies). Without
it they work on the state dir: `status` reads the journal (and the delivery daemon's status
file); `flush` waits for the delivery daemon if it runs, else runs the engine in the
foreground, until the backlog is delivered, `--timeout` passes, or the configuration is
refused (`misconfigured`: exit 1 at once, the records stay pending). `run` is the delivery
daemon itself (`posd.syncd`).
"""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal, TypedDict

from posd.cli.args import (
    add_config_argument,
    add_json_argument,
    add_location_arguments,
    positive_seconds,
)
from posd.cli.humanize import amounts, duration, human
from posd.cli.output import emit, key_values
from posd.paths import DEFAULT_CONFIG_PATH

if TYPE_CHECKING:
    from posd.api_answers import CheckpointsAnswer, FlushAnswer, StatusAnswer
    from posd.api_client import DaemonClient
    from posd.config import Config
    from posd.journal import Journal

DEFAULT_FLUSH_TIMEOUT_SECONDS = 300.0
API_MAX_FLUSH_SECONDS = 120.0  # the API's own bound on timeout_s (docs/openapi.yaml)
FLUSH_PROGRESS_POLL_SECONDS = 0.5
# Less time than this left after one flush request: not worth another.
FLUSH_RETRY_MIN_SECONDS = 0.5
# Output redaction takes any 12-19 digit Luhn-valid run for a card number, and a float's
# fractional digits can be one: print durations with a few decimals only.
SECONDS_DECIMALS = 3
NOT_RUNNING = "unknown (delivery not running)"


class DaemonSyncStatus(TypedDict):
    """`posd sync status` from a running daemon's status answer."""

    source: Literal["daemon"]
    link: str
    link_since: str | None
    last_delivery: str | None
    last_error: str | None
    pending: int
    leased: None  # the daemon's answer does not say
    quarantined: int
    oldest_pending_age_seconds: float | None
    pending_amount_by_currency: dict[str, int]


class JournalSyncStatus(TypedDict):
    """`posd sync status` read from the journal: the same keys (no link, no daemon), and the
    counts only the journal holds."""

    source: Literal["journal"]
    link: str
    link_since: None
    last_delivery: str | None
    last_error: str | None
    pending: int
    leased: int | None  # None: the journal could not be read that far
    quarantined: int
    tampered: int
    unreadable: int
    delivered: int
    checkpoints: CheckpointsAnswer
    oldest_pending_age_seconds: float | None
    pending_amount_by_currency: dict[str, int]


SyncStatus = DaemonSyncStatus | JournalSyncStatus


def _rounded(value: float | None) -> float | None:
    return None if value is None else round(value, SECONDS_DECIMALS)


def register(subparsers: Any) -> None:
    parser = subparsers.add_parser("sync", help="deliver the journal to EventBridge")
    commands = parser.add_subparsers(dest="sync_command", metavar="ACTION", required=True)
    status_parser = commands.add_parser(
        "status", help="link, last delivery and error, pending, leased and quarantined"
    )
    add_location_arguments(status_parser)
    flush_parser = commands.add_parser("flush", help="deliver the backlog now")
    flush_parser.add_argument(
        "--timeout",
        type=positive_seconds(),
        default=DEFAULT_FLUSH_TIMEOUT_SECONDS,
        help=f"give up after this many seconds (default {DEFAULT_FLUSH_TIMEOUT_SECONDS:g})",
    )
    add_config_argument(flush_parser)
    retry_parser = commands.add_parser(
        "retry-quarantined", help="return quarantined records to delivery"
    )
    add_config_argument(retry_parser)
    for sub, handler in ((status_parser, status), (flush_parser, flush), (retry_parser, retry)):
        add_json_argument(sub)
        sub.set_defaults(handler=handler)
    run_parser = commands.add_parser(
        "run", help="run the delivery daemon: the journal to EventBridge (posd-sync.service)"
    )
    add_config_argument(run_parser)
    run_parser.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    """`posd sync run`: the delivery daemon (under systemd, `Type=notify`)."""
    from posd.config import load_config
    from posd.daemon.lock import StateDirLock
    from posd.journal.files import SYNC_LOCK_FILE

    config = load_config(args.config)  # a bad config exits 2 before anything starts
    with StateDirLock.acquire(config.state_dir, SYNC_LOCK_FILE):
        from posd.syncd.runtime import run as run_delivery

        return run_delivery(config)


def _open_writable(config: Config) -> Journal:
    from posd.errors import UsageError
    from posd.journal import JOURNAL_FILE, Journal

    if not (config.state_dir / JOURNAL_FILE).is_file():
        raise UsageError(f"no journal in {config.state_dir} (expected {JOURNAL_FILE})")
    return Journal.open(config.state_dir, config.journal)


@contextmanager
def _as_the_only_engine(config: Config) -> Iterator[Journal]:
    """The journal for a delivery engine here, holding both daemons' locks: never beside
    `posd sync run` (two engines send copies) nor `posd run` (one whose socket did not answer
    still appends)."""
    from posd.daemon.lock import without_daemons

    with without_daemons(config.state_dir), _open_writable(config) as journal:
        yield journal


# -- status -------------------------------------------------------------------------------


def status(args: argparse.Namespace) -> int:
    from posd.api_client import STATUS_ANSWER_TIMEOUT_S, NoAnswer, connect
    from posd.config import load_config

    result: SyncStatus
    if args.state_dir is not None:
        result = status_from_journal(Path(args.state_dir), None)
    else:
        config = load_config(args.config or DEFAULT_CONFIG_PATH)
        client = connect(config.api.socket)
        answer = None
        if client is not None:
            try:
                # as `posd status`: a hung daemon must not hang the technician
                answer = client.status(STATUS_ANSWER_TIMEOUT_S)
            except NoAnswer as error:
                print(f"{error}: the figures below are from the state dir", file=sys.stderr)
        if answer is not None:
            result = _status_from_daemon(answer)
        else:
            result = status_from_journal(config.state_dir, config)
    emit(result, args.json, _render_status)
    return 0


def _status_from_daemon(answer: StatusAnswer) -> DaemonSyncStatus:
    link, pending = answer["link"], answer["pending"]
    return {
        "source": "daemon",
        "link": link["state"],
        "link_since": link["since"],
        "last_delivery": link["last_delivery"],
        "last_error": link["last_error"],
        "pending": pending["count"],
        "leased": None,
        "quarantined": answer["quarantined"],
        "oldest_pending_age_seconds": pending["oldest_age_seconds"],
        "pending_amount_by_currency": pending["amount_by_currency"],
    }


def status_from_journal(state_dir: Path, config: Config | None) -> JournalSyncStatus:
    from posd.errors import JournalError
    from posd.journal import Journal
    from posd.journal.listing import DeliveryFacts, delivery_facts
    from posd.syncd.status_file import read_report
    from sync.timestamps import age_seconds, rfc3339

    now = time.time()
    report = read_report(state_dir)
    delivering = report if report is not None and report.fresh(now) else None
    with Journal.open_read_only(state_dir, config.journal if config else None) as journal:
        summary = journal.summary()
        checkpoints = journal.checkpoint_status()
    try:
        facts = delivery_facts(state_dir, now)
    except JournalError as error:  # a damaged page: the counts above still stand
        facts = DeliveryFacts(None, f"cannot read: {error}", None, None)
    return {
        "source": "journal",
        # The delivery daemon's link while it runs (its status file), else none.
        "link": NOT_RUNNING if delivering is None else delivering.status.state,
        "link_since": None,
        "last_delivery": rfc3339(facts.last_delivered_at) if facts.last_delivered_at else None,
        "last_error": facts.last_error if delivering is None else delivering.status.last_error,
        "pending": summary.pending,
        "leased": facts.leased,
        "quarantined": summary.quarantined,
        "tampered": summary.tampered,
        "unreadable": summary.unreadable,
        "delivered": summary.delivered,
        "checkpoints": {"last_seq": checkpoints.last_seq, "pending": checkpoints.pending},
        "oldest_pending_age_seconds": _rounded(
            age_seconds(summary.oldest_pending_captured_at, now)
        ),
        "pending_amount_by_currency": dict(summary.pending_amount_by_currency),
    }


def _render_status(r: SyncStatus) -> str:
    shown: dict[str, Any] = {
        "read from": r["source"],
        "link": r["link"] + (f" since {r['link_since']}" if r["link_since"] else ""),
        "last delivery": r["last_delivery"],
        "last error": r["last_error"],
        "pending": r["pending"],
        "leased now": r["leased"],
        "oldest pending": duration(r["oldest_pending_age_seconds"]),
        "pending amounts": amounts(r["pending_amount_by_currency"]),
        "quarantined": r["quarantined"],
    }
    if r["source"] == "journal":
        shown.update(tampered=r["tampered"], unreadable=r["unreadable"], delivered=r["delivered"])
    if r["quarantined"]:
        shown["quarantined"] = f"{r['quarantined']} (see: posd journal list --state quarantined)"
    return key_values({k: human(v) for k, v in shown.items() if v is not None or k != "leased now"})


# -- flush --------------------------------------------------------------------------------


def flush(args: argparse.Namespace) -> int:
    from posd.api_client import connect
    from posd.config import load_config
    from posd.syncd.status_file import presence_in

    config = load_config(args.config)
    client = connect(config.api.socket)
    if client is not None:
        result = _flush_through_daemon(client, args.timeout)
    elif presence_in(config.state_dir).running:
        result = _flush_beside_delivery(config, args.timeout)
    else:
        result = _flush_here(config, args.timeout)
    emit(result, args.json, _render_flush)
    return 0 if result["completed"] else 1


def _flush_through_daemon(client: DaemonClient, timeout: float) -> dict[str, Any]:
    """The daemon delivers: ask it to, and wait (a second engine would only send copies).

    The API waits at most `API_MAX_FLUSH_SECONDS` per request, so a longer `--timeout` asks
    again until it passes; the daemon ends a flush at once while its link is `misconfigured`,
    and so does this. Meanwhile its status is polled for a progress bar (on a terminal)."""
    import threading

    from posd.cli.progress import Progress
    from posd.errors import PosdError
    from sync.pacing.link import MISCONFIGURED

    started = time.monotonic()
    answers: list[FlushAnswer] = []
    failures: list[PosdError] = []

    def ask() -> None:
        try:
            while True:
                left = timeout - (time.monotonic() - started)
                answer = client.flush(min(left, API_MAX_FLUSH_SECONDS))
                answers.append(answer)
                again = time.monotonic() - started < timeout - FLUSH_RETRY_MIN_SECONDS
                if answer["completed"] or answer["link_state"] == MISCONFIGURED or not again:
                    return
        except PosdError as error:  # re-raised in the command's thread
            failures.append(error)

    worker = threading.Thread(target=ask, name="flush-request", daemon=True)
    total = client.status()["pending"]["count"]
    worker.start()
    with Progress("delivering") as bar:
        while worker.is_alive():
            worker.join(FLUSH_PROGRESS_POLL_SECONDS)
            if worker.is_alive() and total:
                pending = client.status()["pending"]["count"]
                total = max(total, pending)
                bar(total - pending, total)
    if failures:
        raise failures[0]
    answer = answers[-1]
    return {
        "via": "daemon",
        "completed": answer["completed"],
        "pending": answer["pending"],
        "elapsed_seconds": _rounded(time.monotonic() - started),
        "state": answer["link_state"],
        "last_error": answer["last_error"],
    }


def _flush_beside_delivery(config: Config, timeout: float) -> dict[str, Any]:
    """No capture daemon, but the delivery daemon runs: cut the checkpoint here (holding the
    capture daemon's lock, so none starts meanwhile) and wait for the delivery daemon to send
    everything (a second engine would only send copies)."""
    from posd.cli.progress import Progress
    from posd.daemon.lock import StateDirLock
    from posd.syncd.flushing import cut_and_wait
    from posd.syncd.status_file import DeliveryPeer

    peer = DeliveryPeer(config.state_dir)
    with StateDirLock.acquire(config.state_dir), _open_writable(config) as journal:
        total = journal.summary().pending
        with Progress("delivering") as bar:

            def show(pending: int) -> None:
                if total:
                    bar(max(0, total - pending), total)

            outcome = cut_and_wait(
                journal,
                lambda: peer.status().state,
                lambda: peer.presence().running,
                timeout,
                show,
            )
    status = peer.status()
    return {
        "via": "delivery daemon",
        "completed": outcome.completed,
        "pending": outcome.pending,
        "elapsed_seconds": _rounded(outcome.waited_seconds),
        "state": status.state,
        "last_error": status.last_error,
    }


def _flush_here(config: Config, timeout: float) -> dict[str, Any]:
    from posd.assembly import sync_engine
    from posd.cli.progress import Progress
    from sync.status import DrainProgress

    with _as_the_only_engine(config) as journal:
        total = journal.summary().pending
        engine = sync_engine(journal, config)
        with engine, Progress("delivering") as bar:

            def show(progress: DrainProgress) -> None:
                done = progress.delivered + progress.quarantined
                bar(min(done, total), max(total, done))

            report = engine.drain(
                timeout=timeout, progress=show if total else None, checkpoint=True
            )
            last_error = engine.status().last_error
    return {
        "via": "engine",
        **report.as_dict(),
        "elapsed_seconds": _rounded(report.elapsed_seconds),
        "last_error": last_error,
    }


def _render_flush(r: dict[str, Any]) -> str:
    shown = {k.replace("_", " "): v for k, v in r.items() if k != "elapsed_seconds"}
    shown["elapsed"] = duration(r["elapsed_seconds"])
    return key_values({k: human(v) for k, v in shown.items()})


# -- retry-quarantined --------------------------------------------------------------------


def retry(args: argparse.Namespace) -> int:
    from posd.config import load_config

    config = load_config(args.config)
    with _open_writable(config) as journal:
        report = journal.retry_quarantined_report()
    result = {
        "returned_to_pending": report.returned,
        "refused": [{"seq": item.seq, "reason": item.reason} for item in report.refused],
    }
    emit(result, args.json, _render_retry)
    return 0


def _render_retry(r: dict[str, Any]) -> str:
    lines = [f"returned to pending: {r['returned_to_pending']}"]
    if r["refused"]:
        lines.append(
            f"kept in quarantine: {len(r['refused'])} (they would be quarantined again; "
            "posd journal verify says more, and they cannot be delivered as they are):"
        )
        lines.extend(f"  seq {item['seq']}: {item['reason']}" for item in r["refused"])
    return "\n".join(lines)
