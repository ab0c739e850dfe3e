"""The documentation matches the code: the generated configuration reference, links, the unit."""

from __future__ import annotations

import dataclasses
import re
import typing
from pathlib import Path

import pytest

from posd.config_reference import (
    REFERENCE_PATH,
    ConfigReferenceError,
    main,
    render,
    section_classes,
)
from posd.config_reference import _section as render_section
from tests.repo import REPO_ROOT

DOCS = REPO_ROOT / "docs"
README = REPO_ROOT / "README.md"
# Every shipped unit (capture, delivery, the credentials helper, the target).
UNITS = [
    *sorted((REPO_ROOT / "systemd").glob("posd*.service")),
    REPO_ROOT / "systemd" / "posd.target",
]
INSTALLED_DOCS = "/usr/share/doc/posd/"
# "Fits on a few screens": the words of the old one-file README were 11,800.
README_MAX_WORDS = 1500
LINK = re.compile(r"\]\(([^)\s]+)\)")


def test_configuration_reference_is_generated_from_the_code() -> None:
    assert REFERENCE_PATH == DOCS / "configuration.md"
    assert REFERENCE_PATH.read_text(encoding="utf-8") == render(), "stale: run `make docs`"


def test_the_check_mode_fails_on_a_stale_file(tmp_path: Path) -> None:
    stale = tmp_path / "configuration.md"
    stale.write_text(render().replace("checkpoint_every_records", "x"), encoding="utf-8")
    assert main(["--check", "--output", str(stale)]) == 1
    assert main(["--output", str(stale)]) == 0
    assert main(["--check", "--output", str(stale)]) == 0


def test_the_reference_lists_every_key_of_every_section() -> None:
    text = REFERENCE_PATH.read_text(encoding="utf-8")
    for name, cls in section_classes().items():
        body = text.split(f"## `[{name}]`", 1)[1].split("\n## ", 1)[0]
        for item in dataclasses.fields(cls):
            assert f"| `{item.name}` |" in body, f"[{name}] {item.name}"
    # The keys the hand-written table of the old README left out.
    for key in ("checkpoint_every_records", "checkpoint_every_seconds", "rate_min_per_second"):
        assert f"| `{key}` |" in text
    for option in ("port", "vendor_id", "identities", "unplugged_while"):
        assert f"| `{option}` |" in text


def test_a_key_without_a_description_is_an_error() -> None:
    journal = section_classes()["journal"]
    grown = dataclasses.make_dataclass(
        "Grown",
        [("undocumented_knob", int, dataclasses.field(default=1))],
        bases=(journal,),
        frozen=True,
    )
    grown.__module__ = journal.__module__
    typing.get_type_hints(grown)
    with pytest.raises(ConfigReferenceError, match="undocumented_knob"):
        list(render_section("journal", grown))


def _markdown_files() -> list[Path]:
    return [README, *sorted(DOCS.glob("*.md"))]


def _anchors(path: Path) -> set[str]:
    """GitHub's heading slugs: lower case, punctuation but '-' and '_' dropped, spaces to '-'."""
    slugs = set()
    for line in path.read_text(encoding="utf-8").splitlines():
        if line.startswith("#"):
            title = line.lstrip("#").strip().lower()
            slugs.add(re.sub(r"[^\w\- ]", "", title).replace(" ", "-"))
    return slugs


@pytest.mark.parametrize("path", _markdown_files(), ids=lambda p: p.name)
def test_every_relative_link_resolves(path: Path) -> None:
    broken = []
    for target in LINK.findall(path.read_text(encoding="utf-8")):
        if re.match(r"[a-z]+:", target):
            continue
        file_part, _, anchor = target.partition("#")
        resolved = (path.parent / file_part).resolve() if file_part else path
        missing_anchor = bool(anchor) and resolved.suffix == ".md"
        if not resolved.exists() or (missing_anchor and anchor not in _anchors(resolved)):
            broken.append(target)
    assert broken == []


def test_the_readme_fits_on_a_few_screens_and_leads_to_the_runbook() -> None:
    text = README.read_text(encoding="utf-8")
    assert len(text.split()) <= README_MAX_WORDS
    first_screen = "\n".join(text.splitlines()[:40])
    assert "make demo" in first_screen and "#runbook" in first_screen
    assert "docs/configuration.md" in text


@pytest.mark.parametrize("unit", UNITS, ids=lambda unit: unit.name)
def test_the_units_documentation_is_what_the_install_step_creates(unit: Path) -> None:
    line = next(x for x in unit.read_text().splitlines() if x.startswith("Documentation="))
    urls = line.removeprefix("Documentation=").split()
    install = (DOCS / "operations.md").read_text(encoding="utf-8")
    installed = set()
    for command in re.findall(r"sudo install -D -m 0644 -t (\S+) ([^#\n]+)", install):
        target, sources = command
        for source in sources.split():
            for match in REPO_ROOT.glob(source):
                installed.add(f"{target}/{match.name}")
    assert urls
    for url in urls:
        assert url.startswith("file://" + INSTALLED_DOCS), url
        path = url.removeprefix("file://")
        assert path in installed, f"{path}: no install step in docs/operations.md creates it"
        assert (REPO_ROOT / path.removeprefix(INSTALLED_DOCS)).is_file()
