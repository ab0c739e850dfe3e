"""The consumer's errors, in the project's one hierarchy (rooted in `wire.errors.WireError`).

A message that is not a posd event at all is the contract's `wire.errors.MalformedMessage`.
"""

from __future__ import annotations

from wire.errors import WireError


class ConsumerError(WireError):
    """Base of what the cloud consumer raises on purpose."""

    code = "consumer_error"


class ConsumerConfigError(ConsumerError):
    """The function's environment lacks a setting (a table name, the alarm bus)."""

    code = "consumer_config"
