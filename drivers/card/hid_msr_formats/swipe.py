"""One swipe as a HID card reader reports it: per track, did it decode, and its text.

Whatever the report layout, a swipe comes down to three tracks each with a decode status.
`MsrSwipe.read` gives the tracks that read, for the rule every clear-text HID reader shares
(`swipe_text.read_tracks`): a track the reader could not decode is left out as long as another
track read; with no track 1 or 2 read the swipe is unreadable (the cashier swipes again).
"""

from __future__ import annotations

from dataclasses import dataclass

from drivers.card.results import CardRead, CardUnreadable
from drivers.card.swipe_text import read_tracks
from drivers.errors import TrackFormatError
from drivers.sensitive import SecretStr

NO_TEXT = SecretStr("")
TEXT_ENCODING = "latin-1"  # every byte maps to one character; the track parsers refuse non-ASCII


@dataclass(frozen=True)
class TrackRead:
    """One track of a swipe. A track that did not decode carries no text."""

    decoded: bool = True
    text: SecretStr = NO_TEXT

    def __post_init__(self) -> None:
        if not self.decoded and self.text:
            raise ValueError("a track that did not decode carries no text")

    @property
    def read(self) -> str | None:
        """The track's text if it decoded and holds data; None otherwise."""
        return self.text.reveal() if self.decoded and self.text else None


NOT_PRESENT = TrackRead()
DECODE_ERROR = TrackRead(decoded=False)


@dataclass(frozen=True)
class MsrSwipe:
    """Tracks 1, 2 and 3 of one swipe."""

    track1: TrackRead = NOT_PRESENT
    track2: TrackRead = NOT_PRESENT
    track3: TrackRead = NOT_PRESENT

    @property
    def tracks(self) -> tuple[TrackRead, TrackRead, TrackRead]:
        return (self.track1, self.track2, self.track3)

    def read(self) -> CardRead | CardUnreadable:
        """The read result of the tracks that decoded (`swipe_text.read_tracks`)."""
        return read_tracks(*(track.read for track in self.tracks))


def track_from_bytes(data: bytes) -> SecretStr:
    """A track field's bytes as text for the track parsers (which refuse what is not ASCII)."""
    return SecretStr(data.decode(TEXT_ENCODING))


def field_bytes(text: str, number: int, field_size: int) -> bytes:
    """A track's text as the bytes of a report field of `field_size` bytes (simulator side).

    Raises `TrackFormatError` for text the field cannot carry."""
    if not text.isascii():
        raise TrackFormatError(f"track {number}: non-ASCII characters")
    if len(text) > field_size:
        raise TrackFormatError(f"track {number}: longer than the {field_size}-byte field")
    return text.encode(TEXT_ENCODING)
