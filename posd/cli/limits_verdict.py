"""What the offline limits mean for `posd status`'s first line: which one refuses every
payment and what lifts it, and which currency has little left to take offline.

A changed `[offline]` limit applies on `systemctl reload posd` (SIGHUP rereads it) or a
restart; the backlog's delivery lifts the count and age limits by itself.
"""

from __future__ import annotations

from posd.api_answers import LimitsAnswer, RefusalAnswer
from posd.currency import format_amount
from posd.daemon.refusals import AMOUNT_KEY, LIMIT_KEYS

RELOAD = "systemctl reload posd"
LOW_SHARE_WITHOUT_PAYMENT_LIMIT = 0.1
"""Without a per-payment limit, a currency's pending-amount headroom is low under this share
of `max_pending_amount`."""


def limit_fix(refusal: RefusalAnswer) -> str | None:
    """How to sell again when an offline limit refuses every payment (None: not a limit)."""
    key = LIMIT_KEYS.get(refusal["error"])
    if key is None:
        return None
    return (
        "to sell again: deliver the backlog (the link back, posd-sync running) "
        f"or raise {key} in the config, then: {RELOAD}"
    )


def low_amount_headroom(limits: LimitsAnswer | None) -> list[str]:
    """Each currency whose pending-amount headroom is under what one payment may be (the
    per-payment limit, else a tenth of the pending limit): payments start to be refused."""
    if limits is None:
        return []
    pending = limits["max_pending_amount"]
    if pending["limit"] is None:
        return []
    one_payment = limits["max_payment_amount"]["limit"]
    low = one_payment or pending["limit"] * LOW_SHARE_WITHOUT_PAYMENT_LIMIT
    return [
        f"offline limit: only {format_amount(int(left), currency)} more can be taken "
        f"offline ({AMOUNT_KEY})"
        for currency, left in pending.get("headroom_by_currency", {}).items()
        if left is not None and left < low
    ]
