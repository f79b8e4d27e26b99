"""The model page's metrics table says when a baseline's AUC is over fewer rows than this model's."""

from features.spec import load_spec
from serving.pages import coverage_notes

EVALUATION = {
    "n": 4834,
    "risk": {"auc": 0.7320},
    "baselines": {
        "logistic": {"auc": 0.7287, "brier": 0.2050},
        "incumbent": {"auc": 0.5992, "brier": 0.2371, "auc_n": 4750, "model_auc": 0.7297},
    },
}


def test_an_incumbent_scoring_some_rows_has_its_auc_and_this_models_on_them_said():
    """The gate compares 0.7297 with 0.5992 on 4,750 rows; the table alone set 0.7320 beside 0.5992."""
    (note,) = coverage_notes(EVALUATION, load_spec("georgia_parole"))
    assert "Georgia supervision risk score (first)" in note
    assert "4750 of the 4834 test rows" in note and "0.7297" in note


def test_a_baseline_scoring_every_row_needs_no_note():
    evaluation = EVALUATION | {"baselines": {"incumbent": {"auc": 0.6, "auc_n": 4834, "model_auc": 0.732}}}
    assert coverage_notes(evaluation, None) == []
