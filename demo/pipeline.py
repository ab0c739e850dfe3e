"""The demo (`python -m demo`): the main job end to end, through the daemon, on embedded
defaults.

Starts a local AWS emulator (moto over HTTP), creates the terminal's KMS keys and an event
bus routed to an SQS queue, runs `posd run` as a child process with the simulated card reader
and palm scanner, and plays the register: N payments over the daemon's Unix socket (card, palm
and card+palm; some retried with the same `client_ref`, a few voided, some refused by the
offline limit per payment). It asks the daemon to flush, stops it with SIGTERM, then plays the
backend with the cloud side's reference consumer (`demo.consumer`): the queue's messages
go to its handler, which dedupes by `event_id` in DynamoDB, unwraps each data key with
kms:Decrypt, decrypts and files each payment; the figures come from its tables, each payment
checked against what the daemon answered. Nothing is mocked; the cards are the brands' public
test cards of the simulator's deck.

`reader` picks the simulated card reader (`demo.readers`): with `secure-msr` the lane runs in
P2PE mode and, before the daemon stops, its memory is scanned for every deck card number, then
its journal and log (`demo.pan_scan`): `clear_pans` must be all zeros.

With `sync_api="v2"` the daemon delivers through EventBridge v2 to the local v2 endpoint
(demo/localaws/eventbridge_v2.py), which forwards to the same queue in the same envelope; the
queue must then hold no duplicates at all (`duplicates: 0`), before the consumer's dedupe.
"""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import posd
from demo.backend import route_bus_to_queue
from demo.consumer import consume
from demo.devconfig import DevConfig, Table, identity_files, simulated_palm
from demo.localaws.emulator import EMULATOR_CREDENTIALS, EMULATOR_REGION, LocalAws
from demo.localaws.eventbridge_v2 import EventBridgeV2Endpoint, route_v2_bus_to_queue
from demo.localaws.payment_crypto import PaymentCryptographyEndpoint
from demo.pan_scan import scan_files, scan_process
from demo.pki import LocalCa, TerminalCredentials
from demo.readers import (
    DEFAULT_READER,
    SECURE_MSR,
    ReaderSetup,
    reader_setup,
    write_secure_swipes,
)
from drivers.card.deck import TEST_PANS
from drivers.palm.identity import PalmCredential
from posd.api_client import PAYMENT_ANSWER_TIMEOUT_S, DaemonClient
from posd.capture import CARD_PAYMENT
from posd.errors import PosdError
from posd.journal import Journal
from posd.syncd.status_file import read_report

READY_TIMEOUT_SECONDS = 20.0
FLUSH_TIMEOUT_SECONDS = 120.0
RECEIVE_TIMEOUT_SECONDS = 120.0
STOP_TIMEOUT_SECONDS = 25.0
CURRENCIES = ("EUR", "USD", "GBP")
DEMO_STORE_ID = "store-demo"
DEMO_TERMINAL_ID = "lane-01"
PALM_EVERY = 5  # one payment in five by palm
EITHER_EVERY = 7  # one in seven offers card or palm (the first presented wins)
RETRY_EVERY = 10  # one in ten is sent twice with the same client_ref
VOID_EVERY = 25  # one in twenty-five is voided
MAX_PAYMENT_AMOUNT = 20_000  # the offline limit per payment
OVER_LIMIT_EVERY = 9  # one in nine asks for more than that, and is refused
MIN_AMOUNT = 100
PALM_CREDENTIAL = "tok-demo-shopper-0001"
READ_TIMEOUT_S = 10
SYNC_APIS = ("v1", "v2")
# One line as each phase begins (`run_demo(phase=...)`): the demo takes seconds to minutes.
PHASE_EMULATOR = "starting the local AWS emulator (KMS, EventBridge, SQS, DynamoDB)"
PHASE_DAEMON = "starting the daemons: posd run (capture), posd sync run (delivery)"
PHASE_PAYING = "paying {payments} payments through the daemon's API, as a register would"
PHASE_FLUSHING = "flushing: posd sync run delivers the journal, then both stop on SIGTERM"
PHASE_CONSUMING = "consuming: the cloud's consumer decrypts each payment, checks its answer"
PHASE_VERIFYING = "verifying the journal: structure, hash chain and ciphertexts"
PHASE_SCANNING = "P2PE: scanning the daemon's memory, journal and log for clear card numbers"
DEMO_BUS = "posd-demo"
DECK_PANS = tuple(pan for _, pan in TEST_PANS)
DEMO_SOURCE = "posd.demo"


class DemoError(PosdError):
    code = "demo_failed"


@dataclass(frozen=True)
class DemoResult:
    payments: int
    by_kind: dict[str, int]
    captured: int
    refused: int
    voids: int
    delivered: int
    received: int
    duplicates: int
    decrypted: int
    lost: int
    verify_ok: bool
    daemon_exit_code: int | None
    delivery_exit_code: int | None  # `posd sync run`'s on SIGTERM
    seconds: float
    key_sources: dict[str, int]
    ranges: dict[str, int]  # the lane's checkpoints, by the consumer's verdict
    proven_through: int  # the proven watermark: every seq up to it proven by signed ranges
    last_seq: int  # the journal's last seq
    alarms: dict[str, int]  # raised by the consumer or the terminal, by name
    state_dir: str | None
    sync_api: str
    reader: str = DEFAULT_READER
    # P2PE runs only: deck card numbers found in clear in each place (all must be 0)
    clear_pans: dict[str, int] | None = None
    # AWS Payment Cryptography (the stand-in) calls by operation: P2PE reads open only there
    p2pe_calls: dict[str, int] = field(default_factory=dict)
    # P2PE runs only: card payments the cloud filed with a masked PAN and re-encrypted tracks
    p2pe_filed: int | None = None

    @property
    def no_clear_pans(self) -> bool:
        """No deck PAN in clear anywhere, and (P2PE) every card payment filed masked."""
        if self.clear_pans is None:
            return True
        card_payments = self.by_kind.get(CARD_PAYMENT, 0)
        return not any(self.clear_pans.values()) and self.p2pe_filed == card_payments

    @property
    def all_proven(self) -> bool:
        """Every range complete and the watermark at the journal's last seq, no alarm."""
        complete = set(self.ranges) <= {"complete"}
        return complete and self.proven_through == self.last_seq and not self.alarms

    def as_dict(self) -> dict[str, Any]:
        return dict(self.__dict__)


def v2_sync_keys(event_bus_arn: str, endpoint_url: str) -> tuple[Table, Table]:
    """The `[aws]` and `[sync]` keys that switch the demo's daemon to EventBridge v2, with
    requests up to the v2 limits (100 entries, 1 MiB)."""
    return (
        {"events_endpoint_url": endpoint_url},
        {
            "api": "v2",
            "event_bus_arn": event_bus_arn,
            "max_entries_per_request": 100,
            "max_request_bytes": 1048576,
        },
    )


def demo_config(
    directory: Path,
    state_dir: Path,
    endpoint_url: str,
    kms_key_id: str,
    offline_key_id: str,
    credentials: TerminalCredentials,
    extra: tuple[Table, Table] = ({}, {}),
    reader: ReaderSetup | None = None,
) -> Path:
    """The daemon's config, signing with `credentials` (written: `[identity]`); `extra` adds
    keys to `[aws]` and `[sync]` (`v2_sync_keys`); `reader` is the card reader and the
    `[payments]` keys it needs (default: the serial reader's simulator)."""
    setup = reader or reader_setup(DEFAULT_READER)
    aws_extra, sync_extra = extra
    assert credentials.certificate_file is not None
    assert credentials.private_key_file is not None
    return DevConfig(
        store_id=DEMO_STORE_ID,
        terminal_id=DEMO_TERMINAL_ID,
        mode="production",
        state_dir=state_dir,
        api={"socket": directory / "api.sock", "socket_group": ""},
        aws={"region": EMULATOR_REGION, "endpoint_url": endpoint_url, **aws_extra},
        keys={
            "provider": "kms",
            "kms_key_id": kms_key_id,
            "offline_key_id": offline_key_id,
            "rotate_after_records": 250,
        },
        sync={"event_bus_name": DEMO_BUS, "source": DEMO_SOURCE, **sync_extra},
        offline={"max_payment_amount": MAX_PAYMENT_AMOUNT},
        payments={"currencies": list(CURRENCIES), **setup.payments},
        identity=identity_files(credentials.certificate_file, credentials.private_key_file),
        devices={
            "card_reader": setup.card_reader,
            "palm_scanner": simulated_palm(
                {"demo-shopper": PALM_CREDENTIAL}, present="demo-shopper", scan_time_s=0.0
            ),
        },
    ).write(directory / "posd-demo.toml")


def start_daemon(
    config: Path, log_file: Path, command: tuple[str, ...] = ("run",)
) -> subprocess.Popen[bytes]:
    """`posd COMMAND` (`run`: capture; `sync run`: delivery) as a child, importing this very
    posd (also from a source checkout)."""
    source_root = str(Path(posd.__file__).resolve().parents[1])
    env = {**os.environ, **{name.upper(): value for name, value in EMULATOR_CREDENTIALS.items()}}
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [source_root, env.get("PYTHONPATH")]))
    with log_file.open("wb") as log:
        return subprocess.Popen(
            [sys.executable, "-m", "posd", *command, "--config", str(config)],
            env=env,
            stdout=log,
            stderr=log,
        )


def wait_until_serving(sock: Path, daemon: subprocess.Popen[bytes]) -> None:
    deadline = time.monotonic() + READY_TIMEOUT_SECONDS
    while time.monotonic() < deadline:
        if daemon.poll() is not None:
            raise DemoError(f"posd run exited with {daemon.returncode} before serving")
        try:
            if DaemonClient(sock).exchange("GET", "/v1/status").status == 200:
                return
        except OSError:
            pass
        time.sleep(0.05)
    raise DemoError(f"posd run did not serve its API within {READY_TIMEOUT_SECONDS:g} s")


def wait_until_delivering(state_dir: Path, delivery: subprocess.Popen[bytes]) -> None:
    """Until `posd sync run` has said it runs (its status file: `posd.syncd.status_file`)."""
    deadline = time.monotonic() + READY_TIMEOUT_SECONDS
    while time.monotonic() < deadline:
        if delivery.poll() is not None:
            raise DemoError(f"posd sync run exited with {delivery.returncode} before delivering")
        report = read_report(state_dir)
        if report is not None and report.pid == delivery.pid and report.fresh(time.time()):
            return
        time.sleep(0.05)
    raise DemoError(f"posd sync run did not start within {READY_TIMEOUT_SECONDS:g} s")


def stop(process: subprocess.Popen[bytes]) -> int | None:
    """SIGTERM and the exit status (None: killed after `STOP_TIMEOUT_SECONDS`)."""
    process.send_signal(signal.SIGTERM)
    try:
        return process.wait(STOP_TIMEOUT_SECONDS)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()
        return None


def method_of(index: int) -> str:
    if index % EITHER_EVERY == EITHER_EVERY - 1:
        return "card+palm"
    return "palm" if index % PALM_EVERY == PALM_EVERY - 1 else "card"


def amount_of(rng: random.Random, index: int) -> int:
    if index % OVER_LIMIT_EVERY == OVER_LIMIT_EVERY - 1:
        return MAX_PAYMENT_AMOUNT + rng.randint(1, MAX_PAYMENT_AMOUNT)
    return rng.randint(MIN_AMOUNT, MAX_PAYMENT_AMOUNT)


@dataclass
class Register:
    """The register's side: what it sent and what the daemon answered."""

    sock: Path
    answers: dict[str, dict[str, Any]]  # event_id -> answer (captures and voids)
    refused: int = 0
    voids: int = 0

    def pay(self, rng: random.Random, index: int) -> None:
        body = {
            "client_ref": f"demo-{index}",
            "amount_minor": amount_of(rng, index),
            "currency": rng.choice(CURRENCIES),
            "method": method_of(index),
            "timeout_s": READ_TIMEOUT_S,
        }
        api = DaemonClient(self.sock, PAYMENT_ANSWER_TIMEOUT_S)
        reply = api.exchange("POST", "/v1/payments", body)
        answer = reply.body
        if reply.status != 201:
            if answer.get("error") != "offline_amount_limit":
                raise DemoError(f"payment {index} refused: {answer.get('error')}")
            self.refused += 1
            return
        self.answers[answer["event_id"]] = answer
        if index % RETRY_EVERY == 0 and api.exchange("POST", "/v1/payments", body).body != answer:
            raise DemoError(f"the retry of payment {index} got another answer")
        if index % VOID_EVERY == VOID_EVERY - 1:
            voided = api.exchange("POST", f"/v1/payments/{body['client_ref']}/void")
            void = voided.body
            if voided.status != 201:
                raise DemoError(f"the void of payment {index} was refused: {void.get('error')}")
            self.answers[void["event_id"]] = void
            self.voids += 1


def matches(answer: Mapping[str, Any], payment: Mapping[str, Any]) -> bool:
    """Whether a payment the consumer decrypted and filed (masked) is what the daemon said it
    captured."""
    if answer["state"] == "voided":
        return "masked_pan" not in payment and "masked_credential" not in payment
    if answer["entry_mode"] == "palm":
        return payment.get("masked_credential") == PalmCredential(PALM_CREDENTIAL).masked()
    pan, masked = str(payment.get("masked_pan", "")), str(answer["masked_pan"])
    return pan[:6] == masked[:6] and pan[-4:] == masked[-4:]


def run_demo(
    payments: int,
    keep_state: Path | None = None,
    progress: Callable[[str, int, int], None] | None = None,
    sync_api: str = "v1",
    phase: Callable[[str], None] | None = None,
    reader: str = DEFAULT_READER,
) -> DemoResult:
    """Run `payments` through the daemon, deliver them (EventBridge `sync_api` v1 or v2),
    receive and decrypt them; `phase` hears one line as each phase begins; `reader` is the
    simulated card reader (`demo.readers`)."""
    reader_setup(reader)  # an unknown reader fails before anything starts
    if sync_api not in SYNC_APIS:
        raise DemoError(f"sync_api must be one of {', '.join(SYNC_APIS)}, got {sync_api!r}")
    announce = phase or (lambda line: None)
    started = time.perf_counter()
    for name, value in EMULATOR_CREDENTIALS.items():
        os.environ.setdefault(name.upper(), value)
    announce(PHASE_EMULATOR)
    with (
        tempfile.TemporaryDirectory(prefix="posd-demo-") as scratch,
        LocalAws() as aws,
        EventBridgeV2Endpoint() as v2,
        PaymentCryptographyEndpoint() as payment_crypto,
    ):
        work = Path(scratch)
        # one pre-encrypted swipe per payment at most (a refused one reads no card)
        swipes = write_secure_swipes(work, payments) if reader == SECURE_MSR else None
        setup = reader_setup(reader, swipes)
        # the chain's CA (Roles Anywhere's trust anchor): it issues the lane's certificate
        chain_ca = LocalCa()
        state_dir = keep_state if keep_state is not None else work / "state"
        kms, sqs = aws.client("kms"), aws.client("sqs")
        kms_key = kms.create_key(Description="posd demo journal key")["KeyMetadata"]["Arn"]
        offline_key = kms.create_key(
            Description="posd demo offline key", KeySpec="RSA_2048", KeyUsage="ENCRYPT_DECRYPT"
        )["KeyMetadata"]["Arn"]
        if sync_api == "v2":
            route, bus_arn = route_v2_bus_to_queue(v2, sqs, DEMO_BUS)
            extra = v2_sync_keys(bus_arn, v2.endpoint_url)
        else:
            route = route_bus_to_queue(aws.client("events"), sqs, DEMO_BUS, DEMO_SOURCE)
            extra = ({}, {})
        credentials = chain_ca.issue(DEMO_STORE_ID, DEMO_TERMINAL_ID).write(work / "pki")
        config = demo_config(
            work, state_dir, aws.endpoint_url, kms_key, offline_key, credentials, extra, setup
        )
        announce(PHASE_DAEMON)
        daemon = start_daemon(config, work / "daemon.log")
        delivery: subprocess.Popen[bytes] | None = None
        register = Register(work / "api.sock", {})
        clear_pans: dict[str, int] | None = None
        try:
            wait_until_serving(register.sock, daemon)
            delivery = start_daemon(config, work / "delivery.log", ("sync", "run"))
            wait_until_delivering(state_dir, delivery)
            announce(PHASE_PAYING.format(payments=payments))
            rng = random.Random()
            for index in range(payments):
                register.pay(rng, index)
                if progress:
                    progress("paying", index + 1, payments)
            announce(PHASE_FLUSHING)
            DaemonClient(register.sock).flush(FLUSH_TIMEOUT_SECONDS)
            if setup.p2pe:
                announce(PHASE_SCANNING)
                clear_pans = {
                    "memory": scan_process(daemon.pid, DECK_PANS)
                    + scan_process(delivery.pid, DECK_PANS)
                }
        finally:
            exit_code = stop(daemon)
            delivery_exit_code = None if delivery is None else stop(delivery)
        expected = len(register.answers)
        announce(PHASE_CONSUMING)
        consumed = consume(
            aws,
            route.queue_url,
            offline_key,
            register.answers,
            matches,
            RECEIVE_TIMEOUT_SECONDS,
            chain_ca.trust_anchor(),
            payment_crypto,
        )
        if progress:
            progress("receiving", consumed.received, expected)
        announce(PHASE_VERIFYING)
        with Journal.open(state_dir) as journal:
            delivered = journal.summary().delivered
            report = journal.verify()
            last_seq = max((record.seq for record in journal.records()), default=0)
        if clear_pans is not None:
            clear_pans = {
                "journal": scan_files(state_dir.iterdir(), DECK_PANS),
                "logs": scan_files([work / "daemon.log", work / "delivery.log"], DECK_PANS),
                **clear_pans,
            }
    captured = expected - register.voids
    return DemoResult(
        payments=payments,
        by_kind=consumed.by_kind,
        captured=captured,
        refused=register.refused,
        voids=register.voids,
        delivered=delivered,
        received=consumed.received,
        duplicates=consumed.duplicates,
        decrypted=len(consumed.matched),
        lost=expected - len(consumed.matched),
        verify_ok=report.ok,
        daemon_exit_code=exit_code,
        delivery_exit_code=delivery_exit_code,
        seconds=round(time.perf_counter() - started, 3),
        key_sources=consumed.key_sources,
        ranges=consumed.ranges,
        proven_through=consumed.proven_seq,
        last_seq=last_seq,
        alarms=consumed.alarms,
        state_dir=str(keep_state) if keep_state is not None else None,
        sync_api=sync_api,
        reader=reader,
        clear_pans=clear_pans,
        p2pe_calls=consumed.p2pe_calls,
        p2pe_filed=consumed.p2pe_filed if clear_pans is not None else None,
    )
