"""Evaluate a scoring bundle on labelled records: accuracy, calibration, baselines, needs, fairness."""

from __future__ import annotations

import numpy as np
import pandas as pd

from features.needs import need_labels
from features.spec import DatasetSpec
from models.bundle import ScoringBundle
from training.fairness import band_gap_rows, fpr_extremes, group_table, nij_fair_accurate
from training.fit import outcome
from training.group_intervals import group_intervals
from training.group_warnings import small_group_warnings
from training.intersections import intersections
from training.intervals import bootstrap_intervals
from training.metrics import probability_metrics, safe_auc


def evaluate_bundle(bundle: ScoringBundle, typed: pd.DataFrame) -> dict:
    """The evaluation report: what `python -m training evaluate` prints and what gates read."""
    return evaluation_report(bundle, typed, bundle.predict_frame(typed))


def evaluation_report(bundle: ScoringBundle, typed: pd.DataFrame, scores: pd.DataFrame) -> dict:
    """The report from scores already computed by `bundle.predict_frame(typed)`."""
    spec = bundle.spec
    y = outcome(typed, spec)
    risk = scores["risk"].to_numpy()
    baselines = {
        name.removeprefix("baseline_"): {
            "auc": safe_auc(y, scores[name]),
            "brier": float(np.mean((scores[name] - y) ** 2)),
        }
        for name in scores.columns
        if name.startswith("baseline_")
    }
    if bundle.incumbent is not None:
        baselines["incumbent"].update(_incumbent_auc(bundle, typed, y, risk))
    fairness = {
        attribute: _audit(y, risk, typed[attribute], spec)
        for attribute in spec.protected
        if attribute in typed
    }
    gated = spec.gates.fairness_attribute if spec.gates.fairness_attribute in fairness else None
    report = {
        "n": len(y),
        "base_rate": float(y.mean()),
        "risk": probability_metrics(y, risk),
        "baselines": baselines,
        **_needs_report(scores, typed, spec),
        "fairness": fairness,
        "intersections": {
            name: _audit(y, risk, groups, spec)
            for name, groups in intersections(typed, spec.protected).items()
        },
        "nij_fair_accurate": None,
        **bundle.unlearned_inputs(typed),
        "intervals": bootstrap_intervals(
            y,
            risk,
            scores["baseline_logistic"].to_numpy(),
            typed[gated] if gated else None,
            spec.gates.operating_threshold,
            fpr_extremes(fairness[gated]) if gated else None,
            band_gap_rows(fairness[gated], typed[gated], risk, spec.risk_bands) if gated else None,
        ),
    }
    for attribute in spec.protected:
        if attribute in typed:
            score = nij_fair_accurate(y, risk, typed[attribute], spec.gates.min_group_size)
            if score is not None:
                report["nij_fair_accurate"] = score
                break
    return report


def _audit(y: np.ndarray, risk: np.ndarray, groups: pd.Series, spec: DatasetSpec) -> dict:
    """One attribute's fairness table with its per-group bootstrap intervals and the rates too few
    people make uncertain."""
    threshold = spec.gates.operating_threshold
    table = group_table(y, risk, groups, threshold, spec.gates.min_group_size, spec.risk_bands)
    table["intervals"] = group_intervals(y, risk, groups, threshold, table)
    return {**table, "small_groups": small_group_warnings(table, spec.gates.max_fpr_gap)}


def _incumbent_auc(bundle: ScoringBundle, typed: pd.DataFrame, y: np.ndarray, risk: np.ndarray) -> dict:
    """AUC of the incumbent's own score on the rows that have one (auc_n of them), and this model's
    on the same rows (model_auc): the gate compares the two on the same people."""
    score = bundle.incumbent.score(typed)
    known = ~np.isnan(score)
    return {
        "auc": safe_auc(y[known], score[known]),
        "auc_n": int(known.sum()),
        "model_auc": safe_auc(y[known], risk[known]),
    }


def _needs_report(scores: pd.DataFrame, typed: pd.DataFrame, spec: DatasetSpec) -> dict:
    labels = need_labels(typed, spec)
    needs = {}
    for need in spec.needs:
        known = labels[need.name].notna().to_numpy()
        truth = labels[need.name].to_numpy()[known]
        needs[need.name] = {
            "auc": safe_auc(truth, scores[f"need_{need.name}"].to_numpy()[known]),
            "prevalence": float(truth.mean()) if known.any() else None,
            "n": int(known.sum()),
        }
    aucs = [n["auc"] for n in needs.values() if n["auc"] is not None]
    # Named, so a macro AUC over fewer needs is never read as one over all of them.
    without = [name for name, n in needs.items() if n["auc"] is None]
    return {"needs": needs, "macro_auc": float(np.mean(aucs)) if aucs else None, "needs_without_auc": without}
