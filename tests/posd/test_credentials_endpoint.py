"""`[aws] credentials_endpoint`: the lane's AWS credentials come from the loopback endpoint
`posd-credentials.service` serves (IAM Roles Anywhere's `aws_signing_helper serve`, which
speaks the instance-metadata protocol, IMDSv2). Both daemons and the CLI's doctor read it
from the config, not from an environment only the units set.

The endpoint here is a stand-in for the signing helper (which has no peer on this machine):
a loopback HTTP server answering the three IMDSv2 requests botocore makes."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest

from posd.aws import session
from posd.config import AwsSettings

ROLE = "posd-terminal"
TOKEN = "token-for-the-test"
CREDENTIALS = {
    "Code": "Success",
    "AccessKeyId": "ASIATESTROLESANYWHERE",
    "SecretAccessKey": "secret-from-the-helper",
    "Token": "session-token-from-the-helper",
    "Expiration": "2099-01-01T00:00:00Z",
}


class SigningHelperStandIn(BaseHTTPRequestHandler):
    def do_PUT(self) -> None:  # IMDSv2: the session token first
        self._answer(TOKEN)

    def do_GET(self) -> None:
        if self.headers.get("X-aws-ec2-metadata-token") != TOKEN:
            self.send_error(401)
            return
        base = "/latest/meta-data/iam/security-credentials/"
        if self.path == base:
            self._answer(ROLE)
        elif self.path == base + ROLE:
            self._answer(json.dumps(CREDENTIALS))
        else:
            self.send_error(404)

    def _answer(self, body: str) -> None:
        data = body.encode()
        self.send_response(200)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, *args: Any) -> None:
        pass


@pytest.fixture
def helper_url() -> Iterator[str]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), SigningHelperStandIn)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}/"
    server.shutdown()
    server.server_close()


def test_credentials_come_from_the_configured_loopback_endpoint(
    helper_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    for name in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN", "AWS_PROFILE"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.delenv("AWS_EC2_METADATA_SERVICE_ENDPOINT", raising=False)
    monkeypatch.setenv("AWS_CONFIG_FILE", "/nonexistent")
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", "/nonexistent")
    settings = AwsSettings(region="eu-west-1", credentials_endpoint=helper_url)
    credentials = session(settings).get_credentials()
    assert credentials is not None
    frozen = credentials.get_frozen_credentials()
    assert frozen.access_key == CREDENTIALS["AccessKeyId"]
    assert frozen.token == CREDENTIALS["Token"]
