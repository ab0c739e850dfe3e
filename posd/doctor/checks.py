"""The checks of `posd doctor` (their order and dependencies: `posd.doctor.plan`).

Each check answers ok, warn or fail, what it saw, and for anything but ok the fix. A check
whose dependency failed is not run: it is `skip`, naming the dependency.
"""

from __future__ import annotations

import sqlite3
from dataclasses import dataclass
from typing import Any

from posd.config import Config
from posd.journal.damage import DAMAGED_PAGE_ADVICE
from sync.eventbridge.v2 import API_V2, V2_SERVICE_NAME

OK, WARN, FAIL, SKIP = "ok", "warn", "fail", "skip"
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
    """Every device connected; a card reader's encryption named, and a DUKPT reader whose
    transaction counter is nearly spent a WARN (it stops encrypting at the end of it)."""
    from posd.reader_encryption import REINJECT_FIX, encryption_label, exhaustion_warning

    if not ctx.config.devices:
        return Check(
            "devices", WARN, "none configured", "add [devices.card_reader] / [devices.palm_scanner]"
        )
    if ctx.daemon is not None:
        rows = ctx.daemon.get("/v1/devices")["devices"]
        states = {row["name"]: "connected" if row.get("connected") else "down" for row in rows}
    else:
        from posd.cli.device_checks import probe

        rows = [probe(ctx.config, name) for name in sorted(ctx.config.devices)]
        states = {
            row["name"]: row["state"] + (f" ({row['error']})" if row["error"] else "")
            for row in rows
        }
    encryption = {row["name"]: row.get("p2pe") for row in rows if row.get("p2pe") is not None}
    detail = ", ".join(
        f"{name} {state}"
        + (f" [{encryption_label(encryption[name])}]" if name in encryption else "")
        for name, state in states.items()
    )
    if all(state == "connected" for state in states.values()):
        exhausted = [exhaustion_warning(name, p2pe) for name, p2pe in encryption.items()]
        spent = [line for line in exhausted if line is not None]
        if spent:
            return Check("devices", WARN, "; ".join([detail, *spent]), REINJECT_FIX)
        return Check("devices", OK, detail)
    down = " / ".join(f"[devices.{name}]" for name, s in states.items() if s != "connected")
    return Check(
        "devices",
        FAIL,
        detail,
        "no such device: check the cable and the port in "
        f"{down} of {ctx.config.path}; permission denied: add the daemon's user to the "
        "device's group (`ls -l` on the port names it); then posd devices",
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
        f"{identity.private_key_file} (mode 0600, owned by the delivery daemon's user, "
        "posd-sync); "
        "then systemctl restart posd.target"
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

    if ctx.session is None:
        ctx.session = config_session(ctx.config)
    credentials = ctx.session.get_credentials()
    if credentials is None:
        return Check(
            "aws credentials",
            FAIL,
            "none found"
            + (
                f" (asked {ctx.config.aws.credentials_endpoint})"
                if ctx.config.aws.credentials_endpoint
                else ""
            ),
            "start the credentials helper (systemctl start posd-credentials; it serves "
            "[aws] credentials_endpoint) and set that key in "
            f"{ctx.config.path}; or set [aws] profile (credential_process) for a single-user "
            "install",
        )
    return Check(
        "aws credentials", OK, f"from {credentials.method}, region {ctx.session.region_name}"
    )


def _client(ctx: Context, service: str) -> Any:
    from botocore.config import Config as BotoConfig

    aws = ctx.config.aws
    explicit = aws.kms_endpoint_url if service == "kms" else aws.events_endpoint_url
    if service == "events" and ctx.config.sync.api == API_V2:
        service = V2_SERVICE_NAME  # the endpoint the engine really talks to
    return ctx.session.client(
        service,
        endpoint_url=explicit or aws.endpoint_url or None,
        config=BotoConfig(
            connect_timeout=aws.connect_timeout_seconds,
            read_timeout=aws.read_timeout_seconds,
            retries={"total_max_attempts": 1},
        ),
    )


def events_client(ctx: Context) -> Any:
    """The client the sync engine talks to: `events`, or `eventbridgev2` for api = v2."""
    return _client(ctx, "events")


def _endpoint(ctx: Context, service: str) -> str:
    return str(_client(ctx, service).meta.endpoint_url)


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
            "check the VPN / VPC interface endpoint, DNS and firewall for this host, and "
            f"[aws] endpoint_url / {service}_endpoint_url in {ctx.config.path}",
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


def check_rehearsal_clock(ctx: Context) -> Check:
    """The lane on the system clock: a rehearsal's (sync/clock.py) stamps payments with
    simulated times and runs every timer faster. FAIL when the running daemon says it runs
    on one, WARN when this shell would start one."""
    import os

    from sync.clock import REHEARSAL_ENV, SYSTEM_NAME

    name = "rehearsal clock"
    running = ctx.daemon.get("/v1/status").get("clock") if ctx.daemon is not None else None
    if running not in (None, SYSTEM_NAME):
        return Check(
            name,
            FAIL,
            f"posd runs on a {running} clock, not real time",
            f"remove {REHEARSAL_ENV} from the units' environment; systemctl restart posd.target",
        )
    if os.environ.get(REHEARSAL_ENV):
        return Check(
            name,
            WARN,
            f"{REHEARSAL_ENV} is set here: a daemon started from this shell runs on it",
            f"unset {REHEARSAL_ENV}",
        )
    return Check(name, OK, "the system clock")


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
            f"check [keys] kms_key_id in {ctx.config.path} (the journal key's ARN) and the "
            "terminal's IAM policy (systemd/iam-terminal-policy.json)",
        )
    return Check(
        "kms key", OK, f"{keys.kms_key_id}: GenerateDataKey works with this terminal's context"
    )
