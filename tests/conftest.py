"""Shared fixtures: a real moto server over HTTP on loopback, and boto3 clients for it."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from posd.emulator import LocalAws


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
