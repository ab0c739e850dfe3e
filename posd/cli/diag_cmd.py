"""`posd diag bundle -o FILE [--force]`: a tar.gz a technician can send to support.

It holds the config check's verdict, the config (parsed, as JSON; or, when it is not even
TOML, its text line by line) with anything secret-looking removed, versions, status, doctor,
journal stats and the last log lines of both daemons (`journalctl -u posd -u posd-sync` when
there is one). It writes what it can also when the config is invalid or missing: that is
when support needs it most. Every member is written through the same redaction as all
output, so no card number, key or credential can travel in it. An existing FILE is kept
unless `--force` is given.
"""

from __future__ import annotations

import argparse
import io
import json
import platform
import re
import shutil
import subprocess
import tarfile
import time
from pathlib import Path
from typing import Any

from posd.cli.args import add_config_argument, add_json_argument
from posd.cli.output import emit, key_values

LOG_LINES = 500
JOURNALCTL_TIMEOUT_S = 10.0
# `identities`: the palm scanner's enrolled labels and their credential tokens.
SECRET_KEY_WORDS = ("secret", "password", "token", "key_file", "credential", "identities")
REDACTED = "<redacted>"
# A raw config line: `key = value` (bare, quoted or dotted key), or a `[table]` header.
ASSIGNMENT = re.compile(r"""^(\s*)((?:[A-Za-z0-9_.-]+|"[^"]*"|'[^']*')+)(\s*=\s*)(.*)$""")
TABLE_HEADER = re.compile(r"^\s*\[+\s*([^\]]*)")
MULTILINE_QUOTES = ('"""', "'''")


def register(subparsers: Any) -> None:
    parser = subparsers.add_parser("diag", help="diagnostics for support")
    actions = parser.add_subparsers(dest="diag_command", metavar="ACTION", required=True)
    bundle = actions.add_parser("bundle", help="write a tar.gz to send to support")
    bundle.add_argument("-o", "--output", type=Path, required=True, metavar="FILE")
    bundle.add_argument("--force", action="store_true", help="overwrite FILE if it exists")
    add_config_argument(bundle)
    add_json_argument(bundle)
    bundle.set_defaults(handler=make_bundle)


def _secret_name(key: str) -> bool:
    from posd.redact import is_credential_name

    lowered = key.lower()
    return any(word in lowered for word in SECRET_KEY_WORDS) or is_credential_name(key)


def _without_secrets(table: dict[str, Any]) -> dict[str, Any]:
    """The table with the value of every secret-looking key replaced, whole (a table of palm
    identities included: its keys are labels, its values credentials)."""
    return {
        key: REDACTED
        if _secret_name(key)
        else (_without_secrets(value) if isinstance(value, dict) else value)
        for key, value in table.items()
    }


def _config_member(path: Path) -> tuple[str, str] | None:
    """The config for support, with the value of every secret-looking key removed: as parsed
    (JSON; no quoting or escaping can hide a value from the check) when it is TOML, else its
    text line by line (`config.txt`). None when the file cannot be read at all."""
    import tomllib

    try:
        text = path.read_text(errors="replace")
    except OSError:
        return None  # the config check's error says why
    try:
        document = tomllib.loads(text)
    except tomllib.TOMLDecodeError:
        return "config.txt", _redacted_lines(text)
    return "config.json", json.dumps(_without_secrets(document), indent=2, default=str)


def _redacted_lines(text: str) -> str:
    """A config that is not TOML, line by line: the value of a secret-looking key (and every
    value in a secret-looking table, such as a palm scanner's identities) replaced, through
    the end of a value that spans lines."""
    shown: list[str] = []
    secret_table = False
    closes: str | None = None  # what ends the secret value still open on earlier lines
    for line in text.splitlines():
        if closes is not None:
            shown.append(REDACTED)
            closes = None if _closed(line, closes) else closes
            continue
        header = TABLE_HEADER.match(line)
        if header is not None:
            secret_table = any(_secret_name(part) for part in header.group(1).split("."))
            shown.append(line)
            continue
        assignment = ASSIGNMENT.match(line)
        if assignment is None:
            shown.append(line)
            continue
        indent, key, equals, value = assignment.groups()
        if secret_table or any(_secret_name(part.strip("\"'")) for part in key.split(".")):
            shown.append(f"{indent}{key}{equals}{REDACTED}")
            closes = _left_open(value)
        else:
            shown.append(line)
    return "\n".join(shown) + "\n"


def _left_open(value: str) -> str | None:
    """What closes `value` when it goes on past its line: a multi-line string's quotes or
    an array's or inline table's bracket."""
    stripped = value.strip()
    for quotes in MULTILINE_QUOTES:
        if stripped.startswith(quotes) and stripped.count(quotes) % 2 == 1:
            return quotes
    depth = stripped.count("[") + stripped.count("{") - stripped.count("]") - stripped.count("}")
    if stripped[:1] in ("[", "{") and depth > 0:
        return "]" if stripped.startswith("[") else "}"
    return None


def _closed(line: str, closes: str) -> bool:
    return closes in line


def _versions() -> dict[str, str]:
    from importlib.metadata import version

    import boto3

    from posd.version import posd_version

    return {
        "posd": posd_version(),
        "python": platform.python_version(),
        "boto3": boto3.__version__,
        "botocore": version("botocore"),
        "os": platform.platform(),
    }


def _safely(what: str, produce: Any) -> Any:
    """What `produce` gives, or the error in its place: one part failing (a damaged journal,
    a daemon that hangs up) must not cost support the rest of the bundle."""
    try:
        return produce()
    except Exception as error:  # noqa: BLE001 -- any failure is a finding for support
        return {"error": f"{what}: {type(error).__name__}: {error}"}


def _status(config: Any) -> Any:
    from posd.cli.status_cmd import lane_status

    return lane_status(config)


def _journal_stats(config: Any) -> Any:
    from posd.journal import Journal

    with Journal.open_read_only(config.state_dir, config.journal) as journal:
        return journal.stats()


# Both daemons' lines, interleaved by time: capture (posd) and delivery (posd-sync).
JOURNALCTL_UNITS = ("journalctl", "-u", "posd", "-u", "posd-sync")


def _logs() -> str:
    if shutil.which("journalctl") is None:
        return "journalctl not found: no system log on this host\n"
    done = subprocess.run(
        [*JOURNALCTL_UNITS, "-n", str(LOG_LINES), "--no-pager", "-o", "short-iso"],
        capture_output=True,
        text=True,
        timeout=JOURNALCTL_TIMEOUT_S,
        check=False,
    )
    return done.stdout or done.stderr


def _add(tar: tarfile.TarFile, name: str, text: str) -> None:
    from posd.redact import redact_text

    data = redact_text(text).encode()
    info = tarfile.TarInfo(name)
    info.size, info.mtime, info.mode = len(data), int(time.time()), 0o600
    tar.addfile(info, io.BytesIO(data))


def _load(path: Path) -> tuple[Any, str | None]:
    """The config, or None and the config check's error."""
    from posd.config import load_config
    from posd.errors import PosdError

    try:
        return load_config(path), None
    except PosdError as error:
        return None, str(error)


def _refuse_to_overwrite(output: Path) -> None:
    from posd.errors import UsageError

    raise UsageError(f"{output} exists: give another -o FILE, or --force to overwrite it")


def make_bundle(args: argparse.Namespace) -> int:
    from posd.cli.doctor_cmd import doctor_result

    output: Path = args.output
    if output.exists() and not args.force:
        _refuse_to_overwrite(output)
    config, config_error = _load(args.config)
    members: dict[str, Any] = {
        "config-check.json": {"ok": config_error is None, "error": config_error},
    }
    config_text = _config_member(args.config)
    if config_text is not None:
        name, text = config_text
        members[name] = text
    no_config = {"error": f"no valid config: {config_error}"}
    members.update(
        {
            "versions.json": _safely("versions", _versions),
            "status.json": no_config
            if config is None
            else _safely("status", lambda: _status(config)),
            "doctor.json": _safely("doctor", lambda: doctor_result(args.config)),
            "journal-stats.json": no_config
            if config is None
            else _safely("journal stats", lambda: _journal_stats(config)),
            "logs.txt": _safely("logs", _logs),
        }
    )
    _write(output, members, overwrite=args.force)
    result = {"bundle": str(output), "members": sorted(members), "config_error": config_error}
    emit(result, args.json, _render)
    return 0


def _write(output: Path, members: dict[str, Any], overwrite: bool) -> None:
    try:
        with tarfile.open(output, "w:gz" if overwrite else "x:gz") as tar:
            for name, content in members.items():
                text = content if isinstance(content, str) else json.dumps(content, indent=2)
                _add(tar, f"posd-diag/{name}", text)
    except FileExistsError:  # created since the check above
        _refuse_to_overwrite(output)
    output.chmod(0o600)


def _render(r: dict[str, Any]) -> str:
    shown = {"bundle": r["bundle"], "members": r["members"]}
    if r["config_error"]:
        shown["config"] = f"invalid, in the bundle with the error: {r['config_error']}"
    return key_values(shown)
