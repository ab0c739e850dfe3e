"""`posd run`: the daemon (under systemd, `Type=notify`)."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from posd.paths import DEFAULT_CONFIG_PATH


def register(subparsers: Any) -> None:
    parser = subparsers.add_parser(
        "run", help="run the daemon: devices, journal, delivery and the register's API"
    )
    parser.add_argument(
        "--config",
        type=Path,
        default=DEFAULT_CONFIG_PATH,
        help=f"config file (default {DEFAULT_CONFIG_PATH})",
    )
    parser.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    # Imported here: the other commands do not pay for the daemon's imports.
    from posd.config import load_config
    from posd.daemon.runtime import Daemon

    config = load_config(args.config)  # a bad config exits 2 before anything starts
    return Daemon(config).run()
