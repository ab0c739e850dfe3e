"""`python -m demo` (`make demo`): run the whole pipeline on embedded defaults and print a
summary.

The demo lives outside the product: the `posd` command never loads it (nor moto behind it).
It shares the CLI's error handling, `--json` contract and progress bars through
`posd.cli.main.main`.
"""

from __future__ import annotations

import argparse
import sys
import textwrap
from pathlib import Path
from typing import Any

from demo.readers import DEFAULT_READER, READERS
from posd.cli.args import add_json_argument
from posd.cli.main import PosdArgumentParser, main
from posd.cli.output import emit, key_values
from posd.cli.progress import Progress
from posd.currency import format_amount
from posd.errors import UsageError

PROG = "python -m demo"
DEFAULT_PAYMENTS = 200
MAX_PAYMENTS = 1_000_000
SUMMARY_WIDTH = 80


def build_parser() -> argparse.ArgumentParser:
    parser = PosdArgumentParser(
        prog=PROG, description="Run the pipeline end to end against a local AWS emulator."
    )
    parser.add_argument(
        "--payments",
        type=int,
        default=DEFAULT_PAYMENTS,
        help=f"how many (default {DEFAULT_PAYMENTS})",
    )
    parser.add_argument(
        "--keep-state", type=Path, metavar="DIR", help="keep the state dir (journal) here"
    )
    parser.add_argument(
        "--sync-api",
        choices=("v1", "v2"),
        default="v1",
        help="deliver through EventBridge v1 (moto) or v2 (the local v2 endpoint, which "
        "deduplicates: the queue must then hold no duplicates); default v1",
    )
    parser.add_argument(
        "--reader",
        choices=READERS,
        default=DEFAULT_READER,
        help="the simulated card reader: serial (default), USB HID keyboard or MSR (clear "
        "tracks), or secure-msr (P2PE: encrypted reads, then a scan of the daemon's journal, "
        "log and memory for clear card numbers, which must find none)",
    )
    add_json_argument(parser)
    parser.set_defaults(handler=demo)
    return parser


def _check_keep_state(path: Path | None) -> None:
    """A new or empty directory (the demo must not mix its journal with another)."""
    if path is None or not path.exists():
        return
    if not path.is_dir():
        raise UsageError(f"--keep-state {path} is not a directory; give a new directory")
    try:
        empty = not any(path.iterdir())
    except OSError as error:
        raise UsageError(f"--keep-state {path}: cannot read it ({error.strerror})") from None
    if not empty:
        raise UsageError(f"--keep-state {path} is not empty; give a new directory")


def render_summary(r: dict[str, Any]) -> str:
    """The verdict, the figures, and what a newcomer would otherwise read as failures."""
    verdict = (
        "every captured payment was read back and decrypted"
        if r["lost"] == 0
        else f"{r['lost']} LOST"
    )
    verdict += (
        f"; every range proven through seq {r['proven_through']}"
        if r["proven_through"] == r["last_seq"] and not r["alarms"]
        else f"; proven only through seq {r['proven_through']} of {r['last_seq']}"
    )
    verdict += f"; posd run exited {r['daemon_exit_code']} on SIGTERM"
    verdict += f", posd sync run {r['delivery_exit_code']}"
    if r.get("clear_pans") is not None:
        found = sum(r["clear_pans"].values())
        verdict += "; no clear card number anywhere" if not found else f"; {found} CLEAR PANS"
    if r["sync_api"] == "v2":
        verdict += f"; {r['duplicates']} duplicates in the queue (EventBridge v2)"
    head = textwrap.fill("demo: " + verdict, SUMMARY_WIDTH, subsequent_indent="  ")
    return "\n".join(filter(None, [head, key_values(r), explanation(r)]))


def explanation(r: dict[str, Any]) -> str:
    """Why `refused` is not zero and `delivered` is more than `captured`: both on purpose."""
    from demo.pipeline import MAX_PAYMENT_AMOUNT, OVER_LIMIT_EVERY  # loaded by the run already

    limit = format_amount(MAX_PAYMENT_AMOUNT, "EUR").removeprefix("EUR ")
    notes = []
    if r["refused"]:
        notes.append(
            f"refused {r['refused']}: on purpose. One payment in {OVER_LIMIT_EVERY} asks for more "
            f"than the offline limit per payment ({limit} in each currency) and the daemon "
            "refuses it (offline_amount_limit), as a lane would."
        )
    if r["delivered"] > r["captured"]:
        notes.append(
            f"delivered {r['delivered']} > captured {r['captured']}: each void ({r['voids']} "
            "here) is a record of its own, delivered like a payment."
        )
    if r.get("clear_pans") is not None:
        notes.append(
            "clear_pans: the deck's card numbers found in clear in the journal, the daemon's "
            "log and its memory (P2PE: the reader encrypted them; only the Payment "
            "Cryptography stand-in, p2pe_calls, opened them). 0 everywhere is the point."
        )
    if not notes:
        return ""
    wrapped = [
        textwrap.fill(note, SUMMARY_WIDTH, initial_indent="  ", subsequent_indent="    ")
        for note in notes
    ]
    return "\n".join(["how to read it:", *wrapped])


def demo(args: argparse.Namespace) -> int:
    if not 1 <= args.payments <= MAX_PAYMENTS:
        raise UsageError(f"--payments must be between 1 and {MAX_PAYMENTS}")
    _check_keep_state(args.keep_state)
    # Imported here: a usage error is reported before moto and boto3 load.
    from demo.pipeline import run_demo

    bars: dict[str, Progress] = {}

    def progress(stage: str, done: int, total: int) -> None:
        bars.setdefault(stage, Progress(stage))(done, total)

    def phase(line: str) -> None:
        # stderr: with --json, stdout stays the one result object
        print(f"demo: {line}", file=sys.stderr, flush=True)

    try:
        result = run_demo(
            args.payments,
            args.keep_state,
            progress=progress,
            sync_api=args.sync_api,
            phase=phase,
            reader=args.reader,
        )
    finally:
        for bar in bars.values():
            bar.close()

    emit(result.as_dict(), args.json, render_summary)
    clean = (
        result.lost == 0
        and result.verify_ok
        and result.daemon_exit_code == 0
        and result.delivery_exit_code == 0
    )
    clean = clean and result.all_proven and result.no_clear_pans
    # v2 deduplicates at the bus: a duplicate in the queue is a failure of the guarantee
    clean = clean and (result.sync_api != "v2" or result.duplicates == 0)
    return 0 if clean else 1


if __name__ == "__main__":
    sys.exit(main(parser_factory=build_parser))
