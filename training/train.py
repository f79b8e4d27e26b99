"""The train job: validate, split, fit, evaluate, audit, log to MLflow and register a candidate."""

from __future__ import annotations

import hashlib
import json
import re
import tempfile
from collections.abc import Callable
from contextlib import nullcontext
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from importlib import metadata, resources
from pathlib import Path

import joblib
import mlflow
import numpy as np
import pandas as pd
import yaml
from jinja2 import Environment, PackageLoader, StrictUndefined
from mlflow import MlflowClient
from mlflow.entities.model_registry import ModelVersion
from mlflow.exceptions import MlflowException
from sklearn.model_selection import train_test_split

from features.example import example_record
from features.records import read_records
from features.spec import DatasetSpec, SpecError, parse_spec
from features.validation import RecordsInvalid, validate_records
from models import DEFAULT_MODEL_NAME
from models.baselines import baseline_label
from models.bundle import ScoringBundle
from models.calibrated import DEFAULT_PARAMS
from models.pyfunc import BUNDLE_ARTIFACT, release_signature
from models.registry import REFERENCE_PROFILE, configure_tracking, registered_spec, run_artifact
from training import plots
from training.evaluate import evaluation_report
from training.fairness import fpr_extremes
from training.fit import fit_bundle, outcome
from training.gates import GateResult, check_gates
from training.intervals import METRICS as INTERVAL_METRICS
from training.model_names import check_model_name
from training.overlap import KEY as ROW_KEY
from training.overlap import new_salt, row_hashes, row_keys
from training.provenance import COMMIT_TAG, DIRTY_TAG, PINNED_PACKAGES, environment, git_state
from training.reference import reference_profile
from training.spec_changes import spec_changes
from training.tracking import CANDIDATE, experiment_id, move_alias, store_unusable

TEST_SIZE = 0.25
MIN_PER_OUTCOME = 20
MIN_LEAF = DEFAULT_PARAMS["min_child_samples"]
SPEC_ARTIFACT = "spec.yaml"  # the spec's whole content: a built-in spec's name may mean other columns later


@dataclass
class TrainResult:
    run_id: str
    model_name: str
    model_version: str
    metrics: dict
    bundle: ScoringBundle
    warnings: list[str] = field(default_factory=list)

    def summary(self) -> dict:
        return {
            "run_id": self.run_id,
            "model_name": self.model_name,
            "model_version": self.model_version,
            "metrics": self.metrics,
        }


Step = Callable[[str], object]


def train(
    spec: DatasetSpec,
    data: Path,
    name: str = DEFAULT_MODEL_NAME,
    seed: int = 0,
    step: Step = lambda _: nullcontext(),
) -> TrainResult:
    """Run the whole job; bad data raises RecordsInvalid before anything is fitted or logged."""
    check_model_name(name)
    _check_inputs(spec)
    with step("reading and validating"):
        typed, report = validate_records(read_records(data), spec)
        if not report.ok:
            raise RecordsInvalid(report)
    registered = _registered_spec(name)
    experiment = experiment_id()  # before fitting: MLflow refuses a run in a deleted experiment
    if registered is not None and registered[0] != spec.name:
        raise ValueError(
            f"model {name} holds versions trained on spec {registered[0]}; a model serves one record "
            f"layout, so register spec {spec.name} under another name (--name, or MODEL_NAME for make)"
        )
    edited = _edits_since(registered, spec, name)
    y = outcome(typed, spec)
    counts = np.bincount(y.astype(int), minlength=2)
    if counts.min() < MIN_PER_OUTCOME:
        raise ValueError(
            f"{spec.outcome.column} is 1 in {counts[1]} rows and 0 in {counts[0]}; training needs at least "
            f"{MIN_PER_OUTCOME} of each, to hold some of both out for the test part and the folds"
        )
    train_rows, test_rows = train_test_split(
        np.arange(len(y)), test_size=TEST_SIZE, stratify=y, random_state=seed
    )
    train_part, test_part = typed.iloc[train_rows], typed.iloc[test_rows]
    with step("fitting risk, needs and baseline models"):
        bundle = fit_bundle(train_part, spec, seed=seed)
    with step("evaluating on the test part"):
        scores = bundle.predict_frame(test_part)
        _check_risk_varies(scores["risk"].to_numpy(), train_part, spec)
        evaluation = evaluation_report(bundle, test_part, scores)
        gates = check_gates(evaluation, spec.gates)
    salt = new_salt()
    bundle.metadata = {
        "trained_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "data_sha256": file_sha256(data),
        "seed": seed,
        "n_train": len(train_rows),
        "n_test": len(test_rows),
        "split_sha256": split_sha256(test_rows),
        # so evaluate can count the rows of any file that were fitted on, without keeping an id
        "training_row_salt": salt,
        "training_row_key": ROW_KEY,
        "training_row_hashes": row_hashes(row_keys(train_part, spec), salt),
    }
    with step("logging to MLflow and registering"), tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        _write_artifacts(folder, bundle, test_part, scores, evaluation, gates)
        result = _log_and_register(folder, bundle, evaluation, gates, data, name, experiment)
    return replace(result, warnings=[*edited, *report.ignored_columns_warnings(data)])


def _check_inputs(spec: DatasetSpec) -> None:
    """Refuse, before the file is read, a layout that leaves the risk model or a need's model no input."""
    inputs = spec.inputs()
    if not inputs:
        held = ", ".join(c.name for c in spec.columns)
        raise ValueError(
            f"spec {spec.name} declares no model input: models read the columns known at release that are "
            "not protected, and "
            + (
                f"each of its columns ({held}) is protected or known only during supervision"
                if held
                else "it lists no columns"
            )
        )
    for need in spec.needs:
        if not spec.inputs(exclude=need.sources):
            raise ValueError(
                f"need {need.name} is defined by every model input ({', '.join(inputs)}), and a need's model "
                "never reads its own sources, so it would have no input: declare another release-time "
                "column, or define the need by columns known during supervision"
            )


def _registered_spec(name: str) -> tuple[str, ModelVersion] | None:
    """The spec `name`'s newest version was trained on, by name, with that version; asked before any
    fitting, so a store MLflow cannot use is said at once."""
    configure_tracking()
    try:
        return registered_spec(name)
    except MlflowException as exc:
        raise store_unusable(exc) from exc


def _edits_since(registered: tuple[str, ModelVersion] | None, spec: DatasetSpec, name: str) -> list[str]:
    """A warning saying how `spec` differs from the one `name`'s newest version was trained on (a spec
    keeps its name through edits); nothing when that spec cannot be read (a run from before it was kept)."""
    if registered is None:
        return []
    newest = registered[1]
    try:
        before = parse_spec(run_artifact(newest.run_id, SPEC_ARTIFACT).decode())
    except (MlflowException, SpecError):
        return []
    changes, records_change = spec_changes(before, spec)
    if not changes:
        return []
    serving = (
        f" A server serving version {newest.version} takes records of another shape than this version, so "
        "it keeps serving that version until it restarts (GET /v1/model and the model page say so)."
        if records_change
        else ""
    )
    return [
        f"warning: spec {spec.name} is not the one version {newest.version} of {name} was trained on: "
        f"{'; '.join(changes)}.{serving}"
    ]


def _check_risk_varies(risk: np.ndarray, train_part: pd.DataFrame, spec: DatasetSpec) -> None:
    """A model that gives everyone the same risk tells no one apart and has no calibration slope; it
    comes from inputs that carry nothing (optional ones the file does not hold) or from too few rows."""
    if np.ptp(risk) > 0:
        return
    empty = [name for name in spec.inputs() if name not in train_part or train_part[name].isna().all()]
    hint = (
        f"; inputs with no value in any row: {', '.join(empty)} (is the header the spec's?)" if empty else ""
    )
    raise ValueError(
        f"every one of the {len(risk)} test rows gets the same risk ({risk[0]:.3f}): the model found no "
        f"split in the inputs of the {len(train_part)} training rows (each leaf needs at least {MIN_LEAF} "
        f"people){hint}"
    )


def _write_artifacts(
    folder: Path,
    bundle: ScoringBundle,
    test_part: pd.DataFrame,
    scores: pd.DataFrame,
    evaluation: dict,
    gates: list[GateResult],
) -> None:
    spec = bundle.spec
    y = outcome(test_part, spec)
    drawn = {
        "calibration.png": plots.calibration_plot(y, scores["risk"].to_numpy(), folder / "calibration.png")
    }
    logistic, incumbent = baseline_label("logistic", spec), baseline_label("incumbent", spec)
    curves = {"this model": scores["risk"].to_numpy(), logistic: scores["baseline_logistic"].to_numpy()}
    aucs = {"this model": evaluation["risk"]["auc"], logistic: evaluation["baselines"]["logistic"]["auc"]}
    if bundle.incumbent is not None:
        curves[incumbent] = bundle.incumbent.score(test_part)
        aucs[incumbent] = evaluation["baselines"]["incumbent"]["auc"]
    drawn["roc.png"] = plots.roc_plot(y, curves, aucs, folder / "roc.png")
    X = bundle.encode(test_part)
    _, contributions = bundle.risk.explain(X)
    drawn["shap_summary.png"] = plots.shap_summary_plot(contributions, X, folder / "shap_summary.png")
    # A domain's importance is the size of its summed contribution, as explanations report it.
    by_domain = pd.DataFrame(contributions, columns=X.columns).T.groupby(spec.domains()).sum().T
    domains = by_domain.abs().mean().sort_values(ascending=False)
    drawn["domain_importance.png"] = plots.domain_importance_plot(domains, folder / "domain_importance.png")
    # What each plot shows, as numbers: the model page's text alternative of the plot.
    (folder / "plots.json").write_text(json.dumps(drawn, indent=2))
    domains.rename_axis("domain").rename("mean_abs_domain_contribution").to_csv(
        folder / "domain_importance.csv"
    )
    fairness_rows = [
        {
            "attribute": attribute,
            "group": group,
            **row,
            **_interval_columns(table["intervals"], group),
            **_band_columns(table["bands"], group),
        }
        for attribute, table in {**evaluation["fairness"], **evaluation["intersections"]}.items()
        for group, row in table["groups"].items()
    ]
    pd.DataFrame(fairness_rows).to_csv(folder / "fairness.csv", index=False)
    (folder / "fairness.json").write_text(json.dumps(evaluation["fairness"], indent=2))
    (folder / "evaluation.json").write_text(json.dumps(evaluation, indent=2))
    (folder / "gates.json").write_text(json.dumps([g.__dict__ for g in gates], indent=2))
    # What serving compares the records it scores against, to tell when they drift from these.
    (folder / REFERENCE_PROFILE).write_text(
        json.dumps(reference_profile(bundle, test_part, scores), indent=2)
    )
    (folder / SPEC_ARTIFACT).write_text(
        yaml.safe_dump(spec.model_dump(by_alias=True, exclude_none=True), sort_keys=False)
    )


def model_card(
    bundle: ScoringBundle,
    evaluation: dict,
    gates: list[GateResult],
    data_name: str,
    model_name: str,
    version: str,
    run_id: str,
) -> str:
    """The model card in Markdown: use, misuse, data, inputs, metrics, fairness, limitations."""
    environment = Environment(
        loader=PackageLoader("training", "templates"), undefined=StrictUndefined, autoescape=False
    )
    domain_of = bundle.spec.domains()
    domains: dict[str, list[str]] = {}
    for name in bundle.inputs:
        domains.setdefault(domain_of[name], []).append(name)
    return environment.get_template("model_card.md.j2").render(
        model_name=model_name,
        version=version,
        run_id=run_id,
        spec=bundle.spec,
        report=evaluation,
        fpr_extremes={attribute: fpr_extremes(table) for attribute, table in evaluation["fairness"].items()},
        baseline_labels={key: baseline_label(key, bundle.spec) for key in evaluation["baselines"]},
        gates=gates,
        inputs=bundle.inputs,
        always_given=bundle.encoder.always_given_,
        missing_seen=[c.name for c in bundle.encoder.columns_ if c.name not in bundle.encoder.always_given_],
        domains=dict(sorted(domains.items())),
        data_name=data_name,
        data_hash=bundle.metadata["data_sha256"],
        trained_at=bundle.metadata["trained_at"],
        seed=bundle.metadata["seed"],
        n_train=bundle.metadata["n_train"],
        n_test=bundle.metadata["n_test"],
        n_rows=bundle.metadata["n_train"] + bundle.metadata["n_test"],
    )


def _log_and_register(
    folder: Path,
    bundle: ScoringBundle,
    evaluation: dict,
    gates: list[GateResult],
    data: Path,
    name: str,
    experiment: str,
) -> TrainResult:
    spec = bundle.spec
    metrics = flat_metrics(evaluation)
    metrics["validation_risk_auc"] = bundle.risk.cv_auc_
    with mlflow.start_run(experiment_id=experiment) as run:
        mlflow.log_params(
            {
                "spec": spec.name,
                "data_file": data.name,
                "data_sha256": bundle.metadata["data_sha256"],
                "seed": bundle.metadata["seed"],
                "n_train": bundle.metadata["n_train"],
                "n_test": bundle.metadata["n_test"],
                "split_sha256": bundle.metadata["split_sha256"],
                "spec_sha256": hashlib.sha256((folder / SPEC_ARTIFACT).read_bytes()).hexdigest(),
                "risk_rounds": bundle.risk.n_rounds_,
                **environment(),
            }
        )
        code = git_state()
        if code is not None:  # MLflow tags the commit of the entry script's checkout, if any: this code's
            mlflow.set_tags({COMMIT_TAG: code[0], DIRTY_TAG: str(code[1]).lower()})
        mlflow.log_metrics(metrics)
        mlflow.log_artifacts(str(folder))
        joblib.dump(bundle, folder / "bundle.joblib")
        info = mlflow.pyfunc.log_model(
            name="model",
            python_model=str(resources.files("models") / "pyfunc_model.py"),
            artifacts={BUNDLE_ARTIFACT: str(folder / "bundle.joblib")},
            signature=release_signature(spec),
            input_example=_input_example(spec),
            pip_requirements=[f"{p}=={metadata.version(p)}" for p in PINNED_PACKAGES],
            registered_model_name=name,
        )
        version = str(info.registered_model_version)
        card = model_card(bundle, evaluation, gates, data.name, name, version, run.info.run_id)
        mlflow.log_text(card, "model_card.md")  # written once the version it describes exists
        passed = str(all(g.passed for g in gates)).lower()
        mlflow.set_tags({"gates_passed": passed})
        MlflowClient().set_model_version_tag(name, version, "gates_passed", passed)
    move_alias(name, CANDIDATE, version)
    return TrainResult(run.info.run_id, name, version, metrics, bundle)


def _input_example(spec: DatasetSpec) -> pd.DataFrame:
    """The spec's example record with a column for every input, as the model takes them: a free-text
    input, which has no value a spec can name, is there as missing, not left out."""
    example = example_record(spec)
    return pd.DataFrame([{name: example.get(name) for name in spec.inputs()}], dtype=object)


def flat_metrics(evaluation: dict) -> dict[str, float]:
    """The evaluation report as flat MLflow metric names (test part)."""
    metrics = {f"test_risk_{k}": v for k, v in evaluation["risk"].items()}
    for baseline, values in evaluation["baselines"].items():
        metrics.update({f"test_{baseline}_{k}": v for k, v in values.items()})
    metrics.update({f"test_need_{_metric_part(n)}_auc": v["auc"] for n, v in evaluation["needs"].items()})
    metrics["test_needs_macro_auc"] = evaluation["macro_auc"]
    for attribute, table in {**evaluation["fairness"], **evaluation["intersections"]}.items():
        gaps = ("fpr_gap", "fnr_gap", "ece_gap", "band_rate_gap")
        metrics.update({f"test_{_metric_part(attribute)}_{gap}": table[gap] for gap in gaps})
    metrics["test_nij_fair_accurate"] = evaluation["nij_fair_accurate"]
    for name in INTERVAL_METRICS:
        bounds = evaluation["intervals"][name]
        if bounds is not None:
            metrics.update({f"test_interval_{name}_low": bounds[0], f"test_interval_{name}_high": bounds[1]})
    return {k: float(v) for k, v in metrics.items() if v is not None}


def _metric_part(name: str) -> str:
    """A spec's column or need name as MLflow accepts it in a metric name (letters, digits, _ - . and
    spaces): a header such as "Race (self-reported)" would otherwise stop training at logging."""
    return re.sub(r"[^\w.\- ]", "_", name)


def _interval_columns(intervals: dict, group: str) -> dict:
    """A group's bootstrap intervals as columns of its CSV row (fpr_low, fpr_high, ...)."""
    return {
        f"{rate}_{end}": None if bounds is None else bounds[i]
        for rate, bounds in intervals["groups"][group].items()
        for i, end in enumerate(("low", "high"))
    }


def _band_columns(bands: dict[str, dict[str, dict]], group: str) -> dict:
    """A group's band cells as columns of its CSV row (band_low_n, band_low_observed_rate, ...), so a
    spreadsheet keeps one row per group."""
    return {
        f"band_{band}_{key}": value for band, cells in bands.items() for key, value in cells[group].items()
    }


def split_sha256(test_rows: np.ndarray) -> str:
    """A digest of which rows of the file (by position) form the test part, so two runs can be seen to
    share a split without logging the rows themselves."""
    return hashlib.sha256(" ".join(map(str, np.sort(test_rows))).encode()).hexdigest()


def file_sha256(path: Path) -> str:
    """The file's SHA-256: which exact file a model was trained on."""
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for chunk in iter(lambda: handle.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()
