"""The redaction processor on every log path: structlog and the standard library's logging,
JSON and console rendering, card numbers in keys and values at any nesting, in the event
text, and in exception chains (`raise ... from ...`, an exception raised while handling
another, notes added to an exception). Nothing in the output holds a full card number."""

from __future__ import annotations

import io
import logging

import structlog
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from posd.logs import configure_logging
from posd.redact import PAN_PLACEHOLDER
from tests.posd.test_redact import pans

PATHS = ("structlog", "stdlib")


class CardError(Exception):
    """An exception whose message, args and notes may hold a card number."""


nested = st.recursive(
    st.one_of(st.text(max_size=8), st.integers(), pans()),
    lambda children: st.one_of(
        st.lists(children, max_size=3),
        st.tuples(children, children),
        st.dictionaries(st.text(max_size=6) | pans(), children, max_size=3),
    ),
    max_leaves=8,
)


def raise_chain(messages: list[str], note: str, chained_by_from: bool) -> None:
    """Raise CardError(messages[-1]) on top of a chain of the others, with a note."""
    error: BaseException | None = None
    for message in messages:
        try:
            if error is not None and chained_by_from:
                raise CardError(message) from error
            if error is not None:
                try:
                    raise error
                except CardError:
                    raise CardError(message)
            raise CardError(message)
        except CardError as raised:
            error = raised
    assert error is not None
    error.add_note(note)
    raise error


@settings(
    max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    pan=pans(),
    value=nested,
    path=st.sampled_from(PATHS),
    as_json=st.booleans(),
    depth=st.integers(1, 3),
    chained_by_from=st.booleans(),
)
def test_no_log_path_lets_a_card_number_through(
    pan: str, value: object, path: str, as_json: bool, depth: int, chained_by_from: bool
) -> None:
    stream = io.StringIO()
    configure_logging("debug", stream=stream, force_json=as_json)
    messages = [f"level {i} card {pan}" for i in range(depth)]
    try:
        raise_chain(messages, f"note {pan}", chained_by_from)
    except CardError:
        if path == "structlog":
            structlog.get_logger("t").exception(f"failed {pan}", value=value, **{pan: pan})
        else:
            logging.getLogger("driver").exception("failed %s %r", pan, value)
    out = stream.getvalue()
    assert pan not in out
    assert "".join(pan.split()) not in "".join(out.split())
    assert PAN_PLACEHOLDER in out and "level 0 card" in out  # the rest of the text survives
