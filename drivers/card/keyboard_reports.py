"""Boot-protocol keyboard input reports (HID 1.11, appendix B.1), both directions.

A report is 8 bytes: modifier bits, a reserved byte, and up to 6 usage ids of the keys held
down. A keyboard reader "types" each character as one report with its key down and one with
every key up, and ends the swipe with Enter. `type_swipe` is what such a reader sends (the
simulator uses it); `parse_report` is the host's side.
"""

from __future__ import annotations

from dataclasses import dataclass

from drivers.card.keyboard_layouts import USAGE_ENTER, USAGE_SPACE, KeyboardLayout, Keystroke
from drivers.errors import ProtocolError

REPORT_SIZE = 8
MAX_KEYS = 6
KEYS_OFFSET = 2
LEFT_CTRL, LEFT_SHIFT, LEFT_ALT = 0x01, 0x02, 0x04
RIGHT_CTRL, RIGHT_SHIFT, RIGHT_ALT = 0x10, 0x20, 0x40
SHIFT_BITS = LEFT_SHIFT | RIGHT_SHIFT
USAGE_ERROR_ROLL_OVER = 0x01
USAGE_POST_FAIL = 0x02
USAGE_ERROR_UNDEFINED = 0x03
_ERROR_USAGES = frozenset({USAGE_ERROR_ROLL_OVER, USAGE_POST_FAIL, USAGE_ERROR_UNDEFINED})
ALL_KEYS_UP = bytes(REPORT_SIZE)

# The boot keyboard report descriptor of HID 1.11 appendix E.6 (input part: modifiers,
# reserved byte, six key array; the LED output report is left out: a reader has no LEDs).
BOOT_KEYBOARD_REPORT_DESCRIPTOR = bytes.fromhex(
    "05010906a101"  # Usage Page (Generic Desktop), Usage (Keyboard), Collection (Application)
    "050719e029e715002501750195088102"  # modifier bits
    "950175088101"  # reserved byte
    "95067508150025650507190029658100"  # six key usages
    "c0"  # End Collection
)


@dataclass(frozen=True)
class KeyboardReport:
    """One parsed report: the modifiers that matter for characters, the keys held."""

    shift: bool
    altgr: bool
    keys: tuple[int, ...]


def parse_report(report: bytes) -> KeyboardReport:
    """`ProtocolError` for a report that is not a boot keyboard report or signals an error
    (roll-over, POST failure). Never quotes the report."""
    if len(report) != REPORT_SIZE:
        raise ProtocolError(f"keyboard report of {len(report)} bytes (expected {REPORT_SIZE})")
    modifiers = report[0]
    keys = tuple(usage for usage in report[KEYS_OFFSET:] if usage)
    if any(usage in _ERROR_USAGES for usage in keys):
        raise ProtocolError("keyboard report signals an error (roll-over or POST failure)")
    # AltGr is right Alt; Windows hosts also read Ctrl+Alt as AltGr.
    altgr = bool(modifiers & RIGHT_ALT) or (
        bool(modifiers & (LEFT_CTRL | RIGHT_CTRL)) and bool(modifiers & LEFT_ALT)
    )
    return KeyboardReport(shift=bool(modifiers & SHIFT_BITS), altgr=altgr, keys=keys)


def key_down(keystroke: Keystroke) -> bytes:
    modifiers = (LEFT_SHIFT if keystroke.shift else 0) | (RIGHT_ALT if keystroke.altgr else 0)
    return bytes([modifiers, 0, keystroke.usage]) + bytes(MAX_KEYS - 1)


def press(keystroke: Keystroke) -> list[bytes]:
    """The reports of one key press: down, then all keys up (a dead key: then space)."""
    reports = [key_down(keystroke), ALL_KEYS_UP]
    if keystroke.dead:
        reports += [key_down(Keystroke(USAGE_SPACE)), ALL_KEYS_UP]
    return reports


def type_swipe(text: str, layout: KeyboardLayout) -> list[bytes]:
    """What a keyboard reader set to `layout` sends for `text`, Enter included.

    `KeyError` (without the character) for text the layout cannot type."""
    reports: list[bytes] = []
    for char in text:
        reports += press(layout.keystroke(char))
    return reports + press(Keystroke(USAGE_ENTER))
