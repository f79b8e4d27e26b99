"""The score job: score a file of records at release with a registered version, offline, as the API
would: the same bundle, validation and output, one JSON line per record."""

from __future__ import annotations

import json
import os
from collections import Counter
from pathlib import Path

import pandas as pd
from mlflow import MlflowClient
from mlflow.exceptions import MlflowException
from mlflow.store.artifact.utils.models import get_model_name_and_version

from features.records import read_records
from features.spec import DatasetSpec
from features.validation import RecordsInvalid, validate_records
from models.registry import configure_tracking
from training.registered import ModelUnavailable, load_registered, registry_refused

# Records scored at once: a score with its explanations is about 35 kB of JSON.
CHUNK = 1000
OUT_SUFFIX = ".jsonl"
REGISTERED_ONLY = (
    "score takes models:/NAME/VERSION or models:/NAME@ALIAS, so that each score names the version "
    "that made it"
)


def score_file(model: str, data: Path, out: Path) -> tuple[dict, list[str]]:
    """Score every record of `data` into `out` (JSON Lines, written whole or not at all); the summary
    and the warnings. Invalid records stop it with the feature pipeline's errors, before any scoring."""
    _check_out(data, out)
    name, version, run_id = _registered_version(model)
    bundle = load_registered(f"models:/{name}/{version}")
    records = read_records(data)
    _, report = validate_records(records, bundle.spec, labelled=False)
    if not report.ok:
        raise RecordsInvalid(report)
    records = _with_every_column(records, bundle.spec)
    unlearned = bundle.unlearned_inputs(records)
    provenance = {"name": name, "version": version, "run_id": run_id}
    bands: Counter[str] = Counter()
    warned = 0
    partial = out.with_name(f".{out.name}.partial")
    out.parent.mkdir(parents=True, exist_ok=True)
    try:
        with partial.open("w", encoding="utf-8") as file:
            for start in range(0, len(records), CHUNK):
                chunk = records.iloc[start : start + CHUNK]
                scores = bundle.score_records(chunk.to_dict("records"))
                for row, scored in zip(chunk.index, scores, strict=True):
                    file.write(
                        json.dumps(
                            {
                                "row": int(row),
                                **_person(chunk, row, bundle.spec.id),
                                "model": provenance,
                                **scored,
                            }
                        )
                        + "\n"
                    )
                    bands[scored["risk"]["band"]] += 1
                    warned += "warnings" in scored
        os.replace(partial, out)
    finally:
        partial.unlink(missing_ok=True)
    summary = {
        "model": provenance,
        "data": str(data),
        "out": str(out),
        "scored": len(records),
        "bands": {band: bands[band] for band in bundle.spec.risk_bands.labels},
        "with_warnings": warned,
        **unlearned,
    }
    return summary, report.ignored_columns_warnings(data)


def _with_every_column(records: pd.DataFrame, spec: DatasetSpec) -> pd.DataFrame:
    """Records with each optional column the file leaves out as missing in every row, as validation
    reads them and the API takes a record without that field."""
    absent = [c.name for c in spec.columns if c.name not in records.columns]
    return records.reindex(columns=[*records.columns, *absent])


def _check_out(data: Path, out: Path) -> None:
    """Refuse, before the model is loaded, an output that could not be read back as scores or that would
    replace the records being scored."""
    if out.suffix.lower() != OUT_SUFFIX:
        raise ValueError(
            f"scores are written as JSON Lines, one per record: name the file *{OUT_SUFFIX}, not {out}"
        )
    if out.resolve() == data.resolve():
        raise ValueError(f"--out must name a new file, not the data file itself ({data})")


def _person(chunk: pd.DataFrame, row: object, id_column: str) -> dict[str, str | None]:
    """The record's id as the file gives it (null where a row has none); nothing for a file without ids."""
    if id_column not in chunk:
        return {}
    value = chunk.at[row, id_column]
    return {"id": value if isinstance(value, str) else None}


def _registered_version(model: str) -> tuple[str, str, str]:
    """The name, version and run of a registered model URI, the alias resolved once, so that every
    score names the version that made it even if the alias moves meanwhile."""
    configure_tracking()
    if not model.startswith("models:/"):
        raise ModelUnavailable(f"{model} is not a registered model: {REGISTERED_ONLY}")
    client = MlflowClient()
    try:
        resolved = get_model_name_and_version(client, model)
        if len(resolved) != 2:  # MLflow reads models:/X as a logged model's id, even a registered name
            raise ModelUnavailable(f"{model} names no registered version; {REGISTERED_ONLY}")
        name, version = resolved
        return name, str(version), client.get_model_version(name, str(version)).run_id
    except MlflowException as exc:
        raise registry_refused(model, exc) from exc
