"""Card brand from the leading digits (IIN ranges), the lengths it issues and its Luhn policy.

The ranges live in `data/networks.toml` (each with its public source) and are matched by
longest prefix, so a network's block carved out of another's (Elo inside Visa's 4, Dankort in
Maestro's 50) or co-badged with it (RuPay and Elo global cards in Discover's 65) wins over the
broader range. The brand is routing metadata only; an unknown brand is not an error.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum
from functools import cache

from drivers.card.data_files import load_table
from drivers.card.network_table import IinRange, NetworkTable, build_table
from drivers.errors import CardTableError

NETWORKS_FILE = "networks.toml"


class Brand(StrEnum):
    """Every network of `data/networks.toml` (checked at load), and UNKNOWN."""

    VISA = "visa"
    MASTERCARD = "mastercard"
    AMEX = "amex"
    DISCOVER = "discover"
    JCB = "jcb"
    DINERS = "diners"
    UNIONPAY = "unionpay"
    MAESTRO = "maestro"
    MIR = "mir"
    RUPAY = "rupay"
    ELO = "elo"
    HIPERCARD = "hipercard"
    HIPER = "hiper"
    VERVE = "verve"
    TROY = "troy"
    DANKORT = "dankort"
    FORBRUGSFORENINGEN = "forbrugsforeningen"
    BORICA = "borica"
    UKRCARD = "ukrcard"
    UATP = "uatp"
    ENROUTE = "enroute"
    UZCARD = "uzcard"
    HUMO = "humo"
    NAPAS = "napas"
    LANKAPAY = "lankapay"
    UNKNOWN = "unknown"


@dataclass(frozen=True)
class BrandMatch:
    """What the IIN range of a card number says about it."""

    brand: Brand
    co_badged: tuple[Brand, ...] = ()
    luhn: bool = True  # unknown numbers are held to Luhn
    lengths: frozenset[int] | None = None  # None: any length (unknown brand)


UNKNOWN_MATCH = BrandMatch(Brand.UNKNOWN)


@cache
def network_table() -> NetworkTable:
    """The validated table, loaded on first use."""
    table = build_table(load_table(NETWORKS_FILE))
    known = {brand.value for brand in Brand} - {Brand.UNKNOWN.value}
    if set(table.networks) != known:
        raise CardTableError(
            f"{NETWORKS_FILE}: networks differ from Brand: {sorted(set(table.networks) ^ known)}"
        )
    return table


def _to_match(found: IinRange | None) -> BrandMatch:
    if found is None:
        return UNKNOWN_MATCH
    return BrandMatch(
        Brand(found.network.id),
        tuple(Brand(other) for other in found.co_badged),
        found.network.luhn,
        found.lengths,
    )


def brand_match(digits: str) -> BrandMatch:
    """Brand, co-badges, Luhn policy and lengths for `digits` (longest prefix), else UNKNOWN."""
    return _to_match(network_table().match(digits))


def brand_of(digits: str) -> Brand:
    """The brand whose IIN range matches the longest prefix of `digits`, else UNKNOWN."""
    return brand_match(digits).brand


def length_valid_for_brand(digits: str) -> bool:
    """True if the brand issues numbers of this length (always True for unknown brands)."""
    lengths = brand_match(digits).lengths
    return lengths is None or len(digits) in lengths


def luhn_required(digits: str) -> bool:
    """False only for brands whose numbers carry no Luhn check digit."""
    return brand_match(digits).luhn
