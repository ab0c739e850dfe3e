"""The sync engine running in its own thread of `posd sync run`, stoppable, and retunable on
SIGHUP."""

from __future__ import annotations

import dataclasses
import threading

from posd.assembly import sync_engine
from posd.config import Config
from posd.journal import Journal
from sync.clock import SYSTEM, Clock
from sync.settings import SyncSettings
from sync.status import SyncStatus


class DeliveryThread:
    def __init__(self, journal: Journal, config: Config, clock: Clock = SYSTEM) -> None:
        self._journal = journal
        self._config = config
        self._clock = clock
        self._engine = sync_engine(journal, config, clock)
        self._thread = self._thread_for_engine()

    def _thread_for_engine(self) -> threading.Thread:
        return threading.Thread(target=self._engine.run, name="sync", daemon=True)

    def start(self) -> DeliveryThread:
        self._thread.start()
        return self

    @property
    def alive(self) -> bool:
        return self._thread.is_alive()

    def status(self) -> SyncStatus:
        return self._engine.status()

    def checkpoint_now(self) -> None:
        """Cover everything appended so far with a checkpoint at the engine's next round."""
        self._engine.checkpoint_now()

    def stop(self, timeout: float) -> bool:
        """Stop leasing and let the requests in flight finish (up to `timeout`).

        True if the engine stopped in time; if not, its records stay leased until their lease
        runs out and are delivered again later (at least once, never lost).
        """
        self._engine.stop()
        self._thread.join(timeout)
        if self._thread.is_alive():
            return False
        self._engine.close()
        return True

    def retune(self, settings: SyncSettings, timeout: float) -> None:
        """Go on with a new engine with `settings`, taking over from the running one (which
        stops first). In place, so everything holding this thread sees the new engine."""
        self.stop(timeout)
        self._config = dataclasses.replace(self._config, sync=settings)
        self._engine = sync_engine(self._journal, self._config, self._clock)
        self._thread = self._thread_for_engine()
        self._thread.start()
