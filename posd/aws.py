"""boto3 clients built from config: region, per-service endpoint, timeouts, few SDK retries.

With no endpoint in config boto3 resolves it itself, so `AWS_ENDPOINT_URL`,
`AWS_ENDPOINT_URL_KMS`, `AWS_PROFILE` and friends work unchanged.
"""

from __future__ import annotations

from typing import Any

import boto3
from botocore.config import Config as BotoConfig

from posd.config import AwsSettings, Config
from posd.journal import Journal
from sync.client import EventsClients
from sync.engine import SyncEngine

KMS_SDK_MAX_ATTEMPTS = 2  # our prefetcher retries with backoff; keep the SDK's own short


def session(settings: AwsSettings) -> boto3.session.Session:
    return boto3.session.Session(profile_name=settings.profile, region_name=settings.region)


def events_clients(config: Config) -> EventsClients:
    """The sync engine's EventBridge clients (its own timeouts, no SDK retries)."""
    return EventsClients(
        config.sync,
        region=config.aws.region,
        endpoint_url=config.aws.events_endpoint_url or config.aws.endpoint_url,
        session=session(config.aws),
    )


def sync_engine(journal: Journal, config: Config) -> SyncEngine:
    """The delivery engine for `journal` as the config describes it."""
    return SyncEngine(
        journal,
        events_clients(config),
        config.sync,
        store_id=config.store_id,
        terminal_id=config.terminal_id,
    )


def kms_client(settings: AwsSettings) -> Any:
    return session(settings).client(
        "kms",
        endpoint_url=settings.kms_endpoint_url or settings.endpoint_url,
        config=BotoConfig(
            connect_timeout=settings.connect_timeout_seconds,
            read_timeout=settings.read_timeout_seconds,
            retries={"total_max_attempts": KMS_SDK_MAX_ATTEMPTS, "mode": "standard"},
        ),
    )
