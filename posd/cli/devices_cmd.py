"""`posd devices [test NAME]`: the parser only; the work is in `posd.cli.device_checks`."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from posd.cli.args import add_config_argument, add_json_argument, lazy, positive_seconds

IMPL = "posd.cli.device_checks"
DEFAULT_TEST_TIMEOUT_S = 10.0


def register(subparsers: Any) -> None:
    parser = subparsers.add_parser("devices", help="list configured devices, test one")
    add_config_argument(parser)
    add_json_argument(parser)
    parser.set_defaults(handler=lazy(IMPL, "list_devices"))
    actions = parser.add_subparsers(dest="devices_command", metavar="ACTION")
    test = actions.add_parser(
        "test",
        help="one round trip: a palm identify, or a card read (test amount, masked, not journaled)",
    )
    test.add_argument("name", help="the device's name in config, e.g. palm_scanner")
    test.add_argument(
        "--timeout",
        type=positive_seconds(),
        default=DEFAULT_TEST_TIMEOUT_S,
        help=f"seconds to wait for a palm or card (default {DEFAULT_TEST_TIMEOUT_S:g})",
    )
    # SUPPRESS: `posd devices --json test X` and `posd devices test X --json` both work.
    test.add_argument("--config", type=Path, default=argparse.SUPPRESS, help="config file")
    test.add_argument("--json", action="store_true", default=argparse.SUPPRESS)
    test.set_defaults(handler=lazy(IMPL, "test_device"))
