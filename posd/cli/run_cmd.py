"""`posd run`: the capture daemon (under systemd, `Type=notify`); delivery is `posd sync run`."""

from __future__ import annotations

import argparse
from typing import Any

from posd.cli.args import add_config_argument


def register(subparsers: Any) -> None:
    parser = subparsers.add_parser(
        "run", help="run the capture daemon: devices, keys, journal and the register's API"
    )
    add_config_argument(parser)
    parser.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    # Imported here: the other commands do not pay for the daemon's imports.
    from posd.config import load_config
    from posd.daemon.lock import StateDirLock

    # A bad config exits 2 before anything starts. Capture never signs: `[identity]`'s private
    # key is the delivery daemon's user's alone (systemd/posd-sync.service), never read here.
    config = load_config(args.config, signs=False)
    # The state dir's lock first, before the daemon's (slow) imports: a second `posd run` on
    # this state dir is refused at once, naming the PID that holds it.
    with StateDirLock.acquire(config.state_dir) as lock:
        from posd.daemon.runtime import run as run_daemon

        return run_daemon(config, lock)
