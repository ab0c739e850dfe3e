"""The checks of `posd doctor`, in the order a technician would look.

Each check answers ok, warn or fail, what it saw, and for anything but ok the fix. A check
never raises: a failure of the thing checked is its answer. Checks that need a valid config
are skipped when the config is not.
"""

from __future__ import annotations

import pwd
import shutil
import sqlite3
import stat
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from posd.config import Config, load_config
from posd.errors import PosdError
from posd.journal.damage import DAMAGED_PAGE_ADVICE
from sync.eventbridge.v2 import API_V2, V2_SERVICE_NAME

OK, WARN, FAIL = "ok", "warn", "fail"
PRIVATE_DIR_MODE = 0o700
PRIVATE_FILE_MODE = 0o600
GROUP_OTHER_BITS = 0o077
FREE_WARN_FACTOR = 2  # warn below twice the reserve
SIGV4_MAX_SKEW_S = 300.0  # SigV4 refuses requests signed more than 5 minutes off
SKEW_WARN_S = 30.0
QUICK_CHECK_OK = "ok"
DATA_KEY_SPEC = "AES_256"


@dataclass(frozen=True)
class Check:
    name: str
    status: str
    detail: str
    fix: str | None = None


@dataclass
class Context:
    config: Config
    session: Any = None  # boto3 session, once resolved
    daemon: Any = None  # DaemonClient when the daemon answers


def _owner(path: Path) -> str:
    uid = path.stat().st_uid
    try:
        return pwd.getpwuid(uid).pw_name
    except KeyError:
        return str(uid)


def check_state_dir(ctx: Context) -> Check:
    from posd.journal import JOURNAL_FILE

    state_dir = ctx.config.state_dir
    if not state_dir.is_dir():
        return Check(
            "state dir",
            FAIL,
            f"{state_dir} does not exist",
            "start posd once, or fix [terminal] state_dir",
        )
    problems = []
    mode = stat.S_IMODE(state_dir.stat().st_mode)
    if mode & GROUP_OTHER_BITS:
        problems.append(f"{state_dir} is {mode:04o}")
    journal = state_dir / JOURNAL_FILE
    if journal.exists():
        file_mode = stat.S_IMODE(journal.stat().st_mode)
        if file_mode & GROUP_OTHER_BITS:
            problems.append(f"{journal.name} is {file_mode:04o}")
        if _owner(journal) != _owner(state_dir):
            problems.append(
                f"{journal.name} owned by {_owner(journal)}, the dir by {_owner(state_dir)}"
            )
    detail = f"{state_dir} owner {_owner(state_dir)}, mode {mode:04o}"
    if problems:
        return Check(
            "state dir",
            FAIL,
            f"{detail}: " + "; ".join(problems),
            f"chmod 0700 {state_dir}; chmod 0600 {journal}; chown -R the daemon's user",
        )
    return Check("state dir", OK, detail)


def check_disk(ctx: Context) -> Check:
    from posd.cli.humanize import size

    free = shutil.disk_usage(ctx.config.state_dir).free
    reserve = ctx.config.journal.min_free_bytes
    detail = f"{size(free)} free, reserve {size(reserve)}"
    if free < reserve:
        return Check(
            "disk",
            FAIL,
            detail + ": new payments are refused (journal_full)",
            "free disk space on the state dir's file system",
        )
    if free < FREE_WARN_FACTOR * reserve:
        return Check("disk", WARN, detail, "free disk space soon")
    return Check("disk", OK, detail)


def check_journal(ctx: Context) -> Check:
    from posd.journal import JOURNAL_FILE, Journal

    path = ctx.config.state_dir / JOURNAL_FILE
    if not path.is_file():
        return Check(
            "journal", WARN, f"no journal yet in {ctx.config.state_dir}", "start posd once"
        )
    conn = sqlite3.connect(f"{path.resolve().as_uri()}?mode=ro", uri=True)
    try:
        result = str(conn.execute("PRAGMA quick_check").fetchone()[0])
    except sqlite3.DatabaseError as error:
        result = str(error)
    finally:
        conn.close()
    if result != QUICK_CHECK_OK:
        return Check(
            "journal",
            FAIL,
            f"quick_check: {result}",
            DAMAGED_PAGE_ADVICE,  # what reset does on a damaged page: posd/journal/damage.py
        )
    with Journal.open_read_only(ctx.config.state_dir, ctx.config.journal) as journal:
        summary = journal.summary()
    detail = f"quick_check ok; {summary.pending} pending, {summary.quarantined} quarantined"
    if summary.tampered or summary.unreadable:
        return Check(
            "journal",
            FAIL,
            f"{detail}, {summary.tampered} tampered, {summary.unreadable} unreadable",
            "posd journal verify; call support",
        )
    if summary.quarantined:
        return Check(
            "journal",
            WARN,
            detail,
            "posd journal list --state quarantined; fix the cause, "
            "then posd sync retry-quarantined",
        )
    return Check("journal", OK, detail)


def check_devices(ctx: Context) -> Check:
    if not ctx.config.devices:
        return Check(
            "devices", WARN, "none configured", "add [devices.card_reader] / [devices.palm_scanner]"
        )
    if ctx.daemon is not None:
        rows = ctx.daemon.get("/v1/devices")["devices"]
        states = {row["name"]: "connected" if row.get("connected") else "down" for row in rows}
    else:
        from posd.cli.device_checks import probe

        states = {name: probe(ctx.config, name)["state"] for name in sorted(ctx.config.devices)}
    detail = ", ".join(f"{name} {state}" for name, state in states.items())
    if all(state == "connected" for state in states.values()):
        return Check("devices", OK, detail)
    return Check(
        "devices",
        FAIL,
        detail,
        "posd devices (the error says missing or permission); check the cable and [devices]",
    )


def check_identity(ctx: Context) -> Check:
    """The certificate and key that sign checkpoints and alarms (and get Roles Anywhere
    credentials): they load, belong together, name this lane, and are not (about to be)
    expired."""
    from datetime import UTC, datetime

    from posd.errors import ConfigError
    from posd.identity import RENEW_WARN_DAYS, days_left, load_signer

    config = ctx.config
    identity = config.identity
    if not identity.configured:
        return Check(
            "identity",
            WARN,
            "no [identity]: checkpoints and alarms go unsigned, the cloud proves none of this "
            "lane's ranges (development only)",
            "set [identity] certificate_file and private_key_file to this lane's Roles Anywhere "
            "certificate and key",
        )
    try:  # the config load checked them; this reads the certificate's dates
        signer = load_signer(identity, config.path, config.store_id, config.terminal_id)
    except ConfigError as error:
        return Check(
            "identity", FAIL, str(error), "install this lane's certificate and key; fix [identity]"
        )
    certificate = signer.certificate
    now = datetime.now(UTC)
    left = days_left(certificate, now)
    expires = certificate.not_valid_after_utc
    detail = (
        f"{identity.certificate_file}: CN={config.terminal_id}, OU={config.store_id}, "
        f"serial {certificate.serial_number:x}, expires {expires:%Y-%m-%d %H:%M} UTC"
    )
    renew = (
        f"have the chain's CA issue a new certificate for CN={config.terminal_id}, "
        f"OU={config.store_id}; install it as {identity.certificate_file} and its key as "
        f"{identity.private_key_file} (mode 0600, owned by the daemon's user); "
        "then systemctl restart posd"
    )
    if now < certificate.not_valid_before_utc:
        return Check(
            "identity",
            FAIL,
            f"{detail}: not valid before {certificate.not_valid_before_utc:%Y-%m-%d %H:%M} UTC",
            "check time sync (chronyc tracking / timedatectl), then the certificate's dates",
        )
    if left <= 0:
        return Check(
            "identity",
            FAIL,
            f"{detail}: expired; the cloud refuses this lane's "
            "checkpoints and alarms, and Roles Anywhere its credentials",
            renew,
        )
    detail = f"{detail} ({int(left)} days left)"
    if left < RENEW_WARN_DAYS:
        return Check("identity", WARN, detail, renew)
    return Check("identity", OK, detail)


def check_credentials(ctx: Context) -> Check:
    from posd.aws import config_session

    ctx.session = config_session(ctx.config)
    credentials = ctx.session.get_credentials()
    if credentials is None:
        return Check(
            "aws credentials",
            FAIL,
            "none found",
            "set [aws] profile (IAM Roles Anywhere credential_process) "
            "or AWS_PROFILE for the posd user",
        )
    return Check(
        "aws credentials", OK, f"from {credentials.method}, region {ctx.session.region_name}"
    )


def _endpoint(ctx: Context, service: str) -> str:
    aws = ctx.config.aws
    explicit = aws.kms_endpoint_url if service == "kms" else aws.events_endpoint_url
    if service == "events" and ctx.config.sync.api == API_V2:
        service = V2_SERVICE_NAME  # the endpoint the engine really talks to
    client = ctx.session.client(service, endpoint_url=explicit or aws.endpoint_url or None)
    return str(client.meta.endpoint_url)


def _check_reach(ctx: Context, service: str) -> Check:
    from posd.doctor.reach import reach

    url = _endpoint(ctx, service)
    result = reach(url, ctx.config.aws.connect_timeout_seconds)
    steps = [f"DNS {result.dns_ms} ms", f"TCP {result.tcp_ms} ms"]
    steps.append("TLS -" if result.tls_ms is None else f"TLS {result.tls_ms} ms")
    name = f"{service} reach"
    if result.error:
        return Check(
            name,
            FAIL,
            f"{url}: {result.error}",
            "check the VPN / VPC interface endpoint, DNS and firewall for this host",
        )
    return Check(name, OK, f"{url}: " + ", ".join(s for s in steps if "None" not in s))


def check_kms_reach(ctx: Context) -> Check:
    return _check_reach(ctx, "kms")


def check_events_reach(ctx: Context) -> Check:
    return _check_reach(ctx, "events")


def check_clock(ctx: Context) -> Check:
    from posd.doctor.reach import clock_skew_seconds

    url = _endpoint(ctx, "events")
    skew = clock_skew_seconds(url, ctx.config.aws.connect_timeout_seconds)
    detail = f"{skew:+.0f} s against {url}"
    if abs(skew) > SIGV4_MAX_SKEW_S:
        return Check(
            "clock",
            FAIL,
            detail + ": AWS refuses signatures beyond 5 minutes",
            "fix time sync (chronyc tracking / timedatectl)",
        )
    if abs(skew) > SKEW_WARN_S:
        return Check("clock", WARN, detail, "check time sync (chronyc tracking / timedatectl)")
    return Check("clock", OK, detail)


def check_offline_key(ctx: Context) -> Check:
    from posd.keys.factory import offline_cache_file

    if not ctx.config.keys.offline_key_id:
        return Check(
            "offline key",
            WARN,
            "no [keys] offline_key_id: no capture while KMS is unreachable",
            "set [keys] offline_key_id to the terminal's RSA key",
        )
    cache = offline_cache_file(ctx.config.state_dir)
    if not cache.is_file():
        return Check(
            "offline key",
            FAIL,
            f"public key not cached ({cache.name})",
            "start posd while KMS is reachable (it fetches and caches the key)",
        )
    return Check("offline key", OK, f"public key cached ({cache.name})")


def check_kms_key(ctx: Context) -> Check:
    from botocore.exceptions import BotoCoreError, ClientError

    from posd.aws import kms_client
    from posd.keys.factory import encryption_context

    keys = ctx.config.keys
    if keys.provider != "kms" or not keys.kms_key_id:
        return Check(
            "kms key",
            WARN,
            f"provider {keys.provider}: not KMS (development)",
            "production terminals use [keys] provider = kms",
        )
    client = kms_client(ctx.config.aws, str(ctx.config.path))
    try:
        client.generate_data_key(
            KeyId=keys.kms_key_id,
            KeySpec=DATA_KEY_SPEC,
            EncryptionContext=encryption_context(ctx.config),
        )
    except (ClientError, BotoCoreError) as error:
        return Check(
            "kms key",
            FAIL,
            f"{keys.kms_key_id}: {error}",
            "check the key id and the terminal's IAM policy (systemd/iam-terminal-policy.json)",
        )
    return Check(
        "kms key", OK, f"{keys.kms_key_id}: GenerateDataKey works with this terminal's context"
    )


CHECKS: tuple[Callable[[Context], Check], ...] = (
    check_state_dir,
    check_disk,
    check_journal,
    check_devices,
    check_identity,
    check_credentials,
    check_kms_reach,
    check_events_reach,
    check_clock,
    check_offline_key,
    check_kms_key,
)
AWS_CHECKS = frozenset({check_kms_reach, check_events_reach, check_clock, check_kms_key})


def run_checks(config_path: Path) -> list[Check]:
    from posd.api_client import connect

    try:
        config = load_config(config_path)
    except PosdError as error:
        return [
            Check("config", FAIL, str(error), "posd config check --config FILE; fix the key named")
        ]
    results = [Check("config", OK, str(config.path))]
    ctx = Context(config, daemon=connect(config.api.socket))
    for check in CHECKS:
        if check in AWS_CHECKS and ctx.session is None:
            results.append(
                Check(
                    check.__name__.removeprefix("check_").replace("_", " "),
                    FAIL,
                    "skipped: no AWS session",
                    "fix aws credentials first",
                )
            )
            continue
        results.append(_safely(check, ctx))
    return results


def _safely(check: Callable[[Context], Check], ctx: Context) -> Check:
    name = check.__name__.removeprefix("check_").replace("_", " ")
    try:
        return check(ctx)
    except PosdError as error:
        return Check(name, FAIL, str(error))
    except (OSError, ValueError) as error:
        return Check(name, FAIL, f"{type(error).__name__}: {error}")
