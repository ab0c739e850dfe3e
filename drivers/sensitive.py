"""Containers for secrets whose `repr`/`str`/`format` never show the secret.

Card numbers, track data, TLV blobs and cardholder names travel inside these so that an
accidental `log.info("read %s", card)`, an f-string or a traceback's locals show
`Secret(<16 chars>)` instead of the data. Only `reveal()` gives the value back: grep for it to
audit every place clear card data is used.
"""

from __future__ import annotations

import hmac
from typing import Generic, NoReturn, TypeVar

T = TypeVar("T", str, bytes)


class Secret(Generic[T]):
    """An immutable wrapper around a `str` or `bytes` secret."""

    __slots__ = ("_value",)
    _value: T

    def __init__(self, value: T) -> None:
        object.__setattr__(self, "_value", value)

    def reveal(self) -> T:
        """The secret in clear. Use only to parse, encrypt or send it to the device."""
        return self._value

    def __len__(self) -> int:
        return len(self._value)

    def __bool__(self) -> bool:
        return bool(self._value)

    def __repr__(self) -> str:
        unit = "chars" if isinstance(self._value, str) else "bytes"
        return f"{type(self).__name__}(<{len(self._value)} {unit}>)"

    __str__ = __repr__

    def __format__(self, spec: str) -> str:
        return repr(self)

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Secret) or type(other._value) is not type(self._value):
            return NotImplemented
        return hmac.compare_digest(_as_bytes(self._value), _as_bytes(other._value))

    def __hash__(self) -> int:
        return hash((type(self), self._value))

    def __setattr__(self, name: str, value: object) -> NoReturn:
        raise AttributeError(f"{type(self).__name__} is immutable")

    def __reduce__(self) -> NoReturn:
        # Pickling would write the secret in clear to wherever the pickle goes.
        raise TypeError(f"{type(self).__name__} cannot be pickled")


def _as_bytes(value: str | bytes) -> bytes:
    return value.encode("utf-8") if isinstance(value, str) else value


class SecretStr(Secret[str]):
    """A secret text: a PAN, a track, a cardholder name."""


class SecretBytes(Secret[bytes]):
    """A secret byte string: an EMV TLV blob."""
