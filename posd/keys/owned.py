"""Read a file only this process's user may have written: a key cache in the shared state dir.

The state dir is shared by two users in one group (capture `posd`, delivery `posd-sync`,
0770): either may rename a file of its own over another's name there. A file capture trusts
for wrapping data keys (the offline KMS public key) must therefore be its own, private, and
not a symlink, or delivery could swap in a key it holds and decrypt what capture seals.
"""

from __future__ import annotations

import os
import stat
from pathlib import Path

from posd.errors import KeyProviderError

GROUP_OTHER_BITS = 0o077
READ_BYTES = 1 << 20


def read_own_private(path: Path) -> bytes:
    """The bytes of `path` if it is a regular file owned by this user with no group or other
    permissions; `KeyProviderError` naming the owner and mode otherwise (FileNotFoundError
    for no file at all: the caller says what that means)."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC)
    except FileNotFoundError:
        raise
    except OSError as error:
        raise KeyProviderError(f"cannot read {path}: {error.strerror}") from error
    try:
        info = os.fstat(fd)
        mode = stat.S_IMODE(info.st_mode)
        if not stat.S_ISREG(info.st_mode) or info.st_uid != os.geteuid() or mode & GROUP_OTHER_BITS:
            raise KeyProviderError(
                f"{path} is not this user's private file (owner uid {info.st_uid}, mode "
                f"{mode:04o}): another user could have put it there; it is not used (delete "
                "it: it is fetched again from KMS the next time the terminal is online)"
            )
        return os.read(fd, READ_BYTES)
    finally:
        os.close(fd)
