"""Stored scores replayed: each record scored again by the model version that scored it and compared
with what was returned, so an auditor can show an explanation is that model's computation."""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

import orjson
from sqlalchemy import Engine, select
from sqlalchemy.orm import Session

from serving.model_store import ServingModel
from serving.tables import ScoreRow

# Numbers further apart than this differ: replayed on the same libraries they are identical, and an
# explanation's identity itself holds to 1e-6.
TOLERANCE = 1e-9


@dataclass(frozen=True)
class Difference:
    """One place where what was returned and what the model computes now are not the same."""

    path: str
    stored: Any
    recomputed: Any


@dataclass(frozen=True)
class Replay:
    """One stored score beside its recomputation."""

    score_id: str
    model_name: str
    model_version: str
    differences: list[Difference]
    largest_difference: float  # over every number both hold, also those within TOLERANCE

    @property
    def matches(self) -> bool:
        return not self.differences


def stored_scores(engine: Engine, score_ids: Iterable[str]) -> dict[str, ScoreRow]:
    """The stored scores among `score_ids`, by id; an id the store does not hold is left out."""
    with Session(engine) as session:
        rows = session.scalars(select(ScoreRow).where(ScoreRow.id.in_(set(score_ids))))
        return {row.id: row for row in rows}


def replay(rows: Iterable[ScoreRow], load: Callable[[str, str], ServingModel]) -> list[Replay]:
    """Each row's record scored by its own version, each version loaded once, in the rows' order."""
    models: dict[tuple[str, str], ServingModel] = {}
    replays = []
    for row in rows:
        key = (row.model_name, row.model_version)
        if key not in models:
            models[key] = load(*key)
        model = models[key]
        recomputed = orjson.loads(orjson.dumps(model.bundle.score_records([row.record])[0]))
        found = _Comparison()
        found.compare("model.run_id", row.run_id, model.run_id)
        found.compare("", row.result, recomputed)
        # Columns of their own, which searches, score lists and the band filter read instead of `result`.
        found.compare("risk_probability", row.risk_probability, recomputed["risk"]["probability"])
        found.compare("risk_band", row.risk_band, recomputed["risk"]["band"])
        replays.append(Replay(row.id, row.model_name, row.model_version, found.differences, found.largest))
    return replays


class _Comparison:
    """Walks two JSON values side by side, keeping where they differ and the largest numeric gap."""

    def __init__(self) -> None:
        self.differences: list[Difference] = []
        self.largest = 0.0

    def compare(self, path: str, stored: Any, recomputed: Any) -> None:
        if isinstance(stored, dict) and isinstance(recomputed, dict):
            for name in [*stored, *(k for k in recomputed if k not in stored)]:
                self.compare(_join(path, name), stored.get(name), recomputed.get(name))
        elif isinstance(stored, list) and isinstance(recomputed, list) and len(stored) == len(recomputed):
            for i, (left, right) in enumerate(zip(stored, recomputed, strict=True)):
                self.compare(f"{path}[{i}]", left, right)
        elif _number(stored) and _number(recomputed):
            gap = abs(stored - recomputed)
            self.largest = max(self.largest, gap)
            if gap > TOLERANCE:
                self.differences.append(Difference(path, stored, recomputed))
        elif stored != recomputed:
            self.differences.append(Difference(path, stored, recomputed))


def _join(path: str, name: str) -> str:
    return f"{path}.{name}" if path else name


def _number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)
