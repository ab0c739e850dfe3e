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
MIN_COLUMN_WIDTH = 6


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
    """A plain aligned text table, at most `width` columns wide where it can be: the widest
    columns are narrowed and their cells wrapped onto more lines. Cells go through `human`
    (yes/no, `-` for nothing...) and are redacted before wrapping, which could otherwise cut a
    card number in two where the redaction would no longer see it."""
    cells = [[redact_text(human(c)) for c in row] for row in rows]
    if headers:
        cells.insert(0, list(headers))
    if not cells:
        return ""
    columns = max(len(row) for row in cells)
    natural = [
        max((len(row[i]) for row in cells if i < len(row)), default=0) for i in range(columns)
    ]
    widths = _fitted(natural, width - len(COLUMN_GAP) * (columns - 1))
    lines = [line for row in cells for line in _row_lines(row, widths)]
    if headers:
        header_lines = len(_row_lines(cells[0], widths))
        lines.insert(header_lines, COLUMN_GAP.join("-" * w for w in widths))
    return "\n".join(lines)


def _fitted(natural: list[int], room: int) -> list[int]:
    """Column widths within `room`: a column narrower than its fair share keeps its width,
    the others share what is left equally (never below `MIN_COLUMN_WIDTH`)."""
    widths = list(natural)
    wide = [i for i, w in enumerate(natural) if w > 0]
    while wide:
        share = room // len(wide)
        narrow = [i for i in wide if natural[i] <= share]
        if not narrow:
            extra = room - share * len(wide)
            for rank, i in enumerate(wide):
                widths[i] = max(MIN_COLUMN_WIDTH, share + (1 if rank < extra else 0))
            break
        for i in narrow:
            room -= natural[i]
            wide.remove(i)
    return widths


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
