"""The card network table (`data/networks.toml`): loading, validation and longest-prefix match.

Validation happens once, at load, and refuses a table whose ranges could match a card number
ambiguously: two ranges of different networks may intersect only when the longer prefix lies
wholly inside the shorter one and declares the other network as co-badged or as the allocation
it is carved from. A declared relation that does not hold is an error too, so the data cannot
claim a co-badge it does not have.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from itertools import combinations
from typing import Any

from drivers.card.data_files import require
from drivers.errors import CardTableError
from wire.masking import PAN_MAX_DIGITS, PAN_MIN_DIGITS

MAX_PREFIX_DIGITS = 8  # ISO/IEC 7812-1 (2017): eight-digit IINs


@dataclass(frozen=True)
class Network:
    id: str
    name: str
    luhn: bool


@dataclass(frozen=True)
class IinRange:
    """Card numbers whose first `len(low)` digits lie in `low..high` (inclusive)."""

    network: Network
    low: str
    high: str
    lengths: frozenset[int]
    source: str
    co_badged: tuple[str, ...] = ()
    carved_from: str | None = None

    @property
    def prefix_len(self) -> int:
        return len(self.low)

    def matches(self, digits: str) -> bool:
        head = digits[: self.prefix_len]
        return len(head) == self.prefix_len and self.low <= head <= self.high

    def span(self, width: int) -> tuple[str, str]:
        """The range as `width`-digit bounds (width >= prefix length)."""
        pad = width - self.prefix_len
        return self.low + "0" * pad, self.high + "9" * pad

    def describe(self) -> str:
        bounds = self.low if self.low == self.high else f"{self.low}-{self.high}"
        return f"{self.network.id} {bounds}"


@dataclass(frozen=True)
class NetworkTable:
    networks: Mapping[str, Network]
    ranges: tuple[IinRange, ...]  # longest prefix first
    sources: Mapping[str, str]

    def match(self, digits: str) -> IinRange | None:
        """The range with the longest prefix matching `digits`, if any."""
        return next((r for r in self.ranges if r.matches(digits)), None)


def _digits(value: object, where: str) -> str:
    if not (
        isinstance(value, str)
        and value.isascii()
        and value.isdigit()
        and 1 <= len(value) <= MAX_PREFIX_DIGITS
    ):
        raise CardTableError(f"{where}: bounds must be 1-{MAX_PREFIX_DIGITS} digits")
    return value


def _lengths(value: object, where: str) -> frozenset[int]:
    if not isinstance(value, list) or not value:
        raise CardTableError(f"{where}: 'lengths' must be a non-empty list")
    if not all(
        isinstance(n, int) and not isinstance(n, bool) and PAN_MIN_DIGITS <= n <= PAN_MAX_DIGITS
        for n in value
    ):
        raise CardTableError(f"{where}: lengths must be {PAN_MIN_DIGITS}-{PAN_MAX_DIGITS}")
    return frozenset(value)


def _range(
    row: dict[str, Any], network: Network, default_lengths: frozenset[int], ctx: _Context
) -> IinRange:
    if not isinstance(row, dict):
        raise CardTableError(f"{network.id}: every range must be a table")
    where = f"{network.id} range {row.get('low')!r}"
    low = _digits(row.get("low"), where)
    high = _digits(row.get("high"), where)
    if len(low) != len(high) or low > high:
        raise CardTableError(f"{where}: low and high must have one length and low <= high")
    source = require(row, "source", str, where)
    if source not in ctx.sources:
        raise CardTableError(f"{where}: unknown source '{source}'")
    co_badged = tuple(row.get("co_badged", ()))
    carved_from = row.get("carved_from")
    for other in (*co_badged, *([carved_from] if carved_from is not None else [])):
        if other not in ctx.network_ids or other == network.id:
            raise CardTableError(f"{where}: relation names unknown network '{other}'")
    unknown_keys = set(row) - {"low", "high", "lengths", "source", "co_badged", "carved_from"}
    if unknown_keys:
        raise CardTableError(f"{where}: unknown keys {sorted(unknown_keys)}")
    lengths = _lengths(row["lengths"], where) if "lengths" in row else default_lengths
    return IinRange(network, low, high, lengths, source, co_badged, carved_from)


@dataclass(frozen=True)
class _Context:
    sources: Mapping[str, str]
    network_ids: frozenset[str]


def _check_pair(a: IinRange, b: IinRange) -> None:
    width = max(a.prefix_len, b.prefix_len)
    (a_low, a_high), (b_low, b_high) = a.span(width), b.span(width)
    if max(a_low, b_low) > min(a_high, b_high):
        return
    pair = f"{a.describe()} and {b.describe()}"
    if a.network == b.network or a.prefix_len == b.prefix_len:
        raise CardTableError(f"ranges {pair} overlap")
    inner, outer = (a, b) if a.prefix_len > b.prefix_len else (b, a)
    o_low, o_high = outer.span(width)
    i_low, i_high = inner.span(width)
    if not o_low <= i_low <= i_high <= o_high:
        raise CardTableError(f"ranges {pair} overlap partly")
    if outer.network.id not in (*inner.co_badged, inner.carved_from):
        raise CardTableError(
            f"ranges {pair} overlap: declare '{outer.network.id}' as co_badged or carved_from"
        )


def _check_relations(ranges: Iterable[IinRange]) -> None:
    """Every declared co-badge or carve-out must name a network whose range holds this one."""
    ranges = tuple(ranges)
    for inner in ranges:
        for declared in (*inner.co_badged, *([inner.carved_from] if inner.carved_from else [])):
            holders = (
                r
                for r in ranges
                if r.network.id == declared
                and r.prefix_len < inner.prefix_len
                and r.matches(inner.low)
                and r.matches(inner.high)
            )
            if next(holders, None) is None:
                raise CardTableError(
                    f"range {inner.describe()} is not inside any range of '{declared}'"
                )


def build_table(data: Mapping[str, Any]) -> NetworkTable:
    """Validate parsed TOML and build the table. Raises `CardTableError` naming the fault."""
    sources = data.get("sources")
    networks = data.get("networks")
    if not isinstance(sources, dict) or not isinstance(networks, dict) or not networks:
        raise CardTableError("networks table: [sources] and [networks.*] are required")
    ctx = _Context(sources, frozenset(networks))
    ranges: list[IinRange] = []
    built: dict[str, Network] = {}
    for network_id, row in networks.items():
        where = f"network '{network_id}'"
        if not isinstance(row, dict):
            raise CardTableError(f"{where}: must be a table")
        network = Network(
            network_id, require(row, "name", str, where), require(row, "luhn", bool, where)
        )
        lengths = _lengths(row.get("lengths"), where)
        rows = require(row, "ranges", list, where)
        if not rows:
            raise CardTableError(f"{where}: no ranges")
        built[network_id] = network
        ranges.extend(_range(r, network, lengths, ctx) for r in rows)
    for a, b in combinations(ranges, 2):
        _check_pair(a, b)
    _check_relations(ranges)
    ranges.sort(key=lambda r: -r.prefix_len)
    return NetworkTable(built, tuple(ranges), dict(sources))
