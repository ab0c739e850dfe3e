"""The layering: `drivers` and `sync` never import `posd`, nor each other; nothing shipped
imports the demo."""

from __future__ import annotations

import ast
import re
import subprocess
import sys
import tomllib
from fnmatch import fnmatch
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
FORBIDDEN = {"drivers": {"posd", "sync"}, "sync": {"posd", "drivers"}}
PRODUCT_PACKAGES = ("posd", "drivers", "sync", "cloud")  # what the wheel ships


def imported_modules(path: Path) -> set[str]:
    """Every absolute module a file imports (relative imports stay inside their package)."""
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    found: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.add(node.module)
    return found


def imported_packages(path: Path) -> set[str]:
    return {name.split(".")[0] for name in imported_modules(path)}


@pytest.mark.parametrize("package", sorted(FORBIDDEN))
def test_wings_stay_independent(package: str) -> None:
    files = sorted((REPO / package).rglob("*.py"))
    assert files
    offenders = {
        str(path.relative_to(REPO)): sorted(imported_packages(path) & FORBIDDEN[package])
        for path in files
    }
    assert {k: v for k, v in offenders.items() if v} == {}


@pytest.mark.parametrize("package", PRODUCT_PACKAGES)
def test_the_product_never_imports_the_demo_or_its_local_aws(package: str) -> None:
    """The demo and the local AWS stand-ins live outside every shipped package: a terminal's
    wheel holds none of them, so no shipped module may import them."""
    offenders = [
        str(path.relative_to(REPO))
        for path in sorted((REPO / package).rglob("*.py"))
        if "demo" in imported_packages(path)
    ]
    assert offenders == []


def test_the_wheel_leaves_the_demo_and_its_dependencies_out() -> None:
    """The package list and the runtime dependencies, as pyproject.toml gives them to the
    build: no `demo` package, no moto and no cbor2 outside the extras."""
    project = tomllib.loads((REPO / "pyproject.toml").read_text(encoding="utf-8"))
    include = project["tool"]["setuptools"]["packages"]["find"]["include"]
    shipped = [name for name in ("demo", "demo.localaws") if any(fnmatch(name, p) for p in include)]
    assert shipped == []
    runtime = [re.split(r"[<>=\[;]", spec)[0] for spec in project["project"]["dependencies"]]
    assert {"moto", "cbor2"} & set(runtime) == set()


def test_the_check_sees_imports(tmp_path: Path) -> None:
    sample = tmp_path / "x.py"
    sample.write_text("import posd.journal\nfrom sync.outbox import Outbox\nfrom . import local\n")
    assert imported_packages(sample) == {"posd", "sync"}


def test_the_cli_and_daemon_never_load_demo_or_emulator_code() -> None:
    """A lane runs the CLI's import graph: moto and the demo stay out of its memory."""
    probe = (
        "import sys\n"
        "from posd.cli.main import build_parser\n"
        "build_parser()\n"
        "print(','.join(sorted(m for m in sys.modules if m.split('.')[0] in ('moto', 'demo'))))\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, check=True, cwd=REPO
    )
    assert result.stdout.strip() == ""
