"""Population stability index: how far a window's shares over bins moved from the reference's."""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Literal

# A share of 0 has no logarithm; an empty bin counts as this share (a common choice for PSI).
FLOOR = 1e-4
MODERATE, MAJOR = 0.1, 0.25  # the usual reading: below 0.1 stable, 0.25 and above a major shift
Level = Literal["none", "moderate", "major"]


def psi(reference: Sequence[float], window: Sequence[float]) -> float:
    """sum over bins of (window - reference) * ln(window / reference), each share at least FLOOR."""
    if len(reference) != len(window):
        raise ValueError(f"{len(reference)} reference shares against {len(window)} window shares")
    total = 0.0
    for expected, actual in zip(reference, window, strict=True):
        expected, actual = max(expected, FLOOR), max(actual, FLOOR)
        total += (actual - expected) * math.log(actual / expected)
    return total


def level(value: float) -> Level:
    """The usual reading of a PSI: none below 0.1, moderate below 0.25, major from 0.25."""
    return "major" if value >= MAJOR else "moderate" if value >= MODERATE else "none"
