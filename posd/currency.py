"""Minor units to display amounts: the ISO 4217 exponent of each currency.

Most currencies have 2 decimals; the table lists the others (ISO 4217, list one, as
published by SIX). An unknown code is shown with 2, the common case.
"""

from __future__ import annotations

DEFAULT_EXPONENT = 2
EXPONENTS: dict[str, int] = {
    **dict.fromkeys(
        (
            "BIF", "CLP", "DJF", "GNF", "ISK", "JPY", "KMF", "KRW", "PYG", "RWF", "UGX", "UYI",
            "VND", "VUV", "XAF", "XOF", "XPF",
        ),
        0,
    ),
    **dict.fromkeys(("BHD", "IQD", "JOD", "KWD", "LYD", "OMR", "TND"), 3),
    **dict.fromkeys(("CLF", "UYW"), 4),
}  # fmt: skip


def exponent(currency: str) -> int:
    return EXPONENTS.get(currency.upper(), DEFAULT_EXPONENT)


def format_amount(amount_minor: int, currency: str) -> str:
    """`743224, "EUR"` -> `EUR 7,432.24`; `1250, "JPY"` -> `JPY 1,250`."""
    places = exponent(currency)
    sign = "-" if amount_minor < 0 else ""
    units, fraction = divmod(abs(amount_minor), 10**places)
    text = f"{units:,}" + (f".{fraction:0{places}d}" if places else "")
    return f"{currency} {sign}{text}"
