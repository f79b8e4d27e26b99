"""Promotion gates: the checks a model version must pass before it may serve."""

from __future__ import annotations

from dataclasses import dataclass

from features.spec import Gates


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
    incumbent = report["baselines"].get("incumbent", {}).get("auc")
    if "incumbent" in report["baselines"]:
        results.append(
            GateResult("auc_over_incumbent", False, _unknown_auc(auc, "incumbent", INCUMBENT_NO_AUC))
            if auc is None or incumbent is None
            else GateResult(
                "auc_over_incumbent",
                auc - incumbent > gates.min_auc_gain_over_incumbent,
                f"risk AUC {auc:.4f} vs incumbent {incumbent:.4f}: gain {auc - incumbent:+.4f}, "
                f"must exceed {gates.min_auc_gain_over_incumbent:+.4f}",
            )
        )
    logistic = report["baselines"]["logistic"]["auc"]
    results.append(
        GateResult("auc_vs_logistic", False, _unknown_auc(auc, "logistic baseline", "the report gives none"))
        if auc is None or logistic is None
        else GateResult(
            "auc_vs_logistic",
            logistic - auc <= gates.max_auc_below_logistic,
            f"risk AUC {auc:.4f} vs logistic baseline {logistic:.4f}: {abs(auc - logistic):.4f} "
            f"{'above' if auc >= logistic else 'below'} it, at most {gates.max_auc_below_logistic:.4f} "
            "below allowed",
        )
    )
    ece = report["risk"]["ece"]
    results.append(
        GateResult(
            "calibration",
            ece <= gates.max_ece,
            f"ECE {ece:.4f}, at most {gates.max_ece:.4f} allowed",
        )
    )
    attribute = gates.fairness_attribute
    if attribute is not None:
        audit = report["fairness"].get(attribute)
        gap = None if audit is None else audit["fpr_gap"]
        results.append(
            GateResult(
                "fpr_gap",
                gap is not None and gap <= gates.max_fpr_gap,
                f"{attribute} false-positive-rate gap {_gap_text(attribute, audit, gap)} at threshold "
                f"{gates.operating_threshold}, at most {gates.max_fpr_gap:.4f} allowed",
            )
        )
    return results


NO_AUC = "the evaluation data hold only one outcome"
INCUMBENT_NO_AUC = "the rows with an incumbent score hold only one outcome (or none)"


def _unknown_auc(auc: float | None, baseline: str, why: str) -> str:
    """Which AUC is unknown: the risk model's, or (when that is known) the baseline's."""
    if auc is None:
        return f"risk AUC unknown: {NO_AUC}"
    return f"risk AUC {auc:.4f}, {baseline} AUC unknown: {why}"


def _gap_text(attribute: str, audit: dict | None, gap: float | None) -> str:
    if gap is not None:
        return f"{gap:.4f}"
    if audit is None:
        return f"unknown ({attribute} is absent from the evaluation data)"
    present = ", ".join(audit["groups"]) or "none"
    with_negatives = ", ".join(g for g, row in audit["groups"].items() if row["fpr"] is not None) or "none"
    return (
        f"unknown (it needs two groups with non-recidivists; groups present: {present}; "
        f"with non-recidivists: {with_negatives})"
    )
