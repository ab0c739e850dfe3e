"""One payment at a time per lane, and what a retry of the payment in hand gets.

A request either replays a payment the journal already holds, joins the attempt still in hand
for the same `client_ref` (it gets that attempt's result), owns a new attempt, or is refused
(`lane_busy`, `idempotency_mismatch`, `shutting_down`). The attempt leaves the lane only after
its record is durable, so "not in hand and not in the journal" always means "never captured".
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass, field

from posd.api_answers import PaymentAnswer
from posd.daemon.refusals import (
    IDEMPOTENCY_MISMATCH,
    IN_PROGRESS,
    LANE_BUSY,
    SHUTTING_DOWN,
    refuse,
)
from posd.daemon.requests import PaymentRequest
from posd.errors import Refusal

# A joining retry waits for the attempt's own timeout plus this (journaling, device stop).
JOIN_GRACE_S = 10.0
# Retries waiting on one attempt at once; more are told `in_progress` at once. Each waiting
# retry holds one of the API's payment threads (posd/daemon/front.py), which the lane's
# other requests need too.
MAX_JOINERS = 2


@dataclass
class Attempt:
    request: PaymentRequest
    done: threading.Event = field(default_factory=threading.Event)
    answer: PaymentAnswer | None = None
    refusal: Refusal | None = None
    cancel_requested: bool = False
    joiners: int = 0

    def settle(self, answer: PaymentAnswer | None, refusal: Refusal | None) -> None:
        self.answer, self.refusal = answer, refusal
        self.done.set()

    def result(self, wait_s: float) -> PaymentAnswer:
        """The attempt's answer (raising its refusal), waiting up to `wait_s` for it."""
        if not self.done.wait(wait_s):
            raise still_waiting()
        if self.refusal is not None:
            raise self.refusal
        assert self.answer is not None
        return self.answer


@dataclass(frozen=True)
class Replay:
    answer: PaymentAnswer


@dataclass(frozen=True)
class Join:
    attempt: Attempt


@dataclass(frozen=True)
class Own:
    attempt: Attempt


def still_waiting() -> Refusal:
    return refuse(IN_PROGRESS, "the first attempt of this payment is still waiting")


def mismatch() -> Refusal:
    return refuse(
        IDEMPOTENCY_MISMATCH, "this client_ref was used for a different payment (body differs)"
    )


class Lane:
    def __init__(self) -> None:
        self._cond = threading.Condition()
        self._current: Attempt | None = None
        self._closed = False

    def enter(
        self,
        request: PaymentRequest,
        journaled: Callable[[str], tuple[PaymentAnswer, tuple[object, object, object]] | None],
    ) -> Replay | Join | Own:
        """Where `request` goes. `journaled(client_ref)` gives the first answer and its
        (amount, currency, method) when the journal holds the payment."""
        with self._cond:
            current = self._current
            if current is not None and current.request.client_ref == request.client_ref:
                if not request.same_payment(
                    current.request.amount_minor, current.request.currency, current.request.method
                ):
                    raise mismatch()
                if current.joiners >= MAX_JOINERS:
                    raise still_waiting()
                current.joiners += 1
                return Join(current)
            found = journaled(request.client_ref)
            if found is not None:
                answer, (amount, currency, method) = found
                if not request.same_payment(amount, currency, method):
                    raise mismatch()
                return Replay(answer)
            if self._closed:
                raise refuse(SHUTTING_DOWN, "the terminal is shutting down")
            if current is not None:
                raise refuse(LANE_BUSY, "another payment is in progress on this lane")
            self._current = Attempt(request)
            return Own(self._current)

    def unjoin(self, attempt: Attempt) -> None:
        """A retry that joined `attempt` has its answer."""
        with self._cond:
            attempt.joiners -= 1

    def leave(self, attempt: Attempt) -> None:
        with self._cond:
            if self._current is attempt:
                self._current = None
                self._cond.notify_all()

    def current(self) -> Attempt | None:
        with self._cond:
            return self._current

    @property
    def busy(self) -> bool:
        return self.current() is not None

    def close(self) -> None:
        """Refuse new payments from now on (the one in hand goes on)."""
        with self._cond:
            self._closed = True

    @property
    def closed(self) -> bool:
        with self._cond:
            return self._closed

    def wait_idle(self, timeout: float) -> bool:
        with self._cond:
            return self._cond.wait_for(lambda: self._current is None, timeout)
