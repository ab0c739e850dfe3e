"""Redaction: no Luhn-valid card number or track data survives, whatever it hides in."""

from __future__ import annotations

import io
import json
import subprocess
import sys
import unicodedata

import pytest
import structlog
from hypothesis import given
from hypothesis import strategies as st

from posd.logs import configure_logging
from posd.redact import PAN_PLACEHOLDER, redact_event, redact_text, redact_value
from tests.cards import TEST_PANS, VISA_TEST_PAN
from wire.masking import luhn_valid


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


# --- other shapes of the same number: separators, Unicode digits --------------------------


def _digit_shapes() -> dict[str, tuple[str, ...]]:
    """Every character that is, or NFKC-normalises to, each ASCII digit: ASCII, full-width,
    mathematical, Arabic-Indic, Devanagari... decimal digits, and superscripts and the like."""
    shapes: dict[str, list[str]] = {str(d): [] for d in range(10)}
    for code in range(sys.maxunicode + 1):
        char = chr(code)
        if unicodedata.numeric(char, None) is None:
            continue
        folded = unicodedata.normalize("NFKC", char)
        value = unicodedata.decimal(folded, None) if len(folded) == 1 else None
        if value is not None:
            shapes[str(value)].append(char)
    return {digit: tuple(chars) for digit, chars in shapes.items()}


DIGIT_SHAPES = _digit_shapes()
# Separator runs between digit groups: ASCII, Unicode spaces, and full-width forms.
SEPARATOR_CHARS = " ._-\t\u00a0\u2009\u3000\uff0e\uff3f\uff0d"


def digits_in(text: str) -> str:
    """The ASCII digits `text` shows a reader, whatever their shape."""
    folded = unicodedata.normalize("NFKC", text)
    return "".join(str(unicodedata.decimal(ch)) for ch in folded if ch.isdecimal())


@st.composite
def shaped(draw: st.DrawFn, digits: str) -> str:
    """`digits` cut into groups joined by separator runs, each digit in any of its shapes."""
    out: list[str] = []
    for index, digit in enumerate(digits):
        if index and draw(st.booleans()):
            out.append(draw(st.text(SEPARATOR_CHARS, min_size=1, max_size=3)))
        out.append(draw(st.sampled_from(DIGIT_SHAPES[digit])))
    return "".join(out)


@given(data=st.data(), pan=pans(), before=filler, after=filler)
def test_any_shape_of_a_pan_is_redacted(
    data: st.DataObject, pan: str, before: str, after: str
) -> None:
    text = data.draw(shaped(pan))
    out = redact_text(f"{before} {text} {after}")
    assert pan not in digits_in(out)
    assert PAN_PLACEHOLDER in out


@given(pan=pans(), seps=st.lists(st.sampled_from([".", "_", "-", " ", "  ", ". ", "-_"])))
def test_pan_grouped_by_fours_with_any_separators_is_redacted(pan: str, seps: list[str]) -> None:
    groups = [pan[i : i + 4] for i in range(0, len(pan), 4)]
    cycle = seps or ["."]
    text = groups[0] + "".join(cycle[i % len(cycle)] + g for i, g in enumerate(groups[1:]))
    out = redact_text(f"card {text} ok")
    assert out == f"card {PAN_PLACEHOLDER} ok"


@st.composite
def non_luhn_twelve(draw: st.DrawFn) -> str:
    """12 digits failing Luhn: the only 12-19 digit stretch of the number is not card-like."""
    body = draw(st.text("0123456789", min_size=11, max_size=11))
    return next(body + d for d in "0123456789" if not luhn_valid(body + d))


# Filler that shows no digit even after NFKC (no `²`, `①` or `㏠` either).
digitless_filler = st.text(
    alphabet=st.characters(exclude_categories=["Nd"]).filter(lambda ch: not digits_in(ch)),
    max_size=30,
)


@given(data=st.data(), digits=non_luhn_twelve(), before=digitless_filler, after=digitless_filler)
def test_other_shapes_of_non_card_numbers_are_left_alone(
    data: st.DataObject, digits: str, before: str, after: str
) -> None:
    text = f"{before} {data.draw(shaped(digits))} {after}"
    assert redact_text(text) == text  # untouched, and not normalised either


def test_replacement_keeps_the_rest_of_the_original_text() -> None:
    pan = _full_width(DOTTED_PAN.replace(".", " "))
    rest = "\ufb01 \u00bd 2026-11-25T12:00:00Z"  # a ligature and a fraction NFKC would change
    text = f"{_full_width('card')} {pan} {_full_width('ok')} {rest}"
    out = redact_text(text)
    assert out == f"{_full_width('card')} {PAN_PLACEHOLDER} {_full_width('ok')} {rest}"
    track = _full_width(f";{VISA_TEST_PAN}=2512101?")
    assert redact_text(f"read {track} done") == "read [REDACTED-TRACK] done"


def test_dotted_timestamps_amounts_and_uuids_survive() -> None:
    text = (
        "at 2026-11-25 12:00:00.123456 amount 1999.00 EUR "
        "id 0192f3a4-7b5c-7d2e-9f10-3c1b2a4d5e6f v1.2.3 ip 10.0.0.1"
    )
    assert redact_text(text) == text


def _in_digits(base: int, text: str) -> str:
    """`text` with its ASCII digits moved to the decimal digit block starting at `base`."""
    return text.translate({ord("0") + d: base + d for d in range(10)})


def _full_width(text: str) -> str:
    """`text` in full-width forms (printable ASCII but space moved to U+FF01..U+FF5E)."""
    return text.translate({code: code + FULL_WIDTH_OFFSET for code in range(0x21, 0x7F)})


FULL_WIDTH_OFFSET = 0xFF01 - 0x21
MATH_BOLD_ZERO = 0x1D7CE
DOTTED_PAN = ".".join(VISA_TEST_PAN[i : i + 4] for i in range(0, 16, 4))
ARGV_SHAPES = (
    DOTTED_PAN,
    DOTTED_PAN.replace(".", "_"),
    DOTTED_PAN.replace(".", "  "),
    "4111-_1111 .1111--1111",
    _full_width(VISA_TEST_PAN),
    _full_width(DOTTED_PAN),
    _in_digits(MATH_BOLD_ZERO, DOTTED_PAN.replace(".", " ")),
)


@pytest.mark.parametrize("as_json", [False, True])
@pytest.mark.parametrize("argument", ARGV_SHAPES)
def test_cli_argument_errors_never_echo_a_pan(
    argument: str, as_json: bool, capsys: pytest.CaptureFixture[str]
) -> None:
    from posd.cli.main import main

    code = main([argument, *(["--json"] if as_json else [])])

    captured = capsys.readouterr()
    assert code == 2
    assert "invalid choice" in captured.err  # the error itself is still reported
    for shown in (captured.out, captured.err):
        assert VISA_TEST_PAN not in digits_in(shown)
    if as_json:
        message = json.loads(captured.out)["message"]
        assert VISA_TEST_PAN not in digits_in(message)
        assert PAN_PLACEHOLDER in message


def test_cli_process_never_echoes_a_dotted_pan() -> None:
    result = subprocess.run(
        [sys.executable, "-m", "posd", DOTTED_PAN],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 2
    assert PAN_PLACEHOLDER in result.stderr
    assert VISA_TEST_PAN not in digits_in(result.stdout + result.stderr)
