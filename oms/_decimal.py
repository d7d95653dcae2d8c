"""Decimal parsing and formatting for money: never through float, never with an exponent.

Every amount that enters ``oms`` (an order's price or volume, a withdrawal amount, a number in
Kraken's answer) goes through :func:`to_decimal`, which accepts only what Kraken could ever
accept: plain ASCII decimal notation with at most :data:`MAX_INTEGER_DIGITS` digits before the
point and :data:`MAX_FRACTION_DIGITS` after it. The bounds are checked on the text (or the
Decimal's exponent and digit count) *before* any arithmetic, so a hostile value such as
``"1E+99999999"`` or a million-digit price costs a length check, not a minute of CPU.
"""

from __future__ import annotations

import re
from decimal import ROUND_DOWN, Decimal, InvalidOperation

from oms.errors import ValidationError

__all__ = [
    "MAX_FRACTION_DIGITS",
    "MAX_INTEGER_DIGITS",
    "check_amount_text",
    "fmt",
    "quantize_places",
    "to_decimal",
]

#: Digits before the decimal point. Kraken's largest volumes (meme coins) and prices stay far
#: below 10**18; anything longer can only be a mistake or an attack.
MAX_INTEGER_DIGITS = 18
#: Digits after the decimal point: the most any asset has (ERC-20 tokens use 18 decimals;
#: Kraken's pair and lot decimals are far fewer).
MAX_FRACTION_DIGITS = 18
# Plain notation only: an optional minus, ASCII digits ([0-9], never \d, which also matches
# Arabic-Indic, fullwidth and mathematical digits), an optional point. No exponent, no
# underscores, no surrounding whitespace.
_PLAIN = re.compile(
    rf"-?(?:[0-9]{{1,{MAX_INTEGER_DIGITS}}}(?:\.[0-9]{{0,{MAX_FRACTION_DIGITS}}})?"
    rf"|\.[0-9]{{1,{MAX_FRACTION_DIGITS}}})"
)
_DIGITS = re.compile(r"-?[0-9]*\.?[0-9]*")
_MAX_TEXT = 1 + MAX_INTEGER_DIGITS + 1 + MAX_FRACTION_DIGITS
_LIMIT = 10**MAX_INTEGER_DIGITS
# An int wider than this cannot be below _LIMIT (checked first: bit_length() is O(1)).
_MAX_INT_BITS = _LIMIT.bit_length()
# With max_places=None (values oms computed, e.g. a VWAP with 28 significant digits) the places
# are still bounded, far above anything computed, so formatting one stays cheap.
_COMPUTED_MAX_PLACES = 64


def _refuse(field: str, why: str) -> ValidationError:
    return ValidationError(f"{field} {why}", field=field, rule="amount-bounds")


def _show(text: str) -> str:
    # A million-character value must not become a million-character error message.
    return repr(text) if len(text) <= 40 else f"{text[:20]!r}… ({len(text)} characters)"


def check_amount_text(text: str, *, field: str = "value") -> str:
    """Return ``text`` if it is an amount in plain ASCII decimal notation within Kraken's
    bounds, else raise ``ValidationError`` (rule ``type`` for other notations, rule
    ``amount-bounds`` for too many digits). Costs a regex match, linear in the text's
    length; no arithmetic."""
    if len(text) <= _MAX_TEXT and _PLAIN.fullmatch(text):
        return text
    if _DIGITS.fullmatch(text) and text.strip("-."):
        # Plain ASCII decimal, but with more digits on one side of the point than Kraken takes.
        raise _refuse(
            field,
            f"has more digits than Kraken accepts (at most {MAX_INTEGER_DIGITS} before and "
            f"{MAX_FRACTION_DIGITS} after the point): {_show(text)}",
        )
    raise ValidationError(
        f"{field} is not a decimal number in plain ASCII notation (digits 0-9, an optional "
        f"'-' and '.'; no exponent, separators or spaces): {_show(text)}",
        field=field,
        rule="type",
    )


def _check_decimal(value: Decimal, field: str, max_places: int | None) -> Decimal:
    if not value.is_finite():
        raise ValidationError(f"{field} must be finite, got {value!r}", field=field, rule="type")
    limit = _COMPUTED_MAX_PLACES if max_places is None else max_places
    if value.is_zero():
        # A zero's digits are one 0, but its exponent can still be huge: 0E-99999999 would
        # format as a hundred million zeros. Such a zero is plain zero (with its sign); one
        # within the bounds keeps its places ("0.00000" as Kraken wrote it).
        exponent = value.as_tuple().exponent
        assert isinstance(exponent, int)  # finite
        if not -limit <= exponent <= MAX_INTEGER_DIGITS:
            return Decimal(0).copy_sign(value)
        return value
    # adjusted() is O(1): the exponent of the leading digit. Checked before as_tuple(), which
    # would otherwise copy a huge digit string.
    if value.adjusted() >= MAX_INTEGER_DIGITS:
        raise _refuse(field, f"is too large for Kraken (10**{value.adjusted()} or more)")
    exponent = value.as_tuple().exponent
    assert isinstance(exponent, int)  # finite
    if -exponent > limit:
        raise _refuse(
            field, f"has {-exponent} digits after the point; at most {limit} are accepted"
        )
    return value


def to_decimal(
    value: object, *, field: str = "value", max_places: int | None = MAX_FRACTION_DIGITS
) -> Decimal:
    """Parse an API string (or an int or Decimal) into a finite Decimal within Kraken's bounds.

    Floats are refused: a float has already lost the exact value the caller meant
    (``0.29`` is not 29/100), which is how peers end up sending the wrong price. Strings must
    be plain ASCII decimal notation (see :func:`check_amount_text`): ``"1_000"``, Arabic-Indic or
    fullwidth digits, ``"1e3"`` and ``" 5"`` are refused rather than silently read as numbers.

    ``max_places=None`` raises the bound on decimal places for a Decimal (not a str) to 64:
    for values ``oms`` computed itself (a VWAP, an average fill price), which never go to
    Kraken as they are. The magnitude bound always holds.
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
        return _check_decimal(value, field, max_places)
    if isinstance(value, int):
        # bit_length() is O(1); Decimal(int) of a huge int is not.
        if value.bit_length() > _MAX_INT_BITS or abs(value) >= _LIMIT:
            raise _refuse(field, f"has more than {MAX_INTEGER_DIGITS} digits")
        return Decimal(value)
    if isinstance(value, str):
        try:
            return Decimal(check_amount_text(value, field=field))
        except InvalidOperation:  # pragma: no cover - the pattern admits only valid literals
            raise ValidationError(
                f"{field} is not a decimal number: {_show(value)}", field=field, rule="type"
            ) from None
    raise ValidationError(
        f"{field} must be a Decimal, str or int, not {type(value).__name__}",
        field=field,
        rule="type",
    )


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
