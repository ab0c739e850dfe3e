"""Redaction: no Luhn-valid card number or track data survives, whatever it hides in."""

from __future__ import annotations

import io
import json
from collections.abc import Iterator

import pytest
import structlog
from hypothesis import given
from hypothesis import strategies as st

from drivers.pan import luhn_valid
from posd.logs import configure_logging
from posd.redact import PAN_PLACEHOLDER, redact_event, redact_text, redact_value
from tests.cards import TEST_PANS, VISA_TEST_PAN


@st.composite
def pans(draw: st.DrawFn) -> str:
    """Any Luhn-valid 12-19 digit number."""
    length = draw(st.integers(12, 19))
    body = draw(st.text("0123456789", min_size=length - 1, max_size=length - 1))
    return next(body + d for d in "0123456789" if luhn_valid(body + d))


filler = st.text(alphabet=st.characters(exclude_categories=["Nd"]), max_size=30)
separators = st.sampled_from(["", " ", "-"])


@given(pan=pans(), before=filler, after=filler)
def test_any_pan_in_text_is_redacted(pan: str, before: str, after: str) -> None:
    out = redact_text(before + pan + after)
    assert pan not in out
    assert PAN_PLACEHOLDER in out


@given(pan=pans(), sep=separators)
def test_grouped_pan_is_redacted(pan: str, sep: str) -> None:
    grouped = sep.join(pan[i : i + 4] for i in range(0, len(pan), 4))
    out = redact_text(f"card {grouped} ok")
    assert "".join(ch for ch in out if ch.isdigit()) != pan
    assert pan not in out.replace(" ", "").replace("-", "")


@given(pan=pans(), extra=st.text("0123456789", min_size=1, max_size=6), before=st.booleans())
def test_pan_glued_to_other_digits_is_redacted(pan: str, extra: str, before: bool) -> None:
    text = extra + pan if before else pan + extra
    assert pan not in redact_text(text)


@given(pan=pans(), name=st.text("ABCDEFGHIJKLMNOPQRSTUVWXYZ /", min_size=2, max_size=26))
def test_track_data_is_redacted(pan: str, name: str) -> None:
    track1 = f"%B{pan}^{name}^25121010000000000000?"
    track2 = f";{pan}=25121010000000000000?"
    for text in (track1, track2, track2.strip(";?"), f"57 13 {pan}D2512101"):
        out = redact_text(f"read {text} done")
        assert pan not in out, out
        assert "2512101" not in out or "D2512101" in text


@given(
    value=st.recursive(
        st.one_of(st.text(max_size=10), st.integers(), st.sampled_from(TEST_PANS), pans()),
        lambda children: st.one_of(
            st.lists(children, max_size=4),
            st.dictionaries(st.text(max_size=8) | pans(), children, max_size=4),
        ),
        max_leaves=12,
    )
)
def test_nested_values_and_keys_are_redacted(value: object) -> None:
    rendered = json.dumps(redact_value(value))
    for pan in TEST_PANS:
        assert pan not in rendered


def test_non_card_numbers_survive() -> None:
    text = "order 12345678901 at 2026-11-25T12:00:00Z seq 42 amount 1999 id 1234567890123"
    assert redact_text(text) == text  # too short, or no Luhn-valid stretch


def test_pan_as_integer_is_redacted() -> None:
    assert redact_value(int(VISA_TEST_PAN)) == PAN_PLACEHOLDER
    assert redact_event(None, "info", {"amount": 42}) == {"amount": 42}


@pytest.fixture
def restore_logging() -> Iterator[None]:
    import logging

    root = logging.getLogger()
    handlers, level = root.handlers[:], root.level
    yield
    structlog.reset_defaults()
    root.handlers[:], root.level = handlers, level


@pytest.mark.usefixtures("restore_logging")
def test_log_output_never_carries_a_pan() -> None:
    stream = io.StringIO()
    configure_logging("debug", stream=stream, force_json=True)
    log = structlog.get_logger("test")
    log.info("card_read", pan=VISA_TEST_PAN, nested={"deep": [f"x{VISA_TEST_PAN}y"]})
    log.info(f"event text {VISA_TEST_PAN}")
    try:
        raise ValueError(f"bad card {VISA_TEST_PAN}")
    except ValueError:
        log.exception("failure")
    out = stream.getvalue()
    assert out.count("\n") == 3
    assert VISA_TEST_PAN not in out
    assert "bad card" in out and PAN_PLACEHOLDER in out
    for line in out.splitlines():
        json.loads(line)


@given(number=st.floats(allow_nan=False, allow_infinity=False), pan=pans())
def test_cli_json_output_stays_valid_and_redacted(number: float, pan: str) -> None:
    from posd.cli.output import emit

    out = io.StringIO()
    emit({"age": number, "pan": pan, "nested": [pan, {"k": pan}]}, True, lambda r: "", out=out)
    parsed = json.loads(out.getvalue())
    assert pan not in out.getvalue()
    assert parsed["age"] == number or parsed["age"] == PAN_PLACEHOLDER


@pytest.mark.usefixtures("restore_logging")
def test_stdlib_logging_is_redacted_too() -> None:
    import logging

    stream = io.StringIO()
    configure_logging("info", stream=stream, force_json=True)
    logging.getLogger("drivers.card.serial_reader").warning("read %s", f";{VISA_TEST_PAN}=2512?")
    logging.getLogger("drivers.card.serial_reader").info("reader is back")
    lines = [json.loads(line) for line in stream.getvalue().splitlines()]
    assert [line["level"] for line in lines] == ["warning", "info"]
    assert VISA_TEST_PAN not in stream.getvalue()
    assert lines[0]["logger"] == "drivers.card.serial_reader"
