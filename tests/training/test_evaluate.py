"""The evaluation report of a fitted bundle: the fairness audit uses the spec's operating threshold."""

from dataclasses import replace

import numpy as np
import pytest

from features.spec import DatasetSpec
from training.evaluate import evaluate_bundle
from training.fit import outcome


def test_fairness_is_audited_at_the_operating_threshold(bundle, training_typed):
    data = bundle.spec.model_dump(by_alias=True, exclude_none=True)
    data["gates"]["operating_threshold"] = 0.3
    at_three = replace(bundle, spec=DatasetSpec.model_validate(data))
    rows = training_typed.iloc[3000:]
    report = evaluate_bundle(at_three, rows)
    race = report["fairness"]["Race"]
    assert race["threshold"] == 0.3
    y = outcome(rows, bundle.spec)
    risk = bundle.predict_frame(rows)["risk"].to_numpy()
    assert set(race["groups"]) == {"BLACK", "WHITE"}
    for group, row in race["groups"].items():
        negatives = (rows["Race"] == group).to_numpy() & (y == 0)
        assert row["fpr"] == pytest.approx(np.mean(risk[negatives] >= 0.3))
        assert row["fpr"] > np.mean(risk[negatives] >= 0.5)  # the threshold made a difference
