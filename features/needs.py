"""Need labels from the spec's declarative rules, with three-valued logic for missing sources."""

from __future__ import annotations

import math
import operator
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd

from features.spec import TRUE_WORDS, ColumnSpec, Condition, DatasetSpec, NeedSpec

_OPERATORS = {
    "<": operator.lt,
    "<=": operator.le,
    ">": operator.gt,
    ">=": operator.ge,
    "==": operator.eq,
    "!=": operator.ne,
}


def need_labels(typed: pd.DataFrame, spec: DatasetSpec) -> pd.DataFrame:
    """One float column per need: 1 (has the need), 0 (has not), NaN (its sources are missing)."""
    return pd.DataFrame({need.name: need_label(typed, need, spec) for need in spec.needs}, index=typed.index)


def need_label(typed: pd.DataFrame, need: NeedSpec, spec: DatasetSpec) -> np.ndarray:
    """Kleene logic: a condition on a missing value is unknown, and unknown only decides nothing."""
    truths = np.column_stack(
        [_condition_truth(typed, condition, spec.column(condition.column)) for condition in need.conditions]
    )
    if need.combinator == "all":
        decided_false = (truths == 0).any(axis=1)
        decided_true = (truths == 1).all(axis=1)
    else:
        decided_true = (truths == 1).any(axis=1)
        decided_false = (truths == 0).all(axis=1)
    return np.where(decided_true, 1.0, np.where(decided_false, 0.0, np.nan))


def _condition_truth(typed: pd.DataFrame, condition: Condition, column: ColumnSpec) -> np.ndarray:
    values = typed[column.name]
    missing = values.isna().to_numpy()
    target = condition.value
    if column.kind == "categorical":  # free text has no declared spelling: compared ignoring case
        left = values.fillna("").astype("str").str.casefold().to_numpy(dtype=object)
        target = (column.level(target) or str(target)).strip().casefold()
    elif column.kind == "boolean":
        left = values.fillna(False).to_numpy(dtype="float64")
        target = float(str(target).strip().lower() in TRUE_WORDS)
    elif column.kind == "ordinal":
        left = values.cat.codes.to_numpy().astype("float64")
        position = (column.order or []).index(column.level(target)) if isinstance(target, str) else target
        target = float(position)
    else:
        left, target = values.fillna(0.0).to_numpy(dtype="float64"), float(target)
    truth = np.asarray(_OPERATORS[condition.op](left, target), dtype="float64")
    truth[missing] = np.nan
    return truth


@dataclass(frozen=True)
class ObservedRule:
    """A need with a source known at release: the record itself may say whether it holds (Georgia's
    parole conditions; no fixed address, whatever the moves that come later), so a score reports that
    beside the model's probability instead of contradicting the record."""

    combinator: str
    conditions: list[tuple[int, Callable[[float, float], bool], float]]  # input position, op, target
    later: int = 0  # conditions on sources known only after release: unknown when a record is scored

    def holds(self, inputs: np.ndarray) -> bool | None:
        """The rule on one record's encoded inputs, with need_label's Kleene logic (None: unknown)."""
        truths = [
            None if math.isnan(inputs[i]) else bool(compare(inputs[i], target))
            for i, compare, target in self.conditions
        ] + [None] * self.later
        decided = [t for t in truths if t is not None]
        if self.combinator == "all":
            return False if not all(decided) else (True if len(decided) == len(truths) else None)
        return True if any(decided) else (False if len(decided) == len(truths) else None)


def observed_rules(
    spec: DatasetSpec, inputs: Sequence[str], encode_value: Callable[[str, object], float]
) -> dict[str, ObservedRule]:
    """The rules of the needs with a source among the inputs, on encoded inputs; a condition on a
    source known only later stays unknown, so it decides nothing the release-time ones do not."""
    rules = {}
    for need in spec.needs:
        known = [
            (condition, spec.column(condition.column))
            for condition in need.conditions
            if condition.column in inputs
        ]
        if not known:
            continue
        rules[need.name] = ObservedRule(
            need.combinator,
            [
                (
                    list(inputs).index(column.name),
                    _OPERATORS[condition.op],
                    _target(condition, column, encode_value),
                )
                for condition, column in known
            ],
            later=len(need.conditions) - len(known),
        )
    return rules


def _target(condition: Condition, column: ColumnSpec, encode_value: Callable[[str, object], float]) -> float:
    """A rule's value on the inputs' scale: a number, an ordinal position, or the value's code."""
    if column.kind == "numeric" or (column.kind == "ordinal" and not isinstance(condition.value, str)):
        return float(condition.value)
    return encode_value(column.name, condition.value)
