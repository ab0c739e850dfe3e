"""`drivers` stands alone: it never imports the daemon or the sync engine (design section 1)."""

from __future__ import annotations

import ast
from pathlib import Path

import drivers

FORBIDDEN = ("posd", "sync")


def _imported_modules(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(encoding="utf-8"))
    names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module)
    return names


def test_drivers_never_import_posd_or_sync() -> None:
    root = Path(drivers.__file__).parent
    offenders = {
        str(path.relative_to(root)): sorted(
            name for name in _imported_modules(path) if name.split(".")[0] in FORBIDDEN
        )
        for path in root.rglob("*.py")
    }
    assert {k: v for k, v in offenders.items() if v} == {}


def test_parsing_modules_do_not_need_pyserial() -> None:
    root = Path(drivers.__file__).parent / "card"
    for name in ("tracks", "tlv", "emv", "brands", "carddata", "framing", "protocol"):
        assert "serial" not in _imported_modules(root / f"{name}.py")
