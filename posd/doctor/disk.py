"""Free space on the state dir's file system, against the journal's reserve and an absolute
floor: with `min_free_bytes = 0`, 0 B free still cannot append a row or checkpoint SQLite's
WAL."""

from __future__ import annotations

import shutil
from pathlib import Path

from posd.doctor.checks import FAIL, OK, WARN, Check, Context

MIB = 1024 * 1024
# Below this nothing journals, whatever the reserve: a row, its WAL frames and a checkpoint.
MIN_FREE_FLOOR_BYTES = 16 * MIB
FREE_WARN_FACTOR = 2  # warn below twice what is needed


def judge_free(free: int, reserve: int, state_dir: Path) -> Check:
    from posd.cli.humanize import size

    need = max(reserve, MIN_FREE_FLOOR_BYTES)
    detail = f"{size(free)} free, reserve {size(reserve)}, floor {size(MIN_FREE_FLOOR_BYTES)}"
    fix = (
        f"free at least {size(need - free)} on the file system holding {state_dir} "
        f"(`df -h {state_dir}` shows it; old logs and core dumps are the usual cause)"
    )
    if free < reserve:
        return Check("disk", FAIL, f"{detail}: below the reserve, new payments are refused", fix)
    if free < MIN_FREE_FLOOR_BYTES:
        return Check("disk", FAIL, f"{detail}: below the floor, the journal cannot grow", fix)
    if free < FREE_WARN_FACTOR * need:
        return Check(
            "disk", WARN, detail, f"free space on the file system holding {state_dir} soon"
        )
    return Check("disk", OK, detail)


def check_disk(ctx: Context) -> Check:
    state_dir = ctx.config.state_dir
    return judge_free(
        shutil.disk_usage(state_dir).free, ctx.config.journal.min_free_bytes, state_dir
    )
