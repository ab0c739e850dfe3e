"""`make dev`: the local AWS stand-ins a development daemon needs, and how to point it at them.

`posd run --config config/dev.toml` (and `posd sync run`, delivery) needs an AWS endpoint at
the config's `[aws] endpoint_url`, credentials botocore accepts, the `[sync]` event bus
(routed to a queue, so what is delivered can be read) and the consumer's watermark table.
This starts moto on that endpoint, creates all of it (and a KMS key under `alias/posd-dev`,
for trying `[keys] provider = "kms"`), prints the environment to export and the commands, then
waits until Ctrl-C (SIGINT) or SIGTERM. Each `export` line is shell syntax, one per variable.
"""

from __future__ import annotations

import argparse
import shlex
import signal
import socket
import sys
import threading
from pathlib import Path
from types import FrameType
from urllib.parse import urlsplit

from cloud.tables import TableNames, create_tables
from demo.backend import route_bus_to_queue
from demo.localaws.emulator import EMULATOR_CREDENTIALS, EMULATOR_REGION, LocalAws
from posd.config import load_config
from posd.errors import ConfigError, PosdError

DEFAULT_CONFIG = Path("config/dev.toml")
KMS_ALIAS = "alias/posd-dev"
# The consumer's tables, `posd-watermarks` among them (the default `[sync] watermark_table`).
TABLE_PREFIX = "posd"
READY_LINE = "# ready: Ctrl-C stops the stand-ins"


def _endpoint(config_path: Path) -> tuple[str, int, str]:
    """Host and port to serve on, from the config's `[aws] endpoint_url`; and the URL."""
    config = load_config(config_path)
    url = config.aws.endpoint_url
    parts = urlsplit(url or "")
    if not url or parts.scheme != "http" or parts.hostname is None or parts.port is None:
        raise ConfigError(
            str(config_path),
            "aws.endpoint_url",
            "make dev serves the stand-ins on this URL: set it to http://127.0.0.1:PORT",
        )
    return parts.hostname, parts.port, url


def _check_free(host: str, port: int, url: str) -> None:
    """A port in use is one line naming it (werkzeug would print a paragraph and exit 1)."""
    with socket.socket() as probe:
        try:
            probe.bind((host, port))
        except OSError as error:
            raise PosdError(
                f"cannot serve the stand-ins on {url} ({error.strerror}): is another "
                "emulator or `make dev` already running there?"
            ) from None


def environment(endpoint_url: str) -> dict[str, str]:
    """What the daemon's shell needs: dummy credentials moto accepts, the region, the endpoint."""
    return {
        "AWS_ACCESS_KEY_ID": EMULATOR_CREDENTIALS["aws_access_key_id"],
        "AWS_SECRET_ACCESS_KEY": EMULATOR_CREDENTIALS["aws_secret_access_key"],
        "AWS_REGION": EMULATOR_REGION,
        "AWS_ENDPOINT_URL": endpoint_url,
    }


def serve(config_path: Path, stop: threading.Event) -> None:
    config = load_config(config_path)
    host, port, url = _endpoint(config_path)
    _check_free(host, port, url)
    aws = LocalAws(host, port)
    with aws:
        route = route_bus_to_queue(
            aws.client("events"), aws.client("sqs"), config.sync.event_bus_name, config.sync.source
        )
        create_tables(aws.client("dynamodb"), TableNames.prefixed(TABLE_PREFIX))
        kms = aws.client("kms")
        key_id = kms.create_key(Description="posd development data keys")["KeyMetadata"]["KeyId"]
        kms.create_alias(AliasName=KMS_ALIAS, TargetKeyId=key_id)
        print(f"# local AWS stand-ins (moto) on {url}")
        print(f"# event bus {route.bus_name!r} -> SQS queue {route.queue_url}")
        print(f'# KMS key {KMS_ALIAS} (for [keys] provider = "kms", kms_key_id = "{KMS_ALIAS}")')
        print("# in another shell:")
        for name, value in environment(url).items():
            print(f"export {name}={shlex.quote(value)}")
        config_arg = shlex.quote(str(config_path))
        print(f"# then: .venv/bin/posd run --config {config_arg}")
        print(f"# and in a third shell (delivery): .venv/bin/posd sync run --config {config_arg}")
        print(READY_LINE, flush=True)
        stop.wait()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m demo.dev", description=__doc__)
    parser.add_argument("--config", type=Path, default=DEFAULT_CONFIG)
    args = parser.parse_args(argv)
    stop = threading.Event()

    def on_signal(signum: int, frame: FrameType | None) -> None:
        stop.set()

    signal.signal(signal.SIGINT, on_signal)
    signal.signal(signal.SIGTERM, on_signal)
    try:
        serve(args.config, stop)
    except PosdError as error:
        print(f"make dev: {error}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
