"""`posd credentials serve` (posd-credentials.service) runs IAM Roles Anywhere's signing helper
with what the config says: `[identity]`'s certificate and key, the port of `[aws]
credentials_endpoint` where both daemons ask. The helper has no peer on this machine: a
stand-in script records the arguments it was started with."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tomllib
from pathlib import Path

from demo.devconfig import render_toml
from tests.repo import REPO_ROOT
from tests.terminal_identity import shipped_example

ARNS = {
    "TRUST_ANCHOR_ARN": "arn:aws:rolesanywhere:eu-west-1:111122223333:trust-anchor/t",
    "PROFILE_ARN": "arn:aws:rolesanywhere:eu-west-1:111122223333:profile/p",
    "ROLE_ARN": "arn:aws:iam::111122223333:role/posd-terminal",
}


def stand_in(directory: Path) -> Path:
    """A signing helper that writes its argv as JSON and exits."""
    script = directory / "aws_signing_helper"
    record = directory / "argv.json"
    script.write_text(
        f"#!{sys.executable}\nimport json, sys\n"
        f"open({str(record)!r}, 'w').write(json.dumps(sys.argv[1:]))\n"
    )
    script.chmod(0o755)
    return script


def serve(config: Path, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "posd", "credentials", "serve", "--config", str(config)],
        capture_output=True,
        text=True,
        timeout=30,
        env={"PYTHONPATH": str(REPO_ROOT), "PATH": "/usr/bin:/bin", **env},
    )


def test_the_helper_runs_with_the_configs_identity_and_port(tmp_path: Path) -> None:
    config = shipped_example(tmp_path, "posd.toml")
    helper = stand_in(tmp_path)
    done = serve(config, {**ARNS, "POSD_SIGNING_HELPER": str(helper)})
    assert done.returncode == 0, done.stderr
    argv = json.loads((tmp_path / "argv.json").read_text())
    identity = tomllib.loads(config.read_text())["identity"]
    assert argv[:3] == ["serve", "--port", "9911"]  # config/posd.toml's credentials_endpoint
    assert argv[argv.index("--certificate") + 1] == str(tmp_path / identity["certificate_file"])
    assert argv[argv.index("--private-key") + 1] == str(tmp_path / identity["private_key_file"])
    assert argv[argv.index("--role-arn") + 1] == ARNS["ROLE_ARN"]


def test_what_is_missing_is_named_without_a_traceback(tmp_path: Path) -> None:
    config = shipped_example(tmp_path, "posd.toml")
    helper = stand_in(tmp_path)
    no_arns = serve(config, {"POSD_SIGNING_HELPER": str(helper)})
    assert no_arns.returncode == 2 and "ROLE_ARN" in no_arns.stderr
    assert "roles-anywhere.env" in no_arns.stderr
    no_helper = serve(config, {**ARNS, "POSD_SIGNING_HELPER": str(tmp_path / "absent")})
    assert no_helper.returncode == 2 and "aws_signing_helper" in no_helper.stderr
    document = tomllib.loads(config.read_text())
    document["aws"]["credentials_endpoint"] = "http://10.0.0.5:9911/"  # not loopback
    config.write_text(render_toml(document))
    remote = serve(config, {**ARNS, "POSD_SIGNING_HELPER": str(helper)})
    assert remote.returncode == 2 and "aws.credentials_endpoint" in remote.stderr
    for done in (no_arns, no_helper, remote):
        assert "Traceback" not in done.stderr
    assert not (tmp_path / "argv.json").exists()
    assert os.access(helper, os.X_OK)
