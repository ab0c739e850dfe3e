"""The register: payments at a steady rate, the same `client_ref` again whenever no answer came.

"No answer" is what a register sees when the daemon dies under it: the socket refused or
missing, the connection closed before a response, a timeout. It then retries the very same
request (same `client_ref`, amount, currency and method) until an answer arrives; an answer,
201 or a refusal, ends the attempt, and the next payment gets a new `client_ref`. Every
answer is kept (the soak scans them for card numbers and checks idempotency on them).
"""

from __future__ import annotations

import http.client
import json
import random
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from demo.client import UnixConnection

PAYMENT_INTERVAL_S = 0.2  # the steady rate: one payment started every 0.2 s at most
RETRY_PAUSE_S = 0.2
HTTP_TIMEOUT_S = 30.0
READ_TIMEOUT_S = 5  # the card is presented at once; palm scans take 10 ms
VOID_EVERY = 25  # one acknowledged payment in 25 is voided
METHODS = ("card", "palm", "card+palm")
METHOD_WEIGHTS = (0.7, 0.15, 0.15)
CURRENCIES = ("EUR", "USD")
NO_ANSWER = (OSError, http.client.HTTPException)


@dataclass(frozen=True)
class Exchange:
    """One request and its answer (status 0: none came)."""

    client_ref: str
    path: str
    sent_at: float
    answered_at: float
    status: int
    body: Any
    raw: str


@dataclass
class RegisterLog:
    exchanges: list[Exchange] = field(default_factory=list)
    acknowledged: dict[str, dict[str, Any]] = field(default_factory=dict)  # client_ref -> 201
    voids: dict[str, dict[str, Any]] = field(default_factory=dict)  # client_ref -> void answer
    refusals: dict[str, int] = field(default_factory=dict)  # error code -> count
    resends: int = 0
    payments: int = 0
    mismatches: list[str] = field(default_factory=list)  # the same client_ref, another answer


def exchange(
    sock: Path, method: str, path: str, body: Any, timeout: float = HTTP_TIMEOUT_S
) -> tuple[int, Any, str]:
    """One HTTP exchange; raises one of NO_ANSWER when no answer came back."""
    conn = UnixConnection(sock, timeout=timeout)
    try:
        payload = None if body is None else json.dumps(body).encode()
        headers = {"Content-Type": "application/json"} if payload is not None else {}
        conn.request(method, path, body=payload, headers=headers)
        response = conn.getresponse()
        raw = response.read().decode(errors="replace")
        parsed = json.loads(raw) if raw.startswith("{") else raw
        return response.status, parsed, raw
    finally:
        conn.close()


class Register(threading.Thread):
    def __init__(self, sock: Path, seed: int) -> None:
        super().__init__(name="register", daemon=True)
        self.sock = sock
        self.log = RegisterLog()
        self._rng = random.Random(seed)
        self._halt = threading.Event()
        self._lock = threading.Lock()

    def stop(self) -> None:
        """Finish the payment in hand (until it is answered), then stop."""
        self._halt.set()

    def run(self) -> None:
        index = 0
        while not self._halt.is_set():
            started = time.monotonic()
            index += 1
            self._pay(index)
            time.sleep(max(0.0, PAYMENT_INTERVAL_S - (time.monotonic() - started)))

    # -- one payment -------------------------------------------------------------------------

    def _pay(self, index: int) -> None:
        ref = f"chaos-{index:06d}"
        body = {
            "client_ref": ref,
            "amount_minor": self._rng.randint(100, 20_000),
            "currency": self._rng.choice(CURRENCIES),
            "method": self._rng.choices(METHODS, METHOD_WEIGHTS)[0],
            "timeout_s": READ_TIMEOUT_S,
        }
        self.log.payments += 1
        status, answer = self._until_answered(ref, "POST", "/v1/payments", body)
        if status == 201:
            self._acknowledge(ref, answer)
            if len(self.log.acknowledged) % VOID_EVERY == 0:
                void_status, void = self._until_answered(
                    ref, "POST", f"/v1/payments/{ref}/void", None
                )
                if void_status in (200, 201):
                    self.log.voids[ref] = void
        elif isinstance(answer, dict):
            code = str(answer.get("error"))
            self.log.refusals[code] = self.log.refusals.get(code, 0) + 1

    def _acknowledge(self, ref: str, answer: dict[str, Any]) -> None:
        first = self.log.acknowledged.setdefault(ref, answer)
        if first["event_id"] != answer["event_id"]:
            self.log.mismatches.append(ref)

    def _until_answered(self, ref: str, method: str, path: str, body: Any) -> tuple[int, Any]:
        while True:
            sent = time.monotonic()
            try:
                status, answer, raw = exchange(self.sock, method, path, body)
            except NO_ANSWER:
                self._record(Exchange(ref, path, sent, time.monotonic(), 0, None, ""))
                self.log.resends += 1
                time.sleep(RETRY_PAUSE_S)
                continue
            self._record(Exchange(ref, path, sent, time.monotonic(), status, answer, raw))
            return status, answer

    def _record(self, item: Exchange) -> None:
        with self._lock:
            self.log.exchanges.append(item)
