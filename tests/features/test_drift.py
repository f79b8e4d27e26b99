"""Population stability index on distributions worked out by hand."""

import math

import pytest

from features.drift import FLOOR, level, psi


@pytest.mark.parametrize(
    ("reference", "window", "expected"),
    [
        ([0.25] * 4, [0.25] * 4, 0.0),
        # 0.4 ln(0.9 / 0.5) + (-0.4) ln(0.1 / 0.5) = 0.235115 + 0.643775
        ([0.5, 0.5], [0.9, 0.1], 0.878890),
        # 0.1 ln(0.3 / 0.2) + 0 + (-0.1) ln(0.4 / 0.5) = 0.040547 + 0.022314
        ([0.2, 0.3, 0.5], [0.3, 0.3, 0.4], 0.062861),
        # an empty bin counts as 0.0001: -0.5 ln(0.5) + 0.4999 ln(0.5 / 0.0001) = 0.346574 + 4.257745
        ([1.0, 0.0], [0.5, 0.5], 4.604318),
    ],
)
def test_psi_of_known_distributions(reference, window, expected):
    assert psi(reference, window) == pytest.approx(expected, abs=1e-6)


def test_psi_is_symmetric_and_floors_both_sides():
    assert psi([0.9, 0.1], [0.5, 0.5]) == pytest.approx(psi([0.5, 0.5], [0.9, 0.1]))
    assert psi([0.0, 1.0], [0.0, 1.0]) == 0.0
    assert psi([1.0, 0.0], [0.0, 1.0]) == pytest.approx(2 * (1 - FLOOR) * math.log(1 / FLOOR))


def test_psi_refuses_bins_that_do_not_match():
    with pytest.raises(ValueError, match="3 reference shares against 2 window shares"):
        psi([0.2, 0.3, 0.5], [0.5, 0.5])


@pytest.mark.parametrize(
    ("value", "expected"),
    [(0.0, "none"), (0.0999, "none"), (0.1, "moderate"), (0.2499, "moderate"), (0.25, "major")],
)
def test_the_usual_thresholds(value, expected):
    assert level(value) == expected
