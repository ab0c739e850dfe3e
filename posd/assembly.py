"""The parts every entry point builds from config, built one way: the data-key provider, the
journal's recorder, EventBridge clients, the proven-watermark reader and the sync engine.

The sync engine signs checkpoints and alarms with the lane's `[identity]` certificate
(`posd.identity`), read from its files each time an engine is built.

The daemon (`posd.daemon.compose`), the CLI (`posd sync flush` without a daemon), the demo,
bench and the tests take their parts from here, so a change to how a part is made is one
change. boto3 sessions and clients themselves are `posd.aws`'s: that module checks `[aws]`
and builds SDK clients, this one decides which parts exist and how they are wired.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

from posd.aws import config_session, kms_client
from posd.config import Config
from posd.errors import ConfigError
from posd.identity import lane_signer
from posd.keys.factory import build_key_provider
from posd.keys.provider import RotatingKeyProvider
from posd.recorder import Recorder
from sync.clock import REHEARSAL_ENV, SYSTEM, Clock, from_environment
from sync.engine import SyncEngine
from sync.errors import ClockError
from sync.eventbridge.transport import ClientSource
from sync.fair_rate import FairRateParameter, PublishedFairRate, make_fair_rate_client
from sync.settings import SyncSettings
from sync.sources import client_source
from sync.watermarks import WatermarkTable, make_watermark_client
from wire.signing import Signer
from wire.watermark import lane_id

if TYPE_CHECKING:
    import boto3

    from posd.journal import Journal


def process_clock() -> Clock:
    """The clock a daemon runs on, chosen once at its start: the system's, unless
    `POSD_REHEARSAL_CLOCK` names a rehearsal's (sync/clock.py; never on a production lane:
    `posd status` and `posd doctor` say when one is active)."""
    try:
        return from_environment()
    except ClockError as error:
        raise ConfigError("environment", REHEARSAL_ENV, str(error)) from error


def key_provider(config: Config, clock: Clock = SYSTEM) -> RotatingKeyProvider:
    """The data-key provider `[keys]` describes (not started), with a KMS client if it needs
    one, rotating keys by `clock`."""
    kms = kms_client(config.aws, str(config.path)) if config.keys.provider == "kms" else None
    return build_key_provider(config, kms, clock)


def recorder(journal: Journal, keys: RotatingKeyProvider, config: Config) -> Recorder:
    """Seals and journals this terminal's records."""
    return Recorder(journal, keys, config.store_id, config.terminal_id)


def events_clients(config: Config) -> ClientSource:
    """The sync engine's EventBridge clients (its own timeouts, no SDK retries), v1 or v2 as
    `[sync] api` says; with v2, `[aws] events_endpoint_url` names the v2 endpoint."""
    chosen = config_session(config)
    return client_source(
        config.sync,
        store_id=config.store_id,
        terminal_id=config.terminal_id,
        region=chosen.region_name,
        endpoint_url=config.aws.events_endpoint_url or config.aws.endpoint_url,
        session=chosen,
    )


def signer_for(config: Config) -> Signer | None:
    """The lane's signer (`None` without `[identity]`, development only)."""
    return lane_signer(config.identity, config.path, config.store_id, config.terminal_id)


def watermark_table(config: Config) -> WatermarkTable | None:
    """Where the engine reads this lane's proven watermarks (`[sync] watermark_table`, through
    `[aws] dynamodb_endpoint_url`); None with `acknowledged_retention = false`."""
    if not config.sync.acknowledged_retention:
        return None
    chosen = config_session(config)
    client = make_watermark_client(
        config.sync,
        region=chosen.region_name,
        endpoint_url=config.aws.dynamodb_endpoint_url or config.aws.endpoint_url,
        session=chosen,
    )
    return WatermarkTable(
        client, config.sync.watermark_table, lane_id(config.store_id, config.terminal_id)
    )


def fair_rate_parameter(
    settings: SyncSettings, *, endpoint_url: str | None, session: boto3.Session
) -> FairRateParameter | None:
    """The SSM parameter `settings.fair_rate_parameter` names, read through `endpoint_url`
    (None: boto3 resolves it); None when none is configured."""
    if not settings.fair_rate_parameter:
        return None
    client = make_fair_rate_client(
        region=session.region_name, endpoint_url=endpoint_url, session=session
    )
    return FairRateParameter(client, settings.fair_rate_parameter)


def config_fair_rate_parameter(config: Config) -> FairRateParameter | None:
    """The config's `[sync] fair_rate_parameter`, through `[aws] ssm_endpoint_url`."""
    return fair_rate_parameter(
        config.sync,
        endpoint_url=config.aws.ssm_endpoint_url or config.aws.endpoint_url,
        session=config_session(config),
    )


def published(
    parameter: FairRateParameter | None, settings: SyncSettings
) -> PublishedFairRate | None:
    """The engine's `fair_rate` over `parameter` (None: the engine is told no rate), cached
    no longer than the engine re-reads it while draining."""
    if parameter is None:
        return None
    return PublishedFairRate(parameter, refresh_seconds=settings.fair_rate_reread_seconds)


def published_fair_rate(config: Config) -> PublishedFairRate | None:
    return published(config_fair_rate_parameter(config), config.sync)


def sync_engine(journal: Journal, config: Config, clock: Clock = SYSTEM) -> SyncEngine:
    """The delivery engine for `journal` as the config describes it, signing side events
    with `[identity]` (unsigned without it: development only), its timers on `clock`."""
    return engine_over(
        journal,
        events_clients(config),
        config.sync,
        store_id=config.store_id,
        terminal_id=config.terminal_id,
        watermarks=watermark_table(config),
        signer=signer_for(config),
        fair_rate=published_fair_rate(config),
        clock=clock,
    )


def clients_for(
    settings: SyncSettings,
    *,
    store_id: str,
    terminal_id: str,
    endpoint_url: str,
    session: boto3.Session,
) -> ClientSource:
    """EventBridge clients without a config file (bench and tests), v1 or v2 as
    `settings.api` says: sending to `endpoint_url` with `session`'s credentials."""
    return client_source(
        settings,
        store_id=store_id,
        terminal_id=terminal_id,
        endpoint_url=endpoint_url,
        session=session,
    )


def engine_for(
    journal: Journal,
    settings: SyncSettings,
    *,
    store_id: str,
    terminal_id: str,
    endpoint_url: str,
    session: boto3.Session,
    watermarks: WatermarkTable | None = None,
    signer: Signer | None = None,
) -> SyncEngine:
    """A delivery engine without a config file (bench and tests): `settings` for one terminal,
    sending to `endpoint_url` with `session`'s credentials, reading proven watermarks from
    `watermarks` (None: nothing is proven), signing side events with `signer`, reading
    `settings.fair_rate_parameter` (if set) from the same endpoint."""
    clients = clients_for(
        settings,
        store_id=store_id,
        terminal_id=terminal_id,
        endpoint_url=endpoint_url,
        session=session,
    )
    return engine_over(
        journal,
        clients,
        settings,
        store_id=store_id,
        terminal_id=terminal_id,
        watermarks=watermarks,
        signer=signer,
        fair_rate=published(
            fair_rate_parameter(settings, endpoint_url=endpoint_url, session=session), settings
        ),
    )


def engine_over(
    journal: Journal,
    clients: ClientSource,
    settings: SyncSettings,
    *,
    store_id: str,
    terminal_id: str,
    watermarks: WatermarkTable | None = None,
    signer: Signer | None = None,
    fair_rate: Callable[[], float | None] | None = None,
    clock: Clock = SYSTEM,
) -> SyncEngine:
    """A delivery engine over clients built already: those of the config (`sync_engine`),
    of `clients_for`, or clients a benchmark used first (bench/drain measures the round trip
    with them, so the engine starts on the same warm connections)."""
    return SyncEngine(
        journal,
        clients,
        settings,
        store_id=store_id,
        terminal_id=terminal_id,
        watermarks=watermarks,
        signer=signer,
        fair_rate=fair_rate,
        clock=clock.time,
        real_seconds=clock.real_seconds,
    )
