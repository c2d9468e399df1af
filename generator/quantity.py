"""Kubernetes resource quantities: parse, compare, and write them the way the API server does.

The API server stores quantities in a canonical form (`6000m` becomes `6`, `1.5Gi`
becomes `1536Mi`). A manifest that says it differently is rewritten on apply, and a
GitOps controller then reports it OutOfSync forever, so llmpack emits the canonical form.
"""

from __future__ import annotations

import re
from fractions import Fraction
from functools import lru_cache

_QUANTITY = re.compile(r"^([+-]?(?:[0-9]+(?:\.[0-9]*)?|\.[0-9]+))(?:([eE][-+]?[0-9]+)|([numkMGTPE]|[KMGTPE]i))?$")
_DECIMAL = {"n": -9, "u": -6, "m": -3, "": 0, "k": 3, "M": 6, "G": 9, "T": 12, "P": 15, "E": 18}
_BINARY = {"Ki": 1, "Mi": 2, "Gi": 3, "Ti": 4, "Pi": 5, "Ei": 6}
_DECIMAL_SUFFIX = {v: k for k, v in _DECIMAL.items()}
_BINARY_SUFFIX = {v: k for k, v in _BINARY.items()}


@lru_cache(maxsize=1024)
def parse(text: str | int) -> tuple[Fraction, str]:
    """`"1.5Gi"` -> (value, format) with format "binary", "decimal" or "exponent"."""
    match = _QUANTITY.fullmatch(str(text).strip())
    if not match:
        raise ValueError(f"{text!r} is not a Kubernetes quantity (e.g. 24Gi, 500m, \"6\")")
    number, exponent, suffix = match.group(1), match.group(2), match.group(3) or ""
    value = Fraction(number)
    if exponent:
        return value * Fraction(10) ** int(exponent[1:]), "exponent"
    if suffix in _BINARY:
        return value * 1024 ** _BINARY[suffix], "binary"
    return value * Fraction(10) ** _DECIMAL[suffix], "decimal"


def value(text: str | int) -> Fraction:
    return parse(text)[0]


@lru_cache(maxsize=1024)
def canonical(text: str | int) -> str:
    """The form the API server returns for this quantity."""
    amount, fmt = parse(text)
    amount = _round_up_nano(amount)
    if fmt == "binary":
        if abs(amount) >= 1024 and amount.denominator == 1:
            return _binary(int(amount))
        fmt = "decimal"
    return _decimal(amount, fmt)


def _round_up_nano(amount: Fraction) -> Fraction:
    scaled = amount * 10**9
    whole = -(-scaled.numerator // scaled.denominator) if amount > 0 else scaled.numerator // scaled.denominator
    return Fraction(whole, 10**9)


def _binary(amount: int) -> str:
    power = 0
    while power < 6 and amount != 0 and amount % 1024 == 0:
        amount //= 1024
        power += 1
    return f"{amount}{_BINARY_SUFFIX.get(power, '')}"


def _decimal(amount: Fraction, fmt: str) -> str:
    if amount == 0:
        return "0"
    exponent = -9
    mantissa = amount * 10**9
    while exponent < 18 and mantissa % 1000 == 0:
        mantissa /= 1000
        exponent += 3
    number = str(int(mantissa))
    if fmt == "exponent":
        return number if exponent == 0 else f"{number}e{exponent}"
    return f"{number}{_DECIMAL_SUFFIX[exponent]}"
