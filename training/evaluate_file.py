"""The evaluate job: score a labelled file with a registered model and say what its numbers can mean."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from features.encoder import UNSEEN_READS_AS
from features.records import read_records
from features.validation import RecordsInvalid, validate_records
from models.bundle import ScoringBundle
from training.evaluate import evaluate_bundle
from training.overlap import training_rows
from training.registered import load_registered
from training.train import file_sha256


@dataclass
class FileEvaluation:
    """What `python -m training evaluate` prints: the report as JSON, the warnings on stderr."""

    report: dict
    warnings: list[str]


def evaluate_file(model: str, data: Path) -> FileEvaluation:
    """Load `model`, validate `data` against its spec, evaluate, and warn where the numbers mislead."""
    bundle = load_registered(model)
    raw = read_records(data)
    typed, validation = validate_records(raw, bundle.spec, supervision=False)
    if not validation.ok:
        raise RecordsInvalid(validation)
    absent = [c.name for c in bundle.spec.columns if c.known == "supervision" and c.name not in raw.columns]
    warnings = validation.ignored_columns_warnings(data)
    digest = file_sha256(data)
    fitted = training_rows(typed, bundle.spec, bundle.metadata, absent)
    if absent:
        unknown = (
            ", and whether its rows are rows this model was fitted on cannot be told (includes_training_rows "
            "is null: this version knows its training rows by every required column)"
            if fitted is None
            else ""
        )
        lost = [need.name for need in bundle.spec.needs if set(need.sources) & set(absent)]
        effect = f"needs {', '.join(lost)} have no AUC" if lost else "no need is labelled from them"
        lacked = ", ".join(absent)
        warnings.append(f"warning: {data} lacks the supervision-time columns {lacked}: {effect}{unknown}")
    if fitted is None and digest == bundle.metadata.get("data_sha256"):
        fitted = bundle.metadata["n_train"]  # a model that kept no row hashes knows only its file
    if fitted:
        warnings.append(
            f"warning: {fitted} of the {len(typed)} rows of {data} are rows this model was fitted on "
            "(same id and values); their numbers are optimistic. The held-out numbers are in the training "
            "run's evaluation.json (and GET /v1/model)."
        )
    # Saved output must still say whether it includes rows the model was fitted on (null: unknown).
    source = {
        "data_sha256": digest,
        "includes_training_rows": None if fitted is None else fitted > 0,
        "training_rows": fitted,
    }
    report = evaluate_bundle(bundle, typed)
    warnings.extend(_report_warnings(bundle, report, data))
    warnings.extend(_needs_warnings(bundle, report, data, absent))
    return FileEvaluation({"model": model, **source, **report}, warnings)


def _needs_warnings(bundle: ScoringBundle, report: dict, data: Path, absent: list[str]) -> list[str]:
    """Which needs have no AUC and why, so a macro AUC over some of them is not read as one over all."""
    without = report["needs_without_auc"]
    if not without:
        return []
    warnings = []
    for need in bundle.spec.needs:
        if need.name not in without:
            continue
        lacked = [name for name in need.sources if name in absent]
        labelled, prevalence = report["needs"][need.name]["n"], report["needs"][need.name]["prevalence"]
        if lacked:
            why = f"{data} lacks its source column{'s' if len(lacked) > 1 else ''} {', '.join(lacked)}"
        elif labelled == 0:
            why = f"no row of {data} has its sources ({', '.join(need.sources)}), so none has its label"
        else:
            agree = (
                f"all of its {labelled} labelled rows have it"
                if prevalence
                else f"none of its {labelled} labelled rows has it"
            )
            why = f"{agree}, and an AUC needs rows with and without it"
        warnings.append(f"warning: need {need.name} has no AUC: {why}")
    measured = [name for name in report["needs"] if name not in without]
    over = f"over {len(measured)} of the {len(report['needs'])} needs ({', '.join(measured)})"
    warnings.append(
        f"warning: macro_auc is {over}" if measured else "warning: macro_auc is null: no need has an AUC"
    )
    return warnings


def _report_warnings(bundle: ScoringBundle, report: dict, data: Path) -> list[str]:
    """Where the report's numbers are missing or partial, and why."""
    warnings = []
    if report["risk"]["auc"] is None:
        warnings.append(
            f"warning: {bundle.spec.outcome.column} is {'Yes' if report['base_rate'] else 'No'} in all "
            f"{report['n']} rows of {data}: the risk AUC and calibration slope need both outcomes, so they "
            "are null"
        )
    for attribute, audit in report["fairness"].items():
        if audit["n_missing"]:
            warnings.append(
                f"warning: {attribute} is missing in {audit['n_missing']} of the {report['n']} rows of {data}"
                + (
                    f", so nobody was audited by {attribute} (no groups, null gaps)"
                    if audit["n_missing"] == report["n"]
                    else f"; those rows are in no group of the audit by {attribute}"
                )
            )
    for name, unseen in report["unseen_values"].items():
        read = (
            f"each counts as {UNSEEN_READS_AS}"
            if name in bundle.encoder.free_text_features_
            else "the model never learned what they mean"
        )
        warnings.append(
            f"warning: {unseen['rows']} rows give {name} a value this model never saw in training "
            f"({unseen['distinct']} distinct, most common {next(iter(unseen['most_common']))!r}); "
            f"{read}. See unseen_values in the JSON."
        )
    for name, beyond in report["beyond_training_range"].items():
        warnings.append(
            f"warning: {beyond['below']} rows give {name} a value below every training record's and "
            f"{beyond['above']} above: the trees split on them as on the range's ends. See "
            "beyond_training_range in the JSON."
        )
    for name, rows in report["left_out_inputs"].items():
        warnings.append(
            f"warning: {rows} rows leave out {name}, which every training record gave: the model never "
            "learned what its absence means, so their scores may be off. See left_out_inputs in the JSON."
        )
    return warnings
