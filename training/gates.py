"""Promotion gates: the checks a model version must pass before it may serve."""

from __future__ import annotations

from dataclasses import dataclass

from features.spec import GATE_TOLERANCE, Gates, at_most


@dataclass(frozen=True)
class GateResult:
    name: str
    passed: bool
    detail: str


def check_gates(report: dict, gates: Gates) -> list[GateResult]:
    """Each gate with its verdict and the numbers behind it, from an evaluation report.

    A gate whose number cannot be computed on this evaluation fails, saying why."""
    results = []
    auc = report["risk"]["auc"]
    if "incumbent" in report["baselines"]:
        results.append(_over_incumbent(report["baselines"]["incumbent"], auc, gates))
    logistic = report["baselines"]["logistic"]["auc"]
    results.append(
        GateResult("auc_vs_logistic", False, _unknown_auc(auc, "logistic baseline", "the report gives none"))
        if auc is None or logistic is None
        else GateResult(
            "auc_vs_logistic",
            at_most(logistic - auc, gates.max_auc_below_logistic),
            f"risk AUC {auc:.4f} vs logistic baseline {logistic:.4f}: {abs(auc - logistic):.4f} "
            f"{'above' if auc >= logistic else 'below'} it{_interval(report, 'auc_minus_logistic')}, "
            f"at most {gates.max_auc_below_logistic:.4f} below allowed",
        )
    )
    ece = report["risk"]["ece"]
    results.append(
        GateResult(
            "calibration",
            at_most(ece, gates.max_ece),
            f"ECE {ece:.4f}, at most {gates.max_ece:.4f} allowed",
        )
    )
    attribute = gates.fairness_attribute
    if attribute is not None:
        audit = report["fairness"].get(attribute)
        gap = None if audit is None else audit["fpr_gap"]
        gap_text = _gap_text(attribute, audit, gap) + ("" if gap is None else _interval(report, "fpr_gap"))
        results.append(
            GateResult(
                "fpr_gap",
                gap is not None and at_most(gap, gates.max_fpr_gap),
                f"{attribute} false-positive-rate gap {gap_text} at threshold "
                f"{gates.operating_threshold}, at most {gates.max_fpr_gap:.4f} allowed",
            )
        )
    return results


NO_AUC = "the evaluation data hold only one outcome"
INCUMBENT_NO_AUC = "the rows with an incumbent score hold only one outcome (or none)"


def _over_incumbent(incumbent: dict, auc: float | None, gates: Gates) -> GateResult:
    """This model's AUC against the incumbent's on the same rows: those with an incumbent score."""
    same_rows = incumbent.get("model_auc", auc)
    if same_rows is None or incumbent["auc"] is None:
        # On all rows the risk AUC may be known when on the incumbent's rows it is not.
        return GateResult("auc_over_incumbent", False, _unknown_auc(auc, "incumbent", INCUMBENT_NO_AUC))
    auc = same_rows
    gain = auc - incumbent["auc"]
    rows = f" on the {incumbent['auc_n']} rows with an incumbent score" if "auc_n" in incumbent else ""
    return GateResult(
        "auc_over_incumbent",
        gain - gates.min_auc_gain_over_incumbent > GATE_TOLERANCE,
        f"risk AUC {auc:.4f} vs incumbent {incumbent['auc']:.4f}{rows}: gain {gain:+.4f}, "
        f"must exceed {gates.min_auc_gain_over_incumbent:+.4f}",
    )


def _unknown_auc(auc: float | None, baseline: str, why: str) -> str:
    """Which AUC is unknown: the risk model's, or (when that is known) the baseline's."""
    if auc is None:
        return f"risk AUC unknown: {NO_AUC}"
    return f"risk AUC {auc:.4f}, {baseline} AUC unknown: {why}"


def _interval(report: dict, name: str) -> str:
    """The bootstrap interval of a number, so a reader sees whether a miss is beyond sampling noise;
    empty for a report written before intervals were."""
    intervals = report.get("intervals") or {}
    bounds = intervals.get(name)
    if bounds is None:
        return ""
    low, high = (f"{b:+.4f}" if name == "auc_minus_logistic" else f"{b:.4f}" for b in bounds)
    return f" ({intervals['level']:.0%} bootstrap interval {low} to {high})"


def _gap_text(attribute: str, audit: dict | None, gap: float | None) -> str:
    if gap is not None:
        return f"{gap:.4f}"
    if audit is None:
        return f"unknown ({attribute} is absent from the evaluation data)"
    present = ", ".join(audit["groups"]) or "none"
    least = audit.get("min_group_size", 1)
    small = audit.get("left_out", {}).get("fpr", [])
    large = [g for g, row in audit["groups"].items() if row["fpr"] is not None and g not in small]
    return (
        f"unknown (it needs two groups with at least {least} non-recidivists; groups present: {present}; "
        f"with that many: {', '.join(large) or 'none'})"
    )
