"""Synthetic records for any spec: one latent risk drives every column, so models can learn."""

from __future__ import annotations

import numpy as np
import pandas as pd

from features.spec import ColumnSpec, DatasetSpec

MISSING_SHARE = 0.03


def generate_cohort(spec: DatasetSpec, n_rows: int, seed: int) -> pd.DataFrame:
    """Text cells in the spec's layout; protected attributes are drawn independently of risk."""
    rng = np.random.default_rng(seed)
    risk = rng.normal(size=n_rows)
    frame = pd.DataFrame({spec.id: [str(i + 1) for i in range(n_rows)]})
    for column in spec.columns:
        score = _signal(column, spec, risk) + rng.normal(scale=1.2, size=n_rows)
        cells = _column(column, score, rng, _rule_values(column, spec))
        cells[rng.random(n_rows) < (0 if column.required else MISSING_SHARE)] = None
        frame[column.name] = cells
    outcome = rng.random(n_rows) < 1 / (1 + np.exp(-(1.1 * risk - 0.2)))
    frame[spec.outcome.column] = np.where(outcome, "Yes", "No")
    return frame


def _signal(column: ColumnSpec, spec: DatasetSpec, risk: np.ndarray) -> np.ndarray:
    """How a column follows risk: not at all if protected, and downwards for an incumbent score the spec
    reads as lower meaning riskier, so its AUC read that way is as good as a rising score's."""
    if column.name in spec.protected:
        return np.zeros_like(risk)
    incumbent = spec.incumbent
    if incumbent is not None and column.name == incumbent.column and not incumbent.higher_is_riskier:
        return -risk
    return risk


def _rule_values(column: ColumnSpec, spec: DatasetSpec) -> list[str | int | float | bool]:
    """What the spec's need rules compare the column to: the records must hold such values on both
    sides, or a need never (or always) holds and training has nothing to learn."""
    return [c.value for need in spec.needs for c in need.conditions if c.column == column.name]


def _column(column: ColumnSpec, score: np.ndarray, rng: np.random.Generator, rule_values: list) -> np.ndarray:
    if column.kind in ("ordinal", "categorical") and (column.order or column.values):
        levels = column.order or column.values or []
        if column.kind == "categorical":
            levels = list(rng.permutation(levels))
        cuts = np.quantile(score, np.linspace(0, 1, len(levels) + 1)[1:-1])
        return np.array(levels, dtype=object)[np.searchsorted(cuts, score)]
    if column.kind == "boolean":
        return np.where(score > 0.3, "Yes", "No").astype(object)
    if column.kind == "numeric":
        below_max = 0.0 if column.max is None or column.max >= 0 else column.max - 10.0  # a max under 0
        low = column.min if column.min is not None else below_max
        thresholds = [float(v) for v in rule_values if not isinstance(v, bool)]
        high = column.max if column.max is not None else max([low + 10.0, *(2 * v - low for v in thresholds)])
        share = np.clip((1 / (1 + np.exp(-score)) - 0.4) / 0.6, 0, 1)
        return np.array([f"{v:.4g}" for v in low + share * (high - low)], dtype=object)
    # free text: the words its rules name, then value_0 and value_1 (cut at 0, as before rules counted)
    named = list(dict.fromkeys(str(v) for v in rule_values))
    texts = [*named, "value_0", "value_1"][: max(2, len(named))]
    cuts = [0.0] if len(texts) == 2 else np.quantile(score, np.linspace(0, 1, len(texts) + 1)[1:-1])
    return np.array(texts, dtype=object)[np.searchsorted(cuts, score)]
