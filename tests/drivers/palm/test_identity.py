"""Credentials never show in repr/str/format/pickle; the masked form shows a small tail."""

from __future__ import annotations

import pickle

import pytest

from drivers.palm.identity import Matched, PalmCredential

TOKEN = "tok-7f3a9c2e51d04b8a"


def test_credential_is_hidden_everywhere_but_reveal() -> None:
    credential = PalmCredential(TOKEN)
    for shown in (
        repr(credential),
        str(credential),
        f"{credential}",
        repr(Matched(credential, 0.5)),
    ):
        assert TOKEN not in shown
        assert "4b8a" not in shown
    assert credential.reveal() == TOKEN
    with pytest.raises(TypeError):
        pickle.dumps(credential)


@pytest.mark.parametrize(
    ("value", "masked"),
    [
        (TOKEN, "*" * 16 + "4b8a"),
        ("badge-000417", "*********417"),
        ("12345", "****5"),
        ("abc", "***"),
    ],
)
def test_masked_shows_at_most_a_quarter_and_four_chars(value: str, masked: str) -> None:
    assert PalmCredential(value).masked() == masked


def test_confidence_must_be_a_fraction() -> None:
    with pytest.raises(ValueError, match="confidence"):
        Matched(PalmCredential(TOKEN), 1.5)
