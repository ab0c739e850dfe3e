"""`make dev`: the stand-ins start, and the environment they print lets posd reach them."""

from __future__ import annotations

import json
import os
import re
import shlex
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import boto3
import pytest

from demo.dev import READY_LINE
from tests.repo import REPO_ROOT

START_TIMEOUT_S = 60
EXPORT = re.compile(r"^export (\w+)=(.*)$")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture
def dev_config(tmp_path: Path) -> Path:
    """config/dev.toml as shipped, but on a free port and with its state under tmp_path."""
    text = (REPO_ROOT / "config" / "dev.toml").read_text(encoding="utf-8")
    text = text.replace("http://127.0.0.1:5000", f"http://127.0.0.1:{_free_port()}")
    path = tmp_path / "config" / "dev.toml"
    path.parent.mkdir()
    path.write_text(text, encoding="utf-8")
    return path


@pytest.fixture
def dev_env(dev_config: Path) -> Iterator[dict[str, str]]:
    clean = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
    proc = subprocess.Popen(
        [sys.executable, "-m", "demo.dev", "--config", str(dev_config)],
        cwd=REPO_ROOT,
        env=clean,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    exports: dict[str, str] = {}
    deadline = time.monotonic() + START_TIMEOUT_S
    assert proc.stdout is not None
    try:
        for line in proc.stdout:
            match = EXPORT.match(line.strip())
            if match:
                exports[match[1]] = shlex.split(match[2])[0]
            if line.strip() == READY_LINE or time.monotonic() > deadline:
                break
        assert proc.poll() is None, proc.stderr.read() if proc.stderr else ""
        yield {**clean, **exports}
    finally:
        proc.send_signal(signal.SIGINT)
        assert proc.wait(timeout=20) == 0


def test_the_printed_environment_reaches_the_stand_ins(
    dev_config: Path, dev_env: dict[str, str]
) -> None:
    assert {"AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_REGION"} <= set(dev_env)
    doctor = subprocess.run(
        [sys.executable, "-m", "posd", "doctor", "--config", str(dev_config), "--json"],
        cwd=REPO_ROOT,
        env=dev_env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    answer = json.loads(doctor.stdout)
    states = {check["name"]: check["status"] for check in answer["checks"]}
    for name in ("config", "aws credentials", "kms reach", "events reach", "clock"):
        assert states.get(name) == "ok", (name, answer)
    events = boto3.client(
        "events",
        region_name=dev_env["AWS_REGION"],
        endpoint_url=dev_env["AWS_ENDPOINT_URL"],
        aws_access_key_id=dev_env["AWS_ACCESS_KEY_ID"],
        aws_secret_access_key=dev_env["AWS_SECRET_ACCESS_KEY"],
    )
    assert events.describe_event_bus(Name="posd-dev")["Name"] == "posd-dev"


def test_a_port_in_use_is_one_line_not_a_traceback(dev_config: Path, tmp_path: Path) -> None:
    port = int(re.findall(r"127\.0\.0\.1:(\d+)", dev_config.read_text())[0])
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", port))
        busy.listen()
        done = subprocess.run(
            [sys.executable, "-m", "demo.dev", "--config", str(dev_config)],
            cwd=REPO_ROOT,
            capture_output=True,
            text=True,
            timeout=60,
        )
    assert done.returncode == 2
    assert "Traceback" not in done.stderr
    assert f"127.0.0.1:{port}" in done.stderr
