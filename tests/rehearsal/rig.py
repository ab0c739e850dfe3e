"""The chaos rig (tests/chaos/rig.py) for a rehearsal: both daemons on one rehearsal clock
(`POSD_REHEARSAL_CLOCK`, sync/clock.py), the production config's key rotation and sync
timers, the `[offline]` limits under rehearsal, one currency."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from demo.devconfig import DevConfig, serial_card_reader, simulated_palm
from sync.clock import REHEARSAL_ENV, RehearsalClock
from tests.chaos.rig import PALM_CREDENTIAL, SOURCE, STORE_ID, TERMINAL_ID, Rig
from tests.posd.daemon.harness import Daemon
from tests.terminal_identity import lane_identity

CURRENCY = "EUR"
# What the chaos rig shortens for speed, at the real defaults (config/posd.toml) but for the
# connection timeouts (the link is refused, never slow) and how soon a lane probes a link
# that came back (`probe_max_seconds`: the drain's first seconds wait for it).
SYNC = {"connect_timeout_seconds": 0.5, "read_timeout_seconds": 2.0}


class RehearsalRig(Rig):
    def __init__(
        self,
        directory: Path,
        clock: RehearsalClock,
        offline: dict[str, Any],
        probe_max_seconds: float,
    ) -> None:
        super().__init__(directory)
        self.clock = clock
        self.offline = offline
        self.probe_max_seconds = probe_max_seconds

    def write_config(self, min_free_bytes: int) -> None:
        assert self.route is not None
        DevConfig(
            store_id=STORE_ID,
            terminal_id=TERMINAL_ID,
            mode="production",
            api={"socket": "run/api.sock", "socket_group": ""},
            aws={
                "region": "us-east-1",
                "kms_endpoint_url": self.kms.url,
                "events_endpoint_url": self.events.url,
                # the watermark table through the KMS proxy: unreachable with the rest of AWS
                "dynamodb_endpoint_url": self.kms.url,
                "connect_timeout_seconds": 0.5,
                "read_timeout_seconds": 2.0,
            },
            keys={
                "provider": "kms",
                "kms_key_id": self.kms_key,
                "offline_key_id": self.offline_key,
            },
            journal={"min_free_bytes": min_free_bytes},
            sync={
                "event_bus_name": self.route.bus_name,
                "source": SOURCE,
                "probe_min_seconds": min(1.0, self.probe_max_seconds),
                "probe_max_seconds": self.probe_max_seconds,
                **SYNC,
            },
            offline=self.offline,
            payments={"currencies": [CURRENCY]},
            identity=lane_identity(self.dir / "pki", STORE_ID, TERMINAL_ID),
            devices={
                "card_reader": serial_card_reader(self.reader.port),
                "palm_scanner": simulated_palm(
                    {"shopper": PALM_CREDENTIAL}, present="shopper", scan_time_s=0.01
                ),
            },
        ).write(self.dir / "posd.toml")

    def start(self) -> None:
        """Both daemons, on the rehearsal's clock."""
        self.daemon = Daemon(self.config)
        self.daemon.extra_env[REHEARSAL_ENV] = self.clock.encode()
        self.daemon.start()
