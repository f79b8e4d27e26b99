"""Fit every model of a scoring bundle on the training part of a labelled data set."""

from __future__ import annotations

import numpy as np
import pandas as pd

from features.encoder import RecordEncoder
from features.needs import need_labels
from features.spec import DatasetSpec
from models.baselines import IncumbentBaseline, logistic_baseline
from models.bundle import ScoringBundle
from models.calibrated import CalibratedBooster

MIN_NEED_LABELS = 50
# Needs are screened, not decided on: a faster learning rate keeps their models small and quick.
NEED_PARAMS = {"learning_rate": 0.05}
NEED_FOLDS = 3


def outcome(typed: pd.DataFrame, spec: DatasetSpec) -> np.ndarray:
    """The outcome as 0/1."""
    return typed[spec.outcome.column].astype("float64").to_numpy().astype(int)


def fit_bundle(typed: pd.DataFrame, spec: DatasetSpec, seed: int = 0) -> ScoringBundle:
    """Risk model on release-time inputs, one model per need without its sources, and baselines."""
    y = outcome(typed, spec)
    encoder = RecordEncoder(spec).fit(typed)
    X = encoder.transform(typed)
    risk = CalibratedBooster(random_state=seed).fit(X, y)
    labels = need_labels(typed, spec)
    needs = {}
    for need in spec.needs:
        known = labels[need.name].notna().to_numpy()
        if known.sum() < MIN_NEED_LABELS:
            raise ValueError(
                f"need {need.name} has only {known.sum()} known labels among the {len(typed)} training rows "
                f"(the file less its test part); at least {MIN_NEED_LABELS} are needed to fit its model (its "
                f"rule reads {', '.join(need.sources)})"
            )
        observed = labels[need.name].to_numpy()[known]
        if len(np.unique(observed)) < 2:
            raise ValueError(
                f"need {need.name} is {'present' if observed[0] else 'absent'} in all {known.sum()} rows "
                "where it is known, so there is nothing to learn; check its rule against the data"
            )
        present = int(observed.astype(int).sum())
        if min(present, len(observed) - present) < NEED_FOLDS:
            raise ValueError(
                f"need {need.name} is present in {present} and absent in {len(observed) - present} of the "
                f"{len(observed)} training rows where it is known; its model's {NEED_FOLDS}-fold "
                f"cross-validation needs at least {NEED_FOLDS} of each: check its rule against the data"
            )
        columns = encoder_inputs_without(encoder, spec, need.sources)
        model = CalibratedBooster(NEED_PARAMS, cv_folds=NEED_FOLDS, random_state=seed)
        needs[need.name] = model.fit(X.loc[known, columns], observed.astype(int))
    categorical = [c for c in encoder.categorical_features_]
    numeric = [c for c in X.columns if c not in categorical]
    logistic = logistic_baseline(categorical, numeric).fit(X, y)
    incumbent = None
    if spec.incumbent is not None:
        incumbent = IncumbentBaseline(
            spec.column(spec.incumbent.column), spec.incumbent.higher_is_riskier
        ).fit(typed, y)
    return ScoringBundle(spec, encoder, risk, needs, logistic, incumbent)


def encoder_inputs_without(encoder: RecordEncoder, spec: DatasetSpec, sources: list[str]) -> list[str]:
    """The encoder's inputs minus `sources` and every derived input computed from them."""
    base = [c.name for c in encoder.columns_ if c.name not in sources]
    return base + [d.name for d in spec.derived_inputs(base)]
