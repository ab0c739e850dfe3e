"""`posd credentials serve`: the lane's AWS credentials on loopback (posd-credentials.service).

IAM Roles Anywhere's signing helper (`aws_signing_helper serve`, installed by the store)
serves short-lived credentials over an IMDSv2-compatible endpoint. This command runs it with
what the config already says, so the unit and the daemons cannot disagree: the certificate
and key of `[identity]` and the port of `[aws] credentials_endpoint`, where both daemons and
the CLI ask. The three ARNs come from the environment (`/etc/posd/roles-anywhere.env`, the
unit's EnvironmentFile). It replaces itself with the helper (exec): systemd supervises the
helper directly.
"""

from __future__ import annotations

import argparse
import os
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any, NoReturn
from urllib.parse import urlsplit

from posd.cli.args import add_config_argument
from posd.errors import ConfigError, UsageError

HELPER_NAME = "aws_signing_helper"
HELPER_ENV = "POSD_SIGNING_HELPER"  # another path to the helper (tests, odd installs)
DEFAULT_HELPER = Path("/usr/local/bin") / HELPER_NAME
ARN_ENV = ("TRUST_ANCHOR_ARN", "PROFILE_ARN", "ROLE_ARN")
ARN_FILE = "/etc/posd/roles-anywhere.env"
LOOPBACK_HOSTS = ("127.0.0.1", "localhost")


class SigningHelperMissing(UsageError):
    code = "signing_helper_missing"


def register(subparsers: Any) -> None:
    parser = subparsers.add_parser(
        "credentials", help="the lane's AWS credentials (IAM Roles Anywhere)"
    )
    commands = parser.add_subparsers(dest="credentials_command", metavar="ACTION", required=True)
    serve = commands.add_parser(
        "serve",
        help="run the signing helper on [aws] credentials_endpoint (posd-credentials.service)",
    )
    add_config_argument(serve)
    serve.set_defaults(handler=serve_credentials)


@dataclass(frozen=True)
class HelperCommand:
    path: str
    argv: list[str]


def helper_command(config_path: Path, environ: dict[str, str]) -> HelperCommand:
    """The helper and its arguments, from the config and `environ`; a clear error for what
    is missing."""
    from posd.config import load_config

    config = load_config(config_path)
    identity = config.identity
    if identity.certificate_file is None or identity.private_key_file is None:
        raise ConfigError(
            str(config.path),
            "identity",
            "certificate_file and private_key_file (the helper signs with them)",
        )
    endpoint = config.aws.credentials_endpoint
    where = urlsplit(endpoint or "")
    if where.scheme != "http" or where.hostname not in LOOPBACK_HOSTS or where.port is None:
        raise ConfigError(
            str(config.path),
            "aws.credentials_endpoint",
            'a loopback URL with a port, e.g. "http://127.0.0.1:9911/" (the helper listens '
            "there for both daemons)",
        )
    missing = [name for name in ARN_ENV if not environ.get(name)]
    if missing:
        raise UsageError(
            f"{', '.join(missing)} not set: put the Roles Anywhere ARNs in {ARN_FILE} "
            "(posd-credentials.service reads it; docs/operations.md, AWS credentials)"
        )
    helper = environ.get(HELPER_ENV) or shutil.which(HELPER_NAME) or str(DEFAULT_HELPER)
    if not os.access(helper, os.X_OK):
        raise SigningHelperMissing(
            f"{helper} not found or not executable: install IAM Roles Anywhere's credential "
            f"helper ({HELPER_NAME}) there, or name it in {HELPER_ENV}"
        )
    argv = [
        helper,
        "serve",
        "--port",
        str(where.port),
        "--certificate",
        str(identity.certificate_file),
        "--private-key",
        str(identity.private_key_file),
        "--trust-anchor-arn",
        environ["TRUST_ANCHOR_ARN"],
        "--profile-arn",
        environ["PROFILE_ARN"],
        "--role-arn",
        environ["ROLE_ARN"],
    ]
    return HelperCommand(helper, argv)


def serve_credentials(args: argparse.Namespace) -> NoReturn:
    command = helper_command(Path(args.config), dict(os.environ))
    os.execv(command.path, command.argv)  # noqa: S606 (the helper, by its path: no shell)
