"""Printing results: a human table by default, one JSON object with `--json`.

Everything printed goes through `emit`, which runs the same redaction as the logs, so a card
number can never reach the terminal even by mistake. JSON is redacted value by value (so the
document stays valid JSON), human text as a whole.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Callable, Mapping, Sequence
from typing import Any, TextIO, TypeVar

from posd.cli.humanize import human
from posd.redact import redact_text, redact_value

Result = TypeVar("Result", bound=Mapping[str, Any])


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


def table(rows: Sequence[Sequence[object]], headers: Sequence[str] | None = None) -> str:
    """A plain aligned text table; cells through `human` (yes/no, `-` for nothing...)."""
    cells = [[human(c) for c in row] for row in rows]
    if headers:
        cells.insert(0, list(headers))
    if not cells:
        return ""
    widths = [max(len(row[i]) for row in cells if i < len(row)) for i in range(len(cells[0]))]
    lines = [
        "  ".join(c.ljust(w) for c, w in zip(row, widths, strict=False)).rstrip() for row in cells
    ]
    if headers:
        lines.insert(1, "  ".join("-" * w for w in widths))
    return "\n".join(lines)


def key_values(result: Mapping[str, Any]) -> str:
    """Render a flat mapping as `key: value` lines."""
    return table([(f"{k}:", v) for k, v in result.items()])
