"""Printing results: a human table by default, one JSON object with `--json`.

Everything printed goes through `emit`, which runs the same redaction as the logs, so a card
number can never reach the terminal even by mistake. JSON is redacted value by value (so the
document stays valid JSON), human text as a whole.
"""

from __future__ import annotations

import json
import sys
import textwrap
from collections.abc import Callable, Mapping, Sequence
from typing import Any, TextIO, TypeVar

from posd.cli.humanize import human
from posd.redact import redact_text, redact_value

Result = TypeVar("Result", bound=Mapping[str, Any])

TABLE_WIDTH = 80  # a technician's terminal, a ticket, an e-mail: wider cells wrap
COLUMN_GAP = "  "
WRAP_FLOOR = 20  # a column narrowed to wrap keeps at least this width


def _default(value: object) -> object:
    if isinstance(value, bytes):
        return value.hex()
    return str(value)


def emit(
    result: Result,
    as_json: bool,
    render: Callable[[Result], str],
    out: TextIO | None = None,
) -> None:
    """Print `result` as JSON or through `render`, redacted either way."""
    stream = out or sys.stdout
    if as_json:
        text = json.dumps(redact_value(result), default=_default, sort_keys=True)
    else:
        text = redact_text(render(result))
    stream.write(text + "\n")
    stream.flush()


def table(
    rows: Sequence[Sequence[object]],
    headers: Sequence[str] | None = None,
    width: int = TABLE_WIDTH,
) -> str:
    """A plain aligned text table, at most `width` columns wide.

    Too wide, the rightmost columns (free text: errors, metadata, fixes) are narrowed first,
    down to `WRAP_FLOOR`, and their cells wrapped onto more lines. When even that does not
    fit, each row is shown as a block of `HEADER: value` lines instead. Cells go through
    `human` (yes/no, `-` for nothing...) and are redacted before wrapping, which could
    otherwise cut a card number in two where the redaction would no longer see it.
    """
    cells = [[redact_text(human(c)) for c in row] for row in rows]
    if not cells and not headers:
        return ""
    columns = max([len(headers or ())] + [len(row) for row in cells])
    every = ([list(headers)] if headers else []) + cells
    natural = [
        max((len(row[i]) for row in every if i < len(row)), default=0) for i in range(columns)
    ]
    room = width - len(COLUMN_GAP) * (columns - 1)
    widths = _narrowed(natural, room)
    if sum(widths) > room and headers and columns > 2:
        return _blocks(cells, headers, width)
    lines = [line for row in every for line in _row_lines(row, widths)]
    if headers:
        header_lines = len(_row_lines(every[0], widths))
        lines.insert(header_lines, COLUMN_GAP.join("-" * w for w in widths))
    return "\n".join(lines)


def _narrowed(natural: list[int], room: int) -> list[int]:
    """Column widths within `room` where they can be: the rightmost column first, down to
    `WRAP_FLOOR`, then the one before it... (short columns, names and states, stay whole)."""
    widths = list(natural)
    for i in reversed(range(len(widths))):
        excess = sum(widths) - room
        if excess <= 0:
            break
        widths[i] = max(min(widths[i], WRAP_FLOOR), widths[i] - excess)
    return widths


def _blocks(cells: list[list[str]], headers: Sequence[str], width: int) -> str:
    """Each row as `HEADER: value` lines, rows apart by a blank line."""
    labels = [f"{h}:" for h in headers]
    return "\n\n".join(table(list(zip(labels, row, strict=False)), None, width) for row in cells)


def _row_lines(row: Sequence[str], widths: Sequence[int]) -> list[str]:
    wrapped = [
        textwrap.wrap(cell, w, break_long_words=True, break_on_hyphens=False) or [""]
        if len(cell) > w
        else [cell]
        for cell, w in zip(row, widths, strict=False)
    ]
    height = max(len(parts) for parts in wrapped)
    return [
        COLUMN_GAP.join(
            (parts[n] if n < len(parts) else "").ljust(w)
            for parts, w in zip(wrapped, widths, strict=False)
        ).rstrip()
        for n in range(height)
    ]


def key_values(result: Mapping[str, Any]) -> str:
    """Render a flat mapping as `key: value` lines."""
    return table([(f"{k}:", v) for k, v in result.items()])
