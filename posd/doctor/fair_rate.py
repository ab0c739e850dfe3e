"""The fair rate this lane reads when its link comes back (`[sync] fair_rate_parameter`,
`sync.fair_rate`): read once as the delivery daemon reads it, and shown, or why there is none.
A lane that reads none still delivers, starting from its `[sync]` settings: a WARN, not a
FAIL."""

from __future__ import annotations

from posd.doctor.checks import OK, WARN, Check, Context
from posd.doctor.sink import ACCESS_DENIED, POLICY_FILE
from sync.aws_reads import MALFORMED
from sync.errors import FairRateError

NAME = "fair rate"
NOT_FOUND = "ParameterNotFound"
EXAMPLE_RATE = "0.5"  # the template's FairRatePerLane default
FORMULA = (
    "each lane's share of the PutEvents quota in entries/s: quota x posd's share / lanes, "
    "docs/cloud-stack.md"
)
UNREAD = "this lane starts from its [sync] settings when its link comes back"


def check_fair_rate(ctx: Context) -> Check:
    from posd.assembly import config_fair_rate_parameter

    parameter = config_fair_rate_parameter(ctx.config)
    if parameter is None:
        return Check(NAME, OK, "off ([sync] fair_rate_parameter is empty)")
    try:
        rate = parameter.read()
    except FairRateError as error:
        return Check(
            NAME, WARN, f"{parameter.name}: {error}; {UNREAD}", _fix(ctx, error, parameter.name)
        )
    return Check(NAME, OK, f"{parameter.name}: {rate:g} entries/s per lane")


def _put(name: str, *, overwrite: bool) -> str:
    command = f"aws ssm put-parameter --name {name} --type String --value {EXAMPLE_RATE}"
    return f"`{command}{' --overwrite' if overwrite else ''}`"


def _fix(ctx: Context, error: FairRateError, name: str) -> str:
    path = ctx.config.path
    if error.kind == NOT_FOUND:
        return (
            f"set [sync] fair_rate_parameter in {path} to the stack's FairRateParameterName, "
            f"or publish it: {_put(name, overwrite=False)} ({FORMULA})"
        )
    if error.kind == MALFORMED:
        return f"write a plain decimal number: {_put(name, overwrite=True)} ({FORMULA})"
    if error.kind in ACCESS_DENIED:
        return (
            f"allow ssm:GetParameter on arn:aws:ssm:REGION:ACCOUNT:parameter{name} in the "
            f"terminal's role ({POLICY_FILE}, or the template's TerminalPolicy)"
        )
    return (
        "check the VPN / SSM VPC interface endpoint, DNS and firewall for this host, "
        f"[aws] ssm_endpoint_url / endpoint_url in {path}, and the SSM endpoint's addresses "
        "in /etc/systemd/system/posd-sync.service.d/endpoints.conf (then systemctl "
        "daemon-reload and systemctl restart posd.target)"
    )
