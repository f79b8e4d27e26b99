"""Which registered model names MLflow and this project's registry searches can hold: checked before
MLflow is imported (seconds), by training's command line and job and by the server's settings."""

from __future__ import annotations


def registry_refusal(name: str) -> str | None:
    """What makes `name` one MLflow registers no model under, or None: MLflow says so only at
    registration, after the whole fit. The server refuses these names, none of which can have a champion."""
    if not name.strip():
        return "is empty"
    if "/" in name or ":" in name:
        return "holds / or :, which MLflow refuses"
    if name == "." or name.startswith(".."):
        return "reads as a folder, which MLflow refuses"
    return None


def model_name_problem(name: str) -> str | None:
    """What makes `name` one training does not register under, or None: MLflow's refusals, and quotes,
    which the registry searches training writes cannot hold (a model registered with them outside our
    tools is served all the same)."""
    if "'" in name or '"' in name:
        return "holds a quote, which the registry's searches cannot hold"
    return registry_refusal(name)
