"""`posd diag bundle -o FILE`: a tar.gz a technician can send to support.

It holds the config (parsed, as JSON) with anything secret-looking removed, versions, status,
doctor, journal stats and the last log lines (`journalctl -u posd` when there is one). Every
member is written through the same redaction as all output, so no card number, key or
credential can travel in it.
"""

from __future__ import annotations

import argparse
import io
import json
import platform
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


def register(subparsers: Any) -> None:
    parser = subparsers.add_parser("diag", help="diagnostics for support")
    actions = parser.add_subparsers(dest="diag_command", metavar="ACTION", required=True)
    bundle = actions.add_parser("bundle", help="write a tar.gz to send to support")
    bundle.add_argument("-o", "--output", type=Path, required=True, metavar="FILE")
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


def _redacted_config(path: Path) -> str:
    """The config as parsed (so no quoting or escaping hides a value from the check), with
    the value of every secret-looking key removed, as JSON."""
    import tomllib

    document = tomllib.loads(path.read_text(errors="replace"))
    return json.dumps(_without_secrets(document), indent=2, default=str)


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
    from posd.errors import PosdError

    try:
        return produce()
    except (PosdError, OSError, ValueError) as error:
        return {"error": f"{what}: {error}"}


def _status(config: Any) -> Any:
    from posd.cli.status_cmd import lane_status

    return lane_status(config)


def _journal_stats(config: Any) -> Any:
    from posd.journal import Journal

    with Journal.open_read_only(config.state_dir, config.journal) as journal:
        return journal.stats()


def _logs() -> str:
    if shutil.which("journalctl") is None:
        return "journalctl not found: no system log on this host\n"
    done = subprocess.run(
        ["journalctl", "-u", "posd", "-n", str(LOG_LINES), "--no-pager", "-o", "short-iso"],
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


def make_bundle(args: argparse.Namespace) -> int:
    from posd.cli.doctor_cmd import doctor_result
    from posd.config import load_config

    config = load_config(args.config)
    members = {
        "config.json": _redacted_config(config.path),
        "versions.json": json.dumps(_versions(), indent=2),
        "status.json": json.dumps(_safely("status", lambda: _status(config)), indent=2),
        "doctor.json": json.dumps(doctor_result(config.path), indent=2),
        "journal-stats.json": json.dumps(
            _safely("journal stats", lambda: _journal_stats(config)), indent=2
        ),
        "logs.txt": _safely("logs", _logs),
    }
    output: Path = args.output
    with tarfile.open(output, "w:gz") as tar:
        for name, text in members.items():
            _add(tar, f"posd-diag/{name}", text if isinstance(text, str) else json.dumps(text))
    output.chmod(0o600)
    emit({"bundle": str(output), "members": sorted(members)}, args.json, key_values)
    return 0
