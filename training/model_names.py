"""Which registered model names training takes: checked by the command line before MLflow is imported
(seconds), and by the train job itself."""

from __future__ import annotations

from models.names import model_name_problem


def check_model_name(name: str) -> None:
    """Refuse a name MLflow would refuse only at registration, or that training's registry searches
    cannot quote, so training stops before any work with one line naming it."""
    problem = model_name_problem(name)
    if problem is not None:
        raise ValueError(f"model name {name!r} {problem}; choose another (--name, or MODEL_NAME for make)")
