"""Figures logged with every run: calibration, ROC, SHAP summary and per-domain importance."""

from __future__ import annotations

import warnings
from pathlib import Path

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import shap
from sklearn.metrics import roc_curve

from training.metrics import ECE_BINS

SHAP_SHOWN = 15


def calibration_plot(y: np.ndarray, p: np.ndarray, path: Path) -> dict:
    """Observed rate against mean predicted probability per equal-width bin, with counts; returns the
    points drawn, so the page can say them to someone who cannot see the plot."""
    which = np.minimum((p * ECE_BINS).astype(int), ECE_BINS - 1)
    bins = [b for b in range(ECE_BINS) if (which == b).any()]
    predicted = [p[which == b].mean() for b in bins]
    observed = [y[which == b].mean() for b in bins]
    fig, ax = plt.subplots(figsize=(5, 5))
    ax.plot([0, 1], [0, 1], linestyle="--", color="grey", label="perfect calibration")
    ax.plot(predicted, observed, marker="o", label="model")
    for x, o, b in zip(predicted, observed, bins, strict=True):
        ax.annotate(str(int((which == b).sum())), (x, o), textcoords="offset points", xytext=(4, -10))
    ax.set(xlabel="mean predicted probability", ylabel="observed rate", xlim=(0, 1), ylim=(0, 1))
    ax.set_title("Calibration on the test part (n per bin)")
    ax.legend(loc="upper left")
    _save(fig, path)
    counts = [int((which == b).sum()) for b in bins]
    return {
        "bins": [
            {"mean_predicted": float(x), "observed": float(o), "n": n}
            for x, o, n in zip(predicted, observed, counts, strict=True)
        ]
    }


def roc_plot(y: np.ndarray, scores: dict[str, np.ndarray], aucs: dict[str, float | None], path: Path) -> dict:
    """ROC curves of the model and its baselines on the same rows; a score without an AUC (its rows
    hold one outcome) is named in the legend with no curve. Returns each curve's AUC and rows."""
    fig, ax = plt.subplots(figsize=(5.5, 6.5))
    curves = [
        {"name": name, "auc": aucs[name], "rows": int((~np.isnan(score)).sum())}
        for name, score in scores.items()
    ]
    for name, score in scores.items():
        if aucs[name] is None:
            ax.plot([], [], label=f"{name} (no AUC: the rows it scores hold one outcome)")
            continue
        known = ~np.isnan(score)
        fpr, tpr, _ = roc_curve(y[known], score[known])
        coverage = "" if known.all() else f", {int(known.sum())} rows with a score"
        ax.plot(fpr, tpr, label=f"{name} (AUC {aucs[name]:.3f}{coverage})")
    ax.plot([0, 1], [0, 1], linestyle="--", color="grey", label="chance (AUC 0.5)")
    ax.set(xlabel="false-positive rate", ylabel="true-positive rate", title="ROC on the test part")
    # Below the axes: long baseline names must not cover the curves.
    ax.legend(loc="upper center", bbox_to_anchor=(0.5, -0.14), fontsize="small", frameon=False)
    _save(fig, path)
    return {"curves": curves, "rows": len(y)}


def shap_summary_plot(contributions: np.ndarray, X: pd.DataFrame, path: Path) -> dict:
    """The usual SHAP beeswarm: which inputs move the calibrated log-odds, and which way. Returns the
    inputs shown, largest first as shap orders them (by mean absolute contribution)."""
    with warnings.catch_warnings():
        # An input no test row has a value for (each a free-text value never seen) is drawn grey, as missing;
        # shap's colour scale takes quantiles of its values first, and numpy warned of an all-NaN slice.
        warnings.filterwarnings("ignore", "All-NaN slice encountered", RuntimeWarning)
        shap.summary_plot(
            contributions,
            X,
            show=False,
            max_display=SHAP_SHOWN,
            plot_size=(8, 6),
            rng=np.random.default_rng(0),
        )
    fig = plt.gcf()
    fig.suptitle(
        f"Risk contributions (calibrated log-odds), the {min(SHAP_SHOWN, X.shape[1])} largest of "
        f"{X.shape[1]} inputs\ncolour: the input's encoded value (order or category code); grey: missing",
        fontsize="small",
    )
    _save(fig, path)
    size = np.abs(contributions).mean(axis=0)
    shown = np.argsort(-size, kind="stable")[:SHAP_SHOWN]
    return {
        "inputs": [{"name": str(X.columns[i]), "mean_abs_contribution": float(size[i])} for i in shown],
        "of": X.shape[1],
    }


def domain_importance_plot(importance: pd.Series, path: Path) -> dict:
    """Mean size of each domain's summed contribution, the sums every explanation reports; returns
    them largest first."""
    fig, ax = plt.subplots(figsize=(6, 4))
    importance.sort_values().plot.barh(ax=ax, color="#3465a4")
    ax.set(
        xlabel="mean |sum of the domain's contributions| (log-odds)",
        ylabel="",
        title="Risk drivers by domain",
    )
    _save(fig, path)
    ordered = importance.sort_values(ascending=False)
    return {
        "domains": [{"name": str(name), "mean_abs_contribution": float(v)} for name, v in ordered.items()]
    }


def _save(fig: plt.Figure, path: Path) -> None:
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
