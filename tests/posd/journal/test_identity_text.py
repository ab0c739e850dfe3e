"""The identity file's text, written after every append from a head made once, is what
`json.dumps` of the identity gives (and what `IdentityFile.load` reads back)."""

from __future__ import annotations

import json

import pytest
from hypothesis import given
from hypothesis import strategies as st

from posd.journal.identity import Identity, IdentityFile

SEQS = st.integers(min_value=0, max_value=2**63 - 1)


@given(st.text(min_size=1, max_size=40), SEQS)
def test_the_text_is_json_dumps(journal_id: str, seq: int) -> None:
    expected = json.dumps({"journal_id": journal_id, "high_water_seq": seq}) + "\n"
    assert Identity(journal_id, seq).encode() == expected.encode()


@given(st.lists(SEQS, min_size=1, max_size=5))
def test_each_advance_leaves_a_file_that_loads(
    tmp_path_factory: pytest.TempPathFactory, seqs: list[int]
) -> None:
    state_dir = tmp_path_factory.mktemp("state")
    identity = IdentityFile.create(state_dir, Identity("j-1", 0))
    try:
        highest = 0
        for seq in seqs:
            identity.advance(seq)
            highest = max(highest, seq)  # a lower seq leaves the file as it was
            loaded = IdentityFile.load(state_dir)
            assert loaded is not None
            assert loaded.identity == Identity("j-1", highest)
    finally:
        identity.close()
