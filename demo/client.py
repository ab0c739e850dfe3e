"""A minimal client of the daemon's API over its Unix socket (the demo plays the register)."""

from __future__ import annotations

import http.client
import json
import socket
from pathlib import Path
from typing import Any

HTTP_TIMEOUT_S = 150.0


class UnixConnection(http.client.HTTPConnection):
    def __init__(self, path: Path, timeout: float = HTTP_TIMEOUT_S) -> None:
        super().__init__("localhost", timeout=timeout)
        self._path = str(path)

    def connect(self) -> None:
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.sock.settimeout(self.timeout)
        self.sock.connect(self._path)


def call(
    sock_path: Path, method: str, path: str, body: Any = None, raw: bytes | None = None
) -> tuple[int, Any]:
    """One request; the JSON answer (text for anything else, such as /metrics)."""
    conn = UnixConnection(sock_path)
    try:
        payload = raw if raw is not None else (None if body is None else json.dumps(body).encode())
        headers = {"Content-Type": "application/json"} if payload is not None else {}
        conn.request(method, path, body=payload, headers=headers)
        response = conn.getresponse()
        data = response.read()
        if (response.getheader("Content-Type") or "").startswith("application/json"):
            return response.status, json.loads(data)
        return response.status, data.decode()
    finally:
        conn.close()
