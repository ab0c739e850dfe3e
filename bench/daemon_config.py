"""The config the benchmarks run `posd run` with: development mode, a local key, simulated
card reader and palm scanner with no added latency, delivery to a local endpoint."""

from __future__ import annotations

from pathlib import Path

from bench.backlog import KEY_FILE
from demo.devconfig import DevConfig, local_keys, simulated_card_reader, simulated_palm

STORE_ID, TERMINAL_ID = "store-bench", "lane-01"
STATE_DIR = "state"  # relative to the directory the config is in (the daemon's cwd)
SOCKET = "api.sock"
PALM_IDENTITY, PALM_TOKEN = "bench", "tok-bench-0001"


def write_daemon_config(
    where: Path, events_url: str, palm_present: str | None = PALM_IDENTITY
) -> Path:
    """`where/posd-bench.toml`; the state dir is `where/state`, the API socket
    `where/api.sock`. `palm_present=None`: nobody at the palm scanner, so a palm payment waits
    out its timeout (something to cancel)."""
    return DevConfig(
        store_id=STORE_ID,
        terminal_id=TERMINAL_ID,
        state_dir=STATE_DIR,
        api={"socket": where / SOCKET, "socket_group": ""},
        aws={"region": "us-east-1", "events_endpoint_url": events_url},
        keys=local_keys(f"{STATE_DIR}/{KEY_FILE}"),
        sync={"event_bus_name": "default"},
        devices={
            "card_reader": simulated_card_reader(),
            "palm_scanner": simulated_palm(
                {PALM_IDENTITY: PALM_TOKEN}, present=palm_present, scan_time_s=0.0
            ),
        },
    ).write(where / "posd-bench.toml")
