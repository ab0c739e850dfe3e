"""Is a checkpoint's range complete, and does its chain hold? (pure: no AWS here)

A range first..last of one journal is complete when every seq in it was received as a genuine
record or reported by the terminal as tampered (`posd.alarm` `tampered_record`). Its integrity
holds when the journal's hash chain, recomputed from `chain_before` over the records in seq
order (`wire.envelope.chain_next`), passes through each record's own `chain` and ends at the
checkpoint's `chain`. Across a seq the terminal reported tampered the chain cannot be
recomputed (the record never left the terminal): the link into the next record is then taken
from that record's own `chain` and counted as unverified, and the checkpoint's `chain` still
anchors the end of the range.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import StrEnum

from wire.envelope import chain_next


class RangeState(StrEnum):
    OPEN = "open"  # incomplete, within the grace period
    GAP = "gap"  # incomplete past the grace period: alarmed, still re-checked
    COMPLETE = "complete"  # every seq accounted for, the chain holds
    BROKEN = "broken"  # every seq accounted for, the chain does not hold


@dataclass(frozen=True)
class Link:
    """What the records table keeps of one seq for the chain check."""

    chain: str = ""  # the record's own `chain` (hex)
    aad: bytes = b""
    nonce: bytes = b""
    ciphertext: bytes = b""
    reported_tampered: bool = False


@dataclass(frozen=True)
class Range:
    first_seq: int
    last_seq: int
    count: int
    chain_before: str
    chain: str


@dataclass(frozen=True)
class Assessment:
    complete: bool
    intact: bool
    missing: list[int] = field(default_factory=list)
    reported_tampered: list[int] = field(default_factory=list)
    unverified_links: list[int] = field(default_factory=list)
    first_bad_seq: int | None = None
    problem: str = ""


def _hex(text: str) -> bytes | None:
    try:
        return bytes.fromhex(text)
    except ValueError:
        return None


def assess(checkpoint: Range, links: Mapping[int, Link]) -> Assessment:
    seqs = range(checkpoint.first_seq, checkpoint.last_seq + 1)
    missing = [seq for seq in seqs if seq not in links]
    reported = [seq for seq in seqs if seq in links and links[seq].reported_tampered]
    if missing:
        return Assessment(False, False, missing=missing, reported_tampered=reported)
    if checkpoint.count != len(seqs):
        return Assessment(
            True,
            False,
            reported_tampered=reported,
            first_bad_seq=checkpoint.first_seq,
            problem=f"count {checkpoint.count} does not match the range's {len(seqs)} seqs",
        )
    previous = _hex(checkpoint.chain_before)
    unverified: list[int] = []
    for seq in seqs:
        link = links[seq]
        if link.reported_tampered:
            previous = None
            continue
        if previous is None:
            unverified.append(seq)
        elif chain_next(previous, link.aad, link.nonce, link.ciphertext).hex() != link.chain:
            return Assessment(
                True,
                False,
                reported_tampered=reported,
                unverified_links=unverified,
                first_bad_seq=seq,
                problem=f"the chain breaks at seq {seq}",
            )
        previous = _hex(link.chain)
    if previous is not None and previous.hex() != checkpoint.chain:
        return Assessment(
            True,
            False,
            reported_tampered=reported,
            unverified_links=unverified,
            first_bad_seq=checkpoint.last_seq,
            problem="the chain at the end of the range is not the checkpoint's",
        )
    return Assessment(True, True, reported_tampered=reported, unverified_links=unverified)
