"""The scoring bundle: everything needed to score and explain, fitted together and shipped as one."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

import numpy as np
import pandas as pd
from sklearn.pipeline import Pipeline

from features.encoder import UNSEEN_READS_AS, RecordEncoder
from features.needs import observed_rules
from features.spec import DatasetSpec, NeedSpec
from models.baselines import IncumbentBaseline
from models.calibrated import CalibratedBooster, sigmoid

# How many unseen values of one input a report lists by name (the counts cover them all).
UNSEEN_SHOWN = 10
IDENTITY = "base_value + sum(contributions) = log_odds = logit(probability), to within 1e-6"


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
        domains = self.spec.domains()
        self._layouts = {"risk": _Layout.of(names, np.arange(len(names)), domains)} | {
            need: _Layout.of(
                list(model.feature_names_in_),
                np.array([names.index(c) for c in model.feature_names_in_]),
                domains,
            )
            for need, model in self.needs.items()
        }
        self._observed = observed_rules(self.spec, names, self.encoder.encode_value)
        self._free_text = [(names.index(name), name) for name in self.encoder.free_text_features_]
        # An encoder fitted by an older release did not record these: its scores carry no such warnings.
        self._always_given = list(getattr(self.encoder, "always_given_", []))
        self._unseen_codes = [
            (names.index(name), name, set(codes))
            for name, codes in getattr(self.encoder, "unseen_codes_", {}).items()
        ]
        self._ranges = [
            (names.index(name), name, low, high)
            for name, (low, high) in getattr(self.encoder, "numeric_ranges_", {}).items()
        ]

    def __setstate__(self, state: dict) -> None:
        """Recompute the lookup caches on load, so a bundle pickled by an older release still scores;
        the spec is validated again, so that keys added since take their defaults."""
        self.__dict__.update(state)
        self.spec = DatasetSpec.model_validate(self.spec.model_dump(by_alias=True, exclude_none=True))
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

    def unlearned_inputs(self, records: pd.DataFrame) -> dict[str, dict]:
        """What a report over many records must say of them, as each score does, where the models never
        learned: per input, the given values training never saw (`unseen_values`: rows, distinct values,
        the most common; a free-text one's are scored as missing), how many records leave out an input
        every training record gave (`left_out_inputs`), and how many give a number below and above every
        training record's (`beyond_training_range`)."""
        encoded = self.encode(records)
        unseen = {
            name: _given_cells(records[name]) & encoded[name].isna()
            for name in self.encoder.free_text_features_
        }
        unseen |= {
            name: _given_cells(records[name]) & encoded[name].isin(codes)
            for _, name, codes in self._unseen_codes
        }
        beyond = {
            name: {"below": int((encoded[name] < low).sum()), "above": int((encoded[name] > high).sum())}
            for _, name, low, high in self._ranges
        }
        left_out = {name: int((~_given_cells(records[name])).sum()) for name in self._always_given}
        return {
            "unseen_values": {
                name: _value_counts(records.loc[rows, name]) for name, rows in unseen.items() if rows.any()
            },
            "left_out_inputs": {name: rows for name, rows in left_out.items() if rows},
            "beyond_training_range": {name: c for name, c in beyond.items() if c["below"] or c["above"]},
        }

    def score_records(self, records: Sequence[Mapping[str, object]]) -> list[dict]:
        """Risk, needs with interventions, and exact explanations for each (valid) record."""
        X = np.vstack([self.encoder.encode_record(r) for r in records])
        parts = {"risk": self.risk.explain(X)} | {
            need: model.explain(X[:, self._layouts[need].columns]) for need, model in self.needs.items()
        }
        results = []
        for i, record in enumerate(records):
            shown = [_shown_value(record, name, value) for name, value in zip(self.inputs, X[i], strict=True)]
            unseen = self._unseen(record, X[i])
            explained = {
                output: self._layouts[output].explain(shown, base[i], phi[i], unseen)
                for output, (base, phi) in parts.items()
            }
            risk = explained.pop("risk")
            result = {
                "risk": {
                    "probability": risk["probability"],
                    "band": self.spec.risk_bands.band(risk["probability"]),
                    "horizon_years": self.spec.outcome.horizon_years,
                },
                "needs": [
                    self._need(need, explained[need.name]["probability"], X[i]) for need in self.spec.needs
                ],
                "explanation": {
                    "identity": IDENTITY,
                    "risk": _public(risk),
                    "needs": {name: _public(e) for name, e in explained.items()},
                },
            }
            warnings = [
                f"Input {name} has value {shown[j]!r}, not seen in training: it counts as {UNSEEN_READS_AS}"
                for j, name in self._free_text
                if j in unseen
            ]
            warnings += [
                f"Input {name} has value {shown[j]!r}, which no training record had: the model never learned "
                "what it means"
                for j, name, codes in self._unseen_codes
                if X[i, j] in codes
            ]
            warnings += [
                _beyond_warning(name, X[i, j], low, high)
                for j, name, low, high in self._ranges
                if X[i, j] < low or X[i, j] > high
            ]
            left_out = [name for name in self._always_given if not _given(record.get(name))]
            if left_out:
                warnings.append(_left_out_warning(left_out))
            if warnings:  # only then: a score with nothing to warn of keeps its size
                result["warnings"] = warnings
            results.append(result)
        return results

    def _unseen(self, record: Mapping[str, object], inputs: np.ndarray) -> set[int]:
        """Positions of free-text inputs whose given value training never saw (encoded as missing)."""
        return {j for j, name in self._free_text if np.isnan(inputs[j]) and _given(record.get(name))}

    def need_flags(self, records: pd.DataFrame, scores: pd.DataFrame) -> pd.DataFrame:
        """Each need's flag for many records (`scores` from predict_frame), as their scores give it."""
        X = self.encode(records).to_numpy(dtype=float)
        return pd.DataFrame(
            {
                need.name: [
                    self._observed_and_flag(need, p, inputs)[1]
                    for p, inputs in zip(scores[f"need_{need.name}"], X, strict=True)
                ]
                for need in self.spec.needs
            },
            index=records.index,
        )

    def _need(self, need: NeedSpec, probability: float, inputs: np.ndarray) -> dict:
        """A need as predicted, unless the record itself shows it: then `observed` decides the flag."""
        observed, flagged = self._observed_and_flag(need, probability, inputs)
        return {
            "need": need.name,
            "probability": probability,
            "observed": observed,
            "flagged": flagged,
            "interventions": list(need.interventions),
        }

    def _observed_and_flag(
        self, need: NeedSpec, probability: float, inputs: np.ndarray
    ) -> tuple[bool | None, bool]:
        rule = self._observed.get(need.name)
        observed = rule.holds(inputs) if rule is not None else None
        return observed, observed if observed is not None else bool(probability >= need.flag_threshold)


@dataclass(frozen=True)
class _Layout:
    """One output's inputs: their names, positions among all inputs, and domains."""

    names: list[str]
    columns: np.ndarray
    domains: list[str]
    domain_codes: np.ndarray
    domain_names: list[str]

    @classmethod
    def of(cls, names: list[str], columns: np.ndarray, domains: Mapping[str, str]) -> _Layout:
        in_order = [domains[name] for name in names]
        domain_names = list(dict.fromkeys(in_order))
        codes = np.array([domain_names.index(d) for d in in_order], dtype=int)
        return cls(names, columns, in_order, codes, domain_names)

    def explain(self, shown: list[object], base: float, phi: np.ndarray, unseen: set[int]) -> dict:
        """Contributions largest first, sums per domain, and the log-odds they add up to; an input
        whose value training never saw is marked `unseen` (the key is absent otherwise)."""
        log_odds = float(base + phi.sum())
        by_domain = np.bincount(self.domain_codes, weights=phi, minlength=len(self.domain_names))
        # As Python numbers: taking numpy scalars one at a time cost a fifth of a 1,000-record batch.
        contributions, columns = phi.tolist(), self.columns.tolist()
        sums = by_domain.tolist()
        return {
            "base_value": float(base),
            "log_odds": log_odds,
            "probability": float(sigmoid(log_odds)),
            "contributions": [
                {
                    "input": self.names[j],
                    "value": shown[columns[j]],
                    "domain": self.domains[j],
                    "contribution": contributions[j],
                    **({"unseen": True} if columns[j] in unseen else {}),
                }
                for j in np.argsort(-np.abs(phi), kind="stable").tolist()
            ],
            "by_domain": {
                self.domain_names[d]: sums[d] for d in np.argsort(-np.abs(by_domain), kind="stable").tolist()
            },
        }


def _shown_value(record: Mapping[str, object], name: str, encoded: float) -> object:
    """The value as the record gave it; a derived input shows its computed number."""
    if name in record:
        value = record[name]
        if value is None or pd.isna(value):
            return None
        return value.item() if isinstance(value, np.generic) else value
    return None if np.isnan(encoded) else float(encoded)


def _beyond_warning(name: str, value: float, low: float, high: float) -> str:
    """In words, that a number lies beyond every training record's, and how the trees read it."""
    side, bound = ("below", "at least") if value < low else ("above", "at most")
    end = low if value < low else high
    return (
        f"Input {name} has value {value:g}, {side} every training record's ({bound} {end:g}): the trees "
        f"split on it as on {end:g}"
    )


def _left_out_warning(names: list[str]) -> str:
    """In words, that the record leaves out inputs the models never saw missing."""
    if len(names) == 1:
        subject, it, its, is_ = f"Input {names[0]} is", "it", "its", "it is"
    else:
        subject, it, its, is_ = (
            f"Inputs {', '.join(names[:-1])} and {names[-1]} are",
            "them",
            "their",
            "they are",
        )
    return (
        f"{subject} left out, though every training record gave {it}: the model never learned what {its} "
        f"absence means, so this score could differ much from one with {it} given; send {it} if {is_} known"
    )


def _given_cells(values: pd.Series) -> pd.Series:
    """Which cells hold a value: not missing, not blank (as `_given` reads one record's)."""
    return values.notna() & (values.astype("str").str.strip() != "")


def _value_counts(values: pd.Series) -> dict:
    """Given values as `unseen_values` lists them: how many rows, how many distinct, the most common."""
    counts = values.astype("str").str.strip().value_counts(sort=False).sort_index()
    counts = counts.sort_values(ascending=False, kind="stable")
    return {
        "rows": len(values),
        "distinct": len(counts),
        "most_common": {str(v): int(n) for v, n in counts.head(UNSEEN_SHOWN).items()},
    }


def _given(value: object) -> bool:
    return value is not None and not pd.isna(value) and bool(str(value).strip())


def _public(explanation: dict) -> dict:
    return {k: v for k, v in explanation.items() if k != "probability"}
