"""`posd run`: tell systemd, serve, reload on SIGHUP, and stop cleanly.

The state dir's lock comes held (`lock.py`, taken by the CLI before anything else: one
daemon per state dir, a second one exits at once naming the holder); then the API's socket
(`listener.py`: systemd's, or bound here under the lock), then the parts, composed and
started (`compose.py`); this module is their life cycle. The main thread waits for signals
and ticks: systemd's watchdog is fed from here, and only while the API and device threads are
alive. Delivery is the other process (`posd sync run`, `posd.syncd`).
"""

from __future__ import annotations

import dataclasses
import os
import sys
import time

import structlog

from posd.assembly import process_clock
from posd.config import Config, load_config
from posd.daemon.compose import DaemonParts, compose, runtime_rules
from posd.daemon.limits import needs_backlog
from posd.daemon.listener import Listener, open_listener
from posd.daemon.lock import StateDirLock
from posd.daemon.notify import Notifier
from posd.daemon.server import socket_gid
from posd.daemon.signals import Signals
from posd.errors import ConfigError, PosdError
from posd.logs import configure_logging
from posd.version import posd_version

log = structlog.get_logger("posd.daemon")

LOG_LEVEL_ENV = "POSD_LOG_LEVEL"
TICK_S = 1.0
# Stopping, within systemd's TimeoutStopSec (20 s): the payment in hand, then the API.
PAYMENT_GRACE_S = 10.0
CANCEL_GRACE_S = 2.0
API_STOP_S = 2.0
# Sections whose change needs a restart; the others are reloaded by SIGHUP (`[sync]` is the
# delivery daemon's: it reloads it on its own SIGHUP).
RESTART_SECTIONS = ("terminal", "api", "aws", "keys", "journal", "devices", "identity")
# The interpreter's GIL switch interval in `posd run` (Python's default: 5 ms). A payment's
# thread hands off to the card reader's and back several times, and with delivery's threads
# busy each hand-off may wait a whole interval: at 1 ms, capture's p99 while a backlog drained
# was lower and delivery went no slower (bench/capture_api.py; the figures are in
# docs/performance.md).
SWITCH_INTERVAL_S = 0.001
# How often the main loop takes an exact summary of the backlog while an offline limit needs
# one: it keeps the journal's free upper bound of the backlog fresh (posd/journal/backlog.py,
# trusted for 3 s), so a payment checks its limits against the bound instead of scanning the
# backlog itself. Delivery, which used to take it, is another process now.
BACKLOG_REFRESH_S = 1.0


def log_level(config: Config) -> str:
    return os.environ.get(LOG_LEVEL_ENV) or config.log.level


def run(config: Config, lock: StateDirLock) -> int:
    """`posd run` with `config`, holding the state dir's `lock`: take the socket, compose,
    serve until SIGTERM, stop; the exit status."""
    configure_logging(log_level(config))
    sys.setswitchinterval(SWITCH_INTERVAL_S)
    gid = socket_gid(config.api.socket_group, str(config.path))  # a config check: exit 2
    notifier = Notifier()
    try:
        listener = open_listener(config.api.socket, gid, lock)
    except PosdError as error:
        notifier.status(f"refused to start: {error.code}: {error}")
        raise
    try:
        return Daemon(compose(config, notifier, process_clock())).run(listener)
    finally:
        listener.close()  # before the lock goes: its file is unlinked only while we own it


class Daemon:
    def __init__(self, parts: DaemonParts) -> None:
        self.parts = parts
        self.config = parts.config
        self._signals = Signals()
        self._backlog_read_at = float("-inf")

    def run(self, listener: Listener) -> int:
        parts = self.parts
        parts.server.start(listener)
        self._signals.install()
        parts.notifier.ready(parts.views.summary_line())
        socket = "systemd (socket activation)" if listener.activated else str(listener.path)
        log.info("daemon.ready", socket=socket, version=posd_version())
        self._main_loop()
        self.stop()
        return 0

    def _main_loop(self) -> None:
        notifier = self.parts.notifier
        tick = min(TICK_S, notifier.watchdog_interval_s or TICK_S)
        last_status = ""
        while not self._signals.stop_requested:
            self._signals.wait(tick)
            if self._signals.take_reload():
                self._reload()
            self.refresh_backlog()
            dead = self._dead_threads()
            if dead:
                self.parts.errors.failed("daemon.thread_dead", threads=dead)
            elif notifier.watchdog_interval_s is not None:
                notifier.watchdog()
            line = self.parts.views.summary_line()
            if line != last_status:
                notifier.status(line)
                last_status = line

    def refresh_backlog(self) -> None:
        """An exact summary now and then, while a limit needs the backlog (BACKLOG_REFRESH_S):
        on the journal's reader connection, so no payment waits for it."""
        now = time.monotonic()
        if now - self._backlog_read_at < BACKLOG_REFRESH_S:
            return
        if needs_backlog(self.parts.rules().limits):
            self.parts.journal.summary()  # observed by the journal's backlog bound
        self._backlog_read_at = now

    def _dead_threads(self) -> list[str]:
        alive = {
            "api": self.parts.server.alive,
            "devices": self.parts.devices.alive,
        }
        return [name for name, ok in alive.items() if not ok]

    def stop(self) -> None:
        """Drain and stop: the payment in hand, the API, devices, keys, journal.

        What SIGTERM ends in; tests that drive `parts.app` without `run` call it themselves.
        """
        parts = self.parts
        parts.notifier.stopping("stopping: finishing the payment in hand")
        log.info("daemon.stopping")
        parts.lane.close()
        if not parts.lane.wait_idle(PAYMENT_GRACE_S):
            parts.devices.cancel_all()
            parts.lane.wait_idle(CANCEL_GRACE_S)
        parts.server.stop(API_STOP_S)
        parts.devices.stop()
        parts.keys.close()
        parts.journal.close()
        log.info("daemon.stopped")

    def _reload(self) -> None:
        try:
            new = load_config(self.config.path, signs=False)  # capture never signs
        except ConfigError as error:
            log.error("daemon.reload_failed", error=str(error))
            return
        configure_logging(log_level(new))
        self.parts.rules.current = runtime_rules(new)
        needs_restart = [s for s in RESTART_SECTIONS if getattr(new, s) != getattr(self.config, s)]
        if needs_restart:
            log.warning("daemon.restart_required", sections=needs_restart)
        self.config = dataclasses.replace(
            self.config, offline=new.offline, sync=new.sync, payments=new.payments, log=new.log
        )
        log.info("daemon.reloaded", offline=dataclasses.asdict(new.offline))
