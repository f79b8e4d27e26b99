"""The scoring bundle: everything needed to score and explain, fitted together and shipped as one."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

import numpy as np
import pandas as pd
from sklearn.pipeline import Pipeline

from features.encoder import RecordEncoder
from features.spec import DatasetSpec
from models.baselines import IncumbentBaseline
from models.calibrated import CalibratedBooster

IDENTITY = "base_value + sum(contributions) = log_odds = logit(probability), to within 1e-6"


def sigmoid(log_odds: np.ndarray) -> np.ndarray:
    return 1.0 / (1.0 + np.exp(-log_odds))


@dataclass
class ScoringBundle:
    """Encoder, risk model, one model per need, baselines and the spec they were fitted for.

    Offline evaluation and the API score through this same object, so they give identical
    numbers.
    """

    spec: DatasetSpec
    encoder: RecordEncoder
    risk: CalibratedBooster
    needs: dict[str, CalibratedBooster]
    logistic: Pipeline
    incumbent: IncumbentBaseline | None = None
    metadata: dict = field(default_factory=dict)

    def __post_init__(self) -> None:
        names = list(self.encoder.get_feature_names_out())
        self.inputs = names
        self._need_inputs = {need: list(model.feature_names_in_) for need, model in self.needs.items()}
        self._need_columns = {
            need: np.array([names.index(c) for c in inputs]) for need, inputs in self._need_inputs.items()
        }
        self._domains = self.spec.domains()

    def __setstate__(self, state: dict) -> None:
        """Recompute the lookup caches on load, so a bundle pickled by an older release still scores."""
        self.__dict__.update(state)
        self.__post_init__()

    def encode(self, records: pd.DataFrame) -> pd.DataFrame:
        """Validated (or text) records as model inputs, including derived ones."""
        return self.encoder.transform(records)

    def predict_frame(self, records: pd.DataFrame) -> pd.DataFrame:
        """Probabilities for many records at once: risk, each need and the baselines."""
        X = self.encode(records)
        out = pd.DataFrame(index=records.index)
        out["risk"] = self.risk.predict_proba(X)[:, 1]
        for need, model in self.needs.items():
            out[f"need_{need}"] = model.predict_proba(X)[:, 1]
        out["baseline_logistic"] = self.logistic.predict_proba(X)[:, 1]
        if self.incumbent is not None:
            out["baseline_incumbent"] = self.incumbent.predict_proba(records)[:, 1]
        return out

    def score_records(self, records: Sequence[Mapping[str, object]]) -> list[dict]:
        """Risk, needs with interventions, and exact explanations for each (valid) record."""
        X = np.vstack([self.encoder.encode_record(r) for r in records])
        risk_base, risk_phi = self.risk.explain(X)
        need_parts = {
            need: model.explain(X[:, self._need_columns[need]]) for need, model in self.needs.items()
        }
        results = []
        for i, record in enumerate(records):
            risk = self._explanation(record, X[i], self.inputs, risk_base[i], risk_phi[i])
            needs_explained = {
                need: self._explanation(
                    record,
                    X[i, self._need_columns[need]],
                    self._need_inputs[need],
                    base[i],
                    phi[i],
                )
                for need, (base, phi) in need_parts.items()
            }
            results.append(
                {
                    "risk": {
                        "probability": risk["probability"],
                        "band": self.spec.risk_bands.band(risk["probability"]),
                        "horizon_years": self.spec.outcome.horizon_years,
                    },
                    "needs": [
                        {
                            "need": need.name,
                            "probability": needs_explained[need.name]["probability"],
                            "flagged": needs_explained[need.name]["probability"] >= need.flag_threshold,
                            "interventions": list(need.interventions),
                        }
                        for need in self.spec.needs
                    ],
                    "explanation": {
                        "identity": IDENTITY,
                        "risk": _public(risk),
                        "needs": {name: _public(e) for name, e in needs_explained.items()},
                    },
                }
            )
        return results

    def _explanation(
        self,
        record: Mapping[str, object],
        row: np.ndarray,
        names: list[str],
        base: float,
        phi: np.ndarray,
    ) -> dict:
        log_odds = float(base + phi.sum())
        contributions = sorted(
            (
                {
                    "input": name,
                    "value": _shown_value(record, name, value),
                    "domain": self._domains[name],
                    "contribution": float(c),
                }
                for name, value, c in zip(names, row, phi, strict=True)
            ),
            key=lambda item: -abs(item["contribution"]),
        )
        by_domain: dict[str, float] = {}
        for item in contributions:
            by_domain[item["domain"]] = by_domain.get(item["domain"], 0.0) + item["contribution"]
        return {
            "base_value": float(base),
            "log_odds": log_odds,
            "probability": float(sigmoid(log_odds)),
            "contributions": contributions,
            "by_domain": dict(sorted(by_domain.items(), key=lambda kv: -abs(kv[1]))),
        }


def _shown_value(record: Mapping[str, object], name: str, encoded: float) -> object:
    """The value as the record gave it; a derived input shows its computed number."""
    if name in record:
        value = record[name]
        if value is None or pd.isna(value):
            return None
        return value.item() if isinstance(value, np.generic) else value
    return None if np.isnan(encoded) else float(encoded)


def _public(explanation: dict) -> dict:
    return {k: v for k, v in explanation.items() if k != "probability"}
