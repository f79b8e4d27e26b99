"""Text alternatives of a run's plots that say the numbers the plots show, for a reviewer who cannot
see them (WCAG 1.1.1): built from the numbers the train job drew them from (its plots.json)."""

from __future__ import annotations

from typing import Any


def plot_texts(plots: dict[str, Any], captions: dict[str, str]) -> dict[str, tuple[str, str]]:
    """Each plot's caption, and its text alternative: the caption followed by its key numbers (the
    caption alone for a run logged before plots.json, or for a plot it does not describe)."""
    say = {
        "calibration.png": _calibration,
        "roc.png": _roc,
        "shap_summary.png": _shap,
        "domain_importance.png": _domains,
    }
    return {
        name: (caption, f"{caption} {say[name](plots[name])}" if name in plots and name in say else caption)
        for name, caption in captions.items()
    }


def _calibration(drawn: dict[str, Any]) -> str:
    points = "; ".join(
        f"{b['mean_predicted']:.3f} predicted, {b['observed']:.3f} observed (n {b['n']})"
        for b in drawn["bins"]
    )
    return f"Per bin, lowest first: {points}."


def _roc(drawn: dict[str, Any]) -> str:
    return "; ".join(f"{c['name']}: {_auc(c, drawn['rows'])}" for c in drawn["curves"]) + "."


def _auc(curve: dict[str, Any], rows: int) -> str:
    if curve["auc"] is None:
        return "no AUC (its rows hold one outcome)"
    scored = "" if curve["rows"] == rows else f" on the {curve['rows']} of {rows} rows with a score"
    return f"AUC {curve['auc']:.3f}{scored}"


def _shap(drawn: dict[str, Any]) -> str:
    inputs = ", ".join(f"{i['name']} {i['mean_abs_contribution']:.3f}" for i in drawn["inputs"])
    return (
        f"The {len(drawn['inputs'])} largest of {drawn['of']} inputs by mean absolute contribution "
        f"(log-odds), largest first: {inputs}."
    )


def _domains(drawn: dict[str, Any]) -> str:
    domains = ", ".join(f"{d['name']} {d['mean_abs_contribution']:.3f}" for d in drawn["domains"])
    return f"Mean absolute summed contribution (log-odds), largest first: {domains}."
