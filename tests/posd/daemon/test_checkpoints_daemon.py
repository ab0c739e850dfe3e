"""The daemon cuts checkpoints as payments are journaled, shows them in its status and
metrics, and its side lane delivers them to the bus."""

from __future__ import annotations

from demo.backend import QueueRoute
from demo.localaws.emulator import LocalAws
from tests.posd.daemon.conftest import DaemonFactory
from tests.posd.daemon.harness import wait_for
from tests.sync.conftest import receive_all
from wire.events import CHECKPOINT_DETAIL_TYPE

EVERY = 2
PAYMENTS = 5  # checkpoints 1..2 and 3..4; 5 waits for the next one
SEND_TIMEOUT_SECONDS = 20.0


def test_checkpoints_are_cut_shown_and_delivered(
    make_daemon: DaemonFactory, local_aws: LocalAws, module_route: QueueRoute
) -> None:
    daemon = make_daemon(journal={"checkpoint_every_records": EVERY})
    for index in range(PAYMENTS):
        assert daemon.pay(f"cp-{index}")[0] == 201

    def all_sent() -> dict[str, object] | None:
        checkpoints = daemon.call("GET", "/v1/status")[1]["checkpoints"]
        return checkpoints if checkpoints["pending"] == 0 else None

    assert wait_for(all_sent, SEND_TIMEOUT_SECONDS) == {"last_seq": 4, "pending": 0}
    status, text = daemon.call("GET", "/metrics")
    assert status == 200
    assert "posd_checkpoint_last_seq 4.0" in text and "posd_checkpoints_pending 0.0" in text
    assert daemon.stop() == 0

    events = receive_all(local_aws.client("sqs"), module_route.queue_url, PAYMENTS + 2)
    ranges = sorted(
        (e["detail"]["first_seq"], e["detail"]["last_seq"])
        for e in events
        if e["detail-type"] == CHECKPOINT_DETAIL_TYPE
    )
    assert ranges == [(1, 2), (3, 4)]
