"""The sink itself: the event bus exists (`events:DescribeEventBus`, or the v2 client's
`DescribeEventBus` by ARN), and, since PutEvents has no dry run, whether this lane may put
to it as the running delivery daemon's link tells (`misconfigured` carries the refusal): its
status file, `posd.syncd.status_file`."""

from __future__ import annotations

import time
from typing import Any

from posd.doctor.checks import FAIL, OK, WARN, Check, Context, events_client
from posd.syncd.status_file import read_report
from sync.eventbridge.v2 import API_V2
from sync.pacing.link import MISCONFIGURED
from sync.timestamps import rfc3339

NOT_FOUND = "ResourceNotFoundException"
ACCESS_DENIED = {"AccessDeniedException", "AccessDenied", "UnauthorizedOperation"}
POLICY_FILE = "systemd/iam-terminal-policy.json"


def _bus(ctx: Context) -> tuple[str, str]:
    """The bus as configured, and the key that names it."""
    sync = ctx.config.sync
    if sync.api == API_V2:
        return str(sync.event_bus_arn), "[sync] event_bus_arn"
    return sync.event_bus_name, "[sync] event_bus_name"


def check_event_bus(ctx: Context) -> Check:
    from botocore.exceptions import BotoCoreError, ClientError

    bus, key = _bus(ctx)
    client = events_client(ctx)
    v2 = ctx.config.sync.api == API_V2
    try:
        answer: dict[str, Any] = (
            client.describe_event_bus(EventBusArn=bus)
            if v2
            else client.describe_event_bus(Name=bus)
        )
    except ClientError as error:
        code = str(error.response.get("Error", {}).get("Code", ""))
        if code == NOT_FOUND:
            create = (
                "the chain's cloud team creates it (cloud/template.yaml)"
                if v2
                else "the chain's cloud team creates it "
                f"(`aws events create-event-bus --name {bus}`)"
            )
            return Check(
                "event bus",
                FAIL,
                f"{bus} does not exist in {client.meta.region_name}: nothing this lane "
                "captures can be delivered",
                f"set {key} in {ctx.config.path} to the chain's bus, or {create}",
            )
        if code in ACCESS_DENIED:
            return Check(
                "event bus",
                FAIL,
                f"{bus}: {error}",
                f"allow events:DescribeEventBus on {bus} in the terminal's role "
                f"({POLICY_FILE}, or the template's TerminalPolicy)",
            )
        return Check("event bus", FAIL, f"{bus}: {error}", f"check {key} in {ctx.config.path}")
    except BotoCoreError as error:
        return Check(
            "event bus", FAIL, f"{bus}: {error}", "check the events endpoint ([aws]) and network"
        )
    state = answer.get("State")
    return Check(
        "event bus",
        OK,
        f"{answer.get('Arn') or answer.get('EventBusArn') or bus}"
        + (f" ({state})" if state else ""),
    )


def check_delivery(ctx: Context) -> Check:
    """PutEvents has no dry run: the delivery daemon's link says whether puts are accepted."""
    report = read_report(ctx.config.state_dir)
    if report is None or not report.fresh(time.time()):
        return Check(
            "delivery",
            WARN,
            "the delivery daemon (posd sync run) is not running: nothing is delivered, and "
            "whether the bus accepts this lane's events is known only from its link "
            "(PutEvents has no dry run)",
            "start it (systemctl start posd-sync; why it stopped: journalctl -u posd-sync "
            "-n 50), then run posd doctor again",
        )
    status = report.status
    last = rfc3339(status.last_success) if status.last_success else "never"
    detail = f"the delivery daemon's link is {status.state}, last delivery {last}"
    if status.state == MISCONFIGURED:
        return Check(
            "delivery",
            FAIL,
            f"{detail}: {status.last_error}",
            "fix what the error names (the terminal role's events:PutEvents on this bus: "
            f"{POLICY_FILE}; {_bus(ctx)[1]} in {ctx.config.path}); the delivery daemon reads "
            "its config at start and on reload: after an edit run `systemctl reload posd-sync`",
        )
    if status.last_error:
        detail += f", last error {status.last_error}"
    return Check("delivery", OK, detail)
