"""Retry policy has one home: every EventBridge code the engine acts on is named in
`sync/eventbridge/retry.py` and nowhere else in `sync`, and the generic pacing knows no
EventBridge code at all."""

from __future__ import annotations

import re

from sync.eventbridge import retry
from tests.repo import REPO_ROOT
from tests.test_architecture import imported_modules

SYNC = REPO_ROOT / "sync"
RETRY_MODULE = SYNC / "eventbridge" / "retry.py"
PACING = SYNC / "pacing"


def _codes() -> set[str]:
    return (
        set(retry.THROTTLING_CODES | retry.TRANSIENT_CODES)
        | set(retry.RETRYABLE_ENTRY_CODES | retry.MISCONFIGURED_ENTRY_CODES)
        | {retry.NO_EVENT_ID, retry.V2_DEDUPLICATED_CODE}
    )


def _named(code: str) -> str:
    """A CamelCase code anywhere; a code that is also a word (`Throttling`) only quoted."""
    if re.search("[a-z][A-Z]", code):
        return rf"\b{re.escape(code)}\b"
    return rf"(?<=[\"'`]){re.escape(code)}(?=[\"'`])"


def test_no_code_is_named_outside_the_retry_module() -> None:
    pattern = re.compile("|".join(_named(code) for code in sorted(_codes())))
    offenders = {
        str(path.relative_to(SYNC)): sorted(set(pattern.findall(path.read_text())))
        for path in sorted(SYNC.rglob("*.py"))
        if path != RETRY_MODULE
    }
    assert {name: codes for name, codes in offenders.items() if codes} == {}


def test_pacing_imports_nothing_of_eventbridge() -> None:
    files = sorted(PACING.rglob("*.py"))
    assert files
    offenders = {
        str(path.relative_to(SYNC)): sorted(
            name
            for name in imported_modules(path)
            if name.startswith(("sync.eventbridge", "botocore", "boto3", "mypy_boto3"))
        )
        for path in files
    }
    assert {name: found for name, found in offenders.items() if found} == {}
