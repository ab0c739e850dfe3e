"""JSON texts with holes: the bytes an encoder gives for one fixed shape, filled by a join.

The AAD and the Detail of every record have one shape with different values. Encoding the
whole object for each record was most of delivery's CPU per event (bench/drain.py
--profile); a template made once from the encoder's own output, with each hole filled by the
JSON text of its value, gives the same bytes for a few string joins. Byte-identity with the
encoder is the contract (tests/wire/test_templates.py).
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Mapping, Sequence
from typing import Any

# A hole's marker: a control character the encoder always escapes, around the hole's name.
_MARK = "\x1e"
_HOLE = re.compile(r'"\\u001e(\w+)\\u001e"')


def hole(name: str) -> str:
    """The value standing for hole `name` in a template's sample object."""
    return f"{_MARK}{name}{_MARK}"


class JsonTemplate:
    """The text `encode(sample)` with each `hole(name)` value cut out; `fill` puts the JSON
    texts of the values back. `names` lists the holes in the order they appear in the text
    (the encoder's key order), which is the order `fill` takes the texts in."""

    def __init__(self, encode: Callable[[Any], str], sample: Any, names: Sequence[str]) -> None:
        pieces = _HOLE.split(encode(sample))
        found = pieces[1::2]
        if found != list(names):
            raise ValueError(f"template holes {found} are not {list(names)}, in that order")
        self._set(pieces[0::2], names)

    def _set(self, constants: Sequence[str], names: Sequence[str]) -> None:
        """The text between the holes (`constants`, one more than `names`) and the holes."""
        self._constants = tuple(constants)
        self.names = tuple(names)
        # One %-format: the join is a single C call (constants' own % doubled).
        self.format = "%s".join(piece.replace("%", "%%") for piece in constants)

    def fill(self, texts: tuple[str, ...]) -> str:
        """The encoder's text for the sample with each hole holding the value whose JSON text
        is `texts[i]` (in `names` order)."""
        return self.format % texts

    def filled(self, texts: Mapping[str, str]) -> JsonTemplate:
        """This template with the holes named in `texts` filled by those JSON texts: a
        template of the holes left, for values that repeat from one fill to the next."""
        constants = [self._constants[0]]
        names: list[str] = []
        for name, after in zip(self.names, self._constants[1:], strict=True):
            if name in texts:
                constants[-1] += texts[name] + after
            else:
                names.append(name)
                constants.append(after)
        partial = object.__new__(JsonTemplate)
        partial._set(constants, names)
        return partial


def scalar_json(value: str | int | None, encode_string: Callable[[str], str]) -> str:
    """The JSON text of a string, an int or None, as `json` writes it (`encode_string`:
    `json.encoder.encode_basestring` or its ASCII twin)."""
    if value is None:
        return "null"
    if type(value) is int:
        return int.__repr__(value)
    if type(value) is str:
        return encode_string(value)
    raise TypeError(f"not a JSON scalar of a template: {type(value).__name__}")


encode_string = json.encoder.encode_basestring
encode_string_ascii = json.encoder.encode_basestring_ascii
