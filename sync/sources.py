"""The engine's `ClientSource` for the configured API: v1 (`events`) or v2 (`eventbridgev2`)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from sync.eventbridge.client import EventsClients
from sync.eventbridge.client_v2 import EventsV2Clients
from sync.eventbridge.transport import ClientSource
from sync.eventbridge.v2 import API_V2
from sync.settings import SyncSettings

if TYPE_CHECKING:
    import boto3


def client_source(
    settings: SyncSettings,
    *,
    store_id: str,
    terminal_id: str,
    region: str | None = None,
    endpoint_url: str | None = None,
    session: boto3.Session | None = None,
) -> ClientSource:
    """Clients for `settings.api`; the engine cannot tell them apart (same outcomes)."""
    if settings.api == API_V2:
        return EventsV2Clients(
            settings,
            store_id=store_id,
            terminal_id=terminal_id,
            region=region,
            endpoint_url=endpoint_url,
            session=session,
        )
    return EventsClients(settings, region=region, endpoint_url=endpoint_url, session=session)
