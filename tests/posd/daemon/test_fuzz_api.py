"""schemathesis against docs/openapi.yaml and the daemon's own app, in-process: every answer is
documented (status, content type, schema), no input gives a 500, and nothing already captured
is touched. The app is the real composition (`posd.daemon.compose`): journal, local keys, the
simulated card reader and palm scanner, delivery to moto."""

from __future__ import annotations

import sqlite3
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import falcon.testing
import pytest
import schemathesis
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from hypothesis.stateful import run_state_machine_as_test
from schemathesis.config import SchemathesisConfig

from demo.backend import route_bus_to_queue
from demo.devconfig import DevConfig, simulated_card_reader, simulated_palm
from demo.localaws.emulator import LocalAws
from posd.config import load_config
from posd.daemon.compose import DaemonParts, compose
from posd.daemon.runtime import Daemon
from posd.journal import JOURNAL_FILE
from tests.cards import DISCOVER_TEST_PAN, VISA_TEST_PAN
from tests.posd.daemon.harness import REPO

DOC = REPO / "docs" / "openapi.yaml"
EMULATOR_ENV = {
    "AWS_ACCESS_KEY_ID": "testing",
    "AWS_SECRET_ACCESS_KEY": "testing",
    "AWS_DEFAULT_REGION": "us-east-1",
}
EXAMPLES = 60  # per operation; the whole file stays within a minute
STATEFUL_STEPS = 20
KEPT_REF = "kept-before-fuzzing"
KEPT_COLUMNS = "seq, event_id, kind, client_ref, meta, data_key_id, nonce, ciphertext, chain"
FUZZ_SETTINGS = settings(
    max_examples=EXAMPLES,
    deadline=None,
    suppress_health_check=list(HealthCheck),
    derandomize=True,
)


def app_config(directory: Path, events_url: str, bus: str) -> Path:
    return DevConfig(
        store_id="store-fuzz",
        terminal_id="lane-fuzz",
        api={"socket": "api.sock", "socket_group": ""},
        aws={"region": "us-east-1", "events_endpoint_url": events_url},
        sync={
            "event_bus_name": bus,
            "source": "posd.fuzz",
            "idle_poll_seconds": 0.02,
            "backoff_base_seconds": 0.02,
        },
        devices={
            "card_reader": simulated_card_reader(),
            "palm_scanner": simulated_palm(
                {"shopper": "tok-fuzz-0001"}, present="shopper", scan_time_s=0.0
            ),
        },
    ).write(directory / "posd.toml")


def kept_row(state_dir: Path) -> tuple[Any, ...]:
    conn = sqlite3.connect(state_dir / JOURNAL_FILE)
    try:
        query = f"SELECT {KEPT_COLUMNS} FROM records WHERE client_ref = ?"
        return tuple(conn.execute(query, (KEPT_REF,)).fetchone())
    finally:
        conn.close()


@pytest.fixture(scope="module")
def daemon(
    tmp_path_factory: pytest.TempPathFactory, local_aws: LocalAws
) -> Iterator[tuple[DaemonParts, Any]]:
    with pytest.MonkeyPatch.context() as patch:
        for name, value in EMULATOR_ENV.items():
            patch.setenv(name, value)  # delivery to moto must work: flush waits for it
        yield from _composed(tmp_path_factory, local_aws)


def _composed(
    tmp_path_factory: pytest.TempPathFactory, local_aws: LocalAws
) -> Iterator[tuple[DaemonParts, Any]]:
    bus = f"fuzz-{uuid.uuid4().hex[:10]}"
    route_bus_to_queue(local_aws.client("events"), local_aws.client("sqs"), bus, "posd.fuzz")
    config = load_config(app_config(tmp_path_factory.mktemp("fuzz"), local_aws.endpoint_url, bus))
    parts = compose(config)
    yield parts, parts.app
    Daemon(parts).stop()


@pytest.fixture(scope="module")
def kept(daemon: tuple[DaemonParts, Any]) -> Iterator[tuple[Any, ...]]:
    """A payment captured before fuzzing: after it, its record must be exactly as it was."""
    composed, app = daemon
    answer = falcon.testing.TestClient(app).simulate_post(
        "/v1/payments",
        json={"client_ref": KEPT_REF, "amount_minor": 700, "currency": "EUR", "method": "card"},
    )
    assert answer.status_code == 201, answer.text
    before = kept_row(composed.config.state_dir)
    yield before
    assert kept_row(composed.config.state_dir) == before
    assert composed.journal.verify().ok


# Schema-valid requests may still be refused for what the lane is doing (404 unknown payment,
# 409 lane_busy or idempotency_mismatch, 422 read_timeout, 503, 507): never a 400 or a 500.
VALID_DATA_STATUSES = ["2xx", "404", "409", "422", "503", "507"]
# 503 and 507 are documented refusals (shutting_down, no_data_key, journal_full); 500 never is.
NOT_SERVER_ERRORS = ["1xx", "2xx", "3xx", "4xx", "503", "507"]
CONFIG = SchemathesisConfig.from_dict(
    {
        "checks": {
            "positive_data_acceptance": {"expected-statuses": VALID_DATA_STATUSES},
            "not_a_server_error": {"expected-statuses": NOT_SERVER_ERRORS},
        }
    }
)
SCHEMA = schemathesis.openapi.from_path(DOC, config=CONFIG)


@SCHEMA.parametrize()
@FUZZ_SETTINGS
def test_every_operation_answers_as_documented(
    case: Any, daemon: tuple[DaemonParts, Any], kept: tuple[Any, ...]
) -> None:
    case.call_and_validate(app=daemon[1])


def test_stateful_runs_answer_as_documented(
    daemon: tuple[DaemonParts, Any], kept: tuple[Any, ...]
) -> None:
    schema = schemathesis.openapi.from_path(DOC, config=CONFIG)
    schema.app = daemon[1]
    run_state_machine_as_test(
        schema.as_state_machine(),
        settings=settings(
            max_examples=EXAMPLES,
            stateful_step_count=STATEFUL_STEPS,
            deadline=None,
            suppress_health_check=list(HealthCheck),
            derandomize=True,
        ),
    )


def test_an_amount_beyond_the_card_readers_digits_is_refused_not_a_500(
    daemon: tuple[DaemonParts, Any],
) -> None:
    """Found by schemathesis: 13 digits passed validation and broke the reader's encoder."""
    client = falcon.testing.TestClient(daemon[1])
    for method in ("card", "card+palm"):
        body = {"client_ref": "big", "amount_minor": 10**12, "currency": "EUR", "method": method}
        answer = client.simulate_post("/v1/payments", json=body)
        assert answer.status_code == 400, answer.text
        assert answer.json["fields"].keys() == {"amount_minor"}


ERROR_CODES = set(yaml.safe_load(DOC.read_text())["components"]["schemas"]["ErrorCode"]["enum"])
number_literals = (
    st.text("0123456789", min_size=1, max_size=6_000)
    | st.builds(lambda whole, exp: f"{whole}e{exp}", st.integers(), st.integers())
    | st.sampled_from(["NaN", "Infinity", "-Infinity", "1" * 4_301, "0." + "0" * 5_000 + "1"])
)
payment_fields = st.fixed_dictionaries(
    {
        "client_ref": st.sampled_from(['"fz-1"', f'"{VISA_TEST_PAN}"', f'"fz-{DISCOVER_TEST_PAN}"'])
        | st.from_regex(r'"[0-9]{12,19}"', fullmatch=True),
        "amount_minor": number_literals,
        "currency": st.from_regex(r'"[A-Z]{3}"', fullmatch=True) | st.just('"EUR"'),
        "method": st.just('"card"'),
    }
)


@st.composite
def strict_bodies(draw: st.DrawFn) -> bytes:
    """Payment bodies as raw JSON text: huge or odd number literals, card-number-shaped
    client_refs, any three capitals as currency, and keys given twice."""
    fields = draw(payment_fields)
    pairs = [f'"{name}": {value}' for name, value in fields.items()]
    if draw(st.booleans()):
        pairs.append(draw(st.sampled_from(pairs)))  # a key given twice
    return ("{" + ", ".join(pairs) + "}").encode()


@FUZZ_SETTINGS
@given(strict_bodies(), number_literals)
def test_strict_input_is_refused_with_documented_codes_never_a_500(
    daemon: tuple[DaemonParts, Any], body: bytes, literal: str
) -> None:
    client = falcon.testing.TestClient(daemon[1])
    headers = {"Content-Type": "application/json"}
    for path, raw in (
        ("/v1/payments", body),
        ("/v1/sync/flush", b'{"timeout_s": ' + literal.encode() + b"}"),
    ):
        answer = client.simulate_post(path, body=raw, headers=headers)
        assert answer.status_code < 500 or answer.status_code in (503, 507), answer.text[:200]
        if answer.status_code >= 400:
            assert answer.json["error"] in ERROR_CODES
        assert VISA_TEST_PAN not in answer.text and DISCOVER_TEST_PAN not in answer.text
