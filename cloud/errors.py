"""The consumer's errors, in posd's one hierarchy (`posd.errors.PosdError`)."""

from __future__ import annotations

from posd.errors import PosdError


class ConsumerError(PosdError):
    """Base of what the cloud consumer raises on purpose."""

    code = "consumer_error"


class MalformedMessage(ConsumerError):
    """A queue message that is not a posd event at all: it can never be processed (poison).

    It is reported as a batch item failure, so SQS's redrive policy moves it to the DLQ after
    `maxReceiveCount` receives instead of it blocking the batch or being dropped unseen."""

    code = "malformed_message"


class ConsumerConfigError(ConsumerError):
    """The function's environment lacks a setting (a table name, the alarm bus)."""

    code = "consumer_config"
