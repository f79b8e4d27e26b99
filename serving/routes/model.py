"""The serving model: version, metrics beside baselines, fairness table, model card, and drift."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query, Request
from fastapi.encoders import jsonable_encoder
from pydantic import BaseModel, Field

from serving.conditional import ConditionalRoute
from serving.deps import AuditDep, DriftDep, HolderDep, ReviewerKey, SettingsDep
from serving.drift import WINDOW_LIMIT
from serving.problems import PROBLEMS
from serving.queries import NoQuery, UtcTime, check_window, declared_parameters
from serving.schemas import DriftPublic, ModelPublic


class DriftQuery(BaseModel):
    """The window of scores drift is measured over; a name not listed here is refused, not ignored."""

    since: UtcTime | None = Field(
        None, description="Scores created at or after this time (naive times are UTC)"
    )
    until: UtcTime | None = Field(None, description="Scores created before this time (naive times are UTC)")


def model_router(drift_example: dict[str, Any]) -> APIRouter:
    """Routes for the serving model; the drift example is built from the serving spec, like the record's."""
    router = APIRouter(prefix="/v1", tags=["model"], responses=PROBLEMS)

    def read_model(key: ReviewerKey, holder: HolderDep, settings: SettingsDep) -> dict[str, Any]:
        model = holder.current
        waiting, failed = holder.restart_required, holder.load_failed
        evaluation, spec = model.evaluation, model.bundle.spec
        return {
            "name": model.name,
            "version": model.version,
            "alias": settings.model_alias,
            "run_id": model.run_id,
            "loaded_at": model.loaded_at,
            "spec": spec.name,
            "inputs": model.bundle.inputs,
            "risk_bands": {
                **spec.risk_bands.model_dump(),
                "operating_threshold": spec.gates.operating_threshold,
            },
            "need_flag_thresholds": {need.name: need.flag_threshold for need in spec.needs},
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
            "missing_documents": model.missing_documents,
            "forced_promotion_reason": model.forced_reason,
            "restart_required": {"version": waiting[0], "reason": waiting[1]} if waiting else None,
            "load_failed": {"version": failed[0], "reason": failed[1]} if failed else None,
        }

    # Revalidated by ETag: a client polling the model gets a 304 until a reload swaps another version in.
    router.add_api_route(
        "/model",
        read_model,
        methods=["GET"],
        response_model=ModelPublic,
        summary="The serving model and its audit",
        dependencies=[Depends(declared_parameters(NoQuery))],
        route_class_override=ConditionalRoute,
    )

    @router.get(
        "/model/drift",
        response_model=DriftPublic,
        summary="Drift of the served records and scores from training",
        description=f"The serving version's scores from `since` to `until` (its newest {WINDOW_LIMIT:,} "
        "at most: `window.capped` says when more were left out) against the reference profile its training "
        "run took of the test part: per input and per protected attribute (fairness monitoring only, never "
        "an input) the population stability index over the same bins (below 0.1 none, from 0.1 moderate, "
        "from 0.25 major) and the change of missing share; band shares, mean risk probability and each "
        "need's flag rate. A version whose run lacks its reference profile (trained before them, or the "
        "file deleted since) says so in `message`.",
        dependencies=[Depends(declared_parameters(DriftQuery))],
        responses={200: {"content": {"application/json": {"example": jsonable_encoder(drift_example)}}}},
    )
    def read_model_drift(
        request: Request,
        key: ReviewerKey,
        holder: HolderDep,
        audit: AuditDep,
        drift: DriftDep,
        query: Annotated[DriftQuery, Query()],
    ) -> dict[str, Any]:
        """Bounded work per request: the window's newest WINDOW_LIMIT scores, without their explanations,
        read again only once a score joined the window."""
        check_window(request, query.since, query.until)
        return drift.report(holder.current, audit, query.since, query.until)

    return router
