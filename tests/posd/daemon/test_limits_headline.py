"""The status's limit verdicts say what the capture path does: a limit said to refuse every
payment refuses every one, and a currency said to have little left refuses a payment the lane
would otherwise take."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from posd.cli.limits_verdict import limit_fix, low_amount_headroom
from posd.config import OfflineLimits
from posd.daemon.limits import Backlog, check_limits, every_payment_refusal, headroom
from posd.errors import Refusal

CURRENCY = "EUR"
limits = st.builds(
    OfflineLimits,
    max_payment_amount=st.integers(0, 10_000),
    max_pending_amount=st.integers(0, 50_000),
    max_pending_count=st.integers(0, 20),
    max_pending_age_seconds=st.floats(0, 1_000),
)
backlogs = st.builds(
    Backlog,
    count=st.integers(0, 30),
    amount_by_currency=st.fixed_dictionaries({CURRENCY: st.integers(0, 60_000)}),
    oldest_age_seconds=st.none() | st.floats(0, 2_000),
)


@given(limits, backlogs, st.integers(0, 20_000))
def test_a_limit_said_to_refuse_every_payment_refuses_any_amount(
    offline: OfflineLimits, backlog: Backlog, amount: int
) -> None:
    refusal = every_payment_refusal(offline, backlog)
    if refusal is None:
        return
    with pytest.raises(Refusal):
        check_limits(offline, backlog, amount, CURRENCY)
    fix = limit_fix({"error": refusal.code, "message": refusal.message})
    assert fix is not None and "systemctl reload posd" in fix


@given(limits, backlogs)
def test_low_headroom_is_said_exactly_when_the_largest_payment_would_be_refused(
    offline: OfflineLimits, backlog: Backlog
) -> None:
    if not (offline.max_payment_amount and offline.max_pending_amount):
        return
    if every_payment_refusal(offline, backlog) is not None:
        return  # the first line says CANNOT SELL instead
    low = low_amount_headroom(headroom(offline, backlog))
    try:
        check_limits(offline, backlog, offline.max_payment_amount, CURRENCY)
    except Refusal:
        assert len(low) == 1 and "[offline] max_pending_amount" in low[0]
    else:
        assert low == []


def test_other_refusals_have_no_limit_fix() -> None:
    assert limit_fix({"error": "journal_full", "message": "full"}) is None
