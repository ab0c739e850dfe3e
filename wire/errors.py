"""The contract's errors, and the root of posd's and the cloud consumer's errors.

`posd.errors.PosdError` and `cloud.errors.ConsumerError` derive from `WireError`, so a
`code` and an `exit_code` mean the same everywhere. The two errors that cross the wire are
defined here once: a record whose envelope cannot be opened (`EnvelopeError`) and a data key
that cannot be had or unwrapped (`KeyUnavailable`; the terminal's `KeyProviderError` is one).
Messages never carry card data or secrets.
"""

from __future__ import annotations


class WireError(Exception):
    """Base of every error posd and the consumer raise on purpose; `code` is stable end to end.

    (`drivers` and `sync` keep roots of their own, `DriverError` and `SyncError`: the daemon
    maps them at its boundary.)"""

    exit_code = 2
    code = "wire_error"


class EnvelopeError(WireError):
    """A record's envelope cannot be opened: wrong key, wrong context, or tampered bytes."""

    code = "envelope_invalid"


class IdentityNotBound(EnvelopeError):
    """A record whose data key does not bind the identity it claims: its KMS encryption
    context names another store or terminal, or KMS refuses to unwrap it under the claimed
    one. A terminal filing as another terminal, or a forgery: never worth a retry."""

    code = "identity_not_bound"


class KeyUnavailable(WireError):
    """No data key can be had or unwrapped: KMS unreachable or refusing, a bad key file.

    Worth a retry, unlike an `EnvelopeError`: the record itself may be fine."""

    code = "key_unavailable"


class MalformedMessage(WireError):
    """A message that is not a posd event at all: it can never be processed (poison).

    The consumer reports it as a batch item failure, so SQS's redrive policy moves it to the
    DLQ after `maxReceiveCount` receives instead of it blocking the batch or being dropped
    unseen."""

    code = "malformed_message"
