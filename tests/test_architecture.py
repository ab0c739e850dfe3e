"""The layering, checked on every file's AST (imports inside functions included).

- `drivers` and `sync` never import `posd`, nor each other.
- `wire`, the terminal <-> cloud contract, imports only the standard library and
  `cryptography`: the terminal and the cloud can each ship it without the other.
- `cloud` imports only `wire` of the project (and boto3, botocore, structlog, Powertools
  for its metrics): the Lambda never ships the terminal's packages. `posd` never imports
  `cloud`: `kms:Decrypt` and the consumer stay off the terminal.
- No shipped package imports `demo` (the demo and the local AWS stand-ins), and the wheel
  leaves it and its dependencies (moto, cbor2) out.
- No import circle between modules of posd, drivers, sync, cloud, wire and demo.
"""

from __future__ import annotations

import ast
import re
import subprocess
import sys
import tomllib
from collections.abc import Iterator, Mapping
from fnmatch import fnmatch
from pathlib import Path

import pytest

from tests.repo import REPO_ROOT

REPO = REPO_ROOT
SHIPPED = ("posd", "drivers", "sync", "cloud", "wire")  # what the wheel holds
PROJECT = (*SHIPPED, "demo")
FORBIDDEN = {
    "drivers": {"posd", "sync", "cloud", "demo"},
    "sync": {"posd", "drivers", "cloud", "demo"},
    "wire": {"posd", "drivers", "sync", "cloud", "demo"},
    "cloud": {"posd", "drivers", "sync", "demo"},
    "posd": {"cloud", "demo"},
}
# What the contract and the cloud may import from outside the project.
ALLOWED_THIRD_PARTY = {
    "wire": {"cryptography"},
    "cloud": {"boto3", "botocore", "structlog", "cryptography", "aws_lambda_powertools"},
}


def project_files(package: str) -> list[Path]:
    return sorted((REPO / package).rglob("*.py"))


def module_name(path: Path) -> str:
    parts = path.relative_to(REPO).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


Import = tuple[str, tuple[str, ...]]  # a module, and the names taken from it (`from m import`)


def imports(path: Path, module: str | None = None) -> list[Import]:
    """Every import statement of a file, anywhere in it (functions and `TYPE_CHECKING` blocks
    too), relative imports resolved against `module` (the file's own name by default)."""
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    package = (module or module_name(path)).split(".")
    if path.name != "__init__.py":
        package = package[:-1]
    found: list[Import] = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found.extend((alias.name, ()) for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = package[: len(package) - node.level + 1] if node.level else []
            name = ".".join([*base, node.module] if node.module else base)
            found.append((name, tuple(alias.name for alias in node.names)))
    return found


def imported_modules(path: Path, module: str | None = None) -> set[str]:
    return {name for name, _ in imports(path, module)}


def imported_packages(path: Path, module: str | None = None) -> set[str]:
    return {name.split(".")[0] for name in imported_modules(path, module)}


@pytest.mark.parametrize("package", sorted(FORBIDDEN))
def test_layers_import_only_what_they_may(package: str) -> None:
    files = project_files(package)
    assert files
    offenders = {
        str(path.relative_to(REPO)): sorted(imported_packages(path) & FORBIDDEN[package])
        for path in files
    }
    assert {k: v for k, v in offenders.items() if v} == {}


@pytest.mark.parametrize("package", sorted(ALLOWED_THIRD_PARTY))
def test_the_contract_and_the_cloud_need_no_other_library(package: str) -> None:
    allowed = set(sys.stdlib_module_names) | set(PROJECT) | ALLOWED_THIRD_PARTY[package]
    offenders = {
        str(path.relative_to(REPO)): sorted(imported_packages(path) - allowed)
        for path in project_files(package)
    }
    assert {k: v for k, v in offenders.items() if v} == {}


def test_the_wheel_leaves_the_demo_and_its_dependencies_out() -> None:
    """The package list and the runtime dependencies, as pyproject.toml gives them to the
    build: every shipped package and no `demo`, no moto and no cbor2 outside the extras."""
    project = tomllib.loads((REPO / "pyproject.toml").read_text(encoding="utf-8"))
    include = project["tool"]["setuptools"]["packages"]["find"]["include"]
    packed = {name for name in PROJECT if any(fnmatch(name, p) for p in include)}
    assert packed == set(SHIPPED)
    assert not any(fnmatch("demo.localaws", p) for p in include)
    runtime = [re.split(r"[<>=\[;]", spec)[0] for spec in project["project"]["dependencies"]]
    assert {"moto", "cbor2"} & set(runtime) == set()


def import_graph() -> dict[str, set[str]]:
    """Module -> the project modules it imports. `from package import module` is an edge to
    that module (not to the package's `__init__`, which Python runs first anyway)."""
    files = {module_name(path): path for package in PROJECT for path in project_files(package)}
    graph: dict[str, set[str]] = {}
    for name, path in files.items():
        targets: set[str] = set()
        for module, names in imports(path):
            submodules = {f"{module}.{n}" for n in names} & files.keys()
            if len(submodules) < len(names) or not names:
                targets.add(module)
            targets |= submodules
        graph[name] = (targets & files.keys()) - {name}
    return graph


def find_cycle(graph: Mapping[str, set[str]]) -> list[str]:
    """One import circle of `graph` as a path that starts and ends on the same module, or []."""
    state: dict[str, int] = {}  # 1: on the current path, 2: done
    path: list[str] = []

    def visit(node: str) -> Iterator[list[str]]:
        state[node] = 1
        path.append(node)
        for target in sorted(graph.get(node, ())):
            if state.get(target) == 1:
                yield [*path[path.index(target) :], target]
            elif target not in state:
                yield from visit(target)
        path.pop()
        state[node] = 2

    for start in sorted(graph):
        if start not in state:
            for cycle in visit(start):
                return cycle
    return []


def test_no_import_circle_between_modules() -> None:
    graph = import_graph()
    assert len(graph) > 100
    assert find_cycle(graph) == []


def test_the_circle_check_finds_circles() -> None:
    assert find_cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == ["a", "b", "c", "a"]
    assert find_cycle({"a": {"b"}, "b": set(), "c": {"a", "b"}}) == []


def test_the_check_sees_imports(tmp_path: Path) -> None:
    sample = tmp_path / "sample.py"
    sample.write_text(
        "import posd.journal\nfrom sync.outbox import Outbox\nfrom . import local\n"
        "def later() -> None:\n    from cloud import kms\n"
    )
    assert imports(sample, "wire.sample") == [
        ("posd.journal", ()),
        ("sync.outbox", ("Outbox",)),
        ("wire", ("local",)),
        ("cloud", ("kms",)),
    ]
    assert imported_packages(sample, "wire.sample") == {"posd", "sync", "wire", "cloud"}


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
