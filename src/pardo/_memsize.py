"""Parse a byte size given as an int or a human string such as ``"1M"`` (powers of 1024)."""

from __future__ import annotations

__all__ = ["parse_nbytes"]

_UNITS = {"": 1, "B": 1, "K": 1024, "M": 1024**2, "G": 1024**3, "T": 1024**4}


def parse_nbytes(value: object) -> int:
    """Bytes in ``value``: an int >= 0, or a string ``"<number><unit>"`` with unit B, K, M, G or T.

    Raises:
        ValueError: naming the value and the accepted forms.
    """
    if isinstance(value, bool):
        value = repr(value)
    if isinstance(value, int):
        if value >= 0:
            return value
    elif isinstance(value, str):
        text = value.strip().upper().removesuffix("IB").removesuffix("B")
        unit = text[-1:] if text[-1:].isalpha() else ""
        number = text[: len(text) - len(unit)]
        if unit in _UNITS:
            try:
                amount = float(number)
            except ValueError:
                amount = -1.0
            if amount >= 0:
                return int(amount * _UNITS[unit])
    msg = (
        f"invalid byte size {value!r}: use an int >= 0 or a string such as '500K', '1M', '2G' "
        "(K, M, G, T are powers of 1024)"
    )
    raise ValueError(msg)
