"""One PutEvents call, with every way it can end sorted into a small set of outcomes."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Protocol

from botocore.exceptions import (
    BotoCoreError,
    ClientError,
    NoCredentialsError,
    NoRegionError,
    ParamValidationError,
    PartialCredentialsError,
    ProfileNotFound,
    ReadTimeoutError,
    UnknownEndpointError,
)

from sync.errors import EventDetailError

if TYPE_CHECKING:
    from mypy_boto3_events.type_defs import (
        PutEventsRequestEntryTypeDef,
        PutEventsResponseTypeDef,
        PutEventsResultEntryTypeDef,
    )

# Request-level error codes that mean "slow down", not "the link is down".
THROTTLING_CODES = frozenset(
    {"ThrottlingException", "Throttling", "TooManyRequestsException", "RequestLimitExceeded"}
)
# Request-level codes that are about the moment, not the configuration: v2's bus "not in a
# state that allows the operation" (still being created or updated) passes by itself.
TRANSIENT_CODES = frozenset({"InvalidStateException"})
SERVER_ERROR_STATUS = 500
CLIENT_ERROR_STATUS = 400
# 4xx statuses that are about this one request's timing, not the configuration.
TRANSIENT_CLIENT_STATUSES = frozenset({408, 429})

# Kinds of whole-request failure (`Failed.kind`).
TRANSPORT = "transport"  # unreachable or broken on the way: retry, and count toward offline
READ_TIMEOUT = "read-timeout"
# Will never work as configured (credentials, a missing bus, AccessDenied, validation): no
# amount of retrying helps, a person must fix the config or the IAM policy.
MISCONFIGURED = "misconfigured"
# SDK-side failures that are the configuration's fault, before anything is sent.
MISCONFIGURED_SDK_ERRORS = (
    NoCredentialsError,
    PartialCredentialsError,
    NoRegionError,
    ProfileNotFound,
    UnknownEndpointError,
    ParamValidationError,
)
MALFORMED_ANSWER = "malformed PutEvents answer"


class PutEventsClient(Protocol):
    """The one call the engine makes (a boto3 EventBridge client satisfies it, and so does
    `sync.client_v2.EventBridgeV2Client` for EventBridge v2)."""

    def put_events(
        self, *, Entries: Sequence[PutEventsRequestEntryTypeDef]
    ) -> PutEventsResponseTypeDef: ...


# The client to send the next request with, given the read timeout (seconds) it must use.
ClientSource = Callable[[float], PutEventsClient]


@dataclass(frozen=True)
class Answered:
    """EventBridge answered HTTP 200: one result per entry, in request order."""

    results: Sequence[PutEventsResultEntryTypeDef]


@dataclass(frozen=True)
class Throttled:
    """The whole request was throttled: back off and shrink the window; the link is fine."""

    error: str


@dataclass(frozen=True)
class Failed:
    """The whole request failed: transport (refused, DNS, TLS, connect timeout, 5xx) or
    read timeout (sent, but not answered in time: it may well have been applied), which count
    toward offline detection; or misconfigured (no credentials, 4xx such as AccessDenied, a
    missing bus or a validation error), which is reported at once. Either way the records stay
    pending and are retried later."""

    kind: str  # TRANSPORT, READ_TIMEOUT or MISCONFIGURED
    error: str


SendResult = Answered | Throttled | Failed


def _describe_client_error(error: ClientError) -> tuple[str, int]:
    details = error.response.get("Error", {})
    status = int(error.response.get("ResponseMetadata", {}).get("HTTPStatusCode", 0))
    code = details.get("Code", "Unknown")
    message = details.get("Message", "")
    return f"{code} (HTTP {status}): {message}".strip(), status


def _kind_of_status(status: int) -> str:
    """5xx and request timeouts: the way there; any other 4xx: the configuration."""
    if CLIENT_ERROR_STATUS <= status < SERVER_ERROR_STATUS:
        return TRANSPORT if status in TRANSIENT_CLIENT_STATUSES else MISCONFIGURED
    return TRANSPORT


def _describe(error: Exception) -> str:
    return f"{type(error).__name__}: {error}"


def put_batch(
    client: PutEventsClient, entries: Sequence[PutEventsRequestEntryTypeDef]
) -> SendResult:
    """Send one request; never raises for anything the network or service can do."""
    try:
        response = client.put_events(Entries=entries)
    except ClientError as error:
        text, status = _describe_client_error(error)
        code = error.response.get("Error", {}).get("Code", "")
        if code in THROTTLING_CODES:
            return Throttled(text)
        if code in TRANSIENT_CODES:
            return Failed(TRANSPORT, text)
        return Failed(_kind_of_status(status), text)
    except MISCONFIGURED_SDK_ERRORS as error:
        return Failed(MISCONFIGURED, _describe(error))
    except EventDetailError as error:
        # v2 found an entry it cannot deduplicate (sync/client_v2.py): nothing was sent, and
        # no retry would help; the records stay pending and the engine says why.
        return Failed(MISCONFIGURED, _describe(error))
    except ReadTimeoutError as error:
        return Failed(READ_TIMEOUT, _describe(error))
    except BotoCoreError as error:
        # Connection refused/reset, DNS, TLS, connect timeouts, truncated bodies, and
        # credential providers that need the network (IAM Roles Anywhere) all land here.
        return Failed(TRANSPORT, _describe(error))
    except (AttributeError, TypeError, ValueError) as error:
        # botocore's parser trips over a JSON body of the wrong shape (`null`, `true`, a list
        # where an object belongs) with these instead of its own errors (found by fuzzing).
        return Failed(TRANSPORT, f"{MALFORMED_ANSWER}: {_describe(error)}")
    results = response.get("Entries", [])
    if len(results) != len(entries):
        return Failed(TRANSPORT, f"PutEvents answered {len(results)} results for {len(entries)}")
    if not all(isinstance(result, dict) for result in results):
        # `null` in the list reaches us as None: judging it would kill the engine's thread
        return Failed(TRANSPORT, f"{MALFORMED_ANSWER}: a result that is not an object")
    return Answered(results)
