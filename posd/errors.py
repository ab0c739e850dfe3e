"""One exception hierarchy for the daemon.

Every error a user can cause (bad config, bad input, a full journal) is a `PosdError` with a
message that is safe to print: no card data, no secrets. The CLI prints `str(error)` and exits
with `error.exit_code`; it never shows a traceback for these.

The hierarchy is rooted in the contract's (`wire.errors.WireError`). A bad envelope is the
contract's `wire.errors.EnvelopeError`, one class for the terminal and the cloud;
`KeyProviderError` is both a `PosdError` and the contract's `KeyUnavailable`, so the daemon's
`except KeyProviderError` and a consumer's `except KeyUnavailable` each keep catching it.
"""

from __future__ import annotations

from wire.errors import KeyUnavailable, WireError


class PosdError(WireError):
    """Base of every error posd raises on purpose."""

    exit_code = 2
    code = "posd_error"


class ConfigError(PosdError):
    """The configuration file is missing, unreadable or invalid."""

    code = "config_invalid"

    def __init__(self, path: str, key: str, expected: str) -> None:
        self.path = path
        self.key = key
        self.expected = expected
        where = f"{path}: {key}" if key else path
        super().__init__(f"{where}: {expected}")


class UsageError(PosdError):
    """A command was given input it cannot use."""

    code = "bad_input"


class JournalError(PosdError):
    """The journal cannot be opened or written."""

    code = "journal_error"


class JournalFullError(JournalError):
    """The journal reached its size cap or the disk its reserve: new records are refused."""

    code = "journal_full"


class DiskBelowReserveError(JournalFullError):
    """The disk's free space fell under `[journal] min_free_bytes`: the journal may be small,
    the disk is what is full (another fix than purging delivered records)."""

    code = "disk_below_reserve"


class SchemaError(JournalError):
    """The journal file has a schema this version does not understand."""

    code = "journal_schema"


class KeyProviderError(PosdError, KeyUnavailable):
    """No data key can be had: KMS unreachable with no offline fallback, or a bad key file."""

    code = "key_unavailable"


class DeviceCommandError(PosdError):
    """A device could not be opened or failed its round trip (exit 3: the device, not the input)."""

    exit_code = 3
    code = "device_error"


class Refusal(PosdError):
    """A request the daemon's API refuses: a stable `code`, its HTTP status, a safe message.

    `fields` names each invalid field of a `validation_error` with what was expected.
    """

    def __init__(
        self, code: str, message: str, status: int, fields: dict[str, str] | None = None
    ) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.status = status
        self.fields = fields or {}
