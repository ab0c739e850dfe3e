"""The CLI's ergonomics (issue 22, "Seen" 7): `--json` before or after the subcommand, tables
within 80 columns, every subcommand's `--help` with a description and an example, `diag
bundle` on a broken config and over an existing file, `config check` on an empty port."""

from __future__ import annotations

import json
import shlex
import tarfile
from pathlib import Path
from typing import Any

import pytest

from demo.devconfig import DevConfig, serial_card_reader, simulated_card_reader, simulated_palm
from posd.cli.help_text import EXAMPLE_HEADING, walk
from posd.cli.main import ArgumentError, build_parser, main, parse_arguments
from posd.cli.output import TABLE_WIDTH, key_values, table
from posd.cli.status_verdict import EXIT_NOT_RUNNING
from posd.journal import Journal
from posd.keys.local import LocalKeySource
from posd.keys.provider import RotatingKeyProvider
from posd.recorder import Recorder
from tests.cards import TEST_PANS

RECORDS = 6
PALM_TOKEN = "tok-ergonomics-carol-9d41"
AWS_SECRET = "ergoSecretAccessKey00000000000000000077"
LONG_ERROR = "MalformedDetail: " + "the event bus answered something nobody expected " * 3


def _examples(epilog: str) -> list[str]:
    return [line.strip() for line in epilog.splitlines()[1:] if line.strip()]


# -- --help: a description and an example for every subcommand ---------------------------------


def test_every_subcommand_has_a_description_and_an_example_that_parses() -> None:
    parser = build_parser()
    subcommands = walk(parser)
    assert len(subcommands) >= 20  # the walk reaches the nested actions
    for path, sub, _ in subcommands:
        name = " ".join(path)
        assert sub.description, f"posd {name} --help has no description"
        assert sub.epilog and sub.epilog.startswith(EXAMPLE_HEADING), f"posd {name}: no example"
        shown = sub.format_help()
        assert sub.description.splitlines()[0] in shown
        for example in _examples(sub.epilog):
            assert example in shown
            words = shlex.split(example)
            assert words[0] == "posd" and words[1 : 1 + len(path)] == list(path), example
            parse_arguments(build_parser(), words[1:])  # every example is a valid command


# -- --json before or after the subcommand ------------------------------------------------------


def _examples_by_command() -> list[tuple[tuple[str, ...], list[str], bool]]:
    """Each subcommand's last example: its path, the example's arguments without `--json`,
    and whether the command it runs takes `--json`."""
    found = []
    for path, sub, _ in walk(build_parser()):
        example = _examples(sub.epilog or "")[-1]
        words = [w for w in shlex.split(example)[1:] if w != "--json"]
        takes_json = hasattr(parse_arguments(build_parser(), words), "json")
        found.append((path, words, takes_json))
    return found


@pytest.mark.parametrize(("path", "words", "takes_json"), _examples_by_command(), ids=str)
def test_json_before_or_after_the_subcommand(
    path: tuple[str, ...], words: list[str], takes_json: bool
) -> None:
    placings = [["--json", *words], [*words, "--json"], [path[0], "--json", *words[1:]]]
    for argv in placings:
        if not takes_json:
            with pytest.raises(ArgumentError, match="--json"):
                parse_arguments(build_parser(), argv)
            continue
        assert parse_arguments(build_parser(), argv).json is True, argv
    if takes_json:
        assert parse_arguments(build_parser(), words).json is False


def test_json_first_prints_the_same_object(
    recorder: Recorder, state_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    for _ in range(3):
        recorder.record("card_payment", {"amount": 500, "currency": "EUR"}, b"secret")
    capsys.readouterr()  # the fixture's own log lines
    argv = ["journal", "stats", "--state-dir", str(state_dir)]
    assert main(["--json", *argv]) == 0
    first = json.loads(capsys.readouterr().out)
    assert main([*argv, "--json"]) == 0
    after = json.loads(capsys.readouterr().out)
    assert after["records"] == first["records"] and after["path"] == first["path"]
    assert first["records"]["pending"] == 3


# -- tables fit 80 columns ----------------------------------------------------------------------


def _widest(text: str) -> int:
    return max((len(line) for line in text.splitlines()), default=0)


def test_the_table_renderer_wraps_to_80_columns_and_never_cuts_a_card_number() -> None:
    checks = [("FAIL", "config", LONG_ERROR, "z" * 120), ("OK", "state dir", "-", "")]
    text = table(checks, ("", "CHECK", "SEEN", "FIX"))
    assert _widest(text) <= TABLE_WIDTH
    assert text.splitlines()[0].split() == ["CHECK", "SEEN", "FIX"]
    assert text.splitlines()[1].startswith("----")
    assert "".join(text.split()).count("z") == 120  # wrapped, not cut
    assert any(line.startswith("OK    state dir") for line in text.splitlines())

    rows = [
        (1, "payment.card", "2026-12-07T05:40:49.123456Z", "pending", 0, LONG_ERROR, "-"),
        (2, "payment.card", "2026-12-07T05:40:50Z", "quarantined", 3, None, f"pan {TEST_PANS[0]}"),
    ]
    text = table(rows, ("SEQ", "KIND", "CAPTURED", "STATE", "ATTEMPTS", "LAST ERROR", "META"))
    assert _widest(text) <= TABLE_WIDTH  # too many columns: one block of lines per row
    first, second = text.split("\n\n")
    assert first.splitlines()[0].split() == ["SEQ:", "1"]
    assert "STATE:" in second and "quarantined" in second
    assert TEST_PANS[0] not in "".join(text.split())  # redacted before it was wrapped

    flat = key_values({"offline headroom": "pending amount EUR 1,000.00 left; " * 6})
    assert _widest(flat) <= TABLE_WIDTH and "offline headroom:" in flat
    assert table([("a", "b")]) == "a  b"  # narrow tables stay as they are


@pytest.fixture
def lane(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A lane's config with both simulated devices and a journal of `RECORDS` payments, one
    quarantined with a long error; no daemon runs."""
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    config = DevConfig(
        store_id="store-with-a-rather-long-name-0001",
        terminal_id="lane-with-a-rather-long-name-07",
        api={"socket": "api.sock"},
        aws={"region": "us-east-1"},
        sync={"event_bus_name": "posd-ergonomics", "source": "posd.test"},
        devices={
            "card_reader": simulated_card_reader(),
            "palm_scanner": simulated_palm({"carol": PALM_TOKEN}, present="carol"),
        },
    ).write(tmp_path / "posd.toml")
    with (
        Journal.open(tmp_path / "state") as journal,
        RotatingKeyProvider(LocalKeySource(tmp_path / "kek.b64", create=True)) as keys,
    ):
        assert keys.wait_ready(5)
        recorder = Recorder(journal, keys, "store-with-a-rather-long-name-0001", "lane-07")
        for index in range(RECORDS):
            meta = {"amount": 1250 + index, "currency": "EUR", "entry_mode": "contactless"}
            recorder.record("payment.card", meta, TEST_PANS[0].encode())
        journal.quarantine(2, LONG_ERROR)
    return config


# what each command answers on this lane, no daemon running (status: 3, "not running")
COMMANDS = (
    ("status",),
    ("sync", "status"),
    ("journal", "list"),
    ("journal", "stats"),
    ("devices",),
    ("config", "check"),
)


@pytest.mark.parametrize("command", COMMANDS, ids=" ".join)
def test_every_table_fits_80_columns(
    command: tuple[str, ...], lane: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code = main([*command, "--config", str(lane)])
    out = capsys.readouterr().out
    assert code == (EXIT_NOT_RUNNING if command == ("status",) else 0), out
    assert out.strip(), command
    wide = [line for line in out.splitlines() if len(line) > TABLE_WIDTH]
    assert not wide, f"posd {' '.join(command)}: {len(wide[0])} columns:\n{out}"


# -- config check: an empty port ----------------------------------------------------------------


@pytest.mark.parametrize("port", ["", "   "])
def test_config_check_refuses_an_empty_port_naming_the_key(
    port: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = DevConfig(
        "store-1", "lane-1", aws={"region": "us-east-1"}, devices={
            "card_reader": serial_card_reader("/dev/ttyACM0")
        }
    ).write(tmp_path / "posd.toml")  # fmt: skip
    path.write_text(path.read_text().replace('"/dev/ttyACM0"', json.dumps(port)))
    code = main(["config", "check", "--config", str(path), "--json"])
    answer = json.loads(capsys.readouterr().out)
    assert code == 2
    assert answer["error"] == "config_invalid"
    assert "devices.card_reader.port" in answer["message"]


# -- diag bundle: writes what it can, never overwrites silently ---------------------------------


def _bundle(path: Path) -> dict[str, str]:
    with tarfile.open(path) as tar:
        return {
            Path(m.name).name: tar.extractfile(m).read().decode()  # type: ignore[union-attr]
            for m in tar.getmembers()
            if m.isfile()
        }


def _diag(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, Any]:
    code = main(["diag", "bundle", *argv, "--json"])
    return code, json.loads(capsys.readouterr().out)


BROKEN_TOML = f"""
[terminal]
store_id = "store-1"
terminal_id = "lane-1"

[aws]
region = "us-east-1"
secret_access_key = "{AWS_SECRET}"

[devices.palm_scanner]
driver = "simulated"
identities = {{ carol = "{PALM_TOKEN}" }}

[devices.card_reader
driver = "serial"
port = "{TEST_PANS[0]}"
"""


def test_diag_bundle_on_a_config_that_does_not_parse(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    config = tmp_path / "posd.toml"
    config.write_text(BROKEN_TOML)
    output = tmp_path / "diag.tar.gz"
    code, result = _diag(capsys, "-o", str(output), "--config", str(config))
    assert code == 0, result
    assert result["config_error"] and "posd.toml" in result["config_error"]
    members = _bundle(output)
    check = json.loads(members["config-check.json"])
    assert check["ok"] is False and check["error"] == result["config_error"]
    raw = members["config.txt"]
    assert "[devices.card_reader" in raw and 'region = "us-east-1"' in raw  # what support reads
    for blob in members.values():
        assert AWS_SECRET not in blob and PALM_TOKEN not in blob
        assert not any(pan in blob for pan in TEST_PANS)
    assert {"versions.json", "status.json", "doctor.json", "logs.txt"} <= set(members)


def test_diag_bundle_on_an_invalid_or_missing_config(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    config = tmp_path / "posd.toml"
    config.write_text('[terminal]\nstore_id = "store-1"\nterminal_id = ""\n')
    code, result = _diag(capsys, "-o", str(tmp_path / "a.tar.gz"), "--config", str(config))
    assert code == 0
    assert "terminal.terminal_id" in result["config_error"]
    members = _bundle(tmp_path / "a.tar.gz")
    assert json.loads(members["config.json"])["terminal"]["store_id"] == "store-1"

    missing = tmp_path / "nowhere.toml"
    code, result = _diag(capsys, "-o", str(tmp_path / "b.tar.gz"), "--config", str(missing))
    assert code == 0
    assert "nowhere.toml" in result["config_error"]
    members = _bundle(tmp_path / "b.tar.gz")
    assert "nowhere.toml" in json.loads(members["config-check.json"])["error"]
    assert "config.json" not in members and "config.txt" not in members


def test_diag_bundle_refuses_to_overwrite_without_force(
    lane: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    output = tmp_path / "diag.tar.gz"
    output.write_bytes(b"the bundle from yesterday")
    code, result = _diag(capsys, "-o", str(output), "--config", str(lane))
    assert code == 2
    assert "--force" in result["message"] and str(output) in result["message"]
    assert output.read_bytes() == b"the bundle from yesterday"
    code, result = _diag(capsys, "-o", str(output), "--config", str(lane), "--force")
    assert code == 0 and result["config_error"] is None
    assert "config.json" in _bundle(output)
