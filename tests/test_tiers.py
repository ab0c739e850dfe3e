"""The system tier is named by path in tests/conftest.py: a moved or renamed test module would
silently fall into the fast tier (`make unit`), so every name must still point at a test."""

from __future__ import annotations

import re

from tests.conftest import SYSTEM_MODULES, SYSTEM_TESTS, TESTS_DIR


def test_every_system_module_exists() -> None:
    assert sorted(m for m in SYSTEM_MODULES if not (TESTS_DIR / m).is_file()) == []


def test_every_system_test_exists_in_its_module() -> None:
    missing = []
    for name in SYSTEM_TESTS:
        module, test = name.split("::")
        path = TESTS_DIR / module
        source = path.read_text(encoding="utf-8") if path.is_file() else ""
        if not re.search(rf"^def {re.escape(test)}\(", source, re.M):
            missing.append(name)
    assert missing == []
