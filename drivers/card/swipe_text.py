"""A swipe that a reader hands over as clear text (`%B...?;...?`), as a `read_card` result.

Keyboard-emulating and plain HID readers send the tracks they read, sentinels included, and
mark a track they could not read as `%E?` (track 1), `;E?` (track 2) or `+E?`/`;E?` (track
3). A track marked bad is left out; with neither track 1 nor track 2 left, the swipe is
`CardUnreadable` (the cashier swipes again). What is left is parsed and checked like any other
magstripe read (`tracks.parse_swipe`, `CardData.raise_for_problems`).
"""

from __future__ import annotations

from drivers.card.results import CardRead, CardUnreadable
from drivers.card.tracks import (
    END_SENTINEL,
    TRACK1_START,
    TRACK2_START,
    TRACK3_READER_START,
    card_from_tracks,
    parse_track1,
    parse_track2,
    parse_track3,
    split_swipe,
)

READ_ERROR = "E"
_STARTS = (TRACK1_START, TRACK2_START, TRACK3_READER_START)


def _is_read_error(track: str | None) -> bool:
    """`%E?`, `;E?` or `+E?`, with or without an LRC after the end sentinel."""
    return (
        track is not None
        and track[:1] in _STARTS
        and track[1:3] == READ_ERROR + END_SENTINEL
        and len(track) <= len(READ_ERROR) + 3
    )


def read_swipe_text(text: str) -> CardRead | CardUnreadable:
    """`CardRead` for a swipe with a good track 1 or 2, `CardUnreadable` if the reader marked
    both bad; raises a `CardDataError` for data that fails the checks."""
    good = [None if _is_read_error(track) else track for track in split_swipe(text)]
    if good[0] is None and good[1] is None:
        return CardUnreadable()
    card = card_from_tracks(
        parse_track1(good[0]) if good[0] else None,
        parse_track2(good[1]) if good[1] else None,
        parse_track3(good[2]) if good[2] else None,
    )
    card.raise_for_problems()
    return CardRead(card)
