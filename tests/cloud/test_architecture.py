"""What the Lambda deployment package must hold: the handler's import graph stays small
(posd's envelope and keys, sync's event format, drivers' masking; cryptography, boto3 and
structlog), and never reaches the demo, the emulator, the daemon or device libraries."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
NEVER = ("moto", "demo", "posd.daemon", "posd.journal", "serial", "usb", "falcon", "waitress")


def test_the_handler_imports_no_demo_daemon_or_device_code() -> None:
    probe = "import sys\nimport cloud.handler\nprint('\\n'.join(sorted(sys.modules)))\n"
    result = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, check=True, cwd=REPO
    )
    loaded = result.stdout.split()
    assert "cloud.handler" in loaded
    assert [m for m in loaded if m.startswith(NEVER)] == []
