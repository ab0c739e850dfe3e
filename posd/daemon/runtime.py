"""`posd run`: compose the parts, tell systemd, serve, and stop cleanly.

One process: one `Journal` shared by capture and delivery, the key provider (KMS with
prefetch, offline RSA fallback), the configured devices (watched by `DeviceSupervisor`), the
sync engine in its own thread, and the API on its Unix socket. The main thread only waits for
signals and ticks: systemd's watchdog is fed from here, and only while the API, device and
delivery threads are all alive.
"""

from __future__ import annotations

import dataclasses
import os
import signal
import sys
import threading
import time
from types import FrameType
from typing import Any

import falcon
import structlog

from posd.aws import kms_client, session
from posd.config import Config, load_config
from posd.daemon.api import ApiParts, create_app
from posd.daemon.delivery import DeliveryThread
from posd.daemon.exits import for_systemd
from posd.daemon.lane import Lane
from posd.daemon.limits import headroom
from posd.daemon.metrics import LaneState, Metrics
from posd.daemon.notify import Notifier
from posd.daemon.payments import PaymentService, RuntimeRules
from posd.daemon.ratelog import RepeatedErrors
from posd.daemon.reading import AcceptanceRules
from posd.daemon.server import ApiServer, socket_gid
from posd.daemon.supervisor import DeviceSupervisor
from posd.errors import ConfigError, PosdError
from posd.journal import Journal
from posd.keys.factory import build_key_provider
from posd.keys.provider import RotatingKeyProvider
from posd.logs import configure_logging
from posd.recorder import Recorder
from posd.version import posd_version
from sync.pacing.link import PROBING_STATES
from sync.timestamps import rfc3339

log = structlog.get_logger("posd.daemon")

LOG_LEVEL_ENV = "POSD_LOG_LEVEL"
TICK_S = 1.0
FLUSH_POLL_S = 0.1
# Stopping, within systemd's TimeoutStopSec (20 s): the payment in hand, then the API, then
# the requests in flight to EventBridge.
PAYMENT_GRACE_S = 10.0
CANCEL_GRACE_S = 2.0
API_STOP_S = 2.0
DELIVERY_STOP_S = 4.0
# Sections whose change needs a restart; the others are reloaded by SIGHUP.
RESTART_SECTIONS = ("terminal", "api", "aws", "keys", "journal", "devices")
ONLINE = "online"
# The interpreter's GIL switch interval in `posd run` (Python's default: 5 ms). A payment's
# thread hands off to the card reader's and back several times, and with delivery's threads
# busy each hand-off may wait a whole interval: at 1 ms, capture while a 100,000-record backlog
# drained had a lower p99 in each of three alternating pairs (75/104, 42/54, 44/48 ms on a
# loaded 2-core machine) and delivery went no slower (bench/capture_api.py).
SWITCH_INTERVAL_S = 0.001


def log_level(config: Config) -> str:
    return os.environ.get(LOG_LEVEL_ENV) or config.log.level


def runtime_rules(config: Config) -> RuntimeRules:
    return RuntimeRules(config.offline, AcceptanceRules(config.payments.refuse_unknown_brand))


class _LinkWatch:
    """The link state and since when (the engine knows when it went offline, not online)."""

    def __init__(self) -> None:
        self.state: str | None = None
        self.since = time.time()

    def update(self, state: str) -> None:
        if state != self.state:
            self.state, self.since = state, time.time()


class Daemon:
    def __init__(self, config: Config) -> None:
        """Everything that can refuse the config does so here, before anything starts."""
        self.config = config
        self._gid = socket_gid(config.api.socket_group, str(config.path))
        session(config.aws, str(config.path))  # an unknown profile, no region: exit 2 now
        self._errors = RepeatedErrors()
        self._lane = Lane()
        self._devices = DeviceSupervisor(config, self._errors, lambda: self._lane.busy)
        self._notifier = Notifier()
        self._rules = runtime_rules(config)
        self._wake = threading.Event()
        self._stop_requested = False
        self._reload_requested = False
        self._started = time.monotonic()
        self._link = _LinkWatch()
        self._journal: Journal | None = None
        self._keys: RotatingKeyProvider | None = None
        self._delivery: DeliveryThread | None = None
        self._server: ApiServer | None = None

    # -- life cycle -----------------------------------------------------------------------

    def run(self) -> int:
        config = self.config
        configure_logging(log_level(config))
        sys.setswitchinterval(SWITCH_INTERVAL_S)
        app = self.compose()
        self._server = ApiServer(app, config.api.socket, self._gid).start()
        self._install_signal_handlers()
        self._notifier.ready(self.summary_line())
        log.info("daemon.ready", socket=str(config.api.socket), version=posd_version())
        self._main_loop()
        self._shutdown()
        return 0

    def compose(self) -> falcon.App[falcon.Request, falcon.Response]:
        """Open the journal, start keys, delivery and devices; the API app over them.

        `run` serves it on the socket; tests drive it in-process and then call `stop`.
        """
        config = self.config
        try:
            self._journal = journal = Journal.open(config.state_dir, config.journal)
        except PosdError as error:
            # systemd shows why (`systemctl status posd`); the exit status says whether a
            # restart can help (exits.py).
            log.critical("daemon.journal_refused", error=str(error), code=error.code)
            self._notifier.status(f"refused to start: {error.code}: {error}")
            raise for_systemd(error) from error
        kms = kms_client(config.aws, str(config.path)) if config.keys.provider == "kms" else None
        self._keys = keys = build_key_provider(config, kms).start()
        recorder = Recorder(journal, keys, config.store_id, config.terminal_id)
        self._delivery = DeliveryThread(journal, config).start()
        self._devices.start()
        metrics = Metrics()
        payments = PaymentService(
            journal,
            recorder,
            self._devices,
            self._lane,
            metrics,
            rules=lambda: self._rules,
            link_offline=self._link_offline,
            lane_id=config.terminal_id,
        )
        self._payments = payments
        metrics.watch(self._lane_state)
        parts = ApiParts(payments, metrics, self.status, self._devices.snapshot, self.flush)
        return create_app(parts)

    def stop(self) -> None:
        """What SIGTERM does, for a daemon composed without `run`."""
        self._shutdown()

    def _install_signal_handlers(self) -> None:
        def on_stop(signum: int, frame: FrameType | None) -> None:
            self._stop_requested = True
            self._wake.set()

        def on_reload(signum: int, frame: FrameType | None) -> None:
            self._reload_requested = True
            self._wake.set()

        signal.signal(signal.SIGTERM, on_stop)
        signal.signal(signal.SIGINT, on_stop)
        signal.signal(signal.SIGHUP, on_reload)

    def _main_loop(self) -> None:
        tick = min(TICK_S, self._notifier.watchdog_interval_s or TICK_S)
        last_status = ""
        while not self._stop_requested:
            self._wake.wait(tick)
            self._wake.clear()
            if self._reload_requested:
                self._reload_requested = False
                self._reload()
            dead = self._dead_threads()
            if dead:
                self._errors.failed("daemon.thread_dead", threads=dead)
            elif self._notifier.watchdog_interval_s is not None:
                self._notifier.watchdog()
            line = self.summary_line()
            if line != last_status:
                self._notifier.status(line)
                last_status = line

    def _dead_threads(self) -> list[str]:
        alive = {
            "api": self._server is not None and self._server.alive,
            "devices": self._devices.alive,
            "sync": self._delivery is not None and self._delivery.alive,
        }
        return [name for name, ok in alive.items() if not ok]

    def _shutdown(self) -> None:
        self._notifier.stopping("stopping: finishing the payment in hand")
        log.info("daemon.stopping")
        self._lane.close()
        if not self._lane.wait_idle(PAYMENT_GRACE_S):
            self._devices.cancel_all()
            self._lane.wait_idle(CANCEL_GRACE_S)
        if self._server is not None:
            self._server.stop(API_STOP_S)
        flushed = self._delivery.stop(DELIVERY_STOP_S) if self._delivery else True
        released = self._journal.release_leases() if self._journal else 0
        self._devices.stop()
        if self._keys is not None:
            self._keys.close()
        if self._journal is not None:
            self._journal.close()
        log.info("daemon.stopped", delivery_stopped_in_time=flushed, leases_released=released)

    def _reload(self) -> None:
        try:
            new = load_config(self.config.path)
        except ConfigError as error:
            log.error("daemon.reload_failed", error=str(error))
            return
        configure_logging(log_level(new))
        self._rules = runtime_rules(new)
        if new.sync != self.config.sync and self._delivery is not None:
            self._delivery = self._delivery.retune(new.sync, DELIVERY_STOP_S)
        needs_restart = [s for s in RESTART_SECTIONS if getattr(new, s) != getattr(self.config, s)]
        if needs_restart:
            log.warning("daemon.restart_required", sections=needs_restart)
        self.config = dataclasses.replace(
            self.config, offline=new.offline, sync=new.sync, payments=new.payments, log=new.log
        )
        log.info("daemon.reloaded", offline=dataclasses.asdict(new.offline))

    # -- views ----------------------------------------------------------------------------

    def _link_state(self) -> str:
        state = self._delivery.status().state if self._delivery else "offline"
        self._link.update(state)
        return state

    def _link_offline(self) -> bool:
        """Known not to deliver (offline or misconfigured); `unknown` is not offline."""
        return self._link_state() in PROBING_STATES

    def summary_line(self) -> str:
        """systemd's one-line STATUS=."""
        # The engine's count (refreshed every second): a summary of our own would scan every
        # record at each tick.
        pending = self._delivery.status().pending if self._delivery else 0
        devices = ", ".join(
            f"{name} {'ok' if up else 'DOWN'}" for name, up in self._devices.connected().items()
        )
        return f"link {self._link_state()}, {pending} pending, devices: {devices or 'none'}"

    def _lane_state(self) -> LaneState:
        assert self._journal is not None
        assert self._delivery is not None
        backlog = self._payments.backlog()
        sync = self._delivery.status()
        checkpoints = self._journal.checkpoint_status()
        return LaneState(
            pending=backlog.count,
            oldest_pending_age_seconds=backlog.oldest_age_seconds,
            link_online=self._link_state() == ONLINE,
            devices_connected=self._devices.connected(),
            journal_bytes=self._journal.size_on_disk(),
            delivery_results={
                "delivered": sync.delivered_since_start,
                "quarantined": sync.quarantined_since_start,
                "tampered": sync.tampered_since_start,
            },
            checkpoint_last_seq=checkpoints.last_seq or 0,
            checkpoints_pending=checkpoints.pending,
        )

    def status(self) -> dict[str, Any]:
        assert self._journal is not None
        assert self._delivery is not None
        assert self._keys is not None
        backlog = self._payments.backlog()
        summary = self._journal.summary()
        checkpoints = self._journal.checkpoint_status()
        sync = self._delivery.status()
        state = self._link_state()
        connected = self._devices.connected()
        return {
            "terminal": {
                "store_id": self.config.store_id,
                "terminal_id": self.config.terminal_id,
                "mode": self.config.terminal.mode,
            },
            "version": posd_version(),
            "uptime_seconds": round(time.monotonic() - self._started, 3),
            "state": "shutting_down"
            if self._lane.closed
            else ("ready" if all(connected.values()) else "degraded"),
            "link": {
                "state": state,
                "since": rfc3339(self._link.since),
                "last_delivery": rfc3339(sync.last_success) if sync.last_success else None,
                "last_error": sync.last_error,
            },
            "pending": {
                "count": backlog.count,
                "amount_by_currency": dict(backlog.amount_by_currency),
                "oldest_age_seconds": None
                if backlog.oldest_age_seconds is None
                else round(backlog.oldest_age_seconds, 3),
            },
            "quarantined": summary.quarantined,
            "tampered": summary.tampered,
            "unreadable": summary.unreadable,
            "checkpoints": {"last_seq": checkpoints.last_seq, "pending": checkpoints.pending},
            "devices": {name: ("connected" if up else "down") for name, up in connected.items()},
            "key_source": self._keys.status()["source"],
            "limits": headroom(self._rules.limits, backlog),
        }

    def flush(self, timeout: float) -> dict[str, Any]:
        """Wait (up to `timeout`) for the delivery thread to empty the backlog."""
        assert self._journal is not None
        started = time.monotonic()
        pending = self._journal.summary().pending
        while pending and time.monotonic() - started < timeout:
            time.sleep(FLUSH_POLL_S)
            pending = self._journal.summary().pending
        return {
            "completed": pending == 0,
            "pending": pending,
            "waited_seconds": round(time.monotonic() - started, 3),
        }
