"""Decimal parsing and formatting for money: never through float, never with an exponent."""

from __future__ import annotations

from decimal import ROUND_DOWN, Decimal, InvalidOperation

from oms.errors import ValidationError

__all__ = ["fmt", "quantize_places", "to_decimal"]


def to_decimal(value: object, *, field: str = "value") -> Decimal:
    """Parse an API string (or an int or Decimal) into a finite Decimal.

    Floats are refused: a float has already lost the exact value the caller meant
    (``0.29`` is not 29/100), which is how peers end up sending the wrong price.
    """
    # bool is an int subclass; True as a price is always a bug.
    if isinstance(value, (bool, float)):
        raise ValidationError(
            f"{field} must be a Decimal, str or int, not {type(value).__name__} "
            f"({value!r}); floats cannot represent prices exactly",
            field=field,
            rule="type",
        )
    if isinstance(value, Decimal):
        result = value
    elif isinstance(value, (int, str)):
        try:
            result = Decimal(value.strip() if isinstance(value, str) else value)
        except InvalidOperation:
            raise ValidationError(
                f"{field} is not a decimal number: {value!r}", field=field, rule="type"
            ) from None
    else:
        raise ValidationError(
            f"{field} must be a Decimal, str or int, not {type(value).__name__}",
            field=field,
            rule="type",
        )
    if not result.is_finite():
        raise ValidationError(f"{field} must be finite, got {value!r}", field=field, rule="type")
    return result


def fmt(value: Decimal) -> str:
    """Format a Decimal in plain notation, as Kraken accepts it (``1e-05`` is rejected).

    The digits are kept as given: ``Decimal("1.250")`` stays ``"1.250"``, and
    ``Decimal("1E+3")`` becomes ``"1000"``.
    """
    if not value.is_finite():
        raise ValueError(f"cannot format a non-finite decimal: {value!r}")
    text = format(value, "f")
    if text.startswith("-") and value == 0:
        # Decimal keeps the sign of zero; "-0" is never what an order means.
        text = text[1:]
    return text


def quantize_places(value: Decimal, places: int) -> Decimal:
    """Round towards zero to ``places`` decimals (truncation never overspends)."""
    return value.quantize(Decimal(1).scaleb(-places), rounding=ROUND_DOWN)
