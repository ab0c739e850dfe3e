"""Entry point of the `posd` command.

Each command group lives in its own module exposing `register(subparsers)`; a handler returns
the process exit code. Errors of the one hierarchy (`wire.errors.WireError`: every `PosdError`
and the contract's own) become a one-line message on stderr and their exit code, never a
traceback.
"""

from __future__ import annotations

import argparse
import contextlib
import io
import json
import os
import sys
from collections.abc import Callable, Sequence
from importlib import import_module
from typing import NoReturn

from posd.cli import help_text
from posd.errors import PosdError
from posd.redact import redact_text
from posd.version import posd_version
from wire.errors import WireError

HELP_FLAGS = ("-h", "--help")
JSON_FLAG = "--json"
# Where `--json` given before the command (`posd --json status`) lands: a name of its own, as
# a subcommand's own `--json` default (False) would overwrite it.
JSON_EARLY_DEST = "json_before_command"
VERSION_FLAG = "--version"
LOG_LEVEL_ENV = "POSD_LOG_LEVEL"
DEFAULT_CLI_LOG_LEVEL = "warning"  # the CLI's output is its result; logs only for trouble

COMMAND_MODULES = (
    "posd.cli.status_cmd",
    "posd.cli.doctor_cmd",
    "posd.cli.diag_cmd",
    "posd.cli.config_cmd",
    "posd.cli.journal_cmd",
    "posd.cli.sync_cmd",
    "posd.cli.decode_cmd",
    "posd.cli.sim_cmd",
    "posd.cli.devices_cmd",
    "posd.cli.run_cmd",
    "posd.cli.credentials_cmd",
)


class ArgumentError(PosdError):
    code = "bad_arguments"


class PosdArgumentParser(argparse.ArgumentParser):
    """argparse, but a usage error is a `PosdError`: redacted, JSON with `--json`, exit 2.

    argparse quotes what it did not understand, and a technician who forgets to quote a track
    or a hex dump would otherwise see a card number echoed back.
    """

    def error(self, message: str) -> NoReturn:
        command = self.prog.removeprefix("posd").strip()
        where = f"{command}: " if command else ""
        raise ArgumentError(f"{where}{message} (see: {self.prog} --help)")


def build_parser() -> argparse.ArgumentParser:
    parser = PosdArgumentParser(
        prog="posd", description="Store-edge POS terminal daemon and technician CLI."
    )
    parser.add_argument(VERSION_FLAG, action="version", version=f"posd {posd_version()}")
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for name in COMMAND_MODULES:
        import_module(name).register(subparsers)
    accept_json_before_commands(parser)
    help_text.apply(parser)
    return parser


def accept_json_before_commands(parser: argparse.ArgumentParser) -> None:
    """`--json` on `posd` and on every command group, so it may come before the subcommand
    as well as after it (`posd --json journal list` = `posd journal --json list` =
    `posd journal list --json`)."""
    groups = [parser] + [
        sub for _, sub, _ in help_text.walk(parser) if help_text.subparsers_of(sub)
    ]
    for group in groups:
        if not any(JSON_FLAG in action.option_strings for action in group._actions):
            group.add_argument(
                JSON_FLAG,
                dest=JSON_EARLY_DEST,
                action="store_true",
                default=argparse.SUPPRESS,
                help="print one JSON object (also accepted after the subcommand)",
            )


def parse_arguments(parser: argparse.ArgumentParser, argv: Sequence[str]) -> argparse.Namespace:
    """Parse, with a `--json` given before the subcommand applied to the command."""
    args = parser.parse_args(argv)
    if getattr(args, JSON_EARLY_DEST, False):
        if not hasattr(args, "json"):
            command = getattr(args, "command", None) or "this command"
            raise ArgumentError(f"{command} prints no result: it takes no --json")
        args.json = True
    return args


def _wants_json(argv: Sequence[str]) -> bool:
    return JSON_FLAG in argv


def _wants_help(argv: Sequence[str]) -> bool:
    return any(arg in HELP_FLAGS for arg in argv)


def _help_as_json(parser: argparse.ArgumentParser, argv: Sequence[str]) -> int:
    """`--help` with `--json`: the help text, as the one JSON object `--json` promises."""
    captured = io.StringIO()
    with contextlib.redirect_stdout(captured):
        try:
            parser.parse_args(argv)
        except SystemExit as done:
            if done.code not in (0, None):
                raise
    print(json.dumps({"help": redact_text(captured.getvalue())}))
    return 0


def main(
    argv: Sequence[str] | None = None,
    parser_factory: Callable[[], argparse.ArgumentParser] = build_parser,
) -> int:
    """Run one command; `parser_factory` lets a tool outside the product (`python -m demo`)
    share the same error handling, logging set-up and `--json` contract."""
    args_list = list(sys.argv[1:] if argv is None else argv)
    try:
        parser = parser_factory()
        if args_list[:1] == [VERSION_FLAG] and _wants_json(args_list):
            print(json.dumps({"version": posd_version()}))
            return 0
        if _wants_json(args_list) and _wants_help(args_list):
            return _help_as_json(parser, args_list)
        args = parse_arguments(parser, args_list)
        from posd.logs import configure_logging

        configure_logging(os.environ.get(LOG_LEVEL_ENV, DEFAULT_CLI_LOG_LEVEL))
        code: int = args.handler(args)
    except WireError as error:  # PosdError and the contract's own (EnvelopeError...)
        message = redact_text(str(error))
        if _wants_json(args_list):
            print(json.dumps({"error": error.code, "message": message}))
        print(f"posd: error: {message}", file=sys.stderr)
        return error.exit_code
    except OSError as error:
        # A file the user named that is not what it should be: one line, not a traceback.
        where = f"{error.filename}: " if error.filename else ""
        print(f"posd: error: {where}{error.strerror or error}", file=sys.stderr)
        if _wants_json(args_list):
            print(json.dumps({"error": "os_error", "message": f"{where}{error.strerror}"}))
        return 2
    except KeyboardInterrupt:
        print("posd: interrupted", file=sys.stderr)
        return 130
    return code


def run() -> None:
    sys.exit(main())
