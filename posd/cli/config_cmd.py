"""`posd config check`: validate a configuration file, and what `[aws]` names (the profile
must exist and a region must be known) the way the daemon will resolve it."""

from __future__ import annotations

import argparse
from typing import Any

from posd.cli.args import add_config_argument, add_json_argument
from posd.cli.output import emit, key_values


def register(subparsers: Any) -> None:
    parser = subparsers.add_parser("config", help="configuration tools")
    commands = parser.add_subparsers(dest="config_command", metavar="ACTION", required=True)
    check = commands.add_parser("check", help="validate a config file")
    add_config_argument(check)
    add_json_argument(check)
    check.set_defaults(handler=check_config)


def check_config(args: argparse.Namespace) -> int:
    from posd.aws import config_session
    from posd.config import load_config

    config = load_config(args.config)
    aws = config_session(config)
    result = {
        "ok": True,
        "path": str(config.path),
        "store_id": config.store_id,
        "terminal_id": config.terminal_id,
        "mode": config.terminal.mode,
        "state_dir": str(config.state_dir),
        "key_provider": config.keys.provider,
        "offline_key": config.keys.offline_key_id is not None,
        "event_bus": config.sync.event_bus_name,
        "aws_region": aws.region_name,
        "aws_profile": aws.profile_name,
        "devices": {name: device.driver for name, device in config.devices.items()},
    }
    emit(
        result,
        args.json,
        lambda r: "config ok\n" + key_values({k: v for k, v in r.items() if k != "ok"}),
    )
    return 0
