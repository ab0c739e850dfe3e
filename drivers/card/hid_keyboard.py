"""The `hid-keyboard` card-reader driver: readers that type the swipe as a USB keyboard.

MagTek, ID TECH MiniMag and MSR90-class readers in keyboard mode send boot-protocol keyboard
reports: each character of `%B...?;...?` as a key down then all keys up, in the keyboard
layout they are set to, and Enter at the end. The foundation (`hid_reader`) detaches the
kernel's keyboard driver, so the swipe never reaches another window; this module turns the
key presses back into text (`KeystrokeAssembler`) and the text into card data
(`swipe_text.read_swipe_text`).

A swipe ends on Enter, or after `inter_key_timeout_s` without a key (readers set to send no
terminator), whether the line is silent or carries reports that press no new key. A key
that gives no track character on the layout, a report that is not a boot
keyboard report, or a swipe longer than any three tracks is a malformed report: the read is
`CardUnreadable` (see `hid_reader`); so is a swipe that does not begin with a start sentinel
(`%` or `;`), never parsed: it is the tail of one typed before the read.

Options (config `[devices.card_reader]`): `vendor_id`, `product_id` (required), `layout`
("us", "uk", "de", "fr"; default "us": the layout the reader is set to), `inter_key_timeout_s`
(default 0.5 s), and the foundation's `serial_number`, `interface`, `report_poll_s`,
`backoff_initial_s`, `backoff_max_s`.
"""

from __future__ import annotations

from typing import Any, ClassVar

from drivers.base import require_positive
from drivers.card.hid_reader import HidCardReader, SwipeAssembler
from drivers.card.keyboard_layouts import (
    ENTER_USAGES,
    USAGE_SPACE,
    KeyboardLayout,
    LayoutName,
    layout_named,
)
from drivers.card.keyboard_reports import parse_report
from drivers.card.results import CardUnreadable, ReadResult
from drivers.card.swipe_text import read_swipe_text
from drivers.card.tracks import (
    TRACK1_MAX_CHARS,
    TRACK1_START,
    TRACK2_MAX_CHARS,
    TRACK2_START,
    TRACK3_MAX_CHARS,
)
from drivers.errors import ProtocolError

DEFAULT_LAYOUT = LayoutName.US
DEFAULT_INTER_KEY_TIMEOUT_S = 0.5
MAX_SWIPE_CHARS = TRACK1_MAX_CHARS + TRACK2_MAX_CHARS + TRACK3_MAX_CHARS
SWIPE_ENCODING = "ascii"
# Every swipe a reader types begins with track 1's or track 2's start sentinel.
START_SENTINELS = (TRACK1_START, TRACK2_START)


class KeystrokeAssembler(SwipeAssembler):
    """Key presses -> the swipe's text, for one keyboard layout."""

    def __init__(self, keyboard: KeyboardLayout, inter_key_timeout_s: float) -> None:
        self._layout = keyboard
        self._timeout = inter_key_timeout_s
        self._text: list[str] = []
        self._held: frozenset[int] = frozenset()
        self._dead: str | None = None
        self._last_key_at = 0.0

    def feed(self, report: bytes, now: float) -> bytes | None:
        parsed = parse_report(report)
        pressed = [usage for usage in parsed.keys if usage not in self._held]
        self._held = frozenset(parsed.keys)
        if not pressed:
            # A reader repeating key-up reports would otherwise keep `expire` from running.
            return self.expire(now)
        for usage in pressed:
            self._last_key_at = now
            if usage in ENTER_USAGES:
                swipe = self._finish()
                if swipe is not None:
                    return swipe
                continue
            self._type(usage, parsed.shift, parsed.altgr)
        return None

    @property
    def quiet_s(self) -> float:
        return self._timeout

    def expire(self, now: float) -> bytes | None:
        if self._text and now - self._last_key_at >= self._timeout:
            return self._finish()
        return None

    @property
    def in_progress(self) -> bool:
        return bool(self._text) or self._dead is not None

    def reset(self) -> None:
        self._text.clear()
        self._held = frozenset()
        self._dead = None

    def _type(self, usage: int, shift: bool, altgr: bool) -> None:
        found = self._layout.character(usage, shift, altgr)
        if found is None:
            raise ProtocolError(
                f"key 0x{usage:02x} gives no track character on the {self._layout.name} layout"
            )
        char, dead = found
        if self._dead is not None:
            # A dead key gives its own character with the space after it; another key after
            # it gives both (no precomposed character is a track character).
            self._text.append(self._dead)
            self._dead = None
            if usage == USAGE_SPACE and not shift and not altgr:
                return
        if dead:
            self._dead = char
        else:
            self._text.append(char)
        if len(self._text) > MAX_SWIPE_CHARS:
            raise ProtocolError(f"keyboard swipe longer than {MAX_SWIPE_CHARS} characters")

    def _finish(self) -> bytes | None:
        if self._dead is not None:
            self._text.append(self._dead)
        swipe = "".join(self._text).encode(SWIPE_ENCODING)
        self.reset()
        return swipe or None


class HidKeyboardReader(HidCardReader):
    driver_name: ClassVar[str] = "hid-keyboard"

    def __init__(
        self,
        vendor_id: int,
        product_id: int,
        layout: LayoutName = DEFAULT_LAYOUT,
        inter_key_timeout_s: float = DEFAULT_INTER_KEY_TIMEOUT_S,
        **options: Any,
    ) -> None:
        require_positive(inter_key_timeout_s=inter_key_timeout_s)
        self._keyboard = layout_named(layout)
        self._inter_key_timeout = inter_key_timeout_s
        super().__init__(vendor_id, product_id, **options)

    def _assembler(self) -> SwipeAssembler:
        return KeystrokeAssembler(self._keyboard, self._inter_key_timeout)

    def _decode(self, swipe: bytes) -> ReadResult:
        text = swipe.decode(SWIPE_ENCODING)
        if not text.startswith(START_SENTINELS):
            return CardUnreadable()  # a swipe's tail: parsed, it could pass as track 2
        return read_swipe_text(text)
