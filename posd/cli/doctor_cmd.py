"""`posd doctor`: one line per check, ok / warn / fail / skip, with the fix, in dependency
order (`posd.doctor.plan`). Exit 0 when nothing fails, 1 when anything does (a skip is not a
failure: what it depends on failed, and says so)."""

from __future__ import annotations

import argparse
from dataclasses import asdict
from typing import Any

from posd.cli.args import add_config_argument, add_json_argument
from posd.cli.output import emit, table

EXIT_ALL_PASS = 0
EXIT_SOME_FAIL = 1


def register(subparsers: Any) -> None:
    parser = subparsers.add_parser("doctor", help="check everything a lane needs, with fixes")
    add_config_argument(parser)
    add_json_argument(parser)
    parser.set_defaults(handler=doctor)


def doctor_result(config_path: Any) -> dict[str, Any]:
    from posd.doctor.checks import FAIL
    from posd.doctor.plan import run_checks

    checks = [asdict(check) for check in run_checks(config_path)]
    return {"ok": all(c["status"] != FAIL for c in checks), "checks": checks}


def render(r: dict[str, Any]) -> str:
    rows = [(c["status"].upper(), c["name"], c["detail"], c["fix"] or "") for c in r["checks"]]
    return table(rows, ("", "CHECK", "SEEN", "FIX"))


def doctor(args: argparse.Namespace) -> int:
    result = doctor_result(args.config)
    emit(result, args.json, render)
    return EXIT_ALL_PASS if result["ok"] else EXIT_SOME_FAIL
