"""Which registered model names MLflow and this project's registry searches can hold: checked before
MLflow is imported (seconds), by training's command line and job and by the server's settings."""

from __future__ import annotations


def model_name_problem(name: str) -> str | None:
    """What makes `name` one no model can be registered (or searched for) under, or None: MLflow
    refuses such a name only at registration, after the whole fit."""
    if not name.strip():
        return "is empty"
    if "/" in name or ":" in name:
        return "holds / or :, which MLflow refuses"
    if "'" in name or '"' in name:
        return "holds a quote, which the registry's searches cannot hold"
    if name == "." or name.startswith(".."):
        return "reads as a folder, which MLflow refuses"
    return None
