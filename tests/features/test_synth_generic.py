"""Records for any spec: they must validate against the spec that made them."""

import pytest

from features.spec import parse_spec
from features.synth_generic import generate_cohort
from features.validation import validate_records

SPEC = """
name: bounds
id: pid
outcome: {column: y, horizon_years: 1}
risk_bands: {cut_points: [0.5], labels: [low, high]}
columns:
  - {name: balance, kind: numeric, domain: d%s}
"""


@pytest.mark.parametrize(
    "bounds",
    ["", ", min: 3", ", max: 4", ", max: -5", ", min: -20, max: -10"],
    ids=["none", "min", "max", "negative max", "both"],
)
def test_numbers_keep_within_the_declared_bounds(bounds):
    spec = parse_spec(SPEC % bounds)
    _, report = validate_records(generate_cohort(spec, 200, seed=1), spec)
    assert report.ok, report.lines()[:3]
