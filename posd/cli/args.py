"""Arguments every command group declares the same way: `--config` and `--json`."""

from __future__ import annotations

import argparse
from pathlib import Path

from posd.config import DEFAULT_CONFIG_PATH

JSON_HELP = "print one JSON object"


def add_config_argument(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--config",
        type=Path,
        default=DEFAULT_CONFIG_PATH,
        help=f"config file (default {DEFAULT_CONFIG_PATH})",
    )


def add_json_argument(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--json", action="store_true", help=JSON_HELP)
