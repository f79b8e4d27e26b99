"""A record made from a spec alone, so that an example shown or logged is never a person's."""

from __future__ import annotations

from typing import Any

from features.spec import DatasetSpec


def example_record(spec: DatasetSpec) -> dict[str, Any]:
    """A valid record for the API docs and a model's input example: a middle level or value of every input."""
    example: dict[str, Any] = {}
    for name in spec.inputs():
        column = spec.column(name)
        levels = column.order or column.values
        if levels:
            example[name] = levels[len(levels) // 2]
        elif column.kind == "boolean":
            example[name] = False
        elif column.kind == "numeric":
            example[name] = _middle(column.min, column.max)
    return example


def _middle(low: float | None, high: float | None) -> float:
    """A round number within [low, high]: an unbounded side is taken as 0 or one beyond the other bound."""
    low = low if low is not None else min(0.0, high - 1) if high is not None else 0.0
    high = high if high is not None else low + 1
    return min(max(round((low + high) / 2, 2), low), high)
