"""Text alternatives of the model page's plots, from the numbers the train job drew them from."""

from serving.plot_texts import plot_texts
from serving.runs import ARTIFACTS

DRAWN = {
    "calibration.png": {"bins": [{"mean_predicted": 0.0831, "observed": 0.0323, "n": 31}]},
    "roc.png": {
        "rows": 4834,
        "curves": [
            {"name": "this model", "auc": 0.7320, "rows": 4834},
            {"name": "incumbent", "auc": 0.5992, "rows": 4750},
            {"name": "empty", "auc": None, "rows": 0},
        ],
    },
}


def test_a_plot_is_described_by_its_numbers_after_its_caption():
    texts = plot_texts(DRAWN, ARTIFACTS)
    caption, alt = texts["calibration.png"]
    assert caption == ARTIFACTS["calibration.png"]
    assert alt == f"{caption} Per bin, lowest first: 0.083 predicted, 0.032 observed (n 31)."
    assert texts["roc.png"][1].endswith(
        "this model: AUC 0.732; incumbent: AUC 0.599 on the 4750 of 4834 rows with a score; "
        "empty: no AUC (its rows hold one outcome)."
    )


def test_a_run_logged_before_plots_json_keeps_its_captions():
    assert plot_texts({}, ARTIFACTS) == {name: (caption, caption) for name, caption in ARTIFACTS.items()}
