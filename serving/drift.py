"""Drift of what the serving version scores from the reference profile of its test part: inputs,
protected groups and outputs, over a bounded window of the audit store's newest scores."""

from __future__ import annotations

import threading
from collections import Counter, OrderedDict
from datetime import UTC, datetime, timedelta
from typing import Any

from features.drift import level, psi
from features.profile import column_profile, window_shares
from features.spec import ColumnSpec, DatasetSpec
from models.bundle import ScoringBundle
from models.registry import REFERENCE_PROFILE
from serving.audit import AuditStore, ScoreFilter, ServedScore
from serving.model_store import ServingModel, reference_of

WINDOW_LIMIT = 2000  # the newest scores one request reads, however many the window holds
MIN_VALUES = 100  # below this many values, sampling noise alone can pass the 0.1 threshold: no level
# A window of fewer scores is compared not at all: its shares would show a few people's records (one score's
# window, every input and protected value and its exact risk), reads that score_reads does not hold.
MIN_SCORES = MIN_VALUES
CACHED_WINDOWS = 16  # reports a worker keeps, the least recently asked for dropped first


def model_drift(
    model: ServingModel, audit: AuditStore, since: datetime | None, until: datetime | None
) -> dict[str, Any]:
    """The serving version's newest WINDOW_LIMIT scores from `since` (inclusive) to `until`
    (exclusive) against its reference profile; says so, with nothing compared, for a version logged
    without one or a window of fewer than MIN_SCORES scores."""
    served = audit.newest_served(_window(model, since, until), WINDOW_LIMIT + 1)
    capped, served = len(served) > WINDOW_LIMIT, served[:WINDOW_LIMIT]
    report: dict[str, Any] = {
        "model": {"name": model.name, "version": model.version, "run_id": model.run_id},
        "window": {
            "since": since,
            "until": until,
            "scores": len(served),
            "limit": WINDOW_LIMIT,
            "capped": capped,
            "oldest": served[-1].created_at if served else None,
            "newest": served[0].created_at if served else None,
        },
    }
    reference = reference_of(model.documents)
    if reference is None:
        message = (
            f"no reference profile: version {model.version}'s training run lacks {REFERENCE_PROFILE} "
            "(trained before training recorded one, or deleted from its artifacts since), so there is "
            "nothing to compare its scores with; retrain to monitor drift"
        )
        return _nothing_compared(report, None, message)
    if len(served) < MIN_SCORES:
        held = f"{len(served)} score{'' if len(served) == 1 else 's'}"
        message = (
            f"the window holds {held} of version {model.version}; drift is compared over {MIN_SCORES} or "
            "more, since the shares of fewer would show a few people's records, and their PSI would be "
            "sampling noise"
        )
        return _nothing_compared(report, reference["n"], message)
    spec = model.bundle.spec
    records = [score.record for score in served]
    derived = reference.get("derived", {})  # none in a reference logged before derived inputs were profiled
    computed = _derived_values(model.bundle, list(derived), records)
    as_columns = {d.name: d.as_column() for d in spec.derived}
    inputs = [_column(spec.column(n), p, _values(records, n)) for n, p in reference["inputs"].items()]
    protected = [_column(spec.column(n), p, _values(records, n)) for n, p in reference["protected"].items()]
    return {
        **report,
        "reference_rows": reference["n"],
        "message": None,
        "inputs": inputs + [_column(as_columns[n], p, computed[n]) for n, p in derived.items()],
        "protected": protected,
        "outputs": _outputs(reference["outputs"], served),
    }


class DriftCache:
    """Drift reports by serving version and window, each kept until a score joins its window: a reviewer
    reloading the model page, or several reviewers, cost one index read, not the window's 2,000 stored
    answers read and compared again (0.46 s of a worker's CPU)."""

    def __init__(self) -> None:
        self._reports: OrderedDict[tuple, tuple[int | None, dict[str, Any]]] = OrderedDict()
        self._lock = threading.Lock()

    def report(
        self, model: ServingModel, audit: AuditStore, since: datetime | None, until: datetime | None
    ) -> dict[str, Any]:
        """model_drift's answer, the stored one while no score was committed to the window since."""
        key = (model.name, model.version, model.run_id, since, until)
        # One report is made at a time, so reviewers asking at once wait for it instead of each making it.
        with self._lock:
            # Read before the scores: a score committed meanwhile then makes the next view compute again.
            newest = audit.newest_seq(_window(model, since, until))
            cached = self._reports.get(key)
            if cached is None or cached[0] != newest:
                cached = (newest, model_drift(model, audit, since, until))
                self._reports[key] = cached
            self._reports.move_to_end(key)
            if len(self._reports) > CACHED_WINDOWS:
                self._reports.popitem(last=False)
            return cached[1]


def _nothing_compared(report: dict[str, Any], reference_rows: int | None, message: str) -> dict[str, Any]:
    """The report's window with why nothing in it is compared, in the shape of a full report."""
    return {
        **report,
        "reference_rows": reference_rows,
        "message": message,
        "inputs": [],
        "protected": [],
        "outputs": None,
    }


def _window(model: ServingModel, since: datetime | None, until: datetime | None) -> ScoreFilter:
    """The serving version's scores from `since` (inclusive) to `until` (exclusive)."""
    return ScoreFilter(model_name=model.name, model_version=model.version, since=since, until=until)


def _values(records: list[dict], name: str) -> list[Any]:
    return [record.get(name) for record in records]


def _derived_values(bundle: ScoringBundle, names: list[str], records: list[dict]) -> dict[str, list[float]]:
    """Each derived input of each record, as the encoder computes it for the models."""
    positions = {name: i for i, name in enumerate(bundle.encoder.get_feature_names_out())}
    rows = [bundle.encoder.encode_record(record) for record in records] if names else []
    return {name: [float(row[positions[name]]) for row in rows] for name in names}


def _column(column: ColumnSpec, profile: dict[str, Any], values: list[Any]) -> dict[str, Any]:
    """One column's drift over the window's `values`, one per score."""
    shares, missing, given = window_shares(column, profile, values)
    value = psi(profile["shares"], shares) if given and any(profile["shares"]) else None
    return {
        "name": column.name,
        "kind": column.kind,
        "psi": value,
        "level": level(value) if value is not None and given >= MIN_VALUES else None,
        "values": given,
        "missing_reference": profile["missing"],
        "missing_window": missing if values else None,
        "missing_change": missing - profile["missing"] if values else None,
        "bins": _bins(profile["bins"], profile["shares"], shares),
    }


def _outputs(reference: dict[str, Any], served: list[ServedScore]) -> dict[str, Any]:
    n = len(served)
    bands = list(reference["bands"])
    counted = Counter(score.risk_band for score in served)
    shares = [counted[band] / n if n else 0.0 for band in bands]
    band_psi = psi(list(reference["bands"].values()), shares) if n else None
    flags: dict[str, list[bool]] = {}
    for score in served:
        for need in score.needs or []:  # an answer holding no needs flags none
            flags.setdefault(need["need"], []).append(bool(need["flagged"]))
    return {
        "bands": _bins(bands, list(reference["bands"].values()), shares),
        "band_psi": band_psi,
        "band_level": level(band_psi) if band_psi is not None and n >= MIN_VALUES else None,
        "mean_risk": _change(
            reference["mean_risk"], sum(s.risk_probability for s in served) / n if n else None
        ),
        "need_flag_rates": [
            {"need": need, **_change(rate, _mean(flags.get(need, [])))}
            for need, rate in reference["need_flag_rates"].items()
        ],
    }


def _bins(names: list[str], reference: list[float], window: list[float]) -> list[dict[str, Any]]:
    return [
        {"bin": name, "reference": r, "window": w}
        for name, r, w in zip(names, reference, window, strict=True)
    ]


def _change(reference: float, window: float | None) -> dict[str, float | None]:
    return {
        "reference": reference,
        "window": window,
        "change": None if window is None else window - reference,
    }


def _mean(values: list[bool]) -> float | None:
    return sum(values) / len(values) if values else None


def drift_example(spec: DatasetSpec) -> dict[str, Any]:
    """An answer for the API's documentation in the serving spec's own names (never another layout's):
    one input's records all at its last level, the groups and bands as at training, computed as served."""
    at = datetime(2026, 11, 24, 12, tzinfo=UTC)
    column = next((spec.column(n) for n in spec.inputs() if spec.column(n).kind != "numeric"), None)
    column = column or spec.column(spec.inputs()[0])
    shifted = [_example_values(column)[-1]] * 400
    protected = []
    for name in spec.protected[:1]:
        attribute, values = spec.column(name), _example_values(spec.column(name))
        protected.append(_column(attribute, column_profile(attribute, values), values * (400 // len(values))))
    labels = spec.risk_bands.labels
    reference = {
        "bands": {band: 1 / len(labels) for band in labels},
        "mean_risk": 0.5,
        "need_flag_rates": {need.name: 0.3 for need in spec.needs},
    }
    served = [
        ServedScore(
            at - timedelta(minutes=i),
            {},
            0.55,
            labels[i % len(labels)],
            [{"need": need.name, "flagged": i % 3 == 0} for need in spec.needs],
        )
        for i in range(len(shifted))
    ]
    return {
        "model": {"name": "reintegra", "version": "3", "run_id": "0f3c9a7e5b6d4c21a8e9f0b1c2d3e4f5"},
        "window": {
            "since": at - timedelta(days=30),
            "until": None,
            "scores": len(served),
            "limit": WINDOW_LIMIT,
            "capped": False,
            "oldest": served[-1].created_at,
            "newest": served[0].created_at,
        },
        "reference_rows": 4834,
        "message": None,
        "inputs": [_column(column, column_profile(column, _example_values(column)), shifted)],
        "protected": protected,
        "outputs": _outputs(reference, served),
    }


def _example_values(column: ColumnSpec) -> list[Any]:
    """One value of each of the column's bins (made up for a number or free text)."""
    if column.kind == "numeric":
        return [float(v) for v in range(10)]
    if column.kind == "boolean":
        return [True, False]
    return list(column.order or column.values or ["text a", "text b"])
