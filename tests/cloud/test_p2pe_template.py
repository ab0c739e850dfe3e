"""The template's P2PE part against the code: the function's settings, and the consumer's
grants in AWS Payment Cryptography (re-encrypt by default, decrypt only when enabled, nothing
for anyone else)."""

from __future__ import annotations

import json
import re
from typing import Any

from cloud.p2pe import (
    DECRYPT_ENV,
    DISABLED,
    ENABLED,
    IV_BYTES,
    OUTGOING_ALGORITHM_ENV,
    OUTGOING_KEY_ENV,
)
from tests.cloud.test_template import loaded, resources

RE_ENCRYPT = "payment-cryptography:ReEncryptData"
DECRYPT = "payment-cryptography:DecryptData"
BDK = {"Ref": "P2peBdkKeyArn"}
PROCESSOR_KEY = {"Ref": "P2peOutgoingKeyArn"}


def conditional_statements() -> dict[str, tuple[str, dict[str, Any]]]:
    """The consumer's statements under `!If`, by Sid: (condition, statement)."""
    found = resources()["ConsumerPolicy"]["Properties"]["PolicyDocument"]["Statement"]
    return {s["If"][1]["Sid"]: (s["If"][0], s["If"][1]) for s in found if "If" in s}


def test_the_function_gets_the_settings_cloud_p2pe_reads() -> None:
    env = resources()["ConsumerFunction"]["Properties"]["Environment"]["Variables"]
    assert env[OUTGOING_KEY_ENV] == PROCESSOR_KEY
    assert env[OUTGOING_ALGORITHM_ENV] == {"Ref": "P2peOutgoingKeyAlgorithm"}
    assert env[DECRYPT_ENV] == {"If": ["P2peDecrypts", ENABLED, DISABLED]}
    parameters = loaded()["Parameters"]
    assert parameters["P2peOutgoingKeyAlgorithm"]["AllowedValues"] == list(IV_BYTES)
    assert parameters["P2peDecrypt"]["Default"] == "false"
    assert parameters["P2peBdkKeyArn"]["Default"] == ""  # no P2PE: no grant at all


def test_the_consumer_re_encrypts_from_the_bdk_to_the_processor_key_only() -> None:
    condition, statement = conditional_statements()["ReEncryptP2peTracks"]
    assert statement["Action"] == RE_ENCRYPT
    assert statement["Resource"][0] == BDK
    assert statement["Resource"][-1] == PROCESSOR_KEY
    (alias,) = statement["Resource"][1:-1]  # the alias, when readers name the BDK by it
    assert alias["If"][0] == "HasP2peBdkAlias"
    conditions = loaded()["Conditions"]
    assert {"Condition": "HasP2pe"} in conditions[condition]["And"]


def test_decryption_is_granted_on_the_bdk_only_and_only_when_enabled() -> None:
    condition, statement = conditional_statements()["DecryptP2peTracks"]
    assert statement["Action"] == DECRYPT
    assert statement["Resource"][0] == BDK
    assert PROCESSOR_KEY not in statement["Resource"]
    assert loaded()["Conditions"][condition] == {
        "And": [{"Condition": "HasP2pe"}, {"Equals": [{"Ref": "P2peDecrypt"}, "true"]}]
    }


def test_nothing_else_touches_payment_cryptography() -> None:
    """Only the consumer's two statements name the service: terminals neither hold a grant
    nor reach an endpoint for it (they never see a clear track or a key)."""
    for name, resource in resources().items():
        text = json.dumps(resource)
        if name == "ConsumerPolicy":
            granted = re.findall(r'"(payment-cryptography:[A-Za-z*]+)"', text)
            assert sorted(granted) == sorted([RE_ENCRYPT, DECRYPT])
            continue
        assert "payment-cryptography" not in text, name


def test_re_encryption_without_a_processor_key_is_refused_at_deploy() -> None:
    rule = loaded()["Rules"]["P2peReEncryptsToAProcessorKey"]
    (assertion,) = rule["Assertions"]
    assert assertion["Assert"] == {"Not": [{"Equals": [PROCESSOR_KEY, ""]}]}
