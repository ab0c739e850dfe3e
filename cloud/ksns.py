"""A KSN is used once: the claim that catches a replayed P2PE swipe.

A secure reader derives a fresh DUKPT key per transaction and never uses a key serial number
twice; a block captured once (a USB sniffer, a compromised terminal, a copied journal record)
and sent again as a new payment carries the same ciphertext and the same KSN. The terminal
cannot catch that (it forgets across restarts), and records arrive out of order, so "the KSN
must grow" would be wrong here: "a KSN is used once" is right.

Each block's KSN is claimed in the events table (the consumer's table of identities claimed
once, with conditional puts) as an item of kind `p2pe_ksn`, keyed `p2pe-ksn#<scheme>#<KSN>`
and naming the event that first used it. The key is the KSN alone, not `key_ref` with it:
Payment Cryptography takes a BDK by alias or by ARN, so a replay that named the same BDK the
other way would pass a claim keyed on the name. The KSN already identifies the key (its key
set identifier names the BDK, the rest the reader). Event ids are canonical UUIDs
(`wire.events`), so no event can take a claim's key. The same event claiming it
again (SQS redelivers a message whose first try failed) finds its own claim; another event is a
replay. The claim is never removed: a restart or another invocation sees it.
"""

from __future__ import annotations

import time
from collections.abc import Callable

from cloud.store import Store
from wire.p2pe import P2peBlock

KSN_KIND = "p2pe_ksn"
CLAIM_PREFIX = "p2pe-ksn"
FIRST_EVENT = "first_event_id"
# Free, or this event's own claim (a retry rewrites the same item).
_FREE_OR_OWN = "attribute_not_exists(#k) OR #f = :f"


def claim_key(block: P2peBlock) -> str:
    """The events table's key of a block's claim (a KSN is no secret: it may be stored)."""
    return f"{CLAIM_PREFIX}#{block.scheme.value}#{block.ksn.hex().upper()}"


class KsnClaims:
    def __init__(self, store: Store, clock: Callable[[], float] = time.time) -> None:
        self._store = store
        self._clock = clock

    def claim(self, block: P2peBlock, event_id: str) -> str | None:
        """Claim the block's KSN for `event_id`; None if it is this event's (now or already),
        else the event_id that used it first."""
        table, key = self._store.tables.events, claim_key(block)
        item = {
            "event_id": key,
            "kind": KSN_KIND,
            FIRST_EVENT: event_id,
            "key_ref": block.key_ref,
            "ksn": block.ksn.hex().upper(),
            "claimed_at": int(self._clock()),
        }
        names = {"#k": "event_id", "#f": FIRST_EVENT}
        if self._store.put_if(table, item, _FREE_OR_OWN, names, {":f": event_id}):
            return None
        existing = self._store.get(table, {"event_id": key}) or {}
        # an item without a first event (an event filed under this key): used, by no payment
        return str(existing.get(FIRST_EVENT, ""))
