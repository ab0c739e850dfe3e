"""Arguments every command group declares the same way: `--config`, `--state-dir`, `--json`,
and numbers that must be finite and positive (`--timeout nan` would otherwise never end)."""

from __future__ import annotations

import argparse
import math
from collections.abc import Callable
from pathlib import Path

from posd.paths import DEFAULT_CONFIG_PATH

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


def add_location_arguments(parser: argparse.ArgumentParser) -> None:
    """`--state-dir DIR | --config FILE`: commands that read the state dir directly."""
    where = parser.add_mutually_exclusive_group()
    where.add_argument("--state-dir", type=Path, help="the daemon's state directory")
    where.add_argument(
        "--config",
        type=Path,
        help=f"take the state directory from this config (default {DEFAULT_CONFIG_PATH})",
    )


def positive_seconds(maximum: float | None = None) -> Callable[[str], float]:
    """An argparse `type`: a finite number of seconds > 0 (and <= `maximum` if given)."""

    def parse(text: str) -> float:
        try:
            value = float(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{text!r} is not a number of seconds") from None
        if not math.isfinite(value) or value <= 0:
            raise argparse.ArgumentTypeError(f"{text!r}: expected a finite number of seconds > 0")
        if maximum is not None and value > maximum:
            raise argparse.ArgumentTypeError(f"{text!r}: at most {maximum:g} seconds")
        return value

    return parse


def positive_int(maximum: int) -> Callable[[str], int]:
    """An argparse `type`: an integer in 1..`maximum`."""

    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{text!r} is not a whole number") from None
        if not 1 <= value <= maximum:
            raise argparse.ArgumentTypeError(f"{text!r}: expected 1 to {maximum}")
        return value

    return parse


Handler = Callable[[argparse.Namespace], int]


def lazy(module: str, function: str) -> Handler:
    """A handler imported when the command runs, not when the parser is built: `--help` and
    the thin-client commands do not pay for boto3, the drivers or the journal."""

    def handler(args: argparse.Namespace) -> int:
        from importlib import import_module

        target: Handler = getattr(import_module(module), function)
        return target(args)

    return handler
