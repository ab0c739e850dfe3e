"""Keyboard layouts a keyboard-emulating card reader may be set to: US, UK, DE, FR.

A keyboard reader sends HID usage ids (physical key positions) with modifiers, as the host
keyboard layout would produce the swipe's characters; the reader and the host must agree on
the layout or the text comes out wrong (on AZERTY the digits need shift, on QWERTZ Y and Z
swap). Each layout maps (usage id, shift, AltGr) to a character for everything a track can
hold: digits, A-Z, space and ISO/IEC 7813's punctuation (0x20-0x5F), so `%`, `^`, `?`, `;`
and `=` too. Only printable ASCII is mapped: a key that gives anything else (an umlaut, the
pound sign) cannot be part of a swipe.

A dead key (DE's `^` key; FR's `^` key) gives its character only with the space that
follows it; readers set to such a layout send exactly that pair. Where the layout also has
the character on a plain key (FR: AltGr+9 is `^`), typing uses the plain key.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from enum import StrEnum
from types import MappingProxyType

from drivers.errors import OptionError

# HID usage ids (HID Usage Tables, Keyboard/Keypad page 0x07) used below.
USAGE_A = 0x04
USAGE_Z = 0x1D
USAGE_1 = 0x1E
USAGE_ENTER = 0x28
USAGE_SPACE = 0x2C
USAGE_KEYPAD_ENTER = 0x58
USAGE_KEYPAD_1 = 0x59
USAGE_KEYPAD_0 = 0x62
USAGE_BACKSLASH = 0x31  # US '\' position; ISO boards report 0x32 (non-US #) there
USAGE_NON_US_HASH = 0x32
ENTER_USAGES = frozenset({USAGE_ENTER, USAGE_KEYPAD_ENTER})
LETTERS = "abcdefghijklmnopqrstuvwxyz"
DIGITS = "1234567890"  # the number row's order, 0 last
KEYPAD_DIGITS = "1234567890"


class LayoutName(StrEnum):
    US = "us"
    UK = "uk"
    DE = "de"
    FR = "fr"


@dataclass(frozen=True)
class Keystroke:
    """One key press: usage id and modifiers. `dead`: the character comes with the space
    pressed after it."""

    usage: int
    shift: bool = False
    altgr: bool = False
    dead: bool = False


@dataclass(frozen=True)
class KeyboardLayout:
    """Both directions of one layout: character -> keystroke, keystroke -> character."""

    name: LayoutName
    typing: Mapping[str, Keystroke]
    reading: Mapping[tuple[int, bool, bool], tuple[str, bool]]

    def keystroke(self, char: str) -> Keystroke:
        """How to type `char`; `KeyError` (without the character) if the layout cannot."""
        try:
            return self.typing[char]
        except KeyError:
            raise KeyError(f"not typeable on the {self.name} layout") from None

    def character(self, usage: int, shift: bool, altgr: bool) -> tuple[str, bool] | None:
        """(character, is_dead) that the key gives, or None if it gives no track character."""
        return self.reading.get((usage, shift, altgr))


# Per layout: usage -> (plain, shift, AltGr) for the keys that are not plain letters;
# "" = nothing a track can hold. Dead keys are listed apart, as (usage, shift, AltGr).
_Row = tuple[str, str, str]
_LEVELS = ((False, False), (True, False), (False, True))  # (shift, AltGr) of each column

_US_SYMBOLS: dict[int, _Row] = {
    0x1E: ("1", "!", ""),
    0x1F: ("2", "@", ""),
    0x20: ("3", "#", ""),
    0x21: ("4", "$", ""),
    0x22: ("5", "%", ""),
    0x23: ("6", "^", ""),
    0x24: ("7", "&", ""),
    0x25: ("8", "*", ""),
    0x26: ("9", "(", ""),
    0x27: ("0", ")", ""),
    0x2C: (" ", " ", ""),
    0x2D: ("-", "_", ""),
    0x2E: ("=", "+", ""),
    0x2F: ("[", "", ""),
    0x30: ("]", "", ""),
    0x31: ("\\", "", ""),
    0x33: (";", ":", ""),
    0x34: ("'", '"', ""),
    0x36: (",", "<", ""),
    0x37: (".", ">", ""),
    0x38: ("/", "?", ""),
}

_UK_SYMBOLS: dict[int, _Row] = {
    **_US_SYMBOLS,
    0x1F: ("2", '"', ""),
    0x20: ("3", "", ""),  # shift+3 is the pound sign
    0x31: ("#", "", ""),
    0x32: ("#", "", ""),
    0x34: ("'", "@", ""),
    0x64: ("\\", "", ""),
}

_DE_SYMBOLS: dict[int, _Row] = {
    0x1E: ("1", "!", ""),
    0x1F: ("2", '"', ""),
    0x20: ("3", "", ""),
    0x21: ("4", "$", ""),
    0x22: ("5", "%", ""),
    0x23: ("6", "&", ""),
    0x24: ("7", "/", ""),
    0x25: ("8", "(", "["),
    0x26: ("9", ")", "]"),
    0x27: ("0", "=", ""),
    0x2C: (" ", " ", ""),
    0x2D: ("", "?", "\\"),  # the sharp-s key
    0x30: ("+", "*", ""),
    0x31: ("#", "'", ""),
    0x32: ("#", "'", ""),
    0x35: ("^", "", ""),  # dead circumflex; shift gives the degree sign
    0x36: (",", ";", ""),
    0x37: (".", ":", ""),
    0x38: ("-", "_", ""),
    0x64: ("<", ">", ""),
    0x14: ("q", "Q", "@"),  # AltGr+Q
}
_DE_DEAD = frozenset({(0x35, False, False)})

_FR_SYMBOLS: dict[int, _Row] = {
    0x1E: ("&", "1", ""),
    0x1F: ("", "2", ""),
    0x20: ('"', "3", "#"),
    0x21: ("'", "4", ""),
    0x22: ("(", "5", "["),
    0x23: ("-", "6", ""),
    0x24: ("", "7", ""),
    0x25: ("_", "8", "\\"),
    0x26: ("", "9", "^"),
    0x27: ("", "0", "@"),
    0x2C: (" ", " ", ""),
    0x2D: (")", "", "]"),
    0x2E: ("=", "+", ""),
    0x2F: ("^", "", ""),  # dead circumflex; shift gives a dead diaeresis
    0x30: ("$", "", ""),
    0x31: ("*", "", ""),
    0x32: ("*", "", ""),
    0x33: ("m", "M", ""),
    0x34: ("", "%", ""),
    0x10: (",", "?", ""),
    0x36: (";", ".", ""),
    0x37: (":", "/", ""),
    0x38: ("!", "", ""),
    0x64: ("<", ">", ""),
}
_FR_DEAD = frozenset({(0x2F, False, False)})

# Letter keys that move: usage -> the letter it gives.
_DE_LETTERS = {0x1C: "z", 0x1D: "y"}
_FR_LETTERS = {0x14: "a", 0x04: "q", 0x1A: "z", 0x1D: "w", 0x10: ""}


def _build(
    name: LayoutName,
    symbols: Mapping[int, _Row],
    moved_letters: Mapping[int, str],
    dead: frozenset[tuple[int, bool, bool]] = frozenset(),
) -> KeyboardLayout:
    reading: dict[tuple[int, bool, bool], tuple[str, bool]] = {}
    for offset, letter in enumerate(LETTERS):
        usage = USAGE_A + offset
        letter = moved_letters.get(usage, letter)
        if letter:
            reading[(usage, False, False)] = (letter, False)
            reading[(usage, True, False)] = (letter.upper(), False)
    for usage, row in symbols.items():
        for (shift, altgr), char in zip(_LEVELS, row, strict=True):
            if char:
                key = (usage, shift, altgr)
                reading[key] = (char, key in dead)
    for offset, digit in enumerate(KEYPAD_DIGITS):  # num lock on, whatever the layout
        reading.setdefault((USAGE_KEYPAD_1 + offset, False, False), (digit, False))
    typing: dict[str, Keystroke] = {}
    # Plain keys first, dead keys only where nothing else types the character; ISO boards'
    # duplicate of the US backslash position is read but never typed.
    for (usage, shift, altgr), (char, is_dead) in sorted(
        reading.items(), key=lambda item: (item[1][1], item[0][0] == USAGE_BACKSLASH)
    ):
        if USAGE_KEYPAD_1 <= usage <= USAGE_KEYPAD_0:
            continue
        typing.setdefault(char, Keystroke(usage, shift, altgr, is_dead))
    return KeyboardLayout(name, MappingProxyType(typing), MappingProxyType(reading))


LAYOUTS: Mapping[LayoutName, KeyboardLayout] = MappingProxyType(
    {
        LayoutName.US: _build(LayoutName.US, _US_SYMBOLS, {}),
        LayoutName.UK: _build(LayoutName.UK, _UK_SYMBOLS, {}),
        LayoutName.DE: _build(LayoutName.DE, _DE_SYMBOLS, _DE_LETTERS, _DE_DEAD),
        LayoutName.FR: _build(LayoutName.FR, _FR_SYMBOLS, _FR_LETTERS, _FR_DEAD),
    }
)


def layout_named(name: str) -> KeyboardLayout:
    """The layout called `name` ("us", "uk", "de", "fr"); `OptionError` for another."""
    try:
        return LAYOUTS[LayoutName(name.lower())]
    except ValueError:
        known = ", ".join(LayoutName)
        raise OptionError("layout", f"unknown keyboard layout (known: {known})") from None
