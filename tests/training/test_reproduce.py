"""Reproducing a training run months later from what it logged: the file checked by its hash, the spec
from the run's artifact, and the probabilities and metrics compared."""

import json
import subprocess

import pytest
import yaml
from mlflow import MlflowClient

from features.spec import load_spec
from models.registry import model_versions
from tests.training.commands import cli
from training import provenance
from training.provenance import COMMIT_TAG, DIRTY_TAG, environment
from training.reproduce import LoggedRun, environment_differences
from training.train import file_sha256, train

pytestmark = pytest.mark.slow

NAME = "reproduced"


@pytest.fixture(scope="module")
def run_id(store, data_file, spec, tmp_path_factory) -> str:
    """A run trained from a spec file that is gone by the time it is reproduced."""
    spec_file = tmp_path_factory.mktemp("spec") / "mine.yaml"
    spec_file.write_text(yaml.safe_dump(spec.model_dump(by_alias=True, exclude_none=True)))
    run = train(load_spec(spec_file), data_file, name=NAME, seed=5).run_id
    spec_file.unlink()
    return run


def test_a_run_is_reproduced_from_what_it_logged(run_id, data_file, store):
    result = cli("reproduce", "--run", run_id, "--data", str(data_file), uri=store)
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout)
    assert report["identical"] is True
    assert set(report["max_abs_difference"].values()) == {0.0}
    assert {"risk", "need_housing", "baseline_logistic"} <= set(report["max_abs_difference"])
    assert report["metrics_differing"] == {} and report["params_differing"] == {}
    assert report["data_sha256"] == file_sha256(data_file)
    again = MlflowClient().get_run(report["reproduced_run_id"])
    assert again.data.tags["reproduces"] == run_id
    assert report["reproduced_model_version"] == str(model_versions(NAME)[0].version)


def test_a_file_that_is_not_the_runs_is_refused_naming_both_hashes(run_id, data_file, store, tmp_path):
    checked = cli("check-data", "--run", run_id, "--data", str(data_file), uri=store)
    assert checked.returncode == 0, checked.stderr
    assert (
        checked.stdout
        == f"{data_file} is the file run {run_id} was trained on (SHA-256 {file_sha256(data_file)})\n"
    )
    edited = tmp_path / "cohort.csv"
    edited.write_text(data_file.read_text().replace("\n", "\r\n"))  # the same records, saved on Windows
    refusal = (
        f"{edited} is not the file run {run_id} was trained on: its SHA-256 is {file_sha256(edited)}, while "
        f"that run's cohort.csv had {file_sha256(data_file)}\n"
    )
    versions = len(model_versions(NAME))
    checked = cli("check-data", "--run", run_id, "--data", str(edited), uri=store)
    assert (checked.returncode, checked.stderr) == (2, refusal)
    reproduced = cli("reproduce", "--run", run_id, "--data", str(edited), uri=store)
    assert (reproduced.returncode, reproduced.stderr) == (2, "reproduction stopped:\n" + refusal)
    assert len(model_versions(NAME)) == versions
    unknown = cli("check-data", "--run", "0" * 32, "--data", str(data_file), uri=store)
    assert unknown.returncode == 2
    assert unknown.stderr.startswith(f"no run {'0' * 32} in the MLflow store {store}: ")


def test_a_run_that_train_did_not_make_is_refused_saying_what_it_lacks(store, data_file):
    """A run id copied from another experiment's page: there is no model or file of it to check against."""
    client = MlflowClient()
    experiment = client.create_experiment("notebooks")
    bare = client.create_run(experiment).info.run_id
    result = cli("check-data", "--run", bare, "--data", str(data_file), uri=store)
    assert (result.returncode, result.stderr) == (
        2,
        f"run {bare} is not a run of python -m training train: it registered no model version\n",
    )
    partial = client.create_run(experiment).info.run_id
    client.log_param(partial, "spec", "georgia_parole")
    client.create_registered_model("hand_made")
    client.create_model_version("hand_made", f"runs:/{partial}/model", partial)
    result = cli("reproduce", "--run", partial, "--data", str(data_file), uri=store)
    assert (result.returncode, result.stderr) == (
        2,
        f"reproduction stopped:\nrun {partial} is not a run of python -m training train: it logged no seed, "
        "data_sha256\n",
    )
    assert len(client.search_model_versions("name = 'hand_made'")) == 1


def test_a_path_that_is_no_file_is_said_as_train_says_it(run_id, store, tmp_path):
    """check-data and reproduce printed Python's "[Errno 2] No such file or directory: ..." where train,
    evaluate and score say "data file ... does not exist"."""
    missing = tmp_path / "gone.csv"
    for command, before in (("check-data", ""), ("reproduce", "reproduction stopped:\n")):
        result = cli(command, "--run", run_id, "--data", str(missing), uri=store)
        assert (result.returncode, result.stderr) == (2, f"{before}data file {missing} does not exist\n")
        folder = cli(command, "--run", run_id, "--data", str(tmp_path), uri=store)
        assert folder.stderr == f"{before}{tmp_path} is a folder; give the data file itself\n"


def test_a_reproduction_that_differs_says_what_differs(run_id, data_file, store):
    """A logged number the retraining does not give again is named with both values, and the exit
    status says the run was not reproduced."""
    logged = MlflowClient().get_run(run_id).data.metrics["test_risk_auc"]
    MlflowClient().log_metric(run_id, "test_risk_auc", 0.5)  # as a run trained by other code would hold
    result = cli("reproduce", "--run", run_id, "--data", str(data_file), uri=store)
    assert result.returncode == 1
    report = json.loads(result.stdout)
    assert report["identical"] is False
    assert report["metrics_differing"] == {"test_risk_auc": [0.5, logged]}
    assert result.stderr.endswith("not reproduced: 1 metric(s) differ; see the JSON\n")


def _git(checkout, *args: str) -> str:
    return subprocess.run(
        ["git", "-C", str(checkout), *args], capture_output=True, text=True, check=True
    ).stdout.strip()


def _run_tagged(tags: dict[str, str]) -> LoggedRun:
    """A run logged with this Python and these packages, so only the code can differ."""
    return LoggedRun("r1", NAME, "1", environment(), tags, {})


def test_code_at_another_commit_names_both_and_the_checkout_to_make(checkout):
    commit = _git(checkout, "rev-parse", "HEAD")
    assert environment_differences(_run_tagged({COMMIT_TAG: commit, DIRTY_TAG: "false"})) == []
    _git(
        checkout, "-c", "user.name=t", "-c", "user.email=t@t", "commit", "-q", "--allow-empty", "-m", "later"
    )
    later = _git(checkout, "rev-parse", "HEAD")
    run = _run_tagged({COMMIT_TAG: commit, DIRTY_TAG: "false"})
    assert environment_differences(run) == [
        f"the code is at commit {later}; the run's is {commit} (git checkout {commit})"
    ]
    (checkout / "features" / "new_inputs.py").write_text("LIMIT = 3\n")
    assert environment_differences(run) == [
        f"the code is at commit {later} (and uncommitted changes); the run's is {commit} "
        f"(git checkout {commit})"
    ]


def test_uncommitted_changes_on_either_side_are_named(checkout):
    commit = _git(checkout, "rev-parse", "HEAD")
    dirty_run = _run_tagged({COMMIT_TAG: commit, DIRTY_TAG: "true"})
    assert environment_differences(dirty_run) == [
        f"the run was trained from commit {commit} with uncommitted changes"
    ]
    (checkout / "features" / "new_inputs.py").write_text("LIMIT = 3\n")
    assert environment_differences(_run_tagged({COMMIT_TAG: commit, DIRTY_TAG: "false"})) == [
        f"this checkout has uncommitted changes to the run's commit {commit} (git stash them)"
    ]


def test_code_that_cannot_be_compared_says_why(tmp_path, monkeypatch):
    monkeypatch.setattr(provenance, "CODE", tmp_path)  # a copy of the code without its .git
    assert environment_differences(_run_tagged({})) == [
        "the run recorded no git commit, so its code cannot be checked out"
    ]
    assert environment_differences(_run_tagged({COMMIT_TAG: "abc123", DIRTY_TAG: "false"})) == [
        "this code is not a git checkout, so it cannot be compared with commit abc123"
    ]
