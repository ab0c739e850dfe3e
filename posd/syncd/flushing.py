"""A flush: wait until the delivery daemon has delivered the backlog and a sent checkpoint
covers it all, so the cloud can prove every record so far.

Whoever asks (the capture daemon's `POST /v1/sync/flush`, or `posd sync flush` while only
the delivery daemon runs) cuts the forced checkpoint itself, then waits here. The wait ends
at once while the link is `misconfigured` or no delivery daemon runs: waiting cannot deliver
anything then, and the caller says why.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass

from posd.journal import Journal
from sync.pacing.link import MISCONFIGURED

FLUSH_POLL_S = 0.1


@dataclass(frozen=True)
class FlushOutcome:
    completed: bool
    pending: int
    waited_seconds: float


def backlog_left(journal: Journal) -> tuple[int, bool]:
    """Records pending, and whether a sent checkpoint covers them all (delivery sends the
    checkpoint in its side lane: it may not be sent yet when the records are)."""
    pending = journal.summary().pending
    if pending:
        return pending, False
    checkpoints = journal.checkpoint_status()
    return 0, checkpoints.pending == 0 and checkpoints.uncovered == 0


def cut_and_wait(
    journal: Journal,
    link_state: Callable[[], str],
    delivering: Callable[[], bool],
    timeout: float,
    progress: Callable[[int], None] | None = None,
) -> FlushOutcome:
    """Cut a checkpoint over everything appended so far, then wait (up to `timeout`) until
    it and every record are delivered; `progress(pending)` after each look."""
    started = time.monotonic()
    journal.cut_checkpoint(time.time(), force=True)
    pending, covered = backlog_left(journal)
    while (
        not (pending == 0 and covered)
        and link_state() != MISCONFIGURED
        and delivering()
        and time.monotonic() - started < timeout
    ):
        time.sleep(FLUSH_POLL_S)
        pending, covered = backlog_left(journal)
        if progress is not None:
            progress(pending)
    return FlushOutcome(pending == 0 and covered, pending, time.monotonic() - started)
