"""Reproduce a training run from what it logged: check the file, retrain alike, compare the numbers."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import mlflow
import numpy as np
from mlflow import MlflowClient
from mlflow.exceptions import MlflowException

from features.records import check_readable, read_records
from features.spec import DatasetSpec, parse_spec
from features.validation import validate_records
from models.pyfunc import load_bundle
from models.registry import configure_tracking, run_artifact
from training.provenance import COMMIT_TAG, DIRTY_TAG, environment, git_state
from training.train import SPEC_ARTIFACT, Step, file_sha256, train

REPRODUCES_TAG = "reproduces"
# Params that say where and when, not what was fitted: a reproduction may differ in them.
CIRCUMSTANTIAL = {"data_file"}


class DataMismatch(ValueError):
    """The file given is not the one the run was trained on."""


@dataclass
class LoggedRun:
    """A registered training run as MLflow holds it."""

    run_id: str
    model_name: str
    model_version: str
    params: dict[str, str]
    tags: dict[str, str]
    metrics: dict[str, float]


def logged_run(run_id: str) -> LoggedRun:
    """The run and the model version it registered; ValueError naming what is missing."""
    configure_tracking()
    client = MlflowClient()
    try:
        run = client.get_run(run_id)
    except MlflowException as exc:
        raise ValueError(f"no run {run_id} in the MLflow store {mlflow.get_tracking_uri()}: {exc}") from exc
    versions = client.search_model_versions(f"run_id = '{run_id}'")
    missing = [p for p in ("spec", "seed", "data_sha256") if p not in run.data.params]
    if not versions or missing:
        raise ValueError(
            f"run {run_id} is not a run of python -m training train: it "
            + ("registered no model version" if not versions else f"logged no {', '.join(missing)}")
        )
    return LoggedRun(
        run_id, versions[0].name, str(versions[0].version), run.data.params, run.data.tags, run.data.metrics
    )


def check_data(run: LoggedRun, data: Path) -> str:
    """The file's SHA-256 when it is the one the run was trained on; DataMismatch naming both hashes."""
    check_readable(data)
    digest = file_sha256(data)
    expected = run.params["data_sha256"]
    if digest != expected:
        raise DataMismatch(
            f"{data} is not the file run {run.run_id} was trained on: its SHA-256 is {digest}, while that "
            f"run's {run.params.get('data_file', 'file')} had {expected}"
        )
    return digest


def environment_differences(run: LoggedRun) -> list[str]:
    """What differs here from the run's Python, pinned packages and code: each can move its numbers."""
    differences = [
        f"{name.removeprefix('version_')} is {here} here, "
        + (f"{run.params[name]} in the run" if name in run.params else "not recorded by the run")
        for name, here in environment().items()
        if run.params.get(name) != here
    ]
    commit, code = run.tags.get(COMMIT_TAG), git_state()
    if commit is None:
        differences.append("the run recorded no git commit, so its code cannot be checked out")
    elif code is None:
        differences.append(f"this code is not a git checkout, so it cannot be compared with commit {commit}")
    elif code[0] != commit:
        changed = " (and uncommitted changes)" if code[1] else ""
        differences.append(
            f"the code is at commit {code[0]}{changed}; the run's is {commit} (git checkout {commit})"
        )
    elif code[1]:
        differences.append(
            f"this checkout has uncommitted changes to the run's commit {commit} (git stash them)"
        )
    if commit is not None and run.tags.get(DIRTY_TAG) == "true":
        differences.append(f"the run was trained from commit {commit} with uncommitted changes")
    return differences


def logged_spec(run: LoggedRun) -> DatasetSpec:
    """The spec exactly as the run used it, from its artifact (a built-in spec may have changed since)."""
    text = run_artifact(run.run_id, SPEC_ARTIFACT).decode("utf-8")
    return parse_spec(text, source=f"run {run.run_id} {SPEC_ARTIFACT}")


def reproduce(run_id: str, data: Path, step: Step) -> dict:
    """Retrain with the run's file, spec and seed, registering a version tagged with the run it
    reproduces, and compare the two models' probabilities on every row of the file and their metrics."""
    run = logged_run(run_id)
    digest = check_data(run, data)
    environment_now = environment_differences(run)
    result = train(logged_spec(run), data, run.model_name, int(run.params["seed"]), step)
    MlflowClient().set_tag(result.run_id, REPRODUCES_TAG, run_id)
    again = logged_run(result.run_id)
    original = load_bundle(f"models:/{run.model_name}/{run.model_version}")
    typed, _ = validate_records(read_records(data), original.spec)
    before, after = original.predict_frame(typed), result.bundle.predict_frame(typed)
    differences = {
        column: float(np.max(np.abs(before[column].to_numpy() - after[column].to_numpy())))
        for column in before.columns
    }
    metrics = _differing(run.metrics, again.metrics)
    params = _differing(
        {k: v for k, v in run.params.items() if k not in CIRCUMSTANTIAL},
        {k: v for k, v in again.params.items() if k not in CIRCUMSTANTIAL},
    )
    return {
        "run_id": run_id,
        "model_name": run.model_name,
        "model_version": run.model_version,
        "reproduced_run_id": result.run_id,
        "reproduced_model_version": result.model_version,
        "data_sha256": digest,
        "environment_differences": environment_now,
        "identical": not metrics and not any(differences.values()),
        "max_abs_difference": differences,
        "metrics_differing": metrics,
        "params_differing": params,
    }


def _differing(before: dict, after: dict) -> dict[str, list]:
    """Each key whose value differs, as [before, after] (null where one side lacks it)."""
    return {
        k: [before.get(k), after.get(k)]
        for k in sorted(before.keys() | after.keys())
        if before.get(k) != after.get(k)
    }
