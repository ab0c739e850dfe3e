"""Magnetic stripe tracks 1 and 2 per ISO/IEC 7813: build, parse, LRC and parity.

Track 1 (IATA, format B), 6-bit characters 0x20-0x5F, at most 79 characters::

    %B<PAN>^<SURNAME/FIRST>^<YYMM><service code><discretionary>?<LRC>

Track 2 (ABA), 4-bit characters 0x30-0x3F, at most 40 characters::

    ;<PAN>=<YYMM><service code><discretionary>?<LRC>

The LRC character is the XOR of every character's data bits from the start sentinel to the end
sentinel inclusive; on the stripe each character (the LRC too) carries an odd parity bit, which
`raw_codes` reproduces. Readers often strip sentinels and LRC; `parse_track*` accept the bare
form too, and check the LRC only when it is present. Error messages give positions, never the
characters of the track.
"""

from __future__ import annotations

from dataclasses import dataclass

from drivers.card.carddata import CardData, EntryMode, Expiry, Pan, ServiceCode
from drivers.errors import CardConsistencyError, CardDataError, TrackFormatError, TrackLrcError
from drivers.sensitive import SecretStr

TRACK1_START = "%"
TRACK2_START = ";"
END_SENTINEL = "?"
TRACK1_SEPARATOR = "^"
TRACK2_SEPARATOR = "="
TRACK1_FORMAT_CODE = "B"
TRACK1_MAX_CHARS = 79  # sentinels and LRC included
TRACK2_MAX_CHARS = 40
NAME_MIN_CHARS = 2
NAME_MAX_CHARS = 26
EXPIRY_CHARS = 4
SERVICE_CODE_CHARS = 3


@dataclass(frozen=True)
class TrackEncoding:
    """A track's character set: ASCII offset of code 0 and the number of data bits."""

    name: str
    offset: int
    data_bits: int
    start: str
    separator: str
    max_chars: int

    def allows(self, char: str) -> bool:
        return self.offset <= ord(char) < self.offset + (1 << self.data_bits)


TRACK1 = TrackEncoding("track 1", 0x20, 6, TRACK1_START, TRACK1_SEPARATOR, TRACK1_MAX_CHARS)
TRACK2 = TrackEncoding("track 2", 0x30, 4, TRACK2_START, TRACK2_SEPARATOR, TRACK2_MAX_CHARS)


def _check_chars(text: str, encoding: TrackEncoding, first_position: int = 0) -> None:
    for position, char in enumerate(text, start=first_position):
        if not encoding.allows(char):
            raise TrackFormatError(
                f"{encoding.name}: character at position {position} is not allowed"
            )


def track_lrc(text: str, encoding: TrackEncoding) -> str:
    """The LRC character for `text` (start sentinel through end sentinel)."""
    _check_chars(text, encoding)
    value = 0
    for char in text:
        value ^= ord(char) - encoding.offset
    return chr(value + encoding.offset)


def with_odd_parity(value: int, data_bits: int) -> int:
    """`value` with its parity bit (bit `data_bits`) set so that the count of ones is odd."""
    ones = bin(value).count("1")
    return value | ((ones % 2 == 0) << data_bits)


def raw_codes(text: str, encoding: TrackEncoding) -> tuple[int, ...]:
    """The characters as written on the stripe: data bits plus odd parity, LRC included."""
    _check_chars(text, encoding)
    return tuple(with_odd_parity(ord(c) - encoding.offset, encoding.data_bits) for c in text)


@dataclass(frozen=True, repr=False)
class Track:
    """One parsed track. Everything but the structure flags is hidden from `repr`."""

    encoding: TrackEncoding
    pan: Pan
    expiry: Expiry
    service_code: ServiceCode
    discretionary: SecretStr
    raw: SecretStr
    name: SecretStr | None = None
    lrc_present: bool = False
    lrc_ok: bool = True

    def problems(self) -> list[CardDataError]:
        found = self.pan.problems()
        if not self.lrc_ok:
            found.append(TrackLrcError(f"{self.encoding.name}: LRC does not match the data"))
        return found

    def __repr__(self) -> str:
        return f"Track({self.encoding.name}, pan={self.pan!r}, lrc_ok={self.lrc_ok})"

    __str__ = __repr__


def build_track(
    encoding: TrackEncoding,
    pan: str,
    expiry_yymm: str,
    service_code: str,
    discretionary: str = "",
    name: str | None = None,
    *,
    with_lrc: bool = True,
) -> str:
    """Build a track with sentinels (and LRC). `name` is required for track 1 only."""
    Pan(pan)
    Expiry.parse_yymm(expiry_yymm)
    ServiceCode(service_code)
    sep = encoding.separator
    if encoding is TRACK1:
        if name is None or not NAME_MIN_CHARS <= len(name) <= NAME_MAX_CHARS:
            raise TrackFormatError(
                f"track 1: name must be {NAME_MIN_CHARS}-{NAME_MAX_CHARS} characters"
            )
        if sep in name or END_SENTINEL in name:
            raise TrackFormatError("track 1: name contains a reserved character")
        body = f"{TRACK1_FORMAT_CODE}{pan}{sep}{name}{sep}"
    else:
        body = f"{pan}{sep}"
    if END_SENTINEL in discretionary or sep in discretionary:
        raise TrackFormatError(f"{encoding.name}: discretionary data contains a reserved character")
    text = f"{encoding.start}{body}{expiry_yymm}{service_code}{discretionary}{END_SENTINEL}"
    if with_lrc:
        text += track_lrc(text, encoding)
    if len(text) > encoding.max_chars:
        raise TrackFormatError(f"{encoding.name}: longer than {encoding.max_chars} characters")
    _check_chars(text, encoding)
    return text


def build_track1(
    pan: str,
    name: str,
    expiry_yymm: str,
    service_code: str,
    discretionary: str = "",
    *,
    with_lrc: bool = True,
) -> str:
    return build_track(
        TRACK1, pan, expiry_yymm, service_code, discretionary, name, with_lrc=with_lrc
    )


def build_track2(
    pan: str, expiry_yymm: str, service_code: str, discretionary: str = "", *, with_lrc: bool = True
) -> str:
    return build_track(TRACK2, pan, expiry_yymm, service_code, discretionary, with_lrc=with_lrc)


def _split_frame(text: str, encoding: TrackEncoding) -> tuple[str, str, str | None]:
    """(framed text start..end sentinel, body between sentinels, LRC char or None)."""
    if not text.startswith(encoding.start):
        if END_SENTINEL in text:
            raise TrackFormatError(f"{encoding.name}: end sentinel without start sentinel")
        framed = f"{encoding.start}{text}{END_SENTINEL}"
        return framed, text, None
    end = text.find(END_SENTINEL)
    if end < 0:
        raise TrackFormatError(f"{encoding.name}: missing end sentinel '?'")
    trailer = text[end + 1 :]
    if len(trailer) > 1:
        raise TrackFormatError(f"{encoding.name}: unexpected characters after the LRC")
    return text[: end + 1], text[1:end], trailer or None


def _parse_fields(
    encoding: TrackEncoding, rest: str, offset: int
) -> tuple[Expiry, ServiceCode, str]:
    need = EXPIRY_CHARS + SERVICE_CODE_CHARS
    if len(rest) < need:
        raise TrackFormatError(
            f"{encoding.name}: expiry and service code missing after position {offset}"
        )
    try:
        expiry = Expiry.parse_yymm(rest[:EXPIRY_CHARS])
        service = ServiceCode(rest[EXPIRY_CHARS:need])
    except CardDataError as error:
        raise TrackFormatError(f"{encoding.name}: {error}") from None
    return expiry, service, rest[need:]


def _parse_pan(encoding: TrackEncoding, text: str) -> Pan:
    try:
        return Pan(text)
    except CardDataError as error:
        raise TrackFormatError(f"{encoding.name}: {error}") from None


def parse_track(text: str, encoding: TrackEncoding) -> Track:
    """Parse one track (with or without sentinels and LRC). Raises `TrackFormatError`."""
    if not text.isascii():
        raise TrackFormatError(f"{encoding.name}: non-ASCII characters")
    framed, body, lrc = _split_frame(text, encoding)
    if len(framed) + (1 if lrc else 0) > encoding.max_chars:
        raise TrackFormatError(f"{encoding.name}: longer than {encoding.max_chars} characters")
    _check_chars(framed, encoding)
    if lrc is not None:
        _check_chars(lrc, encoding, len(framed))
    name: SecretStr | None = None
    if encoding is TRACK1:
        if not body.startswith(TRACK1_FORMAT_CODE):
            raise TrackFormatError("track 1: format code must be 'B'")
        parts = body[1:].split(TRACK1_SEPARATOR, 2)
        if len(parts) != 3:
            raise TrackFormatError("track 1: expected two '^' field separators")
        pan_text, name_text, rest = parts
        if not NAME_MIN_CHARS <= len(name_text) <= NAME_MAX_CHARS:
            raise TrackFormatError(
                f"track 1: name must be {NAME_MIN_CHARS}-{NAME_MAX_CHARS} characters"
            )
        name = SecretStr(name_text)
        rest_offset = 1 + len(pan_text) + len(name_text) + 2
    else:
        pan_text, sep, rest = body.partition(TRACK2_SEPARATOR)
        if not sep:
            raise TrackFormatError("track 2: missing '=' field separator")
        rest_offset = len(pan_text) + 1
    pan = _parse_pan(encoding, pan_text)
    expiry, service, discretionary = _parse_fields(encoding, rest, rest_offset)
    if encoding.separator in discretionary:
        raise TrackFormatError(f"{encoding.name}: unexpected field separator")
    return Track(
        encoding=encoding,
        pan=pan,
        expiry=expiry,
        service_code=service,
        discretionary=SecretStr(discretionary),
        raw=SecretStr(text),
        name=name,
        lrc_present=lrc is not None,
        lrc_ok=lrc is None or track_lrc(framed, encoding) == lrc,
    )


def parse_track1(text: str) -> Track:
    return parse_track(text, TRACK1)


def parse_track2(text: str) -> Track:
    return parse_track(text, TRACK2)


def split_tracks(text: str) -> tuple[str | None, str | None]:
    """Split a swipe's text into (track 1, track 2), either possibly missing.

    Accepts `%...?L;...?L` (LRCs optional), a single track with sentinels, or one bare track
    (`B...^...^...` is track 1, `<digits>=...` is track 2).
    """
    text = text.strip()
    if not text:
        raise TrackFormatError("no track data")
    if text.startswith(TRACK1_START):
        end = text.find(END_SENTINEL)
        if end < 0:
            return text, None
        cut = end + 1
        remainder = text[cut:]
        # One char after '?' is an LRC unless it starts track 2 (an LRC of ';' is then doubled).
        if remainder and (
            not remainder.startswith(TRACK2_START)
            or remainder == TRACK2_START
            or remainder[1:].startswith(TRACK2_START)
        ):
            cut += 1
        return text[:cut], text[cut:] or None
    if text.startswith(TRACK2_START) or text[:1].isdigit():
        return None, text
    if text.startswith(TRACK1_FORMAT_CODE):
        return text, None
    raise TrackFormatError("not track data: expected '%', ';', 'B' or a digit first")


def card_from_tracks(track1: Track | None, track2: Track | None) -> CardData:
    """Combine tracks into one `CardData`; track 2 wins for the PAN, mismatches are problems."""
    primary = track2 or track1
    if primary is None:
        raise TrackFormatError("no track data")
    problems: list[CardDataError] = []
    for track in (track1, track2):
        if track is not None:
            problems.extend(track.problems())
    if track1 is not None and track2 is not None:
        if track1.pan != track2.pan:
            problems.append(CardConsistencyError("track 1 and track 2 card numbers differ"))
        if track1.expiry != track2.expiry:
            problems.append(CardConsistencyError("track 1 and track 2 expiry dates differ"))
    return CardData(
        entry_mode=EntryMode.MAGSTRIPE,
        pan=primary.pan,
        expiry=primary.expiry,
        service_code=primary.service_code,
        cardholder_name=track1.name if track1 else None,
        track1=track1.raw if track1 else None,
        track2=track2.raw if track2 else None,
        problems=_dedupe(problems),
    )


def parse_swipe(text: str) -> CardData:
    """Parse what a reader (or a technician) gives as a swipe: one or both tracks."""
    text1, text2 = split_tracks(text)
    track1 = parse_track1(text1) if text1 else None
    track2 = parse_track2(text2) if text2 else None
    return card_from_tracks(track1, track2)


def _dedupe(problems: list[CardDataError]) -> tuple[CardDataError, ...]:
    seen: set[tuple[type[CardDataError], str]] = set()
    unique: list[CardDataError] = []
    for problem in problems:
        key = (type(problem), str(problem))
        if key not in seen:
            seen.add(key)
            unique.append(problem)
    return tuple(unique)
