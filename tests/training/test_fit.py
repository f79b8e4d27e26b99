import numpy as np
import pytest

from features.validation import validate_records
from training.fit import fit_bundle


def test_same_seed_same_model(training_typed, spec, bundle):
    again = fit_bundle(training_typed.iloc[:3000], spec, seed=5)
    test = training_typed.iloc[3000:3500]
    np.testing.assert_array_equal(again.predict_frame(test), bundle.predict_frame(test))


def test_a_need_without_labels_stops_training(training_raw, spec):
    raw = training_raw.iloc[:600].copy()
    raw["Residence_Changes"] = None
    typed, _ = validate_records(raw, spec)
    with pytest.raises(ValueError, match="need housing has only 0 known labels"):
        fit_bundle(typed, spec)
