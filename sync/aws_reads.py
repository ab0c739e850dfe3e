"""The engine's small AWS reads beside delivery (the proven watermark, the published fair
rate): how their clients are configured and how their failures are named.

Their clients make one attempt (no SDK retries: the next poll is the retry, and a read that
fails fast is told apart from one that stalls) and hold one connection.

A failure's kind tells a change of failure from the same one again, so each is logged once,
not per read: the AWS error code of a refusal (access denied, no such parameter, ...),
`unreachable` for a connection that failed however it failed (refused, reset, timed
out: one state, the endpoint is out of reach), `malformed` for an answer that is not what was
asked for, or another botocore error's class name.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from botocore.config import Config
from botocore.exceptions import BotoCoreError, ClientError, HTTPClientError
from botocore.exceptions import ConnectionError as BotoConnectionError

if TYPE_CHECKING:
    import boto3

NO_SDK_RETRIES = {"total_max_attempts": 1, "mode": "standard"}
UNREACHABLE = "unreachable"
MALFORMED = "malformed"


def read_client_config(connect_timeout: float, read_timeout: float) -> Config:
    """botocore settings of one side read: these timeouts, no SDK retries, one connection."""
    return Config(
        connect_timeout=connect_timeout,
        read_timeout=read_timeout,
        retries=dict(NO_SDK_RETRIES),  # type: ignore[arg-type]
        max_pool_connections=1,  # one read at a time
        tcp_keepalive=True,
    )


def side_read_client(
    service: str,
    config: Config,
    *,
    region: str | None,
    endpoint_url: str | None,
    session: boto3.Session | None,
) -> Any:
    """A `service` client for side reads (`session`'s credentials, else the default chain)."""
    import boto3

    chosen: Any = session or boto3.Session()  # Any: the stubs type `client` per service name
    return chosen.client(
        service, region_name=region, endpoint_url=endpoint_url or None, config=config
    )


def failure_of(error: ClientError | BotoCoreError) -> tuple[str, str]:
    """The failure's kind and a message naming it."""
    if isinstance(error, ClientError):
        details = error.response.get("Error", {})
        code = str(details.get("Code") or "ClientError")
        return code, f"{code}: {details.get('Message') or error}"
    unreachable = isinstance(error, (BotoConnectionError, HTTPClientError))
    kind = UNREACHABLE if unreachable else type(error).__name__
    return kind, f"{type(error).__name__}: {error}"
