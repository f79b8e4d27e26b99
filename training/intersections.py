"""Intersectional groups: people audited by two protected attributes at once (Race x Gender, say),
since an error rate can differ for a combination while each attribute alone looks even."""

from __future__ import annotations

from itertools import combinations

import pandas as pd

from training.fairness import MISSING, group_labels

JOIN = " / "


def intersections(typed: pd.DataFrame, protected: list[str]) -> dict[str, pd.Series]:
    """One combined attribute per pair of protected attributes the records hold, named "A x B", its
    groups "a / b"; a row missing either value is in no group, as for one attribute."""
    present = [attribute for attribute in protected if attribute in typed]
    combined = {}
    for first, second in combinations(present, 2):
        a, b = group_labels(typed[first]), group_labels(typed[second])
        labels = pd.Series([x + JOIN + y for x, y in zip(a, b, strict=True)], index=typed.index, dtype=object)
        combined[f"{first} x {second}"] = labels.where((a != MISSING) & (b != MISSING), None)
    return combined
