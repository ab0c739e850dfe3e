"""The EventBridge client: endpoint resolution, timeouts, and botocore retries switched off.

botocore's client-side parameter validation is switched off too: it walked every field of
every entry on every request, a large share of the client's CPU (bench/drain.py; the figure
is in docs/performance.md).
The engine builds its entries itself, always of the same shape; anything the SDK would have
refused, the service refuses too (HTTP 400), which `sync.eventbridge.retry` sorts as
`misconfigured` exactly like the `ParamValidationError` the SDK would have raised.

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

botocore fixes a client's timeouts when it builds it, so the engine, which lengthens its read
timeout when the endpoint answers late, gets its clients from `EventsClients`: one client per
read timeout asked for, all from one session.
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


def client_config(settings: SyncSettings, read_timeout: float | None = None) -> Config:
    """botocore settings; `read_timeout` overrides `settings.read_timeout_seconds`."""
    return Config(
        connect_timeout=settings.connect_timeout_seconds,
        read_timeout=settings.read_timeout_seconds if read_timeout is None else read_timeout,
        retries=dict(NO_SDK_RETRIES),  # type: ignore[arg-type]
        max_pool_connections=settings.max_in_flight + POOL_SLACK,
        tcp_keepalive=True,
        parameter_validation=False,
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
    read_timeout: float | None = None,
) -> EventBridgeClient:
    """An EventBridge client configured for the engine."""
    import boto3

    chosen = session or boto3.Session()
    return chosen.client(
        "events",
        region_name=region,
        endpoint_url=resolve_endpoint(endpoint_url),
        config=client_config(settings, read_timeout),
    )


class EventsClients:
    """The engine's `ClientSource`: an EventBridge client for a given read timeout, built on
    first use and kept (the engine only ever asks for a handful of values: the configured
    timeout doubled up to its cap). Used from the engine's driver thread only."""

    def __init__(
        self,
        settings: SyncSettings,
        *,
        region: str | None = None,
        endpoint_url: str | None = None,
        session: boto3.Session | None = None,
    ) -> None:
        import boto3

        self._settings = settings
        self._region = region
        self._endpoint_url = endpoint_url
        self._session = session or boto3.Session()
        self._clients: dict[float, EventBridgeClient] = {}

    def __call__(self, read_timeout: float) -> EventBridgeClient:
        client = self._clients.get(read_timeout)
        if client is None:
            client = make_events_client(
                self._settings,
                region=self._region,
                endpoint_url=self._endpoint_url,
                session=self._session,
                read_timeout=read_timeout,
            )
            self._clients[read_timeout] = client
        return client
