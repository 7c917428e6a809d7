"""ISO 4217 currency codes accepted by processPayment, with their minor-unit exponents.

Active ISO 4217 codes (list of 2024). Funds codes, precious metals (XAU...), XDR, XSU, XUA and the
test/no-currency codes XTS/XXX are deliberately absent: nobody pays an order in them.
"""

from __future__ import annotations

from decimal import Decimal

__all__ = ["MINOR_UNITS", "minor_units", "quantum"]

_ZERO_DECIMALS = "BIF CLP DJF GNF ISK JPY KMF KRW PYG RWF UGX VND VUV XAF XOF XPF"
_THREE_DECIMALS = "BHD IQD JOD KWD LYD OMR TND"
_TWO_DECIMALS = (
    "AED AFN ALL AMD ANG AOA ARS AUD AWG AZN BAM BBD BDT BGN BMD BND BOB BRL BSD BTN BWP BYN BZD CAD CDF "
    "CHF CNY COP CRC CUP CVE CZK DKK DOP DZD EGP ERN ETB EUR FJD FKP GBP GEL GHS GIP GMD GTQ GYD HKD HNL "
    "HTG HUF IDR ILS INR IRR JMD KES KGS KHR KPW KYD KZT LAK LBP LKR LRD LSL MAD MDL MGA MKD MMK MNT MOP "
    "MRU MUR MVR MWK MXN MYR MZN NAD NGN NIO NOK NPR NZD PAB PEN PGK PHP PKR PLN QAR RON RSD RUB SAR SBD "
    "SCR SDG SEK SGD SHP SLE SOS SRD SSP STN SVC SYP SZL THB TJS TMT TOP TRY TTD TWD TZS UAH USD UYU UZS "
    "VES WST XCD YER ZAR ZMW ZWG"
)

MINOR_UNITS: dict[str, int] = {
    **dict.fromkeys(_TWO_DECIMALS.split(), 2),
    **dict.fromkeys(_ZERO_DECIMALS.split(), 0),
    **dict.fromkeys(_THREE_DECIMALS.split(), 3),
}


def minor_units(currency: str) -> int | None:
    """Digits after the decimal point for ``currency`` (``"USD"`` -> 2, ``"JPY"`` -> 0), None if unknown."""
    return MINOR_UNITS.get(currency)


def quantum(currency: str) -> Decimal:
    """The smallest unit as a Decimal exponent: ``quantum("USD") == Decimal("0.01")``. KeyError if unknown."""
    return Decimal(1).scaleb(-MINOR_UNITS[currency])
