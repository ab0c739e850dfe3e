"""What the Lambda deployment package must hold: the handler's import graph is the cloud
package, the contract (`wire`), cryptography, boto3 and structlog; it never reaches the
terminal's packages (`posd`, `sync`, `drivers`), the demo, the emulator or device libraries.
(tests/test_architecture.py checks every file of `cloud` statically; this checks what a cold
start really loads.)"""

from __future__ import annotations

import subprocess
import sys

from tests.repo import REPO_ROOT

REPO = REPO_ROOT
NEVER = {"moto", "demo", "posd", "sync", "drivers", "serial", "usb", "falcon", "waitress"}


def test_the_handler_imports_no_terminal_demo_or_device_code() -> None:
    probe = "import sys\nimport cloud.handler\nprint('\\n'.join(sorted(sys.modules)))\n"
    result = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, check=True, cwd=REPO
    )
    loaded = result.stdout.split()
    assert "cloud.handler" in loaded and "wire.opening" in loaded
    assert [m for m in loaded if m.split(".")[0] in NEVER] == []
