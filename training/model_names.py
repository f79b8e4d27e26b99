"""Which registered model names training takes: checked by the command line before MLflow is imported
(seconds), and by the train job itself."""

from __future__ import annotations


def check_model_name(name: str) -> None:
    """Refuse a name MLflow takes only at registration (after the whole fit), or that a registry search
    here cannot quote, so training stops before any work with one line naming it."""
    if not name.strip():
        problem = "is empty"
    elif "/" in name or ":" in name:
        problem = "holds / or :, which MLflow refuses"
    elif "'" in name or '"' in name:
        problem = "holds a quote, which the registry's searches cannot hold"
    elif name == "." or name.startswith(".."):
        problem = "reads as a folder, which MLflow refuses"
    else:
        return
    raise ValueError(f"model name {name!r} {problem}; choose another (--name, or MODEL_NAME for make)")
