"""The pages mark the bands where the model predicts relapse by the spec's cut points and operating
threshold, not by the names of the built-in spec's bands."""

from datetime import UTC, datetime

from features.spec import load_spec
from serving.pages import raised_bands, trend


def _spec(labels: list[str], cut_points: list[float], threshold: float):
    spec = load_spec("georgia_parole")
    bands = spec.risk_bands.model_copy(update={"labels": labels, "cut_points": cut_points})
    gates = spec.gates.model_copy(update={"operating_threshold": threshold})
    return spec.model_copy(update={"risk_bands": bands, "gates": gates})


def test_the_built_in_spec_marks_its_two_upper_bands():
    assert raised_bands(load_spec("georgia_parole")) == {"high", "very_high"}


def test_bands_of_any_name_are_marked_from_the_operating_threshold():
    assert raised_bands(_spec(["green", "amber", "red"], [0.3, 0.6], 0.5)) == {"red"}
    assert raised_bands(_spec(["green", "amber", "red"], [0.3, 0.6], 0.3)) == {"amber", "red"}
    assert raised_bands(None) == set()


def test_a_trend_point_is_filled_as_its_caller_says():
    at = datetime(2026, 1, 1, tzinfo=UTC)
    points = trend([("a", at, 0.7, "red", True), ("b", at, 0.2, "green", False)], [(0.3, 0.6)] * 2).points
    assert [(p.mark, p.filled) for p in points] == [("red", True), ("green", False)]
