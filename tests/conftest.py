"""Shared fixtures: a real moto server over HTTP on loopback, boto3 clients for it, and a
journal with keys in a temporary state dir. And the test tiers: which tests are `system`."""

from __future__ import annotations

import logging
import sqlite3
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import structlog

from demo.localaws.emulator import LocalAws
from posd.journal import Journal
from posd.journal.files import DELIVERY_FILE
from posd.keys.local import LocalKeySource
from posd.keys.provider import RotatingKeyProvider
from posd.recorder import Recorder
from tests.cards import STORE_ID, TERMINAL_ID

# The system tier: whole-system tests (daemon processes, SIGKILL, network namespaces, the chaos
# soak, benchmarks, the demo end to end, delivery flows through the real engine or the cloud
# consumer against the emulator). `make unit` (-m "not system") leaves them out to stay a fast
# tier; `make test` runs them too. Named here, in one place: by module (relative to tests/), by
# test, or by a fixture that starts such a flow, wherever the test lives.
SYSTEM_MODULES = frozenset(
    {
        "chaos/test_chaos.py",
        "rehearsal/test_rehearsal.py",
        "bench/test_cloud_consumer.py",
        "posd/daemon/test_api_daemon.py",
        "posd/daemon/test_checkpoints_daemon.py",
        "posd/daemon/test_damaged_journal.py",
        "posd/daemon/test_fuzz_api.py",
        "posd/daemon/test_front_daemon.py",
        "posd/daemon/test_host_security.py",
        "posd/daemon/test_lifecycle.py",
        "posd/daemon/test_vpn_outage.py",
        "posd/doctor/test_delivery.py",
        "sync/test_crash.py",
        "sync/test_v2_demo.py",
        "bench/test_capture_api.py",
        "bench/test_api_front.py",
        "bench/test_drain.py",
        "bench/test_fleet.py",
        "posd/journal/test_crash.py",
        "posd/daemon/test_p2pe_daemon.py",
        "demo/test_demo_readers.py",
    }
)
SYSTEM_TESTS = frozenset(
    {
        "sync/test_v2_exactly_once.py::test_sigkill_mid_drain_then_restart_exactly_once",
        "posd/journal/test_checkpoints.py::test_ranges_stay_contiguous_across_sigkills",
        "posd/cli/test_journal_cmd.py::test_demo_reads_back_every_payment",
    }
)
SYSTEM_FIXTURES = frozenset(
    {
        "make_daemon",  # tests/posd/daemon: `posd run` subprocesses
        "shared_daemon",
        "make_engine",  # tests/sync: the engine draining a journal to moto or the v2 endpoint
        "make_v2_engine",
        "config_file",  # tests/sync: `posd sync|journal` subprocesses against moto
        "rig",  # tests/cloud: terminal to bus to queue to the consumer's tables
        "delivered",
    }
)
TESTS_DIR = Path(__file__).resolve().parent


def is_system(item: pytest.Item) -> bool:
    if not item.path.is_relative_to(TESTS_DIR):
        return False
    module = item.path.relative_to(TESTS_DIR).as_posix()
    test = f"{module}::{item.name.split('[')[0]}"
    fixtures = set(getattr(item, "fixturenames", ()))
    return module in SYSTEM_MODULES or test in SYSTEM_TESTS or bool(fixtures & SYSTEM_FIXTURES)


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if is_system(item):
            item.add_marker(pytest.mark.system)


@pytest.fixture(scope="session")
def local_aws() -> Iterator[LocalAws]:
    """One moto server for the whole session; tests create their own keys, buses and queues."""
    with LocalAws() as aws:
        yield aws


@pytest.fixture(scope="session")
def aws_endpoint(local_aws: LocalAws) -> str:
    return local_aws.endpoint_url


@pytest.fixture
def kms_client(local_aws: LocalAws) -> Any:
    return local_aws.client("kms")


@pytest.fixture
def events_client(local_aws: LocalAws) -> Any:
    return local_aws.client("events")


@pytest.fixture
def sqs_client(local_aws: LocalAws) -> Any:
    return local_aws.client("sqs")


@pytest.fixture
def state_dir(tmp_path: Path) -> Path:
    return tmp_path / "state"


@pytest.fixture
def local_key_provider(tmp_path: Path) -> Iterator[RotatingKeyProvider]:
    """Keys from a local key file (development provider): fast, no network."""
    source = LocalKeySource(tmp_path / "kek.b64", create=True)
    with RotatingKeyProvider(source, source, rotate_after_records=5) as provider:
        yield provider


@pytest.fixture
def journal(state_dir: Path) -> Iterator[Journal]:
    with Journal.open(state_dir) as opened:
        yield opened


@pytest.fixture
def recorder(journal: Journal, local_key_provider: RotatingKeyProvider) -> Recorder:
    return Recorder(journal, local_key_provider, STORE_ID, TERMINAL_ID)


@pytest.fixture
def kms_key_arn(kms_client: Any) -> str:
    """A fresh symmetric KMS key in the emulator."""
    return str(kms_client.create_key(Description="posd test")["KeyMetadata"]["Arn"])


def query_file(journal: Journal, sql: str, *args: object) -> list[tuple[Any, ...]]:
    """Rows of `sql` read from the journal's file through a connection of its own, as an
    operator with the sqlite3 shell would: tests look at the file, not the object's insides.
    Delivery's database (`posd.journal.outcomes`) is attached as `delivery`."""
    conn = sqlite3.connect(journal.path, isolation_level=None)
    conn.execute("ATTACH DATABASE ? AS delivery", (str(journal.path.with_name(DELIVERY_FILE)),))
    try:
        return [tuple(row) for row in conn.execute(sql, args).fetchall()]
    finally:
        conn.close()


@pytest.fixture(autouse=True)
def restore_logging() -> Iterator[None]:
    """Put logging back as it was after every test: the CLI's `main()` configures structlog
    and stdlib logging for the whole process, and a test that runs it must not change what
    later tests capture (a filtering level left behind hid info logs from `capture_logs`)."""
    root = logging.getLogger()
    handlers, level = root.handlers[:], root.level
    yield
    structlog.reset_defaults()
    root.handlers[:], root.level = handlers, level


@pytest.fixture
def fake_secure_msr(monkeypatch: pytest.MonkeyPatch) -> None:
    """`simulated-secure-msr` is the stand-in reader for this test: the tests that need a
    reader reporting a chosen KSN counter use (`counter_used`) before any read."""
    from drivers import registry
    from drivers.registry import CARD_READER
    from tests.fake_secure_reader import STAND_IN

    monkeypatch.setitem(registry._TABLE, (CARD_READER, "simulated-secure-msr"), STAND_IN)
