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
    """Each gate with its verdict and the numbers behind it, from an evaluation report."""
    results = []
    auc = report["risk"]["auc"]
    incumbent = report["baselines"].get("incumbent", {}).get("auc")
    if incumbent is not None:
        margin = auc - incumbent
        results.append(
            GateResult(
                "auc_over_incumbent",
                margin > gates.min_auc_gain_over_incumbent,
                f"risk AUC {auc:.4f} vs incumbent {incumbent:.4f}: gain {margin:+.4f}, "
                f"must exceed {gates.min_auc_gain_over_incumbent:+.4f}",
            )
        )
    logistic = report["baselines"]["logistic"]["auc"]
    shortfall = logistic - auc
    results.append(
        GateResult(
            "auc_vs_logistic",
            shortfall <= gates.max_auc_below_logistic,
            f"risk AUC {auc:.4f} vs logistic baseline {logistic:.4f}: {shortfall:+.4f} below, "
            f"at most {gates.max_auc_below_logistic:.4f} allowed",
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
        gap = report["fairness"].get(attribute, {}).get("fpr_gap")
        results.append(
            GateResult(
                "fpr_gap",
                gap is not None and gap <= gates.max_fpr_gap,
                f"{attribute} false-positive-rate gap "
                f"{'unknown (attribute absent)' if gap is None else f'{gap:.4f}'} at threshold "
                f"{gates.operating_threshold}, at most {gates.max_fpr_gap:.4f} allowed",
            )
        )
    return results
