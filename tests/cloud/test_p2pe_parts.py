"""The P2PE consumer's parts without AWS: its settings, which secrets hold a block, and the
one thing taken from a decrypted track (its masked PAN)."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from cloud.errors import ConsumerConfigError
from cloud.p2pe import (
    MALFORMED_BLOCK,
    P2peRefused,
    P2peSettings,
    block_of,
    masked_pan_of_track,
)
from drivers.card.deck import DECK_EXPIRY, DECK_NAME, DECK_SERVICE_CODE
from drivers.card.tracks import build_track1, build_track2
from tests.cards import TEST_PANS
from wire.masking import MASK_CHAR, MASK_KEEP_FIRST, MASK_KEEP_LAST, mask_pan


def test_settings_default_to_re_encryption_and_name_a_bad_value() -> None:
    assert P2peSettings.from_env({}) == P2peSettings()
    assert not P2peSettings().decrypt
    env = {"P2PE_OUTGOING_KEY": "alias/processor", "P2PE_DECRYPT": "1"}
    assert P2peSettings.from_env(env) == P2peSettings("alias/processor", decrypt=True)
    with pytest.raises(ConsumerConfigError, match="P2PE_DECRYPT"):
        P2peSettings.from_env({"P2PE_DECRYPT": "yes"})
    with pytest.raises(ConsumerConfigError, match="P2PE_OUTGOING_KEY_ALGORITHM"):
        P2peSettings.from_env({"P2PE_OUTGOING_KEY_ALGORITHM": "DES"})


def test_a_secret_without_a_block_is_a_clear_read_and_a_bad_block_is_refused() -> None:
    assert block_of({"pan": TEST_PANS[0]}) is None
    with pytest.raises(P2peRefused) as refused:
        block_of({"p2pe": {"schema": "posd.p2pe/1", "scheme": "des"}})
    assert refused.value.reason == MALFORMED_BLOCK


@given(pan=st.sampled_from(TEST_PANS), track=st.sampled_from([1, 2]), sentinels=st.booleans())
def test_the_masked_pan_of_any_track_is_the_cards(pan: str, track: int, sentinels: bool) -> None:
    text = (
        build_track1(pan, DECK_NAME, DECK_EXPIRY, DECK_SERVICE_CODE, with_lrc=False)
        if track == 1
        else build_track2(pan, DECK_EXPIRY, DECK_SERVICE_CODE, with_lrc=False)
    )
    if not sentinels:
        text = text[1:-1]
    padded = text.encode() + bytes(7)  # the cipher's zero padding, past the clear length
    assert masked_pan_of_track(text.encode()) == mask_pan(pan)
    assert masked_pan_of_track(padded) == mask_pan(pan)


@given(st.binary(max_size=80))
def test_whatever_a_track_holds_only_a_mask_comes_out(clear: bytes) -> None:
    masked = masked_pan_of_track(clear)
    if masked is not None:
        assert MASK_CHAR in masked
        assert sum(char.isdigit() for char in masked) <= MASK_KEEP_FIRST + MASK_KEEP_LAST
