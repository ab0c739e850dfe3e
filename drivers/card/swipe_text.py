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
    card_from_track_texts,
    split_swipe,
)

READ_ERROR = "E"
#: The start sentinel a reader prints before `E?` for track 1, 2 and 3.
READ_ERROR_STARTS = (TRACK1_START, TRACK2_START, TRACK3_READER_START)


def is_read_error(track: str | None) -> bool:
    """`%E?`, `;E?` or `+E?`, with or without an LRC after the end sentinel."""
    return (
        track is not None
        and track[:1] in READ_ERROR_STARTS
        and track[1:3] == READ_ERROR + END_SENTINEL
        and len(track) <= len(READ_ERROR) + 3
    )


def read_error_mark(number: int) -> str:
    """What a reader sends for track `number` (1-3) that it could not read."""
    return READ_ERROR_STARTS[number - 1] + READ_ERROR + END_SENTINEL


def read_tracks(
    track1: str | None, track2: str | None, track3: str | None = None
) -> CardRead | CardUnreadable:
    """The read result of the tracks a reader read (None or "": not read, or marked bad):
    `CardUnreadable` with neither track 1 nor track 2; raises a `CardDataError` for data that
    fails the checks."""
    if not track1 and not track2:
        return CardUnreadable()
    card = card_from_track_texts(track1, track2, track3)
    card.raise_for_problems()
    return CardRead(card)


def read_swipe_text(text: str) -> CardRead | CardUnreadable:
    """`CardRead` for a swipe with a good track 1 or 2, `CardUnreadable` if the reader marked
    both bad; raises a `CardDataError` for data that fails the checks."""
    return read_tracks(*(None if is_read_error(track) else track for track in split_swipe(text)))
