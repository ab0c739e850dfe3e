"""`posd sync status|flush|retry-quarantined` against a real journal and the moto server."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from posd.cli.main import main
from posd.journal import Journal
from tests.sync.conftest import CLI_RECORDS as RECORDS
from tests.sync.conftest import Route, event_ids, receive_all


def _run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, dict[str, Any]]:
    code = main([*argv, "--json"])
    out = capsys.readouterr().out
    return code, json.loads(out)


def test_status_flush_status(
    config_file: Path, capsys: pytest.CaptureFixture[str], route: Route, sqs_client: Any
) -> None:
    code, before = _run(capsys, "sync", "status", "--config", str(config_file))
    assert code == 0
    assert before["pending"] == RECORDS
    assert before["delivered"] == 0
    assert before["pending_amount_by_currency"] == {"EUR": RECORDS * 500}

    code, flushed = _run(capsys, "sync", "flush", "--config", str(config_file))
    assert code == 0
    assert flushed["completed"]
    assert flushed["delivered"] == RECORDS

    code, after = _run(capsys, "sync", "status", "--config", str(config_file))
    assert (after["pending"], after["delivered"]) == (0, RECORDS)
    assert len(set(event_ids(receive_all(sqs_client, route.queue_url, RECORDS)))) == RECORDS


def test_retry_quarantined(config_file: Path, capsys: pytest.CaptureFixture[str]) -> None:
    with Journal.open(config_file.parent / "state") as journal:
        journal.quarantine(3, "AccessDeniedException: test")
        journal.quarantine(5, "AccessDeniedException: test")
    code, result = _run(capsys, "sync", "retry-quarantined", "--config", str(config_file))
    assert code == 0
    assert result == {"returned_to_pending": 2}
    code, status = _run(capsys, "sync", "status", "--config", str(config_file))
    assert (status["pending"], status["quarantined"]) == (RECORDS, 0)


def test_human_output_and_bad_input(
    config_file: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["sync", "status", "--config", str(config_file)]) == 0
    assert "pending" in capsys.readouterr().out
    assert main(["sync", "flush", "--timeout", "0", "--config", str(config_file)]) == 2
    assert "--timeout" in capsys.readouterr().err
    empty = tmp_path / "other.toml"
    empty.write_text(
        config_file.read_text().replace('state_dir = "state"', 'state_dir = "nowhere"')
    )
    assert main(["sync", "status", "--config", str(empty)]) == 2
    assert "no journal" in capsys.readouterr().err
