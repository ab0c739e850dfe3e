"""`posd run`: the daemon (under systemd, `Type=notify`)."""

from __future__ import annotations

import argparse
from typing import Any

from posd.cli.args import add_config_argument


def register(subparsers: Any) -> None:
    parser = subparsers.add_parser(
        "run", help="run the daemon: devices, journal, delivery and the register's API"
    )
    add_config_argument(parser)
    parser.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    # Imported here: the other commands do not pay for the daemon's imports.
    from posd.config import load_config
    from posd.daemon.runtime import run as run_daemon

    config = load_config(args.config)  # a bad config exits 2 before anything starts
    return run_daemon(config)
