"""This lane's item of the consumer's `watermarks` table: one DynamoDB `GetItem`.

The terminal's IAM policy allows `dynamodb:GetItem` on its own `lane_id` only
(wire/watermark.py), through a DynamoDB interface endpoint over the store's VPN. The read is
eventually consistent (half the cost, and a stale answer is harmless: the caller never moves
the watermark back).

The client follows the EventBridge client's (sync/eventbridge/client.py): the `[sync]`
connect and read timeouts and no botocore retries: the next poll is the retry, and a read
that fails fast is told apart from one that stalls. Endpoint: an explicit `endpoint_url`
(`[aws] dynamodb_endpoint_url`, else `[aws] endpoint_url`), then boto3's own resolution
(`AWS_ENDPOINT_URL_DYNAMODB`, `AWS_ENDPOINT_URL`, the shared config file).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from botocore.config import Config
from botocore.exceptions import BotoCoreError, ClientError

from sync.aws_reads import MALFORMED, failure_of, read_client_config, side_read_client
from sync.errors import WatermarkReadError
from sync.settings import SyncSettings
from wire.watermark import JOURNAL_ID, LANE_ID, PROVEN_SEQ

if TYPE_CHECKING:
    import boto3


def watermark_client_config(settings: SyncSettings) -> Config:
    """botocore settings of the watermark reads: `[sync]`'s timeouts, no SDK retries."""
    return read_client_config(settings.connect_timeout_seconds, settings.read_timeout_seconds)


def make_watermark_client(
    settings: SyncSettings,
    *,
    region: str | None = None,
    endpoint_url: str | None = None,
    session: boto3.Session | None = None,
) -> Any:
    """A DynamoDB client for the watermark reads."""
    return side_read_client(
        "dynamodb",
        watermark_client_config(settings),
        region=region,
        endpoint_url=endpoint_url,
        session=session,
    )


class WatermarkTable:
    """The proven watermarks of one lane's journals."""

    def __init__(self, client: Any, table: str, lane_id: str) -> None:
        self._client = client
        self._table = table
        self._lane_id = lane_id

    @property
    def table(self) -> str:
        return self._table

    def proven_seq(self, journal_id: str) -> int | None:
        """The highest seq of `journal_id` the cloud has proven, or None when it has proven
        none yet (no item). Raises `WatermarkReadError` when the table cannot be read or the
        item is not a watermark."""
        try:
            answer = self._client.get_item(
                TableName=self._table,
                Key={LANE_ID: {"S": self._lane_id}, JOURNAL_ID: {"S": journal_id}},
                ConsistentRead=False,
            )
        except (ClientError, BotoCoreError) as error:
            raise WatermarkReadError(*failure_of(error)) from None
        item = answer.get("Item")
        if item is None:
            return None
        if item.get(JOURNAL_ID, {}).get("S") != journal_id:
            return None  # not this journal's: never taken for it
        return _seq_of(item)


def _seq_of(item: dict[str, Any]) -> int:
    raw = item.get(PROVEN_SEQ, {}).get("N")
    try:
        seq = int(raw) if raw is not None else -1
    except ValueError:
        seq = -1
    if seq < 0:
        raise WatermarkReadError(MALFORMED, f"{MALFORMED}: {PROVEN_SEQ} is {raw!r}, not a seq")
    return seq
