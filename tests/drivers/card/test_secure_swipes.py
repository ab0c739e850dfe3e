"""The simulated secure head: KSNs advance per swipe and run out, swipes files round-trip and
are checked line by line."""

from __future__ import annotations

from pathlib import Path

import pytest

from drivers.card import dukpt
from drivers.card.deck import TEST_PANS, default_deck
from drivers.card.secure_formats import parse_enhanced
from drivers.card.secure_swipes import (
    SIM_DEVICE_SERIAL,
    TEST_BDK,
    EncryptingHead,
    ksn_at,
    read_swipes,
    write_swipes,
)
from drivers.errors import OptionError
from tests.cards import magstripe_tracks as tracks
from wire.masking import mask_pan
from wire.p2pe import DukptScheme

TDES = DukptScheme.TDES_2KEY
LAST_TDES_COUNTER = 0x1FF800


def test_ksn_at_skips_counters_no_reader_uses() -> None:
    assert dukpt.counter(ksn_at(TDES, 0), TDES) == 1
    assert dukpt.counter(ksn_at(TDES, 0x7FF), TDES) == 0x800  # 11 one-bits -> next valid
    assert dukpt.counter(ksn_at(DukptScheme.AES_128, 5), DukptScheme.AES_128) == 5


@pytest.mark.parametrize("scheme", list(DukptScheme))
def test_each_swipe_uses_the_next_ksn(scheme: DukptScheme) -> None:
    head = EncryptingHead(TEST_BDK[scheme], scheme, ksn_at(scheme, 1), SIM_DEVICE_SERIAL)
    counters = []
    for _, pan in TEST_PANS[:3]:
        read = parse_enhanced(head.swipe(tracks(pan)))
        assert read is not None
        counters.append(dukpt.counter(read.ksn, scheme))
    assert counters == [1, 2, 3]


def test_the_head_stops_after_its_last_counter() -> None:
    head = EncryptingHead(TEST_BDK[TDES], TDES, ksn_at(TDES, LAST_TDES_COUNTER), "S1")
    assert parse_enhanced(head.swipe(tracks(TEST_PANS[0][1]))) is not None
    with pytest.raises(dukpt.DukptError, match="exhausted"):
        head.swipe(tracks(TEST_PANS[0][1]))


def test_a_head_with_a_bad_key_is_refused_at_once() -> None:
    with pytest.raises(dukpt.DukptError):
        EncryptingHead(b"short", TDES, ksn_at(TDES, 1), "S1")


def test_swipes_file_round_trips_without_clear_numbers(tmp_path: Path) -> None:
    path = tmp_path / "swipes.hex"
    deck = default_deck()  # chip and contactless cards too: only the stripes are swiped
    count = write_swipes(path, deck, TEST_BDK[TDES], TDES, ksn_at(TDES, 10))
    assert count == len(TEST_PANS) < len(deck)
    text = path.read_text()
    swipes = read_swipes(path)
    for (_, pan), swipe in zip(TEST_PANS, swipes, strict=True):
        assert pan not in text and pan.encode() not in swipe
        read = parse_enhanced(swipe)
        assert read is not None and read.pan.masked == mask_pan(pan)
    last = parse_enhanced(swipes[-1])
    assert last is not None and dukpt.counter(last.ksn, TDES) == 10 + len(TEST_PANS) - 1


def test_a_bad_swipes_file_is_refused_naming_the_line(tmp_path: Path) -> None:
    path = tmp_path / "swipes.hex"
    write_swipes(path, default_deck()[:1], TEST_BDK[TDES], TDES, ksn_at(TDES, 1))
    path.write_text(path.read_text() + "02beef\n")
    with pytest.raises(OptionError, match="line 2"):
        read_swipes(path)
    with pytest.raises(OptionError, match="swipes_file"):
        read_swipes(tmp_path / "missing.hex")
