"""The card-data parsers stand alone: decoding a track or a TLV needs no serial library.

(That `drivers` never imports `posd` or `sync` is checked with the other wings in
tests/test_architecture.py.)
"""

from __future__ import annotations

from pathlib import Path

import drivers
from tests.test_architecture import imported_modules


def test_parsing_modules_do_not_need_pyserial() -> None:
    root = Path(drivers.__file__).parent / "card"
    for name in ("tracks", "tlv", "emv", "brands", "carddata", "framing", "protocol"):
        assert "serial" not in imported_modules(root / f"{name}.py")
