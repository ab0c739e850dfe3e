"""An embedded local AWS emulator (moto in server mode) for the demo and the tests.

Real boto3 clients talk to it over HTTP on loopback, exactly as they talk to AWS through a
VPC endpoint. Sockets get TCP_NODELAY: with Nagle on, the delayed ACK adds ~40 ms to every
request and anything timed against the emulator measures that trap instead of our code.
moto is an optional dependency (the `demo` and `dev` extras: `pip install -e '.[demo]'`).
"""

from __future__ import annotations

import socket
import threading
from types import TracebackType
from typing import Any, cast

from posd.errors import PosdError

LOOPBACK = "127.0.0.1"
EMULATOR_REGION = "us-east-1"
# moto accepts any credentials; these only keep botocore from looking for real ones.
EMULATOR_CREDENTIALS = {"aws_access_key_id": "testing", "aws_secret_access_key": "testing"}
# How soon a serving loop notices `shutdown()`: socketserver's default (0.5 s) made every
# stop of a local stand-in cost half a second, most of a fast test.
SERVER_POLL_SECONDS = 0.05


class NoDelayQuietMixin:
    """For loopback HTTP request handlers: TCP_NODELAY on the socket, no per-request logging.

    Mix in before the handler class (`class H(NoDelayQuietMixin, BaseHTTPRequestHandler)`).
    """

    connection: socket.socket

    def setup(self) -> None:
        super().setup()  # type: ignore[misc]
        self.connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

    def log_message(self, format: str, *args: Any) -> None:
        """Quiet: one line per request would drown the output of whoever runs the server."""

    def log_request(self, *args: Any, **kwargs: Any) -> None:
        """Quiet, as above (werkzeug's handler logs here)."""


class EmulatorUnavailable(PosdError):
    code = "emulator_unavailable"


class LocalAws:
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
        self._server: Any = make_server(
            host, port, app, threaded=True, request_handler=NoDelayHandler
        )
        self._thread = threading.Thread(
            target=self._server.serve_forever,
            kwargs={"poll_interval": SERVER_POLL_SECONDS},
            name="local-aws",
            daemon=True,
        )

    @property
    def endpoint_url(self) -> str:
        host, port = self._server.server_address[:2]
        return f"http://{host}:{port}"

    def start(self) -> LocalAws:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=5)

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

    def __enter__(self) -> LocalAws:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()
