"""Looking for full card numbers where none may be: files, API answers, CLI output.

Each test PAN of the simulator's deck is searched as ASCII digits and as packed BCD (EMV tag
5A's form, `F`-padded to whole bytes); BIN and last four alone are allowed everywhere.
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

from drivers.card.deck import TEST_PANS
from drivers.card.emv import build_pan_bcd

DECK_PANS = tuple(pan for _, pan in TEST_PANS)


def pan_forms(pan: str) -> tuple[tuple[str, bytes], ...]:
    return (("ascii", pan.encode()), ("bcd", build_pan_bcd(pan)))


def leaks_in(where: str, data: bytes, pans: Iterable[str] = DECK_PANS) -> list[str]:
    """One line per full PAN found in `data`: where, which form, BIN and last four only."""
    found = []
    for pan in pans:
        for form, needle in pan_forms(pan):
            if needle in data:
                found.append(f"{where}: {form} {pan[:6]}...{pan[-4:]}")
    return found


def leaks_in_files(paths: Iterable[Path]) -> list[str]:
    found: list[str] = []
    for path in paths:
        if path.is_file():
            found += leaks_in(path.name, path.read_bytes())
    return found
