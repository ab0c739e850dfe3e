"""Instructions per append, counted by callgrind: a figure the machine's load does not move.

Wall-clock figures on a shared machine move by tens of percent between runs; the
instructions an append executes in user space do not (the fsync's wait is the kernel's and
is not counted). Each side runs twice under `valgrind --tool=callgrind`, once with `--count`
operations after the same set-up and warm-up and once with none; the difference divided by
`--count` is one operation's instructions, in all and by where they ran (`by_library`): the
interpreter's share moves by a few hundred instructions between runs, while SQLite's and
libc's move by thousands (its WAL checkpoints, and the pages it copies and zeroes, fall a
little differently in each run; `rep movs`/`rep stos` count one per byte under valgrind).
Prints one JSON object.

    .venv/bin/python bench/append_instructions.py [--count N] [--sides posd raw] [--dir DIR]
"""

from __future__ import annotations

import argparse
import gc
import json
import os
import re
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.journal_append import append_sides  # noqa: E402

WARM_UP = 50  # appends before counting starts: the key switch, the caches, the first pages
SIDES = ("posd", "raw")
_TOTALS = re.compile(r"^(?:summary|totals):\s+(\d+)", re.MULTILINE)
# A function's own cost, then where it is: its source file, and its library in brackets
# (left out for some of the interpreter's own inlined code).
_SELF_COST = re.compile(r"^\s*([\d,]+) \([ \d.]+%\)\s+(\S.*)$", re.MULTILINE)
# Where a function's own instructions count, by the file its code is in.
LIBRARIES = (
    ("sqlite", ("libsqlite3",)),
    ("crypto", ("libcrypto", "cryptography")),
    ("libc", ("libc.so",)),
    ("python", ("python3", "libpython", "Python-3.", "lib-dynload", "site-packages")),
)


def child(side: str, count: int, where: Path) -> None:
    """Set up both sides, warm the chosen one up, then run it `count` times. What was made
    before is frozen out of the cyclic collector's reach: a full collection walks every
    object the imports made (millions of instructions), and whether one falls within the
    counted appends or not would move the figure by more than the changes it measures."""
    with append_sides(where) as (append, insert, _):
        operation = append if side == "posd" else insert
        for _ in range(WARM_UP):
            operation()
        gc.collect()
        gc.freeze()
        for _ in range(count):
            operation()


def instructions(side: str, count: int, where: Path) -> dict[str, int]:
    """Instructions of one child run under callgrind (the whole process), in all and by
    library (`LIBRARIES`, the rest as "other")."""
    with tempfile.TemporaryDirectory(prefix="posd-ir-", dir=where) as scratch:
        out = Path(scratch) / "callgrind.out"
        command = [
            "valgrind",
            "--tool=callgrind",
            f"--callgrind-out-file={out}",
            sys.executable,
            __file__,
            "--child",
            side,
            "--count",
            str(count),
            "--dir",
            scratch,
        ]
        # The same dict layouts in every run; and no OpenBLAS thread servers (numpy is in the
        # environment): idle, they spin for as long as the run lasts, one more count of time.
        env = dict(os.environ, PYTHONHASHSEED="0", OPENBLAS_NUM_THREADS="1")
        subprocess.run(command, check=True, env=env, capture_output=True)
        found = _TOTALS.search(out.read_text())
        if found is None:
            raise RuntimeError(f"no totals in {out.name}")
        annotated = subprocess.run(
            ["callgrind_annotate", "--threshold=100", str(out)],
            check=True,
            capture_output=True,
            text=True,
        ).stdout
    counts = {"all": int(found.group(1))} | {name: 0 for name, _ in LIBRARIES} | {"other": 0}
    for cost, library in _SELF_COST.findall(annotated):
        if library == "PROGRAM TOTALS":
            continue
        group = next((name for name, marks in LIBRARIES if any(m in library for m in marks)), None)
        counts[group or "other"] += int(cost.replace(",", ""))
    return counts


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--count", type=int, default=1000, help="operations counted (default 1000)")
    parser.add_argument("--sides", nargs="+", choices=SIDES, default=list(SIDES))
    parser.add_argument("--child", choices=SIDES, help=argparse.SUPPRESS)
    parser.add_argument(
        "--dir", type=Path, default=Path.cwd(), help="where to put the files (a real disk)"
    )
    args = parser.parse_args()
    if args.child is not None:
        child(args.child, args.count, args.dir)
        return
    result: dict[str, object] = {"benchmark": "append_instructions", "count": args.count}
    for side in args.sides:
        with_ops = instructions(side, args.count, args.dir)
        without = instructions(side, 0, args.dir)
        per_op = {name: round((with_ops[name] - without[name]) / args.count) for name in with_ops}
        result[f"{side}_instructions_per_op"] = per_op.pop("all")
        result[f"{side}_by_library"] = per_op
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
