"""Properties of the completeness and chain checks, on real journal records.

- any order and any duplication of a complete range's events verifies, each record once;
- a range missing any seqs reports exactly those missing;
- altering any one byte of any record breaks the chain at that record.
"""

from __future__ import annotations

import uuid
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from cloud.alarms import AlarmBus, Alarms
from cloud.checkpoints import Link, Range, assess
from cloud.consumer import Consumer
from cloud.kms import KmsUnwrapper
from cloud.store import Store
from cloud.tables import TableNames, create_tables
from demo.localaws.emulator import LocalAws
from posd.journal import Journal
from posd.recorder import Recorder
from tests.cloud.conftest import CA, RECORDS, Delivered, checkpoint_entry, deliver
from wire.envelope import GENESIS_CHAIN
from wire.events import parse_message
from wire.keys import CachingUnwrapper

RANGE = 20
SEQS = list(range(1, RANGE + 1))


def links_of(journal: Journal) -> dict[int, Link]:
    return {
        r.seq: Link(chain=r.chain, aad=r.aad, nonce=r.nonce, ciphertext=r.ciphertext)
        for r in journal.records()
    }


def fill(recorder: Recorder) -> None:
    for i in range(RANGE):
        recorder.record("payment.card", {"amount": 100 + i, "currency": "EUR"}, b'{"x":1}')


def whole(links: dict[int, Link]) -> Range:
    return Range(1, RANGE, RANGE, GENESIS_CHAIN.hex(), links[RANGE].chain)


@settings(max_examples=60, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(gone=st.sets(st.sampled_from(SEQS)))
def test_missing_seqs_are_exactly_the_ones_not_received(
    recorder: Recorder, journal: Journal, gone: set[int]
) -> None:
    if not list(journal.records()):
        fill(recorder)
    links = links_of(journal)
    kept = {seq: link for seq, link in links.items() if seq not in gone}
    verdict = assess(whole(links), kept)
    assert verdict.missing == sorted(gone)
    assert verdict.complete == verdict.intact == (not gone)


@settings(max_examples=60, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    seq=st.sampled_from(SEQS),
    part=st.sampled_from(["aad", "nonce", "ciphertext"]),
    data=st.data(),
)
def test_one_altered_byte_breaks_the_chain_at_its_record(
    recorder: Recorder, journal: Journal, seq: int, part: str, data: st.DataObject
) -> None:
    if not list(journal.records()):
        fill(recorder)
    links = links_of(journal)
    blob = bytearray(getattr(links[seq], part))
    index = data.draw(st.integers(0, len(blob) - 1))
    blob[index] ^= data.draw(st.integers(1, 255))
    altered = dict(links)
    altered[seq] = Link(**{**links[seq].__dict__, part: bytes(blob)})
    verdict = assess(whole(links), altered)
    assert verdict.complete and not verdict.intact
    assert verdict.first_bad_seq == seq


@settings(
    max_examples=8, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(order=st.permutations(list(range(RECORDS))), copies=st.lists(st.integers(0, RECORDS - 1)))
def test_any_order_and_duplication_of_a_complete_range_verifies_each_record_once(
    local_aws: LocalAws,
    kms_client: Any,
    events_client: Any,
    sqs_client: Any,
    delivered: Delivered,
    order: list[int],
    copies: list[int],
) -> None:
    dynamodb = local_aws.client("dynamodb")
    store = Store(dynamodb, TableNames.prefixed(f"posd-p-{uuid.uuid4().hex[:8]}"))
    create_tables(dynamodb, store.tables)
    consumer = Consumer(
        store,
        Alarms(store, AlarmBus(events_client, "default")),
        CachingUnwrapper(KmsUnwrapper(kms_client)),
        CA.trust_anchor(),
    )
    if not delivered.extra:
        delivered.extra = deliver(
            events_client, sqs_client, [checkpoint_entry(delivered, 1, RECORDS)]
        )
    bodies = [delivered.records[i] for i in order + copies]
    checkpoint_at = len(order) // 2  # the checkpoint overtakes some of its records
    for body in [*bodies[:checkpoint_at], *delivered.extra, *bodies[checkpoint_at:]]:
        consumer.process(parse_message(body))
    consumer.recheck_open()

    payments = list(store.scan(store.tables.payments))
    assert sorted(int(p["seq"]) for p in payments) == list(range(1, RECORDS + 1))
    (checkpoint,) = store.scan(store.tables.checkpoints)
    assert checkpoint["state"] == "complete"
    assert sum(int(e["copies"]) for e in store.scan(store.tables.events)) == len(bodies) + 1
