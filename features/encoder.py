"""Spec-driven feature encoder: one numeric model input per selected record column."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np
import pandas as pd
from sklearn.base import BaseEstimator, TransformerMixin
from sklearn.utils import Tags
from sklearn.utils.validation import check_is_fitted

from features.spec import (
    FALSE_WORDS,
    TRUE_WORDS,
    ColumnSpec,
    DatasetSpec,
    DerivedSpec,
    parse_spec,
)
from features.validation import as_level, level_key

# How an unseen value of a free-text input is read: the same NaN as a value left out.
UNSEEN_READS_AS = "missing, as if the record had left it out"


class RecordEncoder(TransformerMixin, BaseEstimator):
    """Encode validated records as floats: ordinals by level position, booleans 0/1,
    categoricals by code, missing and unseen as NaN. The logistic baseline one-hot encodes the
    codes; the boosted trees split them as ordered numbers, as well as LightGBM's categorical splits do.

    `always_given_` lists the inputs no fitted record left out, `unseen_codes_` the values the spec
    allows (levels, declared categories, yes or no) that no fitted record held, per input, as encoded,
    and `numeric_ranges_` the lowest and highest value of each number input: the models never learned
    what such an absence or value means, and read a number beyond the range as the range's end.

    Args:
        spec: the dataset spec, as a DatasetSpec or its YAML text.
        known: which columns are inputs by when they are known; release-time by default so a
            score at release never sees what happens during supervision.
        exclude: further columns to leave out (a need's own sources, for instance).
    """

    def __init__(
        self,
        spec: DatasetSpec | str | None = None,
        known: Sequence[str] = ("release",),
        exclude: Sequence[str] = (),
    ):
        self.spec = spec
        self.known = known
        self.exclude = exclude

    def fit(self, X: pd.DataFrame, y: object = None) -> RecordEncoder:
        spec = self._spec()
        _check_records(X)
        if len(X) == 0:
            raise ValueError("RecordEncoder needs at least one record to fit; got 0")
        for name, names in (("known", self.known), ("exclude", self.exclude)):
            # A string is a sequence of letters: exclude="Gender" would keep Gender.
            if isinstance(names, str):
                raise TypeError(f"{name} must be a list of names, such as {name}=[{names!r}], not a string")
        unknown_times = set(self.known) - {"release", "supervision"}
        if unknown_times:
            raise ValueError(f"known must list 'release' and/or 'supervision', got {sorted(unknown_times)}")
        self.columns_ = [spec.column(name) for name in spec.inputs(self.known, self.exclude)]
        if not self.columns_:
            raise ValueError("no input columns left after selecting by known time and exclusions")
        missing = [c.name for c in self.columns_ if c.name not in X.columns]
        if missing:
            raise ValueError(f"records lack input columns: {', '.join(missing)}")
        self.lookups_ = {c.name: _lookup(c, X[c.name]) for c in self.columns_}
        encoded = {c.name: self._encode(X[c.name], self.lookups_[c.name]) for c in self.columns_}
        self.always_given_ = [name for name, values in encoded.items() if not np.isnan(values).any()]
        self.unseen_codes_ = {}
        self.numeric_ranges_ = {}
        for name, lookup in self.lookups_.items():
            unseen = sorted(set(lookup.values()) - set(encoded[name])) if lookup else []
            if unseen:
                self.unseen_codes_[name] = unseen
            if lookup is None and not np.isnan(encoded[name]).all():
                self.numeric_ranges_[name] = (
                    float(np.nanmin(encoded[name])),
                    float(np.nanmax(encoded[name])),
                )
        self.derived_ = spec.derived_inputs(c.name for c in self.columns_)
        self.feature_names_in_ = np.asarray(X.columns, dtype=object)
        self.n_features_in_ = X.shape[1]
        return self

    def transform(self, X: pd.DataFrame) -> pd.DataFrame:
        check_is_fitted(self, "columns_")
        _check_records(X)
        missing = [c.name for c in self.columns_ if c.name not in X.columns]
        if missing:
            raise ValueError(f"records lack input columns: {', '.join(missing)}")
        encoded = {c.name: self._encode(X[c.name], self.lookups_[c.name]) for c in self.columns_}
        for derived in self.derived_:
            encoded[derived.name] = _derive(derived, encoded)
        return pd.DataFrame(encoded, index=X.index, dtype="float64")

    def encode_record(self, record: Mapping[str, object]) -> np.ndarray:
        """One record as a row of inputs, without pandas: the fast path for scoring one person."""
        check_is_fitted(self, "columns_")
        values = {
            column.name: self.encode_value(column.name, record.get(column.name)) for column in self.columns_
        }
        for derived in self.derived_:
            values[derived.name] = _derive(derived, values)
        return np.fromiter(values.values(), dtype="float64", count=len(values))

    def encode_value(self, column: str, value: object) -> float:
        """One column's value as an input: what encode_record does per column, and how a need
        rule's target is compared with the record's value."""
        lookup = self.lookups_[column]
        if value is None or pd.isna(value):
            return np.nan
        if lookup is None:
            return float(value)
        return lookup.get(level_key(value, lookup), np.nan)

    def get_feature_names_out(self, input_features: Sequence[str] | None = None) -> np.ndarray:
        check_is_fitted(self, "columns_")
        if input_features is not None and list(input_features) != list(self.feature_names_in_):
            raise ValueError("input_features must be None or the columns fit was given (feature_names_in_)")
        names = [c.name for c in self.columns_] + [d.name for d in self.derived_]
        return np.asarray(names, dtype=object)

    def __sklearn_tags__(self) -> Tags:
        """Records hold text categories and missing cells, which the encoder reads as NaN."""
        tags = super().__sklearn_tags__()
        tags.input_tags.categorical = tags.input_tags.string = tags.input_tags.allow_nan = True
        return tags

    @property
    def free_text_features_(self) -> list[str]:
        """Categorical inputs without declared values, whose categories are learned in training:
        a value training never saw is read as missing (UNSEEN_READS_AS)."""
        return [c.name for c in self.columns_ if c.kind == "categorical" and not c.values]

    @property
    def categorical_features_(self) -> list[str]:
        """Inputs whose codes are categories, not quantities."""
        return [c.name for c in self.columns_ if c.kind == "categorical"]

    def _spec(self) -> DatasetSpec:
        if self.spec is None:
            raise ValueError("RecordEncoder needs a spec")
        return parse_spec(self.spec) if isinstance(self.spec, str) else self.spec

    @staticmethod
    def _encode(values: pd.Series, lookup: dict[str, float] | None) -> np.ndarray:
        if lookup is None:
            return pd.to_numeric(values, errors="coerce").to_numpy(dtype="float64", na_value=np.nan)
        keys = as_level(values.astype("str").str.strip().str.lower(), list(lookup))
        return keys.map(lookup).to_numpy(dtype="float64", na_value=np.nan)


def _check_records(X: object) -> None:
    if not isinstance(X, pd.DataFrame):
        raise TypeError("RecordEncoder needs a pandas DataFrame of records with named columns")


def _derive(derived: DerivedSpec, values: Mapping) -> np.ndarray | float:
    """One declared operation over already computed inputs; missing in, missing out."""
    first, *rest = (values[name] for name in derived.of)
    if derived.op == "ratio":
        denominator = np.asarray(rest[0] + derived.offset, dtype="float64")
        with np.errstate(divide="ignore", invalid="ignore"):
            return np.where(denominator == 0, np.nan, first / denominator)
    if derived.op == "difference":
        return first - rest[0] + derived.offset
    result = first
    for value in rest:
        result = result * value if derived.op == "product" else result + value
    return result + derived.offset


def _lookup(column: ColumnSpec, values: pd.Series) -> dict[str, float] | None:
    """Text, stripped and in lower case as transform reads it, to input value: level position, 1/0,
    or category code; None for numbers."""
    if column.kind == "numeric":
        return None
    if column.kind == "boolean":
        return {word: 1.0 for word in TRUE_WORDS} | {word: 0.0 for word in FALSE_WORDS}
    levels = column.order or column.values or sorted(values.dropna().astype("str").unique())
    return {str(level).strip().lower(): float(i) for i, level in enumerate(levels)}
