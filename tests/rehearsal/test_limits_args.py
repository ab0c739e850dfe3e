"""`make rehearse`'s `--limit key=value`: a clear message, not a traceback, for bad words."""

from __future__ import annotations

import pytest

from tests.rehearsal.rehearse import parse_limits


def test_a_limit_is_set_from_its_word() -> None:
    assert parse_limits(["max_pending_count=2000"])["max_pending_count"] == 2000


@pytest.mark.parametrize(
    ("word", "says"),
    [("max_pending_count=lots", "needs a number"), ("max_pending=5", "unknown limit")],
)
def test_a_bad_limit_is_refused_with_a_message(word: str, says: str) -> None:
    with pytest.raises(SystemExit, match=says):
        parse_limits([word])
