"""How a reader's encryption is shown: a KSN survives the card-number redaction whole."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from posd.reader_encryption import KSN_SEPARATOR, ksn_text
from posd.redact import redact_text
from wire.p2pe import DukptScheme

KSN_SIZES = sorted({scheme.ksn_bytes for scheme in DukptScheme})


@given(st.sampled_from(KSN_SIZES).flatmap(lambda n: st.binary(min_size=n, max_size=n)))
def test_a_ksn_reads_back_and_is_never_taken_for_a_card_number(ksn: bytes) -> None:
    text = ksn_text(ksn)
    assert bytes.fromhex(text.replace(KSN_SEPARATOR, "")) == ksn
    assert redact_text(f"ksn {text}") == f"ksn {text}"


def test_the_aes_test_ksn_is_all_digits_and_still_shown() -> None:
    ksn = bytes.fromhex("123456789012345600000001")
    assert ksn_text(ksn) == "12345678:90123456:00000001"
