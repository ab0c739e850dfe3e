"""What `posd run`'s exit status tells systemd: try again, or wait for a technician.

`systemd/posd.service` has `Restart=on-failure` and `RestartPreventExitStatus=2`. Exit 2 is
kept for refusals no restart can cure: a bad config, a journal refused for its identity
(emptied, replaced, its tail lost: `posd journal reset --accept-loss` is a human decision),
state files this user may not use (another user's: a chown, then a start) or written by a
newer posd. Restarting those would only loop. Any other failure to start (the
journal cannot be opened right now, the disk is not there yet) exits 1 and is restarted.
"""

from __future__ import annotations

from posd.errors import ConfigError, PosdError, SchemaError
from posd.journal.identity import JournalIdentityError
from posd.journal.permissions import JournalPermissionError

NEEDS_TECHNICIAN = 2
RESTART = 1
TECHNICIAN_ERRORS: tuple[type[PosdError], ...] = (
    ConfigError,
    JournalIdentityError,
    JournalPermissionError,
    SchemaError,
)


class StartupFailed(PosdError):
    """A failure to start that a restart may cure."""

    exit_code = RESTART
    code = "startup_failed"


def for_systemd(error: PosdError) -> PosdError:
    """The error to exit with: technician errors as they are (exit 2), others exit 1."""
    if isinstance(error, TECHNICIAN_ERRORS):
        return error
    failed = StartupFailed(str(error))
    failed.code = error.code
    return failed
