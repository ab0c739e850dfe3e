"""The `secure-msr` card-reader driver: an encrypting (P2PE) magstripe reader on USB HID.

MagneSafe / SecureMag class readers encrypt the tracks in the read head under DUKPT and hand
the host masked tracks, the encrypted tracks, the KSN and their serial number: the terminal
never sees a card number. This driver reads ID TECH's enhanced encrypted format
(`secure_formats`) from vendor-defined input reports of up to 64 bytes: a swipe begins with
STX and its length field, is cut across as many reports as it needs, and the last report is
padded. It returns `EncryptedCardRead`; nothing here can decrypt.

What a swipe becomes: a frame that breaks the format (a report not starting a swipe, bad
LRC or checksum, inconsistent fields) is `CardUnreadable` (swipe again) with the error in
health; a swipe the reader could not decode is `CardUnreadable`; masked tracks that are not
a card's (a PAN in clear among them) raise a `CardDataError`; a reader set up otherwise
(fixed key, PIN variant, another DUKPT scheme than `scheme`) raises
`ReaderEncryptionUnsupported`: that needs a technician, not another swipe.

Options (config `[devices.card_reader]`): those of `hid_reader`, and `scheme` (the DUKPT
scheme the reader is injected for, `tdes-2key` or `aes-128`).
"""

from __future__ import annotations

import logging
import threading
from typing import Any, ClassVar

from drivers.card import dukpt
from drivers.card.encrypted import P2peStatus
from drivers.card.hid_reader import MAX_REPORT_SIZE, HidCardReader, SwipeAssembler
from drivers.card.report_gap import REPORT_GAP_S, ReportGap
from drivers.card.results import CardUnreadable, EncryptedCardRead, ReadResult
from drivers.card.secure_formats import IDTECH_ENHANCED, frame_bytes, parse_enhanced
from drivers.errors import (
    EncryptedFormatError,
    KsnReplayed,
    OptionError,
    ReaderEncryptionUnsupported,
)
from wire.p2pe import DukptScheme

log = logging.getLogger(__name__)  # error codes and KSN counters only, never card data

# Bounds a swipe whose length field is corrupt: three masked and encrypted tracks, hashes,
# serial and KSN of the enhanced format come to well under this.
MAX_SWIPE_BYTES = 1024
# Keys whose highest KSN counter the replay check keeps (a store's readers, re-injections).
MAX_REPLAY_KEYS = 16


class EnhancedSwipeAssembler(SwipeAssembler):
    """Reassembles a swipe by its length field across reports; the last report's padding is
    dropped. A report that does not start a swipe, or a length past `MAX_SWIPE_BYTES`, is a
    `ProtocolError` (`EncryptedFormatError`). A swipe cut short (a report lost) is dropped
    after `gap_s` of silence, so the next swipe starts afresh."""

    def __init__(self, gap_s: float = REPORT_GAP_S) -> None:
        self._buffer = bytearray()
        self._gap = ReportGap(gap_s)

    def feed(self, report: bytes, now: float) -> bytes | None:
        self.expire(now)
        self._gap.report(now)
        self._buffer += report
        size = frame_bytes(bytes(self._buffer))
        if size is not None and size > MAX_SWIPE_BYTES:
            raise EncryptedFormatError(f"secure swipe length field exceeds {MAX_SWIPE_BYTES}")
        if size is None or len(self._buffer) < size:
            return None
        swipe = bytes(self._buffer[:size])
        self.reset()
        return swipe

    @property
    def quiet_s(self) -> float:
        return self._gap.seconds

    @property
    def in_progress(self) -> bool:
        return bool(self._buffer)

    def expire(self, now: float) -> bytes | None:
        if self._gap.passed(now):
            self.reset()
        return None

    def reset(self) -> None:
        self._buffer.clear()
        self._gap.clear()


def swipe_reports(swipe: bytes, report_size: int = MAX_REPORT_SIZE) -> list[bytes]:
    """A swipe as the reader sends it: cut into reports, the last one zero-padded."""
    return [
        swipe[at : at + report_size].ljust(report_size, b"\0")
        for at in range(0, len(swipe), report_size)
    ]


class SecureMsrReader(HidCardReader):
    """An encrypting magstripe reader (ID TECH enhanced format) on USB HID."""

    driver_name: ClassVar[str] = "secure-msr"

    def __init__(
        self,
        vendor_id: int,
        product_id: int,
        serial_number: str | None = None,
        scheme: DukptScheme = DukptScheme.TDES_2KEY,
        **options: Any,
    ) -> None:
        try:
            self._scheme = DukptScheme(scheme)
        except ValueError:
            raise OptionError("scheme", "must be one of " + ", ".join(DukptScheme)) from None
        super().__init__(vendor_id, product_id, serial_number, **options)
        self._ksn_lock = threading.Lock()
        self._last_ksn: bytes | None = None
        # key id -> highest KSN counter read under it, least recently read key first
        self._highest_counters: dict[bytes, int] = {}

    def _assembler(self) -> SwipeAssembler:
        return EnhancedSwipeAssembler()

    def _decode(self, swipe: bytes) -> ReadResult:
        try:
            card = parse_enhanced(swipe)
        except EncryptedFormatError as error:
            self._monitor.error(error)
            log.warning("secure card reader: %s; swipe dropped", error)
            return CardUnreadable()
        except ReaderEncryptionUnsupported as error:
            self._monitor.error(error)
            raise
        if card is None:
            return CardUnreadable()
        if card.scheme is not self._scheme:
            mismatch = ReaderEncryptionUnsupported(
                f"reader encrypts with {card.scheme.value}, configured for {self._scheme.value}"
            )
            self._monitor.error(mismatch)
            raise mismatch
        with self._ksn_lock:
            self._refuse_replay(card.ksn, card.scheme)
            self._last_ksn = card.ksn
        used = dukpt.counter_exhaustion(card.ksn, card.scheme)
        log.info(
            "secure card read, KSN counter %d (%.4f used)",
            dukpt.counter(card.ksn, card.scheme),
            used,
        )
        return EncryptedCardRead(card)

    def _refuse_replay(self, ksn: bytes, scheme: DukptScheme) -> None:
        """`KsnReplayed` unless the KSN's counter is past the highest one read under the same
        key, whatever other keys were read in between (the last `MAX_REPLAY_KEYS` keys are
        kept). Only within this process's life (a restart forgets): the cloud consumer, which
        sees every swipe, refuses a KSN used twice for good."""
        key = dukpt.key_id(ksn, scheme)
        counter = dukpt.counter(ksn, scheme)
        highest = self._highest_counters.get(key)
        if highest is not None and counter <= highest:
            replayed = KsnReplayed(
                f"KSN counter {counter} does not advance past {highest}: a replayed swipe"
            )
            self._monitor.error(replayed)
            log.warning("secure card reader: %s; refused", replayed)
            raise replayed
        self._highest_counters.pop(key, None)  # re-inserted as the most recent key
        self._highest_counters[key] = counter
        if len(self._highest_counters) > MAX_REPLAY_KEYS:
            del self._highest_counters[next(iter(self._highest_counters))]

    def p2pe_status(self) -> P2peStatus:
        """The configured scheme, the latest read's KSN and how much of its counter is used."""
        with self._ksn_lock:
            ksn = self._last_ksn
        used = None if ksn is None else dukpt.counter_exhaustion(ksn, self._scheme)
        return P2peStatus(self._scheme, IDTECH_ENHANCED, ksn, used)
