"""What a new version's spec changes beside the spec its model's newest version was trained on. A spec
keeps its name through edits, so versions of one model may differ; the data scientist hears how, and
whether a server can swap the new version in (only while the records it takes stay the same)."""

from __future__ import annotations

from typing import Any

from features.spec import DatasetSpec


def spec_changes(before: DatasetSpec, after: DatasetSpec) -> tuple[list[str], bool]:
    """The differences, in words, and whether they change the records the API takes."""
    changes: list[str] = []
    old, new = _record_columns(before), _record_columns(after)
    if added := [name for name in new if name not in old]:
        changes.append(f"record fields added: {', '.join(added)}")
    if dropped := [name for name in old if name not in new]:
        changes.append(f"record fields dropped: {', '.join(dropped)}")
    if redeclared := [name for name in new if name in old and new[name] != old[name]]:
        changes.append(f"record fields declared otherwise: {', '.join(redeclared)}")
    records_change = bool(changes)
    if before.risk_bands != after.risk_bands:
        changes.append(f"risk bands {_bands(after)} (were {_bands(before)})")
    said = {"columns", "risk_bands", "description"}
    fields = [k for k in DatasetSpec.model_fields if k not in said]
    if other := [k for k in fields if before.model_dump(include={k}) != after.model_dump(include={k})]:
        changes.append(f"also changed: {', '.join(other)}")
    if later := sorted(_later_columns(before).symmetric_difference(_later_columns(after))):
        changes.append(f"supervision-time columns added or dropped: {', '.join(later)}")
    return changes, records_change


def _record_columns(spec: DatasetSpec) -> dict[str, dict[str, Any]]:
    """The fields of a scoring request's record: release-time columns and protected attributes."""
    fields = set(spec.inputs()) | set(spec.protected)
    return {c.name: c.model_dump() for c in spec.columns if c.name in fields}


def _later_columns(spec: DatasetSpec) -> set[str]:
    return {c.name for c in spec.columns if c.known == "supervision"}


def _bands(spec: DatasetSpec) -> str:
    bands = spec.risk_bands
    return f"{', '.join(bands.labels)} cut at {', '.join(f'{c:g}' for c in bands.cut_points)}"
