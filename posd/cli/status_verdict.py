"""`posd status`'s first line and exit code: can the lane sell, and what needs a person.

The exit codes are for scripts, as `systemctl status` has them: 0 and 3 mean what they mean
there; 1 and 4 are ours. (2 stays every command's "bad input or config".)
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Final

from posd.cli.limits_verdict import limit_fix, low_amount_headroom

EXIT_READY: Final = 0
"""Payments are accepted and nothing needs a person."""
EXIT_DEGRADED: Final = 1
"""Payments are accepted, but something is wrong: a device down, the link not delivering (or
no delivery daemon), or rows that need a person."""
EXIT_NOT_RUNNING: Final = 3
"""No daemon answers (as `systemctl status` for an inactive unit)."""
EXIT_CANNOT_SELL: Final = 4
"""A daemon runs but every payment is refused (or it does not answer at all)."""
EXIT_NOT_ASKED: Final = 5
"""`--state-dir` found a daemon running on that state dir but cannot ask it (no config, so
no socket): give `--config` for whether it sells."""

READY = "ready"
DEGRADED = "degraded"
CANNOT_SELL = "cannot_sell"
NOT_RUNNING = "not_running"
NOT_ANSWERING = "not_answering"
NOT_ASKED = "running_not_asked"

EXIT_CODES: Final = {
    READY: EXIT_READY,
    DEGRADED: EXIT_DEGRADED,
    NOT_RUNNING: EXIT_NOT_RUNNING,
    CANNOT_SELL: EXIT_CANNOT_SELL,
    NOT_ANSWERING: EXIT_CANNOT_SELL,
    NOT_ASKED: EXIT_NOT_ASKED,
}
NOT_DELIVERING = ("offline", "misconfigured")
JOURNALCTL = "journalctl -u posd -n 50"
DELIVERY_FIX = "start it: systemctl start posd-sync; why it stopped: journalctl -u posd-sync -n 50"
DELIVERY_DOWN = f"delivery not running: nothing is delivered ({DELIVERY_FIX})"

EXIT_HELP = (
    f"exit status: {EXIT_READY} ready (payments accepted, nothing to do); "
    f"{EXIT_DEGRADED} selling but degraded (a device down, the link offline or misconfigured, "
    "delivery not running, rows that need a person); 2 bad input or config; "
    f"{EXIT_NOT_RUNNING} the daemon is not running; {EXIT_CANNOT_SELL} cannot sell "
    "(every payment is refused, or the daemon does not answer); "
    f"{EXIT_NOT_ASKED} --state-dir found a running daemon it cannot ask (give --config)"
)


@dataclass(frozen=True)
class Verdict:
    name: str
    headline: str
    attention: list[str]

    @property
    def exit_code(self) -> int:
        return EXIT_CODES[self.name]


def needs_a_person(status: Any) -> list[str]:
    """What a technician must look at: rows the lane cannot deliver by itself."""
    found = []
    if status["quarantined"]:
        found.append(
            f"{status['quarantined']} quarantined (see: posd journal list --state quarantined)"
        )
    if status["unreadable"]:
        found.append(f"{status['unreadable']} unreadable (see: posd journal verify)")
    if status["tampered"]:
        found.append(f"{status['tampered']} tampered (see: posd journal verify)")
    return found


def running_verdict(status: Any) -> Verdict:
    """From the daemon's own answer."""
    attention = needs_a_person(status)
    state = status["state"]
    refusing = status.get("refusing")
    if refusing is not None:
        fix = limit_fix(refusing)
        return Verdict(
            CANNOT_SELL,
            f"CANNOT SELL: every payment is refused with {refusing['error']}: "
            f"{refusing['message']}" + ("" if fix is None else f"; {fix}"),
            attention,
        )
    if state == "shutting_down":
        return Verdict(CANNOT_SELL, "CANNOT SELL: posd is shutting down", attention)
    if state == "not_ready":  # an older daemon: a reason without its code
        return Verdict(
            CANNOT_SELL, f"CANNOT SELL: {status.get('not_ready_reason') or state}", attention
        )
    problems = [f"{name} down" for name, up in status["devices"].items() if up != "connected"]
    problems += low_amount_headroom(status.get("limits"))
    link = status["link"]["state"]
    delivery = status.get("delivery")
    if delivery is not None and not delivery["running"]:
        problems.append(DELIVERY_DOWN)
    elif link in NOT_DELIVERING:
        problems.append(f"link {link}: nothing is delivered")
    if problems or attention:
        return Verdict(DEGRADED, "SELLING, DEGRADED: " + "; ".join(problems + attention), attention)
    return Verdict(READY, "READY: payments are accepted", attention)
