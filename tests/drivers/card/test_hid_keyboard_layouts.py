"""Keyboard layouts, boot reports and the keystroke assembler: text -> reports -> text."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from drivers.card.deck import TEST_PANS
from drivers.card.hid_keyboard import KeystrokeAssembler
from drivers.card.keyboard_layouts import LAYOUTS, KeyboardLayout, LayoutName, layout_named
from drivers.card.keyboard_reports import (
    ALL_KEYS_UP,
    LEFT_ALT,
    LEFT_CTRL,
    LEFT_SHIFT,
    RIGHT_ALT,
    parse_report,
    type_swipe,
)
from drivers.card.results import CardRead, CardUnreadable
from drivers.card.swipe_text import read_swipe_text
from drivers.card.tracks import build_track1, build_track2
from drivers.errors import LuhnError, OptionError, ProtocolError

TRACK_CHARS = "".join(chr(code) for code in range(0x20, 0x60))  # track 1's set holds track 2's
TIMEOUT_S = 0.5
PAN = TEST_PANS[0][1]
TRACK1 = build_track1(PAN, "TEST/CARDHOLDER", "3012", "201", "1000000000")
TRACK2 = build_track2(PAN, "3012", "201", "1000000000")


def assemble(reports: list[bytes], keyboard: KeyboardLayout) -> str | None:
    """The one swipe `reports` make, which must end with the last key press (Enter)."""
    assembler = KeystrokeAssembler(keyboard, TIMEOUT_S)
    swipes = [
        (index, assembler.feed(report, now=index * 0.001)) for index, report in enumerate(reports)
    ]
    ended = [(index, swipe) for index, swipe in swipes if swipe is not None]
    if not ended:
        return None
    ((index, swipe),) = ended
    assert all(report == ALL_KEYS_UP for report in reports[index + 1 :])
    return swipe.decode("ascii")


def down(usage: int, modifiers: int = 0) -> bytes:
    return bytes([modifiers, 0, usage, 0, 0, 0, 0, 0])


@pytest.mark.parametrize("name", list(LayoutName))
@given(text=st.text(alphabet=TRACK_CHARS, min_size=1, max_size=120))
def test_round_trip_in_every_layout(name: LayoutName, text: str) -> None:
    keyboard = LAYOUTS[name]
    assert assemble(type_swipe(text, keyboard), keyboard) == text


@pytest.mark.parametrize("name", list(LayoutName))
def test_every_track_character_is_typeable(name: LayoutName) -> None:
    assert set(TRACK_CHARS) <= set(LAYOUTS[name].typing)


@pytest.mark.parametrize(
    ("name", "char", "usage", "modifiers"),
    [
        (LayoutName.US, "%", 0x22, LEFT_SHIFT),
        (LayoutName.US, "^", 0x23, LEFT_SHIFT),
        (LayoutName.US, "?", 0x38, LEFT_SHIFT),
        (LayoutName.US, ";", 0x33, 0),
        (LayoutName.US, "=", 0x2E, 0),
        (LayoutName.UK, '"', 0x1F, LEFT_SHIFT),
        (LayoutName.UK, "@", 0x34, LEFT_SHIFT),
        (LayoutName.UK, "#", 0x32, 0),
        (LayoutName.UK, "\\", 0x64, 0),
        (LayoutName.DE, "?", 0x2D, LEFT_SHIFT),  # shift + sharp s
        (LayoutName.DE, ";", 0x36, LEFT_SHIFT),
        (LayoutName.DE, "=", 0x27, LEFT_SHIFT),
        (LayoutName.DE, "Z", 0x1C, LEFT_SHIFT),
        (LayoutName.DE, "Y", 0x1D, LEFT_SHIFT),
        (LayoutName.DE, "@", 0x14, RIGHT_ALT),
        (LayoutName.DE, "_", 0x38, LEFT_SHIFT),
        (LayoutName.FR, "1", 0x1E, LEFT_SHIFT),  # AZERTY: digits need shift
        (LayoutName.FR, "0", 0x27, LEFT_SHIFT),
        (LayoutName.FR, "A", 0x14, LEFT_SHIFT),
        (LayoutName.FR, "Q", 0x04, LEFT_SHIFT),
        (LayoutName.FR, "M", 0x33, LEFT_SHIFT),
        (LayoutName.FR, "%", 0x34, LEFT_SHIFT),
        (LayoutName.FR, "?", 0x10, LEFT_SHIFT),
        (LayoutName.FR, ";", 0x36, 0),
        (LayoutName.FR, "=", 0x2E, 0),
        (LayoutName.FR, "^", 0x26, RIGHT_ALT),  # AltGr+9: a plain caret, not the dead key
    ],
)
def test_known_keys(name: LayoutName, char: str, usage: int, modifiers: int) -> None:
    reports = type_swipe(char, LAYOUTS[name])
    assert reports[:2] == [down(usage, modifiers), ALL_KEYS_UP]


def test_german_caret_is_a_dead_key_completed_by_space() -> None:
    reports = type_swipe("^", LAYOUTS[LayoutName.DE])
    assert reports[:4] == [down(0x35), ALL_KEYS_UP, down(0x2C), ALL_KEYS_UP]


@pytest.mark.parametrize(
    ("name", "reports", "text"),
    [
        (LayoutName.DE, [down(0x35), down(0x17, LEFT_SHIFT)], "^T"),  # dead key, then a letter
        (LayoutName.FR, [down(0x2F), ALL_KEYS_UP, down(0x2C)], "^"),  # FR's dead caret
        (LayoutName.DE, [down(0x14, LEFT_CTRL | LEFT_ALT)], "@"),  # Ctrl+Alt is AltGr
        (LayoutName.US, [down(0x59), down(0x62)], "10"),  # keypad digits
        (LayoutName.US, [down(0x04, LEFT_SHIFT), down(0x04, LEFT_SHIFT)], "A"),  # held
    ],
)
def test_reading_variants(name: LayoutName, reports: list[bytes], text: str) -> None:
    keyboard = LAYOUTS[name]
    assert assemble([*reports, ALL_KEYS_UP, down(0x28)], keyboard) == text


@pytest.mark.parametrize(
    "report",
    [
        bytes(7),
        bytes(9),
        bytes([0, 0, 1, 1, 1, 1, 1, 1]),  # roll-over error
        down(0x2F, LEFT_SHIFT),  # shift+[ on US: '{', not a track character
        down(0x3A),  # F1
    ],
)
def test_malformed_reports_raise_protocol_error(report: bytes) -> None:
    assembler = KeystrokeAssembler(LAYOUTS[LayoutName.US], TIMEOUT_S)
    with pytest.raises(ProtocolError):
        assembler.feed(report, now=0.0)


def test_silence_ends_a_swipe_without_enter() -> None:
    assembler = KeystrokeAssembler(LAYOUTS[LayoutName.US], TIMEOUT_S)
    for report in type_swipe(";1?", LAYOUTS[LayoutName.US])[:-2]:
        assert assembler.feed(report, now=1.0) is None
    assert assembler.expire(now=1.0 + TIMEOUT_S / 2) is None
    assert assembler.expire(now=1.0 + TIMEOUT_S) == b";1?"
    assert assembler.expire(now=10.0) is None  # nothing pending any more


KEY_UP_PERIOD_S = 0.04  # some readers repeat the all-keys-up report this often when idle


def test_silence_ends_a_swipe_even_while_key_up_reports_keep_coming() -> None:
    assembler = KeystrokeAssembler(LAYOUTS[LayoutName.US], TIMEOUT_S)
    for report in type_swipe(";1?", LAYOUTS[LayoutName.US])[:-2]:
        assert assembler.feed(report, now=1.0) is None
    reports_in_timeout = round(TIMEOUT_S / KEY_UP_PERIOD_S)
    for tick in range(1, reports_in_timeout):
        assert assembler.feed(ALL_KEYS_UP, now=1.0 + tick * KEY_UP_PERIOD_S) is None
    assert assembler.feed(ALL_KEYS_UP, now=1.0 + TIMEOUT_S) == b";1?"
    assert assembler.feed(ALL_KEYS_UP, now=10.0) is None  # nothing pending any more


def test_enter_without_text_is_ignored() -> None:
    assembler = KeystrokeAssembler(LAYOUTS[LayoutName.US], TIMEOUT_S)
    assert assembler.feed(down(0x28), now=0.0) is None


def test_parse_report_modifiers() -> None:
    parsed = parse_report(bytes([RIGHT_ALT | LEFT_SHIFT, 0, 4, 5, 0, 0, 0, 0]))
    assert (parsed.shift, parsed.altgr, parsed.keys) == (True, True, (4, 5))


def test_unknown_layout_is_an_option_error() -> None:
    with pytest.raises(OptionError, match="layout"):
        layout_named("dvorak")
    assert layout_named("DE") is LAYOUTS[LayoutName.DE]


# -- swipe text -> read result -----------------------------------------------------------


@pytest.mark.parametrize(
    "text",
    ["%E?;E?", "%E?", ";E?", "%E?;E?+E?"],
)
def test_tracks_the_reader_marked_bad_are_unreadable(text: str) -> None:
    assert isinstance(read_swipe_text(text), CardUnreadable)


@pytest.mark.parametrize(
    "text",
    [TRACK1 + TRACK2, "%E?" + TRACK2, TRACK1 + ";E?", TRACK1 + TRACK2 + "+E?"],
)
def test_a_good_track_is_read_even_next_to_a_bad_one(text: str) -> None:
    result = read_swipe_text(text)
    assert isinstance(result, CardRead) and result.card.pan.reveal() == PAN


def test_bad_card_data_raises() -> None:
    bad_pan = PAN[:-1] + str((int(PAN[-1]) + 1) % 10)
    with pytest.raises(LuhnError):
        read_swipe_text(build_track2(bad_pan, "3012", "201", "1"))
