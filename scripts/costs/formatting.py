"""Money, counts, unit prices and percentages as the report writes them.

One place for rounding (half up, to the cent), so that a figure reads the same in the text tables,
in the JSON data and in the report's notes.
"""

from __future__ import annotations

from decimal import ROUND_HALF_UP, Decimal

CENT = Decimal("0.01")


def cents(amount: Decimal) -> Decimal:
    return amount.quantize(CENT, rounding=ROUND_HALF_UP)


def fmt_usd(amount: Decimal) -> str:
    """``$7,425.00``; negative amounts as ``-$5.33``."""
    rounded = cents(amount)
    text = f"${abs(rounded):,.2f}"
    return f"-{text}" if rounded < 0 else text


def signed_usd(amount: Decimal) -> str:
    """``+$5.33``, ``-$5.33``, ``$0.00``."""
    return ("+" if cents(amount) > 0 else "") + fmt_usd(amount)


def fmt_count(value: Decimal) -> str:
    """``1,500,000``; fractional counts (a 730-hour month) keep two decimals."""
    rounded = value.quantize(CENT, rounding=ROUND_HALF_UP)
    if rounded == rounded.to_integral_value():
        return f"{int(rounded):,}"
    return f"{rounded:,.2f}"


def fmt_price(price: Decimal) -> str:
    """A unit price as published, at least to the cent: ``$0.0000166667``, ``$3.50``."""
    normal = price.normalize()
    if normal.as_tuple().exponent > -2:
        normal = normal.quantize(CENT)
    return f"${format(normal, 'f')}"


def fmt_percent(value: Decimal) -> str:
    return f"{value.quantize(CENT, rounding=ROUND_HALF_UP)}%"
