"""Scoring service: score validated requests with one model version and build their audit rows."""

from __future__ import annotations

from typing import Any

import orjson
from pydantic import BaseModel

from serving.audit import new_score_id
from serving.model_store import ServingModel
from serving.schemas import record_values
from serving.tables import ScoreRow


def score_requests(
    model: ServingModel, requests: list[BaseModel], request_id: str, key_id: str
) -> list[ScoreRow]:
    """Score every request with the same model version, so a batch never mixes versions; the audit store
    times the rows as it records them."""
    records = [record_values(r.record) for r in requests]
    results = model.bundle.score_records(records)
    return [
        ScoreRow(
            id=new_score_id(),
            request_id=request_id,
            key_id=key_id,
            person_id=req.person_id,
            assessment_id=req.assessment_id,
            model_name=model.name,
            model_version=model.version,
            run_id=model.run_id,
            risk_probability=result["risk"]["probability"],
            risk_band=result["risk"]["band"],
            record=record,
            result=result,
        )
        for req, record, result in zip(requests, records, results, strict=True)
    ]


def response_json(body: Any) -> bytes:
    """A body holding scores, serialised once: the audit rows already hold exactly these values."""
    return orjson.dumps(body, option=orjson.OPT_UTC_Z)


def score_public(row: ScoreRow, with_record: bool = False) -> dict[str, Any]:
    """The API's view of an audit row."""
    body = {
        "id": row.id,
        "created_at": row.created_at,
        "request_id": row.request_id,
        "assessment_id": row.assessment_id,
        "person_id": row.person_id,
        "model": {"name": row.model_name, "version": row.model_version, "run_id": row.run_id},
        **row.result,
    }
    if with_record:
        body["record"] = row.record
    return body
