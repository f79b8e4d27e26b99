"""The reference profile logged with every run: what the test part's records and scores looked like, for
serving to compare the records it scores against (drift)."""

from __future__ import annotations

from typing import Any

import pandas as pd

from features.profile import column_profile
from models.bundle import ScoringBundle

FORMAT = 1


def reference_profile(bundle: ScoringBundle, test_part: pd.DataFrame, scores: pd.DataFrame) -> dict[str, Any]:
    """Per input (derived ones too) and per protected attribute (audited only, never an input) its bins
    with shares and missing share; per output the band shares, mean risk and each need's flag rate."""
    spec = bundle.spec

    def profiles(names: list[str]) -> dict[str, dict]:
        return {name: column_profile(spec.column(name), _values(test_part, name)) for name in names}

    bands = scores["risk"].map(spec.risk_bands.band).value_counts(normalize=True)
    flags = bundle.need_flags(test_part, scores)
    encoded = bundle.encoder.transform(test_part)
    return {
        "format": FORMAT,
        "n": len(test_part),
        "inputs": profiles(spec.inputs()),
        # Computed from the record's inputs as the models compute them: their mix can shift while every
        # column's own distribution stays (Arrests_per_Age_Band, the risk model's largest input).
        "derived": {
            d.name: column_profile(d.as_column(), encoded[d.name].tolist()) for d in bundle.encoder.derived_
        },
        "protected": profiles(list(spec.protected)),
        "outputs": {
            "bands": {band: float(bands.get(band, 0.0)) for band in spec.risk_bands.labels},
            "mean_risk": float(scores["risk"].mean()),
            "need_flag_rates": {need: float(flags[need].mean()) for need in flags.columns},
        },
    }


def _values(records: pd.DataFrame, name: str) -> list:
    """A column's values as Python objects (an optional column the file left out is all missing)."""
    return records[name].astype(object).tolist() if name in records else [None] * len(records)
