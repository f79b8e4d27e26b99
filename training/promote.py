"""The promote job: move the champion alias to a version that passes its spec's gates."""

from __future__ import annotations

import json

from mlflow import MlflowClient

from features.spec import parse_spec
from models.registry import FORCED_REASON_TAG, configure_tracking, run_artifact
from training.gates import GateResult, check_gates
from training.tracking import CHAMPION, champion_version, move_alias, set_at_tag


class PromotionRefused(RuntimeError):
    """A version failed at least one gate and the promotion was not forced."""

    def __init__(self, name: str, version: str, failed: list[GateResult]):
        self.failed = failed
        lines = "\n".join(f"  {g.name}: {g.detail}" for g in failed)
        super().__init__(
            f"refused to promote {name} version {version}: {len(failed)} gate(s) failed\n{lines}\n"
            "use --force --reason TEXT to promote anyway (the reason is recorded)"
        )


def promote(name: str, version: str, force: bool = False, reason: str = "") -> dict:
    """Check the version's own test-part evaluation against its spec's gates, then move the alias."""
    if force and not reason.strip():
        raise ValueError("a forced promotion needs --reason: it is recorded with the version")
    configure_tracking()
    client = MlflowClient()
    model_version = client.get_model_version(name, version)
    version = str(model_version.version)  # MLflow finds version 1 from " 01": record it as 1
    evaluation, spec_text = _run_artifacts(model_version.run_id)
    gates = check_gates(evaluation, parse_spec(spec_text).gates)
    failed = [g for g in gates if not g.passed]
    # Promoting the champion again moves nothing, forced or not: no history entry, and it stays champion
    # since then, for the reason recorded then.
    moved = champion_version(name) != version
    if failed and not force and moved:
        raise PromotionRefused(name, version, failed)
    note = f"forced: {reason}" if failed else "gates passed"
    if reason.strip() and not failed:  # a reason given for a passing version is kept, not dropped
        note += f"; reason: {reason}"
    if failed and moved:
        client.set_model_version_tag(name, version, FORCED_REASON_TAG, reason)
    set_at = (
        move_alias(name, CHAMPION, version, note) if moved else model_version.tags.get(set_at_tag(CHAMPION))
    )
    return {
        "model_name": name,
        "model_version": version,
        "alias": CHAMPION,
        "moved": moved,
        "moved_at": set_at,
        "forced": bool(failed),
        "gates": [g.__dict__ for g in gates],
    }


def _run_artifacts(run_id: str) -> tuple[dict, str]:
    return json.loads(run_artifact(run_id, "evaluation.json")), run_artifact(run_id, "spec.yaml").decode()
