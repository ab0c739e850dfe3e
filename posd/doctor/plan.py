"""The order `posd doctor` runs its checks in, and what each needs: a check whose dependency
failed (or was itself skipped) is SKIP, naming it, so one fault is one FAIL.

The config comes first and is checked exactly as `posd config check` checks it (the file, its
keys, then the `[aws]` profile and region). A file that parsed but whose `[aws]` is refused
still lets the local checks (state dir, disk, journal, devices, identity) run; everything that
talks to AWS needs the config OK.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from posd.doctor import checks, sink
from posd.doctor.checks import FAIL, OK, SKIP, Check, Context
from posd.doctor.disk import check_disk
from posd.doctor.fair_rate import check_fair_rate
from posd.doctor.files import check_state_dir, check_state_files
from posd.doctor.limits import check_offline_limits
from posd.errors import ConfigError, PosdError

CONFIG = "config"
SKIPPED = {FAIL, SKIP}
UNEXPECTED_FIX = "run posd diag bundle and send it to support (doctor could not run this check)"


@dataclass(frozen=True)
class Step:
    name: str
    run: Callable[[Context], Check]
    needs: tuple[str, ...] = ()  # checks that must not have failed; the parsed config always


STEPS: tuple[Step, ...] = (
    Step("state dir", check_state_dir),
    Step("state files", check_state_files, ("state dir",)),
    Step("disk", check_disk, ("state dir",)),
    Step("journal", checks.check_journal, ("state files",)),
    Step("devices", checks.check_devices),
    Step("identity", checks.check_identity),
    Step("aws credentials", checks.check_credentials, (CONFIG,)),
    Step("kms reach", checks.check_kms_reach, ("aws credentials",)),
    Step("events reach", checks.check_events_reach, ("aws credentials",)),
    Step("clock", checks.check_clock, ("events reach",)),
    Step("rehearsal clock", checks.check_rehearsal_clock),
    Step("event bus", sink.check_event_bus, ("events reach", "clock")),
    Step("delivery", sink.check_delivery, ("event bus",)),
    Step("fair rate", check_fair_rate, ("aws credentials",)),
    Step("offline key", checks.check_offline_key, ("state dir",)),
    Step("offline limits", check_offline_limits),
    Step("kms key", checks.check_kms_key, ("kms reach", "clock")),
)


def config_fix(error: ConfigError) -> str:
    """What to do about the one refused key (or the file itself)."""
    path = error.path
    if not error.key:
        if error.expected == "file not found":
            return (
                f"create {path} (config/posd.toml is the annotated example: copy it and set "
                f"[terminal] store_id and terminal_id), or pass --config with the lane's file; "
                f"then posd config check --config {path}"
            )
        return f"rewrite {path} as UTF-8 TOML readable by posd; then posd config check"
    if error.key == "aws.profile":
        return (
            "add the profile to the posd user's AWS config (~/.aws/config or AWS_CONFIG_FILE: "
            f"[profile NAME] with credential_process), or set [aws] profile in {path} to one "
            "that exists"
        )
    return f"fix {error.key} in {path} ({error.expected}); then posd config check --config {path}"


def _check_config(path: Path) -> tuple[Check, Any, Any]:
    """`posd config check`'s validation: load_config, then the session `[aws]` describes."""
    from posd.aws import config_session
    from posd.config import load_config

    try:
        config = load_config(path)
    except ConfigError as error:
        return Check(CONFIG, FAIL, str(error), config_fix(error)), None, None
    try:
        session = config_session(config)
    except ConfigError as error:
        return Check(CONFIG, FAIL, str(error), config_fix(error)), config, None
    return Check(CONFIG, OK, str(config.path)), config, session


def run_checks(config_path: Path) -> list[Check]:
    from posd.api_client import connect

    first, config, session = _check_config(config_path)
    results = {CONFIG: first}
    if config is None:
        skipped = [Check(step.name, SKIP, f"skipped: {CONFIG} failed") for step in STEPS]
        return [first, *skipped]
    ctx = Context(config, session=session, daemon=connect(config.api.socket))
    for step in STEPS:
        failed = next((need for need in step.needs if results[need].status in SKIPPED), None)
        if failed is not None:
            results[step.name] = Check(step.name, SKIP, f"skipped: {failed} failed")
        else:
            results[step.name] = _safely(step, ctx)
    return list(results.values())


def _safely(step: Step, ctx: Context) -> Check:
    """A check never raises: what it could not do is its answer."""
    try:
        return step.run(ctx)
    except PosdError as error:
        return Check(step.name, FAIL, str(error), UNEXPECTED_FIX)
    except (OSError, ValueError, sqlite3.Error) as error:
        return Check(step.name, FAIL, f"{type(error).__name__}: {error}", UNEXPECTED_FIX)
