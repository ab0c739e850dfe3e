"""Magnetic stripe tracks 1 and 2 per ISO/IEC 7813: build, parse, LRC and parity.

Track 1 (IATA, format B), 6-bit characters 0x20-0x5F, at most 79 characters::

    %B<PAN>^[country code]<SURNAME/FIRST>^<YYMM | ^><service code | ^><discretionary>?<LRC>

Track 2 (ABA), 4-bit characters 0x30-0x3F, at most 40 characters::

    ;<PAN>=[country code]<YYMM | =><service code | =><discretionary>?<LRC>

The country code is there only for a PAN beginning 59; a separator in place of the expiry or
the service code marks it absent (a problem, not a malformed track): see `iso7813`.
A swipe may also carry track 3 (ISO 4909, same character set as track 2, at most 107
characters): it is checked for shape and LRC and kept, unparsed, for the sealed secret only.

The LRC character is the XOR of every character's data bits from the start sentinel to the end
sentinel inclusive; on the stripe each character (the LRC too) carries an odd parity bit, which
`raw_codes` reproduces. Readers often strip sentinels and LRC; `parse_track*` accept the bare
form too, and check the LRC only when it is present. Error messages give positions, never the
characters of the track.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import NamedTuple

from drivers.card.carddata import CardData, EntryMode, Expiry, Pan, ServiceCode
from drivers.card.iso7813 import (
    COUNTRY_CODE_DIGITS,
    check_country_code,
    format_fields,
    needs_country_code,
    parse_fields,
)
from drivers.errors import CardConsistencyError, CardDataError, TrackFormatError, TrackLrcError
from drivers.sensitive import SecretStr

TRACK1_START = "%"
TRACK2_START = ";"
END_SENTINEL = "?"
TRACK1_SEPARATOR = "^"
TRACK2_SEPARATOR = "="
TRACK1_FORMAT_CODE = "B"
TRACK3_START = ";"
TRACK3_READER_START = "+"  # what some readers print instead of track 3's ';'
TRACK1_MAX_CHARS = 79  # sentinels and LRC included
TRACK2_MAX_CHARS = 40
TRACK3_MAX_CHARS = 107
NAME_MIN_CHARS = 2
NAME_MAX_CHARS = 26


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
TRACK3 = TrackEncoding("track 3", 0x30, 4, TRACK3_START, TRACK2_SEPARATOR, TRACK3_MAX_CHARS)


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
    expiry: Expiry | None
    service_code: ServiceCode | None
    discretionary: SecretStr
    raw: SecretStr
    name: SecretStr | None = None
    country_code: str | None = None
    lrc_present: bool = False
    lrc_ok: bool = True
    field_problems: tuple[CardDataError, ...] = ()  # absent expiry or service code

    def problems(self) -> list[CardDataError]:
        found = self.pan.problems()
        found.extend(self.field_problems)
        if not self.lrc_ok:
            found.append(TrackLrcError(f"{self.encoding.name}: LRC does not match the data"))
        return found

    def __repr__(self) -> str:
        return f"Track({self.encoding.name}, pan={self.pan!r}, lrc_ok={self.lrc_ok})"

    __str__ = __repr__


@dataclass(frozen=True, repr=False)
class Track3:
    """Track 3 as read: its shape and LRC checked, its content not needed and never shown."""

    raw: SecretStr
    data_chars: int
    lrc_present: bool = False
    lrc_ok: bool = True

    def problems(self) -> list[CardDataError]:
        if self.lrc_ok:
            return []
        return [TrackLrcError(f"{TRACK3.name}: LRC does not match the data")]

    def __repr__(self) -> str:
        return f"Track3(<{self.data_chars} chars>, lrc_ok={self.lrc_ok})"

    __str__ = __repr__


def _check_name(name: str) -> None:
    if not NAME_MIN_CHARS <= len(name) <= NAME_MAX_CHARS:
        raise TrackFormatError(
            f"track 1: name must be {NAME_MIN_CHARS}-{NAME_MAX_CHARS} characters"
        )


def build_track(
    encoding: TrackEncoding,
    pan: str,
    expiry_yymm: str | None,
    service_code: str | None,
    discretionary: str = "",
    name: str | None = None,
    *,
    country_code: str | None = None,
    with_lrc: bool = True,
) -> str:
    """Build a track with sentinels (and LRC). `name` is required for track 1 only.

    None for the expiry or the service code writes a field separator (ISO/IEC 7813 absence);
    `country_code` is required exactly when the PAN begins 59.
    """
    Pan(pan)
    if expiry_yymm is not None:
        Expiry.parse_yymm(expiry_yymm)
    if service_code is not None:
        ServiceCode(service_code)
    check_country_code(pan, country_code, encoding.name)
    sep = encoding.separator
    if END_SENTINEL in discretionary or sep in discretionary:
        raise TrackFormatError(f"{encoding.name}: discretionary data contains a reserved character")
    if encoding is TRACK1:
        if name is None:
            raise TrackFormatError("track 1: a name is required")
        _check_name(name)
        if sep in name or END_SENTINEL in name:
            raise TrackFormatError("track 1: name contains a reserved character")
        body = f"{TRACK1_FORMAT_CODE}{pan}{sep}{country_code or ''}{name}{sep}"
        fields = format_fields(sep, expiry_yymm, service_code, discretionary)
    else:
        body = f"{pan}{sep}"
        fields = format_fields(sep, expiry_yymm, service_code, discretionary, country_code)
    text = f"{encoding.start}{body}{fields}{END_SENTINEL}"
    if with_lrc:
        text += track_lrc(text, encoding)
    if len(text) > encoding.max_chars:
        raise TrackFormatError(f"{encoding.name}: longer than {encoding.max_chars} characters")
    _check_chars(text, encoding)
    return text


def build_track1(
    pan: str,
    name: str,
    expiry_yymm: str | None,
    service_code: str | None,
    discretionary: str = "",
    *,
    country_code: str | None = None,
    with_lrc: bool = True,
) -> str:
    return build_track(
        TRACK1,
        pan,
        expiry_yymm,
        service_code,
        discretionary,
        name,
        country_code=country_code,
        with_lrc=with_lrc,
    )


def build_track2(
    pan: str,
    expiry_yymm: str | None,
    service_code: str | None,
    discretionary: str = "",
    *,
    country_code: str | None = None,
    with_lrc: bool = True,
) -> str:
    return build_track(
        TRACK2,
        pan,
        expiry_yymm,
        service_code,
        discretionary,
        country_code=country_code,
        with_lrc=with_lrc,
    )


def build_track3(data: str, *, with_lrc: bool = True) -> str:
    """Track 3 with sentinels (and LRC) around `data` (ISO 4909 content is the caller's)."""
    if END_SENTINEL in data:
        raise TrackFormatError("track 3: data contains the end sentinel")
    text = f"{TRACK3_START}{data}{END_SENTINEL}"
    if with_lrc:
        text += track_lrc(text, TRACK3)
    if len(text) > TRACK3_MAX_CHARS:
        raise TrackFormatError(f"track 3: longer than {TRACK3_MAX_CHARS} characters")
    return text


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


def _check_frame(text: str, encoding: TrackEncoding) -> tuple[str, str, str | None]:
    """Split and check characters and length; returns `_split_frame`'s triple."""
    if not text.isascii():
        raise TrackFormatError(f"{encoding.name}: non-ASCII characters")
    framed, body, lrc = _split_frame(text, encoding)
    if len(framed) + (1 if lrc else 0) > encoding.max_chars:
        raise TrackFormatError(f"{encoding.name}: longer than {encoding.max_chars} characters")
    _check_chars(framed, encoding)
    if lrc is not None:
        _check_chars(lrc, encoding, len(framed))
    return framed, body, lrc


def _parse_pan(encoding: TrackEncoding, text: str) -> Pan:
    try:
        return Pan(text)
    except CardDataError as error:
        raise TrackFormatError(f"{encoding.name}: {error}") from None


def _split_track1_body(body: str) -> tuple[str, str, str]:
    """(PAN, name field, rest after the second separator) of a track 1 body."""
    if not body.startswith(TRACK1_FORMAT_CODE):
        raise TrackFormatError("track 1: format code must be 'B'")
    parts = body[1:].split(TRACK1_SEPARATOR, 2)
    if len(parts) != 3:
        raise TrackFormatError("track 1: expected two '^' field separators")
    return parts[0], parts[1], parts[2]


def parse_track(text: str, encoding: TrackEncoding) -> Track:
    """Parse track 1 or 2 (with or without sentinels and LRC). Raises `TrackFormatError`."""
    framed, body, lrc = _check_frame(text, encoding)
    name: SecretStr | None = None
    country_code: str | None = None
    if encoding is TRACK1:
        pan_text, name_field, rest = _split_track1_body(body)
        pan = _parse_pan(encoding, pan_text)
        if needs_country_code(pan_text):
            country_code = name_field[:COUNTRY_CODE_DIGITS]
            check_country_code(pan_text, country_code, encoding.name)
            name_field = name_field[COUNTRY_CODE_DIGITS:]
        _check_name(name_field)
        name = SecretStr(name_field)
        fields = parse_fields(rest, encoding.separator, False, encoding.name)
    else:
        pan_text, sep, rest = body.partition(TRACK2_SEPARATOR)
        if not sep:
            raise TrackFormatError("track 2: missing '=' field separator")
        pan = _parse_pan(encoding, pan_text)
        fields = parse_fields(rest, encoding.separator, needs_country_code(pan_text), encoding.name)
        country_code = fields.country_code
    if fields.malformed:
        raise TrackFormatError(str(fields.malformed[0]))
    if encoding.separator in fields.discretionary:
        raise TrackFormatError(f"{encoding.name}: unexpected field separator")
    return Track(
        encoding=encoding,
        pan=pan,
        expiry=fields.expiry,
        service_code=fields.service_code,
        discretionary=SecretStr(fields.discretionary),
        raw=SecretStr(text),
        name=name,
        country_code=country_code,
        lrc_present=lrc is not None,
        lrc_ok=lrc is None or track_lrc(framed, encoding) == lrc,
        field_problems=fields.problems,
    )


def parse_track1(text: str) -> Track:
    return parse_track(text, TRACK1)


def parse_track2(text: str) -> Track:
    return parse_track(text, TRACK2)


def parse_track3(text: str) -> Track3:
    """Check track 3's frame, characters and LRC; keep it whole. Raises `TrackFormatError`."""
    normalised = TRACK3_START + text[1:] if text.startswith(TRACK3_READER_START) else text
    framed, body, lrc = _check_frame(normalised, TRACK3)
    return Track3(
        raw=SecretStr(text),
        data_chars=len(body),
        lrc_present=lrc is not None,
        lrc_ok=lrc is None or track_lrc(framed, TRACK3) == lrc,
    )


class SwipeTracks(NamedTuple):
    """The tracks of one swipe as text, each possibly missing."""

    track1: str | None
    track2: str | None
    track3: str | None = None


def _cut_track(text: str, next_starts: str) -> tuple[str, str]:
    """(first framed track with its LRC if any, the rest) of a swipe's text.

    One character after '?' is the LRC unless it starts the next track; an LRC equal to the
    next start sentinel is then followed by that sentinel again.
    """
    end = text.find(END_SENTINEL)
    if end < 0:
        return text, ""
    cut = end + 1
    remainder = text[cut:]
    if remainder and (
        remainder[0] not in next_starts or len(remainder) == 1 or remainder[1] in next_starts
    ):
        cut += 1
    return text[:cut], text[cut:]


def split_swipe(text: str) -> SwipeTracks:
    """Split a swipe's text into its tracks.

    Accepts `%...?L;...?L;...?L` (LRCs optional; track 3 may start with '+'), any leading
    subset of it with sentinels, or one bare track (`B...^...^...` is track 1,
    `<digits>=...` is track 2). Text after track 3 is left for its parser to refuse.
    """
    text = text.strip()
    if not text:
        raise TrackFormatError("no track data")
    track1: str | None = None
    if text.startswith(TRACK1_START):
        track1, text = _cut_track(text, TRACK2_START)
        if not text:
            return SwipeTracks(track1, None)
    elif text.startswith(TRACK1_FORMAT_CODE):
        return SwipeTracks(text, None)
    elif not (text.startswith(TRACK2_START) or text[:1].isdigit()):
        raise TrackFormatError("not track data: expected '%', ';', 'B' or a digit first")
    if not text.startswith(TRACK2_START):
        return SwipeTracks(track1, text)
    track2, rest = _cut_track(text, TRACK3_START + TRACK3_READER_START)
    return SwipeTracks(track1, track2, rest or None)


def card_from_tracks(
    track1: Track | None, track2: Track | None, track3: Track3 | None = None
) -> CardData:
    """Combine tracks into one `CardData`; track 2 wins for the PAN, mismatches are problems."""
    primary = track2 or track1
    if primary is None:
        raise TrackFormatError("no track 1 or track 2 data")
    problems: list[CardDataError] = []
    for track in (track1, track2, track3):
        if track is not None:
            problems.extend(track.problems())
    if track1 is not None and track2 is not None:
        if track1.pan != track2.pan:
            problems.append(CardConsistencyError("track 1 and track 2 card numbers differ"))
        if track1.expiry and track2.expiry and track1.expiry != track2.expiry:
            problems.append(CardConsistencyError("track 1 and track 2 expiry dates differ"))
    return CardData(
        entry_mode=EntryMode.MAGSTRIPE,
        pan=primary.pan,
        expiry=primary.expiry,
        service_code=primary.service_code,
        cardholder_name=track1.name if track1 else None,
        country_code=primary.country_code,
        track1=track1.raw if track1 else None,
        track2=track2.raw if track2 else None,
        track3=track3.raw if track3 else None,
        problems=_dedupe(problems),
    )


def card_from_track_texts(
    track1: str | None, track2: str | None, track3: str | None = None
) -> CardData:
    """Parse and combine the tracks a reader handed over as text (None or "": not read)."""
    return card_from_tracks(
        parse_track1(track1) if track1 else None,
        parse_track2(track2) if track2 else None,
        parse_track3(track3) if track3 else None,
    )


def parse_swipe(text: str) -> CardData:
    """Parse what a reader (or a technician) gives as a swipe: tracks 1, 2 and 3."""
    return card_from_track_texts(*split_swipe(text))


def _dedupe(problems: list[CardDataError]) -> tuple[CardDataError, ...]:
    seen: set[tuple[type[CardDataError], str]] = set()
    unique: list[CardDataError] = []
    for problem in problems:
        key = (type(problem), str(problem))
        if key not in seen:
            seen.add(key)
            unique.append(problem)
    return tuple(unique)
