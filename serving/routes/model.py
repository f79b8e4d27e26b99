"""The serving model: version, metrics beside baselines, fairness table and model card."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter

from serving.conditional import ConditionalRoute
from serving.deps import HolderDep, ReviewerKey, SettingsDep
from serving.problems import PROBLEMS
from serving.schemas import ModelPublic

# Revalidated by ETag: a client polling the model gets a 304 until a reload swaps another version in.
router = APIRouter(prefix="/v1", tags=["model"], responses=PROBLEMS, route_class=ConditionalRoute)


@router.get("/model", response_model=ModelPublic, summary="The serving model and its audit")
def read_model(key: ReviewerKey, holder: HolderDep, settings: SettingsDep) -> dict[str, Any]:
    model = holder.current
    waiting, failed = holder.restart_required, holder.load_failed
    evaluation = model.evaluation
    return {
        "name": model.name,
        "version": model.version,
        "alias": settings.model_alias,
        "run_id": model.run_id,
        "loaded_at": model.loaded_at,
        "spec": model.bundle.spec.name,
        "inputs": model.bundle.inputs,
        "metrics": {
            "risk": evaluation.get("risk", {}),
            "needs": evaluation.get("needs", {}),
            "macro_auc": evaluation.get("macro_auc"),
            "run": model.metrics,
        },
        "baselines": evaluation.get("baselines", {}),
        "fairness": evaluation.get("fairness", {}),
        "intersections": evaluation.get("intersections", {}),
        "model_card": model.documents.get("model_card.md", ""),
        "forced_promotion_reason": model.forced_reason,
        "restart_required": {"version": waiting[0], "reason": waiting[1]} if waiting else None,
        "load_failed": {"version": failed[0], "reason": failed[1]} if failed else None,
    }
