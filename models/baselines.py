"""Baselines every model version is measured against: logistic regression and the incumbent score."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd
from sklearn.base import BaseEstimator, ClassifierMixin
from sklearn.compose import ColumnTransformer
from sklearn.impute import SimpleImputer
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import Pipeline, make_pipeline
from sklearn.preprocessing import OneHotEncoder, StandardScaler
from sklearn.utils.validation import check_is_fitted

from features.spec import ColumnSpec, DatasetSpec
from features.validation import parse_column


def baseline_label(key: str, spec: DatasetSpec) -> str:
    """How a baseline of an evaluation report is shown to people: the incumbent by its own name."""
    if key == "incumbent" and spec.incumbent is not None:
        return f"incumbent: {spec.incumbent.name or spec.incumbent.column}"
    return {"logistic": "logistic regression"}.get(key, key)


def logistic_baseline(categorical: Sequence[str], numeric: Sequence[str]) -> Pipeline:
    """Regularised logistic regression: one-hot categories, imputed and scaled numbers."""
    columns = ColumnTransformer(
        [
            (
                "categorical",
                make_pipeline(
                    SimpleImputer(strategy="constant", fill_value=-1),
                    OneHotEncoder(handle_unknown="ignore"),
                ),
                list(categorical),
            ),
            (
                "numeric",
                make_pipeline(
                    SimpleImputer(strategy="median", add_indicator=True, keep_empty_features=True),
                    StandardScaler(),
                ),
                list(numeric),
            ),
        ]
    )
    return make_pipeline(columns, LogisticRegression(max_iter=3000))


class IncumbentBaseline(ClassifierMixin, BaseEstimator):
    """The jurisdiction's existing score, mapped to a probability by a logistic fit on training rows.

    Its AUC is that of the score itself; the map only lets its Brier score be compared.
    """

    def __init__(self, column: ColumnSpec | None = None, higher_is_riskier: bool = True):
        self.column = column
        self.higher_is_riskier = higher_is_riskier

    def fit(self, records: pd.DataFrame, y: np.ndarray) -> IncumbentBaseline:
        score = self.score(records)
        known = ~np.isnan(score)
        if not known.any():
            raise ValueError(
                f"incumbent score {self.column.name} is missing on every training row: fill it in, or remove "
                "`incumbent` from the spec to train without comparing against it"
            )
        self.fill_ = float(np.median(score[known]))
        self.map_ = LogisticRegression().fit(self._design(score), np.asarray(y, dtype=int))
        self.classes_ = np.array([0, 1])
        return self

    def score(self, records: pd.DataFrame) -> np.ndarray:
        """The score as a number (an ordinal's level position), higher meaning riskier."""
        values = parse_column(records[self.column.name], self.column)
        if isinstance(values.dtype, pd.CategoricalDtype):
            numbers = np.where(values.cat.codes < 0, np.nan, values.cat.codes).astype("float64")
        else:
            numbers = values.to_numpy(dtype="float64", na_value=np.nan)
        return numbers if self.higher_is_riskier else -numbers

    def predict_proba(self, records: pd.DataFrame) -> np.ndarray:
        check_is_fitted(self, "map_")
        p = self.map_.predict_proba(self._design(self.score(records)))[:, 1]
        return np.column_stack([1 - p, p])

    def _design(self, score: np.ndarray) -> np.ndarray:
        missing = np.isnan(score)
        filled = np.where(missing, self.fill_, score)
        return np.column_stack([filled, missing.astype(float)])
