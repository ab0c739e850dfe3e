"""The EMV tag dictionary: names, sources, the sensitive flag driving `decode tlv`'s masking."""

from __future__ import annotations

from typing import Any

import pytest

from drivers.card import emv, tlv
from drivers.card.emv_tags import build_tags, tag_dictionary, tag_info
from drivers.card.tlv import Tlv
from drivers.errors import CardTableError

MUST_BE_SENSITIVE = {0x5A, 0x56, 0x57, 0x5F20, 0x99, 0x9F0B, 0x9F1F, 0x9F20, 0x9F6B, 0x5F53}
SPECIALLY_RENDERED = {0x5A, 0x57, 0x9F6B}  # masked PAN, or masked PAN + expiry + service code


def test_dictionary_names_the_tags_the_issue_missed() -> None:
    assert tag_info(0x88).name == "Short File Identifier (SFI)"
    assert tag_info(0x5F2D).name == "Language Preference"
    assert tag_info(0xDF01) is emv.UNKNOWN_TAG
    assert len(tag_dictionary()) > 100


def test_sensitive_flags() -> None:
    flagged = {tag for tag, info in tag_dictionary().items() if info.sensitive}
    assert flagged >= MUST_BE_SENSITIVE
    assert not tag_info(0x9F02).sensitive and not tag_info(0x5F24).sensitive


@pytest.mark.parametrize("tag", sorted(MUST_BE_SENSITIVE - SPECIALLY_RENDERED))
def test_sensitive_values_are_hidden(tag: int) -> None:
    secret = b"DOE/JOHN 4111111111111111"
    rendered = emv.describe_value(Tlv(tag, secret))
    assert rendered == f"<hidden, {len(secret)} bytes>"


def test_track2_layout_tags_render_masked() -> None:
    value = emv.build_track2_equivalent("4111111111111111", "3012", "201", "99")
    for tag in SPECIALLY_RENDERED - {0x5A}:
        assert emv.describe_value(Tlv(tag, value)) == (
            "411111******1111 exp 2030-12 svc 201 (rest hidden)"
        )
    assert emv.describe_value(Tlv(0x5F2D, b"en")) == "656E"


def _data(tags: dict[str, Any]) -> dict[str, Any]:
    return {"sources": {"s": "a source"}, "tags": tags}


def _row(**extra: Any) -> dict[str, Any]:
    return {"name": "X", "source": "s", "sensitive": False, **extra}


@pytest.mark.parametrize(
    ("tags", "fragment"),
    [
        ({"ZZ": _row()}, "not hex"),
        ({"1F": _row()}, "well-formed BER tag"),  # needs a second byte
        ({"5a": _row(), "5A": _row()}, "listed twice"),
        ({"5A": _row(source="other")}, "unknown source"),
        ({"5A": {"name": "X", "source": "s"}}, "sensitive"),
        ({"5A": _row(name="")}, "empty name"),
    ],
)
def test_inconsistent_dictionaries_are_load_errors(tags: dict[str, Any], fragment: str) -> None:
    with pytest.raises(CardTableError, match=fragment):
        build_tags(_data(tags))


def test_every_shipped_tag_is_a_valid_ber_tag_with_a_source() -> None:
    for tag, info in tag_dictionary().items():
        assert tlv.valid_tag(tag) and info.source and info.name
