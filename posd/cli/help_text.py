"""What `posd COMMAND --help` says beyond the one-line summary: a description and an example.

Kept in one table (command path -> description, examples) and applied to the parser once it
is built (`apply`), so every command group keeps declaring only its arguments, and a test can
check that every subcommand has both. Each example must parse: the test parses them all.
"""

from __future__ import annotations

import argparse

EXAMPLE_HEADING = "example:"

# command path (as typed after `posd`) -> (description, example command lines)
HELP: dict[str, tuple[str, tuple[str, ...]]] = {
    "status": (
        "The lane at a glance: the daemon's answer when it runs, else what the state dir and\n"
        "the config tell (backlog, last delivery and error, offline headroom).",
        (
            "posd status --state-dir /var/lib/posd",
            "posd status --config /etc/posd/posd.toml --json",
        ),
    ),
    "doctor": (
        "Check everything a lane needs (config, state dir, keys, the AWS endpoint, clock,\n"
        "devices), one line each: OK, WARN or FAIL with the fix. Exit 1 if anything fails.",
        ("posd doctor", "posd doctor --json"),
    ),
    "diag": (
        "Diagnostics for support.",
        ("posd diag bundle -o /tmp/posd-diag.tar.gz",),
    ),
    "diag bundle": (
        "Write a tar.gz to send to support: the config (secrets removed), versions, status,\n"
        "doctor, journal stats and the last log lines. It writes what it can also when the\n"
        "config is invalid or missing; it never overwrites a file unless --force is given.",
        ("posd diag bundle -o /tmp/posd-diag.tar.gz", "posd diag bundle -o diag.tar.gz --force"),
    ),
    "config": (
        "Configuration tools.",
        ("posd config check --config /etc/posd/posd.toml",),
    ),
    "config check": (
        "Validate a config file the way the daemon loads it, and resolve [aws] (the profile\n"
        "must exist, a region must be known). An error names the key to fix.",
        ("posd config check", "posd config check --config config/dev.toml --json"),
    ),
    "journal": (
        "Inspect the local journal in a state dir, directly (no daemon needed).",
        ("posd journal stats --state-dir /var/lib/posd",),
    ),
    "journal stats": (
        "Records by state, oldest pending age, pending amounts and size on disk.",
        ("posd journal stats --state-dir /var/lib/posd",),
    ),
    "journal verify": (
        "Check the journal's structure, hash chain and ciphertext integrity (exit 1 on\nproblems).",
        ("posd journal verify --config /etc/posd/posd.toml",),
    ),
    "journal list": (
        "List records, newest first: seq, kind, state, attempts, last error and the clear\n"
        "metadata (never card data).",
        ("posd journal list --state quarantined --state-dir /var/lib/posd",),
    ),
    "journal reset": (
        "Accept the loss of what a damaged journal no longer holds and go on. Stop the\n"
        "daemon first; seq numbers are never reused.",
        ("posd journal reset --accept-loss --state-dir /var/lib/posd",),
    ),
    "sync": (
        "Deliver the journal to EventBridge, or see how delivery goes.",
        ("posd sync status",),
    ),
    "sync status": (
        "The link, last delivery and error, pending, leased and quarantined records: from\n"
        "the daemon when it runs, else from the journal.",
        ("posd sync status", "posd sync status --state-dir /var/lib/posd --json"),
    ),
    "sync flush": (
        "Deliver the backlog now: through the daemon when it runs, else here in the\n"
        "foreground. Exit 1 if anything is left pending.",
        ("posd sync flush --timeout 60",),
    ),
    "sync retry-quarantined": (
        "Return quarantined records to delivery.",
        ("posd sync retry-quarantined --config /etc/posd/posd.toml",),
    ),
    "decode": (
        "Parse magstripe tracks, EMV TLV or a secure reader's encrypted swipe; the card\n"
        "number is always masked.",
        ("posd decode tlv 9F02060000000010005F2A020978",),
    ),
    "decode track": (
        "Parse ISO/IEC 7813 track 1 and/or track 2 text. Quote it (it holds ^ and =); from a\n"
        "variable, it stays out of the shell's history.",
        ('posd decode track "$TRACK2"',),
    ),
    "decode tlv": (
        "Parse EMV BER-TLV given as hex (spaces and colons ignored).",
        ("posd decode tlv '9F 02 06 00 00 00 00 10 00'",),
    ),
    "decode secure": (
        "Parse a secure (P2PE) reader's swipe, its bytes as hex (ID TECH enhanced format):\n"
        "the masked card number and expiry, KSN, DUKPT scheme, format, reader serial and each\n"
        "encrypted track's clear length; the ciphertext is never shown (nothing here can\n"
        "decrypt it). Exit 1 for a swipe the reader could not read.",
        ('posd decode secure "$SWIPE_HEX" --json',),
    ),
    "sim": (
        "Run simulated devices for development.",
        ("posd sim card-reader",),
    ),
    "sim card-reader": (
        "Run the simulated serial card reader on a pty until SIGINT or SIGTERM; prints the\n"
        "port to put in [devices.card_reader] port.",
        ("posd sim card-reader --present-after 1.0",),
    ),
    "devices": (
        "List the configured devices and their state (card readers: USB id, serial,\n"
        "firmware, and whether they encrypt, flagging a reader whose DUKPT keys are nearly\n"
        "spent); `devices test NAME` does one round trip with one.",
        ("posd devices", "posd devices test card_reader --timeout 20"),
    ),
    "devices test": (
        "One round trip with a device: a palm identify, or a card read (test amount, card\n"
        "number masked, nothing journaled; an encrypting reader's read shows its KSN and\n"
        "encrypted track lengths only).",
        ("posd devices test palm_scanner",),
    ),
    "run": (
        "Run the capture daemon: devices, data keys, journal appends and the register's API\n"
        "(posd.service, Type=notify). Delivery is `posd sync run`, its own process.",
        ("posd run --config /etc/posd/posd.toml",),
    ),
    "credentials": (
        "The lane's AWS credentials: IAM Roles Anywhere's signing helper on loopback.",
        ("posd credentials serve --config /etc/posd/posd.toml",),
    ),
    "credentials serve": (
        "Run aws_signing_helper serve with [identity]'s certificate and key on the port of\n"
        "[aws] credentials_endpoint (posd-credentials.service); the ARNs come from\n"
        "TRUST_ANCHOR_ARN, PROFILE_ARN and ROLE_ARN (/etc/posd/roles-anywhere.env).",
        ("posd credentials serve --config /etc/posd/posd.toml",),
    ),
    "sync run": (
        "Run the delivery daemon: the journal to EventBridge, alarms and checkpoints, and\n"
        "purging what the cloud has proven (posd-sync.service, Type=notify). It needs the\n"
        "journal `posd run` creates; it never opens a device or a data key.",
        ("posd sync run --config /etc/posd/posd.toml",),
    ),
}


def subparsers_of(
    parser: argparse.ArgumentParser,
) -> list[argparse._SubParsersAction[argparse.ArgumentParser]]:
    return [a for a in parser._actions if isinstance(a, argparse._SubParsersAction)]


def walk(
    parser: argparse.ArgumentParser, path: tuple[str, ...] = ()
) -> list[tuple[tuple[str, ...], argparse.ArgumentParser, str | None]]:
    """Every subcommand under `parser`: (its path, its parser, its one-line help)."""
    found: list[tuple[tuple[str, ...], argparse.ArgumentParser, str | None]] = []
    for action in subparsers_of(parser):
        summaries = {choice.dest: choice.help for choice in action._choices_actions}
        for name, sub in action.choices.items():
            found.append(((*path, name), sub, summaries.get(name)))
            found.extend(walk(sub, (*path, name)))
    return found


def epilog(examples: tuple[str, ...]) -> str:
    return EXAMPLE_HEADING + "\n" + "\n".join(f"  {line}" for line in examples)


def apply(parser: argparse.ArgumentParser) -> None:
    """Give every subcommand its description (else its one-line help) and its examples."""
    for path, sub, summary in walk(parser):
        description, examples = HELP.get(" ".join(path), (None, ()))
        sub.formatter_class = argparse.RawDescriptionHelpFormatter
        sub.description = sub.description or description or summary
        if examples and not sub.epilog:
            sub.epilog = epilog(examples)
