"""The daemon's composition root: every part of `posd run`, built and started from config.

`posd run` has taken the state dir's lock and the API's socket before this (an unknown socket
group was refused there). Everything else that can refuse the config does so first, before
anything starts (an unknown AWS profile, no region: exit 2). Then the `Journal` capture
appends to, the key provider (KMS with prefetch, offline RSA fallback), the configured devices
(watched by `DeviceSupervisor`), and the API app over them. Delivery is another process
(`posd sync run`, `posd.syncd`): this one only reads what it says of itself
(`DeliveryPeer`). `runtime.Daemon` runs the result; tests drive `parts.app` in-process.
"""

from __future__ import annotations

from dataclasses import dataclass

import falcon
import structlog

from posd.assembly import key_provider, recorder
from posd.aws import config_session
from posd.config import Config
from posd.daemon.api import ApiParts, create_app
from posd.daemon.exits import for_systemd
from posd.daemon.lane import Lane
from posd.daemon.metrics import Metrics
from posd.daemon.notify import Notifier
from posd.daemon.payments import PaymentService, RuntimeRules
from posd.daemon.reading import AcceptanceRules
from posd.daemon.server import ApiServer
from posd.daemon.supervisor import DeviceSupervisor
from posd.daemon.views import LaneViews
from posd.errors import PosdError
from posd.journal import Journal
from posd.keys.provider import RotatingKeyProvider
from posd.ratelog import RepeatedErrors
from posd.syncd.status_file import DeliveryPeer
from sync.clock import SYSTEM, Clock

log = structlog.get_logger("posd.daemon")


def runtime_rules(config: Config) -> RuntimeRules:
    return RuntimeRules(
        config.offline,
        AcceptanceRules(
            config.payments.refuse_unknown_brand,
            config.payments.card_data,
            config.payments.p2pe_key_ref,
        ),
        config.payments.currencies,
    )


class LiveRules:
    """The rules payments follow now; SIGHUP replaces them while payments go on."""

    def __init__(self, rules: RuntimeRules) -> None:
        self.current = rules

    def __call__(self) -> RuntimeRules:
        return self.current


@dataclass(frozen=True)
class DaemonParts:
    """The running parts of one daemon, all started except the API server (which `run`
    starts on the listener it was given)."""

    config: Config
    notifier: Notifier
    errors: RepeatedErrors
    journal: Journal
    keys: RotatingKeyProvider
    devices: DeviceSupervisor
    lane: Lane
    delivery: DeliveryPeer
    rules: LiveRules
    views: LaneViews
    app: falcon.App[falcon.Request, falcon.Response]
    server: ApiServer


def _open_journal(config: Config, notifier: Notifier, clock: Clock) -> Journal:
    try:
        return Journal.open(config.state_dir, config.journal, clock=clock.time)
    except PosdError as error:
        # systemd shows why (`systemctl status posd`); the exit status says whether a restart
        # can help (exits.py).
        log.critical("daemon.journal_refused", error=str(error), code=error.code)
        notifier.status(f"refused to start: {error.code}: {error}")
        raise for_systemd(error) from error


def compose(config: Config, notifier: Notifier | None = None, clock: Clock = SYSTEM) -> DaemonParts:
    """Check the config, then open the journal and start keys and devices; the API app over
    them (its server built, not started). Records are stamped and keys rotated by `clock`."""
    config_session(config)  # an unknown profile, no region: exit 2 now
    notifier = notifier or Notifier()
    errors = RepeatedErrors()
    lane = Lane()
    devices = DeviceSupervisor(config, errors, lambda: lane.busy)
    rules = LiveRules(runtime_rules(config))
    journal = _open_journal(config, notifier, clock)
    keys = key_provider(config, clock).start()
    delivery = DeliveryPeer(config.state_dir)
    devices.start()
    views = LaneViews(config, journal, keys, devices, lane, delivery, rules, clock)
    metrics = Metrics()
    payments = PaymentService(
        journal,
        recorder(journal, keys, config),
        devices,
        lane,
        metrics,
        rules=rules,
        link_offline=views.link_offline,
        lane_id=config.terminal_id,
    )
    metrics.watch(views.lane_state)
    app = create_app(ApiParts(payments, metrics, views.status, devices.snapshot, views.flush))
    return DaemonParts(
        config=config,
        notifier=notifier,
        errors=errors,
        journal=journal,
        keys=keys,
        devices=devices,
        lane=lane,
        delivery=delivery,
        rules=rules,
        views=views,
        app=app,
        server=ApiServer(app),
    )
