"""The EMV tag dictionary (`data/emv_tags.toml`): names, sources and the `sensitive` flag."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from functools import cache
from typing import Any

from drivers.card import tlv
from drivers.card.data_files import load_table, require
from drivers.errors import CardTableError

TAGS_FILE = "emv_tags.toml"


@dataclass(frozen=True)
class TagInfo:
    name: str
    sensitive: bool = False
    source: str = ""


UNKNOWN_TAG = TagInfo("(unknown tag)")


def _tag_number(text: str) -> int:
    try:
        raw = bytes.fromhex(text)
    except ValueError:
        raise CardTableError(f"{TAGS_FILE}: tag '{text}' is not hex") from None
    tag = int.from_bytes(raw, "big")
    if not raw or not tlv.valid_tag(tag) or tlv.tag_hex(tag) != text.upper():
        raise CardTableError(f"{TAGS_FILE}: '{text}' is not a well-formed BER tag")
    return tag


def build_tags(data: Mapping[str, Any]) -> dict[int, TagInfo]:
    """Validate parsed TOML into {tag: TagInfo}. Raises `CardTableError` naming the fault."""
    sources = data.get("sources")
    rows = data.get("tags")
    if not isinstance(sources, dict) or not isinstance(rows, dict) or not rows:
        raise CardTableError(f"{TAGS_FILE}: [sources] and [tags] are required")
    tags: dict[int, TagInfo] = {}
    for text, row in rows.items():
        tag = _tag_number(text)
        if tag in tags:
            raise CardTableError(f"{TAGS_FILE}: tag {text} listed twice")
        if not isinstance(row, dict):
            raise CardTableError(f"{TAGS_FILE}: tag {text} must be a table")
        where = f"{TAGS_FILE}: tag {text}"
        source = require(row, "source", str, where)
        if source not in sources:
            raise CardTableError(f"{where}: unknown source '{source}'")
        name = require(row, "name", str, where)
        if not name:
            raise CardTableError(f"{where}: empty name")
        tags[tag] = TagInfo(name, require(row, "sensitive", bool, where), source)
    return tags


@cache
def tag_dictionary() -> Mapping[int, TagInfo]:
    """The validated dictionary, loaded on first use."""
    return build_tags(load_table(TAGS_FILE))


def tag_info(tag: int) -> TagInfo:
    return tag_dictionary().get(tag, UNKNOWN_TAG)
