"""Administration: reload the model the alias points at, without downtime."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter

from serving.deps import AdminKey, HolderDep
from serving.problems import PROBLEMS, problem_response
from serving.schemas import ReloadPublic

CONFLICT = problem_response(
    "The alias points at a version that accepts different records: it needs a restart"
)
router = APIRouter(prefix="/v1/admin", tags=["admin"], responses={**PROBLEMS, 409: CONFLICT})


@router.post("/reload", response_model=ReloadPublic, summary="Load the version the alias points at")
def reload_model(key: AdminKey, holder: HolderDep) -> dict[str, Any]:
    """The new version loads beside the old one; requests in flight finish on the old one."""
    previous, version = holder.reload(key.id)
    return {"previous_version": previous, "version": version, "changed": previous != version}
