"""The cashier of the simulated HID card readers: swipes the deck's next card a moment after
each read starts. A HID reader is never armed, the card simply comes, so a simulated reader
that the daemon or the demo drives needs someone to swipe it; tests that swipe by hand give
an empty deck."""

from __future__ import annotations

import itertools
import threading
from collections.abc import Callable, Iterable

from drivers.base import require_positive
from drivers.card.carddata import EntryMode
from drivers.card.deck import DeckCard, default_deck

DEFAULT_SWIPE_DELAY_S = 0.2


def magstripe_deck(deck: Iterable[DeckCard] | None = None) -> tuple[DeckCard, ...]:
    """The swipes of `deck` (default: the default deck): a swipe reader has no chip or
    contactless interface."""
    cards = default_deck() if deck is None else deck
    return tuple(card for card in cards if card.entry_mode is EntryMode.MAGSTRIPE)


class Cashier:
    """Swipes the deck's cards in turn, `swipe_delay_s` after each `read_started()`."""

    def __init__(
        self,
        swipe: Callable[[DeckCard], None],
        deck: Iterable[DeckCard] | None = None,
        swipe_delay_s: float = DEFAULT_SWIPE_DELAY_S,
    ) -> None:
        require_positive(swipe_delay_s=swipe_delay_s)
        cards = magstripe_deck(deck)
        self._swipe = swipe
        self._cards = itertools.cycle(cards)
        self._has_cards = bool(cards)
        self._delay_s = swipe_delay_s

    def read_started(self) -> None:
        if not self._has_cards:
            return
        timer = threading.Timer(self._delay_s, self._swipe, args=(next(self._cards),))
        timer.daemon = True
        timer.start()
