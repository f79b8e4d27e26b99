"""Need labels from the spec's declarative rules, with three-valued logic for missing sources."""

from __future__ import annotations

import operator

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
    if column.kind == "categorical":
        left, target = values.fillna("").to_numpy(dtype=object), str(target)
    elif column.kind == "boolean":
        left = values.fillna(False).to_numpy(dtype="float64")
        target = float(str(target).strip().lower() in TRUE_WORDS)
    elif column.kind == "ordinal":
        left = values.cat.codes.to_numpy().astype("float64")
        target = float((column.order or []).index(target) if isinstance(target, str) else target)
    else:
        left, target = values.fillna(0.0).to_numpy(dtype="float64"), float(target)
    truth = np.asarray(_OPERATORS[condition.op](left, target), dtype="float64")
    truth[missing] = np.nan
    return truth
