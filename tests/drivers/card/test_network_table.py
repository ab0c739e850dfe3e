"""The card network table: every range's bounds and a number inside, load-time validation,
Luhn policy per brand, co-badges, packaging and the docs' list of networks."""

from __future__ import annotations

import copy
import tomllib
from typing import Any

import pytest

from drivers.card.brands import Brand, brand_match, brand_of, network_table
from drivers.card.carddata import Pan
from drivers.card.data_files import load_table
from drivers.card.network_table import IinRange, build_table
from drivers.errors import CardTableError, LuhnError
from drivers.pan import is_pan_shaped
from tests.repo import REPO_ROOT
from wire.masking import luhn_valid

REPO = REPO_ROOT
RANGES = network_table().ranges


def _card_number(prefix: str, rng: IinRange) -> str:
    """A number of the range's shortest length starting with `prefix`, Luhn-valid."""
    body = prefix.ljust(min(rng.lengths) - 1, "0")
    return next(body + d for d in "0123456789" if luhn_valid(body + d))


def _points(rng: IinRange) -> list[str]:
    middle = str((int(rng.low) + int(rng.high)) // 2).zfill(rng.prefix_len)
    return [rng.low, middle, rng.high]


@pytest.mark.parametrize("rng", RANGES, ids=[r.describe() for r in RANGES])
def test_every_range_bounds_and_middle(rng: IinRange) -> None:
    for point in _points(rng):
        number = _card_number(point, rng)
        match = brand_match(number)
        inner = [r for r in RANGES if r.prefix_len > rng.prefix_len and r.matches(number)]
        if inner:  # a declared carve-out or co-badge inside this range takes the number
            assert match.brand.value == inner[0].network.id
            assert rng.network.id in (*inner[0].co_badged, inner[0].carved_from)
            continue
        assert match.brand.value == rng.network.id
        assert match.co_badged == tuple(Brand(b) for b in rng.co_badged)
        assert Pan(number).problems() == []
        assert rng.source in network_table().sources


@pytest.mark.parametrize(
    ("prefix", "brand"),
    [
        ("50", Brand.MAESTRO),
        ("56", Brand.MAESTRO),
        ("58", Brand.MAESTRO),
        ("639", Brand.MAESTRO),
        ("6761", Brand.MAESTRO),
        ("3528", Brand.JCB),
        ("2131", Brand.JCB),
        ("2200", Brand.MIR),
        ("6070", Brand.RUPAY),
        ("5090", Brand.ELO),
        ("606282", Brand.HIPERCARD),
        ("506099", Brand.VERVE),
        ("9792", Brand.TROY),
        ("5019", Brand.DANKORT),
        ("1", Brand.UATP),
        ("5934", Brand.UNKNOWN),
        ("9999", Brand.UNKNOWN),
    ],
)
def test_networks_the_issue_named(prefix: str, brand: Brand) -> None:
    assert brand_of(prefix.ljust(16, "0")) is brand


def test_co_badged_ranges_are_named_as_such() -> None:
    assert brand_match("4571000000000000").co_badged == (Brand.VISA,)  # Visa/Dankort
    assert brand_of("4571000000000000") is Brand.DANKORT
    assert brand_match("6521500000000000").co_badged == (Brand.DISCOVER,)  # RuPay global
    assert brand_match("4111111111111111").co_badged == ()


def test_no_luhn_brands_are_not_refused_for_luhn() -> None:
    unionpay = "6200000000000006"  # UnionPay public test number with its check digit broken
    assert not luhn_valid(unionpay)
    assert Pan(unionpay).problems() == [] and not Pan(unionpay).luhn_required
    visa = "4111111111111112"
    assert [type(p) for p in Pan(visa).problems()] == [LuhnError]
    # Redaction's PAN shape follows the same policy: a non-Luhn card number is still one.
    assert is_pan_shaped(unionpay) and not is_pan_shaped(visa)
    assert not is_pan_shaped("6200000000005")  # 13 digits: UnionPay issues none


def _base() -> dict[str, Any]:
    return {
        "sources": {"s": "a source"},
        "networks": {
            "a": {"name": "A", "luhn": True, "lengths": [16], "ranges": []},
            "b": {"name": "B", "luhn": True, "lengths": [16], "ranges": []},
        },
    }


def _with(a_ranges: list[dict[str, Any]], b_ranges: list[dict[str, Any]]) -> dict[str, Any]:
    data = copy.deepcopy(_base())
    data["networks"]["a"]["ranges"] = a_ranges
    data["networks"]["b"]["ranges"] = b_ranges
    return data


def _r(low: str, high: str | None = None, **extra: Any) -> dict[str, Any]:
    return {"low": low, "high": high or low, "source": "s", **extra}


def test_nested_declared_ranges_load_and_match_longest_prefix() -> None:
    table = build_table(_with([_r("4")], [_r("4571", co_badged=["a"])]))
    found = table.match("4571000000000000")
    assert found is not None and found.network.id == "b"
    found = table.match("4000000000000000")
    assert found is not None and found.network.id == "a"


@pytest.mark.parametrize(
    ("a_ranges", "b_ranges", "fragment"),
    [
        ([_r("4")], [_r("4571")], "declare 'a'"),  # nested, not declared
        ([_r("45", "46")], [_r("46", "47", carved_from="a")], "overlap"),  # same length
        ([_r("45")], [_r("449", "451", carved_from="a")], "overlap partly"),
        ([_r("4")], [_r("51", co_badged=["a"])], "not inside any range of 'a'"),  # false claim
        ([_r("4"), _r("45")], [_r("5")], "overlap"),  # one network overlapping itself
        ([_r("4")], [{"low": "5", "high": "5", "source": "nowhere"}], "unknown source"),
        ([_r("4")], [_r("5", "4")], "low <= high"),
        ([_r("4")], [_r("5x")], "digits"),
        ([_r("4")], [_r("5", co_badged=["zz"])], "unknown network"),
        ([_r("4")], [], "no ranges"),
    ],
)
def test_inconsistent_tables_are_load_errors(
    a_ranges: list[dict[str, Any]], b_ranges: list[dict[str, Any]], fragment: str
) -> None:
    with pytest.raises(CardTableError, match=fragment):
        build_table(_with(a_ranges, b_ranges))


def test_lengths_and_luhn_flags_are_checked() -> None:
    data = _with([_r("4")], [_r("5")])
    data["networks"]["b"]["lengths"] = [11]
    with pytest.raises(CardTableError, match="lengths"):
        build_table(data)
    data = _with([_r("4")], [_r("5")])
    data["networks"]["b"]["luhn"] = "yes"
    with pytest.raises(CardTableError, match="luhn"):
        build_table(data)


def test_shipped_table_loads_and_matches_the_brand_enum() -> None:
    table = build_table(load_table("networks.toml"))
    assert set(table.networks) == {b.value for b in Brand} - {Brand.UNKNOWN.value}
    assert all(r.source in table.sources for r in table.ranges)


def test_data_files_are_package_data() -> None:
    config = tomllib.loads((REPO / "pyproject.toml").read_text(encoding="utf-8"))
    patterns = config["tool"]["setuptools"]["package-data"]["drivers.card"]
    shipped = {p.name for pattern in patterns for p in (REPO / "drivers/card").glob(pattern)}
    assert {"networks.toml", "emv_tags.toml"} <= shipped


def test_docs_list_every_network() -> None:
    docs = [REPO / "README.md", *sorted((REPO / "docs").glob("*.md"))]
    readme = " ".join(" ".join(p.read_text(encoding="utf-8") for p in docs).split())
    missing = [n.name for n in network_table().networks.values() if n.name not in readme]
    assert missing == []
