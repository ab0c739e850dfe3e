"""`posd sync run`: the delivery daemon, the second of the lane's two processes.

The capture daemon (`posd run`) holds the devices, the data keys and the register's API, and
appends sealed records to the journal; this one leases them and sends them to EventBridge
with the side lane's alarms and checkpoints, purges what the cloud has proven, and never
touches a device, a data key or clear card data: it forwards what capture sealed. Neither
waits for the other: capture's appends go first (the journal's shared capture priority), and
a delivery daemon that is killed or stopped costs the lane no payment, only time.

Its life cycle mirrors `posd run`: `sync.lock` taken before anything (one delivery engine per
journal), the journal opened (capture creates it: without one this exits 1 and systemd tries
again), the engine started in its thread, READY=1. The main thread feeds systemd's watchdog
while the engine's thread lives, rewrites the status file every tick (`status_file.py`: what
`posd status` and the capture daemon read), retunes the engine on SIGHUP, and on SIGTERM
lets the requests in flight finish and hands the leases back.
"""

from __future__ import annotations

import dataclasses
import os
import time

import structlog

from posd.assembly import process_clock
from posd.aws import config_session
from posd.config import Config, load_config
from posd.daemon.exits import for_systemd
from posd.daemon.notify import Notifier
from posd.daemon.signals import Signals
from posd.errors import ConfigError, JournalError, PosdError
from posd.journal import JOURNAL_FILE, Journal
from posd.logs import configure_logging
from posd.syncd.engine_thread import DeliveryThread
from posd.syncd.status_file import DeliveryReport, write_report
from posd.version import posd_version
from sync.clock import SYSTEM, Clock
from sync.status import SyncStatus

log = structlog.get_logger("posd.syncd")

LOG_LEVEL_ENV = "POSD_LOG_LEVEL"
TICK_S = 1.0
# The status file is rewritten this often while the status changes (a link going offline
# shows in `posd status` within it), and at least every tick as a heartbeat.
PUBLISH_S = 0.2
# The exit status when the engine's thread died: systemd's Restart=on-failure starts it again.
ENGINE_DEAD = 1
# Stopping, within systemd's TimeoutStopSec: the requests in flight to EventBridge.
DELIVERY_STOP_S = 4.0
# Sections delivery reads whose change needs a restart; `[sync]` and `[log]` are reloaded by
# SIGHUP (the others are the capture daemon's alone).
RESTART_SECTIONS = ("terminal", "aws", "journal", "identity")


class NoJournalYet(JournalError):
    """The capture daemon has not created the journal yet: exit 1, systemd tries again."""

    code = "no_journal"


def summary_line(status: SyncStatus) -> str:
    """systemd's one-line STATUS= for the delivery daemon."""
    line = f"link {status.state}, {status.pending} pending, {status.in_flight} in flight"
    if status.quarantined:
        line += f", {status.quarantined} quarantined"
    return line


def open_journal(config: Config, notifier: Notifier, clock: Clock = SYSTEM) -> Journal:
    """The journal `posd run` created; never a new one (delivery has nothing to append)."""
    try:
        if not (config.state_dir / JOURNAL_FILE).is_file():
            raise NoJournalYet(
                f"no journal in {config.state_dir} yet: `posd run` creates it "
                "(start posd.service first; this service retries)"
            )
        return Journal.open(config.state_dir, config.journal, clock=clock.time)
    except PosdError as error:
        log.critical("syncd.journal_refused", error=str(error), code=error.code)
        notifier.status(f"refused to start: {error.code}: {error}")
        raise for_systemd(error) from error


def run(config: Config) -> int:
    """`posd sync run` with `config`, its caller holding `sync.lock`: deliver until
    SIGTERM."""
    configure_logging(os.environ.get(LOG_LEVEL_ENV) or config.log.level)
    config_session(config)  # an unknown profile, no region: exit 2 now
    notifier = Notifier()
    clock = process_clock()
    journal = open_journal(config, notifier, clock)
    try:
        delivery = DeliveryThread(journal, config, clock).start()
        return SyncDaemon(config, journal, delivery, notifier).run()
    finally:
        journal.close()


class SyncDaemon:
    def __init__(
        self, config: Config, journal: Journal, delivery: DeliveryThread, notifier: Notifier
    ) -> None:
        self.config = config
        self.journal = journal
        self.delivery = delivery
        self.notifier = notifier
        self.started_at = time.time()
        self._signals = Signals()
        self.exit_code = 0

    def run(self) -> int:
        self._signals.install()
        status = self.delivery.status()
        self._publish(status)
        self.notifier.ready(summary_line(status))
        log.info("syncd.ready", version=posd_version(), journal_id=self.journal.journal_id)
        self._main_loop()
        self.stop()
        return self.exit_code

    def _publish(self, status: SyncStatus, stopped: bool = False) -> None:
        report = DeliveryReport(os.getpid(), self.started_at, time.time(), status, stopped)
        try:
            write_report(self.config.state_dir, report)
        except OSError as error:
            log.warning("syncd.status_file_failed", error=str(error))

    def _main_loop(self) -> None:
        notifier = self.notifier
        tick = min(TICK_S, notifier.watchdog_interval_s or TICK_S)
        last_line = ""
        last_status: SyncStatus | None = None
        last_tick = last_publish = time.monotonic()
        while not self._signals.stop_requested:
            self._signals.wait(PUBLISH_S)
            if self._signals.take_reload():
                self._reload()
            now = time.monotonic()
            status = self.delivery.status()
            if status != last_status or now - last_publish >= TICK_S:
                self._publish(status)
                last_status, last_publish = status, now
            if now - last_tick < tick:
                continue
            last_tick = now
            if not self.delivery.alive:
                # Exit 1 (systemd starts it again): a daemon whose engine is gone must not
                # go on saying in its status file that it delivers.
                log.error("syncd.engine_dead")
                self.exit_code = ENGINE_DEAD
                return
            if notifier.watchdog_interval_s is not None:
                notifier.watchdog()
            line = summary_line(status)
            if line != last_line:
                notifier.status(line)
                last_line = line

    def stop(self) -> None:
        """Let the requests in flight finish, hand the leases back, say so."""
        self.notifier.stopping("stopping: finishing the requests in flight")
        log.info("syncd.stopping")
        stopped = self.delivery.stop(DELIVERY_STOP_S)
        released = self.journal.release_leases()
        self._publish(self.delivery.status(), stopped=True)
        log.info("syncd.stopped", stopped_in_time=stopped, leases_released=released)

    def _reload(self) -> None:
        try:
            new = load_config(self.config.path)
        except ConfigError as error:
            log.error("syncd.reload_failed", error=str(error))
            return
        configure_logging(os.environ.get(LOG_LEVEL_ENV) or new.log.level)
        if new.sync != self.config.sync:
            self.delivery.retune(new.sync, DELIVERY_STOP_S)
        needs_restart = [s for s in RESTART_SECTIONS if getattr(new, s) != getattr(self.config, s)]
        if needs_restart:
            log.warning("syncd.restart_required", sections=needs_restart)
        self.config = dataclasses.replace(self.config, sync=new.sync, log=new.log)
        log.info("syncd.reloaded")
