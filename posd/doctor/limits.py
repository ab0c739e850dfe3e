"""The offline limits as the running daemon applies them: one used up refuses every payment
(FAIL, with the fix `posd status` prints), a currency with little left to take offline WARNs.
The daemon's own answer, not the file: an edited limit applies only once reloaded."""

from __future__ import annotations

from posd.cli.limits_verdict import limit_fix, low_amount_headroom
from posd.doctor.checks import FAIL, OK, WARN, Check, Context

NAME = "offline limits"
STATUS_PATH = "/v1/status"


def check_offline_limits(ctx: Context) -> Check:
    if ctx.daemon is None:
        return Check(NAME, OK, "posd is not running: nothing to refuse (posd status shows them)")
    status = ctx.daemon.get(STATUS_PATH)
    refusing = status.get("refusing")
    fix = None if refusing is None else limit_fix(refusing)
    if refusing is not None and fix is not None:
        return Check(
            NAME, FAIL, f"every payment is refused {refusing['error']}: {refusing['message']}", fix
        )
    low = low_amount_headroom(status.get("limits"))
    if low:
        return Check(
            NAME,
            WARN,
            "; ".join(low),
            "deliver the backlog (the link back); raising the limit is the chain's call",
        )
    return Check(NAME, OK, "within every limit")
