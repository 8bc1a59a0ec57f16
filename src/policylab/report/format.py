"""How numbers are written in reports: one place, so the HTML, the PDF, the Markdown and the
tests that read them back agree."""

from __future__ import annotations

import math

__all__ = ["count", "interval", "number", "pct", "pvalue", "signed_interval", "signed_pct"]


def _ok(value: float | None) -> bool:
    return value is not None and math.isfinite(value)


def pct(value: float | None, digits: int = 1) -> str:
    """0.2 -> '20.0%'; None/NaN -> 'n/a'."""
    if value is None or not math.isfinite(value):
        return "n/a"
    return f"{value * 100:.{digits}f}%"


def signed_pct(value: float | None, digits: int = 1) -> str:
    """-0.176 -> '−17.6 pts' (a difference of two rates, in percentage points)."""
    if value is None or not math.isfinite(value):
        return "n/a"
    return f"{_signed(value, digits) or '±0.0'} pts"


def interval(low: float | None, high: float | None, digits: int = 1) -> str:
    """(0.0567, 0.5098) -> '5.7–51.0%'."""
    if low is None or high is None or not (_ok(low) and _ok(high)):
        return "n/a"
    return f"{low * 100:.{digits}f}–{high * 100:.{digits}f}%"


def signed_interval(
    low: float | None, high: float | None, digits: int = 1, *, sep: str = " to "
) -> str:
    """A difference's interval in points: '−41.2 to +5.9'."""
    if low is None or high is None or not (_ok(low) and _ok(high)):
        return "n/a"
    return f"{_signed(low, digits) or '0.0'}{sep}{_signed(high, digits) or '0.0'}"


def _signed(value: float, digits: int) -> str:
    text = f"{abs(value) * 100:.{digits}f}"
    if float(text) == 0:
        return ""
    return ("+" if value > 0 else "−") + text


def number(value: float | None, digits: int = 2) -> str:
    """0.8567 -> '0.86'; None/NaN -> 'n/a'."""
    if value is None or not math.isfinite(value):
        return "n/a"
    return f"{value:.{digits}f}"


def pvalue(value: float | None) -> str:
    """p-values: three decimals, '< 0.001' below that."""
    if value is None or not math.isfinite(value):
        return "n/a"
    return "< 0.001" if value < 0.001 else f"{value:.3f}"


def count(k: int, n: int) -> str:
    """'3 of 17'."""
    return f"{k} of {n}"
