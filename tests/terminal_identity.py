"""A lane's certificate and key for the tests' configs: a production config needs `[identity]`.

The certificates are issued by `CA` (`demo.pki.LocalCa`), the tests' stand-in for a store
chain's Roles Anywhere trust anchor.
"""

from __future__ import annotations

import shutil
import tomllib
from pathlib import Path
from typing import Any

from demo.devconfig import identity_files
from demo.pki import LocalCa, TerminalCredentials
from tests.repo import REPO_ROOT

CA = LocalCa()
EXAMPLE_CERTIFICATE = "terminal.pem"
EXAMPLE_KEY = "terminal.key"


def lane_credentials(
    directory: Path, store_id: str, terminal_id: str, ca: LocalCa = CA, **issue: Any
) -> TerminalCredentials:
    """A certificate for the lane (`CN=terminal_id, OU=store_id`) and its key, written to
    `directory` as terminal.pem and terminal.key (0600)."""
    return ca.issue(store_id, terminal_id, **issue).write(directory)


def lane_identity(
    directory: Path, store_id: str, terminal_id: str, ca: LocalCa = CA, **issue: Any
) -> dict[str, Any]:
    """`[identity]` for a DevConfig: the lane's certificate and key written to `directory`."""
    written = lane_credentials(directory, store_id, terminal_id, ca, **issue)
    assert written.certificate_file is not None and written.private_key_file is not None
    return identity_files(written.certificate_file, written.private_key_file)


def shipped_example(directory: Path, name: str) -> Path:
    """`config/<name>` copied into `directory`, with the certificate and key its `[identity]`
    names (if any) written beside it, as a technician installs them."""
    source = REPO_ROOT / "config" / name
    document = tomllib.loads(source.read_text())
    target = directory / name
    shutil.copyfile(source, target)
    identity = document.get("identity")
    if identity:
        assert identity == {
            "certificate_file": EXAMPLE_CERTIFICATE,
            "private_key_file": EXAMPLE_KEY,
        }, "the example names its files beside it"
        terminal = document["terminal"]
        lane_credentials(directory, terminal["store_id"], terminal["terminal_id"])
    return target
