"""Credentials never reach a log line: botocore's debug dump of a signed request (the
`Authorization` header, the session token, the signature) goes through the same redaction
as everything else, at every level."""

from __future__ import annotations

import io
import logging
import re
from collections.abc import Iterator

import boto3
import pytest
import structlog

from demo.localaws.emulator import LocalAws
from posd.logs import configure_logging
from posd.redact import CREDENTIAL_PLACEHOLDER, redact_event, redact_text

SECRET_KEY = "wJalrXUtnFEMI-test-secret-key-0123456789"
SESSION_TOKEN = "IQoJb3JpZ2luX2VjE-test-session-token-0123456789"
# A SigV4 signature as botocore writes it (`Signature=` in the header, `Signature:` then a
# new line in its debug dump, escaped in a JSON line); payload hashes are no secret.
SIGNATURE = re.compile(r"Signature[=:](?:\s|\\n)*[0-9a-f]{64}")


@pytest.fixture
def debug_log() -> Iterator[io.StringIO]:
    out = io.StringIO()
    configure_logging("debug", stream=out, force_json=True)
    yield out
    configure_logging("info")
    logging.getLogger().setLevel(logging.WARNING)


def test_botocore_debug_dump_of_a_signed_request_is_redacted(
    local_aws: LocalAws, debug_log: io.StringIO
) -> None:
    client = boto3.client(
        "events",
        region_name="us-east-1",
        endpoint_url=local_aws.endpoint_url,
        aws_access_key_id="AKIATESTREDACTION01",
        aws_secret_access_key=SECRET_KEY,
        aws_session_token=SESSION_TOKEN,
    )
    client.list_event_buses()
    text = debug_log.getvalue()
    assert "Authorization" in text and "x-amz-security-token" in text.lower()  # it was logged
    assert SESSION_TOKEN not in text and SECRET_KEY not in text
    assert not SIGNATURE.search(text), "a signature survived"


@pytest.mark.parametrize(
    "line",
    [
        "headers={'Authorization': b'AWS4-HMAC-SHA256 Credential=AKIAX/2026/us-east-1/events/"
        "aws4_request, SignedHeaders=host, Signature=" + "ab" * 32 + "'}",
        "x-amz-security-token:" + SESSION_TOKEN,
        '{"SecretAccessKey": "' + SECRET_KEY + '"}',
        "aws_secret_access_key = " + SECRET_KEY,
        "Signature:\n" + "cd" * 32,
        "https://bucket/key?X-Amz-Signature="
        + "ef" * 32
        + "&X-Amz-Security-Token="
        + SESSION_TOKEN,
    ],
)
def test_credential_shaped_values_are_redacted(line: str) -> None:
    redacted = redact_text(line)
    assert CREDENTIAL_PLACEHOLDER in redacted
    assert SESSION_TOKEN not in redacted and SECRET_KEY not in redacted
    assert not SIGNATURE.search(redacted)


def test_credential_named_event_keys_are_redacted() -> None:
    event = redact_event(None, "info", {"event": "x", "palm_token": "tok-1", "api_key": "k"})
    assert event == {
        "event": "x",
        "palm_token": CREDENTIAL_PLACEHOLDER,
        "api_key": CREDENTIAL_PLACEHOLDER,
    }
    structlog.reset_defaults()


@pytest.mark.parametrize(
    "line",
    ['"credential": "****************4b8a"', "credential=****4b8a", "palm_token: ****"],
)
def test_a_value_its_owner_already_masked_is_shown_as_masked(line: str) -> None:
    """`posd devices test palm_scanner` shows the credential's last four on purpose."""
    assert redact_text(line) == line


def test_a_value_that_only_starts_masked_is_still_redacted() -> None:
    assert CREDENTIAL_PLACEHOLDER in redact_text('"credential": "****4b8a-tok-7f3a9c2e51d04b8a"')


def test_a_masked_value_under_a_credential_key_is_kept_and_a_clear_one_is_not() -> None:
    event = {"credential": "****************4b8a", "palm_token": "tok-7f3a9c2e51d04b8a"}
    assert redact_event(None, "info", event) == {
        "credential": "****************4b8a",
        "palm_token": CREDENTIAL_PLACEHOLDER,
    }
