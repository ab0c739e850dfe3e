"""The offline public-key cache lives in the state dir that capture shares with delivery (two
users, one group, 0770): capture uses it only if it is its own private file, so delivery
cannot swap in a key it holds (and then decrypt the data keys capture wraps offline)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from posd.errors import KeyProviderError
from posd.keys.owned import read_own_private

OTHER_UID = 61002  # the delivery daemon's user, as far as this file can tell


def test_its_own_private_file_is_read(tmp_path: Path) -> None:
    path = tmp_path / "cache.json"
    path.write_bytes(b"{}")
    path.chmod(0o600)
    assert read_own_private(path) == b"{}"


def test_a_group_readable_file_is_refused_naming_its_mode(tmp_path: Path) -> None:
    path = tmp_path / "cache.json"
    path.write_bytes(b"{}")
    path.chmod(0o640)
    with pytest.raises(KeyProviderError, match="mode 0640"):
        read_own_private(path)


def test_a_symlink_is_refused(tmp_path: Path) -> None:
    target = tmp_path / "elsewhere.json"
    target.write_bytes(b"{}")
    target.chmod(0o600)
    link = tmp_path / "cache.json"
    link.symlink_to(target)
    with pytest.raises(KeyProviderError):
        read_own_private(link)


@pytest.mark.skipif(os.geteuid() != 0, reason="needs root to make a file another user's")
def test_another_users_file_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "cache.json"
    path.write_bytes(b"{}")
    path.chmod(0o600)
    os.chown(path, OTHER_UID, os.getegid())
    with pytest.raises(KeyProviderError, match=f"owner uid {OTHER_UID}"):
        read_own_private(path)
