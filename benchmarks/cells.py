"""The cells of the report's tables: numbers, spreads and verdicts, formatted one way for every row."""

from __future__ import annotations

import statistics
from typing import Any


def median(values: list[float]) -> float:
    return statistics.median(values)


def fmt_seconds(value: float | None) -> str:
    return "timeout" if value is None else f"{value:.2f} s"


def fmt_rate(value: float) -> str:
    return f"{value:,.0f}/s"


def spread(values: list[float], digits: int = 2, unit: str = " s") -> str:
    if len(values) < 2:
        return f"{values[0]:.{digits}f}{unit}" if values else "—"
    return f"{median(values):.{digits}f}{unit} ({min(values):.{digits}f}–{max(values):.{digits}f}, n={len(values)})"


def verdict(ok: bool | None, text: str) -> str:
    if ok is None:
        return "—"
    return f"**met** ({text})" if ok else f"**not met** ({text})"


def change_cell(runs: list[dict[str, Any]]) -> str:
    """A change-to-served row's measured cell: when every worker served it, and when the first did."""
    values = [x["all_workers"] for x in runs]
    firsts = [x["first_worker"] for x in runs if x["first_worker"] is not None]
    shown = spread([v for v in values if v is not None]) if None not in values else \
        f"timeout in {values.count(None)} of {len(values)}"
    return shown + (f"; first worker {median(firsts):.2f} s" if firsts else "")
