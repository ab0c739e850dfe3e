"""ISO 4217 currencies: which codes are active currencies, and the minor units of each.

The table is ISO 4217 list one (active codes) as published by SIX Group, the maintenance
agency, keeping only codes with a minor unit: the funds codes without one (XDR, XSU, XUA,
the bond units), precious metals (XAU, XAG, XPT, XPD), XTS (testing) and XXX (no currency)
are not something a lane takes payment in. A code missing here (`EUX`) is not a currency.
"""

from __future__ import annotations

DEFAULT_EXPONENT = 2
TWO_DECIMALS = """
    AED AFN ALL AMD ANG AOA ARS AUD AWG AZN BAM BBD BDT BGN BMD BND BOB BOV BRL BSD BTN BWP
    BYN BZD CAD CDF CHE CHF CHW CNY COP COU CRC CUP CVE CZK DKK DOP DZD EGP ERN ETB EUR FJD
    FKP GBP GEL GHS GIP GMD GTQ GYD HKD HNL HTG HUF IDR ILS INR IRR JMD KES KGS KHR KPW KYD
    KZT LAK LBP LKR LRD LSL MAD MDL MGA MKD MMK MNT MOP MRU MUR MVR MWK MXN MXV MYR MZN NAD
    NGN NIO NOK NPR NZD PAB PEN PGK PHP PKR PLN QAR RON RSD RUB SAR SBD SCR SDG SEK SGD SHP
    SLE SOS SRD SSP STN SVC SYP SZL THB TJS TMT TOP TRY TTD TWD TZS UAH USD USN UYU UZS VED
    VES WST XCD XCG YER ZAR ZMW ZWG
"""
ZERO_DECIMALS = "BIF CLP DJF GNF ISK JPY KMF KRW PYG RWF UGX UYI VND VUV XAF XOF XPF"
THREE_DECIMALS = "BHD IQD JOD KWD LYD OMR TND"
FOUR_DECIMALS = "CLF UYW"
EXPONENTS: dict[str, int] = {
    code: places
    for codes, places in (
        (TWO_DECIMALS, 2),
        (ZERO_DECIMALS, 0),
        (THREE_DECIMALS, 3),
        (FOUR_DECIMALS, 4),
    )
    for code in codes.split()
}


def is_active(code: str) -> bool:
    """Whether `code` (exactly, in capitals) is an active ISO 4217 currency."""
    return code in EXPONENTS


def exponent(currency: str) -> int:
    """The currency's minor units; an unknown code (old records, display) is shown with 2."""
    return EXPONENTS.get(currency.upper(), DEFAULT_EXPONENT)


def format_amount(amount_minor: int, currency: str) -> str:
    """`743224, "EUR"` -> `EUR 7,432.24`; `1250, "JPY"` -> `JPY 1,250`."""
    places = exponent(currency)
    sign = "-" if amount_minor < 0 else ""
    units, fraction = divmod(abs(amount_minor), 10**places)
    text = f"{units:,}" + (f".{fraction:0{places}d}" if places else "")
    return f"{currency} {sign}{text}"
