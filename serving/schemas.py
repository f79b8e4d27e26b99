"""API bodies. The record's schema is generated from the serving model's spec."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from datetime import datetime
from itertools import count
from typing import Annotated, Any, Literal

from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    create_model,
    model_validator,
)
from pydantic.json_schema import SkipJsonSchema

from features.spec import FALSE_WORDS, TRUE_WORDS, ColumnSpec, DatasetSpec
from features.validation import level_key
from serving.json_body import each_name_once

# Unknown fields reported one by one, at most; more make one error (see few_unknown_fields).
MAX_UNKNOWN_FIELDS = 20


# What JSON Schema cannot say of a record, said in words: a client reads it in the document or nowhere.
RECORD_DOC = (
    "The serving model's release-time inputs and its protected attributes, each optional (left out, null "
    "or blank is missing), but at least one input must be given: a record with none is a 422, since its "
    "score would only repeat the base rate."
)


def record_model(spec: DatasetSpec, example: dict[str, Any]) -> type[BaseModel]:
    """Release-time inputs and protected attributes, each optional; anything else is refused."""
    columns = [*spec.inputs(), *spec.protected]
    refused = _refused_columns(spec)
    attributes = _attributes([*columns, *refused])
    fields: dict[str, Any] = {}
    for name in columns:
        column = spec.column(name)
        said = column.description or column.domain
        if name in spec.protected:
            said = f"{said.rstrip('.')}. Protected: stored for audits, never a model input."
        fields[attributes[name]] = (
            _field_type(column) | None,
            Field(default=None, alias=name, description=said),
        )
    for name, reason in refused.items():
        refusal = Annotated[Any, AfterValidator(_refuse(reason))]
        fields[attributes[name]] = (SkipJsonSchema[refusal], Field(None, alias=name))
    inputs = [attributes[name] for name in spec.inputs()]

    def has_an_input(record: BaseModel) -> BaseModel:
        if all(getattr(record, name) is None for name in inputs):
            raise ValueError(
                "the record holds none of the model's inputs, so a score would only repeat the base "
                "rate; send what is known of the person (every input is listed in the schema)"
            )
        return record

    return create_model(
        "Record",
        __doc__=RECORD_DOC,
        __config__=ConfigDict(extra="forbid", json_schema_extra={"examples": [example]}),
        __validators__={
            "blank_is_missing": model_validator(mode="before")(_blank_is_missing),
            "few_unknown_fields": model_validator(mode="before")(few_unknown_fields(attributes)),
            "has_an_input": model_validator(mode="after")(has_an_input),
            # Last, so it runs first: blank_is_missing makes a plain dict of the object it was given.
            "each_name_once": model_validator(mode="before")(each_name_once),
        },
        **fields,
    )


def few_unknown_fields(known: Iterable[str]) -> Callable[[Any], Any]:
    """A before-validator refusing, as one error, an object with more than MAX_UNKNOWN_FIELDS unknown
    names: one error each (with its value) let an 8 MiB body cost seconds and an answer ten times its size."""
    names = frozenset(known)

    def check(data: Any) -> Any:
        if isinstance(data, dict):
            unknown = [str(name) for name in data if name not in names]
            if len(unknown) > MAX_UNKNOWN_FIELDS:
                first = ", ".join(unknown[:MAX_UNKNOWN_FIELDS])
                raise ValueError(
                    f"{len(unknown)} unknown fields; the first {MAX_UNKNOWN_FIELDS}: {first}; "
                    "the accepted fields are in the API schema (GET /docs)"
                )
        return data

    return check


def _refused_columns(spec: DatasetSpec) -> dict[str, str]:
    """The spec's other columns, each with why a record may not hold it: a whole row sent from a
    case-management system is told what to leave out, not that its columns are unknown."""
    later = "is recorded during supervision, after release; the model scores at release and does not take it"
    outcome, person = spec.outcome.column, spec.id
    return {c.name: f"{c.name} {later}: leave it out" for c in spec.columns if c.known != "release"} | {
        outcome: f"{outcome} is the outcome the model predicts; a score is never given it: leave it out",
        person: f"{person} is the person's id: send it as person_id beside the record",
    }


def _refuse(reason: str) -> Callable[[Any], None]:
    def refuse(value: Any) -> None:
        if value is not None:
            raise ValueError(reason)

    return refuse


def _attributes(names: list[str]) -> dict[str, str]:
    """The Python name of each column's field: its own, unless pydantic reserves it (a leading `_`, or
    a BaseModel attribute such as `model_config`); then `field_N`, never another column's name. The
    field is validated and dumped by the column's name."""
    taken = set(names)
    spare = (f"field_{n}" for n in count() if f"field_{n}" not in taken)
    return {name: next(spare) if name.startswith("_") or hasattr(BaseModel, name) else name for name in names}


def record_values(record: BaseModel) -> dict[str, Any]:
    """A validated record's given values, each under its column's name, as scored and audited."""
    return record.model_dump(by_alias=True, exclude_none=True)


def _field_type(column: ColumnSpec) -> Any:
    if column.kind == "ordinal":
        return _level(column.order or [])
    if column.kind == "categorical" and column.values:
        return _level(column.values)
    if column.kind == "boolean":
        return Annotated[bool, BeforeValidator(_yes_or_no)]
    if column.kind == "numeric":  # the range first, so the schema says it as minimum and maximum
        return Annotated[
            float,
            Field(ge=column.min, le=column.max, allow_inf_nan=False),
            BeforeValidator(_not_a_truth_value),
        ]
    return Annotated[str, Field(max_length=200, pattern=PRINTABLE)]


def _yes_or_no(value: Any) -> Any:
    """The words a data file may use (Yes/No, true/false, 1/0, 1.0/0.0, any case) and JSON's true/false."""
    if isinstance(value, bool):
        return value
    word = level_key(value, TRUE_WORDS + FALSE_WORDS) if isinstance(value, str | int | float) else None
    if word in TRUE_WORDS or word in FALSE_WORDS:
        return word in TRUE_WORDS
    words = "/".join(f'"{w}"' for w in TRUE_WORDS + FALSE_WORDS if not w.isdigit())
    raise ValueError(f"{value!r} is not yes or no; allowed: true, false, 1, 0 or {words} in any case")


def _not_a_truth_value(value: Any) -> Any:
    if isinstance(value, bool):
        raise ValueError("a number is expected, not true or false")
    return value


def _blank_is_missing(record: Any) -> Any:
    """An empty or blank value is missing, as an empty cell is in a data file."""
    if isinstance(record, dict):
        return {k: None if isinstance(v, str) and not v.strip() else v for k, v in record.items()}
    return record


def _level(levels: list[str]) -> Any:
    """One of `levels`, matched as data files are (case, surrounding spaces, 3 / 3.0 / "3.0" as
    "3"); stored in the declared spelling."""
    declared = {level.lower(): level for level in levels}

    def spelled_as_declared(value: Any) -> Any:
        if isinstance(value, str | int | float) and not isinstance(value, bool):
            return declared.get(level_key(value, declared), value)
        return value

    return Annotated[Literal[tuple(levels)], BeforeValidator(spelled_as_declared)]


# No control characters: PostgreSQL refuses NUL, and ids are shown to people.
PRINTABLE = r"^[^\x00-\x1f\x7f]*$"


def _not_only_dots(value: str) -> str:
    if set(value) == {"."}:
        raise ValueError("an id made only of dots cannot be linked to; use another character too")
    return value


# _not_only_dots in the document's words, as `not`: pydantic's regex engine has no lookahead.
ONLY_DOTS = {"not": {"pattern": r"^\.+$"}}
Identifier = Annotated[
    str,
    Field(min_length=1, max_length=128, pattern=PRINTABLE, json_schema_extra=ONLY_DOTS),
    AfterValidator(_not_only_dots),
]


def score_request_model(record: type[BaseModel]) -> type[BaseModel]:
    """The body of POST /v1/scores around the generated record model."""
    fields: dict[str, Any] = {
        "assessment_id": (Identifier | None, None),
        "person_id": (Identifier | None, None),
        "record": (record, ...),
    }
    return create_model(
        "ScoreRequest",
        __config__=ConfigDict(extra="forbid"),
        __validators__={
            "few_unknown_fields": model_validator(mode="before")(few_unknown_fields(fields)),
            "each_name_once": model_validator(mode="before")(each_name_once),
        },
        **fields,
    )


class ModelRef(BaseModel):
    name: str
    version: str
    run_id: str


class Risk(BaseModel):
    probability: float
    band: str = Field(
        description="One of the risk_bands.labels of GET /v1/model for the version that made the score "
        "(a score of an earlier version may hold a band of its own spec)"
    )
    horizon_years: float


class Need(BaseModel):
    need: str
    probability: float = Field(description="The need model's probability, from the other inputs")
    observed: bool | None = Field(
        default=None,
        description="Whether the record itself shows the need, when the need's rule has release-time "
        "inputs among its sources and they settle it; null when they cannot (the sources that would "
        "decide it are missing or known only later). When not null it decides `flagged`.",
    )
    flagged: bool = Field(
        description="`observed` when known, otherwise probability >= the need's flag threshold "
        "(need_flag_thresholds of GET /v1/model)"
    )
    interventions: list[str]


class Contribution(BaseModel):
    input: str
    value: str | float | bool | None
    domain: str
    contribution: float
    unseen: bool = Field(
        default=False,
        description="Present (and true) only for a free-text input whose value training never saw: "
        "the model read it as missing. Absent otherwise.",
    )


class Explained(BaseModel):
    base_value: float
    log_odds: float
    contributions: list[Contribution]
    by_domain: dict[str, float]


class Explanation(BaseModel):
    identity: str
    risk: Explained
    needs: dict[str, Explained]


class ScorePublic(BaseModel):
    id: str
    created_at: datetime
    request_id: str
    assessment_id: str | None
    person_id: str | None
    model: ModelRef
    risk: Risk
    needs: list[Need]
    explanation: Explanation
    warnings: list[str] = Field(
        default_factory=list,
        description="Present only when something about the record weakens the score, in plain words "
        "(a free-text input with a value training never saw, read as missing; an allowed value no training "
        "record held; a number beyond every training record's; inputs left out that every training record "
        "gave). Absent otherwise.",
    )


KEY_ID = "The API key that made the score (`python -m serving keys list` names it)"


class ScoreRead(ScorePublic):
    """A score as returned when made, with what only a read shows: its input record and the key."""

    record: dict[str, Any] = Field(
        description="The record scored, as the audit trail holds it (levels in the spec's spelling, "
        "protected attributes included)"
    )
    key_id: str = Field(description=KEY_ID)


class FieldError(BaseModel):
    field: str = Field(
        description="Where: dotted path, e.g. record.Gender, query.band, header.Idempotency-Key"
    )
    message: str = Field(description="What is wrong and what is allowed")
    value: str | int | float | bool | None = Field(
        description="The value refused (as text when JSON cannot carry it: NaN, an integer beyond 64 bits); "
        "null when it was missing, null, an object or an array"
    )


class BatchItem(BaseModel):
    index: int
    status: Literal[201, 422] = Field(description="201 scored, or 422 refused with `errors`")
    score: ScorePublic | None = None
    errors: list[FieldError] | None = None


class BatchPublic(BaseModel):
    scored: int
    failed: int
    items: list[BatchItem]


class ScoreSummary(BaseModel):
    id: str
    created_at: datetime
    person_id: str | None
    assessment_id: str | None
    model_name: str
    model_version: str
    risk_probability: float
    risk_band: str
    key_id: str = Field(description=KEY_ID)


class ScorePage(BaseModel):
    items: list[ScoreSummary] = Field(description="This page's scores, newest first")
    total: int = Field(
        description="Every score the filters match, on every page, a cursor's too; it grows as scores "
        "arrive during a walk, so it is not the number still to come"
    )
    limit: int = Field(description="The most scores a page holds, as asked (`limit`) or the default")
    offset: int = Field(description="Scores skipped before this page, as asked (`offset`); 0 with a cursor")
    next_cursor: str | None = Field(
        description="Send as `cursor` for the next page (null on the last one): unlike an offset, it "
        "neither repeats nor skips a score when newer ones arrive between pages"
    )


class RestartRequired(BaseModel):
    version: str = Field(description="The version the alias points at")
    reason: str = Field(description="Why this server cannot swap it in while running")


class LoadFailed(BaseModel):
    version: str = Field(description="The version the alias points at")
    reason: str = Field(description="Why it could not be loaded, and which version still serves")


class RiskBandsPublic(BaseModel):
    """How the serving version turns a probability into a band, so a client can show where a score lies."""

    labels: list[str] = Field(description="The risk bands, lowest risk first")
    cut_points: list[float] = Field(
        description="A probability at or above cut_points[i] (and below the next) is in labels[i + 1]"
    )
    operating_threshold: float = Field(
        description="The probability at and above which the model predicts a new arrest: where the fairness "
        "audit's FPR and FNR are measured"
    )


class ModelPublic(BaseModel):
    name: str
    version: str
    alias: str
    run_id: str
    loaded_at: datetime
    spec: str
    inputs: list[str]
    risk_bands: RiskBandsPublic
    need_flag_thresholds: dict[str, float] = Field(
        description="Each need's probability at and above which it is flagged (when the record does not "
        "settle it)"
    )
    metrics: dict[str, Any]
    baselines: dict[str, Any]
    fairness: dict[str, Any]
    intersections: dict[str, Any] = Field(
        default_factory=dict,
        description="The audit by every pair of protected attributes ('A x B'), as fairness gives each one",
    )
    model_card: str
    missing_documents: list[str] = Field(
        default_factory=list,
        description="Documents the version's training run lacks in MLflow (deleted from its artifacts, or "
        "logged before the release that writes them); what they fill is then empty: evaluation.json fills "
        "metrics, baselines, fairness and intersections, model_card.md model_card, reference_profile.json "
        "drift (GET /v1/model/drift), plots.json the model page's plot descriptions",
    )
    forced_promotion_reason: str | None = Field(
        None, description="Why this version serves although it failed a promotion gate (None: it passed)"
    )
    restart_required: RestartRequired | None = Field(
        None, description="Set while the alias points at a version this server serves only after a restart"
    )
    load_failed: LoadFailed | None = Field(
        None,
        description="Set while the alias points at a version this server could not load; polling does not "
        "try it again until the alias moves, an admin reload does",
    )


class ReloadPublic(BaseModel):
    previous_version: str | None
    version: str
    changed: bool


class Problem(BaseModel):
    """RFC 9457 problem details."""

    type: str = "about:blank"
    title: str
    status: int
    detail: str | None = None
    instance: str | None = None
    request_id: str | None = None
    errors: list[FieldError] | None = None
    record_changes: list[str] | None = Field(
        None,
        description="Only on the 409 of POST /v1/admin/reload: each record field added, removed or changed",
    )
    checks: dict[str, bool] | None = Field(
        None, description="Only on the 503 of GET /readyz: each readiness check and whether it passed"
    )


def record_changes(old: dict[str, Any], new: dict[str, Any]) -> list[str]:
    """What a caller sending `old`-shaped records meets under `new` (both record JSON schemas): the
    fields added, removed or changed, each with how. Only fields can differ: the rest of a record schema
    (title, description, no other fields, examples) is the same for every spec."""
    before, after = old.get("properties", {}), new.get("properties", {})
    changes = [f"added field {name}" for name in after if name not in before]
    changes += [f"removed field {name}" for name in before if name not in after]
    for name in [n for n in before if n in after and before[n] != after[n]]:
        changes.append(f"changed field {name} ({'; '.join(_field_changes(before[name], after[name]))})")
    return changes


def _field_changes(old: dict[str, Any], new: dict[str, Any]) -> list[str]:
    """How one field's schema changed, in a caller's words: type, levels, range, text, meaning."""
    was, now = _accepted(old), _accepted(new)
    if was.get("type") != now.get("type"):
        return [f"type {was.get('type')} is now {now.get('type')}"]
    how = []
    levels, new_levels = _levels(was), _levels(now)
    if bool(levels) != bool(new_levels):  # free text is not "every level removed"
        how.append(f"{_text_allowed(levels)} is now {_text_allowed(new_levels)}")
    elif added := [level for level in new_levels if level not in levels]:
        how.append("levels added: " + ", ".join(map(repr, added)))
    if levels and new_levels and (removed := [level for level in levels if level not in new_levels]):
        how.append("levels removed: " + ", ".join(map(repr, removed)))
    if levels != new_levels and sorted(levels) == sorted(new_levels):
        how.append("levels reordered")
    for key, word in (("minimum", "minimum"), ("maximum", "maximum"), ("maxLength", "longest text")):
        if was.get(key) != now.get(key):
            how.append(f"{word} {_bound(was.get(key))} is now {_bound(now.get(key))}")
    if old.get("description") != new.get("description"):
        how.append(f"description {old.get('description')!r} is now {new.get('description')!r}")
    return how or ["its schema changed"]


def _levels(accepted: dict[str, Any]) -> list[Any]:
    """The values a field allows (pydantic writes a single level as `const`); [] for free text."""
    return accepted.get("enum") or ([accepted["const"]] if "const" in accepted else [])


def _text_allowed(levels: list[Any]) -> str:
    return "levels " + ", ".join(map(repr, levels)) if levels else "any text"


def _accepted(field: dict[str, Any]) -> dict[str, Any]:
    """The non-null branch of an optional field's schema."""
    return next((s for s in field.get("anyOf", [field]) if s.get("type") != "null"), {})


def _bound(value: Any) -> str:
    return "none" if value is None else f"{value:g}" if isinstance(value, float) else str(value)


class BinShare(BaseModel):
    bin: str = Field(description="A bin of a number (deciles of the test part), a level, or a risk band")
    reference: float = Field(description="Its share in the test part at training (of the given values)")
    window: float = Field(description="Its share in the window (of the given values; 0 when none is given)")


class ColumnDrift(BaseModel):
    name: str
    kind: str
    psi: float | None = Field(
        description="Population stability index of the window's given values against the test part's, "
        "over the bins below (a share of 0 counts as 0.0001); null when the window gives no value"
    )
    level: Literal["none", "moderate", "major"] | None = Field(
        description="none below 0.1, moderate below 0.25, major from 0.25; null when the window gives fewer "
        "than 100 values, where sampling noise alone can pass 0.1"
    )
    values: int = Field(description="How many of the window's records give this column")
    missing_reference: float = Field(description="Share of the test part's records missing it")
    missing_window: float | None = Field(description="Share of the window's records missing it")
    missing_change: float | None = Field(description="missing_window - missing_reference")
    bins: list[BinShare]


class RateChange(BaseModel):
    reference: float = Field(description="On the test part at training")
    window: float | None = Field(description="Over the window (null when it holds no score)")
    change: float | None = Field(description="window - reference")


class NeedDrift(RateChange):
    need: str


class OutputDrift(BaseModel):
    bands: list[BinShare] = Field(description="Share of scores in each risk band")
    band_psi: float | None = Field(description="Population stability index of the band shares")
    band_level: Literal["none", "moderate", "major"] | None
    mean_risk: RateChange = Field(description="Mean risk probability")
    need_flag_rates: list[NeedDrift] = Field(description="Share of scores flagging each need")


class DriftWindow(BaseModel):
    since: datetime | None
    until: datetime | None
    scores: int = Field(description="Scores of the serving version read from the window, newest first")
    limit: int = Field(description="The most scores one request reads, whatever the window holds")
    capped: bool = Field(
        description="True when the window holds more scores than `limit`: only the newest were read"
    )
    oldest: datetime | None = Field(description="The oldest score read")
    newest: datetime | None = Field(description="The newest score read")


class DriftPublic(BaseModel):
    model: ModelRef
    window: DriftWindow
    reference_rows: int | None = Field(description="Rows of the test part the reference profile was taken on")
    message: str | None = Field(
        description="Why nothing is compared, when nothing is: no reference profile, or fewer than 100 scores"
    )
    inputs: list[ColumnDrift] = Field(description="Each model input, in the spec's order")
    protected: list[ColumnDrift] = Field(
        description="Each protected attribute's group shares, for fairness monitoring only (never an input)"
    )
    outputs: OutputDrift | None
