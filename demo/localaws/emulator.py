"""An embedded local AWS emulator (moto in server mode) for the demo and the tests.

Real boto3 clients talk to it over HTTP on loopback, exactly as they talk to AWS through a
VPC endpoint (with TCP_NODELAY: see `serving.py`).
moto is an optional dependency (the `demo` and `dev` extras: `pip install -e '.[demo]'`).
"""

from __future__ import annotations

from typing import Any, cast

from demo.localaws.serving import LOOPBACK, BackgroundServer, NoDelayQuietMixin
from posd.errors import PosdError

EMULATOR_REGION = "us-east-1"
# moto accepts any credentials; these only keep botocore from looking for real ones.
EMULATOR_CREDENTIALS = {"aws_access_key_id": "testing", "aws_secret_access_key": "testing"}


class EmulatorUnavailable(PosdError):
    code = "emulator_unavailable"


class LocalAws(BackgroundServer):
    """moto's server on a free loopback port, in a daemon thread.

    Use as a context manager; `endpoint_url` is the URL to give boto3.
    """

    def __init__(self, host: str = LOOPBACK, port: int = 0) -> None:
        try:
            from moto.moto_server.werkzeug_app import (
                DomainDispatcherApplication,
                MotoRequestHandler,
                create_backend_app,
            )
            from werkzeug.serving import make_server
        except ImportError as error:
            raise EmulatorUnavailable(
                "the local AWS emulator needs moto: install posd with the 'demo' extra "
                "(pip install -e '.[demo]' in the source checkout)"
            ) from error

        class NoDelayHandler(NoDelayQuietMixin, MotoRequestHandler):
            pass

        app = DomainDispatcherApplication(create_backend_app)
        server = make_server(host, port, app, threaded=True, request_handler=NoDelayHandler)
        self._serve_in_thread(server, "local-aws")

    def client(self, service: str) -> Any:
        """A boto3 client for `service` pointed at this emulator."""
        import boto3

        return cast(Any, boto3).client(
            service,
            region_name=EMULATOR_REGION,
            endpoint_url=self.endpoint_url,
            **EMULATOR_CREDENTIALS,
        )

    def rsa_private_key(self, key_arn: str) -> Any:
        """The emulator's private half of an RSA KMS key.

        moto's Decrypt only accepts ciphertext it made itself, so RSA-OAEP ciphertext made with
        the public key (the offline path) is unwrapped with the emulator's own key material,
        standing in for KMS Decrypt with RSAES_OAEP_SHA_256.
        """
        from moto.core import DEFAULT_ACCOUNT_ID  # type: ignore[attr-defined]
        from moto.kms.models import kms_backends

        key_id = key_arn.rsplit("/", 1)[-1]
        key = kms_backends[DEFAULT_ACCOUNT_ID][EMULATOR_REGION].keys[key_id]
        return cast(Any, key.private_key).private_key
