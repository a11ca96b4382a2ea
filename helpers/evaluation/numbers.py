"""How scores, differences, intervals and p-values read in the kit's tables and sentences: three places,
signed differences, one way to write a small p-value."""

from __future__ import annotations


def number(value: float | None, signed: bool = False) -> str:
    """A score or difference at 3 places (``+0.093``; ``0.000``, never ``-0.000``); empty for None."""
    if value is None:
        return ""
    if signed and abs(value) < 0.0005:
        return "0.000"
    return f"{value:+.3f}" if signed else f"{value:.3f}"


def interval(low: float | None, high: float | None) -> str:
    """``-0.011 to +0.058``; empty when unknown."""
    return "" if low is None or high is None else f"{number(low, True)} to {number(high, True)}"


def p_value(p: float) -> str:
    """``< 0.001``, else three places (``0.090``, ``1.000``)."""
    return "< 0.001" if p < 0.001 else f"{p:.3f}"
