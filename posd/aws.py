"""boto3 sessions and clients built from config: region, per-service endpoint, timeouts, few
SDK retries (which parts are built from them is `posd.assembly`'s).

With no endpoint, region or profile in config boto3 resolves them itself, so
`AWS_ENDPOINT_URL`, `AWS_ENDPOINT_URL_KMS`, `AWS_ENDPOINT_URL_DYNAMODB`, `AWS_REGION`,
`AWS_PROFILE` and friends work unchanged. A profile that does not exist or no region at all
is a `ConfigError` here, once, before any client is built (botocore would raise it from deep
inside a request).
"""

from __future__ import annotations

import os
from typing import Any

import boto3
import botocore.session
from botocore.config import Config as BotoConfig
from botocore.exceptions import ProfileNotFound

from posd.config import AwsSettings, Config
from posd.errors import ConfigError

KMS_SDK_MAX_ATTEMPTS = 2  # our prefetcher retries with backoff; keep the SDK's own short
REGION_HINT = "no AWS region: set [aws] region, or AWS_REGION in the daemon's environment"
# Read by the AWS CLI and the other SDKs before AWS_DEFAULT_REGION; botocore reads only the
# latter, so posd passes it on itself.
REGION_ENV = "AWS_REGION"
# botocore's name for the instance-metadata endpoint its credential chain asks last (the
# `AWS_EC2_METADATA_SERVICE_ENDPOINT` variable): `[aws] credentials_endpoint` sets it.
METADATA_ENDPOINT_VARIABLE = "ec2_metadata_service_endpoint"


def session(settings: AwsSettings, where: str = "") -> boto3.session.Session:
    """The boto3 session the config describes; an unknown profile or no region at all is a
    `ConfigError` naming `[aws]` (with `where`, the config file, when known)."""
    region = settings.region or os.environ.get(REGION_ENV) or None
    core = botocore.session.Session()
    if settings.credentials_endpoint:
        core.set_config_variable(METADATA_ENDPOINT_VARIABLE, settings.credentials_endpoint)
    try:
        chosen = boto3.session.Session(
            profile_name=settings.profile, region_name=region, botocore_session=core
        )
    except ProfileNotFound as error:
        known = botocore.session.Session().available_profiles
        raise ConfigError(
            where or "aws",
            "aws.profile" if where else "profile",
            f"{error} (from [aws] profile or AWS_PROFILE; profiles: {', '.join(known) or 'none'})",
        ) from None
    if not chosen.region_name:
        raise ConfigError(where or "aws", "aws.region" if where else "region", REGION_HINT)
    return chosen


def config_session(config: Config) -> boto3.session.Session:
    return session(config.aws, str(config.path))


def kms_client(settings: AwsSettings, where: str = "") -> Any:
    return session(settings, where).client(
        "kms",
        endpoint_url=settings.kms_endpoint_url or settings.endpoint_url,
        config=BotoConfig(
            connect_timeout=settings.connect_timeout_seconds,
            read_timeout=settings.read_timeout_seconds,
            retries={"total_max_attempts": KMS_SDK_MAX_ATTEMPTS, "mode": "standard"},
        ),
    )
