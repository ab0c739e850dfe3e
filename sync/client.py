"""The EventBridge client: endpoint resolution, timeouts, and botocore retries switched off.

botocore retries nothing here (`total_max_attempts=1`): its retries would never see per-entry
failures, would stack under the engine's own backoff, and would hide transport failures from
offline detection. The engine's policy is the only one in charge.

Endpoint precedence: an explicit `endpoint_url` (from the daemon's config), then boto3's own
resolution: `AWS_ENDPOINT_URL_EVENTBRIDGE` (botocore derives the variable from the service id
"EventBridge"), `AWS_ENDPOINT_URL`, the shared config file's `services` section. The
`AWS_ENDPOINT_URL_EVENTS` spelling named in the design notes is NOT read by botocore; it is
honoured here as an alias so that configurations written after the notes work too.
Credentials, region and profile follow boto3's standard chain (`AWS_PROFILE`, IAM Roles
Anywhere via `credential_process`, ...).
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import TYPE_CHECKING

from botocore.config import Config

from sync.settings import SyncSettings

if TYPE_CHECKING:
    import boto3
    from mypy_boto3_events import EventBridgeClient

STANDARD_ENDPOINT_ENV = "AWS_ENDPOINT_URL_EVENTBRIDGE"
ALIAS_ENDPOINT_ENV = "AWS_ENDPOINT_URL_EVENTS"
NO_SDK_RETRIES = {"total_max_attempts": 1, "mode": "standard"}
# Connections kept per client beyond the in-flight maximum (probe + slack).
POOL_SLACK = 2


def client_config(settings: SyncSettings) -> Config:
    return Config(
        connect_timeout=settings.connect_timeout_seconds,
        read_timeout=settings.read_timeout_seconds,
        retries=dict(NO_SDK_RETRIES),  # type: ignore[arg-type]
        max_pool_connections=settings.max_in_flight + POOL_SLACK,
        tcp_keepalive=True,
    )


def resolve_endpoint(explicit: str | None, environ: Mapping[str, str] | None = None) -> str | None:
    """The endpoint to pass to boto3, or None to let boto3 resolve it itself."""
    env = os.environ if environ is None else environ
    if explicit:
        return explicit
    if env.get(STANDARD_ENDPOINT_ENV):
        return None  # boto3 reads it
    return env.get(ALIAS_ENDPOINT_ENV) or None


def make_events_client(
    settings: SyncSettings,
    *,
    region: str | None = None,
    endpoint_url: str | None = None,
    session: boto3.Session | None = None,
) -> EventBridgeClient:
    """An EventBridge client configured for the engine."""
    import boto3

    chosen = session or boto3.Session()
    return chosen.client(
        "events",
        region_name=region,
        endpoint_url=resolve_endpoint(endpoint_url),
        config=client_config(settings),
    )
