"""What a column's values look like: its bins or categories with their shares, and its missing share.

Profiled on the test part at training and counted again, in the same bins, over the records served
since, so the two can be compared (features.drift)."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Sequence
from itertools import pairwise
from typing import Any

import numpy as np
import pandas as pd

from features.spec import ColumnSpec

QUANTILES = np.linspace(0.1, 0.9, 9)  # a numeric column's bins: deciles of the test part
FREE_TEXT_SHOWN = 20  # a free-text column keeps its most common values; the rest are counted as OTHER
OTHER = "(other)"


def column_profile(column: ColumnSpec, values: Iterable[Any]) -> dict[str, Any]:
    """The column's bins (numeric: deciles of `values`; otherwise its levels) with the share of the
    given values in each, and the share of values missing."""
    values = list(values)
    given = [v for v in values if not _missing(v)]
    if column.kind == "numeric":
        numbers = np.asarray(given, dtype=float)
        edges = (
            sorted({float(q) for q in np.quantile(numbers, QUANTILES)} - {float(numbers.min())})
            if len(numbers)
            else []
        )
        profile: dict[str, Any] = {"kind": "numeric", "edges": edges, "bins": _numeric_labels(edges)}
    else:
        profile = {"kind": column.kind, "bins": _levels(column, given)}
    shares, missing, _ = window_shares(column, profile, values)
    return {**profile, "shares": shares, "missing": missing, "n": len(values)}


def window_shares(
    column: ColumnSpec, profile: dict[str, Any], values: Iterable[Any]
) -> tuple[list[float], float, int]:
    """The share of the given `values` in each of `profile`'s bins (all 0 when none is given), the
    share missing, and how many were given."""
    values = list(values)
    given = [v for v in values if not _missing(v)]
    bins = profile["bins"]
    if profile["kind"] == "numeric":
        positions = np.searchsorted(profile["edges"], np.asarray(given, dtype=float), side="right")
        counts = np.bincount(positions, minlength=len(bins)).tolist()
    else:
        # Counted by distinct value: a window of thousands holds a few dozen, each read once.
        found: Counter[str] = Counter()
        for value, count in Counter(given).items():
            found[_bin_of(column, bins, value)] += count
        counts = [found[b] for b in bins]
    shares = [c / len(given) if given else 0.0 for c in counts]
    return shares, (len(values) - len(given)) / len(values) if values else 0.0, len(given)


def _levels(column: ColumnSpec, given: Sequence[Any]) -> list[str]:
    """A column's categories: its declared levels, true/false, or a free-text column's most common
    values in the test part with OTHER for the rest (a served value training never saw lands there)."""
    if column.kind == "boolean":
        return ["true", "false"]
    if column.order or column.values:
        return list(column.order or column.values or [])
    common = Counter(str(v).strip() for v in given).most_common(FREE_TEXT_SHOWN)
    return [value for value, _ in common] + [OTHER]


def _bin_of(column: ColumnSpec, bins: list[str], value: Any) -> str:
    if column.kind == "boolean":
        return "true" if bool(value) else "false"
    level = column.level(value) if column.order or column.values else str(value).strip()
    return level if level in bins else OTHER


def _numeric_labels(edges: list[float]) -> list[str]:
    if not edges:
        return ["all values"]
    bounds = [f"{e:g}" for e in edges]
    middle = [f"{low} to < {high}" for low, high in pairwise(bounds)]
    return [f"< {bounds[0]}", *middle, f">= {bounds[-1]}"]


def _missing(value: Any) -> bool:
    return value is None or value is pd.NA or (isinstance(value, float) and np.isnan(value))
